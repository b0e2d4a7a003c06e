//! Projections against real NATS 2.15 and PostgreSQL: exactly-once effect under redelivery,
//! and a rebuild that reproduces the live tables.

use std::time::Duration;

use rainlogs_bus::{Bus, CancellationToken, connect, provision};
use rainlogs_db::{Applied, PgPool, apply_message, rebuild, run_projection};
use rainlogs_query_api::{AuditProjection, ControlProjection};
use rainlogs_schemas::events::*;
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_testkit::{NatsServer, TestDatabase};

async fn setup() -> (NatsServer, TestDatabase, Bus, PgPool) {
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let bus = connect(&nats.url).await.expect("connect");
    provision(&bus, 1).await.expect("provision");
    let pool = rainlogs_db::connect(&db.url, 4).await.expect("pool");
    rainlogs_db::migrate(&pool).await.expect("migrate");
    (nats, db, bus, pool)
}

fn control_events(tenant: &str) -> Vec<Envelope> {
    let zone = format!("{tenant}0000000000000000000000000000")[..32].to_owned();
    let ev = |event| Envelope::new(tenant, Some(zone.clone()), Actor::api_key("k1"), event);
    vec![
        ev(Event::TenantCreated(TenantCreated {
            name: format!("{tenant} GmbH"),
            email: format!("sec@{tenant}.example"),
            retention_days: 395,
        })),
        ev(Event::ZoneAdded(ZoneAdded {
            zone_id: zone.clone(),
            name: format!("{tenant}.example"),
            plan: "enterprise".into(),
            method: Method::Logpull,
            fields: "default".into(),
            sealed_token: vec![1, 2, 3],
            token_key_id: "k1".into(),
        })),
        ev(Event::ZoneChanged(ZoneChanged {
            zone_id: zone.clone(),
            paused: Some(true),
            ..Default::default()
        })),
        ev(Event::ApiKeyCreated(ApiKeyCreated {
            key_id: format!("key_{tenant}"),
            name: "ci".into(),
            role: Role::Operator,
            digest: vec![9; 32],
            expires_at_ns: None,
        })),
        ev(Event::ApiKeyRevoked(ApiKeyRevoked {
            key_id: format!("key_{tenant}"),
        })),
    ]
}

fn audit_event(tenant: &str, n: u32) -> Envelope {
    Envelope::new(
        tenant,
        None,
        Actor::api_key("k1"),
        Event::AuditRecorded(AuditRecorded {
            action: "archive.download".into(),
            target: format!("job/{n}"),
            outcome: "ok".into(),
            client_ip: Some("192.0.2.1".into()),
            request_id: Some(format!("req-{n}")),
            detail: None,
        }),
    )
}

/// Every row of every projection table, in a stable order, as JSON text.
async fn snapshot(pool: &PgPool) -> Vec<String> {
    let mut rows = Vec::new();
    for (table, key) in [
        ("tenants", "tenant_id"),
        ("zones", "zone_id"),
        ("api_keys", "key_id"),
        ("audit_log", "stream_sequence"),
    ] {
        let sql = format!("SELECT to_jsonb(t)::text FROM {table} t ORDER BY {key}");
        let found: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .expect("select");
        rows.extend(found.into_iter().map(|(r,)| format!("{table}: {r}")));
    }
    rows
}

async fn offset(pool: &PgPool, projection: &str) -> i64 {
    sqlx::query_as::<_, (i64,)>(
        "SELECT stream_sequence FROM projection_offsets WHERE projection = $1",
    )
    .bind(projection)
    .fetch_optional(pool)
    .await
    .expect("offset")
    .map_or(0, |(s,)| s)
}

async fn wait_for_offset(pool: &PgPool, projection: &str, target: u64) {
    for _ in 0..500 {
        if offset(pool, projection).await >= i64::try_from(target).expect("i64") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("projection {projection} never reached sequence {target}");
}

#[tokio::test]
async fn redelivered_message_changes_nothing() {
    let (_nats, _db, _bus, pool) = setup().await;
    let events = control_events("acme");
    for (i, event) in events.iter().enumerate() {
        let seq = u64::try_from(i).expect("u64") + 1;
        assert_eq!(
            apply_message(&pool, &ControlProjection, seq, event)
                .await
                .expect("apply"),
            Applied::Applied
        );
    }
    let before = snapshot(&pool).await;
    // The same sequences again: as after a crash between commit and ack.
    for (i, event) in events.iter().enumerate() {
        let seq = u64::try_from(i).expect("u64") + 1;
        assert_eq!(
            apply_message(&pool, &ControlProjection, seq, event)
                .await
                .expect("apply"),
            Applied::AlreadyApplied
        );
    }
    assert_eq!(snapshot(&pool).await, before);

    let audit = audit_event("acme", 1);
    assert_eq!(
        apply_message(&pool, &AuditProjection, 7, &audit)
            .await
            .expect("apply"),
        Applied::Applied
    );
    assert_eq!(
        apply_message(&pool, &AuditProjection, 7, &audit)
            .await
            .expect("apply"),
        Applied::AlreadyApplied
    );
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM audit_log")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(
        count, 1,
        "a redelivered audit event must not be recorded twice"
    );
}

