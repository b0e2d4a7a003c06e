//! Several collector processes share zones: each window is collected once, and zones move to a
//! surviving process when their owner dies.

use std::collections::BTreeMap;

use rainlogs_schemas::events::Method;

use crate::support::*;
use rainlogs_collector::Identity;

#[tokio::test]
async fn processes_split_zones_and_take_over_from_a_dead_one() {
    let h = Harness::start().await;
    h.add_zone(ENTERPRISE_ZONE, Method::Logpull, "default", FULL_TOKEN)
        .await;
    h.add_zone(
        OTHER_ENTERPRISE_ZONE,
        Method::Logpull,
        "default",
        FULL_TOKEN,
    )
    .await;
    let a = h.start_collector();
    let b = h.start_collector();
    let end = t0().unix_timestamp() - 300;
    for zone in [ENTERPRISE_ZONE, OTHER_ENTERPRISE_ZONE] {
        let events = h
            .wait_for(zone, "windows", |e| e.closed_until(HTTP) == Some(end))
            .await;
        events.assert_contiguous(HTTP);
        assert_eq!(events.closes.len(), 5);
        h.assert_windows_match_truth(zone, &events);
    }
    // Each zone is fetched by one process only: one request per window.
    let mut per_window: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in h
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/logs/received"))
    {
        *per_window
            .entry((r.zone.clone().unwrap_or_default(), r.query.clone()))
            .or_default() += 1;
    }
    assert!(
        per_window.values().all(|n| *n == 1),
        "a window was fetched twice: {per_window:?}"
    );

    // One process dies; its zones continue on the other after the lease expires.
    a.kill().await;
    h.sim.advance(std::time::Duration::from_secs(180));
    for zone in [ENTERPRISE_ZONE, OTHER_ENTERPRISE_ZONE] {
        let events = h
            .wait_for(zone, "windows after the crash", |e| {
                e.closed_until(HTTP) == Some(end + 180)
            })
            .await;
        events.assert_contiguous(HTTP);
        assert_eq!(events.closes.len(), 8);
        h.assert_windows_match_truth(zone, &events);
    }
    b.stop().await;
}

/// A collector that crashed and comes back under its name takes its zones back at once: the
/// lease names it, so nobody else collects them and waiting out the lease would only lose time.
#[tokio::test]
async fn a_restarted_collector_takes_its_own_zones_back_without_waiting_for_the_lease() {
    let h = Harness::start().await;
    h.add_zone(ENTERPRISE_ZONE, Method::Logpull, "default", FULL_TOKEN)
        .await;
    let mut settings = h.settings.clone();
    // Far longer than the test waits: only taking the lease back can restart collection.
    settings.lease_ttl = std::time::Duration::from_secs(600);
    let meter = || opentelemetry::global::meter("collector-test");
    let name = "collector-on-host-a";
    let first = h.start_collector_as(settings.clone(), meter(), Identity::named(name));
    let end = t0().unix_timestamp() - 300;
    h.wait_for(ENTERPRISE_ZONE, "windows", |e| {
        e.closed_until(HTTP) == Some(end)
    })
    .await;
    first.kill().await;

    // Someone else cannot take it: the lease is held for ten minutes.
    let stranger = h.start_collector_as(settings.clone(), meter(), Identity::named("other-host"));
    h.sim.advance(std::time::Duration::from_secs(60));
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let events = h.zone_events(ENTERPRISE_ZONE).await;
    assert_eq!(
        events.closed_until(HTTP),
        Some(end),
        "a stranger waits for the lease"
    );
    stranger.stop().await;

    let restarted = h.start_collector_as(settings, meter(), Identity::named(name));
    let started = std::time::Instant::now();
    let events = h
        .wait_for(ENTERPRISE_ZONE, "windows after the restart", |e| {
            e.closed_until(HTTP) == Some(end + 60)
        })
        .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "taken back in {:?}",
        started.elapsed()
    );
    events.assert_contiguous(HTTP);
    h.assert_windows_match_truth(ENTERPRISE_ZONE, &events);
    restarted.stop().await;
}

/// A lease that expired because renewals could not reach the bus is not lost to anyone: the
/// next renewal takes it again. Only another process' name on it means it is lost, and the
/// answer names that process.
#[tokio::test]
async fn an_expired_lease_is_renewed_and_only_another_holder_loses_it() {
    use rainlogs_collector::lease::{Leases, Renewal};
    let h = Harness::start().await;
    let ttl = std::time::Duration::from_secs(1);
    let ours = Leases::open(&h.bus, ttl, "ours".into()).await.unwrap();
    let theirs = Leases::open(&h.bus, ttl, "theirs".into()).await.unwrap();
    let revision = ours.acquire(ENTERPRISE_ZONE).await.unwrap().expect("free");
    assert_eq!(theirs.acquire(ENTERPRISE_ZONE).await.unwrap(), None);

    // Renewals missed for longer than the TTL (the bus was away): the entry is gone.
    tokio::time::sleep(ttl * 3).await;
    let Renewal::Renewed(revision) = ours.renew(ENTERPRISE_ZONE, revision).await.unwrap() else {
        panic!("an expired lease nobody took is renewed");
    };
    assert_eq!(theirs.acquire(ENTERPRISE_ZONE).await.unwrap(), None);

    // It expires again and another process takes it: now it is lost, to that process.
    tokio::time::sleep(ttl * 3).await;
    assert!(theirs.acquire(ENTERPRISE_ZONE).await.unwrap().is_some());
    assert_eq!(
        ours.renew(ENTERPRISE_ZONE, revision).await.unwrap(),
        Renewal::Lost {
            holder: "theirs".into()
        }
    );
}
