//! Shared test harness: a private NATS server, a store (local directory or the dev SeaweedFS),
//! the archiver and the sealer running as in production, and helpers to publish what the
//! collector publishes and read back what the services produce.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::time::Duration;

use rainlogs_archiver::{Archiver, ArchiverSettings};
use rainlogs_bus::async_nats::jetstream::stream::DirectGetErrorKind;
use rainlogs_bus::{Bus, CancellationToken, definitions};
use rainlogs_integrity::{ArchiveReader, NoteSigningKey};
use rainlogs_runtime::ObjectStore;
use rainlogs_schemas::events::{BatchCollected, Method, Window, WindowClosed, WindowOutcome};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_sealer::{Sealer, SealerSettings};
use rainlogs_store::{Backend, FsStore, ObjectKey, Store};
use rainlogs_testkit::NatsServer;
use uuid::Uuid;

pub const TENANT: &str = "acme";
pub const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
pub const DATASET: &str = "http_requests";
/// The test signing key of docs/FORMAT.md §8.3.
pub const TEST_KEY: &str =
    "PRIVATE+KEY+rainlogs.test/sealer+6e0f8e34+AawcVNj/nAGF+9XKIbP0CLBeT+kg1yx3SeIY2GzrZj+h";

pub fn key() -> NoteSigningKey {
    NoteSigningKey::parse(TEST_KEY).unwrap()
}

pub fn window(n: i64) -> Window {
    let start = 1_768_485_600 + n * 60;
    Window {
        start,
        end: start + 60,
    }
}

/// Everything a test needs; services stop when it is dropped.
pub struct Harness {
    pub nats: NatsServer,
    pub bus: Bus,
    pub store: ObjectStore,
    pub work: tempfile::TempDir,
    _store_dir: Option<tempfile::TempDir>,
    pub shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Harness {
    /// NATS with provisioned streams and a local-directory store.
    pub async fn local() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Single(Backend::Fs(FsStore::open(dir.path()).await.unwrap()));
        Self::with_store(
            ObjectStore {
                store,
                prefix: rainlogs_integrity::BucketPrefix::default(),
            },
            Some(dir),
        )
        .await
    }

    /// NATS with provisioned streams and a fresh Object Lock bucket on the dev SeaweedFS.
    pub async fn seaweedfs() -> Self {
        let s3 = rainlogs_testkit::s3::dev_bucket("arch", true).await;
        Self::with_store(
            ObjectStore {
                store: Store::Single(Backend::S3(s3)),
                prefix: rainlogs_integrity::BucketPrefix::new("rl").expect("prefix"),
            },
            None,
        )
        .await
    }

