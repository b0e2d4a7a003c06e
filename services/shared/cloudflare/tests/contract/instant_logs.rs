//! Instant Logs: job creation, frames split into records with `sampleInterval`, one session per zone, session end,
//! dropped and half-open sockets.

use crate::support::*;
use cf_sim::{EndpointKind, Fault, FaultKind};
use rainlogs_cloudflare::{CfError, InstantLogsJobRequest, InstantLogsRecord, InstantLogsSession};
use std::time::Duration;

fn job_request() -> InstantLogsJobRequest {
    InstantLogsJobRequest::all_records(&fields())
}

/// Reads batches until at least `want` records arrived (or the session ended), advancing the simulated clock so
/// the simulator has seconds to stream.
async fn read_records(
    sim: &cf_sim::RunningSim,
    session: &mut InstantLogsSession,
    want: usize,
) -> Result<Vec<InstantLogsRecord>, CfError> {
    let mut records = Vec::new();
    while records.len() < want {
        sim.advance(Duration::from_secs(2));
        match tokio::time::timeout(Duration::from_secs(10), session.next_batch())
            .await
            .expect("no frame within 10 s")?
        {
            Some(batch) => records.extend(batch),
            None => break,
        }
    }
    Ok(records)
}

#[tokio::test]
async fn a_session_streams_records_split_from_multi_record_frames() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let job = cf
        .create_instant_logs_job(BUSINESS_ZONE, &job_request())
        .await
        .unwrap();
    assert!(
        job.destination_conf.starts_with("ws://"),
        "{}",
        job.destination_conf
    );
    assert!(job.session().is_some());
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.path.ends_with("/logpush/edge/jobs")),
        "the current path is tried first"
    );

    let mut session = cf.connect_instant_logs(&job).await.unwrap();
    let records = read_records(&sim, &mut session, 40).await.unwrap();
    assert!(records.len() >= 40);
    for record in &records {
        let value: serde_json::Value = serde_json::from_slice(&record.line).unwrap();
        assert!(value.get("RayID").is_some(), "requested fields are present");
        assert_eq!(record.sample_interval, 1, "an unsampled job has weight 1");
    }
    session.close().await.unwrap();
}

#[tokio::test]
async fn sampled_jobs_keep_sample_interval_per_record() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let request = InstantLogsJobRequest {
        sample: 10,
        ..job_request()
    };
    let job = cf
        .create_instant_logs_job(ENTERPRISE_ZONE, &request)
        .await
        .unwrap();
    let mut session = cf.connect_instant_logs(&job).await.unwrap();
    let records = read_records(&sim, &mut session, 10).await.unwrap();
    assert!(!records.is_empty());
    assert!(
        records.iter().all(|r| r.sample_interval == 10),
        "{:?}",
        records
            .iter()
            .map(|r| r.sample_interval)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn only_one_session_per_zone_and_plan_gating() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    cf.create_instant_logs_job(BUSINESS_ZONE, &job_request())
        .await
        .unwrap();
    let error = cf
        .create_instant_logs_job(BUSINESS_ZONE, &job_request())
        .await
        .unwrap_err();
    assert!(
        matches!(error, CfError::SessionAlreadyActive { .. }),
        "{error:?}"
    );
    assert_eq!(error.api_codes(), vec![1303]);
    let error = cf
        .create_instant_logs_job(PRO_ZONE, &job_request())
        .await
        .unwrap_err();
    assert!(matches!(error, CfError::NotEntitled { .. }), "{error:?}");
}

#[tokio::test]
async fn the_sixty_minute_cap_ends_the_session_with_a_close_frame() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let job = cf
        .create_instant_logs_job(BUSINESS_ZONE, &job_request())
        .await
        .unwrap();
    let mut session = cf.connect_instant_logs(&job).await.unwrap();
    sim.advance(Duration::from_secs(3601));
    while tokio::time::timeout(Duration::from_secs(10), session.next_batch())
        .await
        .expect("session should end")
        .unwrap()
        .is_some()
    {}
    let closed = session.closed().unwrap();
    assert!(closed.reason.contains("60 minute"), "{closed:?}");
    assert_eq!(
        session.next_batch().await.unwrap(),
        None,
        "a closed session stays closed"
    );
}

