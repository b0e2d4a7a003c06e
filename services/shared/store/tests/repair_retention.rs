//! Repair must not resurrect data past its retention: an object one provider lacks whose other copy's
//! Object Lock retain-until has passed may have been pruned on purpose (the reaper, an erasure request),
//! so repair reports it and copies nothing. A copy still under retention is copied with its retain-until;
//! an object with no lock at all is copied as before. Against the real SeaweedFS with Object Lock.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::new_bucket;
use rainlogs_store::{
    Backend, DeleteOutcome, FileRepairQueue, KeyRepair, ObjectKey, PutOptions, RepairEntry,
    Replicated, S3Store, Side, Store,
};
use time::OffsetDateTime;

fn key(text: &str) -> ObjectKey {
    ObjectKey::new(text).unwrap()
}

fn locked_until(retain_until: OffsetDateTime) -> PutOptions {
    PutOptions {
        retain_until: Some(retain_until),
        ..PutOptions::default()
    }
}

/// Sleeps until `until` has passed by a margin (the provider and this clock may round differently).
async fn wait_past(until: OffsetDateTime) {
    let left = until - OffsetDateTime::now_utc() + time::Duration::milliseconds(1500);
    if left.is_positive() {
        tokio::time::sleep(Duration::try_from(left).unwrap()).await;
    }
}

struct Pair {
    primary: S3Store,
    secondary: S3Store,
    queue: Arc<FileRepairQueue>,
    replicated: Replicated,
    _dir: tempfile::TempDir,
}

async fn pair(purpose: &str) -> Pair {
    let primary = new_bucket(&format!("{purpose}-p"), true).await;
    let secondary = new_bucket(&format!("{purpose}-s"), true).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(FileRepairQueue::new(dir.path().join("repair.jsonl")));
    let replicated = Replicated::new(
        Backend::S3(primary.clone()),
        Backend::S3(secondary.clone()),
        queue.clone(),
    );
    Pair {
        primary,
        secondary,
        queue,
        replicated,
        _dir: dir,
    }
}

/// Writes `key` to both providers locked for about two seconds, waits until the lock has run out, and
/// deletes it on the secondary as the reaper would. Returns the primary copy's retain-until.
async fn expired_on_primary_only(pair: &Pair, key: &ObjectKey) -> OffsetDateTime {
    let store = Store::from(Replicated::new(
        Backend::S3(pair.primary.clone()),
        Backend::S3(pair.secondary.clone()),
        pair.queue.clone(),
    ));
    let outcome = store
        .put_bytes(
            key,
            "archive past its retention".into(),
            &locked_until(OffsetDateTime::now_utc() + time::Duration::seconds(2)),
        )
        .await
        .unwrap();
    assert_eq!(outcome.pending_repair, None, "written to both providers");
    let retain_until = pair
        .primary
        .head(key)
        .await
        .unwrap()
        .unwrap()
        .lock
        .expect("the primary copy is locked")
        .retain_until;
    assert!(
        pair.secondary
            .head(key)
            .await
            .unwrap()
            .unwrap()
            .lock
            .is_some(),
        "the secondary copy is locked"
    );
    wait_past(retain_until).await;
    assert!(
        matches!(
            pair.secondary.delete(key).await.unwrap(),
            DeleteOutcome::Deleted { .. }
        ),
        "pruned on the secondary once its retention passed"
    );
    assert_eq!(pair.secondary.head(key).await.unwrap(), None);
    retain_until
}

#[tokio::test]
async fn repair_key_does_not_copy_an_object_past_its_retention() {
    let pair = pair("ret-key").await;
    let expired = key("rl/t1/z1/http_requests/2026/01/02/03/0300-expired.ndjson.zst");
    let retain_until = expired_on_primary_only(&pair, &expired).await;

    assert_eq!(
        pair.replicated.past_retention(&expired).await.unwrap(),
        Some((Side::Primary, retain_until)),
        "the dry run's look at the heads sees it too"
    );
    assert_eq!(
        pair.replicated.repair_key(&expired).await.unwrap(),
        KeyRepair::PastRetention {
            on: Side::Primary,
            retain_until
        }
    );
    assert_eq!(
        pair.secondary.head(&expired).await.unwrap(),
        None,
        "not resurrected on the secondary"
    );
    assert!(
        pair.primary.head(&expired).await.unwrap().is_some(),
        "repair deletes nothing either"
    );
}

