//! Logpull under the simulator's faults: each ends right (the window fetched again under a new
//! attempt, or a gap / health event with the right reason), nothing is duplicated in the attempt
//! that counts, and other zones keep flowing meanwhile.

use cf_sim::{EndpointKind, Fault, FaultKind};
use rainlogs_schemas::events::{GapReason, Method, WindowOutcome};

use crate::support::*;

fn on_logpull(zone: &str, count: Option<u32>, kind: FaultKind) -> Fault {
    Fault {
        zone: Some(zone.into()),
        dataset: None,
        endpoint: EndpointKind::Logpull,
        count,
        probability: None,
        kind,
    }
}

/// Runs both Enterprise zones with `fault` armed on the first, and checks the outcome.
async fn survives(fault: FaultKind, count: u32, leaves_orphans: bool) {
    let name = format!("{fault:?}");
    let h = Harness::start().await;
    h.sim
        .inject(on_logpull(ENTERPRISE_ZONE, Some(count), fault));
    h.add_zone(ENTERPRISE_ZONE, Method::Logpull, "default", FULL_TOKEN)
        .await;
    h.add_zone(
        OTHER_ENTERPRISE_ZONE,
        Method::Logpull,
        "default",
        FULL_TOKEN,
    )
    .await;
    let mut settings = h.settings.clone();
    settings.batch_bytes = 8 * 1024;
    let collector = h.start_collector_with(settings);
    let end = t0().unix_timestamp() - 300;
    for zone in [ENTERPRISE_ZONE, OTHER_ENTERPRISE_ZONE] {
        let events = h
            .wait_for(zone, &name, |e| e.closed_until(HTTP) == Some(end))
            .await;
        events.assert_contiguous(HTTP);
        assert_eq!(events.closes.len(), 5, "{name}");
        assert_eq!(
            events.count("complete"),
            5,
            "{name}: no window may become a gap"
        );
        h.assert_windows_match_truth(zone, &events);
    }
    let faulted = h
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/logs/received") && r.fault.is_some())
        .count();
    assert_eq!(faulted, count as usize, "{name}: every armed fault was hit");
    let events = h.zone_events(ENTERPRISE_ZONE).await;
    if leaves_orphans {
        assert!(
            !events.abandoned_attempts().is_empty(),
            "{name}: the broken attempt had published batches that do not count"
        );
    }
    collector.stop().await;
}

#[tokio::test]
async fn error_streaming_data_abandons_the_attempt() {
    survives(FaultKind::StreamError { after_lines: 120 }, 2, true).await;
}

#[tokio::test]
async fn a_reset_mid_body_abandons_the_attempt() {
    survives(FaultKind::ResetAfterBytes { after_bytes: 6000 }, 2, true).await;
}

#[tokio::test]
async fn truncated_gzip_abandons_the_attempt() {
    survives(FaultKind::TruncatedGzip { after_bytes: 6000 }, 2, true).await;
}

#[tokio::test]
async fn a_429_storm_is_waited_out() {
    survives(
        FaultKind::RateLimit {
            retry_after_secs: 1,
        },
        7,
        false,
    )
    .await;
}

#[tokio::test]
async fn server_errors_are_retried() {
    survives(FaultKind::ServerError { status: 503 }, 8, false).await;
}

#[tokio::test]
async fn timeouts_shrink_the_window_and_coverage_stays_contiguous() {
    let h = Harness::start().await;
    h.sim
        .inject(on_logpull(ENTERPRISE_ZONE, Some(6), FaultKind::IdleTimeout));
    h.add_zone(ENTERPRISE_ZONE, Method::Logpull, "default", FULL_TOKEN)
        .await;
    let collector = h.start_collector();
    let end = t0().unix_timestamp() - 300;
    let events = h
        .wait_for(ENTERPRISE_ZONE, "windows", |e| {
            e.closed_until(HTTP) == Some(end)
        })
        .await;
    events.assert_contiguous(HTTP);
    assert!(
        events
            .closes
            .iter()
            .any(|c| c.window.end - c.window.start < 60),
        "a 408 after the client's own retries shrinks the window"
    );
    assert!(
        events
            .closes
            .iter()
            .all(|c| c.window.end - c.window.start <= 60)
    );
    h.assert_windows_match_truth(ENTERPRISE_ZONE, &events);
    collector.stop().await;
}

