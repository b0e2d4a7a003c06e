//! Every answer equals a brute-force scan of the decompressed archives: the same records, in the
//! same order, nothing missing, over random zones (indexed and unindexed archives, many frames),
//! keys (Ray IDs held and not, addresses, CIDR blocks of both families), time ranges and pages. On
//! the local store and on SeaweedFS (ranged reads).
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use rainlogs_index::{IndexBuilder, IpBlock, RayId};
use rainlogs_integrity::{ArchiveWriter, FrameInfo};
use rainlogs_search::{
    Archived, Found, IndexCache, IndexRef, Key, Position, Query, Searcher, Summary,
};
use rainlogs_store::{Backend, FsStore, ObjectKey, PutOptions, Store};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use sha2::{Digest as _, Sha256};

const T0: u64 = 1_768_485_600_000_000_000;
const MINUTE: u64 = 60_000_000_000;

struct Zone {
    archives: Vec<Archived>,
    /// Each archive's records, in order.
    contents: Vec<Vec<String>>,
    rays: Vec<u64>,
}

fn address(rng: &mut StdRng) -> IpAddr {
    match rng.random_range(0..4) {
        0 => IpAddr::from([203, 0, 113, rng.random_range(0..8)]),
        1 => IpAddr::from([198, 51, rng.random_range(100..104), rng.random()]),
        2 => IpAddr::from([
            0x2001,
            0xdb8,
            rng.random_range(0..3),
            0,
            0,
            0,
            0,
            rng.random(),
        ]),
        _ => IpAddr::from([
            rng.random_range(1..224),
            rng.random(),
            rng.random(),
            rng.random(),
        ]),
    }
}

/// Builds `n` archives of one-minute windows, frames of about 2 KiB, two thirds indexed.
async fn zone(store: &Store, prefix: &str, rng: &mut StdRng, n: u64) -> Zone {
    let rays: Vec<u64> = (0..300).map(|_| rng.random()).collect();
    let mut archives = Vec::new();
    let mut contents = Vec::new();
    for a in 0..n {
        let start = T0 + a * MINUTE;
        let records: Vec<String> = (0..rng.random_range(1..120))
            .map(|_| {
                let ray = rays[rng.random_range(0..rays.len())];
                // Some records are late for their window; some have no time or no address.
                let time = start + rng.random_range(0..MINUTE + MINUTE / 2);
                match rng.random_range(0..20) {
                    0 => format!("{{\"RayID\":\"{ray:016x}\",\"Note\":\"no time\"}}"),
                    1 => format!("{{\"EdgeStartTimestamp\":{time},\"RayID\":\"{ray:016x}\"}}"),
                    _ => format!(
                        "{{\"ClientIP\":\"{}\",\"EdgeStartTimestamp\":{time},\"RayID\":\"{ray:016x}\",\"Pad\":\"{}\"}}",
                        address(rng),
                        "x".repeat(rng.random_range(0..60))
                    ),
                }
            })
            .collect();
        let frames = std::sync::Arc::new(std::sync::Mutex::new(IndexBuilder::default()));
        let observer = frames.clone();
        let mut writer = ArchiveWriter::with_options(Vec::new(), 3, 2048)
            .unwrap()
            .observe_frames(Box::new(move |frame: &FrameInfo, content: &[u8]| {
                observer.lock().unwrap().add(frame, content);
            }));
        for record in &records {
            std::io::Write::write_all(&mut writer, format!("{record}\n").as_bytes()).unwrap();
        }
        let (stored, digest, _) = writer.finish().unwrap();
        let key = format!(
            "{prefix}/http_requests/{a:06}-{}.ndjson.zst",
            &digest.content_sha256.to_hex()[..16]
        );
        put(store, &key, stored.clone()).await;
        let index = if rng.random_bool(0.67) {
            let builder = std::mem::take(&mut *frames.lock().unwrap());
            let bytes = builder
                .finish(digest.stored_sha256.0, digest.content_sha256.0)
                .encode();
            let index_key = rainlogs_integrity::layout::index_key(&key).unwrap();
            put(store, &index_key, bytes.clone()).await;
            Some(IndexRef {
                key: index_key,
                stored_size: bytes.len() as u64,
                stored_sha256: Sha256::digest(&bytes).into(),
            })
        } else {
            None
        };
        archives.push(Archived {
            entry_index: 2 * a + 1,
            entry_id: format!("{a:064x}"),
            dataset: "http_requests".into(),
            window: (start, start + MINUTE),
            key,
            stored_size: digest.stored_size,
            stored_sha256: digest.stored_sha256.0,
            content_sha256: digest.content_sha256.0,
            index,
        });
        contents.push(records);
    }
    Zone {
        archives,
        contents,
        rays,
    }
}

