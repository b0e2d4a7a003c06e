//! Telemetry shared by every service: JSON logs, OpenTelemetry metrics exported in Prometheus
//! text on `/metrics`, and `/health` (alive) + `/ready` (dependencies reachable, services started).

mod family;
mod health;
mod metrics;
mod traces;

pub use family::{MetricFamily, MetricKind, MetricUnit};
pub use health::{Health, ServiceState, health_routes};
pub use metrics::{Telemetry, TelemetryError, init};
