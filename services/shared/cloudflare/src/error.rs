//! Typed errors. Every variant says whether retrying can help, and Cloudflare's codes and messages are kept verbatim.

use crate::ndjson::LineTooLong;
use crate::route::Endpoint;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// One entry of a v4 envelope's `errors[]`, or a GraphQL error (which has no numeric code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiMessage {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_chain: Vec<ApiMessage>,
}

impl ApiMessage {
    pub fn text(message: impl Into<String>) -> Self {
        Self {
            code: None,
            message: message.into(),
            error_chain: Vec::new(),
        }
    }
}

/// The errors Cloudflare returned, in order. `Display` renders `code: message; ...`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiMessages(pub Vec<ApiMessage>);

impl ApiMessages {
    pub fn codes(&self) -> impl Iterator<Item = i64> + '_ {
        self.0.iter().flat_map(|m| {
            m.code
                .into_iter()
                .chain(m.error_chain.iter().filter_map(|c| c.code))
        })
    }

    pub fn has_code(&self, code: i64) -> bool {
        self.codes().any(|c| c == code)
    }
}

impl fmt::Display for ApiMessages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(no error details)");
        }
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            match m.code {
                Some(code) => write!(f, "{code}: {}", m.message)?,
                None => f.write_str(&m.message)?,
            }
        }
        Ok(())
    }
}

/// Which budget a 429 (or the local limiter) refers to; the client blocks that key until `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitScope {
    /// Logpull's 15 requests/min per zone (or the 1 h block after too many 408s).
    LogpullZone,
    /// The global 1200 requests / 5 min per token (codes 971, 10100).
    Token,
    /// The GraphQL query budget (300 / 5 min), reported with HTTP 200 or 429.
    Graphql,
    /// The client's own limiter would have had to wait longer than `limiter_max_wait`.
    Local,
}

/// Where a transport failure happened: before any status was seen, or while reading a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportPhase {
    Request,
    Body,
}

