//! The loop every consuming service runs: fetch, handle fully, then ack; stop fetching on shutdown.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// What to tell the server about a handled message.
#[derive(Debug)]
pub enum Disposition {
    /// The effect is durable; never deliver again.
    Ack,
    /// Could not handle it now; deliver again after the delay.
    Retry(Duration),
    /// Can never be handled (undecodable); keep it in the stream but stop delivering it.
    Reject(String),
}

/// Runs `handle` for each message until `shutdown` fires. A message being handled when shutdown
/// fires is finished and acknowledged first; messages already fetched but not started are left
/// unacknowledged, so the server redelivers them to the next consumer.
pub async fn consume<F, Fut>(
    consumer: jetstream::consumer::Consumer<pull::Config>,
    shutdown: CancellationToken,
    mut handle: F,
) -> Result<(), async_nats::Error>
where
    F: FnMut(jetstream::Message) -> Fut,
    Fut: Future<Output = Disposition>,
{
    let mut messages = consumer.messages().await?;
    loop {
        let next = tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(()),
            next = messages.next() => next,
        };
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "pull consumer error; continuing");
                continue;
            }
            None => return Ok(()),
        };
        let acker = message.clone();
        let outcome = match handle(message).await {
            Disposition::Ack => acker.double_ack().await,
            Disposition::Retry(delay) => acker.ack_with(AckKind::Nak(Some(delay))).await,
            Disposition::Reject(reason) => {
                tracing::error!(subject = %acker.subject, %reason, "rejecting undeliverable message");
                acker.ack_with(AckKind::Term).await
            }
        };
        if let Err(e) = outcome {
            // The server redelivers after ack_wait; handlers are idempotent, so this is safe.
            tracing::warn!(error = %e, "acknowledgement failed; message will be redelivered");
        }
    }
}
