//! The sealer against a real NATS server and a real store: entries, chain, tiles and signed
//! checkpoints; duplicates, concurrent sealers, restarts and a lost JetStream tail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt as _;
use rainlogs_bus::async_nats::jetstream::stream::DirectGetErrorKind;
use rainlogs_bus::{Bus, CancellationToken, definitions};
use rainlogs_integrity::tiles::TILE_WIDTH;
use rainlogs_integrity::{
    BucketPrefix, Chain, Entry, EntryBody, EntryKind, MemoryTree, Name, NoteSigningKey, Origin,
    TileId, TileKind, TileSet, open_checkpoint,
};
use rainlogs_runtime::ObjectStore;
use rainlogs_schemas::events::{ArchiveStored, GapReason, Method, Window, WindowEmpty, WindowGap};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_sealer::{Sealer, SealerSettings};
use rainlogs_store::{Backend, FsStore, ObjectKey, Store};
use rainlogs_testkit::NatsServer;
use uuid::Uuid;

const TENANT: &str = "acme";
const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const TEST_KEY: &str =
    "PRIVATE+KEY+rainlogs.test/sealer+6e0f8e34+AawcVNj/nAGF+9XKIbP0CLBeT+kg1yx3SeIY2GzrZj+h";

fn key() -> NoteSigningKey {
    NoteSigningKey::parse(TEST_KEY).unwrap()
}

fn origin() -> Origin {
    Origin::new(&Name::new(TENANT).unwrap(), &Name::new(ZONE).unwrap())
}

fn window(n: i64) -> Window {
    let start = 1_768_485_600 + n * 60;
    Window {
        start,
        end: start + 60,
    }
}

/// The event the archiver publishes for window `n`: archive, empty or gap by `n % 3`.
fn outcome(n: i64, dataset: &str) -> Event {
    match n % 3 {
        0 => Event::ArchiveStored(ArchiveStored {
            dataset: dataset.into(),
            window: window(n),
            attempt: Uuid::now_v7(),
            object_key: format!(
                "{TENANT}/{ZONE}/{dataset}/2026/01/15/14/w{n}-0123456789abcdef.ndjson.zst"
            ),
            object_version: None,
            stored_size: 100 + n as u64,
            stored_sha256: vec![n as u8; 32],
            content_sha256: vec![!(n as u8); 32],
            records: 10,
            event_time_min_ns: None,
            event_time_max_ns: None,
            method: Method::Logpull,
            sample_interval: 1,
            fields: "default".into(),
            retain_until: window(n).end + 395 * 86_400,
            late: false,
            index: None,
        }),
        1 => Event::WindowEmpty(WindowEmpty {
            dataset: dataset.into(),
            window: window(n),
            attempt: Uuid::now_v7(),
            method: Method::Logpull,
        }),
        _ => Event::WindowGap(WindowGap {
            dataset: dataset.into(),
            window: window(n),
            attempt: Uuid::now_v7(),
            reason: GapReason::RetentionExpired,
            detail: "older than the source keeps".into(),
        }),
    }
}

struct Harness {
    _nats: NatsServer,
    bus: Bus,
    store: ObjectStore,
    _dir: Option<tempfile::TempDir>,
    stop: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Harness {
    async fn local() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore {
            store: Store::Single(Backend::Fs(FsStore::open(dir.path()).await.unwrap())),
            prefix: rainlogs_integrity::BucketPrefix::default(),
        };
        Self::with(store, Some(dir)).await
    }

