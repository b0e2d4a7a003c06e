//! GraphQL Analytics: `firewallEventsAdaptive` rows (raw, byte-exact), the per-zone `settings` limits, and the two
//! aggregates the collector cross-checks Logpush with: requests per minute (`httpRequestsAdaptiveGroups`) and
//! Logpush upload health (`logpushHealthAdaptiveGroups`).
//!
//! The response is `{data, errors}`, and errors routinely arrive with HTTP 200, so `errors` is always inspected.

use crate::classify::{graphql_error, graphql_errors};
use crate::client::{RequestSpec, TokenClient};
use crate::error::CfError;
use crate::route::Endpoint;
use bytes::Bytes;
use reqwest::Method;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// The fields of the docs' firewall-events tutorial, all available on every plan.
pub const DEFAULT_FIREWALL_FIELDS: &[&str] = &[
    "action",
    "clientAsn",
    "clientCountryName",
    "clientIP",
    "clientRequestPath",
    "clientRequestQuery",
    "datetime",
    "rayName",
    "ruleId",
    "source",
    "userAgent",
    "matchIndex",
    "sampleInterval",
];

/// One page: `[since, until)` on the event's `datetime`, ordered by `datetime` ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallEventsQuery {
    pub zone_tag: String,
    pub since: OffsetDateTime,
    pub until: OffsetDateTime,
    pub limit: u32,
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallEventsPage {
    /// Each row's JSON object exactly as Cloudflare sent it.
    pub rows: Vec<Bytes>,
    /// `rows.len() == limit`: there may be more rows; split the window and query again (there are no cursors).
    pub limit_reached: bool,
}

/// `settings.firewallEventsAdaptive` for one zone: the plan's real limits, read at runtime.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirewallEventsSettings {
    pub enabled: bool,
    #[serde(default)]
    pub available_fields: Vec<String>,
    /// Longest window per query, seconds.
    pub max_duration: u64,
    pub max_number_of_fields: u32,
    pub max_page_size: u32,
    /// Oldest data served, seconds before now.
    pub not_older_than: u64,
}

/// Longest window one grouped query covers. An hour is 60 minute groups (61 when the window is not minute-aligned),
/// far below every plan's page size and `maxDuration`, so a request count never needs a second page.
pub const GROUPS_QUERY_WINDOW: Duration = Duration::hours(1);

/// Groups asked for per `logpushHealthAdaptiveGroups` query. A full page may hide more groups, so the window is
/// split in two (on a minute boundary) and asked again.
pub const LOGPUSH_HEALTH_PAGE: u32 = 1_000;

/// Requests Cloudflare counted for one minute of a zone. `httpRequestsAdaptiveGroups` is adaptively sampled:
/// on busy zones `count` is an estimate, so compare it with a tolerance, never for equality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestsPerMinute {
    /// Start of the minute (UTC).
    pub minute: OffsetDateTime,
    pub count: u64,
}

/// Logpush upload attempts of one job in one minute with one outcome (`logpushHealthAdaptiveGroups`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogpushHealth {
    /// Start of the minute (UTC) the attempts were made in.
    pub minute: OffsetDateTime,
    pub job_id: u64,
    /// The destination's HTTP status, 2xx meaning uploaded. Cloudflare also reports codes of its own here, such as
    /// 1105 when the destination's host name does not resolve (the simulator reports 0 when nothing answered).
    pub status: u32,
    /// `s3`, `http`, … as Cloudflare names the destination kind.
    pub destination_type: String,
    /// No further attempt followed: with a 2xx status the batches were delivered, otherwise they are lost for good.
    pub final_upload: bool,
    /// Upload attempts (`count`).
    pub uploads: u64,
    /// Log lines, uncompressed bytes and bytes sent of the attempted batches (`sum`).
    pub records: u64,
    pub bytes: u64,
    pub bytes_compressed: u64,
}

impl LogpushHealth {
    /// The attempts delivered their batches.
    pub fn delivered(&self) -> bool {
        self.final_upload && (200..300).contains(&self.status)
    }

    /// The attempts were the last for their batches and failed: their records never reach the destination.
    pub fn lost(&self) -> bool {
        self.final_upload && !(200..300).contains(&self.status)
    }
}

