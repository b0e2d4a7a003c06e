//! The chain projection against real NATS and PostgreSQL: every sealed entry becomes one job
//! row, prunes mark their target, and a rebuild reproduces it.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use rainlogs_bus::CancellationToken;
use rainlogs_db::{PgPool, rebuild, run_projection, wait_until_applied};
use rainlogs_integrity::{
    ArchiveRecord, Chain, CollectionMethod, Dataset, EmptyRecord, EntryBody, GapReason, GapRecord,
    Name, ObjectRef, Origin, PruneRecord, Sampling, Sha256Hash, Window,
};
use rainlogs_query_api::ChainProjection;
use rainlogs_schemas::events::EntrySealed;
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_testkit::{NatsServer, TestDatabase};

const TENANT: &str = "acme";
const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";

fn entries() -> Vec<(Vec<u8>, Vec<u8>)> {
    let origin = Origin::new(&Name::new(TENANT).unwrap(), &Name::new(ZONE).unwrap());
    let dataset = Dataset::new("http_requests").unwrap();
    let window = |n: u64| Window::new(n * 60_000_000_000, (n + 1) * 60_000_000_000).unwrap();
    let object = ObjectRef {
        key: format!("{TENANT}/{ZONE}/http_requests/w0.ndjson.zst"),
        version: String::new(),
    };
    let mut chain = Chain::new(origin);
    let archive = chain
        .seal(
            EntryBody::Archive(ArchiveRecord {
                dataset: dataset.clone(),
                window: window(1),
                method: CollectionMethod::Logpull,
                sampling: Sampling::UNSAMPLED,
                object: object.clone(),
                stored_size: 10,
                stored_sha256: Sha256Hash([1; 32]),
                content_sha256: Sha256Hash([2; 32]),
                record_count: 3,
                retain_until_ns: 5,
            }),
            100,
        )
        .unwrap();
    let empty = chain
        .seal(
            EntryBody::Empty(EmptyRecord {
                dataset: dataset.clone(),
                window: window(2),
                method: CollectionMethod::Logpull,
                sampling: Sampling::UNSAMPLED,
            }),
            101,
        )
        .unwrap();
    let gap = chain
        .seal(
            EntryBody::Gap(GapRecord {
                dataset: dataset.clone(),
                window: window(3),
                method: CollectionMethod::Logpull,
                reason: GapReason::SourceError,
            }),
            102,
        )
        .unwrap();
    let prune = chain
        .seal(
            EntryBody::Prune(PruneRecord {
                dataset,
                object,
                target_index: 0,
                target_entry_id: archive.id,
                policy: Name::new("retention-395d").unwrap(),
                pruned_at_ns: 6,
            }),
            103,
        )
        .unwrap();
    [archive, empty, gap, prune]
        .into_iter()
        .map(|e| (e.bytes, e.chain_hash.0.to_vec()))
        .collect()
}

async fn rows(pool: &PgPool) -> Vec<String> {
    let found: Vec<(String,)> =
        sqlx::query_as("SELECT to_jsonb(j)::text FROM jobs j ORDER BY zone_id, leaf_index")
            .fetch_all(pool)
            .await
            .unwrap();
    found.into_iter().map(|(r,)| r).collect()
}

#[tokio::test]
async fn sealed_entries_become_jobs_and_rebuild_reproduces_them() {
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let bus = rainlogs_bus::connect(&nats.url).await.unwrap();
    rainlogs_bus::provision(&bus, 1).await.unwrap();
    let pool = rainlogs_db::connect(&db.url, 4).await.unwrap();
    rainlogs_db::migrate(&pool).await.unwrap();

    let mut last = 0;
    for (index, (bytes, chain_hash)) in entries().into_iter().enumerate() {
        let event = Event::EntrySealed(EntrySealed {
            index: index as u64,
            entry: bytes,
            chain_hash,
        });
        let envelope = Envelope::new(TENANT, Some(ZONE.into()), Actor::service("sealer"), event);
        last = bus
            .publish(&subjects::chain(ZONE), &envelope)
            .await
            .unwrap()
            .sequence;
    }
    let shutdown = CancellationToken::new();
    let live = tokio::spawn(run_projection(
        pool.clone(),
        bus.clone(),
        ChainProjection,
        shutdown.clone(),
    ));
    assert!(
        wait_until_applied(&pool, "chain", last, Duration::from_secs(20))
            .await
            .unwrap()
    );
    shutdown.cancel();
    live.await.unwrap().unwrap();

    let kinds: Vec<(String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT kind, leaf_index, record_count, pruned_by_index FROM jobs ORDER BY leaf_index",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        kinds,
        vec![
            ("archive".into(), 0, Some(3), Some(3)),
            ("empty".into(), 1, Some(0), None),
            ("gap".into(), 2, None, None),
            ("prune".into(), 3, None, None),
        ]
    );
    let (tenant, gap_reason): (String, Option<String>) =
        sqlx::query_as("SELECT tenant_id, gap_reason FROM jobs WHERE kind = 'gap'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(tenant, TENANT);
    assert_eq!(gap_reason.as_deref(), Some("source_error"));

    let before = rows(&pool).await;
    assert_eq!(rebuild(&pool, &bus, ChainProjection).await.unwrap(), 4);
    let after = rows(&pool).await;
    assert_eq!(after.len(), before.len());
    // stream_sequence is the same after a replay; every column must match.
    assert_eq!(after, before, "rebuilt jobs must equal the live ones");
}
