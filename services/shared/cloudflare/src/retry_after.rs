//! Reading how long the server wants us to wait: `Retry-After-Ms`, `Retry-After` (seconds or HTTP-date) and, as a
//! last resort, the `Ratelimit: "default";r=0;t=30` header Cloudflare sends since 2025-09.

use reqwest::header::{DATE, HeaderMap, RETRY_AFTER};
use std::time::{Duration, SystemTime};

/// Cloudflare's request to wait, in order of precision. An HTTP-date is measured against the response's own `Date`
/// header when present, so a skewed local clock (or a simulator with a controlled clock) does not distort it.
pub fn retry_after_from_headers(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = header_str(headers, "retry-after-ms").and_then(parse_retry_after_ms) {
        return Some(ms);
    }
    let server_now = header_str(headers, DATE.as_str())
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .unwrap_or_else(SystemTime::now);
    if let Some(value) =
        header_str(headers, RETRY_AFTER.as_str()).and_then(|v| parse_retry_after(v, server_now))
    {
        return Some(value);
    }
    header_str(headers, "ratelimit").and_then(parse_ratelimit_reset)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// `Retry-After: <delay-seconds>` or `Retry-After: <HTTP-date>` (RFC 9110 §10.2.3). A date in the past means "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `Retry-After-Ms`, as sent by Stainless-generated SDK backends: integer or decimal milliseconds.
pub fn parse_retry_after_ms(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let millis: u64 = whole.parse().ok()?;
    // Sub-millisecond digits only matter to the first three places (microseconds); parse them as integers.
    let micros_text: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(3)
        .collect();
    let micros: u64 = micros_text.parse().ok()?;
    Some(Duration::from_millis(millis) + Duration::from_micros(micros))
}

/// `Ratelimit: "default";r=<remaining>;t=<reset seconds>` — only a wait when nothing remains.
pub fn parse_ratelimit_reset(value: &str) -> Option<Duration> {
    let mut remaining = None;
    let mut reset = None;
    for part in value.split([';', ',']) {
        match part.trim().split_once('=') {
            Some(("r", v)) => remaining = v.trim().parse::<u64>().ok(),
            Some(("t", v)) => reset = v.trim().parse::<u64>().ok(),
            _ => {}
        }
    }
    match (remaining, reset) {
        (Some(0), Some(t)) => Some(Duration::from_secs(t)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn seconds_form() {
        assert_eq!(
            parse_retry_after("30", SystemTime::now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(" 0 ", SystemTime::now()),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-5", SystemTime::now()), None);
        assert_eq!(parse_retry_after("soon", SystemTime::now()), None);
    }

    #[test]
    fn http_date_form_is_relative_to_the_given_now() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:29:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "past dates mean now"
        );
    }

    #[test]
    fn http_date_uses_the_response_date_header_as_now() {
        let map = headers(&[
            ("date", "Mon, 01 Jan 2024 00:00:00 GMT"),
            ("retry-after", "Mon, 01 Jan 2024 00:05:00 GMT"),
        ]);
        assert_eq!(
            retry_after_from_headers(&map),
            Some(Duration::from_secs(300))
        );
    }

    #[test]
    fn retry_after_ms_wins_and_accepts_fractions() {
        assert_eq!(
            parse_retry_after_ms("1500"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after_ms("2.5"),
            Some(Duration::from_micros(2500))
        );
        assert_eq!(parse_retry_after_ms("1e3"), None);
        let map = headers(&[("retry-after-ms", "250"), ("retry-after", "30")]);
        assert_eq!(
            retry_after_from_headers(&map),
            Some(Duration::from_millis(250))
        );
    }

    #[test]
    fn ratelimit_header_is_a_fallback_only_when_exhausted() {
        assert_eq!(
            parse_ratelimit_reset("\"default\";r=0;t=42"),
            Some(Duration::from_secs(42))
        );
        assert_eq!(parse_ratelimit_reset("\"default\";r=50;t=30"), None);
        assert_eq!(
            retry_after_from_headers(&headers(&[("ratelimit", "\"default\";r=0;t=7")])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after_from_headers(&headers(&[
                ("retry-after", "3"),
                ("ratelimit", "\"default\";r=0;t=7")
            ])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(retry_after_from_headers(&HeaderMap::new()), None);
    }
}
