//! Retention end to end: archiver and sealer produce real archives and a signed log, the reaper
//! runs with a clock the test sets, and `rainlogs-verify` judges the bucket afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::time::Duration;

use rainlogs_archiver::{Archiver, ArchiverSettings};
use rainlogs_bus::{Bus, CancellationToken};
use rainlogs_integrity::{BucketPrefix, Entry, EntryBody, NoteSigningKey};
use rainlogs_reaper::LegalHoldsProjection;
use rainlogs_reaper::{Outlook, Reaper, RetentionSchedule, SweepReport};
use rainlogs_runtime::ObjectStore;
use rainlogs_schemas::events::{
    ArchivePruned, BatchCollected, LegalHoldReleased, LegalHoldSet, Method, Window, WindowClosed,
    WindowOutcome,
};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_sealer::{Sealer, SealerSettings};
use rainlogs_store::{Backend, FsStore, ObjectKey, Store};
use rainlogs_testkit::{NatsServer, TestDatabase};
use rainlogs_verify::{Reason, VerifyOptions};
use sqlx::PgPool;
use uuid::Uuid;

const TENANT: &str = "acme";
const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const DATASET: &str = "http_requests";
/// The test signing key of docs/FORMAT.md §8.3.
const TEST_KEY: &str =
    "PRIVATE+KEY+rainlogs.test/sealer+6e0f8e34+AawcVNj/nAGF+9XKIbP0CLBeT+kg1yx3SeIY2GzrZj+h";
const DAY: u64 = 86_400;
const SECOND_NS: u64 = 1_000_000_000;

fn key() -> NoteSigningKey {
    NoteSigningKey::parse(TEST_KEY).unwrap()
}

/// Minute `n` of 2026-01-15 14:00 UTC: long past, so a one-day retention has expired.
fn window(n: i64) -> Window {
    let start = 1_768_485_600 + n * 60;
    Window {
        start,
        end: start + 60,
    }
}

fn line(window: i64, n: u64) -> Vec<u8> {
    format!(
        "{{\"ClientIP\":\"192.0.2.{}\",\"EdgeStartTimestamp\":{},\"RayID\":\"{window:04x}{n:012x}\"}}\n",
        n % 250,
        1_768_485_600_000_000_000u64 + n * 1_000_003,
    )
    .into_bytes()
}

struct Harness {
    _nats: NatsServer,
    bus: Bus,
    db: PgPool,
    _database: TestDatabase,
    store: ObjectStore,
    _dirs: Vec<tempfile::TempDir>,
    shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Harness {
    async fn local() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Single(Backend::Fs(FsStore::open(dir.path()).await.unwrap()));
        Self::start(
            ObjectStore {
                store,
                prefix: BucketPrefix::default(),
            },
            vec![dir],
        )
        .await
    }

    async fn seaweedfs_with_object_lock() -> Self {
        let s3 = rainlogs_testkit::s3::dev_bucket("reap", true).await;
        Self::start(
            ObjectStore {
                store: Store::Single(Backend::S3(s3)),
                prefix: BucketPrefix::new("rl").expect("prefix"),
            },
            Vec::new(),
        )
        .await
    }

