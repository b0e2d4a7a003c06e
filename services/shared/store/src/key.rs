//! Object keys: one validated type shared by every backend so a key means the same file and the same object.

use std::fmt;

use crate::error::StoreError;

/// Top-level directory the local store keeps its in-flight temporary files in; no key may start with it.
pub(crate) const RESERVED_TOP_LEVEL: &str = ".rainlogs-tmp";

/// A validated object key such as `rl/t1/z1/http_requests/2026/01/02/03/0300-abc.ndjson.zst`.
///
/// Keys are `/`-separated, relative, and free of segments that a filesystem would interpret (`.`, `..`, empty),
/// so the local directory store and an S3 bucket hold the same layout.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectKey(String);

/// S3 limits keys to 1024 bytes of UTF-8.
const MAX_KEY_BYTES: usize = 1024;

impl ObjectKey {
    pub fn new(key: impl Into<String>) -> Result<Self, StoreError> {
        let key = key.into();
        match Self::problem(&key) {
            Some(reason) => Err(StoreError::InvalidKey { key, reason }),
            None => Ok(Self(key)),
        }
    }

    fn problem(key: &str) -> Option<&'static str> {
        if key.is_empty() {
            return Some("empty");
        }
        if key.len() > MAX_KEY_BYTES {
            return Some("longer than 1024 bytes");
        }
        if key.starts_with('/') {
            return Some("starts with '/'");
        }
        if key.chars().any(|c| c == '\\' || c.is_control()) {
            return Some("contains a backslash or control character");
        }
        if key
            .split('/')
            .any(|segment| segment.is_empty() || segment == "." || segment == "..")
        {
            return Some("has an empty, '.' or '..' segment");
        }
        if key.split('/').next() == Some(RESERVED_TOP_LEVEL) {
            return Some("uses the local store's reserved temporary directory");
        }
        None
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Appends `suffix` (one or more segments) below this key, e.g. a probe prefix plus a file name.
    pub fn join(&self, suffix: &str) -> Result<Self, StoreError> {
        Self::new(format!("{}/{}", self.0, suffix))
    }
}

impl TryFrom<String> for ObjectKey {
    type Error = StoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<ObjectKey> for String {
    fn from(key: ObjectKey) -> Self {
        key.0
    }
}

impl AsRef<str> for ObjectKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_archive_layout() {
        let key = ObjectKey::new("rl/t1/z1/http_requests/2026/01/02/03/0300-abc.ndjson.zst");
        assert!(key.is_ok());
    }

    #[test]
    fn rejects_keys_that_escape_or_alias_the_layout() {
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/./b",
            "a/../b",
            "..",
            "a/",
            "a\\b",
            "a\nb",
            ".rainlogs-tmp/x",
        ] {
            assert!(ObjectKey::new(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(ObjectKey::new("x".repeat(1025)).is_err());
    }
}
