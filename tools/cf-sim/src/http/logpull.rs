//! Logpull: `/logs/received`, `/logs/received/fields` and `/logs/rayids/{ray}`.

use poem::http::StatusCode;
use poem::{Body, Request, Response};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::body::{BufferSource, ErrorAfterLines, LineSource, WindowSource, build_body};
use super::{Ctx, respond};
use crate::fault::{EndpointKind, FaultKind};
use crate::lock;
use crate::ratelimit::TIMEOUT_BLOCK_SECS;
use crate::scenario::{Permission, Plan, ZoneSpec};
use crate::traffic::fields::{CATALOGUE, DEFAULT_FIELDS, Field};
use crate::traffic::http::{HttpRecord, HttpRenderer};
use crate::traffic::render::TimestampFormat;
use crate::truth::window_seconds;

type Handled = Result<Response, Response>;

const NANOS: i128 = 1_000_000_000;
const MAX_RANGE_NS: i128 = 3600 * NANOS;
const RETENTION_NS: i128 = 168 * 3600 * NANOS;

pub(crate) const RETENTION_OFF: &str = "Retention is not turned on. Please enable log retention";

fn bad_query(msg: &str) -> Response {
    respond::text(StatusCode::BAD_REQUEST, &format!("bad query: {msg}"))
}

/// Go's `time.Duration` formatting for whole seconds (`1m0s`, `5m0s`, `1h0m0s`).
pub(crate) fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// Unix seconds, Unix nanoseconds or RFC 3339, as Unix nanoseconds.
fn parse_time(s: &str) -> Option<i128> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let v: i128 = s.parse().ok()?;
        return Some(if s.len() <= 11 { v * NANOS } else { v });
    }
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp_nanos)
}

/// Entitlement checks shared by every Logpull route: Enterprise plan, no EU CMB, retention on.
fn logpull_available(ctx: &Ctx, zone: &ZoneSpec) -> Result<(), Response> {
    if zone.plan != Plan::Enterprise {
        return Err(respond::error(
            StatusCode::FORBIDDEN,
            1004,
            "Logpull is only available on the Enterprise plan",
        ));
    }
    if zone
        .cmb_region
        .as_deref()
        .is_some_and(|r| r.eq_ignore_ascii_case("eu"))
    {
        return Err(respond::text(
            StatusCode::BAD_REQUEST,
            "Logpull is not available for accounts with an EU Customer Metadata Boundary",
        ));
    }
    // Read the live flag: it may have been switched off since the zone was looked up.
    if !ctx.shared.zone(&zone.id).is_some_and(|z| z.retention) {
        return Err(respond::text(StatusCode::BAD_REQUEST, RETENTION_OFF));
    }
    Ok(())
}

/// Logpull's own limits: a zone blocked for timeout abuse, then N requests per zone per minute.
fn admit_logpull(ctx: &Ctx, zone: &ZoneSpec) -> Result<(), Response> {
    let now = ctx.shared.now().unix_timestamp();
    if let Some(retry) = lock(&ctx.shared.logpull_timeouts).blocked(&zone.id, now) {
        return Err(timeout_block(retry));
    }
    let limit = ctx.shared.limits.logpull_per_zone_per_min;
    lock(&ctx.shared.limiter)
        .admit("logpull", &zone.id, limit, 60, now)
        .map(|_| ())
        .map_err(respond::rate_limited)
}

/// The zone's Logpull block after too many timeouts. Cloudflare documents the 429 but not its body; Logpull
/// answers its other errors in plain text, so this one is plain text too (wording is the simulator's).
fn timeout_block(retry_after_secs: i64) -> Response {
    let mut resp = respond::text(
        StatusCode::TOO_MANY_REQUESTS,
        &format!(
            "too many timeouts: Logpull for this zone is blocked for {}",
            go_duration(TIMEOUT_BLOCK_SECS.unsigned_abs())
        ),
    );
    respond::set_header(
        &mut resp,
        "retry-after",
        &retry_after_secs.max(1).to_string(),
    );
    resp
}

/// Apply the request's fault; a 408 counts towards the zone's timeout allowance.
fn logpull_fault(
    ctx: &mut Ctx,
    zone: &ZoneSpec,
    endpoint: EndpointKind,
) -> Result<Option<FaultKind>, Response> {
    ctx.apply_fault(endpoint).inspect_err(|resp| {
        if resp.status() == StatusCode::REQUEST_TIMEOUT {
            let now = ctx.shared.now().unix_timestamp();
            let max = ctx.shared.limits.logpull_timeouts_per_hour;
            lock(&ctx.shared.logpull_timeouts).record(&zone.id, max, now);
        }
    })
}