    async fn with(store: ObjectStore, dir: Option<tempfile::TempDir>) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let nats = NatsServer::start();
        let bus = rainlogs_bus::connect(&nats.url).await.unwrap();
        rainlogs_bus::provision(&bus, 1).await.unwrap();
        Self {
            _nats: nats,
            bus,
            store,
            _dir: dir,
            stop: CancellationToken::new(),
        }
    }

    async fn start_sealer(&self, stop: &CancellationToken) -> tokio::task::JoinHandle<()> {
        let settings = SealerSettings {
            early_window_wait: Duration::from_secs(600),
            ..SealerSettings::default()
        };
        let sealer = Sealer::start(self.bus.clone(), self.store.clone(), key(), settings)
            .await
            .unwrap();
        let stop = stop.clone();
        tokio::spawn(async move { sealer.run(stop).await.unwrap() })
    }

    async fn publish(&self, event: Event) -> Envelope {
        let envelope = Envelope::new(TENANT, Some(ZONE.into()), Actor::service("archiver"), event);
        self.bus
            .publish(&subjects::archive(ZONE), &envelope)
            .await
            .unwrap();
        envelope
    }

    /// `EntrySealed` payloads on the zone's chain subject, in order.
    async fn chain(&self) -> Vec<rainlogs_schemas::events::EntrySealed> {
        let stream = self.bus.js.get_stream(definitions::CHAIN).await.unwrap();
        let mut out = Vec::new();
        let mut next = 1;
        loop {
            match stream
                .direct_get_next_for_subject(subjects::chain(ZONE), Some(next))
                .await
            {
                Ok(message) => {
                    next = message.sequence + 1;
                    match Envelope::from_cbor(&message.payload).unwrap().event {
                        Event::EntrySealed(e) => out.push(e),
                        other => panic!("{} on the chain subject", other.type_name()),
                    }
                }
                Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => return out,
                Err(e) => panic!("reading the chain: {e}"),
            }
        }
    }

    async fn bytes(&self, key: &str) -> Option<Vec<u8>> {
        match self
            .store
            .store
            .get_bytes(&ObjectKey::new(key).unwrap())
            .await
        {
            Ok(b) => Some(b.to_vec()),
            Err(rainlogs_store::StoreError::NotFound { .. }) => None,
            Err(e) => panic!("{key}: {e}"),
        }
    }

    fn prefix(&self) -> BucketPrefix {
        self.store.prefix.clone()
    }

    /// Size of the bucket's latest checkpoint, verified with the public key.
    async fn checkpoint_size(&self) -> Option<u64> {
        let note = self.bytes(&self.prefix().checkpoint_key(&origin())).await?;
        let verified = open_checkpoint(&note, &origin(), &[key().verifier_key()]).unwrap();
        Some(verified.checkpoint.size)
    }

    async fn wait_for<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
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

    /// Waits until `n` entries are on the chain and a checkpoint covers them.
    async fn wait_sealed(&self, n: usize) {
        self.wait_for(&format!("{n} entries"), || async {
            self.chain().await.len() >= n
        })
        .await;
        self.wait_for(&format!("a checkpoint of size {n}"), || async {
            self.checkpoint_size().await == Some(n as u64)
        })
        .await;
    }

    /// Seals windows `0..signed` and then `signed..total` with a sealer that is then stopped,
    /// and makes the bucket look as if it had stopped just before signing `total`.
    async fn sealed_then_unsigned(&self, signed: i64, total: i64) {
        let run = CancellationToken::new();
        let sealer = self.start_sealer(&run).await;
        for n in 0..signed {
            self.publish(outcome(n, "http_requests")).await;
        }
        self.wait_sealed(signed as usize).await;
        for n in signed..total {
            self.publish(outcome(n, "http_requests")).await;
        }
        self.wait_sealed(total as usize).await;
        run.cancel();
        sealer.await.unwrap();
        self.unsign(total as u64).await;
    }

    /// Makes the bucket look as if the sealer had stopped just before signing `size`: its
    /// history entry is gone and `tlog/checkpoint` is the newest one left.
    async fn unsign(&self, size: u64) {
        let prefix = self.prefix();
        let history = ObjectKey::new(prefix.checkpoint_history_key(&origin(), size)).unwrap();
        self.store.store.delete(&history).await.unwrap();
        let history_dir = prefix.checkpoint_history_key(&origin(), 0);
        let history_dir = &history_dir[..history_dir.len() - 20];
        let remaining: Vec<_> = self
            .store
            .store
            .list(history_dir)
            .try_collect()
            .await
            .unwrap();
        let newest = remaining.iter().map(|o| o.key.clone()).max().unwrap();
        let previous_note = self.bytes(&newest).await.unwrap();
        let latest = ObjectKey::new(prefix.checkpoint_key(&origin())).unwrap();
        self.store.store.delete(&latest).await.unwrap();
        self.store
            .store
            .put_bytes(&latest, previous_note.into(), &Default::default())
            .await
            .unwrap();
        assert!(self.checkpoint_size().await < Some(size));
    }

    /// Everything an auditor checks with the bucket and the public key alone: the checkpoint
    /// verifies, the bundles up to its size decode into a chain that verifies from genesis, and
    /// their Merkle root is the signed root. Returns the entries.
    async fn audit(&self) -> Vec<Entry> {
        let note = self
            .bytes(&self.prefix().checkpoint_key(&origin()))
            .await
            .expect("checkpoint");
        let checkpoint = open_checkpoint(&note, &origin(), &[key().verifier_key()])
            .unwrap()
            .checkpoint;
        let tlog = self.prefix().tlog_prefix(&origin());
        let mut set = TileSet::new();
        let width = u64::from(TILE_WIDTH);
        let mut ids = Vec::new();
        for index in 0..checkpoint.size.div_ceil(width) {
            let w = (checkpoint.size - index * width).min(width);
            ids.push(TileId::new(TileKind::Entries, index, u16::try_from(w).unwrap()).unwrap());
        }
        let mut chain = Chain::new(origin());
        let mut tree = MemoryTree::new();
        let mut entries = Vec::new();
        for id in ids {
            let data = self
                .bytes(&format!("{tlog}{}", id.path()))
                .await
                .expect("bundle");
            set.insert(id, &data).unwrap();
            for bytes in set.entries(&id).unwrap() {
                let sealed = chain
                    .verify_next(bytes)
                    .expect("chain verifies from genesis");
                tree.push(bytes).unwrap();
                entries.push(sealed.entry);
            }
        }
        assert_eq!(
            tree.root().unwrap(),
            checkpoint.root,
            "signed root = root of the bundles"
        );
        assert!(
            self.bytes(
                &self
                    .prefix()
                    .checkpoint_history_key(&origin(), checkpoint.size)
            )
            .await
            .is_some(),
            "checkpoint kept in the history"
        );
        entries
    }
}

