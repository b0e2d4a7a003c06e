//! `openapi/rainlogs.json` is generated from the code; this fails when it drifts.
//! Regenerate with `UPDATE_OPENAPI=1 cargo nextest run -p rainlogs-query-api openapi`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use serde_json::Value;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi/rainlogs.json")
}

#[test]
fn the_committed_document_matches_the_code() {
    let generated = format!("{}\n", rainlogs_query_api::openapi_json());
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date; regenerate it with UPDATE_OPENAPI=1 cargo nextest run -p rainlogs-query-api openapi",
        path.display()
    );
}

#[test]
fn every_operation_has_an_id_and_documents_its_errors() {
    let spec: Value = serde_json::from_str(&rainlogs_query_api::openapi_json()).unwrap();
    let mut ids = std::collections::HashSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
            let responses = op["responses"].as_object().unwrap();
            let authenticated = op.get("security").is_some();
            if authenticated {
                for status in ["401", "403", "404", "429"] {
                    let error = &responses[status]["content"]["application/json; charset=utf-8"]["schema"]
                        ["$ref"];
                    assert_eq!(
                        error, "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    for issue_path in [
        "/customers",
        "/api/v1/customers/{id}",
        "/api/v1/export",
        "/api/v1/audit-log",
        "/api/v1/api-keys",
        "/api/v1/api-keys/{key_id}",
        "/api/v1/zones",
        "/api/v1/zones/{zone_id}",
        "/api/v1/zones/{zone_id}/pull",
        "/api/v1/zones/{zone_id}/logs",
        "/api/v1/zones/{zone_id}/checkpoint",
        "/api/v1/logs/jobs",
        "/api/v1/logs/jobs/{job_id}",
        "/api/v1/logs/jobs/{job_id}/download",
        "/api/v1/auth/login",
        "/health",
    ] {
        assert!(
            spec["paths"].get(issue_path).is_some(),
            "{issue_path} missing"
        );
    }
    // Served only on `telemetry.listen`: they show store paths and every tenant's zone ids.
    for private in ["/metrics", "/ready"] {
        assert!(
            spec["paths"].get(private).is_none(),
            "{private} is on the API"
        );
    }
}

/// `allOf` composes objects. Around an enum (poem-openapi's way of documenting an enum-typed
/// field) generators give up: openapi-python-client dropped `NewZone` and `NewApiKey`, and with
/// them `createZone` and `createApiKey`.
#[test]
fn all_of_only_composes_objects() {
    let spec: Value = serde_json::from_str(&rainlogs_query_api::openapi_json()).unwrap();
    fn walk(value: &Value, spec: &Value, at: &str) {
        match value {
            Value::Object(map) => {
                for part in map
                    .get("allOf")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(reference) = part.get("$ref").and_then(Value::as_str) {
                        let target = spec
                            .pointer(reference.trim_start_matches('#'))
                            .unwrap_or_else(|| panic!("{at}: {reference} does not resolve"));
                        assert_eq!(target["type"], "object", "{at}: allOf over {reference}");
                    }
                }
                for (key, child) in map {
                    walk(child, spec, &format!("{at}/{key}"));
                }
            }
            Value::Array(items) => {
                for (n, item) in items.iter().enumerate() {
                    walk(item, spec, &format!("{at}/{n}"));
                }
            }
            _ => {}
        }
    }
    walk(&spec, &spec, "");
    let schemas = &spec["components"]["schemas"];
    let role = &schemas["NewApiKey"]["properties"]["role"];
    assert_eq!(role["$ref"], "#/components/schemas/RoleName", "{role}");
    assert!(role["description"].is_string(), "{role}");
    // A nullable enum property is the enumeration itself, null included.
    let method = &schemas["NewZone"]["properties"]["method"];
    assert!(method["description"].is_string(), "{method}");
    assert_eq!(method["nullable"], true, "{method}");
    let mut values = schemas["MethodChoice"]["enum"].as_array().unwrap().clone();
    values.push(Value::Null);
    assert_eq!(method["enum"], Value::Array(values), "{method}");
}

/// No retention below `MIN_RETENTION_DAYS` is ever accepted, so the document does not offer one;
/// its ceiling is what parses, not the configured maximum (that one answers 422).
#[test]
fn retention_schemas_start_at_the_minimum_retention() {
    let spec: Value = serde_json::from_str(&rainlogs_query_api::openapi_json()).unwrap();
    for pointer in [
        "/components/schemas/NewCustomer/properties/retention_days",
        "/components/schemas/NewTenantRetention/properties/days",
        "/components/schemas/NewZoneRetention/properties/days",
    ] {
        let schema = spec.pointer(pointer).unwrap();
        assert_eq!(
            schema["minimum"].as_f64(),
            Some(f64::from(rainlogs_config::MIN_RETENTION_DAYS)),
            "{pointer}: {schema}"
        );
        // The configured maximum is checked by the operation (422); the document states only
        // what parses.
        assert_eq!(
            schema["maximum"].as_f64(),
            Some(f64::from(u32::MAX)),
            "{pointer}: {schema}"
        );
    }
    assert_eq!(
        spec.pointer("/components/schemas/NewZoneRetention/properties/days/nullable"),
        Some(&Value::Bool(true)),
        "null puts the zone back on the tenant's retention"
    );
}

#[test]
fn every_429_states_the_rate_limit_headers() {
    let document: Value = serde_json::from_str(&rainlogs_query_api::openapi_json()).unwrap();
    let mut refusals = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(refused) = operation.pointer("/responses/429") else {
                continue;
            };
            refusals += 1;
            for header in [
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ] {
                assert!(
                    refused["headers"][header]["schema"]["type"] == "integer",
                    "{method} {path}: 429 lacks {header}"
                );
            }
        }
    }
    assert!(refusals > 20, "only {refusals} operations document a 429");
}
