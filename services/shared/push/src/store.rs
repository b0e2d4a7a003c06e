//! Storing one push (an HTTP body, an object from a bucket) in `RL_PUSH`: decoded, cut and each
//! part published with an id derived from its content, so pushing the same bytes again stores
//! nothing new (within JetStream's duplicate window).

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use rainlogs_bus::{Bus, Published};
use rainlogs_cloudflare::LogpushDataset;
use rainlogs_schemas::events::{BatchCollected, PushReceived};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use sha2::{Digest, Sha256};

use crate::decode::Decoder;
use crate::parts::{Cutter, Held, Part, Refusal};

/// NDJSON per part: with its envelope it stays under NATS's default 1 MiB message limit.
pub const PART_BYTES: usize = 900 * 1024;

/// Why a push was not stored whole. Parts stored before the failure stay stored: what was
/// stored is never less than what was pushed, and a retry stores only the rest.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("{0}")]
    Corrupt(String),
    #[error("the body sent nothing for {} s", .0.as_secs_f64())]
    Stalled(Duration),
    #[error("JetStream did not take a part: {0}")]
    Unavailable(String),
}

/// What a push held once stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub held: Held,
    /// Decompressed bytes.
    pub bytes: u64,
    /// Parts JetStream did not already have.
    pub new_parts: usize,
    /// The `RL_PUSH` sequence of the push's newest part (of the part stored earlier, for a
    /// part JetStream already had); `None` when nothing was stored.
    pub last_part: Option<u64>,
}

/// Where a push is stored and who stores it.
pub struct PushTarget<'a> {
    pub bus: &'a Bus,
    pub tenant: &'a str,
    pub zone: &'a str,
    pub dataset: LogpushDataset,
    /// The service that stores it (the envelope's actor).
    pub actor: &'static str,
}

/// Reads, decompresses, cuts and stores one push. `idle` bounds the wait for each chunk.
pub async fn store_push<S, E>(
    target: &PushTarget<'_>,
    mut chunks: S,
    max_bytes: u64,
    idle: Duration,
) -> Result<Stored, PushError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut cutter = Cutter::new(target.dataset, PART_BYTES, max_bytes);
    let mut decoder = Decoder::default();
    let mut stored = Tally::default();
    loop {
        let chunk = match tokio::time::timeout(idle, chunks.next()).await {
            Err(_) => return Err(PushError::Stalled(idle)),
            Ok(None) => break,
            Ok(Some(chunk)) => {
                chunk.map_err(|e| PushError::Corrupt(format!("the body could not be read: {e}")))?
            }
        };
        let plain = decoder.feed(&chunk).map_err(PushError::Corrupt)?;
        cut(target, &mut cutter, &plain, &mut stored).await?;
    }
    let plain = decoder.finish().map_err(PushError::Corrupt)?;
    cut(target, &mut cutter, &plain, &mut stored).await?;
    let bytes = cutter.total();
    let (last, held) = cutter.finish()?;
    if let Some(last) = last {
        stored.add(store_part(target, last).await?);
    }
    Ok(Stored {
        held,
        bytes,
        new_parts: stored.new_parts,
        last_part: stored.last_part,
    })
}

/// What the parts of one push came to in `RL_PUSH`.
#[derive(Default)]
struct Tally {
    new_parts: usize,
    last_part: Option<u64>,
}

impl Tally {
    fn add(&mut self, published: Published) {
        self.new_parts += usize::from(!published.duplicate);
        self.last_part = self.last_part.max(Some(published.sequence));
    }
}

/// Cuts `plain` and stores the parts it fills.
async fn cut(
    target: &PushTarget<'_>,
    cutter: &mut Cutter,
    plain: &[u8],
    stored: &mut Tally,
) -> Result<(), PushError> {
    let mut full = Vec::new();
    cutter.push(plain, &mut full)?;
    for part in full {
        stored.add(store_part(target, part).await?);
    }
    Ok(())
}

/// Stores one part.
async fn store_part(target: &PushTarget<'_>, part: Part) -> Result<Published, PushError> {
    let content_sha256: [u8; 32] = Sha256::digest(&part.content).into();
    let dataset = target.dataset.as_str();
    let mut envelope = Envelope::new(
        target.tenant,
        Some(target.zone.to_owned()),
        Actor::service(target.actor),
        Event::PushReceived(PushReceived {
            dataset: dataset.to_owned(),
            records: part.records,
            content_sha256: content_sha256.to_vec(),
            content_lz4: BatchCollected::compress(&part.content),
        }),
    );
    envelope.id = part_id(target.zone, dataset, &content_sha256);
    target
        .bus
        .publish(&subjects::push(target.zone), &envelope)
        .await
        .map_err(|e| PushError::Unavailable(e.to_string()))
}

/// Domain separation for the id of a pushed part.
const PART_ID: &[u8] = b"rainlogs push part v1\n";

/// A UUIDv8 from SHA-256("rainlogs push part v1\n" ∥ zone ∥ 0x0A ∥ dataset ∥ 0x0A ∥
/// content_sha256): the same part of a retried push gets the same `Nats-Msg-Id`.
pub fn part_id(zone: &str, dataset: &str, content_sha256: &[u8; 32]) -> uuid::Uuid {
    let mut hasher = Sha256::new();
    hasher.update(PART_ID);
    hasher.update(zone.as_bytes());
    hasher.update(b"\n");
    hasher.update(dataset.as_bytes());
    hasher.update(b"\n");
    hasher.update(content_sha256);
    let digest: [u8; 32] = hasher.finalize().into();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_ids_depend_on_zone_dataset_and_content() {
        let a = part_id("z", "http_requests", &[1; 32]);
        assert_eq!(a, part_id("z", "http_requests", &[1; 32]));
        assert_ne!(a, part_id("y", "http_requests", &[1; 32]));
        assert_ne!(a, part_id("z", "firewall_events", &[1; 32]));
        assert_ne!(a, part_id("z", "http_requests", &[2; 32]));
        assert_eq!(a.get_version_num(), 8);
    }
}
