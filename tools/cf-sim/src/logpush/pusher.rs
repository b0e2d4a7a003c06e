//! The pusher: one task per enabled HTTP or S3 job, driven by the simulated clock.
//!
//! Each tick it walks the received seconds the clock has completed since the job's cursor, cuts batches (by
//! interval from the first record's receive second, record count or uncompressed bytes, whichever comes first),
//! then uploads every batch that is due. A failed upload is retried with exponential backoff in simulated time
//! until the scenario's attempt budget runs out, and then the batch is dropped for good.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;

use super::destination::{self, Destination, UploadError};
use super::s3::{GZIP, S3Writer};
use super::{BatchLimits, DeliveryStatus, LineFormat, LogpushDelivery, LogpushState};
use crate::fault::FaultKind;
use crate::http::respond::fault_name;
use crate::lock;
use crate::rng::hash_words;
use crate::state::Shared;
use crate::traffic::ZoneTraffic;

const TICK: Duration = Duration::from_millis(50);
/// Received seconds one tick walks at most: a long clock jump is caught up over several ticks instead of one
/// long stretch of rendering.
const MAX_SECONDS_PER_TICK: i64 = 3600;
/// The longest a `reorder` fault holds a batch back when no later batch settles.
const MAX_HOLD: Duration = Duration::from_secs(300);
const DROP_FAULT: &str = "error pushing: batch dropped (drop fault)";

/// One upload of a batch as `logpushHealthAdaptiveGroups` reports it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attempt {
    pub at: OffsetDateTime,
    /// The destination's HTTP status (200 for any success), 0 without an answer.
    pub status: u16,
    /// No further upload of the batch follows: it was delivered, or it is lost.
    pub final_upload: bool,
}

/// Status reported for a batch lost to the `drop` fault: it never got an answer.
const DROP_FAULT_STATUS: u16 = 0;

/// One batch a job cut: the records `[start, end)` as (receive second, index), and how it fared.
#[derive(Clone, Debug)]
pub(crate) struct Batch {
    pub zone: String,
    pub job_id: u64,
    pub id: u64,
    pub start: (i64, u32),
    pub end: (i64, u32),
    pub first_second: i64,
    pub last_second: i64,
    pub records: u64,
    pub bytes: u64,
    /// Size of the gzipped body (0 for a remainder dropped before it was rendered).
    pub bytes_compressed: u64,
    /// `destinationType` of the job when the batch was cut.
    pub destination_type: &'static str,
    pub format: Arc<LineFormat>,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// Every upload of the batch itself, oldest first (the `duplicate` fault's copies are not among them).
    pub uploads: Vec<Attempt>,
    pub duplicates_sent: u32,
    pub error: Option<String>,
    /// Simulated time of the next upload attempt.
    next_attempt: OffsetDateTime,
    /// An upload of this batch is under way (a restarted pusher must not send it a second time meanwhile).
    in_flight: bool,
    /// The gzipped body, kept while it may still be sent.
    body: Option<Bytes>,
    /// The push fault that hit the batch, by name.
    fault: Option<String>,
    /// `reorder`: not sent before a later batch of the job has settled, or this time has come.
    hold_until: Option<OffsetDateTime>,
    /// `duplicate`: how long after delivery the copy goes out, then when.
    duplicate_after: Option<Duration>,
    duplicate_at: Option<OffsetDateTime>,
}

impl Batch {
    pub fn delivery(&self) -> LogpushDelivery {
        LogpushDelivery {
            zone: self.zone.clone(),
            job_id: self.job_id,
            batch_id: self.id,
            first_second: self.first_second,
            last_second: self.last_second,
            records: self.records,
            bytes: self.bytes,
            status: self.status,
            attempts: self.attempts,
            duplicates_sent: self.duplicates_sent,
            error: self.error.clone(),
            fault: self.fault.clone(),
        }
    }
}

