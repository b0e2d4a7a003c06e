//! The 32-byte SHA-256 value used everywhere in the format, with the text forms the format uses.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest as _, Sha256};

/// A SHA-256 output. Shown as lowercase hex; checkpoints carry it as base64.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256Hash(pub [u8; 32]);

/// A hex or base64 string that is not exactly one SHA-256 value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 value: {0}")]
pub struct HashParseError(String);

impl Sha256Hash {
    /// 32 zero bytes: the "no object" value in the chain formula and unused hash fields.
    pub const ZERO: Self = Self([0; 32]);

    /// SHA-256 of `data`.
    pub fn digest(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// SHA-256 of the concatenation of `parts`.
    pub fn digest_parts(parts: &[&[u8]]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Self(hasher.finalize().into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 32]
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 64 lowercase hex digits (the only form this crate writes).
    pub fn from_hex(text: &str) -> Result<Self, HashParseError> {
        let is_lower_hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
        if text.len() != 64 || !text.bytes().all(is_lower_hex) {
            return Err(HashParseError(text.to_owned()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(|_| HashParseError(text.to_owned()))?;
        Ok(Self(out))
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// Parses canonical padded standard base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, HashParseError> {
        let bytes = BASE64
            .decode(text)
            .map_err(|_| HashParseError(text.to_owned()))?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| HashParseError(text.to_owned()))?;
        Ok(Self(array))
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

impl FromStr for Sha256Hash {
    type Err = HashParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

impl From<[u8; 32]> for Sha256Hash {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl From<tlog_tiles::Hash> for Sha256Hash {
    fn from(hash: tlog_tiles::Hash) -> Self {
        Self(hash.0)
    }
}

impl From<Sha256Hash> for tlog_tiles::Hash {
    fn from(hash: Sha256Hash) -> Self {
        tlog_tiles::Hash(hash.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_base64_round_trip_and_reject_other_forms() {
        let h = Sha256Hash::digest(b"abc");
        assert_eq!(
            h.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Sha256Hash::from_hex(&h.to_hex()), Ok(h));
        assert_eq!(Sha256Hash::from_base64(&h.to_base64()), Ok(h));
        assert!(Sha256Hash::from_hex(&h.to_hex().to_uppercase()).is_err());
        assert!(Sha256Hash::from_hex(&h.to_hex()[..62]).is_err());
        assert!(Sha256Hash::from_base64(h.to_base64().trim_end_matches('=')).is_err());
    }
}
