//! GraphQL aggregates against the simulator: requests per minute equal the truth (or stay within the zone's
//! sampling error), and Logpush health equals the uploads the simulator's pusher made.

use crate::support::*;
use cf_sim::{ClockStart, DeliveryStatus, RunningSim, Scenario, SimOptions, Simulator, TruthQuery};
use rainlogs_cloudflare::{CfError, LogpushHealth, RequestsPerMinute};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

async fn start_with(scenario: Scenario) -> RunningSim {
    let options = SimOptions {
        clock: Some(ClockStart::FrozenAt(sim_now())),
        ..SimOptions::default()
    };
    Simulator::start(scenario, options).await.unwrap()
}

/// The truth's record count per minute touching `[since, until)`, as the typed call reports it.
fn truth_per_minute(
    sim: &RunningSim,
    zone: &str,
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> Vec<RequestsPerMinute> {
    let mut out = Vec::new();
    let mut from = since;
    while from < until {
        let minute =
            OffsetDateTime::from_unix_timestamp(from.unix_timestamp().div_euclid(60) * 60).unwrap();
        let to = (minute + time::Duration::MINUTE).min(until);
        let count = sim.truth(&TruthQuery::http(zone, from, to)).unwrap().len() as u64;
        if count > 0 {
            out.push(RequestsPerMinute { minute, count });
        }
        from = to;
    }
    out
}

#[tokio::test]
async fn requests_per_minute_equal_the_truth() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), ANALYTICS_ONLY_TOKEN);
    // 90 minutes starting inside a minute: two queries, the minute at the seam counted by both halves.
    let until = sim_now() - time::Duration::minutes(10);
    let since = until - time::Duration::minutes(90) + time::Duration::seconds(30);
    let got = cf
        .http_requests_per_minute(PRO_ZONE, since, until)
        .await
        .unwrap();
    assert_eq!(got.len(), 90);
    assert_eq!(got, truth_per_minute(&sim, PRO_ZONE, since, until));
    assert_eq!(statuses(&sim, "/graphql"), vec![200, 200]);

    // A window in the future has no requests yet.
    let later = cf
        .http_requests_per_minute(PRO_ZONE, sim_now(), sim_now() + time::Duration::minutes(5))
        .await
        .unwrap();
    assert!(later.is_empty());
}

#[tokio::test]
async fn sampled_counts_stay_within_the_zones_error() {
    let error = 0.05;
    let mut scenario = Scenario::example();
    for zone in &mut scenario.zones {
        if zone.id == ENTERPRISE_ZONE {
            zone.graphql_sampling_error = error;
        }
    }
    let sim = start_with(scenario).await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let until = sim_now() - time::Duration::minutes(10);
    let since = until - time::Duration::minutes(15);
    let got = cf
        .http_requests_per_minute(ENTERPRISE_ZONE, since, until)
        .await
        .unwrap();
    let truth = truth_per_minute(&sim, ENTERPRISE_ZONE, since, until);
    assert_eq!(got.len(), truth.len());
    for (reported, exact) in got.iter().zip(&truth) {
        assert_eq!(reported.minute, exact.minute);
        let bound = (exact.count as f64 * error).floor() as u64;
        assert!(
            reported.count.abs_diff(exact.count) <= bound,
            "{reported:?} vs {exact:?}"
        );
    }
    assert_ne!(got, truth, "the zone is sampled");
}

#[tokio::test]
async fn aggregate_errors_are_typed() {
    let sim = start_sim().await;
    let until = sim_now() - time::Duration::minutes(10);
    let (_, cf) = client(fast_config(&sim), LOGS_READ_ONLY_TOKEN);
    let error = cf
        .http_requests_per_minute(ENTERPRISE_ZONE, until - time::Duration::hours(1), until)
        .await
        .unwrap_err();
    assert!(
        matches!(error, CfError::Auth { status: 200, .. }),
        "{error:?}"
    );
    let error = cf
        .logpush_health(
            ENTERPRISE_ZONE,
            None,
            until - time::Duration::hours(1),
            until,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, CfError::Auth { status: 200, .. }),
        "{error:?}"
    );

    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    // Older than a Free zone's history: refused with HTTP 400, kept verbatim, not retried.
    let old = sim_now() - time::Duration::days(9);
    let before = statuses(&sim, "/graphql").len();
    let error = cf
        .http_requests_per_minute(FREE_ZONE, old, old + time::Duration::minutes(5))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, CfError::BadQuery { status: 400, message } if message.contains("older than")),
        "{error:?}"
    );
    assert_eq!(statuses(&sim, "/graphql").len(), before + 1);
    // An empty window never reaches Cloudflare.
    let error = cf
        .http_requests_per_minute(FREE_ZONE, until, until)
        .await
        .unwrap_err();
    assert!(matches!(error, CfError::InvalidRequest(_)), "{error:?}");
    assert_eq!(statuses(&sim, "/graphql").len(), before + 1);
}

/// A Logpush destination answering every upload with the current status.
struct Receiver {
    url: String,
    status: Arc<AtomicU16>,
}