/// The chain subject's entries decode, link from genesis and carry their chain hash and index.
fn verify_published(chain: &[rainlogs_schemas::events::EntrySealed]) -> Vec<Entry> {
    let mut verifier = Chain::new(origin());
    chain
        .iter()
        .enumerate()
        .map(|(i, e)| {
            assert_eq!(e.index, i as u64, "contiguous indices");
            let sealed = verifier
                .verify_next(&e.entry)
                .expect("entry links to the previous one");
            assert_eq!(e.chain_hash, sealed.chain_hash.0.to_vec());
            sealed.entry
        })
        .collect()
}

#[tokio::test]
async fn every_window_becomes_one_verifiable_entry_under_a_signed_checkpoint() {
    let h = Harness::local().await;
    h.start_sealer(&h.stop.clone()).await;
    for n in 0..9 {
        h.publish(outcome(n, "http_requests")).await;
    }
    h.wait_sealed(9).await;

    let published = verify_published(&h.chain().await);
    let audited = h.audit().await;
    assert_eq!(
        published, audited,
        "JetStream and the bucket hold the same log"
    );
    let kinds: Vec<EntryKind> = audited.iter().map(Entry::kind).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == EntryKind::Archive).count(),
        3
    );
    assert_eq!(kinds.iter().filter(|k| **k == EntryKind::Empty).count(), 3);
    assert_eq!(kinds.iter().filter(|k| **k == EntryKind::Gap).count(), 3);
    for (n, entry) in audited.iter().enumerate() {
        let expected = window(n as i64);
        let w = entry.body.window().unwrap();
        assert_eq!(
            (w.start_ns(), w.end_ns()),
            (
                expected.start as u64 * 1_000_000_000,
                expected.end as u64 * 1_000_000_000
            )
        );
    }
    let EntryBody::Archive(first) = &audited[0].body else {
        panic!("entry 0 is an archive")
    };
    assert_eq!(first.stored_sha256.0, [0u8; 32]);
    assert_eq!(first.record_count, 10);
    assert_eq!(
        first.retain_until_ns,
        (window(0).end as u64 + 395 * 86_400) * 1_000_000_000
    );
}

