//! Logpush: zone jobs (`/zones/{id}/logpush/jobs`), the ownership challenge, a pusher per enabled HTTP or S3 job
//! driven by the simulated clock, and the delivery log that tells tests what reached the destination and what was
//! lost for good.

mod api;
mod challenge;
mod destination;
mod pusher;
mod s3;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub(crate) use api::{job, jobs, ownership};
pub(crate) use destination::Destination;
pub(crate) use pusher::Batch;

use crate::lock;
use crate::state::Shared;
use crate::traffic::ZoneTraffic;
use crate::traffic::firewall::render_logpush_firewall;
use crate::traffic::http::{HttpRecord, HttpRenderer};
use crate::traffic::render::TimestampFormat;
use crate::truth::Dataset;

/// Cloudflare's default `max_upload_records`, and the most a batch ever holds when it is unset.
const DEFAULT_MAX_RECORDS: u64 = 100_000;
/// Cloudflare's default `max_upload_interval_seconds`.
const DEFAULT_INTERVAL_SECS: u64 = 30;

/// How one job renders a record: exactly what `/__sim/truth` gives for the same dataset, fields and timestamps.
#[derive(Clone, Debug)]
pub(crate) enum LineFormat {
    Http(HttpRenderer),
    /// Logpush's `firewall_events` form (PascalCase names, `Datetime` in the job's timestamp format).
    Firewall {
        fields: Option<Vec<String>>,
        timestamps: TimestampFormat,
        log4shell_rewrite: bool,
    },
}

impl LineFormat {
    /// The dataset the lines are records of.
    pub(crate) fn dataset_name(&self) -> &'static str {
        match self {
            Self::Http(_) => "http_requests",
            Self::Firewall { .. } => "firewall_events",
        }
    }

    fn count(&self, traffic: &ZoneTraffic, second: i64) -> u32 {
        match self {
            Self::Http(_) => traffic.http_count(second),
            Self::Firewall { .. } => traffic.firewall_count(second),
        }
    }

    /// Append record `index` of `second` as one NDJSON line with its `\n`.
    fn render(&self, traffic: &ZoneTraffic, second: i64, index: u32, out: &mut Vec<u8>) {
        match self {
            Self::Http(renderer) => renderer.render(
                traffic,
                &HttpRecord::generate(traffic, second, index),
                None,
                out,
            ),
            Self::Firewall {
                fields,
                timestamps,
                log4shell_rewrite,
            } => render_logpush_firewall(
                traffic,
                second,
                index,
                fields.as_deref(),
                *timestamps,
                *log4shell_rewrite,
                out,
            ),
        }
    }

    /// Lines of the records in `[start, end)`, positions being (receive second, index within it).
    fn render_range(
        &self,
        traffic: &ZoneTraffic,
        start: (i64, u32),
        end: (i64, u32),
    ) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        for second in start.0..=end.0 {
            let from = if second == start.0 { start.1 } else { 0 };
            let count = self.count(traffic, second);
            let to = if second == end.0 {
                end.1.min(count)
            } else {
                count
            };
            for index in from..to {
                let mut line = Vec::with_capacity(256);
                self.render(traffic, second, index, &mut line);
                lines.push(line);
            }
        }
        lines
    }
}

/// A job's settings as validated from the API body.
#[derive(Clone, Debug)]
pub(crate) struct JobConfig {
    pub name: Option<String>,
    pub dataset: Dataset,
    pub destination_conf: String,
    pub destination: Destination,
    pub output_options: Option<Value>,
    pub logpull_options: Option<String>,
    pub format: Arc<LineFormat>,
    pub max_upload_bytes: Option<u64>,
    pub max_upload_records: Option<u64>,
    pub max_upload_interval_seconds: Option<u64>,
    pub frequency: String,
    /// The settings as sent (a PUT merges into these and is validated again as a whole).
    pub raw: Map<String, Value>,
}

