//! Aggregated nodes: `httpRequestsAdaptiveGroups` groups the zone's `http_requests` truth by time, and
//! `logpushHealthAdaptiveGroups` the upload attempts of its Logpush jobs. A row is `{count, dimensions {…}, sum {…}}`
//! for one combination of the selected dimensions; combinations without events are not returned, as on Cloudflare.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::GqlError;
use super::exec::{Errors, Execution, TIME_BOUNDS, compare_for_sort, leaf, object, unknown, with};
use super::filter::matches;
use super::parse::Field;
use super::settings::{NodeSettings, http_requests_groups_settings, logpush_health_settings};
use crate::logpush::{self, LogpushUpload};
use crate::rng::{hash_words, mix64};
use crate::scenario::ZoneSpec;

/// Time dimensions and the width of their buckets in seconds (`date` is the UTC day).
const TIME_DIMENSIONS: &[(&str, i64)] = &[
    ("date", 86_400),
    ("datetime", 1),
    ("datetimeMinute", 60),
    ("datetimeFiveMinutes", 300),
    ("datetimeFifteenMinutes", 900),
    ("datetimeHour", 3_600),
];

/// What one grouped node offers.
pub(crate) struct GroupNode {
    pub dimensions: &'static [&'static str],
    pub sums: &'static [&'static str],
}

/// Only time dimensions: counting needs no record to be generated, so a day-wide query stays cheap.
pub(crate) const HTTP_REQUESTS: GroupNode = GroupNode {
    dimensions: &[
        "date",
        "datetime",
        "datetimeMinute",
        "datetimeFiveMinutes",
        "datetimeFifteenMinutes",
        "datetimeHour",
    ],
    sums: &[],
};

/// Dimension and sum names as third-party clients of the real node use them (`jobId`, `status`,
/// `destinationType`, `final`; `bytes`, `bytesCompressed`, `records`, `uploads`).
pub(crate) const LOGPUSH_HEALTH: GroupNode = GroupNode {
    dimensions: &[
        "date",
        "datetime",
        "datetimeMinute",
        "datetimeFiveMinutes",
        "datetimeFifteenMinutes",
        "datetimeHour",
        "jobId",
        "status",
        "destinationType",
        "final",
    ],
    sums: &["bytes", "bytesCompressed", "records", "uploads"],
};

impl GroupNode {
    /// `availableFields` as `settings` reports nested fields: `count`, `dimensions_<name>`, `sum_<name>`.
    pub fn available_fields(&self) -> Vec<String> {
        std::iter::once("count".to_owned())
            .chain(self.dimensions.iter().map(|d| format!("dimensions_{d}")))
            .chain(self.sums.iter().map(|s| format!("sum_{s}")))
            .collect()
    }

    fn sum_index(&self, name: &str) -> Option<usize> {
        self.sums.iter().position(|s| *s == name)
    }
}

fn time_width(dimension: &str) -> Option<i64> {
    TIME_DIMENSIONS
        .iter()
        .find(|(d, _)| *d == dimension)
        .map(|(_, w)| *w)
}

/// The value of time dimension `dimension` for an event at `second`.
fn time_value(dimension: &str, second: i64) -> Option<Value> {
    let width = time_width(dimension)?;
    let start = OffsetDateTime::from_unix_timestamp(second.div_euclid(width) * width).ok()?;
    let text = if dimension == "date" {
        start.date().to_string()
    } else {
        start.format(&Rfc3339).ok()?
    };
    Some(Value::String(text))
}

fn time_values(second: i64) -> Map<String, Value> {
    TIME_DIMENSIONS
        .iter()
        .filter_map(|(d, _)| Some(((*d).to_owned(), time_value(d, second)?)))
        .collect()
}

