//! SHA-256 digests as they travel between the caller, the local store and S3 (`x-amz-checksum-sha256` is base64).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

/// A SHA-256 digest of stored object bytes. Displays and serialises as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Hash(pub [u8; 32]);

impl Sha256Hash {
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Self(out))
    }

    /// The form S3 expects in `x-amz-checksum-sha256`.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// Parses a full-object S3 checksum. Composite multipart checksums (`<base64>-<parts>`) are a hash of part
    /// hashes, not of the object, so they yield `None`.
    pub fn from_s3_checksum(text: &str) -> Option<Self> {
        if text.contains('-') {
            return None;
        }
        let bytes = BASE64.decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
}

impl From<[u8; 32]> for Sha256Hash {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for Sha256Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Hash({})", self.to_hex())
    }
}

impl serde::Serialize for Sha256Hash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Sha256Hash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_hex(&text).ok_or_else(|| serde::de::Error::custom("expected 64 hex characters"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_known_digest_of_hello() {
        let hash = Sha256Hash::of(b"hello");
        assert_eq!(
            hash.to_hex(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(
            hash.to_base64(),
            "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
        );
        assert_eq!(Sha256Hash::from_s3_checksum(&hash.to_base64()), Some(hash));
        assert_eq!(Sha256Hash::from_hex(&hash.to_hex()), Some(hash));
    }

    #[test]
    fn composite_multipart_checksums_are_not_object_hashes() {
        assert_eq!(
            Sha256Hash::from_s3_checksum("gzKREhG1RwKmrTCIEhem1Qh4SLYssbnaSjmwJsKJ6aA=-2"),
            None
        );
    }
}
