//! Ground truth: every record Cloudflare holds for a receive window, in canonical (byte-sorted) order.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::state::Shared;
use crate::traffic::fields::{DEFAULT_FIELDS, Field};
use crate::traffic::firewall::{
    FIREWALL_FIELDS, LOGPUSH_FIREWALL_FIELDS, firewall_event, project, render_logpush_firewall,
};
use crate::traffic::http::{HttpRecord, HttpRenderer};
use crate::traffic::render::{TimestampFormat, rewrite_log4shell};

/// Which dataset a truth query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dataset {
    #[default]
    HttpRequests,
    FirewallEvents,
}

/// Which API's rendering a truth query imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordForm {
    /// As the pull APIs return it: Logpull for `http_requests`, GraphQL `firewallEventsAdaptive` (camelCase
    /// names, `datetime` always RFC 3339) for `firewall_events`.
    #[default]
    Api,
    /// As Logpush pushes it. `http_requests` is the same as `Api`; `firewall_events` uses Logpush's PascalCase
    /// names (`Datetime`, `RayID`, …, see `logpush_firewall_event_fields()`) with `Datetime` in `timestamps`.
    Logpush,
}

/// A receive window `[start, end)` of one zone, rendered like Logpull would with the same options.
#[derive(Clone, Debug, PartialEq)]
pub struct TruthQuery {
    pub zone: String,
    pub dataset: Dataset,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    /// Field names; `None` means Logpull's default 9 fields (or every firewall field of the form).
    pub fields: Option<Vec<String>>,
    /// `http_requests` timestamps, and `Datetime` of Logpush-form firewall events (GraphQL's `datetime` ignores it).
    pub timestamps: TimestampFormat,
    /// Apply the `CVE-2021-44228=true` rewrite.
    pub log4shell_rewrite: bool,
    /// The pull APIs' rendering (the default) or Logpush's.
    pub form: RecordForm,
}

impl TruthQuery {
    pub fn http(zone: &str, start: OffsetDateTime, end: OffsetDateTime) -> Self {
        Self {
            zone: zone.to_owned(),
            dataset: Dataset::HttpRequests,
            start,
            end,
            fields: None,
            timestamps: TimestampFormat::Unixnano,
            log4shell_rewrite: false,
            form: RecordForm::Api,
        }
    }

    /// `dataset` of `[start, end)` as a Logpush job with no `field_names` and `timestamp_format: unixnano` pushes
    /// it (set `fields`, `timestamps` and `log4shell_rewrite` to match other job settings).
    pub fn logpush(
        zone: &str,
        dataset: Dataset,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Self {
        Self {
            dataset,
            form: RecordForm::Logpush,
            ..Self::http(zone, start, end)
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TruthError {
    #[error("unknown zone {0}")]
    UnknownZone(String),
    #[error("unknown field {0}")]
    UnknownField(String),
}

/// Seconds `s` whose receive instant `s * 1e9 ns` lies in `[start, end)`.
pub(crate) fn window_seconds(start_ns: i128, end_ns: i128) -> std::ops::Range<i64> {
    let first =
        start_ns.div_euclid(1_000_000_000) + i128::from(start_ns.rem_euclid(1_000_000_000) != 0);
    let last = end_ns.div_euclid(1_000_000_000) + i128::from(end_ns.rem_euclid(1_000_000_000) != 0);
    (first as i64)..(last.max(first) as i64)
}

pub(crate) fn parse_http_fields(names: &[String]) -> Result<Vec<Field>, TruthError> {
    names
        .iter()
        .map(|n| Field::from_name(n).ok_or_else(|| TruthError::UnknownField(n.clone())))
        .collect()
}

/// Canonical NDJSON lines (each ending in `\n`), sorted by bytes.
pub(crate) fn truth_lines(shared: &Shared, q: &TruthQuery) -> Result<Vec<Vec<u8>>, TruthError> {
    let zone = shared
        .zone_traffic(&q.zone)
        .ok_or_else(|| TruthError::UnknownZone(q.zone.clone()))?;
    let now_s = shared.now().unix_timestamp();
    let held = (now_s - 168 * 3600)..now_s;
    let seconds = window_seconds(q.start.unix_timestamp_nanos(), q.end.unix_timestamp_nanos());
    let seconds = seconds.start.max(held.start)..seconds.end.min(held.end);
    let mut lines = Vec::new();
    match q.dataset {
        Dataset::HttpRequests => {
            let fields = match &q.fields {
                Some(names) => parse_http_fields(names)?,
                None => DEFAULT_FIELDS.to_vec(),
            };
            let renderer = HttpRenderer::new(fields, q.timestamps, q.log4shell_rewrite);
            for second in seconds {
                for index in 0..zone.http_count(second) {
                    let mut line = Vec::with_capacity(256);
                    renderer.render(
                        &zone,
                        &HttpRecord::generate(&zone, second, index),
                        None,
                        &mut line,
                    );
                    lines.push(line);
                }
            }
        }
        Dataset::FirewallEvents if q.form == RecordForm::Logpush => {
            if let Some(bad) = q
                .fields
                .iter()
                .flatten()
                .find(|f| !LOGPUSH_FIREWALL_FIELDS.contains(&f.as_str()))
            {
                return Err(TruthError::UnknownField(bad.clone()));
            }
            for second in seconds {
                for index in 0..zone.firewall_count(second) {
                    let mut line = Vec::with_capacity(512);
                    render_logpush_firewall(
                        &zone,
                        second,
                        index,
                        q.fields.as_deref(),
                        q.timestamps,
                        q.log4shell_rewrite,
                        &mut line,
                    );
                    lines.push(line);
                }
            }
        }
        Dataset::FirewallEvents => {
            if let Some(bad) = q
                .fields
                .iter()
                .flatten()
                .find(|f| !FIREWALL_FIELDS.contains(&f.as_str()))
            {
                return Err(TruthError::UnknownField(bad.clone()));
            }
            for second in seconds {
                for index in 0..zone.firewall_count(second) {
                    let event = project(&firewall_event(&zone, second, index), q.fields.as_deref());
                    let mut line = serde_json::to_vec(&event).unwrap_or_default();
                    if q.log4shell_rewrite {
                        rewrite_log4shell(&mut line);
                    }
                    line.push(b'\n');
                    lines.push(line);
                }
            }
        }
    }
    lines.sort_unstable();
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::window_seconds;

    #[test]
    fn window_is_start_inclusive_end_exclusive() {
        assert_eq!(window_seconds(10_000_000_000, 20_000_000_000), 10..20);
        assert_eq!(window_seconds(10_000_000_001, 20_000_000_001), 11..21);
        assert_eq!(window_seconds(20_000_000_000, 20_000_000_000), 20..20);
    }
}
