//! The chain as published on `rl.chain.<zone>` (RL_CHAIN): reading it back in order and
//! appending to it with `Nats-Expected-Last-Subject-Sequence`, which is what keeps two sealers
//! from ever forking a zone's log.

use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use rainlogs_bus::async_nats::jetstream::consumer::{DeliverPolicy, pull};
use rainlogs_bus::async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use rainlogs_bus::{Bus, PublishError, Published, definitions};
use rainlogs_integrity::SealedEntry;
use rainlogs_schemas::events::EntrySealed;
use rainlogs_schemas::{Actor, Envelope, Event};

/// A read that gets no message for this long while more are known to exist has failed.
const READ_STALL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("reading {subject}: {reason}")]
    Unavailable { subject: String, reason: String },
    #[error("{subject} sequence {sequence} is not a chain entry: {reason}")]
    NotAnEntry {
        subject: String,
        sequence: u64,
        reason: String,
    },
}

/// One message of `rl.chain.<zone>`.
pub struct JournalEntry {
    pub sequence: u64,
    pub index: u64,
    pub bytes: Vec<u8>,
}

#[derive(Clone)]
pub struct Journal {
    bus: Bus,
    stream: Stream,
}

impl Journal {
    pub async fn open(bus: Bus) -> Result<Self, String> {
        let stream = bus
            .js
            .get_stream(definitions::CHAIN)
            .await
            .map_err(|e| format!("opening {}: {e}", definitions::CHAIN))?;
        Ok(Self { bus, stream })
    }

    /// Calls `apply` for every entry on `subject` after stream sequence `after`, in order, up
    /// to the newest one. Stops at the first error `apply` returns.
    pub async fn read_after<E>(
        &self,
        subject: &str,
        after: u64,
        mut apply: impl FnMut(JournalEntry) -> Result<(), E>,
    ) -> Result<Result<(), E>, JournalError> {
        let mut failed = None;
        read_subject(&self.stream, subject, after, |sequence, payload| {
            let entry = decode(subject, sequence, payload)?;
            if let Err(e) = apply(entry) {
                failed = Some(e);
                return Ok(false);
            }
            Ok(true)
        })
        .await?;
        Ok(failed.map_or(Ok(()), Err))
    }

    /// Appends `entry` if the newest message on `subject` is still `expected` (0 = none).
    pub async fn append(
        &self,
        subject: &str,
        tenant: &str,
        zone: &str,
        entry: &SealedEntry,
        cause: Option<&Envelope>,
        expected: u64,
    ) -> Result<Published, PublishError> {
        let event = Event::EntrySealed(EntrySealed {
            index: entry.entry.index,
            entry: entry.bytes.clone(),
            chain_hash: entry.chain_hash.0.to_vec(),
        });
        let mut envelope = Envelope::new(
            tenant,
            Some(zone.to_owned()),
            Actor::service(crate::NAME),
            event,
        );
        if let Some(cause) = cause {
            envelope = envelope.caused_by(cause);
        }
        // The id is derived from the entry bytes: a retried publish of the same entry is
        // deduplicated, and two different entries never share an id (a duplicate ack for
        // someone else's entry would otherwise look like success).
        envelope.id = entry_event_id(&entry.id.0);
        self.bus.publish_after(subject, &envelope, expected).await
    }
}

/// A zone's newest chain entry, as the stream holds it.
pub struct ChainHead {
    pub tenant: String,
    pub zone: String,
    /// Index of the newest entry (the log has `index + 1` entries).
    pub index: u64,
}

impl Journal {
    /// The newest entry of every zone's chain.
    pub async fn heads(&self) -> Result<Vec<ChainHead>, JournalError> {
        let unavailable = |reason: String| JournalError::Unavailable {
            subject: "rl.chain.>".into(),
            reason,
        };
        let subjects: Vec<(String, usize)> = self
            .stream
            .info_with_subjects("rl.chain.>")
            .await
            .map_err(|e| unavailable(e.to_string()))?
            .try_collect()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let mut heads = Vec::with_capacity(subjects.len());
        for (subject, _) in subjects {
            let message = match self.stream.get_last_raw_message_by_subject(&subject).await {
                Ok(message) => message,
                Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => continue,
                Err(e) => return Err(unavailable(e.to_string())),
            };
            let not_entry = |reason: String| JournalError::NotAnEntry {
                subject: subject.clone(),
                sequence: message.sequence,
                reason,
            };
            let envelope =
                Envelope::from_cbor(&message.payload).map_err(|e| not_entry(e.to_string()))?;
            let Event::EntrySealed(sealed) = &envelope.event else {
                return Err(not_entry(format!(
                    "event type {}",
                    envelope.event.type_name()
                )));
            };
            let index = sealed.index;
            let zone = subject.strip_prefix("rl.chain.").unwrap_or_default();
            heads.push(ChainHead {
                tenant: envelope.tenant,
                zone: zone.to_owned(),
                index,
            });
        }
        Ok(heads)
    }
}

/// Stream sequence of the newest message on `subject` of `stream` (0 when there is none).
pub async fn last_sequence(stream: &Stream, subject: &str) -> Result<u64, JournalError> {
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(message) => Ok(message.sequence),
        Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => Ok(0),
        Err(e) => Err(JournalError::Unavailable {
            subject: subject.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// Calls `visit(sequence, payload)` for every message on `subject` after stream sequence
/// `after`, in order, up to the newest one when the read starts, or until `visit` says stop.
pub async fn read_subject(
    stream: &Stream,
    subject: &str,
    after: u64,
    mut visit: impl FnMut(u64, &[u8]) -> Result<bool, JournalError>,
) -> Result<(), JournalError> {
    let unavailable = |reason: String| JournalError::Unavailable {
        subject: subject.to_owned(),
        reason,
    };
    let until = last_sequence(stream, subject).await?;
    if until <= after {
        return Ok(());
    }
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: subject.to_owned(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    loop {
        let message = match tokio::time::timeout(READ_STALL, messages.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(e))) => return Err(unavailable(e.to_string())),
            Ok(None) => return Err(unavailable("message stream ended".into())),
            Err(_) => return Err(unavailable(format!("no message for {READ_STALL:?}"))),
        };
        let sequence = message
            .info()
            .map_err(|e| unavailable(e.to_string()))?
            .stream_sequence;
        if !visit(sequence, &message.payload)? || sequence >= until {
            return Ok(());
        }
    }
}

/// UUIDv8 from the first 16 bytes of the entry id.
pub fn entry_event_id(entry_id: &[u8; 32]) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&entry_id[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

fn decode(subject: &str, sequence: u64, payload: &[u8]) -> Result<JournalEntry, JournalError> {
    let not_entry = |reason: String| JournalError::NotAnEntry {
        subject: subject.to_owned(),
        sequence,
        reason,
    };
    let envelope = Envelope::from_cbor(payload).map_err(|e| not_entry(e.to_string()))?;
    match envelope.event {
        Event::EntrySealed(sealed) => Ok(JournalEntry {
            sequence,
            index: sealed.index,
            bytes: sealed.entry,
        }),
        other => Err(not_entry(format!("event type {}", other.type_name()))),
    }
}
