//! The auditor-side reference sealer: builds a zone exactly as FORMAT.md lays it out, through the integrity
//! crate (ArchiveWriter, Chain, TileWriter, signed checkpoints) and the store crate (create-only puts with
//! SHA-256 and retain-until). Attacks then mutate what it wrote.

use std::time::Duration;

use bytes::Bytes;
use rainlogs_integrity::layout::object_id;
use rainlogs_integrity::{
    ArchiveDigest, ArchiveRecord, ArchiveWriter, BucketPrefix, Chain, Checkpoint, CollectionMethod,
    Dataset, EmptyRecord, EntryBody, GapReason, GapRecord, IndexRecord, KeyRecord, MemoryTree,
    Name, NoteSigningKey, NoteVerifierKey, ObjectRef, Origin, PruneRecord, Sampling, SealedEntry,
    Sha256Hash, TileWriter, Window, sign_consistent_checkpoint,
};
use rainlogs_store::{ObjectKey, PutOptions, Store};
use time::OffsetDateTime;

pub const SECOND_NS: u64 = 1_000_000_000;
pub const MINUTE_NS: u64 = 60 * SECOND_NS;
pub const HOUR_NS: u64 = 60 * MINUTE_NS;
pub const DAY_NS: u64 = 24 * HOUR_NS;

/// The FORMAT.md test key (never use it outside tests).
pub fn test_signer() -> NoteSigningKey {
    let seed: [u8; 32] = Sha256Hash::digest(b"rainlogs test key v1").0;
    NoteSigningKey::from_seed("rainlogs.test/sealer", &seed).unwrap()
}

/// A key nobody pinned, with the same name as the real one (a key substitution attempt).
pub fn rogue_signer() -> NoteSigningKey {
    let seed: [u8; 32] = Sha256Hash::digest(b"rainlogs rogue key").0;
    NoteSigningKey::from_seed("rainlogs.test/sealer", &seed).unwrap()
}

pub fn pinned() -> NoteVerifierKey {
    test_signer().verifier_key()
}

pub fn time_of(ns: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).unwrap()
}

pub fn ns_of(time: OffsetDateTime) -> u64 {
    u64::try_from(time.unix_timestamp_nanos()).unwrap()
}

/// One archive (or late object) the fixture stored.
#[derive(Debug, Clone)]
pub struct StoredArchive {
    pub index: u64,
    /// Sealed by a `late` entry, under a late key (FORMAT.md §2).
    pub late: bool,
    pub key: String,
    pub dataset: String,
    pub window: Window,
    pub digest: ArchiveDigest,
    pub retain_until_ns: u64,
}

/// What to store as an archive or late object.
struct Stored<'a> {
    late: bool,
    dataset: &'a str,
    window: Window,
    ndjson: &'a [u8],
    retain_until_ns: u64,
    lock: bool,
}

/// Builds one zone's log and archives in a store.
pub struct ZoneBuilder {
    pub store: Store,
    pub prefix: BucketPrefix,
    pub origin: Origin,
    signer: NoteSigningKey,
    chain: Chain,
    tiles: TileWriter,
    tree: MemoryTree,
    pub entries: Vec<SealedEntry>,
    pub archives: Vec<StoredArchive>,
    /// Every published (size, root, signed note).
    pub published: Vec<(u64, Sha256Hash, String)>,
    /// Retention given to tiles and history checkpoints (immutable objects).
    pub tlog_retain_until_ns: u64,
}

impl ZoneBuilder {
    pub fn new(store: Store, prefix: &str, tenant: &str, zone: &str, now_ns: u64) -> Self {
        let origin = Origin::new(&Name::new(tenant).unwrap(), &Name::new(zone).unwrap());
        Self {
            store,
            prefix: BucketPrefix::new(prefix).unwrap(),
            chain: Chain::new(origin.clone()),
            origin,
            signer: test_signer(),
            tiles: TileWriter::new(),
            tree: MemoryTree::new(),
            entries: Vec::new(),
            archives: Vec::new(),
            published: Vec::new(),
            tlog_retain_until_ns: now_ns + DAY_NS,
        }
    }

    pub fn zone_prefix(&self) -> String {
        self.prefix.zone_prefix(&self.origin)
    }

    pub fn tlog_prefix(&self) -> String {
        self.prefix.tlog_prefix(&self.origin)
    }

    pub fn checkpoint_key(&self) -> String {
        self.prefix.checkpoint_key(&self.origin)
    }

