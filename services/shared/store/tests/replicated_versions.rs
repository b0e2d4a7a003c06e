//! The version ids a replicated store reports are the primary's, the copy archive entries pin. A
//! write the primary missed, or a read only the secondary answered, reports none: the secondary's
//! version id would make the primary, once repaired, fail the verifier's version check.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{config, new_bucket, writer_credentials};
use rainlogs_store::{
    Backend, FileRepairQueue, ObjectKey, PutOptions, Replicated, S3Store, Side, Store,
};

async fn dead_primary() -> S3Store {
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = config(
        "unreachable",
        format!("http://127.0.0.1:{port}"),
        writer_credentials(),
    );
    config.connect_timeout = std::time::Duration::from_secs(2);
    S3Store::new(config).unwrap()
}

#[tokio::test]
async fn version_ids_are_the_primarys_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let key = ObjectKey::new("rl/v1/t1/z1/archive.zst").unwrap();

    // Both up: the primary's version id.
    let primary = new_bucket("versions-primary", true).await;
    let secondary = new_bucket("versions-secondary", true).await;
    let store = Store::from(Replicated::new(
        Backend::S3(primary.clone()),
        Backend::S3(secondary.clone()),
        Arc::new(FileRepairQueue::new(dir.path().join("repair-1.jsonl"))),
    ));
    let both = store
        .put_bytes(&key, "sealed".into(), &PutOptions::default())
        .await
        .unwrap();
    let on_primary = Backend::S3(primary.clone())
        .head(&key)
        .await
        .unwrap()
        .unwrap()
        .version_id;
    assert!(on_primary.is_some(), "the bucket is versioned");
    assert_eq!(both.version_id, on_primary);
    assert_eq!(
        store.head(&key).await.unwrap().unwrap().version_id,
        on_primary
    );

    // The primary away: the write lands on the secondary, which has a version id of its own,
    // and the store reports none.
    let store = Store::from(Replicated::new(
        Backend::S3(dead_primary().await),
        Backend::S3(secondary.clone()),
        Arc::new(FileRepairQueue::new(dir.path().join("repair-2.jsonl"))),
    ));
    let other = ObjectKey::new("rl/v1/t1/z1/written-in-the-outage.zst").unwrap();
    let outcome = store
        .put_bytes(&other, "kept".into(), &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(outcome.pending_repair, Some(Side::Primary));
    assert_eq!(outcome.version_id, None);
    let secondary_head = Backend::S3(secondary).head(&other).await.unwrap().unwrap();
    assert!(secondary_head.version_id.is_some());
    let head = store.head(&other).await.unwrap().unwrap();
    assert_eq!((head.size, head.version_id), (4, None));
    let reader = store.get(&other).await.unwrap();
    assert_eq!(reader.version_id, None);
}
