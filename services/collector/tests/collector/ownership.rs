//! Several collector processes share zones: each window is collected once, and zones move to a
//! surviving process when their owner dies.

use std::collections::BTreeMap;

use rainlogs_schemas::events::Method;

use crate::support::*;
use rainlogs_collector::Identity;

/// Who holds each zone's lease now (`None`: nobody).
async fn holders(h: &Harness, zones: &[&str]) -> Vec<Option<String>> {
    let store = h
        .bus
        .js
        .get_key_value("RL_COLLECTOR_LEASES")
        .await
        .expect("lease bucket");
    let mut found = Vec::new();
    for zone in zones {
        let entry = store.entry(*zone).await.expect("lease entry");
        found.push(
            entry
                .filter(|e| e.operation == rainlogs_bus::async_nats::jetstream::kv::Operation::Put)
                .map(|e| String::from_utf8_lossy(&e.value).into_owned()),
        );
    }
    found
}

async fn wait_for_holders(
    h: &Harness,
    zones: &[&str],
    what: &str,
    ok: impl Fn(&[Option<String>]) -> bool,
) -> Vec<Option<String>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = holders(h, zones).await;
        if ok(&now) {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: holders are {now:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn processes_split_zones_and_take_over_from_a_dead_one() {
    let h = Harness::start().await;
    let zones = [ENTERPRISE_ZONE, OTHER_ENTERPRISE_ZONE];
    for zone in zones {
        h.add_zone(zone, Method::Logpull, "default", FULL_TOKEN)
            .await;
    }
    let meter = || opentelemetry::global::meter("collector-test");
    let a = h.start_collector_as(h.settings.clone(), meter(), Identity::named("collector-a"));
    let b = h.start_collector_as(h.settings.clone(), meter(), Identity::named("collector-b"));
    let end = t0().unix_timestamp() - 300;
    for zone in zones {
        let events = h
            .wait_for(zone, "windows", |e| e.closed_until(HTTP) == Some(end))
            .await;
        events.assert_contiguous(HTTP);
        assert_eq!(events.closes.len(), 5);
        h.assert_windows_match_truth(zone, &events);
    }
    // Two live collectors, two zones: one each, whichever started first.
    wait_for_holders(&h, &zones, "one zone each", |now| {
        now.iter().all(Option::is_some) && now[0] != now[1]
    })
    .await;

    // Once shared, each zone is fetched by one process only: one request per window.
    let before = h.sim.requests().len();
    h.sim.advance(std::time::Duration::from_secs(120));
    for zone in zones {
        h.wait_for(zone, "windows while shared", |e| {
            e.closed_until(HTTP) == Some(end + 120)
        })
        .await;
    }
    let mut per_window: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in h.sim.requests()[before..]
        .iter()
        .filter(|r| r.path.ends_with("/logs/received"))
    {
        *per_window
            .entry((r.zone.clone().unwrap_or_default(), r.query.clone()))
            .or_default() += 1;
    }
    assert_eq!(per_window.len(), 4, "{per_window:?}");
    assert!(
        per_window.values().all(|n| *n == 1),
        "a window was fetched twice: {per_window:?}"
    );

    // One process dies; its zone continues on the other when its lease expires.
    a.kill().await;
    h.sim.advance(std::time::Duration::from_secs(180));
    wait_for_holders(&h, &zones, "the survivor holds both", |now| {
        now.iter()
            .all(|holder| holder.as_deref() == Some("collector-b"))
    })
    .await;
    for zone in zones {
        let events = h
            .wait_for(zone, "windows after the crash", |e| {
                e.closed_until(HTTP) == Some(end + 300)
            })
            .await;
        events.assert_contiguous(HTTP);
        assert_eq!(events.closes.len(), 10);
        h.assert_windows_match_truth(zone, &events);
    }
    b.stop().await;
}

/// A collector that joins takes its share from one that holds every zone, and one that stops
/// cleanly gives its zones back at once (no lease TTL to wait out).
#[tokio::test]
async fn a_joining_collector_gets_its_share_and_a_clean_stop_hands_zones_over_at_once() {
    let h = Harness::start().await;
    let zones = [ENTERPRISE_ZONE, OTHER_ENTERPRISE_ZONE];
    for zone in zones {
        h.add_zone(zone, Method::Logpull, "default", FULL_TOKEN)
            .await;
    }
    // Leases longer than a hand-over may take: only handing over can move a zone this fast.
    // (Lease rounds run every third of the TTL: 10 s.)
    let mut settings = h.settings.clone();
    settings.lease_ttl = std::time::Duration::from_secs(30);
    let meter = || opentelemetry::global::meter("collector-test");
    let a = h.start_collector_as(settings.clone(), meter(), Identity::named("first"));
    wait_for_holders(&h, &zones, "the only collector holds both", |now| {
        now.iter().all(|holder| holder.as_deref() == Some("first"))
    })
    .await;
    let b = h.start_collector_as(settings.clone(), meter(), Identity::named("second"));
    wait_for_holders(&h, &zones, "one zone each", |now| {
        now.iter().any(|holder| holder.as_deref() == Some("first"))
            && now.iter().any(|holder| holder.as_deref() == Some("second"))
    })
    .await;
    let started = std::time::Instant::now();
    a.stop().await;
    wait_for_holders(&h, &zones, "the remaining collector holds both", |now| {
        now.iter().all(|holder| holder.as_deref() == Some("second"))
    })
    .await;
    // Released, not expired: well within the 30 s lease (an expiry could not pass this).
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let end = t0().unix_timestamp() - 300;
    for zone in zones {
        let events = h
            .wait_for(zone, "windows", |e| e.closed_until(HTTP) == Some(end))
            .await;
        events.assert_contiguous(HTTP);
        h.assert_windows_match_truth(zone, &events);
    }
    b.stop().await;
}

/// Each lease lasts the TTL of the process that wrote it, whatever the bucket was created with,
/// and its expiry is announced to collectors waiting for the zone.
#[tokio::test]
async fn a_lease_lasts_its_writers_ttl_and_its_expiry_is_announced() {
    use futures::StreamExt;
    use rainlogs_collector::lease::Leases;
    let h = Harness::start().await;
    let short = Leases::open(&h.bus, std::time::Duration::from_secs(2), "short".into())
        .await
        .unwrap();
    let long = Leases::open(&h.bus, std::time::Duration::from_secs(60), "long".into())
        .await
        .unwrap();
    let waiting = Leases::open(&h.bus, std::time::Duration::from_secs(60), "waiting".into())
        .await
        .unwrap();
    let mut freed = Box::pin(waiting.freed().await.unwrap());
    // The server counts the TTL from when it stored the write, a little after this instant.
    let taken = std::time::Instant::now();
    short.acquire(ENTERPRISE_ZONE).await.unwrap().expect("free");
    long.acquire(OTHER_ENTERPRISE_ZONE)
        .await
        .unwrap()
        .expect("free");
    let zone = tokio::time::timeout(std::time::Duration::from_secs(10), freed.next())
        .await
        .expect("an expiry is announced")
        .expect("watch open");
    assert_eq!(zone, ENTERPRISE_ZONE);
    // Not before the short lease's TTL (the server's expiry timer may round by a few ms).
    let after = taken.elapsed();
    assert!(
        after >= std::time::Duration::from_millis(1_900),
        "{after:?}"
    );
    assert!(waiting.acquire(ENTERPRISE_ZONE).await.unwrap().is_some());
    assert_eq!(waiting.acquire(OTHER_ENTERPRISE_ZONE).await.unwrap(), None);
    // The member list counts live collectors only.
    short.heartbeat().await.unwrap();
    long.heartbeat().await.unwrap();
    assert_eq!(waiting.members().await.unwrap(), 3);
    long.leave().await;
    assert_eq!(waiting.members().await.unwrap(), 2);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(waiting.members().await.unwrap(), 1);
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
