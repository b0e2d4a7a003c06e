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
