//! Reading the store: every failure becomes a finding that says whether the object is missing (evidence) or
//! could not be read (no verdict).

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::TryStreamExt as _;
use rainlogs_store::{ListedObject, ObjectKey, Store, StoreError};

use crate::finding::Reason;

/// Why a read produced no bytes, other than the object being absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadFailure {
    pub reason: Reason,
    pub message: String,
}

impl ReadFailure {
    /// The store itself is unreachable: no other read will do better, so the run stops.
    pub fn is_fatal(&self) -> bool {
        self.reason == Reason::StoreUnreachable
    }
}

/// The outcome of fetching one small object.
#[derive(Debug)]
pub(crate) enum Fetched {
    Found(Bytes),
    Missing,
    Failed(ReadFailure),
}

/// Sorts a store error into "the object is not there" (`None`) or a failure to read.
pub(crate) fn classify(error: &StoreError) -> Option<ReadFailure> {
    let reason = match error {
        StoreError::NotFound { .. } => return None,
        StoreError::Unavailable { .. } => Reason::StoreUnreachable,
        StoreError::AccessDenied { .. } => Reason::AccessDenied,
        StoreError::Replication { primary, secondary } => {
            // Either side answering "not found" is an answer; otherwise report the primary's failure.
            if matches!(**primary, StoreError::NotFound { .. })
                || matches!(**secondary, StoreError::NotFound { .. })
            {
                return None;
            }
            return classify(primary);
        }
        _ => Reason::ReadFailed,
    };
    Some(ReadFailure {
        reason,
        message: error.to_string(),
    })
}

fn object_key(key: &str) -> Result<ObjectKey, ReadFailure> {
    ObjectKey::new(key).map_err(|error| ReadFailure {
        reason: Reason::ReadFailed,
        message: error.to_string(),
    })
}

/// Reads a small object (checkpoint, tile, bundle) whole.
pub(crate) async fn fetch(store: &Store, key: &str) -> Fetched {
    let key = match object_key(key) {
        Ok(key) => key,
        Err(failure) => return Fetched::Failed(failure),
    };
    match store.get_bytes(&key).await {
        Ok(bytes) => Fetched::Found(bytes),
        Err(error) => match classify(&error) {
            None => Fetched::Missing,
            Some(failure) => Fetched::Failed(failure),
        },
    }
}

/// Every object below `prefix`, by key.
pub(crate) type Listing = BTreeMap<String, ListedObject>;

/// Lists everything below `prefix` (the whole zone: a few hundred bytes per object).
pub(crate) async fn list(store: &Store, prefix: &str) -> Result<Listing, ReadFailure> {
    store
        .list(prefix)
        .map_ok(|object| (object.key.clone(), object))
        .try_collect()
        .await
        .map_err(|error| {
            classify(&error).unwrap_or_else(|| ReadFailure {
                reason: Reason::ReadFailed,
                message: error.to_string(),
            })
        })
}

/// Opens a streaming reader over an object.
pub(crate) async fn open(
    store: &Store,
    key: &str,
) -> Result<Option<rainlogs_store::ObjectReader>, ReadFailure> {
    let key = object_key(key)?;
    match store.get(&key).await {
        Ok(reader) => Ok(Some(reader)),
        Err(error) => match classify(&error) {
            None => Ok(None),
            Some(failure) => Err(failure),
        },
    }
}

/// HEAD of an object: size, Object Lock, version.
pub(crate) async fn head(
    store: &Store,
    key: &str,
) -> Result<Option<rainlogs_store::ObjectHead>, ReadFailure> {
    let key = object_key(key)?;
    store.head(&key).await.map_err(|error| {
        classify(&error).unwrap_or_else(|| ReadFailure {
            reason: Reason::ReadFailed,
            message: error.to_string(),
        })
    })
}
