//! The search keys of one archived record: its Ray ID, client IP and event time, read from the
//! record's top-level JSON fields. Logpull and Logpush name them `RayID`, `ClientIP` and
//! `EdgeStartTimestamp` (`Datetime` for security events); GraphQL's security events `rayName`,
//! `clientIP` and `datetime`. Nested objects are never looked into, so a value that merely looks
//! like a key inside a string or a sub-object is not taken.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::ray::RayId;
use crate::time::event_time_ns;

/// What a record can be found by; a field the record lacks or holds in another shape is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordKeys {
    pub ray: Option<RayId>,
    pub client_ip: Option<IpAddr>,
    /// Unix nanoseconds.
    pub time_ns: Option<u64>,
}

/// The fields as they stand in the record; each is read on its own, so one of an unexpected
/// type leaves the others.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(rename = "RayID", borrow, default)]
    ray: Option<&'a RawValue>,
    #[serde(rename = "rayName", borrow, default)]
    ray_name: Option<&'a RawValue>,
    #[serde(rename = "ClientIP", borrow, default)]
    client_ip: Option<&'a RawValue>,
    #[serde(rename = "clientIP", borrow, default)]
    client_ip_graphql: Option<&'a RawValue>,
    #[serde(rename = "EdgeStartTimestamp", borrow, default)]
    edge_start: Option<&'a RawValue>,
    #[serde(rename = "Datetime", borrow, default)]
    datetime: Option<&'a RawValue>,
    #[serde(rename = "datetime", borrow, default)]
    datetime_graphql: Option<&'a RawValue>,
}

/// A JSON string's text.
fn text(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Cow<'_, str>>(raw?.get()).ok()
}

/// The keys of one NDJSON record (without its `\n`). A line that is not a JSON object has none.
pub fn record_keys(line: &[u8]) -> RecordKeys {
    let Ok(fields) = serde_json::from_slice::<Fields<'_>>(line) else {
        return RecordKeys::default();
    };
    let time = fields
        .edge_start
        .or(fields.datetime)
        .or(fields.datetime_graphql);
    RecordKeys {
        ray: text(fields.ray.or(fields.ray_name)).and_then(|r| RayId::parse(&r).ok()),
        client_ip: text(fields.client_ip.or(fields.client_ip_graphql))
            .and_then(|ip| ip.parse().ok()),
        time_ns: time.and_then(|raw| event_time_ns(raw.get())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sources_naming_is_read_and_nothing_nested() {
        let ray = RayId::parse("8d2f61c1fa0b1c3e").ok();
        let ip: Option<IpAddr> = "203.0.113.7".parse().ok();
        let logpull = br#"{"ClientIP":"203.0.113.7","EdgeStartTimestamp":1768485600000000001,"RayID":"8d2f61c1fa0b1c3e"}"#;
        let time_ns = Some(1_768_485_600_000_000_001);
        assert_eq!(
            record_keys(logpull),
            RecordKeys {
                ray,
                client_ip: ip,
                time_ns
            }
        );
        let graphql = br#"{"action":"block","clientIP":"203.0.113.7","datetime":"2026-01-15T14:00:00Z","rayName":"8d2f61c1fa0b1c3e"}"#;
        let time_ns = Some(1_768_485_600_000_000_000);
        assert_eq!(
            record_keys(graphql),
            RecordKeys {
                ray,
                client_ip: ip,
                time_ns
            }
        );
        let logpush_firewall = br#"{"Datetime":1768485600,"RayID":"8d2f61c1fa0b1c3e"}"#;
        assert_eq!(record_keys(logpush_firewall).time_ns, time_ns);
        let nested =
            br#"{"Metadata":{"RayID":"8d2f61c1fa0b1c3e"},"UA":"\"RayID\":\"8d2f61c1fa0b1c3e\""}"#;
        assert_eq!(record_keys(nested), RecordKeys::default());
        let odd = br#"{"RayID":7,"ClientIP":"not an ip","EdgeStartTimestamp":1.5}"#;
        assert_eq!(record_keys(odd), RecordKeys::default());
        let half = br#"{"RayID":[1],"ClientIP":"203.0.113.7"}"#;
        assert_eq!(
            record_keys(half),
            RecordKeys {
                client_ip: ip,
                ..RecordKeys::default()
            }
        );
        assert_eq!(record_keys(b"not json"), RecordKeys::default());
        let escaped = br#"{"RayID":"8d2f61c1fa0b1c3\u0065"}"#;
        assert_eq!(record_keys(escaped).ray, ray);
    }
}
