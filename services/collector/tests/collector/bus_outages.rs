//! JetStream going away while zones are collected: a leader election in a three-node cluster
//! (every stream and bucket at three replicas) and a restart of a single server. Both are
//! routine; within the lease TTL the collector holds what it collected, keeps its zones, and
//! loses, duplicates and gaps nothing.

use std::time::{Duration, Instant};

use rainlogs_bus::{Bus, StreamStatus, definitions};
use rainlogs_schemas::events::{Method, WindowOutcome};
use rainlogs_testkit::NatsCluster;

use crate::support::*;

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
    let (collector, start) = collect_both(&h).await;

    // The node leading the batch stream dies while records keep arriving.
    let leader = leader_of(&h.bus, definitions::BATCH).await;
    cluster.kill(&leader);
    play(&h, 120).await;
    let new_leader = leader_of(&h.bus, definitions::BATCH).await;
    assert_ne!(new_leader, leader);
    cluster.restart(&leader);
    play(&h, 60).await;

    check_nothing_lost(&h, collector, start).await;
}

/// The only NATS server is killed for five seconds (the outage an operator saw cost a zone 29 s
/// and a false "lost the lease to another collector").
#[tokio::test]
async fn a_five_second_nats_outage_keeps_the_zones_and_their_records() {
    let mut h = Harness::start().await;
    let (collector, start) = collect_both(&h).await;
    let holder = lease_holders(&h).await;

    let nats = h.nats.as_mut().expect("own server");
    nats.kill();
    play(&h, 60).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    h.nats.as_mut().expect("own server").restart();
    play(&h, 60).await;

    assert_eq!(lease_holders(&h).await, holder, "nobody else took a zone");
    check_nothing_lost(&h, collector, start).await;
}

async fn lease_holders(h: &Harness) -> Vec<Option<Vec<u8>>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(store) = h.bus.js.get_key_value("RL_COLLECTOR_LEASES").await {
            let mut holders = Vec::new();
            for zone in [ENTERPRISE_ZONE, BUSINESS_ZONE] {
                match store.get(zone).await {
                    Ok(value) => holders.push(value.map(|v| v.to_vec())),
                    Err(_) => break,
                }
            }
            if holders.len() == 2 {
                return holders;
            }
        }
        assert!(Instant::now() < deadline, "lease bucket unreadable");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A Logpull zone and an Instant Logs zone, collected with production's lease TTL (how long
/// the collector holds what it collected while JetStream is away). Returns once both have
/// closed windows, with the simulated time the live tail started.
async fn collect_both(h: &Harness) -> (Process, i64) {
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
    play(h, 65).await;
    let end = t0().unix_timestamp() - 300;
    h.wait_for(ENTERPRISE_ZONE, "backfill", |e| {
        e.closed_until(HTTP).is_some_and(|until| until >= end)
    })
    .await;
    h.wait_for(BUSINESS_ZONE, "a first live window", |e| {
        e.closed_until(HTTP).is_some()
    })
    .await;
    (collector, start)
}

/// Logpull windows equal the truth; the live tail is contiguous without a single gap, and
/// every record it archived is one Cloudflare sent, once.
async fn check_nothing_lost(h: &Harness, collector: Process, start: i64) {
    let until = h.sim.now().unix_timestamp() - 120;
    let logpull = h
        .wait_for(ENTERPRISE_ZONE, "windows after the kill", |e| {
            e.closed_until(HTTP)
                .is_some_and(|u| u >= h.sim.now().unix_timestamp() - 300 - 60)
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
    h.assert_tail_records_are_truth_once(BUSINESS_ZONE, &live, start);
}
