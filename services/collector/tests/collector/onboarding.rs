//! Onboarding: plan → method, operator overrides that cannot work, and refusals explained.

use rainlogs_schemas::events::{Method, ZoneAdded};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};

use crate::support::*;

#[tokio::test]
async fn each_plan_gets_a_method_it_has_and_says_why() {
    let h = Harness::start().await;
    // Logpull asked for a Free zone: GraphQL is what the plan offers.
    h.add_zone(FREE_ZONE, Method::Logpull, "default", FULL_TOKEN)
        .await;
    // Logpull for an EU-only metadata boundary: Instant Logs instead.
    h.add_zone(SOVEREIGN_ZONE, Method::Logpull, "default", FULL_TOKEN)
        .await;
    h.add_zone(BUSINESS_ZONE, Method::InstantLogs, "default", FULL_TOKEN)
        .await;
    h.add_zone(ENTERPRISE_ZONE, Method::Logpull, "default", FULL_TOKEN)
        .await;
    let collector = h.start_collector();

    let free = h
        .wait_for_health(FREE_ZONE, "fallback", |h| h.method.is_some())
        .await;
    assert_eq!(
        (free.status.as_str(), free.method, free.plan.as_deref()),
        ("degraded", Some(Method::Graphql), Some("free"))
    );
    assert!(
        free.reason.contains("not available on the free plan"),
        "{}",
        free.reason
    );

    let eu = h
        .wait_for_health(SOVEREIGN_ZONE, "fallback", |h| h.method.is_some())
        .await;
    assert_eq!(
        (eu.status.as_str(), eu.method),
        ("degraded", Some(Method::InstantLogs))
    );
    assert!(eu.reason.contains("EU-only"), "{}", eu.reason);

    let business = h
        .wait_for_health(BUSINESS_ZONE, "ok", |h| h.method.is_some())
        .await;
    assert_eq!(
        (
            business.status.as_str(),
            business.method,
            business.plan.as_deref()
        ),
        ("ok", Some(Method::InstantLogs), Some("business"))
    );

    let enterprise = h
        .wait_for_health(ENTERPRISE_ZONE, "ok", |h| h.method.is_some())
        .await;
    assert_eq!(
        (enterprise.status.as_str(), enterprise.method),
        ("ok", Some(Method::Logpull))
    );
    assert!(enterprise.reason.contains("http_requests"));

    // The Free zone really is collected with GraphQL.
    h.wait_for(FREE_ZONE, "security events", |e| {
        !e.closes_of(FIREWALL).is_empty()
    })
    .await;
    collector.stop().await;
}

#[tokio::test]
async fn bad_tokens_are_reported_not_retried_in_a_loop() {
    let h = Harness::start().await;
    h.add_zone(
        PRO_ZONE,
        Method::Graphql,
        "default",
        "cfut_disabled_token_00000000000000000000",
    )
    .await;
    // A token sealed for another zone does not open here.
    let event = Envelope::new(
        TENANT,
        Some(ENTERPRISE_ZONE.into()),
        Actor::operator(),
        Event::ZoneAdded(ZoneAdded {
            zone_id: ENTERPRISE_ZONE.into(),
            name: "enterprise".into(),
            plan: "enterprise".into(),
            method: Method::Logpull,
            fields: "default".into(),
            sealed_token: key().seal(TENANT, PRO_ZONE, FULL_TOKEN),
            token_key_id: key().id().into(),
        }),
    );
    h.bus
        .publish(&subjects::control(TENANT), &event)
        .await
        .unwrap();
    let collector = h.start_collector();
    let disabled = h
        .wait_for_health(PRO_ZONE, "failing", |h| h.status == "failing")
        .await;
    assert!(disabled.reason.contains("token"), "{}", disabled.reason);
    let sealed = h
        .wait_for_health(ENTERPRISE_ZONE, "failing", |h| h.status == "failing")
        .await;
    assert!(sealed.reason.contains("sealed"), "{}", sealed.reason);
    // Rechecks do not repeat an unchanged verdict on the control stream.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(h.health(PRO_ZONE).await.len(), 1);
    assert!(h.zone_events(PRO_ZONE).await.closes.is_empty());
    collector.stop().await;
}