#[tokio::test]
async fn two_projectors_racing_on_the_same_events_apply_each_once() {
    let (_nats, _db, _bus, pool) = setup().await;
    // Both start before the offset row exists, then race through the same sequences, as two
    // processes running the projection do after one's ack was lost.
    for n in 1..=20u32 {
        let event = audit_event("acme", n);
        let sequence = u64::from(n);
        let (a, b) = tokio::join!(
            apply_message(&pool, &AuditProjection, sequence, &event),
            apply_message(&pool, &AuditProjection, sequence, &event),
        );
        let mut outcomes = [a.expect("apply"), b.expect("apply")];
        outcomes.sort_by_key(|o| *o == Applied::AlreadyApplied);
        assert_eq!(
            outcomes,
            [Applied::Applied, Applied::AlreadyApplied],
            "sequence {n}"
        );
    }
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM audit_log")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(count, 20);
    assert_eq!(offset(&pool, "audit").await, 20);
}

#[tokio::test]
async fn live_projection_applies_in_order_and_rebuild_reproduces_it() {
    let (_nats, _db, bus, pool) = setup().await;
    let mut last_control = 0;
    let mut last_audit = 0;
    for tenant in ["acme", "globex", "initech"] {
        for event in control_events(tenant) {
            last_control = bus
                .publish(&subjects::control(tenant), &event)
                .await
                .expect("publish")
                .sequence;
        }
        for n in 0..5 {
            last_audit = bus
                .publish(&subjects::audit(tenant), &audit_event(tenant, n))
                .await
                .expect("publish")
                .sequence;
        }
    }

    let shutdown = CancellationToken::new();
    let control = tokio::spawn(run_projection(
        pool.clone(),
        bus.clone(),
        ControlProjection,
        shutdown.clone(),
    ));
    let audit = tokio::spawn(run_projection(
        pool.clone(),
        bus.clone(),
        AuditProjection,
        shutdown.clone(),
    ));
    wait_for_offset(&pool, "control", last_control).await;
    wait_for_offset(&pool, "audit", last_audit).await;
    shutdown.cancel();
    control.await.expect("join").expect("control projector");
    audit.await.expect("join").expect("audit projector");

    let live = snapshot(&pool).await;
    assert_eq!(live.iter().filter(|r| r.starts_with("tenants:")).count(), 3);
    assert_eq!(
        live.iter().filter(|r| r.starts_with("audit_log:")).count(),
        15
    );
    let paused: Vec<(bool,)> = sqlx::query_as("SELECT paused FROM zones")
        .fetch_all(&pool)
        .await
        .expect("zones");
    assert!(
        paused.iter().all(|(p,)| *p),
        "ZoneChanged applied after ZoneAdded"
    );
    let revoked: (i64,) =
        sqlx::query_as("SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL")
            .fetch_one(&pool)
            .await
            .expect("keys");
    assert_eq!(revoked.0, 3);

    let replayed = rebuild(&pool, &bus, ControlProjection)
        .await
        .expect("rebuild control");
    assert_eq!(replayed, 15);
    let replayed = rebuild(&pool, &bus, AuditProjection)
        .await
        .expect("rebuild audit");
    assert_eq!(replayed, 15);
    assert_eq!(
        snapshot(&pool).await,
        live,
        "rebuilt tables must equal the live ones"
    );
}

#[tokio::test]
async fn rebuild_of_an_empty_stream_leaves_empty_tables() {
    let (_nats, _db, bus, pool) = setup().await;
    assert_eq!(
        rebuild(&pool, &bus, ControlProjection)
            .await
            .expect("rebuild"),
        0
    );
    assert!(snapshot(&pool).await.is_empty());
}

#[tokio::test]
async fn a_run_larger_than_one_statement_is_applied_whole_and_a_replay_of_it_changes_nothing() {
    let (_nats, _db, _bus, pool) = setup().await;
    // 300 records of about 1 KiB each: several statements in one transaction.
    let events: Vec<Envelope> = (1..=300u32)
        .map(|n| {
            let mut event = audit_event(if n % 2 == 0 { "acme" } else { "globex" }, n);
            if let Event::AuditRecorded(record) = &mut event.event {
                record.detail = Some(format!("{n:>1024}"));
            }
            event
        })
        .collect();
    let run: Vec<(u64, &Envelope)> = events.iter().zip(1u64..).map(|(e, s)| (s, e)).collect();
    assert_eq!(
        rainlogs_db::apply_events(&pool, &AuditProjection, &run, 300)
            .await
            .expect("apply"),
        300
    );
    // The same run again (a restart that read it before its commit was known) adds nothing.
    assert_eq!(
        rainlogs_db::apply_events(&pool, &AuditProjection, &run, 300)
            .await
            .expect("replay"),
        0
    );
    let (rows, details): (i64, i64) =
        sqlx::query_as("SELECT count(*), sum(length(detail)) FROM audit_log")
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!((rows, details), (300, 300 * 1024));
    assert_eq!(offset(&pool, "audit").await, 300);
}

#[tokio::test]
async fn a_deletion_replayed_without_its_erased_registration_still_marks_the_tenant_deleted() {
    let (_nats, _db, _bus, pool) = setup().await;
    let deleted = Envelope::new(
        "acme",
        None,
        Actor::operator(),
        Event::TenantDeleted(rainlogs_schemas::events::TenantDeleted {
            reason: "GDPR Art. 17".into(),
        }),
    );
    apply_message(&pool, &ControlProjection, 1, &deleted)
        .await
        .expect("apply");
    let (name, email, deleted_at): (String, String, Option<time::OffsetDateTime>) =
        sqlx::query_as("SELECT name, email, deleted_at FROM tenants WHERE tenant_id = 'acme'")
            .fetch_one(&pool)
            .await
            .expect("a row for the erased tenant");
    assert_eq!((name.as_str(), email.as_str()), ("", ""));
    assert!(deleted_at.is_some());
}
