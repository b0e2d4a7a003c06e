//! RFC 6962 / RFC 9162 Merkle tree over entries (docs/FORMAT.md §6).
//!
//! leaf = SHA-256(0x00 ∥ entry bytes), node = SHA-256(0x01 ∥ left ∥ right), the empty tree hashes
//! to SHA-256(""). Proofs are RFC 6962 audit paths and consistency proofs (ordered leaf→root),
//! generated and checked with `tlog_tiles` (a port of Go's sumdb/tlog).

use crate::hash::Sha256Hash;

/// An RFC 6962 inclusion proof (audit path) or consistency proof: hashes ordered bottom-up.
pub type Proof = Vec<Sha256Hash>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    #[error("proof does not verify")]
    InvalidProof,
    #[error("index {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {old} is larger than {new}")]
    SizeDecreased { old: u64, new: u64 },
    #[error("trees of equal size {size} have different roots")]
    RootMismatch { size: u64 },
    #[error("tree size {0} is above the supported maximum 2^48")]
    TooLarge(u64),
    #[error("merkle computation failed: {0}")]
    Internal(String),
}

impl From<tlog_tiles::Error> for MerkleError {
    fn from(e: tlog_tiles::Error) -> Self {
        match e {
            tlog_tiles::Error::InvalidProof => Self::InvalidProof,
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Largest tree size the tile functions accept (2^48 entries; Go's tlog index arithmetic
/// overflows far above this, and no zone log comes near it).
pub const MAX_TREE_SIZE: u64 = 1 << 48;

/// Root of the empty tree: SHA-256 of the empty string.
pub const EMPTY_ROOT: Sha256Hash = Sha256Hash(tlog_tiles::EMPTY_HASH.0);

/// SHA-256(0x00 ∥ data).
pub fn leaf_hash(data: &[u8]) -> Sha256Hash {
    tlog_tiles::record_hash(data).into()
}

/// SHA-256(0x01 ∥ left ∥ right).
pub fn node_hash(left: &Sha256Hash, right: &Sha256Hash) -> Sha256Hash {
    tlog_tiles::node_hash((*left).into(), (*right).into()).into()
}

fn to_tlog(proof: &[Sha256Hash]) -> Vec<tlog_tiles::Hash> {
    proof.iter().map(|h| (*h).into()).collect()
}

/// Checks that the leaf with hash `leaf` is at `index` in the tree of `size` with `root`.
pub fn verify_inclusion(
    leaf: &Sha256Hash,
    index: u64,
    size: u64,
    root: &Sha256Hash,
    proof: &[Sha256Hash],
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    tlog_tiles::check_record(&to_tlog(proof), size, (*root).into(), index, (*leaf).into())
        .map_err(Into::into)
}

/// Checks that the tree (`new_size`, `new_root`) extends the tree (`old_size`, `old_root`).
/// An empty old tree is a prefix of every tree; equal sizes need equal roots and an empty proof.
pub fn verify_consistency(
    old_size: u64,
    old_root: &Sha256Hash,
    new_size: u64,
    new_root: &Sha256Hash,
    proof: &[Sha256Hash],
) -> Result<(), MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::SizeDecreased {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == 0 {
        return if proof.is_empty() && *old_root == EMPTY_ROOT {
            Ok(())
        } else {
            Err(MerkleError::InvalidProof)
        };
    }
    if old_size == new_size {
        if old_root != new_root {
            return Err(MerkleError::RootMismatch { size: old_size });
        }
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(MerkleError::InvalidProof)
        };
    }
    tlog_tiles::check_tree(
        &to_tlog(proof),
        new_size,
        (*new_root).into(),
        old_size,
        (*old_root).into(),
    )
    .map_err(Into::into)
}

/// A whole tree held in memory (two hashes per leaf): for the verifier, which reads every entry
/// anyway, and for tests. The sealer uses [`crate::tiles::TileWriter`] instead.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    size: u64,
    stored: StoredHashes,
}

/// Hashes in Go tlog "stored hash index" order.
#[derive(Debug, Clone, Default)]
struct StoredHashes(Vec<tlog_tiles::Hash>);

impl tlog_tiles::HashReader for StoredHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.0.get(i).copied())
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

impl MemoryTree {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf given its leaf hash; returns its index.
    pub fn push_leaf_hash(&mut self, leaf: Sha256Hash) -> Result<u64, MerkleError> {
        let new = tlog_tiles::stored_hashes_for_record_hash(self.size, leaf.into(), &self.stored)?;
        self.stored.0.extend(new);
        self.size += 1;
        Ok(self.size - 1)
    }

    /// Appends one leaf given the entry bytes; returns its index.
    pub fn push(&mut self, entry_bytes: &[u8]) -> Result<u64, MerkleError> {
        self.push_leaf_hash(leaf_hash(entry_bytes))
    }

    /// Root of the current tree.
    pub fn root(&self) -> Result<Sha256Hash, MerkleError> {
        self.root_at(self.size)
    }

    /// Root of the tree made of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Sha256Hash, MerkleError> {
        self.check_size(size)?;
        Ok(tlog_tiles::tree_hash(size, &self.stored)?.into())
    }

    /// Leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Result<Sha256Hash, MerkleError> {
        if index >= self.size {
            return Err(MerkleError::IndexOutOfRange {
                index,
                size: self.size,
            });
        }
        let stored = tlog_tiles::stored_hash_index(0, index);
        Ok(tlog_tiles::HashReader::read_hashes(&self.stored, &[stored])?[0].into())
    }

    /// Audit path of leaf `index` in the tree of the first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Proof, MerkleError> {
        self.check_size(size)?;
        if index >= size {
            return Err(MerkleError::IndexOutOfRange { index, size });
        }
        let proof = tlog_tiles::prove_record(size, index, &self.stored)?;
        Ok(proof.into_iter().map(Into::into).collect())
    }

    /// Proof that the first `old_size` leaves are a prefix of the first `new_size` leaves.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Proof, MerkleError> {
        self.check_size(new_size)?;
        if old_size > new_size {
            return Err(MerkleError::SizeDecreased {
                old: old_size,
                new: new_size,
            });
        }
        if old_size == 0 || old_size == new_size {
            return Ok(Vec::new());
        }
        let proof = tlog_tiles::prove_tree(new_size, old_size, &self.stored)?;
        Ok(proof.into_iter().map(Into::into).collect())
    }

    fn check_size(&self, size: u64) -> Result<(), MerkleError> {
        if size > self.size {
            return Err(MerkleError::IndexOutOfRange {
                index: size,
                size: self.size,
            });
        }
        Ok(())
    }
}
