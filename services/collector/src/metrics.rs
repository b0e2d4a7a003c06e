//! Per-zone collection metrics (OpenTelemetry, rendered on `/metrics`).

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Meter};
use rainlogs_cloudflare::CfError;

#[derive(Clone)]
pub struct CollectorMetrics {
    windows: Counter<u64>,
    records: Counter<u64>,
    bytes: Counter<u64>,
    responses: Counter<u64>,
    attempts_abandoned: Counter<u64>,
    lag: Gauge<i64>,
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
                    "Seconds the cursor trails the newest window the source can serve",
                )
                .with_unit("s")
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

    pub fn response(&self, zone: &str, endpoint: &'static str, result: Result<(), &CfError>) {
        let status = match result {
            Ok(()) => "200".to_owned(),
            Err(e) => e
                .http_status()
                .map_or_else(|| "none".to_owned(), |s| s.to_string()),
        };
        self.responses.add(
            1,
            &[
                KeyValue::new("zone", zone.to_owned()),
                KeyValue::new("endpoint", endpoint),
                KeyValue::new("status", status),
            ],
        );
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

    pub fn lag(&self, zone: &str, dataset: &str, seconds: i64) {
        self.lag.record(
            seconds.max(0),
            &[
                KeyValue::new("zone", zone.to_owned()),
                KeyValue::new("dataset", dataset.to_owned()),
            ],
        );
    }
}
