//! C2SP tlog-tiles storage of the Merkle log (docs/FORMAT.md §7): tile paths, tile and entry
//! bundle contents, an incremental writer for the sealer, and proofs built from fetched tiles.
//!
//! Everything is a pure function over byte slices; fetching and storing tiles is the caller's job.

mod bundle;
mod path;
mod proofs;
mod writer;

pub use bundle::{decode_entry_bundle, encode_entry_bundle};
pub use path::{TileId, TileKind};
pub use proofs::{TileProof, TileSet, consistency_proof_from_tiles, inclusion_proof_from_tiles};
pub use writer::{TileFile, TileWriter};

/// Tile height: every tile covers 2^8 = 256 hashes.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile, entries in a full bundle.
pub const TILE_WIDTH: u16 = 256;
/// Levels a tile path may name (0..=63).
pub const MAX_TILE_LEVEL: u8 = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    #[error("malformed tile path {0:?}")]
    BadPath(String),
    #[error("invalid tile coordinates: level {level}, width {width}")]
    BadCoordinates { level: u8, width: u16 },
    #[error("tile {path} has {found} bytes, expected {expected}")]
    BadLength {
        path: String,
        expected: usize,
        found: usize,
    },
    #[error("entry bundle {path} is malformed: {reason}")]
    BadBundle { path: String, reason: String },
    #[error("entry of {0} bytes does not fit an entry bundle (max 65535)")]
    EntryTooLong(usize),
    #[error("tiles do not match the trusted root hash")]
    Inconsistent,
    #[error("tree size {size} needs tile {path}, which was not supplied")]
    Missing { size: u64, path: String },
    #[error("{0}")]
    Merkle(#[from] crate::merkle::MerkleError),
}

/// Every tile and entry bundle that must exist for a tree of `new_size` and did not for
/// `old_size` (full tiles completed in between, plus the partial tiles of `new_size`).
pub fn tiles_for_growth(old_size: u64, new_size: u64) -> Result<Vec<TileId>, TileError> {
    let mut out = Vec::new();
    if new_size > crate::merkle::MAX_TREE_SIZE {
        return Err(crate::merkle::MerkleError::TooLarge(new_size).into());
    }
    if new_size <= old_size {
        return Ok(out);
    }
    for tile in tlog_tiles::Tile::new_tiles(TILE_HEIGHT, old_size, new_size) {
        if let Ok(id) = TileId::from_tlog(&tile) {
            if id.level() == Some(0) {
                out.push(id.entries());
            }
            out.push(id);
        }
    }
    Ok(out)
}