    async fn start(store: ObjectStore, dirs: Vec<tempfile::TempDir>) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let nats = NatsServer::start();
        let bus = rainlogs_bus::connect(&nats.url).await.unwrap();
        rainlogs_bus::provision(&bus, 1).await.unwrap();
        let database = TestDatabase::create().await;
        let db = rainlogs_db::connect(&database.url, 5).await.unwrap();
        rainlogs_db::migrate(&db).await.unwrap();
        Self {
            _nats: nats,
            bus,
            db,
            _database: database,
            store,
            _dirs: dirs,
            shutdown: CancellationToken::new(),
        }
    }

    /// Archiver (with `retention`), sealer and the reaper's two projections, as in production.
    async fn start_services(&mut self, retention: Duration) {
        let work = tempfile::tempdir().unwrap();
        let mut settings = ArchiverSettings::new(work.path().join("archiver"));
        settings.retention = retention;
        self._dirs.push(work);
        let archiver = Archiver::start(self.bus.clone(), self.store.clone(), settings)
            .await
            .unwrap();
        let sealer = Sealer::start(
            self.bus.clone(),
            self.store.clone(),
            key(),
            SealerSettings::default(),
        )
        .await
        .unwrap();
        let stop = self.shutdown.clone();
        tokio::spawn(async move { archiver.run(stop).await.unwrap() });
        let stop = self.shutdown.clone();
        tokio::spawn(async move { sealer.run(stop).await.unwrap() });
        for projection in [0, 1] {
            let (db, bus, stop) = (self.db.clone(), self.bus.clone(), self.shutdown.clone());
            tokio::spawn(async move {
                if projection == 0 {
                    rainlogs_db::run_projection(db, bus, RetentionSchedule, stop).await
                } else {
                    rainlogs_db::run_projection(db, bus, LegalHoldsProjection, stop).await
                }
                .unwrap();
            });
        }
    }

    fn reaper(&self) -> Reaper {
        Reaper {
            db: self.db.clone(),
            bus: self.bus.clone(),
            store: self.store.store.clone(),
            batch: 100,
            metrics: None,
        }
    }

    async fn publish(&self, subject: &str, zone: Option<&str>, event: Event) {
        let envelope = Envelope::new(
            TENANT,
            zone.map(str::to_owned),
            Actor::service("test"),
            event,
        );
        self.bus.publish(subject, &envelope).await.unwrap();
    }

    /// Window `n` with `records` lines, as the collector sends it.
    async fn archive_window(&self, n: i64, records: u64) {
        let attempt = Uuid::now_v7();
        let lines: Vec<u8> = (0..records).flat_map(|i| line(n, i)).collect();
        self.publish(
            &subjects::batch(ZONE),
            Some(ZONE),
            Event::BatchCollected(BatchCollected {
                dataset: DATASET.into(),
                window: window(n),
                attempt,
                seq: 0,
                records: u32::try_from(records).unwrap(),
                received_until: None,
                late: false,
                content_lz4: BatchCollected::compress(&lines),
            }),
        )
        .await;
        self.close(
            n,
            attempt,
            WindowOutcome::Complete {
                batches: 1,
                records,
                method: Method::Logpull,
                sample_interval: 1,
                fields: "ClientIP,EdgeStartTimestamp,RayID".into(),
            },
        )
        .await;
    }

    async fn close(&self, n: i64, attempt: Uuid, outcome: WindowOutcome) {
        self.publish(
            &subjects::batch(ZONE),
            Some(ZONE),
            Event::WindowClosed(WindowClosed {
                dataset: DATASET.into(),
                window: window(n),
                attempt,
                outcome,
                pushed_through: None,
                late: false,
            }),
        )
        .await;
    }

    /// (entry index, retain-until ns, object key, pruned, deleted) of every scheduled archive.
    async fn schedule(&self) -> Vec<(i64, i64, String, bool, bool)> {
        sqlx::query_as(
            "SELECT entry_index, retain_until_ns, object_key, pruned_at_ns IS NOT NULL, \
             deleted_at_ns IS NOT NULL FROM retention_archives ORDER BY entry_index",
        )
        .fetch_all(&self.db)
        .await
        .unwrap()
    }

    /// Every entry of the zone's log, decoded.
    async fn entries(&self) -> Vec<Entry> {
        let stream = self
            .bus
            .js
            .get_stream(rainlogs_bus::definitions::CHAIN)
            .await
            .unwrap();
        let mut out = Vec::new();
        let mut next = 1;
        while let Ok(message) = stream
            .direct_get_next_for_subject(subjects::chain(ZONE), Some(next))
            .await
        {
            next = message.sequence + 1;
            let envelope = Envelope::from_cbor(&message.payload).unwrap();
            let Event::EntrySealed(sealed) = envelope.event else {
                panic!("{} on the chain", envelope.event.type_name());
            };
            out.push(Entry::decode(&sealed.entry).unwrap());
        }
        out
    }

    async fn prune_count(&self) -> usize {
        self.entries()
            .await
            .iter()
            .filter(|e| matches!(e.body, EntryBody::Prune(_)))
            .count()
    }

    async fn exists(&self, key: &str) -> bool {
        self.store
            .store
            .head(&ObjectKey::new(key).unwrap())
            .await
            .unwrap()
            .is_some()
    }

    async fn verify(&self) -> rainlogs_verify::Report {
        let mut options = VerifyOptions::new(TENANT, ZONE, vec![key().verifier_key()]).unwrap();
        options.prefix = self.store.prefix.clone();
        rainlogs_verify::verify(&self.store.store, &options).await
    }

    /// Waits until the log's checkpoint in the bucket covers `size` entries.
    async fn wait_checkpointed(&self, size: u64) {
        let origin = rainlogs_integrity::Origin::new(
            &rainlogs_integrity::Name::new(TENANT).unwrap(),
            &rainlogs_integrity::Name::new(ZONE).unwrap(),
        );
        let prefix = self.store.prefix.clone();
        let checkpoint = ObjectKey::new(prefix.checkpoint_key(&origin)).unwrap();
        wait_for(&format!("a checkpoint of {size} entries"), || async {
            match self.store.store.get_bytes(&checkpoint).await {
                Ok(note) => {
                    rainlogs_integrity::open_checkpoint(&note, &origin, &[key().verifier_key()])
                        .is_ok_and(|c| c.checkpoint.size == size)
                }
                Err(_) => false,
            }
        })
        .await;
    }
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ns(value: i64) -> u64 {
    u64::try_from(value).unwrap()
}

