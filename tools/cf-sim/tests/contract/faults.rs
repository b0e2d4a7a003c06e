//! Fault injection through the in-process handle and through `POST /__sim/faults`.

use std::io::Read;

use cf_sim::{EndpointKind, Fault, FaultKind, Plan, TruthQuery};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::common::*;

fn logpull_fault(count: u32, kind: FaultKind) -> Fault {
    Fault::on_zone(ENTERPRISE, EndpointKind::Logpull, count, kind)
}

async fn pull_raw(sim: &cf_sim::RunningSim, gzip: bool) -> reqwest::Response {
    let (start, end) = window();
    let mut req = raw_client()
        .get(received_url(sim, ENTERPRISE, start, end, ""))
        .bearer_auth(FULL);
    if gzip {
        req = req.header("accept-encoding", "gzip");
    }
    req.send().await.expect("request")
}

fn truth(sim: &cf_sim::RunningSim) -> Vec<String> {
    let (start, end) = window();
    sim.truth(&TruthQuery::http(ENTERPRISE, start, end))
        .expect("truth")
}

#[tokio::test]
async fn whole_response_faults_fire_count_times() {
    let sim = start().await;
    sim.inject(logpull_fault(
        2,
        FaultKind::RateLimit {
            retry_after_secs: 7,
        },
    ));
    for _ in 0..2 {
        let resp = pull_raw(&sim, false).await;
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "7");
        assert_eq!(error_codes(&resp.json().await.expect("json")), [971]);
    }
    assert_eq!(pull_raw(&sim, false).await.status(), 200);

    sim.inject(logpull_fault(1, FaultKind::ServerError { status: 502 }));
    assert_eq!(pull_raw(&sim, false).await.status(), 502);
    sim.inject(logpull_fault(1, FaultKind::IdleTimeout));
    assert_eq!(pull_raw(&sim, false).await.status(), 408);
    // A fault on another zone or endpoint does not fire here.
    sim.inject(Fault::on_zone(
        PRO,
        EndpointKind::Zone,
        1,
        FaultKind::ServerError { status: 500 },
    ));
    assert_eq!(pull_raw(&sim, false).await.status(), 200);
    assert_eq!(
        get(&sim, FULL, &format!("/zones/{PRO}")).await.status(),
        500
    );
    let faults: Vec<Option<String>> = sim.requests().into_iter().map(|r| r.fault).collect();
    assert_eq!(
        faults
            .iter()
            .flatten()
            .filter(|f| *f == "rate_limit")
            .count(),
        2
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn stream_error_trailer_after_n_lines() {
    let sim = start().await;
    sim.inject(logpull_fault(1, FaultKind::StreamError { after_lines: 10 }));
    let resp = pull_raw(&sim, false).await;
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.expect("body");
    let (records, trailer) = body.rsplit_once('\n').expect("lines");
    assert_eq!(trailer, "Error streaming data");
    let truth = truth(&sim);
    assert_eq!(records.lines().count(), 10);
    for line in records.lines() {
        assert!(truth.binary_search(&format!("{line}\n")).is_ok());
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn connection_reset_after_n_bytes() {
    let sim = start().await;
    sim.inject(logpull_fault(
        1,
        FaultKind::ResetAfterBytes { after_bytes: 5000 },
    ));
    let resp = pull_raw(&sim, false).await;
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut received = 0;
    let mut failed = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => received += bytes.len(),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the body must end in a transport error");
    assert_eq!(received, 5000);
    // The next request is served normally.
    assert_eq!(
        sorted_lines(&pull_raw(&sim, false).await.text().await.expect("body")),
        truth(&sim)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn truncated_gzip_keeps_http_framing_but_breaks_gzip() {
    let sim = start().await;
    sim.inject(logpull_fault(
        1,
        FaultKind::TruncatedGzip {
            after_bytes: 20_000,
        },
    ));
    let resp = pull_raw(&sim, true).await;
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let compressed = resp.bytes().await.expect("HTTP body completes");
    assert_eq!(compressed.len(), 20_000);
    let mut text = Vec::new();
    let err = flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut text)
        .expect_err("gzip is truncated");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    sim.shutdown().await;
}

#[tokio::test]
async fn slow_body_still_delivers_everything() {
    let sim = start().await;
    sim.inject(logpull_fault(
        1,
        FaultKind::SlowBody {
            bytes_per_sec: 4_000_000,
        },
    ));
    let body = pull_raw(&sim, false).await.text().await.expect("body");
    assert_eq!(sorted_lines(&body), truth(&sim));
    assert_eq!(
        sim.requests()
            .last()
            .and_then(|r| r.fault.clone())
            .as_deref(),
        Some("slow_body")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn state_changes_through_the_http_fault_route() {
    let sim = start().await;
    let faults_url = format!("{}/__sim/faults", sim.root_url());
    let post = |body: Value| client().post(&faults_url).json(&body).send();

    assert_eq!(
        post(json!({"kind": "revoke_token", "token": LOGS_ONLY}))
            .await
            .expect("post")
            .status(),
        200
    );
    let (status, body) = get_json(&sim, LOGS_ONLY, &format!("/zones/{ENTERPRISE}")).await;
    assert_eq!((status, error_codes(&body)), (403, vec![9109]));
    let (status, body) = get_json(&sim, LOGS_ONLY, "/user/tokens/verify").await;
    assert_eq!((status, error_codes(&body)), (400, vec![1000]));

    assert_eq!(
        post(json!({"zone": ENTERPRISE, "kind": "plan_change", "plan": "business"}))
            .await
            .expect("post")
            .status(),
        200
    );
    let (_, body) = get_json(&sim, FULL, &format!("/zones/{ENTERPRISE}")).await;
    assert_eq!(body["result"]["plan"]["legacy_id"], "business");
    assert_eq!(pull_raw(&sim, false).await.status(), 403);
    sim.inject(Fault {
        zone: Some(ENTERPRISE.into()),
        dataset: None,
        endpoint: EndpointKind::Any,
        count: None,
        probability: None,
        kind: FaultKind::PlanChange {
            plan: Plan::Enterprise,
        },
    });
    assert_eq!(pull_raw(&sim, false).await.status(), 200);

    assert_eq!(
        post(json!({"zone": ENTERPRISE, "kind": "retention_off"}))
            .await
            .expect("post")
            .status(),
        200
    );
    let resp = pull_raw(&sim, false).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.text().await.expect("body"),
        "Retention is not turned on. Please enable log retention\n"
    );

    // Malformed faults are refused.
    let resp = post(json!({"kind": "server_error", "status": 200}))
        .await
        .expect("post");
    assert_eq!(resp.status(), 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn http_fault_route_arms_lists_and_clears() {
    let sim = start().await;
    let faults_url = format!("{}/__sim/faults", sim.root_url());
    let armed: Value = client()
        .post(&faults_url)
        .json(&json!([{"endpoint": "logpull", "probability": 1.0, "kind": "idle_timeout"}, {"zone": FREE, "endpoint": "zone", "count": 3, "kind": "rate_limit", "retry_after_secs": 1}]))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(armed.as_array().map(Vec::len), Some(2));
    for _ in 0..3 {
        assert_eq!(
            pull_raw(&sim, false).await.status(),
            408,
            "probability 1.0 hits every request"
        );
    }
    assert_eq!(
        client()
            .delete(&faults_url)
            .send()
            .await
            .expect("delete")
            .status(),
        200
    );
    let listed: Value = client()
        .get(&faults_url)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(listed, json!([]));
    assert_eq!(pull_raw(&sim, false).await.status(), 200);
    assert_eq!(
        get(&sim, FULL, &format!("/zones/{FREE}")).await.status(),
        200
    );
    sim.shutdown().await;
}

/// More than 12 Logpull timeouts (408) for a zone within a sliding hour block its Logpull with 429 for an hour.
#[tokio::test]
async fn thirteenth_timeout_in_an_hour_blocks_logpull_for_an_hour() {
    let sim = start().await;
    let minutes = |m: u64| std::time::Duration::from_secs(m * 60);
    sim.inject(logpull_fault(12, FaultKind::IdleTimeout));
    for _ in 0..12 {
        assert_eq!(pull_raw(&sim, false).await.status(), 408);
    }
    assert_eq!(pull_raw(&sim, false).await.status(), 200, "12 are allowed");

    // An hour later the first twelve have left the window: one more does not block.
    sim.advance(minutes(60));
    sim.inject(logpull_fault(1, FaultKind::IdleTimeout));
    assert_eq!(pull_raw(&sim, false).await.status(), 408);
    assert_eq!(pull_raw(&sim, false).await.status(), 200);

    // Half an hour later, twelve more: thirteen inside the last hour.
    sim.advance(minutes(30));
    sim.inject(logpull_fault(12, FaultKind::IdleTimeout));
    for i in 0..12 {
        assert_eq!(pull_raw(&sim, false).await.status(), 408, "timeout {i}");
    }
    let resp = pull_raw(&sim, false).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3600");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    assert_eq!(
        resp.text().await.expect("body"),
        "too many timeouts: Logpull for this zone is blocked for 1h0m0s\n"
    );
    // rayids is Logpull too; the zone's other endpoints are not blocked.
    let resp = get(
        &sim,
        FULL,
        &format!("/zones/{ENTERPRISE}/logs/rayids/00000000000000ff"),
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(
        get(&sim, FULL, &format!("/zones/{ENTERPRISE}"))
            .await
            .status(),
        200
    );

    sim.advance(minutes(60) - std::time::Duration::from_secs(1));
    let resp = pull_raw(&sim, false).await;
    assert_eq!(
        (resp.status().as_u16(), &resp.headers()["retry-after"]),
        (
            429,
            &"1".parse::<reqwest::header::HeaderValue>().expect("value")
        )
    );
    sim.advance(std::time::Duration::from_secs(1));
    assert_eq!(
        sorted_lines(&pull_raw(&sim, false).await.text().await.expect("body")),
        truth(&sim)
    );
    sim.shutdown().await;
}
