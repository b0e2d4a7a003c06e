//! The event-time range of an archive: min and max `EdgeStartTimestamp` of its records.
//!
//! Lines are searched for the key, not parsed as JSON: the archive keeps the bytes as received,
//! and the range is only an index hint. Cloudflare renders the value as an integer (`unixnano`,
//! the default, or `unix` seconds) or as an RFC 3339 string at seconds precision; all three are
//! read as integers, never through a float.

use memchr::memmem;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const KEY: &[u8] = b"\"EdgeStartTimestamp\":";

/// Integers below this are `timestamps=unix` seconds (10 digits until the year 2286); Unix
/// nanoseconds have had 19 digits since 2001.
const SECONDS_LIMIT: i64 = 100_000_000_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventTimeRange {
    pub min_ns: Option<i64>,
    pub max_ns: Option<i64>,
}

impl EventTimeRange {
    /// Widens the range with every timestamp found in `text` (whole NDJSON lines).
    pub fn scan(&mut self, text: &[u8]) {
        for at in memmem::find_iter(text, KEY) {
            if let Some(ns) = parse_value(&text[at + KEY.len()..]) {
                self.include(ns);
            }
        }
    }

    fn include(&mut self, ns: i64) {
        self.min_ns = Some(self.min_ns.map_or(ns, |m| m.min(ns)));
        self.max_ns = Some(self.max_ns.map_or(ns, |m| m.max(ns)));
    }
}

/// The value right after the key, in Unix nanoseconds; `None` when it is none of the three forms.
fn parse_value(rest: &[u8]) -> Option<i64> {
    let start = rest.iter().position(|b| !matches!(b, b' ' | b'\t'))?;
    let rest = &rest[start..];
    match rest.first()? {
        b'"' => {
            let end = memchr::memchr(b'"', &rest[1..])?;
            let text = std::str::from_utf8(&rest[1..=end]).ok()?;
            let nanos = OffsetDateTime::parse(text, &Rfc3339)
                .ok()?
                .unix_timestamp_nanos();
            i64::try_from(nanos).ok()
        }
        b'-' | b'0'..=b'9' => {
            let (negative, digits) = match rest.split_first() {
                Some((b'-', tail)) => (true, tail),
                _ => (false, rest),
            };
            let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
            if len == 0 || len > 19 || matches!(digits.get(len), Some(b'.' | b'e' | b'E')) {
                return None;
            }
            let mut value: i64 = 0;
            for &digit in &digits[..len] {
                value = value
                    .checked_mul(10)?
                    .checked_add(i64::from(digit - b'0'))?;
            }
            let value = if negative { -value } else { value };
            if value.abs() < SECONDS_LIMIT {
                value.checked_mul(1_000_000_000)
            } else {
                Some(value)
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> EventTimeRange {
        let mut r = EventTimeRange::default();
        r.scan(text.as_bytes());
        r
    }

    #[test]
    fn reads_the_three_cloudflare_renderings_as_exact_integers() {
        // 1625754264676000001 is not representable as an f64; it must survive exactly.
        let r = range(
            "{\"EdgeStartTimestamp\":1625754264676000001,\"RayID\":\"a\"}\n\
             {\"EdgeStartTimestamp\":1625754263,\"RayID\":\"b\"}\n\
             {\"RayID\":\"c\",\"EdgeStartTimestamp\":\"2021-07-08T14:24:25Z\"}\n",
        );
        assert_eq!(r.min_ns, Some(1_625_754_263_000_000_000));
        assert_eq!(r.max_ns, Some(1_625_754_265_000_000_000));
        let exact = range("{\"EdgeStartTimestamp\":1625754264676000001}\n");
        assert_eq!(exact.max_ns, Some(1_625_754_264_676_000_001));
    }

    #[test]
    fn lines_without_the_field_or_with_odd_values_leave_the_range_alone() {
        assert_eq!(range("{\"Datetime\":1}\n"), EventTimeRange::default());
        for odd in [
            "{\"EdgeStartTimestamp\":1.5e18}\n",
            "{\"EdgeStartTimestamp\":null}\n",
            "{\"EdgeStartTimestamp\":\"yesterday\"}\n",
            "{\"EdgeStartTimestamp\":99999999999999999999}\n",
            // Inside a string the quotes are escaped, so this is not the key.
            "{\"Note\":\"\\\"EdgeStartTimestamp\\\":5\"}\n",
        ] {
            assert_eq!(range(odd), EventTimeRange::default(), "{odd}");
        }
    }
}