#[tokio::test]
async fn duplicate_and_redelivered_events_seal_a_window_once() {
    let h = Harness::local().await;
    h.start_sealer(&h.stop.clone()).await;
    let first = h.publish(outcome(0, "http_requests")).await;
    // The archiver announced the same window again (after a restart: a new envelope id), and an
    // identical copy of the first envelope arrives after JetStream's duplicate window.
    h.publish(outcome(0, "http_requests")).await;
    let mut copy = first.clone();
    copy.id = Uuid::now_v7();
    h.bus
        .publish(&subjects::archive(ZONE), &copy)
        .await
        .unwrap();
    // An overlapping window (a collector bug) must not be sealed either.
    let mut overlapping = outcome(1, "http_requests");
    if let Event::WindowEmpty(e) = &mut overlapping {
        e.window = Window {
            start: window(0).start + 30,
            end: window(1).end,
        };
    }
    h.publish(overlapping).await;
    h.publish(outcome(1, "http_requests")).await;
    h.wait_sealed(2).await;

    let entries = verify_published(&h.chain().await);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].kind(), EntryKind::Archive);
    assert_eq!(entries[1].kind(), EntryKind::Empty);
    // Everything was answered: nothing waits for redelivery.
    let consumer: rainlogs_bus::async_nats::jetstream::consumer::PullConsumer = h
        .bus
        .js
        .get_stream(definitions::ARCHIVE)
        .await
        .unwrap()
        .get_consumer("sealer")
        .await
        .unwrap();
    h.wait_for("no pending events", || async {
        let info = consumer.get_info().await.unwrap();
        info.num_ack_pending == 0 && info.num_pending == 0
    })
    .await;
}

#[tokio::test]
async fn a_window_that_arrives_before_its_predecessor_waits_for_it() {
    let h = Harness::local().await;
    h.start_sealer(&h.stop.clone()).await;
    h.publish(outcome(0, "http_requests")).await;
    h.wait_sealed(1).await;
    h.publish(outcome(2, "http_requests")).await;
    h.publish(outcome(1, "http_requests")).await;
    h.wait_sealed(3).await;
    let entries = verify_published(&h.chain().await);
    let starts: Vec<u64> = entries
        .iter()
        .map(|e| e.body.window().unwrap().start_ns())
        .collect();
    let expected: Vec<u64> = (0..3)
        .map(|n| window(n).start as u64 * 1_000_000_000)
        .collect();
    assert_eq!(starts, expected, "windows sealed in time order");
}

#[tokio::test]
async fn two_sealers_at_once_never_fork_the_chain() {
    let h = Harness::local().await;
    h.start_sealer(&h.stop.clone()).await;
    h.start_sealer(&h.stop.clone()).await;
    let datasets = ["http_requests", "firewall_events", "dns_logs"];
    for n in 0..30 {
        for dataset in datasets {
            h.publish(outcome(n, dataset)).await;
        }
    }
    h.wait_sealed(90).await;
    let entries = verify_published(&h.chain().await);
    assert_eq!(entries.len(), 90);
    let windows: HashSet<(String, u64)> = entries
        .iter()
        .map(|e| {
            (
                e.body.dataset().unwrap().to_string(),
                e.body.window().unwrap().start_ns(),
            )
        })
        .collect();
    assert_eq!(windows.len(), 90, "every window exactly once");
    assert_eq!(h.audit().await, entries);
}

#[tokio::test]
async fn a_restarted_sealer_continues_the_chain() {
    let h = Harness::local().await;
    let first_run = CancellationToken::new();
    let first = h.start_sealer(&first_run).await;
    for n in 0..5 {
        h.publish(outcome(n, "http_requests")).await;
    }
    h.wait_sealed(5).await;
    first_run.cancel();
    first.await.unwrap();
    let before = h.chain().await;

    h.start_sealer(&h.stop.clone()).await;
    // A redelivered event of the first run and new windows.
    h.publish(outcome(4, "http_requests")).await;
    for n in 5..8 {
        h.publish(outcome(n, "http_requests")).await;
    }
    h.wait_sealed(8).await;
    let after = h.chain().await;
    assert_eq!(&after[..5], &before[..], "history unchanged");
    let entries = verify_published(&after);
    assert_eq!(entries.len(), 8);
    assert_eq!(h.audit().await, entries);
    // The checkpoint of size 5 is kept and consistent with the newer one.
    let old = h
        .bytes(&h.prefix().checkpoint_history_key(&origin(), 5))
        .await
        .unwrap();
    let old = open_checkpoint(&old, &origin(), &[key().verifier_key()])
        .unwrap()
        .checkpoint;
    let mut tree = MemoryTree::new();
    for e in &after {
        tree.push(&e.entry).unwrap();
    }
    assert_eq!(tree.root_at(5).unwrap(), old.root);
}

