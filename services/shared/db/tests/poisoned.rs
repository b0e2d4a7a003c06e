//! Events a projection can never apply, against real NATS and PostgreSQL: each is set aside in
//! `projection_poisoned` with its sequence and the reason, the events after it are applied, and
//! the offset moves past it. A failure that will pass skips nothing. `--retry` applies an event
//! once its cause is gone.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use rainlogs_bus::{Bus, CancellationToken, connect, provision};
use rainlogs_db::{
    PgPool, Projection, Retried, applied_sequence, poisoned_counts, poisoned_events,
    reapply_poisoned, rebuild, retry_poisoned, run_projection, wait_until_applied,
};
use rainlogs_integrity::{
    ArchiveRecord, Chain, CollectionMethod, Dataset, EmptyRecord, EntryBody, GapReason, GapRecord,
    Name, ObjectRef, Origin, Sampling, Sha256Hash, Window,
};
// The runtime driven by the query-api's projections; its list of legal holds can refuse what
// a hold's reason holds.
use rainlogs_query_api::{
    AuditProjection, ChainProjection, ControlProjection, LegalHoldListProjection,
};
use rainlogs_schemas::events::*;
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_testkit::{NatsServer, TestDatabase};

async fn setup() -> (NatsServer, TestDatabase, Bus, PgPool) {
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let bus = connect(&nats.url).await.unwrap();
    provision(&bus, 1).await.unwrap();
    let pool = rainlogs_db::connect(&db.url, 4).await.unwrap();
    rainlogs_db::migrate(&pool).await.unwrap();
    (nats, db, bus, pool)
}

async fn publish(bus: &Bus, subject: &str, event: &Envelope) -> u64 {
    bus.publish(subject, event).await.unwrap().sequence
}

/// Bytes that are no CBOR envelope at all, as any client allowed to publish could send.
async fn publish_raw(bus: &Bus, subject: &str, bytes: &'static [u8]) -> u64 {
    bus.js
        .publish(subject.to_owned(), bytes.into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

/// Runs the live projector until it has applied `through`, then stops it.
async fn project_until<P: Projection>(pool: &PgPool, bus: &Bus, projection: P, through: u64) {
    let shutdown = CancellationToken::new();
    let live = tokio::spawn(run_projection(
        pool.clone(),
        bus.clone(),
        projection,
        shutdown.clone(),
    ));
    let reached = wait_until_applied(pool, P::NAME, through, Duration::from_secs(30))
        .await
        .unwrap();
    shutdown.cancel();
    live.await.unwrap().unwrap();
    assert!(reached, "{} never got past sequence {through}", P::NAME);
}

/// (sequence, subject, sqlstate, error) of a projection's set-aside events.
async fn poisoned(
    pool: &PgPool,
    projection: &str,
) -> Vec<(u64, Option<String>, Option<String>, String)> {
    poisoned_events(pool)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.projection == projection)
        .map(|p| (p.stream_sequence, p.subject, p.sqlstate, p.error))
        .collect()
}

async fn strings(pool: &PgPool, sql: &'static str) -> Vec<String> {
    sqlx::query_as::<_, (String,)>(sql)
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(s,)| s)
        .collect()
}

fn audit(tenant: &str, target: &str) -> Envelope {
    Envelope::new(
        tenant,
        None,
        Actor::api_key("k1"),
        Event::AuditRecorded(AuditRecorded {
            action: "archive.download".into(),
            target: target.into(),
            outcome: "ok".into(),
            client_ip: Some("192.0.2.1".into()),
            request_id: None,
            detail: None,
        }),
    )
}

/// What the issue saw: a hostile request's text, with a NUL byte, in an audit record.
fn hostile_audit(tenant: &str) -> Envelope {
    let mut event = audit(tenant, "zone/evil");
    if let Event::AuditRecorded(record) = &mut event.event {
        record.detail = Some("name=\u{0}'; DROP TABLE audit_log; --".into());
    }
    event
}

fn assert_refused_for_nul(found: &(u64, Option<String>, Option<String>, String), sequence: u64) {
    assert_eq!(found.0, sequence, "{found:?}");
    assert_eq!(found.2.as_deref(), Some("22021"), "{found:?}");
    assert!(found.3.starts_with("22021: "), "{found:?}");
    assert!(
        found.3.contains("0x00"),
        "the reason names the NUL byte: {found:?}"
    );
    assert!(
        !found.3.contains("DROP TABLE"),
        "no payload in the reason: {found:?}"
    );
}

