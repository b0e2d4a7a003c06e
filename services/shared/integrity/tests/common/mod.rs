//! Fixed sample data shared by the integration tests and the golden files.
#![allow(dead_code, clippy::unwrap_used)]

use rainlogs_integrity::*;

/// 2026-01-15T14:00:00Z in unix nanoseconds.
pub const T0: u64 = 1_768_485_600_000_000_000;
pub const MINUTE: u64 = 60_000_000_000;
pub const DAY: u64 = 86_400_000_000_000;

pub const TEST_KEY_NAME: &str = "rainlogs.test/sealer";

/// Deterministic test signing key: seed = SHA-256("rainlogs test key v1").
pub fn test_key() -> NoteSigningKey {
    let seed = Sha256Hash::digest(b"rainlogs test key v1");
    NoteSigningKey::from_seed(TEST_KEY_NAME, &seed.0).unwrap()
}

/// A second, untrusted key for rejection tests.
pub fn other_key() -> NoteSigningKey {
    let seed = Sha256Hash::digest(b"rainlogs other key v1");
    NoteSigningKey::from_seed(TEST_KEY_NAME, &seed.0).unwrap()
}

pub fn origin() -> Origin {
    Origin::parse("rainlogs/acme/0123456789abcdef0123456789abcdef").unwrap()
}

pub fn prefix() -> BucketPrefix {
    BucketPrefix::new("eu-archive").unwrap()
}

pub fn dataset() -> Dataset {
    Dataset::new("http_requests").unwrap()
}

pub fn window(n: u64) -> Window {
    Window::new(T0 + n * MINUTE, T0 + (n + 1) * MINUTE).unwrap()
}

pub const SAMPLE_CONTENT: &[u8] = b"{\"RayID\":\"8f0a1b2c3d4e5f60\",\"EdgeStartTimestamp\":1768485600123456789}\n{\"RayID\":\"8f0a1b2c3d4e5f61\",\"EdgeStartTimestamp\":1768485601123456789}\n";

/// The archive body of window 0 (stored hash is a fixed stand-in so no zstd version is frozen).
pub fn archive_body() -> EntryBody {
    let content_sha256 = Sha256Hash::digest(SAMPLE_CONTENT);
    let key = prefix()
        .archive_key(&origin(), &dataset(), &window(0), &content_sha256)
        .unwrap();
    EntryBody::Archive(ArchiveRecord {
        dataset: dataset(),
        window: window(0),
        method: CollectionMethod::Logpull,
        sampling: Sampling::UNSAMPLED,
        object: ObjectRef {
            key,
            version: "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY".into(),
        },
        stored_size: 123,
        stored_sha256: Sha256Hash::digest(b"stand-in for the stored object bytes"),
        content_sha256,
        record_count: 2,
        retain_until_ns: T0 + 400 * DAY,
    })
}

pub fn empty_body() -> EntryBody {
    EntryBody::Empty(EmptyRecord {
        dataset: dataset(),
        window: window(1),
        method: CollectionMethod::Logpull,
        sampling: Sampling::UNSAMPLED,
    })
}

pub fn gap_body() -> EntryBody {
    EntryBody::Gap(GapRecord {
        dataset: dataset(),
        window: window(2),
        method: CollectionMethod::Logpull,
        reason: GapReason::SourceError,
    })
}

pub fn key_body() -> EntryBody {
    EntryBody::Key(KeyRecord {
        verifier_key: test_key().verifier_key(),
    })
}

