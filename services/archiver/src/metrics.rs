//! What an operator watches of the archiver: windows archived by outcome, bytes stored, closes
//! that failed, how long a close takes, and how many windows are open (batches held, no close
//! yet).

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter};
use rainlogs_telemetry::{MetricFamily, MetricUnit};

use crate::close::CloseOutcome;

pub const WINDOWS: MetricFamily = MetricFamily::counter(
    "rainlogs_archiver_windows",
    &["zone", "dataset", "outcome"],
    "Windows whose outcome was announced on rl.archive: stored, empty or gap",
);
pub const STORED: MetricFamily = MetricFamily::counter(
    "rainlogs_archiver_stored",
    &["zone", "dataset"],
    "Compressed archive bytes announced as stored",
)
.in_unit(MetricUnit::Bytes);
pub const CLOSE_FAILURES: MetricFamily = MetricFamily::counter(
    "rainlogs_archiver_close_failures",
    &["zone", "dataset", "kind"],
    "Window closes that failed: retry (a dependency was away; closed again later) or failed (can never be archived; an alarm)",
);
pub const CLOSE_DURATION: MetricFamily = MetricFamily::histogram(
    "rainlogs_archiver_close_duration",
    &["outcome"],
    "Time to close one window: read its batches back, compress, store on every provider, announce",
)
.in_unit(MetricUnit::Seconds);
pub const OPEN_WINDOWS: MetricFamily = MetricFamily::gauge(
    "rainlogs_archiver_open_windows",
    &[],
    "Windows with batches held and no close handled yet",
);

/// Every family the archiver exposes.
pub const FAMILIES: &[MetricFamily] = &[
    WINDOWS,
    STORED,
    CLOSE_FAILURES,
    CLOSE_DURATION,
    OPEN_WINDOWS,
];

#[derive(Clone)]
pub struct ArchiverMetrics {
    windows: Counter<u64>,
    stored: Counter<u64>,
    close_failures: Counter<u64>,
    close_duration: Histogram<f64>,
    open_windows: Gauge<u64>,
}

impl ArchiverMetrics {
    pub fn new(meter: &Meter) -> Self {
        Self {
            windows: WINDOWS.u64_counter(meter),
            stored: STORED.u64_counter(meter),
            close_failures: CLOSE_FAILURES.u64_counter(meter),
            close_duration: CLOSE_DURATION.seconds_histogram(meter),
            open_windows: OPEN_WINDOWS.u64_gauge(meter),
        }
    }

    /// One close of the window, whatever became of it.
    pub fn closed(&self, zone: &str, dataset: &str, outcome: &CloseOutcome, took: Duration) {
        let [zone, dataset] = [
            KeyValue::new("zone", zone.to_owned()),
            KeyValue::new("dataset", dataset.to_owned()),
        ];
        let label = match outcome {
            CloseOutcome::Published {
                outcome,
                stored_bytes,
            } => {
                if *stored_bytes > 0 {
                    self.stored
                        .add(*stored_bytes, &[zone.clone(), dataset.clone()]);
                }
                self.windows
                    .add(1, &[zone, dataset, KeyValue::new("outcome", *outcome)]);
                *outcome
            }
            CloseOutcome::NotReady { .. } => "not_ready",
            CloseOutcome::Retry { .. } | CloseOutcome::Failed { .. } => {
                let kind = if matches!(outcome, CloseOutcome::Retry { .. }) {
                    "retry"
                } else {
                    "failed"
                };
                self.close_failures
                    .add(1, &[zone, dataset, KeyValue::new("kind", kind)]);
                kind
            }
        };
        self.close_duration
            .record(took.as_secs_f64(), &[KeyValue::new("outcome", label)]);
    }

    pub fn open_windows(&self, windows: usize) {
        self.open_windows
            .record(u64::try_from(windows).unwrap_or(u64::MAX), &[]);
    }
}
