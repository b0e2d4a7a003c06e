//! Several collector processes share zones: each window is collected once, and zones move to a
//! surviving process when their owner dies.

use std::collections::BTreeMap;

use rainlogs_schemas::events::Method;

use crate::support::*;

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
