//! Closing one window: turn its `WindowClosed` into exactly one `archive.*` event.
//!
//! Complete windows: if the bucket already holds an archive for the window, that archive is the
//! window's archive (first stored wins; see `existing`). Otherwise the batches of the attempt the
//! `WindowClosed` names are assembled, counted against what the collector announced, stored under
//! their content-derived key with retain-until, and only then announced on `rl.archive.<zone>`.
//! Empty and gap windows are announced as such. The event id is derived from (zone, dataset,
//! window), so a re-run after a crash is deduplicated by JetStream.

use std::sync::Arc;

use rainlogs_bus::async_nats::jetstream::stream::Stream;
use rainlogs_bus::{Bus, PublishError};
use rainlogs_integrity::BucketPrefix;
use rainlogs_schemas::events::{
    ArchiveStored, IndexStored, Method, WindowClosed, WindowEmpty, WindowGap, WindowOutcome,
};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_store::{ObjectKey, PutOptions, Store, StoreError};
use time::OffsetDateTime;

use crate::assemble::{self, Expected};
use crate::existing::{self, StoredArchive};
use crate::ids::{late_outcome_id, window_outcome_id};
use crate::retention::RetentionPolicies;
use crate::settings::ArchiverSettings;
use crate::target::ArchiveTarget;
use crate::tracker::WindowKey;

/// Everything a close needs; shared by all close tasks.
pub struct CloseContext {
    pub bus: Bus,
    pub batch_stream: Stream,
    pub store: Store,
    pub prefix: BucketPrefix,
    pub settings: ArchiverSettings,
    /// Kept current from the control stream by the archiver's loop.
    pub retention: std::sync::RwLock<RetentionPolicies>,
}

/// One window to close, with the stream sequences of the named attempt's batches received so far.
pub struct CloseJob {
    pub key: WindowKey,
    pub envelope: Envelope,
    pub closed: WindowClosed,
    pub sequences: Vec<u64>,
}

#[derive(Debug)]
pub enum CloseOutcome {
    /// The window's event is on `rl.archive.<zone>`: `stored`, `empty` or `gap`, with the
    /// archive's size.
    Published {
        outcome: &'static str,
        stored_bytes: u64,
    },
    /// Batches of the attempt are still to come.
    NotReady { have: usize, want: u32 },
    /// A dependency failed; the same close can succeed later.
    Retry { reason: String },
    /// The window can never be archived from these messages.
    Failed { reason: String, alarm: bool },
}

fn retry(reason: impl std::fmt::Display) -> CloseOutcome {
    CloseOutcome::Retry {
        reason: reason.to_string(),
    }
}

fn failed(reason: impl std::fmt::Display) -> CloseOutcome {
    CloseOutcome::Failed {
        reason: reason.to_string(),
        alarm: false,
    }
}

pub async fn close_window(ctx: Arc<CloseContext>, job: CloseJob) -> CloseOutcome {
    let target = match ArchiveTarget::new(
        &ctx.prefix,
        &job.envelope.tenant,
        &job.key.zone,
        &job.key.dataset,
        &job.closed.window,
    ) {
        Ok(target) => target,
        Err(e) => return failed(e),
    };
    match job.closed.outcome.clone() {
        WindowOutcome::Empty { method } => {
            let event = Event::WindowEmpty(WindowEmpty {
                dataset: job.key.dataset.clone(),
                window: job.closed.window,
                attempt: job.closed.attempt,
                method,
            });
            publish(&ctx, &job, event).await
        }
        WindowOutcome::Gap { reason, detail } => {
            let event = Event::WindowGap(WindowGap {
                dataset: job.key.dataset.clone(),
                window: job.closed.window,
                attempt: job.closed.attempt,
                reason,
                detail,
            });
            publish(&ctx, &job, event).await
        }
        WindowOutcome::Complete {
            batches,
            records,
            method,
            sample_interval,
            fields,
        } => {
            let announced = Announced {
                batches,
                records,
                method,
                sample_interval,
                fields,
            };
            close_complete(&ctx, &job, &target, announced).await
        }
    }
}

/// What the collector said about a complete window.
struct Announced {
    batches: u32,
    records: u64,
    method: Method,
    sample_interval: u32,
    fields: String,
}

