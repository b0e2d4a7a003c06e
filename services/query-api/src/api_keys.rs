//! API key material: `rl_<key id>_<secret>`. The key id is public and indexes the key; only a
//! keyed BLAKE3 digest of the secret is stored, so a leaked database cannot be replayed against
//! the API, and checking a key costs one hash (no password hashing on the request path).

use rand::RngCore as _;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

const PREFIX: &str = "rl_";
/// 8 random bytes as hex: enough to make collisions irrelevant, short enough to read in logs.
const KEY_ID_HEX: usize = 16;
/// 32 random bytes as hex.
const SECRET_HEX: usize = 64;
const DIGEST_CONTEXT: &[u8] = b"rainlogs api key v1\0";

#[derive(Debug, thiserror::Error)]
#[error("secrets.api_key_digest_key must be 32 bytes as 64 hex characters")]
pub struct BadDigestKey;

/// Computes and checks the stored digest of API keys (`secrets.api_key_digest_key`).
#[derive(Clone)]
pub struct KeyDigester {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for KeyDigester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyDigester(..)")
    }
}

/// A freshly minted key. `token` is shown to the client exactly once.
pub struct MintedKey {
    pub key_id: String,
    pub token: Zeroizing<String>,
    pub digest: Vec<u8>,
}

/// A presented key split into its parts (format checked, not yet authenticated).
pub struct PresentedKey<'a> {
    pub key_id: &'a str,
    secret: &'a str,
}

impl KeyDigester {
    pub fn from_hex(text: &str) -> Result<Self, BadDigestKey> {
        let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| BadDigestKey)?);
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| BadDigestKey)?;
        Ok(Self {
            key: Zeroizing::new(key),
        })
    }

    fn digest(&self, key_id: &str, secret: &str) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(DIGEST_CONTEXT);
        hasher.update(key_id.as_bytes());
        hasher.update(b"\0");
        hasher.update(secret.as_bytes());
        *hasher.finalize().as_bytes()
    }

    pub fn mint(&self) -> MintedKey {
        let mut id = [0u8; KEY_ID_HEX / 2];
        let mut secret = Zeroizing::new([0u8; SECRET_HEX / 2]);
        rand::rng().fill_bytes(&mut id);
        rand::rng().fill_bytes(secret.as_mut());
        let key_id = hex::encode(id);
        let secret = Zeroizing::new(hex::encode(secret.as_ref()));
        let digest = self.digest(&key_id, &secret).to_vec();
        MintedKey {
            token: Zeroizing::new(format!("{PREFIX}{key_id}_{}", secret.as_str())),
            key_id,
            digest,
        }
    }

    /// Whether `presented` matches `stored`, in time independent of where they differ.
    pub fn matches(&self, presented: &PresentedKey<'_>, stored: &[u8]) -> bool {
        let digest = self.digest(presented.key_id, presented.secret);
        bool::from(digest.as_slice().ct_eq(stored))
    }
}

/// Splits `rl_<16 hex>_<64 hex>`; anything else is not an API key.
pub fn parse(token: &str) -> Option<PresentedKey<'_>> {
    let rest = token.strip_prefix(PREFIX)?;
    let (key_id, secret) = rest.split_once('_')?;
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    (lower_hex(key_id, KEY_ID_HEX) && lower_hex(secret, SECRET_HEX))
        .then_some(PresentedKey { key_id, secret })
}

/// Whether a string has the shape of a key id (path parameters).
pub fn is_key_id(text: &str) -> bool {
    text.len() == KEY_ID_HEX
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digester(byte: u8) -> KeyDigester {
        KeyDigester::from_hex(&hex::encode([byte; 32])).unwrap()
    }

    #[test]
    fn a_minted_key_parses_and_matches_its_digest_only() {
        let d = digester(1);
        let minted = d.mint();
        assert!(minted.token.starts_with("rl_"));
        assert_eq!(minted.token.len(), 3 + 16 + 1 + 64);
        let presented = parse(&minted.token).unwrap();
        assert_eq!(presented.key_id, minted.key_id);
        assert!(d.matches(&presented, &minted.digest));
        assert!(!digester(2).matches(&presented, &minted.digest), "keyed");
        let other = d.mint();
        assert!(!d.matches(&presented, &other.digest));
        assert_ne!(minted.key_id, other.key_id);
    }

    #[test]
    fn malformed_tokens_are_not_keys() {
        for bad in [
            "",
            "rl_",
            "rl_abc_def",
            "xx_0123456789abcdef_",
            &format!("rl_0123456789ABCDEF_{}", "a".repeat(64)),
            &format!("rl_0123456789abcdef_{}", "a".repeat(63)),
            &format!("rl_0123456789abcdef_{}_", "a".repeat(64)),
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
        assert!(KeyDigester::from_hex("abcd").is_err());
    }
}
