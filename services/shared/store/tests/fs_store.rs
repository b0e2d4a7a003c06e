//! The local directory store against a real temporary directory.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Generated, MIB, hash_all, read_all};
use futures::TryStreamExt;
use rainlogs_store::{
    Backend, CheckStatus, DeleteOutcome, FsStore, ObjectKey, Presence, PutOptions, Sha256Hash,
    Store, StoreError,
};

fn key(text: &str) -> ObjectKey {
    ObjectKey::new(text).unwrap()
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let fs = FsStore::open(dir.path().join("archive")).await.unwrap();
    (dir, Store::from(Backend::Fs(fs)))
}

#[tokio::test]
async fn large_object_round_trips_with_equal_bytes_and_hashes() {
    let (_dir, store) = store().await;
    let len = 40 * MIB as u64 + 12_345;
    let object = key("rl/t1/z1/http_requests/2026/01/02/03/0300-a.ndjson.zst");
    let outcome = store
        .put_stream(&object, Generated::new(len, 1), &PutOptions::default())
        .await
        .unwrap();
    let expected = Generated::sha256(len, 1);
    assert_eq!(outcome.presence, Presence::Stored);
    assert_eq!(
        outcome.sha256, expected,
        "put must report the hash of the bytes it read"
    );
    assert_eq!(outcome.size, len);

    let head = store.head(&object).await.unwrap().expect("head after put");
    assert_eq!(head.size, len);
    let reader = store.get(&object).await.unwrap();
    assert_eq!(reader.size, Some(len));
    assert_eq!(
        hash_all(reader).await,
        (expected, len),
        "bytes read back differ from bytes written"
    );
}

#[tokio::test]
async fn same_content_again_is_already_present_and_different_content_is_an_incident() {
    let (dir, store) = store().await;
    let object = key("rl/t1/z1/tlog/checkpoint");
    let first = store
        .put_bytes(&object, "v1".into(), &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(first.presence, Presence::Stored);

    let again = store
        .put_bytes(&object, "v1".into(), &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(
        again.presence,
        Presence::AlreadyPresent,
        "an identical re-put is an idempotent success"
    );
    assert_eq!(again.sha256, first.sha256);

    let error = store
        .put_bytes(&object, "v2-different".into(), &PutOptions::default())
        .await
        .unwrap_err();
    let incident = error
        .incident()
        .expect("different content must be an incident, not an overwrite");
    assert_eq!(incident.key, object.as_str());
    assert_eq!(incident.existing_sha256, Sha256Hash::of(b"v1"));
    assert_eq!(incident.attempted_sha256, Sha256Hash::of(b"v2-different"));
    assert!(error.is_alarm() && !error.is_retryable());
    assert_eq!(
        store.get_bytes(&object).await.unwrap(),
        "v1",
        "the original must be untouched"
    );

    let leftovers = std::fs::read_dir(dir.path().join("archive/.rainlogs-tmp"))
        .unwrap()
        .count();
    assert_eq!(
        leftovers, 0,
        "refused puts must not leave temporary files behind"
    );
}

#[tokio::test]
async fn declared_sha256_that_does_not_match_stores_nothing() {
    let (_dir, store) = store().await;
    let object = key("rl/t1/z1/x");
    let options = PutOptions {
        sha256: Some(Sha256Hash::of(b"what the caller thought it sent")),
        ..PutOptions::default()
    };
    let error = store
        .put_bytes(&object, "what arrived".into(), &options)
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::ChecksumMismatch { .. }),
        "got {error:?}"
    );
    assert!(
        store.head(&object).await.unwrap().is_none(),
        "a rejected put must leave no object"
    );

    let right = PutOptions {
        sha256: Some(Sha256Hash::of(b"what arrived")),
        ..PutOptions::default()
    };
    assert_eq!(
        store
            .put_bytes(&object, "what arrived".into(), &right)
            .await
            .unwrap()
            .presence,
        Presence::Stored
    );
}