#[tokio::test]
async fn entries_lost_from_jetstream_are_restored_from_the_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let store = || async {
        ObjectStore {
            store: Store::Single(Backend::Fs(FsStore::open(dir.path()).await.unwrap())),
            prefix: rainlogs_integrity::BucketPrefix::new("eu").expect("prefix"),
        }
    };
    let before = {
        let h = Harness::with(store().await, None).await;
        h.start_sealer(&h.stop.clone()).await;
        for n in 0..4 {
            h.publish(outcome(n, "http_requests")).await;
        }
        h.wait_sealed(4).await;
        h.chain().await
    };
    // A new NATS server with empty streams: JetStream lost everything, the bucket kept it.
    let h = Harness::with(store().await, None).await;
    h.start_sealer(&h.stop.clone()).await;
    h.publish(outcome(4, "http_requests")).await;
    h.wait_sealed(5).await;
    let after = h.chain().await;
    assert_eq!(after.len(), 5);
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(
            old.entry, new.entry,
            "restored under the same index with the same bytes"
        );
    }
    let entries = verify_published(&after);
    assert_eq!(h.audit().await, entries);
}

#[tokio::test]
async fn seals_into_an_object_lock_bucket_on_seaweedfs() {
    let s3 = rainlogs_testkit::s3::dev_bucket("seal", true).await;
    let store = ObjectStore {
        store: Store::Single(Backend::S3(s3)),
        prefix: rainlogs_integrity::BucketPrefix::new("rl").expect("prefix"),
    };
    let h = Harness::with(store, None).await;
    h.start_sealer(&h.stop.clone()).await;
    for n in 0..3 {
        h.publish(outcome(n, "http_requests")).await;
    }
    h.wait_sealed(3).await;
    // A second burst replaces tlog/checkpoint (delete + create on a versioned bucket).
    for n in 3..6 {
        h.publish(outcome(n, "http_requests")).await;
    }
    h.wait_sealed(6).await;
    let entries = verify_published(&h.chain().await);
    assert_eq!(h.audit().await, entries);
    let tlog = h.prefix().tlog_prefix(&origin());
    let listed: Vec<_> = h.store.store.list(&tlog).try_collect().await.unwrap();
    assert!(listed.iter().any(|o| o.key.ends_with("tlog/checkpoint")));
}

/// A sealer killed after storing the tiles of a new size but before signing it leaves partial
/// tiles that a verifier reads as a published size. The next sealer signs that size before any
/// larger one, so the history has no hole.
#[tokio::test]
async fn a_size_whose_tiles_were_stored_without_a_checkpoint_is_signed_on_restart() {
    let h = Harness::local().await;
    // As a crash right after storing the tiles of size 7 would have left it.
    h.sealed_then_unsigned(5, 7).await;

    h.start_sealer(&h.stop.clone()).await;
    for n in 7..9 {
        h.publish(outcome(n, "http_requests")).await;
    }
    h.wait_sealed(9).await;
    let entries = verify_published(&h.chain().await);
    assert_eq!(h.audit().await, entries);
    let note = h
        .bytes(&h.prefix().checkpoint_history_key(&origin(), 7))
        .await
        .expect("the size whose tiles were stored has its checkpoint again");
    let signed_7 = open_checkpoint(&note, &origin(), &[key().verifier_key()])
        .unwrap()
        .checkpoint;
    let mut tree = MemoryTree::new();
    for e in &h.chain().await {
        tree.push(&e.entry).unwrap();
    }
    assert_eq!(tree.root_at(7).unwrap(), signed_7.root);
}