#[tokio::test]
async fn audit_records_after_a_nul_byte_and_undecodable_bytes_are_applied_and_both_are_set_aside() {
    let telemetry =
        rainlogs_telemetry::init(&rainlogs_config::TelemetrySettings::default()).unwrap();
    let (_nats, _db, bus, pool) = setup().await;
    let subject = subjects::audit("acme");
    let mut good = Vec::new();
    for n in 1..=3 {
        good.push(publish(&bus, &subject, &audit("acme", &format!("job/{n}"))).await);
    }
    let hostile = publish(&bus, &subject, &hostile_audit("acme")).await;
    let garbage = publish_raw(&bus, &subject, b"\xff\x00 not an envelope").await;
    for n in 4..=6 {
        good.push(publish(&bus, &subject, &audit("globex", &format!("job/{n}"))).await);
    }
    let last = *good.last().unwrap();

    project_until(&pool, &bus, AuditProjection, last).await;

    let (offset, sequences) = (
        applied_sequence(&pool, "audit").await.unwrap(),
        strings(
            &pool,
            "SELECT stream_sequence::text FROM audit_log ORDER BY stream_sequence",
        )
        .await,
    );
    assert_eq!(offset, last);
    let expected: Vec<String> = good.iter().map(u64::to_string).collect();
    assert_eq!(sequences, expected, "every good record, and only those");

    let found = poisoned(&pool, "audit").await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert_refused_for_nul(&found[0], hostile);
    assert_eq!(found[0].1.as_deref(), Some(subject.as_str()));
    assert_eq!(found[1].0, garbage);
    assert_eq!(found[1].1.as_deref(), Some(subject.as_str()));
    assert_eq!(found[1].2, None);
    assert!(found[1].3.starts_with("does not decode: "), "{found:?}");
    let all = poisoned_events(&pool).await.unwrap();
    assert!(all.iter().all(|p| p.stream == "RL_AUDIT"), "{all:?}");
    assert_eq!(
        poisoned_counts(&pool).await.unwrap(),
        [("audit".to_owned(), 2)].into()
    );

    let metrics = telemetry.render();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("rainlogs_projection_poisoned_total{"))
        .unwrap_or_else(|| panic!("no poisoned counter in:\n{metrics}"));
    assert!(line.contains("projection=\"audit\""), "{line}");
    assert!(line.ends_with(" 2"), "{line}");

    // A rebuild empties the projection's rows with its tables and finds the same two again.
    assert_eq!(rebuild(&pool, &bus, AuditProjection).await.unwrap(), 6);
    let again = poisoned(&pool, "audit").await;
    assert_eq!(
        again.iter().map(|p| p.0).collect::<Vec<_>>(),
        [hostile, garbage]
    );
    assert_eq!(applied_sequence(&pool, "audit").await.unwrap(), last);
}

#[tokio::test]
async fn control_and_legal_holds_each_set_aside_only_what_they_cannot_apply() {
    let (_nats, _db, bus, pool) = setup().await;
    let zone = "023e105f4ecef8ad9ca31a8372d0c353";
    let ev = |tenant: &str, event| Envelope::new(tenant, None, Actor::operator(), event);
    // The control projection writes a registration's name; the legal-holds one ignores it.
    let bad_tenant = publish(
        &bus,
        &subjects::control("evil"),
        &ev(
            "evil",
            Event::TenantCreated(TenantCreated {
                name: "Evil\u{0} GmbH".into(),
                email: "sec@evil.example".into(),
                retention_days: 395,
            }),
        ),
    )
    .await;
    // And the other way round for a hold's reason.
    let bad_hold = publish(
        &bus,
        &subjects::control("acme"),
        &ev(
            "acme",
            Event::LegalHoldSet(LegalHoldSet {
                hold_id: "hold-bad".into(),
                zone_id: None,
                reason: "case\u{0}42".into(),
            }),
        ),
    )
    .await;
    let mut last = 0;
    for event in [
        Event::TenantCreated(TenantCreated {
            name: "Acme GmbH".into(),
            email: "sec@acme.example".into(),
            retention_days: 395,
        }),
        Event::ZoneAdded(ZoneAdded {
            zone_id: zone.into(),
            name: "acme.example".into(),
            plan: "enterprise".into(),
            method: Method::Logpull,
            fields: "default".into(),
            sealed_token: vec![1, 2, 3],
            token_key_id: "k1".into(),
        }),
        Event::LegalHoldSet(LegalHoldSet {
            hold_id: "hold-good".into(),
            zone_id: Some(zone.into()),
            reason: "case 43".into(),
        }),
        Event::ZoneChanged(ZoneChanged {
            zone_id: zone.into(),
            paused: Some(true),
            ..Default::default()
        }),
    ] {
        last = publish(&bus, &subjects::control("acme"), &ev("acme", event)).await;
    }

    project_until(&pool, &bus, ControlProjection, last).await;
    project_until(&pool, &bus, LegalHoldListProjection, last).await;

    assert_eq!(
        strings(&pool, "SELECT tenant_id FROM tenants ORDER BY tenant_id").await,
        ["acme"]
    );
    assert_eq!(
        strings(&pool, "SELECT paused::text FROM zones").await,
        ["true"],
        "the zone's change after the refused registration was applied"
    );
    assert_eq!(
        strings(&pool, "SELECT hold_id FROM api_legal_holds").await,
        ["hold-good"]
    );

    let control = poisoned(&pool, "control").await;
    assert_eq!(control.len(), 1, "{control:?}");
    assert_refused_for_nul(&control[0], bad_tenant);
    assert_eq!(control[0].1.as_deref(), Some("rl.ctl.evil"));
    let holds = poisoned(&pool, "api-legal-holds").await;
    assert_eq!(holds.len(), 1, "{holds:?}");
    assert_refused_for_nul(&holds[0], bad_hold);
    assert!(
        poisoned_events(&pool)
            .await
            .unwrap()
            .iter()
            .all(|p| p.stream == "RL_CONTROL")
    );
    assert_eq!(applied_sequence(&pool, "control").await.unwrap(), last);
    assert_eq!(
        applied_sequence(&pool, "api-legal-holds").await.unwrap(),
        last
    );
}

