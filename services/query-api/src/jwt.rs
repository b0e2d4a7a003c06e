//! Dashboard session tokens: HS256 JWTs with `iss`, `aud`, `exp` required and the role in a
//! claim. A token is only as good as its user: authentication also checks that the user and
//! tenant still exist, so erasure or deletion ends every session at once.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// How long a dashboard session lasts.
pub const SESSION_SECS: i64 = 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub tenant: String,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("the session token has expired")]
    Expired,
    #[error("the session token is not valid")]
    Invalid,
}

impl JwtKeys {
    pub fn new(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    pub fn issue(
        &self,
        user_id: &str,
        tenant: &str,
        role: &str,
        now: i64,
    ) -> Result<String, JwtError> {
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_owned(),
            tenant: tenant.to_owned(),
            role: role.to_owned(),
            iat: now,
            exp: now + SESSION_SECS,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| JwtError::Invalid)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        // Only HS256 is accepted: the header's `alg` cannot choose a weaker one (or `none`).
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["iss", "aud", "exp", "sub"]);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => JwtError::Expired,
                _ => JwtError::Invalid,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    #[test]
    fn issued_tokens_verify_and_others_do_not() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef", "rainlogs", "dash");
        let token = keys.issue("u1", "t1", "admin", now()).unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.role.as_str()), ("u1", "admin"));

        let forged = JwtKeys::new(b"another secret entirely, 32 byte", "rainlogs", "dash");
        assert_eq!(forged.verify(&token).unwrap_err(), JwtError::Invalid);
        let wrong_audience = JwtKeys::new(b"0123456789abcdef0123456789abcdef", "rainlogs", "x");
        assert_eq!(
            wrong_audience.verify(&token).unwrap_err(),
            JwtError::Invalid
        );
        let expired = keys
            .issue("u1", "t1", "admin", now() - 2 * SESSION_SECS)
            .unwrap();
        assert_eq!(keys.verify(&expired).unwrap_err(), JwtError::Expired);
    }
}
