//! Executes parsed queries against the simulated zones.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::GqlError;
use super::filter::{matches, rfc3339_secs};
use super::parse::Field;
use super::settings::{NodeSettings, firewall_settings, node_settings};
use crate::auth::Caller;
use crate::rng::{hash_words, mix64};
use crate::scenario::{Permission, Plan, ZoneSpec};
use crate::state::Shared;
use crate::traffic::firewall::{FIREWALL_FIELDS, firewall_event};

const MAX_ZONES: usize = 10;
const DEFAULT_LIMIT: i64 = 100;
/// The filter keys that bound a node's time range.
pub(super) const TIME_BOUNDS: &[&str] =
    &["datetime_geq", "datetime_gt", "datetime_lt", "datetime_leq"];

pub(crate) struct Execution<'a> {
    pub shared: &'a Shared,
    pub caller: &'a Caller,
    pub now: OffsetDateTime,
    pub budget_remaining: u32,
}

pub(super) type Errors = Vec<GqlError>;

pub(super) fn leaf(field: &Field, path: &[String]) -> Result<(), Errors> {
    if field.selections.is_some() {
        return Err(vec![GqlError::bad_request(
            "scalar fields must have no selections",
            Some(path.to_vec()),
        )]);
    }
    Ok(())
}

pub(super) fn object<'f>(field: &'f Field, path: &[String]) -> Result<&'f [Field], Errors> {
    field.selections.as_deref().ok_or_else(|| {
        vec![GqlError::bad_request(
            "object field must have selections",
            Some(path.to_vec()),
        )]
    })
}

pub(super) fn unknown(field: &Field, path: &[String]) -> Errors {
    vec![GqlError::bad_request(
        format!("unknown field \"{}\"", field.name),
        Some(path.to_vec()),
    )]
}

pub(super) fn with(path: &[String], segment: &str) -> Vec<String> {
    let mut p = path.to_vec();
    p.push(segment.to_owned());
    p
}

