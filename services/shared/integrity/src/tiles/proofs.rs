//! Proofs built from fetched tiles, authenticated against a trusted root (checkpoint).
//!
//! Usage is a two-step loop, so that fetching stays with the caller:
//! call, fetch the tiles a `NeedTiles` answer lists into the [`TileSet`], call again.

use std::cell::RefCell;
use std::collections::HashMap;

use super::bundle::{decode_entry_bundle, encode_entry_bundle};
use super::{TILE_HEIGHT, TileError, TileId, TileKind};
use crate::hash::Sha256Hash;
use crate::merkle::{MAX_TREE_SIZE, MerkleError, Proof, verify_consistency, verify_inclusion};

/// Tiles and entry bundles fetched from storage, keyed by position. A wider tile (or the full one)
/// serves any narrower request at the same position, as C2SP clients do once partial tiles are
/// replaced.
#[derive(Debug, Clone, Default)]
pub struct TileSet {
    hashes: HashMap<(u8, u64), Vec<u8>>,
    bundles: HashMap<u64, Vec<Vec<u8>>>,
}

impl TileSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds fetched bytes for `id`; rejects data of the wrong shape for the id.
    pub fn insert(&mut self, id: TileId, data: &[u8]) -> Result<(), TileError> {
        match id.kind() {
            TileKind::Hashes { level } => {
                let expected = usize::from(id.width()) * 32;
                if data.len() != expected {
                    return Err(TileError::BadLength {
                        path: id.path(),
                        expected,
                        found: data.len(),
                    });
                }
                let slot = self.hashes.entry((level, id.index())).or_default();
                if data.len() > slot.len() {
                    *slot = data.to_vec();
                }
            }
            TileKind::Entries => {
                let entries = decode_entry_bundle(&id, data)?;
                let slot = self.bundles.entry(id.index()).or_default();
                if entries.len() > slot.len() {
                    *slot = entries;
                }
            }
        }
        Ok(())
    }

    /// The bytes of hash tile `id` (a prefix of a wider stored tile), if present.
    pub fn hash_tile(&self, id: &TileId) -> Option<Vec<u8>> {
        let level = id.level()?;
        let data = self.hashes.get(&(level, id.index()))?;
        data.get(..usize::from(id.width()) * 32).map(<[u8]>::to_vec)
    }

    /// The bytes of entry bundle `id` (the first `width` entries of a wider stored bundle).
    pub fn entry_bundle(&self, id: &TileId) -> Option<Vec<u8>> {
        if id.kind() != TileKind::Entries {
            return None;
        }
        let entries = self.bundles.get(&id.index())?;
        encode_entry_bundle(entries.get(..usize::from(id.width()))?).ok()
    }

    /// The entries of bundle `id`, if present.
    pub fn entries(&self, id: &TileId) -> Option<&[Vec<u8>]> {
        self.bundles
            .get(&id.index())?
            .get(..usize::from(id.width()))
    }
}

/// The answer of a proof-from-tiles call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TileProof {
    /// The proof, built only from tiles that were authenticated against the root.
    Complete(Proof),
    /// Fetch these tiles into the set and call again.
    NeedTiles(Vec<TileId>),
}

/// Serves tiles to tlog_tiles' authenticating reader and records the ones not yet fetched.
struct Recorder<'a> {
    set: &'a TileSet,
    missing: RefCell<Vec<TileId>>,
}

impl tlog_tiles::TileReader for Recorder<'_> {
    fn height(&self) -> u8 {
        TILE_HEIGHT
    }

    fn read_tiles(&self, tiles: &[tlog_tiles::Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        let mut out = Vec::with_capacity(tiles.len());
        let mut missing = self.missing.borrow_mut();
        for tile in tiles {
            let id = TileId::from_tlog(tile).map_err(|_| tlog_tiles::Error::InvalidTile)?;
            match self.set.hash_tile(&id) {
                Some(data) => out.push(data),
                None => missing.push(id),
            }
        }
        if missing.is_empty() {
            Ok(out)
        } else {
            Err(tlog_tiles::Error::InvalidInput(
                "tiles not fetched yet".into(),
            ))
        }
    }

    fn save_tiles(&self, _tiles: &[tlog_tiles::Tile], _data: &[Vec<u8>]) {}
}

