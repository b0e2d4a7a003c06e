//! GraphQL security events for Pro/Free zones.

use std::collections::BTreeSet;

use cf_sim::{Dataset, EndpointKind, Fault, FaultKind, TruthQuery};
use rainlogs_schemas::events::{Method, WindowOutcome};

use crate::support::*;

/// Cloudflare's events for a window, as parsed JSON (row key order is not part of the data).
fn truth_events(
    h: &Harness,
    zone: &str,
    start: i64,
    end: i64,
    fields: &str,
) -> Vec<serde_json::Value> {
    let mut query = TruthQuery::http(zone, at(start), at(end));
    query.dataset = Dataset::FirewallEvents;
    query.fields = Some(fields.split(',').map(str::to_owned).collect());
    let mut rows: Vec<serde_json::Value> = h
        .sim
        .truth(&query)
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    rows.sort_by_key(|v| v.to_string());
    rows
}

fn parsed(lines: Vec<Vec<u8>>) -> Vec<serde_json::Value> {
    let mut rows: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    rows.sort_by_key(|v| v.to_string());
    rows
}

#[tokio::test]
async fn security_events_match_cloudflare_per_window_and_full_slices_are_split() {
    let mut scenario = scenario();
    for zone in &mut scenario.zones {
        if zone.id == FREE_ZONE {
            zone.firewall_rate = 25.0; // ~1500 a minute: more than a Free page (1000 rows)
        }
    }
    let h = Harness::start_with(scenario).await;
    h.add_zone(PRO_ZONE, Method::Graphql, "default", FULL_TOKEN)
        .await;
    h.add_zone(FREE_ZONE, Method::Graphql, "default", FULL_TOKEN)
        .await;
    let collector = h.start_collector();
    let end = t0().unix_timestamp() - 120;
    for zone in [PRO_ZONE, FREE_ZONE] {
        let events = h
            .wait_for(zone, "security event windows", |e| {
                e.closed_until(FIREWALL) == Some(end)
            })
            .await;
        events.assert_contiguous(FIREWALL);
        assert_eq!(
            events.closes.len(),
            8,
            "10 minutes of backfill ending at the 2-minute ingestion margin"
        );
        let mut keys = BTreeSet::new();
        for close in &events.closes {
            let (fields, interval) = match &close.outcome {
                WindowOutcome::Complete {
                    fields,
                    sample_interval,
                    method: Method::Graphql,
                    ..
                } => (fields.clone(), *sample_interval),
                WindowOutcome::Empty { .. } => continue,
                other => panic!("unexpected outcome {other:?}"),
            };
            assert_eq!(
                interval, 1,
                "below the simulator's sampling threshold nothing is sampled"
            );
            let rows = parsed(events.attempt_lines(close.attempt));
            for row in &rows {
                let key = (
                    row["rayName"].to_string(),
                    row["matchIndex"].to_string(),
                    row["source"].to_string(),
                    row["ruleId"].to_string(),
                    row["datetime"].to_string(),
                );
                assert!(
                    keys.insert(key),
                    "an event was archived twice (the overlap re-scan must de-duplicate)"
                );
            }
            assert_eq!(
                rows,
                truth_events(&h, zone, close.window.start, close.window.end, &fields),
                "window {:?}",
                close.window
            );
        }
    }
    let free_queries = h
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/graphql") && r.status == 200)
        .count();
    assert!(
        free_queries > 2 * 8 + 2,
        "full Free pages were split into smaller slices"
    );
    collector.stop().await;
}

#[tokio::test]
async fn sampled_answers_record_their_sample_interval() {
    let mut scenario = scenario();
    scenario.graphql.sample_above = 5;
    for zone in &mut scenario.zones {
        if zone.id == PRO_ZONE {
            zone.firewall_rate = 2.0;
        }
    }
    let h = Harness::start_with(scenario).await;
    h.add_zone(PRO_ZONE, Method::Graphql, "default", FULL_TOKEN)
        .await;
    let collector = h.start_collector();
    let end = t0().unix_timestamp() - 120;
    let events = h
        .wait_for(PRO_ZONE, "windows", |e| {
            e.closed_until(FIREWALL) == Some(end)
        })
        .await;
    assert!(events.closes.iter().any(|c| matches!(c.outcome, WindowOutcome::Complete { sample_interval, .. } if sample_interval > 1)),
        "Cloudflare's sampling is recorded with the window");
    collector.stop().await;
}