#[derive(Deserialize)]
struct DataOnly<'a> {
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Viewer<T> {
    viewer: Zones<T>,
}

#[derive(Deserialize)]
struct Zones<T> {
    zones: Vec<T>,
}

#[derive(Deserialize)]
struct FirewallZone<'a> {
    #[serde(rename = "firewallEventsAdaptive", borrow)]
    rows: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct SettingsZone {
    settings: SettingsNode,
}

#[derive(Deserialize)]
struct SettingsNode {
    #[serde(rename = "firewallEventsAdaptive")]
    firewall_events_adaptive: Option<FirewallEventsSettings>,
}

#[derive(Deserialize)]
struct RequestsZone {
    #[serde(rename = "httpRequestsAdaptiveGroups")]
    rows: Vec<RequestsRow>,
}

#[derive(Deserialize)]
struct RequestsRow {
    count: u64,
    dimensions: MinuteDimension,
}

#[derive(Deserialize)]
struct MinuteDimension {
    #[serde(rename = "datetimeMinute")]
    minute: String,
}

#[derive(Deserialize)]
struct HealthZone {
    #[serde(rename = "logpushHealthAdaptiveGroups")]
    rows: Vec<HealthRow>,
}

#[derive(Deserialize)]
struct HealthRow {
    count: u64,
    sum: HealthSum,
    dimensions: HealthDimensions,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthSum {
    bytes: u64,
    bytes_compressed: u64,
    records: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthDimensions {
    #[serde(rename = "datetimeMinute")]
    minute: String,
    job_id: u64,
    status: u32,
    destination_type: String,
    #[serde(rename = "final", deserialize_with = "flag")]
    final_upload: bool,
}

/// `final` is a 0/1 integer in the clients seen using the real node; a boolean is accepted as well.
fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(u64),
    }
    match Flag::deserialize(deserializer)? {
        Flag::Bool(b) => Ok(b),
        Flag::Int(0) => Ok(false),
        Flag::Int(1) => Ok(true),
        Flag::Int(n) => Err(serde::de::Error::custom(format!(
            "final must be 0 or 1, got {n}"
        ))),
    }
}

fn check_identifier(name: &str) -> Result<(), CfError> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(CfError::InvalidRequest(format!(
            "GraphQL field {name:?} is not a plain identifier"
        )));
    }
    Ok(())
}

fn rfc3339(t: OffsetDateTime) -> Result<String, CfError> {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|e| CfError::InvalidRequest(e.to_string()))
}

impl FirewallEventsQuery {
    pub fn new(
        zone_tag: impl Into<String>,
        since: OffsetDateTime,
        until: OffsetDateTime,
        limit: u32,
    ) -> Self {
        Self {
            zone_tag: zone_tag.into(),
            since,
            until,
            limit,
            fields: DEFAULT_FIREWALL_FIELDS
                .iter()
                .map(|f| (*f).to_owned())
                .collect(),
        }
    }

    fn document(&self) -> Result<(String, serde_json::Value), CfError> {
        if self.fields.is_empty() || self.limit == 0 || self.until <= self.since {
            return Err(CfError::InvalidRequest(
                "firewall events query needs fields, a limit and a non-empty window".into(),
            ));
        }
        for field in &self.fields {
            check_identifier(field)?;
        }
        let query = format!(
            "query FirewallEvents($zoneTag: string, $filter: FirewallEventsAdaptiveFilter_InputObject) {{ viewer {{ zones(filter: {{ zoneTag: $zoneTag }}) {{ firewallEventsAdaptive(filter: $filter, limit: {limit}, orderBy: [datetime_ASC]) {{ {fields} }} }} }} }}",
            limit = self.limit,
            fields = self.fields.join(" "),
        );
        let variables = serde_json::json!({
            "zoneTag": self.zone_tag,
            "filter": { "datetime_geq": rfc3339(self.since)?, "datetime_lt": rfc3339(self.until)? },
        });
        Ok((query, variables))
    }
}

