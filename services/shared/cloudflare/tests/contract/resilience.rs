//! The layers working together against a live server: breaker states, the client-side limiter, token blocks.

use crate::support::*;
use cf_sim::{EndpointKind, Fault, FaultKind};
use rainlogs_cloudflare::{
    BreakerConfig, BreakerState, CfError, Endpoint, RateLimitScope, RateLimits, WindowLimit,
};
use std::time::Duration;

#[tokio::test]
async fn breaker_opens_on_repeated_5xx_then_half_opens_and_closes() {
    let sim = start_sim().await;
    let mut config = fast_config(&sim);
    config.breaker = BreakerConfig {
        failure_threshold: 3,
        open_for: Duration::from_millis(300),
    };
    config.retry.max_attempts = 10;
    let (shared, cf) = client(config, FULL_TOKEN);
    inject(
        &sim,
        Fault::on_zone(
            ENTERPRISE_ZONE,
            EndpointKind::Zone,
            100,
            FaultKind::ServerError { status: 500 },
        ),
    );

    let error = cf.zone(ENTERPRISE_ZONE).await.unwrap_err();
    assert!(
        matches!(
            error,
            CfError::CircuitOpen {
                endpoint: Endpoint::Zone,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        statuses(&sim, "/zones/3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e"),
        vec![500; 3],
        "no call after the breaker opened"
    );
    let state = |shared: &rainlogs_cloudflare::CloudflareClient| {
        shared
            .breaker_states()
            .into_iter()
            .find(|s| s.endpoint == Endpoint::Zone)
            .map(|s| s.state)
    };
    assert_eq!(state(&shared), Some(BreakerState::Open));
    // Other endpoints of the same token have their own breaker.
    assert!(cf.retention_flag(ENTERPRISE_ZONE).await.unwrap());

    sim.clear_faults();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(state(&shared), Some(BreakerState::HalfOpen));
    cf.zone(ENTERPRISE_ZONE).await.unwrap();
    assert_eq!(state(&shared), Some(BreakerState::Closed));
}

#[tokio::test]
async fn permanent_auth_failures_do_not_trip_the_breaker() {
    let sim = start_sim().await;
    let mut config = fast_config(&sim);
    config.breaker = BreakerConfig {
        failure_threshold: 2,
        open_for: Duration::from_secs(60),
    };
    let (shared, cf) = client(config, LOGS_READ_ONLY_TOKEN);
    for _ in 0..4 {
        let error = cf.zone(FREE_ZONE).await.unwrap_err();
        assert!(
            matches!(error, CfError::Auth { status: 403, .. }),
            "{error:?}"
        );
    }
    assert!(
        shared
            .breaker_states()
            .iter()
            .all(|s| s.state == BreakerState::Closed)
    );
}

#[tokio::test]
async fn the_client_limiter_refuses_before_the_server_would_429() {
    let sim = start_sim().await;
    let mut config = fast_config(&sim);
    config.limits = RateLimits {
        logpull_per_zone: Some(WindowLimit::new(15, Duration::from_secs(60))),
        ..RateLimits::CLOUDFLARE
    };
    config.limiter_max_wait = Duration::ZERO;
    let (_, cf) = client(config, FULL_TOKEN);
    for i in 0..15 {
        let (_, verdict) = drain(&cf, &query(ENTERPRISE_ZONE, window(20 + i, 1))).await;
        verdict.unwrap();
    }
    let (_, verdict) = drain(&cf, &query(ENTERPRISE_ZONE, window(40, 1))).await;
    assert!(
        matches!(verdict, Err(CfError::RateLimited { scope: RateLimitScope::Local, retry_after: Some(wait), .. }) if wait > Duration::from_secs(50)),
        "{verdict:?}"
    );
    let seen = statuses(&sim, "/logs/received");
    assert_eq!(
        seen,
        vec![200; 15],
        "the 16th request must never reach Cloudflare"
    );
}

#[tokio::test]
async fn a_global_token_limit_blocks_every_endpoint_of_that_token_only() {
    let sim = start_sim().await;
    let (shared, cf) = client(fast_config(&sim), FULL_TOKEN);
    inject(
        &sim,
        Fault::everywhere(
            EndpointKind::Zone,
            1,
            FaultKind::RateLimit {
                retry_after_secs: 600,
            },
        ),
    );
    let error = cf.zone(ENTERPRISE_ZONE).await.unwrap_err();
    assert!(
        matches!(error, CfError::RateLimited { scope: RateLimitScope::Token, retry_after: Some(d), .. } if d == Duration::from_secs(600)),
        "{error:?}"
    );
    assert!(matches!(
        cf.retention_flag(ENTERPRISE_ZONE).await,
        Err(CfError::RateLimited {
            scope: RateLimitScope::Local,
            ..
        })
    ));
    let other = shared.with_token(rainlogs_cloudflare::ApiToken::new(ANALYTICS_ONLY_TOKEN));
    other.zone(PRO_ZONE).await.unwrap();
    assert_eq!(
        statuses(&sim, "/zones/3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e"),
        vec![429],
        "the blocked token sent nothing more"
    );
}

/// Cloudflare's per-IP limit (200 requests/s, lowered here) blocks every call from the address
/// for five minutes: the client surfaces it as a rate limit with that wait instead of retrying.
#[tokio::test]
async fn the_per_ip_limit_is_surfaced_with_its_five_minute_wait() {
    let mut scenario = cf_sim::Scenario::example();
    scenario.limits.per_ip_per_sec = 3;
    let sim = cf_sim::Simulator::start(
        scenario,
        cf_sim::SimOptions {
            clock: Some(cf_sim::ClockStart::FrozenAt(sim_now())),
            ..cf_sim::SimOptions::default()
        },
    )
    .await
    .unwrap();
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let mut refused = None;
    for _ in 0..6 {
        if let Err(e) = cf.zone(ENTERPRISE_ZONE).await {
            refused = Some(e);
            break;
        }
    }
    match refused {
        Some(CfError::RateLimited {
            retry_after: Some(wait),
            ..
        }) => assert_eq!(wait, Duration::from_secs(300)),
        other => panic!("expected the per-IP block, got {other:?}"),
    }
    let sent = statuses(&sim, "/zones/3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e");
    assert_eq!(sent.iter().filter(|s| **s == 429).count(), 1, "{sent:?}");
}
