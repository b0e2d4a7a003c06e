//! How far each durable consumer of a service trails its stream, read from the server: the
//! numbers an operator compares with the service's own (windows archived, entries sealed) to tell
//! a slow service from a stuck one.

use std::time::Duration;

use opentelemetry::KeyValue;
use rainlogs_bus::{Bus, CancellationToken, definitions};
use rainlogs_telemetry::{MetricFamily, Telemetry};

pub const PENDING: MetricFamily = MetricFamily::gauge(
    "rainlogs_consumer_pending_messages",
    &["consumer"],
    "Messages in the stream not yet delivered to the durable consumer",
);
pub const ACK_PENDING: MetricFamily = MetricFamily::gauge(
    "rainlogs_consumer_ack_pending_messages",
    &["consumer"],
    "Messages delivered to the durable consumer and not yet acknowledged",
);
pub const REDELIVERED: MetricFamily = MetricFamily::gauge(
    "rainlogs_consumer_redelivered_messages",
    &["consumer"],
    "Messages delivered more than once and not yet acknowledged",
);

/// The families every durable consumer of the process is reported in.
pub const FAMILIES: &[MetricFamily] = &[PENDING, ACK_PENDING, REDELIVERED];

const MEASURE_EVERY: Duration = Duration::from_secs(5);

/// Reports durable consumer `name` (defined in `nats/consumers`) until `shutdown`. A failed
/// read keeps the last values: the service logs its own trouble with the server.
pub fn watch(bus: Bus, telemetry: &Telemetry, name: &'static str, shutdown: CancellationToken) {
    let meter = telemetry.meter("consumers");
    let pending = PENDING.u64_gauge(&meter);
    let ack_pending = ACK_PENDING.u64_gauge(&meter);
    let redelivered = REDELIVERED.u64_gauge(&meter);
    let label = [KeyValue::new("consumer", name)];
    tokio::spawn(async move {
        let stream = match definitions::consumer(name) {
            Ok(Some(definition)) => definition.stream,
            Ok(None) | Err(_) => {
                tracing::warn!(
                    consumer = name,
                    "no definition in nats/consumers; not reported"
                );
                return;
            }
        };
        let mut every = tokio::time::interval(MEASURE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            let info = match bus.js.get_stream(stream).await {
                Ok(stream) => stream.consumer_info(name).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match info {
                Ok(info) => {
                    pending.record(info.num_pending, &label);
                    ack_pending.record(count(info.num_ack_pending), &label);
                    redelivered.record(count(info.num_redelivered), &label);
                }
                Err(e) => tracing::debug!(consumer = name, error = %e, "cannot read the consumer"),
            }
        }
    });
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
