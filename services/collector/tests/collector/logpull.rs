//! Logpull windows: what is published equals what Cloudflare holds, windows are contiguous, and
//! the cursor survives restarts, crashes and long outages.

use std::time::Duration;

use rainlogs_schemas::events::{GapReason, Method, WindowOutcome};

use crate::support::*;

#[tokio::test]
async fn published_windows_equal_cloudflares_records_and_quiet_windows_are_empty() {
    let mut scenario = scenario();
    for zone in &mut scenario.zones {
        if zone.id == OTHER_ENTERPRISE_ZONE {
            zone.rate = 0.004; // most minutes receive nothing
        }
    }
    let h = Harness::start_with(scenario).await;
    h.add_zone(ENTERPRISE_ZONE, Method::Logpull, "default", FULL_TOKEN)
        .await;
    h.add_zone(
        OTHER_ENTERPRISE_ZONE,
        Method::Logpull,
        "extended",
        FULL_TOKEN,
    )
    .await;
    let telemetry = rainlogs_telemetry::init(&rainlogs_config::TelemetrySettings {
        log_level: "error".into(),
        ..Default::default()
    })
    .unwrap();
    let collector = h.start_collector_metered(h.settings.clone(), telemetry.meter("collector"));

    let first_end = t0().unix_timestamp() - 300;
    let events = h
        .wait_for(ENTERPRISE_ZONE, "5 windows", |e| {
            e.closed_until(HTTP) == Some(first_end)
        })
        .await;
    let closes = events.closes_of(HTTP);
    assert_eq!(
        closes.len(),
        5,
        "10 minutes of backfill, ending 5 minutes before now"
    );
    assert_eq!(closes[0].window.start, t0().unix_timestamp() - 600);
    assert!(
        closes
            .iter()
            .all(|c| c.window.end - c.window.start == 60 && c.window.start % 60 == 0)
    );
    assert!(closes.iter().all(|c| matches!(&c.outcome, WindowOutcome::Complete { method: Method::Logpull, sample_interval: 1, batches, .. } if *batches >= 2)),
        "about 300 default-field records per minute make at least two 64 KiB batches");
    events.assert_contiguous(HTTP);
    h.assert_windows_match_truth(ENTERPRISE_ZONE, &events);

    // Time moves on: exactly the newly due windows follow, no earlier.
    h.sim.advance(Duration::from_secs(150));
    let events = h
        .wait_for(ENTERPRISE_ZONE, "2 more windows", |e| {
            e.closed_until(HTTP) == Some(first_end + 120)
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events_later = h.zone_events(ENTERPRISE_ZONE).await;
    assert_eq!(
        events_later.closes.len(),
        events.closes.len(),
        "the window ending 30 s before the 5-minute delay is not due yet"
    );
    events.assert_contiguous(HTTP);
    h.assert_windows_match_truth(ENTERPRISE_ZONE, &events);

    let quiet = h
        .wait_for(OTHER_ENTERPRISE_ZONE, "7 windows", |e| {
            e.closed_until(HTTP) == Some(first_end + 120)
        })
        .await;
    quiet.assert_contiguous(HTTP);
    assert!(
        quiet.count("empty") >= 3,
        "a zone with almost no traffic has empty windows"
    );
    h.assert_windows_match_truth(OTHER_ENTERPRISE_ZONE, &quiet);
    assert!(
        quiet.closes.iter().all(|c| match &c.outcome {
            WindowOutcome::Complete { fields, .. } => fields.split(',').count() == 36,
            _ => true,
        }),
        "the extended preset is requested as an explicit list"
    );
    let metrics = telemetry.render();
    for expected in [
        "rainlogs_collector_windows_total{",
        "outcome=\"empty\"",
        "rainlogs_collector_records_total{",
        "rainlogs_collector_published_bytes_total{",
        "rainlogs_collector_lag_seconds{",
        "status=\"200\"",
        ENTERPRISE_ZONE,
    ] {
        assert!(
            metrics.contains(expected),
            "/metrics lacks {expected}:\n{metrics}"
        );
    }
    collector.stop().await;
}

#[tokio::test]
async fn a_crash_mid_window_loses_and_duplicates_nothing() {
    let h = Harness::start().await;
    h.add_zone(ENTERPRISE_ZONE, Method::Logpull, "default", FULL_TOKEN)
        .await;
    // Slow bodies keep the first attempt streaming while the process dies.
    h.sim.inject(cf_sim::Fault {
        zone: Some(ENTERPRISE_ZONE.into()),
        dataset: None,
        endpoint: cf_sim::EndpointKind::Logpull,
        count: Some(1),
        probability: None,
        kind: cf_sim::FaultKind::SlowBody {
            bytes_per_sec: 4000,
        },
    });
    let mut settings = h.settings.clone();
    settings.batch_bytes = 2048;
    let first = h.start_collector_with(settings.clone());
    h.wait_for(ENTERPRISE_ZONE, "a batch of the slow attempt", |e| {
        !e.batches.is_empty()
    })
    .await;
    first.kill().await;
    let crashed = h.zone_events(ENTERPRISE_ZONE).await;
    assert!(
        crashed.closes.is_empty(),
        "the slow window cannot have closed"
    );
    assert_eq!(crashed.abandoned_attempts().len(), 1);

    // A new process takes the zone once the dead one's lease expires, and fetches the window
    // again under a new attempt.
    let second = h.start_collector_with(settings);
    let end = t0().unix_timestamp() - 300;
    let events = h
        .wait_for(ENTERPRISE_ZONE, "all windows", |e| {
            e.closed_until(HTTP) == Some(end)
        })
        .await;
    events.assert_contiguous(HTTP);
    assert_eq!(events.closes.len(), 5);
    h.assert_windows_match_truth(ENTERPRISE_ZONE, &events);
    let orphan = crashed.abandoned_attempts().into_iter().next().unwrap();
    assert!(
        events.closes.iter().all(|c| c.attempt != orphan),
        "the crashed attempt is never the one that counts"
    );
    second.stop().await;

    // A graceful restart resumes exactly at the cursor.
    h.sim.advance(Duration::from_secs(120));
    let third = h.start_collector();
    let events = h
        .wait_for(ENTERPRISE_ZONE, "windows after restart", |e| {
            e.closed_until(HTTP) == Some(end + 120)
        })
        .await;
    events.assert_contiguous(HTTP);
    assert_eq!(events.closes.len(), 7);
    h.assert_windows_match_truth(ENTERPRISE_ZONE, &events);
    third.stop().await;
}

#[tokio::test]
async fn catching_up_after_outages_is_contiguous_with_gaps_only_past_retention() {
    let mut scenario = scenario();
    for zone in &mut scenario.zones {
        if zone.id == ENTERPRISE_ZONE {
            zone.rate = 0.05;
        }
    }
    let h = Harness::start_with(scenario).await;
    let mut settings = h.settings.clone();
    settings.catch_up_window = Duration::from_secs(3600);
    settings.backfill = Duration::from_secs(2 * 3600);
    h.add_zone(ENTERPRISE_ZONE, Method::Logpull, "default", FULL_TOKEN)
        .await;
    let due_end = |h: &Harness| {
        let latest = h.sim.now().unix_timestamp() - 300;
        latest - latest.rem_euclid(60)
    };
    let check = |events: &ZoneEvents| {
        events.assert_contiguous(HTTP);
        let sizes: Vec<i64> = events
            .closes
            .iter()
            .filter(|c| outcome_name(&c.outcome) != "gap")
            .map(|c| c.window.end - c.window.start)
            .collect();
        assert!(
            sizes.iter().all(|s| *s <= 3600),
            "Logpull windows are at most an hour"
        );
        assert!(
            sizes.contains(&3600),
            "the backlog is fetched in hour windows"
        );
        assert_eq!(
            sizes.last(),
            Some(&60),
            "caught up, windows are back to a minute"
        );
    };

    let collector = h.start_collector_with(settings.clone());
    let end = due_end(&h);
    let events = h
        .wait_for(ENTERPRISE_ZONE, "backfill", |e| {
            e.closed_until(HTTP) == Some(end)
        })
        .await;
    check(&events);
    h.assert_windows_match_truth(ENTERPRISE_ZONE, &events);
    collector.stop().await;

    // Two days down: everything is still retained, so no gap.
    h.sim.advance(Duration::from_secs(2 * 86_400));
    let collector = h.start_collector_with(settings.clone());
    let end = due_end(&h);
    let events = h
        .wait_for(ENTERPRISE_ZONE, "two days of windows", |e| {
            e.closed_until(HTTP) == Some(end)
        })
        .await;
    check(&events);
    assert_eq!(events.count("gap"), 0);
    h.assert_windows_match_truth(ENTERPRISE_ZONE, &events);
    collector.stop().await;

    // Eight more days down: what fell out of Cloudflare's 7 days is one explicit gap, then the
    // retained days follow.
    h.sim.advance(Duration::from_secs(8 * 86_400));
    let collector = h.start_collector_with(settings);
    let end = due_end(&h);
    let events = h
        .wait_for(ENTERPRISE_ZONE, "the week after the gap", |e| {
            e.closed_until(HTTP) == Some(end)
        })
        .await;
    check(&events);
    let gaps: Vec<_> = events
        .closes
        .iter()
        .filter(|c| outcome_name(&c.outcome) == "gap")
        .collect();
    assert_eq!(gaps.len(), 1, "one merged gap");
    assert!(matches!(
        &gaps[0].outcome,
        WindowOutcome::Gap {
            reason: GapReason::RetentionExpired,
            ..
        }
    ));
    let oldest_servable = h.sim.now().unix_timestamp() - 168 * 3600;
    assert!(
        gaps[0].window.end >= oldest_servable,
        "the gap covers everything no longer served"
    );
    assert!(
        gaps[0].window.end - oldest_servable <= 60 + 120,
        "and nothing that is still served"
    );
    h.assert_windows_match_truth(ENTERPRISE_ZONE, &events);
    let statuses: Vec<u16> = h
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/logs/received"))
        .map(|r| r.status)
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "no request was refused as too early: {statuses:?}"
    );
    collector.stop().await;
}

#[tokio::test]
async fn pausing_records_paused_gaps_and_resuming_collects_again() {
    let h = Harness::start().await;
    h.add_zone(ENTERPRISE_ZONE, Method::Logpull, "default", FULL_TOKEN)
        .await;
    let collector = h.start_collector();
    let end = t0().unix_timestamp() - 300;
    h.wait_for(ENTERPRISE_ZONE, "backfill", |e| {
        e.closed_until(HTTP) == Some(end)
    })
    .await;
    h.change_zone(rainlogs_schemas::events::ZoneChanged {
        zone_id: ENTERPRISE_ZONE.into(),
        paused: Some(true),
        ..Default::default()
    })
    .await;
    // Let the zone task see the pause before the clock moves (nothing observable happens yet).
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.sim.advance(Duration::from_secs(600));
    let events = h
        .wait_for(ENTERPRISE_ZONE, "paused windows", |e| {
            e.closed_until(HTTP) == Some(end + 600)
        })
        .await;
    let paused: Vec<_> = events
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
        .collect();
    assert_eq!(
        paused.len(),
        5,
        "every window that ends after the pause began is a paused gap"
    );
    assert!(paused.iter().all(|c| c.window.end > t0().unix_timestamp()));
    h.change_zone(rainlogs_schemas::events::ZoneChanged {
        zone_id: ENTERPRISE_ZONE.into(),
        paused: Some(false),
        ..Default::default()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.sim.advance(Duration::from_secs(120));
    let events = h
        .wait_for(ENTERPRISE_ZONE, "windows after resume", |e| {
            e.closed_until(HTTP) == Some(end + 720)
        })
        .await;
    events.assert_contiguous(HTTP);
    assert_eq!(
        events.count("complete"),
        12,
        "5 before the pause, 5 that ended before it, 2 after resuming"
    );
    h.assert_windows_match_truth(ENTERPRISE_ZONE, &events);
    collector.stop().await;
}

/// The value of the first sample of `name` labelled with `zone` on a `/metrics` page.
fn sample(metrics: &str, name: &str, zone: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(zone))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Polls `/metrics` until `name{zone=…}` reads `value`.
async fn wait_for_sample(telemetry: &rainlogs_telemetry::Telemetry, name: &str, value: f64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = telemetry.render();
        if sample(&metrics, name, ENTERPRISE_ZONE) == Some(value) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name} of {ENTERPRISE_ZONE} never read {value}:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn quiet_telemetry() -> rainlogs_telemetry::Telemetry {
    rainlogs_telemetry::init(&rainlogs_config::TelemetrySettings {
        log_level: "error".into(),
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test]
async fn a_shorter_logpull_delay_is_honoured_and_lag_is_measured_from_now() {
    let h = Harness::start().await;
    h.add_zone(ENTERPRISE_ZONE, Method::Logpull, "default", FULL_TOKEN)
        .await;
    let telemetry = quiet_telemetry();
    let mut settings = h.settings.clone();
    settings.logpull_delay = Duration::from_secs(120);
    let collector = h.start_collector_metered(settings, telemetry.meter("collector"));

    let t = t0().unix_timestamp();
    let events = h
        .wait_for(ENTERPRISE_ZONE, "windows up to 2 minutes before now", |e| {
            e.closed_until(HTTP) == Some(t - 120)
        })
        .await;
    assert_eq!(
        events.closes.len(),
        8,
        "10 minutes of backfill ending 2 minutes before now"
    );
    events.assert_contiguous(HTTP);
    h.assert_windows_match_truth(ENTERPRISE_ZONE, &events);
    // Caught up, the cursor is the delay behind real time, and that is the lag.
    wait_for_sample(&telemetry, "rainlogs_collector_lag_seconds", 120.0).await;

    // The next window [now-2m, now-1m) is due only once its end is 2 minutes old.
    h.sim.advance(Duration::from_secs(59));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        h.zone_events(ENTERPRISE_ZONE).await.closed_until(HTTP),
        Some(t - 120),
        "a window ending less than logpull_delay ago is not requested"
    );
    h.sim.advance(Duration::from_secs(1));
    let events = h
        .wait_for(ENTERPRISE_ZONE, "the window that became due", |e| {
            e.closed_until(HTTP) == Some(t - 60)
        })
        .await;
    let now = h.sim.now().unix_timestamp();
    assert!(
        events.closes.iter().all(|c| c.window.end <= now - 120),
        "no window ends later than now - logpull_delay"
    );
    wait_for_sample(&telemetry, "rainlogs_collector_lag_seconds", 120.0).await;
    assert!(
        h.sim
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/logs/received"))
            .all(|r| r.status == 200),
        "Cloudflare refused no window as too recent"
    );
    assert!(
        h.health(ENTERPRISE_ZONE)
            .await
            .iter()
            .all(|health| !health.reason.contains("backfill")),
        "ten minutes behind is no backfill worth reporting"
    );
    collector.stop().await;
}

#[tokio::test]
async fn a_long_backfill_reports_its_progress_in_health_and_metrics() {
    let mut scenario = scenario();
    for zone in &mut scenario.zones {
        if zone.id == ENTERPRISE_ZONE {
            zone.rate = 0.05;
        }
    }
    let h = Harness::start_with(scenario).await;
    h.add_zone(ENTERPRISE_ZONE, Method::Logpull, "default", FULL_TOKEN)
        .await;
    let telemetry = quiet_telemetry();
    let mut settings = h.settings.clone();
    // Two hours of one-minute windows: 115 of them end 5 minutes (the default delay) before now.
    settings.backfill = Duration::from_secs(2 * 3600);
    // Every window, so the test sees a report with a rate (production: every minute).
    settings.backfill_report_every = Duration::ZERO;
    let collector = h.start_collector_metered(settings, telemetry.meter("collector"));

    let started = h
        .wait_for_health(ENTERPRISE_ZONE, "backfill start", |health| {
            health.reason.contains("backfill: 0 of 115 windows")
        })
        .await;
    assert_eq!(started.status, "ok");
    assert_eq!(started.method, Some(Method::Logpull));
    assert!(
        started
            .reason
            .starts_with("collecting http_requests with Logpull")
            && started.reason.ends_with(
                "backfill: 0 of 115 windows (0%), 1h 55m of logs behind, rate not known yet"
            ),
        "{}",
        started.reason
    );
    let progress = h
        .wait_for_health(ENTERPRISE_ZONE, "backfill progress", |health| {
            health.reason.contains("backfill: 1 of 115 windows")
        })
        .await;
    assert!(
        progress.reason.contains("1h 54m of logs behind")
            && progress.reason.contains(" windows/min, about "),
        "{}",
        progress.reason
    );

    let end = t0().unix_timestamp() - 300;
    let events = h
        .wait_for(ENTERPRISE_ZONE, "backfill", |e| {
            e.closed_until(HTTP) == Some(end)
        })
        .await;
    assert_eq!(events.closes.len(), 115);
    events.assert_contiguous(HTTP);
    wait_for_sample(
        &telemetry,
        "rainlogs_collector_backfill_windows_done_total",
        115.0,
    )
    .await;
    wait_for_sample(
        &telemetry,
        "rainlogs_collector_backfill_windows_remaining",
        0.0,
    )
    .await;
    wait_for_sample(&telemetry, "rainlogs_collector_lag_seconds", 300.0).await;
    // Current again: the health says what is collected, without the backfill.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let health = h.health(ENTERPRISE_ZONE).await;
        let last = health.last().expect("health");
        if !last.reason.contains("backfill") {
            assert_eq!(last.status, "ok");
            assert!(
                last.reason
                    .starts_with("collecting http_requests with Logpull")
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the backfill never left the health: {}",
            last.reason
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    collector.stop().await;
}
