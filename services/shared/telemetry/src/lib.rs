//! Telemetry shared by every service: JSON logs, OpenTelemetry metrics exported in Prometheus
//! text on `/metrics`, and `/health` (alive) + `/ready` (dependencies reachable, services started).

mod health;
mod metrics;

pub use health::{Health, ServiceState, health_routes};
pub use metrics::{Telemetry, TelemetryError, init};
