//! What an operator watches of the ingest endpoint: pushes by outcome, records and bytes taken,
//! and how long a push takes to be stored.

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use rainlogs_telemetry::{MetricFamily, MetricUnit};

pub const PUSHES: MetricFamily = MetricFamily::counter(
    "rainlogs_ingest_pushes",
    &["outcome"],
    "Pushes answered, by outcome: stored, duplicate (every part already stored), check (Cloudflare's destination check), unauthorized, refused (400/413), busy (429), unavailable (503)",
);
pub const RECORDS: MetricFamily = MetricFamily::counter(
    "rainlogs_ingest_records",
    &["zone", "dataset"],
    "Records stored in RL_PUSH (parts stored before count once)",
);
pub const RECEIVED: MetricFamily = MetricFamily::counter(
    "rainlogs_ingest_received",
    &["zone", "dataset"],
    "Decompressed NDJSON bytes of pushes that were stored",
)
.in_unit(MetricUnit::Bytes);
pub const PUSH_DURATION: MetricFamily = MetricFamily::histogram(
    "rainlogs_ingest_push_duration",
    &["outcome"],
    "Time from a push's arrival to its answer, by outcome",
)
.in_unit(MetricUnit::Seconds);

/// Every family the ingest service exposes.
pub const FAMILIES: &[MetricFamily] = &[PUSHES, RECORDS, RECEIVED, PUSH_DURATION];

#[derive(Clone)]
pub struct IngestMetrics {
    pushes: Counter<u64>,
    records: Counter<u64>,
    received: Counter<u64>,
    duration: Histogram<f64>,
}

impl IngestMetrics {
    pub fn new(meter: &Meter) -> Self {
        Self {
            pushes: PUSHES.u64_counter(meter),
            records: RECORDS.u64_counter(meter),
            received: RECEIVED.u64_counter(meter),
            duration: PUSH_DURATION.seconds_histogram(meter),
        }
    }

    pub fn answered(&self, outcome: &'static str, seconds: f64) {
        let outcome = [KeyValue::new("outcome", outcome)];
        self.pushes.add(1, &outcome);
        self.duration.record(seconds, &outcome);
    }

    pub fn stored(&self, zone: &str, dataset: &'static str, records: u64, bytes: u64) {
        let labels = [
            KeyValue::new("zone", zone.to_owned()),
            KeyValue::new("dataset", dataset),
        ];
        self.records.add(records, &labels);
        self.received.add(bytes, &labels);
    }
}
