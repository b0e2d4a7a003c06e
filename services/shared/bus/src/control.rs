//! Reading the control stream from its start. Services that keep their own view of tenants and
//! zones (the collector's zone registry, the archiver's retention policies) replay `rl.ctl.>` in
//! order, say when they have caught up, then keep following it.

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt as _;
use rainlogs_schemas::{DecodeError, Envelope};

use crate::{Bus, definitions};

/// The control stream is gone (deleted, or the connection closed for good).
#[derive(Debug, thiserror::Error)]
#[error("the control stream ended")]
pub struct StreamEnded;

/// The control events, oldest first, then new ones as they are published.
pub struct ControlFeed {
    messages: pull::Ordered,
    /// Events stored in the stream that this feed has not returned yet.
    backlog: u64,
}

/// Opens a feed at the first control event.
pub async fn control_feed(bus: &Bus) -> Result<ControlFeed, async_nats::Error> {
    let mut stream = bus.js.get_stream(definitions::CONTROL).await?;
    let backlog = stream.info().await?.state.messages;
    // An ordered consumer: no server-side state to clean up, replays everything in order.
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            filter_subject: "rl.ctl.>".into(),
            ..Default::default()
        })
        .await?;
    let messages = consumer.messages().await?;
    Ok(ControlFeed { messages, backlog })
}

impl ControlFeed {
    /// Whether every event that was in the stream has been returned.
    pub fn caught_up(&self) -> bool {
        self.backlog == 0
    }

    /// Hands every event already in the stream to `apply`, in order; undecodable ones are
    /// logged and skipped. Errs when the stream is gone.
    pub async fn catch_up(&mut self, mut apply: impl FnMut(&Envelope)) -> Result<(), StreamEnded> {
        while !self.caught_up() {
            match self.next().await {
                Some(Ok(event)) => apply(&event),
                Some(Err(e)) => tracing::error!(error = %e, "undecodable control event"),
                None => return Err(StreamEnded),
            }
        }
        Ok(())
    }

    /// The next control event (or why it cannot be decoded), waiting for one when caught up;
    /// `None` when the stream is gone.
    pub async fn next(&mut self) -> Option<Result<Envelope, DecodeError>> {
        loop {
            match self.messages.next().await? {
                Ok(message) => {
                    self.backlog = message.info().map_or(0, |info| info.pending);
                    return Some(Envelope::from_cbor(&message.payload));
                }
                Err(e) => tracing::warn!(error = %e, "control stream error; continuing"),
            }
        }
    }
}
