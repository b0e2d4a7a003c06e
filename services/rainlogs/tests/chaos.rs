//! Chaos: the real `rainlogs` binary running the archiver and the sealer is SIGKILLed at random
//! moments while windows arrive, then restarted. Afterwards every window has exactly one entry,
//! every archive holds exactly its window's records, no archive is stored twice, and
//! `rainlogs-verify` passes.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rainlogs_bus::{Bus, connect, provision};
use rainlogs_integrity::{EntryBody, Sha256Hash};
use rainlogs_schemas::events::{
    BatchCollected, GapReason, Method, Window, WindowClosed, WindowOutcome,
};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_store::ObjectKey;
use rainlogs_testkit::{NatsServer, TestDatabase};
use uuid::Uuid;

mod common;
use common::{Bucket, Process, chain_entries, print_logs, spawn_services};

const TENANT: &str = "acme";
const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const DATASET: &str = "http_requests";
const WINDOWS: i64 = 14;

fn window(n: i64) -> Window {
    let start = 1_768_485_600 + n * 60;
    Window {
        start,
        end: start + 60,
    }
}

/// What window `n` is: every fifth is empty, every seventh a gap, the rest have 3 batches.
fn outcome_of(n: i64) -> &'static str {
    if n % 5 == 4 {
        "empty"
    } else if n % 7 == 6 {
        "gap"
    } else {
        "archive"
    }
}

fn batch_lines(n: i64, seq: u32) -> Vec<u8> {
    (0..150u64)
        .flat_map(|i| {
            format!(
                "{{\"ClientIP\":\"198.51.100.{}\",\"EdgeStartTimestamp\":{},\"RayID\":\"{n:04x}{seq:02x}{i:010x}\"}}\n",
                i % 250,
                1_768_485_600_000_000_000u64 + i * 7_919,
            )
            .into_bytes()
        })
        .collect()
}

/// A small deterministic generator, seeded from the clock and printed, so a failure can be rerun.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// Starts the binary with the archiver and the sealer.
fn spawn(nats: &str, db: &str, data: &Path, run: u32) -> Process {
    spawn_services(nats, db, data, run, &["archiver", "sealer"], &[])
}

async fn publish(bus: &Bus, event: Event) {
    let envelope = Envelope::new(
        TENANT,
        Some(ZONE.into()),
        Actor::service("collector"),
        event,
    );
    bus.publish(&subjects::batch(ZONE), &envelope)
        .await
        .expect("publish");
}