    async fn with_store(store: ObjectStore, dir: Option<tempfile::TempDir>) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let nats = NatsServer::start();
        let bus = rainlogs_bus::connect(&nats.url).await.unwrap();
        rainlogs_bus::provision(&bus, 1).await.unwrap();
        Self {
            nats,
            bus,
            store,
            work: tempfile::tempdir().unwrap(),
            _store_dir: dir,
            shutdown: CancellationToken::new(),
        }
    }

    pub fn archiver_settings(&self) -> ArchiverSettings {
        ArchiverSettings::new(self.work.path().join("archiver"))
    }

    /// Starts an archiver that runs until `stop` (or the harness) is cancelled.
    pub async fn start_archiver(&self, stop: &CancellationToken) -> tokio::task::JoinHandle<()> {
        let archiver = Archiver::start(
            self.bus.clone(),
            self.store.clone(),
            self.archiver_settings(),
        )
        .await
        .unwrap();
        let stop = stop.clone();
        tokio::spawn(async move { archiver.run(stop).await.unwrap() })
    }

    pub async fn start_sealer(&self, stop: &CancellationToken) -> tokio::task::JoinHandle<()> {
        let sealer = Sealer::start(
            self.bus.clone(),
            self.store.clone(),
            key(),
            SealerSettings::default(),
        )
        .await
        .unwrap();
        let stop = stop.clone();
        tokio::spawn(async move { sealer.run(stop).await.unwrap() })
    }

    pub async fn publish(&self, subject: &str, event: Event) -> Envelope {
        let envelope = Envelope::new(
            TENANT,
            Some(ZONE.into()),
            Actor::service("collector"),
            event,
        );
        self.bus.publish(subject, &envelope).await.unwrap();
        envelope
    }

    /// Publishes one batch of `lines` (each must end in '\n').
    pub async fn batch(&self, window: Window, attempt: Uuid, seq: u32, lines: &[Vec<u8>]) {
        self.batch_of(window, attempt, seq, lines, false).await;
    }

    /// A batch of a normal (`late: false`) or a late attempt.
    pub async fn batch_of(
        &self,
        window: Window,
        attempt: Uuid,
        seq: u32,
        lines: &[Vec<u8>],
        late: bool,
    ) {
        let content: Vec<u8> = lines.concat();
        self.publish(
            &subjects::batch(ZONE),
            Event::BatchCollected(BatchCollected {
                dataset: DATASET.into(),
                window,
                attempt,
                seq,
                records: u32::try_from(lines.len()).unwrap(),
                received_until: None,
                late,
                content_lz4: BatchCollected::compress(&content),
            }),
        )
        .await;
    }

    pub async fn close(&self, window: Window, attempt: Uuid, outcome: WindowOutcome) {
        self.close_of(window, attempt, outcome, false).await;
    }

    /// The close of a normal (`late: false`) or a late attempt.
    pub async fn close_of(
        &self,
        window: Window,
        attempt: Uuid,
        outcome: WindowOutcome,
        late: bool,
    ) {
        self.publish(
            &subjects::batch(ZONE),
            Event::WindowClosed(WindowClosed {
                dataset: DATASET.into(),
                window,
                attempt,
                outcome,
                pushed_through: None,
                late,
            }),
        )
        .await;
    }

    /// Publishes `batches` as one complete attempt and closes the window.
    pub async fn complete_window(&self, window: Window, attempt: Uuid, batches: &[Vec<Vec<u8>>]) {
        for (seq, lines) in batches.iter().enumerate() {
            self.batch(window, attempt, u32::try_from(seq).unwrap(), lines)
                .await;
        }
        self.close(window, attempt, complete(batches)).await;
    }

    /// Every event on `subject`, in order.
    pub async fn events(&self, stream: &str, subject: &str) -> Vec<Envelope> {
        let stream = self.bus.js.get_stream(stream).await.unwrap();
        let mut out = Vec::new();
        let mut next = 1;
        loop {
            match stream
                .direct_get_next_for_subject(subject, Some(next))
                .await
            {
                Ok(message) => {
                    next = message.sequence + 1;
                    out.push(Envelope::from_cbor(&message.payload).unwrap());
                }
                Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => return out,
                Err(e) => panic!("reading {subject}: {e}"),
            }
        }
    }

    pub async fn archive_events(&self) -> Vec<Envelope> {
        self.events(definitions::ARCHIVE, &subjects::archive(ZONE))
            .await
    }

    pub async fn chain_events(&self) -> Vec<Envelope> {
        self.events(definitions::CHAIN, &subjects::chain(ZONE))
            .await
    }

    /// The bytes of an object.
    pub async fn object(&self, key: &str) -> Vec<u8> {
        self.store
            .store
            .get_bytes(&ObjectKey::new(key).unwrap())
            .await
            .unwrap()
            .to_vec()
    }

    /// The archive's index object is the one its content gives, under the key its event names,
    /// with the size and SHA-256 the event announces.
    pub async fn assert_indexed(&self, event: &rainlogs_schemas::events::ArchiveStored) {
        let index = event
            .index
            .as_ref()
            .expect("the event names the archive's index");
        assert_eq!(
            Some(index.object_key.clone()),
            rainlogs_integrity::layout::index_key(&event.object_key)
        );
        let bytes = self.object(&index.object_key).await;
        assert_eq!(index.stored_size, bytes.len() as u64);
        assert_eq!(
            index.stored_sha256,
            rainlogs_integrity::Sha256Hash::digest(&bytes).0.to_vec()
        );
        let archive = self.object(&event.object_key).await;
        let (_, rebuilt) = rainlogs_index::index_archive(&archive[..]).unwrap();
        assert_eq!(rebuilt.encode(), bytes, "the index its content gives");
        assert_eq!(rebuilt.records(), event.records);
    }

    /// Keys of the archive and late objects below `prefix` (not their indexes).
    pub async fn archive_keys(&self, prefix: &str) -> Vec<String> {
        let mut keys = self.keys(prefix).await;
        keys.retain(|k| k.ends_with(rainlogs_integrity::layout::ARCHIVE_SUFFIX));
        keys
    }

    /// Keys of every object below `prefix`.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        use futures::TryStreamExt as _;
        let listed: Vec<_> = self.store.store.list(prefix).try_collect().await.unwrap();
        listed.into_iter().map(|o| o.key).collect()
    }

    /// Waits (polling) until `check` holds, failing with `what` after a generous deadline.
    pub async fn wait_for<F, Fut>(&self, what: &str, mut check: F)
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
}

pub fn complete(batches: &[Vec<Vec<u8>>]) -> WindowOutcome {
    WindowOutcome::Complete {
        batches: u32::try_from(batches.len()).unwrap(),
        records: batches.iter().map(|b| b.len() as u64).sum(),
        method: Method::Logpull,
        sample_interval: 1,
        fields: "ClientIP,EdgeStartTimestamp,RayID".into(),
    }
}

/// A Logpull-like NDJSON line; `n` makes it unique.
pub fn line(n: u64) -> Vec<u8> {
    format!(
        "{{\"ClientIP\":\"192.0.2.{}\",\"EdgeStartTimestamp\":{},\"RayID\":\"{:016x}\"}}\n",
        n % 250,
        1_768_485_600_000_000_000u64 + n * 1_000_003,
        n
    )
    .into_bytes()
}

/// `count` batches of `per_batch` unique lines, starting at line `first`.
pub fn batches(first: u64, count: u64, per_batch: u64) -> Vec<Vec<Vec<u8>>> {
    (0..count)
        .map(|b| {
            (0..per_batch)
                .map(|i| line(first + b * per_batch + i))
                .collect()
        })
        .collect()
}

/// Decompresses an archive and returns its lines (each with its '\n').
pub fn archive_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    use std::io::Read as _;
    let mut reader = ArchiveReader::new(bytes).unwrap();
    let mut content = Vec::new();
    reader.read_to_end(&mut content).unwrap();
    content
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

pub fn sorted(mut lines: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    lines.sort();
    lines
}
