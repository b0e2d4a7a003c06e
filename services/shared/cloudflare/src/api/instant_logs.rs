//! Instant Logs: create a job (new path, then the legacy one) and read its WebSocket session.
//!
//! Best effort by design (server-side sampling, one session per zone, 60 min cap, 5 min idle kill): the session
//! reports how it ended so the caller can record an explicit gap.

use crate::client::{RequestSpec, TokenClient};
use crate::error::CfError;
use crate::ndjson::LineSplitter;
use crate::route::Endpoint;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Body of `POST /zones/{zone}/logpush/edge/jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstantLogsJobRequest {
    /// Comma-separated field names.
    pub fields: String,
    /// 1 in N sampling (1 = everything). Not a fraction, unlike Logpull's `sample`.
    pub sample: u32,
    /// A JSON document as a string (`{"where":{...}}`), or empty for no filter.
    pub filter: String,
    pub kind: String,
}

impl InstantLogsJobRequest {
    pub fn all_records(fields: &crate::api::logpull::FieldList) -> Self {
        Self {
            fields: fields.to_query_value(),
            sample: 1,
            filter: String::new(),
            kind: "instant-logs".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InstantLogsJob {
    /// `wss://logs.cloudflare.com/instant-logs/ws/sessions/<id>`; the simulator answers with `ws://`.
    pub destination_conf: String,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub fields: Option<String>,
    #[serde(default)]
    pub sample: Option<u32>,
    #[serde(default)]
    pub filter: Option<String>,
}

impl InstantLogsJob {
    /// The docs call it `id`, the SDK `session_id`; both equal the last path segment of `destination_conf`.
    pub fn session(&self) -> Option<&str> {
        self.session_id
            .as_deref()
            .or(self.id.as_deref())
            .or_else(|| {
                self.destination_conf
                    .rsplit('/')
                    .next()
                    .filter(|s| !s.is_empty())
            })
    }
}

/// One Instant Logs record: the raw line and its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstantLogsRecord {
    pub line: Bytes,
    /// `sampleInterval` from the record (each record stands for this many requests); 1 when absent.
    pub sample_interval: u64,
}

/// How a session ended, for the gap record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClosed {
    pub code: Option<u16>,
    pub reason: String,
}

#[derive(Deserialize)]
struct SampleIntervalOnly {
    #[serde(rename = "sampleInterval", default)]
    sample_interval: Option<u64>,
}

/// `sampleInterval` of one record line (1 when absent); `None` when the line is not a JSON
/// object.
fn parse_sample_interval(line: &[u8]) -> Option<u64> {
    serde_json::from_slice::<SampleIntervalOnly>(line)
        .ok()
        .map(|parsed| parsed.sample_interval.unwrap_or(1))
}

/// How many requests one stored Instant Logs record stands for, read from its line as
/// [`parse_frame`] reads it (1 when absent or unreadable).
pub fn sample_interval_of(line: &[u8]) -> u64 {
    parse_sample_interval(line).unwrap_or(1)
}

/// Splits one frame into records (frames carry one or many newline-joined records).
pub fn parse_frame(
    payload: Bytes,
    max_line_bytes: usize,
) -> Result<Vec<InstantLogsRecord>, CfError> {
    let mut splitter = LineSplitter::new(max_line_bytes);
    let mut lines = Vec::new();
    splitter.push(payload, &mut lines)?;
    lines.extend(splitter.finish());
    lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let sample_interval =
                parse_sample_interval(&line).ok_or_else(|| CfError::MalformedLine {
                    line_number: i as u64 + 1,
                    excerpt: String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned(),
                })?;
            Ok(InstantLogsRecord {
                line,
                sample_interval,
            })
        })
        .collect()
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A connected Instant Logs stream.
pub struct InstantLogsSession {
    socket: Socket,
    ping_after: Duration,
    pong_timeout: Duration,
    max_line_bytes: usize,
    closed: Option<SessionClosed>,
}

