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
        "/metrics",
    ] {
        assert!(
            spec["paths"].get(issue_path).is_some(),
            "{issue_path} missing"
        );
    }
}
