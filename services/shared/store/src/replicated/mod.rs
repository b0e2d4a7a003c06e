//! Primary + secondary provider. Writes go to both at once from one read of the source; if one fails, the key
//! goes to a durable repair queue and the write still succeeds. Reads take whichever answers. Losing one
//! provider loses no archive and stops no ingestion.
//!
//! Version ids are per provider, and the ones this store reports are always the primary's: the
//! primary is the copy archive entries pin (the sealing copy of FORMAT.md §10). A write the primary
//! missed, or an answer only the secondary gave, carries no version id rather than the secondary's,
//! so the entry holds none and every copy verifies once repair has made it whole.

mod queue;
mod rebase;
mod repair;
mod side;
mod tee;

use std::fmt;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use time::OffsetDateTime;
use tokio::io::AsyncRead;

pub use queue::{FileRepairQueue, RepairEntry};
pub use repair::{Comparison, KeyRepair, REPLACED_KEY_SUFFIX, RepairReport};

use crate::backend::Backend;
use crate::error::StoreError;
use crate::key::ObjectKey;
use crate::model::{
    DeleteOutcome, ListedObject, ObjectHead, ObjectReader, PutOptions, PutOutcome, Side,
};
use crate::posture::{Posture, Role};

pub struct Replicated {
    primary: Backend,
    secondary: Backend,
    /// Translates keys for the secondary when it keeps the deployment under another prefix.
    rebase: rebase::Rebase,
    repairs: Arc<FileRepairQueue>,
}

impl fmt::Debug for Replicated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replicated")
            .field("primary", &self.primary.location())
            .field("secondary", &self.secondary.location())
            .finish_non_exhaustive()
    }
}

impl Replicated {
    pub fn new(primary: Backend, secondary: Backend, repairs: Arc<FileRepairQueue>) -> Self {
        Self {
            primary,
            secondary,
            rebase: rebase::Rebase::default(),
            repairs,
        }
    }

    /// The key prefix of each provider's deployment (`store.url`'s and `store.secondary.url`'s):
    /// keys are named as on the primary and moved under the secondary's prefix for it.
    #[must_use]
    pub fn with_prefixes(mut self, primary: &str, secondary: &str) -> Self {
        self.rebase = rebase::Rebase::new(primary, secondary);
        self
    }

    /// Where writes that reached one provider only are recorded.
    pub fn repair_queue_file(&self) -> &FileRepairQueue {
        &self.repairs
    }

