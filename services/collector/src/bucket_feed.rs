//! Logpush's S3 destination: Cloudflare writes a zone's batches as gzip NDJSON objects into a
//! bucket the customer owns, under `<path>/<YYYYMMDD>/…log.gz`. This feed lists the dated
//! directories of yesterday and today (UTC), stores every object it has not stored before in
//! `RL_PUSH` exactly as the ingest endpoint stores an HTTP push (`rainlogs_push::store_push`),
//! and keeps the keys it stored in the cursor bucket (`<zone>.<dataset>.bucket`).
//!
//! A set of keys rather than a single "last key": Cloudflare retries a failed upload later, so an
//! object with an older key can appear after a newer one. Keys of days older than yesterday are
//! forgotten; no upload arrives that late. An object stored again after a crash (before its key
//! was recorded) cuts into the same parts, which JetStream stores once.
//!
//! Reading needs only list and read rights on the bucket. With `delete_after_sealing`, an object
//! is deleted once every record in it is sealed in the zone's log: the dataset's push cursor
//! has passed the object's newest part (its records are in closes up to the cursor's
//! `batch_seq`), the archiver's durable consumer has acknowledged those closes (their archive
//! events are stored), and then the sealer's has acknowledged every archive event stored by
//! that time. Until all three hold the object stays; a delete the keys may not do is shown in
//! the zone's health and tried again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use rainlogs_bus::Bus;
use rainlogs_bus::async_nats::jetstream::kv;
use rainlogs_push::{PushError, PushTarget, store_push};
use rainlogs_store::{ObjectKey, S3Store, StoreError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Cloudflare's largest batch (`max_upload_bytes`), uncompressed.
const MAX_OBJECT_BYTES: u64 = 1_000_000_000;

/// How long a read may send nothing before the object is tried again on the next poll.
const READ_IDLE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("the bucket: {0}")]
    Store(#[from] StoreError),
    #[error("object {key}: {source}")]
    Push { key: String, source: PushError },
    #[error("the feed's cursor: {0}")]
    Cursor(String),
}

/// What one poll stored and deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Polled {
    pub objects: usize,
    pub records: u64,
    /// Objects deleted because their records are sealed.
    pub deleted: usize,
    /// Why sealed objects could not be deleted (they are tried again).
    pub delete_trouble: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    keys: BTreeSet<String>,
    /// Deleting after sealing: each object stored but not deleted yet, with the `RL_PUSH`
    /// sequence of its newest part.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    awaiting: BTreeMap<String, u64>,
}

/// How long an object whose delete keeps failing is remembered before it is left in the bucket.
const AWAIT_DELETE_FOR: i64 = 7 * 86_400;

pub struct BucketFeed {
    store: S3Store,
    /// The job's path below the bucket, without `{DATE}` and without a trailing `/`.
    path: String,
    cursors: kv::Store,
    cursor_key: String,
    zone: String,
    dataset: String,
    /// Set when objects are deleted after sealing.
    sealing: Option<Sealing>,
}

/// What deleting after sealing waits for.
struct Sealing {
    bus: Bus,
    waiting: Option<SealWait>,
}

/// A push cursor position whose closes the archiver has acknowledged, and the newest
/// `RL_ARCHIVE` sequence when it had: once the sealer has acknowledged that far, the objects up
/// to `resume_after` are sealed.
#[derive(Clone, Copy)]
struct SealWait {
    resume_after: u64,
    archive_seq: u64,
}

