//! Instant Logs: job creation/listing (`/zones/{id}/logpush/edge[/jobs]`) and the WebSocket live stream.
//!
//! One session per zone; a session ends when its socket closes, after `max_session_secs` of simulated time, or
//! when the client stops answering pings for `idle_timeout_secs` (real time). Frames carry 1..n newline-joined
//! records of the requested fields, plus `sampleInterval` when the job samples.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use poem::http::StatusCode;
use poem::{Request, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::fault::{EndpointKind, FaultKind};
use crate::http::{Ctx, respond};
use crate::lock;
use crate::rng::{hash_words, mix64};
use crate::scenario::{Permission, Plan};
use crate::state::Shared;
use crate::traffic::fields::Field;
use crate::traffic::http::{HttpRecord, HttpRenderer};
use crate::traffic::render::TimestampFormat;

/// A live tail never replays more than this many seconds after a clock jump.
const MAX_BACKLOG_SECS: i64 = 60;
const TICK: Duration = Duration::from_millis(50);
/// How long a closing session waits for the client's close reply.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub(crate) struct Session {
    id: String,
    zone: String,
    fields: Vec<Field>,
    fields_raw: String,
    sample: u64,
    filter_raw: String,
    filter: Option<Value>,
    created: OffsetDateTime,
    connected: bool,
    ended: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_id: HashMap<String, Session>,
}

impl Sessions {
    fn active_for_zone(&self, zone: &str, now: OffsetDateTime, max_secs: u64) -> Vec<&Session> {
        self.by_id
            .values()
            .filter(|s| {
                s.zone == zone && !s.ended && now < s.created + Duration::from_secs(max_secs)
            })
            .collect()
    }
}

fn job_json(shared: &Shared, s: &Session) -> Value {
    let base = shared.ws_base.get().cloned().unwrap_or_default();
    json!({
        "id": s.id,
        "session_id": s.id,
        "fields": s.fields_raw,
        "sample": s.sample,
        "filter": s.filter_raw,
        "destination_conf": format!("{base}/instant-logs/ws/sessions/{}", s.id),
        "kind": "instant-logs",
    })
}

#[derive(Deserialize)]
struct CreateJob {
    #[serde(default)]
    fields: Option<String>,
    #[serde(default)]
    sample: Option<u64>,
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    kind: Option<String>,
}

fn bad_job(message: &str) -> Response {
    respond::error(StatusCode::BAD_REQUEST, 1002, message)
}

/// `POST|GET /zones/{id}/logpush/edge` and `/zones/{id}/logpush/edge/jobs`.
pub(crate) fn jobs(ctx: &mut Ctx, req: &Request, zone_id: &str) -> Result<Response, Response> {
    let caller = ctx.caller(req)?;
    let zone = ctx.zone_for(&caller, zone_id, &[Permission::LogsRead])?;
    if !matches!(zone.plan, Plan::Business | Plan::Enterprise) {
        return Err(respond::error(
            StatusCode::FORBIDDEN,
            1004,
            "Instant Logs is only available on the Business and Enterprise plans",
        ));
    }
    ctx.apply_fault(EndpointKind::InstantLogsJobs)?;
    let shared = ctx.shared.clone();
    let now = shared.now();
    let max = shared.instant_logs.max_session_secs;
    if ctx.method == poem::http::Method::GET {
        let sessions = lock(&shared.sessions);
        let jobs = sessions
            .active_for_zone(&zone.id, now, max)
            .into_iter()
            .map(|s| job_json(&shared, s))
            .collect();
        return Ok(respond::ok_list(jobs));
    }
    let body: CreateJob = serde_json::from_slice(&ctx.body).map_err(|_| {
        respond::error(
            StatusCode::BAD_REQUEST,
            6007,
            "Malformed JSON in request body",
        )
    })?;
    let fields_raw = body.fields.unwrap_or_default();
    let mut fields = Vec::new();
    for name in fields_raw.split(',').filter(|n| !n.is_empty()) {
        fields.push(
            Field::from_name(name.trim())
                .ok_or_else(|| bad_job(&format!("invalid field: {name}")))?,
        );
    }
    if fields.is_empty() {
        return Err(bad_job("fields must list at least one field"));
    }
    let sample = body.sample.unwrap_or(1);
    if sample == 0 {
        return Err(bad_job("sample must be a positive integer (1 in N)"));
    }
    let filter_raw = body.filter.unwrap_or_default();
    let filter = if filter_raw.trim().is_empty() {
        None
    } else {
        let parsed: Value = serde_json::from_str(&filter_raw)
            .map_err(|_| bad_job("filter must be a JSON string"))?;
        Some(
            parsed
                .get("where")
                .cloned()
                .ok_or_else(|| bad_job("filter must have a \"where\" clause"))?,
        )
    };
    let mut sessions = lock(&shared.sessions);
    if !sessions.active_for_zone(&zone.id, now, max).is_empty() {
        return Err(respond::error(
            StatusCode::BAD_REQUEST,
            1303,
            "an Instant Logs session is already active for this zone",
        ));
    }
    let id = format!(
        "{:016x}{:016x}",
        shared.request_seed(),
        shared.request_seed()
    );
    let session = Session {
        id: id.clone(),
        zone: zone.id.clone(),
        fields,
        fields_raw,
        sample,
        filter_raw,
        filter,
        created: now,
        connected: false,
        ended: false,
    };
    let job = job_json(&shared, &session);
    sessions.by_id.insert(id, session);
    Ok(respond::ok(job))
}

