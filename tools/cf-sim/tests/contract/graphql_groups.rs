//! GraphQL grouped nodes: `httpRequestsAdaptiveGroups` counts equal the truth (or stay within the zone's sampling
//! error), `logpushHealthAdaptiveGroups` agrees with the pusher's delivery log, and both follow the node limits.

use std::time::Duration;

use cf_sim::{DeliveryStatus, EndpointKind, Fault, FaultKind, RunningSim, Scenario, TruthQuery};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::common::*;
use crate::logpush::{Receiver, pushing_job, secs, wait_deliveries};

const PER_MINUTE: &str = r#"query PerMinute($zoneTag: string, $since: Time!, $until: Time!) {
  viewer { zones(filter: {zoneTag: $zoneTag}) {
    httpRequestsAdaptiveGroups(limit: 5000, filter: {datetime_geq: $since, datetime_lt: $until}, orderBy: [datetimeMinute_ASC]) {
      count dimensions { datetimeMinute } } } } }"#;

const HEALTH: &str = r#"query Health($zoneTag: string, $filter: ZoneLogpushHealthAdaptiveGroupsFilter_InputObject) {
  viewer { zones(filter: {zoneTag: $zoneTag}) {
    logpushHealthAdaptiveGroups(limit: 1000, filter: $filter, orderBy: [datetimeMinute_ASC]) {
      count sum { bytes bytesCompressed records uploads } dimensions { datetimeMinute jobId status destinationType final } } } } }"#;

async fn post(sim: &RunningSim, token: &str, query: &str, variables: Value) -> (u16, Value) {
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

fn node_rows<'a>(body: &'a Value, node: &str) -> &'a Vec<Value> {
    body["data"]["viewer"]["zones"][0][node]
        .as_array()
        .unwrap_or_else(|| panic!("{node} rows in {body}"))
}

fn first_error(body: &Value) -> &str {
    body["errors"][0]["message"]
        .as_str()
        .expect("error message")
}

/// `(minute, count)` rows of a per-minute answer.
fn per_minute(body: &Value) -> Vec<(String, u64)> {
    node_rows(body, "httpRequestsAdaptiveGroups")
        .iter()
        .map(|r| {
            (
                r["dimensions"]["datetimeMinute"]
                    .as_str()
                    .expect("minute")
                    .to_owned(),
                r["count"].as_u64().expect("integer count"),
            )
        })
        .collect()
}

/// The truth's record count for every minute touching `[start, end)`, counting only the part inside it.
fn truth_per_minute(
    sim: &RunningSim,
    zone: &str,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut from = start;
    while from < end {
        let minute = from.unix_timestamp().div_euclid(60) * 60;
        let to = OffsetDateTime::from_unix_timestamp(minute + 60)
            .expect("time")
            .min(end);
        let n = sim
            .truth(&TruthQuery::http(zone, from, to))
            .expect("truth")
            .len() as u64;
        if n > 0 {
            out.push((
                rfc3339(OffsetDateTime::from_unix_timestamp(minute).expect("time")),
                n,
            ));
        }
        from = to;
    }
    out
}

fn vars(zone: &str, start: OffsetDateTime, end: OffsetDateTime) -> Value {
    json!({"zoneTag": zone, "since": rfc3339(start), "until": rfc3339(end)})
}

