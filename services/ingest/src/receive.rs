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

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flate2::write::MultiGzDecoder;
use futures::StreamExt as _;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Body, Request, Response, handler};
use rainlogs_bus::Bus;
use rainlogs_schemas::events::{BatchCollected, PushReceived};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::endpoints::PushEndpoints;
use crate::metrics::IngestMetrics;
use crate::parts::{Cutter, Held, Part, Refusal};
use rainlogs_cloudflare::LogpushDataset as Dataset;

/// NDJSON per part: with its envelope it stays under NATS's default 1 MiB message limit.
pub const PART_BYTES: usize = 900 * 1024;

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
    let Some(tenant) = ingest.endpoints.authorize(zone, secret) else {
        return Answer::Unauthorized;
    };
    let Ok(_permit) = ingest.pushes.try_acquire() else {
        return Answer::Busy;
    };
    let mut store = PartStore {
        bus: &ingest.bus,
        tenant: &tenant,
        zone,
        dataset,
        new_parts: 0,
    };
    match take_body(ingest, &mut store, body).await {
        Ok(answer) | Err(answer) => answer,
    }
}

/// Reads, decompresses, cuts and stores the body; the error is the answer that ends it early.
async fn take_body(
    ingest: &Ingest,
    store: &mut PartStore<'_>,
    body: Body,
) -> Result<Answer, Answer> {
    let mut cutter = Cutter::new(store.dataset, PART_BYTES, ingest.max_push_bytes);
    let mut decoder = Decoder::Undecided(Vec::new());
    let mut chunks = body.into_bytes_stream();
    loop {
        let chunk = match tokio::time::timeout(ingest.body_timeout, chunks.next()).await {
            Err(_) => return Err(Answer::Stalled(ingest.body_timeout)),
            Ok(None) => break,
            Ok(Some(chunk)) => {
                chunk.map_err(|e| Answer::Corrupt(format!("the body could not be read: {e}")))?
            }
        };
        let plain = decoder.feed(&chunk).map_err(Answer::Corrupt)?;
        store.cut(&mut cutter, &plain).await?;
    }
    let plain = decoder.finish().map_err(Answer::Corrupt)?;
    store.cut(&mut cutter, &plain).await?;
    let total = cutter.total();
    let (last, held) = cutter.finish().map_err(Answer::Refused)?;
    if let Some(last) = last {
        store.part(last).await?;
    }
    Ok(match held {
        Held::DestinationCheck => Answer::Check,
        Held::Records(records) => {
            ingest
                .metrics
                .stored(store.zone, store.dataset.as_str(), records, total);
            Answer::Stored {
                records,
                bytes: total,
                new_parts: store.new_parts,
            }
        }
    })
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

/// Gzip or not is known from the first two bytes.
enum Decoder {
    Undecided(Vec<u8>),
    Plain,
    Gzip(Box<MultiGzDecoder<Vec<u8>>>),
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl Decoder {
    /// The decompressed bytes `chunk` yields.
    fn feed(&mut self, chunk: &[u8]) -> Result<Vec<u8>, String> {
        if let Self::Undecided(start) = self {
            start.extend_from_slice(chunk);
            if start.len() < GZIP_MAGIC.len() {
                return Ok(Vec::new());
            }
            let start = std::mem::take(start);
            *self = if start.starts_with(&GZIP_MAGIC) {
                Self::Gzip(Box::new(MultiGzDecoder::new(Vec::new())))
            } else {
                Self::Plain
            };
            return self.feed(&start);
        }
        match self {
            Self::Undecided(_) => Ok(Vec::new()),
            Self::Plain => Ok(chunk.to_vec()),
            Self::Gzip(decoder) => {
                decoder.write_all(chunk).map_err(corrupt)?;
                Ok(std::mem::take(decoder.get_mut()))
            }
        }
    }

    /// What is left once the body ended; a gzip stream that stops early is refused.
    fn finish(self) -> Result<Vec<u8>, String> {
        match self {
            Self::Undecided(start) => Ok(start),
            Self::Plain => Ok(Vec::new()),
            Self::Gzip(decoder) => decoder.finish().map_err(corrupt),
        }
    }
}

fn corrupt(e: std::io::Error) -> String {
    format!("the gzip body is corrupt or cut short: {e}")
}

/// Stores the parts of one push.
struct PartStore<'a> {
    bus: &'a Bus,
    tenant: &'a str,
    zone: &'a str,
    dataset: Dataset,
    /// Parts the server did not already have.
    new_parts: usize,
}

impl PartStore<'_> {
    /// Cuts `plain` and stores the parts it fills.
    async fn cut(&mut self, cutter: &mut Cutter, plain: &[u8]) -> Result<(), Answer> {
        let mut full = Vec::new();
        cutter.push(plain, &mut full).map_err(Answer::Refused)?;
        for part in full {
            self.part(part).await?;
        }
        Ok(())
    }

    async fn part(&mut self, part: Part) -> Result<(), Answer> {
        let content_sha256: [u8; 32] = Sha256::digest(&part.content).into();
        let mut envelope = Envelope::new(
            self.tenant,
            Some(self.zone.to_owned()),
            Actor::service(crate::NAME),
            Event::PushReceived(PushReceived {
                dataset: self.dataset.as_str().to_owned(),
                records: part.records,
                content_sha256: content_sha256.to_vec(),
                content_lz4: BatchCollected::compress(&part.content),
            }),
        );
        envelope.id = part_id(self.zone, self.dataset.as_str(), &content_sha256);
        let published = self
            .bus
            .publish(&subjects::push(self.zone), &envelope)
            .await
            .map_err(|e| Answer::Unavailable(e.to_string()))?;
        if !published.duplicate {
            self.new_parts += 1;
        }
        Ok(())
    }
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

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    fn decode(body: &[u8], chunk: usize) -> Result<Vec<u8>, String> {
        let mut decoder = Decoder::Undecided(Vec::new());
        let mut out = Vec::new();
        for piece in body.chunks(chunk) {
            out.extend(decoder.feed(piece)?);
        }
        out.extend(decoder.finish()?);
        Ok(out)
    }

    #[test]
    fn gzip_concatenated_members_and_plain_bodies_decode_in_any_chunking() {
        let text = b"{\"a\":1}\n{\"a\":2}\n".repeat(50);
        let mut two = gzip(&text[..300]);
        two.extend(gzip(&text[300..]));
        for chunk in [1, 2, 3, 100, 10_000] {
            assert_eq!(decode(&gzip(&text), chunk).expect("gzip"), text);
            assert_eq!(decode(&two, chunk).expect("two members"), text);
            assert_eq!(decode(&text, chunk).expect("plain"), text);
        }
    }

    #[test]
    fn a_gzip_body_cut_short_or_corrupt_is_refused() {
        let body = gzip(&b"{\"a\":1}\n".repeat(100));
        let cut = decode(&body[..body.len() - 10], 64).expect_err("cut short");
        assert!(cut.contains("gzip"), "{cut}");
        let mut bad = body.clone();
        bad[12] ^= 0xff;
        bad[20] ^= 0xff;
        assert!(decode(&bad, 64).is_err());
    }

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
