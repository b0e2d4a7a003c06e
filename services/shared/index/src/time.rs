//! A record's event time from its JSON value. Cloudflare renders it as an integer (`unixnano`,
//! the default, or `unix` seconds) or as an RFC 3339 string; all are read as exact integers,
//! never through a float.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Integers below this are `timestamps=unix` seconds (10 digits until the year 2286); Unix
/// nanoseconds have had 19 digits since 2001.
const SECONDS_LIMIT: u64 = 100_000_000_000;

/// The time in Unix nanoseconds of a JSON value (its raw text, as in the record); `None` when
/// it is none of the three forms or before 1970.
pub fn event_time_ns(raw: &str) -> Option<u64> {
    let raw = raw.trim_matches([' ', '\t', '\r', '\n']);
    if raw.starts_with('"') {
        let text: String = serde_json::from_str(raw).ok()?;
        let nanos = OffsetDateTime::parse(&text, &Rfc3339)
            .ok()?
            .unix_timestamp_nanos();
        return u64::try_from(nanos).ok();
    }
    if raw.is_empty() || raw.len() > 19 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = raw.parse().ok()?;
    if value < SECONDS_LIMIT {
        value.checked_mul(1_000_000_000)
    } else {
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_cloudflare_renderings_as_exact_integers() {
        // Not representable as an f64; it must survive exactly.
        assert_eq!(
            event_time_ns("1625754264676000001"),
            Some(1_625_754_264_676_000_001)
        );
        assert_eq!(event_time_ns("1625754263"), Some(1_625_754_263_000_000_000));
        assert_eq!(
            event_time_ns("\"2021-07-08T14:24:25Z\""),
            Some(1_625_754_265_000_000_000)
        );
        assert_eq!(
            event_time_ns("\"2021-07-08T14:24:25.5\\u002b00:00\""),
            Some(1_625_754_265_500_000_000)
        );
    }

    #[test]
    fn odd_values_have_no_time() {
        for odd in [
            "1.5e18",
            "null",
            "-5",
            "\"yesterday\"",
            "99999999999999999999",
            "{}",
            "",
        ] {
            assert_eq!(event_time_ns(odd), None, "{odd}");
        }
    }
}