#[tokio::test]
async fn listing_is_complete_in_key_order_and_respects_the_prefix() {
    let (_dir, store) = store().await;
    let keys = [
        "p/a-c", "p/a.b", "p/a/a/z", "p/a/b", "p/a0", "p/b", "q/zzz", "pp/x",
    ];
    for name in keys {
        store
            .put_bytes(
                &key(name),
                name.as_bytes().to_vec().into(),
                &PutOptions::default(),
            )
            .await
            .unwrap();
    }
    let listed: Vec<String> = store
        .list("p/")
        .map_ok(|object| object.key)
        .try_collect()
        .await
        .unwrap();
    // S3's documented order: UTF-8 bytes of the whole key.
    assert_eq!(
        listed,
        ["p/a-c", "p/a.b", "p/a/a/z", "p/a/b", "p/a0", "p/b"]
    );

    let partial: Vec<String> = store
        .list("p/a/")
        .map_ok(|object| object.key)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(partial, ["p/a/a/z", "p/a/b"]);
    let by_name: Vec<String> = store
        .list("p")
        .map_ok(|object| object.key)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        by_name.len(),
        7,
        "'p' matches p/... and pp/...: {by_name:?}"
    );
    let none: Vec<String> = store
        .list("nothing/")
        .map_ok(|object| object.key)
        .try_collect()
        .await
        .unwrap();
    assert!(none.is_empty());
    let sizes: Vec<u64> = store
        .list("q/")
        .map_ok(|object| object.size)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(sizes, [5]);
}

#[tokio::test]
async fn delete_removes_the_object_and_reports_missing_keys() {
    let (_dir, store) = store().await;
    let object = key("rl/t1/z1/old");
    store
        .put_bytes(&object, "old".into(), &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(
        store.delete(&object).await.unwrap(),
        DeleteOutcome::Deleted { versions: 1 }
    );
    assert!(store.head(&object).await.unwrap().is_none());
    assert!(matches!(
        store.get(&object).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.delete(&object).await.unwrap(),
        DeleteOutcome::NotFound
    );
}

#[tokio::test]
async fn local_posture_enforces_create_new_and_checksums_but_warns_about_object_lock() {
    let (dir, store) = store().await;
    let posture = store.probe().await;
    let provider = &posture.providers[0];
    assert_eq!(
        provider.conditional_put.status,
        CheckStatus::Enforced,
        "{provider:?}"
    );
    assert_eq!(
        provider.checksum_verification.status,
        CheckStatus::Enforced,
        "{provider:?}"
    );
    assert_eq!(provider.object_lock.status, CheckStatus::Missing);
    assert!(
        posture
            .warnings
            .iter()
            .any(|warning| warning.contains("no Object Lock")),
        "missing Object Lock must be a warning: {:?}",
        posture.warnings
    );
    let json = serde_json::to_value(&posture).unwrap();
    assert_eq!(
        json["providers"][0]["conditional_put"]["status"],
        "enforced"
    );
    let probe_objects: Vec<String> = store
        .list("_rainlogs-probe/")
        .map_ok(|object| object.key)
        .try_collect()
        .await
        .unwrap();
    assert!(
        probe_objects.is_empty(),
        "the local probe cleans up: {probe_objects:?}"
    );
    drop(dir);
}

#[tokio::test]
async fn small_objects_read_back_whole() {
    let (_dir, store) = store().await;
    let object = key("rl/t1/z1/tlog/entries/000");
    let body = Generated::bytes(1000, 7);
    store
        .put_bytes(&object, body.clone().into(), &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(read_all(store.get(&object).await.unwrap()).await, body);
}

#[tokio::test]
async fn a_key_that_is_a_directory_of_other_keys_is_a_permanent_error() {
    let (_dir, store) = store().await;
    store
        .put_bytes(&key("p/a/b"), "leaf".into(), &PutOptions::default())
        .await
        .unwrap();
    let error = store
        .put_bytes(&key("p/a"), "x".into(), &PutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::KeyIsPrefix { .. }), "{error:?}");
    assert!(!error.is_retryable());
    assert!(store.head(&key("p/a")).await.unwrap().is_none());
    assert!(matches!(
        store.get(&key("p/a")).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn listing_prefixes_cannot_escape_the_root() {
    let (dir, store) = store().await;
    std::fs::write(dir.path().join("outside"), "secret").unwrap();
    for prefix in ["../", "/etc/", "a/../../"] {
        let listed: Result<Vec<_>, _> = store.list(prefix).try_collect().await;
        assert!(
            matches!(listed, Err(StoreError::InvalidKey { .. })),
            "{prefix}: {listed:?}"
        );
    }
}
