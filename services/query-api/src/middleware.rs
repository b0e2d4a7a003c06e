//! The edge every request passes: request id, client IP, per-IP rate limit (before any
//! authentication work), body size limit, and on the way out the common error shape, security
//! headers and `RateLimit-*` headers.

use std::sync::Arc;

use poem::http::HeaderValue;
use poem::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use tokio::io::AsyncReadExt as _;

use crate::allow::AllowIndex;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::metrics::{ApiMetrics, route_of};
use crate::request::{self, RequestContext};
use crate::state::SharedState;

pub struct Edge<E> {
    inner: E,
    state: SharedState,
    allow: AllowIndex,
    metrics: ApiMetrics,
}

impl<E> Edge<E> {
    pub fn new(inner: E, state: SharedState, allow: AllowIndex) -> Self {
        Self {
            inner,
            state,
            allow,
            metrics: ApiMetrics::new(&opentelemetry::global::meter(crate::NAME)),
        }
    }
}

/// Longest message taken over from an error poem produced itself (parse errors).
const MAX_MESSAGE: usize = 500;

const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    ("strict-transport-security", "max-age=63072000"),
];

impl<E: Endpoint> Endpoint for Edge<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let arrived = std::time::Instant::now();
        let peer = req.remote_addr().as_socket_addr().map(|a| a.ip());
        let forwarded = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let client_ip = request::client_ip(peer, forwarded, &self.state.trusted_proxies);
        let context = Arc::new(RequestContext::new(client_ip));
        let path = req.uri().path().to_owned();
        let served = request::scope(context.clone(), self.serve(req, &context)).await;
        // Read before `normalise`, which may build a new response without the marker.
        let route = route_of(&served, &path);
        let mut response = request::scope(context.clone(), normalise(served)).await;
        if response.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED
            && let Some(methods) = self.allow.allowed(&path)
            && let Ok(value) = HeaderValue::from_str(methods)
        {
            response
                .headers_mut()
                .insert(poem::http::header::ALLOW, value);
        }
        finish_headers(&mut response, &context);
        self.metrics.answered(
            route,
            response.status().as_u16(),
            arrived.elapsed().as_secs_f64(),
        );
        Ok(response)
    }
}

impl<E: Endpoint> Edge<E> {
    async fn serve(&self, mut req: Request, context: &Arc<RequestContext>) -> Response {
        let decision = self.state.ip_limiter.check(&context.client_ip);
        let allowed = decision.allowed;
        context.record_rate(decision);
        if !allowed {
            return ApiError::new(
                ErrorCode::RateLimited,
                "too many requests from this address; retry after the Retry-After seconds",
            )
            .into_response();
        }
        let timeout = self.state.options.connections.body_timeout;
        match tokio::time::timeout(timeout, read_body(&mut req, self.state.options.body_limit))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(refused)) => return refused,
            Err(_) => {
                return edge_error(
                    ErrorCode::RequestTimeout,
                    format!(
                        "the request body did not arrive within {} s",
                        timeout.as_secs()
                    ),
                );
            }
        }
        req.extensions_mut().insert(context.clone());
        match self.inner.call(req).await {
            Ok(output) => output.into_response(),
            Err(error) => error.into_response(),
        }
    }
}

/// An error answer for a status no operation documents (the edge's own refusals).
fn edge_error(code: ErrorCode, message: String) -> Response {
    let status = code.status();
    poem::web::Json(ErrorBody::new(status, code.as_str(), message))
        .with_status(status)
        .into_response()
}

fn too_large(limit: usize) -> Response {
    edge_error(
        ErrorCode::PayloadTooLarge,
        format!("request bodies are limited to {limit} bytes"),
    )
}

/// Reads the whole body before any handler runs (at most `limit` bytes; every body this API
/// takes is small JSON), so a body that trickles in costs the caller's time budget, not a
/// handler's. A `Content-Length` over the limit is refused without reading.
async fn read_body(req: &mut Request, limit: usize) -> Result<(), Response> {
    if let Some(length) = req.headers().get(CONTENT_LENGTH) {
        let length = length
            .to_str()
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| ApiError::invalid("Content-Length is not a number").into_response())?;
        if length > limit as u64 {
            return Err(too_large(limit));
        }
    }
    let mut buffered = Vec::new();
    req.take_body()
        .into_async_read()
        .take(limit as u64 + 1)
        .read_to_end(&mut buffered)
        .await
        .map_err(|_| ApiError::invalid("the request body could not be read").into_response())?;
    if buffered.len() > limit {
        return Err(too_large(limit));
    }
    req.set_body(Body::from(buffered));
    Ok(())
}

/// Any error response that is not already in the common JSON shape (poem's own 404, 405, 415,
/// parse errors) is rewritten into it, keeping its status.
async fn normalise(mut response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let text = response.take_body().into_string().await.unwrap_or_default();
    let mut message: String = text.trim().chars().take(MAX_MESSAGE).collect();
    if message.is_empty() {
        message = status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_ascii_lowercase();
    }
    let code = ErrorCode::for_status(status);
    let body = ErrorBody::new(status, code.as_str(), message);
    let mut rewritten = poem::web::Json(body).with_status(status).into_response();
    for (name, value) in response.headers() {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}

fn finish_headers(response: &mut Response, context: &RequestContext) {
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&context.id) {
        headers.insert("x-request-id", id);
    }
    for (name, value) in SECURITY_HEADERS {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if let Some(rate) = context.rate() {
        headers.insert("ratelimit-limit", HeaderValue::from(rate.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(rate.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(rate.reset_secs));
        if !rate.allowed {
            headers.insert(RETRY_AFTER, HeaderValue::from(rate.retry_after_secs));
        }
    }
}
