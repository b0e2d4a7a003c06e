//! Cloudflare API tokens at rest: XChaCha20-Poly1305 bound to the zone they belong to.
//!
//! Byte layout of a sealed token: `nonce (24 bytes) || ciphertext || tag (16 bytes)`, where the
//! ciphertext is the UTF-8 token and the associated data is `"<tenant>/<zone_id>"`. Binding the
//! AAD to tenant and zone means a sealed token copied onto another zone's event fails to open.
//! Keys are 32 bytes, configured as 64 hex characters; a key's id is derived from the key itself
//! (see [`TokenKey::id`]) so a sealed token always names the key that can open it.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the token encryption key must be {KEY_LEN} bytes as 64 hex characters")]
    BadKey,
    #[error("the token was sealed with key {wanted:?}, which this process does not hold")]
    UnknownKey { wanted: String },
    #[error("the sealed token is too short to hold a nonce and a tag")]
    Truncated,
    #[error(
        "the sealed token does not open: wrong key, or it belongs to another tenant/zone, or it was altered"
    )]
    Rejected,
    #[error("the opened token is not UTF-8")]
    NotText,
}

/// One token-encryption key and its id.
#[derive(Clone)]
pub struct TokenKey {
    key: Zeroizing<[u8; KEY_LEN]>,
    id: String,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl TokenKey {
    pub fn new(key: [u8; KEY_LEN]) -> Self {
        let id = key_id(&key);
        Self {
            key: Zeroizing::new(key),
            id,
        }
    }

    /// Parses the configured form: 64 hex characters (surrounding whitespace from files ignored).
    pub fn from_hex(text: &str) -> Result<Self, SealError> {
        let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| SealError::BadKey)?);
        let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| SealError::BadKey)?;
        Ok(Self::new(key))
    }

    /// `tk-` and the first 8 bytes of SHA-256("rainlogs token key\0" || key), hex. It names the
    /// key without revealing it, so rotation can keep several keys and pick the right one.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn seal(&self, tenant: &str, zone_id: &str, token: &str) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&*self.key).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated_data(tenant, zone_id);
        // Encryption with a valid key and nonce length only fails on absurd message sizes.
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: token.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    pub fn open(
        &self,
        tenant: &str,
        zone_id: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<String>, SealError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Truncated);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new((&*self.key).into());
        let aad = associated_data(tenant, zone_id);
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: aad.as_bytes(),
                    },
                )
                .map_err(|_| SealError::Rejected)?,
        );
        let text = std::str::from_utf8(&plain).map_err(|_| SealError::NotText)?;
        Ok(Zeroizing::new(text.to_owned()))
    }
}

/// The keys a process can open tokens with: the current one first, older ones for rotation.
#[derive(Clone, Debug, Default)]
pub struct TokenKeyring {
    keys: Vec<TokenKey>,
}

impl TokenKeyring {
    pub fn new(keys: Vec<TokenKey>) -> Self {
        Self { keys }
    }

    /// The key new tokens are sealed with.
    pub fn current(&self) -> Option<&TokenKey> {
        self.keys.first()
    }

    pub fn open(
        &self,
        key_id: &str,
        tenant: &str,
        zone_id: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<String>, SealError> {
        self.keys
            .iter()
            .find(|k| k.id() == key_id)
            .ok_or_else(|| SealError::UnknownKey {
                wanted: key_id.to_owned(),
            })?
            .open(tenant, zone_id, sealed)
    }
}

fn associated_data(tenant: &str, zone_id: &str) -> String {
    format!("{tenant}/{zone_id}")
}

fn key_id(key: &[u8; KEY_LEN]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"rainlogs token key\0");
    hasher.update(key);
    format!("tk-{}", hex::encode(&hasher.finalize()[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> TokenKey {
        TokenKey::new([byte; KEY_LEN])
    }

    #[test]
    fn a_sealed_token_opens_with_its_key_and_zone() {
        let k = key(7);
        let sealed = k.seal("acme", "zone1", "cfut_secret");
        assert_eq!(sealed.len(), NONCE_LEN + "cfut_secret".len() + TAG_LEN);
        assert_eq!(
            k.open("acme", "zone1", &sealed).unwrap().as_str(),
            "cfut_secret"
        );
    }

    #[test]
    fn nonces_differ_so_equal_tokens_do_not_look_equal() {
        let k = key(7);
        assert_ne!(k.seal("a", "z", "t"), k.seal("a", "z", "t"));
    }

    #[test]
    fn another_zone_tenant_or_key_cannot_open_it() {
        let k = key(7);
        let sealed = k.seal("acme", "zone1", "cfut_secret");
        assert_eq!(k.open("acme", "zone2", &sealed), Err(SealError::Rejected));
        assert_eq!(k.open("evil", "zone1", &sealed), Err(SealError::Rejected));
        assert_eq!(
            key(8).open("acme", "zone1", &sealed),
            Err(SealError::Rejected)
        );
    }

    #[test]
    fn tampering_and_truncation_are_detected() {
        let k = key(7);
        let mut sealed = k.seal("acme", "zone1", "cfut_secret");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(k.open("acme", "zone1", &sealed), Err(SealError::Rejected));
        assert_eq!(
            k.open("acme", "zone1", &sealed[..30]),
            Err(SealError::Truncated)
        );
    }

    #[test]
    fn keys_parse_from_hex_and_have_stable_distinct_ids() {
        let hex_key = "11".repeat(32);
        let parsed = TokenKey::from_hex(&format!("{hex_key}\n")).unwrap();
        assert_eq!(parsed.id(), key(0x11).id());
        assert_ne!(key(1).id(), key(2).id());
        assert!(parsed.id().starts_with("tk-") && parsed.id().len() == 19);
        assert!(!format!("{parsed:?}").contains(&hex_key));
        assert_eq!(TokenKey::from_hex("abcd").unwrap_err(), SealError::BadKey);
        assert_eq!(
            TokenKey::from_hex(&"zz".repeat(32)).unwrap_err(),
            SealError::BadKey
        );
    }

    #[test]
    fn the_keyring_picks_the_key_named_by_the_token() {
        let old = key(1);
        let new = key(2);
        let ring = TokenKeyring::new(vec![new.clone(), old.clone()]);
        let sealed = old.seal("t", "z", "tok");
        assert_eq!(
            ring.open(old.id(), "t", "z", &sealed).unwrap().as_str(),
            "tok"
        );
        assert_eq!(ring.current().map(TokenKey::id), Some(new.id()));
        assert!(matches!(
            ring.open("tk-unknown", "t", "z", &sealed),
            Err(SealError::UnknownKey { .. })
        ));
    }
}
