//! Instant Logs: job routes, one session per zone, frames, sampling, session cap, idle close and socket faults.

use std::time::Duration;

use cf_sim::{ClockStart, EndpointKind, Fault, FaultKind, SimOptions};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

async fn create(sim: &cf_sim::RunningSim, zone: &str, path: &str, body: Value) -> (u16, Value) {
    let resp = client()
        .post(format!("{}/zones/{zone}/logpush/{path}", sim.base_url()))
        .bearer_auth(FULL)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(job: &Value) -> Ws {
    let url = job["result"]["destination_conf"]
        .as_str()
        .expect("destination_conf");
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects")
        .0
}

/// Next text frame, skipping control frames; `None` when the socket closes or errors.
async fn next_text(ws: &mut Ws) -> Option<Result<String, Option<String>>> {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a frame within 20 s")?
        {
            Ok(Message::Text(t)) => return Some(Ok(t.to_string())),
            Ok(Message::Close(frame)) => return Some(Err(frame.map(|f| f.reason.to_string()))),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn one_session_per_zone_on_both_paths() {
    let sim = start().await;
    let (status, job) = create(
        &sim,
        BUSINESS,
        "edge/jobs",
        json!({"fields": "ClientIP,RayID", "sample": 1, "filter": "", "kind": "instant-logs"}),
    )
    .await;
    assert_eq!(status, 200, "{job}");
    let result = &job["result"];
    let url = result["destination_conf"].as_str().expect("url");
    assert!(url.starts_with(&format!("ws://{}/instant-logs/ws/sessions/", sim.addr())));
    assert!(url.ends_with(result["session_id"].as_str().expect("session id")));
    assert_eq!(result["kind"], "instant-logs");
    assert_eq!(result["fields"], "ClientIP,RayID");

    // A second session for the zone, on either path, is refused with 1303.
    for path in ["edge", "edge/jobs"] {
        let (status, body) = create(
            &sim,
            BUSINESS,
            path,
            json!({"fields": "ClientIP", "sample": 1, "filter": ""}),
        )
        .await;
        assert_eq!((status, error_codes(&body)), (400, vec![1303]), "{path}");
    }
    let (status, list) =
        get_json(&sim, FULL, &format!("/zones/{BUSINESS}/logpush/edge/jobs")).await;
    assert_eq!(status, 200);
    assert_eq!(list["result"][0]["session_id"], result["session_id"]);
    // Another zone is independent; Free zones have no Instant Logs.
    assert_eq!(
        create(&sim, ENTERPRISE, "edge", json!({"fields": "RayID"}))
            .await
            .0,
        200
    );
    let (status, body) = create(&sim, FREE, "edge", json!({"fields": "RayID"})).await;
    assert_eq!((status, error_codes(&body)), (403, vec![1004]));

    // Closing the socket ends the session and frees the zone.
    let mut ws = connect(&job).await;
    ws.close(None).await.expect("close");
    drop(ws);
    let mut freed = false;
    for _ in 0..100 {
        if create(&sim, BUSINESS, "edge/jobs", json!({"fields": "RayID"}))
            .await
            .0
            == 200
        {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "a closed session must release the zone");
    sim.shutdown().await;
}

#[tokio::test]
async fn frames_hold_newline_joined_records_with_requested_fields() {
    let sim = start().await;
    let (_, job) = create(
        &sim,
        ENTERPRISE,
        "edge/jobs",
        json!({"fields": "ClientIP,RayID,EdgeResponseStatus", "sample": 1, "filter": ""}),
    )
    .await;
    let mut ws = connect(&job).await;
    sim.advance(Duration::from_secs(3));
    let mut multi_record_frames = 0;
    let mut records = 0;
    while records < 100 {
        let frame = next_text(&mut ws)
            .await
            .expect("socket open")
            .expect("text frame");
        let lines: Vec<&str> = frame.split('\n').collect();
        if lines.len() > 1 {
            multi_record_frames += 1;
        }
        for line in lines {
            let v: Value = serde_json::from_str(line).expect("each line is a JSON record");
            let mut keys: Vec<&str> = v
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort();
            assert_eq!(
                keys,
                ["ClientIP", "EdgeResponseStatus", "RayID"],
                "no sampleInterval without sampling"
            );
            records += 1;
        }
        if records < 100 {
            sim.advance(Duration::from_secs(1));
        }
    }
    assert!(
        multi_record_frames > 0,
        "frames should batch several records"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn sampled_sessions_carry_sample_interval_and_filters_apply() {
    let sim = start().await;
    let filter = r#"{"where":{"and":[{"key":"ClientCountry","operator":"neq","value":"us"}]}}"#;
    let (status, job) = create(&sim, ENTERPRISE, "edge", json!({"fields": "ClientCountry,RayID", "sample": 10, "filter": filter, "kind": "instant-logs"})).await;
    assert_eq!(status, 200, "{job}");
    let mut ws = connect(&job).await;
    sim.advance(Duration::from_secs(30));
    let mut seen = 0;
    while seen < 20 {
        let frame = next_text(&mut ws)
            .await
            .expect("socket open")
            .expect("text frame");
        for line in frame.split('\n') {
            let v: Value = serde_json::from_str(line).expect("json");
            assert_eq!(v["sampleInterval"], 10);
            assert_ne!(v["ClientCountry"], "us");
            seen += 1;
        }
        if seen < 20 {
            sim.advance(Duration::from_secs(10));
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn session_closes_at_the_sixty_minute_cap() {
    let sim = start().await;
    let (_, job) = create(
        &sim,
        BUSINESS,
        "edge/jobs",
        json!({"fields": "RayID", "sample": 1, "filter": ""}),
    )
    .await;
    let mut ws = connect(&job).await;
    sim.advance(Duration::from_secs(3601));
    let reason = loop {
        match next_text(&mut ws)
            .await
            .expect("a close frame, not a dropped socket")
        {
            Ok(_) => continue,
            Err(reason) => break reason.expect("close reason"),
        }
    };
    assert!(reason.contains("60 minute"), "{reason}");
    sim.shutdown().await;
}

#[tokio::test]
async fn idle_sockets_are_closed() {
    let mut scenario = scenario();
    scenario.instant_logs.idle_timeout_secs = 1;
    let sim = start_with(scenario).await;
    let (_, job) = create(
        &sim,
        BUSINESS,
        "edge/jobs",
        json!({"fields": "RayID", "sample": 1, "filter": ""}),
    )
    .await;
    let mut ws = connect(&job).await;
    sim.advance(Duration::from_secs(2));
    // Not reading means not answering pings: the server gives up after the idle timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reason = loop {
        match next_text(&mut ws).await.expect("a close frame") {
            Ok(_) => continue,
            Err(reason) => break reason.expect("close reason"),
        }
    };
    assert!(reason.contains("idle"), "{reason}");
    sim.shutdown().await;
}

#[tokio::test]
async fn dropped_and_half_open_sockets() {
    let sim = start().await;
    sim.inject(Fault::on_zone(
        ENTERPRISE,
        EndpointKind::InstantLogsStream,
        1,
        FaultKind::WsDrop { after_frames: 2 },
    ));
    let (_, job) = create(
        &sim,
        ENTERPRISE,
        "edge/jobs",
        json!({"fields": "RayID", "sample": 1, "filter": ""}),
    )
    .await;
    let mut ws = connect(&job).await;
    sim.advance(Duration::from_secs(10));
    let mut frames = 0;
    let ending = loop {
        match next_text(&mut ws).await {
            Some(Ok(_)) => frames += 1,
            other => break other,
        }
    };
    assert_eq!(frames, 2);
    assert!(ending.is_none(), "a drop has no close frame: {ending:?}");

    sim.inject(Fault::on_zone(
        BUSINESS,
        EndpointKind::InstantLogsStream,
        1,
        FaultKind::WsHalfOpen { after_frames: 1 },
    ));
    let (_, job) = create(
        &sim,
        BUSINESS,
        "edge/jobs",
        json!({"fields": "RayID", "sample": 1, "filter": ""}),
    )
    .await;
    let mut ws = connect(&job).await;
    sim.advance(Duration::from_secs(10));
    assert!(matches!(next_text(&mut ws).await, Some(Ok(_))));
    sim.advance(Duration::from_secs(10));
    let silence = tokio::time::timeout(Duration::from_millis(1500), ws.next()).await;
    assert!(
        silence.is_err(),
        "a half-open socket neither sends nor closes: {silence:?}"
    );
    // The zone stays occupied while the socket hangs.
    let (status, body) = create(&sim, BUSINESS, "edge", json!({"fields": "RayID"})).await;
    assert_eq!((status, error_codes(&body)), (400, vec![1303]));
    sim.shutdown().await;
}

fn trusting(sim: &cf_sim::RunningSim) -> tokio_tungstenite::Connector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            sim.wss_certificate_der().expect("TLS listener runs"),
        ))
        .expect("certificate parses");
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(config))
}

async fn connect_wss(sim: &cf_sim::RunningSim, url: &str) -> Result<Ws, tungstenite::Error> {
    tokio_tungstenite::connect_async_tls_with_config(url, None, false, Some(trusting(sim)))
        .await
        .map(|(ws, _)| ws)
}

fn http_status(err: tungstenite::Error) -> (u16, Option<String>, Option<String>) {
    match err {
        tungstenite::Error::Http(resp) => (
            resp.status().as_u16(),
            resp.headers()
                .get("location")
                .map(|v| v.to_str().expect("ascii").to_owned()),
            resp.headers()
                .get("retry-after")
                .map(|v| v.to_str().expect("ascii").to_owned()),
        ),
        other => panic!("expected an HTTP answer, got {other}"),
    }
}

/// With `wss_listen`, destinations are `wss://`; plain `ws://` and `https://` get 301 (and do not use up the
/// session); a connect can be refused with 429, after which the session still connects.
#[tokio::test]
async fn wss_destinations_redirect_plain_ws_and_rate_limit_connects() {
    let sim = start_with_options(
        scenario(),
        SimOptions {
            clock: Some(ClockStart::FrozenAt(T0)),
            wss_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            ..SimOptions::default()
        },
    )
    .await;
    let tls_addr = sim.wss_addr().expect("TLS address");
    assert_ne!(tls_addr, sim.addr());
    let (status, job) = create(
        &sim,
        BUSINESS,
        "edge/jobs",
        json!({"fields": "ClientIP,RayID", "sample": 1, "filter": ""}),
    )
    .await;
    assert_eq!(status, 200, "{job}");
    let url = job["result"]["destination_conf"]
        .as_str()
        .expect("url")
        .to_owned();
    let session = job["result"]["session_id"].as_str().expect("session");
    assert_eq!(
        url,
        format!("wss://{tls_addr}/instant-logs/ws/sessions/{session}")
    );

    // Plain ws:// on the API port: 301 pointing at the wss:// destination.
    let plain = format!("ws://{}/instant-logs/ws/sessions/{session}", sim.addr());
    let err = tokio_tungstenite::connect_async(plain.as_str())
        .await
        .expect_err("plain ws is refused");
    assert_eq!(http_status(err), (301, Some(url.clone()), None));
    // https:// without the WebSocket upgrade: 301 as well.
    let https = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(sim.wss_certificate_pem().expect("pem").as_bytes())
                .expect("pem parses"),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = https
        .get(url.replace("wss://", "https://"))
        .send()
        .await
        .expect("https request");
    assert_eq!(resp.status(), 301);
    assert_eq!(resp.headers()["location"], url.as_str());
    // A client that only trusts the public roots cannot use the simulator's certificate. tokio-tungstenite's
    // default connector needs a process-wide rustls provider, and this test binary links two, so pick one as the
    // RainLogs binary does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    assert!(matches!(
        tokio_tungstenite::connect_async(url.as_str()).await,
        Err(tungstenite::Error::Tls(_) | tungstenite::Error::Io(_))
    ));

    sim.inject(Fault::on_zone(
        BUSINESS,
        EndpointKind::InstantLogsStream,
        1,
        FaultKind::RateLimit {
            retry_after_secs: 120,
        },
    ));
    let err = connect_wss(&sim, &url).await.expect_err("rate limited");
    assert_eq!(http_status(err), (429, None, Some("120".to_owned())));

    let mut ws = connect_wss(&sim, &url).await.expect("wss connects");
    sim.advance(Duration::from_secs(3));
    let frame = next_text(&mut ws)
        .await
        .expect("socket open")
        .expect("text frame");
    for line in frame.split('\n') {
        let v: Value = serde_json::from_str(line).expect("json record");
        assert!(v["RayID"].is_string() && v["ClientIP"].is_string());
    }
    sim.shutdown().await;
}