    pub fn history_key(&self, size: u64) -> String {
        self.prefix.checkpoint_history_key(&self.origin, size)
    }

    pub fn seal(&mut self, body: EntryBody, sealed_at_ns: u64) -> u64 {
        let sealed = self.chain.seal(body, sealed_at_ns).unwrap();
        self.tiles.append(&sealed.bytes).unwrap();
        self.tree.push(&sealed.bytes).unwrap();
        let index = sealed.entry.index;
        self.entries.push(sealed);
        index
    }

    pub fn erasure(&mut self, sealed_at_ns: u64) -> u64 {
        self.seal(EntryBody::Erasure, sealed_at_ns)
    }

    /// `sealed_at_ns` of the newest entry.
    pub fn newest_sealed_ns(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.entry.sealed_at_ns)
    }

    pub fn key_entry(&mut self, sealed_at_ns: u64) -> u64 {
        let body = EntryBody::Key(KeyRecord {
            verifier_key: self.signer.verifier_key(),
        });
        self.seal(body, sealed_at_ns)
    }

    /// Compresses `lines` as FORMAT.md §3 archive, stores it create-only with its SHA-256 and retain-until
    /// (`lock: false` leaves it without Object Lock), and seals its entry.
    #[allow(clippy::too_many_arguments)]
    pub fn archive<'a>(
        &'a mut self,
        dataset: &'a str,
        window: Window,
        method: CollectionMethod,
        sampling: Sampling,
        ndjson: &'a [u8],
        retain_until_ns: u64,
        lock: bool,
        sealed_at_ns: u64,
    ) -> impl Future<Output = u64> + 'a {
        // Not an async fn around store_and_seal: the standard zone's future is nested close to the
        // compiler's depth limit, and one more layer of async fn exceeds it.
        let object = Stored {
            late: false,
            dataset,
            window,
            ndjson,
            retain_until_ns,
            lock,
        };
        self.store_and_seal(object, method, sampling, sealed_at_ns)
    }

    /// Records of `window` that arrived after its entry was sealed: stored as a late object (an archive
    /// object under the FORMAT.md §2 late key) and sealed as a `late` entry naming `window`.
    #[allow(clippy::too_many_arguments)]
    pub fn late<'a>(
        &'a mut self,
        dataset: &'a str,
        window: Window,
        method: CollectionMethod,
        sampling: Sampling,
        ndjson: &'a [u8],
        retain_until_ns: u64,
        lock: bool,
        sealed_at_ns: u64,
    ) -> impl Future<Output = u64> + 'a {
        let object = Stored {
            late: true,
            dataset,
            window,
            ndjson,
            retain_until_ns,
            lock,
        };
        self.store_and_seal(object, method, sampling, sealed_at_ns)
    }

    /// The late key of FORMAT.md §2: the archive key of the same window and content with `.late-` where the
    /// archive key has `-` before the object id.
    pub fn late_key(
        &self,
        dataset: &Dataset,
        window: &Window,
        content_sha256: &Sha256Hash,
    ) -> String {
        let id = object_id(&self.origin, dataset, window, content_sha256);
        let archive = self
            .prefix
            .archive_key(&self.origin, dataset, window, content_sha256)
            .unwrap();
        archive.replace(
            &format!("-{id}.ndjson.zst"),
            &format!(".late-{id}.ndjson.zst"),
        )
    }

    async fn store_and_seal(
        &mut self,
        object: Stored<'_>,
        method: CollectionMethod,
        sampling: Sampling,
        sealed_at_ns: u64,
    ) -> u64 {
        let Stored {
            late,
            dataset,
            window,
            ndjson,
            retain_until_ns,
            lock,
        } = object;
        let dataset = Dataset::new(dataset).unwrap();
        let mut writer = ArchiveWriter::new(Vec::new()).unwrap();
        std::io::Write::write_all(&mut writer, ndjson).unwrap();
        let (stored, digest, _frames) = writer.finish().unwrap();
        let key = if late {
            self.late_key(&dataset, &window, &digest.content_sha256)
        } else {
            self.prefix
                .archive_key(&self.origin, &dataset, &window, &digest.content_sha256)
                .unwrap()
        };
        let options = PutOptions {
            sha256: Some(rainlogs_store::Sha256Hash(digest.stored_sha256.0)),
            retain_until: lock.then(|| time_of(retain_until_ns)),
            content_type: Some("application/zstd".into()),
        };
        let outcome = self
            .store
            .put_bytes(
                &ObjectKey::new(key.clone()).unwrap(),
                Bytes::from(stored),
                &options,
            )
            .await
            .unwrap();
        let record = ArchiveRecord {
            dataset: dataset.clone(),
            window,
            method,
            sampling,
            object: ObjectRef {
                key: key.clone(),
                version: outcome.version_id.unwrap_or_default(),
            },
            stored_size: digest.stored_size,
            stored_sha256: digest.stored_sha256,
            content_sha256: digest.content_sha256,
            record_count: digest.record_count,
            retain_until_ns,
        };
        let body = if late {
            EntryBody::Late(record)
        } else {
            EntryBody::Archive(record)
        };
        let index = self.seal(body, sealed_at_ns);
        self.archives.push(StoredArchive {
            index,
            late,
            key,
            dataset: dataset.as_str().to_owned(),
            window,
            digest,
            retain_until_ns,
        });
        index
    }

    /// Writes the index object of `archive` (FORMAT.md §12, rebuilt from its stored bytes) and
    /// seals its `index` entry, as the archiver and sealer do right after the archive's entry.
    pub async fn index(&mut self, archive: &StoredArchive, sealed_at_ns: u64) -> u64 {
        let stored = self
            .store
            .get_bytes(&ObjectKey::new(archive.key.clone()).unwrap())
            .await
            .unwrap();
        let (_, index) = rainlogs_index::index_archive(&stored[..]).unwrap();
        self.index_with(archive, index.encode(), sealed_at_ns).await
    }

    /// Stores `bytes` as the index object of `archive` and seals an `index` entry for them,
    /// whatever they hold (a writer's bug or a compromised writer).
    pub async fn index_with(
        &mut self,
        archive: &StoredArchive,
        bytes: Vec<u8>,
        sealed_at_ns: u64,
    ) -> u64 {
        let key = rainlogs_integrity::layout::index_key(&archive.key).unwrap();
        let sha256 = Sha256Hash::digest(&bytes);
        let options = PutOptions {
            sha256: Some(rainlogs_store::Sha256Hash(sha256.0)),
            retain_until: None,
            content_type: Some("application/octet-stream".into()),
        };
        let size = bytes.len() as u64;
        let outcome = self
            .store
            .put_bytes(
                &ObjectKey::new(key.clone()).unwrap(),
                Bytes::from(bytes),
                &options,
            )
            .await
            .unwrap();
        let target = &self.entries[usize::try_from(archive.index).unwrap()];
        let body = EntryBody::Index(IndexRecord {
            dataset: Dataset::new(&archive.dataset).unwrap(),
            window: archive.window,
            object: ObjectRef {
                key,
                version: outcome.version_id.unwrap_or_default(),
            },
            stored_size: size,
            stored_sha256: sha256,
            target_index: archive.index,
            target_entry_id: target.id,
            retain_until_ns: archive.retain_until_ns,
        });
        self.seal(body, sealed_at_ns)
    }

    pub fn empty(
        &mut self,
        dataset: &str,
        window: Window,
        method: CollectionMethod,
        sealed_at_ns: u64,
    ) -> u64 {
        let body = EntryBody::Empty(EmptyRecord {
            dataset: Dataset::new(dataset).unwrap(),
            window,
            method,
            sampling: Sampling::UNSAMPLED,
        });
        self.seal(body, sealed_at_ns)
    }

    pub fn gap(
        &mut self,
        dataset: &str,
        window: Window,
        method: CollectionMethod,
        reason: GapReason,
        sealed_at_ns: u64,
    ) -> u64 {
        let body = EntryBody::Gap(GapRecord {
            dataset: Dataset::new(dataset).unwrap(),
            window,
            method,
            reason,
        });
        self.seal(body, sealed_at_ns)
    }

    /// Deletes the archive of entry `target` (if `delete`) and seals a prune entry for it.
    pub async fn prune(
        &mut self,
        target: u64,
        pruned_at_ns: u64,
        sealed_at_ns: u64,
        delete: bool,
    ) -> u64 {
        let sealed = &self.entries[target as usize];
        let Some(archive) = sealed.entry.body.archive() else {
            panic!("entry {target} is neither an archive nor a late entry");
        };
        let body = EntryBody::Prune(PruneRecord {
            dataset: archive.dataset.clone(),
            object: archive.object.clone(),
            target_index: target,
            target_entry_id: sealed.id,
            policy: Name::new("retention-30d").unwrap(),
            pruned_at_ns,
        });
        if delete {
            let key = ObjectKey::new(archive.object.key.clone()).unwrap();
            self.store.delete(&key).await.unwrap();
        }
        self.seal(body, sealed_at_ns)
    }

    async fn put_immutable(&self, key: &str, data: Vec<u8>) {
        let options = PutOptions {
            sha256: None,
            retain_until: Some(time_of(self.tlog_retain_until_ns)),
            content_type: None,
        };
        self.store
            .put_bytes(&ObjectKey::new(key).unwrap(), Bytes::from(data), &options)
            .await
            .unwrap();
    }

    /// Writes the tiles for the current size only (a sealer that stops before signing).
    pub async fn write_tiles(&mut self) {
        let tlog = self.tlog_prefix();
        for file in self.tiles.take_tiles().unwrap() {
            self.put_immutable(&format!("{tlog}{}", file.path()), file.data)
                .await;
        }
    }

    /// Publishes the current size as a sealer does: tiles, then a checkpoint signed only after checking
    /// consistency with the previous one, kept under `tlog/checkpoints/<size>`. `tlog/checkpoint` is
    /// written by [`ZoneBuilder::finish`].
    pub async fn publish(&mut self) -> u64 {
        self.write_tiles().await;
        let size = self.tree.size();
        let root = self.tree.root().unwrap();
        let checkpoint = Checkpoint::new(self.origin.clone(), size, root);
        let previous = self
            .published
            .last()
            .map(|(s, r, _)| Checkpoint::new(self.origin.clone(), *s, *r));
        let proof = match &previous {
            Some(prev) => self.tree.consistency_proof(prev.size, size).unwrap(),
            None => Vec::new(),
        };
        let note = sign_consistent_checkpoint(previous.as_ref(), &checkpoint, &proof, &self.signer)
            .unwrap();
        self.put_immutable(&self.history_key(size), note.clone().into_bytes())
            .await;
        self.published.push((size, root, note));
        size
    }

    /// Replaces `tlog/checkpoint` with `note` (delete + create: the store never overwrites).
    pub async fn put_latest(&self, note: &[u8]) {
        let key = ObjectKey::new(self.checkpoint_key()).unwrap();
        self.store.delete(&key).await.unwrap();
        self.store
            .put_bytes(&key, Bytes::copy_from_slice(note), &PutOptions::default())
            .await
            .unwrap();
    }

    /// Publishes if needed and points `tlog/checkpoint` at the newest checkpoint.
    pub async fn finish(&mut self) {
        if self.published.last().map(|p| p.0) != Some(self.tree.size()) {
            self.publish().await;
        }
        let note = self.published.last().unwrap().2.clone();
        self.put_latest(note.as_bytes()).await;
    }

    /// Signs an arbitrary checkpoint body with `key` (for forgeries).
    pub fn sign_with(&self, key: &NoteSigningKey, size: u64, root: Sha256Hash) -> String {
        rainlogs_integrity::sign_checkpoint(&Checkpoint::new(self.origin.clone(), size, root), key)
            .unwrap()
    }

    pub fn size(&self) -> u64 {
        self.tree.size()
    }
}