async fn put(store: &Store, key: &str, bytes: Vec<u8>) {
    let options = PutOptions {
        sha256: Some(rainlogs_store::Sha256Hash(Sha256::digest(&bytes).into())),
        retain_until: None,
        content_type: None,
    };
    store
        .put_bytes(&ObjectKey::new(key).unwrap(), bytes.into(), &options)
        .await
        .unwrap();
}

/// The records a scan of every archive finds, in log order.
fn brute_force(zone: &Zone, query: &Query) -> Vec<(Position, String)> {
    zone.archives
        .iter()
        .zip(&zone.contents)
        .flat_map(|(archive, records)| {
            records
                .iter()
                .enumerate()
                .filter(|(_, record)| query.matches(record.as_bytes()))
                .map(move |(i, record)| {
                    let position = Position {
                        entry_index: archive.entry_index,
                        record: i as u64,
                    };
                    (position, record.clone())
                })
        })
        .collect()
}

async fn run(
    searcher: &Searcher,
    zone: &Zone,
    query: &Query,
    limit: u64,
    after: Option<Position>,
) -> (Vec<Found>, Summary) {
    let (sender, mut receiver) = tokio::sync::mpsc::channel(1024);
    let archives = zone.archives.clone();
    let searcher = searcher.clone();
    let query = *query;
    let task = tokio::spawn(async move {
        searcher
            .search(&archives, &query, limit, after, sender)
            .await
            .unwrap()
    });
    let mut found = Vec::new();
    while let Some(hit) = receiver.recv().await {
        found.push(hit);
    }
    (found, task.await.unwrap())
}

fn random_query(rng: &mut StdRng, zone: &Zone) -> Query {
    let key = match rng.random_range(0..6) {
        0 => Key::Ray(RayId::parse(&format!("{:016x}", rng.random::<u64>())).unwrap()),
        1 | 2 => Key::Ray(
            RayId::parse(&format!(
                "{:016x}",
                zone.rays[rng.random_range(0..zone.rays.len())]
            ))
            .unwrap(),
        ),
        3 => Key::Client(IpBlock::parse(&address(rng).to_string()).unwrap()),
        4 => Key::Client(
            IpBlock::parse(
                [
                    "203.0.113.0/24",
                    "198.51.0.0/16",
                    "198.51.100.0/23",
                    "2001:db8:1::/48",
                    "2001:db8::/32",
                    "203.0.113.4/30",
                ][rng.random_range(0..6)],
            )
            .unwrap(),
        ),
        _ => Key::Client(IpBlock::parse("10.0.0.0/8").unwrap()),
    };
    let time = rng.random_bool(0.5).then(|| {
        let start = T0 + rng.random_range(0..40) * MINUTE + rng.random_range(0..MINUTE);
        (start, start + rng.random_range(1..20) * MINUTE)
    });
    Query::new(key, time).unwrap()
}

