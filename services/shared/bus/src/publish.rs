use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use rainlogs_schemas::Envelope;

use crate::Bus;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot encode {event_type}: {source}")]
    Encode {
        event_type: &'static str,
        source: rainlogs_schemas::EncodeError,
    },
    /// Another writer appended to the subject first; the caller must re-read and retry.
    #[error("{subject} has moved past expected sequence {expected}")]
    WrongLastSequence { subject: String, expected: u64 },
    /// Nothing answered for the subject: a stream leader election in progress (routine in a
    /// cluster, over in seconds), or a stream that is really missing.
    #[error(
        "no stream answered for {subject}: a JetStream leader election, or the stream is missing (`rainlogs provision --check`)"
    )]
    NoStream { subject: String },
    #[error("publishing to {subject} failed: {reason}")]
    Failed { subject: String, reason: String },
}

impl PublishError {
    /// Worth retrying the same publish (same `Nats-Msg-Id`, so it is stored once). A missing
    /// stream is included: services check their streams at start, so later it is an election.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PublishError::Failed { .. } | PublishError::NoStream { .. }
        )
    }
}

/// Where the server stored an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    pub sequence: u64,
    /// The server already had this `Nats-Msg-Id` within the duplicate window.
    pub duplicate: bool,
}

impl Bus {
    /// Publishes with `Nats-Msg-Id` = event id and waits for the stream's ack.
    pub async fn publish(
        &self,
        subject: &str,
        event: &Envelope,
    ) -> Result<Published, PublishError> {
        self.send(subject, event, None).await
    }

    /// Appends only if the last message on `subject` is still `expected` (0 = subject empty),
    /// which is how a single chain per zone is kept: a second writer gets `WrongLastSequence`.
    pub async fn publish_after(
        &self,
        subject: &str,
        event: &Envelope,
        expected: u64,
    ) -> Result<Published, PublishError> {
        self.send(subject, event, Some(expected)).await
    }

    async fn send(
        &self,
        subject: &str,
        event: &Envelope,
        expected_last_subject_seq: Option<u64>,
    ) -> Result<Published, PublishError> {
        let payload = event.to_cbor().map_err(|source| PublishError::Encode {
            event_type: event.event.type_name(),
            source,
        })?;
        let mut headers = async_nats::HeaderMap::new();
        crate::trace_context::inject_current(&mut headers);
        let mut message = PublishMessage::build()
            .headers(headers)
            .payload(payload.into())
            .message_id(event.msg_id());
        if let Some(expected) = expected_last_subject_seq {
            message = message.expected_last_subject_sequence(expected);
        }
        let failed = |kind: PublishErrorKind, reason: String| match kind {
            PublishErrorKind::WrongLastSequence => PublishError::WrongLastSequence {
                subject: subject.to_owned(),
                expected: expected_last_subject_seq.unwrap_or(0),
            },
            PublishErrorKind::StreamNotFound => PublishError::NoStream {
                subject: subject.to_owned(),
            },
            _ => PublishError::Failed {
                subject: subject.to_owned(),
                reason,
            },
        };
        let ack = self
            .js
            .send_publish(subject.to_owned(), message)
            .await
            .map_err(|e| failed(e.kind(), e.to_string()))?
            .await
            .map_err(|e| failed(e.kind(), e.to_string()))?;
        Ok(Published {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}
