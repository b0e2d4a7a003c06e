//! Measures Logpull streaming through the client against the in-process simulator, as a ratio to reading the same
//! responses' raw bytes with plain reqwest (same simulator, same window), so the client's own cost shows.
//!
//! Run: `cargo run --release -p rainlogs-cloudflare --example logpull_throughput [minutes]`

use cf_sim::{ClockStart, Scenario, SimOptions, Simulator};
use futures::StreamExt;
use rainlogs_cloudflare::{
    ApiToken, ClientConfig, CloudflareClient, FieldList, LogpullItem, LogpullQuery, LogpullWindow,
    RateLimits,
};
use std::time::Instant;
use time::macros::datetime;

const ZONE: &str = "3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e";
const TOKEN: &str = "cfut_full_access_token_0000000000000000";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let minutes: i64 = std::env::args()
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(60);
    let now = datetime!(2026-01-15 12:00 UTC);
    let sim = Simulator::start(
        Scenario::example(),
        SimOptions {
            clock: Some(ClockStart::FrozenAt(now)),
            ..SimOptions::default()
        },
    )
    .await?;
    let fields = FieldList::new(cf_sim::http_request_fields())?;
    let end = now - time::Duration::minutes(10);
    let window = LogpullWindow::new(end - time::Duration::minutes(minutes), end)?;
    let query = LogpullQuery::new(ZONE, window, fields.clone());
    let client = CloudflareClient::new(ClientConfig {
        limits: RateLimits::UNLIMITED,
        ..ClientConfig::with_base_url(sim.base_url())
    })?
    .with_token(ApiToken::new(TOKEN));

    for gzip in [true, false] {
        // Baseline: the same request, body bytes only (no decoding, no splitting).
        let url = format!(
            "{}/zones/{ZONE}/logs/received?start={}&end={}&fields={}&timestamps=unixnano",
            sim.base_url(),
            window.start().unix_timestamp(),
            window.end().unix_timestamp(),
            fields.to_query_value()
        );
        let raw = reqwest::Client::builder().no_gzip().build()?;
        let mut request = raw.get(&url).bearer_auth(TOKEN);
        if gzip {
            request = request.header("accept-encoding", "gzip");
        }
        let started = Instant::now();
        let mut body = request.send().await?.error_for_status()?.bytes_stream();
        let mut wire = 0u64;
        while let Some(chunk) = body.next().await {
            wire += chunk?.len() as u64;
        }
        let baseline = started.elapsed();

        let started = Instant::now();
        let (lines, summary) = if gzip {
            let mut stream = client.logpull_received(&query).await?;
            let mut lines = 0u64;
            let mut summary = None;
            while let Some(item) = stream.next().await {
                match item? {
                    LogpullItem::Line(_) => lines += 1,
                    LogpullItem::Complete(s) => summary = Some(s),
                }
            }
            (lines, summary)
        } else {
            // The client always asks for gzip; for the identity case decode nothing and split the raw body.
            let mut splitter = rainlogs_cloudflare::ndjson::LineSplitter::default();
            let mut out = Vec::new();
            let mut body = raw
                .get(&url)
                .bearer_auth(TOKEN)
                .send()
                .await?
                .bytes_stream();
            let mut lines = 0u64;
            while let Some(chunk) = body.next().await {
                splitter.push(chunk?, &mut out)?;
                lines += out.len() as u64;
                out.clear();
            }
            (lines + u64::from(splitter.finish().is_some()), None)
        };
        let measured = started.elapsed();
        let plain = summary.map_or(wire, |s| s.body_bytes);
        println!(
            "gzip={gzip}: {lines} lines, {:.1} MiB NDJSON ({:.1} MiB on the wire); client {:.0} MiB/s, raw read {:.0} MiB/s (NDJSON-equivalent); ratio {:.2}",
            plain as f64 / 1048576.0,
            wire as f64 / 1048576.0,
            plain as f64 / 1048576.0 / measured.as_secs_f64(),
            plain as f64 / 1048576.0 / baseline.as_secs_f64(),
            baseline.as_secs_f64() / measured.as_secs_f64(),
        );
    }
    sim.shutdown().await;
    Ok(())
}
