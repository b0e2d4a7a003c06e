//! The log entry: one canonical, versioned, byte-exact record per window (docs/FORMAT.md §4).
//!
//! The encoding is a fixed sequence of fields. Every field is present in every kind; fields that
//! do not apply to a kind hold zero / the empty string, and the decoder rejects anything else.
//! Because the layout has no optional parts and every string carries an exact length, one
//! [`Entry`] has exactly one encoding, and the decoder re-encodes to prove it.

mod codec;
mod kinds;

pub use codec::{annotate, decode, encode};
pub use kinds::{CollectionMethod, GapReason, Sampling};

use crate::hash::Sha256Hash;
use crate::keys::NoteVerifierKey;
use crate::names::{Dataset, Name, NameError, Origin, Window};

/// ASCII "RLEN": the first four bytes of every entry.
pub const ENTRY_MAGIC: [u8; 4] = *b"RLEN";
/// The only entry version this crate reads and writes.
pub const ENTRY_VERSION: u8 = 1;
/// Upper bound of an encoded entry: C2SP entry bundles prefix each entry with a uint16 length.
pub const MAX_ENTRY_LEN: usize = u16::MAX as usize;
/// Longest object key or object version string.
pub const MAX_OBJECT_TEXT_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("entry is truncated (needed {needed} more bytes for {field})")]
    Truncated { field: &'static str, needed: usize },
    #[error("entry does not start with the RLEN magic")]
    BadMagic,
    #[error("unsupported entry version {0}")]
    UnsupportedVersion(u8),
    #[error("unknown entry kind {0}")]
    UnknownKind(u8),
    #[error("{0} trailing bytes after the entry")]
    TrailingBytes(usize),
    #[error("field {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("field {field} must be zero/empty for a {kind} entry")]
    NotApplicable {
        field: &'static str,
        kind: &'static str,
    },
    #[error("entry is {0} bytes, more than the 65535-byte limit")]
    TooLong(usize),
    #[error("entry bytes are not in canonical form")]
    NonCanonical,
    #[error(transparent)]
    Name(#[from] NameError),
}

/// What a window ended as, or a log-maintenance event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    Archive = 1,
    Empty = 2,
    Gap = 3,
    Prune = 4,
    Key = 5,
    /// The log's tenant was erased (GDPR Art. 17): no window after it is collected.
    Erasure = 6,
    /// Records that reached RainLogs after their window's entry was sealed (pushed sources):
    /// an archive object that adds to a window already accounted for.
    Late = 7,
    /// The source counted more records for a window than the log holds for it (pushed sources
    /// can drop records for good): the window is incomplete, with the source's count.
    Shortfall = 8,
    /// The search index object of an earlier `archive` or `late` entry's object.
    Index = 9,
}

impl EntryKind {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Result<Self, EntryError> {
        Ok(match code {
            1 => Self::Archive,
            2 => Self::Empty,
            3 => Self::Gap,
            4 => Self::Prune,
            5 => Self::Key,
            6 => Self::Erasure,
            7 => Self::Late,
            8 => Self::Shortfall,
            9 => Self::Index,
            other => return Err(EntryError::UnknownKind(other)),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Archive => "archive",
            Self::Empty => "empty",
            Self::Gap => "gap",
            Self::Prune => "prune",
            Self::Key => "key",
            Self::Erasure => "erasure",
            Self::Late => "late",
            Self::Shortfall => "shortfall",
            Self::Index => "index",
        }
    }

    /// Whether entries of this kind account for a window of a dataset (coverage checks).
    pub fn covers_window(self) -> bool {
        matches!(self, Self::Archive | Self::Empty | Self::Gap)
    }
}

/// Where an archive object lives in the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    /// Object key, printable ASCII without spaces, 1-1024 bytes.
    pub key: String,
    /// Provider version id (empty when the bucket is unversioned), printable ASCII, ≤ 1024 bytes.
    pub version: String,
}

