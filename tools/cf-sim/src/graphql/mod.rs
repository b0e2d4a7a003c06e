//! GraphQL Analytics API subset: `viewer { zones(filter) { zoneTag settings { <node> {...} }
//! firewallEventsAdaptive(filter, limit, orderBy) {...} httpRequestsAdaptiveGroups(...) {...}
//! logpushHealthAdaptiveGroups(...) {...} } budget }`, with Cloudflare's limits and error shapes.

mod exec;
mod filter;
mod groups;
mod parse;
mod settings;

use poem::http::StatusCode;
use poem::{Request, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::authenticate;
use crate::fault::{EndpointKind, FaultKind};
use crate::http::{Ctx, respond};
use crate::lock;

/// One entry of the response's `errors` array, with the HTTP status the whole response gets.
#[derive(Clone, Debug)]
pub(crate) struct GqlError {
    pub status: StatusCode,
    pub message: String,
    pub path: Option<Vec<String>>,
    pub code: Option<&'static str>,
}

impl GqlError {
    pub fn bad_request(message: impl Into<String>, path: Option<Vec<String>>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            path,
            code: None,
        }
    }

    /// Authorisation problems that Cloudflare reports with HTTP 200.
    pub fn soft(message: impl Into<String>, path: Option<Vec<String>>) -> Self {
        Self {
            status: StatusCode::OK,
            message: message.into(),
            path,
            code: Some("authz"),
        }
    }
}

pub(crate) fn error_response(now: OffsetDateTime, errors: &[GqlError]) -> Response {
    let status = errors
        .iter()
        .map(|e| e.status)
        .max_by_key(|s| s.as_u16())
        .unwrap_or(StatusCode::BAD_REQUEST);
    let timestamp = now.format(&Rfc3339).unwrap_or_default();
    let errors: Vec<Value> = errors
        .iter()
        .map(|e| {
            let mut extensions = json!({"timestamp": timestamp});
            if let Some(code) = e.code {
                extensions["code"] = json!(code);
            }
            json!({"message": e.message, "path": e.path, "extensions": extensions})
        })
        .collect();
    respond::json_response(status, &json!({"data": null, "errors": errors}))
}

fn budget_error(now: OffsetDateTime, status: StatusCode, retry_after: Option<i64>) -> Response {
    let mut resp = error_response(
        now,
        &[GqlError {
            status,
            message: "rate limiter budget depleted, try again after 5 minutes".into(),
            path: None,
            code: Some("budget"),
        }],
    );
    if let Some(secs) = retry_after {
        respond::set_header(&mut resp, "retry-after", &secs.max(1).to_string());
    }
    resp
}

#[derive(Deserialize)]
struct GqlRequest {
    query: String,
    #[serde(default)]
    variables: Option<Map<String, Value>>,
}

/// `POST /client/v4/graphql`.
pub(crate) fn handle(ctx: &mut Ctx, req: &Request) -> Response {
    let now = ctx.shared.now();
    let unauthorized = |now| {
        error_response(
            now,
            &[GqlError {
                status: StatusCode::UNAUTHORIZED,
                message: "Unauthorized".into(),
                path: None,
                code: None,
            }],
        )
    };
    let caller = match authenticate(req.headers(), &ctx.shared) {
        Ok(caller) if caller.is_active() => caller,
        _ => return unauthorized(now),
    };
    if let Err(resp) = ctx.admit_global(&caller) {
        return resp;
    }
    let limit = ctx.shared.limits.graphql_per_5min;
    let admitted = lock(&ctx.shared.limiter).admit(
        "graphql",
        &caller.principal(),
        limit,
        300,
        now.unix_timestamp(),
    );
    let remaining = match admitted {
        Ok(quota) => quota.remaining,
        Err(retry) => return budget_error(now, StatusCode::TOO_MANY_REQUESTS, Some(retry)),
    };
    match ctx.take_fault(EndpointKind::Graphql) {
        Some(FaultKind::GraphqlBudget { status }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let retry = (status == StatusCode::TOO_MANY_REQUESTS).then_some(300);
            return budget_error(now, status, retry);
        }
        Some(other) => {
            if let Some(resp) = respond::whole_response_fault(&other) {
                return resp;
            }
        }
        None => {}
    }
    let body: GqlRequest = match serde_json::from_slice(&ctx.body) {
        Ok(body) => body,
        Err(_) => {
            return error_response(
                now,
                &[GqlError::bad_request(
                    "failed to parse request body as JSON with a query",
                    None,
                )],
            );
        }
    };
    let variables = body.variables.unwrap_or_default();
    let selections = match parse::parse_query(&body.query, &variables) {
        Ok(s) => s,
        Err(parse::ParseError(msg)) => {
            return error_response(
                now,
                &[GqlError::bad_request(
                    format!("query contains error, please review it and retry: {msg}"),
                    None,
                )],
            );
        }
    };
    let exec = exec::Execution {
        shared: &ctx.shared,
        caller: &caller,
        now,
        budget_remaining: remaining,
    };
    match exec.run(&selections) {
        Ok(data) => respond::json_response(StatusCode::OK, &json!({"data": data, "errors": null})),
        Err(errors) => error_response(now, &errors),
    }
}