impl std::fmt::Debug for InstantLogsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstantLogsSession")
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl InstantLogsSession {
    /// The next batch of records (one frame's worth). `Ok(None)` after the server closed the session cleanly
    /// (see `closed()`); `Err` for a dropped or half-open socket.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<InstantLogsRecord>>, CfError> {
        if self.closed.is_some() {
            return Ok(None);
        }
        let mut pinged = false;
        loop {
            let wait = if pinged {
                self.pong_timeout
            } else {
                self.ping_after
            };
            let message = match tokio::time::timeout(wait, self.socket.next()).await {
                Err(_) if pinged => {
                    return Err(CfError::WebSocketStalled(
                        self.ping_after + self.pong_timeout,
                    ));
                }
                Err(_) => {
                    // Silence may be an idle zone or a dead peer; only a ping can tell them apart.
                    // A dead peer can also leave the send stuck behind a full buffer.
                    let ping = self
                        .socket
                        .send(Message::Ping(Bytes::from_static(b"rainlogs")));
                    tokio::time::timeout(self.pong_timeout, ping)
                        .await
                        .map_err(|_| {
                            CfError::WebSocketStalled(self.ping_after + self.pong_timeout)
                        })?
                        .map_err(ws_error)?;
                    pinged = true;
                    continue;
                }
                Ok(None) => return Err(CfError::WebSocketDropped),
                Ok(Some(Err(error))) => return Err(ws_error(error)),
                Ok(Some(Ok(message))) => message,
            };
            pinged = false;
            let payload = match message {
                Message::Text(text) => Bytes::from(text),
                Message::Binary(bytes) => bytes,
                Message::Close(frame) => {
                    self.closed = Some(close_info(frame));
                    return Ok(None);
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            let records = parse_frame(payload, self.max_line_bytes)?;
            if !records.is_empty() {
                return Ok(Some(records));
            }
        }
    }

    /// Set once the server closed the session with a close frame.
    pub fn closed(&self) -> Option<&SessionClosed> {
        self.closed.as_ref()
    }

    /// Closes the session politely so the zone's single session slot is freed.
    pub async fn close(mut self) -> Result<(), CfError> {
        self.socket.close(None).await.map_err(ws_error)
    }
}

fn close_info(frame: Option<CloseFrame>) -> SessionClosed {
    match frame {
        Some(frame) => SessionClosed {
            code: Some(u16::from(frame.code)),
            reason: frame.reason.to_string(),
        },
        None => SessionClosed {
            code: None,
            reason: String::new(),
        },
    }
}

fn ws_error(error: tokio_tungstenite::tungstenite::Error) -> CfError {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match error {
        WsError::ConnectionClosed | WsError::AlreadyClosed => CfError::WebSocketDropped,
        WsError::Protocol(
            tokio_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ) => CfError::WebSocketDropped,
        WsError::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::BrokenPipe
            ) =>
        {
            CfError::WebSocketDropped
        }
        other => CfError::WebSocket(Box::new(other)),
    }
}

/// A refused handshake (e.g. 429 "wait a few minutes", 301 for plain `ws`) becomes the matching HTTP error.
fn handshake_error(error: tokio_tungstenite::tungstenite::Error) -> CfError {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match error {
        WsError::Http(response) => {
            let status = response.status().as_u16();
            let body = response.body().clone().unwrap_or_default();
            crate::classify::error_from_response(
                Endpoint::InstantLogsSocket,
                status,
                &reqwest_headers(response.headers()),
                &body,
            )
        }
        other => ws_error(other),
    }
}

/// tungstenite and reqwest use the same `http` crate version for headers, but convert field by field to stay
/// independent of that.
fn reqwest_headers(
    headers: &tokio_tungstenite::tungstenite::http::HeaderMap,
) -> reqwest::header::HeaderMap {
    let mut out = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            out.append(name, value);
        }
    }
    out
}

