//! A three-node JetStream cluster, every stream and bucket at three replicas: killing the node
//! that leads RL_BATCH while zones are collected loses nothing, duplicates nothing and declares
//! no gap. Leader elections are routine; the collector rides them out.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rainlogs_bus::{Bus, StreamStatus, definitions};
use rainlogs_schemas::events::{Method, Window, WindowOutcome};
use rainlogs_testkit::NatsCluster;

use crate::support::*;

/// Moves the simulated clock in small steps so the live tail streams each second.
async fn play(h: &Harness, seconds: u64) {
    for _ in 0..seconds / 5 {
        h.sim.advance(Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Connects and provisions once the cluster has elected its first meta leader.
async fn provisioned(cluster: &NatsCluster) -> Bus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = async {
            let bus = rainlogs_bus::connect_any(&cluster.urls())
                .await
                .map_err(|e| e.to_string())?;
            rainlogs_bus::provision(&bus, 3)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(bus)
        };
        match attempt.await {
            Ok(bus) => return bus,
            Err(e) => {
                assert!(Instant::now() < deadline, "cluster never formed: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

async fn leader_of(bus: &Bus, stream: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = bus.js.get_stream(stream).await
            && let Ok(info) = s.info().await
            && let Some(leader) = info.cluster.as_ref().and_then(|c| c.leader.clone())
        {
            return leader;
        }
        assert!(Instant::now() < deadline, "{stream} has no leader");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_leader_kill_during_collection_loses_nothing_and_declares_no_gap() {
    let mut cluster = NatsCluster::start(3);
    let bus = provisioned(&cluster).await;
    // Every stream and both collector buckets really have three replicas.
    for report in rainlogs_bus::check(&bus, 3).await.expect("check") {
        assert_eq!(report.status, StreamStatus::UpToDate, "{report:?}");
    }
    for stream in [
        "KV_RL_COLLECTOR_LEASES",
        "KV_RL_COLLECTOR_CURSORS",
        definitions::BATCH,
    ] {
        let mut s = bus.js.get_stream(stream).await.expect("stream");
        let info = s.info().await.expect("info");
        assert_eq!(info.config.num_replicas, 3, "{stream}");
    }

    let h = Harness::start_on_bus(bus, scenario()).await;
    // Production's lease TTL: what the collector holds while JetStream elects a leader.
    let mut settings = h.settings.clone();
    settings.lease_ttl = Duration::from_secs(15);
    h.add_zone(ENTERPRISE_ZONE, Method::Logpull, "default", FULL_TOKEN)
        .await;
    h.add_zone(BUSINESS_ZONE, Method::InstantLogs, "default", FULL_TOKEN)
        .await;
    let collector = h.start_collector_with(settings);
    h.wait_for_health(BUSINESS_ZONE, "live tail up", |health| {
        health.method == Some(Method::InstantLogs)
    })
    .await;
    let start = t0().unix_timestamp();
    play(&h, 65).await;
    let end = t0().unix_timestamp() - 300;
    h.wait_for(ENTERPRISE_ZONE, "backfill", |e| {
        e.closed_until(HTTP).is_some_and(|until| until >= end)
    })
    .await;
    h.wait_for(BUSINESS_ZONE, "a first live window", |e| {
        e.closed_until(HTTP).is_some()
    })
    .await;

    // The node leading the batch stream dies while records keep arriving.
    let leader = leader_of(&h.bus, definitions::BATCH).await;
    cluster.kill(&leader);
    play(&h, 120).await;
    let new_leader = leader_of(&h.bus, definitions::BATCH).await;
    assert_ne!(new_leader, leader);
    cluster.restart(&leader);
    play(&h, 60).await;

    let until = h.sim.now().unix_timestamp() - 120;
    let logpull = h
        .wait_for(ENTERPRISE_ZONE, "windows after the kill", |e| {
            e.closed_until(HTTP).is_some_and(|u| u >= end + 180)
        })
        .await;
    let live = h
        .wait_for(BUSINESS_ZONE, "live windows after the kill", |e| {
            e.closed_until(HTTP).is_some_and(|u| u >= until)
        })
        .await;
    collector.stop().await;

    logpull.assert_contiguous(HTTP);
    h.assert_windows_match_truth(ENTERPRISE_ZONE, &logpull);

    live.assert_contiguous(HTTP);
    let gaps: Vec<_> = live
        .closes
        .iter()
        .filter(|c| matches!(c.outcome, WindowOutcome::Gap { .. }))
        .collect();
    assert!(gaps.is_empty(), "the election cost the live tail: {gaps:?}");
    let truth: BTreeSet<Vec<u8>> = h
        .truth(
            BUSINESS_ZONE,
            Window {
                start,
                end: h.sim.now().unix_timestamp(),
            },
            &DEFAULT_FIELDS.join(","),
        )
        .into_iter()
        .collect();
    let mut seen = BTreeSet::new();
    for close in &live.closes {
        for line in live.attempt_lines(close.attempt) {
            assert!(truth.contains(&line), "an archived record Cloudflare sent");
            assert!(seen.insert(line), "no record is archived twice");
        }
    }
    assert!(
        seen.len() > 100,
        "the tail delivered records ({})",
        seen.len()
    );
}