/// `GET /instant-logs/ws/sessions/{id}`: the WebSocket upgrade.
pub(crate) fn websocket(ctx: &mut Ctx, req: &Request, session_id: &str) -> Response {
    let shared = ctx.shared.clone();
    let is_upgrade = req.headers().contains_key("sec-websocket-key");
    if shared.wss.get().is_some()
        && (*req.scheme() != poem::http::uri::Scheme::HTTPS || !is_upgrade)
    {
        // Cloudflare answers plain ws:// and https:// with 301 towards wss://; the session is not used up.
        let base = shared.ws_base.get().cloned().unwrap_or_default();
        let mut resp = respond::text(StatusCode::MOVED_PERMANENTLY, "use wss://");
        respond::set_header(
            &mut resp,
            "location",
            &format!("{base}/instant-logs/ws/sessions/{session_id}"),
        );
        return resp;
    }
    let zone = match lock(&shared.sessions).by_id.get(session_id) {
        Some(s) if s.connected && !s.ended => {
            return respond::text(StatusCode::CONFLICT, "session already connected");
        }
        Some(s) if !s.ended => s.zone.clone(),
        _ => return respond::text(StatusCode::NOT_FOUND, "session not found"),
    };
    ctx.zone = Some(zone);
    let fault = ctx.take_fault(EndpointKind::InstantLogsStream);
    if let Some(FaultKind::RateLimit { retry_after_secs }) = fault {
        // "Connection requests are rate limited": the session stays usable for a later attempt.
        return respond::rate_limited(retry_after_secs as i64);
    }
    let session = {
        let mut sessions = lock(&shared.sessions);
        match sessions.by_id.get_mut(session_id) {
            Some(s) if !s.ended && !s.connected => {
                s.connected = true;
                s.clone()
            }
            _ => return respond::text(StatusCode::CONFLICT, "session already connected"),
        }
    };
    let key = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()));
    let upgrade = req.take_upgrade();
    let (Some(accept), Ok(upgrade)) = (key, upgrade) else {
        end_session(&shared, &session.id);
        return respond::text(StatusCode::BAD_REQUEST, "expected a WebSocket upgrade");
    };
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let ws = WebSocketStream::from_raw_socket(upgraded, Role::Server, None).await;
            stream_session(shared.clone(), session.clone(), ws, fault).await;
        }
        end_session(&shared, &session.id);
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", accept)
        .finish()
}

fn end_session(shared: &Shared, id: &str) {
    if let Some(s) = lock(&shared.sessions).by_id.get_mut(id) {
        s.ended = true;
    }
}

/// Instant Logs filter: `{"and"|"or": [{"key", "operator", "value"}, ...]}` over the record's fields.
fn filter_matches(filter: &Value, record: &Map<String, Value>) -> bool {
    if let Some(all) = filter.get("and").and_then(Value::as_array) {
        return all.iter().all(|c| filter_matches(c, record));
    }
    if let Some(any) = filter.get("or").and_then(Value::as_array) {
        return any.iter().any(|c| filter_matches(c, record));
    }
    let key = filter
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let operator = filter
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or("eq");
    let want = match filter.get("value") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let have = match record.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => return false,
    };
    let numeric = have.parse::<f64>().ok().zip(want.parse::<f64>().ok());
    match operator {
        "eq" => have == want,
        "neq" => have != want,
        "gt" => numeric.is_some_and(|(h, w)| h > w),
        "geq" => numeric.is_some_and(|(h, w)| h >= w),
        "lt" => numeric.is_some_and(|(h, w)| h < w),
        "leq" => numeric.is_some_and(|(h, w)| h <= w),
        "startsWith" => have.starts_with(&want),
        "endsWith" => have.ends_with(&want),
        "contains" => have.contains(&want),
        "in" => want.split(',').any(|w| w.trim() == have),
        _ => false,
    }
}

/// Frames (newline-joined records, no trailing newline) for one received second.
fn frames_for_second(
    shared: &Shared,
    session: &Session,
    renderers: &Renderers,
    second: i64,
) -> Vec<String> {
    let Some(traffic) = shared.zone_traffic(&session.zone) else {
        return Vec::new();
    };
    let per_frame = shared.instant_logs.max_records_per_frame;
    let interval = (session.sample > 1).then_some(session.sample);
    let mut frames = Vec::new();
    let mut frame = Vec::new();
    let mut in_frame = 0;
    let mut scratch = Vec::new();
    for index in 0..traffic.http_count(second) {
        if session.sample > 1
            && !mix64(hash_words(&[
                traffic.key(),
                second as u64,
                u64::from(index),
                0x5a,
            ]))
            .is_multiple_of(session.sample)
        {
            continue;
        }
        let record = HttpRecord::generate(&traffic, second, index);
        if let Some(filter) = &session.filter {
            scratch.clear();
            renderers.all.render(&traffic, &record, None, &mut scratch);
            let parsed: Map<String, Value> = serde_json::from_slice(&scratch).unwrap_or_default();
            if !filter_matches(filter, &parsed) {
                continue;
            }
        }
        renderers
            .requested
            .render(&traffic, &record, interval, &mut frame);
        in_frame += 1;
        if in_frame == per_frame {
            frame.pop();
            frames.push(String::from_utf8_lossy(&frame).into_owned());
            frame.clear();
            in_frame = 0;
        }
    }
    if in_frame > 0 {
        frame.pop();
        frames.push(String::from_utf8_lossy(&frame).into_owned());
    }
    frames
}

