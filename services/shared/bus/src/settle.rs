//! What a consumer tells the server about a message it handled.
//!
//! There is no shared consume loop: the sealer answers each event as it handles it, between
//! checkpoint deadlines ([`settle`]); the archiver holds a window's batches unacknowledged until
//! the window is archived, sending progress meanwhile, so it answers by reply subject when the
//! window is done. What they share is the meaning of an answer, here.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind};

/// What became of a handled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// The effect is durable; never deliver it again.
    Ack,
    /// It could not be handled now; deliver it again after the delay.
    Retry(Duration),
    /// It can never be handled (undecodable, or not what the subject promises): keep it in the
    /// stream, stop delivering it.
    Reject(String),
}

impl Disposition {
    /// The acknowledgement that says so.
    pub fn ack_kind(&self) -> AckKind {
        match self {
            Self::Ack => AckKind::Ack,
            Self::Retry(delay) => AckKind::Nak(Some(*delay)),
            Self::Reject(_) => AckKind::Term,
        }
    }
}

/// Answers `message`. A rejection is logged with its reason; a lost answer is only logged,
/// because the server then delivers the message again and handlers answer a repeat the same way.
pub async fn settle(message: &jetstream::Message, disposition: Disposition) {
    if let Disposition::Reject(reason) = &disposition {
        tracing::error!(subject = %message.subject, %reason, "message can never be handled; terminated");
    }
    let sent = match disposition {
        // Acknowledged and confirmed: the redelivery a lost plain ack causes is avoided.
        Disposition::Ack => message.double_ack().await,
        other => message.ack_with(other.ack_kind()).await,
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, "acknowledgement failed; the message will be redelivered");
    }
}
