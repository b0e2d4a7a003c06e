//! The retention schedule is a projection like the others: an event PostgreSQL refuses is set
//! aside in `projection_poisoned`, and the archives sealed after it are still scheduled (a
//! schedule that stopped would keep every later archive past its retain-until).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use rainlogs_bus::CancellationToken;
use rainlogs_db::{Projection, applied_sequence, poisoned_events, wait_until_applied};
use rainlogs_integrity::{
    ArchiveRecord, Chain, CollectionMethod, Dataset, EntryBody, Name, ObjectRef, Origin, Sampling,
    Sha256Hash, Window,
};
use rainlogs_reaper::RetentionSchedule;
use rainlogs_schemas::events::EntrySealed;
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_testkit::{NatsServer, TestDatabase};

const TENANT: &str = "acme";
const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";

/// Two archive entries of one zone's chain; the first published under an envelope whose tenant
/// holds a NUL byte (the schedule stores the envelope's tenant, PostgreSQL refuses it).
fn events() -> Vec<Envelope> {
    let origin = Origin::new(&Name::new(TENANT).unwrap(), &Name::new(ZONE).unwrap());
    let mut chain = Chain::new(origin);
    (0..2u64)
        .map(|index| {
            let sealed = chain
                .seal(
                    EntryBody::Archive(ArchiveRecord {
                        dataset: Dataset::new("http_requests").unwrap(),
                        window: Window::new(index * 60_000_000_000, (index + 1) * 60_000_000_000)
                            .unwrap(),
                        method: CollectionMethod::Logpull,
                        sampling: Sampling::UNSAMPLED,
                        object: ObjectRef {
                            key: format!("{TENANT}/{ZONE}/http_requests/w{index}.ndjson.zst"),
                            version: String::new(),
                        },
                        stored_size: 10,
                        stored_sha256: Sha256Hash([1; 32]),
                        content_sha256: Sha256Hash([2; 32]),
                        record_count: 3,
                        retain_until_ns: 5,
                    }),
                    100 + index,
                )
                .unwrap();
            let tenant = if index == 0 { "ac\u{0}me" } else { TENANT };
            Envelope::new(
                tenant,
                Some(ZONE.into()),
                Actor::service("sealer"),
                Event::EntrySealed(EntrySealed {
                    index,
                    entry: sealed.bytes,
                    chain_hash: sealed.chain_hash.0.to_vec(),
                }),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_archive_entry_the_schedule_cannot_store_is_set_aside_and_later_ones_are_scheduled() {
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let bus = rainlogs_bus::connect(&nats.url).await.unwrap();
    rainlogs_bus::provision(&bus, 1).await.unwrap();
    let pool = rainlogs_db::connect(&db.url, 4).await.unwrap();
    rainlogs_db::migrate(&pool).await.unwrap();

    let mut sequences = Vec::new();
    for event in events() {
        sequences.push(
            bus.publish(&subjects::chain(ZONE), &event)
                .await
                .unwrap()
                .sequence,
        );
    }
    let (refused, last) = (sequences[0], sequences[1]);

    let shutdown = CancellationToken::new();
    let live = tokio::spawn(rainlogs_db::run_projection(
        pool.clone(),
        bus.clone(),
        RetentionSchedule,
        shutdown.clone(),
    ));
    let reached = wait_until_applied(
        &pool,
        RetentionSchedule::NAME,
        last,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    shutdown.cancel();
    live.await.unwrap().unwrap();
    assert!(reached, "the schedule never got past the refused entry");

    let scheduled: Vec<(String, i64)> =
        sqlx::query_as("SELECT tenant, entry_index FROM retention_archives ORDER BY entry_index")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(scheduled, [(TENANT.to_owned(), 1)]);
    assert_eq!(
        applied_sequence(&pool, RetentionSchedule::NAME)
            .await
            .unwrap(),
        last
    );

    let poisoned = poisoned_events(&pool).await.unwrap();
    assert_eq!(poisoned.len(), 1, "{poisoned:?}");
    let event = &poisoned[0];
    assert_eq!(
        (event.projection.as_str(), event.stream.as_str()),
        ("retention", "RL_CHAIN")
    );
    assert_eq!(event.stream_sequence, refused);
    assert_eq!(
        event.subject.as_deref(),
        Some(subjects::chain(ZONE).as_str())
    );
    assert_eq!(event.sqlstate.as_deref(), Some("22021"));
    assert!(event.error.contains("0x00"), "{event:?}");
}
