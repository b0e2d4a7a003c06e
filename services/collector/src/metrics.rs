//! Per-zone collection metrics (OpenTelemetry, rendered on `/metrics`).

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Meter};
use rainlogs_cloudflare::{BreakerState, CfError, Endpoint};

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
}

impl CollectorMetrics {
    pub fn new(meter: &Meter) -> Self {
        Self {
            windows: meter
                .u64_counter("rainlogs_collector_windows")
                .with_description("Windows closed, by outcome (complete, empty, gap)")
                .build(),
            records: meter
                .u64_counter("rainlogs_collector_records")
                .with_description("Records published in completed windows")
                .build(),
            bytes: meter
                .u64_counter("rainlogs_collector_published")
                .with_description("Uncompressed NDJSON bytes published in completed windows")
                .with_unit("By")
                .build(),
            responses: meter
                .u64_counter("rainlogs_collector_cloudflare_responses")
                .with_description("Cloudflare answers by endpoint and HTTP status")
                .build(),
            attempts_abandoned: meter
                .u64_counter("rainlogs_collector_attempts_abandoned")
                .with_description("Window attempts abandoned and fetched again")
                .build(),
            lag: meter
                .i64_gauge("rainlogs_collector_lag")
                .with_description(
                    "Seconds the cursor (start of the oldest window not yet collected) trails real time; for Logpull this includes collector.logpull_delay",
                )
                .with_unit("s")
                .build(),
            breaker: meter
                .u64_gauge("rainlogs_collector_breaker_state")
                .with_description(
                    "Circuit breaker of the zone's token per endpoint, after its last call: 0 closed, 1 half-open, 2 open",
                )
                .build(),
            backfill_remaining: meter
                .u64_gauge("rainlogs_collector_backfill_windows_remaining")
                .with_description(
                    "Windows a zone still has to collect in a long backfill or catch-up (0 once current)",
                )
                .build(),
            backfill_done: meter
                .u64_counter("rainlogs_collector_backfill_windows_done")
                .with_description("Windows closed during long backfills and catch-ups")
                .build(),
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
