//! What operators watch: what retention removed, what holds keep, and refusals (alarms).

use opentelemetry::metrics::{Counter, Gauge, Meter};

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

impl ReaperMetrics {
    pub fn new(meter: &Meter) -> Self {
        Self {
            pruned_objects: meter
                .u64_counter("rainlogs_reaper_pruned_objects")
                .with_description("Archive objects deleted after their retain-until")
                .build(),
            pruned_bytes: meter
                .u64_counter("rainlogs_reaper_pruned")
                .with_description("Stored bytes of archive objects deleted after their retain-until")
                .with_unit("By")
                .build(),
            refused: meter
                .u64_counter("rainlogs_reaper_refused_deletes")
                .with_description(
                    "Deletes the provider refused although the log says retain-until passed (alarm)",
                )
                .build(),
            held: meter
                .u64_gauge("rainlogs_reaper_held_archives")
                .with_description("Archives past retain-until kept by a legal hold")
                .build(),
            next_expiry: meter
                .u64_gauge("rainlogs_reaper_next_expiry_timestamp")
                .with_description(
                    "Unix time of the next retain-until of an archive still kept (0: none)",
                )
                .with_unit("s")
                .build(),
            holds: meter
                .u64_gauge("rainlogs_reaper_legal_holds")
                .with_description("Legal holds in force")
                .build(),
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
