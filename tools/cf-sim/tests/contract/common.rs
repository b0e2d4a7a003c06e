//! Shared helpers: a simulator frozen at a known instant, HTTP clients and small assertions.

use std::time::Duration;

use cf_sim::{ClockStart, RunningSim, Scenario, SimOptions, Simulator};
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;

pub const T0: OffsetDateTime = datetime!(2026-01-15 12:00 UTC);
pub const FREE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
pub const PRO: &str = "1d5fdc9e88c8a8c4518b068cd94331fe";
pub const BUSINESS: &str = "2a1f0a9b7c3d4e5f60718293a4b5c6d7";
pub const ENTERPRISE: &str = "3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e";
pub const SOVEREIGN: &str = "4c3f2e1d0a9b8c7d6e5f4a3b2c1d0e9f";
pub const BUSINESS_ACCOUNT: &str = "9a7806061c88ada191ed06f989cc3dac";
pub const FULL: &str = "cfut_full_access_token_0000000000000000";
pub const LOGS_ONLY: &str = "cfut_logs_read_only_00000000000000000000";
pub const ANALYTICS_ONLY: &str = "cfut_analytics_only_00000000000000000000";
pub const ACCOUNT_TOKEN: &str = "cfat_account_token_000000000000000000000";
pub const DISABLED: &str = "cfut_disabled_token_00000000000000000000";
pub const KEY_EMAIL: &str = "ops@example.com";
pub const KEY: &str = "c2547eb745079dac9320b638f5e225cf483cc";

/// The example scenario with generous rate limits, frozen at `T0`.
pub fn scenario() -> Scenario {
    let mut s = Scenario::example();
    s.limits.logpull_per_zone_per_min = 10_000;
    s.limits.global_per_5min = 100_000;
    s.limits.graphql_per_5min = 10_000;
    s.limits.per_ip_per_sec = 100_000;
    s
}

pub async fn start() -> RunningSim {
    start_with(scenario()).await
}

pub async fn start_with(scenario: Scenario) -> RunningSim {
    start_with_options(
        scenario,
        SimOptions {
            clock: Some(ClockStart::FrozenAt(T0)),
            ..SimOptions::default()
        },
    )
    .await
}

pub async fn start_with_options(scenario: Scenario, options: SimOptions) -> RunningSim {
    Simulator::start(scenario, options)
        .await
        .expect("simulator starts")
}

/// A client that decodes gzip transparently (it sends `Accept-Encoding: gzip`).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// A client that leaves `Content-Encoding` alone.
pub fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// `(start, end)` of a 60 s window ending 10 minutes before `T0`.
pub fn window() -> (OffsetDateTime, OffsetDateTime) {
    let end = T0 - Duration::from_secs(600);
    (end - Duration::from_secs(60), end)
}

pub fn received_url(
    sim: &RunningSim,
    zone: &str,
    start: OffsetDateTime,
    end: OffsetDateTime,
    extra: &str,
) -> String {
    format!(
        "{}/zones/{zone}/logs/received?start={}&end={}{extra}",
        sim.base_url(),
        start.unix_timestamp(),
        end.unix_timestamp()
    )
}

pub async fn get(sim: &RunningSim, token: &str, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

pub async fn get_json(sim: &RunningSim, token: &str, path: &str) -> (u16, Value) {
    let resp = get(sim, token, path).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

/// Lines of an NDJSON body, each with its trailing `\n`, sorted (a multiset in canonical order).
pub fn sorted_lines(body: &str) -> Vec<String> {
    let mut lines: Vec<String> = body.split_inclusive('\n').map(str::to_owned).collect();
    lines.sort();
    lines
}

pub fn error_codes(body: &Value) -> Vec<i64> {
    body["errors"]
        .as_array()
        .expect("errors array")
        .iter()
        .map(|e| e["code"].as_i64().expect("code"))
        .collect()
}
