//! API tokens: the secret never appears in `Debug`, `Display` or logs.

use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// A Cloudflare API token. Its `Debug` output is redacted so a token can be put into config structs and error
/// contexts without leaking into logs; the bytes are wiped from memory on drop.
#[derive(Clone)]
pub struct ApiToken {
    secret: Zeroizing<String>,
    id: TokenId,
}

impl ApiToken {
    pub fn new(secret: impl Into<String>) -> Self {
        let secret = Zeroizing::new(secret.into().trim().to_owned());
        let id = TokenId::of(&secret);
        Self { secret, id }
    }

    /// The raw secret, for building the `Authorization` header only.
    pub fn expose_secret(&self) -> &str {
        &self.secret
    }

    /// A stable, non-reversible identifier, safe for logs, metrics labels and limiter/breaker keys.
    pub fn id(&self) -> &TokenId {
        &self.id
    }

    /// Cloudflare prefixes newer account-owned tokens with `cfat_`; those must be verified on the account route.
    pub fn looks_account_owned(&self) -> bool {
        self.secret.starts_with("cfat_")
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// First 8 bytes of SHA-256 of the token, hex. Collisions only merge two tokens' limiter buckets, never leak data.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(String);

impl TokenId {
    fn of(secret: &str) -> Self {
        let digest = Sha256::digest(secret.as_bytes());
        Self(hex::encode(&digest[..8]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({})", self.0)
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let token = ApiToken::new("cfut_supersecretvalue123");
        let rendered = format!("{token:?} {:?} {}", token.id(), token.id());
        assert!(!rendered.contains("supersecret"), "{rendered}");
        assert!(rendered.contains("<redacted>"));
    }

    #[test]
    fn id_is_stable_and_distinguishes_tokens() {
        assert_eq!(ApiToken::new("a").id(), ApiToken::new("a").id());
        assert_ne!(ApiToken::new("a").id(), ApiToken::new("b").id());
        assert_eq!(ApiToken::new("a").id().as_str().len(), 16);
    }

    #[test]
    fn surrounding_whitespace_from_secret_files_is_dropped() {
        assert_eq!(ApiToken::new("tok\n").expose_secret(), "tok");
        assert!(ApiToken::new("cfat_x").looks_account_owned());
        assert!(!ApiToken::new("cfut_x").looks_account_owned());
    }
}
