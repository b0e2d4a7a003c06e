//! Reading back an archive that is already in the bucket for a window: after a crash between the
//! put and the publish, or when a re-fetched attempt (Cloudflare orders lines differently on every
//! call) closes a window that already has its archive. The stored object is the window's archive;
//! its event is re-derived from its bytes.

use std::io::{BufRead as _, BufReader};

use futures::TryStreamExt as _;
use rainlogs_integrity::{ArchiveDigest, ArchiveReader};
use rainlogs_store::{ObjectKey, Store, StoreError};
use tokio_util::io::SyncIoBridge;

use crate::event_time::EventTimeRange;

/// What the bucket holds for a window.
#[derive(Debug)]
pub struct StoredArchive {
    pub key: String,
    pub version: Option<String>,
    pub digest: ArchiveDigest,
    pub event_time: EventTimeRange,
}

#[derive(Debug, thiserror::Error)]
pub enum ExistingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("archive {key} cannot be read back: {source}")]
    Unreadable { key: String, source: std::io::Error },
}

/// Keys of the archives already stored under a window's key prefix.
pub async fn archives_of_window(
    store: &Store,
    window_prefix: &str,
) -> Result<Vec<String>, StoreError> {
    let listed: Vec<_> = store.list(window_prefix).try_collect().await?;
    let mut keys: Vec<String> = listed.into_iter().map(|o| o.key).collect();
    keys.sort();
    Ok(keys)
}

/// Reads `key` through and measures it as the writer would have.
pub async fn describe(store: &Store, key: &str) -> Result<StoredArchive, ExistingError> {
    let object_key = ObjectKey::new(key)?;
    let version = store.head(&object_key).await?.and_then(|h| h.version_id);
    let reader = SyncIoBridge::new(store.get(&object_key).await?);
    let unreadable = |source| ExistingError::Unreadable {
        key: key.to_owned(),
        source,
    };
    let measured = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let mut archive = ArchiveReader::new(reader)?;
        let mut event_time = EventTimeRange::default();
        let mut lines = BufReader::with_capacity(1 << 20, &mut archive);
        let mut line = Vec::new();
        while lines.read_until(b'\n', &mut line)? > 0 {
            event_time.scan(&line);
            line.clear();
        }
        drop(lines);
        Ok((archive.finish()?, event_time))
    })
    .await
    .map_err(|e| unreadable(std::io::Error::other(e)))?;
    let (digest, event_time) = measured.map_err(unreadable)?;
    Ok(StoredArchive {
        key: key.to_owned(),
        version,
        digest,
        event_time,
    })
}
