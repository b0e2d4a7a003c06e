use poem::test::TestClient;
use rainlogs_config::TelemetrySettings;
use rainlogs_telemetry::{Health, ServiceState, health_routes, init};

#[tokio::test]
async fn ready_follows_services_and_checks_and_metrics_render() {
    let telemetry = init(&TelemetrySettings::default()).expect("init");
    let counter = telemetry
        .meter("test")
        .u64_counter("rainlogs_test_windows")
        .build();
    counter.add(3, &[opentelemetry::KeyValue::new("outcome", "archive")]);

    let health = Health::default();
    let client = TestClient::new(health_routes(health.clone(), telemetry));

    client.get("/health").send().await.assert_status_is_ok();

    // No service registered yet: not ready.
    client
        .get("/ready")
        .send()
        .await
        .assert_status(poem::http::StatusCode::SERVICE_UNAVAILABLE);

    health.set_service("archiver", ServiceState::Starting);
    health.add_check("nats", || Box::pin(async { Ok(()) }));
    client
        .get("/ready")
        .send()
        .await
        .assert_status(poem::http::StatusCode::SERVICE_UNAVAILABLE);

    health.set_service("archiver", ServiceState::Ready);
    let resp = client.get("/ready").send().await;
    resp.assert_status_is_ok();
    let body = resp.json().await;
    body.value().object().get("status").assert_string("ready");

    health.add_check("postgres", || {
        Box::pin(async { Err("connection refused".to_owned()) })
    });
    let resp = client.get("/ready").send().await;
    resp.assert_status(poem::http::StatusCode::SERVICE_UNAVAILABLE);
    let body = resp.json().await;
    body.value()
        .object()
        .get("checks")
        .object()
        .get("postgres")
        .assert_string("connection refused");

    let resp = client.get("/metrics").send().await;
    resp.assert_status_is_ok();
    let text = resp.0.into_body().into_string().await.expect("body");
    assert!(text.contains("rainlogs_test_windows_total{"), "{text}");
    assert!(text.contains("outcome=\"archive\""), "{text}");
}

#[tokio::test]
async fn live_facts_are_computed_per_report_and_never_make_the_process_not_ready() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let telemetry = init(&TelemetrySettings::default()).expect("init");
    let health = Health::default();
    let client = TestClient::new(health_routes(health.clone(), telemetry));
    health.set_service("query-api", ServiceState::Ready);
    health.add_check("postgres", || Box::pin(async { Ok(()) }));
    health.set_info(
        "store_posture",
        serde_json::json!({"object_lock": "enforced"}),
    );

    // As the rainlogs binary reports events its projections set aside: counted anew each time.
    let poisoned = Arc::new(AtomicU64::new(0));
    let source = poisoned.clone();
    health.add_info_source("poisoned_events", move || {
        let count = source.load(Ordering::SeqCst);
        Box::pin(async move {
            if count == 0 {
                serde_json::json!({})
            } else {
                serde_json::json!({ "audit": count })
            }
        })
    });
    // A source that hangs is cut off and says so, and still does not decide readiness.
    health.add_info_source("slow", || {
        Box::pin(async {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            serde_json::Value::Null
        })
    });

    let ready = |body: serde_json::Value| {
        assert_eq!(body["status"], "ready", "{body}");
        assert_eq!(body["checks"]["postgres"], "ok", "{body}");
        assert_eq!(
            body["info"]["store_posture"]["object_lock"], "enforced",
            "{body}"
        );
        assert_eq!(body["info"]["slow"], "no answer within 2s", "{body}");
        let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["checks", "info", "services", "status"], "{body}");
        body
    };
    let resp = client.get("/ready").send().await;
    resp.assert_status_is_ok();
    let body = ready(resp.json().await.value().deserialize());
    assert_eq!(body["info"]["poisoned_events"], serde_json::json!({}));

    poisoned.store(1, Ordering::SeqCst);
    let resp = client.get("/ready").send().await;
    resp.assert_status_is_ok();
    let body = ready(resp.json().await.value().deserialize());
    assert_eq!(body["info"]["poisoned_events"]["audit"], 1, "{body}");
}
