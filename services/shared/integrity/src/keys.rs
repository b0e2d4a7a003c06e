//! Ed25519 note keys in the C2SP signed-note text forms (as Go's `golang.org/x/mod/sumdb/note`):
//!
//! - verifier key: `<name>+<key id, 8 lowercase hex>+<base64(0x01 ∥ 32-byte public key)>`
//! - signer key:   `PRIVATE+KEY+<name>+<key id>+<base64(0x01 ∥ 32-byte seed)>`
//!
//! key id = first 4 bytes (big-endian u32) of SHA-256(name ∥ 0x0A ∥ 0x01 ∥ public key).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use rand::TryRngCore as _;
use zeroize::Zeroizing;

/// The signed-note signature type byte for Ed25519.
pub const ED25519_ALGORITHM: u8 = 0x01;

/// Longest accepted key name (the format has no limit; this keeps entries bounded).
pub const MAX_KEY_NAME_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("invalid key name {0:?}: must be 1-128 bytes, no whitespace, no '+'")]
    InvalidName(String),
    #[error("malformed key text")]
    Malformed,
    #[error("unsupported signature algorithm 0x{0:02x} (only Ed25519, 0x01)")]
    UnsupportedAlgorithm(u8),
    #[error("key id {found:08x} does not match the key (expected {expected:08x})")]
    WrongKeyId { expected: u32, found: u32 },
    #[error("invalid Ed25519 public key")]
    InvalidPublicKey,
    #[error("no randomness available: {0}")]
    Randomness(String),
}

/// Key names are non-empty, contain no Unicode whitespace and no `+` (signed-note §Format).
pub fn validate_key_name(name: &str) -> Result<(), KeyError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_KEY_NAME_LEN
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
        && !name.contains('+');
    if valid {
        Ok(())
    } else {
        Err(KeyError::InvalidName(name.to_owned()))
    }
}

/// The signed-note key id of an Ed25519 public key under `name`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut encoded = Vec::with_capacity(33);
    encoded.push(ED25519_ALGORITHM);
    encoded.extend_from_slice(public_key);
    signed_note::key_id(name, &encoded)
}

/// A public key that verifies checkpoint signatures. Pin it; never take one from the bucket.
#[derive(Clone, PartialEq, Eq)]
pub struct NoteVerifierKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl NoteVerifierKey {
    pub fn new(name: &str, public_key: &[u8; 32]) -> Result<Self, KeyError> {
        validate_key_name(name)?;
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| KeyError::InvalidPublicKey)?;
        Ok(Self {
            name: name.to_owned(),
            id: key_id(name, public_key),
            key,
        })
    }

    /// Parses `<name>+<hex id>+<base64(0x01 ∥ key)>`, rejecting any other spelling of it.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let (name, rest) = text.split_once('+').ok_or(KeyError::Malformed)?;
        let (id_hex, key_b64) = rest.split_once('+').ok_or(KeyError::Malformed)?;
        validate_key_name(name)?;
        let found = parse_key_id(id_hex)?;
        let material = decode_key_material(key_b64)?;
        let key = Self::new(name, &material)?;
        if key.id != found {
            return Err(KeyError::WrongKeyId {
                expected: key.id,
                found,
            });
        }
        Ok(key)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.id
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Strict Ed25519 verification (rejects malleable signatures and small-order keys).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
            return false;
        };
        let signature = ed25519_dalek::Signature::from_bytes(&bytes);
        self.key.verify_strict(message, &signature).is_ok()
    }
}

impl fmt::Display for NoteVerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.id,
            BASE64.encode(tagged(&self.key.to_bytes()))
        )
    }
}

impl fmt::Debug for NoteVerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteVerifierKey({self})")
    }
}

impl signed_note::Verifier for NoteVerifierKey {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        NoteVerifierKey::verify(self, msg, sig)
    }
}

/// The sealer's private signing key. Its seed is wiped from memory on drop.
#[derive(Clone)]
pub struct NoteSigningKey {
    name: String,
    id: u32,
    key: SigningKey,
}

