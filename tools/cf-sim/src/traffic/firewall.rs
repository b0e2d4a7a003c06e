//! Firewall (security) events for GraphQL `firewallEventsAdaptive`, one pure function of (seed, zone, second, index).

use serde_json::{Map, Value, json};

use super::ZoneTraffic;
use super::pools::{COUNTRIES, Pools, QUERIES, RULES, USER_AGENTS};
use super::render::{TimestampFormat, push_rfc3339_secs, push_timestamp, rewrite_log4shell};
use crate::rng::Rng;

const FIREWALL_TAG: u64 = 0x6677;

/// Every field the simulator can return, in alphabetical order.
pub const FIREWALL_FIELDS: &[&str] = &[
    "action",
    "botScore",
    "botScoreSrcName",
    "clientASNDescription",
    "clientAsn",
    "clientCountryName",
    "clientIP",
    "clientIPClass",
    "clientRefererHost",
    "clientRefererPath",
    "clientRefererQuery",
    "clientRefererScheme",
    "clientRequestHTTPHost",
    "clientRequestHTTPMethodName",
    "clientRequestHTTPProtocol",
    "clientRequestPath",
    "clientRequestQuery",
    "clientRequestScheme",
    "datetime",
    "description",
    "edgeColoName",
    "edgeResponseStatus",
    "ja3Hash",
    "ja4",
    "kind",
    "matchIndex",
    "originResponseStatus",
    "originatorRayName",
    "rayName",
    "ref",
    "ruleId",
    "rulesetId",
    "sampleInterval",
    "source",
    "userAgent",
    "verifiedBotCategory",
    "wafAttackScore",
    "wafRceAttackScore",
    "wafSqliAttackScore",
    "wafXssAttackScore",
];

/// Fields only paid plans see (the rest is available everywhere).
pub const PAID_ONLY_FIELDS: &[&str] = &[
    "botScore",
    "botScoreSrcName",
    "ja3Hash",
    "ja4",
    "verifiedBotCategory",
    "wafAttackScore",
    "wafRceAttackScore",
    "wafSqliAttackScore",
    "wafXssAttackScore",
];

/// One event with every field; `sampleInterval` is 1 (callers overwrite it when sampling).
pub fn firewall_event(zone: &ZoneTraffic, second: i64, index: u32) -> Map<String, Value> {
    let pools = Pools::get();
    let mut rng = Rng::new(zone.record_seed(second, index, FIREWALL_TAG));
    let client = &pools.clients[rng.skewed(pools.clients.len())];
    let country = &COUNTRIES[client.country];
    let ua = &USER_AGENTS[if rng.chance(0.6) {
        client.ua
    } else {
        13 + rng.below_usize(2)
    }];
    let rule = rng.below_usize(RULES.len());
    let (rule_id, description, source) = RULES[rule];
    let action = match source {
        "rateLimit" => "block",
        _ => [
            "block",
            "block",
            "managedChallenge",
            "log",
            "jschallenge",
            "skip",
        ][rng.below_usize(6)],
    };
    let path = &pools.paths
        [pools.probe_start + rng.below_usize(pools.paths.len() - pools.probe_start)]
    .path;
    let query = if rng.chance(0.3) {
        QUERIES[rng.below_usize(QUERIES.len())]
    } else {
        ""
    };
    let host = &zone.hosts[rng.below_usize(zone.hosts.len())];
    let method = if rng.chance(0.8) { "GET" } else { "POST" };
    let status = match action {
        "block" => 403,
        "managedChallenge" | "jschallenge" => 403,
        _ => 200,
    };
    let attack = 1 + rng.below(30);
    let mut datetime = Vec::with_capacity(20);
    push_rfc3339_secs(&mut datetime, second);
    let ray = format!(
        "{:016x}",
        zone.ray_id(second, index) ^ 0x5a5a_0000_0000_0000
    );
    let mut event = Map::new();
    let mut put = |k: &str, v: Value| {
        event.insert(k.to_owned(), v);
    };
    put("action", json!(action));
    put("botScore", json!(1 + rng.below(30)));
    put("botScoreSrcName", json!("Machine Learning"));
    put("clientASNDescription", json!(client.asn_desc));
    put("clientAsn", json!(client.asn.to_string()));
    put(
        "clientCountryName",
        json!(country.code.to_ascii_uppercase()),
    );
    put("clientIP", json!(client.ip));
    put("clientIPClass", json!(client.ip_class));
    put("clientRefererHost", json!(""));
    put("clientRefererPath", json!(""));
    put("clientRefererQuery", json!(""));
    put("clientRefererScheme", json!(""));
    put("clientRequestHTTPHost", json!(host));
    put("clientRequestHTTPMethodName", json!(method));
    put("clientRequestHTTPProtocol", json!("HTTP/2"));
    put("clientRequestPath", json!(path));
    put("clientRequestQuery", json!(query));
    put("clientRequestScheme", json!("https"));
    put("datetime", json!(String::from_utf8_lossy(&datetime)));
    put("description", json!(description));
    put("edgeColoName", json!(country.colo));
    put("edgeResponseStatus", json!(status));
    put("ja3Hash", json!(ua.ja3));
    put("ja4", json!(ua.ja4));
    put("kind", json!("firewall"));
    put("matchIndex", json!(0));
    put(
        "originResponseStatus",
        json!(if status == 200 { 200 } else { 0 }),
    );
    put("originatorRayName", json!("00"));
    put("rayName", json!(ray));
    put("ref", json!(""));
    put("ruleId", json!(rule_id));
    put(
        "rulesetId",
        json!(if source == "firewallManaged" {
            "efb7b8c949ac4650a09736fc376e9aee"
        } else {
            ""
        }),
    );
    put("sampleInterval", json!(1));
    put("source", json!(source));
    put("userAgent", json!(ua.ua));
    put("verifiedBotCategory", json!(ua.bot.map_or("", |(_, c)| c)));
    put("wafAttackScore", json!(attack));
    put("wafRceAttackScore", json!((attack + 5).min(99)));
    put(
        "wafSqliAttackScore",
        json!(if rule == 1 {
            attack
        } else {
            80 + rng.below(19)
        }),
    );
    put(
        "wafXssAttackScore",
        json!(if rule == 2 {
            attack
        } else {
            80 + rng.below(19)
        }),
    );
    event
}

