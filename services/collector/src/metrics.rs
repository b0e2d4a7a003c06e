//! Per-zone collection metrics (OpenTelemetry, rendered on `/metrics`).

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Meter};
use rainlogs_cloudflare::{BreakerState, CfError, Endpoint};
use rainlogs_telemetry::{MetricFamily, MetricUnit};

#[derive(Clone)]
pub struct CollectorMetrics {
    windows: Counter<u64>,
    records: Counter<u64>,
    bytes: Counter<u64>,
    responses: Counter<u64>,
    attempts_abandoned: Counter<u64>,
    lag: Gauge<i64>,
    breaker: Gauge<u64>,
    backfill_remaining: Gauge<u64>,
    backfill_done: Counter<u64>,
    pushed: Counter<u64>,
    short_windows: Counter<u64>,
    cloudflare_dropped: Counter<u64>,
    repaired: Counter<u64>,
}

const ZONE_DATASET: &[&str] = &["zone", "dataset"];

pub const WINDOWS: MetricFamily = MetricFamily::counter(
    "rainlogs_collector_windows",
    &["zone", "dataset", "outcome"],
    "Windows closed, by outcome (complete, empty, gap)",
);
pub const RECORDS: MetricFamily = MetricFamily::counter(
    "rainlogs_collector_records",
    ZONE_DATASET,
    "Records published in completed windows",
);
pub const PUBLISHED: MetricFamily = MetricFamily::counter(
    "rainlogs_collector_published",
    ZONE_DATASET,
    "Uncompressed NDJSON bytes published in completed windows",
)
.in_unit(MetricUnit::Bytes);
pub const RESPONSES: MetricFamily = MetricFamily::counter(
    "rainlogs_collector_cloudflare_responses",
    &["zone", "endpoint", "status"],
    "Cloudflare answers by endpoint and HTTP status",
);
pub const ATTEMPTS_ABANDONED: MetricFamily = MetricFamily::counter(
    "rainlogs_collector_attempts_abandoned",
    ZONE_DATASET,
    "Window attempts abandoned and fetched again",
);
pub const LAG: MetricFamily = MetricFamily::gauge(
    "rainlogs_collector_lag",
    ZONE_DATASET,
    "Seconds the cursor (start of the oldest window not yet collected) trails real time; for Logpull this includes collector.logpull_delay",
)
.in_unit(MetricUnit::Seconds);
pub const BREAKER_STATE: MetricFamily = MetricFamily::gauge(
    "rainlogs_collector_breaker_state",
    &["zone", "endpoint"],
    "Circuit breaker of the zone's token per endpoint, after its last call: 0 closed, 1 half-open, 2 open",
);
pub const BACKFILL_REMAINING: MetricFamily = MetricFamily::gauge(
    "rainlogs_collector_backfill_windows_remaining",
    ZONE_DATASET,
    "Windows a zone still has to collect in a long backfill or catch-up (0 once current)",
);
pub const BACKFILL_DONE: MetricFamily = MetricFamily::counter(
    "rainlogs_collector_backfill_windows_done",
    ZONE_DATASET,
    "Windows closed during long backfills and catch-ups",
);

pub const PUSHED_RECORDS: MetricFamily = MetricFamily::counter(
    "rainlogs_collector_pushed_records",
    &["zone", "dataset", "fate"],
    "Pushed (Logpush) records read, by fate: on_time (in its window), late (in a late entry of a sealed window), duplicate (stored already), before_start (older than the zone's log), unreadable",
);

pub const SHORT_WINDOWS: MetricFamily = MetricFamily::counter(
    "rainlogs_collector_logpush_short_windows",
    &["zone", "dataset"],
    "Logpush windows holding fewer records than Cloudflare's own count, beyond the tolerance (5 %, at least 5)",
);

pub const CLOUDFLARE_DROPPED: MetricFamily = MetricFamily::counter(
    "rainlogs_collector_logpush_cloudflare_dropped_records",
    &["zone", "dataset"],
    "Records Cloudflare's Logpush health reports it gave up delivering for the zone's job",
);

pub const REPAIRED: MetricFamily = MetricFamily::counter(
    "rainlogs_collector_logpush_repaired_records",
    &["zone", "dataset"],
    "Records of short Logpush windows recovered from Logpull (Enterprise) and archived as late records",
);

/// Every family the collector exposes.
pub const FAMILIES: &[MetricFamily] = &[
    WINDOWS,
    RECORDS,
    PUBLISHED,
    RESPONSES,
    ATTEMPTS_ABANDONED,
    LAG,
    BREAKER_STATE,
    BACKFILL_REMAINING,
    BACKFILL_DONE,
    PUSHED_RECORDS,
    SHORT_WINDOWS,
    CLOUDFLARE_DROPPED,
    REPAIRED,
];

