//! Scale run: one collector process with many Enterprise (Logpull) zones against the simulator.
//!
//! The simulator's clock starts frozen; each round moves it one window (a minute) ahead and
//! measures how long the collector takes, in real time, until every zone has closed that window.
//! Production gives it the window length (60 s) for that, so the ratio "time to close one minute
//! of every zone / 60 s" is the headroom (below 1 means the windows are on time). Peak RSS is this
//! process: the collector plus the simulator serving it (the simulator's share is reported
//! separately by a run with zero rounds).
//!
//! ```sh
//! cargo run --release -p rainlogs-collector --example scale -- [ZONES] [ROUNDS]
//! ```
//! Defaults: 1000 zones, 5 rounds. Needs `nats-server` 2.11+ (tools/dev-env installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

#[path = "../tests/collector/support.rs"]
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use rainlogs_schemas::events::Method;
use support::{ENTERPRISE_ZONE, FULL_TOKEN, Harness, scenario};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn zone_id(n: usize) -> String {
    format!("{n:032x}")
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let zones: usize = args.next().map_or(1000, |a| a.parse().expect("ZONES"));
    let rounds: usize = args.next().map_or(5, |a| a.parse().expect("ROUNDS"));

    let mut scenario = scenario();
    let template = scenario
        .zones
        .iter()
        .find(|z| z.id == ENTERPRISE_ZONE)
        .cloned()
        .expect("enterprise zone");
    scenario.zones.clear();
    for n in 1..=zones {
        let mut zone = template.clone();
        zone.id = zone_id(n);
        zone.name = format!("zone{n}.example.eu");
        // About 60 records per zone and minute: the run measures per-window overhead.
        zone.rate = 1.0;
        scenario.zones.push(zone);
    }
    let h = Harness::start_with(scenario).await;
    let mut settings = h.settings.clone();
    // A short backfill (past Logpull's 5-minute delay): the run measures steady state.
    settings.backfill = Duration::from_secs(600);
    settings.tick = Duration::from_millis(200);
    let _collector = h.start_collector_with(settings);
    for n in 1..=zones {
        h.add_zone(&zone_id(n), Method::Logpull, "default", FULL_TOKEN)
            .await;
    }

    // Window ends per zone, from the collector's cursor bucket.
    let mut watch_store = h.bus.js.get_key_value("RL_COLLECTOR_CURSORS").await.ok();
    let deadline = Instant::now() + Duration::from_secs(600);
    while watch_store.is_none() {
        assert!(Instant::now() < deadline, "cursor bucket never appeared");
        tokio::time::sleep(Duration::from_millis(200)).await;
        watch_store = h.bus.js.get_key_value("RL_COLLECTOR_CURSORS").await.ok();
    }
    let store = watch_store.expect("cursor bucket");
    // With history: zones that closed their windows before the watch started count too.
    let mut watch = store.watch_with_history(">").await.expect("watch cursors");
    let mut ends: HashMap<String, i64> = HashMap::new();
    let mut wait_all = async |target: i64, ends: &mut HashMap<String, i64>| {
        let deadline = Instant::now() + Duration::from_secs(600);
        while ends.len() < zones || ends.values().filter(|end| **end >= target).count() < zones {
            let entry = tokio::time::timeout(Duration::from_secs(5), watch.next()).await;
            if let Ok(Some(Ok(entry))) = entry {
                let end = serde_json::from_slice::<serde_json::Value>(&entry.value)
                    .ok()
                    .and_then(|v| v.get("end").and_then(serde_json::Value::as_i64))
                    .unwrap_or(0);
                let zone = entry.key.split('.').next().unwrap_or_default().to_owned();
                let slot = ends.entry(zone).or_insert(0);
                *slot = (*slot).max(end);
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {zones} zones reached {target}",
                ends.values().filter(|end| **end >= target).count()
            );
        }
    };

    let settle = Instant::now();
    // Frozen clock: every zone converges on the same newest window. Wait until all have one
    // cursor, then until all reach the newest end any of them has.
    wait_all(i64::MIN, &mut ends).await;
    loop {
        let newest = *ends.values().max().expect("zones");
        wait_all(newest, &mut ends).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        if *ends.values().max().expect("zones") == newest {
            break;
        }
    }
    println!(
        "{zones} zones onboarded and caught up in {:.1} s; peak RSS {:.0} MiB",
        settle.elapsed().as_secs_f64(),
        peak_rss_mib()
    );

    let mut worst = Duration::ZERO;
    let mut target = *ends.values().min().expect("zones");
    for round in 1..=rounds {
        h.sim.advance(Duration::from_secs(60));
        target += 60;
        let started = Instant::now();
        wait_all(target, &mut ends).await;
        let took = started.elapsed();
        worst = worst.max(took);
        println!(
            "round {round}: one more minute closed for all {zones} zones in {:.2} s (ratio to the 60 s budget {:.3})",
            took.as_secs_f64(),
            took.as_secs_f64() / 60.0
        );
    }
    println!(
        "worst round {:.2} s = {:.3} of the 60 s window; peak RSS {:.0} MiB",
        worst.as_secs_f64(),
        worst.as_secs_f64() / 60.0,
        peak_rss_mib()
    );
}
