//! The values callers pass in and get back, shared by every backend.

use std::pin::Pin;
use std::task::{Context, Poll};

use time::OffsetDateTime;
use tokio::io::{AsyncRead, ReadBuf};

use crate::digest::Sha256Hash;

#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// SHA-256 of the content when the caller knows it up front; the store refuses to store bytes that hash
    /// differently. Without it the store computes the hash while streaming.
    pub sha256: Option<Sha256Hash>,
    /// Object Lock COMPLIANCE retain-until, applied where the bucket has Object Lock (rounded up to a whole
    /// second, never down). Ignored by the local directory store and by buckets without Object Lock; the
    /// posture reports that.
    pub retain_until: Option<OffsetDateTime>,
    pub content_type: Option<String>,
}

/// Whether a put wrote the object or found the same bytes already stored (an idempotent retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Stored,
    AlreadyPresent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    pub presence: Presence,
    pub sha256: Sha256Hash,
    pub size: u64,
    /// Provider version id when the bucket is versioned (the one written, or the existing one).
    pub version_id: Option<String>,
    /// Set by the replicated store when one provider failed and the key waits in the repair queue.
    pub pending_repair: Option<Side>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LockMode {
    Compliance,
    Governance,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectLock {
    pub mode: LockMode,
    #[serde(with = "time::serde::rfc3339")]
    pub retain_until: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    /// Full-object SHA-256 as the provider verified and stored it. `None` for multipart uploads (S3 keeps only a
    /// hash of part hashes for SHA-256) and for the local store, which keeps no side files.
    pub sha256: Option<Sha256Hash>,
    pub lock: Option<ObjectLock>,
    pub version_id: Option<String>,
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// The key exactly as the provider lists it. Deliberately a plain string: a planted object whose name is
    /// not a valid `ObjectKey` must still be seen by the verifier.
    pub key: String,
    pub size: u64,
    pub last_modified: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Number of versions removed (1 on an unversioned bucket or the local store).
    Deleted {
        versions: usize,
    },
    NotFound,
}

/// A streaming object body. Reads pull from the provider as they go; nothing is buffered whole.
pub struct ObjectReader {
    pub size: Option<u64>,
    pub version_id: Option<String>,
    body: Pin<Box<dyn AsyncRead + Send>>,
}

impl ObjectReader {
    pub(crate) fn new(
        size: Option<u64>,
        version_id: Option<String>,
        body: Pin<Box<dyn AsyncRead + Send>>,
    ) -> Self {
        Self {
            size,
            version_id,
            body,
        }
    }
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader")
            .field("size", &self.size)
            .field("version_id", &self.version_id)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for ObjectReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.body.as_mut().poll_read(cx, buf)
    }
}

/// One of two storage providers.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Primary,
    Secondary,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Primary => Side::Secondary,
            Side::Secondary => Side::Primary,
        }
    }
}
