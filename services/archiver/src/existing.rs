//! Reading back an archive that is already in the bucket for a window: after a crash between the
//! put and the publish, or when a re-fetched attempt (Cloudflare orders lines differently on every
//! call) closes a window that already has its archive. The stored object is the window's archive;
//! its event and its index are re-derived from its bytes.

use futures::TryStreamExt as _;
use rainlogs_index::{ArchiveIndex, index_archive};
use rainlogs_integrity::ArchiveDigest;
use rainlogs_integrity::layout::ARCHIVE_SUFFIX;
use rainlogs_store::{ObjectKey, Store, StoreError};
use tokio_util::io::SyncIoBridge;

/// What the bucket holds for a window.
#[derive(Debug)]
pub struct StoredArchive {
    pub key: String,
    pub version: Option<String>,
    pub digest: ArchiveDigest,
    pub index: ArchiveIndex,
}

#[derive(Debug, thiserror::Error)]
pub enum ExistingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("archive {key} cannot be read back: {source}")]
    Unreadable { key: String, source: std::io::Error },
}

/// Keys of the archives already stored under a window's key prefix (not their index objects).
pub async fn archives_of_window(
    store: &Store,
    window_prefix: &str,
) -> Result<Vec<String>, StoreError> {
    let listed: Vec<_> = store.list(window_prefix).try_collect().await?;
    let mut keys: Vec<String> = listed
        .into_iter()
        .map(|o| o.key)
        .filter(|key| key.ends_with(ARCHIVE_SUFFIX))
        .collect();
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
    let measured = tokio::task::spawn_blocking(move || index_archive(reader))
        .await
        .map_err(|e| unreadable(std::io::Error::other(e)))?;
    let (digest, index) = measured.map_err(unreadable)?;
    Ok(StoredArchive {
        key: key.to_owned(),
        version,
        digest,
        index,
    })
}
