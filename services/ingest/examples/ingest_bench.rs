//! Ingest benchmark, the endpoint stage: gzip NDJSON pushes → `POST /logpush/v1/…` → parts
//! stored in RL_PUSH (every push answered 200 only once stored), against
//! `gzip -d | zstd -3 -T1 | openssl dgst -sha256` over the same gzip bodies in the same run.
//!
//! ```sh
//! cargo run --release -p rainlogs-ingest --example ingest_bench -- [PUSHES] [PUSH_MIB] [CONCURRENCY]
//! ```
//! Defaults: 16 pushes of 32 MiB of NDJSON each, 4 at a time. Every push holds different
//! records (a retried push would be stored once and measure nothing); the bodies are gzipped up
//! front, so compression is not measured. Peak RSS is this process (the ingest service and the
//! pushing client); the NATS server is a separate process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rainlogs_bus::CancellationToken;
use rainlogs_config::Config;
use rainlogs_integrity::BucketPrefix;
use rainlogs_runtime::{ObjectStore, ServiceContext};
use rainlogs_schemas::events::PushEndpointSet;
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_store::{Backend, FsStore, Store};
use rainlogs_telemetry::Health;
use rainlogs_testkit::{NatsServer, free_port};
use sha2::{Digest, Sha256};

const MIB: usize = 1 << 20;
const ZONE: &str = "4c3f2e1d0a9b8c7d6e5f4a3b2c1d0e9f";
const SECRET: &str = "bench-push-secret-0123456789abcdef";

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// About `bytes` of NDJSON shaped like Cloudflare's http_requests lines, records from `first` on.
fn ndjson(first: u64, bytes: usize) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(bytes + 1024);
    let mut n = first;
    while out.len() < bytes {
        writeln!(
            out,
            "{{\"CacheCacheStatus\":\"{}\",\"ClientCountry\":\"de\",\"ClientIP\":\"198.51.100.{}\",\
             \"ClientRequestHost\":\"sovereign.example.eu\",\"ClientRequestMethod\":\"GET\",\
             \"ClientRequestPath\":\"/api/v2/items/{}\",\"ClientRequestUserAgent\":\"Mozilla/5.0 (X11; Linux x86_64)\",\
             \"EdgeResponseBytes\":{},\"EdgeResponseStatus\":{},\"EdgeStartTimestamp\":{},\
             \"OriginResponseStatus\":200,\"RayID\":\"{:016x}\",\"SecurityAction\":\"\",\"WAFAttackScore\":{}}}",
            if n.is_multiple_of(3) { "hit" } else { "miss" },
            n % 250,
            n % 10_007,
            1_000 + (n * 7919) % 90_000,
            if n.is_multiple_of(50) { 404 } else { 200 },
            1_767_225_600_000_000_000_u64 + n * 1_000_000,
            n.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            n % 99,
        )
        .unwrap();
        n += 1;
    }
    (out, n - first)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Seconds `gzip -d | zstd -3 -T1 | openssl dgst -sha256` takes over the bodies.
fn baseline(bodies: &[Vec<u8>]) -> f64 {
    let started = Instant::now();
    let mut child = Command::new("sh")
        .args([
            "-c",
            "gzip -d | zstd -3 -T1 -c | openssl dgst -sha256 > /dev/null",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("gzip, zstd and openssl must be installed");
    let mut stdin = child.stdin.take().unwrap();
    for body in bodies {
        stdin.write_all(body).unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let pushes: usize = args.next().map_or(16, |a| a.parse().unwrap());
    let push_mib: usize = args.next().map_or(32, |a| a.parse().unwrap());
    let concurrency: usize = args.next().map_or(4, |a| a.parse().unwrap());

    let mut bodies = Vec::with_capacity(pushes);
    let (mut records, mut plain) = (0u64, 0usize);
    for _ in 0..pushes {
        let (text, count) = ndjson(records, push_mib * MIB);
        records += count;
        plain += text.len();
        bodies.push(gzip(&text));
    }
    let compressed: usize = bodies.iter().map(Vec::len).sum();
    let mib = plain as f64 / MIB as f64;
    println!(
        "content: {pushes} pushes x {push_mib} MiB = {mib:.1} MiB NDJSON, {records} records, \
         gzip {:.1} MiB (ratio {:.2})",
        compressed as f64 / MIB as f64,
        plain as f64 / compressed as f64
    );
    let base = baseline(&bodies);
    println!(
        "baseline gzip -d | zstd -3 -T1 | openssl dgst -sha256: {base:.2} s, {:.0} MiB/s",
        mib / base
    );

    let nats = NatsServer::start();
    let bus = rainlogs_bus::connect(&nats.url).await.unwrap();
    rainlogs_bus::provision(&bus, 1).await.unwrap();
    let endpoint = Envelope::new(
        "bench",
        Some(ZONE.into()),
        Actor::service("bench"),
        Event::PushEndpointSet(PushEndpointSet {
            zone_id: ZONE.into(),
            secret_sha256: Sha256::digest(SECRET.as_bytes()).to_vec(),
            dataset: None,
        }),
    );
    bus.publish(&subjects::control("bench"), &endpoint)
        .await
        .unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = Config::default();
    config.ingest.listen = Some(([127, 0, 0, 1], port).into());
    config.telemetry.log_level = "warn".into();
    let shutdown = CancellationToken::new();
    let ctx = ServiceContext {
        config: Arc::new(config),
        bus: bus.clone(),
        db: sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .unwrap(),
        store: ObjectStore {
            store: Store::Single(Backend::Fs(FsStore::open(store_dir.path()).await.unwrap())),
            prefix: BucketPrefix::default(),
        },
        health: Health::default(),
        telemetry: rainlogs_telemetry::init(&Default::default()).unwrap(),
        shutdown: shutdown.clone(),
    };
    let service = tokio::spawn(rainlogs_ingest::run(ctx));
    let url = format!("http://127.0.0.1:{port}/logpush/v1/{ZONE}/http_requests");
    let client = reqwest::Client::new();
    // Ready once the endpoint is known: a destination check answers 200.
    loop {
        let check = client
            .post(&url)
            .bearer_auth(SECRET)
            .body(gzip(b"{\"content\":\"tests\"}"))
            .send()
            .await;
        if check.is_ok_and(|r| r.status() == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_before = peak_rss_mib();

    let started = Instant::now();
    let bodies = Arc::new(bodies);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (client, url, bodies, next) =
                (client.clone(), url.clone(), bodies.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(body) = bodies.get(i) else { return };
                    let response = client
                        .post(&url)
                        .bearer_auth(SECRET)
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200, "{:?}", response.text().await);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let took = started.elapsed().as_secs_f64();

    let mut stream = bus.js.get_stream("RL_PUSH").await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    println!(
        "ingest ({concurrency} at a time) -> {} parts in RL_PUSH ({:.1} MiB stored): {took:.2} s, \
         {:.0} MiB/s, {:.0}k records/s",
        state.messages,
        state.bytes as f64 / MIB as f64,
        mib / took,
        records as f64 / took / 1000.0
    );
    println!("ratio to baseline: {:.2}", base / took);
    println!(
        "peak RSS: {rss_before:.0} MiB before the pushes (bodies {:.0} MiB), {:.0} MiB at the end",
        compressed as f64 / MIB as f64,
        peak_rss_mib()
    );
    shutdown.cancel();
    service.await.unwrap().unwrap();
}