/// Publishes window `n` as the collector would; returns the content an archive must hold.
async fn send_window(bus: &Bus, n: i64) -> Option<Vec<u8>> {
    let attempt = Uuid::now_v7();
    let outcome = match outcome_of(n) {
        "empty" => WindowOutcome::Empty {
            method: Method::Logpull,
        },
        "gap" => WindowOutcome::Gap {
            reason: GapReason::RetentionExpired,
            detail: "older than 7 days".into(),
        },
        _ => {
            let mut content = Vec::new();
            for seq in 0..3 {
                let lines = batch_lines(n, seq);
                content.extend_from_slice(&lines);
                publish(
                    bus,
                    Event::BatchCollected(BatchCollected {
                        dataset: DATASET.into(),
                        window: window(n),
                        attempt,
                        seq,
                        records: 150,
                        received_until: None,
                        late: false,
                        content_lz4: BatchCollected::compress(&lines),
                    }),
                )
                .await;
            }
            publish(
                bus,
                Event::WindowClosed(WindowClosed {
                    dataset: DATASET.into(),
                    window: window(n),
                    attempt,
                    outcome: WindowOutcome::Complete {
                        batches: 3,
                        records: 450,
                        method: Method::Logpull,
                        sample_interval: 1,
                        fields: "ClientIP,EdgeStartTimestamp,RayID".into(),
                    },
                    pushed_through: None,
                    late: false,
                }),
            )
            .await;
            return Some(content);
        }
    };
    publish(
        bus,
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
    None
}

#[tokio::test]
async fn sigkill_of_archiver_and_sealer_loses_and_duplicates_nothing() {
    let seed = seed();
    let mut random = Lcg(seed);
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let bus = connect(&nats.url).await.expect("connect");
    provision(&bus, 1).await.expect("provision");
    let data = tempfile::tempdir().expect("data dir");

    let mut expected: BTreeMap<i64, Option<Vec<u8>>> = BTreeMap::new();
    let mut process = spawn(&nats.url, &db.url, data.path(), 0);
    process.wait_ready().await;
    let mut kills = 0;
    for n in 0..WINDOWS {
        expected.insert(n, send_window(&bus, n).await);
        if n % 4 == 1 {
            // Somewhere between "just received" and "in the middle of closing".
            tokio::time::sleep(Duration::from_millis(random.next(400))).await;
            process.kill();
            kills += 1;
            process = spawn(&nats.url, &db.url, data.path(), kills);
            process.wait_ready().await;
        }
    }
    assert!(kills >= 3);

    let bucket = Bucket::open(data.path(), TENANT, ZONE).await;
    // One entry per window, and an index entry for every archive.
    let archived = expected
        .values()
        .filter(|content| content.is_some())
        .count();
    let entries = WINDOWS as u64 + archived as u64;
    // Messages a killed process held come back after the consumers' ack_wait (60 s), and the
    // archiver's retry delay grows with each redelivery (up to 5 minutes).
    let deadline = Instant::now() + Duration::from_secs(480);
    loop {
        let size = bucket.checkpoint_size().await;
        if size == entries {
            break;
        }
        if Instant::now() >= deadline {
            print_logs(data.path(), kills);
            panic!("checkpoint covers {size} of {entries} entries (seed {seed})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    process.kill();

    // Every window exactly once, with the right kind and exactly its records.
    let mut seen = BTreeMap::new();
    let mut indexed = Vec::new();
    for entry in chain_entries(&bus, ZONE).await {
        if let EntryBody::Index(index) = &entry.body {
            indexed.push(index.target_index);
            continue;
        }
        let start = i64::try_from(entry.body.window().expect("window").start_ns() / 1_000_000_000)
            .expect("start");
        let n = (start - window(0).start) / 60;
        assert!(
            seen.insert(n, entry).is_none(),
            "window {n} sealed twice (seed {seed})"
        );
    }
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (0..WINDOWS).collect::<Vec<_>>(),
        "seed {seed}"
    );
    let mut archive_keys = Vec::new();
    for (n, entry) in &seen {
        match (&entry.body, &expected[n]) {
            (EntryBody::Archive(archive), Some(content)) => {
                assert_eq!(archive.content_sha256, Sha256Hash::digest(content));
                assert_eq!(archive.record_count, 450);
                let stored = bucket
                    .store
                    .get_bytes(&ObjectKey::new(&archive.object.key).expect("key"))
                    .await
                    .expect("archive present");
                assert_eq!(archive.stored_sha256, Sha256Hash::digest(&stored));
                archive_keys.push(archive.object.key.clone());
            }
            (EntryBody::Empty(_), None) => assert_eq!(outcome_of(*n), "empty"),
            (EntryBody::Gap(_), None) => assert_eq!(outcome_of(*n), "gap"),
            (body, _) => panic!("window {n} sealed as {:?} (seed {seed})", body.kind()),
        }
    }
    // Each archive indexed exactly once.
    indexed.sort_unstable();
    let before = indexed.len();
    indexed.dedup();
    assert_eq!((before, indexed.len()), (archived, archived), "seed {seed}");
    // No second copy of any archive under another key.
    let stored = bucket.archive_objects().await;
    archive_keys.sort();
    let mut stored_sorted = stored.clone();
    stored_sorted.sort();
    assert_eq!(stored_sorted, archive_keys, "seed {seed}");

    let report = bucket.verify().await;
    if report.exit_code() != 0 {
        print_logs(data.path(), kills);
    }
    assert_eq!(report.exit_code(), 0, "seed {seed}: {}", report.to_human());
    assert!(
        report.has(rainlogs_verify::Reason::ArchivesVerified),
        "{}",
        report.to_human()
    );
}

/// CHAOS_SEED=<n> replays a run; otherwise the clock seeds it, and the seed is printed.
fn seed() -> u64 {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    eprintln!("chaos seed {seed}");
    seed
}

/// Kill -9 of the process running the reaper at random moments while it prunes and deletes
/// expired archives: afterwards every archive is gone, each has exactly one `prune` entry, and
/// `rainlogs-verify` passes.
#[tokio::test]
async fn sigkill_of_the_reaper_leaves_one_prune_entry_per_archive_and_a_verifiable_log() {
    let seed = seed();
    let mut random = Lcg(seed);
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let bus = connect(&nats.url).await.expect("connect");
    provision(&bus, 1).await.expect("provision");
    let data = tempfile::tempdir().expect("data dir");
    let windows = 6;
    let archives = (0..windows).filter(|n| outcome_of(*n) == "archive").count() as u64;

    let mut process = spawn(&nats.url, &db.url, data.path(), 0);
    process.wait_ready().await;
    for n in 0..windows {
        send_window(&bus, n).await;
    }
    let bucket = Bucket::open(data.path(), TENANT, ZONE).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    while bucket.checkpoint_size().await < windows as u64 {
        assert!(
            Instant::now() < deadline,
            "windows never sealed (seed {seed})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(bucket.archive_objects().await.len() as u64, archives);
    process.kill();

    // Each start of the reaper sweeps at once; kill it somewhere in that pass, several times.
    let services = ["archiver", "sealer", "reaper"];
    let mut runs = 1;
    for _ in 0..4 {
        process = spawn_services(&nats.url, &db.url, data.path(), runs, &services, &[]);
        process.wait_ready().await;
        tokio::time::sleep(Duration::from_millis(random.next(1500))).await;
        process.kill();
        runs += 1;
    }
    process = spawn_services(&nats.url, &db.url, data.path(), runs, &services, &[]);
    process.wait_ready().await;
    // A pass a minute: prune entries first, the deletes in a later pass.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        // Archives and their indexes all gone; an index and a prune entry per archive.
        let left = bucket.objects().await;
        let size = bucket.checkpoint_size().await;
        if left.is_empty() && size == windows as u64 + 2 * archives {
            break;
        }
        if Instant::now() >= deadline {
            print_logs(data.path(), runs);
            panic!(
                "{} archives left, checkpoint {size} (seed {seed})",
                left.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    process.kill();

    let mut pruned: Vec<u64> = chain_entries(&bus, ZONE)
        .await
        .into_iter()
        .filter_map(|entry| match entry.body {
            EntryBody::Prune(prune) => Some(prune.target_index),
            _ => None,
        })
        .collect();
    pruned.sort_unstable();
    let before = pruned.len();
    pruned.dedup();
    assert_eq!(
        before,
        pruned.len(),
        "an archive pruned twice (seed {seed})"
    );
    assert_eq!(pruned.len() as u64, archives, "seed {seed}");

    let report = bucket.verify().await;
    if report.exit_code() != 0 {
        print_logs(data.path(), runs);
    }
    assert_eq!(report.exit_code(), 0, "seed {seed}: {}", report.to_human());
    assert!(
        report.has(rainlogs_verify::Reason::ArchivePruned),
        "{}",
        report.to_human()
    );
}