/// Two archives and an empty window, sealed and scheduled, with a one-day retention.
async fn two_archives(h: &mut Harness) -> Vec<(i64, i64, String, bool, bool)> {
    h.start_services(Duration::from_secs(DAY)).await;
    h.archive_window(0, 40).await;
    h.archive_window(1, 25).await;
    h.close(
        2,
        Uuid::now_v7(),
        WindowOutcome::Empty {
            method: Method::Logpull,
        },
    )
    .await;
    wait_for("two scheduled archives", || async {
        h.schedule().await.len() == 2
    })
    .await;
    let schedule = h.schedule().await;
    // Entries 0 and 2 are the archives of windows 0 and 1 (each followed by its index entry).
    for (n, (index, retain_until, key, pruned, deleted)) in schedule.iter().enumerate() {
        assert_eq!(*index, 2 * n as i64);
        let window_end = window(n as i64).end;
        assert_eq!(
            ns(*retain_until),
            (ns(window_end) + DAY) * SECOND_NS,
            "retain-until is window end + retention"
        );
        assert!(!pruned && !deleted);
        assert!(h.exists(key).await);
    }
    schedule
}

/// Runs passes at `now` until `done` holds (the prune entry goes through the sealer and the
/// projection between the two steps).
async fn sweep_until<F, Fut>(h: &Harness, now_ns: u64, what: &str, mut done: F) -> SweepReport
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let reaper = h.reaper();
    let mut total = SweepReport::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let report = reaper.sweep(now_ns).await.unwrap();
        total.prunes_requested += report.prunes_requested;
        total.deleted += report.deleted;
        total.deleted_bytes += report.deleted_bytes;
        total.held = report.held;
        total.refused.extend(report.refused);
        total.failed += report.failed;
        if done().await {
            return total;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn nothing_goes_a_second_early_everything_due_goes_after_and_verify_passes() {
    let mut h = Harness::local().await;
    let schedule = two_archives(&mut h).await;
    let (first_until, first_key) = (ns(schedule[0].1), schedule[0].2.clone());
    let (second_until, second_key) = (ns(schedule[1].1), schedule[1].2.clone());
    h.wait_checkpointed(5).await;
    assert_eq!(
        h.verify().await.exit_code(),
        0,
        "{}",
        h.verify().await.to_human()
    );

    let reaper = h.reaper();
    assert_eq!(
        reaper.outlook(first_until - SECOND_NS).await.unwrap(),
        Outlook {
            next_expiry_ns: Some(first_until),
            holds: 0
        }
    );
    let early = reaper.sweep(first_until - SECOND_NS).await.unwrap();
    assert_eq!(
        early,
        SweepReport::default(),
        "nothing is due a second early"
    );
    assert!(
        reaper
            .plan(first_until - SECOND_NS)
            .await
            .unwrap()
            .is_empty()
    );

    // At the first retain-until exactly: only the first archive goes.
    let plan = reaper.plan(first_until).await.unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].object_key, first_key);
    let report = sweep_until(&h, first_until, "first archive deleted", || async {
        !h.exists(&first_key).await
    })
    .await;
    assert_eq!((report.deleted, report.refused.len()), (1, 0));
    let index_of = |key: &str| rainlogs_integrity::layout::index_key(key).unwrap();
    assert!(
        !h.exists(&index_of(&first_key)).await,
        "its index goes with it"
    );
    assert!(h.exists(&second_key).await, "the second is not due yet");
    assert!(h.exists(&index_of(&second_key)).await);
    assert_eq!(
        reaper.outlook(first_until).await.unwrap().next_expiry_ns,
        Some(second_until)
    );

    sweep_until(&h, second_until, "second archive deleted", || async {
        !h.exists(&second_key).await
    })
    .await;
    assert_eq!(h.prune_count().await, 2, "one prune entry per archive");
    assert!(
        h.schedule().await.iter().all(|row| row.3 && row.4),
        "both rows are pruned and deleted"
    );

    h.wait_checkpointed(7).await;
    let report = h.verify().await;
    assert_eq!(report.exit_code(), 0, "{}", report.to_human());
    assert!(report.has(Reason::ArchivePruned), "{}", report.to_human());
    assert!(!h.exists(&index_of(&second_key)).await);

    assert_eq!(
        reaper.outlook(second_until).await.unwrap(),
        Outlook::default(),
        "nothing left to expire"
    );
    // Later passes find nothing left to do.
    assert_eq!(
        reaper.sweep(second_until + DAY * SECOND_NS).await.unwrap(),
        SweepReport::default()
    );
}