/// One requested part of a row.
enum Part {
    Count,
    /// (output name, dimension)
    Dimensions(Vec<(String, &'static str)>),
    /// (output name, index into the node's sums)
    Sum(Vec<(String, usize)>),
}

struct Selection {
    parts: Vec<(String, Part)>,
    /// The dimensions rows are grouped by, each once.
    dims: Vec<&'static str>,
}

fn selection(
    node: &GroupNode,
    settings: &NodeSettings,
    field: &Field,
    path: &[String],
) -> Result<Selection, Errors> {
    let mut parts = Vec::new();
    let mut dims: Vec<&'static str> = Vec::new();
    let mut leaves = 0usize;
    for f in object(field, path)? {
        let f_path = with(path, f.output_name());
        let part = match f.name.as_str() {
            "count" => {
                leaf(f, &f_path)?;
                leaves += 1;
                Part::Count
            }
            "dimensions" => {
                let mut chosen = Vec::new();
                for d in object(f, &f_path)? {
                    let d_path = with(&f_path, d.output_name());
                    leaf(d, &d_path)?;
                    let name = node
                        .dimensions
                        .iter()
                        .find(|n| **n == d.name)
                        .ok_or_else(|| unknown(d, &d_path))?;
                    if !dims.contains(name) {
                        dims.push(name);
                    }
                    chosen.push((d.output_name().to_owned(), *name));
                    leaves += 1;
                }
                Part::Dimensions(chosen)
            }
            "sum" if !node.sums.is_empty() => {
                let mut chosen = Vec::new();
                for s in object(f, &f_path)? {
                    let s_path = with(&f_path, s.output_name());
                    leaf(s, &s_path)?;
                    let index = node.sum_index(&s.name).ok_or_else(|| unknown(s, &s_path))?;
                    chosen.push((s.output_name().to_owned(), index));
                    leaves += 1;
                }
                Part::Sum(chosen)
            }
            _ => return Err(unknown(f, &f_path)),
        };
        parts.push((f.output_name().to_owned(), part));
    }
    if leaves > settings.max_number_of_fields {
        return Err(vec![GqlError::bad_request(
            format!(
                "number of fields can't be more than {}",
                settings.max_number_of_fields
            ),
            Some(path.to_vec()),
        )]);
    }
    Ok(Selection { parts, dims })
}

/// `orderBy: [datetimeMinute_ASC, count_DESC, sum_records_DESC]` as (key, descending); a dimension must be selected.
fn order(
    node: &GroupNode,
    selection: &Selection,
    field: &Field,
    path: &[String],
) -> Result<Vec<(String, bool)>, Errors> {
    let items = match field.arg("orderBy") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items.clone(),
        Some(single) => vec![single.clone()],
    };
    let known = |key: &str| {
        key == "count"
            || key
                .strip_prefix("sum_")
                .is_some_and(|s| node.sum_index(s).is_some())
            || selection.dims.contains(&key)
    };
    items
        .iter()
        .map(|item| {
            let spec = item.as_str().unwrap_or_default();
            spec.strip_suffix("_ASC")
                .map(|k| (k, false))
                .or_else(|| spec.strip_suffix("_DESC").map(|k| (k, true)))
                .filter(|(k, _)| known(k))
                .map(|(k, d)| (k.to_owned(), d))
                .ok_or_else(|| {
                    vec![GqlError::bad_request(
                        format!("error parsing args: invalid orderBy value {spec:?}"),
                        Some(path.to_vec()),
                    )]
                })
        })
        .collect()
}

/// One row being aggregated.
struct Group {
    /// Second of the group's first event: every time dimension of the group is its bucket.
    first: i64,
    last: i64,
    /// Selected dimensions other than time.
    values: Map<String, Value>,
    count: u64,
    sums: Vec<u64>,
}

impl Group {
    fn dimension(&self, name: &str) -> Value {
        time_value(name, self.first)
            .or_else(|| self.values.get(name).cloned())
            .unwrap_or(Value::Null)
    }

    fn sort_key(&self, node: &GroupNode, key: &str) -> Value {
        if key == "count" {
            return json!(self.count);
        }
        match key.strip_prefix("sum_").and_then(|s| node.sum_index(s)) {
            Some(i) => json!(self.sums[i]),
            None => self.dimension(key),
        }
    }

    fn render(&self, selection: &Selection) -> Value {
        let row: Map<String, Value> = selection
            .parts
            .iter()
            .map(|(out, part)| {
                let value = match part {
                    Part::Count => json!(self.count),
                    Part::Dimensions(chosen) => Value::Object(
                        chosen
                            .iter()
                            .map(|(o, d)| (o.clone(), self.dimension(d)))
                            .collect(),
                    ),
                    Part::Sum(chosen) => Value::Object(
                        chosen
                            .iter()
                            .map(|(o, i)| (o.clone(), json!(self.sums[*i])))
                            .collect(),
                    ),
                };
                (out.clone(), value)
            })
            .collect();
        Value::Object(row)
    }
}

/// Groups in the order their first event came (events arrive in time order, so rows start in time order).
struct Groups<'s> {
    dims: &'s [&'static str],
    sums: usize,
    index: HashMap<String, usize>,
    rows: Vec<Group>,
}