#[tokio::test]
async fn a_failing_zone_never_delays_another() {
    let h = Harness::start().await;
    h.sim.inject(on_logpull(
        ENTERPRISE_ZONE,
        None,
        FaultKind::ServerError { status: 502 },
    ));
    h.add_zone(ENTERPRISE_ZONE, Method::Logpull, "default", FULL_TOKEN)
        .await;
    h.add_zone(
        OTHER_ENTERPRISE_ZONE,
        Method::Logpull,
        "default",
        FULL_TOKEN,
    )
    .await;
    // Both zones share one token: the failing zone's breaker must open without holding the
    // other zone back.
    let mut settings = h.settings.clone();
    settings.client.breaker = rainlogs_cloudflare::BreakerConfig {
        failure_threshold: 2,
        open_for: std::time::Duration::from_millis(300),
    };
    let telemetry = rainlogs_telemetry::init(&rainlogs_config::TelemetrySettings {
        log_level: "error".into(),
        ..Default::default()
    })
    .unwrap();
    let collector = h.start_collector_metered(settings, telemetry.meter("collector"));
    let end = t0().unix_timestamp() - 300;
    let other = h
        .wait_for(OTHER_ENTERPRISE_ZONE, "windows", |e| {
            e.closed_until(HTTP) == Some(end)
        })
        .await;
    h.assert_windows_match_truth(OTHER_ENTERPRISE_ZONE, &other);
    assert!(
        h.zone_events(ENTERPRISE_ZONE).await.closes.is_empty(),
        "failing windows are held, never skipped"
    );
    h.wait_for_health(ENTERPRISE_ZONE, "degraded", |h| {
        h.status == "degraded" && (h.reason.contains("502") || h.reason.contains("circuit breaker"))
    })
    .await;
    let breaker = |zone: &str| {
        telemetry
            .render()
            .lines()
            .find(|l| l.starts_with("rainlogs_collector_breaker_state{") && l.contains(zone))
            .and_then(|l| l.rsplit(' ').next().map(str::to_owned))
    };
    assert_eq!(breaker(ENTERPRISE_ZONE).as_deref(), Some("2"), "open");
    assert_eq!(
        breaker(OTHER_ENTERPRISE_ZONE).as_deref(),
        Some("0"),
        "closed"
    );
    h.sim.clear_faults();
    let events = h
        .wait_for(ENTERPRISE_ZONE, "recovery", |e| {
            e.closed_until(HTTP) == Some(end)
        })
        .await;
    events.assert_contiguous(HTTP);
    h.assert_windows_match_truth(ENTERPRISE_ZONE, &events);
    assert_eq!(
        breaker(ENTERPRISE_ZONE).as_deref(),
        Some("0"),
        "closed again"
    );
    collector.stop().await;
}

#[tokio::test]
async fn a_revoked_token_holds_the_cursor_until_a_new_token_arrives() {
    let h = Harness::start().await;
    h.add_zone(ENTERPRISE_ZONE, Method::Logpull, "default", SPARE_TOKEN)
        .await;
    h.add_zone(
        OTHER_ENTERPRISE_ZONE,
        Method::Logpull,
        "default",
        FULL_TOKEN,
    )
    .await;
    let collector = h.start_collector();
    let end = t0().unix_timestamp() - 300;
    h.wait_for(ENTERPRISE_ZONE, "backfill", |e| {
        e.closed_until(HTTP) == Some(end)
    })
    .await;
    h.sim.inject(Fault {
        zone: None,
        dataset: None,
        endpoint: EndpointKind::Any,
        count: None,
        probability: None,
        kind: FaultKind::RevokeToken {
            token: SPARE_TOKEN.into(),
        },
    });
    h.sim.advance(std::time::Duration::from_secs(180));
    let health = h
        .wait_for_health(ENTERPRISE_ZONE, "failing token", |h| {
            h.status == "failing" && h.reason.contains("token")
        })
        .await;
    assert_eq!(health.method, Some(Method::Logpull));
    h.wait_for(OTHER_ENTERPRISE_ZONE, "the other zone", |e| {
        e.closed_until(HTTP) == Some(end + 180)
    })
    .await;
    assert_eq!(
        h.zone_events(ENTERPRISE_ZONE).await.closed_until(HTTP),
        Some(end),
        "no window is skipped while the token is bad"
    );

    h.new_token(ENTERPRISE_ZONE, FULL_TOKEN).await;
    let events = h
        .wait_for(ENTERPRISE_ZONE, "catch-up", |e| {
            e.closed_until(HTTP) == Some(end + 180)
        })
        .await;
    events.assert_contiguous(HTTP);
    assert_eq!(events.count("gap"), 0);
    h.assert_windows_match_truth(ENTERPRISE_ZONE, &events);
    assert_eq!(
        h.health(ENTERPRISE_ZONE)
            .await
            .last()
            .map(|h| h.status.clone())
            .as_deref(),
        Some("ok")
    );
    collector.stop().await;
}

