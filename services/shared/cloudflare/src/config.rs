//! Client settings. Defaults are production values; tests shrink the timings.

use crate::ndjson::DEFAULT_MAX_LINE_BYTES;
use crate::policy::breaker::BreakerConfig;
use crate::policy::limiter::RateLimits;
use crate::policy::retry::RetryPolicy;
use std::time::Duration;

pub const PRODUCTION_BASE_URL: &str = "https://api.cloudflare.com/client/v4";

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://api.cloudflare.com/client/v4` in production, the simulator's `/client/v4` URL in tests.
    pub base_url: String,
    pub user_agent: String,
    pub connect_timeout: Duration,
    /// Whole-request timeout for JSON endpoints (not for streamed Logpull bodies).
    pub request_timeout: Duration,
    /// A streamed body that delivers no bytes for this long fails the window. Cloudflare itself answers 408 after
    /// 30 s idle, so the default sits above that to let the server's verdict arrive first.
    pub body_idle_timeout: Duration,
    /// Memory cap for one NDJSON line (lines well over 64 KiB are normal; this only stops runaway peers).
    pub max_line_bytes: usize,
    /// How much of an error body is kept for messages.
    pub max_error_body_bytes: usize,
    pub retry: RetryPolicy,
    pub limits: RateLimits,
    /// The local limiter waits at most this long for a slot before returning `RateLimited { scope: Local }`.
    pub limiter_max_wait: Duration,
    pub breaker: BreakerConfig,
    /// Instant Logs: after this much silence the client pings the server...
    pub websocket_ping_after: Duration,
    /// ...and declares the socket half-open if nothing at all arrives within this further time.
    pub websocket_pong_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            base_url: PRODUCTION_BASE_URL.to_owned(),
            user_agent: concat!("rainlogs-cloudflare/", env!("CARGO_PKG_VERSION")).to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            body_idle_timeout: Duration::from_secs(45),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_error_body_bytes: 16 * 1024,
            retry: RetryPolicy::default(),
            limits: RateLimits::CLOUDFLARE,
            limiter_max_wait: Duration::from_secs(90),
            breaker: BreakerConfig::default(),
            websocket_ping_after: Duration::from_secs(30),
            websocket_pong_timeout: Duration::from_secs(15),
        }
    }
}

impl ClientConfig {
    pub fn with_base_url(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            ..Self::default()
        }
    }
}
