//! Incremental tile writer for the sealer: keeps only the rightmost tile of each level and the
//! rightmost entry bundle in memory (≤ 256 hashes per level), so memory stays flat as the log grows.

use super::bundle::{decode_entry_bundle, encode_entry_bundle};
use super::proofs::TileSet;
use super::{TILE_HEIGHT, TILE_WIDTH, TileError, TileId, TileKind};
use crate::entry::MAX_ENTRY_LEN;
use crate::hash::Sha256Hash;
use crate::merkle::{EMPTY_ROOT, leaf_hash, node_hash};

const FULL: usize = TILE_WIDTH as usize;

/// A tile or entry bundle to store at `<tlog prefix>/<id.path()>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileFile {
    pub id: TileId,
    pub data: Vec<u8>,
}

impl TileFile {
    pub fn path(&self) -> String {
        self.id.path()
    }
}

/// Appends entries and yields the tiles and bundles to publish.
#[derive(Debug, Clone, Default)]
pub struct TileWriter {
    size: u64,
    /// `edges[l]`: the hashes of the rightmost, not yet full tile at level `l`.
    edges: Vec<Vec<Sha256Hash>>,
    /// Entries of the rightmost, not yet full entry bundle.
    bundle: Vec<Vec<u8>>,
    /// Size at the last [`TileWriter::take_tiles`].
    published_size: u64,
    /// Full tiles and bundles completed since the last take.
    completed: Vec<TileFile>,
}

impl TileWriter {
    /// Writer for an empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The partial tiles and bundle a writer needs to resume a log of `size` (all of them exist
    /// in storage for any size that has a checkpoint).
    pub fn resume_tiles(size: u64) -> Vec<TileId> {
        let mut out = Vec::new();
        let mut level = 0u8;
        while level_count(size, level) > 0 {
            let width = partial_width(size, level);
            if width > 0
                && let Ok(id) = TileId::new(
                    TileKind::Hashes { level },
                    level_count(size, level) >> TILE_HEIGHT,
                    width,
                )
            {
                if level == 0 {
                    out.push(id.entries());
                }
                out.push(id);
            }
            level += 1;
        }
        out
    }

