//! Small conversions shared by the routes.

use poem_openapi::Tags;
use time::OffsetDateTime;

use crate::error::{ApiError, ErrorCode};

#[derive(Tags)]
pub enum ApiTags {
    /// Liveness and the public verification key.
    System,
    /// Registration, profile, GDPR export and erasure.
    Customers,
    /// Dashboard sign-in.
    Auth,
    /// API keys of the tenant.
    ApiKeys,
    /// Cloudflare zones and their collection.
    Zones,
    /// Sealed windows, downloads, proofs and checkpoints.
    Logs,
    /// Who did what, when, from where.
    Audit,
}

/// Unix nanoseconds as a timestamp (the epoch for values out of range, which the format forbids).
pub fn from_ns(ns: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub fn to_ns(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Lowercase hex of an optional hash column.
pub fn hex_opt(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.map(hex::encode)
}

/// Whether `text` is a Cloudflare zone id (32 lowercase hex).
pub fn is_zone_id(text: &str) -> bool {
    text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A path id that cannot be a zone id is simply a zone this tenant does not have.
pub fn zone_not_found(zone_id: &str) -> ApiError {
    let shown: String = zone_id.chars().take(64).collect();
    ApiError::new(ErrorCode::ZoneNotFound, format!("zone {shown} not found"))
}

/// Limits a page size to 1..=max, `default` when absent.
pub fn page_size(limit: Option<u32>, default: u32, max: u32) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(default);
    if limit == 0 || limit > max {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {max}"
        )));
    }
    Ok(i64::from(limit))
}