/// NDJSON lines shaped like Cloudflare http_requests / firewall_events records, distinct per window.
pub fn ndjson(dataset: &str, window: &Window, records: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let step = (window.end_ns() - window.start_ns()) / records as u64;
    for i in 0..records {
        let ts = window.start_ns() + i as u64 * step;
        let line = if dataset == "firewall_events" {
            format!(
                r#"{{"action":"block","clientIP":"203.0.113.{}","datetime":{ts},"rayName":"{:016x}","ruleId":"{:08x}","source":"firewallManaged","sampleInterval":{}}}"#,
                i % 250,
                ts ^ 0x5a5a,
                i * 7919,
                1 + i % 10
            )
        } else {
            format!(
                r#"{{"ClientIP":"198.51.100.{}","ClientRequestHost":"www.example.eu","ClientRequestMethod":"GET","ClientRequestURI":"/api/items/{i}","EdgeResponseStatus":{},"EdgeStartTimestamp":{ts},"RayID":"{:016x}"}}"#,
                i % 250,
                if i % 17 == 0 { 404 } else { 200 },
                ts.rotate_left(13)
            )
        };
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

pub const WINDOW_NS: u64 = 5 * MINUTE_NS;
/// Windows per dataset in the standard zone: 12.5 hours of 5-minute windows.
pub const WINDOWS: u64 = 150;

/// What the standard zone holds, for attacks to aim at.
pub struct StandardZone {
    pub builder: ZoneBuilder,
    /// The archive the fixture legitimately pruned (retain-until long past).
    pub pruned: StoredArchive,
}

impl StandardZone {
    pub fn live_archives(&self) -> Vec<&StoredArchive> {
        self.builder
            .archives
            .iter()
            .filter(|a| a.index != self.pruned.index)
            .collect()
    }
}

/// A realistic zone: a key entry, then 12.5 h of 5-minute windows for `http_requests` (Logpull) and
/// `firewall_events` (GraphQL, per-record sampling) ending just before `now`, as archives, empty windows and
/// gaps; one archive pruned after its retention ran out; a checkpoint published every 16 entries.
/// `lock` gives live archives Object Lock retention (S3 buckets with Object Lock).
pub async fn standard_zone(
    store: Store,
    prefix: &str,
    tenant: &str,
    zone: &str,
    now_ns: u64,
    lock: bool,
) -> StandardZone {
    let mut zb = ZoneBuilder::new(store, prefix, tenant, zone, now_ns);
    let now_s = now_ns / SECOND_NS * SECOND_NS;
    let first_start = now_s - 40 * SECOND_NS - WINDOWS * WINDOW_NS;
    zb.key_entry(first_start);
    let retain = now_s + DAY_NS;
    let mut since_publish = 1;
    let mut pruned_index = None;
    for k in 0..WINDOWS {
        let window = Window::new(
            first_start + k * WINDOW_NS,
            first_start + (k + 1) * WINDOW_NS,
        )
        .unwrap();
        let sealed_at = window.end_ns() + 30 * SECOND_NS;
        // http_requests: an archive every 10th window, a failed window now and then, empty otherwise.
        if k % 10 == 0 {
            let records = 150 + (k as usize % 7) * 20;
            let content = ndjson("http_requests", &window, records);
            if k == 0 {
                // Retention ran out an hour after the window: deletable, so stored without a lock.
                let short = window.end_ns() + HOUR_NS;
                let index = zb
                    .archive(
                        "http_requests",
                        window,
                        CollectionMethod::Logpull,
                        Sampling::UNSAMPLED,
                        &content,
                        short,
                        false,
                        sealed_at,
                    )
                    .await;
                pruned_index = Some(index);
            } else {
                zb.archive(
                    "http_requests",
                    window,
                    CollectionMethod::Logpull,
                    Sampling::UNSAMPLED,
                    &content,
                    retain,
                    lock,
                    sealed_at,
                )
                .await;
            }
        } else if k % 37 == 5 {
            zb.gap(
                "http_requests",
                window,
                CollectionMethod::Logpull,
                GapReason::SourceError,
                sealed_at,
            );
        } else {
            zb.empty(
                "http_requests",
                window,
                CollectionMethod::Logpull,
                sealed_at,
            );
        }
        // firewall_events: sparser archives, one collector outage.
        if k % 25 == 3 {
            let content = ndjson("firewall_events", &window, 40 + k as usize % 11);
            zb.archive(
                "firewall_events",
                window,
                CollectionMethod::Graphql,
                Sampling::PerRecord,
                &content,
                retain,
                lock,
                sealed_at,
            )
            .await;
        } else if k == 40 {
            zb.gap(
                "firewall_events",
                window,
                CollectionMethod::Graphql,
                GapReason::CollectorOutage,
                sealed_at,
            );
        } else {
            zb.empty(
                "firewall_events",
                window,
                CollectionMethod::Graphql,
                sealed_at,
            );
        }
        since_publish += 2;
        if since_publish >= 16 {
            zb.publish().await;
            since_publish = 0;
        }
    }
    let pruned_index = pruned_index.unwrap();
    zb.prune(
        pruned_index,
        now_s - 20 * SECOND_NS,
        now_s - 5 * SECOND_NS,
        true,
    )
    .await;
    zb.finish().await;
    let pruned = zb
        .archives
        .iter()
        .find(|a| a.index == pruned_index)
        .unwrap()
        .clone();
    StandardZone {
        builder: zb,
        pruned,
    }
}

/// Time for attacks to mean "now" consistently with the fixture.
pub fn now_ns() -> u64 {
    ns_of(OffsetDateTime::now_utc())
}

pub const TWO_HOURS: Duration = Duration::from_secs(7200);