    /// One provider, addressed with the primary's key names.
    pub fn side(&self, side: Side) -> side::SideView<'_> {
        match side {
            Side::Primary => side::SideView::new(&self.primary, None),
            Side::Secondary => side::SideView::new(&self.secondary, Some(&self.rebase)),
        }
    }

    pub async fn put_stream<R: AsyncRead + Unpin + Send>(
        &self,
        key: &ObjectKey,
        reader: R,
        options: &PutOptions,
    ) -> Result<PutOutcome, StoreError> {
        let (pump, to_primary, to_secondary) = tee::split(reader);
        let (_, primary, secondary) = tokio::join!(
            pump,
            self.side(Side::Primary)
                .put_stream(key, to_primary, options),
            self.side(Side::Secondary)
                .put_stream(key, to_secondary, options)
        );
        match (primary, secondary) {
            (Ok(outcome), Ok(_)) => Ok(outcome),
            (Err(error), _) | (_, Err(error)) if error.incident().is_some() => Err(error),
            (Ok(outcome), Err(error)) => self.degraded(key, outcome, Side::Secondary, error).await,
            (Err(error), Ok(outcome)) => {
                let outcome = PutOutcome {
                    version_id: None,
                    ..outcome
                };
                self.degraded(key, outcome, Side::Primary, error).await
            }
            (Err(primary), Err(secondary)) if is_callers_fault(&primary) => {
                tracing::debug!(%key, %secondary, "both providers refused the same content");
                Err(primary)
            }
            (Err(primary), Err(secondary)) => Err(StoreError::Replication {
                primary: Box::new(primary),
                secondary: Box::new(secondary),
            }),
        }
    }

    /// One provider has the object: record the other for repair, then report success.
    async fn degraded(
        &self,
        key: &ObjectKey,
        mut outcome: PutOutcome,
        missing_on: Side,
        error: StoreError,
    ) -> Result<PutOutcome, StoreError> {
        tracing::warn!(%key, ?missing_on, %error, "write reached one provider only; queued for repair");
        let entry = RepairEntry {
            key: key.clone(),
            missing_on,
            reason: error.to_string(),
            recorded_at: OffsetDateTime::now_utc(),
        };
        self.repairs.record(&entry).await?;
        outcome.pending_repair = Some(missing_on);
        Ok(outcome)
    }

    /// Replaces `key` on each provider on its own (see `Store::replace_bytes`): the write
    /// succeeds when one provider took it; the other keeps its previous copy, which its next
    /// replacement brings up to date. An Object Lock refusal or a racing writer on either side
    /// wins, as for every write.
    pub async fn replace_bytes(
        &self,
        key: &ObjectKey,
        bytes: bytes::Bytes,
        options: &PutOptions,
    ) -> Result<PutOutcome, StoreError> {
        let on = |side: Side| {
            let bytes = bytes.clone();
            async move {
                let view = self.side(side);
                view.delete(key).await?;
                view.put_stream(key, &bytes[..], options).await
            }
        };
        let (primary, secondary) = tokio::join!(on(Side::Primary), on(Side::Secondary));
        match (primary, secondary) {
            (Err(error), _) | (_, Err(error)) if error.incident().is_some() || error.is_alarm() => {
                Err(error)
            }
            (Ok(outcome), Ok(_)) => Ok(outcome),
            (Ok(outcome), Err(error)) | (Err(error), Ok(outcome)) => {
                tracing::warn!(%key, %error, "replaced on one provider only; the other keeps its previous copy until the next replacement");
                Ok(outcome)
            }
            (Err(primary), Err(secondary)) => Err(StoreError::Replication {
                primary: Box::new(primary),
                secondary: Box::new(secondary),
            }),
        }
    }

    pub async fn get(&self, key: &ObjectKey) -> Result<ObjectReader, StoreError> {
        let primary = match self.side(Side::Primary).get(key).await {
            Ok(reader) => return Ok(reader),
            Err(error) => error,
        };
        match self.side(Side::Secondary).get(key).await {
            Ok(mut reader) => {
                tracing::warn!(%key, %primary, "read served by the secondary provider");
                reader.version_id = None;
                Ok(reader)
            }
            Err(secondary) => Err(either_failure(key, primary, secondary)),
        }
    }

    /// A range of the object, from the primary provider, else the secondary.
    pub async fn get_range(
        &self,
        key: &ObjectKey,
        offset: u64,
        len: u64,
    ) -> Result<bytes::Bytes, StoreError> {
        let primary = match self.side(Side::Primary).get_range(key, offset, len).await {
            Ok(bytes) => return Ok(bytes),
            Err(error) => error,
        };
        match self.side(Side::Secondary).get_range(key, offset, len).await {
            Ok(bytes) => {
                tracing::warn!(%key, %primary, "read served by the secondary provider");
                Ok(bytes)
            }
            Err(secondary) => Err(either_failure(key, primary, secondary)),
        }
    }

    pub async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectHead>, StoreError> {
        let primary = match self.side(Side::Primary).head(key).await {
            Ok(Some(head)) => return Ok(Some(head)),
            Ok(None) => None,
            Err(error) => Some(error),
        };
        match (primary, self.side(Side::Secondary).head(key).await) {
            (_, Ok(Some(head))) => Ok(Some(ObjectHead {
                version_id: None,
                ..head
            })),
            (None, Ok(None)) => Ok(None),
            (Some(primary), Ok(None)) => Err(primary),
            (None, Err(secondary)) => Err(secondary),
            (Some(primary), Err(secondary)) => Err(StoreError::Replication {
                primary: Box::new(primary),
                secondary: Box::new(secondary),
            }),
        }
    }

    /// Lists from the primary; if it does not answer, from the secondary. Repair compares both.
    pub fn list(&self, prefix: &str) -> BoxStream<'static, Result<ListedObject, StoreError>> {
        let mut primary = self.side(Side::Primary).list(prefix);
        let secondary = self.side(Side::Secondary).lazy_list(prefix);
        stream::once(async move {
            match primary.next().await {
                Some(Err(error)) => {
                    tracing::warn!(%error, "primary listing failed; listing the secondary");
                    secondary
                }
                Some(Ok(first)) => stream::once(async move { Ok(first) })
                    .chain(primary)
                    .boxed(),
                None => stream::empty().boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    /// Deletes from both. A refusal from Object Lock on either side wins; otherwise any failure is returned
    /// (the reaper retries), because a key deleted on one side only would still be served from the other.
    pub async fn delete(&self, key: &ObjectKey) -> Result<DeleteOutcome, StoreError> {
        let (primary, secondary) = tokio::join!(
            self.side(Side::Primary).delete(key),
            self.side(Side::Secondary).delete(key)
        );
        match (primary, secondary) {
            (Err(error), _) | (_, Err(error)) if error.is_alarm() => Err(error),
            (Ok(DeleteOutcome::NotFound), Ok(DeleteOutcome::NotFound)) => {
                Ok(DeleteOutcome::NotFound)
            }
            (Ok(first), Ok(second)) => Ok(DeleteOutcome::Deleted {
                versions: deleted_versions(&first) + deleted_versions(&second),
            }),
            (Err(primary), Ok(_)) => Err(primary),
            (Ok(_), Err(secondary)) => Err(secondary),
            (Err(primary), Err(secondary)) => Err(StoreError::Replication {
                primary: Box::new(primary),
                secondary: Box::new(secondary),
            }),
        }
    }

    pub async fn probe(&self) -> Posture {
        let (primary, secondary) = tokio::join!(
            self.primary.probe(Role::Primary),
            self.secondary.probe(Role::Secondary)
        );
        Posture::new(vec![primary, secondary])
    }
}

fn deleted_versions(outcome: &DeleteOutcome) -> usize {
    match outcome {
        DeleteOutcome::Deleted { versions } => *versions,
        DeleteOutcome::NotFound => 0,
    }
}

/// Failures caused by what the caller sent, which the other provider would report just the same.
fn is_callers_fault(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Source { .. }
            | StoreError::ChecksumMismatch { .. }
            | StoreError::InvalidKey { .. }
    )
}

fn either_failure(key: &ObjectKey, primary: StoreError, secondary: StoreError) -> StoreError {
    match (&primary, &secondary) {
        (StoreError::NotFound { .. }, StoreError::NotFound { .. }) => StoreError::NotFound {
            key: key.to_string(),
        },
        _ => StoreError::Replication {
            primary: Box::new(primary),
            secondary: Box::new(secondary),
        },
    }
}