/// A job being disabled or deleted stops: what it had not delivered is lost, and so is what it received but had not
/// cut into a batch yet. That remainder is logged as one more dropped batch so "truth minus dropped" stays exact.
pub(crate) fn abandon(state: &mut LogpushState, shared: &Shared, job_id: u64, reason: &str) {
    for batch in state.batches.values_mut() {
        if batch.job_id == job_id && batch.status == DeliveryStatus::Pending {
            batch.status = DeliveryStatus::Dropped;
            batch.error = Some(reason.to_owned());
            batch.body = None;
        }
    }
    let now = shared.now();
    let Some(job) = state.jobs.get_mut(&job_id) else {
        return;
    };
    let Some(traffic) = shared.zone_traffic(&job.zone) else {
        return;
    };
    // Records of second s arrive at instant s, so the second `now` falls in has arrived already.
    let end = (now.unix_timestamp() + 1, 0);
    let start = job.cursor;
    if start >= end {
        return;
    }
    job.cursor = end;
    let (zone, format) = (job.zone.clone(), job.config.format.clone());
    let destination_type = job.config.destination.health_type();
    let mut records = 0u64;
    let mut seconds = None;
    for second in start.0..end.0 {
        let count = format.count(&traffic, second);
        let from = if second == start.0 { start.1 } else { 0 };
        if count > from {
            records += u64::from(count - from);
            let (first, _) = seconds.unwrap_or((second, second));
            seconds = Some((first, second));
        }
    }
    let Some((first_second, last_second)) = seconds else {
        return;
    };
    let id = state.next_batch_id();
    state.batches.insert(
        id,
        Batch {
            zone,
            job_id,
            id,
            start,
            end,
            first_second,
            last_second,
            records,
            bytes: 0,
            bytes_compressed: 0,
            destination_type,
            format,
            status: DeliveryStatus::Dropped,
            attempts: 0,
            uploads: Vec::new(),
            duplicates_sent: 0,
            error: Some(reason.to_owned()),
            next_attempt: now,
            in_flight: false,
            body: None,
            fault: None,
            hold_until: None,
            duplicate_after: None,
            duplicate_at: None,
        },
    );
}

pub(crate) fn spawn(shared: Arc<Shared>, job_id: u64, generation: u64) {
    tokio::spawn(run(shared, job_id, generation));
}

/// What one tick needs of the job.
struct Snapshot {
    zone: String,
    format: Arc<LineFormat>,
    limits: BatchLimits,
    cursor: (i64, u32),
}

/// `None` once the job is gone, disabled or changed (a newer pusher then owns it).
fn snapshot(shared: &Shared, job_id: u64, generation: u64) -> Option<Snapshot> {
    let state = lock(&shared.logpush);
    let job = state.jobs.get(&job_id)?;
    (job.generation == generation && job.enabled).then(|| Snapshot {
        zone: job.zone.clone(),
        format: job.config.format.clone(),
        limits: job.config.limits(),
        cursor: job.cursor,
    })
}

async fn run(shared: Arc<Shared>, job_id: u64, generation: u64) {
    let Some(first) = snapshot(&shared, job_id, generation) else {
        return;
    };
    let Some(traffic) = shared.zone_traffic(&first.zone) else {
        return;
    };
    let mut open = OpenBatch::at(first.cursor);
    let mut shutdown = shared.shutdown.clone();
    let mut tick = tokio::time::interval(TICK);
    loop {
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            // An error means the simulator handle is gone: stop as on shutdown.
            changed = shutdown.changed() => if changed.is_err() { return },
            _ = tick.tick() => {}
        }
        let Some(snap) = snapshot(&shared, job_id, generation) else {
            return;
        };
        if open.start != snap.cursor {
            open = OpenBatch::at(snap.cursor);
        }
        let complete = shared.now().unix_timestamp();
        let cuts = cut_batches(&traffic, &snap, &mut open, complete);
        if !commit(&shared, job_id, generation, &snap, cuts, open.start) {
            return;
        }
        send_due(&shared, job_id).await;
    }
}

