//! The hash chain over entries (docs/FORMAT.md §5):
//!
//! ```text
//! genesis      = SHA-256("rainlogs chain v1\n" ∥ origin)
//! ChainHash_i  = SHA-256(ChainHash_{i-1} ∥ objectSHA256_i ∥ entryID_i),  ChainHash_{-1} = genesis
//! ```
//!
//! Entry i stores `ChainHash_{i-1}` in its `prev_chain_hash` field, so each entry commits to the
//! whole history before it, and entry ids commit to every field.

use crate::entry::{Entry, EntryBody, EntryError, entry_id};
use crate::hash::Sha256Hash;
use crate::names::Origin;

/// Domain-separation prefix of the genesis hash.
pub const GENESIS_PREFIX: &[u8] = b"rainlogs chain v1\n";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("entry {index}: {source}")]
    Entry { index: u64, source: EntryError },
    #[error("entry {index} belongs to origin {found}, expected {expected}")]
    WrongOrigin {
        index: u64,
        expected: String,
        found: String,
    },
    #[error("expected entry index {expected}, found {found}")]
    WrongIndex { expected: u64, found: u64 },
    #[error("entry {index}: prev_chain_hash {found} does not match chain head {expected}")]
    BrokenLink {
        index: u64,
        expected: Sha256Hash,
        found: Sha256Hash,
    },
}

/// `ChainHash_{-1}` of the log of `origin`.
pub fn genesis(origin: &Origin) -> Sha256Hash {
    Sha256Hash::digest_parts(&[GENESIS_PREFIX, origin.as_str().as_bytes()])
}

/// One chain step.
pub fn chain_hash(
    prev: &Sha256Hash,
    object_sha256: &Sha256Hash,
    entry_id: &Sha256Hash,
) -> Sha256Hash {
    Sha256Hash::digest_parts(&[&prev.0, &object_sha256.0, &entry_id.0])
}

/// An entry with everything derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEntry {
    pub entry: Entry,
    /// The canonical bytes: the Merkle leaf data and the content of the entry bundle slot.
    pub bytes: Vec<u8>,
    /// SHA-256(bytes).
    pub id: Sha256Hash,
    /// `ChainHash_index`.
    pub chain_hash: Sha256Hash,
}

impl SealedEntry {
    /// Decodes stored entry bytes and derives id and chain hash from the entry's own
    /// `prev_chain_hash` (use [`Chain::verify_next`] to also check that link).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EntryError> {
        let entry = Entry::decode(bytes)?;
        let id = entry_id(bytes);
        let chain_hash = chain_hash(
            &entry.prev_chain_hash,
            &entry.body.chain_object_sha256(),
            &id,
        );
        Ok(Self {
            entry,
            bytes: bytes.to_vec(),
            id,
            chain_hash,
        })
    }
}

/// The head of one origin's chain: seals new entries (sealer) or checks a sequence (verifier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    origin: Origin,
    next_index: u64,
    head: Sha256Hash,
}

impl Chain {
    /// An empty log.
    pub fn new(origin: Origin) -> Self {
        let head = genesis(&origin);
        Self {
            origin,
            next_index: 0,
            head,
        }
    }

    /// Continues after `last`, the newest entry already in the log.
    pub fn after(last: &SealedEntry) -> Self {
        Self {
            origin: last.entry.origin.clone(),
            next_index: last.entry.index + 1,
            head: last.chain_hash,
        }
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Index the next entry gets; equals the log (tree) size.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// `ChainHash` of the newest entry (the genesis hash when empty).
    pub fn head(&self) -> Sha256Hash {
        self.head
    }

    /// Seals `body` as the next entry and advances the head.
    pub fn seal(&mut self, body: EntryBody, sealed_at_ns: u64) -> Result<SealedEntry, ChainError> {
        let entry = Entry {
            index: self.next_index,
            origin: self.origin.clone(),
            prev_chain_hash: self.head,
            sealed_at_ns,
            body,
        };
        let bytes = entry.encode().map_err(|source| ChainError::Entry {
            index: entry.index,
            source,
        })?;
        Ok(self.advance(entry, bytes))
    }

    /// Checks that `bytes` is a valid entry that comes next in this chain, and advances.
    pub fn verify_next(&mut self, bytes: &[u8]) -> Result<SealedEntry, ChainError> {
        let entry = Entry::decode(bytes).map_err(|source| ChainError::Entry {
            index: self.next_index,
            source,
        })?;
        if entry.origin != self.origin {
            return Err(ChainError::WrongOrigin {
                index: entry.index,
                expected: self.origin.to_string(),
                found: entry.origin.to_string(),
            });
        }
        if entry.index != self.next_index {
            return Err(ChainError::WrongIndex {
                expected: self.next_index,
                found: entry.index,
            });
        }
        if entry.prev_chain_hash != self.head {
            return Err(ChainError::BrokenLink {
                index: entry.index,
                expected: self.head,
                found: entry.prev_chain_hash,
            });
        }
        Ok(self.advance(entry, bytes.to_vec()))
    }

    fn advance(&mut self, entry: Entry, bytes: Vec<u8>) -> SealedEntry {
        let id = entry_id(&bytes);
        let chain_hash = chain_hash(&self.head, &entry.body.chain_object_sha256(), &id);
        self.head = chain_hash;
        self.next_index += 1;
        SealedEntry {
            entry,
            bytes,
            id,
            chain_hash,
        }
    }
}