impl NoteSigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate(name: &str) -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng
            .try_fill_bytes(seed.as_mut())
            .map_err(|e| KeyError::Randomness(e.to_string()))?;
        Self::from_seed(name, &seed)
    }

    /// The key for a 32-byte Ed25519 seed (RFC 8032 private key).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, KeyError> {
        validate_key_name(name)?;
        let key = SigningKey::from_bytes(seed);
        Ok(Self {
            name: name.to_owned(),
            id: key_id(name, &key.verifying_key().to_bytes()),
            key,
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ∥ seed)>`.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let rest = text
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(KeyError::Malformed)?;
        let (name, rest) = rest.split_once('+').ok_or(KeyError::Malformed)?;
        let (id_hex, key_b64) = rest.split_once('+').ok_or(KeyError::Malformed)?;
        validate_key_name(name)?;
        let found = parse_key_id(id_hex)?;
        let seed = Zeroizing::new(decode_key_material(key_b64)?);
        let key = Self::from_seed(name, &seed)?;
        if key.id != found {
            return Err(KeyError::WrongKeyId {
                expected: key.id,
                found,
            });
        }
        Ok(key)
    }

    /// The private text form. Treat it as a secret (store with mode 0600 or in a secret store).
    pub fn to_private_text(&self) -> Zeroizing<String> {
        let material = Zeroizing::new(tagged(&self.key.to_bytes()));
        Zeroizing::new(format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            BASE64.encode(material.as_slice())
        ))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.id
    }

    pub fn verifier_key(&self) -> NoteVerifierKey {
        NoteVerifierKey {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

impl fmt::Debug for NoteSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteSigningKey({}+{:08x}, <secret>)", self.name, self.id)
    }
}

impl signed_note::Signer for NoteSigningKey {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(NoteSigningKey::sign(self, msg).to_vec())
    }
}

fn tagged(key: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(33);
    out.push(ED25519_ALGORITHM);
    out.extend_from_slice(key);
    out
}

fn parse_key_id(text: &str) -> Result<u32, KeyError> {
    let is_lower_hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
    if text.len() != 8 || !text.bytes().all(is_lower_hex) {
        return Err(KeyError::Malformed);
    }
    u32::from_str_radix(text, 16).map_err(|_| KeyError::Malformed)
}

/// Decodes `base64(0x01 ∥ 32 bytes)`; the 32 bytes are a public key or a seed.
fn decode_key_material(text: &str) -> Result<[u8; 32], KeyError> {
    let bytes = Zeroizing::new(BASE64.decode(text).map_err(|_| KeyError::Malformed)?);
    let (&algorithm, material) = bytes.split_first().ok_or(KeyError::Malformed)?;
    if algorithm != ED25519_ALGORITHM {
        return Err(KeyError::UnsupportedAlgorithm(algorithm));
    }
    material.try_into().map_err(|_| KeyError::Malformed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Published test vector of Go's golang.org/x/mod/sumdb/note (an independent implementation).
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";

    #[test]
    fn go_note_key_vectors_parse_and_reformat_identically() {
        let signer = NoteSigningKey::parse(GO_SKEY).unwrap();
        let verifier = NoteVerifierKey::parse(GO_VKEY).unwrap();
        assert_eq!(signer.verifier_key(), verifier);
        assert_eq!(verifier.to_string(), GO_VKEY);
        assert_eq!(signer.to_private_text().as_str(), GO_SKEY);
        assert_eq!(verifier.key_id(), 0xc74f20a3);
    }

    #[test]
    fn generated_keys_round_trip_and_sign() {
        let signer = NoteSigningKey::generate("rainlogs.test/sealer").unwrap();
        let again = NoteSigningKey::parse(&signer.to_private_text()).unwrap();
        assert_eq!(again.verifier_key(), signer.verifier_key());
        let verifier = NoteVerifierKey::parse(&signer.verifier_key().to_string()).unwrap();
        let sig = signer.sign(b"hello\n");
        assert!(verifier.verify(b"hello\n", &sig));
        assert!(!verifier.verify(b"hellO\n", &sig));
    }

    #[test]
    fn key_text_rejects_tampering() {
        let wrong_id = GO_VKEY.replace("c74f20a3", "c74f20a4");
        assert!(matches!(
            NoteVerifierKey::parse(&wrong_id),
            Err(KeyError::WrongKeyId { .. })
        ));
        let upper_id = GO_VKEY.replace("c74f20a3", "C74F20A3");
        assert_eq!(NoteVerifierKey::parse(&upper_id), Err(KeyError::Malformed));
        let renamed = GO_VKEY.replace("PeterNeumann", "PeterNeumanm");
        assert!(matches!(
            NoteVerifierKey::parse(&renamed),
            Err(KeyError::WrongKeyId { .. })
        ));
        let other_alg = format!(
            "PeterNeumann+c74f20a3+{}",
            BASE64.encode([&[2u8][..], &[0u8; 32]].concat())
        );
        assert_eq!(
            NoteVerifierKey::parse(&other_alg),
            Err(KeyError::UnsupportedAlgorithm(2))
        );
        assert!(NoteVerifierKey::parse("PeterNeumann+c74f20a3").is_err());
        assert!(NoteSigningKey::parse(GO_VKEY).is_err());
        assert!(matches!(
            NoteSigningKey::from_seed("bad name", &[7; 32]),
            Err(KeyError::InvalidName(_))
        ));
        assert!(NoteSigningKey::from_seed("a+b", &[7; 32]).is_err());
    }
}