#[tokio::test]
async fn a_budget_error_inside_http_200_holds_the_zone_and_is_reported() {
    let h = Harness::start().await;
    h.sim.inject(Fault::everywhere(
        EndpointKind::Graphql,
        1,
        FaultKind::GraphqlBudget { status: 200 },
    ));
    h.add_zone(PRO_ZONE, Method::Graphql, "default", SPARE_TOKEN)
        .await;
    let collector = h.start_collector();
    let health = h
        .wait_for_health(PRO_ZONE, "budget", |h| h.status == "degraded")
        .await;
    assert!(
        health.reason.contains("budget depleted"),
        "{}",
        health.reason
    );
    // The token's budget is spent for five minutes; a zone on another token is unaffected.
    h.add_zone(FREE_ZONE, Method::Graphql, "default", FULL_TOKEN)
        .await;
    let end = t0().unix_timestamp() - 120;
    h.wait_for(FREE_ZONE, "windows", |e| {
        e.closed_until(FIREWALL) == Some(end)
    })
    .await;
    assert!(
        h.zone_events(PRO_ZONE).await.closes.is_empty(),
        "an error answer is never archived as an empty window"
    );
    collector.stop().await;
}

#[tokio::test]
async fn a_restart_neither_repeats_nor_skips_security_events() {
    let mut scenario = scenario();
    for zone in &mut scenario.zones {
        if zone.id == PRO_ZONE {
            zone.firewall_rate = 1.0;
        }
    }
    let h = Harness::start_with(scenario).await;
    h.add_zone(PRO_ZONE, Method::Graphql, "default", FULL_TOKEN)
        .await;
    let collector = h.start_collector();
    let end = t0().unix_timestamp() - 120;
    h.wait_for(PRO_ZONE, "windows", |e| {
        e.closed_until(FIREWALL) == Some(end)
    })
    .await;
    collector.stop().await;
    h.sim.advance(std::time::Duration::from_secs(300));
    let collector = h.start_collector();
    let events = h
        .wait_for(PRO_ZONE, "windows after restart", |e| {
            e.closed_until(FIREWALL) == Some(end + 300)
        })
        .await;
    events.assert_contiguous(FIREWALL);
    for close in &events.closes {
        if let WindowOutcome::Complete { fields, .. } = &close.outcome {
            // The re-scanned overlap before the restart point is not archived again.
            assert_eq!(
                parsed(events.attempt_lines(close.attempt)),
                truth_events(&h, PRO_ZONE, close.window.start, close.window.end, fields)
            );
        }
    }
    collector.stop().await;
}

/// A GraphQL zone two hours behind tells its backfill in its health, as a Logpull zone does,
/// and goes back to its plan's reason once it is current.
#[tokio::test]
async fn a_long_graphql_backfill_reports_its_progress_in_health() {
    let h = Harness::start().await;
    h.add_zone(PRO_ZONE, Method::Graphql, "default", FULL_TOKEN)
        .await;
    let mut settings = h.settings.clone();
    settings.backfill = std::time::Duration::from_secs(2 * 3600);
    settings.backfill_report_every = std::time::Duration::ZERO;
    let collector = h.start_collector_with(settings);
    let started = h
        .wait_for_health(PRO_ZONE, "backfill start", |health| {
            health.reason.contains("backfill: 0 of ")
        })
        .await;
    assert_eq!(started.status, "ok", "{}", started.reason);
    assert_eq!(started.method, Some(Method::Graphql));
    let progress = h
        .wait_for_health(PRO_ZONE, "backfill progress", |health| {
            health.reason.contains(" windows/min, about ")
        })
        .await;
    assert!(
        progress.reason.contains("backfill: "),
        "{}",
        progress.reason
    );
    // The lag (120 s in tests) keeps the last two minutes for later; everything before is done.
    let end = t0().unix_timestamp() - 120;
    h.wait_for(PRO_ZONE, "backfill", |e| {
        e.closed_until(FIREWALL) == Some(end)
    })
    .await;
    let current = h
        .wait_for_health(PRO_ZONE, "current again", |health| {
            !health.reason.contains("backfill")
        })
        .await;
    assert_eq!(current.status, "ok", "{}", current.reason);
    collector.stop().await;
}
