//! What an operator watches of each projection running in the process: events applied, and how
//! far the read model trails its stream, in events and in seconds. The lag is measured from
//! outside the apply loop, so a projection stuck on an unreachable PostgreSQL still shows it
//! falling behind.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge};
use rainlogs_bus::{Bus, CancellationToken};
use rainlogs_telemetry::{MetricFamily, MetricUnit};
use sqlx::PgPool;

use crate::projector::{ProjectionError, applied_sequence, nats};

pub const APPLIED: MetricFamily = MetricFamily::counter(
    "rainlogs_projection_events_applied",
    &["projection"],
    "Events a projection applied to its read model",
);
pub const LAG_EVENTS: MetricFamily = MetricFamily::gauge(
    "rainlogs_projection_lag_events",
    &["projection"],
    "Stream sequences past the projection's offset: events not yet in its read model",
);
pub const LAG: MetricFamily = MetricFamily::gauge(
    "rainlogs_projection_lag",
    &["projection"],
    "Age of the oldest event not yet in the projection's read model (0 when caught up)",
)
.in_unit(MetricUnit::Seconds);
pub const POISONED: MetricFamily = MetricFamily::counter(
    "rainlogs_projection_poisoned",
    &["projection"],
    "Events a projection could never apply and set aside in projection_poisoned",
);

/// Every family the projector runtime exposes, for each projection a service runs.
pub const FAMILIES: &[MetricFamily] = &[APPLIED, LAG_EVENTS, LAG, POISONED];

/// How often the lag is measured.
const MEASURE_EVERY: Duration = Duration::from_secs(5);

/// The instruments of one running projection. They come from the global meter provider, the one
/// `rainlogs_telemetry::init` installs (a no-op one in tests that do not ask for metrics).
#[derive(Clone)]
pub(crate) struct ProjectionMetrics {
    label: [KeyValue; 1],
    applied: Counter<u64>,
    lag_events: Gauge<u64>,
    lag: Gauge<f64>,
}

impl ProjectionMetrics {
    pub(crate) fn new(projection: &'static str) -> Self {
        let meter = opentelemetry::global::meter("rainlogs-projections");
        Self {
            label: [KeyValue::new("projection", projection)],
            applied: APPLIED.u64_counter(&meter),
            lag_events: LAG_EVENTS.u64_gauge(&meter),
            lag: LAG.f64_gauge(&meter),
        }
    }

    pub(crate) fn applied(&self, events: u64) {
        self.applied.add(events, &self.label);
    }
}

/// Measures the projection's lag until `shutdown`. A failed measurement (NATS or PostgreSQL
/// away) leaves the last values and is logged at debug level: the projection itself logs the
/// outage.
pub(crate) async fn watch(
    metrics: ProjectionMetrics,
    pool: PgPool,
    bus: Bus,
    projection: &'static str,
    stream: &'static str,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(MEASURE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        match measure(&pool, &bus, projection, stream).await {
            Ok((events, seconds)) => {
                metrics.lag_events.record(events, &metrics.label);
                metrics.lag.record(seconds, &metrics.label);
            }
            Err(e) => {
                tracing::debug!(projection, error = %e, "cannot measure the projection's lag")
            }
        }
    }
}

/// Events past the offset, and the age in seconds of the first of them.
async fn measure(
    pool: &PgPool,
    bus: &Bus,
    projection: &str,
    stream: &str,
) -> Result<(u64, f64), ProjectionError> {
    let offset = applied_sequence(pool, projection).await?;
    let mut stream = bus.js.get_stream(stream).await.map_err(nats)?;
    let state = stream.info().await.map_err(nats)?.state.clone();
    let behind = state.last_sequence.saturating_sub(offset);
    if behind == 0 {
        return Ok((0, 0.0));
    }
    // The next event to apply; retention may have removed the sequences before the stream's first.
    let next = (offset + 1).max(state.first_sequence);
    let seconds = match stream.get_raw_message(next).await {
        Ok(message) => (time::OffsetDateTime::now_utc() - message.time)
            .as_seconds_f64()
            .max(0.0),
        // A deleted sequence (interior delete): the count still says the projection is behind.
        Err(_) => 0.0,
    };
    Ok((behind, seconds))
}