#[tokio::test]
async fn retention_switched_off_becomes_gaps_and_is_switched_back_on_when_allowed() {
    let h = Harness::start().await;
    h.add_zone(ENTERPRISE_ZONE, Method::Logpull, "default", FULL_TOKEN)
        .await;
    h.add_zone(
        OTHER_ENTERPRISE_ZONE,
        Method::Logpull,
        "default",
        LOGS_READ_ONLY_TOKEN,
    )
    .await;
    let collector = h.start_collector();
    let end = t0().unix_timestamp() - 300;
    h.wait_for(ENTERPRISE_ZONE, "backfill", |e| {
        e.closed_until(HTTP) == Some(end)
    })
    .await;
    // The read-only token cannot see the other zone: its onboarding fails with a reason.
    h.wait_for_health(OTHER_ENTERPRISE_ZONE, "no access", |h| {
        h.status == "failing"
    })
    .await;

    h.sim.inject(Fault {
        zone: Some(ENTERPRISE_ZONE.into()),
        dataset: None,
        endpoint: EndpointKind::Any,
        count: None,
        probability: None,
        kind: FaultKind::RetentionOff,
    });
    h.sim.advance(std::time::Duration::from_secs(180));
    let events = h
        .wait_for(ENTERPRISE_ZONE, "windows after retention off", |e| {
            e.closed_until(HTTP) == Some(end + 180)
        })
        .await;
    events.assert_contiguous(HTTP);
    let switched_on = h.sim.now().unix_timestamp();
    h.wait_for_health(ENTERPRISE_ZONE, "retention re-enabled", |h| {
        h.status == "degraded" && h.reason.contains("switched it back on")
    })
    .await;
    // Cloudflare kept nothing while the flag was off, so everything before it was switched back
    // on is a gap; windows after that are collected again.
    h.sim.advance(std::time::Duration::from_secs(600));
    let events = h
        .wait_for(ENTERPRISE_ZONE, "windows after re-enabling", |e| {
            e.closed_until(HTTP) == Some(end + 780)
        })
        .await;
    events.assert_contiguous(HTTP);
    for close in events.closes.iter().filter(|c| c.window.start >= end) {
        if close.window.start < switched_on {
            assert!(
                matches!(
                    &close.outcome,
                    WindowOutcome::Gap {
                        reason: GapReason::RetentionFlagOff,
                        ..
                    }
                ),
                "{close:?}"
            );
        } else {
            assert_eq!(outcome_name(&close.outcome), "complete", "{close:?}");
        }
    }
    assert_eq!(
        events
            .closes
            .iter()
            .filter(|c| c.window.start >= switched_on)
            .count(),
        5
    );
    h.assert_windows_match_truth(ENTERPRISE_ZONE, &events);
    collector.stop().await;
}

#[tokio::test]
async fn retention_off_without_permission_to_enable_it_is_a_failing_zone_with_gaps() {
    let mut scenario = scenario();
    for zone in &mut scenario.zones {
        if zone.id == ENTERPRISE_ZONE {
            zone.retention = false;
        }
    }
    let h = Harness::start_with(scenario).await;
    h.add_zone(
        ENTERPRISE_ZONE,
        Method::Logpull,
        "default",
        LOGS_READ_ONLY_TOKEN,
    )
    .await;
    let collector = h.start_collector();
    let health = h
        .wait_for_health(ENTERPRISE_ZONE, "retention off", |h| {
            h.status == "failing" && h.reason.contains("retention")
        })
        .await;
    assert!(health.reason.contains("Logs Edit"), "{}", health.reason);
    let end = t0().unix_timestamp() - 300;
    let events = h
        .wait_for(ENTERPRISE_ZONE, "gaps", |e| {
            e.closed_until(HTTP) == Some(end)
        })
        .await;
    events.assert_contiguous(HTTP);
    assert!(events.closes.iter().all(|c| matches!(
        &c.outcome,
        WindowOutcome::Gap {
            reason: GapReason::RetentionFlagOff,
            ..
        }
    )));
    collector.stop().await;
}

#[tokio::test]
async fn a_pull_request_ends_the_wait_after_a_failure() {
    let h = Harness::start().await;
    // One window fails (the client's three tries), and the zone would then wait an hour.
    h.sim.inject(on_logpull(
        ENTERPRISE_ZONE,
        Some(3),
        FaultKind::ServerError { status: 503 },
    ));
    h.add_zone(ENTERPRISE_ZONE, Method::Logpull, "default", FULL_TOKEN)
        .await;
    let mut settings = h.settings.clone();
    settings.retry_base = std::time::Duration::from_secs(3600);
    settings.retry_max = std::time::Duration::from_secs(3600);
    let collector = h.start_collector_with(settings);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while h
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/logs/received") && r.fault.is_some())
        .count()
        < 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the fault was never hit"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let end = t0().unix_timestamp() - 300;
    assert_eq!(
        h.zone_events(ENTERPRISE_ZONE).await.closed_until(HTTP),
        None
    );

    h.request_pull(
        ENTERPRISE_ZONE,
        rainlogs_schemas::events::Window {
            start: end - 300,
            end,
        },
    )
    .await;
    // `wait_for` gives up long before the hour is over: only the pull can get the windows in.
    let events = h
        .wait_for(ENTERPRISE_ZONE, "the pulled windows", |e| {
            e.closed_until(HTTP) == Some(end)
        })
        .await;
    events.assert_contiguous(HTTP);
    assert_eq!(events.count("complete"), 5);
    h.assert_windows_match_truth(ENTERPRISE_ZONE, &events);
    collector.stop().await;
}