/// The batch being filled: records from `start` up to (not including) `pos`, rendered into `lines`.
struct OpenBatch {
    start: (i64, u32),
    pos: (i64, u32),
    lines: Vec<u8>,
    records: u64,
    first_second: Option<i64>,
    last_second: i64,
}

impl OpenBatch {
    fn at(pos: (i64, u32)) -> Self {
        Self {
            start: pos,
            pos,
            lines: Vec::new(),
            records: 0,
            first_second: None,
            last_second: pos.0,
        }
    }

    fn finish(&mut self) -> Cut {
        let done = std::mem::replace(self, Self::at(self.pos));
        Cut {
            start: done.start,
            end: done.pos,
            first_second: done.first_second.unwrap_or(done.start.0),
            last_second: done.last_second,
            records: done.records,
            bytes: done.lines.len() as u64,
            body: destination::gzip(&done.lines),
        }
    }
}

/// A batch ready to go.
struct Cut {
    start: (i64, u32),
    end: (i64, u32),
    first_second: i64,
    last_second: i64,
    records: u64,
    bytes: u64,
    body: Bytes,
}

/// Walk the seconds before `complete` (those the clock has fully passed) and cut every batch that is due.
fn cut_batches(
    traffic: &ZoneTraffic,
    snap: &Snapshot,
    open: &mut OpenBatch,
    complete: i64,
) -> Vec<Cut> {
    let limits = snap.limits;
    let mut cuts = Vec::new();
    let mut walked = 0;
    loop {
        let second = open.pos.0;
        // The interval counts from the first record's receive second: the batch closes once the clock has passed
        // every second it may cover.
        if let Some(first) = open.first_second
            && second >= first + limits.interval_secs
        {
            cuts.push(open.finish());
            continue;
        }
        if second >= complete || walked >= MAX_SECONDS_PER_TICK {
            break;
        }
        let count = snap.format.count(traffic, second);
        while open.pos.1 < count {
            let before = open.lines.len();
            snap.format
                .render(traffic, second, open.pos.1, &mut open.lines);
            if open.records > 0 && open.lines.len() as u64 > limits.bytes {
                open.lines.truncate(before);
                break;
            }
            open.records += 1;
            open.first_second.get_or_insert(second);
            open.last_second = second;
            open.pos.1 += 1;
            if open.records >= limits.records {
                break;
            }
        }
        if open.pos.1 < count || open.records >= limits.records {
            cuts.push(open.finish());
            continue;
        }
        open.pos = (second + 1, 0);
        walked += 1;
        if open.first_second.is_none() {
            open.start = open.pos;
        }
    }
    cuts
}

