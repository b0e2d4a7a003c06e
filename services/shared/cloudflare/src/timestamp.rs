//! Exact timestamp parsing for Logpull records.
//!
//! `unixnano` values exceed 2^53, so they are parsed as integers and never pass through `f64`. The caller states the
//! format it requested; magnitudes are never guessed.

use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The `timestamps=` rendering requested from Logpull.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampFormat {
    /// JSON integers, nanoseconds since the epoch (Cloudflare's default, and the only exact one).
    #[default]
    UnixNano,
    /// JSON integers, seconds since the epoch.
    Unix,
    /// JSON strings, RFC 3339 at second precision.
    Rfc3339,
}

impl TimestampFormat {
    pub fn as_query_value(self) -> &'static str {
        match self {
            Self::UnixNano => "unixnano",
            Self::Unix => "unix",
            Self::Rfc3339 => "rfc3339",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimestampError {
    #[error("record is not a JSON object: {0}")]
    NotAnObject(String),
    #[error("timestamp `{0}` is not an integer")]
    NotAnInteger(String),
    #[error("timestamp `{0}` is out of range")]
    OutOfRange(String),
    #[error("timestamp `{0}` is not RFC 3339")]
    NotRfc3339(String),
    #[error("an integer timestamp was found but rfc3339 strings were requested: `{0}`")]
    UnexpectedInteger(String),
}

/// Parses one JSON value (an integer or a quoted string, as raw bytes) into an instant.
///
/// Strings are always read as RFC 3339. Integers are read per `format`: nanoseconds for `UnixNano`, seconds for
/// `Unix`; an integer under `Rfc3339` is an error rather than a guess.
pub fn parse_json_timestamp(
    raw: &str,
    format: TimestampFormat,
) -> Result<OffsetDateTime, TimestampError> {
    let raw = raw.trim();
    if let Some(quoted) = raw.strip_prefix('"') {
        let text: String =
            serde_json::from_str(raw).map_err(|_| TimestampError::NotRfc3339(quoted.to_owned()))?;
        return parse_rfc3339(&text);
    }
    match format {
        TimestampFormat::UnixNano => {
            let nanos = parse_integer(raw)?;
            OffsetDateTime::from_unix_timestamp_nanos(nanos)
                .map_err(|_| TimestampError::OutOfRange(raw.to_owned()))
        }
        TimestampFormat::Unix => {
            let seconds = i64::try_from(parse_integer(raw)?)
                .map_err(|_| TimestampError::OutOfRange(raw.to_owned()))?;
            OffsetDateTime::from_unix_timestamp(seconds)
                .map_err(|_| TimestampError::OutOfRange(raw.to_owned()))
        }
        TimestampFormat::Rfc3339 => Err(TimestampError::UnexpectedInteger(raw.to_owned())),
    }
}

pub fn parse_rfc3339(text: &str) -> Result<OffsetDateTime, TimestampError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| TimestampError::NotRfc3339(text.to_owned()))
}

/// Integer digits only (optional leading `-`): a fraction or exponent means the value was already rounded somewhere.
fn parse_integer(raw: &str) -> Result<i128, TimestampError> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TimestampError::NotAnInteger(raw.to_owned()));
    }
    raw.parse::<i128>()
        .map_err(|_| TimestampError::OutOfRange(raw.to_owned()))
}

#[derive(Deserialize)]
struct EdgeStartOnly<'a> {
    #[serde(rename = "EdgeStartTimestamp", borrow, default)]
    edge_start: Option<&'a RawValue>,
}

/// Reads `EdgeStartTimestamp` from one raw NDJSON record without building the whole record.
///
/// Only the top-level key counts (a header named the same inside `RequestHeaders` is ignored). Returns `Ok(None)`
/// when the record has no such field (it was not requested) or it is `null`.
pub fn edge_start_timestamp(
    line: &[u8],
    format: TimestampFormat,
) -> Result<Option<OffsetDateTime>, TimestampError> {
    let record: EdgeStartOnly<'_> =
        serde_json::from_slice(line).map_err(|e| TimestampError::NotAnObject(e.to_string()))?;
    match record.edge_start {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => parse_json_timestamp(raw.get(), format).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unixnano_above_2_pow_53_is_exact() {
        // The docs' own sample shows f64 damage on this value; it must come back digit for digit.
        let t = parse_json_timestamp("1506702504461999999", TimestampFormat::UnixNano).unwrap();
        assert_eq!(t.unix_timestamp_nanos(), 1_506_702_504_461_999_999);
    }

    #[test]
    fn unix_seconds_are_seconds_not_nanoseconds() {
        let t = parse_json_timestamp("1625754264", TimestampFormat::Unix).unwrap();
        assert_eq!(t.unix_timestamp(), 1_625_754_264);
        let as_nanos = parse_json_timestamp("1625754264", TimestampFormat::UnixNano).unwrap();
        assert_eq!(
            as_nanos.unix_timestamp(),
            1,
            "integers are read per the requested format, never guessed"
        );
    }

    #[test]
    fn rfc3339_strings_parse_in_any_format() {
        for format in [
            TimestampFormat::Rfc3339,
            TimestampFormat::UnixNano,
            TimestampFormat::Unix,
        ] {
            let t = parse_json_timestamp("\"2019-08-02T15:29:08Z\"", format).unwrap();
            assert_eq!(t.unix_timestamp(), 1_564_759_748);
        }
        let offset =
            parse_json_timestamp("\"2019-08-02T17:29:08+02:00\"", TimestampFormat::Rfc3339)
                .unwrap();
        assert_eq!(offset.unix_timestamp(), 1_564_759_748);
    }

    #[test]
    fn rounded_or_malformed_values_are_rejected() {
        assert!(matches!(
            parse_json_timestamp("1.5067025044619999e18", TimestampFormat::UnixNano),
            Err(TimestampError::NotAnInteger(_))
        ));
        assert!(matches!(
            parse_json_timestamp("\"yesterday\"", TimestampFormat::Rfc3339),
            Err(TimestampError::NotRfc3339(_))
        ));
        assert!(matches!(
            parse_json_timestamp("1625754264", TimestampFormat::Rfc3339),
            Err(TimestampError::UnexpectedInteger(_))
        ));
        assert!(matches!(
            parse_json_timestamp("99999999999999999999999999", TimestampFormat::UnixNano),
            Err(TimestampError::OutOfRange(_))
        ));
    }

    #[test]
    fn edge_start_is_read_from_the_top_level_only() {
        let line = br#"{"RequestHeaders":{"EdgeStartTimestamp":"1970-01-01T00:00:00Z"},"RayID":"7a","EdgeStartTimestamp":1625754264676000001,"Uri":"/\"EdgeStartTimestamp\":1"}"#;
        let t = edge_start_timestamp(line, TimestampFormat::UnixNano)
            .unwrap()
            .unwrap();
        assert_eq!(t.unix_timestamp_nanos(), 1_625_754_264_676_000_001);
    }

    #[test]
    fn missing_or_null_edge_start_is_none_and_garbage_is_an_error() {
        assert_eq!(
            edge_start_timestamp(br#"{"RayID":"7a"}"#, TimestampFormat::UnixNano).unwrap(),
            None
        );
        assert_eq!(
            edge_start_timestamp(br#"{"EdgeStartTimestamp":null}"#, TimestampFormat::UnixNano)
                .unwrap(),
            None
        );
        assert!(matches!(
            edge_start_timestamp(b"Error streaming data", TimestampFormat::UnixNano),
            Err(TimestampError::NotAnObject(_))
        ));
    }
}
