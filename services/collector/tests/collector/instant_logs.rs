//! Instant Logs for Business zones: a live tail in windows, disconnects as explicit gaps.

use std::collections::BTreeSet;
use std::time::Duration;

use cf_sim::{EndpointKind, Fault, FaultKind};
use rainlogs_schemas::events::{GapReason, Method, Window, WindowOutcome};

use crate::support::*;

/// Adds the Business zone and starts a collector on it; returns once its session is up.
async fn start_tail(h: &Harness, settings: rainlogs_collector::CollectorOptions) -> Process {
    h.add_zone(BUSINESS_ZONE, Method::InstantLogs, "default", FULL_TOKEN)
        .await;
    let collector = h.start_collector_with(settings);
    h.wait_for_health(BUSINESS_ZONE, "onboarded", |h| {
        h.method == Some(Method::InstantLogs)
    })
    .await;
    // Give the session a moment to connect before time moves (nothing is asserted about it).
    tokio::time::sleep(Duration::from_millis(500)).await;
    collector
}

#[tokio::test]
async fn the_tail_is_archived_in_windows_and_time_without_a_session_is_a_gap() {
    let mut scenario = scenario();
    scenario.instant_logs.max_session_secs = 90;
    let h = Harness::start_with(scenario).await;
    let mut settings = h.settings.clone();
    // Sessions are replaced before the (shortened) 90 s cap.
    settings.instant_logs_rotate_after = Duration::from_secs(60);
    let collector = start_tail(&h, settings).await;
    play(&h, 130).await;
    let start = t0().unix_timestamp();
    let events = h
        .wait_for(BUSINESS_ZONE, "two windows", |e| {
            e.closed_until(HTTP).is_some_and(|end| end >= start + 120)
        })
        .await;
    assert_eq!(
        events.closes[0].window.start, start,
        "the first window starts when the session connected"
    );

    // New sessions cannot be opened for a while: that time becomes a gap. Within the 90 s cap
    // the session ends (rotated or closed by Cloudflare) and reconnecting fails.
    h.sim.inject(Fault::everywhere(
        EndpointKind::InstantLogsJobs,
        1000,
        FaultKind::ServerError { status: 503 },
    ));
    let failed = |health: &[rainlogs_schemas::events::ZoneHealth]| {
        health
            .iter()
            .any(|h| h.reason.contains("cannot open an Instant Logs session"))
    };
    let mut played = 0;
    while !failed(&h.health(BUSINESS_ZONE).await) {
        assert!(
            played < 600,
            "no failed reconnect within {played} simulated seconds"
        );
        play(&h, 10).await;
        played += 10;
    }
    play(&h, 60).await;
    h.sim.clear_faults();
    tokio::time::sleep(Duration::from_millis(500)).await;
    play(&h, 130).await;
    let long_gap_end = |e: &ZoneEvents| {
        e.closes
            .iter()
            .filter(|c| c.window.end - c.window.start >= 60)
            .find(|c| {
                matches!(
                    c.outcome,
                    WindowOutcome::Gap {
                        reason: GapReason::Disconnected,
                        ..
                    }
                )
            })
            .map(|c| c.window.end)
    };
    let events = h
        .wait_for(BUSINESS_ZONE, "a long gap and windows after it", |e| {
            long_gap_end(e).is_some_and(|g| e.closed_until(HTTP).is_some_and(|end| end >= g + 60))
        })
        .await;
    events.assert_contiguous(HTTP);
    let now = h.sim.now().unix_timestamp();
    let truth: BTreeSet<Vec<u8>> = h
        .truth(
            BUSINESS_ZONE,
            rainlogs_schemas::events::Window { start, end: now },
            &DEFAULT_FIELDS.join(","),
        )
        .into_iter()
        .collect();
    let mut seen = BTreeSet::new();
    for close in &events.closes {
        // Batches name the planned (grid) window; the close may end it early, at a drop.
        for batch in events.batches.iter().filter(|b| b.attempt == close.attempt) {
            assert_eq!(batch.window.start, close.window.start);
            assert!(
                batch.window.end >= close.window.end,
                "{batch:?} vs {close:?}"
            );
            assert_eq!(batch.window.end % 60, 0, "batches name a grid window");
        }
        if let WindowOutcome::Complete {
            method,
            sample_interval,
            ..
        } = &close.outcome
        {
            assert_eq!((*method, *sample_interval), (Method::InstantLogs, 1));
            for line in events.attempt_lines(close.attempt) {
                assert!(
                    truth.contains(&line),
                    "every archived record is one Cloudflare received"
                );
                assert!(seen.insert(line), "no record is archived twice");
            }
        }
    }
    assert!(
        seen.len() > 100,
        "the tail delivered records ({})",
        seen.len()
    );
    collector.stop().await;
}

