//! Firewall (security) events for GraphQL `firewallEventsAdaptive`, one pure function of (seed, zone, second, index).

use serde_json::{Map, Value, json};

use super::ZoneTraffic;
use super::pools::{COUNTRIES, Pools, QUERIES, RULES, USER_AGENTS};
use super::render::push_rfc3339_secs;
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
