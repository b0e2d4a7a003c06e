//! Repair: copy what one provider lacks from the other, verifying hashes, and never overwrite a difference.
//! An object whose Object Lock retention has already run out is not copied: the other provider may have
//! pruned it on purpose (retention, erasure requests), and a copy would bring deleted data back.

use std::collections::BTreeMap;

use futures::StreamExt;
use time::OffsetDateTime;

use super::Replicated;
use super::queue::FileRepairQueue;
use crate::digest::Sha256Hash;
use crate::error::{Incident, StoreError};
use crate::key::ObjectKey;
use crate::model::Side;
use crate::model::{ObjectHead, PutOptions};
use crate::stream::hash_stream;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRepair {
    /// Both providers hold the same bytes.
    Consistent,
    /// Copied to the side that lacked it; `sha256` is the hash of the bytes read from the source.
    Copied { to: Side, sha256: Sha256Hash },
    /// Neither provider has the key (deleted by retention, or never written).
    MissingOnBoth,
    /// One provider lacks the key and the other's copy is locked only until `retain_until`, which has
    /// passed: it is due for pruning (and may have been pruned on purpose on the other side), so it was
    /// not copied. Nothing was changed.
    PastRetention {
        /// The side that holds the object.
        on: Side,
        retain_until: OffsetDateTime,
    },
    /// The providers hold different bytes under the key. Nothing was changed.
    Incident(Incident),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    pub consistent: usize,
    pub copied: Vec<(ObjectKey, Side)>,
    pub missing_on_both: Vec<ObjectKey>,
    /// Keys one provider lacks whose other copy's retention has run out; not copied (see
    /// [`KeyRepair::PastRetention`]).
    pub past_retention: Vec<ObjectKey>,
    pub incidents: Vec<Incident>,
    /// Keys that could not be repaired this time, with the reason (typically a provider still down).
    pub failed: Vec<(String, String)>,
}

impl RepairReport {
    fn note(&mut self, key: &ObjectKey, result: Result<KeyRepair, StoreError>) -> bool {
        match result {
            Ok(KeyRepair::Consistent) => self.consistent += 1,
            Ok(KeyRepair::Copied { to, .. }) => self.copied.push((key.clone(), to)),
            Ok(KeyRepair::MissingOnBoth) => self.missing_on_both.push(key.clone()),
            Ok(KeyRepair::PastRetention { .. }) => self.past_retention.push(key.clone()),
            Ok(KeyRepair::Incident(incident)) => self.incidents.push(incident),
            Err(error) => {
                self.failed.push((key.to_string(), error.to_string()));
                return false;
            }
        }
        true
    }
}

impl Replicated {
    /// Brings one key into agreement: copies it to the side that lacks it (unless its retention has
    /// passed, see [`KeyRepair::PastRetention`]), or compares the two copies.
    pub async fn repair_key(&self, key: &ObjectKey) -> Result<KeyRepair, StoreError> {
        let (primary, secondary) = tokio::join!(
            self.side(Side::Primary).head(key),
            self.side(Side::Secondary).head(key)
        );
        match (primary?, secondary?) {
            (None, None) => Ok(KeyRepair::MissingOnBoth),
            (Some(head), None) => self.copy(key, Side::Primary, &head).await,
            (None, Some(head)) => self.copy(key, Side::Secondary, &head).await,
            // Providers may hold different versions of the pointer between replacements; the
            // next replacement brings the one that missed it up to date.
            (Some(_), Some(_)) if is_replaced_key(key.as_str()) => Ok(KeyRepair::Consistent),
            (Some(primary), Some(secondary)) => self.compare(key, &primary, &secondary).await,
        }
    }

