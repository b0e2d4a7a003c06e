//! `rainlogs index rebuild` against the real process: archives sealed the way an archiver did
//! before indexes existed (no index object, no `index` entry) get their index object and their
//! `index` entry; the log then verifies with every archive indexed (deep: each index is the one
//! its archive's content gives); a second run finds nothing to do.

use std::time::{Duration, Instant};

use rainlogs_bus::{connect, provision};
use rainlogs_integrity::{ArchiveWriter, Dataset, EntryBody, Window as LogWindow};
use rainlogs_schemas::events::{ArchiveStored, Method, Window};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_store::{ObjectKey, PutOptions};
use rainlogs_testkit::{NatsServer, TestDatabase};
use uuid::Uuid;

mod common;
use common::{Bucket, chain_entries, print_logs, rainlogs_command, spawn_services};

const TENANT: &str = "acme";
const ZONE: &str = "7c0e105f4ecef8ad9ca31a8372d0c353";

fn content(n: i64) -> Vec<u8> {
    (0..400u64)
        .flat_map(|i| {
            format!(
                "{{\"ClientIP\":\"198.51.100.{}\",\"EdgeStartTimestamp\":{},\"RayID\":\"{n:04x}{i:012x}\"}}\n",
                i % 250,
                1_768_485_600_000_000_000u64 + u64::try_from(n).unwrap_or(0) * 60_000_000_000 + i * 7_919,
            )
            .into_bytes()
        })
        .collect()
}

fn rebuild(nats: &str, db: &str, data: &std::path::Path) -> (bool, String) {
    let output = rainlogs_command(nats, db, data)
        .args(["index", "rebuild"])
        .output()
        .expect("rainlogs index rebuild");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn archives_sealed_before_indexes_get_them_from_a_rebuild() {
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let data = tempfile::tempdir().expect("dir");
    let bus = connect(&nats.url).await.expect("connect");
    provision(&bus, 1).await.expect("provision");
    let mut process = spawn_services(
        &nats.url,
        &db.url,
        data.path(),
        0,
        &["sealer", "query-api"],
        &[],
    );
    process.wait_ready().await;
    let bucket = Bucket::open(data.path(), TENANT, ZONE).await;
    let dataset = Dataset::new("http_requests").expect("dataset");

    // Three windows archived as an archiver before indexes did: the object, and an
    // `archive.stored` without an index.
    for n in 0..3i64 {
        let window = Window {
            start: 1_768_485_600 + n * 60,
            end: 1_768_485_660 + n * 60,
        };
        let mut writer = ArchiveWriter::new(Vec::new()).expect("writer");
        std::io::Write::write_all(&mut writer, &content(n)).expect("write");
        let (stored, digest, _) = writer.finish().expect("finish");
        let log_window = LogWindow::new(
            u64::try_from(window.start).expect("start") * 1_000_000_000,
            u64::try_from(window.end).expect("end") * 1_000_000_000,
        )
        .expect("window");
        let key = bucket
            .prefix
            .archive_key(
                &bucket.origin,
                &dataset,
                &log_window,
                &digest.content_sha256,
            )
            .expect("key");
        let options = PutOptions {
            sha256: Some(rainlogs_store::Sha256Hash(digest.stored_sha256.0)),
            retain_until: None,
            content_type: None,
        };
        bucket
            .store
            .put_bytes(&ObjectKey::new(&key).expect("key"), stored.into(), &options)
            .await
            .expect("put");
        let envelope = Envelope::new(
            TENANT,
            Some(ZONE.into()),
            Actor::service("archiver"),
            Event::ArchiveStored(ArchiveStored {
                dataset: dataset.to_string(),
                window,
                attempt: Uuid::now_v7(),
                object_key: key,
                object_version: None,
                stored_size: digest.stored_size,
                stored_sha256: digest.stored_sha256.0.to_vec(),
                content_sha256: digest.content_sha256.0.to_vec(),
                records: digest.record_count,
                event_time_min_ns: None,
                event_time_max_ns: None,
                method: Method::Logpull,
                sample_interval: 1,
                fields: "default".into(),
                retain_until: 1_900_000_000,
                late: false,
                index: None,
            }),
        );
        bus.publish(&subjects::archive(ZONE), &envelope)
            .await
            .expect("publish");
    }
    let wait_for = |size: u64, what: &'static str| {
        let bucket = &bucket;
        let data = data.path();
        async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            while bucket.checkpoint_size().await < size {
                if Instant::now() >= deadline {
                    print_logs(data, 0);
                    panic!(
                        "{what}: checkpoint {} of {size}",
                        bucket.checkpoint_size().await
                    );
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_for(3, "three archives sealed").await;
    let report = bucket.verify().await;
    assert_eq!(report.exit_code(), 0, "{}", report.to_human());
    assert!(report.has(rainlogs_verify::Reason::ArchivesUnindexed));

    // The projection has caught up once the rebuild sees all three.
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let (ok, text) = rebuild(&nats.url, &db.url, data.path());
        assert!(ok, "{text}");
        if !text.contains("0 archives have no index") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the projection never showed the archives"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(text.contains("3 archives have no index"), "{text}");
    assert!(
        text.contains("3 of 3 archives done (3 indexed, 0 failed"),
        "{text}"
    );
    wait_for(6, "three index entries sealed").await;
    let entries = chain_entries(&bus, ZONE).await;
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind().as_str()).collect();
    assert_eq!(
        kinds,
        ["archive", "archive", "archive", "index", "index", "index"]
    );
    for entry in &entries[3..] {
        let EntryBody::Index(index) = &entry.body else {
            unreachable!()
        };
        let target = entries[usize::try_from(index.target_index).expect("index")]
            .body
            .archive()
            .expect("an archive");
        assert_eq!(
            rainlogs_integrity::layout::index_key(&target.object.key).as_deref(),
            Some(index.object.key.as_str())
        );
    }
    let mut options =
        rainlogs_verify::VerifyOptions::new(TENANT, ZONE, vec![bucket.verifier.clone()])
            .expect("options");
    options.deep = true;
    let report = rainlogs_verify::verify(&bucket.store, &options).await;
    assert_eq!(report.exit_code(), 0, "{}", report.to_human());
    assert_eq!(report.summary.indexes_checked, 3, "{}", report.to_human());
    assert!(!report.has(rainlogs_verify::Reason::ArchivesUnindexed));

    // Once the projection shows the index entries, there is nothing left to do; a request
    // repeated before that is logged once.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, text) = rebuild(&nats.url, &db.url, data.path());
        assert!(ok, "{text}");
        if text.contains("0 archives have no index") {
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(chain_entries(&bus, ZONE).await.len(), 6);
    process.kill();
}