impl TokenClient {
    /// Creates an Instant Logs job on `/logpush/edge/jobs`, falling back to the legacy `/logpush/edge` when the new
    /// path does not exist (404/405 or code 7000 "No route for that URI").
    pub async fn create_instant_logs_job(
        &self,
        zone_id: &str,
        request: &InstantLogsJobRequest,
    ) -> Result<InstantLogsJob, CfError> {
        let spec = self.spec(Endpoint::InstantLogsJob, Some(zone_id));
        let body =
            serde_json::to_value(request).map_err(|e| CfError::InvalidRequest(e.to_string()))?;
        let post = |segments: &[&str]| RequestSpec {
            method: Method::POST,
            json: Some(body.clone()),
            ..RequestSpec::get(self.url(segments))
        };
        match self
            .envelope_result(&spec, &post(&["zones", zone_id, "logpush", "edge", "jobs"]))
            .await
        {
            Err(error) if is_missing_route(&error) => {
                tracing::debug!(
                    zone_id,
                    "Instant Logs /logpush/edge/jobs missing; using legacy /logpush/edge"
                );
                self.envelope_result(&spec, &post(&["zones", zone_id, "logpush", "edge"]))
                    .await
            }
            other => other,
        }
    }

    /// Connects to a job's session socket (retried like any call; the URL itself is the credential).
    pub async fn connect_instant_logs(
        &self,
        job: &InstantLogsJob,
    ) -> Result<InstantLogsSession, CfError> {
        let spec = self.spec(Endpoint::InstantLogsSocket, None);
        let config = self.config();
        let socket = self
            .policies()
            .run(&spec, || async {
                let connect = tokio_tungstenite::connect_async(job.destination_conf.as_str());
                match tokio::time::timeout(config.connect_timeout, connect).await {
                    Err(_) => Err(CfError::WebSocketStalled(config.connect_timeout)),
                    Ok(result) => result.map(|(socket, _)| socket).map_err(handshake_error),
                }
            })
            .await?;
        Ok(InstantLogsSession {
            socket,
            ping_after: config.websocket_ping_after,
            pong_timeout: config.websocket_pong_timeout,
            max_line_bytes: config.max_line_bytes,
            closed: None,
        })
    }
}

fn is_missing_route(error: &CfError) -> bool {
    match error {
        CfError::Api { status, errors } => {
            *status == 404 || *status == 405 || errors.has_code(7000)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ApiMessage, ApiMessages};

    #[test]
    fn frames_split_into_records_with_sample_interval() {
        let frame = Bytes::from_static(b"{\"RayID\":\"a\",\"sampleInterval\":10}\n{\"RayID\":\"b\"}\r\n\n{\"RayID\":\"c\",\"sampleInterval\":1}");
        let records = parse_frame(frame, 1 << 20).unwrap();
        assert_eq!(
            records
                .iter()
                .map(|r| r.sample_interval)
                .collect::<Vec<_>>(),
            vec![10, 1, 1]
        );
        assert_eq!(records[1].line, Bytes::from_static(b"{\"RayID\":\"b\"}"));
    }

    #[test]
    fn a_non_json_frame_line_is_an_error() {
        assert!(matches!(
            parse_frame(Bytes::from_static(b"{\"a\":1}\nnope"), 1 << 20),
            Err(CfError::MalformedLine { line_number: 2, .. })
        ));
    }

    #[test]
    fn session_id_from_any_field() {
        let job: InstantLogsJob = serde_json::from_str(
            r#"{"destination_conf":"wss://logs.cloudflare.com/instant-logs/ws/sessions/99d471b1ca3c23cc8e30b6acec5db987","id":null,"fields":"ClientIP","sample":1,"filter":"","kind":"instant-logs"}"#,
        )
        .unwrap();
        assert_eq!(job.session(), Some("99d471b1ca3c23cc8e30b6acec5db987"));
    }

    #[test]
    fn only_missing_routes_trigger_the_legacy_fallback() {
        let route = CfError::Api {
            status: 400,
            errors: ApiMessages(vec![ApiMessage {
                code: Some(7000),
                message: "No route for that URI".into(),
                error_chain: vec![],
            }]),
        };
        assert!(is_missing_route(&route));
        assert!(is_missing_route(&CfError::Api {
            status: 404,
            errors: ApiMessages::default()
        }));
        assert!(!is_missing_route(&CfError::Auth {
            status: 403,
            errors: ApiMessages::default()
        }));
    }
}