    async fn copy(
        &self,
        key: &ObjectKey,
        from: Side,
        head: &ObjectHead,
    ) -> Result<KeyRepair, StoreError> {
        let to = from.other();
        if let Some(retain_until) = retention_passed(head, OffsetDateTime::now_utc()) {
            tracing::info!(%key, on = ?from, %retain_until, "not repairing an object past its retention");
            return Ok(KeyRepair::PastRetention {
                on: from,
                retain_until,
            });
        }
        let retain_until = head.lock.as_ref().map(|lock| lock.retain_until);
        let reader = self.side(from).get(key).await?;
        let options = PutOptions {
            // A provider-verified hash of the source makes the destination refuse anything else.
            sha256: head.sha256,
            retain_until,
            content_type: head.content_type.clone(),
        };
        match self.side(to).put_stream(key, reader, &options).await {
            Ok(outcome) => {
                if outcome.size != head.size {
                    return Err(StoreError::Unavailable {
                        operation: "repair copy",
                        key: key.to_string(),
                        detail: format!(
                            "copied {} bytes but the source holds {}",
                            outcome.size, head.size
                        ),
                    });
                }
                tracing::info!(%key, ?to, sha256 = %outcome.sha256, "repaired a missing object");
                Ok(KeyRepair::Copied {
                    to,
                    sha256: outcome.sha256,
                })
            }
            Err(StoreError::Incident(incident)) => Ok(KeyRepair::Incident(*incident)),
            Err(error) => Err(error),
        }
    }

    /// Whether [`Self::repair_key`] would leave the key alone as [`KeyRepair::PastRetention`], from the
    /// two heads alone (nothing is read or written; for a dry run): `Some` with the side that holds it
    /// and its retain-until when exactly one provider holds the key and that copy's retention has passed.
    pub async fn past_retention(
        &self,
        key: &ObjectKey,
    ) -> Result<Option<(Side, OffsetDateTime)>, StoreError> {
        let (primary, secondary) = tokio::join!(
            self.side(Side::Primary).head(key),
            self.side(Side::Secondary).head(key)
        );
        let now = OffsetDateTime::now_utc();
        Ok(match (primary?, secondary?) {
            (Some(head), None) => retention_passed(&head, now).map(|until| (Side::Primary, until)),
            (None, Some(head)) => {
                retention_passed(&head, now).map(|until| (Side::Secondary, until))
            }
            _ => None,
        })
    }

    async fn compare(
        &self,
        key: &ObjectKey,
        primary: &ObjectHead,
        secondary: &ObjectHead,
    ) -> Result<KeyRepair, StoreError> {
        let primary_sha256 = self.content_hash(Side::Primary, key, primary).await?;
        let secondary_sha256 = self.content_hash(Side::Secondary, key, secondary).await?;
        if primary_sha256 == secondary_sha256 && primary.size == secondary.size {
            return Ok(KeyRepair::Consistent);
        }
        Ok(KeyRepair::Incident(Incident {
            key: key.to_string(),
            provider: format!("secondary {}", self.secondary.location()),
            existing_sha256: secondary_sha256,
            existing_size: secondary.size,
            attempted_sha256: primary_sha256,
            attempted_size: primary.size,
        }))
    }

    /// The provider's verified full-object hash when it keeps one, else the hash of the bytes it serves.
    async fn content_hash(
        &self,
        side: Side,
        key: &ObjectKey,
        head: &ObjectHead,
    ) -> Result<Sha256Hash, StoreError> {
        if let Some(sha256) = head.sha256 {
            return Ok(sha256);
        }
        let reader = self.side(side).get(key).await?;
        let (sha256, _) = hash_stream(reader)
            .await
            .map_err(|error| StoreError::Unavailable {
                operation: "repair read",
                key: key.to_string(),
                detail: error.to_string(),
            })?;
        Ok(sha256)
    }

    /// Repairs every key in the queue; entries that were repaired (or are moot) are removed from it.
    pub async fn repair_queue(&self, queue: &FileRepairQueue) -> Result<RepairReport, StoreError> {
        let mut report = RepairReport::default();
        let mut done = Vec::new();
        for entry in queue.pending().await? {
            if report.note(&entry.key, self.repair_key(&entry.key).await) {
                done.push(entry);
            }
        }
        queue.remove(&done).await?;
        Ok(report)
    }

