//! One provider: the local directory or an S3-compatible bucket.

use bytes::Bytes;
use futures::stream::BoxStream;
use tokio::io::AsyncRead;

use crate::error::StoreError;
use crate::fs::FsStore;
use crate::key::ObjectKey;
use crate::model::{DeleteOutcome, ListedObject, ObjectHead, ObjectReader, PutOptions, PutOutcome};
use crate::posture::{ProviderPosture, Role};
use crate::s3::S3Store;

#[derive(Debug, Clone)]
pub enum Backend {
    Fs(FsStore),
    S3(S3Store),
}

impl Backend {
    pub fn location(&self) -> String {
        match self {
            Backend::Fs(store) => store.location(),
            Backend::S3(store) => store.location(),
        }
    }

    /// Streams `reader` into a new object. Never overwrites: the same bytes already stored give
    /// `Presence::AlreadyPresent`, different bytes `StoreError::Incident`.
    pub async fn put_stream<R: AsyncRead + Unpin + Send>(
        &self,
        key: &ObjectKey,
        reader: R,
        options: &PutOptions,
    ) -> Result<PutOutcome, StoreError> {
        match self {
            Backend::Fs(store) => store.put_stream(key, reader, options).await,
            Backend::S3(store) => store.put_stream(key, reader, options).await,
        }
    }

    pub async fn get(&self, key: &ObjectKey) -> Result<ObjectReader, StoreError> {
        match self {
            Backend::Fs(store) => store.get(key).await,
            Backend::S3(store) => store.get(key).await,
        }
    }

    pub async fn get_range(
        &self,
        key: &ObjectKey,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, StoreError> {
        match self {
            Backend::Fs(store) => store.get_range(key, offset, len).await,
            Backend::S3(store) => store.get_range(key, offset, len).await,
        }
    }

    /// One stored version of the object (a version id the provider gave when it was written).
    /// The local directory keeps no versions: `NotFound`.
    pub async fn get_version(
        &self,
        key: &ObjectKey,
        version_id: &str,
    ) -> Result<ObjectReader, StoreError> {
        match self {
            Backend::Fs(_) => Err(StoreError::NotFound {
                key: key.to_string(),
            }),
            Backend::S3(store) => store.get_version(key, Some(version_id)).await,
        }
    }

    pub async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectHead>, StoreError> {
        match self {
            Backend::Fs(store) => store.head(key).await,
            Backend::S3(store) => store.head(key).await,
        }
    }

    pub fn list(&self, prefix: &str) -> BoxStream<'static, Result<ListedObject, StoreError>> {
        match self {
            Backend::Fs(store) => store.list(prefix),
            Backend::S3(store) => store.list(prefix),
        }
    }

    pub async fn delete(&self, key: &ObjectKey) -> Result<DeleteOutcome, StoreError> {
        match self {
            Backend::Fs(store) => store.delete(key).await,
            Backend::S3(store) => store.delete(key).await,
        }
    }

    pub async fn probe(&self, role: Role) -> ProviderPosture {
        match self {
            Backend::Fs(store) => store.probe(role).await,
            Backend::S3(store) => store.probe(role).await,
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

    /// The whole object in memory: for small objects (checkpoints, entries), not archives.
    pub async fn get_bytes(&self, key: &ObjectKey) -> Result<Bytes, StoreError> {
        crate::stream::read_whole(key.as_str(), self.get(key).await?).await
    }
}

impl From<FsStore> for Backend {
    fn from(store: FsStore) -> Self {
        Backend::Fs(store)
    }
}

impl From<S3Store> for Backend {
    fn from(store: S3Store) -> Self {
        Backend::S3(store)
    }
}