/// Keep only `fields` (all fields when `None`).
pub fn project(event: &Map<String, Value>, fields: Option<&[String]>) -> Map<String, Value> {
    match fields {
        None => event.clone(),
        Some(fields) => fields
            .iter()
            .filter_map(|f| event.get(f).map(|v| (f.clone(), v.clone())))
            .collect(),
    }
}

/// Every field of Logpush's `firewall_events` dataset the simulator pushes: Cloudflare's Logpush names (PascalCase,
/// not GraphQL's camelCase), in byte order, which is also the order a line lists them in.
pub const LOGPUSH_FIREWALL_FIELDS: &[&str] = &[
    "Action",
    "ClientASN",
    "ClientASNDescription",
    "ClientCountry",
    "ClientIP",
    "ClientIPClass",
    "ClientRefererHost",
    "ClientRefererPath",
    "ClientRefererQuery",
    "ClientRefererScheme",
    "ClientRequestHost",
    "ClientRequestMethod",
    "ClientRequestPath",
    "ClientRequestProtocol",
    "ClientRequestQuery",
    "ClientRequestScheme",
    "ClientRequestUserAgent",
    "Datetime",
    "Description",
    "EdgeColoCode",
    "EdgeResponseStatus",
    "Kind",
    "MatchIndex",
    "Metadata",
    "OriginResponseStatus",
    "OriginatorRayID",
    "RayID",
    "Ref",
    "RuleID",
    "Source",
];

/// Logpush's `Action` for a GraphQL `action`: the Logpush reference lists lowercase codes (`managedchallenge`), and
/// has `bypass` where the rulesets engine (and GraphQL) say `skip`.
fn logpush_action(action: &str) -> String {
    match action {
        "skip" => "bypass".to_owned(),
        other => other.to_ascii_lowercase(),
    }
}