    /// What each provider lacks under `prefix`, from both listings (no object is read). Keys of
    /// the providers' own probes (`_rainlogs-*` at the bucket's root) are not compared.
    pub async fn compare_listings(&self, prefix: &str) -> Result<Comparison, StoreError> {
        let (primary, secondary) = tokio::join!(
            sizes_under(self.side(Side::Primary), prefix),
            sizes_under(self.side(Side::Secondary), prefix)
        );
        let (primary, secondary) = (primary?, secondary?);
        let mut comparison = Comparison::default();
        for (key, size) in &primary {
            match secondary.get(key) {
                None => comparison.secondary_lacks.push((key.clone(), *size)),
                Some(other) if other != size && !is_replaced_key(key) => {
                    comparison.sizes_differ.push((key.clone(), *size, *other));
                }
                Some(_) => comparison.same += 1,
            }
        }
        for (key, size) in &secondary {
            if !primary.contains_key(key) {
                comparison.primary_lacks.push((key.clone(), *size));
            }
        }
        Ok(comparison)
    }

    /// Compares both listings under `prefix` and repairs every key that is missing on one side or whose sizes
    /// differ. Keys present on both with equal size are counted consistent without reading them (the verifier
    /// checks content); use `repair_key` for a deep comparison of one key.
    pub async fn repair_prefix(&self, prefix: &str) -> Result<RepairReport, StoreError> {
        let comparison = self.compare_listings(prefix).await?;
        let mut report = RepairReport {
            consistent: comparison.same,
            ..RepairReport::default()
        };
        for key in comparison.keys_to_repair() {
            match ObjectKey::new(key.to_owned()) {
                Ok(key) => {
                    report.note(&key, self.repair_key(&key).await);
                }
                Err(error) => report.failed.push((key.to_owned(), error.to_string())),
            }
        }
        Ok(report)
    }
}

/// Keys (named as on the primary) with sizes, by what differs between the providers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    pub same: usize,
    pub primary_lacks: Vec<(String, u64)>,
    pub secondary_lacks: Vec<(String, u64)>,
    /// (key, size on the primary, size on the secondary).
    pub sizes_differ: Vec<(String, u64, u64)>,
}

impl Comparison {
    pub fn is_whole(&self) -> bool {
        self.primary_lacks.is_empty()
            && self.secondary_lacks.is_empty()
            && self.sizes_differ.is_empty()
    }

    /// Every key repair has to look at, in key order.
    pub fn keys_to_repair(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .primary_lacks
            .iter()
            .chain(&self.secondary_lacks)
            .map(|(key, _)| key.as_str())
            .chain(self.sizes_differ.iter().map(|(key, _, _)| key.as_str()))
            .collect();
        keys.sort_unstable();
        keys
    }
}

async fn sizes_under(
    backend: super::side::SideView<'_>,
    prefix: &str,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut listing = backend.list(prefix);
    let mut sizes = BTreeMap::new();
    while let Some(object) = listing.next().await {
        let object = object?;
        if object.key.starts_with("_rainlogs-") {
            continue;
        }
        sizes.insert(object.key, object.size);
    }
    Ok(sizes)
}

/// The retain-until of an object whose Object Lock retention has run out by `now`. Such an object is due
/// for pruning, and the reaper may already have pruned it on the other provider on purpose: copying it
/// back would resurrect deleted data. An object with no lock at all (a bucket without Object Lock, the
/// local store) has no retention to run out and is copied as before.
fn retention_passed(head: &ObjectHead, now: OffsetDateTime) -> Option<OffsetDateTime> {
    head.lock
        .as_ref()
        .map(|lock| lock.retain_until)
        .filter(|until| *until <= now)
}

/// The one key the archive layout ever replaces (the latest checkpoint of a zone's log; every
/// checkpoint is also kept under its own create-only key). See `Store::replace_bytes`.
pub const REPLACED_KEY_SUFFIX: &str = "/tlog/checkpoint";

fn is_replaced_key(key: &str) -> bool {
    key.ends_with(REPLACED_KEY_SUFFIX)
}