/// Seals the sample log: key, archive, empty, gap, archive (GraphQL, sampled), prune of entry 1.
pub fn sample_log() -> Vec<SealedEntry> {
    let mut chain = Chain::new(origin());
    let mut out = Vec::new();
    let sealed_at = |i: u64| T0 + (i + 2) * MINUTE + 5_000_000_000;
    out.push(chain.seal(key_body(), sealed_at(0)).unwrap());
    out.push(chain.seal(archive_body(), sealed_at(1)).unwrap());
    out.push(chain.seal(empty_body(), sealed_at(2)).unwrap());
    out.push(chain.seal(gap_body(), sealed_at(3)).unwrap());
    let content = b"{\"action\":\"block\",\"sampleInterval\":10}\n";
    let content_sha256 = Sha256Hash::digest(content);
    let firewall = Dataset::new("firewall_events").unwrap();
    let key = prefix()
        .archive_key(&origin(), &firewall, &window(0), &content_sha256)
        .unwrap();
    out.push(
        chain
            .seal(
                EntryBody::Archive(ArchiveRecord {
                    dataset: firewall,
                    window: window(0),
                    method: CollectionMethod::Graphql,
                    sampling: Sampling::PerRecord,
                    object: ObjectRef {
                        key,
                        version: String::new(),
                    },
                    stored_size: 77,
                    stored_sha256: Sha256Hash::digest(b"stand-in for the firewall object"),
                    content_sha256,
                    record_count: 1,
                    retain_until_ns: T0 + 30 * DAY,
                }),
                sealed_at(4),
            )
            .unwrap(),
    );
    let target = &out[1];
    let EntryBody::Archive(archived) = &target.entry.body else {
        unreachable!()
    };
    let prune = EntryBody::Prune(PruneRecord {
        dataset: archived.dataset.clone(),
        object: archived.object.clone(),
        target_index: target.entry.index,
        target_entry_id: target.id,
        policy: Name::new("retention-400d").unwrap(),
        pruned_at_ns: archived.retain_until_ns + MINUTE,
    });
    out.push(
        chain
            .seal(prune, archived.retain_until_ns + 2 * MINUTE)
            .unwrap(),
    );
    out
}

/// Records of window 1 (sealed `empty` in the sample log) that reached RainLogs after that window was sealed.
pub const LATE_CONTENT: &[u8] = b"{\"RayID\":\"8f0a1b2c3d4e5f70\",\"EdgeStartTimestamp\":1768485661123456789}\n{\"RayID\":\"8f0a1b2c3d4e5f71\",\"EdgeStartTimestamp\":1768485702123456789}\n";

/// The key of a late object (FORMAT.md §2): the archive key of the same window and content with `.late-`
/// where an archive key has `-` before the object id.
pub fn late_key(dataset: &Dataset, window: &Window, content_sha256: &Sha256Hash) -> String {
    let id = rainlogs_integrity::layout::object_id(&origin(), dataset, window, content_sha256);
    let archive = prefix()
        .archive_key(&origin(), dataset, window, content_sha256)
        .unwrap();
    let stem = archive.strip_suffix(&format!("-{id}.ndjson.zst")).unwrap();
    let late = format!("{stem}.late-{id}.ndjson.zst");
    assert_eq!(
        prefix()
            .late_key(&origin(), dataset, window, content_sha256)
            .unwrap(),
        late,
        "the crate's late key is the documented one"
    );
    late
}

/// The late entry of the examples: [`LATE_CONTENT`] for window 1 of `http_requests`, pushed by Logpush
/// (stored hash and size are fixed stand-ins, as in [`archive_body`]).
pub fn late_body() -> EntryBody {
    let content_sha256 = Sha256Hash::digest(LATE_CONTENT);
    EntryBody::Late(ArchiveRecord {
        dataset: dataset(),
        window: window(1),
        method: CollectionMethod::Logpush,
        sampling: Sampling::UNSAMPLED,
        object: ObjectRef {
            key: late_key(&dataset(), &window(1), &content_sha256),
            version: "Qm7Vt2xLp9RcW4sEa8JdN1uFh6KyB3oZg".into(),
        },
        stored_size: 98,
        stored_sha256: Sha256Hash::digest(b"stand-in for the late object bytes"),
        content_sha256,
        record_count: 2,
        retain_until_ns: T0 + 800 * DAY,
    })
}

/// The late entry sealed after the sample log (index 6, after the prune entry); like the erasure
/// example, it is not part of the sample log, so the sample's tree and checkpoint stay as they are.
pub fn late_after_sample_log() -> SealedEntry {
    let log = sample_log();
    let last = log.last().unwrap();
    Chain::after(last)
        .seal(late_body(), last.entry.sealed_at_ns + MINUTE)
        .unwrap()
}

/// The shortfall entry of the examples: window 1 of `http_requests`, sealed `empty` and given the two
/// records of [`late_body`] afterwards, for which the source counted 40 requests.
pub fn shortfall_body() -> EntryBody {
    EntryBody::Shortfall(ShortfallRecord {
        dataset: dataset(),
        window: window(1),
        method: CollectionMethod::Logpush,
        source_count: 40,
    })
}

