//! The small enumerations inside an entry and their one-number encodings.

use super::EntryError;

/// How the records of a window were obtained from Cloudflare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CollectionMethod {
    Logpull = 1,
    InstantLogs = 2,
    Graphql = 3,
    Logpush = 4,
}

impl CollectionMethod {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Result<Self, EntryError> {
        Ok(match code {
            1 => Self::Logpull,
            2 => Self::InstantLogs,
            3 => Self::Graphql,
            4 => Self::Logpush,
            other => {
                return Err(EntryError::InvalidField {
                    field: "method",
                    reason: format!("unknown collection method {other}"),
                });
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logpull => "logpull",
            Self::InstantLogs => "instant_logs",
            Self::Graphql => "graphql",
            Self::Logpush => "logpush",
        }
    }
}

/// Why a window has no data. The set is closed in entry version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GapReason {
    /// The source kept failing for this window (HTTP errors, "Error streaming data", …).
    SourceError = 1,
    /// The window is older than the source keeps data (e.g. Logpull's retention).
    SourceRetentionExpired = 2,
    /// The method is not available for the zone (plan, EU metadata boundary, disabled).
    SourceUnavailable = 3,
    /// A live session (Instant Logs) was not connected for this window.
    LiveSessionLost = 4,
    /// RainLogs itself was not collecting and the source cannot replay the window.
    CollectorOutage = 5,
    /// An operator declared the window skipped.
    OperatorSkip = 6,
}

impl GapReason {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Result<Self, EntryError> {
        Ok(match code {
            1 => Self::SourceError,
            2 => Self::SourceRetentionExpired,
            3 => Self::SourceUnavailable,
            4 => Self::LiveSessionLost,
            5 => Self::CollectorOutage,
            6 => Self::OperatorSkip,
            other => {
                return Err(EntryError::InvalidField {
                    field: "gap_reason",
                    reason: format!("unknown gap reason {other}"),
                });
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SourceError => "source_error",
            Self::SourceRetentionExpired => "source_retention_expired",
            Self::SourceUnavailable => "source_unavailable",
            Self::LiveSessionLost => "live_session_lost",
            Self::CollectorOutage => "collector_outage",
            Self::OperatorSkip => "operator_skip",
        }
    }
}

/// How the stored records relate to the records the source saw.
///
/// Encoded as one u32: `0` = not applicable (gap, prune, key), `1..=0xFFFF_FFFE` = each stored
/// record stands for N source records (1 = unsampled), `0xFFFF_FFFF` = varies per record (each
/// record carries its own interval, as GraphQL adaptive sampling's `sampleInterval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sampling {
    /// One stored record per `interval` source records; `interval` is 1 when unsampled.
    OneIn(u32),
    /// The interval is given per record inside the data.
    PerRecord,
}

impl Sampling {
    pub const NOT_APPLICABLE_CODE: u32 = 0;
    pub const PER_RECORD_CODE: u32 = u32::MAX;
    pub const UNSAMPLED: Self = Self::OneIn(1);

    pub fn code(self) -> u32 {
        match self {
            Self::OneIn(interval) => interval,
            Self::PerRecord => Self::PER_RECORD_CODE,
        }
    }

    /// Decodes a code of an entry kind that has sampling (0 is not allowed there).
    pub fn from_code(code: u32) -> Result<Self, EntryError> {
        match code {
            Self::NOT_APPLICABLE_CODE => Err(EntryError::InvalidField {
                field: "sampling",
                reason: "0 (not applicable) is not allowed for archive/empty entries".into(),
            }),
            Self::PER_RECORD_CODE => Ok(Self::PerRecord),
            interval => Ok(Self::OneIn(interval)),
        }
    }

    /// Whether the value has a valid encoding (an interval of 0 or u32::MAX has none).
    pub fn is_valid(self) -> bool {
        match self {
            Self::OneIn(interval) => {
                interval != Self::NOT_APPLICABLE_CODE && interval != Self::PER_RECORD_CODE
            }
            Self::PerRecord => true,
        }
    }
}