async fn close_complete(
    ctx: &CloseContext,
    job: &CloseJob,
    target: &ArchiveTarget,
    announced: Announced,
) -> CloseOutcome {
    let window_prefix = match target.window_key_prefix() {
        Ok(prefix) => prefix,
        Err(e) => return failed(e),
    };
    // A late close adds an object of its own: whatever the window holds already is not it, and
    // its content-derived key makes a repeated close store the same bytes once.
    let stored = if job.closed.late {
        Vec::new()
    } else {
        match existing::archives_of_window(&ctx.store, &window_prefix).await {
            Ok(keys) => keys,
            Err(e) => return store_outcome(e),
        }
    };
    if let Some(first) = stored.first() {
        if stored.len() > 1 {
            tracing::error!(alarm = true, window_prefix, objects = ?stored,
                "several archives exist for one window; announcing the first");
        }
        return match existing::describe(&ctx.store, first).await {
            Ok(archive) => {
                if archive.digest.record_count != announced.records {
                    tracing::warn!(key = %archive.key, stored = archive.digest.record_count,
                        announced = announced.records,
                        "window already archived by an earlier attempt with a different record count; the stored archive stands");
                }
                // The stored object's lock was set by the earlier attempt; the policy is read
                // again here, which is the same unless it changed in between.
                let retain_until = retain_until(ctx, job);
                let index = match store_index(ctx, &archive, retain_until).await {
                    Ok(index) => index,
                    Err(outcome) => return outcome,
                };
                let event = archive_stored(job, &announced, &archive, index, retain_until);
                publish(ctx, job, event).await
            }
            Err(existing::ExistingError::Store(e)) => store_outcome(e),
            Err(e) => CloseOutcome::Failed {
                reason: e.to_string(),
                alarm: true,
            },
        };
    }
    let have = job.sequences.len();
    if have < announced.batches as usize {
        return CloseOutcome::NotReady {
            have,
            want: announced.batches,
        };
    }
    if have > announced.batches as usize {
        return failed(format!(
            "attempt {} has {have} batches but its window closed with {}",
            job.closed.attempt, announced.batches
        ));
    }
    let expected = Expected {
        zone: job.key.zone.clone(),
        dataset: job.key.dataset.clone(),
        window: job.closed.window,
        attempt: job.closed.attempt,
    };
    let assembled = match assemble::assemble(
        &ctx.batch_stream,
        &job.sequences,
        &expected,
        &ctx.settings.work_dir,
    )
    .await
    {
        Ok(assembled) => assembled,
        Err(e) if e.is_permanent() => return failed(e),
        Err(e) => return retry(e),
    };
    let counted = assembled.digest.record_count;
    if assembled.declared_records != announced.records || counted != announced.records {
        return failed(format!(
            "record counts disagree: content has {counted}, batches declare {}, the window closed with {}",
            assembled.declared_records, announced.records
        ));
    }
    if counted == 0 && job.closed.late {
        return failed("a late close without records");
    }
    if counted == 0 {
        // Batches without records: the window is empty, and empty windows have no object.
        let event = Event::WindowEmpty(WindowEmpty {
            dataset: job.key.dataset.clone(),
            window: job.closed.window,
            attempt: job.closed.attempt,
            method: announced.method,
        });
        return publish(ctx, job, event).await;
    }
    let key = if job.closed.late {
        target.late_key(&assembled.digest.content_sha256)
    } else {
        target.object_key(&assembled.digest.content_sha256)
    };
    let key = match key
        .map_err(|e| e.to_string())
        .and_then(|k| ObjectKey::new(k).map_err(|e| e.to_string()))
    {
        Ok(key) => key,
        Err(e) => return failed(e),
    };
    let retain_until = retain_until(ctx, job);
    let options = PutOptions {
        sha256: Some(rainlogs_store::Sha256Hash(assembled.digest.stored_sha256.0)),
        retain_until: OffsetDateTime::from_unix_timestamp(retain_until).ok(),
        content_type: Some("application/zstd".into()),
    };
    let file = match tokio::fs::File::open(&assembled.file).await {
        Ok(file) => file,
        Err(e) => return retry(format!("reopening the assembled archive: {e}")),
    };
    let put = match ctx.store.put_stream(&key, file, &options).await {
        Ok(put) => put,
        Err(e) => return store_outcome(e),
    };
    if put.size != assembled.digest.stored_size {
        return CloseOutcome::Failed {
            reason: format!(
                "store reports {} bytes for {key}, {} were written",
                put.size, assembled.digest.stored_size
            ),
            alarm: true,
        };
    }
    let archive = StoredArchive {
        key: key.to_string(),
        version: put.version_id,
        digest: assembled.digest,
        index: assembled.index,
    };
    let index = match store_index(ctx, &archive, retain_until).await {
        Ok(index) => index,
        Err(outcome) => return outcome,
    };
    let event = archive_stored(job, &announced, &archive, index, retain_until);
    publish(ctx, job, event).await
}