impl Receiver {
    async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let status = Arc::new(AtomicU16::new(200));
        let answer = status.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 16 * 1024];
                    // The whole request is read before answering, so the uploader never sees a reset.
                    let head_end = loop {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap_or(0);
                    while buffer.len() < head_end + length {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                    }
                    let status = answer.load(Ordering::SeqCst);
                    let response = format!(
                        "HTTP/1.1 {status} Whatever\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        Self {
            url: format!("http://{addr}/logpush"),
            status,
        }
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

/// Polls the simulator's delivery log until `done` holds (its pusher ticks every 50 ms of real time).
async fn wait_until(
    sim: &RunningSim,
    what: &str,
    done: impl Fn(&[cf_sim::LogpushDelivery]) -> bool,
) {
    for _ in 0..400 {
        if done(&sim.logpush_deliveries(ENTERPRISE_ZONE)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "timed out waiting for {what}: {:#?}",
        sim.logpush_deliveries(ENTERPRISE_ZONE)
    );
}

/// What `logpush_health` must return: the simulator's upload attempts grouped the same way.
fn expected_health(sim: &RunningSim, job_id: u64) -> Vec<LogpushHealth> {
    let mut groups: BTreeMap<(OffsetDateTime, u32, bool), LogpushHealth> = BTreeMap::new();
    for upload in sim.logpush_uploads(ENTERPRISE_ZONE) {
        assert_eq!(upload.job_id, job_id);
        let t = upload.time.unix_timestamp();
        let minute = OffsetDateTime::from_unix_timestamp(t.div_euclid(60) * 60).unwrap();
        let status = u32::from(upload.status);
        let row = groups
            .entry((minute, status, upload.final_upload))
            .or_insert_with(|| LogpushHealth {
                minute,
                job_id,
                status,
                destination_type: upload.destination_type.clone(),
                final_upload: upload.final_upload,
                uploads: 0,
                records: 0,
                bytes: 0,
                bytes_compressed: 0,
            });
        row.uploads += 1;
        row.records += upload.records;
        row.bytes += upload.bytes;
        row.bytes_compressed += upload.bytes_compressed;
    }
    groups.into_values().collect()
}

#[tokio::test]
async fn logpush_health_equals_the_uploads_the_pusher_made() {
    let mut scenario = Scenario::example();
    scenario.logpush.max_attempts = 2;
    scenario.logpush.retry_backoff_secs = 10;
    let sim = start_with(scenario).await;
    let receiver = Receiver::start().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}/zones/{ENTERPRISE_ZONE}/logpush/jobs",
            sim.base_url()
        ))
        .bearer_auth(FULL_TOKEN)
        .json(&serde_json::json!({
            "dataset": "http_requests",
            "enabled": true,
            "destination_conf": receiver.url,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job_id = created["result"]["id"].as_u64().expect("job created");

    // Batch 1 fails twice and is dropped; batches 2 and 3 are delivered at the first try.
    receiver.answer(503);
    sim.advance(Duration::from_secs(30));
    wait_until(&sim, "attempt 1", |d| {
        d.first().is_some_and(|b| b.attempts == 1)
    })
    .await;
    sim.advance(Duration::from_secs(10));
    wait_until(&sim, "the drop", |d| {
        d.first()
            .is_some_and(|b| b.status == DeliveryStatus::Dropped)
    })
    .await;
    receiver.answer(200);
    sim.advance(Duration::from_secs(60));
    wait_until(&sim, "batches 2 and 3", |d| {
        d.len() == 3 && d.iter().all(|b| b.status != DeliveryStatus::Pending)
    })
    .await;

    let since = sim_now() - time::Duration::minutes(5);
    let until = sim.now() + time::Duration::minutes(1);
    let health = cf
        .logpush_health(ENTERPRISE_ZONE, Some(job_id), since, until)
        .await
        .unwrap();
    assert_eq!(health, expected_health(&sim, job_id));
    let delivered: u64 = health
        .iter()
        .filter(|h| h.delivered())
        .map(|h| h.records)
        .sum();
    let lost: u64 = health.iter().filter(|h| h.lost()).map(|h| h.records).sum();
    assert_eq!(
        delivered,
        sim.logpush_delivered_lines(ENTERPRISE_ZONE, Some(job_id))
            .len() as u64
    );
    assert_eq!(
        lost,
        sim.logpush_dropped_lines(ENTERPRISE_ZONE, Some(job_id))
            .len() as u64
    );
    assert!(delivered > 0 && lost > 0);
    let retried: Vec<&LogpushHealth> = health.iter().filter(|h| !h.final_upload).collect();
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].status, retried[0].uploads), (503, 1));
    assert!(health.iter().all(|h| h.destination_type == "http"));

    // Every job of the zone, and nothing for a job that does not exist.
    let all = cf
        .logpush_health(ENTERPRISE_ZONE, None, since, until)
        .await
        .unwrap();
    assert_eq!(all, health);
    let none = cf
        .logpush_health(ENTERPRISE_ZONE, Some(job_id + 1), since, until)
        .await
        .unwrap();
    assert!(none.is_empty());
}
