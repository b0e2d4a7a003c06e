//! One pass of retention, in two steps per archive so a crash anywhere is repaired by the next
//! pass and an auditor never sees a gone archive without its `prune` entry:
//!
//! 1. **Log the intent.** For an archive whose retain-until has passed and that no legal hold
//!    covers, publish `archive.pruned` (a deterministic event id, so repeats are dropped); the
//!    sealer appends the `prune` entry and the schedule projection marks the row pruned.
//! 2. **Delete.** For a pruned row whose object is still stored and that no hold covers, delete
//!    the object on every provider. A missing object counts as deleted. An Object Lock refusal
//!    is recorded and raised as an alarm (something believed retain-until had passed when the
//!    provider did not), and never retried in a loop. The archive's index object (its key
//!    follows from the archive's) goes with it: the archive's `prune` entry covers both.

use rainlogs_bus::Bus;
use rainlogs_integrity::{Entry, EntryBody};
use rainlogs_schemas::events::ArchivePruned;
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_store::{DeleteOutcome, ObjectKey, Store, StoreError};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::metrics::ReaperMetrics;
use crate::schedule::as_i64;

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("PostgreSQL: {0}")]
    Db(#[from] sqlx::Error),
}

/// Why an archive is (or is not yet) going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Retain-until has passed and nothing holds it: the prune entry is requested.
    Prune,
    /// Its prune entry is logged; the object is deleted now.
    Delete,
    /// A legal hold keeps it.
    Held { hold_id: String },
}

/// One archive the pass looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub tenant: String,
    pub zone: String,
    pub entry_index: u64,
    pub object_key: String,
    pub stored_size: u64,
    pub retain_until_ns: u64,
    pub decision: Decision,
}

/// What a pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// `archive.pruned` events published.
    pub prunes_requested: usize,
    /// Objects deleted (or found already gone) after their prune entry.
    pub deleted: usize,
    pub deleted_bytes: u64,
    /// Archives a legal hold kept.
    pub held: usize,
    /// Deletes the provider refused (Object Lock): alarms.
    pub refused: Vec<String>,
    /// Deletes or publishes that failed and are retried next pass.
    pub failed: usize,
}

/// What lies ahead, for operators: when the next archive expires and how many holds are set.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outlook {
    /// Earliest retain-until after `now` of an archive not yet pruned.
    pub next_expiry_ns: Option<u64>,
    /// Legal holds in force, over all tenants.
    pub holds: usize,
}

#[derive(sqlx::FromRow)]
struct Row {
    tenant: String,
    zone: String,
    entry_index: i64,
    entry: Vec<u8>,
    object_key: String,
    stored_size: i64,
    retain_until_ns: i64,
    pruned_at_ns: Option<i64>,
    hold_id: Option<String>,
}

/// Archives past retain-until and not yet deleted; with `$3 = false` only those no hold covers,
/// so held archives never crowd the others out of a pass.
const DUE: &str = "SELECT a.tenant, a.zone, a.entry_index, a.entry, a.object_key, a.stored_size, \
     a.retain_until_ns, a.pruned_at_ns, h.hold_id \
     FROM retention_archives a \
     LEFT JOIN LATERAL (SELECT hold_id FROM legal_holds \
        WHERE tenant = a.tenant AND (zone IS NULL OR zone = a.zone) \
        ORDER BY hold_id LIMIT 1) h ON TRUE \
     WHERE a.retain_until_ns <= $1 AND a.deleted_at_ns IS NULL AND a.refused IS NULL \
       AND ($3 OR h.hold_id IS NULL) \
     ORDER BY a.retain_until_ns, a.zone, a.entry_index LIMIT $2";

const HELD: &str = "SELECT count(*) FROM retention_archives a \
     WHERE a.retain_until_ns <= $1 AND a.deleted_at_ns IS NULL AND a.refused IS NULL \
       AND EXISTS (SELECT 1 FROM legal_holds h \
         WHERE h.tenant = a.tenant AND (h.zone IS NULL OR h.zone = a.zone))";