/// Entries appended just before a sealer stopped, with no checkpoint yet, are signed by the
/// next sealer even when no new event for the zone ever arrives.
#[tokio::test]
async fn entries_left_without_a_checkpoint_are_signed_after_a_restart_without_new_events() {
    let h = Harness::local().await;
    h.sealed_then_unsigned(3, 5).await;

    h.start_sealer(&h.stop.clone()).await;
    h.wait_sealed(5).await;
    let entries = verify_published(&h.chain().await);
    assert_eq!(h.audit().await, entries);
}

#[tokio::test]
async fn an_erasure_is_sealed_once_after_the_windows_and_a_repeat_changes_nothing() {
    let h = Harness::local().await;
    h.start_sealer(&h.stop.clone()).await;
    for n in 0..3 {
        h.publish(outcome(n, "http_requests")).await;
    }
    h.wait_sealed(3).await;
    let erasure = || {
        Event::ErasureRequested(rainlogs_schemas::events::ErasureRequested {
            reason: "GDPR Art. 17 request".into(),
        })
    };
    h.publish(erasure()).await;
    h.wait_sealed(4).await;
    // A repeated request (the API asked twice, or a redelivery) seals no second entry; a later
    // window still gets its entry, so the repeat was read and dropped, not left waiting.
    h.publish(erasure()).await;
    h.publish(outcome(3, "http_requests")).await;
    h.wait_sealed(5).await;
    let audited = h.audit().await;
    let kinds: Vec<EntryKind> = audited.iter().map(Entry::kind).collect();
    assert_eq!(
        kinds,
        [
            EntryKind::Archive,
            EntryKind::Empty,
            EntryKind::Gap,
            EntryKind::Erasure,
            EntryKind::Archive
        ]
    );
    assert_eq!(verify_published(&h.chain().await), audited);
}

/// The archiver's announcement of a late object for window `n`.
fn late(n: i64, tag: u8) -> Event {
    let Event::ArchiveStored(mut stored) = outcome(0, "http_requests") else {
        unreachable!("window 0 is an archive")
    };
    stored.window = window(n);
    stored.object_key =
        format!("{TENANT}/{ZONE}/http_requests/2026/01/15/14/w{n}.late-{tag:016x}.ndjson.zst");
    stored.stored_sha256 = vec![tag; 32];
    stored.records = 3;
    stored.late = true;
    Event::ArchiveStored(stored)
}

#[tokio::test]
async fn late_records_are_sealed_once_after_their_window_and_never_for_a_gap() {
    let h = Harness::local().await;
    h.start_sealer(&h.stop.clone()).await;
    // Late records of window 1 reach the sealer before window 1 itself: they wait.
    h.publish(late(1, 1)).await;
    for n in 0..3 {
        h.publish(outcome(n, "http_requests")).await;
    }
    // Window 0 (an archive) gets late records, announced twice; window 2 is a gap.
    h.publish(late(0, 2)).await;
    h.publish(late(0, 2)).await;
    h.publish(late(2, 3)).await;
    h.wait_sealed(5).await;
    // Give a wrongly accepted entry time to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let entries = verify_published(&h.chain().await);
    let kinds: Vec<EntryKind> = entries.iter().map(Entry::kind).collect();
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == EntryKind::Late).count(),
        2,
        "one late entry per late object, none for the gap: {kinds:?}"
    );
    let late_windows: Vec<u64> = entries
        .iter()
        .filter_map(|e| match &e.body {
            rainlogs_integrity::EntryBody::Late(r) => Some(r.window.start_ns()),
            _ => None,
        })
        .collect();
    let ns = |n: i64| window(n).start as u64 * 1_000_000_000;
    assert_eq!(
        late_windows
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [ns(0), ns(1)].into_iter().collect()
    );
    // The late entry of window 1 follows window 1's own entry.
    let position = |pred: &dyn Fn(&Entry) -> bool| entries.iter().position(pred).unwrap();
    let window_1 = position(&|e| e.body.window().is_some_and(|w| w.start_ns() == ns(1)));
    let late_1 = position(
        &|e| matches!(&e.body, rainlogs_integrity::EntryBody::Late(r) if r.window.start_ns() == ns(1)),
    );
    assert!(window_1 < late_1);
}