/// Minute buckets `[since, until)` touches: the most groups a per-minute query can return.
fn minutes_touched(since: OffsetDateTime, until: OffsetDateTime) -> u32 {
    let first = since.unix_timestamp().div_euclid(60);
    let last = (until.unix_timestamp_nanos() - 1).div_euclid(60_000_000_000) as i64;
    u32::try_from(last - first + 1).unwrap_or(u32::MAX)
}

fn minute_floor(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_second(0)
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(t)
}

fn check_window(since: OffsetDateTime, until: OffsetDateTime) -> Result<(), CfError> {
    if until <= since {
        return Err(CfError::InvalidRequest(format!(
            "GraphQL window is empty: {since} .. {until}"
        )));
    }
    Ok(())
}

/// `[since, until)` in consecutive pieces of at most [`GROUPS_QUERY_WINDOW`].
fn chunks(since: OffsetDateTime, until: OffsetDateTime) -> Vec<(OffsetDateTime, OffsetDateTime)> {
    let mut out = Vec::new();
    let mut from = since;
    while from < until {
        let to = (from + GROUPS_QUERY_WINDOW).min(until);
        out.push((from, to));
        from = to;
    }
    out
}

/// A minute boundary strictly inside `(from, to)` near its middle, if the window spans more than one minute.
fn split_at_minute(from: OffsetDateTime, to: OffsetDateTime) -> Option<OffsetDateTime> {
    let middle = minute_floor(from + (to - from) / 2);
    let mid = if middle > from {
        middle
    } else {
        minute_floor(from) + Duration::MINUTE
    };
    (mid < to).then_some(mid)
}

/// A `datetimeMinute` value, which must name a minute `[from, to)` touches.
fn parse_minute(
    text: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
    node: &str,
) -> Result<OffsetDateTime, CfError> {
    let minute = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| CfError::Protocol {
        endpoint: Endpoint::Graphql,
        detail: format!("{node}: datetimeMinute {text:?}: {e}"),
    })?;
    if minute < minute_floor(from) || minute >= to {
        return Err(CfError::Protocol {
            endpoint: Endpoint::Graphql,
            detail: format!("{node}: minute {text} is outside the window {from} .. {to}"),
        });
    }
    Ok(minute.to_offset(time::UtcOffset::UTC))
}

fn requests_document(limit: u32) -> String {
    format!(
        "query RequestsPerMinute($zoneTag: string, $since: Time!, $until: Time!) {{ viewer {{ zones(filter: {{ zoneTag: $zoneTag }}) {{ httpRequestsAdaptiveGroups(limit: {limit}, filter: {{ datetime_geq: $since, datetime_lt: $until }}, orderBy: [datetimeMinute_ASC]) {{ count dimensions {{ datetimeMinute }} }} }} }} }}"
    )
}

fn health_document(job_id: Option<u64>) -> String {
    // The job id is a number we format ourselves, so it can go into the document without a typed variable.
    let job = job_id
        .map(|id| format!(", jobId: {id}"))
        .unwrap_or_default();
    format!(
        "query LogpushHealth($zoneTag: string, $since: Time!, $until: Time!) {{ viewer {{ zones(filter: {{ zoneTag: $zoneTag }}) {{ logpushHealthAdaptiveGroups(limit: {LOGPUSH_HEALTH_PAGE}, filter: {{ datetime_geq: $since, datetime_lt: $until{job} }}, orderBy: [datetimeMinute_ASC]) {{ count sum {{ bytes bytesCompressed records }} dimensions {{ datetimeMinute jobId status destinationType final }} }} }} }} }}"
    )
}

