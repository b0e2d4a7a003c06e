//! rainlogs-integrity: the tamper-evidence core shared by the archiver, the sealer and the
//! offline verifier. Pure functions and in-memory state only: no I/O, no async.
//!
//! The byte-level format is specified in `docs/FORMAT.md`; golden files under `tests/golden/`
//! freeze it.
//!
//! - [`entry`]: one canonical, versioned record per window (archive, empty, gap, prune, key).
//! - [`chain`]: `ChainHash_i = SHA-256(ChainHash_{i-1} ∥ objectSHA256_i ∥ entryID_i)`.
//! - [`merkle`]: RFC 6962 tree over entries, inclusion and consistency proofs.
//! - [`checkpoint`], [`keys`]: C2SP signed-note checkpoints with Ed25519 keys.
//! - [`tiles`]: C2SP tlog-tiles layout, incremental tile writer, proofs from tiles.
//! - [`layout`]: object keys in the bucket.
//! - [`framing`]: multi-frame zstd archives with streaming hashes and record counts.

pub mod chain;
pub mod checkpoint;
pub mod entry;
pub mod framing;
pub mod hash;
pub mod keys;
pub mod layout;
pub mod merkle;
pub mod names;
pub mod tiles;

pub use chain::{Chain, ChainError, SealedEntry, chain_hash, genesis};
pub use checkpoint::{
    Checkpoint, CheckpointError, VerifiedCheckpoint, check_consistent, open_checkpoint,
    sign_checkpoint, sign_consistent_checkpoint,
};
pub use entry::{
    ArchiveRecord, CollectionMethod, EmptyRecord, Entry, EntryBody, EntryError, EntryKind,
    GapReason, GapRecord, IndexRecord, KeyRecord, ObjectRef, PruneRecord, Sampling,
    ShortfallRecord, entry_id,
};
pub use framing::{
    ArchiveDigest, ArchiveReader, ArchiveWriter, FrameInfo, FrameObserver, FrameScanner,
};
pub use hash::Sha256Hash;
pub use keys::{KeyError, NoteSigningKey, NoteVerifierKey};
pub use layout::{BucketPrefix, LayoutError};
pub use merkle::{MemoryTree, MerkleError, Proof, leaf_hash, verify_consistency, verify_inclusion};
pub use names::{Dataset, Name, NameError, Origin, Window};
pub use tiles::{TileError, TileFile, TileId, TileKind, TileProof, TileSet, TileWriter};