/// The event [`firewall_event`] describes, named and typed as Logpush's `firewall_events` dataset pushes it, so
/// GraphQL and Logpush report the same events. `Datetime` (the event time, the receive second) follows
/// `timestamps`; `ClientASN` is a number; `ClientCountry` is the lowercase code Logpull and Logpush use for
/// `http_requests`; `Action` and `Source` are the lowercase codes of the Logpush reference; `Metadata` is empty.
pub fn logpush_firewall_event(
    zone: &ZoneTraffic,
    second: i64,
    index: u32,
    timestamps: TimestampFormat,
) -> Map<String, Value> {
    let g = firewall_event(zone, second, index);
    let text = |k: &str| g.get(k).and_then(Value::as_str).unwrap_or_default();
    let same = |k: &str| g.get(k).cloned().unwrap_or(Value::Null);
    let mut datetime = Vec::with_capacity(32);
    push_timestamp(
        &mut datetime,
        second.saturating_mul(1_000_000_000),
        timestamps,
    );
    let mut event = Map::new();
    let mut put = |k: &str, v: Value| {
        event.insert(k.to_owned(), v);
    };
    put("Action", json!(logpush_action(text("action"))));
    put(
        "ClientASN",
        json!(text("clientAsn").parse::<u64>().unwrap_or_default()),
    );
    put("ClientASNDescription", same("clientASNDescription"));
    put(
        "ClientCountry",
        json!(text("clientCountryName").to_ascii_lowercase()),
    );
    put("ClientIP", same("clientIP"));
    put("ClientIPClass", same("clientIPClass"));
    put("ClientRefererHost", same("clientRefererHost"));
    put("ClientRefererPath", same("clientRefererPath"));
    put("ClientRefererQuery", same("clientRefererQuery"));
    put("ClientRefererScheme", same("clientRefererScheme"));
    put("ClientRequestHost", same("clientRequestHTTPHost"));
    put("ClientRequestMethod", same("clientRequestHTTPMethodName"));
    put("ClientRequestPath", same("clientRequestPath"));
    put("ClientRequestProtocol", same("clientRequestHTTPProtocol"));
    put("ClientRequestQuery", same("clientRequestQuery"));
    put("ClientRequestScheme", same("clientRequestScheme"));
    put("ClientRequestUserAgent", same("userAgent"));
    put(
        "Datetime",
        serde_json::from_slice(&datetime).unwrap_or(Value::Null),
    );
    put("Description", same("description"));
    put("EdgeColoCode", same("edgeColoName"));
    put("EdgeResponseStatus", same("edgeResponseStatus"));
    put("Kind", same("kind"));
    put("MatchIndex", same("matchIndex"));
    put("Metadata", json!({}));
    put("OriginResponseStatus", same("originResponseStatus"));
    put("OriginatorRayID", same("originatorRayName"));
    put("RayID", same("rayName"));
    put("Ref", same("ref"));
    put("RuleID", same("ruleId"));
    put("Source", json!(text("source").to_ascii_lowercase()));
    event
}

/// Append one Logpush `firewall_events` line with its `\n`: `fields` of the event (all when `None`), the Log4Shell
/// rewrite applied when asked. The pusher and `/__sim/truth?form=logpush` both render through this.
pub fn render_logpush_firewall(
    zone: &ZoneTraffic,
    second: i64,
    index: u32,
    fields: Option<&[String]>,
    timestamps: TimestampFormat,
    log4shell_rewrite: bool,
    out: &mut Vec<u8>,
) {
    let event = project(
        &logpush_firewall_event(zone, second, index, timestamps),
        fields,
    );
    let start = out.len();
    // A map of JSON values always serialises.
    let _ = serde_json::to_writer(&mut *out, &event);
    if log4shell_rewrite {
        rewrite_log4shell(&mut out[start..]);
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logpush_names_are_sorted_and_all_rendered() {
        let mut sorted = LOGPUSH_FIREWALL_FIELDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, LOGPUSH_FIREWALL_FIELDS);
        let zone = ZoneTraffic::new(7, "3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e", "x.example", 1.0, 5.0);
        let event = logpush_firewall_event(&zone, 1_768_478_400, 0, TimestampFormat::Unixnano);
        let keys: Vec<&str> = event.keys().map(String::as_str).collect();
        assert_eq!(keys, LOGPUSH_FIREWALL_FIELDS);
        assert_eq!(event["Datetime"], json!(1_768_478_400_000_000_000_i64));
        let graphql = firewall_event(&zone, 1_768_478_400, 0);
        assert_eq!(event["RayID"], graphql["rayName"]);
        assert!(event["ClientASN"].is_u64());
        let rfc = logpush_firewall_event(&zone, 1_768_478_400, 0, TimestampFormat::Rfc3339);
        assert_eq!(rfc["Datetime"], json!("2026-01-15T12:00:00Z"));
    }
}