/// Inclusion proof of leaf `index` in the tree (`size`, `root`), from tiles. A returned proof
/// has been verified against `root` with the leaf hash from the level-0 tile.
pub fn inclusion_proof_from_tiles(
    index: u64,
    size: u64,
    root: &Sha256Hash,
    tiles: &TileSet,
) -> Result<TileProof, TileError> {
    if size > MAX_TREE_SIZE {
        return Err(MerkleError::TooLarge(size).into());
    }
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size }.into());
    }
    let recorder = Recorder {
        set: tiles,
        missing: RefCell::new(Vec::new()),
    };
    let reader = tlog_tiles::TileHashReader::new(size, (*root).into(), &recorder);
    let result = tlog_tiles::prove_record(size, index, &reader);
    let answer = finish(result, recorder)?;
    // tlog_tiles' reader does not authenticate every tile it reads in all layouts, so a proof is
    // only returned after it verifies against the trusted root.
    if let TileProof::Complete(proof) = &answer {
        let leaf_tile = leaf_tile(index, size)?;
        // A one-entry tree needs no proof, so nothing was read yet: fetch the leaf's tile.
        let Some(data) = tiles.hash_tile(&leaf_tile) else {
            return Ok(TileProof::NeedTiles(vec![leaf_tile]));
        };
        let leaf = leaf_at(&data, index).ok_or(TileError::Inconsistent)?;
        verify_inclusion(&leaf, index, size, root, proof).map_err(|_| TileError::Inconsistent)?;
    }
    Ok(answer)
}

/// The level-0 tile of a tree of `size` that holds leaf `index`.
fn leaf_tile(index: u64, size: u64) -> Result<TileId, TileError> {
    let tile_index = index >> TILE_HEIGHT;
    let full = size >> TILE_HEIGHT;
    let width = if tile_index < full { 256 } else { size & 0xff };
    // The width is at most 256, so the conversion cannot fail.
    TileId::new(
        TileKind::Hashes { level: 0 },
        tile_index,
        u16::try_from(width).unwrap_or(256),
    )
}

/// The leaf hash at `index` in the bytes of its level-0 tile.
fn leaf_at(tile: &[u8], index: u64) -> Option<Sha256Hash> {
    let offset = usize::try_from(index & 0xff).ok()? * 32;
    let mut out = [0u8; 32];
    out.copy_from_slice(tile.get(offset..offset + 32)?);
    Some(Sha256Hash(out))
}

/// Consistency proof from the tree (`old_size`, `old_root`) to the tree (`new_size`, `new_root`),
/// from tiles. A returned proof has been verified against both roots.
pub fn consistency_proof_from_tiles(
    old_size: u64,
    old_root: &Sha256Hash,
    new_size: u64,
    new_root: &Sha256Hash,
    tiles: &TileSet,
) -> Result<TileProof, TileError> {
    if new_size > MAX_TREE_SIZE {
        return Err(MerkleError::TooLarge(new_size).into());
    }
    if old_size > new_size {
        return Err(MerkleError::SizeDecreased {
            old: old_size,
            new: new_size,
        }
        .into());
    }
    if old_size == 0 || old_size == new_size {
        verify_consistency(old_size, old_root, new_size, new_root, &[])?;
        return Ok(TileProof::Complete(Vec::new()));
    }
    let recorder = Recorder {
        set: tiles,
        missing: RefCell::new(Vec::new()),
    };
    let reader = tlog_tiles::TileHashReader::new(new_size, (*new_root).into(), &recorder);
    let result = tlog_tiles::prove_tree(new_size, old_size, &reader);
    let answer = finish(result, recorder)?;
    if let TileProof::Complete(proof) = &answer {
        verify_consistency(old_size, old_root, new_size, new_root, proof)
            .map_err(|_| TileError::Inconsistent)?;
    }
    Ok(answer)
}

fn finish(
    result: Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error>,
    recorder: Recorder<'_>,
) -> Result<TileProof, TileError> {
    let mut missing = recorder.missing.into_inner();
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        return Ok(TileProof::NeedTiles(missing));
    }
    match result {
        Ok(proof) => Ok(TileProof::Complete(
            proof.into_iter().map(Sha256Hash::from).collect(),
        )),
        Err(tlog_tiles::Error::InconsistentTile) => Err(TileError::Inconsistent),
        Err(other) => Err(MerkleError::from(other).into()),
    }
}
