//! Logpull serving throughput on loopback, against a baseline that serves pre-rendered bytes.
//!
//! `cargo run --release -p cf-sim --example bench_logpull [-- --rate 5000 --secs 600 --full-rate 800 --full-secs 300]`
//!
//! For each field set it pulls one window through the simulator (rendering on the fly, random order) and then
//! pulls the same number of bytes from a plain server that only copies a pre-rendered buffer, using the same
//! HTTP stack and client, and prints MB/s, lines/s and the ratio.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cf_sim::{ClockStart, Scenario, SimOptions, Simulator, ZoneSpec};
use futures::StreamExt;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Body, Response, Server};
use time::macros::datetime;

const ZONE: &str = "3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e";
const TOKEN: &str = "cfut_full_access_token_0000000000000000";
const BASELINE_CHUNK: usize = 256 * 1024;

struct Measured {
    bytes: u64,
    lines: u64,
    elapsed: Duration,
}

impl Measured {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

/// Newlines in `bytes`, eight at a time (the client must not be the bottleneck it is measuring).
fn count_newlines(bytes: &[u8]) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = bytes.chunks_exact(8);
    let mut n = 0u64;
    for c in &mut chunks {
        let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
            ^ (ONES * u64::from(b'\n'));
        // Exact zero-byte test (no false positives from borrows).
        let zero = !(((word & !HIGHS) + !HIGHS) | word | !HIGHS);
        n += u64::from(zero.count_ones());
    }
    n + chunks.remainder().iter().filter(|b| **b == b'\n').count() as u64
}

async fn drain(url: &str, token: Option<&str>) -> Measured {
    let client = reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("client");
    let mut req = client.get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let started = Instant::now();
    let resp = req.send().await.expect("request");
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    let mut stream = resp.bytes_stream();
    let (mut bytes, mut lines) = (0u64, 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("body chunk");
        bytes += chunk.len() as u64;
        lines += count_newlines(&chunk);
    }
    Measured {
        bytes,
        lines,
        elapsed: started.elapsed(),
    }
}

/// The first `limit` bytes of a response (untimed), to feed the baseline server the same kind of bytes.
async fn capture(url: &str, token: &str, limit: usize) -> Vec<u8> {
    let client = reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("client");
    let resp = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let mut stream = resp.bytes_stream();
    let mut kept = Vec::with_capacity(limit);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("body chunk");
        kept.extend_from_slice(&chunk[..chunk.len().min(limit - kept.len())]);
        if kept.len() == limit {
            break;
        }
    }
    kept
}

/// Serves `total` bytes by cycling through `buffer` in zero-copy slices: the cost floor of HTTP on loopback.
struct Baseline {
    buffer: Bytes,
    total: u64,
}

impl poem::Endpoint for Baseline {
    type Output = Response;

    async fn call(&self, _req: poem::Request) -> poem::Result<Response> {
        let (buffer, total) = (self.buffer.clone(), self.total);
        let stream = futures::stream::unfold(0u64, move |sent| {
            let buffer = buffer.clone();
            async move {
                if sent >= total {
                    return None;
                }
                let offset = (sent % buffer.len() as u64) as usize;
                let len = BASELINE_CHUNK
                    .min(buffer.len() - offset)
                    .min((total - sent) as usize);
                Some((
                    Ok::<_, std::io::Error>(buffer.slice(offset..offset + len)),
                    sent + len as u64,
                ))
            }
        });
        Ok(Response::builder()
            .content_type("application/json")
            .body(Body::from_bytes_stream(stream)))
    }
}

async fn baseline_server(buffer: Bytes, total: u64) -> (String, tokio::sync::oneshot::Sender<()>) {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let addr = acceptor.local_addr()[0]
        .as_socket_addr()
        .copied()
        .expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.await;
        };
        let _ = Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                Baseline { buffer, total },
                shutdown,
                Some(Duration::from_secs(1)),
            )
            .await;
    });
    (format!("http://{addr}/"), tx)
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run(label: &str, rate: f64, secs: u64, fields: Option<String>) {
    let now = datetime!(2026-01-15 12:00 UTC);
    let mut scenario = Scenario::example();
    scenario.seed = 11;
    scenario.limits.logpull_per_zone_per_min = 1_000_000;
    scenario.limits.global_per_5min = 1_000_000;
    scenario.zones.retain(|z| z.id == ZONE);
    scenario.zones = vec![ZoneSpec {
        rate,
        ..scenario.zones[0].clone()
    }];
    let sim = Simulator::start(
        scenario,
        SimOptions {
            clock: Some(ClockStart::FrozenAt(now)),
            ..SimOptions::default()
        },
    )
    .await
    .expect("simulator");
    let end = now.unix_timestamp() - 600;
    let start = end - secs as i64;
    let fields = fields.map(|f| format!("&fields={f}")).unwrap_or_default();
    let url = format!(
        "{}/zones/{ZONE}/logs/received?start={start}&end={end}{fields}",
        sim.base_url()
    );
    let sample = capture(&url, TOKEN, 128 << 20).await;
    let sim_run = drain(&url, Some(TOKEN)).await;
    sim.shutdown().await;

    let (base_url, stop) = baseline_server(Bytes::from(sample), sim_run.bytes).await;
    let base_run = drain(&base_url, None).await;
    let _ = stop.send(());

    println!(
        "{label}: simulator {:.0} MB/s, {:.0} lines/s ({:.1} MB, {} lines, avg {:.0} B/line) | baseline copy {:.0} MB/s | ratio {:.2}",
        sim_run.mb_per_s(),
        sim_run.lines as f64 / sim_run.elapsed.as_secs_f64(),
        sim_run.bytes as f64 / 1e6,
        sim_run.lines,
        sim_run.bytes as f64 / sim_run.lines.max(1) as f64,
        base_run.mb_per_s(),
        sim_run.mb_per_s() / base_run.mb_per_s(),
    );
}

#[tokio::main]
async fn main() {
    let rate = arg("--rate", 5000.0);
    let secs = arg("--secs", 600.0) as u64;
    let full_rate = arg("--full-rate", 800.0);
    let full_secs = arg("--full-secs", 300.0) as u64;
    run("default 9 fields", rate, secs, None).await;
    run(
        "all fields",
        full_rate,
        full_secs,
        Some(cf_sim::http_request_fields().join(",")),
    )
    .await;
}