#[tokio::test]
async fn a_legal_hold_keeps_archives_until_it_is_released() {
    let mut h = Harness::local().await;
    let schedule = two_archives(&mut h).await;
    let later = ns(schedule[1].1) + SECOND_NS;
    h.publish(
        &subjects::control(TENANT),
        None,
        Event::LegalHoldSet(LegalHoldSet {
            hold_id: "case-17".into(),
            zone_id: None,
            reason: "BSI incident 2026-0042".into(),
        }),
    )
    .await;
    let reaper = h.reaper();
    // Only look, never sweep, until the hold is projected: a sweep before it would prune.
    wait_for("the hold to apply", || async {
        reaper.outlook(later).await.unwrap().holds == 1
    })
    .await;
    assert_eq!(reaper.sweep(later).await.unwrap().held, 2);
    let plan = reaper.plan(later).await.unwrap();
    assert!(plan.iter().all(|c| c.decision
        == rainlogs_reaper::Decision::Held {
            hold_id: "case-17".into()
        }));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(h.prune_count().await, 0, "a hold stops the prune entry");
    for row in h.schedule().await {
        assert!(h.exists(&row.2).await, "a hold stops the delete");
    }

    h.publish(
        &subjects::control(TENANT),
        None,
        Event::LegalHoldReleased(LegalHoldReleased {
            hold_id: "case-17".into(),
        }),
    )
    .await;
    sweep_until(&h, later, "both archives deleted after release", || async {
        h.schedule().await.iter().all(|row| row.4)
    })
    .await;
    h.wait_checkpointed(7).await;
    let report = h.verify().await;
    assert_eq!(report.exit_code(), 0, "{}", report.to_human());
}

#[tokio::test]
async fn repeated_and_interrupted_prunes_log_once_and_an_unlogged_delete_is_caught() {
    let mut h = Harness::local().await;
    let schedule = two_archives(&mut h).await;
    let (first_until, first_key) = (ns(schedule[0].1), schedule[0].2.clone());

    // A pass that stops right after asking for the prune entry (as a crash would)...
    let report = h.reaper().sweep(first_until).await.unwrap();
    assert_eq!(report.prunes_requested, 1);
    wait_for("the prune entry", || async { h.prune_count().await == 1 }).await;
    assert!(h.exists(&first_key).await, "not deleted yet");
    // ...a retry of the same request long after JetStream's duplicate window (new event id)...
    let target = h.entries().await.remove(0);
    let mut retry = Envelope::new(
        TENANT,
        Some(ZONE.into()),
        Actor::service("reaper"),
        Event::ArchivePruned(ArchivePruned {
            target_index: 0,
            target_entry: target.encode().unwrap(),
            policy: "retention-1d".into(),
            pruned_at_ns: i64::try_from(first_until).unwrap(),
        }),
    );
    retry.id = Uuid::now_v7();
    h.bus
        .publish(&subjects::archive(ZONE), &retry)
        .await
        .unwrap();
    // ...and a fresh reaper process finishes the job.
    sweep_until(&h, first_until, "first archive deleted", || async {
        !h.exists(&first_key).await
    })
    .await;
    h.wait_checkpointed(6).await;
    assert_eq!(h.prune_count().await, 1, "the prune is logged once");
    let report = h.verify().await;
    assert_eq!(report.exit_code(), 0, "{}", report.to_human());

    // Deleting the second archive behind the reaper's back is tamper evidence.
    let second_key = ObjectKey::new(&schedule[1].2).unwrap();
    h.store.store.delete(&second_key).await.unwrap();
    let report = h.verify().await;
    assert_eq!(report.exit_code(), 1, "{}", report.to_human());
    assert!(report.has(Reason::ArchiveMissing), "{}", report.to_human());
}

