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
//! Reading needs only list and read rights on the bucket; nothing is deleted.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
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

/// What one poll stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Polled {
    pub objects: usize,
    pub records: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    keys: BTreeSet<String>,
}

pub struct BucketFeed {
    store: S3Store,
    /// The job's path below the bucket, without `{DATE}` and without a trailing `/`.
    path: String,
    cursors: kv::Store,
    cursor_key: String,
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
        }
    }

    fn day_prefix(&self, day: &str) -> String {
        if self.path.is_empty() {
            format!("{day}/")
        } else {
            format!("{}/{day}/", self.path)
        }
    }

    /// Stores the objects of yesterday and today (by `now`, Unix seconds) not stored before.
    pub async fn poll(&self, target: &PushTarget<'_>, now: i64) -> Result<Polled, FeedError> {
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
            stored.keys.insert(key);
            self.save(&stored).await?;
        }
        stored
            .keys
            .retain(|key| days.iter().any(|prefix| key.starts_with(prefix.as_str())));
        self.save(&stored).await?;
        Ok(polled)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(yyyymmdd(1_768_478_400), "20260115");
        assert_eq!(yyyymmdd(1_768_478_400 - 86_400), "20260114");
    }
}
