//! The search keys of one archived record: its Ray ID and client IP, read from the record's
//! top-level JSON fields. Logpull and Logpush name them `RayID` and `ClientIP`; GraphQL's
//! security events `rayName` and `clientIP`. Nested objects are never looked into, so a value
//! that merely looks like a key inside a string or a sub-object is not taken.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::ray::RayId;

/// What a record can be found by; a field the record lacks or holds in another shape is `None`
/// (the record is then found by its time only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordKeys {
    pub ray: Option<RayId>,
    pub client_ip: Option<IpAddr>,
}

/// The fields as they stand in the record; each is read on its own, so one of an unexpected
/// type leaves the other.
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
    RecordKeys {
        ray: text(fields.ray.or(fields.ray_name)).and_then(|r| RayId::parse(&r).ok()),
        client_ip: text(fields.client_ip.or(fields.client_ip_graphql))
            .and_then(|ip| ip.parse().ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sources_naming_is_read_and_nothing_nested() {
        let ray = RayId::parse("8d2f61c1fa0b1c3e").ok();
        let ip: Option<IpAddr> = "203.0.113.7".parse().ok();
        let logpull =
            br#"{"ClientIP":"203.0.113.7","EdgeStartTimestamp":1,"RayID":"8d2f61c1fa0b1c3e"}"#;
        assert_eq!(record_keys(logpull), RecordKeys { ray, client_ip: ip });
        let graphql =
            br#"{"action":"block","clientIP":"203.0.113.7","rayName":"8d2f61c1fa0b1c3e"}"#;
        assert_eq!(record_keys(graphql), RecordKeys { ray, client_ip: ip });
        let nested =
            br#"{"Metadata":{"RayID":"8d2f61c1fa0b1c3e"},"UA":"\"RayID\":\"8d2f61c1fa0b1c3e\""}"#;
        assert_eq!(record_keys(nested), RecordKeys::default());
        let odd = br#"{"RayID":7,"ClientIP":"not an ip"}"#;
        assert_eq!(record_keys(odd), RecordKeys::default());
        let half = br#"{"RayID":[1],"ClientIP":"203.0.113.7"}"#;
        assert_eq!(
            record_keys(half),
            RecordKeys {
                ray: None,
                client_ip: ip
            }
        );
        assert_eq!(record_keys(b"not json"), RecordKeys::default());
        let escaped = br#"{"RayID":"8d2f61c1fa0b1c3\u0065"}"#;
        assert_eq!(record_keys(escaped).ray, ray);
    }
}