impl JobConfig {
    /// Batch limits in force: an unset or zero setting means Cloudflare's default (no byte limit).
    fn limits(&self) -> BatchLimits {
        BatchLimits {
            records: self
                .max_upload_records
                .filter(|r| *r > 0)
                .unwrap_or(DEFAULT_MAX_RECORDS),
            bytes: self.max_upload_bytes.filter(|b| *b > 0).unwrap_or(u64::MAX),
            interval_secs: self
                .max_upload_interval_seconds
                .filter(|s| *s > 0)
                .unwrap_or(DEFAULT_INTERVAL_SECS) as i64,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct BatchLimits {
    records: u64,
    bytes: u64,
    interval_secs: i64,
}

#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub id: u64,
    pub zone: String,
    pub config: JobConfig,
    pub enabled: bool,
    /// Bumped by every change; a pusher whose generation is stale stops.
    pub generation: u64,
    /// The first record not yet in a batch, as (receive second, index within it).
    pub cursor: (i64, u32),
    pub last_complete: Option<OffsetDateTime>,
    pub last_error: Option<OffsetDateTime>,
    pub error_message: Option<String>,
}

impl Job {
    /// Start pushing from now on: Logpush never backfills what was received while a job was off.
    fn enable_from(&mut self, now: OffsetDateTime) {
        let second = now.unix_timestamp() + i64::from(now.nanosecond() > 0);
        self.cursor = self.cursor.max((second, 0));
    }

    fn json(&self) -> Value {
        let c = &self.config;
        json!({
            "id": self.id,
            "name": c.name,
            "enabled": self.enabled,
            "dataset": dataset_name(c.dataset),
            "kind": "",
            "frequency": c.frequency,
            "destination_conf": c.destination_conf,
            "logpull_options": c.logpull_options,
            "output_options": c.output_options,
            "max_upload_bytes": c.max_upload_bytes,
            "max_upload_records": c.max_upload_records,
            "max_upload_interval_seconds": c.max_upload_interval_seconds,
            "last_complete": self.last_complete.map(rfc3339),
            "last_error": self.last_error.map(rfc3339),
            "error_message": self.error_message,
        })
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub(crate) fn dataset_name(dataset: Dataset) -> &'static str {
    match dataset {
        Dataset::HttpRequests => "http_requests",
        Dataset::FirewallEvents => "firewall_events",
    }
}

/// Every job and every batch ever cut, across zones.
#[derive(Debug, Default)]
pub(crate) struct LogpushState {
    last_job_id: u64,
    last_batch_id: u64,
    last_challenge: u64,
    pub jobs: BTreeMap<u64, Job>,
    pub batches: BTreeMap<u64, Batch>,
    /// Ownership challenge tokens written so far, by token.
    challenges: HashMap<String, challenge::Challenge>,
}

impl LogpushState {
    fn jobs_in_zone(&self, zone: &str) -> impl Iterator<Item = &Job> {
        self.jobs.values().filter(move |j| j.zone == zone)
    }

    fn next_job_id(&mut self) -> u64 {
        self.last_job_id += 1;
        self.last_job_id
    }

    fn next_batch_id(&mut self) -> u64 {
        self.last_batch_id += 1;
        self.last_batch_id
    }
}

/// Where a batch stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Cut and not yet accepted by the destination (waiting, held back or between retries).
    Pending,
    /// The destination answered 2xx.
    Delivered,
    /// Lost for good: the retry budget ran out, a `drop` fault hit it, or its job was disabled or deleted first.
    Dropped,
}

/// One batch a Logpush job cut, as `GET /__sim/logpush/deliveries` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogpushDelivery {
    pub zone: String,
    pub job_id: u64,
    pub batch_id: u64,
    /// Receive second (Unix) of the first and the last record in the batch.
    pub first_second: i64,
    pub last_second: i64,
    pub records: u64,
    /// Uncompressed size.
    pub bytes: u64,
    pub status: DeliveryStatus,
    /// Uploads of the batch itself (duplicates not counted).
    pub attempts: u32,
    /// Extra copies sent after delivery (the `duplicate` fault).
    pub duplicates_sent: u32,
    /// Why the last attempt failed, or why the batch was dropped.
    pub error: Option<String>,
    /// The push fault (`duplicate`, `delay`, `reorder`, `drop`) that hit the batch.
    pub fault: Option<String>,
}

/// One upload attempt of a Logpush batch: an event of `logpushHealthAdaptiveGroups`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogpushUpload {
    pub zone: String,
    pub job_id: u64,
    pub batch_id: u64,
    /// Simulated time of the attempt.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The destination's HTTP status (200 for any 2xx), 0 when it did not answer (or the `drop` fault).
    pub status: u16,
    /// No further upload of the batch follows: delivered (status 200) or lost for good (any other status).
    pub final_upload: bool,
    /// `http` or `s3`.
    pub destination_type: String,
    /// The batch's records, uncompressed bytes and gzipped bytes (every attempt carries the whole batch).
    pub records: u64,
    pub bytes: u64,
    pub bytes_compressed: u64,
}

/// Every upload attempt of `zone`'s jobs, in the order they were made.
pub(crate) fn uploads(shared: &Shared, zone: &str) -> Vec<LogpushUpload> {
    let mut out: Vec<LogpushUpload> = lock(&shared.logpush)
        .batches
        .values()
        .filter(|b| b.zone == zone)
        .flat_map(|b| {
            b.uploads.iter().map(|a| LogpushUpload {
                zone: b.zone.clone(),
                job_id: b.job_id,
                batch_id: b.id,
                time: a.at,
                status: a.status,
                final_upload: a.final_upload,
                destination_type: b.destination_type.to_owned(),
                records: b.records,
                bytes: b.bytes,
                bytes_compressed: b.bytes_compressed,
            })
        })
        .collect();
    out.sort_by_key(|u| u.time);
    out
}

/// Batches of `zone`'s jobs in the order they were cut.
pub(crate) fn deliveries(shared: &Shared, zone: &str) -> Vec<LogpushDelivery> {
    lock(&shared.logpush)
        .batches
        .values()
        .filter(|b| b.zone == zone)
        .map(Batch::delivery)
        .collect()
}

/// The lines of `zone`'s dropped batches (of one job, or of all), sorted by bytes like the truth.
pub(crate) fn dropped_lines(shared: &Shared, zone: &str, job: Option<u64>) -> Vec<Vec<u8>> {
    lines_of(shared, zone, job, DeliveryStatus::Dropped)
}

/// The lines of `zone`'s batches in `status` (of one job or of all), sorted by bytes.
pub(crate) fn lines_of(
    shared: &Shared,
    zone: &str,
    job: Option<u64>,
    status: DeliveryStatus,
) -> Vec<Vec<u8>> {
    let Some(traffic) = shared.zone_traffic(zone) else {
        return Vec::new();
    };
    let batches: Vec<_> = lock(&shared.logpush)
        .batches
        .values()
        .filter(|b| b.zone == zone && b.status == status && job.is_none_or(|j| j == b.job_id))
        .map(|b| (b.format.clone(), b.start, b.end))
        .collect();
    let mut lines: Vec<Vec<u8>> = batches
        .into_iter()
        .flat_map(|(format, start, end)| format.render_range(&traffic, start, end))
        .collect();
    lines.sort_unstable();
    lines
}
