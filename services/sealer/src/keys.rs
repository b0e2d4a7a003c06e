//! The checkpoint signing key: generating one, showing its public half, and reading it from
//! configuration (C2SP signed-note key text forms, docs/FORMAT.md §8.3).

use rainlogs_integrity::{KeyError, NoteSigningKey, NoteVerifierKey};
use zeroize::Zeroizing;

/// Key name for development deployments (`rainlogs run --dev`).
pub const DEV_KEY_NAME: &str = "rainlogs.dev/sealer";

/// A new Ed25519 signing key as `PRIVATE+KEY+<name>+<key id>+<base64>`. Store it as a secret
/// (mode 0600 file or secret store); `name` is the deployment's key name, e.g.
/// `rainlogs.example.eu/sealer`.
pub fn generate_signing_key(name: &str) -> Result<Zeroizing<String>, KeyError> {
    Ok(NoteSigningKey::generate(name)?.to_private_text())
}

/// The verifier key text `<name>+<key id>+<base64>` of a private key text: what auditors pin
/// and `rainlogs-verify` takes.
pub fn verifier_key_text(private_key: &str) -> Result<String, KeyError> {
    Ok(NoteSigningKey::parse(private_key.trim())?
        .verifier_key()
        .to_string())
}

/// The configured key cannot be used; the sealer refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error(
        "secrets.signing_key is not set: the sealer signs checkpoints with it. Generate one \
         (`rainlogs keys generate`), store it in a file with mode 0600 and set \
         secrets.signing_key_file (or RAINLOGS__SECRETS__SIGNING_KEY_FILE)"
    )]
    Missing,
    #[error(
        "secrets.signing_key is not a valid note signing key \
         (expected PRIVATE+KEY+<name>+<key id>+<base64>): {0}"
    )]
    Invalid(KeyError),
}

/// Parses the configured private key; never echoes it.
pub fn signing_key_from_config(text: Option<&str>) -> Result<NoteSigningKey, SigningKeyError> {
    let text = text.ok_or(SigningKeyError::Missing)?;
    NoteSigningKey::parse(text.trim()).map_err(SigningKeyError::Invalid)
}

/// The public key the sealer checks bucket checkpoints against.
pub fn own_verifier(key: &NoteSigningKey) -> NoteVerifierKey {
    key.verifier_key()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_yield_their_verifier_key() {
        let private = generate_signing_key("rainlogs.test/sealer").unwrap();
        assert!(private.starts_with("PRIVATE+KEY+rainlogs.test/sealer+"));
        let public = verifier_key_text(&private).unwrap();
        assert!(public.starts_with("rainlogs.test/sealer+"));
        assert!(!public.contains("PRIVATE"));
        let verifier = NoteVerifierKey::parse(&public).unwrap();
        let signer = signing_key_from_config(Some(&private)).unwrap();
        assert!(verifier.verify(b"x\n", &signer.sign(b"x\n")));
        assert_ne!(
            *generate_signing_key("rainlogs.test/sealer").unwrap(),
            *private,
            "every key is fresh"
        );
    }

    #[test]
    fn the_documented_test_key_gives_the_documented_verifier_key() {
        // docs/FORMAT.md §8.3.
        let private = "PRIVATE+KEY+rainlogs.test/sealer+6e0f8e34+AawcVNj/nAGF+9XKIbP0CLBeT+kg1yx3SeIY2GzrZj+h";
        assert_eq!(
            verifier_key_text(private).unwrap(),
            "rainlogs.test/sealer+6e0f8e34+Ab1PUuw/U9QTk4YHISDIf3/6tQ3QUkJfM808ohbGgGft"
        );
    }

    #[test]
    fn missing_or_malformed_keys_are_refused_without_echoing_them() {
        assert!(matches!(
            signing_key_from_config(None),
            Err(SigningKeyError::Missing)
        ));
        let secretish = "deadbeefcafebabe";
        let error = signing_key_from_config(Some(secretish)).unwrap_err();
        assert!(matches!(error, SigningKeyError::Invalid(_)));
        assert!(!error.to_string().contains(secretish));
        // A public key where the private one belongs.
        let public = "rainlogs.test/sealer+6e0f8e34+Ab1PUuw/U9QTk4YHISDIf3/6tQ3QUkJfM808ohbGgGft";
        assert!(signing_key_from_config(Some(public)).is_err());
    }
}