fn window_variables(
    zone_tag: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<serde_json::Value, CfError> {
    Ok(serde_json::json!({ "zoneTag": zone_tag, "since": rfc3339(from)?, "until": rfc3339(to)? }))
}

fn first_zone<T>(data: &RawValue, zone_tag: &str, node: &str) -> Result<T, CfError>
where
    T: for<'de> Deserialize<'de>,
{
    let parsed: Viewer<T> = serde_json::from_str(data.get()).map_err(|e| CfError::Protocol {
        endpoint: Endpoint::Graphql,
        detail: format!("{node}: {e}"),
    })?;
    parsed
        .viewer
        .zones
        .into_iter()
        .next()
        .ok_or_else(|| zone_not_visible(zone_tag))
}

type HealthKey = (OffsetDateTime, u64, u32, String, bool);

const SETTINGS_QUERY: &str = "query Settings($zoneTag: string) { viewer { zones(filter: { zoneTag: $zoneTag }) { settings { firewallEventsAdaptive { enabled availableFields maxDuration maxNumberOfFields maxPageSize notOlderThan } } } } }";

impl TokenClient {
    /// Runs a GraphQL document and returns `data` as raw JSON. Any `errors[]` entry fails the call, whatever the
    /// HTTP status (budget errors → `RateLimited{Graphql}`, access → `Auth`, limits/parse → `BadQuery`).
    pub async fn graphql(
        &self,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<Box<RawValue>, CfError> {
        let spec = self.spec(Endpoint::Graphql, None);
        let request = RequestSpec {
            method: Method::POST,
            json: Some(serde_json::json!({ "query": query, "variables": variables })),
            ..RequestSpec::get(self.url(&["graphql"]))
        };
        // Errors inside a 200 must go through the retry layer too (budget errors are retryable), so classify inside.
        self.policies()
            .run(&spec, || async {
                let response = self.send(spec.endpoint, &request).await?;
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body = response
                    .bytes()
                    .await
                    .map_err(|source| CfError::Transport {
                        phase: crate::error::TransportPhase::Body,
                        source,
                    })?;
                if let Some(errors) = graphql_errors(&body) {
                    return Err(graphql_error(status, &headers, errors));
                }
                let parsed: DataOnly<'_> =
                    serde_json::from_slice(&body).map_err(|e| CfError::Protocol {
                        endpoint: Endpoint::Graphql,
                        detail: format!("not a GraphQL response: {e}"),
                    })?;
                parsed
                    .data
                    .map(RawValue::to_owned)
                    .ok_or_else(|| CfError::Protocol {
                        endpoint: Endpoint::Graphql,
                        detail: "no data and no errors".into(),
                    })
            })
            .await
    }

    /// One page of `firewallEventsAdaptive` for a zone.
    pub async fn firewall_events(
        &self,
        query: &FirewallEventsQuery,
    ) -> Result<FirewallEventsPage, CfError> {
        let (document, variables) = query.document()?;
        let data = self.graphql(&document, variables).await?;
        let parsed: Viewer<FirewallZone<'_>> =
            serde_json::from_str(data.get()).map_err(|e| CfError::Protocol {
                endpoint: Endpoint::Graphql,
                detail: format!("firewallEventsAdaptive: {e}"),
            })?;
        let zone = parsed
            .viewer
            .zones
            .into_iter()
            .next()
            .ok_or_else(|| zone_not_visible(&query.zone_tag))?;
        let rows: Vec<Bytes> = zone
            .rows
            .iter()
            .map(|raw| Bytes::copy_from_slice(raw.get().as_bytes()))
            .collect();
        Ok(FirewallEventsPage {
            limit_reached: rows.len() >= query.limit as usize,
            rows,
        })
    }

    /// The zone's `firewallEventsAdaptive` limits (plan-dependent; never hard-code them).
    pub async fn firewall_events_settings(
        &self,
        zone_tag: &str,
    ) -> Result<FirewallEventsSettings, CfError> {
        let data = self
            .graphql(SETTINGS_QUERY, serde_json::json!({ "zoneTag": zone_tag }))
            .await?;
        let parsed: Viewer<SettingsZone> =
            serde_json::from_str(data.get()).map_err(|e| CfError::Protocol {
                endpoint: Endpoint::Graphql,
                detail: format!("settings: {e}"),
            })?;
        let zone = parsed
            .viewer
            .zones
            .into_iter()
            .next()
            .ok_or_else(|| zone_not_visible(zone_tag))?;
        zone.settings
            .firewall_events_adaptive
            .ok_or_else(|| CfError::Protocol {
                endpoint: Endpoint::Graphql,
                detail: "settings.firewallEventsAdaptive missing".into(),
            })
    }
}

impl TokenClient {
    /// Requests per minute of a zone in `[since, until)`, oldest first; minutes without requests are absent (zero).
    /// A minute cut by `since` or `until` counts only its part inside the window.
    ///
    /// One query per hour of window ([`GROUPS_QUERY_WINDOW`]), each spending one unit of the GraphQL budget
    /// (300 per 5 minutes): a day is 24 queries. The zone's plan bounds how far back `since` may go (`settings`).
    pub async fn http_requests_per_minute(
        &self,
        zone_tag: &str,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<RequestsPerMinute>, CfError> {
        const NODE: &str = "httpRequestsAdaptiveGroups";
        check_window(since, until)?;
        // Chunk edges inside a minute give that minute to two queries; their parts add up.
        let mut minutes: BTreeMap<OffsetDateTime, u64> = BTreeMap::new();
        for (from, to) in chunks(since, until) {
            let limit = minutes_touched(from, to);
            let data = self
                .graphql(
                    &requests_document(limit),
                    window_variables(zone_tag, from, to)?,
                )
                .await?;
            let zone: RequestsZone = first_zone(&data, zone_tag, NODE)?;
            if zone.rows.len() > limit as usize {
                return Err(CfError::Protocol {
                    endpoint: Endpoint::Graphql,
                    detail: format!("{NODE}: {} groups for {limit} minutes", zone.rows.len()),
                });
            }
            for row in zone.rows {
                let minute = parse_minute(&row.dimensions.minute, from, to, NODE)?;
                let total = minutes.entry(minute).or_default();
                *total = total.saturating_add(row.count);
            }
        }
        Ok(minutes
            .into_iter()
            .map(|(minute, count)| RequestsPerMinute { minute, count })
            .collect())
    }

    /// Logpush upload health of a zone's jobs (of one job with `job_id`) in `[since, until)`: one entry per minute,
    /// job, status, destination type and finality, ordered by those. Delivered lines are the `records` of
    /// [`LogpushHealth::delivered`] entries, lost lines those of [`LogpushHealth::lost`] ones.
    ///
    /// One query per hour of window; an hour holding [`LOGPUSH_HEALTH_PAGE`] groups or more is split and asked again,
    /// down to a single minute (more groups than that in one minute is an error).
    pub async fn logpush_health(
        &self,
        zone_tag: &str,
        job_id: Option<u64>,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<LogpushHealth>, CfError> {
        const NODE: &str = "logpushHealthAdaptiveGroups";
        check_window(since, until)?;
        let document = health_document(job_id);
        let mut groups: BTreeMap<HealthKey, LogpushHealth> = BTreeMap::new();
        let mut windows = chunks(since, until);
        windows.reverse();
        while let Some((from, to)) = windows.pop() {
            let data = self
                .graphql(&document, window_variables(zone_tag, from, to)?)
                .await?;
            let zone: HealthZone = first_zone(&data, zone_tag, NODE)?;
            if zone.rows.len() >= LOGPUSH_HEALTH_PAGE as usize {
                let Some(mid) = split_at_minute(from, to) else {
                    return Err(CfError::Protocol {
                        endpoint: Endpoint::Graphql,
                        detail: format!(
                            "{NODE}: {LOGPUSH_HEALTH_PAGE} groups or more within the minute from {from}"
                        ),
                    });
                };
                windows.push((mid, to));
                windows.push((from, mid));
                continue;
            }
            for row in zone.rows {
                let d = row.dimensions;
                let minute = parse_minute(&d.minute, from, to, NODE)?;
                let key = (
                    minute,
                    d.job_id,
                    d.status,
                    d.destination_type.clone(),
                    d.final_upload,
                );
                let entry = groups.entry(key).or_insert_with(|| LogpushHealth {
                    minute,
                    job_id: d.job_id,
                    status: d.status,
                    destination_type: d.destination_type,
                    final_upload: d.final_upload,
                    uploads: 0,
                    records: 0,
                    bytes: 0,
                    bytes_compressed: 0,
                });
                entry.uploads = entry.uploads.saturating_add(row.count);
                entry.records = entry.records.saturating_add(row.sum.records);
                entry.bytes = entry.bytes.saturating_add(row.sum.bytes);
                entry.bytes_compressed = entry
                    .bytes_compressed
                    .saturating_add(row.sum.bytes_compressed);
            }
        }
        Ok(groups.into_values().collect())
    }
}

/// GraphQL answers an inaccessible zone with an empty `zones` list rather than an error.
fn zone_not_visible(zone_tag: &str) -> CfError {
    CfError::Auth {
        status: 200,
        errors: crate::error::ApiMessages(vec![crate::error::ApiMessage::text(format!(
            "zone {zone_tag} is not visible to this token in GraphQL"
        ))]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn document_uses_variables_for_zone_and_window() {
        let q = FirewallEventsQuery::new(
            "abc",
            datetime!(2026-01-15 11:00 UTC),
            datetime!(2026-01-15 12:00 UTC),
            10_000,
        );
        let (doc, vars) = q.document().unwrap();
        assert!(doc.contains(
            "firewallEventsAdaptive(filter: $filter, limit: 10000, orderBy: [datetime_ASC])"
        ));
        assert!(doc.contains("sampleInterval"));
        assert_eq!(vars["zoneTag"], "abc");
        assert_eq!(vars["filter"]["datetime_geq"], "2026-01-15T11:00:00Z");
        assert_eq!(vars["filter"]["datetime_lt"], "2026-01-15T12:00:00Z");
    }

    #[test]
    fn field_names_cannot_inject_into_the_document() {
        let mut q = FirewallEventsQuery::new(
            "abc",
            datetime!(2026-01-15 11:00 UTC),
            datetime!(2026-01-15 12:00 UTC),
            10,
        );
        q.fields = vec!["action } budget {".into()];
        assert!(matches!(q.document(), Err(CfError::InvalidRequest(_))));
    }

    #[test]
    fn rows_are_kept_byte_exact() {
        let data = r#"{"viewer":{"zones":[{"firewallEventsAdaptive":[{"action":"block","datetime":"2026-01-15T11:00:01Z","sampleInterval":1},{"clientAsn":"5089",  "x":1.50}]}]}}"#;
        let parsed: Viewer<FirewallZone<'_>> = serde_json::from_str(data).unwrap();
        let rows = &parsed.viewer.zones[0].rows;
        assert_eq!(rows[1].get(), r#"{"clientAsn":"5089",  "x":1.50}"#);
    }

    #[test]
    fn per_minute_queries_ask_for_every_minute_they_touch() {
        let at = |t| datetime!(2026-01-15 11:00 UTC) + Duration::seconds(t);
        assert_eq!(minutes_touched(at(0), at(3600)), 60);
        assert_eq!(minutes_touched(at(30), at(3630)), 61);
        assert_eq!(minutes_touched(at(0), at(1)), 1);
        assert_eq!(minutes_touched(at(59), at(61)), 2);
        assert!(requests_document(61).contains(
            "httpRequestsAdaptiveGroups(limit: 61, filter: { datetime_geq: $since, datetime_lt: $until }, orderBy: [datetimeMinute_ASC]) { count dimensions { datetimeMinute } }"
        ));
        let pieces = chunks(at(30), at(3 * 3600));
        assert_eq!(
            pieces,
            [
                (at(30), at(3630)),
                (at(3630), at(7230)),
                (at(7230), at(10_800))
            ]
        );
        assert!(matches!(
            check_window(at(5), at(5)),
            Err(CfError::InvalidRequest(_))
        ));
    }

    #[test]
    fn health_windows_split_on_minutes() {
        let at = |t| datetime!(2026-01-15 11:00 UTC) + Duration::seconds(t);
        assert_eq!(split_at_minute(at(0), at(3600)), Some(at(1800)));
        assert_eq!(split_at_minute(at(10), at(130)), Some(at(60)));
        assert_eq!(split_at_minute(at(10), at(70)), Some(at(60)));
        assert_eq!(split_at_minute(at(0), at(60)), None);
        assert_eq!(split_at_minute(at(10), at(50)), None);
        assert!(
            health_document(Some(7))
                .contains("filter: { datetime_geq: $since, datetime_lt: $until, jobId: 7 }")
        );
        assert!(health_document(None).contains("datetime_lt: $until }"));
    }

    #[test]
    fn health_rows_parse_with_integer_or_boolean_final() {
        let data = r#"{"viewer":{"zones":[{"logpushHealthAdaptiveGroups":[
            {"count":2,"sum":{"bytes":100,"bytesCompressed":40,"records":3},"dimensions":{"datetimeMinute":"2026-01-15T11:01:00Z","jobId":7,"status":503,"destinationType":"s3","final":0}},
            {"count":1,"sum":{"bytes":100,"bytesCompressed":40,"records":3},"dimensions":{"datetimeMinute":"2026-01-15T11:02:00Z","jobId":7,"status":200,"destinationType":"s3","final":true}}]}]}}"#;
        let raw = RawValue::from_string(data.into()).unwrap();
        let zone: HealthZone = first_zone(&raw, "z", "node").unwrap();
        assert_eq!(zone.rows[0].count, 2);
        assert!(!zone.rows[0].dimensions.final_upload);
        assert!(zone.rows[1].dimensions.final_upload);
        assert_eq!(zone.rows[1].sum.bytes_compressed, 40);
        let bad = data.replace("\"final\":0", "\"final\":2");
        let raw = RawValue::from_string(bad).unwrap();
        assert!(first_zone::<HealthZone>(&raw, "z", "node").is_err());
        // Counts are integers: a fractional estimate is a protocol error, not a silent rounding.
        let raw = RawValue::from_string(
            r#"{"viewer":{"zones":[{"httpRequestsAdaptiveGroups":[{"count":1.5,"dimensions":{"datetimeMinute":"2026-01-15T11:01:00Z"}}]}]}}"#.into(),
        )
        .unwrap();
        assert!(matches!(
            first_zone::<RequestsZone>(&raw, "z", "node"),
            Err(CfError::Protocol { .. })
        ));
        let raw = RawValue::from_string(r#"{"viewer":{"zones":[]}}"#.into()).unwrap();
        assert!(matches!(
            first_zone::<RequestsZone>(&raw, "z", "node"),
            Err(CfError::Auth { .. })
        ));
    }

    #[test]
    fn minutes_outside_the_window_are_refused() {
        let from = datetime!(2026-01-15 11:00:30 UTC);
        let to = datetime!(2026-01-15 11:10 UTC);
        assert_eq!(
            parse_minute("2026-01-15T11:00:00Z", from, to, "n").unwrap(),
            datetime!(2026-01-15 11:00 UTC)
        );
        assert_eq!(
            parse_minute("2026-01-15T12:05:00+01:00", from, to, "n").unwrap(),
            datetime!(2026-01-15 11:05 UTC)
        );
        assert!(parse_minute("2026-01-15T11:10:00Z", from, to, "n").is_err());
        assert!(parse_minute("2026-01-15T10:59:00Z", from, to, "n").is_err());
        assert!(parse_minute("yesterday", from, to, "n").is_err());
    }

    #[test]
    fn health_outcomes() {
        let mut row = LogpushHealth {
            minute: datetime!(2026-01-15 11:00 UTC),
            job_id: 1,
            status: 200,
            destination_type: "s3".into(),
            final_upload: true,
            uploads: 1,
            records: 10,
            bytes: 1,
            bytes_compressed: 1,
        };
        assert!(row.delivered() && !row.lost());
        row.status = 1105;
        assert!(row.lost() && !row.delivered());
        row.final_upload = false;
        assert!(
            !row.lost() && !row.delivered(),
            "a retried attempt is neither"
        );
    }

    #[test]
    fn settings_parse() {
        let data = r#"{"viewer":{"zones":[{"settings":{"firewallEventsAdaptive":{"enabled":true,"availableFields":["action","datetime"],"maxDuration":259200,"maxNumberOfFields":30,"maxPageSize":10000,"notOlderThan":2678400}}}]}}"#;
        let parsed: Viewer<SettingsZone> = serde_json::from_str(data).unwrap();
        let settings = parsed
            .viewer
            .zones
            .into_iter()
            .next()
            .unwrap()
            .settings
            .firewall_events_adaptive
            .unwrap();
        assert_eq!(settings.max_page_size, 10_000);
        assert_eq!(settings.not_older_than, 2_678_400);
    }
}
