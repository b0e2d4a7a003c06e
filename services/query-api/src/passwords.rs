//! Dashboard passwords: argon2id PHC strings via `password-hash`, computed off the async
//! threads (each hash takes tens of milliseconds by design).

use std::sync::OnceLock;

use argon2::Argon2;
use password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use zeroize::Zeroizing;

use crate::error::ApiError;

pub async fn hash(password: String) -> Result<String, ApiError> {
    let password = Zeroizing::new(password);
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)?
}

/// A hash of a password nobody knows, checked when the user is unknown so an unknown address
/// takes as long to refuse as a wrong password.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(uuid::Uuid::new_v4().as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Checks `password` against `stored` (`None`: unknown user, always false).
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    let password = Zeroizing::new(password);
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let text = stored.unwrap_or_else(|| decoy().to_owned());
        let matches = PasswordHash::new(&text).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        Ok(known && matches)
    })
    .await
    .map_err(ApiError::internal)?
}
