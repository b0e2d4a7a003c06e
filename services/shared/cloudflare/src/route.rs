//! The Cloudflare operations this client performs, used as breaker keys and metric labels.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    Zone,
    TokenVerify,
    LogpullReceived,
    LogpullFields,
    LogpullRayIds,
    RetentionFlag,
    CmbConfig,
    InstantLogsJob,
    InstantLogsSocket,
    Graphql,
    LogpushJobs,
}

impl Endpoint {
    /// A stable snake_case label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Zone => "zone",
            Self::TokenVerify => "token_verify",
            Self::LogpullReceived => "logpull_received",
            Self::LogpullFields => "logpull_fields",
            Self::LogpullRayIds => "logpull_rayids",
            Self::RetentionFlag => "retention_flag",
            Self::CmbConfig => "cmb_config",
            Self::InstantLogsJob => "instant_logs_job",
            Self::InstantLogsSocket => "instant_logs_socket",
            Self::Graphql => "graphql",
            Self::LogpushJobs => "logpush_jobs",
        }
    }

    /// Logpull endpoints share the per-zone 15/min limit and answer errors in plain text.
    pub fn is_logpull(self) -> bool {
        matches!(
            self,
            Self::LogpullReceived | Self::LogpullFields | Self::LogpullRayIds
        )
    }

    /// The Instant Logs socket lives on a separate host and does not count against the v4 API limits.
    pub fn counts_against_api_limit(self) -> bool {
        !matches!(self, Self::InstantLogsSocket)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
