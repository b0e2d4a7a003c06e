//! GraphQL Analytics: `firewallEventsAdaptive` rows (raw, byte-exact) and the per-zone `settings` limits.
//!
//! The response is `{data, errors}`, and errors routinely arrive with HTTP 200, so `errors` is always inspected.

use crate::classify::{graphql_error, graphql_errors};
use crate::client::{RequestSpec, TokenClient};
use crate::error::CfError;
use crate::route::Endpoint;
use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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
