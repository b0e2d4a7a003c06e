//! The collector service. It learns tenants and zones from `rl.ctl.>` (replayed from the start
//! on every start, so its registry is never stale); collection lands with its issue.

mod registry;

use futures::StreamExt;
use rainlogs_bus::async_nats::jetstream::consumer::{DeliverPolicy, pull};
use rainlogs_bus::definitions;
use rainlogs_runtime::{ServiceContext, ServiceError};
use rainlogs_schemas::Envelope;
use rainlogs_telemetry::ServiceState;

pub use registry::{ZoneEntry, ZoneRegistry};

pub const NAME: &str = "collector";

pub async fn run(ctx: ServiceContext) -> Result<(), ServiceError> {
    let err = |e: &dyn std::fmt::Display| ServiceError::new(NAME, e);
    let stream = ctx
        .bus
        .js
        .get_stream(definitions::CONTROL)
        .await
        .map_err(|e| err(&e))?;
    // An ordered consumer: no server-side state to clean up, replays everything in order.
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            filter_subject: "rl.ctl.>".into(),
            ..Default::default()
        })
        .await
        .map_err(|e| err(&e))?;
    let mut messages = consumer.messages().await.map_err(|e| err(&e))?;
    let mut registry = ZoneRegistry::default();
    ctx.report(NAME, ServiceState::Ready);
    loop {
        let next = tokio::select! {
            biased;
            () = ctx.shutdown.cancelled() => return Ok(()),
            next = messages.next() => next,
        };
        match next {
            Some(Ok(message)) => match Envelope::from_cbor(&message.payload) {
                Ok(event) => registry.apply(&event),
                Err(e) => {
                    tracing::error!(subject = %message.subject, error = %e, "undecodable control event")
                }
            },
            Some(Err(e)) => tracing::warn!(error = %e, "control stream error; continuing"),
            None => return Err(err(&"control stream ended")),
        }
    }
}
