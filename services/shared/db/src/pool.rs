use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL is never echoed: it may hold a password.
    #[error("database.url is not a valid PostgreSQL URL: {0}")]
    BadUrl(String),
    #[error("cannot reach PostgreSQL: {0}")]
    Unreachable(String),
    #[error("migrations failed: {0}")]
    Migrate(String),
}

pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    let options: PgConnectOptions = url
        .parse()
        .map_err(|e: sqlx::Error| DbError::BadUrl(redact(&e.to_string(), url)))?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // A ping before every query doubles the round trips of a read; a connection that broke
        // fails its query instead (answered as unavailable) and is replaced.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|e| DbError::Unreachable(redact(&e.to_string(), url)))
}

/// Applies `migrations/` (embedded at build time). Safe to run from several processes at once.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    sqlx::migrate!("../../../migrations")
        .run(pool)
        .await
        .map_err(|e| DbError::Migrate(e.to_string()))
}

fn redact(message: &str, url: &str) -> String {
    message.replace(url, "<database.url>")
}

/// A round trip to the server, for `/ready`.
pub async fn ping(pool: &PgPool) -> Result<(), DbError> {
    sqlx::query("SELECT 1")
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(|e| DbError::Unreachable(e.to_string()))
}
