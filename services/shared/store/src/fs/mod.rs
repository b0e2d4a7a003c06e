//! The embedded default: a local directory with the bucket's key layout. Writes go to a temporary file that is
//! fsynced and then hard-linked into place; the link fails if the name exists, which gives the same
//! never-overwrite guarantee as `If-None-Match: *`.

mod durable;
mod list;
mod probe;
mod write;

use std::io;
use std::path::{Path, PathBuf};

use futures::stream::BoxStream;
use tokio::io::AsyncRead;

use crate::conflict::{self, Existing};
use crate::error::StoreError;
use crate::key::{ObjectKey, RESERVED_TOP_LEVEL};
use crate::model::{
    DeleteOutcome, ListedObject, ObjectHead, ObjectReader, Presence, PutOptions, PutOutcome,
};
use crate::stream::{CHUNK, hash_stream};

pub const DEFAULT_PROBE_PREFIX: &str = "_rainlogs-probe";

#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
    tmp: PathBuf,
    probe_prefix: String,
}

impl FsStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        let tmp = root.join(RESERVED_TOP_LEVEL);
        let created = tmp.clone();
        blocking(&root, move || std::fs::create_dir_all(&created)).await?;
        Ok(Self {
            root,
            tmp,
            probe_prefix: DEFAULT_PROBE_PREFIX.to_owned(),
        })
    }

    /// Key prefix the capability probe writes under (default `_rainlogs-probe`).
    pub fn with_probe_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.probe_prefix = prefix.into();
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn path_of(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    pub async fn put_stream<R: AsyncRead + Unpin + Send>(
        &self,
        key: &ObjectKey,
        reader: R,
        options: &PutOptions,
    ) -> Result<PutOutcome, StoreError> {
        let temp = self.tmp.join(format!("{}.part", uuid::Uuid::new_v4()));
        let outcome = self.put_via_temp(key, reader, options, &temp).await;
        // The temp name is gone after a successful link; on every other path it is garbage.
        if let Err(error) = tokio::fs::remove_file(&temp).await
            && error.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %temp.display(), %error, "could not remove a temporary file");
        }
        outcome
    }

    async fn put_via_temp<R: AsyncRead + Unpin + Send>(
        &self,
        key: &ObjectKey,
        reader: R,
        options: &PutOptions,
        temp: &Path,
    ) -> Result<PutOutcome, StoreError> {
        let (sha256, size) = write::write_temp(key, reader, temp).await?;
        if let Some(expected) = options.sha256
            && expected != sha256
        {
            return Err(StoreError::ChecksumMismatch {
                key: key.to_string(),
                expected,
                actual: sha256,
            });
        }
        let target = self.path_of(key);
        let root = self.root.clone();
        let (temp_owned, target_owned) = (temp.to_path_buf(), target.clone());
        let linked = blocking(&target, move || {
            link_into_place(&root, &temp_owned, &target_owned)
        })
        .await;
        match linked {
            Ok(()) => Ok(PutOutcome {
                presence: Presence::Stored,
                sha256,
                size,
                version_id: None,
                pending_repair: None,
            }),
            Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
                if target.is_dir() {
                    return Err(StoreError::KeyIsPrefix {
                        key: key.to_string(),
                    });
                }
                let file = tokio::fs::File::open(&target)
                    .await
                    .map_err(|error| StoreError::io(&target, error))?;
                let (existing_sha256, existing_size) = hash_stream(file)
                    .await
                    .map_err(|error| StoreError::io(&target, error))?;
                let existing = Existing {
                    sha256: existing_sha256,
                    size: existing_size,
                    version_id: None,
                };
                conflict::settle(key.as_str(), &self.location(), existing, sha256, size)
            }
            Err(error) => Err(error),
        }
    }

    pub async fn put_bytes(
        &self,
        key: &ObjectKey,
        bytes: bytes::Bytes,
        options: &PutOptions,
    ) -> Result<PutOutcome, StoreError> {
        self.put_stream(key, &bytes[..], options).await
    }

    /// The whole object in memory: for small objects (checkpoints, entries), not archives.
    pub async fn get_bytes(&self, key: &ObjectKey) -> Result<bytes::Bytes, StoreError> {
        crate::stream::read_whole(key.as_str(), self.get(key).await?).await
    }

    pub async fn get_range(
        &self,
        key: &ObjectKey,
        offset: u64,
        len: u64,
    ) -> Result<bytes::Bytes, StoreError> {
        use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
        let (path, mut file) = self.open_object(key).await?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|error| StoreError::io(&path, error))?;
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(64 << 20));
        file.take(len)
            .read_to_end(&mut bytes)
            .await
            .map_err(|error| StoreError::io(&path, error))?;
        Ok(bytes::Bytes::from(bytes))
    }

    /// The object's file, open for reading; `NotFound` for a missing key or a directory (a
    /// directory on the way to deeper keys is not an object, as in S3).
    async fn open_object(&self, key: &ObjectKey) -> Result<(PathBuf, tokio::fs::File), StoreError> {
        let path = self.path_of(key);
        let not_found = || StoreError::NotFound {
            key: key.to_string(),
        };
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(error) if is_missing(&error) => return Err(not_found()),
            Err(error) => return Err(StoreError::io(&path, error)),
        };
        let metadata = file
            .metadata()
            .await
            .map_err(|error| StoreError::io(&path, error))?;
        if !metadata.is_file() {
            return Err(not_found());
        }
        Ok((path, file))
    }

    pub async fn get(&self, key: &ObjectKey) -> Result<ObjectReader, StoreError> {
        let (path, file) = self.open_object(key).await?;
        let size = file
            .metadata()
            .await
            .map_err(|error| StoreError::io(&path, error))?
            .len();
        let body = tokio::io::BufReader::with_capacity(CHUNK, file);
        Ok(ObjectReader::new(Some(size), None, Box::pin(body)))
    }

    pub async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectHead>, StoreError> {
        let path = self.path_of(key);
        match tokio::fs::metadata(&path).await {
            Ok(metadata) if metadata.is_file() => Ok(Some(ObjectHead {
                size: metadata.len(),
                sha256: None,
                lock: None,
                version_id: None,
                content_type: None,
            })),
            Ok(_) => Ok(None),
            Err(error) if is_missing(&error) => Ok(None),
            Err(error) => Err(StoreError::io(&path, error)),
        }
    }

    /// Objects whose key starts with `prefix`, in key order.
    pub fn list(&self, prefix: &str) -> BoxStream<'static, Result<ListedObject, StoreError>> {
        list::list(self.root.clone(), prefix.to_owned())
    }

    pub async fn delete(&self, key: &ObjectKey) -> Result<DeleteOutcome, StoreError> {
        let path = self.path_of(key);
        let removed = path.clone();
        blocking(&path, move || match std::fs::remove_file(&removed) {
            Ok(()) => {
                if let Some(parent) = removed.parent() {
                    durable::sync_dir(parent)?;
                }
                Ok(DeleteOutcome::Deleted { versions: 1 })
            }
            Err(error) if is_missing(&error) => Ok(DeleteOutcome::NotFound),
            Err(error) => Err(error),
        })
        .await
    }
}

/// Links the finished temp file under its key; fails with `AlreadyExists` rather than replace anything.
fn link_into_place(root: &Path, temp: &Path, target: &Path) -> io::Result<()> {
    let parent = target
        .parent()
        .ok_or_else(|| io::Error::other("object path has no parent"))?;
    durable::create_dirs(root, parent)?;
    // Archives are immutable; read-only files make an accidental in-place edit fail loudly.
    set_read_only(temp)?;
    std::fs::hard_link(temp, target)?;
    durable::sync_dir(parent)
}

fn set_read_only(path: &Path) -> io::Result<()> {
    let mut permissions = std::fs::metadata(path)?.permissions();
    permissions.set_readonly(true);
    std::fs::set_permissions(path, permissions)
}

fn is_missing(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Runs blocking filesystem work off the async threads, naming `path` in any error.
async fn blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|error| StoreError::io(path, error)),
        Err(join) => Err(StoreError::io(path, io::Error::other(join))),
    }
}
