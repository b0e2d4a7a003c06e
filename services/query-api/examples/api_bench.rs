//! API benchmark. Target: ≥ 10k authenticated GET/s with p99 < 20 ms on loopback.
//!
//! Starts the query-api in this process against real NATS and PostgreSQL (the test stack, with
//! rate limits lifted so they do not cap the measurement), registers a tenant with one zone and a
//! sealed log, then drives it with `wrk` for each route:
//! * `GET /health`: the baseline, the HTTP stack alone (no authentication, no database);
//! * `GET /api/v1/retention`, `GET /api/v1/zones` and `GET /api/v1/logs/jobs`: authenticated
//!   with an API key, tenant-scoped queries, and one audit record per request (every read of
//!   tenant data is audited).
//!
//! Each line prints requests/s, p99 and the ratio to the baseline of the same run. Afterwards it
//! reports how long the audit projection took to hold every audited read.
//!
//! ```sh
//! tools/dev-env up && source var/dev-env.sh
//! cargo run --release -p rainlogs-query-api --example api_bench -- [SECONDS] [CONNECTIONS]
//! ```
//! Defaults: 10 s per route, 64 connections, 2 wrk threads. Needs `wrk` (Debian package).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{ENTERPRISE_ZONE, Stack, WindowSpec};

struct Measured {
    requests_per_sec: f64,
    p99_ms: f64,
    non_2xx: u64,
    requests: u64,
}

/// `12.34ms`, `850.00us`, `1.02s` → milliseconds.
fn millis(text: &str) -> f64 {
    let (number, unit) = text
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|at| text.split_at(at))
        .expect("a unit");
    let value: f64 = number.parse().expect("a number");
    match unit {
        "us" => value / 1000.0,
        "ms" => value,
        "s" => value * 1000.0,
        "m" => value * 60_000.0,
        other => panic!("unknown unit {other}"),
    }
}

fn wrk(url: &str, key: Option<&str>, seconds: u32, connections: u32) -> Measured {
    let mut command = Command::new("wrk");
    command.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(key) = key {
        command.args(["-H", &format!("Authorization: Bearer {key}")]);
    }
    let output = command
        .arg(url)
        .output()
        .expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "wrk failed: {text}");
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
    };
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("request count");
    Measured {
        requests_per_sec: field("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .expect("Requests/sec"),
        p99_ms: millis(&field("99%").expect("99% latency")),
        non_2xx: field("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        requests,
    }
}

async fn audit_rows(stack: &Stack, tenant: &str) -> i64 {
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM audit_log WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(&stack.pool)
        .await
        .expect("count audit records");
    rows
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u32 = args.next().map_or(10, |s| s.parse().expect("SECONDS"));
    let connections: u32 = args.next().map_or(64, |s| s.parse().expect("CONNECTIONS"));
    let unlimited = rainlogs_query_api::Rate {
        per_second: 1e9,
        burst: u32::MAX,
    };
    let options = rainlogs_query_api::ApiOptions {
        ip_rate: unlimited,
        tenant_rate: unlimited,
        ..Default::default()
    };
    // RUST_LOG, when set, replaces the log filter (e.g. `info,rainlogs_db=debug` shows runs).
    let stack = Stack::start_with(options, |config| {
        if let Ok(filter) = std::env::var("RUST_LOG") {
            config.telemetry.log_level = filter;
        }
    })
    .await;
    let (tenant, key) = stack.register("bench@example.eu").await;
    let added = stack.add_zone(&key, ENTERPRISE_ZONE).await;
    assert_eq!(added.status, 201, "{}", added.json);
    stack
        .seal_log(
            &tenant,
            ENTERPRISE_ZONE,
            &[
                WindowSpec::Archive(b"{\"RayID\":\"1\"}\n".to_vec()),
                WindowSpec::Empty,
                WindowSpec::Archive(b"{\"RayID\":\"2\"}\n".to_vec()),
            ],
        )
        .await;
    let audited_before = audit_rows(&stack, &tenant).await;

    // wrk runs on this machine's cores too; the server keeps the rest.
    let baseline = wrk(&stack.url("/health"), None, seconds, connections);
    println!(
        "{:<22} {:>9.0} req/s  p99 {:>6.2} ms  (baseline)",
        "GET /health", baseline.requests_per_sec, baseline.p99_ms
    );
    let mut audited = 0;
    for path in ["/api/v1/retention", "/api/v1/zones", "/api/v1/logs/jobs"] {
        let m = wrk(&stack.url(path), Some(&key), seconds, connections);
        assert_eq!(m.non_2xx, 0, "{path}: every request answered 200");
        audited += m.requests;
        println!(
            "{:<22} {:>9.0} req/s  p99 {:>6.2} ms  ratio {:.2}",
            format!("GET {path}"),
            m.requests_per_sec,
            m.p99_ms,
            m.requests_per_sec / baseline.requests_per_sec
        );
    }
    // wrk counts only completed requests; a few more may have been audited as it stopped.
    let started = Instant::now();
    let target = audited_before + i64::try_from(audited).unwrap_or(i64::MAX);
    loop {
        let rows = audit_rows(&stack, &tenant).await;
        if rows >= target {
            println!(
                "audit projection: {rows} records, caught up {:.1} s after the load ended",
                started.elapsed().as_secs_f64()
            );
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            println!("audit projection: {rows} of {target} records after 600 s");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
