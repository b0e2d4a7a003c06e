//! What an operator watches of the sealer: entries sealed by kind, checkpoints by outcome, and
//! per zone how long entries have waited for a signed checkpoint, how many wait, and whether the
//! zone's log is faulted (nothing is sealed for it until someone looks).

use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Meter};
use rainlogs_telemetry::{MetricFamily, MetricUnit};

use crate::zone::ZoneLog;

pub const ENTRIES: MetricFamily = MetricFamily::counter(
    "rainlogs_sealer_entries",
    &["zone", "kind"],
    "Entries this sealer appended to the zone's chain, by kind (archive, empty, gap, prune, erasure)",
);
pub const CHECKPOINTS: MetricFamily = MetricFamily::counter(
    "rainlogs_sealer_checkpoints",
    &["zone", "outcome"],
    "Checkpoint rounds by outcome: signed, already (the bucket's newest covered the log), failed (retried), refused (an alarm)",
);
pub const CHECKPOINT_AGE: MetricFamily = MetricFamily::gauge(
    "rainlogs_sealer_checkpoint_age",
    &["zone"],
    "Seconds since the zone's log was last covered whole by a signed checkpoint; 0 while it is",
)
.in_unit(MetricUnit::Seconds);
pub const UNCOVERED_ENTRIES: MetricFamily = MetricFamily::gauge(
    "rainlogs_sealer_uncovered_entries",
    &["zone"],
    "Entries of the zone's log beyond the bucket's newest checkpoint",
);
pub const ZONE_FAULTED: MetricFamily = MetricFamily::gauge(
    "rainlogs_sealer_zone_faulted",
    &["zone"],
    "1 while the zone's log cannot be continued safely (fork, tampering) and its events are held back",
);

/// Every family the sealer exposes.
pub const FAMILIES: &[MetricFamily] = &[
    ENTRIES,
    CHECKPOINTS,
    CHECKPOINT_AGE,
    UNCOVERED_ENTRIES,
    ZONE_FAULTED,
];

#[derive(Clone)]
pub struct SealerMetrics {
    entries: Counter<u64>,
    checkpoints: Counter<u64>,
    checkpoint_age: Gauge<f64>,
    uncovered: Gauge<u64>,
    faulted: Gauge<u64>,
}

impl SealerMetrics {
    pub fn new(meter: &Meter) -> Self {
        Self {
            entries: ENTRIES.u64_counter(meter),
            checkpoints: CHECKPOINTS.u64_counter(meter),
            checkpoint_age: CHECKPOINT_AGE.f64_gauge(meter),
            uncovered: UNCOVERED_ENTRIES.u64_gauge(meter),
            faulted: ZONE_FAULTED.u64_gauge(meter),
        }
    }

    pub fn sealed(&self, zone: &str, kind: &'static str) {
        self.entries.add(
            1,
            &[
                KeyValue::new("zone", zone.to_owned()),
                KeyValue::new("kind", kind),
            ],
        );
    }

    pub fn checkpoint(&self, zone: &str, outcome: &'static str) {
        self.checkpoints.add(
            1,
            &[
                KeyValue::new("zone", zone.to_owned()),
                KeyValue::new("outcome", outcome),
            ],
        );
    }

    /// The zone's state now: called after every checkpoint round and on a timer, so the age
    /// grows while nothing happens.
    pub fn zone(&self, log: &ZoneLog, now: Instant) {
        let zone = [KeyValue::new("zone", log.zone.clone())];
        let age = log.uncovered_since.map_or(0.0, |since| {
            now.saturating_duration_since(since).as_secs_f64()
        });
        self.checkpoint_age.record(age, &zone);
        let covered = log.signed.as_ref().map_or(0, |c| c.size);
        self.uncovered
            .record(log.size().saturating_sub(covered), &zone);
        self.faulted.record(u64::from(log.fault.is_some()), &zone);
    }
}
