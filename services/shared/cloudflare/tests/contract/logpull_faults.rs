//! Logpull under every fault the simulator injects: what is retried, when the client gives up, what it reports,
//! and that a failed window can never look complete.

use crate::support::*;
use cf_sim::{EndpointKind, Fault, FaultKind, Plan};
use rainlogs_cloudflare::{CfError, RateLimitScope, TransportPhase};
use std::time::Duration;

fn on_logpull(count: u32, kind: FaultKind) -> Fault {
    Fault::on_zone(ENTERPRISE_ZONE, EndpointKind::Logpull, count, kind)
}

#[tokio::test]
async fn a_429_storm_is_waited_out_per_retry_after() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    inject(
        &sim,
        on_logpull(
            2,
            FaultKind::RateLimit {
                retry_after_secs: 1,
            },
        ),
    );
    let q = query(ENTERPRISE_ZONE, window(10, 30));
    let (lines, verdict) = drain(&cf, &q).await;
    verdict.unwrap();
    assert_eq!(sorted(lines), truth(&sim, &q).await);
    assert_eq!(statuses(&sim, "/logs/received"), vec![429, 429, 200]);
}

#[tokio::test]
async fn a_long_retry_after_is_returned_to_the_caller_and_blocks_the_zone_locally() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    inject(
        &sim,
        on_logpull(
            1,
            FaultKind::RateLimit {
                retry_after_secs: 3600,
            },
        ),
    );
    let (_, verdict) = drain(&cf, &query(ENTERPRISE_ZONE, window(10, 30))).await;
    match verdict {
        Err(CfError::RateLimited {
            scope: RateLimitScope::LogpullZone,
            retry_after: Some(wait),
            ..
        }) => {
            assert_eq!(wait, Duration::from_secs(3600))
        }
        other => panic!("expected a zone rate limit, got {other:?}"),
    }
    // The next call is refused by the client itself: the simulator sees nothing more.
    let (_, verdict) = drain(&cf, &query(ENTERPRISE_ZONE, window(9, 30))).await;
    assert!(
        matches!(
            verdict,
            Err(CfError::RateLimited {
                scope: RateLimitScope::Local,
                ..
            })
        ),
        "{verdict:?}"
    );
    assert_eq!(statuses(&sim, "/logs/received"), vec![429]);
    // Other endpoints on the same token are not blocked by a zone's Logpull limit.
    cf.zone(ENTERPRISE_ZONE).await.unwrap();
}

#[tokio::test]
async fn server_errors_are_retried_then_surface_with_their_status() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    inject(&sim, on_logpull(2, FaultKind::ServerError { status: 502 }));
    let q = query(ENTERPRISE_ZONE, window(10, 30));
    let (lines, verdict) = drain(&cf, &q).await;
    verdict.unwrap();
    assert_eq!(sorted(lines), truth(&sim, &q).await);
    assert_eq!(statuses(&sim, "/logs/received"), vec![502, 502, 200]);

    sim.clear_requests();
    inject(&sim, on_logpull(10, FaultKind::ServerError { status: 503 }));
    let (lines, verdict) = drain(&cf, &q).await;
    assert!(lines.is_empty());
    assert!(
        matches!(verdict, Err(CfError::Server { status: 503, .. })),
        "{verdict:?}"
    );
    assert_eq!(
        statuses(&sim, "/logs/received"),
        vec![503; 4],
        "max_attempts = 4"
    );
}

