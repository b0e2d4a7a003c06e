//! rainlogs-cloudflare: a typed client for the Cloudflare APIs RainLogs collects from.
//!
//! * [`CloudflareClient`] is shared process-wide (HTTP pool, rate limiters, circuit breakers);
//!   [`CloudflareClient::with_token`] gives a [`TokenClient`] carrying the endpoint methods.
//! * Logpull windows stream as raw NDJSON lines and end with an explicit verdict ([`LogpullItem::Complete`] or an
//!   error), so nothing is committed from a failed window.
//! * Every error is a [`CfError`] that knows whether retrying helps; Cloudflare's codes and messages are kept.
//! * Resilience is layered (see [`policy`]): breaker → rate limiter → attempt → retry with full-jitter backoff.

// Tests may unwrap (project rule); library code may not (workspace lint).
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod body;
mod classify;
mod client;
mod exec;
mod logpull_stream;

pub mod api;
pub mod config;
pub mod error;
pub mod logpush_records;
pub mod ndjson;
pub mod policy;
pub mod retry_after;
pub mod route;
pub mod timestamp;
pub mod token;

pub use api::account::{CmbConfig, TokenOwner, TokenState, TokenStatus};
pub use api::graphql::{
    DEFAULT_FIREWALL_FIELDS, FirewallEventsPage, FirewallEventsQuery, FirewallEventsSettings,
    GROUPS_QUERY_WINDOW, LOGPUSH_HEALTH_PAGE, LogpushHealth, RequestsPerMinute,
};
pub use api::instant_logs::{
    InstantLogsJob, InstantLogsJobRequest, InstantLogsRecord, InstantLogsSession, SessionClosed,
    sample_interval_of,
};
pub use api::logpull::{
    FieldList, LOGPULL_MAX_AGE, LOGPULL_MAX_WINDOW, LOGPULL_MIN_DELAY, LogpullQuery, LogpullWindow,
};
pub use api::logpush::{LogpushJob, MAX_LOGPUSH_JOBS_PER_ZONE, NewLogpushJob, OutputOptions};
pub use api::zones::{PlanTier, Zone, ZonePlan};
pub use client::{CloudflareClient, TokenClient, parse_base_url};
pub use config::{ClientConfig, PRODUCTION_BASE_URL};
pub use error::{ApiMessage, ApiMessages, CfError, RateLimitScope, TransportPhase};
pub use logpull_stream::{LogpullItem, LogpullStream, STREAMING_ERROR_TRAILER, WindowSummary};
pub use logpush_records::{LOGPUSH_FIREWALL_FIELDS, LogpushDataset, RecordTimeError};
pub use policy::backoff::Backoff;
pub use policy::breaker::{BreakerConfig, BreakerSnapshot, BreakerState};
pub use policy::limiter::{RateLimits, WindowLimit};
pub use policy::retry::RetryPolicy;
pub use route::Endpoint;
pub use timestamp::{TimestampFormat, edge_start_timestamp};
pub use token::{ApiToken, TokenId};
