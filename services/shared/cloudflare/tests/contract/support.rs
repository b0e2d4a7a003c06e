//! Shared fixtures: the example scenario's ids, a simulator with a frozen clock, a fast client configuration.

use cf_sim::{ClockStart, Fault, RunningSim, Scenario, SimOptions, Simulator};
use futures::StreamExt;
use rainlogs_cloudflare::policy::backoff::Backoff;
use rainlogs_cloudflare::{
    ApiToken, BreakerConfig, CfError, ClientConfig, CloudflareClient, FieldList, LogpullItem,
    LogpullQuery, LogpullWindow, RateLimits, RetryPolicy, TokenClient, WindowSummary,
};
use std::time::Duration;
use time::OffsetDateTime;
use time::macros::datetime;

pub const FREE_ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
pub const PRO_ZONE: &str = "1d5fdc9e88c8a8c4518b068cd94331fe";
pub const BUSINESS_ZONE: &str = "2a1f0a9b7c3d4e5f60718293a4b5c6d7";
pub const ENTERPRISE_ZONE: &str = "3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e";
pub const SOVEREIGN_ZONE: &str = "4c3f2e1d0a9b8c7d6e5f4a3b2c1d0e9f";
pub const EU_ACCOUNT: &str = "9a7806061c88ada191ed06f989cc3dac";
pub const SOVEREIGN_ACCOUNT: &str = "5d0c1e2f3a4b5c6d7e8f9a0b1c2d3e4f";

pub const FULL_TOKEN: &str = "cfut_full_access_token_0000000000000000";
pub const LOGS_READ_ONLY_TOKEN: &str = "cfut_logs_read_only_00000000000000000000";
pub const ANALYTICS_ONLY_TOKEN: &str = "cfut_analytics_only_00000000000000000000";
pub const ACCOUNT_TOKEN: &str = "cfat_account_token_000000000000000000000";
pub const DISABLED_TOKEN: &str = "cfut_disabled_token_00000000000000000000";

pub const FIELDS: &[&str] = &[
    "RayID",
    "EdgeStartTimestamp",
    "ClientIP",
    "ClientRequestURI",
    "EdgeResponseStatus",
    "EdgeResponseBytes",
];

/// The simulator's frozen "now".
pub fn sim_now() -> OffsetDateTime {
    datetime!(2026-01-15 12:00 UTC)
}

pub async fn start_sim() -> RunningSim {
    let options = SimOptions {
        clock: Some(ClockStart::FrozenAt(sim_now())),
        ..SimOptions::default()
    };
    Simulator::start(Scenario::example(), options)
        .await
        .unwrap()
}

/// Small backoffs and server waits so fault tests stay fast; no client-side limits unless a test sets them.
pub fn fast_config(sim: &RunningSim) -> ClientConfig {
    ClientConfig {
        retry: RetryPolicy {
            max_attempts: 4,
            backoff: Backoff {
                base: Duration::from_millis(5),
                max: Duration::from_millis(40),
            },
            max_server_wait: Duration::from_secs(2),
        },
        limits: RateLimits::UNLIMITED,
        limiter_max_wait: Duration::from_secs(2),
        breaker: BreakerConfig {
            failure_threshold: 50,
            open_for: Duration::from_millis(200),
        },
        body_idle_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        websocket_ping_after: Duration::from_millis(300),
        websocket_pong_timeout: Duration::from_millis(300),
        ..ClientConfig::with_base_url(sim.base_url())
    }
}

pub fn client(config: ClientConfig, token: &str) -> (CloudflareClient, TokenClient) {
    let shared = CloudflareClient::new(config).unwrap();
    let scoped = shared.with_token(ApiToken::new(token));
    (shared, scoped)
}

pub fn fields() -> FieldList {
    FieldList::new(FIELDS.iter().copied()).unwrap()
}

/// A one-minute window `minutes_back` minutes before the simulator's now (always servable).
pub fn window(minutes_back: i64, seconds: i64) -> LogpullWindow {
    let end = sim_now() - time::Duration::minutes(minutes_back);
    LogpullWindow::new(end - time::Duration::seconds(seconds), end).unwrap()
}

pub fn query(zone: &str, window: LogpullWindow) -> LogpullQuery {
    LogpullQuery::new(zone, window, fields())
}

/// Everything the stream yielded before its terminal item, and that item.
pub async fn drain(
    client: &TokenClient,
    query: &LogpullQuery,
) -> (Vec<Vec<u8>>, Result<WindowSummary, CfError>) {
    let mut stream = match client.logpull_received(query).await {
        Ok(stream) => stream,
        Err(error) => return (Vec::new(), Err(error)),
    };
    let mut lines = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(LogpullItem::Line(line)) => lines.push(line.to_vec()),
            Ok(LogpullItem::Complete(summary)) => {
                assert!(stream.next().await.is_none(), "nothing may follow Complete");
                return (lines, Ok(summary));
            }
            Err(error) => {
                assert!(
                    stream.next().await.is_none(),
                    "nothing may follow a terminal error"
                );
                return (lines, Err(error));
            }
        }
    }
    panic!("the stream ended without a terminal item");
}

/// `/__sim/truth` for a Logpull query, as sorted lines without terminators.
pub async fn truth(sim: &RunningSim, query: &LogpullQuery) -> Vec<Vec<u8>> {
    let url = format!(
        "{}/__sim/truth?zone={}&start={}&end={}&fields={}&timestamps={}",
        sim.root_url(),
        query.zone_id,
        query.window.start().unix_timestamp(),
        query.window.end().unix_timestamp(),
        query.fields.to_query_value(),
        query.timestamps.as_query_value(),
    );
    let body = reqwest::get(url)
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut lines: Vec<Vec<u8>> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    lines.sort();
    lines
}

pub fn sorted(mut lines: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    lines.sort();
    lines
}

/// Requests the simulator answered on paths ending with `suffix`, as their statuses.
pub fn statuses(sim: &RunningSim, suffix: &str) -> Vec<u16> {
    sim.requests()
        .iter()
        .filter(|r| r.path.ends_with(suffix))
        .map(|r| r.status)
        .collect()
}

pub fn inject(sim: &RunningSim, fault: Fault) {
    assert!(fault.validate().is_ok(), "invalid fault {fault:?}");
    sim.inject(fault);
}