impl Execution<'_> {
    pub fn run(&self, selections: &[Field]) -> Result<Value, Errors> {
        let mut data = Map::new();
        for field in selections {
            let path = vec![field.output_name().to_owned()];
            match field.name.as_str() {
                "viewer" => {
                    data.insert(
                        field.output_name().to_owned(),
                        self.viewer(object(field, &path)?, &path)?,
                    );
                }
                _ => return Err(unknown(field, &path)),
            }
        }
        Ok(Value::Object(data))
    }

    fn viewer(&self, selections: &[Field], path: &[String]) -> Result<Value, Errors> {
        let mut out = Map::new();
        for field in selections {
            let path = with(path, field.output_name());
            let value = match field.name.as_str() {
                "zones" => self.zones(field, &path)?,
                "budget" => {
                    leaf(field, &path)?;
                    json!(self.budget_remaining)
                }
                _ => return Err(unknown(field, &path)),
            };
            out.insert(field.output_name().to_owned(), value);
        }
        Ok(Value::Object(out))
    }

    fn zone_tags(field: &Field, path: &[String]) -> Result<Vec<String>, Errors> {
        let filter = field.arg("filter").and_then(Value::as_object);
        let tags: Option<Vec<String>> = filter.and_then(|f| {
            if let Some(tag) = f.get("zoneTag").and_then(Value::as_str) {
                return Some(vec![tag.to_owned()]);
            }
            f.get("zoneTag_in").and_then(Value::as_array).map(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
        });
        let tags = tags.ok_or_else(|| {
            vec![GqlError::bad_request(
                "error parsing args: zones filter needs zoneTag or zoneTag_in",
                Some(path.to_vec()),
            )]
        })?;
        if tags.len() > MAX_ZONES {
            return Err(vec![GqlError::bad_request(
                "in combination, your request queries too many nodes, zones and accounts",
                Some(path.to_vec()),
            )]);
        }
        Ok(tags)
    }

    fn zones(&self, field: &Field, path: &[String]) -> Result<Value, Errors> {
        let selections = object(field, path)?;
        let tags = Self::zone_tags(field, path)?;
        let mut zones = Vec::new();
        let mut denied = Vec::new();
        for tag in &tags {
            match self.shared.zone(tag) {
                Some(zone)
                    if self.caller.can_access_zone(&zone)
                        && self.caller.has(Permission::AnalyticsRead) =>
                {
                    zones.push(zone);
                }
                _ => denied.push(tag.clone()),
            }
        }
        if !denied.is_empty() {
            return Err(vec![GqlError::soft(
                format!("zones '[{}]' are not authorized", denied.join(" ")),
                Some(path.to_vec()),
            )]);
        }
        let mut out = Vec::new();
        for (i, zone) in zones.iter().enumerate() {
            out.push(self.zone(zone, selections, &with(path, &i.to_string()))?);
        }
        Ok(Value::Array(out))
    }

    fn zone(
        &self,
        zone: &ZoneSpec,
        selections: &[Field],
        path: &[String],
    ) -> Result<Value, Errors> {
        let mut out = Map::new();
        for field in selections {
            let path = with(path, field.output_name());
            let value = match field.name.as_str() {
                "zoneTag" => {
                    leaf(field, &path)?;
                    json!(zone.id)
                }
                "settings" => self.settings(zone.plan, object(field, &path)?, &path)?,
                "firewallEventsAdaptive" => {
                    self.firewall_events(zone, &firewall_settings(zone.plan), field, &path)?
                }
                "httpRequestsAdaptiveGroups" => self.http_requests_groups(zone, field, &path)?,
                "logpushHealthAdaptiveGroups" => self.logpush_health_groups(zone, field, &path)?,
                _ => return Err(unknown(field, &path)),
            };
            out.insert(field.output_name().to_owned(), value);
        }
        Ok(Value::Object(out))
    }

    fn settings(&self, plan: Plan, selections: &[Field], path: &[String]) -> Result<Value, Errors> {
        let mut out = Map::new();
        for node in selections {
            let node_path = with(path, node.output_name());
            let Some(settings) = node_settings(&node.name, plan) else {
                return Err(unknown(node, &node_path));
            };
            let mut values = Map::new();
            for field in object(node, &node_path)? {
                let field_path = with(&node_path, field.output_name());
                leaf(field, &field_path)?;
                let value = settings
                    .field(&field.name)
                    .ok_or_else(|| unknown(field, &field_path))?;
                values.insert(field.output_name().to_owned(), value);
            }
            out.insert(node.output_name().to_owned(), Value::Object(values));
        }
        Ok(Value::Object(out))
    }

    /// `limit` within `1..=maxPageSize` (100 when absent).
    pub(super) fn limit(
        field: &Field,
        settings: &NodeSettings,
        path: &[String],
    ) -> Result<usize, Errors> {
        let limit = match field.arg("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => v.as_i64().unwrap_or(-1),
        };
        if limit <= 0 || limit > settings.max_page_size {
            return Err(vec![GqlError::bad_request(
                format!(
                    "limit must be positive number and not greater than {}",
                    settings.max_page_size
                ),
                Some(path.to_vec()),
            )]);
        }
        Ok(limit as usize)
    }

    /// The node's `filter` argument (empty when absent).
    pub(super) fn filter(field: &Field) -> Map<String, Value> {
        field
            .arg("filter")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    /// Second range `[lo, hi)` from the datetime bounds of a filter, checked against the node's maxDuration and
    /// notOlderThan. With `open_end` a missing upper bound means up to now, the current second included
    /// (Cloudflare's own Logpush health example gives only `datetime_gt`).
    pub(super) fn window(
        &self,
        filter: &Map<String, Value>,
        settings: &NodeSettings,
        path: &[String],
        open_end: bool,
    ) -> Result<(i64, i64), Errors> {
        let bound = |key: &str| filter.get(key).and_then(rfc3339_secs);
        let now = self.now.unix_timestamp();
        let lo = bound("datetime_geq").or_else(|| bound("datetime_gt").map(|t| t + 1));
        let hi = bound("datetime_lt")
            .or_else(|| bound("datetime_leq").map(|t| t + 1))
            .or_else(|| open_end.then_some(now + 1));
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Err(vec![GqlError::bad_request(
                "error parsing args: filter must bound datetime with datetime_geq or datetime_gt and datetime_lt or datetime_leq",
                Some(path.to_vec()),
            )]);
        };
        if hi - lo > settings.max_duration {
            return Err(vec![GqlError::bad_request(
                format!(
                    "query time range is too large: it must not exceed {}s",
                    settings.max_duration
                ),
                Some(path.to_vec()),
            )]);
        }
        if lo < now - settings.not_older_than {
            return Err(vec![GqlError::bad_request(
                format!(
                    "cannot request data older than {}s",
                    settings.not_older_than
                ),
                Some(path.to_vec()),
            )]);
        }
        Ok((lo, hi))
    }

    fn firewall_events(
        &self,
        zone: &ZoneSpec,
        settings: &NodeSettings,
        field: &Field,
        path: &[String],
    ) -> Result<Value, Errors> {
        let selections = object(field, path)?;
        for f in selections {
            let f_path = with(path, f.output_name());
            leaf(f, &f_path)?;
            if !FIREWALL_FIELDS.contains(&f.name.as_str()) {
                return Err(unknown(f, &f_path));
            }
        }
        if selections.len() > settings.max_number_of_fields {
            return Err(vec![GqlError::bad_request(
                format!(
                    "number of fields can't be more than {}",
                    settings.max_number_of_fields
                ),
                Some(path.to_vec()),
            )]);
        }
        if let Some(f) = selections
            .iter()
            .find(|f| !settings.available_fields.contains(&f.name))
        {
            return Err(vec![GqlError::soft(
                format!(
                    "zone '{}' does not have access to the field '{}'",
                    zone.id, f.name
                ),
                Some(with(path, f.output_name())),
            )]);
        }
        let limit = Self::limit(field, settings, path)?;
        let filter = Self::filter(field);
        let (lo, hi) = self.window(&filter, settings, path, false)?;
        let now = self.now.unix_timestamp();
        let order = Self::order(field, path)?;
        let traffic = self
            .shared
            .zone_traffic(&zone.id)
            .ok_or_else(|| unknown(field, path))?;
        let mut rows = Vec::new();
        for second in lo..hi.min(now) {
            for index in 0..traffic.firewall_count(second) {
                let event = firewall_event(&traffic, second, index);
                let keep = matches(&filter, FIREWALL_FIELDS, &event).map_err(|msg| {
                    vec![GqlError::bad_request(
                        format!("error parsing args: {msg}"),
                        Some(path.to_vec()),
                    )]
                })?;
                if keep {
                    rows.push((second, index, event));
                }
            }
        }
        // Adaptive sampling: big result sets come back 1-in-N, each row standing for N events.
        let total = rows.len() as u64;
        let threshold = self.shared.graphql_sample_above;
        if total > threshold {
            let interval = total.div_ceil(threshold);
            rows.retain(|(second, index, _)| {
                mix64(hash_words(&[
                    traffic.key(),
                    *second as u64,
                    u64::from(*index),
                ]))
                .is_multiple_of(interval)
            });
            for (_, _, event) in &mut rows {
                event.insert("sampleInterval".into(), json!(interval));
            }
        }
        for (key, descending) in order.iter().rev() {
            rows.sort_by(|a, b| {
                let ord = compare_for_sort(a.2.get(key), b.2.get(key));
                if *descending { ord.reverse() } else { ord }
            });
        }
        rows.truncate(limit);
        let out = rows
            .into_iter()
            .map(|(_, _, event)| {
                let row: Map<String, Value> = selections
                    .iter()
                    .map(|f| {
                        (
                            f.output_name().to_owned(),
                            event.get(&f.name).cloned().unwrap_or(Value::Null),
                        )
                    })
                    .collect();
                Value::Object(row)
            })
            .collect();
        Ok(Value::Array(out))
    }

    /// `orderBy: [datetime_ASC, rayName_DESC]` as (field, descending); rows start in datetime order.
    fn order(field: &Field, path: &[String]) -> Result<Vec<(String, bool)>, Errors> {
        let items = match field.arg("orderBy") {
            None => return Ok(Vec::new()),
            Some(Value::Array(items)) => items.clone(),
            Some(single) => vec![single.clone()],
        };
        items
            .iter()
            .map(|item| {
                let spec = item.as_str().unwrap_or_default();
                let parsed = spec
                    .strip_suffix("_ASC")
                    .map(|f| (f, false))
                    .or_else(|| spec.strip_suffix("_DESC").map(|f| (f, true)))
                    .filter(|(f, _)| FIREWALL_FIELDS.contains(f));
                parsed.map(|(f, d)| (f.to_owned(), d)).ok_or_else(|| {
                    vec![GqlError::bad_request(
                        format!("error parsing args: invalid orderBy value {spec:?}"),
                        Some(path.to_vec()),
                    )]
                })
            })
            .collect()
    }
}

pub(super) fn compare_for_sort(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .unwrap_or_default()
            .total_cmp(&y.as_f64().unwrap_or_default()),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}
