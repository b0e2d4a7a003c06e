//! v4 endpoints: zone details, token verification, credentials, permissions, rate limits, CMB.

use std::time::Duration;

use serde_json::Value;

use crate::common::*;

#[tokio::test]
async fn zone_details_carry_plan_legacy_ids() {
    let sim = start().await;
    for (zone, legacy, plan_id, name) in [
        (
            FREE,
            "free",
            "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
            "Free Website",
        ),
        (
            PRO,
            "pro",
            "a577b510288e82b26486fd1df47000ec",
            "Pro Website",
        ),
        (
            BUSINESS,
            "business",
            "1ac039f6c29b691475c3d74fe588d1ae",
            "Business Website",
        ),
        (
            ENTERPRISE,
            "enterprise",
            "94f3b7b768b0458b56d2cac4fe5ec0f9",
            "Enterprise Website",
        ),
    ] {
        let resp = get(&sim, FULL, &format!("/zones/{zone}")).await;
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("application/json")
        );
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["success"], true);
        assert_eq!(body["errors"], serde_json::json!([]));
        assert_eq!(body["messages"], serde_json::json!([]));
        assert_eq!(body["result"]["id"], zone);
        assert_eq!(body["result"]["plan"]["legacy_id"], legacy);
        assert_eq!(body["result"]["plan"]["id"], plan_id);
        assert_eq!(body["result"]["plan"]["name"], name);
        assert!(
            body["result"]["account"]["id"]
                .as_str()
                .is_some_and(|a| a.len() == 32)
        );
        assert!(
            body.get("result_info").is_none(),
            "result_info only on collections"
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_zone_id_gets_7003_and_7000() {
    let sim = start().await;
    let (status, body) = get_json(&sim, FULL, "/zones/example.com/logs/received").await;
    assert_eq!(status, 400);
    assert_eq!(error_codes(&body), [7003, 7000]);
    assert_eq!(
        body["errors"][0]["message"],
        "Could not route to /client/v4/zones/example.com/logs/received, perhaps your object identifier is invalid?"
    );
    assert_eq!(body["errors"][1]["message"], "No route for that URI");
    assert_eq!(body["success"], false);
    assert_eq!(body["result"], Value::Null);
    sim.shutdown().await;
}

#[tokio::test]
async fn token_verification_routes() {
    let sim = start().await;
    let (status, body) = get_json(&sim, FULL, "/user/tokens/verify").await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["status"], "active");
    assert_eq!(body["result"]["id"].as_str().map(str::len), Some(32));
    assert_eq!(body["messages"][0]["code"], 10000);
    assert_eq!(
        body["messages"][0]["message"],
        "This API Token is valid and active"
    );
    assert_eq!(body["errors"], serde_json::json!([]));

    let (status, body) = get_json(&sim, ACCOUNT_TOKEN, "/user/tokens/verify").await;
    assert_eq!((status, error_codes(&body)), (400, vec![1000]));
    assert_eq!(body["errors"][0]["message"], "Invalid API Token");
    let (status, body) = get_json(
        &sim,
        ACCOUNT_TOKEN,
        &format!("/accounts/{BUSINESS_ACCOUNT}/tokens/verify"),
    )
    .await;
    assert_eq!(
        (status, &body["result"]["status"]),
        (200, &Value::from("active"))
    );
    let (status, body) = get_json(
        &sim,
        FULL,
        &format!("/accounts/{BUSINESS_ACCOUNT}/tokens/verify"),
    )
    .await;
    assert_eq!((status, error_codes(&body)), (400, vec![1000]));
    let (status, body) = get_json(&sim, "cfut_nobody", "/user/tokens/verify").await;
    assert_eq!((status, error_codes(&body)), (400, vec![1000]));
    let (status, body) = get_json(&sim, DISABLED, "/user/tokens/verify").await;
    assert_eq!(
        (status, &body["result"]["status"]),
        (200, &Value::from("disabled"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn credential_failures_use_cloudflare_codes() {
    let sim = start().await;
    let url = format!("{}/zones/{ENTERPRISE}", sim.base_url());
    let send = |req: reqwest::RequestBuilder| async move {
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.expect("json"))
    };
    let (status, body) = send(client().get(&url)).await;
    assert_eq!((status, error_codes(&body)), (403, vec![10000]));
    assert_eq!(body["errors"][0]["message"], "Authentication error");

    let (status, body) = send(client().get(&url).header("authorization", "Token abc")).await;
    assert_eq!((status, error_codes(&body)), (400, vec![6003]));
    assert_eq!(body["errors"][0]["message"], "Invalid request headers");
    assert_eq!(body["errors"][0]["error_chain"][0]["code"], 6111);

    let (status, body) = send(
        client()
            .get(&url)
            .header("x-auth-email", "not-an-email")
            .header("x-auth-key", "short"),
    )
    .await;
    assert_eq!(status, 400);
    let chain: Vec<i64> = body["errors"][0]["error_chain"]
        .as_array()
        .expect("chain")
        .iter()
        .map(|e| e["code"].as_i64().expect("code"))
        .collect();
    assert_eq!(chain, [6102, 6103]);

    let (status, body) = send(
        client()
            .get(&url)
            .header("x-auth-email", KEY_EMAIL)
            .header("x-auth-key", KEY),
    )
    .await;
    assert_eq!(
        (status, &body["result"]["id"]),
        (200, &Value::from(ENTERPRISE))
    );

    let (status, body) = send(client().get(&url).bearer_auth("cfut_unknown_token")).await;
    assert_eq!((status, error_codes(&body)), (403, vec![9109]));
    let (status, body) = send(client().get(&url).bearer_auth(DISABLED)).await;
    assert_eq!((status, error_codes(&body)), (403, vec![9109]));
    sim.shutdown().await;
}

#[tokio::test]
async fn permissions_and_zone_scope_are_enforced() {
    let sim = start().await;
    let (start, end) = window();
    // Analytics-only token: zone read works, Logpull does not.
    assert_eq!(
        get(&sim, ANALYTICS_ONLY, &format!("/zones/{ENTERPRISE}"))
            .await
            .status(),
        200
    );
    let resp = client()
        .get(received_url(&sim, ENTERPRISE, start, end, ""))
        .bearer_auth(ANALYTICS_ONLY)
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 403);
    assert_eq!(error_codes(&resp.json().await.expect("json")), [10000]);
    // Logs-only token is scoped to the enterprise zone.
    let resp = client()
        .get(received_url(&sim, ENTERPRISE, start, end, ""))
        .bearer_auth(LOGS_ONLY)
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 200);
    let (status, body) = get_json(&sim, LOGS_ONLY, &format!("/zones/{PRO}")).await;
    assert_eq!((status, error_codes(&body)), (403, vec![10000]));
    // Account token only reaches zones of its account.
    assert_eq!(
        get(&sim, ACCOUNT_TOKEN, &format!("/zones/{BUSINESS}"))
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&sim, ACCOUNT_TOKEN, &format!("/zones/{FREE}"))
            .await
            .status(),
        403
    );
    // Logpull is Enterprise-only.
    let (status, body) = get_json(
        &sim,
        FULL,
        &format!("/zones/{BUSINESS}/logs/received?start=1&end=2"),
    )
    .await;
    assert_eq!((status, error_codes(&body)), (403, vec![1004]));
    sim.shutdown().await;
}

