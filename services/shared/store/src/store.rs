//! The store services hold: one provider, or a replicated pair. Cheap to clone.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use tokio::io::AsyncRead;

use crate::backend::Backend;
use crate::error::StoreError;
use crate::key::ObjectKey;
use crate::model::{DeleteOutcome, ListedObject, ObjectHead, ObjectReader, PutOptions, PutOutcome};
use crate::posture::{Posture, Role};
use crate::replicated::Replicated;

#[derive(Debug, Clone)]
pub enum Store {
    Single(Backend),
    Replicated(Arc<Replicated>),
}

impl Store {
    /// Streams `reader` into a new object with `x-amz-checksum-sha256`, `If-None-Match: *` and Object Lock
    /// retention where available. Same bytes already stored: `Presence::AlreadyPresent`. Different bytes:
    /// `Err(StoreError::Incident)`, never an overwrite.
    pub async fn put_stream<R: AsyncRead + Unpin + Send>(
        &self,
        key: &ObjectKey,
        reader: R,
        options: &PutOptions,
    ) -> Result<PutOutcome, StoreError> {
        match self {
            Store::Single(backend) => backend.put_stream(key, reader, options).await,
            Store::Replicated(replicated) => replicated.put_stream(key, reader, options).await,
        }
    }

    pub async fn put_bytes(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        options: &PutOptions,
    ) -> Result<PutOutcome, StoreError> {
        self.put_stream(key, &bytes[..], options).await
    }

    /// Makes `key` hold `bytes` where it held something else: the one kind of object that is
    /// ever replaced (a pointer such as the latest checkpoint, whose every version is also kept
    /// under its own create-only key). Objects are create-only, so this deletes, then puts. With
    /// two providers each is replaced on its own: one that does not answer keeps its previous
    /// copy (still consistent with what else it holds) until the next replacement, and is not
    /// queued for repair. Fails only when no provider took the new bytes.
    pub async fn replace_bytes(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        options: &PutOptions,
    ) -> Result<PutOutcome, StoreError> {
        match self {
            Store::Single(backend) => replace_on(backend, key, bytes, options).await,
            Store::Replicated(replicated) => replicated.replace_bytes(key, bytes, options).await,
        }
    }

    /// A streaming reader over the object's bytes.
    pub async fn get(&self, key: &ObjectKey) -> Result<ObjectReader, StoreError> {
        match self {
            Store::Single(backend) => backend.get(key).await,
            Store::Replicated(replicated) => replicated.get(key).await,
        }
    }

    /// The whole object in memory: for small objects (checkpoints, entries), not archives.
    pub async fn get_bytes(&self, key: &ObjectKey) -> Result<Bytes, StoreError> {
        crate::stream::read_whole(key.as_str(), self.get(key).await?).await
    }

    /// `len` bytes of the object from `offset` (one frame of an archive): exactly that many, or
    /// an error.
    pub async fn get_range(
        &self,
        key: &ObjectKey,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, StoreError> {
        let bytes = match self {
            Store::Single(backend) => backend.get_range(key, offset, len).await,
            Store::Replicated(replicated) => replicated.get_range(key, offset, len).await,
        }?;
        crate::stream::exact_range(key.as_str(), bytes, len)
    }

    /// Size, stored checksum, Object Lock and version of an object; `None` when it does not exist.
    pub async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectHead>, StoreError> {
        match self {
            Store::Single(backend) => backend.head(key).await,
            Store::Replicated(replicated) => replicated.head(key).await,
        }
    }

    /// Every object whose key starts with `prefix`, fetched page by page as the stream is consumed.
    pub fn list(&self, prefix: &str) -> BoxStream<'static, Result<ListedObject, StoreError>> {
        match self {
            Store::Single(backend) => backend.list(prefix),
            Store::Replicated(replicated) => replicated.list(prefix),
        }
    }

    /// Deletes every version of the object. `Err(StoreError::RetentionRefused)` when Object Lock refuses:
    /// a bug alarm (something deleted before retain-until), not a retry.
    pub async fn delete(&self, key: &ObjectKey) -> Result<DeleteOutcome, StoreError> {
        match self {
            Store::Single(backend) => backend.delete(key).await,
            Store::Replicated(replicated) => replicated.delete(key).await,
        }
    }

    /// Tries every protection against the provider(s) and reports what is really enforced.
    pub async fn probe(&self) -> Posture {
        match self {
            Store::Single(backend) => Posture::new(vec![backend.probe(Role::Only).await]),
            Store::Replicated(replicated) => replicated.probe().await,
        }
    }
}

impl From<Backend> for Store {
    fn from(backend: Backend) -> Self {
        Store::Single(backend)
    }
}

impl From<Replicated> for Store {
    fn from(replicated: Replicated) -> Self {
        Store::Replicated(Arc::new(replicated))
    }
}

/// Delete-then-put on one provider (see [`Store::replace_bytes`]).
pub(crate) async fn replace_on(
    backend: &Backend,
    key: &ObjectKey,
    bytes: Bytes,
    options: &PutOptions,
) -> Result<PutOutcome, StoreError> {
    backend.delete(key).await?;
    backend.put_bytes(key, bytes, options).await
}