#[tokio::test]
async fn records_reach_jetstream_while_their_window_is_open_and_a_drop_ends_it_early() {
    let mut scenario = scenario();
    // Cloudflare ends the session after 90 s, well inside the ten-minute window.
    scenario.instant_logs.max_session_secs = 90;
    let h = Harness::start_with(scenario).await;
    let mut settings = h.settings.clone();
    settings.window = Duration::from_secs(600);
    settings.catch_up_window = settings.window;
    let collector = start_tail(&h, settings).await;
    play(&h, 60).await;
    let start = t0().unix_timestamp();
    let planned = Window {
        start,
        end: start + 600,
    };
    let events = h
        .wait_for(BUSINESS_ZONE, "batches of the open window", |e| {
            e.batches.iter().map(|b| b.records).sum::<u32>() > 20
        })
        .await;
    assert!(events.closes.is_empty(), "the window is still open");
    let attempts: BTreeSet<_> = events.batches.iter().map(|b| b.attempt).collect();
    assert_eq!(attempts.len(), 1, "one attempt for the open window");
    let attempt = events.batches[0].attempt;
    assert!(events.batches.iter().all(|b| b.window == planned));
    let early = events.attempt_lines(attempt);

    // The drop at +90 s closes the window there; the batches keep naming the planned window.
    play(&h, 60).await;
    let events = h
        .wait_for(BUSINESS_ZONE, "the window closed at the drop", |e| {
            e.closes.iter().any(|c| c.attempt == attempt)
        })
        .await;
    let close = events
        .closes
        .iter()
        .find(|c| c.attempt == attempt)
        .expect("close");
    assert_eq!(close.window.start, start);
    assert!(
        (start + 90..start + 600).contains(&close.window.end),
        "{close:?}"
    );
    assert!(
        events
            .batches
            .iter()
            .filter(|b| b.attempt == attempt)
            .all(|b| b.window == planned)
    );
    let lines = events.attempt_lines(attempt);
    assert!(lines.len() > early.len() && lines.starts_with(&early));
    let WindowOutcome::Complete { records, .. } = close.outcome else {
        panic!("{close:?}");
    };
    assert_eq!(records, lines.len() as u64);
    let truth: BTreeSet<Vec<u8>> = h
        .truth(BUSINESS_ZONE, close.window, &DEFAULT_FIELDS.join(","))
        .into_iter()
        .collect();
    assert!(lines.iter().all(|l| truth.contains(l)));
    assert_eq!(
        lines.iter().collect::<BTreeSet<_>>().len(),
        lines.len(),
        "no record is published twice"
    );
    collector.stop().await;
}

