//! Primary + secondary: one provider down must neither lose an archive nor stop writes, and repair must fill
//! the gap once it is back. The "down" provider is an S3 endpoint on a closed loopback port; "back" is a
//! forwarder opened on that same port to the real SeaweedFS.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::{Generated, MIB, config, endpoint, hash_all, new_bucket, writer_credentials};
use futures::TryStreamExt;
use rainlogs_store::{
    Backend, CheckStatus, FileRepairQueue, FsStore, KeyRepair, ObjectKey, Presence, PutOptions,
    Replicated, S3Store, Side, Store, StoreError,
};
use time::OffsetDateTime;
use tokio::net::{TcpListener, TcpStream};

fn key(text: &str) -> ObjectKey {
    ObjectKey::new(text).unwrap()
}

/// A loopback port nothing listens on (bound once to reserve a number, then closed).
async fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

fn store_on_port(bucket: &str, port: u16) -> S3Store {
    let mut config = config(
        bucket,
        format!("http://127.0.0.1:{port}"),
        writer_credentials(),
    );
    config.connect_timeout = std::time::Duration::from_secs(2);
    S3Store::new(config).unwrap()
}

/// Brings a dead port back to life by forwarding it to the real S3 endpoint.
async fn revive(port: u16) {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the dead port is free to revive");
    let target: SocketAddr = endpoint()
        .trim_start_matches("http://")
        .parse()
        .expect("endpoint is host:port");
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

#[tokio::test]
async fn secondary_down_keeps_accepting_writes_and_repair_later_fills_the_gap() {
    let primary = new_bucket("repl-primary", true).await;
    let secondary_direct = new_bucket("repl-secondary", true).await;
    let port = dead_port().await;
    let secondary = store_on_port(&secondary_direct.config().bucket, port);
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(FileRepairQueue::new(dir.path().join("repair.jsonl")));
    let replicated = Replicated::new(
        Backend::S3(primary.clone()),
        Backend::S3(secondary),
        queue.clone(),
    );
    let store = Store::from(replicated);

    let options = PutOptions {
        retain_until: Some(OffsetDateTime::now_utc() + time::Duration::seconds(120)),
        ..PutOptions::default()
    };
    let small = key("rl/t1/z1/http_requests/2026/01/02/03/0300-a.ndjson.zst");
    let large = key("rl/t1/z1/http_requests/2026/01/02/04/0400-b.ndjson.zst");
    let large_len = 12 * MIB as u64 + 7;
    let first = store
        .put_bytes(&small, "small archive".into(), &options)
        .await
        .unwrap();
    let second = store
        .put_stream(&large, Generated::new(large_len, 31), &options)
        .await
        .unwrap();
    for outcome in [&first, &second] {
        assert_eq!(outcome.presence, Presence::Stored);
        assert_eq!(
            outcome.pending_repair,
            Some(Side::Secondary),
            "the missed side must be reported"
        );
    }
    assert_eq!(second.sha256, Generated::sha256(large_len, 31));
    let pending = queue.pending().await.unwrap();
    let queued: Vec<(String, Side)> = pending
        .iter()
        .map(|entry| (entry.key.to_string(), entry.missing_on))
        .collect();
    assert_eq!(
        queued,
        [
            (small.to_string(), Side::Secondary),
            (large.to_string(), Side::Secondary)
        ]
    );
    assert!(
        !pending[0]
            .reason
            .contains(&writer_credentials().secret_access_key),
        "no secrets in the queue"
    );

    // Reads keep working from the provider that answers.
    assert_eq!(store.get_bytes(&small).await.unwrap(), "small archive");

    // Still down: repair fails for now and keeps the entries.
    let Store::Replicated(replicated) = &store else {
        unreachable!()
    };
    let report = replicated.repair_queue(&queue).await.unwrap();
    assert_eq!(report.failed.len(), 2, "{report:?}");
    assert_eq!(
        queue.pending().await.unwrap().len(),
        2,
        "unrepaired entries stay queued"
    );

    revive(port).await;
    let report = replicated.repair_queue(&queue).await.unwrap();
    assert!(
        report.failed.is_empty() && report.incidents.is_empty(),
        "{report:?}"
    );
    assert_eq!(
        report.copied,
        [
            (small.clone(), Side::Secondary),
            (large.clone(), Side::Secondary)
        ]
    );
    assert!(
        queue.pending().await.unwrap().is_empty(),
        "repaired entries leave the queue"
    );

    for object in [&small, &large] {
        let source = primary.head(object).await.unwrap().unwrap();
        let copy = secondary_direct
            .head(object)
            .await
            .unwrap()
            .expect("repair copied the object");
        assert_eq!(copy.size, source.size);
        assert_eq!(
            copy.lock, source.lock,
            "the copy keeps the original COMPLIANCE retain-until"
        );
        let (source_hash, _) = hash_all(primary.get(object).await.unwrap()).await;
        let (copy_hash, _) = hash_all(secondary_direct.get(object).await.unwrap()).await;
        assert_eq!(copy_hash, source_hash);
    }

    let report = replicated.repair_prefix("rl/").await.unwrap();
    assert_eq!(
        (report.consistent, report.copied.len()),
        (2, 0),
        "{report:?}"
    );
}

#[tokio::test]
async fn repair_by_listing_finds_objects_written_while_no_queue_saw_them() {
    let primary = new_bucket("scan-primary", false).await;
    let secondary = new_bucket("scan-secondary", false).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(FileRepairQueue::new(dir.path().join("repair.jsonl")));
    // Written to one side behind the replicated store's back (as after a lost queue).
    primary
        .put_bytes(
            &key("rl/t1/z1/only-primary"),
            "p".into(),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    secondary
        .put_bytes(
            &key("rl/t1/z1/only-secondary"),
            "s".into(),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let replicated = Replicated::new(
        Backend::S3(primary.clone()),
        Backend::S3(secondary.clone()),
        queue,
    );
    let report = replicated.repair_prefix("rl/").await.unwrap();
    let mut copied: Vec<(String, Side)> = report
        .copied
        .iter()
        .map(|(key, side)| (key.to_string(), *side))
        .collect();
    copied.sort();
    assert_eq!(
        copied,
        [
            ("rl/t1/z1/only-primary".to_string(), Side::Secondary),
            ("rl/t1/z1/only-secondary".to_string(), Side::Primary)
        ]
    );
    assert_eq!(
        secondary
            .get_bytes(&key("rl/t1/z1/only-primary"))
            .await
            .unwrap(),
        "p"
    );
    assert_eq!(
        primary
            .get_bytes(&key("rl/t1/z1/only-secondary"))
            .await
            .unwrap(),
        "s"
    );
}

#[tokio::test]
async fn primary_down_writes_and_reads_go_to_the_secondary() {
    let dir = tempfile::tempdir().unwrap();
    let primary = store_on_port("unreachable", dead_port().await);
    let secondary = FsStore::open(dir.path().join("archive")).await.unwrap();
    let queue = Arc::new(FileRepairQueue::new(dir.path().join("repair.jsonl")));
    let store = Store::from(Replicated::new(
        Backend::S3(primary),
        Backend::Fs(secondary),
        queue.clone(),
    ));

    let object = key("rl/t1/z1/a");
    let outcome = store
        .put_bytes(&object, "kept".into(), &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(outcome.pending_repair, Some(Side::Primary));
    assert_eq!(store.get_bytes(&object).await.unwrap(), "kept");
    assert_eq!(
        store.head(&object).await.unwrap().map(|head| head.size),
        Some(4)
    );
    let listed: Vec<String> = store
        .list("rl/")
        .map_ok(|object| object.key)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        listed,
        [object.to_string()],
        "listing falls back to the secondary"
    );

    let posture = store.probe().await;
    assert_eq!(posture.providers.len(), 2);
    assert_eq!(
        posture.providers[0].conditional_put.status,
        CheckStatus::Unknown
    );
    assert!(
        posture
            .warnings
            .iter()
            .any(|warning| warning.starts_with("primary ")),
        "{:?}",
        posture.warnings
    );
}

#[tokio::test]
async fn both_providers_down_is_a_retryable_failure() {
    let queue = Arc::new(FileRepairQueue::new(
        tempfile::tempdir().unwrap().path().join("repair.jsonl"),
    ));
    let store = Store::from(Replicated::new(
        Backend::S3(store_on_port("a", dead_port().await)),
        Backend::S3(store_on_port("b", dead_port().await)),
        queue,
    ));
    let error = store
        .put_bytes(&key("rl/x"), "x".into(), &PutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Replication { .. }), "{error:?}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_conflict_on_either_side_is_an_incident_not_masked_by_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let primary = FsStore::open(dir.path().join("primary")).await.unwrap();
    let secondary = FsStore::open(dir.path().join("secondary")).await.unwrap();
    let object = key("rl/t1/z1/conflict");
    secondary
        .put_bytes(&object, "planted".into(), &PutOptions::default())
        .await
        .unwrap();
    let queue = Arc::new(FileRepairQueue::new(dir.path().join("repair.jsonl")));
    let replicated = Replicated::new(
        Backend::Fs(primary.clone()),
        Backend::Fs(secondary),
        queue.clone(),
    );

    let error = replicated
        .put_stream(&object, &b"genuine"[..], &PutOptions::default())
        .await
        .unwrap_err();
    assert!(error.incident().is_some(), "{error:?}");
    assert!(
        queue.pending().await.unwrap().is_empty(),
        "an incident is not a repair job"
    );
    match replicated.repair_key(&object).await.unwrap() {
        KeyRepair::Incident(incident) => {
            assert_eq!(incident.key, object.as_str());
            assert_ne!(incident.existing_sha256, incident.attempted_sha256);
        }
        other => panic!("repair must report the conflict, not copy over it: {other:?}"),
    }
    assert_eq!(primary.get_bytes(&object).await.unwrap(), "genuine");
}