/// A window whose records were stored as one archive object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRecord {
    pub dataset: Dataset,
    pub window: Window,
    pub method: CollectionMethod,
    pub sampling: Sampling,
    pub object: ObjectRef,
    /// Size of the stored (compressed) object in bytes; at least 1.
    pub stored_size: u64,
    /// SHA-256 of the stored object bytes.
    pub stored_sha256: Sha256Hash,
    /// SHA-256 of the uncompressed NDJSON content.
    pub content_sha256: Sha256Hash,
    /// Number of records (non-empty lines); at least 1 (a window with none is an `empty` entry).
    pub record_count: u64,
    /// The object may not be deleted before this time (unix ns); non-zero.
    pub retain_until_ns: u64,
}

/// A window the source answered for and that held no records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmptyRecord {
    pub dataset: Dataset,
    pub window: Window,
    pub method: CollectionMethod,
    pub sampling: Sampling,
}

/// A window for which no data could be collected, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapRecord {
    pub dataset: Dataset,
    pub window: Window,
    pub method: CollectionMethod,
    pub reason: GapReason,
}

/// A window an earlier `archive` or `empty` entry accounts for, for which the source counted
/// more records than the log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortfallRecord {
    pub dataset: Dataset,
    pub window: Window,
    pub method: CollectionMethod,
    /// Records the source counted for the window (an estimate where its counts are sampled);
    /// more than the log held for the window when the entry was sealed.
    pub source_count: u64,
}

impl ShortfallRecord {
    /// How far below the source's count a window may hold records and still count as whole
    /// (docs/FORMAT.md §4.2): the larger of 5 records and 5 % of the count, as the source's
    /// counts are sampled estimates and requests near a window's edge are counted by another
    /// clock.
    pub fn tolerance(source_count: u64) -> u64 {
        (source_count / 20).max(5)
    }

    /// Whether a window holding `held` records is short of this count beyond the tolerance.
    pub fn is_short_of(&self, held: u64) -> bool {
        self.source_count > held.saturating_add(Self::tolerance(self.source_count))
    }
}

/// The deletion of an archive object logged by an earlier `archive` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneRecord {
    /// Dataset of the pruned archive.
    pub dataset: Dataset,
    /// The object that was deleted (same key and version as the target entry).
    pub object: ObjectRef,
    /// Log index of the `archive` entry whose object was deleted; below this entry's index.
    pub target_index: u64,
    /// Entry id of that entry.
    pub target_entry_id: Sha256Hash,
    /// Retention policy that allowed the deletion.
    pub policy: Name,
    /// When the object was deleted (unix ns); non-zero.
    pub pruned_at_ns: u64,
}

/// The search index object (docs/FORMAT.md §12) of the object of an earlier `archive` or `late`
/// entry. It is kept, and deleted, with that object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRecord {
    /// Dataset and window of the indexed entry.
    pub dataset: Dataset,
    pub window: Window,
    /// The index object: its key is the indexed object's key with `.index` in place of
    /// `.ndjson.zst`.
    pub object: ObjectRef,
    /// Size and SHA-256 of the index object's bytes.
    pub stored_size: u64,
    pub stored_sha256: Sha256Hash,
    /// Log index and entry id of the indexed `archive` or `late` entry; below this entry's index.
    pub target_index: u64,
    pub target_entry_id: Sha256Hash,
    /// The indexed entry's retain-until: the index goes with its archive.
    pub retain_until_ns: u64,
}

/// Announces the key that signs checkpoints from now on (key rotation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub verifier_key: NoteVerifierKey,
}

/// The kind-specific part of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryBody {
    Archive(ArchiveRecord),
    Empty(EmptyRecord),
    Gap(GapRecord),
    Prune(PruneRecord),
    Key(KeyRecord),
    /// The tenant was erased at the entry's `sealed_at_ns`; the archives the retention duty
    /// keeps stay until their retain-until and are pruned then, like any other.
    Erasure,
    /// Records of a window already accounted for that arrived after it was sealed; the record's
    /// window names that window, and its object is checked and pruned like an archive's.
    Late(ArchiveRecord),
    /// A window short of the source's count; it names the window as a late entry does.
    Shortfall(ShortfallRecord),
    /// The search index of an archive or late object.
    Index(IndexRecord),
}