#[tokio::test]
async fn http_408_is_retried() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    inject(&sim, on_logpull(1, FaultKind::IdleTimeout));
    let (_, verdict) = drain(&cf, &query(ENTERPRISE_ZONE, window(10, 30))).await;
    verdict.unwrap();
    assert_eq!(statuses(&sim, "/logs/received"), vec![408, 200]);

    inject(&sim, on_logpull(4, FaultKind::IdleTimeout));
    let (_, verdict) = drain(&cf, &query(ENTERPRISE_ZONE, window(9, 30))).await;
    assert!(
        matches!(verdict, Err(CfError::RequestTimeout { .. })),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn error_streaming_data_trailer_fails_the_window_after_the_lines() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    inject(
        &sim,
        on_logpull(1, FaultKind::StreamError { after_lines: 100 }),
    );
    let q = query(ENTERPRISE_ZONE, window(10, 60));
    let (lines, verdict) = drain(&cf, &q).await;
    assert_eq!(lines.len(), 100);
    assert!(
        matches!(verdict, Err(CfError::StreamedFailure { lines: 100 })),
        "{verdict:?}"
    );
    assert!(verdict.unwrap_err().is_retryable());
    // The caller re-fetches the window and now gets all of it.
    let (lines, verdict) = drain(&cf, &q).await;
    verdict.unwrap();
    assert_eq!(sorted(lines), truth(&sim, &q).await);
}

#[tokio::test]
async fn a_connection_reset_mid_body_fails_the_window() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    inject(
        &sim,
        on_logpull(1, FaultKind::ResetAfterBytes { after_bytes: 4_000 }),
    );
    let q = query(ENTERPRISE_ZONE, window(10, 60));
    let (lines, verdict) = drain(&cf, &q).await;
    let error = verdict.unwrap_err();
    assert!(
        matches!(
            error,
            CfError::Transport {
                phase: TransportPhase::Body,
                ..
            } | CfError::Decompression(_)
        ),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert!(lines.len() < truth(&sim, &q).await.len());
}

#[tokio::test]
async fn truncated_gzip_fails_the_window() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    inject(
        &sim,
        on_logpull(1, FaultKind::TruncatedGzip { after_bytes: 8_000 }),
    );
    let (_, verdict) = drain(&cf, &query(ENTERPRISE_ZONE, window(10, 60))).await;
    assert!(
        matches!(verdict, Err(CfError::Decompression(_))),
        "{verdict:?}"
    );
    // Even when the cut falls after the last deflate block, the missing trailer is noticed.
    inject(
        &sim,
        on_logpull(
            1,
            FaultKind::TruncatedGzip {
                after_bytes: 100_000_000,
            },
        ),
    );
    let (lines, verdict) = drain(&cf, &query(ENTERPRISE_ZONE, window(9, 60))).await;
    assert!(
        matches!(verdict, Err(CfError::Decompression(_))),
        "{verdict:?} after {} lines",
        lines.len()
    );
}

#[tokio::test]
async fn a_slow_body_completes_and_a_stalled_one_fails() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    inject(
        &sim,
        on_logpull(
            1,
            FaultKind::SlowBody {
                bytes_per_sec: 200_000,
            },
        ),
    );
    let q = query(ENTERPRISE_ZONE, window(10, 10));
    let (lines, verdict) = drain(&cf, &q).await;
    verdict.unwrap();
    assert_eq!(sorted(lines), truth(&sim, &q).await);

    let mut impatient = fast_config(&sim);
    impatient.body_idle_timeout = Duration::from_millis(300);
    impatient.retry.max_attempts = 1;
    let (_, cf) = client(impatient, FULL_TOKEN);
    inject(
        &sim,
        on_logpull(1, FaultKind::SlowBody { bytes_per_sec: 1 }),
    );
    let (_, verdict) = drain(&cf, &query(ENTERPRISE_ZONE, window(9, 10))).await;
    assert!(
        matches!(verdict, Err(CfError::BodyStalled(_))),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn retention_switched_off_mid_run_is_permanent() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    drain(&cf, &query(ENTERPRISE_ZONE, window(10, 30)))
        .await
        .1
        .unwrap();
    inject(
        &sim,
        Fault {
            zone: Some(ENTERPRISE_ZONE.into()),
            dataset: None,
            endpoint: EndpointKind::Any,
            count: None,
            probability: None,
            kind: FaultKind::RetentionOff,
        },
    );
    let (_, verdict) = drain(&cf, &query(ENTERPRISE_ZONE, window(9, 30))).await;
    assert!(
        matches!(verdict, Err(CfError::RetentionDisabled { .. })),
        "{verdict:?}"
    );
    assert!(!cf.retention_flag(ENTERPRISE_ZONE).await.unwrap());
    assert_eq!(statuses(&sim, "/logs/received"), vec![200, 400]);
}

