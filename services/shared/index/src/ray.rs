//! A Ray ID (Cloudflare's id of a request: 16 hexadecimal digits, in logs without the `-<colo>`
//! suffix some pages show) and its fingerprint in a frame's Golomb-Rice coded set.

use sha2::{Digest as _, Sha256};

use crate::golomb::M;

/// Domain separation for Ray ID fingerprints.
const FINGERPRINT: &[u8] = b"rainlogs ray v1\n";

/// A Ray ID as 8 bytes (its 16 hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RayId([u8; 8]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "a Ray ID is 16 hexadecimal digits (as in 8d2f61c1fa0b1c3e), optionally followed by -<colo>"
)]
pub struct RayIdError;

impl RayId {
    /// Parses `8d2f61c1fa0b1c3e`, upper or lower case, with or without a `-FRA` colo suffix.
    pub fn parse(text: &str) -> Result<Self, RayIdError> {
        let digits = match text.split_once('-') {
            Some((digits, colo))
                if (3..=4).contains(&colo.len())
                    && colo.bytes().all(|b| b.is_ascii_alphabetic()) =>
            {
                digits
            }
            Some(_) => return Err(RayIdError),
            None => text,
        };
        if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RayIdError);
        }
        let mut bytes = [0u8; 8];
        for (byte, pair) in bytes.iter_mut().zip(digits.as_bytes().chunks_exact(2)) {
            *byte = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
        }
        Ok(Self(bytes))
    }

    pub fn bytes(&self) -> [u8; 8] {
        self.0
    }

    /// The fingerprint in a set of `distinct` Ray IDs: the first 8 bytes of
    /// SHA-256("rainlogs ray v1\n" ∥ the 8 bytes) as a big-endian u64 `h`, reduced to
    /// `[0, distinct × M)` as `(h × distinct × M) >> 64`.
    pub fn fingerprint(&self, distinct: u64) -> u64 {
        let digest = Sha256::new()
            .chain_update(FINGERPRINT)
            .chain_update(self.0)
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let hash = u128::from(u64::from_be_bytes(first));
        let range = u128::from(distinct.max(1)) * u128::from(M);
        // Below 2^64: `hash < 2^64` and the product is shifted down by 64 bits.
        u64::try_from((hash * range) >> 64).unwrap_or(u64::MAX)
    }
}

/// The value of an ASCII hex digit (checked by the caller).
fn hex_value(digit: u8) -> u8 {
    char::from(digit)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
        .unwrap_or(0)
}

impl std::fmt::Display for RayId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ray_ids_are_sixteen_hex_digits_with_an_optional_colo() {
        let ray = RayId::parse("8d2f61c1fa0b1c3e").expect("ray");
        assert_eq!(ray.to_string(), "8d2f61c1fa0b1c3e");
        assert_eq!(RayId::parse("8D2F61C1FA0B1C3E"), Ok(ray));
        assert_eq!(RayId::parse("8d2f61c1fa0b1c3e-FRA"), Ok(ray));
        for bad in [
            "",
            "8d2f61c1fa0b1c3",
            "8d2f61c1fa0b1c3e0",
            "8d2f61c1fa0b1c3g",
            "8d2f61c1fa0b1c3e-",
            "8d2f61c1fa0b1c3e-F1A",
            "+d2f61c1fa0b1c3e",
            "8d2f61c1fa0b1c3é",
        ] {
            assert_eq!(RayId::parse(bad), Err(RayIdError), "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_fall_in_the_sets_range() {
        let ray = RayId::parse("8d2f61c1fa0b1c3e").expect("ray");
        for distinct in [0, 1, 7, 5_000] {
            assert!(ray.fingerprint(distinct) < distinct.max(1) * M);
        }
        // SHA-256("rainlogs ray v1\n" ∥ 8d 2f 61 c1 fa 0b 1c 3e) begins with these 8 bytes.
        let digest = Sha256::new()
            .chain_update(b"rainlogs ray v1\n")
            .chain_update([0x8d, 0x2f, 0x61, 0xc1, 0xfa, 0x0b, 0x1c, 0x3e])
            .finalize();
        let h = u128::from(u64::from_be_bytes(digest[..8].try_into().expect("8")));
        assert_eq!(u128::from(ray.fingerprint(1)), (h * u128::from(M)) >> 64);
    }
}