fn yyyymmdd(unix: i64) -> String {
    let date = OffsetDateTime::from_unix_timestamp(unix)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .date();
    format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

impl BucketFeed {
    pub fn new(store: S3Store, path: &str, cursors: kv::Store, zone: &str, dataset: &str) -> Self {
        Self {
            store,
            path: path.trim_matches('/').to_owned(),
            cursors,
            cursor_key: format!("{zone}.{dataset}.bucket"),
            zone: zone.to_owned(),
            dataset: dataset.to_owned(),
            sealing: None,
        }
    }

    /// Forgets the keys stored for a dataset no longer read from the bucket.
    pub async fn forget(cursors: &kv::Store, zone: &str, dataset: &str) {
        if let Err(e) = cursors.delete(format!("{zone}.{dataset}.bucket")).await {
            tracing::warn!(zone, dataset, error = %e, "cannot forget the bucket feed's keys");
        }
    }

    /// Deletes each object once its records are sealed (the read keys need delete rights).
    pub fn deleting_after_sealing(mut self, bus: Bus) -> Self {
        self.sealing = Some(Sealing { bus, waiting: None });
        self
    }

    fn day_prefix(&self, day: &str) -> String {
        if self.path.is_empty() {
            format!("{day}/")
        } else {
            format!("{}/{day}/", self.path)
        }
    }

    /// Stores the objects of yesterday and today (by `now`, Unix seconds) not stored before.
    pub async fn poll(&mut self, target: &PushTarget<'_>, now: i64) -> Result<Polled, FeedError> {
        use futures::TryStreamExt as _;
        let mut stored = self.load().await?;
        let days = [
            self.day_prefix(&yyyymmdd(now - 86_400)),
            self.day_prefix(&yyyymmdd(now)),
        ];
        let mut new_keys = Vec::new();
        for prefix in &days {
            let listed: Vec<_> = self.store.list(prefix).try_collect().await?;
            new_keys.extend(
                listed
                    .into_iter()
                    .map(|object| object.key)
                    .filter(|key| key.ends_with(".log.gz") && !stored.keys.contains(key)),
            );
        }
        // The provider's listing order is not always UTF-8 order; keys sort in time order.
        new_keys.sort();
        let mut polled = Polled::default();
        for key in new_keys {
            let object_key = ObjectKey::new(&key)?;
            let reader = self.store.get(&object_key).await?;
            let chunks = tokio_util::io::ReaderStream::new(reader);
            let pushed = store_push(target, chunks, MAX_OBJECT_BYTES, READ_IDLE)
                .await
                .map_err(|source| FeedError::Push {
                    key: key.clone(),
                    source,
                })?;
            if let rainlogs_push::Held::Records(records) = pushed.held {
                polled.records += records;
            }
            polled.objects += 1;
            if let (Some(_), Some(last_part)) = (&self.sealing, pushed.last_part) {
                stored.awaiting.insert(key.clone(), last_part);
            }
            stored.keys.insert(key);
            self.save(&stored).await?;
        }
        stored
            .keys
            .retain(|key| days.iter().any(|prefix| key.starts_with(prefix.as_str())));
        if self.sealing.is_some() {
            match self.delete_sealed(&mut stored).await {
                Ok(deleted) => polled.deleted = deleted,
                Err(trouble) => polled.delete_trouble = Some(trouble),
            }
            let oldest = self.day_prefix(&yyyymmdd(now - AWAIT_DELETE_FOR));
            let forgotten = stored.awaiting.len();
            stored.awaiting.retain(|key, _| *key >= oldest);
            if stored.awaiting.len() < forgotten {
                tracing::warn!(zone = %self.zone, objects = forgotten - stored.awaiting.len(),
                    "objects that could not be deleted for a week are left in the bucket");
            }
        }
        self.save(&stored).await?;
        Ok(polled)
    }

    /// Deletes the objects whose records are all sealed; how many.
    async fn delete_sealed(&mut self, stored: &mut Stored) -> Result<usize, String> {
        let Some(sealing) = self.sealing.as_mut() else {
            return Ok(0);
        };
        let Some(first) = stored.awaiting.values().min().copied() else {
            return Ok(0);
        };
        let mut sealed_through = None;
        if let Some(wait) = sealing.waiting
            && ack_floor(&sealing.bus, rainlogs_bus::definitions::ARCHIVE, "sealer").await?
                >= wait.archive_seq
        {
            sealed_through = Some(wait.resume_after);
            sealing.waiting = None;
        }
        if sealing.waiting.is_none()
            && let Some(cursor) =
                crate::push_cursor::PushCursor::stored(&self.cursors, &self.zone, &self.dataset)
                    .await?
            && cursor.resume_after >= first
            && sealed_through.is_none_or(|through| cursor.resume_after > through)
            && ack_floor(&sealing.bus, rainlogs_bus::definitions::BATCH, "archiver").await?
                >= cursor.batch_seq
        {
            sealing.waiting = Some(SealWait {
                resume_after: cursor.resume_after,
                archive_seq: last_sequence(&sealing.bus, rainlogs_bus::definitions::ARCHIVE)
                    .await?,
            });
        }
        let Some(through) = sealed_through else {
            return Ok(0);
        };
        let due: Vec<String> = stored
            .awaiting
            .iter()
            .filter(|(_, last_part)| **last_part <= through)
            .map(|(key, _)| key.clone())
            .collect();
        let mut deleted = 0;
        for key in due {
            let object_key = ObjectKey::new(&key).map_err(|e| e.to_string())?;
            self.store.delete(&object_key).await.map_err(|e| {
                format!("cannot delete the sealed object {key} from the zone's Logpush bucket ({e}); the read keys need delete rights")
            })?;
            stored.awaiting.remove(&key);
            deleted += 1;
        }
        if deleted > 0 {
            tracing::info!(zone = %self.zone, dataset = %self.dataset, objects = deleted,
                "deleted the bucket's objects whose records are sealed");
        }
        Ok(deleted)
    }

    async fn load(&self) -> Result<Stored, FeedError> {
        match self.cursors.get(&self.cursor_key).await {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes)
                .map_err(|e| FeedError::Cursor(format!("{}: {e}", self.cursor_key))),
            Ok(None) => Ok(Stored::default()),
            Err(e) => Err(FeedError::Cursor(e.to_string())),
        }
    }

    async fn save(&self, stored: &Stored) -> Result<(), FeedError> {
        let value = serde_json::to_vec(stored).map_err(|e| FeedError::Cursor(e.to_string()))?;
        self.cursors
            .put(&self.cursor_key, Bytes::from(value))
            .await
            .map(drop)
            .map_err(|e| FeedError::Cursor(e.to_string()))
    }
}

/// The stream sequence below which the durable consumer `name` has acknowledged everything.
async fn ack_floor(bus: &Bus, stream: &str, name: &str) -> Result<u64, String> {
    let stream = bus
        .js
        .get_stream(stream)
        .await
        .map_err(|e| format!("opening {stream}: {e}"))?;
    let info = stream
        .consumer_info(name)
        .await
        .map_err(|e| format!("reading the {name}'s progress: {e}"))?;
    Ok(info.ack_floor.stream_sequence)
}

async fn last_sequence(bus: &Bus, stream: &str) -> Result<u64, String> {
    let info = bus
        .js
        .get_stream(stream)
        .await
        .map_err(|e| format!("opening {stream}: {e}"))?
        .get_info()
        .await
        .map_err(|e| format!("reading {stream}: {e}"))?;
    Ok(info.state.last_sequence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(yyyymmdd(1_768_478_400), "20260115");
        assert_eq!(yyyymmdd(1_768_478_400 - 86_400), "20260114");
    }
}