#[tokio::test]
async fn requests_per_minute_equal_the_truth() {
    let sim = start().await;
    let end = T0 - Duration::from_secs(60);
    let start = end - Duration::from_secs(3600);
    let (status, body) = post(&sim, ANALYTICS_ONLY, PER_MINUTE, vars(BUSINESS, start, end)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"], Value::Null);
    let got = per_minute(&body);
    assert_eq!(got.len(), 60, "5 requests/s leave no minute empty");
    assert_eq!(got, truth_per_minute(&sim, BUSINESS, start, end));

    // A window cut inside minutes counts only its part of the first and last minute.
    let (start, end) = (
        start + Duration::from_secs(30),
        end - Duration::from_secs(15),
    );
    let (_, body) = post(&sim, FULL, PER_MINUTE, vars(BUSINESS, start, end)).await;
    let got = per_minute(&body);
    assert_eq!(got.len(), 60);
    assert_eq!(got, truth_per_minute(&sim, BUSINESS, start, end));

    // The same records grouped by hour (and with no dimension at all) add up to the same total.
    let total: u64 = got.iter().map(|(_, n)| n).sum();
    let q = r#"query($z: string, $f: F) { viewer { zones(filter: {zoneTag: $z}) {
        byHour: httpRequestsAdaptiveGroups(limit: 10, filter: $f) { count dimensions { datetimeHour } }
        all: httpRequestsAdaptiveGroups(limit: 10, filter: $f) { n: count } } } }"#;
    let f = json!({"datetime_geq": rfc3339(start), "datetime_lt": rfc3339(end)});
    let (status, body) = post(&sim, FULL, q, json!({"z": BUSINESS, "f": f})).await;
    assert_eq!(status, 200, "{body}");
    let zone = &body["data"]["viewer"]["zones"][0];
    let by_hour: u64 = zone["byHour"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["count"].as_u64().expect("count"))
        .sum();
    assert_eq!(by_hour, total);
    assert_eq!(zone["all"], json!([{"n": total}]));

    // Ordering by count, and the limit.
    let q = r#"query($z: string, $f: F) { viewer { zones(filter: {zoneTag: $z}) {
        httpRequestsAdaptiveGroups(limit: 3, filter: $f, orderBy: [count_DESC]) { count dimensions { datetimeMinute } } } } }"#;
    let (_, body) = post(&sim, FULL, q, json!({"z": BUSINESS, "f": f})).await;
    let top: Vec<u64> = per_minute(&body).into_iter().map(|(_, n)| n).collect();
    let mut expected: Vec<u64> = got.iter().map(|(_, n)| *n).collect();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(top, expected[..3]);

    // Seconds not yet received count nothing.
    let (_, body) = post(
        &sim,
        FULL,
        PER_MINUTE,
        vars(BUSINESS, T0, T0 + Duration::from_secs(600)),
    )
    .await;
    assert!(per_minute(&body).is_empty(), "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn sampling_error_stays_within_its_bound() {
    let error = 0.05;
    let mut scenario = scenario();
    for zone in &mut scenario.zones {
        if zone.id == ENTERPRISE {
            zone.graphql_sampling_error = error;
        }
    }
    let sim = start_with(scenario).await;
    let end = T0 - Duration::from_secs(60);
    let start = end - Duration::from_secs(1200);
    let (status, body) = post(&sim, FULL, PER_MINUTE, vars(ENTERPRISE, start, end)).await;
    assert_eq!(status, 200, "{body}");
    let got = per_minute(&body);
    let truth = truth_per_minute(&sim, ENTERPRISE, start, end);
    assert_eq!(got.len(), truth.len());
    let mut moved = 0;
    for ((minute, n), (true_minute, t)) in got.iter().zip(&truth) {
        assert_eq!(minute, true_minute);
        let bound = (*t as f64 * error).floor() as u64;
        assert!(
            n.abs_diff(*t) <= bound,
            "{minute}: {n} vs {t} (bound {bound})"
        );
        moved += usize::from(n != t);
    }
    assert!(
        moved > truth.len() / 2,
        "about 3000 requests a minute move by up to 150"
    );
    // Deterministic: the same query gives the same numbers.
    let (_, again) = post(&sim, FULL, PER_MINUTE, vars(ENTERPRISE, start, end)).await;
    assert_eq!(per_minute(&again), got);
    // Other zones stay exact.
    let (_, body) = post(&sim, FULL, PER_MINUTE, vars(PRO, start, end)).await;
    assert_eq!(per_minute(&body), truth_per_minute(&sim, PRO, start, end));
    sim.shutdown().await;

    let bad = Scenario::from_toml(&format!(
        "{}\n",
        cf_sim::EXAMPLE_SCENARIO_TOML.replace(
            "rate = 50.0\n",
            "rate = 50.0\ngraphql_sampling_error = 1.0\n"
        )
    ));
    assert!(
        bad.is_err_and(|e| e.to_string().contains("graphql_sampling_error")),
        "errors of 100% or more are refused"
    );
}