/// Record the cut batches and the new cursor, unless the job changed meanwhile (then this pusher is stale).
fn commit(
    shared: &Shared,
    job_id: u64,
    generation: u64,
    snap: &Snapshot,
    cuts: Vec<Cut>,
    cursor: (i64, u32),
) -> bool {
    let now = shared.now();
    let faults: Vec<Option<FaultKind>> = cuts
        .iter()
        .map(|_| lock(&shared.faults).take_push(&snap.zone, snap.format.dataset_name()))
        .collect();
    let mut state = lock(&shared.logpush);
    let LogpushState {
        jobs,
        batches,
        last_batch_id,
        ..
    } = &mut *state;
    let job = match jobs.get_mut(&job_id) {
        Some(job) if job.generation == generation && job.enabled => job,
        _ => return false,
    };
    job.cursor = cursor;
    let destination_type = job.config.destination.health_type();
    for (cut, fault) in cuts.into_iter().zip(faults) {
        *last_batch_id += 1;
        let id = *last_batch_id;
        let mut batch = Batch {
            zone: snap.zone.clone(),
            job_id,
            id,
            start: cut.start,
            end: cut.end,
            first_second: cut.first_second,
            last_second: cut.last_second,
            records: cut.records,
            bytes: cut.bytes,
            bytes_compressed: cut.body.len() as u64,
            destination_type,
            format: snap.format.clone(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            uploads: Vec::new(),
            duplicates_sent: 0,
            error: None,
            next_attempt: now,
            in_flight: false,
            body: Some(cut.body),
            fault: fault.as_ref().map(fault_name),
            hold_until: None,
            duplicate_after: None,
            duplicate_at: None,
        };
        match fault {
            Some(FaultKind::Duplicate { after_secs }) => {
                batch.duplicate_after = Some(Duration::from_secs(after_secs));
            }
            Some(FaultKind::Delay { secs }) => batch.next_attempt = now + Duration::from_secs(secs),
            Some(FaultKind::Reorder) => batch.hold_until = Some(now + MAX_HOLD),
            Some(FaultKind::DropBatch) => {
                batch.status = DeliveryStatus::Dropped;
                batch.body = None;
                // The fault stands for retries that ran out, so health shows it as Cloudflare would show them: a
                // failed final upload.
                batch.uploads.push(Attempt {
                    at: now,
                    status: DROP_FAULT_STATUS,
                    final_upload: true,
                });
                batch.error = Some(DROP_FAULT.to_owned());
                job.last_error = Some(now);
                job.error_message = Some(DROP_FAULT.to_owned());
            }
            _ => {}
        }
        batches.insert(id, batch);
    }
    true
}

/// One upload a tick makes: a batch, or (`copy: Some(n)`) its `n`th duplicate.
struct Due {
    batch_id: u64,
    body: Bytes,
    copy: Option<u32>,
    first_second: i64,
    last_second: i64,
}

/// Upload every batch of the job whose time has come (and the copies the `duplicate` fault asked for), oldest first.
async fn send_due(shared: &Shared, job_id: u64) {
    let now = shared.now();
    let (destination, due) = {
        let mut state = lock(&shared.logpush);
        let Some(destination) = state
            .jobs
            .get(&job_id)
            .map(|j| j.config.destination.clone())
            .filter(Destination::is_pushed)
        else {
            return;
        };
        let mut due = Vec::new();
        for batch in state.batches.values_mut() {
            if batch.job_id != job_id || batch.in_flight {
                continue;
            }
            let copy = match batch.status {
                DeliveryStatus::Pending
                    if batch.hold_until.is_none() && batch.next_attempt <= now =>
                {
                    None
                }
                DeliveryStatus::Delivered if batch.duplicate_at.is_some_and(|t| t <= now) => {
                    Some(batch.duplicates_sent + 1)
                }
                _ => continue,
            };
            if let Some(body) = batch.body.clone() {
                batch.in_flight = true;
                due.push(Due {
                    batch_id: batch.id,
                    body,
                    copy,
                    first_second: batch.first_second,
                    last_second: batch.last_second,
                });
            }
        }
        (destination, due)
    };
    if !due.is_empty() {
        upload_all(shared, job_id, &destination, due).await;
    }
    release_held(shared, job_id);
}

async fn upload_all(shared: &Shared, job_id: u64, destination: &Destination, due: Vec<Due>) {
    let timeout = Duration::from_secs(shared.logpush_spec.upload_timeout_secs);
    let writer = match destination {
        Destination::S3(s3) => Some(S3Writer::new(&shared.logpush_spec, s3, timeout)),
        _ => None,
    };
    for item in due {
        let result = match (destination, &writer) {
            (Destination::Http { url, headers }, _) => {
                let client = destination::client(&shared.logpush_client);
                destination::upload(client, url, headers, item.body, timeout).await
            }
            (Destination::S3(s3), Some(Ok(writer))) => {
                // A retry writes the batch's own key again; a duplicate gets a key of its own.
                let tag = hash_words(&[
                    shared.seed,
                    job_id,
                    item.batch_id,
                    u64::from(item.copy.unwrap_or(0)),
                ]) as u32;
                let key = s3.batch_key(item.first_second, item.last_second, tag);
                writer.put(&key, item.body, GZIP).await
            }
            (_, Some(Err(e))) => Err(e.clone()),
            _ => Err(UploadError::Transport(
                "destination is not pushed to".into(),
            )),
        };
        if item.copy.is_some() {
            record_copy(shared, item.batch_id);
        } else {
            record(
                shared,
                job_id,
                item.batch_id,
                result,
                destination.upload_kind(),
            );
        }
    }
}

/// A copy went out (whatever the destination said: it is the destination's to deduplicate).
fn record_copy(shared: &Shared, batch_id: u64) {
    if let Some(batch) = lock(&shared.logpush).batches.get_mut(&batch_id) {
        batch.in_flight = false;
        batch.duplicates_sent += 1;
        batch.duplicate_at = None;
        batch.body = None;
    }
}

/// `reorder`: a held batch goes once a later batch of its job has been delivered or dropped, or its time is up.
fn release_held(shared: &Shared, job_id: u64) {
    let now = shared.now();
    let mut state = lock(&shared.logpush);
    let settled = state
        .batches
        .values()
        .filter(|b| b.job_id == job_id && b.status != DeliveryStatus::Pending)
        .map(|b| b.id)
        .max();
    for batch in state.batches.values_mut() {
        if batch.job_id == job_id
            && batch
                .hold_until
                .is_some_and(|t| t <= now || settled.is_some_and(|s| s > batch.id))
        {
            batch.hold_until = None;
        }
    }
}

/// Simulated wait before retry number `attempts` (the first retry follows attempt 1).
fn backoff(shared: &Shared, attempts: u32) -> Duration {
    let factor = 1u64 << attempts.saturating_sub(1).min(20);
    Duration::from_secs(
        shared
            .logpush_spec
            .retry_backoff_secs
            .saturating_mul(factor),
    )
}

fn record(
    shared: &Shared,
    job_id: u64,
    batch_id: u64,
    result: Result<(), UploadError>,
    kind: &str,
) {
    let now = shared.now();
    let mut state = lock(&shared.logpush);
    let LogpushState { jobs, batches, .. } = &mut *state;
    let Some(batch) = batches.get_mut(&batch_id) else {
        return;
    };
    batch.in_flight = false;
    batch.attempts += 1;
    let job = jobs.get_mut(&job_id);
    match result {
        Ok(()) => {
            batch.uploads.push(Attempt {
                at: now,
                status: 200,
                final_upload: true,
            });
            // Even a batch abandoned while its upload was under way counts: the destination has it.
            batch.status = DeliveryStatus::Delivered;
            batch.error = None;
            match batch.duplicate_after.take() {
                Some(after) => batch.duplicate_at = Some(now + after),
                None => batch.body = None,
            }
            // Cloudflare: `last_error` is null once the job has run successfully since its last failure.
            if let Some(job) = job {
                job.last_complete = Some(now);
                job.last_error = None;
                job.error_message = None;
            }
        }
        Err(e) => {
            let message = e.job_message(kind);
            if let Some(job) = job {
                job.last_error = Some(now);
                job.error_message = Some(message.clone());
            }
            batch.error = Some(message);
            let retry = batch.status == DeliveryStatus::Pending
                && batch.attempts < shared.logpush_spec.max_attempts;
            batch.uploads.push(Attempt {
                at: now,
                status: e.health_status(),
                final_upload: !retry,
            });
            if retry {
                batch.next_attempt = now + backoff(shared, batch.attempts);
            } else {
                if batch.status == DeliveryStatus::Pending {
                    batch.status = DeliveryStatus::Dropped;
                }
                batch.body = None;
            }
        }
    }
}