impl EntryBody {
    pub fn kind(&self) -> EntryKind {
        match self {
            Self::Archive(_) => EntryKind::Archive,
            Self::Empty(_) => EntryKind::Empty,
            Self::Gap(_) => EntryKind::Gap,
            Self::Prune(_) => EntryKind::Prune,
            Self::Key(_) => EntryKind::Key,
            Self::Erasure => EntryKind::Erasure,
            Self::Late(_) => EntryKind::Late,
            Self::Shortfall(_) => EntryKind::Shortfall,
            Self::Index(_) => EntryKind::Index,
        }
    }

    /// The dataset the entry belongs to (`None` for key entries).
    pub fn dataset(&self) -> Option<&Dataset> {
        match self {
            Self::Archive(r) | Self::Late(r) => Some(&r.dataset),
            Self::Empty(r) => Some(&r.dataset),
            Self::Gap(r) => Some(&r.dataset),
            Self::Prune(r) => Some(&r.dataset),
            Self::Shortfall(r) => Some(&r.dataset),
            Self::Index(r) => Some(&r.dataset),
            Self::Key(_) | Self::Erasure => None,
        }
    }

    /// The window this entry accounts for (archive, empty and gap entries only: a late entry
    /// and a shortfall entry name a window another entry accounts for).
    pub fn window(&self) -> Option<Window> {
        match self {
            Self::Archive(r) => Some(r.window),
            Self::Empty(r) => Some(r.window),
            Self::Gap(r) => Some(r.window),
            Self::Late(_)
            | Self::Shortfall(_)
            | Self::Index(_)
            | Self::Prune(_)
            | Self::Key(_)
            | Self::Erasure => None,
        }
    }

    /// The window the entry is about: the one it accounts for (archive, empty, gap) or the one
    /// it adds to, reports on or indexes (late, shortfall, index).
    pub fn named_window(&self) -> Option<Window> {
        match self {
            Self::Late(r) => Some(r.window),
            Self::Shortfall(r) => Some(r.window),
            Self::Index(r) => Some(r.window),
            _ => self.window(),
        }
    }

    /// The archive object the entry holds (archive and late entries).
    pub fn archive(&self) -> Option<&ArchiveRecord> {
        match self {
            Self::Archive(r) | Self::Late(r) => Some(r),
            _ => None,
        }
    }

    /// The `objectSHA256` term of the chain formula: the stored-bytes hash of the object an
    /// archive, late or index entry holds, 32 zero bytes for every other kind.
    pub fn chain_object_sha256(&self) -> Sha256Hash {
        match self {
            Self::Archive(r) | Self::Late(r) => r.stored_sha256,
            Self::Index(r) => r.stored_sha256,
            _ => Sha256Hash::ZERO,
        }
    }
}

/// One sealed log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log (0-based); equals the Merkle leaf index.
    pub index: u64,
    pub origin: Origin,
    /// `ChainHash` of the previous entry (the genesis hash for index 0).
    pub prev_chain_hash: Sha256Hash,
    /// When the sealer sealed the entry (unix ns); non-zero.
    pub sealed_at_ns: u64,
    pub body: EntryBody,
}

impl Entry {
    pub fn kind(&self) -> EntryKind {
        self.body.kind()
    }

    /// The canonical bytes (validates every field first).
    pub fn encode(&self) -> Result<Vec<u8>, EntryError> {
        encode(self)
    }

    /// Strict decode: see [`decode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, EntryError> {
        decode(bytes)
    }
}

/// Entry id = SHA-256 of the encoded entry.
pub fn entry_id(encoded: &[u8]) -> Sha256Hash {
    Sha256Hash::digest(encoded)
}