/// Writes the archive's index object beside it, locked as long as the archive (docs/FORMAT.md
/// §12). Its bytes follow from the archive's, so a repeated close writes the same object.
async fn store_index(
    ctx: &CloseContext,
    archive: &StoredArchive,
    retain_until: i64,
) -> Result<IndexStored, CloseOutcome> {
    let key = rainlogs_integrity::layout::index_key(&archive.key)
        .ok_or_else(|| failed(format!("{} is not an archive object's key", archive.key)))
        .and_then(|k| ObjectKey::new(k).map_err(failed))?;
    let bytes = archive.index.encode();
    let sha256 = rainlogs_integrity::Sha256Hash::digest(&bytes);
    let options = PutOptions {
        sha256: Some(rainlogs_store::Sha256Hash(sha256.0)),
        retain_until: OffsetDateTime::from_unix_timestamp(retain_until).ok(),
        content_type: Some("application/octet-stream".into()),
    };
    let put = ctx
        .store
        .put_stream(&key, bytes.as_slice(), &options)
        .await
        .map_err(store_outcome)?;
    Ok(IndexStored {
        object_key: key.to_string(),
        object_version: put.version_id,
        stored_size: bytes.len() as u64,
        stored_sha256: sha256.0.to_vec(),
    })
}

fn retain_until(ctx: &CloseContext, job: &CloseJob) -> i64 {
    let retention = ctx
        .retention
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retention(&job.envelope.tenant, &job.key.zone);
    let retention = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    job.closed.window.end.saturating_add(retention)
}

fn archive_stored(
    job: &CloseJob,
    announced: &Announced,
    archive: &StoredArchive,
    index: IndexStored,
    retain_until: i64,
) -> Event {
    let time = archive.index.time();
    let ns = |t: u64| i64::try_from(t).ok();
    Event::ArchiveStored(ArchiveStored {
        dataset: job.key.dataset.clone(),
        window: job.closed.window,
        attempt: job.closed.attempt,
        object_key: archive.key.clone(),
        object_version: archive.version.clone(),
        stored_size: archive.digest.stored_size,
        stored_sha256: archive.digest.stored_sha256.0.to_vec(),
        content_sha256: archive.digest.content_sha256.0.to_vec(),
        records: archive.digest.record_count,
        event_time_min_ns: time.and_then(|(lo, _)| ns(lo)),
        event_time_max_ns: time.and_then(|(_, hi)| ns(hi)),
        method: announced.method,
        sample_interval: announced.sample_interval,
        fields: announced.fields.clone(),
        retain_until,
        late: job.closed.late,
        index: Some(index),
    })
}

async fn publish(ctx: &CloseContext, job: &CloseJob, event: Event) -> CloseOutcome {
    let (outcome, stored_bytes) = match &event {
        Event::ArchiveStored(stored) => ("stored", stored.stored_size),
        Event::WindowEmpty(_) => ("empty", 0),
        _ => ("gap", 0),
    };
    let mut envelope = Envelope::new(
        job.envelope.tenant.clone(),
        Some(job.key.zone.clone()),
        Actor::service(crate::NAME),
        event,
    )
    .caused_by(&job.envelope);
    envelope.id = match job.key.late_attempt {
        Some(attempt) => late_outcome_id(&job.key.zone, &job.key.dataset, attempt),
        None => window_outcome_id(&job.key.zone, &job.key.dataset, &job.closed.window),
    };
    match ctx
        .bus
        .publish(&subjects::archive(&job.key.zone), &envelope)
        .await
    {
        Ok(_) => CloseOutcome::Published {
            outcome,
            stored_bytes,
        },
        Err(e @ PublishError::Encode { .. }) => failed(e),
        Err(e) => retry(e),
    }
}

/// Store trouble: conflicting bytes are an alarm; anything else may be fixed (network, quota,
/// permissions) without losing the window, so it is retried.
fn store_outcome(error: StoreError) -> CloseOutcome {
    if error.is_alarm() {
        CloseOutcome::Failed {
            reason: error.to_string(),
            alarm: true,
        }
    } else {
        retry(error)
    }
}