const TENANT: &str = "acme";
const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";

/// An archive, an empty and a gap entry of one zone's chain, as the sealer publishes them.
fn chain_events() -> Vec<Envelope> {
    let origin = Origin::new(&Name::new(TENANT).unwrap(), &Name::new(ZONE).unwrap());
    let dataset = Dataset::new("http_requests").unwrap();
    let window = |n: u64| Window::new(n * 60_000_000_000, (n + 1) * 60_000_000_000).unwrap();
    let mut chain = Chain::new(origin);
    let bodies = [
        EntryBody::Archive(ArchiveRecord {
            dataset: dataset.clone(),
            window: window(1),
            method: CollectionMethod::Logpull,
            sampling: Sampling::UNSAMPLED,
            object: ObjectRef {
                key: format!("{TENANT}/{ZONE}/http_requests/w1.ndjson.zst"),
                version: String::new(),
            },
            stored_size: 10,
            stored_sha256: Sha256Hash([1; 32]),
            content_sha256: Sha256Hash([2; 32]),
            record_count: 3,
            retain_until_ns: 5,
        }),
        EntryBody::Empty(EmptyRecord {
            dataset: dataset.clone(),
            window: window(2),
            method: CollectionMethod::Logpull,
            sampling: Sampling::UNSAMPLED,
        }),
        EntryBody::Gap(GapRecord {
            dataset,
            window: window(3),
            method: CollectionMethod::Logpull,
            reason: GapReason::SourceError,
        }),
    ];
    bodies
        .into_iter()
        .zip(100..)
        .enumerate()
        .map(|(index, (body, at))| {
            let sealed = chain.seal(body, at).unwrap();
            Envelope::new(
                TENANT,
                Some(ZONE.into()),
                Actor::service("sealer"),
                Event::EntrySealed(EntrySealed {
                    index: index as u64,
                    entry: sealed.bytes,
                    chain_hash: sealed.chain_hash.0.to_vec(),
                }),
            )
        })
        .collect()
}

async fn kinds(pool: &PgPool) -> Vec<String> {
    strings(pool, "SELECT kind FROM jobs ORDER BY leaf_index").await
}