struct Renderers {
    requested: HttpRenderer,
    all: HttpRenderer,
}

type Socket = WebSocketStream<poem::Upgraded>;

async fn stream_session(
    shared: Arc<Shared>,
    session: Session,
    ws: Socket,
    fault: Option<FaultKind>,
) {
    let (mut sink, mut incoming) = ws.split();
    let renderers = Renderers {
        requested: HttpRenderer::new(session.fields.clone(), TimestampFormat::Unixnano, false),
        all: HttpRenderer::new(Field::all(), TimestampFormat::Unixnano, false),
    };
    let idle = Duration::from_secs(shared.instant_logs.idle_timeout_secs);
    let cap = session.created + Duration::from_secs(shared.instant_logs.max_session_secs);
    let mut next_second = shared.now().unix_timestamp();
    let mut last_heard = Instant::now();
    let mut last_ping = Instant::now();
    let mut frames_sent: u64 = 0;
    let mut shutdown = shared.shutdown.clone();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            msg = incoming.next() => match msg {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => last_heard = Instant::now(),
            },
            _ = shutdown.changed() => {
                let _ = sink.send(close_frame("simulator shutting down")).await;
                return;
            }
            _ = tick.tick() => {
                let now = shared.now();
                let upto = now.unix_timestamp().min(cap.unix_timestamp());
                next_second = next_second.max(upto - MAX_BACKLOG_SECS);
                while next_second < upto {
                    for frame in frames_for_second(&shared, &session, &renderers, next_second) {
                        match fault {
                            Some(FaultKind::WsDrop { after_frames }) if frames_sent >= after_frames => return,
                            Some(FaultKind::WsHalfOpen { after_frames }) if frames_sent >= after_frames => {
                                hold_silently(&shared, cap).await;
                                return;
                            }
                            _ => {}
                        }
                        // A client that does not read eventually blocks the send: that is idleness too.
                        match tokio::time::timeout(idle, sink.send(Message::text(frame))).await {
                            Ok(Ok(())) => frames_sent += 1,
                            _ => return,
                        }
                    }
                    next_second += 1;
                }
                if now >= cap {
                    close_gracefully(&mut sink, &mut incoming, "session reached the 60 minute limit").await;
                    return;
                }
                if last_heard.elapsed() > idle {
                    close_gracefully(&mut sink, &mut incoming, "idle timeout: socket not read").await;
                    return;
                }
                if last_ping.elapsed() >= idle / 4 {
                    last_ping = Instant::now();
                    if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

fn close_frame(reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: reason.to_owned().into(),
    }))
}

/// Send a close frame and wait (bounded) for the client's reply: dropping the socket straight away would make the
/// client's pending pong answer hit a closed port and lose the close frame to a reset.
async fn close_gracefully(
    sink: &mut futures::stream::SplitSink<Socket, Message>,
    incoming: &mut futures::stream::SplitStream<Socket>,
    reason: &str,
) {
    if sink.send(close_frame(reason)).await.is_err() {
        return;
    }
    let drain = async {
        while let Some(Ok(msg)) = incoming.next().await {
            if msg.is_close() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, drain).await;
}

/// A half-open socket: nothing is sent or read until the session cap passes or the simulator stops.
async fn hold_silently(shared: &Shared, cap: OffsetDateTime) {
    let mut shutdown = shared.shutdown.clone();
    while !*shutdown.borrow() && shared.now() < cap {
        tokio::select! {
            // An error means the simulator handle is gone: stop as on shutdown.
            changed = shutdown.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_operators() {
        let record: Map<String, Value> =
            serde_json::from_str(r#"{"ClientCountry":"ca","EdgeResponseStatus":404,"ClientRequestPath":"/wp-login.php"}"#)
                .expect("json");
        let f = |s: &str| serde_json::from_str::<Value>(s).expect("json");
        assert!(!filter_matches(
            &f(r#"{"and":[{"key":"ClientCountry","operator":"neq","value":"ca"}]}"#),
            &record
        ));
        assert!(filter_matches(
            &f(r#"{"and":[{"key":"EdgeResponseStatus","operator":"in","value":"403,404"}]}"#),
            &record
        ));
        assert!(filter_matches(
            &f(
                r#"{"or":[{"key":"EdgeResponseStatus","operator":"geq","value":500},{"key":"ClientRequestPath","operator":"contains","value":"login"}]}"#
            ),
            &record
        ));
    }
}
