//! GraphQL: `{data, errors}` shape, per-plan settings, limits, authorisation, sampling and budget errors.

use std::time::Duration;

use cf_sim::{Dataset, EndpointKind, Fault, FaultKind, TruthQuery};
use serde_json::{Value, json};

use crate::common::*;

const FIREWALL_QUERY: &str = r#"query ListFirewallEvents($zoneTag: string, $filter: FirewallEventsAdaptiveFilter_InputObject) {
  viewer { zones(filter: { zoneTag: $zoneTag }) {
    firewallEventsAdaptive(filter: $filter, limit: 10000, orderBy: [datetime_ASC]) {
      action clientAsn clientCountryName clientIP clientRequestPath clientRequestQuery datetime rayName ruleId source userAgent
    } } } }"#;

const SETTINGS_QUERY: &str = r#"query Settings($zoneTag: String!) { viewer { zones(filter: {zoneTag: $zoneTag}) {
  settings { firewallEventsAdaptive { enabled availableFields maxDuration maxNumberOfFields maxPageSize notOlderThan } } } } }"#;

async fn post(
    sim: &cf_sim::RunningSim,
    token: &str,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let resp = client()
        .post(format!("{}/graphql", sim.base_url()))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

fn range(start: time::OffsetDateTime, end: time::OffsetDateTime) -> Value {
    json!({"datetime_geq": rfc3339(start), "datetime_lt": rfc3339(end)})
}

fn first_error(body: &Value) -> &str {
    body["errors"][0]["message"]
        .as_str()
        .expect("error message")
}

#[tokio::test]
async fn settings_differ_per_plan() {
    let sim = start().await;
    let mut seen = Vec::new();
    for zone in [FREE, PRO, BUSINESS, ENTERPRISE] {
        let (status, body) = post(&sim, FULL, SETTINGS_QUERY, json!({"zoneTag": zone})).await;
        assert_eq!(status, 200);
        assert_eq!(body["errors"], Value::Null);
        let s = &body["data"]["viewer"]["zones"][0]["settings"]["firewallEventsAdaptive"];
        assert_eq!(s["enabled"], true);
        assert_eq!(s["maxNumberOfFields"], 30);
        seen.push((
            s["maxPageSize"].as_i64().expect("int"),
            s["maxDuration"].as_i64().expect("int"),
            s["notOlderThan"].as_i64().expect("int"),
        ));
        let fields: Vec<&str> = s["availableFields"]
            .as_array()
            .expect("list")
            .iter()
            .map(|v| v.as_str().expect("str"))
            .collect();
        assert_eq!(fields.contains(&"wafAttackScore"), zone != FREE);
        assert!(fields.contains(&"rayName"));
    }
    assert_eq!(
        seen,
        [
            (1000, 86400, 86400),
            (5000, 86400, 86400),
            (10000, 259200, 259200),
            (10000, 259200, 2678400)
        ]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn firewall_events_match_the_truth() {
    let sim = start().await;
    let end = T0 - Duration::from_secs(60);
    let start = end - Duration::from_secs(3600);
    let (status, body) = post(
        &sim,
        ANALYTICS_ONLY,
        FIREWALL_QUERY,
        json!({"zoneTag": ENTERPRISE, "filter": range(start, end)}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"], Value::Null);
    let rows = body["data"]["viewer"]["zones"][0]["firewallEventsAdaptive"]
        .as_array()
        .expect("rows");
    let fields = [
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
    ];
    let truth = sim
        .truth(&TruthQuery {
            dataset: Dataset::FirewallEvents,
            fields: Some(fields.map(String::from).to_vec()),
            ..TruthQuery::http(ENTERPRISE, start, end)
        })
        .expect("truth");
    assert!(truth.len() > 1000, "2 events/s for an hour");
    let mut got: Vec<String> = rows
        .iter()
        .map(|r| format!("{}\n", serde_json::to_string(r).expect("json")))
        .collect();
    let datetimes: Vec<&str> = rows
        .iter()
        .map(|r| r["datetime"].as_str().expect("datetime"))
        .collect();
    assert!(
        datetimes.windows(2).all(|w| w[0] <= w[1]),
        "orderBy datetime_ASC"
    );
    assert!(rows.iter().all(|r| {
        r["clientAsn"].is_string()
            && r["clientCountryName"]
                .as_str()
                .is_some_and(|c| c.len() == 2 && c.chars().all(|x| x.is_ascii_uppercase()))
    }));
    got.sort();
    assert_eq!(got, truth);
    sim.shutdown().await;
}

#[tokio::test]
async fn limits_are_enforced_with_http_400() {
    let sim = start().await;
    let end = T0 - Duration::from_secs(60);
    let hour = range(end - Duration::from_secs(3600), end);
    let q = |limit: i64, fields: &str| {
        format!(
            "query Q($z: String!, $f: ZoneFirewallEventsAdaptiveFilter_InputObject) {{ viewer {{ zones(filter: {{zoneTag: $z}}) {{ firewallEventsAdaptive(filter: $f, limit: {limit}) {{ {fields} }} }} }} }}"
        )
    };
    let (status, body) = post(
        &sim,
        FULL,
        &q(1001, "rayName"),
        json!({"z": FREE, "f": hour}),
    )
    .await;
    assert_eq!(
        (status, first_error(&body)),
        (
            400,
            "limit must be positive number and not greater than 1000"
        )
    );
    assert_eq!(body["data"], Value::Null);
    assert_eq!(
        body["errors"][0]["path"],
        json!(["viewer", "zones", "0", "firewallEventsAdaptive"])
    );
    assert!(body["errors"][0]["extensions"]["timestamp"].is_string());

    let (status, body) = post(
        &sim,
        FULL,
        &q(10, "rayName"),
        json!({"z": FREE, "f": range(end - Duration::from_secs(90_000), end)}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        first_error(&body).starts_with("query time range is too large"),
        "{body}"
    );

    let (status, body) = post(&sim, FULL, &q(10, "rayName"), json!({"z": FREE, "f": range(T0 - Duration::from_secs(90_000), T0 - Duration::from_secs(89_000))})).await;
    assert_eq!(
        (status, first_error(&body)),
        (400, "cannot request data older than 86400s")
    );

    let many: Vec<&str> = cf_sim::firewall_event_fields()
        .into_iter()
        .take(31)
        .collect();
    let (status, body) = post(
        &sim,
        FULL,
        &q(10, &many.join(" ")),
        json!({"z": ENTERPRISE, "f": hour}),
    )
    .await;
    assert_eq!(
        (status, first_error(&body)),
        (400, "number of fields can't be more than 30")
    );

    let (status, body) = post(
        &sim,
        FULL,
        &q(10, "rayName { x }"),
        json!({"z": ENTERPRISE, "f": hour}),
    )
    .await;
    assert_eq!(
        (status, first_error(&body)),
        (400, "scalar fields must have no selections")
    );
    let (status, body) = post(
        &sim,
        FULL,
        &q(10, "nope"),
        json!({"z": ENTERPRISE, "f": hour}),
    )
    .await;
    assert_eq!(
        (status, first_error(&body)),
        (400, "unknown field \"nope\"")
    );
    let (status, body) = post(
        &sim,
        FULL,
        "{ viewer { zones(filter: {zoneTag: \"x\"}) { zoneTag } }",
        json!({}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(first_error(&body).starts_with("query contains error"));
    sim.shutdown().await;
}

#[tokio::test]
async fn authorisation_errors_come_with_http_200_or_401() {
    let sim = start().await;
    let (status, body) = post(
        &sim,
        LOGS_ONLY,
        SETTINGS_QUERY,
        json!({"zoneTag": ENTERPRISE}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], Value::Null);
    assert_eq!(
        first_error(&body),
        format!("zones '[{ENTERPRISE}]' are not authorized")
    );
    let (status, body) = post(
        &sim,
        "cfut_unknown",
        SETTINGS_QUERY,
        json!({"zoneTag": ENTERPRISE}),
    )
    .await;
    assert_eq!((status, first_error(&body)), (401, "Unauthorized"));
    // A paid-only field on a Free zone.
    let q = "query($z: String!, $f: Filter) { viewer { zones(filter: {zoneTag: $z}) { firewallEventsAdaptive(filter: $f, limit: 10) { wafAttackScore } } } }";
    let end = T0 - Duration::from_secs(60);
    let (status, body) = post(
        &sim,
        FULL,
        q,
        json!({"z": FREE, "f": range(end - Duration::from_secs(600), end)}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(first_error(&body).contains("does not have access to the field 'wafAttackScore'"));
    sim.shutdown().await;
}

#[tokio::test]
async fn large_windows_are_sampled_with_sample_interval() {
    let mut scenario = scenario();
    scenario.graphql.sample_above = 500;
    let sim = start_with(scenario).await;
    let end = T0 - Duration::from_secs(60);
    let start = end - Duration::from_secs(3600);
    let q = "query($z: String!, $f: F) { viewer { zones(filter: {zoneTag: $z}) { firewallEventsAdaptive(filter: $f, limit: 10000, orderBy: [datetime_DESC]) { rayName datetime sampleInterval } } } }";
    let (status, body) = post(
        &sim,
        FULL,
        q,
        json!({"z": ENTERPRISE, "f": range(start, end)}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rows = body["data"]["viewer"]["zones"][0]["firewallEventsAdaptive"]
        .as_array()
        .expect("rows");
    let total = sim
        .truth(&TruthQuery {
            dataset: Dataset::FirewallEvents,
            ..TruthQuery::http(ENTERPRISE, start, end)
        })
        .expect("truth")
        .len();
    let interval = rows[0]["sampleInterval"].as_u64().expect("interval");
    assert_eq!(interval, (total as u64).div_ceil(500));
    assert!(rows.iter().all(|r| r["sampleInterval"] == interval));
    assert!(rows.len() < total && !rows.is_empty());
    let datetimes: Vec<&str> = rows
        .iter()
        .map(|r| r["datetime"].as_str().expect("datetime"))
        .collect();
    assert!(
        datetimes.windows(2).all(|w| w[0] >= w[1]),
        "orderBy datetime_DESC"
    );
    // A filter narrows the rows; a small window is not sampled.
    let (_, body) = post(&sim, FULL, q, json!({"z": ENTERPRISE, "f": {"datetime_geq": rfc3339(end - Duration::from_secs(60)), "datetime_lt": rfc3339(end), "source": "rateLimit"}})).await;
    let rows = body["data"]["viewer"]["zones"][0]["firewallEventsAdaptive"]
        .as_array()
        .expect("rows");
    assert!(rows.iter().all(|r| r["sampleInterval"] == 1));
    sim.shutdown().await;
}

#[tokio::test]
async fn budget_errors_with_200_and_429() {
    let mut scenario = scenario();
    scenario.limits.graphql_per_5min = 3;
    let sim = start_with(scenario).await;
    sim.inject(Fault::everywhere(
        EndpointKind::Graphql,
        1,
        FaultKind::GraphqlBudget { status: 200 },
    ));
    let (status, body) = post(&sim, FULL, SETTINGS_QUERY, json!({"zoneTag": PRO})).await;
    assert_eq!(
        (status, first_error(&body)),
        (
            200,
            "rate limiter budget depleted, try again after 5 minutes"
        )
    );
    assert_eq!(body["errors"][0]["extensions"]["code"], "budget");
    assert_eq!(body["data"], Value::Null);
    sim.inject(Fault::everywhere(
        EndpointKind::Graphql,
        1,
        FaultKind::GraphqlBudget { status: 429 },
    ));
    let (status, body) = post(&sim, FULL, SETTINGS_QUERY, json!({"zoneTag": PRO})).await;
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (429, &Value::from("budget"))
    );
    // The third query is within the limit of 3; the fourth exceeds it.
    let (status, _) = post(&sim, FULL, SETTINGS_QUERY, json!({"zoneTag": PRO})).await;
    assert_eq!(status, 200);
    let resp = client()
        .post(format!("{}/graphql", sim.base_url()))
        .bearer_auth(FULL)
        .json(&json!({"query": SETTINGS_QUERY, "variables": {"zoneTag": PRO}}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_some());
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "budget");
    sim.shutdown().await;
}