#[tokio::test]
async fn grouped_nodes_enforce_limits_filters_and_access() {
    let sim = start().await;
    let end = T0 - Duration::from_secs(60);
    let hour = |zone: &str| vars(zone, end - Duration::from_secs(3600), end);
    let path = json!(["viewer", "zones", "0", "httpRequestsAdaptiveGroups"]);

    let q = |args: &str, fields: &str| {
        format!(
            "query($zoneTag: string, $since: Time, $until: Time) {{ viewer {{ zones(filter: {{zoneTag: $zoneTag}}) {{ httpRequestsAdaptiveGroups({args}) {{ {fields} }} }} }} }}"
        )
    };
    let bounded = "limit: 100, filter: {datetime_geq: $since, datetime_lt: $until}";
    for (args, fields, vars, message) in [
        (
            "limit: 100, filter: {datetime_geq: $since, datetime_lt: $until, clientCountryName: \"DE\"}",
            "count",
            hour(PRO),
            "error parsing args: unknown field \"clientCountryName\" in filter",
        ),
        (
            "limit: 100, filter: {datetime_geq: $since}",
            "count",
            hour(PRO),
            "error parsing args: filter must bound datetime with datetime_geq or datetime_gt and datetime_lt or datetime_leq",
        ),
        (
            bounded,
            "count",
            vars(FREE, end - Duration::from_secs(86_401), end),
            "query time range is too large: it must not exceed 86400s",
        ),
        (
            bounded,
            "count",
            vars(
                FREE,
                T0 - Duration::from_secs(9 * 86_400),
                T0 - Duration::from_secs(9 * 86_400 - 60),
            ),
            "cannot request data older than 691200s",
        ),
        (
            "limit: 10001, filter: {datetime_geq: $since, datetime_lt: $until}",
            "count",
            hour(PRO),
            "limit must be positive number and not greater than 10000",
        ),
        (
            bounded,
            "count dimensions { clientCountryName }",
            hour(PRO),
            "unknown field \"clientCountryName\"",
        ),
        (
            bounded,
            "count sum { edgeResponseBytes }",
            hour(PRO),
            "unknown field \"sum\"",
        ),
        (
            "limit: 100, filter: {datetime_geq: $since, datetime_lt: $until}, orderBy: [datetimeHour_ASC]",
            "count dimensions { datetimeMinute }",
            hour(PRO),
            "error parsing args: invalid orderBy value \"datetimeHour_ASC\"",
        ),
    ] {
        let (status, body) = post(&sim, FULL, &q(args, fields), vars).await;
        assert_eq!((status, first_error(&body)), (400, message), "{body}");
        assert_eq!(body["data"], Value::Null);
        assert!(
            body["errors"][0]["path"] == path || fields.contains('{'),
            "{body}"
        );
    }
    // Business and Enterprise zones may ask for three days at once, and a month back.
    let (status, body) = post(
        &sim,
        FULL,
        &q(bounded, "count"),
        vars(ENTERPRISE, end - Duration::from_secs(3 * 86_400), end),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Authorisation errors come with HTTP 200, as for every node.
    let (status, body) = post(&sim, LOGS_ONLY, PER_MINUTE, hour(ENTERPRISE)).await;
    assert_eq!(
        (status, first_error(&body)),
        (
            200,
            format!("zones '[{ENTERPRISE}]' are not authorized").as_str()
        )
    );
    assert_eq!(body["errors"][0]["extensions"]["code"], "authz");
    let (status, body) = post(&sim, LOGS_ONLY, HEALTH, json!({"zoneTag": ENTERPRISE, "filter": {"datetime_geq": rfc3339(end - Duration::from_secs(60))}})).await;
    assert_eq!(status, 200);
    assert_eq!(
        first_error(&body),
        format!("zones '[{ENTERPRISE}]' are not authorized")
    );
    // The budget error too.
    sim.inject(Fault::everywhere(
        EndpointKind::Graphql,
        1,
        FaultKind::GraphqlBudget { status: 200 },
    ));
    let (status, body) = post(&sim, FULL, PER_MINUTE, hour(PRO)).await;
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (200, &json!("budget"))
    );

    // Logpush health: a month is too wide, unknown dimensions in the filter are refused.
    let health = |filter: Value| json!({"zoneTag": ENTERPRISE, "filter": filter});
    let (status, body) = post(
        &sim,
        FULL,
        HEALTH,
        health(json!({"datetime_geq": rfc3339(T0 - Duration::from_secs(31 * 86_400)), "datetime_lt": rfc3339(T0)})),
    )
    .await;
    assert_eq!(
        (status, first_error(&body)),
        (
            400,
            "query time range is too large: it must not exceed 2592000s"
        )
    );
    let (status, body) = post(
        &sim,
        FULL,
        HEALTH,
        health(json!({"datetime_geq": rfc3339(end), "bucket": "x"})),
    )
    .await;
    assert_eq!(
        (status, first_error(&body)),
        (
            400,
            "error parsing args: unknown field \"bucket\" in filter"
        )
    );
    let (status, body) = post(&sim, FULL, HEALTH, health(json!({"jobId": 1}))).await;
    assert_eq!(status, 400, "{body}");

    // Both nodes report their limits in `settings`.
    let q = r#"query($z: string) { viewer { zones(filter: {zoneTag: $z}) { settings {
        httpRequestsAdaptiveGroups { enabled maxDuration notOlderThan maxPageSize availableFields }
        logpushHealthAdaptiveGroups { maxDuration notOlderThan maxPageSize availableFields } } } } }"#;
    let (status, body) = post(&sim, FULL, q, json!({"z": FREE})).await;
    assert_eq!(status, 200, "{body}");
    let settings = &body["data"]["viewer"]["zones"][0]["settings"];
    let http = &settings["httpRequestsAdaptiveGroups"];
    assert_eq!(
        (
            &http["enabled"],
            &http["maxDuration"],
            &http["notOlderThan"],
            &http["maxPageSize"]
        ),
        (
            &json!(true),
            &json!(86_400),
            &json!(691_200),
            &json!(10_000)
        )
    );
    assert!(
        http["availableFields"]
            .as_array()
            .expect("fields")
            .contains(&json!("dimensions_datetimeMinute"))
    );
    let health = &settings["logpushHealthAdaptiveGroups"];
    assert_eq!(health["maxDuration"], 2_592_000);
    for field in [
        "count",
        "sum_records",
        "sum_bytesCompressed",
        "dimensions_final",
        "dimensions_jobId",
    ] {
        assert!(
            health["availableFields"]
                .as_array()
                .expect("fields")
                .contains(&json!(field)),
            "{field}"
        );
    }
    sim.shutdown().await;
}