    /// Rebuilds the writer for a log of `size` whose checkpoint root is `root`, from the tiles
    /// listed by [`TileWriter::resume_tiles`]. Fails if they do not produce `root`.
    pub fn resume(size: u64, root: &Sha256Hash, tiles: &TileSet) -> Result<Self, TileError> {
        let mut writer = Self {
            size,
            published_size: size,
            ..Self::default()
        };
        for id in Self::resume_tiles(size) {
            let missing = || TileError::Missing {
                size,
                path: id.path(),
            };
            match id.kind() {
                TileKind::Hashes { level } => {
                    let data = tiles.hash_tile(&id).ok_or_else(missing)?;
                    let hashes = data
                        .chunks_exact(32)
                        .map(|c| {
                            let mut h = [0u8; 32];
                            h.copy_from_slice(c);
                            Sha256Hash(h)
                        })
                        .collect();
                    let level = usize::from(level);
                    if writer.edges.len() <= level {
                        writer.edges.resize(level + 1, Vec::new());
                    }
                    writer.edges[level] = hashes;
                }
                TileKind::Entries => {
                    let data = tiles.entry_bundle(&id).ok_or_else(missing)?;
                    writer.bundle = decode_entry_bundle(&id, &data)?;
                }
            }
        }
        // Levels above the highest partial tile may be empty but must exist for the loop below.
        let mut level = 0u8;
        while level_count(size, level) > 0 {
            if writer.edges.len() <= usize::from(level) {
                writer.edges.push(Vec::new());
            }
            level += 1;
        }
        let bundle_matches_tile = writer.bundle.iter().map(|e| leaf_hash(e)).eq(writer
            .edges
            .first()
            .into_iter()
            .flatten()
            .copied());
        if !bundle_matches_tile || writer.root() != *root {
            return Err(TileError::Inconsistent);
        }
        Ok(writer)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one encoded entry; returns its leaf hash.
    pub fn append(&mut self, entry: &[u8]) -> Result<Sha256Hash, TileError> {
        if entry.len() > MAX_ENTRY_LEN {
            return Err(TileError::EntryTooLong(entry.len()));
        }
        let leaf = leaf_hash(entry);
        self.size += 1;
        self.bundle.push(entry.to_vec());
        if self.bundle.len() == FULL {
            let id = TileId::new(
                TileKind::Entries,
                (self.size >> TILE_HEIGHT) - 1,
                TILE_WIDTH,
            )?;
            let data = encode_entry_bundle(&self.bundle)?;
            self.completed.push(TileFile { id, data });
            self.bundle.clear();
        }
        let mut carry = leaf;
        let mut level = 0u8;
        loop {
            let l = usize::from(level);
            if self.edges.len() <= l {
                self.edges.push(Vec::new());
            }
            self.edges[l].push(carry);
            if self.edges[l].len() < FULL {
                break;
            }
            let id = TileId::new(
                TileKind::Hashes { level },
                level_count(self.size, level + 1) - 1,
                TILE_WIDTH,
            )?;
            carry = perfect_root(&self.edges[l]);
            self.completed.push(TileFile {
                id,
                data: concat(&self.edges[l]),
            });
            self.edges[l].clear();
            level += 1;
        }
        Ok(leaf)
    }

    /// RFC 6962 root of the current tree, from the rightmost tiles alone.
    pub fn root(&self) -> Sha256Hash {
        // The tree splits into perfect subtrees following the binary digits of its size, largest
        // first; each lives in the rightmost tile of its level. Fold them right to left.
        let mut subtrees = Vec::new();
        for edge in self.edges.iter().rev() {
            let mut rest = edge.as_slice();
            for bit in (0..TILE_HEIGHT).rev() {
                let span = 1usize << bit;
                if rest.len() & span != 0 {
                    subtrees.push(perfect_root(&rest[..span]));
                    rest = &rest[span..];
                }
            }
        }
        let Some((last, init)) = subtrees.split_last() else {
            return EMPTY_ROOT;
        };
        init.iter()
            .rev()
            .fold(*last, |acc, left| node_hash(left, &acc))
    }

    /// Tiles and bundles to store since the previous call: every full tile completed since, and
    /// the partial tiles of the current size that changed. Store them before publishing a
    /// checkpoint of this size; never overwrite an existing path (contents are final per path).
    pub fn take_tiles(&mut self) -> Result<Vec<TileFile>, TileError> {
        let mut out = std::mem::take(&mut self.completed);
        if self.size != self.published_size {
            if !self.bundle.is_empty() {
                let id = TileId::new(
                    TileKind::Entries,
                    self.size >> TILE_HEIGHT,
                    partial_width(self.size, 0),
                )?;
                out.push(TileFile {
                    id,
                    data: encode_entry_bundle(&self.bundle)?,
                });
            }
            for (level, edge) in self.edges.iter().enumerate() {
                let level = u8::try_from(level).map_err(|_| TileError::BadCoordinates {
                    level: u8::MAX,
                    width: 0,
                })?;
                let changed =
                    level_count(self.size, level) != level_count(self.published_size, level);
                if edge.is_empty() || !changed {
                    continue;
                }
                let id = TileId::new(
                    TileKind::Hashes { level },
                    level_count(self.size, level) >> TILE_HEIGHT,
                    partial_width(self.size, level),
                )?;
                out.push(TileFile {
                    id,
                    data: concat(edge),
                });
            }
        }
        self.published_size = self.size;
        Ok(out)
    }
}

/// Number of complete 256^level-leaf subtrees in a tree of `size`.
fn level_count(size: u64, level: u8) -> u64 {
    size.checked_shr(u32::from(TILE_HEIGHT) * u32::from(level))
        .unwrap_or(0)
}

/// Width of the partial tile at `level` for `size` (0 when there is none).
fn partial_width(size: u64, level: u8) -> u16 {
    // The mask keeps the value below 256, so the conversion cannot fail.
    u16::try_from(level_count(size, level) & 0xff).unwrap_or(0)
}

/// Root of a perfect tree over `hashes` (a power-of-two count).
fn perfect_root(hashes: &[Sha256Hash]) -> Sha256Hash {
    match hashes {
        [] => EMPTY_ROOT,
        [single] => *single,
        _ => {
            let (left, right) = hashes.split_at(hashes.len() / 2);
            node_hash(&perfect_root(left), &perfect_root(right))
        }
    }
}

fn concat(hashes: &[Sha256Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.0).collect()
}
