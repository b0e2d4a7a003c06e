//! What operators watch: what retention removed, what holds keep, and refusals (alarms).

use opentelemetry::metrics::{Counter, Gauge, Meter};
use rainlogs_telemetry::{MetricFamily, MetricUnit};

use crate::sweep::{Outlook, SweepReport};

#[derive(Clone)]
pub struct ReaperMetrics {
    pruned_objects: Counter<u64>,
    pruned_bytes: Counter<u64>,
    refused: Counter<u64>,
    held: Gauge<u64>,
    next_expiry: Gauge<u64>,
    holds: Gauge<u64>,
}

pub const PRUNED_OBJECTS: MetricFamily = MetricFamily::counter(
    "rainlogs_reaper_pruned_objects",
    &[],
    "Archive objects deleted after their retain-until",
);
pub const PRUNED: MetricFamily = MetricFamily::counter(
    "rainlogs_reaper_pruned",
    &[],
    "Stored bytes of archive objects deleted after their retain-until",
)
.in_unit(MetricUnit::Bytes);
pub const REFUSED_DELETES: MetricFamily = MetricFamily::counter(
    "rainlogs_reaper_refused_deletes",
    &[],
    "Deletes the provider refused although the log says retain-until passed (alarm)",
);
pub const HELD_ARCHIVES: MetricFamily = MetricFamily::gauge(
    "rainlogs_reaper_held_archives",
    &[],
    "Archives past retain-until kept by a legal hold",
);
pub const NEXT_EXPIRY: MetricFamily = MetricFamily::gauge(
    "rainlogs_reaper_next_expiry_timestamp",
    &[],
    "Unix time of the next retain-until of an archive still kept (0: none)",
)
.in_unit(MetricUnit::Seconds);
pub const LEGAL_HOLDS: MetricFamily =
    MetricFamily::gauge("rainlogs_reaper_legal_holds", &[], "Legal holds in force");

/// Every family the reaper exposes.
pub const FAMILIES: &[MetricFamily] = &[
    PRUNED_OBJECTS,
    PRUNED,
    REFUSED_DELETES,
    HELD_ARCHIVES,
    NEXT_EXPIRY,
    LEGAL_HOLDS,
];

impl ReaperMetrics {
    pub fn new(meter: &Meter) -> Self {
        Self {
            pruned_objects: PRUNED_OBJECTS.u64_counter(meter),
            pruned_bytes: PRUNED.u64_counter(meter),
            refused: REFUSED_DELETES.u64_counter(meter),
            held: HELD_ARCHIVES.u64_gauge(meter),
            next_expiry: NEXT_EXPIRY.u64_gauge(meter),
            holds: LEGAL_HOLDS.u64_gauge(meter),
        }
    }

    pub fn record(&self, report: &SweepReport) {
        self.pruned_objects.add(report.deleted as u64, &[]);
        self.pruned_bytes.add(report.deleted_bytes, &[]);
        self.refused.add(report.refused.len() as u64, &[]);
        self.held.record(report.held as u64, &[]);
    }

    pub fn record_outlook(&self, outlook: &Outlook) {
        self.next_expiry.record(
            outlook.next_expiry_ns.map_or(0, |ns| ns / 1_000_000_000),
            &[],
        );
        self.holds.record(outlook.holds as u64, &[]);
    }
}
