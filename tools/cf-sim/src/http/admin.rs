//! Test-control routes under `/__sim/`: clock, faults, ground truth and the request log.

use poem::Response;
use poem::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Ctx, respond};
use crate::fault::Fault;
use crate::lock;
use crate::traffic::render::TimestampFormat;
use crate::truth::{Dataset, RecordForm, TruthQuery, truth_lines};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockChange {
    #[serde(default, with = "time::serde::rfc3339::option")]
    now: Option<OffsetDateTime>,
    #[serde(default)]
    advance_secs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FaultBody {
    One(Fault),
    Many(Vec<Fault>),
}

fn bad_request(message: &str) -> Response {
    respond::json_response(StatusCode::BAD_REQUEST, &json!({"error": message}))
}

fn clock_json(now: OffsetDateTime) -> Value {
    json!({"now": now.format(&Rfc3339).unwrap_or_default(), "unix": now.unix_timestamp()})
}

pub(crate) async fn handle(ctx: &mut Ctx, route: &str) -> Response {
    let shared = ctx.shared.clone();
    match (ctx.method.clone(), route) {
        (Method::GET, "clock") => respond::json_response(StatusCode::OK, &clock_json(shared.now())),
        (Method::POST, "clock") => match serde_json::from_slice::<ClockChange>(&ctx.body) {
            Ok(ClockChange {
                now: Some(t),
                advance_secs: None,
            }) => {
                shared.clock.set(t);
                respond::json_response(StatusCode::OK, &clock_json(shared.now()))
            }
            Ok(ClockChange {
                now: None,
                advance_secs: Some(secs),
            }) => {
                shared.clock.advance(std::time::Duration::from_secs(secs));
                respond::json_response(StatusCode::OK, &clock_json(shared.now()))
            }
            _ => bad_request("body must be {\"now\": \"<rfc3339>\"} or {\"advance_secs\": N}"),
        },
        (Method::GET, "faults") => {
            respond::json_response(StatusCode::OK, &json!(lock(&shared.faults).armed()))
        }
        (Method::POST, "faults") => {
            let faults = match serde_json::from_slice::<FaultBody>(&ctx.body) {
                Ok(FaultBody::One(f)) => vec![f],
                Ok(FaultBody::Many(fs)) => fs,
                Err(e) => return bad_request(&format!("invalid fault: {e}")),
            };
            if let Some(err) = faults.iter().find_map(|f| f.validate().err()) {
                return bad_request(&err);
            }
            for fault in faults {
                shared.inject(fault);
            }
            respond::json_response(StatusCode::OK, &json!(lock(&shared.faults).armed()))
        }
        (Method::DELETE, "faults") => {
            lock(&shared.faults).clear();
            respond::json_response(StatusCode::OK, &json!([]))
        }
        (Method::GET, "requests") => {
            respond::json_response(StatusCode::OK, &json!(*lock(&shared.requests)))
        }
        (Method::DELETE, "requests") => {
            lock(&shared.requests).clear();
            respond::json_response(StatusCode::OK, &json!([]))
        }
        (Method::GET, "truth") => truth(ctx),
        (Method::GET, "logpush/deliveries") => match ctx.param("zone") {
            Some(zone) => respond::json_response(
                StatusCode::OK,
                &json!(crate::logpush::deliveries(&shared, zone)),
            ),
            None => bad_request("zone is required"),
        },
        (Method::GET, "logpush/dropped") => match ctx.param("zone") {
            Some(zone) => Response::builder()
                .status(StatusCode::OK)
                .content_type("application/x-ndjson")
                .body(
                    crate::logpush::dropped_lines(
                        &shared,
                        zone,
                        ctx.param("job").and_then(|j| j.parse().ok()),
                    )
                    .concat(),
                ),
            None => bad_request("zone is required"),
        },
        _ => respond::json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "unknown simulator route"}),
        ),
    }
}

fn parse_instant(s: Option<&str>) -> Option<OffsetDateTime> {
    let s = s?;
    if let Ok(secs) = s.parse::<i64>() {
        return OffsetDateTime::from_unix_timestamp(secs).ok();
    }
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

fn truth(ctx: &Ctx) -> Response {
    let Some(zone) = ctx.param("zone") else {
        return bad_request("zone is required");
    };
    let dataset = match ctx.param("dataset").unwrap_or("http_requests") {
        "http_requests" => Dataset::HttpRequests,
        "firewall_events" => Dataset::FirewallEvents,
        _ => return bad_request("dataset must be http_requests or firewall_events"),
    };
    let (Some(start), Some(end)) = (
        parse_instant(ctx.param("start")),
        parse_instant(ctx.param("end")),
    ) else {
        return bad_request("start and end (unix seconds or rfc3339) are required");
    };
    // The Logpush forms are accepted too so a pushed batch can be compared with the truth in its own format.
    let Some(timestamps) =
        TimestampFormat::parse_logpush(ctx.param("timestamps").unwrap_or("unixnano"))
    else {
        return bad_request("timestamps must be unixnano, unix, rfc3339, rfc3339ms or rfc3339ns");
    };
    let form = match ctx.param("form").unwrap_or("api") {
        "api" => RecordForm::Api,
        "logpush" => RecordForm::Logpush,
        _ => return bad_request("form must be api or logpush"),
    };
    let query = TruthQuery {
        zone: zone.to_owned(),
        dataset,
        start,
        end,
        fields: ctx
            .param("fields")
            .map(|f| f.split(',').map(str::to_owned).collect()),
        timestamps,
        log4shell_rewrite: ctx.param("CVE-2021-44228") == Some("true"),
        form,
    };
    match truth_lines(&ctx.shared, &query) {
        Ok(lines) => Response::builder()
            .status(StatusCode::OK)
            .content_type("application/x-ndjson")
            .body(lines.concat()),
        Err(e) => bad_request(&e.to_string()),
    }
}