#[tokio::test]
async fn a_dropped_socket_is_reported_as_dropped() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    inject(
        &sim,
        Fault::on_zone(
            BUSINESS_ZONE,
            EndpointKind::InstantLogsStream,
            1,
            FaultKind::WsDrop { after_frames: 2 },
        ),
    );
    let job = cf
        .create_instant_logs_job(BUSINESS_ZONE, &job_request())
        .await
        .unwrap();
    let mut session = cf.connect_instant_logs(&job).await.unwrap();
    let error = read_records(&sim, &mut session, 100_000).await.unwrap_err();
    assert!(matches!(error, CfError::WebSocketDropped), "{error:?}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_half_open_socket_is_detected_by_ping() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    inject(
        &sim,
        Fault::on_zone(
            BUSINESS_ZONE,
            EndpointKind::InstantLogsStream,
            1,
            FaultKind::WsHalfOpen { after_frames: 1 },
        ),
    );
    let job = cf
        .create_instant_logs_job(BUSINESS_ZONE, &job_request())
        .await
        .unwrap();
    let mut session = cf.connect_instant_logs(&job).await.unwrap();
    let error = read_records(&sim, &mut session, 100_000).await.unwrap_err();
    assert!(matches!(error, CfError::WebSocketStalled(_)), "{error:?}");
}

#[tokio::test]
async fn job_creation_retries_transient_faults() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    inject(
        &sim,
        Fault::on_zone(
            BUSINESS_ZONE,
            EndpointKind::InstantLogsJobs,
            1,
            FaultKind::ServerError { status: 500 },
        ),
    );
    cf.create_instant_logs_job(BUSINESS_ZONE, &job_request())
        .await
        .unwrap();
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![500, 200]);
}

/// The simulator accepts both create paths, so the fallback is checked against a minimal server that only knows
/// the legacy `/logpush/edge` (as Cloudflare did before 2025-08).
#[tokio::test]
async fn job_creation_falls_back_to_the_legacy_path() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let paths = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = paths.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then the declared body, so the client never sees a reset.
            let head_end = loop {
                let n = socket.read(&mut chunk).await.unwrap();
                buffer.extend_from_slice(&chunk[..n]);
                if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
            };
            let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            while buffer.len() < head_end + length {
                let n = socket.read(&mut chunk).await.unwrap();
                buffer.extend_from_slice(&chunk[..n]);
            }
            let path = head.split_whitespace().nth(1).unwrap().to_owned();
            seen.lock().unwrap().push(path.clone());
            let (status, body) = if path.ends_with("/logpush/edge") {
                (
                    "200 OK",
                    r#"{"success":true,"errors":[],"messages":[],"result":{"destination_conf":"wss://logs.example/instant-logs/ws/sessions/abc123","fields":"RayID","sample":1,"filter":"","kind":"instant-logs"}}"#,
                )
            } else {
                (
                    "404 Not Found",
                    r#"{"success":false,"errors":[{"code":7000,"message":"No route for that URI"}],"messages":[],"result":null}"#,
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
        }
    });
    let config = rainlogs_cloudflare::ClientConfig {
        limits: rainlogs_cloudflare::RateLimits::UNLIMITED,
        ..rainlogs_cloudflare::ClientConfig::with_base_url(format!("http://{addr}/client/v4"))
    };
    let (_, cf) = client(config, FULL_TOKEN);
    let job = cf
        .create_instant_logs_job(BUSINESS_ZONE, &job_request())
        .await
        .unwrap();
    assert_eq!(job.session(), Some("abc123"));
    let paths = paths.lock().unwrap().clone();
    assert_eq!(
        paths,
        vec![
            format!("/client/v4/zones/{BUSINESS_ZONE}/logpush/edge/jobs"),
            format!("/client/v4/zones/{BUSINESS_ZONE}/logpush/edge"),
        ]
    );
}
