//! The scenario file: zones, tokens, limits, clock and faults a simulator starts with.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::fault::Fault;

/// Cloudflare plan tiers, as `plan.legacy_id` spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Free,
    Pro,
    Business,
    Enterprise,
}

impl Plan {
    pub fn legacy_id(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
            Plan::Business => "business",
            Plan::Enterprise => "enterprise",
        }
    }

    /// `(plan.id, plan.name, price)` as seen in real zone objects (reference §4.1).
    pub fn catalogue_entry(self) -> (&'static str, &'static str, u32) {
        match self {
            Plan::Free => ("0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "Free Website", 0),
            Plan::Pro => ("a577b510288e82b26486fd1df47000ec", "Pro Website", 20),
            Plan::Business => ("1ac039f6c29b691475c3d74fe588d1ae", "Business Website", 200),
            Plan::Enterprise => ("94f3b7b768b0458b56d2cac4fe5ec0f9", "Enterprise Website", 0),
        }
    }
}

/// API token permission groups the simulator understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    ZoneRead,
    LogsRead,
    LogsEdit,
    AnalyticsRead,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    #[default]
    User,
    Account,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenStatus {
    #[default]
    Active,
    Disabled,
    Expired,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneSpec {
    /// 32 lowercase hex characters.
    pub id: String,
    pub name: String,
    pub plan: Plan,
    pub account_id: String,
    /// Mean `http_requests` records received per second (may be fractional).
    #[serde(default = "default_rate")]
    pub rate: f64,
    /// Mean firewall events per second.
    #[serde(default = "default_firewall_rate")]
    pub firewall_rate: f64,
    /// Logpull retention flag.
    #[serde(default)]
    pub retention: bool,
    /// Customer Metadata Boundary region of the account (`"eu"` disables Logpull).
    #[serde(default)]
    pub cmb_region: Option<String>,
    /// Relative error of `httpRequestsAdaptiveGroups` counts, in `[0, 1)`: each group's count is moved by a
    /// deterministic whole number of at most `floor(graphql_sampling_error × true count)`, standing in for
    /// Cloudflare's adaptive sampling so clients can be tested against a tolerance. 0 (the default) is exact.
    #[serde(default)]
    pub graphql_sampling_error: f64,
}

fn default_rate() -> f64 {
    1.0
}

fn default_firewall_rate() -> f64 {
    0.1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    pub value: String,
    #[serde(default)]
    pub kind: TokenKind,
    /// Owning account (account tokens only).
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub permissions: Vec<Permission>,
    /// Zone ids this token may touch; `["*"]` (the default) means every zone.
    #[serde(default = "all_zones")]
    pub zones: Vec<String>,
    #[serde(default)]
    pub status: TokenStatus,
}

fn all_zones() -> Vec<String> {
    vec!["*".to_owned()]
}

/// A legacy global API key (X-Auth-Email + X-Auth-Key): every permission on every zone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalKeySpec {
    pub email: String,
    pub key: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSpec {
    /// Simulated "now" at start; the real clock when absent.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub start: Option<OffsetDateTime>,
    /// Time stands still until advanced (only with `start`).
    #[serde(default)]
    pub frozen: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogpullSpec {
    /// `end` must be at most now minus this (docs: 60 s; OpenAPI: 300 s).
    #[serde(default = "default_min_delay")]
    pub min_delay_secs: u64,
}

fn default_min_delay() -> u64 {
    60
}

impl Default for LogpullSpec {
    fn default() -> Self {
        Self {
            min_delay_secs: default_min_delay(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Requests per token per 5 minutes, all endpoints (Cloudflare: 1200).
    #[serde(default = "default_global")]
    pub global_per_5min: u32,
    /// Logpull requests per zone per minute (Cloudflare: 15).
    #[serde(default = "default_logpull")]
    pub logpull_per_zone_per_min: u32,
    /// GraphQL queries per token per 5 minutes (Cloudflare: 300).
    #[serde(default = "default_graphql")]
    pub graphql_per_5min: u32,
    /// API requests per client IP per second, counted on the real clock (Cloudflare: 200); exceeding it blocks
    /// that IP for 5 minutes of simulated time. 0 turns the limit off.
    #[serde(default = "default_per_ip")]
    pub per_ip_per_sec: u32,
    /// Logpull 408 timeouts per zone allowed in a sliding hour of simulated time (Cloudflare: 12); one more
    /// blocks Logpull for that zone with 429 for an hour.
    #[serde(default = "default_logpull_timeouts")]
    pub logpull_timeouts_per_hour: u32,
}

fn default_global() -> u32 {
    1200
}
fn default_logpull() -> u32 {
    15
}
fn default_graphql() -> u32 {
    300
}
fn default_per_ip() -> u32 {
    200
}
fn default_logpull_timeouts() -> u32 {
    12
}

impl Default for LimitsSpec {
    fn default() -> Self {
        Self {
            global_per_5min: default_global(),
            logpull_per_zone_per_min: default_logpull(),
            graphql_per_5min: default_graphql(),
            per_ip_per_sec: default_per_ip(),
            logpull_timeouts_per_hour: default_logpull_timeouts(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstantLogsSpec {
    /// Close a session whose client has not answered pings for this long (real time; Cloudflare: 300 s).
    #[serde(default = "default_idle")]
    pub idle_timeout_secs: u64,
    /// Maximum session length in simulated time (Cloudflare: 3600 s).
    #[serde(default = "default_max_session")]
    pub max_session_secs: u64,
    /// Records per WebSocket frame at most (frames carry newline-joined records).
    #[serde(default = "default_batch")]
    pub max_records_per_frame: usize,
}

fn default_idle() -> u64 {
    300
}
fn default_max_session() -> u64 {
    3600
}
fn default_batch() -> usize {
    20
}

impl Default for InstantLogsSpec {
    fn default() -> Self {
        Self {
            idle_timeout_secs: default_idle(),
            max_session_secs: default_max_session(),
            max_records_per_frame: default_batch(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlSpec {
    /// Adaptive sampling: a query window holding more matching events than this returns 1-in-N rows with
    /// `sampleInterval = N`.
    #[serde(default = "default_sample_above")]
    pub sample_above: u64,
}

fn default_sample_above() -> u64 {
    10_000
}

impl Default for GraphqlSpec {
    fn default() -> Self {
        Self {
            sample_above: default_sample_above(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogpushSpec {
    /// Upload attempts per batch, the first included, before the batch is dropped for good. Cloudflare documented
    /// "around five times over five minutes" (later docs bound retries by the retention window instead).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Simulated seconds before the first retry; each further retry waits twice as long as the one before.
    #[serde(default = "default_retry_backoff")]
    pub retry_backoff_secs: u64,
    /// Real-time limit of one upload (the destination check included), so a receiver that hangs cannot stall a job.
    #[serde(default = "default_upload_timeout")]
    pub upload_timeout_secs: u64,
    /// Jobs per zone (Cloudflare: 4).
    #[serde(default = "default_max_jobs")]
    pub max_jobs_per_zone: usize,
    /// The simulator's stand-in for Amazon S3: where `s3://` destinations without `endpoint=` are written (an
    /// S3-compatible URL such as `http://127.0.0.1:18333`, path-style). Unset, those destinations cannot be written:
    /// their ownership challenge and destination check fail.
    #[serde(default)]
    pub aws_endpoint: Option<String>,
    /// Cloudflare's own identity at `aws_endpoint` (the IAM user a bucket policy lets write), used for Amazon S3
    /// destinations that carry no `access-key-id`/`secret-access-key`.
    #[serde(default)]
    pub aws_access_key_id: Option<String>,
    #[serde(default)]
    pub aws_secret_access_key: Option<String>,
}

fn default_max_attempts() -> u32 {
    5
}
fn default_retry_backoff() -> u64 {
    15
}
fn default_upload_timeout() -> u64 {
    30
}
fn default_max_jobs() -> usize {
    4
}

impl Default for LogpushSpec {
    fn default() -> Self {
        Self {
            max_attempts: default_max_attempts(),
            retry_backoff_secs: default_retry_backoff(),
            upload_timeout_secs: default_upload_timeout(),
            max_jobs_per_zone: default_max_jobs(),
            aws_endpoint: None,
            aws_access_key_id: None,
            aws_secret_access_key: None,
        }
    }
}

/// Everything a simulator starts with. Load with [`Scenario::from_toml`] or take [`Scenario::example`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Traffic seed; `SimOptions::seed` overrides it.
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub clock: ClockSpec,
    #[serde(default)]
    pub logpull: LogpullSpec,
    #[serde(default)]
    pub limits: LimitsSpec,
    #[serde(default)]
    pub instant_logs: InstantLogsSpec,
    #[serde(default)]
    pub graphql: GraphqlSpec,
    #[serde(default)]
    pub logpush: LogpushSpec,
    #[serde(default)]
    pub zones: Vec<ZoneSpec>,
    #[serde(default)]
    pub tokens: Vec<TokenSpec>,
    #[serde(default)]
    pub keys: Vec<GlobalKeySpec>,
    #[serde(default)]
    pub faults: Vec<Fault>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

/// The commented example printed by `cf-sim example-scenario`.
pub const EXAMPLE_SCENARIO_TOML: &str = include_str!("example-scenario.toml");

impl Scenario {
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario = toml::from_str(text)?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// One zone per plan, a full-access user token and a few narrower tokens (see `docs/cf-sim.md`).
    pub fn example() -> Self {
        // The example is part of the crate and covered by a unit test, so parsing cannot fail at run time;
        // falling back to an empty scenario keeps this path panic-free anyway.
        Self::from_toml(EXAMPLE_SCENARIO_TOML).unwrap_or_default()
    }

    pub fn zone(&self, id: &str) -> Option<&ZoneSpec> {
        self.zones.iter().find(|z| z.id == id)
    }

    pub fn validate(&self) -> Result<(), ScenarioError> {
        let mut ids = HashSet::new();
        for zone in &self.zones {
            if !is_hex32(&zone.id) {
                return Err(ScenarioError::Invalid(format!(
                    "zone id {:?} is not 32 lowercase hex characters",
                    zone.id
                )));
            }
            if !is_hex32(&zone.account_id) {
                return Err(ScenarioError::Invalid(format!(
                    "account id {:?} is not 32 lowercase hex characters",
                    zone.account_id
                )));
            }
            if !ids.insert(zone.id.clone()) {
                return Err(ScenarioError::Invalid(format!(
                    "zone id {} appears twice",
                    zone.id
                )));
            }
            if !(zone.rate.is_finite() && zone.rate >= 0.0 && zone.rate < 10_000_000.0) {
                return Err(ScenarioError::Invalid(format!(
                    "zone {}: rate must be in [0, 1e7)",
                    zone.id
                )));
            }
            if !(zone.firewall_rate.is_finite()
                && zone.firewall_rate >= 0.0
                && zone.firewall_rate < 100_000.0)
            {
                return Err(ScenarioError::Invalid(format!(
                    "zone {}: firewall_rate must be in [0, 1e5)",
                    zone.id
                )));
            }
            let error = zone.graphql_sampling_error;
            if !(error.is_finite() && (0.0..1.0).contains(&error)) {
                return Err(ScenarioError::Invalid(format!(
                    "zone {}: graphql_sampling_error must be in [0, 1)",
                    zone.id
                )));
            }
        }
        let mut values = HashSet::new();
        for token in &self.tokens {
            if token.value.is_empty() || token.value.chars().any(|c| c.is_whitespace()) {
                return Err(ScenarioError::Invalid(
                    "token values must be non-empty without whitespace".into(),
                ));
            }
            if !values.insert(token.value.clone()) {
                return Err(ScenarioError::Invalid("a token value appears twice".into()));
            }
            if token.kind == TokenKind::Account && token.account_id.is_none() {
                return Err(ScenarioError::Invalid(
                    "account tokens need account_id".into(),
                ));
            }
        }
        if self.graphql.sample_above == 0 {
            return Err(ScenarioError::Invalid(
                "graphql.sample_above must be > 0".into(),
            ));
        }
        if self.instant_logs.max_records_per_frame == 0 {
            return Err(ScenarioError::Invalid(
                "instant_logs.max_records_per_frame must be > 0".into(),
            ));
        }
        if self.logpush.max_attempts == 0 {
            return Err(ScenarioError::Invalid(
                "logpush.max_attempts must be > 0".into(),
            ));
        }
        if self.logpush.upload_timeout_secs == 0 {
            return Err(ScenarioError::Invalid(
                "logpush.upload_timeout_secs must be > 0".into(),
            ));
        }
        for fault in &self.faults {
            fault.validate().map_err(ScenarioError::Invalid)?;
        }
        Ok(())
    }
}

pub(crate) fn is_hex32(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_with_one_zone_per_plan() {
        let scenario = Scenario::from_toml(EXAMPLE_SCENARIO_TOML).expect("example must parse");
        let plans: HashSet<Plan> = scenario.zones.iter().map(|z| z.plan).collect();
        assert_eq!(plans.len(), 4);
        assert!(!scenario.tokens.is_empty());
    }

    #[test]
    fn faults_parse_from_toml() {
        let text = format!(
            "{EXAMPLE_SCENARIO_TOML}\n[[faults]]\nzone = \"3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e\"\nendpoint = \"logpull\"\ncount = 2\nkind = \"stream_error\"\nafter_lines = 100\n\n[[faults]]\nendpoint = \"graphql\"\nprobability = 0.5\nkind = \"graphql_budget\"\nstatus = 429\n"
        );
        let scenario = Scenario::from_toml(&text).expect("parse");
        assert_eq!(scenario.faults.len(), 2);
        assert_eq!(
            scenario.faults[0].kind,
            crate::fault::FaultKind::StreamError { after_lines: 100 }
        );
        assert_eq!(
            scenario.faults[1].kind,
            crate::fault::FaultKind::GraphqlBudget { status: 429 }
        );
        let bad = format!(
            "{EXAMPLE_SCENARIO_TOML}\n[[faults]]\nkind = \"graphql_budget\"\nstatus = 500\n"
        );
        assert!(Scenario::from_toml(&bad).is_err());
    }

    #[test]
    fn rejects_domain_as_zone_id() {
        let err = Scenario::from_toml(
            "[[zones]]\nid = \"example.com\"\nname = \"example.com\"\nplan = \"free\"\naccount_id = \"0123456789abcdef0123456789abcdef\"\n",
        )
        .expect_err("must reject");
        assert!(err.to_string().contains("32 lowercase hex"));
    }
}