/// The shortfall entry sealed after [`late_after_sample_log`] (index 7).
pub fn shortfall_after_late() -> SealedEntry {
    let late = late_after_sample_log();
    Chain::after(&late)
        .seal(shortfall_body(), late.entry.sealed_at_ns + 5 * MINUTE)
        .unwrap()
}

/// Records of window 3 of `http_requests`, with client addresses, for the index example (FORMAT.md §12).
pub const INDEXED_CONTENT: &[u8] = b"{\"ClientIP\":\"203.0.113.7\",\"EdgeStartTimestamp\":1768485780123456789,\"RayID\":\"8f0a1b2c3d4e5f80\"}\n{\"ClientIP\":\"203.0.113.9\",\"EdgeStartTimestamp\":1768485781123456789,\"RayID\":\"8f0a1b2c3d4e5f81\"}\n{\"ClientIP\":\"2001:db8:5:1::7\",\"EdgeStartTimestamp\":1768485790123456789,\"RayID\":\"8f0a1b2c3d4e5f82\"}\n";
/// Size of the stand-in stored object of [`INDEXED_CONTENT`]: one frame.
pub const INDEXED_STORED_SIZE: u64 = 180;

/// The archive of [`INDEXED_CONTENT`], sealed after [`shortfall_after_late`] (index 8).
pub fn indexed_archive() -> SealedEntry {
    let content_sha256 = Sha256Hash::digest(INDEXED_CONTENT);
    let body = EntryBody::Archive(ArchiveRecord {
        dataset: dataset(),
        window: window(3),
        method: CollectionMethod::Logpull,
        sampling: Sampling::UNSAMPLED,
        object: ObjectRef {
            key: prefix()
                .archive_key(&origin(), &dataset(), &window(3), &content_sha256)
                .unwrap(),
            version: String::new(),
        },
        stored_size: INDEXED_STORED_SIZE,
        stored_sha256: Sha256Hash::digest(b"stand-in for the indexed archive bytes"),
        content_sha256,
        record_count: 3,
        retain_until_ns: T0 + 400 * DAY,
    });
    let shortfall = shortfall_after_late();
    Chain::after(&shortfall)
        .seal(body, shortfall.entry.sealed_at_ns + MINUTE)
        .unwrap()
}

/// The index object of [`indexed_archive`]: one frame, the whole object.
pub fn index_object() -> Vec<u8> {
    let archive = indexed_archive();
    let record = archive.entry.body.archive().unwrap();
    let mut builder = rainlogs_index::IndexBuilder::default();
    builder.add_frame(
        rainlogs_index::FrameLocation {
            stored_offset: 0,
            stored_len: INDEXED_STORED_SIZE,
            content_offset: 0,
            content_len: INDEXED_CONTENT.len() as u64,
            first_record: 0,
        },
        INDEXED_CONTENT,
    );
    builder
        .finish(record.stored_sha256.0, record.content_sha256.0)
        .encode()
}

/// The index entry of [`index_object`], right after its archive's entry (index 9).
pub fn index_after_archive() -> SealedEntry {
    let archive = indexed_archive();
    let record = archive.entry.body.archive().unwrap();
    let bytes = index_object();
    let body = EntryBody::Index(IndexRecord {
        dataset: record.dataset.clone(),
        window: record.window,
        object: ObjectRef {
            key: rainlogs_integrity::layout::index_key(&record.object.key).unwrap(),
            version: String::new(),
        },
        stored_size: bytes.len() as u64,
        stored_sha256: Sha256Hash::digest(&bytes),
        target_index: archive.entry.index,
        target_entry_id: archive.id,
        retain_until_ns: record.retain_until_ns,
    });
    Chain::after(&archive)
        .seal(body, archive.entry.sealed_at_ns + 1_000_000)
        .unwrap()
}

/// Leaves that look like entries of various sizes, for Merkle cross-checks.
pub fn synthetic_leaves(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut leaf = format!("leaf {i} ").into_bytes();
            leaf.extend(std::iter::repeat_n(b'x', i % 97));
            leaf
        })
        .collect()
}
