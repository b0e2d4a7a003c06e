//! What an operator watches of the API: requests by operation and status, and how long they
//! take. Operations are labelled by their OpenAPI `operationId`, a bounded set, never by the
//! path a client sent.

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use poem::Response;
use rainlogs_telemetry::{MetricFamily, MetricUnit};

pub const REQUESTS: MetricFamily = MetricFamily::counter(
    "rainlogs_api_requests",
    &["route", "status"],
    "Requests answered, by operation (its OpenAPI operationId; openapi.json; unmatched) and HTTP status",
);
pub const REQUEST_DURATION: MetricFamily = MetricFamily::histogram(
    "rainlogs_api_request_duration",
    &["route"],
    "Time from a request's arrival to its answer's headers, by operation",
)
.in_unit(MetricUnit::Seconds);

/// Every family the API exposes.
pub const FAMILIES: &[MetricFamily] = &[REQUESTS, REQUEST_DURATION];

#[derive(Clone)]
pub struct ApiMetrics {
    requests: Counter<u64>,
    duration: Histogram<f64>,
}

impl ApiMetrics {
    pub fn new(meter: &Meter) -> Self {
        Self {
            requests: REQUESTS.u64_counter(meter),
            duration: REQUEST_DURATION.seconds_histogram(meter),
        }
    }

    pub fn answered(&self, route: &'static str, status: u16, seconds: f64) {
        let route = KeyValue::new("route", route);
        self.requests.add(
            1,
            &[route.clone(), KeyValue::new("status", i64::from(status))],
        );
        self.duration.record(seconds, &[route]);
    }
}

/// The operation that answered, as the OpenAPI layer marks its responses.
pub fn route_of(response: &Response, path: &str) -> &'static str {
    match response.data::<poem_openapi::OperationId>() {
        Some(operation) => operation.0,
        None if path == "/openapi.json" => "openapi.json",
        None => "unmatched",
    }
}
