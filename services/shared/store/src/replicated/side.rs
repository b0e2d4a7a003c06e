//! One provider of a replicated store, addressed with the primary's key names.

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use tokio::io::AsyncRead;

use super::rebase::Rebase;
use crate::backend::Backend;
use crate::error::StoreError;
use crate::key::ObjectKey;
use crate::model::{DeleteOutcome, ListedObject, ObjectHead, ObjectReader, PutOptions, PutOutcome};

#[derive(Clone, Copy)]
pub struct SideView<'a> {
    backend: &'a Backend,
    rebase: Option<&'a Rebase>,
}

impl<'a> SideView<'a> {
    pub(crate) fn new(backend: &'a Backend, rebase: Option<&'a Rebase>) -> Self {
        Self { backend, rebase }
    }

    pub fn backend(&self) -> &'a Backend {
        self.backend
    }

    pub fn location(&self) -> String {
        self.backend.location()
    }

    fn key(&self, key: &ObjectKey) -> Result<ObjectKey, StoreError> {
        match self.rebase {
            Some(rebase) => rebase.key_to_secondary(key),
            None => Ok(key.clone()),
        }
    }

    pub async fn put_stream<R: AsyncRead + Unpin + Send>(
        self,
        key: &ObjectKey,
        reader: R,
        options: &PutOptions,
    ) -> Result<PutOutcome, StoreError> {
        self.backend
            .put_stream(&self.key(key)?, reader, options)
            .await
    }

    pub async fn get(self, key: &ObjectKey) -> Result<ObjectReader, StoreError> {
        self.backend.get(&self.key(key)?).await
    }

    pub async fn get_range(
        self,
        key: &ObjectKey,
        offset: u64,
        len: u64,
    ) -> Result<bytes::Bytes, StoreError> {
        self.backend.get_range(&self.key(key)?, offset, len).await
    }

    pub async fn head(self, key: &ObjectKey) -> Result<Option<ObjectHead>, StoreError> {
        self.backend.head(&self.key(key)?).await
    }

    pub async fn delete(self, key: &ObjectKey) -> Result<DeleteOutcome, StoreError> {
        self.backend.delete(&self.key(key)?).await
    }

    /// Listed keys come back named as on the primary.
    pub fn list(&self, prefix: &str) -> BoxStream<'static, Result<ListedObject, StoreError>> {
        let Some(rebase) = self.rebase.cloned() else {
            return self.backend.list(prefix);
        };
        self.backend
            .list(&rebase.primary_to_secondary(prefix))
            .map(move |listed| {
                listed.map(|mut object| {
                    object.key = rebase.secondary_to_primary(&object.key);
                    object
                })
            })
            .boxed()
    }

    /// A listing started only when first polled, so the provider is asked only if needed.
    pub fn lazy_list(&self, prefix: &str) -> BoxStream<'static, Result<ListedObject, StoreError>> {
        let backend = self.backend.clone();
        let rebase = self.rebase.cloned();
        let prefix = prefix.to_owned();
        stream::once(async move { SideView::new(&backend, rebase.as_ref()).list(&prefix) })
            .flatten()
            .boxed()
    }
}