#[tokio::test]
async fn the_sealer_refuses_to_log_a_prune_before_retain_until() {
    let mut h = Harness::local().await;
    h.start_services(Duration::from_secs(3650 * DAY)).await;
    h.archive_window(0, 10).await;
    wait_for("one scheduled archive", || async {
        h.schedule().await.len() == 1
    })
    .await;
    let retain_until = ns(h.schedule().await[0].1);
    // A reaper whose clock runs ten years fast asks for the prune...
    let report = h.reaper().sweep(retain_until).await.unwrap();
    assert_eq!(report.prunes_requested, 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // ...the sealer's own clock says no, so nothing is logged and nothing is deleted.
    assert_eq!(h.prune_count().await, 0);
    let report = h.reaper().sweep(retain_until).await.unwrap();
    assert_eq!(report.deleted, 0);
    assert!(h.exists(&h.schedule().await[0].2).await);
}

#[tokio::test]
async fn object_lock_refuses_an_early_delete_and_the_reaper_reports_it() {
    let mut h = Harness::seaweedfs_with_object_lock().await;
    // The archiver's default retention: retain-until is about 13 months ahead.
    h.start_services(rainlogs_archiver::DEFAULT_RETENTION).await;
    h.archive_window(0, 10).await;
    wait_for("one scheduled archive", || async {
        h.schedule().await.len() == 1
    })
    .await;
    let (_, retain_until, key, _, _) = h.schedule().await.remove(0);
    // A row wrongly marked as pruned (a bug, a restored database): the reaper tries to delete.
    sqlx::query("UPDATE retention_archives SET pruned_at_ns = $1")
        .bind(retain_until)
        .execute(&h.db)
        .await
        .unwrap();
    let reaper = h.reaper();
    let report = reaper.sweep(ns(retain_until)).await.unwrap();
    assert_eq!(report.deleted, 0);
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert!(
        report.refused[0].contains("object lock"),
        "{}",
        report.refused[0]
    );
    assert!(h.exists(&key).await, "Object Lock kept the archive");
    // Refused once, reported, and not retried in a loop.
    assert_eq!(
        reaper.sweep(ns(retain_until)).await.unwrap(),
        SweepReport::default()
    );
}

/// GDPR erasure of a tenant (Art. 17) removes nothing a retention duty holds early, and lets
/// nothing outlive it: its archives go at their retain-until like any other, and the log still
/// verifies.
#[tokio::test]
async fn an_erased_tenants_archives_go_at_retain_until_not_before() {
    let mut h = Harness::local().await;
    let schedule = two_archives(&mut h).await;
    let last_until = ns(schedule[1].1);
    h.publish(
        &subjects::control(TENANT),
        None,
        Event::TenantDeleted(rainlogs_schemas::events::TenantDeleted {
            reason: "GDPR Art. 17 request".into(),
        }),
    )
    .await;
    // As the API does after the deletion: the zone's log records the erasure.
    h.publish(
        &subjects::archive(ZONE),
        Some(ZONE),
        Event::ErasureRequested(rainlogs_schemas::events::ErasureRequested {
            reason: "GDPR Art. 17 request".into(),
        }),
    )
    .await;
    let reaper = h.reaper();
    assert_eq!(
        reaper.sweep(ns(schedule[0].1) - SECOND_NS).await.unwrap(),
        SweepReport::default(),
        "the duty holds until retain-until"
    );
    sweep_until(&h, last_until, "both archives deleted", || async {
        h.schedule().await.iter().all(|row| row.4)
    })
    .await;
    for row in h.schedule().await {
        assert!(!h.exists(&row.2).await, "{} outlived its duty", row.2);
    }
    h.wait_checkpointed(8).await;
    let report = h.verify().await;
    assert_eq!(report.exit_code(), 0, "{}", report.to_human());
    assert!(report.has(rainlogs_verify::Reason::TenantErased));
    // Long after, the stopped log is not mistaken for a truncated one.
    let mut later = VerifyOptions::new(TENANT, ZONE, vec![key().verifier_key()]).unwrap();
    later.prefix = h.store.prefix.clone();
    later.max_staleness = Some(Duration::from_secs(3600));
    later.now = time::OffsetDateTime::now_utc() + time::Duration::days(90);
    let report = rainlogs_verify::verify(&h.store.store, &later).await;
    assert_eq!(report.exit_code(), 0, "{}", report.to_human());
    assert!(report.has(rainlogs_verify::Reason::ErasedNotStale));
}