async fn compare_with_brute_force(store: Store, prefix: &str, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let zone = zone(&store, prefix, &mut rng, 40).await;
    let cache_dir = tempfile::tempdir().unwrap();
    let searcher = Searcher::new(
        store.clone(),
        IndexCache::in_dir(cache_dir.path(), 1 << 20).unwrap(),
    );
    let mut total_hits = 0;
    let mut frames_skipped = false;
    for _ in 0..60 {
        let query = random_query(&mut rng, &zone);
        let expected = brute_force(&zone, &query);
        let (found, summary) = run(&searcher, &zone, &query, u64::MAX, None).await;
        let got: Vec<(Position, String)> = found
            .iter()
            .map(|f| (f.position, String::from_utf8(f.line.clone()).unwrap()))
            .collect();
        assert_eq!(got, expected, "{query:?}");
        assert_eq!(summary.hits, expected.len() as u64);
        assert!(
            summary.index_problems.is_empty(),
            "{:?}",
            summary.index_problems
        );
        total_hits += expected.len();
        frames_skipped |=
            summary.frames_read < zone.archives.iter().filter(|a| a.index.is_some()).count() as u64;
        // Pages of a random size, each continuing after the last, give the same records.
        let limit = rng.random_range(1..5);
        let mut pages = Vec::new();
        let mut after = None;
        loop {
            let (page, summary) = run(&searcher, &zone, &query, limit, after).await;
            pages.extend(page.into_iter().map(|f| f.position));
            match summary.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let positions: Vec<Position> = expected.iter().map(|(p, _)| *p).collect();
        assert_eq!(pages, positions, "pages of {limit}: {query:?}");
    }
    assert!(
        total_hits > 100,
        "{total_hits} hits: the queries should find records"
    );
    assert!(frames_skipped, "indexes never ruled a frame out");
}

#[tokio::test]
async fn answers_equal_a_brute_force_scan_on_the_local_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::Single(Backend::Fs(FsStore::open(dir.path()).await.unwrap()));
    for seed in 0..3 {
        compare_with_brute_force(store.clone(), &format!("z{seed}"), seed).await;
    }
}

#[tokio::test]
async fn answers_equal_a_brute_force_scan_on_seaweedfs_with_ranged_reads() {
    let s3 = rainlogs_testkit::s3::dev_bucket("search", false).await;
    let store = Store::Single(Backend::S3(s3));
    let prefix = format!("p{}", rand::random::<u32>());
    compare_with_brute_force(store, &prefix, 7).await;
}

/// A planted or edited index never changes an answer: the archive is read whole instead and the
/// problem is reported; an edited archive frame is refused.
#[tokio::test]
async fn a_bad_index_costs_a_whole_read_and_a_bad_frame_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::Single(Backend::Fs(FsStore::open(dir.path()).await.unwrap()));
    let mut rng = StdRng::seed_from_u64(11);
    let mut zone = zone(&store, "bad", &mut rng, 6).await;
    let searcher = Searcher::new(store.clone(), IndexCache::none());
    let query = Query::new(Key::Client(IpBlock::parse("203.0.113.0/24").unwrap()), None).unwrap();
    let expected = brute_force(&zone, &query);
    // Every index replaced by another archive's (valid, but not this archive's) index bytes.
    let with_index: Vec<usize> = (0..zone.archives.len())
        .filter(|&i| zone.archives[i].index.is_some())
        .collect();
    assert!(with_index.len() >= 2);
    let first = zone.archives[with_index[0]].index.clone().unwrap();
    let other = zone.archives[with_index[1]].index.clone().unwrap();
    let other_bytes = std::fs::read(dir.path().join(&other.key)).unwrap();
    std::fs::write(dir.path().join(&first.key), &other_bytes).unwrap();
    let (found, summary) = run(&searcher, &zone, &query, u64::MAX, None).await;
    assert_eq!(
        found.iter().map(|f| f.position).collect::<Vec<_>>(),
        expected.iter().map(|(p, _)| *p).collect::<Vec<_>>()
    );
    assert_eq!(
        summary.index_problems.len(),
        1,
        "{:?}",
        summary.index_problems
    );
    // The log itself naming the swapped bytes: the index describes another archive.
    zone.archives[with_index[0]].index = Some(IndexRef {
        stored_sha256: Sha256::digest(&other_bytes).into(),
        stored_size: other_bytes.len() as u64,
        ..first
    });
    let (found, summary) = run(&searcher, &zone, &query, u64::MAX, None).await;
    assert_eq!(found.len(), expected.len());
    assert!(summary.index_problems[0].contains("describes another archive"));

    // A flipped byte in an indexed archive's frame.
    let target = &zone.archives[with_index[1]];
    let path = dir.path().join(&target.key);
    let mut bytes = std::fs::read(&path).unwrap();
    // Inside the first frame, which holds the record searched for.
    bytes[20] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    let (sender, _receiver) = tokio::sync::mpsc::channel(1 << 16);
    let ray = zone.contents[with_index[1]][0].clone();
    let ray = ray.split("\"RayID\":\"").nth(1).unwrap()[..16].to_owned();
    let query = Query::new(Key::Ray(RayId::parse(&ray).unwrap()), None).unwrap();
    let result = searcher
        .search(&zone.archives, &query, u64::MAX, None, sender)
        .await;
    assert!(result.is_err(), "an edited frame was served");
}
