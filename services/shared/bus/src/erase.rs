//! Erasing personal data from the control stream (GDPR Art. 17).
//!
//! The control stream is otherwise append-only. Erasure overwrites and removes, on the erased
//! tenant's subject only, the events whose payload holds personal data; every other event (the
//! deletion itself, zones, revocations) stays, so the read models can still be rebuilt.

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt as _;
use rainlogs_schemas::{Envelope, subjects};

use crate::{Bus, definitions};

#[derive(Debug, thiserror::Error)]
#[error("erasing personal data from the control stream: {0}")]
pub struct EraseError(String);

fn failed(e: impl std::fmt::Display) -> EraseError {
    EraseError(e.to_string())
}

/// Securely deletes (the server overwrites the stored bytes) every event on `tenant`'s control
/// subject for which `erase` is true; returns how many. Running it again finds none.
pub async fn erase_control_events(
    bus: &Bus,
    tenant: &str,
    erase: impl Fn(&Envelope) -> bool,
) -> Result<u64, EraseError> {
    let stream = bus
        .js
        .get_stream(definitions::CONTROL)
        .await
        .map_err(failed)?;
    let mut consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            filter_subject: subjects::control(tenant),
            ..Default::default()
        })
        .await
        .map_err(failed)?;
    let mut remaining = consumer.info().await.map_err(failed)?.num_pending;
    let mut messages = consumer.messages().await.map_err(failed)?;
    let mut to_erase = Vec::new();
    while remaining > 0 {
        let Some(message) = messages.next().await else {
            return Err(EraseError(
                "the control stream ended while being read".into(),
            ));
        };
        let message = message.map_err(failed)?;
        let info = message.info().map_err(failed)?;
        remaining = info.pending;
        // An event that does not decode is not one this code wrote; it is left for an operator.
        if Envelope::from_cbor(&message.payload).is_ok_and(|event| erase(&event)) {
            to_erase.push(info.stream_sequence);
        }
    }
    for sequence in &to_erase {
        stream.delete_message(*sequence).await.map_err(failed)?;
    }
    Ok(to_erase.len() as u64)
}