#[tokio::test]
async fn eu_metadata_boundary_blocks_logpull() {
    let sim = start().await;
    let (status, body) = get_json(
        &sim,
        FULL,
        "/accounts/5d0c1e2f3a4b5c6d7e8f9a0b1c2d3e4f/logs/control/cmb/config",
    )
    .await;
    assert_eq!(
        (status, &body["result"]["regions"]),
        (200, &Value::from("eu"))
    );
    let (status, body) = get_json(
        &sim,
        FULL,
        &format!("/accounts/{BUSINESS_ACCOUNT}/logs/control/cmb/config"),
    )
    .await;
    assert_eq!((status, &body["result"]), (200, &Value::Null));
    let (start, end) = window();
    let resp = client()
        .get(received_url(&sim, SOVEREIGN, start, end, ""))
        .bearer_auth(FULL)
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .expect("body")
            .contains("EU Customer Metadata Boundary")
    );
    sim.shutdown().await;
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii").to_owned())
}

#[tokio::test]
async fn rate_limit_headers_and_logpull_zone_limit() {
    let mut scenario = scenario();
    scenario.limits.logpull_per_zone_per_min = 15;
    let sim = start_with(scenario).await;
    let resp = get(&sim, FULL, &format!("/zones/{FREE}")).await;
    assert_eq!(
        header(&resp, "ratelimit").as_deref(),
        Some("\"default\";r=99999;t=300")
    );
    assert_eq!(
        header(&resp, "ratelimit-policy").as_deref(),
        Some("\"default\";q=100000;w=300")
    );
    assert!(header(&resp, "retry-after").is_none());
    // Errors carry the headers too.
    let resp = get(&sim, "cfut_unknown", &format!("/zones/{FREE}")).await;
    assert!(header(&resp, "ratelimit").is_some() && header(&resp, "ratelimit-policy").is_some());

    let (start, end) = window();
    let url = received_url(&sim, ENTERPRISE, start, end, "&count=1");
    for i in 0..15 {
        let resp = client()
            .get(&url)
            .bearer_auth(FULL)
            .send()
            .await
            .expect("req");
        assert_eq!(resp.status(), 200, "request {i}");
        assert!(header(&resp, "ratelimit").is_some());
    }
    let resp = client()
        .get(&url)
        .bearer_auth(FULL)
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after").as_deref(), Some("60"));
    assert_eq!(error_codes(&resp.json().await.expect("json")), [971]);
    // Another zone is not affected; time heals the limited one.
    assert_eq!(
        get(&sim, FULL, &format!("/zones/{ENTERPRISE}"))
            .await
            .status(),
        200
    );
    sim.advance(Duration::from_secs(61));
    assert_eq!(
        client()
            .get(&url)
            .bearer_auth(FULL)
            .send()
            .await
            .expect("req")
            .status(),
        200
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn global_token_limit_blocks_for_five_minutes() {
    let mut scenario = scenario();
    scenario.limits.global_per_5min = 3;
    let sim = start_with(scenario).await;
    for remaining in [2, 1, 0] {
        let resp = get(&sim, FULL, &format!("/zones/{FREE}")).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            header(&resp, "ratelimit").expect("header"),
            format!("\"default\";r={remaining};t=300")
        );
    }
    let resp = get(&sim, FULL, &format!("/zones/{PRO}")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after").as_deref(), Some("300"));
    // Other tokens have their own budget.
    assert_eq!(
        get(&sim, ANALYTICS_ONLY, &format!("/zones/{PRO}"))
            .await
            .status(),
        200
    );
    sim.advance(Duration::from_secs(200));
    let resp = get(&sim, FULL, &format!("/zones/{PRO}")).await;
    assert_eq!(
        (resp.status().as_u16(), header(&resp, "retry-after")),
        (429, Some("100".to_owned()))
    );
    sim.advance(Duration::from_secs(100));
    assert_eq!(
        get(&sim, FULL, &format!("/zones/{PRO}")).await.status(),
        200
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn clock_and_request_log_routes() {
    let sim = start().await;
    let root = sim.root_url();
    let body: Value = client()
        .get(format!("{root}/__sim/clock"))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(body["now"], "2026-01-15T12:00:00Z");
    let body: Value = client()
        .post(format!("{root}/__sim/clock"))
        .json(&serde_json::json!({"advance_secs": 90}))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(body["now"], "2026-01-15T12:01:30Z");
    let body: Value = client()
        .post(format!("{root}/__sim/clock"))
        .json(&serde_json::json!({"now": "2026-02-01T00:00:00Z"}))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(body["now"], "2026-02-01T00:00:00Z");
    assert_eq!(sim.now().unix_timestamp(), 1_769_904_000);

    let _ = get(&sim, FULL, &format!("/zones/{FREE}?x=1")).await;
    let log: Vec<cf_sim::RequestRecord> = client()
        .get(format!("{root}/__sim/requests"))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    let last = log.last().expect("a request was logged");
    assert_eq!(
        (
            last.method.as_str(),
            last.path.as_str(),
            last.query.as_str(),
            last.status
        ),
        (
            "GET",
            format!("/client/v4/zones/{FREE}").as_str(),
            "x=1",
            200
        )
    );
    assert_eq!(last.zone.as_deref(), Some(FREE));
    assert_eq!(rfc3339(last.time), "2026-02-01T00:00:00Z");
    assert!(log.iter().all(|r| !r.path.starts_with("/__sim/")));
    assert_eq!(sim.requests(), log);
    sim.shutdown().await;
}

#[test]
fn example_scenario_command_prints_a_valid_scenario() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cf-sim"))
        .arg("example-scenario")
        .output()
        .expect("run cf-sim");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf8");
    let scenario = cf_sim::Scenario::from_toml(&text).expect("the printed scenario parses");
    let plans: std::collections::BTreeSet<&str> =
        scenario.zones.iter().map(|z| z.plan.legacy_id()).collect();
    assert_eq!(
        plans.into_iter().collect::<Vec<_>>(),
        ["business", "enterprise", "free", "pro"]
    );
    assert!(
        text.lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count()
            > 10,
        "the scenario is commented"
    );
}

#[tokio::test]
async fn binary_serves_a_scenario_file() {
    let path = std::env::temp_dir().join(format!("cf-sim-scenario-{}.toml", std::process::id()));
    std::fs::write(&path, cf_sim::EXAMPLE_SCENARIO_TOML).expect("write scenario");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cf-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--seed",
            "9",
            "--now",
            "2026-01-15T12:00:00Z",
            "--frozen",
            "--scenario",
        ])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn cf-sim");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let banner = lines
        .next_line()
        .await
        .expect("read")
        .expect("a banner line");
    let base = banner
        .rsplit("API base ")
        .next()
        .expect("base url")
        .trim_end_matches(')')
        .to_owned();
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/client/v4"),
        "{banner}"
    );
    let resp = client()
        .get(format!("{base}/zones/{ENTERPRISE}"))
        .bearer_auth(FULL)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    let root = base.trim_end_matches("/client/v4");
    let clock: Value = client()
        .get(format!("{root}/__sim/clock"))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(clock["now"], "2026-01-15T12:00:00Z");
    child.kill().await.expect("stop cf-sim");
    let _ = std::fs::remove_file(&path);
}

