//! cf-sim: a deterministic Cloudflare API simulator for RainLogs tests and benchmarks.
//!
//! It serves the parts of Cloudflare's API that RainLogs uses (zones, token verify, Logpull, retention flag, CMB
//! config, Instant Logs jobs and their WebSocket stream, Logpush jobs with HTTP and S3 pushers, GraphQL
//! `firewallEventsAdaptive`, `httpRequestsAdaptiveGroups`, `logpushHealthAdaptiveGroups` and `settings`) with the
//! documented behaviour, generates traffic that is a pure function of (seed, zone, second received), exposes the
//! ground truth, and injects faults. See `docs/cf-sim.md`.
//!
//! In-process use:
//! ```no_run
//! # async fn demo() -> Result<(), cf_sim::SimError> {
//! use cf_sim::{ClockStart, Scenario, SimOptions, Simulator};
//! let start = time::macros::datetime!(2026-01-15 12:00 UTC);
//! let sim = Simulator::start(Scenario::example(), SimOptions { clock: Some(ClockStart::FrozenAt(start)), ..SimOptions::default() }).await?;
//! let base = sim.base_url(); // http://127.0.0.1:PORT/client/v4
//! sim.advance(std::time::Duration::from_secs(600));
//! # let _ = base; sim.shutdown().await; Ok(()) }
//! ```

mod auth;
mod clock;
mod fault;
mod graphql;
// Handlers return `Result<Response, Response>` so `?` can short-circuit with the finished error answer; the
// large `Err` is built once per request and never travels far.
#[allow(clippy::result_large_err)]
mod http;
#[allow(clippy::result_large_err)]
mod instant_logs;
#[allow(clippy::result_large_err)]
mod logpush;
mod ratelimit;
mod rng;
mod scenario;
mod sim;
mod state;
mod tls;
mod traffic;
mod truth;

pub use clock::ClockStart;
pub use fault::{EndpointKind, Fault, FaultKind};
pub use logpush::{DeliveryStatus, LogpushDelivery, LogpushUpload};
pub use scenario::{
    ClockSpec, EXAMPLE_SCENARIO_TOML, GlobalKeySpec, GraphqlSpec, InstantLogsSpec, LimitsSpec,
    LogpullSpec, LogpushSpec, Permission, Plan, Scenario, ScenarioError, TokenKind, TokenSpec,
    TokenStatus, ZoneSpec,
};
pub use sim::{RunningSim, SimError, SimOptions, Simulator};
pub use state::RequestRecord;
pub use tls::TlsError;
pub use traffic::render::TimestampFormat;
pub use truth::{Dataset, RecordForm, TruthError, TruthQuery};

/// Names of every `http_requests` field the simulator serves, in output order.
pub fn http_request_fields() -> Vec<&'static str> {
    traffic::fields::CATALOGUE
        .iter()
        .map(|(_, name, _, _)| *name)
        .collect()
}

/// The 9 fields Logpull returns without `fields=`.
pub fn default_http_request_fields() -> Vec<&'static str> {
    traffic::fields::DEFAULT_FIELDS
        .iter()
        .map(|f| f.name())
        .collect()
}

/// Names of every `firewallEventsAdaptive` field the simulator serves.
pub fn firewall_event_fields() -> Vec<&'static str> {
    traffic::firewall::FIREWALL_FIELDS.to_vec()
}

/// Names of every Logpush `firewall_events` field the simulator pushes (PascalCase), in output order.
pub fn logpush_firewall_event_fields() -> Vec<&'static str> {
    traffic::firewall::LOGPUSH_FIREWALL_FIELDS.to_vec()
}

/// Lock a mutex, recovering the data if a panicking thread poisoned it (state stays usable for tests).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