impl<'s> Groups<'s> {
    fn new(dims: &'s [&'static str], sums: usize) -> Self {
        Self {
            dims,
            sums,
            index: HashMap::new(),
            rows: Vec::new(),
        }
    }

    fn add(&mut self, second: i64, values: &Map<String, Value>, count: u64, sums: &[u64]) {
        // Time buckets key as numbers: formatting every second of a day-wide window would dominate the query.
        let mut key = String::new();
        for d in self.dims {
            match time_width(d) {
                Some(width) => key.push_str(&second.div_euclid(width).to_string()),
                None => key.push_str(&values.get(*d).map(Value::to_string).unwrap_or_default()),
            }
            key.push('\u{1}');
        }
        let i = match self.index.get(&key) {
            Some(i) => *i,
            None => {
                self.rows.push(Group {
                    first: second,
                    last: second,
                    values: self
                        .dims
                        .iter()
                        .filter(|d| time_width(d).is_none())
                        .filter_map(|d| Some(((*d).to_owned(), values.get(*d)?.clone())))
                        .collect(),
                    count: 0,
                    sums: vec![0; self.sums],
                });
                self.index.insert(key, self.rows.len() - 1);
                self.rows.len() - 1
            }
        };
        let group = &mut self.rows[i];
        group.last = second;
        group.count += count;
        for (total, add) in group.sums.iter_mut().zip(sums) {
            *total += add;
        }
    }
}

fn finish(
    node: &GroupNode,
    selection: &Selection,
    order: &[(String, bool)],
    mut rows: Vec<Group>,
    limit: usize,
) -> Value {
    for (key, descending) in order.iter().rev() {
        rows.sort_by(|a, b| {
            let ord = compare_for_sort(Some(&a.sort_key(node, key)), Some(&b.sort_key(node, key)));
            if *descending { ord.reverse() } else { ord }
        });
    }
    rows.truncate(limit);
    Value::Array(rows.iter().map(|g| g.render(selection)).collect())
}

/// `count` moved by a whole number in `[-m, m]`, `m = floor(error × count)`, picked by `key`. `error < 1` keeps the
/// result at least 1, so a sampled group never disappears.
fn sampled(count: u64, error: f64, key: u64) -> u64 {
    let max = (count as f64 * error).floor() as u64;
    if max == 0 {
        return count;
    }
    count - max + mix64(key) % (2 * max + 1)
}

/// The dimensions of one upload attempt, time dimensions included (filters may name any of them).
fn health_values(upload: &LogpushUpload) -> Map<String, Value> {
    let mut values = time_values(upload.time.unix_timestamp());
    values.insert("jobId".into(), json!(upload.job_id));
    values.insert("status".into(), json!(upload.status));
    values.insert("destinationType".into(), json!(upload.destination_type));
    values.insert("final".into(), json!(u8::from(upload.final_upload)));
    values
}