/// Sums of `sum.records` over health rows with `final` and whether `status` is 200.
fn final_records(rows: &[Value], delivered: bool) -> u64 {
    rows.iter()
        .filter(|r| {
            r["dimensions"]["final"] == 1 && (r["dimensions"]["status"] == 200) == delivered
        })
        .map(|r| r["sum"]["records"].as_u64().expect("records"))
        .sum()
}

#[tokio::test]
async fn logpush_health_reports_every_upload_as_the_pusher_made_it() {
    let mut scenario = scenario();
    scenario.logpush.max_attempts = 3;
    scenario.logpush.retry_backoff_secs = 10;
    let sim = start_with(scenario).await;
    let receiver = Receiver::start().await;
    let id = pushing_job(&sim, &receiver, "/health").await;

    // Batch 1 fails three times and is dropped; batch 2 fails once and is delivered on its retry.
    receiver.answer(503);
    sim.advance(secs(30));
    wait_deliveries(&sim, ENTERPRISE, "attempt 1", |d| {
        d.first().is_some_and(|b| b.attempts == 1)
    })
    .await;
    sim.advance(secs(10));
    wait_deliveries(&sim, ENTERPRISE, "attempt 2", |d| {
        d.first().is_some_and(|b| b.attempts == 2)
    })
    .await;
    sim.advance(secs(20));
    wait_deliveries(&sim, ENTERPRISE, "the drop and batch 2's failure", |d| {
        d.first()
            .is_some_and(|b| b.status == DeliveryStatus::Dropped)
            && d.get(1).is_some_and(|b| b.attempts == 1)
    })
    .await;
    receiver.answer(200);
    sim.advance(secs(40));
    wait_deliveries(&sim, ENTERPRISE, "batch 2 and 3 delivered", |d| {
        d.len() >= 3
            && d.iter()
                .skip(1)
                .all(|b| b.status == DeliveryStatus::Delivered)
    })
    .await;
    // Batch 4 is lost to the drop fault without an upload.
    sim.inject(Fault::on_zone(
        ENTERPRISE,
        EndpointKind::LogpushPush,
        1,
        FaultKind::DropBatch,
    ));
    sim.advance(secs(30));
    let deliveries = wait_deliveries(
        &sim,
        ENTERPRISE,
        "the dropped batch 4 and no pending",
        |d| {
            d.len() >= 4
                && d[3].status == DeliveryStatus::Dropped
                && d.iter().all(|b| b.status != DeliveryStatus::Pending)
        },
    )
    .await;

    // Since 10 minutes ago, up to now (no upper bound, as in Cloudflare's example).
    let filter = json!({"datetime_geq": rfc3339(T0 - Duration::from_secs(600))});
    let (status, body) = post(
        &sim,
        FULL,
        HEALTH,
        json!({"zoneTag": ENTERPRISE, "filter": filter}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"], Value::Null);
    let rows = node_rows(&body, "logpushHealthAdaptiveGroups").clone();
    let uploads = sim.logpush_uploads(ENTERPRISE);
    let attempts: u32 = deliveries.iter().map(|b| b.attempts).sum();
    assert_eq!(
        uploads.len() as u32,
        attempts + 1,
        "every attempt, and the drop fault's batch once"
    );
    let count: u64 = rows
        .iter()
        .map(|r| r["count"].as_u64().expect("count"))
        .sum();
    let summed: u64 = rows
        .iter()
        .map(|r| r["sum"]["uploads"].as_u64().expect("uploads"))
        .sum();
    assert_eq!(
        (count, summed),
        (uploads.len() as u64, uploads.len() as u64)
    );
    assert!(rows.iter().all(|r| r["dimensions"]["jobId"] == id
        && r["dimensions"]["destinationType"] == "http"));

    // Final uploads with status 200 carry exactly the delivered lines, the failed final ones the dropped lines.
    let delivered = sim.logpush_delivered_lines(ENTERPRISE, Some(id)).len() as u64;
    let dropped = sim.logpush_dropped_lines(ENTERPRISE, Some(id)).len() as u64;
    assert!(delivered > 0 && dropped > 0);
    assert_eq!(final_records(&rows, true), delivered);
    assert_eq!(final_records(&rows, false), dropped);
    let delivered_bytes: u64 = deliveries
        .iter()
        .filter(|b| b.status == DeliveryStatus::Delivered)
        .map(|b| b.bytes)
        .sum();
    let final_ok_bytes: u64 = rows
        .iter()
        .filter(|r| r["dimensions"]["final"] == 1 && r["dimensions"]["status"] == 200)
        .map(|r| r["sum"]["bytes"].as_u64().expect("bytes"))
        .sum();
    assert_eq!(final_ok_bytes, delivered_bytes);
    assert!(rows.iter().all(|r| {
        let compressed = r["sum"]["bytesCompressed"].as_u64().expect("compressed");
        compressed > 0 && compressed < r["sum"]["bytes"].as_u64().expect("bytes")
    }));

    // By status and finality: three 503s (two retried, one final), batch 2's retried 503, the drop fault's 0.
    let q = r#"query($z: string, $f: F) { viewer { zones(filter: {zoneTag: $z}) {
        logpushHealthAdaptiveGroups(limit: 100, filter: $f, orderBy: [status_ASC, final_ASC]) {
          count dimensions { status final } } } } }"#;
    let (_, body) = post(&sim, FULL, q, json!({"z": ENTERPRISE, "f": filter})).await;
    let grouped: Vec<(u64, u64, u64)> = node_rows(&body, "logpushHealthAdaptiveGroups")
        .iter()
        .map(|r| {
            (
                r["dimensions"]["status"].as_u64().expect("status"),
                r["dimensions"]["final"].as_u64().expect("final"),
                r["count"].as_u64().expect("count"),
            )
        })
        .collect();
    let successes = deliveries
        .iter()
        .filter(|b| b.status == DeliveryStatus::Delivered)
        .count() as u64;
    assert_eq!(
        grouped,
        [(0, 1, 1), (200, 1, successes), (503, 0, 3), (503, 1, 1)]
    );

    // Filtering on the failed final uploads of the job, the way an alert would.
    let failed = json!({"datetime_geq": rfc3339(T0 - Duration::from_secs(600)), "datetime_lt": rfc3339(sim.now() + Duration::from_secs(1)),
        "jobId": id, "final": 1, "status_neq": 200});
    let (_, body) = post(
        &sim,
        FULL,
        HEALTH,
        json!({"zoneTag": ENTERPRISE, "filter": failed}),
    )
    .await;
    assert_eq!(
        final_records(node_rows(&body, "logpushHealthAdaptiveGroups"), false),
        dropped
    );
    assert!(
        node_rows(&body, "logpushHealthAdaptiveGroups")
            .iter()
            .all(|r| r["dimensions"]["final"] == 1)
    );
    // Another job id matches nothing; a window before the job matches nothing.
    let other = json!({"datetime_geq": rfc3339(T0 - Duration::from_secs(600)), "jobId": id + 1});
    let (_, body) = post(
        &sim,
        FULL,
        HEALTH,
        json!({"zoneTag": ENTERPRISE, "filter": other}),
    )
    .await;
    assert_eq!(node_rows(&body, "logpushHealthAdaptiveGroups").len(), 0);
    let before =
        json!({"datetime_geq": rfc3339(T0 - Duration::from_secs(600)), "datetime_lt": rfc3339(T0)});
    let (_, body) = post(
        &sim,
        FULL,
        HEALTH,
        json!({"zoneTag": ENTERPRISE, "filter": before}),
    )
    .await;
    assert_eq!(node_rows(&body, "logpushHealthAdaptiveGroups").len(), 0);
    sim.shutdown().await;
}