fn parse_fields(raw: Option<&str>) -> Result<Vec<Field>, Response> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_FIELDS.to_vec());
    };
    if raw.is_empty() || raw.contains(char::is_whitespace) {
        return Err(bad_query(
            "error parsing fields: fields must be a comma-separated list without whitespace",
        ));
    }
    raw.split(',')
        .map(|name| match Field::from_name(name) {
            Some(f) => Ok(f),
            None if name.is_empty() => Err(bad_query("error parsing fields: empty field name")),
            None => Err(bad_query(&format!(
                "error parsing fields: unknown field \"{name}\""
            ))),
        })
        .collect()
}

fn parse_timestamps(raw: Option<&str>) -> Result<TimestampFormat, Response> {
    raw.map_or(Ok(TimestampFormat::Unixnano), |t| {
        TimestampFormat::parse(t).ok_or_else(|| {
            bad_query("error parsing timestamps: must be one of unixnano, unix or rfc3339")
        })
    })
}

fn parse_log4shell(raw: Option<&str>) -> Result<bool, Response> {
    match raw {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(bad_query(
            "error parsing CVE-2021-44228: must be true or false",
        )),
    }
}

struct ReceivedQuery {
    seconds: std::ops::Range<i64>,
    renderer: HttpRenderer,
    count: Option<u64>,
    sample: Option<f64>,
}

fn parse_received(ctx: &Ctx) -> Result<ReceivedQuery, Response> {
    let start = ctx.param("start").and_then(parse_time).ok_or_else(|| {
        bad_query("error parsing start time: must be unix timestamp or rfc3339 string")
    })?;
    let end = ctx.param("end").and_then(parse_time).ok_or_else(|| {
        bad_query("error parsing end time: must be unix timestamp or rfc3339 string")
    })?;
    let now = ctx.shared.now().unix_timestamp_nanos();
    let min_delay = ctx.shared.logpull.min_delay_secs;
    if start >= end {
        return Err(bad_query(
            "error parsing time: invalid time range: start not before end",
        ));
    }
    if end - start > MAX_RANGE_NS {
        return Err(bad_query(
            "error parsing time: invalid time range: too long: maximum query range (difference between start and end) is 1h0m0s",
        ));
    }
    if start < now - RETENTION_NS {
        return Err(bad_query(
            "error parsing time: invalid time range: too early: logs older than 168h0m0s are not available",
        ));
    }
    if end > now - i128::from(min_delay) * NANOS {
        return Err(bad_query(&format!(
            "error parsing time: invalid time range: too recent: minimum delay in serving logs is {}",
            go_duration(min_delay)
        )));
    }
    let fields = parse_fields(ctx.param("fields"))?;
    let timestamps = parse_timestamps(ctx.param("timestamps"))?;
    let log4shell = parse_log4shell(ctx.param("CVE-2021-44228"))?;
    let count = match ctx.param("count") {
        None => None,
        Some(c) => Some(
            c.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad_query("error parsing count: must be a positive integer"))?,
        ),
    };
    let sample = match ctx.param("sample") {
        None => None,
        Some(s) => Some(
            s.parse::<f64>()
                .ok()
                .filter(|p| *p > 0.0 && *p <= 1.0)
                .ok_or_else(|| {
                    bad_query("error parsing sample: must be greater than 0.0 and at most 1.0")
                })?,
        ),
    };
    Ok(ReceivedQuery {
        seconds: window_seconds(start, end),
        renderer: HttpRenderer::new(fields, timestamps, log4shell),
        count,
        sample: sample.filter(|p| *p < 1.0),
    })
}

fn wants_gzip(req: &Request) -> bool {
    req.headers()
        .get_all("accept-encoding")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            enc.split(';')
                .next()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case("gzip"))
        })
}

fn ndjson_response(body: Body, gzip: bool, fault: Option<&FaultKind>) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .content_type("application/json");
    if gzip {
        builder = builder.header("content-encoding", "gzip");
    }
    if let Some(FaultKind::ResetAfterBytes { after_bytes }) = fault {
        // With chunked framing hyper still ends the message cleanly after a body error, so announce more bytes
        // than will ever come: the server then has to drop the connection mid-body.
        builder = builder.header(
            "content-length",
            after_bytes.saturating_add(1 << 30).to_string(),
        );
    }
    builder.body(body)
}

