//! Schemathesis (pinned in `tools/api-check/requirements.txt`) against the live API: generated
//! and hostile requests to every operation of the served document, once with an admin API key
//! and once with a dashboard session token, and every answer checked against the document:
//! no server errors, documented status codes, content types, headers and body schemas.
//!
//! `SCHEMATHESIS_SEED=<n>` replays another seed; `SCHEMATHESIS_MAX_EXAMPLES=<n>` digs deeper.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Every check that needs no links between operations. Which answers count as accepting valid
/// data (a 422 is one: the document cannot state which zones Cloudflare knows) is set in
/// `tools/api-check/schemathesis.toml`.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance,ignored_auth,\
                      unsupported_method,allow_header_conformance,missing_required_header,\
                      positive_data_acceptance,negative_data_rejection";

fn config_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/api-check/schemathesis.toml")
}

fn schemathesis() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/schemathesis");
    assert!(
        path.exists(),
        "{} missing: run `tools/dev-env up` (it installs tools/api-check/requirements.txt)",
        path.display()
    );
    path
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The operations that end the caller's own access or data: run last, with a tenant of their
/// own, so the other runs keep a working key (schemathesis reuses ids it saw in answers).
const SELF_DESTRUCTIVE: [&str; 3] = ["revokeApiKey", "deleteCustomer", "deleteZone"];

/// Runs schemathesis against `stack` with `credential`; panics with its report on any failure.
async fn run(stack: &Stack, credential: &str, label: &str, max_examples: u64, extra: &[&str]) {
    let seed = env_number("SCHEMATHESIS_SEED", 20_260_115);
    let max_examples = env_number("SCHEMATHESIS_MAX_EXAMPLES", max_examples);
    let reports = tempfile::tempdir().expect("report dir");
    let started = Instant::now();
    let run = tokio::process::Command::new(schemathesis())
        .arg("--config-file")
        .arg(config_file())
        .arg("run")
        .arg(stack.url("/openapi.json"))
        .args(["--url", &stack.base])
        .args(["--header", &format!("Authorization: Bearer {credential}")])
        .args(["--checks", CHECKS])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", &max_examples.to_string()])
        .args(["--seed", &seed.to_string()])
        // One worker: schemathesis' threads trip a CPython 3.11 race in `ast` (hypothesis
        // reads lambda sources), which ends the run with "AST constructor recursion depth
        // mismatch" as an error of schemathesis, not of the API.
        .args(["--workers", "1", "--request-timeout", "30"])
        .args(["--suppress-health-check", "all", "--no-color"])
        .args(extra)
        // Nothing is kept between runs: no example database, and the crash cache schemathesis
        // writes below its working directory lands in the temporary one.
        .args(["--generation-database", "none"])
        .arg("--report-dir")
        .arg(reports.path())
        .current_dir(reports.path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("schemathesis finished within 10 minutes")
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis ({label}, seed {seed}) found problems ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // A run that tested nothing also exits 0: every selected operation must have been tested.
    let count = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split('/').next())
            .and_then(|n| n.trim().parse::<u32>().ok())
            .unwrap_or_else(|| panic!("{label}: no `{prefix}` in the summary:\n{stdout}"))
    };
    let (selected, tested) = (count("Selected:"), count("Tested:"));
    assert!(
        selected > 0 && tested == selected,
        "{label}: {tested} of {selected} operations tested:\n{stdout}"
    );
    println!(
        "schemathesis ({label}, seed {seed}, {max_examples} examples) passed in {:?}:\n{stdout}",
        started.elapsed()
    );
}

fn excluding_self_destructive() -> Vec<&'static str> {
    SELF_DESTRUCTIVE
        .iter()
        .flat_map(|id| ["--exclude-operation-id", id])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_every_answer_as_documented() {
    let stack = Stack::start().await;
    let (tenant, admin) = stack.register("schemathesis@acme.example").await;
    assert_eq!(
        stack.add_zone(&admin, ENTERPRISE_ZONE).await.status,
        StatusCode::CREATED
    );
    stack
        .seal_log(
            &tenant,
            ENTERPRISE_ZONE,
            &[
                WindowSpec::Archive(b"{\"ClientIP\":\"192.0.2.1\"}\n".to_vec()),
                WindowSpec::Empty,
                WindowSpec::Gap,
            ],
        )
        .await;
    let login = stack
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({
                "email": "schemathesis@acme.example",
                "password": "correct horse battery staple",
            })),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.json);
    let session = login.json["access_token"].as_str().unwrap().to_owned();

    run(
        &stack,
        &admin,
        "admin API key",
        20,
        &excluding_self_destructive(),
    )
    .await;
    run(
        &stack,
        &session,
        "dashboard session",
        8,
        &excluding_self_destructive(),
    )
    .await;
    // Last, everything with a tenant that may lose its key, its zone or itself on the way.
    let (_, doomed) = stack.register("doomed@globex.example").await;
    assert_eq!(
        stack.add_zone(&doomed, PRO_ZONE).await.status,
        StatusCode::CREATED
    );
    run(&stack, &doomed, "every operation", 8, &[]).await;
}

/// What schemathesis found, kept as plain tests: an absent optional field is left out of an
/// answer, never sent as `null` (the schemas do not allow null there).
#[tokio::test]
async fn absent_fields_are_left_out_not_null() {
    let stack = Stack::start().await;
    let (_, admin) = stack.register("nulls@acme.example").await;
    let zone = stack.add_zone(&admin, ENTERPRISE_ZONE).await;
    assert_eq!(zone.status, StatusCode::CREATED, "{}", zone.json);
    let hold = stack
        .post("/api/v1/legal-holds", &admin, json!({"reason": "case 7"}))
        .await;
    assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.json);
    let with_null = stack
        .post(
            "/api/v1/legal-holds",
            &admin,
            json!({"reason": "case 8", "zone_id": null}),
        )
        .await;
    assert_eq!(with_null.status, StatusCode::CREATED, "{}", with_null.json);
    let answers = [
        ("created zone", zone.json),
        ("legal hold", hold.json),
        ("legal hold from null", with_null.json),
        ("zones", stack.get("/api/v1/zones", &admin).await.json),
        ("holds", stack.get("/api/v1/legal-holds", &admin).await.json),
        ("export", stack.get("/api/v1/export", &admin).await.json),
    ];
    fn nulls(value: &serde_json::Value, at: String, found: &mut Vec<String>) {
        match value {
            serde_json::Value::Null => found.push(at),
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    nulls(child, format!("{at}.{key}"), found);
                }
            }
            serde_json::Value::Array(items) => {
                for (n, item) in items.iter().enumerate() {
                    nulls(item, format!("{at}[{n}]"), found);
                }
            }
            _ => {}
        }
    }
    for (what, answer) in answers {
        assert!(answer.is_object(), "{what}: {answer}");
        let mut found = Vec::new();
        nulls(&answer, String::new(), &mut found);
        assert!(found.is_empty(), "{what} has null at {found:?}: {answer}");
    }
}