#[tokio::test]
async fn a_pause_closes_the_session_and_is_recorded_as_a_paused_gap() {
    let h = Harness::start().await;
    let collector = start_tail(&h, h.settings.clone()).await;
    play(&h, 65).await;
    let start = t0().unix_timestamp();
    h.wait_for(BUSINESS_ZONE, "a window", |e| {
        e.closed_until(HTTP).is_some_and(|end| end >= start + 60)
    })
    .await;
    h.change_zone(rainlogs_schemas::events::ZoneChanged {
        zone_id: BUSINESS_ZONE.into(),
        paused: Some(true),
        ..Default::default()
    })
    .await;
    // Let the zone task see the pause before the clock moves (nothing observable happens yet).
    tokio::time::sleep(Duration::from_secs(1)).await;
    play(&h, 180).await;
    h.change_zone(rainlogs_schemas::events::ZoneChanged {
        zone_id: BUSINESS_ZONE.into(),
        paused: Some(false),
        ..Default::default()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    play(&h, 130).await;
    let events = h
        .wait_for(BUSINESS_ZONE, "windows after resuming", |e| {
            e.closes.iter().any(|c| {
                matches!(c.outcome, WindowOutcome::Complete { .. }) && c.window.start >= start + 245
            })
        })
        .await;
    events.assert_contiguous(HTTP);
    let paused: i64 = events
        .closes
        .iter()
        .filter(|c| {
            matches!(
                c.outcome,
                WindowOutcome::Gap {
                    reason: GapReason::Paused,
                    ..
                }
            )
        })
        .map(|c| c.window.end - c.window.start)
        .sum();
    assert!(
        paused >= 170,
        "the paused time is recorded as paused gaps ({paused} s)"
    );
    assert!(
        !events.closes.iter().any(|c| matches!(
            c.outcome,
            WindowOutcome::Gap {
                reason: GapReason::Disconnected,
                ..
            }
        ) && c.window.end - c.window.start > 10),
        "a pause is not a disconnection"
    );
    collector.stop().await;
}

/// Chaos for the live tail: the collector is killed mid-window three times and comes back
/// after outages of different lengths. What it had published survives each kill (the next
/// run closes the window there), the time nobody collected is a `collector_outage` gap no
/// longer than the outage plus a stated bound, and every archived record is one Cloudflare
/// sent, once.
#[tokio::test]
async fn kills_lose_only_the_outage_which_is_declared_as_the_collectors_own() {
    use rainlogs_collector::Identity;
    // The part of a gap beyond the outage itself: the play step (5 s of simulated time that
    // may pass before the kill lands), the publish linger, and the reconnect.
    const BOUND: i64 = 15;
    let h = Harness::start().await;
    let meter = || opentelemetry::global::meter("collector-test");
    let name = "tail-collector";
    h.add_zone(BUSINESS_ZONE, Method::InstantLogs, "default", FULL_TOKEN)
        .await;
    let mut collector = h.start_collector_as(h.settings.clone(), meter(), Identity::named(name));
    h.wait_for_health(BUSINESS_ZONE, "onboarded", |h| {
        h.method == Some(Method::InstantLogs)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = t0().unix_timestamp();
    let mut outages = Vec::new();
    for (round, outage) in [20_i64, 45, 90].into_iter().enumerate() {
        // Into the middle of a window, with records published in it.
        play(&h, 95).await;
        let published = h
            .wait_for(BUSINESS_ZONE, "records of the open window", |e| {
                let closed = e.closed_until(HTTP).unwrap_or(start);
                e.batches
                    .iter()
                    .any(|b| b.window.start >= closed && b.received_until.is_some())
            })
            .await;
        let killed_at = h.sim.now().unix_timestamp();
        collector.kill().await;
        let open_attempts = published.abandoned_attempts();
        assert_eq!(open_attempts.len(), 1, "round {round}: one open attempt");
        h.sim.advance(Duration::from_secs(outage as u64));
        outages.push((
            killed_at,
            killed_at + outage,
            *open_attempts.first().unwrap(),
        ));
        collector = h.start_collector_as(h.settings.clone(), meter(), Identity::named(name));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    play(&h, 130).await;
    let last_back = outages.last().unwrap().1;
    let events = h
        .wait_for(BUSINESS_ZONE, "windows after the last restart", |e| {
            e.closed_until(HTTP)
                .is_some_and(|end| end >= last_back + 60)
        })
        .await;
    collector.stop().await;
    events.assert_contiguous(HTTP);

    for (killed_at, back_at, attempt) in &outages {
        // What was published before the kill is archived: its attempt is closed, complete,
        // ending just after its newest record and not after the kill.
        let close = events
            .closes
            .iter()
            .find(|c| c.attempt == *attempt)
            .unwrap_or_else(|| panic!("the attempt open at {killed_at} was closed"));
        let lines = events.attempt_lines(*attempt);
        let WindowOutcome::Complete {
            records, method, ..
        } = &close.outcome
        else {
            panic!("{close:?}");
        };
        assert_eq!(
            (*records, *method),
            (lines.len() as u64, Method::InstantLogs)
        );
        let newest = events
            .batches
            .iter()
            .filter(|b| b.attempt == *attempt)
            .filter_map(|b| b.received_until)
            .max()
            .unwrap();
        assert_eq!(close.window.end, newest + 1, "{close:?}");
        assert!(
            close.window.end <= killed_at + 1,
            "{close:?} vs kill at {killed_at}"
        );
        // The next window is the outage, declared as the collector's own, and bounded.
        let gap = events
            .closes
            .iter()
            .find(|c| c.window.start == close.window.end)
            .expect("a window follows");
        let WindowOutcome::Gap { reason, .. } = &gap.outcome else {
            panic!("after a kill comes a gap: {gap:?}");
        };
        assert_eq!(*reason, GapReason::CollectorOutage, "{gap:?}");
        assert!(gap.window.end >= *back_at, "{gap:?} covers the outage");
        let length = gap.window.end - gap.window.start;
        assert!(
            length <= back_at - killed_at + BOUND,
            "gap of {length} s for an outage of {} s: {gap:?}",
            back_at - killed_at
        );
    }
    assert!(
        events.abandoned_attempts().is_empty(),
        "no published record is left behind"
    );
    assert!(
        !events.closes.iter().any(|c| matches!(
            c.outcome,
            WindowOutcome::Gap {
                reason: GapReason::Disconnected,
                ..
            }
        )),
        "no outage is blamed on Cloudflare"
    );
    h.assert_tail_records_are_truth_once(BUSINESS_ZONE, &events, start);
}