/// A sealed entry's text fields are validated names, so no NUL byte reaches the jobs table; a
/// CHECK constraint the entry breaks stands in for "PostgreSQL refuses this event" (23514), and
/// dropping it is the fix after which `rainlogs projections poisoned --retry` applies it.
#[tokio::test]
async fn a_refused_chain_entry_is_set_aside_then_applied_by_retry_once_its_cause_is_gone() {
    let (_nats, _db, bus, pool) = setup().await;
    sqlx::query("ALTER TABLE jobs ADD CONSTRAINT jobs_refuse_empty CHECK (kind <> 'empty')")
        .execute(&pool)
        .await
        .unwrap();
    let mut sequences = Vec::new();
    for event in chain_events() {
        sequences.push(publish(&bus, &subjects::chain(ZONE), &event).await);
    }
    let last = sequences[2];

    project_until(&pool, &bus, ChainProjection, last).await;
    assert_eq!(kinds(&pool).await, ["archive", "gap"]);
    let found = poisoned(&pool, "chain").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, sequences[1]);
    assert_eq!(found[0].1.as_deref(), Some(subjects::chain(ZONE).as_str()));
    assert_eq!(found[0].2.as_deref(), Some("23514"));
    assert!(found[0].3.contains("jobs_refuse_empty"), "{found:?}");

    // Cause still there: nothing changes but the reason.
    let outcomes = retry_poisoned(&pool, &bus, &ChainProjection).await.unwrap();
    assert!(
        matches!(outcomes.as_slice(), [(s, Retried::StillFails(why))] if *s == sequences[1] && why.contains("jobs_refuse_empty")),
        "{outcomes:?}"
    );
    assert_eq!(poisoned(&pool, "chain").await.len(), 1);
    assert_eq!(kinds(&pool).await, ["archive", "gap"]);

    // Cause gone: applied, its row removed, the offset where it was.
    sqlx::query("ALTER TABLE jobs DROP CONSTRAINT jobs_refuse_empty")
        .execute(&pool)
        .await
        .unwrap();
    let outcomes = retry_poisoned(&pool, &bus, &ChainProjection).await.unwrap();
    assert_eq!(outcomes, [(sequences[1], Retried::Applied)]);
    assert_eq!(kinds(&pool).await, ["archive", "empty", "gap"]);
    assert!(poisoned(&pool, "chain").await.is_empty());
    assert!(poisoned_counts(&pool).await.unwrap().is_empty());
    assert_eq!(applied_sequence(&pool, "chain").await.unwrap(), last);
    // Nothing left to retry, and a sequence that was never set aside is left alone.
    assert!(
        retry_poisoned(&pool, &bus, &ChainProjection)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        reapply_poisoned(&pool, &ChainProjection, sequences[0], &chain_events()[0])
            .await
            .unwrap(),
        Retried::NotPoisoned
    );
}

#[tokio::test]
async fn retry_reports_what_can_still_never_apply_and_keeps_it() {
    let (_nats, _db, bus, pool) = setup().await;
    let subject = subjects::audit("acme");
    let hostile = publish(&bus, &subject, &hostile_audit("acme")).await;
    let garbage = publish_raw(&bus, &subject, b"not cbor").await;
    let last = publish(&bus, &subject, &audit("acme", "job/1")).await;
    project_until(&pool, &bus, AuditProjection, last).await;

    let outcomes = retry_poisoned(&pool, &bus, &AuditProjection).await.unwrap();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert!(
        matches!(&outcomes[0], (s, Retried::StillFails(why)) if *s == hostile && why.starts_with("22021: ")),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[1], (s, Retried::StillFails(why)) if *s == garbage && why.starts_with("does not decode: ")),
        "{outcomes:?}"
    );
    assert_eq!(
        poisoned(&pool, "audit")
            .await
            .iter()
            .map(|p| p.0)
            .collect::<Vec<_>>(),
        [hostile, garbage]
    );
    assert_eq!(
        strings(&pool, "SELECT target FROM audit_log").await,
        ["job/1"]
    );
}

/// The audit table renamed away is what a missing migration looks like (42P01): the projector
/// must wait for it, not set the waiting events aside. Once it is back, everything applies, and
/// the one event that can never apply is still told apart.
#[tokio::test]
async fn a_failure_that_passes_is_retried_and_skips_nothing() {
    let (_nats, _db, bus, pool) = setup().await;
    sqlx::query("ALTER TABLE audit_log RENAME TO audit_log_away")
        .execute(&pool)
        .await
        .unwrap();
    let subject = subjects::audit("acme");
    let first = publish(&bus, &subject, &audit("acme", "job/1")).await;
    let hostile = publish(&bus, &subject, &hostile_audit("acme")).await;
    let last = publish(&bus, &subject, &audit("acme", "job/2")).await;

    let shutdown = CancellationToken::new();
    let live = tokio::spawn(run_projection(
        pool.clone(),
        bus.clone(),
        AuditProjection,
        shutdown.clone(),
    ));
    // Long enough for a first attempt and a retry (one second apart).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(applied_sequence(&pool, "audit").await.unwrap(), 0);
    assert!(poisoned_events(&pool).await.unwrap().is_empty());

    sqlx::query("ALTER TABLE audit_log_away RENAME TO audit_log")
        .execute(&pool)
        .await
        .unwrap();
    let reached = wait_until_applied(&pool, "audit", last, Duration::from_secs(30))
        .await
        .unwrap();
    shutdown.cancel();
    live.await.unwrap().unwrap();
    assert!(reached);

    assert_eq!(
        strings(
            &pool,
            "SELECT stream_sequence::text FROM audit_log ORDER BY stream_sequence"
        )
        .await,
        [first.to_string(), last.to_string()]
    );
    let found = poisoned(&pool, "audit").await;
    assert_eq!(found.len(), 1, "only the NUL event: {found:?}");
    assert_refused_for_nul(&found[0], hostile);
}