#[derive(Debug, thiserror::Error)]
pub enum CfError {
    // ---- permanent: retrying the same request cannot help ----
    #[error("authentication failed (HTTP {status}): {errors}")]
    Auth { status: u16, errors: ApiMessages },
    #[error("invalid zone identifier (HTTP {status}): {errors}")]
    InvalidZoneId { status: u16, errors: ApiMessages },
    /// Logpull's plain-text 400 (`bad query: ...`) or a GraphQL limit/parse error, message kept verbatim.
    #[error("bad query (HTTP {status}): {message}")]
    BadQuery { status: u16, message: String },
    #[error("log retention is not enabled for this zone: {message}")]
    RetentionDisabled { message: String },
    #[error("Logpull is unavailable: the account's customer metadata boundary is `{regions}`")]
    LogpullBlockedByMetadataBoundary { regions: String },
    /// The zone's plan or account does not include the product (e.g. Logpull outside Enterprise, code 1004).
    #[error("not entitled (HTTP {status}): {errors}")]
    NotEntitled { status: u16, errors: ApiMessages },
    #[error("an Instant Logs session is already active for this zone: {errors}")]
    SessionAlreadyActive { errors: ApiMessages },
    #[error("Cloudflare API error (HTTP {status}): {errors}")]
    Api { status: u16, errors: ApiMessages },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("unexpected response from {endpoint}: {detail}")]
    Protocol { endpoint: Endpoint, detail: String },
    #[error(transparent)]
    LineTooLong(#[from] LineTooLong),
    #[error("could not build the HTTP client: {0}")]
    Setup(String),

    // ---- retryable ----
    #[error("rate limited ({scope:?}; retry after {retry_after:?}): {detail}")]
    RateLimited {
        scope: RateLimitScope,
        retry_after: Option<Duration>,
        detail: String,
    },
    #[error("request timed out (HTTP 408): {detail}")]
    RequestTimeout { detail: String },
    #[error("conflict (HTTP 409): {detail}")]
    Conflict { detail: String },
    #[error("server error (HTTP {status}): {detail}")]
    Server { status: u16, detail: String },
    #[error("transport error during {phase:?}: {source}")]
    Transport {
        phase: TransportPhase,
        #[source]
        source: reqwest::Error,
    },
    #[error("response body stalled: no bytes for {0:?}")]
    BodyStalled(Duration),
    #[error(
        "Logpull stream failed: the body ended with `Error streaming data` after {lines} lines"
    )]
    StreamedFailure { lines: u64 },
    #[error("line {line_number} of the body is not a JSON record: {excerpt:?}")]
    MalformedLine { line_number: u64, excerpt: String },
    #[error("compressed body is truncated or corrupt: {0}")]
    Decompression(#[source] std::io::Error),
    #[error("circuit breaker for {endpoint} is open; next probe in {retry_in:?}")]
    CircuitOpen {
        endpoint: Endpoint,
        retry_in: Duration,
    },
    #[error("WebSocket error: {0}")]
    WebSocket(#[source] Box<tokio_tungstenite::tungstenite::Error>),
    #[error("WebSocket dropped without a close frame")]
    WebSocketDropped,
    #[error("WebSocket silent for {0:?} and no answer to ping (half-open connection)")]
    WebSocketStalled(Duration),
}

impl CfError {
    /// True when the same request may succeed later (after `retry_after()` if given).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Auth { .. }
            | Self::InvalidZoneId { .. }
            | Self::BadQuery { .. }
            | Self::RetentionDisabled { .. }
            | Self::LogpullBlockedByMetadataBoundary { .. }
            | Self::NotEntitled { .. }
            | Self::SessionAlreadyActive { .. }
            | Self::Api { .. }
            | Self::InvalidRequest(_)
            | Self::Protocol { .. }
            | Self::LineTooLong(_)
            | Self::Setup(_) => false,
            Self::RateLimited { .. }
            | Self::RequestTimeout { .. }
            | Self::Conflict { .. }
            | Self::Server { .. }
            | Self::Transport { .. }
            | Self::BodyStalled(_)
            | Self::StreamedFailure { .. }
            | Self::MalformedLine { .. }
            | Self::Decompression(_)
            | Self::CircuitOpen { .. }
            | Self::WebSocket(_)
            | Self::WebSocketDropped
            | Self::WebSocketStalled(_) => true,
        }
    }

    /// The server's (or the breaker's) requested wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            Self::CircuitOpen { retry_in, .. } => Some(*retry_in),
            _ => None,
        }
    }

    /// Failures that say the endpoint itself is unhealthy. Rate limits and the caller's own mistakes do not count.
    pub fn is_endpoint_failure(&self) -> bool {
        matches!(
            self,
            Self::RequestTimeout { .. }
                | Self::Server { .. }
                | Self::Transport { .. }
                | Self::BodyStalled(_)
                | Self::StreamedFailure { .. }
                | Self::Decompression(_)
                | Self::WebSocket(_)
                | Self::WebSocketDropped
                | Self::WebSocketStalled(_)
        )
    }

    /// Cloudflare's numeric error codes carried by this error, if any.
    pub fn api_codes(&self) -> Vec<i64> {
        match self {
            Self::Auth { errors, .. }
            | Self::InvalidZoneId { errors, .. }
            | Self::NotEntitled { errors, .. }
            | Self::SessionAlreadyActive { errors, .. }
            | Self::Api { errors, .. } => errors.codes().collect(),
            _ => Vec::new(),
        }
    }

    /// The HTTP status behind this error, when one was received.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Auth { status, .. }
            | Self::InvalidZoneId { status, .. }
            | Self::BadQuery { status, .. }
            | Self::NotEntitled { status, .. }
            | Self::Api { status, .. }
            | Self::Server { status, .. } => Some(*status),
            Self::RequestTimeout { .. } => Some(408),
            Self::Conflict { .. } => Some(409),
            Self::RateLimited { scope, .. } if *scope != RateLimitScope::Local => Some(429),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_render_codes_and_chains_are_searchable() {
        let errors = ApiMessages(vec![ApiMessage {
            code: Some(6003),
            message: "Invalid request headers".into(),
            error_chain: vec![ApiMessage {
                code: Some(6111),
                message: "Invalid format for Authorization header".into(),
                error_chain: vec![],
            }],
        }]);
        assert_eq!(errors.to_string(), "6003: Invalid request headers");
        assert!(errors.has_code(6111));
    }

    #[test]
    fn permanent_and_retryable_errors_are_separated() {
        let auth = CfError::Auth {
            status: 403,
            errors: ApiMessages(vec![ApiMessage {
                code: Some(10000),
                message: "Authentication error".into(),
                error_chain: vec![],
            }]),
        };
        assert!(!auth.is_retryable());
        assert!(!auth.is_endpoint_failure());
        assert_eq!(auth.api_codes(), vec![10000]);
        let limited = CfError::RateLimited {
            scope: RateLimitScope::LogpullZone,
            retry_after: Some(Duration::from_secs(7)),
            detail: String::new(),
        };
        assert!(limited.is_retryable());
        assert!(
            !limited.is_endpoint_failure(),
            "429 is back-pressure, not an unhealthy endpoint"
        );
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
        assert!(CfError::StreamedFailure { lines: 3 }.is_endpoint_failure());
        assert!(
            !CfError::BadQuery {
                status: 400,
                message: "bad query".into()
            }
            .is_retryable()
        );
    }
}
