//! Records as Logpush pushes them: which datasets RainLogs takes, and the time each record
//! carries. Jobs RainLogs creates ask for `timestamp_format=unixnano`; RFC 3339 strings are read
//! too (a job edited by hand). An integer that is not plausibly Unix nanoseconds is refused, not
//! guessed: seconds read as nanoseconds would file a record in 1970.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::timestamp::{TimestampError, TimestampFormat, parse_json_timestamp};

/// Unix nanoseconds of 2001-09-09: every real `unixnano` value is above it, every `unix`
/// (seconds) or `unixms` value below it.
const NANOS_FLOOR: i128 = 1_000_000_000_000_000_000;

/// The `firewall_events` fields a RainLogs job asks for: the dataset's long-standing fields,
/// which every plan's jobs carry (newer, add-on fields such as content scanning are left out so
/// a job is never refused for one). `Datetime` dates each event.
pub const LOGPUSH_FIREWALL_FIELDS: &[&str] = &[
    "Action",
    "ClientASN",
    "ClientASNDescription",
    "ClientCountry",
    "ClientIP",
    "ClientIPClass",
    "ClientRefererHost",
    "ClientRefererPath",
    "ClientRefererQuery",
    "ClientRefererScheme",
    "ClientRequestHost",
    "ClientRequestMethod",
    "ClientRequestPath",
    "ClientRequestProtocol",
    "ClientRequestQuery",
    "ClientRequestScheme",
    "ClientRequestUserAgent",
    "Datetime",
    "Description",
    "EdgeColoCode",
    "EdgeResponseStatus",
    "Kind",
    "MatchIndex",
    "Metadata",
    "OriginResponseStatus",
    "OriginatorRayID",
    "RayID",
    "Ref",
    "RuleID",
    "Source",
];

/// A dataset a zone can push to RainLogs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogpushDataset {
    HttpRequests,
    FirewallEvents,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordTimeError {
    #[error("not a JSON object with a `{field}` field: {reason}")]
    Missing { field: &'static str, reason: String },
    #[error(transparent)]
    Timestamp(#[from] TimestampError),
    #[error(
        "`{field}` is {value}, not Unix nanoseconds: the job's timestamp_format must be unixnano or rfc3339"
    )]
    NotNanoseconds { field: &'static str, value: String },
}

impl LogpushDataset {
    pub const ALL: [Self; 2] = [Self::HttpRequests, Self::FirewallEvents];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpRequests => "http_requests",
            Self::FirewallEvents => "firewall_events",
        }
    }

    /// The field every record of the dataset carries its time in.
    pub fn timestamp_field(self) -> &'static str {
        match self {
            Self::HttpRequests => "EdgeStartTimestamp",
            Self::FirewallEvents => "Datetime",
        }
    }

    /// The record's own time, in Unix nanoseconds: what decides its window.
    pub fn record_time_ns(self, line: &[u8]) -> Result<i64, RecordTimeError> {
        #[derive(Deserialize)]
        struct HttpRequest<'a> {
            #[serde(rename = "EdgeStartTimestamp", borrow)]
            time: &'a RawValue,
        }
        #[derive(Deserialize)]
        struct FirewallEvent<'a> {
            #[serde(rename = "Datetime", borrow)]
            time: &'a RawValue,
        }
        let field = self.timestamp_field();
        let missing = |e: serde_json::Error| RecordTimeError::Missing {
            field,
            reason: e.to_string(),
        };
        let raw = match self {
            Self::HttpRequests => serde_json::from_slice::<HttpRequest<'_>>(line)
                .map_err(missing)?
                .time
                .get(),
            Self::FirewallEvents => serde_json::from_slice::<FirewallEvent<'_>>(line)
                .map_err(missing)?
                .time
                .get(),
        };
        let nanos = parse_json_timestamp(raw, TimestampFormat::UnixNano)?.unix_timestamp_nanos();
        if !raw.trim_start().starts_with('"') && nanos < NANOS_FLOOR {
            return Err(RecordTimeError::NotNanoseconds {
                field,
                value: raw.to_owned(),
            });
        }
        i64::try_from(nanos)
            .map_err(|_| RecordTimeError::Timestamp(TimestampError::OutOfRange(raw.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The simulator refuses a job asking for a field its dataset lacks, as Cloudflare does.
    #[test]
    fn the_firewall_job_asks_for_the_fields_the_dataset_has() {
        assert_eq!(
            cf_sim::logpush_firewall_event_fields(),
            LOGPUSH_FIREWALL_FIELDS
        );
    }

    #[test]
    fn each_dataset_is_dated_by_its_own_field() {
        let http = LogpushDataset::HttpRequests;
        assert_eq!(
            http.record_time_ns(br#"{"EdgeStartTimestamp":1768485600123456789,"RayID":"a"}"#),
            Ok(1_768_485_600_123_456_789)
        );
        let firewall = LogpushDataset::FirewallEvents;
        assert_eq!(
            firewall.record_time_ns(br#"{"Datetime":"2026-01-15T14:00:00Z","RayID":"a"}"#),
            Ok(1_768_485_600_000_000_000)
        );
        assert!(matches!(
            firewall.record_time_ns(br#"{"datetime":"2026-01-15T14:00:00Z"}"#),
            Err(RecordTimeError::Missing {
                field: "Datetime",
                ..
            })
        ));
    }

    #[test]
    fn seconds_are_refused_rather_than_read_as_nanoseconds() {
        let error = LogpushDataset::HttpRequests
            .record_time_ns(br#"{"EdgeStartTimestamp":1768485600}"#)
            .expect_err("seconds");
        assert!(error.to_string().contains("timestamp_format"), "{error}");
        assert!(
            LogpushDataset::HttpRequests
                .record_time_ns(br#"{"EdgeStartTimestamp":1.5e18}"#)
                .is_err()
        );
    }

    #[test]
    fn names_parse_back() {
        for dataset in LogpushDataset::ALL {
            assert_eq!(LogpushDataset::parse(dataset.as_str()), Some(dataset));
        }
        assert_eq!(LogpushDataset::parse("dns_logs"), None);
    }
}