/// 200 requests/s per client IP (here lowered to 5): over it, every API call from the address, whatever the
/// credential, gets 429 code 971 for 5 minutes.
#[tokio::test]
async fn per_ip_limit_blocks_all_calls_for_five_minutes() {
    let mut scenario = scenario();
    scenario.limits.per_ip_per_sec = 5;
    let sim = start_with(scenario).await;
    // Several tokens, sent together so they land in the same real second; the IP's budget is shared.
    let tokens = [
        FULL,
        ANALYTICS_ONLY,
        LOGS_ONLY,
        FULL,
        ANALYTICS_ONLY,
        LOGS_ONLY,
        FULL,
        ANALYTICS_ONLY,
    ];
    let responses = futures::future::join_all(
        tokens
            .iter()
            .map(|token| get(&sim, token, "/user/tokens/verify")),
    )
    .await;
    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    for resp in responses.into_iter().filter(|r| r.status() == 429) {
        assert_eq!(header(&resp, "retry-after").as_deref(), Some("300"));
        assert_eq!(
            header(&resp, "ratelimit").as_deref(),
            Some("\"default\";r=0;t=300")
        );
        assert_eq!(error_codes(&resp.json().await.expect("json")), [971]);
    }
    // Blocked for every credential, and for none at all, until 5 simulated minutes pass.
    sim.advance(Duration::from_secs(120));
    let resp = get(&sim, ACCOUNT_TOKEN, &format!("/zones/{PRO}")).await;
    assert_eq!(
        (resp.status().as_u16(), header(&resp, "retry-after")),
        (429, Some("180".to_owned()))
    );
    let resp = client()
        .get(format!("{}/zones/{PRO}", sim.base_url()))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 429);
    sim.advance(Duration::from_secs(180));
    assert_eq!(
        get(&sim, FULL, &format!("/zones/{PRO}")).await.status(),
        200
    );
    sim.shutdown().await;
}