/// `GET /zones/{id}/logs/received`.
pub(crate) fn received(ctx: &mut Ctx, req: &Request, zone_id: &str) -> Handled {
    let caller = ctx.caller(req)?;
    let zone = ctx.zone_for(&caller, zone_id, &[Permission::LogsRead])?;
    logpull_available(ctx, &zone)?;
    admit_logpull(ctx, &zone)?;
    let query = parse_received(ctx)?;
    let fault = logpull_fault(ctx, &zone, EndpointKind::Logpull)?;
    let traffic = ctx
        .shared
        .zone_traffic(&zone.id)
        .ok_or_else(respond::authentication_error)?;
    let empty = query.seconds.clone().all(|s| traffic.http_count(s) == 0);
    if empty && fault.is_none() {
        // Cloudflare answers an empty window with 200 and an empty body.
        return Ok(ndjson_response(Body::empty(), false, None));
    }
    let window = WindowSource::new(
        traffic,
        query.renderer,
        query.seconds,
        ctx.shared.request_seed(),
        query.sample,
        query.count,
    );
    let source: Box<dyn LineSource> = match &fault {
        Some(FaultKind::StreamError { after_lines }) => {
            Box::new(ErrorAfterLines::new(window, *after_lines))
        }
        _ => Box::new(window),
    };
    let (body, gzip) = build_body(source, wants_gzip(req), fault.as_ref());
    Ok(ndjson_response(body, gzip, fault.as_ref()))
}

/// `GET /zones/{id}/logs/received/fields`: a bare JSON object, no envelope.
pub(crate) fn fields(ctx: &mut Ctx, req: &Request, zone_id: &str) -> Handled {
    let caller = ctx.caller(req)?;
    let zone = ctx.zone_for(&caller, zone_id, &[Permission::LogsRead])?;
    logpull_available(ctx, &zone)?;
    ctx.apply_fault(EndpointKind::LogpullFields)?;
    let map: Map<String, Value> = CATALOGUE
        .iter()
        .map(|(_, name, desc, _)| ((*name).to_owned(), Value::String((*desc).to_owned())))
        .collect();
    Ok(respond::json_response(StatusCode::OK, &Value::Object(map)))
}

/// `GET /zones/{id}/logs/rayids/{ray}`: zero or more records; the `-XXX` colo suffix is ignored.
pub(crate) fn rayids(ctx: &mut Ctx, req: &Request, zone_id: &str, ray: &str) -> Handled {
    let caller = ctx.caller(req)?;
    let zone = ctx.zone_for(&caller, zone_id, &[Permission::LogsRead])?;
    logpull_available(ctx, &zone)?;
    admit_logpull(ctx, &zone)?;
    let ray = ray
        .split('-')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if ray.len() != 16 || !ray.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_query(
            "error parsing ray id: must be 16 hexadecimal characters",
        ));
    }
    let fields = parse_fields(ctx.param("fields"))?;
    let timestamps = parse_timestamps(ctx.param("timestamps"))?;
    let fault = logpull_fault(ctx, &zone, EndpointKind::Rayids)?;
    let traffic = ctx
        .shared
        .zone_traffic(&zone.id)
        .ok_or_else(respond::authentication_error)?;
    let now = ctx.shared.now().unix_timestamp();
    let mut out = Vec::new();
    let ray_value = u64::from_str_radix(&ray, 16).unwrap_or_default();
    if let Some((second, index)) = traffic.decode_ray(ray_value)
        && second < now
        && second >= now - 168 * 3600
    {
        let renderer = HttpRenderer::new(fields, timestamps, false);
        renderer.render(
            &traffic,
            &HttpRecord::generate(&traffic, second, index),
            None,
            &mut out,
        );
    }
    let (body, gzip) = build_body(Box::new(BufferSource(out)), wants_gzip(req), fault.as_ref());
    Ok(ndjson_response(body, gzip, fault.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(60), "1m0s");
        assert_eq!(go_duration(300), "5m0s");
        assert_eq!(go_duration(3600), "1h0m0s");
        assert_eq!(go_duration(45), "45s");
    }

    #[test]
    fn times_parse_in_three_formats() {
        let ns = 1_767_225_600 * NANOS;
        assert_eq!(parse_time("1767225600"), Some(ns));
        assert_eq!(parse_time("1767225600000000000"), Some(ns));
        assert_eq!(parse_time("2026-01-01T00:00:00Z"), Some(ns));
        assert_eq!(parse_time("2026-01-01T01:00:00+01:00"), Some(ns));
        assert_eq!(parse_time("2026-01-01T01:00:00 01:00"), None);
        assert_eq!(parse_time("yesterday"), None);
    }
}
