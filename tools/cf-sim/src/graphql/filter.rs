//! GraphQL analytics filters: `field`, `field_gt|_geq|_lt|_leq|_neq|_in|_notin|_like|_notlike`, `AND`, `OR`.

use std::cmp::Ordering;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const OPERATORS: &[&str] = &[
    "geq", "gt", "leq", "lt", "neq", "in", "notin", "like", "notlike",
];

fn split_key(key: &str) -> (&str, &str) {
    if let Some((field, op)) = key.rsplit_once('_')
        && OPERATORS.contains(&op)
    {
        return (field, op);
    }
    (key, "eq")
}

pub(crate) fn rfc3339_secs(v: &Value) -> Option<i64> {
    v.as_str()
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
        .map(OffsetDateTime::unix_timestamp)
}

fn compare(field: &str, a: &Value, b: &Value) -> Option<Ordering> {
    // Time dimensions (`datetime`, `datetimeMinute`, …) compare as instants, whatever offset the operand uses.
    if field.starts_with("datetime") {
        return rfc3339_secs(a)?.partial_cmp(&rfc3339_secs(b)?);
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::String(x), Value::Number(y)) => x.parse::<f64>().ok()?.partial_cmp(&y.as_f64()?),
        (Value::Number(x), Value::String(y)) => x.as_f64()?.partial_cmp(&y.parse::<f64>().ok()?),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn like(value: &Value, pattern: &Value) -> bool {
    let (Some(value), Some(pattern)) = (value.as_str(), pattern.as_str()) else {
        return false;
    };
    let parts: Vec<&str> = pattern.split('%').collect();
    if parts.len() == 1 {
        return value == pattern;
    }
    let mut rest = value;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(pos) = rest.find(part) else {
                return false;
            };
            rest = &rest[pos + part.len()..];
        }
    }
    true
}

/// Whether `event` passes `filter` on the node's `fields`; `Err` names an unknown field or a malformed operand.
pub(crate) fn matches(
    filter: &Map<String, Value>,
    fields: &[&str],
    event: &Map<String, Value>,
) -> Result<bool, String> {
    for (key, operand) in filter {
        let ok = match key.as_str() {
            "AND" | "OR" => {
                let items = operand
                    .as_array()
                    .ok_or_else(|| format!("{key} must be a list"))?;
                let mut results = Vec::with_capacity(items.len());
                for item in items {
                    let sub = item
                        .as_object()
                        .ok_or_else(|| format!("{key} items must be objects"))?;
                    results.push(matches(sub, fields, event)?);
                }
                if key == "AND" {
                    results.iter().all(|r| *r)
                } else {
                    results.iter().any(|r| *r)
                }
            }
            _ => {
                let (field, op) = split_key(key);
                if !fields.contains(&field) {
                    return Err(format!("unknown field \"{key}\" in filter"));
                }
                let value = event.get(field).unwrap_or(&Value::Null);
                match op {
                    "eq" => compare(field, value, operand) == Some(Ordering::Equal),
                    "neq" => compare(field, value, operand) != Some(Ordering::Equal),
                    "gt" => compare(field, value, operand) == Some(Ordering::Greater),
                    "geq" => matches!(
                        compare(field, value, operand),
                        Some(Ordering::Greater | Ordering::Equal)
                    ),
                    "lt" => compare(field, value, operand) == Some(Ordering::Less),
                    "leq" => matches!(
                        compare(field, value, operand),
                        Some(Ordering::Less | Ordering::Equal)
                    ),
                    "in" | "notin" => {
                        let list = operand
                            .as_array()
                            .ok_or_else(|| format!("{key} must be a list"))?;
                        let found = list
                            .iter()
                            .any(|o| compare(field, value, o) == Some(Ordering::Equal));
                        found == (op == "in")
                    }
                    "like" => like(value, operand),
                    _ => !like(value, operand),
                }
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::traffic::firewall::FIREWALL_FIELDS;

    #[test]
    fn operators_and_nesting() {
        let event = json!({"action": "block", "clientAsn": "5089", "datetime": "2026-01-01T00:00:10Z", "clientRequestPath": "/wp-login.php"});
        let event = event.as_object().expect("object");
        let check = |f: Value| {
            matches(f.as_object().expect("object"), FIREWALL_FIELDS, event).expect("valid filter")
        };
        assert!(check(json!({"action": "block"})));
        assert!(!check(json!({"action_neq": "block"})));
        assert!(check(json!({"clientAsn_in": ["1", "5089"]})));
        assert!(!check(
            json!({"datetime_geq": "2026-01-01T00:00:10Z", "datetime_lt": "2026-01-01T01:00:00+01:00"})
        ));
        assert!(check(
            json!({"datetime_geq": "2026-01-01T00:00:10Z", "datetime_lt": "2026-01-01T00:00:11Z"})
        ));
        assert!(check(json!({"clientRequestPath_like": "%login%"})));
        assert!(check(
            json!({"OR": [{"action": "log"}, {"AND": [{"clientAsn": 5089}]}]})
        ));
        assert!(
            matches(
                json!({"nope": 1}).as_object().expect("object"),
                FIREWALL_FIELDS,
                event
            )
            .is_err()
        );
    }
}