impl Execution<'_> {
    fn filter_error(path: &[String]) -> impl Fn(String) -> Errors + '_ {
        move |msg| {
            vec![GqlError::bad_request(
                format!("error parsing args: {msg}"),
                Some(path.to_vec()),
            )]
        }
    }

    /// Requests of the zone's `http_requests` truth (what `/__sim/truth` and Logpush serve), counted per group.
    pub(super) fn http_requests_groups(
        &self,
        zone: &ZoneSpec,
        field: &Field,
        path: &[String],
    ) -> Result<Value, Errors> {
        let node = &HTTP_REQUESTS;
        let settings = http_requests_groups_settings(zone.plan);
        let selection = selection(node, &settings, field, path)?;
        let limit = Self::limit(field, &settings, path)?;
        let filter = Self::filter(field);
        let (lo, hi) = self.window(&filter, &settings, path, false)?;
        let order = order(node, &selection, field, path)?;
        // The bounds become the range; only other conditions are checked second by second.
        let rest: Map<String, Value> = filter
            .into_iter()
            .filter(|(k, _)| !TIME_BOUNDS.contains(&k.as_str()))
            .collect();
        let bad = Self::filter_error(path);
        if !rest.is_empty() {
            matches(&rest, node.dimensions, &time_values(lo)).map_err(&bad)?;
        }
        let traffic = self
            .shared
            .zone_traffic(&zone.id)
            .ok_or_else(|| unknown(field, path))?;
        let now = self.now.unix_timestamp();
        let none = Map::new();
        let mut groups = Groups::new(&selection.dims, 0);
        for second in lo..hi.min(now) {
            let count = traffic.http_count(second);
            if count == 0
                || (!rest.is_empty()
                    && !matches(&rest, node.dimensions, &time_values(second)).map_err(&bad)?)
            {
                continue;
            }
            groups.add(second, &none, u64::from(count), &[]);
        }
        let mut rows = groups.rows;
        let error = zone.graphql_sampling_error;
        if error > 0.0 {
            for group in &mut rows {
                let key = hash_words(&[traffic.key(), group.first as u64, group.last as u64]);
                group.count = sampled(group.count, error, key);
            }
        }
        Ok(finish(node, &selection, &order, rows, limit))
    }

    /// Upload attempts of the zone's Logpush jobs: `count` and `sum.uploads` are attempts, the other sums the
    /// attempted batches' records and bytes.
    pub(super) fn logpush_health_groups(
        &self,
        zone: &ZoneSpec,
        field: &Field,
        path: &[String],
    ) -> Result<Value, Errors> {
        let node = &LOGPUSH_HEALTH;
        let settings = logpush_health_settings(zone.plan);
        let selection = selection(node, &settings, field, path)?;
        let limit = Self::limit(field, &settings, path)?;
        let filter = Self::filter(field);
        let (lo, hi) = self.window(&filter, &settings, path, true)?;
        let order = order(node, &selection, field, path)?;
        let bad = Self::filter_error(path);
        // Checked once up front so a bad filter is refused even when no upload would reach it.
        let probe = LogpushUpload {
            zone: zone.id.clone(),
            job_id: 0,
            batch_id: 0,
            time: self.now,
            status: 0,
            final_upload: false,
            destination_type: String::new(),
            records: 0,
            bytes: 0,
            bytes_compressed: 0,
        };
        matches(&filter, node.dimensions, &health_values(&probe)).map_err(&bad)?;
        let mut groups = Groups::new(&selection.dims, node.sums.len());
        for upload in logpush::uploads(self.shared, &zone.id) {
            let second = upload.time.unix_timestamp();
            if second < lo
                || second >= hi
                || !matches(&filter, node.dimensions, &health_values(&upload)).map_err(&bad)?
            {
                continue;
            }
            groups.add(
                second,
                &health_values(&upload),
                1,
                &[upload.bytes, upload.bytes_compressed, upload.records, 1],
            );
        }
        Ok(finish(node, &selection, &order, groups.rows, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_buckets_format_like_cloudflare() {
        let t = 1_768_478_461; // 2026-01-15T12:01:01Z
        assert_eq!(
            time_value("datetimeMinute", t),
            Some(json!("2026-01-15T12:01:00Z"))
        );
        assert_eq!(
            time_value("datetimeFiveMinutes", t),
            Some(json!("2026-01-15T12:00:00Z"))
        );
        assert_eq!(time_value("date", t), Some(json!("2026-01-15")));
        assert_eq!(time_value("jobId", t), None);
    }

    #[test]
    fn sampling_stays_within_its_bound_and_never_reaches_zero() {
        for count in [1u64, 2, 9, 10, 100, 12_345] {
            for key in 0..200 {
                let got = sampled(count, 0.1, key);
                let bound = (count as f64 * 0.1).floor() as u64;
                assert!(got.abs_diff(count) <= bound, "{count} -> {got}");
                assert!(got > 0);
            }
        }
        assert_eq!(sampled(7, 0.1, 3), 7, "below 1 / error nothing moves");
        let moved = (0..200).filter(|k| sampled(1000, 0.05, *k) != 1000).count();
        assert!(moved > 150, "the error is actually applied: {moved}");
    }
}
