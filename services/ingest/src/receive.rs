//! `POST /logpush/v1/<zone>/<dataset>`: one Logpush push. It is answered 200 only once every
//! part of it is in RL_PUSH (the server acknowledged it): a push Cloudflare sees fail is retried,
//! and one whose retries run out is lost for good, so nothing may be answered 200 early.
//!
//! - `Authorization: Bearer <secret>`, checked in constant time; an unknown zone and a wrong
//!   secret get the same 401.
//! - The body is gzip (recognised by its magic bytes, whatever `Content-Encoding` says;
//!   concatenated members are read) or plain NDJSON, decompressed as it arrives, never beyond
//!   `ingest.max_push_bytes` (413), cut into parts as it goes.
//! - A line that is not a record of the dataset refuses the push with 400 naming the line.
//!   Parts already stored stay stored: Cloudflare will not send that push again as it was, and
//!   what was stored is never less than what was pushed.
//! - JetStream unreachable: 503 with `Retry-After`; too many pushes at once: 429.

use std::sync::Arc;
use std::time::{Duration, Instant};

use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Body, Request, Response, handler};
use rainlogs_bus::Bus;
use rainlogs_cloudflare::LogpushDataset as Dataset;
use rainlogs_push::{Held, PushError, PushTarget, Refusal, Stored, store_push};
use tokio::sync::Semaphore;

use crate::endpoints::PushEndpoints;
use crate::metrics::IngestMetrics;

/// What every push is answered with.
pub struct Ingest {
    pub bus: Bus,
    pub endpoints: PushEndpoints,
    pub metrics: IngestMetrics,
    pub max_push_bytes: u64,
    /// A body that sends nothing for this long is dropped (408), so a stalled or slow-loris
    /// upload does not hold a push slot.
    pub body_timeout: Duration,
    pub pushes: Semaphore,
}

/// How a push ended, as the metrics and the answer say it.
enum Answer {
    Stored {
        records: u64,
        bytes: u64,
        new_parts: usize,
    },
    Check,
    Unauthorized,
    NotFound(&'static str),
    Refused(Refusal),
    Corrupt(String),
    Stalled(Duration),
    Busy,
    Unavailable(String),
}

#[handler]
pub async fn take_push(
    Path((zone, dataset)): Path<(String, String)>,
    request: &Request,
    body: Body,
    Data(ingest): Data<&Arc<Ingest>>,
) -> Response {
    let arrived = Instant::now();
    let answer = answer(ingest, &zone, &dataset, request, body).await;
    let (outcome, response) = respond(&zone, answer);
    ingest
        .metrics
        .answered(outcome, arrived.elapsed().as_secs_f64());
    response
}

async fn answer(
    ingest: &Ingest,
    zone: &str,
    dataset: &str,
    request: &Request,
    body: Body,
) -> Answer {
    let Some(dataset) = Dataset::parse(dataset) else {
        return Answer::NotFound("unknown dataset: http_requests and firewall_events are taken");
    };
    if !rainlogs_schemas::subjects::is_valid_token(zone) {
        return Answer::NotFound("unknown zone");
    }
    let secret = request
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    let Some(tenant) = ingest.endpoints.authorize(zone, dataset.as_str(), secret) else {
        return Answer::Unauthorized;
    };
    let Ok(_permit) = ingest.pushes.try_acquire() else {
        return Answer::Busy;
    };
    let target = PushTarget {
        bus: &ingest.bus,
        tenant: &tenant,
        zone,
        dataset,
        actor: crate::NAME,
    };
    let chunks = body.into_bytes_stream();
    match store_push(&target, chunks, ingest.max_push_bytes, ingest.body_timeout).await {
        Ok(Stored {
            held: Held::DestinationCheck,
            ..
        }) => Answer::Check,
        Ok(Stored {
            held: Held::Records(records),
            bytes,
            new_parts,
            ..
        }) => {
            ingest
                .metrics
                .stored(zone, dataset.as_str(), records, bytes);
            Answer::Stored {
                records,
                bytes,
                new_parts,
            }
        }
        Err(PushError::Refused(refusal)) => Answer::Refused(refusal),
        Err(PushError::Corrupt(reason)) => Answer::Corrupt(reason),
        Err(PushError::Stalled(timeout)) => Answer::Stalled(timeout),
        Err(PushError::Unavailable(reason)) => Answer::Unavailable(reason),
    }
}

fn respond(zone: &str, answer: Answer) -> (&'static str, Response) {
    let text = |status: StatusCode, message: String| {
        Response::builder()
            .status(status)
            .content_type("text/plain; charset=utf-8")
            .body(message)
    };
    match answer {
        Answer::Stored {
            records,
            bytes,
            new_parts,
        } => {
            tracing::debug!(zone, records, bytes, new_parts, "push stored");
            let outcome = if new_parts == 0 && records > 0 {
                "duplicate"
            } else {
                "stored"
            };
            (
                outcome,
                text(StatusCode::OK, format!("stored {records} records\n")),
            )
        }
        Answer::Check => ("check", text(StatusCode::OK, "ok\n".into())),
        Answer::Unauthorized => (
            "unauthorized",
            text(
                StatusCode::UNAUTHORIZED,
                "unknown zone or wrong push secret\n".into(),
            ),
        ),
        Answer::NotFound(what) => ("refused", text(StatusCode::NOT_FOUND, format!("{what}\n"))),
        Answer::Refused(refusal) => {
            tracing::warn!(zone, reason = %refusal, "push refused");
            let status = match refusal {
                Refusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                Refusal::NotARecord { .. } | Refusal::RecordTooLarge { .. } => {
                    StatusCode::BAD_REQUEST
                }
            };
            ("refused", text(status, format!("{refusal}\n")))
        }
        Answer::Corrupt(reason) => {
            tracing::warn!(zone, %reason, "push refused");
            (
                "refused",
                text(StatusCode::BAD_REQUEST, format!("{reason}\n")),
            )
        }
        Answer::Stalled(timeout) => (
            "refused",
            text(
                StatusCode::REQUEST_TIMEOUT,
                format!("the body sent nothing for {} s\n", timeout.as_secs_f64()),
            ),
        ),
        Answer::Busy => {
            let mut response = text(
                StatusCode::TOO_MANY_REQUESTS,
                "too many pushes at once; retry later\n".into(),
            );
            response.headers_mut().insert(
                poem::http::header::RETRY_AFTER,
                poem::http::HeaderValue::from_static("30"),
            );
            ("busy", response)
        }
        Answer::Unavailable(reason) => {
            tracing::warn!(zone, %reason, "push not stored; answered 503 so Cloudflare retries");
            let mut response = text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the push could not be stored; retry later\n".into(),
            );
            response.headers_mut().insert(
                poem::http::header::RETRY_AFTER,
                poem::http::HeaderValue::from_static("10"),
            );
            ("unavailable", response)
        }
    }
}
