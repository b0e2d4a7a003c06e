//! What an operator watches of the archiver: windows archived by outcome, bytes stored, closes
//! that failed, how long a close takes, and how many windows are open (batches held, no close
//! yet).

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter};
use rainlogs_telemetry::{MetricFamily, MetricUnit};

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

    /// `outcome`: `stored`, `empty`, `gap`, or for a close that did not publish, `not_ready`,
    /// `retry` or `failed`.
    pub fn closed(
        &self,
        zone: &str,
        dataset: &str,
        outcome: &'static str,
        stored: u64,
        seconds: f64,
    ) {
        let zone = KeyValue::new("zone", zone.to_owned());
        let dataset = KeyValue::new("dataset", dataset.to_owned());
        match outcome {
            "stored" | "empty" | "gap" => {
                self.windows.add(
                    1,
                    &[
                        zone.clone(),
                        dataset.clone(),
                        KeyValue::new("outcome", outcome),
                    ],
                );
                if stored > 0 {
                    self.stored.add(stored, &[zone, dataset]);
                }
            }
            "retry" | "failed" => {
                self.close_failures
                    .add(1, &[zone, dataset, KeyValue::new("kind", outcome)]);
            }
            _ => {}
        }
        self.close_duration
            .record(seconds, &[KeyValue::new("outcome", outcome)]);
    }

    pub fn open_windows(&self, windows: usize) {
        self.open_windows
            .record(u64::try_from(windows).unwrap_or(u64::MAX), &[]);
    }
}
