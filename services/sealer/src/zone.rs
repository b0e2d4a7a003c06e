//! One zone's log as this sealer knows it: chain head, tile writer, covered windows, the stream
//! sequence of its newest entry, and the newest checkpoint known to be in the bucket.

use std::collections::BTreeSet;
use std::time::Instant;

use rainlogs_integrity::tiles::TILE_WIDTH;
use rainlogs_integrity::{
    Chain, ChainError, Checkpoint, Origin, SealedEntry, TileError, TileFile, TileWriter,
};

use crate::coverage::Coverage;
use crate::pruned::PrunedTargets;
use crate::unindexed::Unindexed;

#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    #[error("entry {index}: {source}")]
    Chain { index: u64, source: ChainError },
    #[error("entry {index} does not fit the tiles: {source}")]
    Tiles { index: u64, source: TileError },
    #[error(
        "the log disagrees with the bucket's checkpoint at size {size}: root {found} instead of {expected}"
    )]
    Fork {
        size: u64,
        expected: String,
        found: String,
    },
    #[error("message says entry {said}, its bytes say {found}")]
    IndexMismatch { said: u64, found: u64 },
}

pub struct ZoneLog {
    pub tenant: String,
    pub zone: String,
    pub origin: Origin,
    pub subject: String,
    pub chain: Chain,
    pub tiles: TileWriter,
    pub coverage: Coverage,
    /// Archive entries that already have their `prune` entry.
    pub pruned: PrunedTargets,
    /// The newest object entries still without their `index` entry.
    pub unindexed: Unindexed,
    /// Whether the log holds its `erasure` entry (there is at most one).
    pub erased: bool,
    /// Stream sequence of the newest entry on the subject (0 = none yet).
    pub last_sequence: u64,
    /// Newest checkpoint known to be in the bucket (signed by this or another sealer).
    pub signed: Option<Checkpoint>,
    /// Tiles taken from the writer that still have to be stored.
    pub unwritten: Vec<TileFile>,
    /// Hash tiles stored by the previous checkpoint: the old right edge, which consistency
    /// proofs usually need.
    pub previous_edge: Vec<TileFile>,
    /// Since when entries exist that no checkpoint covers.
    pub uncovered_since: Option<Instant>,
    /// After a failed checkpoint: not before this time again.
    pub checkpoint_not_before: Option<Instant>,
    /// Sizes beyond `signed` whose tiles are already in the bucket but that no checkpoint
    /// covers (a sealer stopped between storing tiles and signing). Found when the zone loads.
    pub unsigned_sizes: BTreeSet<u64>,
    /// Tree heads of `unsigned_sizes` reached while replaying, oldest first: each is signed
    /// before any larger size, so no published size is left without its checkpoint.
    pub unsigned_heads: Vec<Checkpoint>,
    /// Set when the log cannot be continued safely (fork, tampering); nothing is sealed for the
    /// zone until an operator has looked.
    pub fault: Option<String>,
}

impl ZoneLog {
    pub fn new(tenant: &str, zone: &str, origin: Origin, signed: Option<Checkpoint>) -> Self {
        Self {
            tenant: tenant.to_owned(),
            zone: zone.to_owned(),
            subject: rainlogs_schemas::subjects::chain(zone),
            chain: Chain::new(origin.clone()),
            origin,
            tiles: TileWriter::new(),
            coverage: Coverage::default(),
            pruned: PrunedTargets::default(),
            unindexed: Unindexed::default(),
            erased: false,
            last_sequence: 0,
            signed,
            unwritten: Vec::new(),
            previous_edge: Vec::new(),
            uncovered_since: None,
            checkpoint_not_before: None,
            unsigned_sizes: BTreeSet::new(),
            unsigned_heads: Vec::new(),
            fault: None,
        }
    }

    pub fn size(&self) -> u64 {
        self.chain.next_index()
    }

    fn signed_size(&self) -> u64 {
        self.signed.as_ref().map_or(0, |c| c.size)
    }

    /// Takes the entry stored at `sequence` as the next one: checks it continues the chain,
    /// adds it to the tiles and the coverage.
    pub fn apply(
        &mut self,
        sequence: u64,
        said_index: u64,
        bytes: &[u8],
    ) -> Result<SealedEntry, ZoneError> {
        let index = self.size();
        let sealed = self
            .chain
            .clone()
            .verify_next(bytes)
            .map_err(|source| ZoneError::Chain { index, source })?;
        if said_index != sealed.entry.index {
            return Err(ZoneError::IndexMismatch {
                said: said_index,
                found: sealed.entry.index,
            });
        }
        self.tiles
            .append(bytes)
            .map_err(|source| ZoneError::Tiles { index, source })?;
        self.chain = Chain::after(&sealed);
        self.coverage.record(&sealed.entry.body);
        self.unindexed.record(&sealed);
        match &sealed.entry.body {
            rainlogs_integrity::EntryBody::Prune(prune) => self.pruned.insert(prune.target_index),
            rainlogs_integrity::EntryBody::Erasure => self.erased = true,
            _ => {}
        }
        self.last_sequence = sequence;
        let size = self.size();
        let signed_size = self.signed_size();
        if size <= signed_size {
            // Replaying history the bucket already holds: its tiles are stored, so drop them as
            // they complete instead of keeping them all until the next checkpoint.
            if size.is_multiple_of(u64::from(TILE_WIDTH)) || size == signed_size {
                self.tiles
                    .take_tiles()
                    .map_err(|source| ZoneError::Tiles { index, source })?;
            }
            if size == signed_size
                && let Some(signed) = &self.signed
                && self.tiles.root() != signed.root
            {
                return Err(ZoneError::Fork {
                    size,
                    expected: signed.root.to_string(),
                    found: self.tiles.root().to_string(),
                });
            }
        } else {
            if self.unsigned_sizes.remove(&size) {
                // The tiles of this size were stored by a sealer that never signed it; taking
                // them here gives exactly that size's tiles, written again before it is signed.
                let taken = self
                    .tiles
                    .take_tiles()
                    .map_err(|source| ZoneError::Tiles { index, source })?;
                self.unwritten.extend(taken);
                self.unsigned_heads.push(Checkpoint::new(
                    self.origin.clone(),
                    size,
                    self.tiles.root(),
                ));
            }
            if self.uncovered_since.is_none() {
                self.uncovered_since = Some(Instant::now());
            }
        }
        Ok(sealed)
    }
}