/// Retention over one database and one store.
pub struct Reaper {
    pub db: PgPool,
    pub bus: Bus,
    pub store: Store,
    /// Archives looked at per pass; the next pass continues.
    pub batch: i64,
    pub metrics: Option<ReaperMetrics>,
}

impl Reaper {
    /// What a pass at `now_ns` would do, without doing it.
    pub async fn plan(&self, now_ns: u64) -> Result<Vec<Candidate>, SweepError> {
        Ok(self
            .due(now_ns, true)
            .await?
            .into_iter()
            .map(|(row, _)| row)
            .collect())
    }

    async fn due(
        &self,
        now_ns: u64,
        include_held: bool,
    ) -> Result<Vec<(Candidate, Row)>, SweepError> {
        let rows: Vec<Row> = sqlx::query_as(DUE)
            .bind(as_i64(now_ns))
            .bind(self.batch)
            .bind(include_held)
            .fetch_all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let decision = match (&row.hold_id, row.pruned_at_ns) {
                    (Some(hold_id), _) => Decision::Held {
                        hold_id: hold_id.clone(),
                    },
                    (None, None) => Decision::Prune,
                    (None, Some(_)) => Decision::Delete,
                };
                let candidate = Candidate {
                    tenant: row.tenant.clone(),
                    zone: row.zone.clone(),
                    entry_index: u64::try_from(row.entry_index).unwrap_or_default(),
                    object_key: row.object_key.clone(),
                    stored_size: u64::try_from(row.stored_size).unwrap_or_default(),
                    retain_until_ns: u64::try_from(row.retain_until_ns).unwrap_or_default(),
                    decision,
                };
                (candidate, row)
            })
            .collect())
    }

    /// When the next archive expires after `now_ns`, and how many holds are in force.
    pub async fn outlook(&self, now_ns: u64) -> Result<Outlook, SweepError> {
        let (next, holds): (Option<i64>, i64) = sqlx::query_as(
            "SELECT (SELECT min(retain_until_ns) FROM retention_archives \
                     WHERE pruned_at_ns IS NULL AND retain_until_ns > $1), \
                    (SELECT count(*) FROM legal_holds)",
        )
        .bind(as_i64(now_ns))
        .fetch_one(&self.db)
        .await?;
        Ok(Outlook {
            next_expiry_ns: next.and_then(|n| u64::try_from(n).ok()),
            holds: usize::try_from(holds).unwrap_or_default(),
        })
    }

    /// One pass at `now_ns` (the clock is the caller's, so tests can stand a second before or
    /// after a retain-until).
    pub async fn sweep(&self, now_ns: u64) -> Result<SweepReport, SweepError> {
        let (held,): (i64,) = sqlx::query_as(HELD)
            .bind(as_i64(now_ns))
            .fetch_one(&self.db)
            .await?;
        let mut report = SweepReport {
            held: usize::try_from(held).unwrap_or_default(),
            ..SweepReport::default()
        };
        for (candidate, row) in self.due(now_ns, false).await? {
            match candidate.decision {
                Decision::Held { .. } => {}
                Decision::Prune => match self.request_prune(&candidate, &row, now_ns).await {
                    Ok(()) => report.prunes_requested += 1,
                    Err(e) => {
                        report.failed += 1;
                        tracing::warn!(zone = %candidate.zone, index = candidate.entry_index,
                            error = %e, "prune request not published; next pass retries");
                    }
                },
                Decision::Delete => self.delete(&candidate, now_ns, &mut report).await?,
            }
        }
        if let Some(metrics) = &self.metrics {
            metrics.record(&report);
            match self.outlook(now_ns).await {
                Ok(outlook) => metrics.record_outlook(&outlook),
                Err(e) => tracing::warn!(error = %e, "next expiry and holds not measured"),
            }
        }
        Ok(report)
    }

    async fn request_prune(
        &self,
        candidate: &Candidate,
        row: &Row,
        now_ns: u64,
    ) -> Result<(), rainlogs_bus::PublishError> {
        let mut envelope = Envelope::new(
            candidate.tenant.clone(),
            Some(candidate.zone.clone()),
            Actor::service(crate::NAME),
            Event::ArchivePruned(ArchivePruned {
                target_index: candidate.entry_index,
                target_entry: row.entry.clone(),
                policy: policy_name(&row.entry),
                pruned_at_ns: as_i64(now_ns),
            }),
        );
        envelope.id = prune_event_id(&row.entry);
        self.bus
            .publish(&subjects::archive(&candidate.zone), &envelope)
            .await?;
        tracing::info!(zone = %candidate.zone, index = candidate.entry_index,
            object = %candidate.object_key, "retain-until passed; prune requested");
        Ok(())
    }

    async fn delete(
        &self,
        candidate: &Candidate,
        now_ns: u64,
        report: &mut SweepReport,
    ) -> Result<(), SweepError> {
        let outcome = self.delete_with_index(&candidate.object_key).await;
        match outcome {
            Ok(DeleteOutcome::Deleted { .. } | DeleteOutcome::NotFound) => {
                sqlx::query(
                    "UPDATE retention_archives SET deleted_at_ns = $3 \
                     WHERE zone = $1 AND entry_index = $2",
                )
                .bind(&candidate.zone)
                .bind(as_i64(candidate.entry_index))
                .bind(as_i64(now_ns))
                .execute(&self.db)
                .await?;
                report.deleted += 1;
                report.deleted_bytes += candidate.stored_size;
                tracing::info!(zone = %candidate.zone, index = candidate.entry_index,
                    object = %candidate.object_key, "archive deleted after its retain-until");
            }
            Err(e @ (StoreError::RetentionRefused { .. } | StoreError::InvalidKey { .. })) => {
                let reason = e.to_string();
                tracing::error!(alarm = true, zone = %candidate.zone, index = candidate.entry_index,
                    object = %candidate.object_key, %reason,
                    "archive past its logged retain-until cannot be deleted; an operator must look");
                sqlx::query(
                    "UPDATE retention_archives SET refused = $3 WHERE zone = $1 AND entry_index = $2",
                )
                .bind(&candidate.zone)
                .bind(as_i64(candidate.entry_index))
                .bind(&reason)
                .execute(&self.db)
                .await?;
                report.refused.push(reason);
            }
            Err(e) => {
                report.failed += 1;
                tracing::warn!(zone = %candidate.zone, object = %candidate.object_key, error = %e,
                    "delete failed; next pass retries");
            }
        }
        Ok(())
    }
}

impl Reaper {
    /// Deletes the archive's index object (where it has one), then the archive.
    async fn delete_with_index(&self, object_key: &str) -> Result<DeleteOutcome, StoreError> {
        if let Some(index) = rainlogs_integrity::layout::index_key(object_key) {
            self.store.delete(&ObjectKey::new(index)?).await?;
        }
        self.store.delete(&ObjectKey::new(object_key)?).await
    }
}

/// The same id for every request to prune one entry, so JetStream keeps one of them.
fn prune_event_id(target_entry: &[u8]) -> uuid::Uuid {
    let digest = Sha256::new()
        .chain_update(b"rainlogs archive.pruned\0")
        .chain_update(target_entry)
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// `retention-<days>d`: the retention the archive was sealed with (retain-until minus window end).
fn policy_name(target_entry: &[u8]) -> String {
    let days = Entry::decode(target_entry)
        .ok()
        .and_then(|entry| match entry.body {
            EntryBody::Archive(a) => a
                .retain_until_ns
                .checked_sub(a.window.end_ns())
                .map(|ns| ns / (86_400 * 1_000_000_000)),
            _ => None,
        })
        .unwrap_or(0);
    format!("retention-{days}d")
}