#[tokio::test]
async fn a_plan_downgrade_shows_in_the_zone_and_refuses_logpull() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    assert_eq!(
        cf.zone(ENTERPRISE_ZONE).await.unwrap().tier(),
        rainlogs_cloudflare::PlanTier::Enterprise
    );
    inject(
        &sim,
        Fault {
            zone: Some(ENTERPRISE_ZONE.into()),
            dataset: None,
            endpoint: EndpointKind::Any,
            count: None,
            probability: None,
            kind: FaultKind::PlanChange {
                plan: Plan::Business,
            },
        },
    );
    assert_eq!(
        cf.zone(ENTERPRISE_ZONE).await.unwrap().tier(),
        rainlogs_cloudflare::PlanTier::Business
    );
    let (_, verdict) = drain(&cf, &query(ENTERPRISE_ZONE, window(10, 30))).await;
    assert!(
        matches!(verdict, Err(CfError::NotEntitled { .. })),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn ray_lookups_retry_a_reset_body() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let (lines, verdict) = drain(&cf, &query(ENTERPRISE_ZONE, window(30, 2))).await;
    verdict.unwrap();
    let record: serde_json::Value = serde_json::from_slice(&lines[0]).unwrap();
    let ray = record["RayID"].as_str().unwrap().to_owned();
    inject(
        &sim,
        Fault::on_zone(
            ENTERPRISE_ZONE,
            EndpointKind::Rayids,
            1,
            FaultKind::ResetAfterBytes { after_bytes: 10 },
        ),
    );
    let found = cf
        .logpull_ray(
            ENTERPRISE_ZONE,
            &ray,
            &fields(),
            rainlogs_cloudflare::TimestampFormat::UnixNano,
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let ray_requests = sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("/logs/rayids/"))
        .count();
    assert_eq!(ray_requests, 2, "one reset, one retry");
}

/// More than 12 timeouts in an hour block the zone's Logpull for an hour (plain-text 429): the
/// client surfaces a zone rate limit with the hour to wait, then stops calling for that zone.
#[tokio::test]
async fn timeout_abuse_blocks_the_zone_for_an_hour_and_the_client_stops_calling() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    inject(&sim, on_logpull(20, FaultKind::IdleTimeout));
    let mut verdict = None;
    for minutes_back in 10..20 {
        let (_, v) = drain(&cf, &query(ENTERPRISE_ZONE, window(minutes_back, 30))).await;
        if !matches!(v, Err(CfError::RequestTimeout { .. })) {
            verdict = Some(v);
            break;
        }
    }
    match verdict {
        Some(Err(CfError::RateLimited {
            scope: RateLimitScope::LogpullZone,
            retry_after: Some(wait),
            ..
        })) => assert!(
            wait > Duration::from_secs(3500) && wait <= Duration::from_secs(3600),
            "{wait:?}"
        ),
        other => panic!("expected the zone's hour-long block, got {other:?}"),
    }
    let statuses_before = statuses(&sim, "/logs/received");
    assert_eq!(
        statuses_before.iter().filter(|s| **s == 408).count(),
        13,
        "the 13th timeout triggers the block: {statuses_before:?}"
    );
    let (_, verdict) = drain(&cf, &query(ENTERPRISE_ZONE, window(30, 30))).await;
    assert!(
        matches!(
            verdict,
            Err(CfError::RateLimited {
                scope: RateLimitScope::Local,
                ..
            })
        ),
        "{verdict:?}"
    );
    assert_eq!(
        statuses(&sim, "/logs/received"),
        statuses_before,
        "nothing more is sent while blocked"
    );
}