#[tokio::test]
async fn repair_queue_reports_past_retention_and_drops_the_entry() {
    let pair = pair("ret-queue").await;
    let expired = key("rl/t1/z1/http_requests/2026/01/02/03/0300-expired.ndjson.zst");
    expired_on_primary_only(&pair, &expired).await;
    pair.queue
        .record(&RepairEntry {
            key: expired.clone(),
            missing_on: Side::Secondary,
            reason: "the secondary was down".into(),
            recorded_at: OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();

    let report = pair.replicated.repair_queue(&pair.queue).await.unwrap();
    assert_eq!(
        report.past_retention,
        std::slice::from_ref(&expired),
        "{report:?}"
    );
    assert!(
        report.copied.is_empty() && report.failed.is_empty() && report.incidents.is_empty(),
        "{report:?}"
    );
    assert!(
        pair.queue.pending().await.unwrap().is_empty(),
        "a key past its retention is done: it leaves the queue"
    );
    assert_eq!(
        pair.secondary.head(&expired).await.unwrap(),
        None,
        "not resurrected on the secondary"
    );
}

#[tokio::test]
async fn repair_prefix_skips_expired_objects_and_copies_locked_ones_with_their_retain_until() {
    let pair = pair("ret-prefix").await;
    let expired = key("rl/t1/z1/http_requests/2026/01/02/03/0300-expired.ndjson.zst");
    let locked = key("rl/t1/z1/http_requests/2026/01/02/04/0400-locked.ndjson.zst");
    let unlocked = key("rl/t1/z1/http_requests/2026/01/02/05/0500-unlocked.ndjson.zst");
    // Behind the replicated store's back, on the primary only: one still under retention, one with
    // no lock at all.
    pair.primary
        .put_bytes(
            &locked,
            "archive under retention".into(),
            &locked_until(OffsetDateTime::now_utc() + time::Duration::seconds(300)),
        )
        .await
        .unwrap();
    pair.primary
        .put_bytes(
            &unlocked,
            "archive without a lock".into(),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    expired_on_primary_only(&pair, &expired).await;
    assert_eq!(pair.replicated.past_retention(&locked).await.unwrap(), None);

    let report = pair.replicated.repair_prefix("rl/").await.unwrap();
    assert_eq!(
        report.past_retention,
        std::slice::from_ref(&expired),
        "{report:?}"
    );
    let mut copied = report.copied.clone();
    copied.sort();
    assert_eq!(
        copied,
        [
            (locked.clone(), Side::Secondary),
            (unlocked.clone(), Side::Secondary)
        ],
        "{report:?}"
    );
    assert!(
        report.failed.is_empty() && report.incidents.is_empty(),
        "{report:?}"
    );

    assert_eq!(
        pair.secondary.head(&expired).await.unwrap(),
        None,
        "not resurrected on the secondary"
    );
    let source = pair.primary.head(&locked).await.unwrap().unwrap();
    let copy = pair
        .secondary
        .head(&locked)
        .await
        .unwrap()
        .expect("the locked object was copied");
    assert!(source.lock.is_some());
    assert_eq!(
        copy.lock, source.lock,
        "the copy keeps the source's mode and retain-until"
    );
    assert_eq!(
        pair.secondary.get_bytes(&locked).await.unwrap(),
        "archive under retention"
    );
    assert_eq!(
        pair.secondary
            .head(&unlocked)
            .await
            .unwrap()
            .expect("the unlocked object was copied")
            .lock,
        None
    );

    // Nothing is left to do: the expired key stays reported, never copied.
    let again = pair.replicated.repair_prefix("rl/").await.unwrap();
    assert_eq!(
        (again.copied.len(), again.past_retention.len()),
        (0, 1),
        "{again:?}"
    );
    assert_eq!(pair.secondary.head(&expired).await.unwrap(), None);
}
