//! Zones, plans, token verification (both routes), revocation and malformed zone ids.

use crate::support::*;
use cf_sim::{EndpointKind, Fault, FaultKind};
use rainlogs_cloudflare::{CfError, PlanTier, TokenOwner, TokenState};

#[tokio::test]
async fn every_plan_maps_to_its_tier() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    for (zone, tier) in [
        (FREE_ZONE, PlanTier::Free),
        (PRO_ZONE, PlanTier::Pro),
        (BUSINESS_ZONE, PlanTier::Business),
        (ENTERPRISE_ZONE, PlanTier::Enterprise),
    ] {
        let details = cf.zone(zone).await.unwrap();
        assert_eq!(details.id, zone);
        assert_eq!(details.tier(), tier, "{details:?}");
    }
    let enterprise = cf.zone(ENTERPRISE_ZONE).await.unwrap();
    assert_eq!(enterprise.account.unwrap().id, EU_ACCOUNT);
}

#[tokio::test]
async fn a_domain_instead_of_a_zone_id_is_7003_and_not_retried() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let error = cf.zone("example.com").await.unwrap_err();
    assert!(
        matches!(error, CfError::InvalidZoneId { status: 400, .. }),
        "{error:?}"
    );
    assert_eq!(error.api_codes(), vec![7003, 7000]);
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn a_zone_outside_the_tokens_scope_is_authentication_error_10000() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), LOGS_READ_ONLY_TOKEN);
    let error = cf.zone(PRO_ZONE).await.unwrap_err();
    assert!(
        matches!(&error, CfError::Auth { status: 403, errors } if errors.0[0].message == "Authentication error"),
        "{error:?}"
    );
    assert_eq!(error.api_codes(), vec![10000]);
    cf.zone(ENTERPRISE_ZONE).await.unwrap();
}

#[tokio::test]
async fn user_and_account_tokens_verify_on_their_routes() {
    let sim = start_sim().await;
    let (_, user) = client(fast_config(&sim), FULL_TOKEN);
    let status = user.verify_token(TokenOwner::User).await.unwrap();
    assert_eq!(status.status, TokenState::Active);
    assert!(status.is_usable_at(sim_now()));

    let (_, account) = client(fast_config(&sim), ACCOUNT_TOKEN);
    let error = account.verify_token(TokenOwner::User).await.unwrap_err();
    assert_eq!(
        error.api_codes(),
        vec![1000],
        "account tokens fail the user route with 1000: {error:?}"
    );
    assert_eq!(
        account
            .verify_token(TokenOwner::Account(EU_ACCOUNT))
            .await
            .unwrap()
            .status,
        TokenState::Active
    );
    assert_eq!(
        account
            .verify_token_any(Some(EU_ACCOUNT))
            .await
            .unwrap()
            .status,
        TokenState::Active
    );
    assert!(
        account
            .verify_token(TokenOwner::Account(SOVEREIGN_ACCOUNT))
            .await
            .is_err(),
        "wrong account"
    );

    let (_, disabled) = client(fast_config(&sim), DISABLED_TOKEN);
    let status = disabled.verify_token_any(None).await.unwrap();
    assert_eq!(status.status, TokenState::Disabled);
    assert!(!status.is_usable_at(sim_now()));
    assert!(matches!(
        disabled.zone(ENTERPRISE_ZONE).await,
        Err(CfError::Auth { .. })
    ));
}

#[tokio::test]
async fn a_revoked_token_fails_everywhere_without_retries() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    cf.verify_token(TokenOwner::User).await.unwrap();
    sim.clear_requests();
    inject(
        &sim,
        Fault {
            zone: None,
            dataset: None,
            endpoint: EndpointKind::Any,
            count: None,
            probability: None,
            kind: FaultKind::RevokeToken {
                token: FULL_TOKEN.into(),
            },
        },
    );

    let error = cf.verify_token(TokenOwner::User).await.unwrap_err();
    assert!(
        matches!(error, CfError::Auth { .. }) && !error.is_retryable(),
        "{error:?}"
    );
    let error = cf.zone(ENTERPRISE_ZONE).await.unwrap_err();
    assert_eq!(error.api_codes(), vec![9109], "{error:?}");
    let (_, verdict) = drain(&cf, &query(ENTERPRISE_ZONE, window(10, 30))).await;
    assert!(matches!(verdict, Err(CfError::Auth { .. })), "{verdict:?}");
    let error = cf.firewall_events_settings(PRO_ZONE).await.unwrap_err();
    assert!(
        matches!(error, CfError::Auth { status: 401, .. }),
        "{error:?}"
    );
    assert_eq!(
        sim.requests().len(),
        4,
        "one request per call: auth failures are never retried"
    );
}

#[tokio::test]
async fn zone_and_verify_endpoints_retry_transient_faults() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    inject(
        &sim,
        Fault::everywhere(
            EndpointKind::TokenVerify,
            1,
            FaultKind::ServerError { status: 503 },
        ),
    );
    inject(
        &sim,
        Fault::on_zone(PRO_ZONE, EndpointKind::Zone, 1, FaultKind::IdleTimeout),
    );
    inject(
        &sim,
        Fault::everywhere(
            EndpointKind::CmbConfig,
            1,
            FaultKind::RateLimit {
                retry_after_secs: 1,
            },
        ),
    );
    cf.verify_token(TokenOwner::User).await.unwrap();
    cf.zone(PRO_ZONE).await.unwrap();
    cf.cmb_config(EU_ACCOUNT).await.unwrap();
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 200, 408, 200, 429, 200]);
}
