//! Response builders: the v4 envelope, Cloudflare's error catalogue and plain-text Logpull errors.

use poem::http::StatusCode;
use poem::{Body, Response};
use serde_json::{Value, json};

use crate::auth::AuthFailure;
use crate::fault::FaultKind;

pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(Body::from_vec(
            serde_json::to_vec(value).unwrap_or_default(),
        ))
}

pub(crate) fn ok(result: Value) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"success": true, "errors": [], "messages": [], "result": result}),
    )
}

pub(crate) fn ok_list(result: Vec<Value>) -> Response {
    let count = result.len();
    json_response(
        StatusCode::OK,
        &json!({
            "success": true, "errors": [], "messages": [], "result": result,
            "result_info": {"page": 1, "per_page": 20.max(count), "count": count, "total_count": count, "total_pages": 1}
        }),
    )
}

pub(crate) fn failure(status: StatusCode, errors: Vec<Value>) -> Response {
    json_response(
        status,
        &json!({"success": false, "errors": errors, "messages": [], "result": null}),
    )
}

pub(crate) fn error(status: StatusCode, code: u32, message: &str) -> Response {
    failure(status, vec![json!({"code": code, "message": message})])
}

pub(crate) fn text(status: StatusCode, body: &str) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/plain; charset=utf-8")
        .body(format!("{body}\n"))
}

/// 10000 `Authentication error`: missing permission, zone outside the token's scope, or no credentials.
pub(crate) fn authentication_error() -> Response {
    error(StatusCode::FORBIDDEN, 10000, "Authentication error")
}

/// 9109: a token that is unknown, revoked, disabled or expired.
pub(crate) fn invalid_access_token() -> Response {
    error(StatusCode::FORBIDDEN, 9109, "Invalid access token")
}

/// 1000: what `/user/tokens/verify` says about tokens it does not accept.
pub(crate) fn invalid_api_token() -> Response {
    error(StatusCode::BAD_REQUEST, 1000, "Invalid API Token")
}

pub(crate) fn auth_failure(failure_kind: &AuthFailure) -> Response {
    match failure_kind {
        AuthFailure::MalformedHeaders(chain) => {
            let chain: Vec<Value> = chain
                .iter()
                .map(|(code, message)| json!({"code": code, "message": message}))
                .collect();
            failure(
                StatusCode::BAD_REQUEST,
                vec![
                    json!({"code": 6003, "message": "Invalid request headers", "error_chain": chain}),
                ],
            )
        }
        AuthFailure::Missing | AuthFailure::UnknownKey => authentication_error(),
        AuthFailure::UnknownToken => invalid_access_token(),
    }
}

/// 7003 + 7000 for a zone id that is not 32 hex characters.
pub(crate) fn no_route(path: &str) -> Response {
    failure(
        StatusCode::BAD_REQUEST,
        vec![
            json!({"code": 7003, "message": format!("Could not route to {path}, perhaps your object identifier is invalid?")}),
            json!({"code": 7000, "message": "No route for that URI"}),
        ],
    )
}

pub(crate) fn unknown_route() -> Response {
    error(StatusCode::NOT_FOUND, 7000, "No route for that URI")
}

pub(crate) fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, 7001, "Method not allowed")
}

/// 429 with code 971 and `Retry-After`.
pub(crate) fn rate_limited(retry_after_secs: i64) -> Response {
    let mut resp = error(
        StatusCode::TOO_MANY_REQUESTS,
        971,
        "Please wait and consider throttling your request speed",
    );
    set_header(
        &mut resp,
        "retry-after",
        &retry_after_secs.max(1).to_string(),
    );
    resp
}

pub(crate) fn set_header(resp: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = poem::http::HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// Responses for faults that replace the whole answer (the same on every endpoint kind).
pub(crate) fn whole_response_fault(kind: &FaultKind) -> Option<Response> {
    match kind {
        FaultKind::RateLimit { retry_after_secs } => Some(rate_limited(*retry_after_secs as i64)),
        FaultKind::ServerError { status } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            Some(error(status, 10001, "service temporarily unavailable"))
        }
        FaultKind::IdleTimeout => Some(text(StatusCode::REQUEST_TIMEOUT, "408 Request Timeout")),
        _ => None,
    }
}

pub(crate) fn fault_name(kind: &FaultKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.get("kind").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}
