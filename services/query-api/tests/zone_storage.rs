//! Zone health shows the storage repair backlog the running processes publish in
//! `RL_STORE_STATUS`, against real NATS and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use rainlogs_bus::definitions::STORE_STATUS;
use rainlogs_bus::store_status::{self, StoreStatus};
use rainlogs_schemas::events::ZoneHealth;
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What a `rainlogs run` process's store watch writes after a pass.
fn status(secondary_answers: bool, zones: &[(String, u64)]) -> StoreStatus {
    StoreStatus {
        providers: BTreeMap::from([
            ("primary".to_owned(), true),
            ("secondary".to_owned(), secondary_answers),
        ]),
        backlog: zones.iter().map(|(_, n)| n).sum(),
        zones: zones.iter().cloned().collect(),
        host: Some("test".into()),
    }
}

/// The collector's word that the zone collects fine, so its health is `ok` without storage.
async fn collecting(stack: &Stack, tenant: &str, zone: &str) {
    let event = Envelope::new(
        tenant,
        Some(zone.to_owned()),
        Actor::service("collector"),
        Event::ZoneHealth(ZoneHealth {
            zone_id: zone.to_owned(),
            status: "ok".into(),
            reason: "collecting".into(),
            plan: None,
            method: None,
        }),
    );
    let sequence = stack
        .bus
        .publish(&subjects::control(tenant), &event)
        .await
        .unwrap()
        .sequence;
    assert!(
        rainlogs_db::wait_until_applied(&stack.pool, "control", sequence, Duration::from_secs(20))
            .await
            .unwrap(),
        "control projection never caught up"
    );
}

/// The zone's health as the zone list shows it (the API has no GET of one zone).
async fn health(stack: &Stack, key: &str, zone: &str) -> Value {
    let reply = stack.get("/api/v1/zones", key).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    listed(&reply.json, zone)
}

fn listed(list: &Value, zone: &str) -> Value {
    list["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone_id"] == zone)
        .unwrap_or_else(|| panic!("{zone} listed: {list}"))["health"]
        .clone()
}

/// Polls the zone's health until `done` holds (the API keeps what it read for a moment).
async fn health_until(
    stack: &Stack,
    key: &str,
    zone: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let health = health(stack, key, zone).await;
        if done(&health) {
            return health;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never happened: {health}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_repair_backlog_shows_in_zone_health_until_its_entries_expire() {
    let options = rainlogs_query_api::ApiOptions {
        storage_status_cache: Duration::from_millis(200),
        ..relaxed()
    };
    let stack = Stack::start_with(options, |_| {}).await;
    let (tenant, key) = stack.register("ops@acme.example").await;
    for zone in [ENTERPRISE_ZONE, BUSINESS_ZONE] {
        let added = stack.add_zone(&key, zone).await;
        assert_eq!(added.status, StatusCode::CREATED, "{}", added.json);
        collecting(&stack, &tenant, zone).await;
    }
    // One provider so far (nothing in the bucket): nothing about storage.
    let before = health_until(&stack, &key, ENTERPRISE_ZONE, "ok", |h| h["status"] == "ok").await;
    assert_eq!(before["reason"], "collecting");
    assert!(before.get("storage").is_none(), "{before}");

    // Two processes: one cannot reach the secondary and queued 12 of the zone's objects, the
    // other reaches both and still holds 3 (and one of another tenant's zones).
    let ours = format!("{tenant}/{ENTERPRISE_ZONE}");
    let long = Duration::from_secs(120);
    store_status::write(
        &stack.bus,
        "process-a",
        &status(false, &[(ours.clone(), 12)]),
        long,
    )
    .await
    .unwrap();
    store_status::write(
        &stack.bus,
        "process-b",
        &status(
            true,
            &[(ours.clone(), 3), (format!("c0ther/{ENTERPRISE_ZONE}"), 7)],
        ),
        long,
    )
    .await
    .unwrap();

    let degraded = health_until(&stack, &key, ENTERPRISE_ZONE, "degraded", |h| {
        h["status"] == "degraded"
    })
    .await;
    let storage = &degraded["storage"];
    assert_eq!(storage["status"], "degraded", "{degraded}");
    assert_eq!(storage["backlog"], 15, "{degraded}");
    let reason = "15 objects of this zone are on one storage provider only, waiting for repair \
                  (secondary not answering for 1 of 2 RainLogs processes)";
    assert_eq!(storage["reason"], reason);
    assert_eq!(
        degraded["reason"], reason,
        "the zone was ok: the storage says why"
    );

    // The tenant's other zone has nothing waiting, but its new archives reach one provider only.
    let other = health(&stack, &key, BUSINESS_ZONE).await;
    assert_eq!(other["status"], "degraded", "{other}");
    assert_eq!(other["storage"]["status"], "degraded");
    assert_eq!(other["storage"]["backlog"], 0);
    let other_reason = other["storage"]["reason"].as_str().unwrap();
    assert!(
        other_reason.starts_with(
            "storage provider secondary not answering for 1 of 2 RainLogs processes: new \
             archives are kept on the other provider only"
        ),
        "{other_reason}"
    );
    assert_eq!(other["reason"], other_reason);

    // A paused zone stays paused, with the storage part beside it.
    let paused = stack
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/zones/{BUSINESS_ZONE}"),
            Some(&key),
            Some(json!({"paused": true})),
        )
        .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.json);
    assert_eq!(paused.json["health"]["status"], "paused");
    assert_eq!(paused.json["health"]["storage"]["status"], "degraded");
    // The zone view of a change carries the same health as the list.
    let changed = stack
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/zones/{ENTERPRISE_ZONE}"),
            Some(&key),
            Some(json!({"fields": "default"})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.json);
    assert_eq!(changed.json["health"]["storage"]["backlog"], 15);
    assert_eq!(changed.json["health"]["reason"], reason);

    // The processes' last passes before they stop: entries that expire a second later.
    let short = Duration::from_secs(1);
    store_status::write(
        &stack.bus,
        "process-a",
        &status(false, &[(ours.clone(), 12)]),
        short,
    )
    .await
    .unwrap();
    store_status::write(&stack.bus, "process-b", &status(true, &[]), short)
        .await
        .unwrap();
    // (The two expire one after the other: wait for both.)
    let after = health_until(&stack, &key, ENTERPRISE_ZONE, "ok again", |h| {
        h["status"] == "ok" && h.get("storage").is_none()
    })
    .await;
    assert_eq!(after["reason"], "collecting");

    // A bucket that cannot be read: zone health still answers, without a storage part.
    store_status::write(
        &stack.bus,
        "process-a",
        &status(false, &[(ours.clone(), 12)]),
        long,
    )
    .await
    .unwrap();
    health_until(&stack, &key, ENTERPRISE_ZONE, "degraded", |h| {
        h["status"] == "degraded"
    })
    .await;
    stack
        .bus
        .js
        .delete_stream(format!("KV_{STORE_STATUS}"))
        .await
        .unwrap();
    let unread = health_until(&stack, &key, ENTERPRISE_ZONE, "ok without storage", |h| {
        h["status"] == "ok"
    })
    .await;
    assert!(unread.get("storage").is_none(), "{unread}");
}
