//! One error type for every backend. Callers branch on three questions: retry it (`is_retryable`), raise an
//! integrity alarm (`Incident`, `RetentionRefused`), or fix configuration/permissions (everything else).

use std::fmt;
use std::io;
use std::path::PathBuf;

use time::OffsetDateTime;

use crate::digest::Sha256Hash;

/// A put found its key already holding different bytes. Never resolved by overwriting: the caller emits a
/// metric and an audit event, and a human looks at both objects.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Incident {
    pub key: String,
    /// Which provider holds the conflicting object ("local", "s3://bucket", "primary: ...").
    pub provider: String,
    pub existing_sha256: Sha256Hash,
    pub existing_size: u64,
    pub attempted_sha256: Sha256Hash,
    pub attempted_size: u64,
}

impl fmt::Display for Incident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "integrity incident on {}: {} already holds sha256 {} ({} bytes); refused to overwrite it with sha256 {} ({} bytes)",
            self.provider,
            self.key,
            self.existing_sha256,
            self.existing_size,
            self.attempted_sha256,
            self.attempted_size
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },

    #[error("invalid store configuration: {0}")]
    Config(String),

    /// The key names a directory of other keys. File-backed providers (the local store, SeaweedFS) cannot hold
    /// `a/b` and `a/b/c` at once; S3 can. Permanent: the key layout must avoid it.
    #[error(
        "key {key} is a directory prefix of other keys on this provider and cannot hold an object"
    )]
    KeyIsPrefix { key: String },

    #[error("object {key} not found")]
    NotFound { key: String },

    #[error("{0}")]
    Incident(Box<Incident>),

    /// The bytes read from the caller do not hash to the sha256 the caller declared; nothing was stored.
    #[error(
        "content of {key} hashes to sha256 {actual}, not the declared {expected}; nothing was stored"
    )]
    ChecksumMismatch {
        key: String,
        expected: Sha256Hash,
        actual: Sha256Hash,
    },

    /// The provider refused the bytes because they did not match `x-amz-checksum-sha256` (corrupted in transit).
    #[error("provider rejected the checksum of {key} ({code}): {detail}")]
    ChecksumRejected {
        key: String,
        code: String,
        detail: String,
    },

    /// Object Lock refused a delete. For the caller this is a bug alarm (something tried to delete before
    /// retain-until), never something to retry.
    #[error(
        "object lock refuses deleting {key} (version {version_id:?}, retain-until {retain_until:?}): {detail}"
    )]
    RetentionRefused {
        key: String,
        version_id: Option<String>,
        retain_until: Option<OffsetDateTime>,
        detail: String,
    },

    #[error("access denied: {operation} {key}: {detail}")]
    AccessDenied {
        operation: &'static str,
        key: String,
        detail: String,
    },

    /// Network trouble, timeouts, 5xx or throttling: the same call may succeed later.
    #[error("provider unavailable: {operation} {key}: {detail}")]
    Unavailable {
        operation: &'static str,
        key: String,
        detail: String,
    },

    /// A permanent refusal the other variants do not name (a 4xx such as a missing bucket).
    #[error("provider refused {operation} {key} (HTTP {status:?}, {code:?}): {detail}")]
    Provider {
        operation: &'static str,
        key: String,
        status: Option<u16>,
        code: Option<String>,
        detail: String,
    },

    /// Reading the caller's byte stream failed; nothing was stored.
    #[error("reading the content for {key} failed: {source}")]
    Source { key: String, source: io::Error },

    #[error("local store I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },

    #[error("both providers failed; primary: {primary}; secondary: {secondary}")]
    Replication {
        primary: Box<StoreError>,
        secondary: Box<StoreError>,
    },

    #[error("repair queue {path}: {detail}")]
    RepairQueue { path: PathBuf, detail: String },
}

impl StoreError {
    /// True when repeating the same call later can succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Unavailable { .. } => true,
            StoreError::Io { source, .. } => !matches!(
                source.kind(),
                io::ErrorKind::PermissionDenied
                    | io::ErrorKind::ReadOnlyFilesystem
                    | io::ErrorKind::Unsupported
            ),
            StoreError::RepairQueue { .. } => true,
            StoreError::Replication { primary, secondary } => {
                primary.is_retryable() || secondary.is_retryable()
            }
            _ => false,
        }
    }

    /// Integrity alarms: a conflicting object under a key, or Object Lock refusing a delete.
    pub fn is_alarm(&self) -> bool {
        match self {
            StoreError::Incident(_) | StoreError::RetentionRefused { .. } => true,
            StoreError::Replication { primary, secondary } => {
                primary.is_alarm() || secondary.is_alarm()
            }
            _ => false,
        }
    }

    pub fn incident(&self) -> Option<&Incident> {
        match self {
            StoreError::Incident(incident) => Some(incident),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn classifies_retryable_and_alarm_errors() {
        let unavailable = StoreError::Unavailable {
            operation: "put",
            key: "k".into(),
            detail: "connection refused".into(),
        };
        let denied = StoreError::AccessDenied {
            operation: "put",
            key: "k".into(),
            detail: "403".into(),
        };
        assert!(unavailable.is_retryable());
        assert!(!denied.is_retryable());
        let both = StoreError::Replication {
            primary: Box::new(denied),
            secondary: Box::new(unavailable),
        };
        assert!(both.is_retryable());
        let locked = StoreError::RetentionRefused {
            key: "k".into(),
            version_id: None,
            retain_until: None,
            detail: "AccessDenied".into(),
        };
        assert!(locked.is_alarm() && !locked.is_retryable());
    }
}