impl CollectorMetrics {
    pub fn new(meter: &Meter) -> Self {
        Self {
            windows: WINDOWS.u64_counter(meter),
            records: RECORDS.u64_counter(meter),
            bytes: PUBLISHED.u64_counter(meter),
            responses: RESPONSES.u64_counter(meter),
            attempts_abandoned: ATTEMPTS_ABANDONED.u64_counter(meter),
            lag: LAG.i64_gauge(meter),
            breaker: BREAKER_STATE.u64_gauge(meter),
            backfill_remaining: BACKFILL_REMAINING.u64_gauge(meter),
            backfill_done: BACKFILL_DONE.u64_counter(meter),
            pushed: PUSHED_RECORDS.u64_counter(meter),
            short_windows: SHORT_WINDOWS.u64_counter(meter),
            cloudflare_dropped: CLOUDFLARE_DROPPED.u64_counter(meter),
            repaired: REPAIRED.u64_counter(meter),
        }
    }

    pub fn window_closed(&self, zone: &str, dataset: &str, outcome: &'static str) {
        self.windows.add(
            1,
            &[
                KeyValue::new("zone", zone.to_owned()),
                KeyValue::new("dataset", dataset.to_owned()),
                KeyValue::new("outcome", outcome),
            ],
        );
    }

    pub fn published(&self, zone: &str, dataset: &str, records: u64, bytes: u64) {
        let attrs = [
            KeyValue::new("zone", zone.to_owned()),
            KeyValue::new("dataset", dataset.to_owned()),
        ];
        self.records.add(records, &attrs);
        self.bytes.add(bytes, &attrs);
    }

    /// What a completeness check found.
    pub fn completeness(&self, zone: &str, dataset: &str, short_windows: u64, dropped: u64) {
        let attrs = [
            KeyValue::new("zone", zone.to_owned()),
            KeyValue::new("dataset", dataset.to_owned()),
        ];
        self.short_windows.add(short_windows, &attrs);
        self.cloudflare_dropped.add(dropped, &attrs);
    }

    /// Records of a short window recovered from Logpull.
    pub fn repaired(&self, zone: &str, dataset: &str, records: u64) {
        self.repaired.add(
            records,
            &[
                KeyValue::new("zone", zone.to_owned()),
                KeyValue::new("dataset", dataset.to_owned()),
            ],
        );
    }

    /// Pushed records read, by what became of them.
    pub fn pushed(&self, zone: &str, dataset: &str, fate: &'static str, records: u64) {
        if records == 0 {
            return;
        }
        self.pushed.add(
            records,
            &[
                KeyValue::new("zone", zone.to_owned()),
                KeyValue::new("dataset", dataset.to_owned()),
                KeyValue::new("fate", fate),
            ],
        );
    }

    /// One answer from Cloudflare, and the breaker state it left behind.
    pub fn response(
        &self,
        zone: &str,
        endpoint: Endpoint,
        result: Result<(), &CfError>,
        breaker: BreakerState,
    ) {
        let status = match result {
            Ok(()) => "200".to_owned(),
            Err(e) => e
                .http_status()
                .map_or_else(|| "none".to_owned(), |s| s.to_string()),
        };
        let zone = KeyValue::new("zone", zone.to_owned());
        let endpoint = KeyValue::new("endpoint", endpoint.as_str());
        self.responses.add(
            1,
            &[
                zone.clone(),
                endpoint.clone(),
                KeyValue::new("status", status),
            ],
        );
        let level = match breaker {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        };
        self.breaker.record(level, &[zone, endpoint]);
    }

    pub fn abandoned(&self, zone: &str, dataset: &str) {
        self.attempts_abandoned.add(
            1,
            &[
                KeyValue::new("zone", zone.to_owned()),
                KeyValue::new("dataset", dataset.to_owned()),
            ],
        );
    }

    /// `seconds`: now minus the cursor (real time, not the newest end the source serves).
    pub fn lag(&self, zone: &str, dataset: &str, seconds: i64) {
        self.lag.record(
            seconds.max(0),
            &[
                KeyValue::new("zone", zone.to_owned()),
                KeyValue::new("dataset", dataset.to_owned()),
            ],
        );
    }

    pub fn backfill_remaining(&self, zone: &str, dataset: &str, windows: u64) {
        self.backfill_remaining.record(
            windows,
            &[
                KeyValue::new("zone", zone.to_owned()),
                KeyValue::new("dataset", dataset.to_owned()),
            ],
        );
    }

    pub fn backfill_window_done(&self, zone: &str, dataset: &str) {
        self.backfill_done.add(
            1,
            &[
                KeyValue::new("zone", zone.to_owned()),
                KeyValue::new("dataset", dataset.to_owned()),
            ],
        );
    }
}
