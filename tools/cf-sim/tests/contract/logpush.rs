//! Logpush: job routes and their validation, the destination check, and the HTTP pusher (batches, gzip NDJSON,
//! retries, drops) observed by a receiver running in the test.

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cf_sim::{
    DeliveryStatus, EndpointKind, Fault, FaultKind, LogpushDelivery, RunningSim, TimestampFormat,
    TruthQuery,
};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Endpoint, Request, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::common::*;

const CHECK_BODY: &str = r#"{"content":"tests"}"#;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Upload {
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    /// The body after gunzip.
    pub body: String,
    pub answered: u16,
}

impl Upload {
    pub fn is_check(&self) -> bool {
        self.body == CHECK_BODY
    }

    pub fn lines(&self) -> Vec<String> {
        self.body.split_inclusive('\n').map(str::to_owned).collect()
    }
}

/// A destination that logs every request and answers `status` (the destination check gets `check_status`).
#[derive(Clone)]
struct Sink {
    log: Arc<Mutex<Vec<Upload>>>,
    status: Arc<AtomicU16>,
    check_status: Arc<AtomicU16>,
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl Endpoint for Sink {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let raw = req.take_body().into_vec().await.unwrap_or_default();
        let mut body = String::new();
        let gunzipped = flate2::read::GzDecoder::new(raw.as_slice()).read_to_string(&mut body);
        if gunzipped.is_err() {
            body = format!("<not gzip: {} bytes>", raw.len());
        }
        let check = body == CHECK_BODY;
        let status = if check {
            self.check_status.load(Ordering::SeqCst)
        } else {
            self.status.load(Ordering::SeqCst)
        };
        self.log.lock().expect("log").push(Upload {
            path: req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            authorization: header(&req, "authorization"),
            content_type: header(&req, "content-type"),
            content_encoding: header(&req, "content-encoding"),
            body,
            answered: status,
        });
        let status = poem::http::StatusCode::from_u16(status).expect("status");
        Ok(Response::builder()
            .status(status)
            .body(format!("sink says {}", status.as_u16())))
    }
}

pub struct Receiver {
    pub base: String,
    sink: Sink,
}

impl Receiver {
    pub async fn start() -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind receiver");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("socket address");
        let sink = Sink {
            log: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            check_status: Arc::new(AtomicU16::new(200)),
        };
        let endpoint = sink.clone();
        tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor)
                .run(endpoint)
                .await;
        });
        Self {
            base: format!("http://{addr}"),
            sink,
        }
    }

    pub fn answer(&self, status: u16) {
        self.sink.status.store(status, Ordering::SeqCst);
    }

    pub fn answer_check(&self, status: u16) {
        self.sink.check_status.store(status, Ordering::SeqCst);
    }

    pub fn all(&self) -> Vec<Upload> {
        self.sink.log.lock().expect("log").clone()
    }

    /// Pushes (not destination checks) to `path` that were answered 2xx.
    pub fn accepted(&self, path: &str) -> Vec<Upload> {
        self.all()
            .into_iter()
            .filter(|u| !u.is_check() && u.path.starts_with(path) && u.answered < 300)
            .collect()
    }
}

pub async fn send(
    sim: &RunningSim,
    method: reqwest::Method,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client()
        .request(method, format!("{}{path}", sim.base_url()))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

pub async fn create_job(sim: &RunningSim, zone: &str, body: Value) -> (u16, Value) {
    send(
        sim,
        reqwest::Method::POST,
        FULL,
        &format!("/zones/{zone}/logpush/jobs"),
        Some(body),
    )
    .await
}

pub async fn get_job(sim: &RunningSim, zone: &str, id: u64) -> Value {
    let (status, body) = get_json(sim, FULL, &format!("/zones/{zone}/logpush/jobs/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body["result"].clone()
}

/// A job on the Enterprise zone pushing to `path` of the receiver, created with the defaults.
pub async fn pushing_job(sim: &RunningSim, receiver: &Receiver, path: &str) -> u64 {
    let destination = format!("{}{path}", receiver.base);
    let (status, body) = create_job(sim, ENTERPRISE, job_body(&destination, json!({}))).await;
    assert_eq!(status, 200, "{body}");
    job_id(&body)
}

pub fn job_id(body: &Value) -> u64 {
    body["result"]["id"].as_u64().expect("numeric job id")
}

/// Poll the simulator's delivery log until `done` holds (the pusher ticks every 50 ms of real time).
pub async fn wait_deliveries(
    sim: &RunningSim,
    zone: &str,
    what: &str,
    done: impl Fn(&[LogpushDelivery]) -> bool,
) -> Vec<LogpushDelivery> {
    for _ in 0..400 {
        let deliveries = sim.logpush_deliveries(zone);
        if done(&deliveries) {
            return deliveries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "timed out waiting for {what}: {:#?}",
        sim.logpush_deliveries(zone)
    );
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn at(second: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(second).expect("time")
}

pub const FIELDS: &[&str] = &[
    "RayID",
    "ClientIP",
    "ClientRequestURI",
    "EdgeStartTimestamp",
];

/// The truth for receive seconds `[first, last]` rendered with `FIELDS` and `timestamps`.
pub fn truth_for(
    sim: &RunningSim,
    zone: &str,
    first: i64,
    last: i64,
    timestamps: TimestampFormat,
) -> Vec<String> {
    let mut query = TruthQuery::http(zone, at(first), at(last + 1));
    query.fields = Some(FIELDS.iter().map(|f| (*f).to_owned()).collect());
    query.timestamps = timestamps;
    sim.truth(&query).expect("truth")
}

pub fn job_body(destination: &str, extra: Value) -> Value {
    let mut body = json!({
        "name": "rainlogs",
        "dataset": "http_requests",
        "enabled": true,
        "destination_conf": destination,
        "output_options": {"field_names": FIELDS, "timestamp_format": "rfc3339ms"},
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    body
}

/// Every line the receiver accepted on `path`, deduplicated and sorted.
pub fn received_lines(receiver: &Receiver, path: &str) -> Vec<String> {
    let mut lines: Vec<String> = receiver
        .accepted(path)
        .iter()
        .flat_map(Upload::lines)
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

#[tokio::test]
async fn job_crud_validation_limit_and_permissions() {
    let sim = start().await;
    let receiver = Receiver::start().await;
    let destination = format!(
        "{}/ingest?tag=a%20b&header_Authorization=Bearer%20s3cret",
        receiver.base
    );
    let jobs_path = format!("/zones/{ENTERPRISE}/logpush/jobs");

    // Logs Read may list but not create.
    let (status, body) = send(
        &sim,
        reqwest::Method::POST,
        LOGS_ONLY,
        &jobs_path,
        Some(job_body(&destination, json!({}))),
    )
    .await;
    assert_eq!((status, error_codes(&body)), (403, vec![10000]), "{body}");
    let (status, body) = get_json(&sim, LOGS_ONLY, &jobs_path).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"], json!([]));
    let (status, _) = get_json(&sim, ANALYTICS_ONLY, &jobs_path).await;
    assert_eq!(status, 403);
    assert!(
        receiver.all().is_empty(),
        "no check before the permission test"
    );

    let (status, created) = create_job(
        &sim,
        ENTERPRISE,
        job_body(
            &destination,
            json!({"enabled": false, "max_upload_records": 1000, "max_upload_interval_seconds": 60}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["success"], true);
    let job = &created["result"];
    let id = job_id(&created);
    assert_eq!(job["dataset"], "http_requests");
    assert_eq!(job["enabled"], false);
    assert_eq!(job["name"], "rainlogs");
    assert_eq!(job["kind"], "");
    assert_eq!(job["destination_conf"], destination.as_str());
    assert_eq!(job["output_options"]["field_names"], json!(FIELDS));
    assert_eq!(job["max_upload_records"], 1000);
    assert_eq!(job["max_upload_interval_seconds"], 60);
    assert_eq!(job["max_upload_bytes"], Value::Null);
    for unset in ["last_complete", "last_error", "error_message"] {
        assert_eq!(job[unset], Value::Null, "{unset}");
    }

    // The destination check: one gzipped {"content":"tests"} with the header_* headers, those parameters
    // removed from the URL and the others kept.
    let checks = receiver.all();
    assert_eq!(checks.len(), 1, "{checks:?}");
    let check = &checks[0];
    assert!(check.is_check(), "{check:?}");
    assert_eq!(check.path, "/ingest?tag=a%20b");
    assert_eq!(check.authorization.as_deref(), Some("Bearer s3cret"));
    assert_eq!(check.content_encoding.as_deref(), Some("gzip"));

    let (status, listed) = get_json(&sim, LOGS_ONLY, &jobs_path).await;
    assert_eq!(status, 200);
    assert_eq!(listed["result"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["result"][0]["id"], id);
    assert_eq!(get_job(&sim, ENTERPRISE, id).await["id"], id);
    assert_eq!(
        get_job(&sim, ENTERPRISE, id + 1000).await,
        Value::Null,
        "a missing job reads as null"
    );

    let (status, updated) = send(
        &sim,
        reqwest::Method::PUT,
        FULL,
        &format!("{jobs_path}/{id}"),
        Some(json!({"name": "renamed", "max_upload_interval_seconds": 30})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["result"]["name"], "renamed");
    assert_eq!(updated["result"]["max_upload_interval_seconds"], 30);
    assert_eq!(updated["result"]["max_upload_records"], 1000);
    assert_eq!(
        receiver.all().len(),
        1,
        "an unchanged destination is not checked again"
    );
    let (status, body) = send(
        &sim,
        reqwest::Method::PUT,
        FULL,
        &format!("{jobs_path}/{id}"),
        Some(json!({"dataset": "firewall_events"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = send(
        &sim,
        reqwest::Method::PUT,
        LOGS_ONLY,
        &format!("{jobs_path}/{id}"),
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, 403);

    // Invalid bodies.
    for (bad, why) in [
        (json!({"dataset": "dns_logs"}), "dataset"),
        (json!({"max_upload_records": 10}), "records"),
        (json!({"max_upload_bytes": 1000}), "bytes"),
        (json!({"max_upload_interval_seconds": 301}), "interval"),
        (
            json!({"output_options": {"field_names": ["NoSuchField"]}}),
            "field",
        ),
        (
            json!({"output_options": {"field_names": ["RayID"], "timestamp_format": "iso"}}),
            "timestamps",
        ),
        (
            json!({"destination_conf": "http://logs.example.com/x"}),
            "plain http off loopback",
        ),
        (json!({"destination_conf": "ftp://x/y"}), "scheme"),
    ] {
        let (status, body) =
            create_job(&sim, ENTERPRISE, job_body(&destination, bad.clone())).await;
        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(body["success"], false, "{why}");
    }

    // The legacy logpull_options string still works; GCS destinations are stored without a check.
    let (status, body) = create_job(
        &sim,
        ENTERPRISE,
        json!({"dataset": "http_requests", "destination_conf": "gs://bucket/logs",
               "logpull_options": "fields=RayID,ClientIP&timestamps=rfc3339"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["logpull_options"],
        "fields=RayID,ClientIP&timestamps=rfc3339"
    );
    assert_eq!(receiver.all().len(), 1);
    for _ in 0..2 {
        let (status, body) = create_job(&sim, ENTERPRISE, job_body(&destination, json!({}))).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = create_job(&sim, ENTERPRISE, job_body(&destination, json!({}))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_codes(&body), [1004]);
    assert_eq!(
        body["errors"][0]["message"],
        "creating a new job is not allowed: exceeded max jobs allowed"
    );

    let (status, body) = send(
        &sim,
        reqwest::Method::DELETE,
        FULL,
        &format!("{jobs_path}/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["id"], id);
    assert_eq!(get_job(&sim, ENTERPRISE, id).await, Value::Null);
    let (status, _) = send(
        &sim,
        reqwest::Method::DELETE,
        FULL,
        &format!("{jobs_path}/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = create_job(&sim, ENTERPRISE, job_body(&destination, json!({}))).await;
    assert_eq!(status, 200, "a slot is free again: {body}");

    // Every plan may push, the EU Customer Metadata Boundary zone included (that is its way out).
    for zone in [FREE, SOVEREIGN] {
        let (status, body) = create_job(&sim, zone, job_body(&destination, json!({}))).await;
        assert_eq!(status, 200, "{zone}: {body}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn failed_destination_check_refuses_the_job() {
    let sim = start().await;
    let receiver = Receiver::start().await;
    receiver.answer_check(500);
    let (status, body) = create_job(
        &sim,
        ENTERPRISE,
        job_body(&format!("{}/ingest", receiver.base), json!({})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["errors"][0]["message"],
        "error validating destination: error writing object: error uploading"
    );
    let (_, listed) = get_json(&sim, FULL, &format!("/zones/{ENTERPRISE}/logpush/jobs")).await;
    assert_eq!(listed["result"], json!([]));

    // Nothing listening at all fails the same way.
    let (status, body) = create_job(
        &sim,
        ENTERPRISE,
        job_body("http://127.0.0.1:1/ingest", json!({})),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // A PUT to a destination that fails its check leaves the job as it was.
    receiver.answer_check(200);
    let (status, body) = create_job(
        &sim,
        ENTERPRISE,
        job_body(
            &format!("{}/ingest", receiver.base),
            json!({"enabled": false}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = job_id(&body);
    let (status, _) = send(
        &sim,
        reqwest::Method::PUT,
        FULL,
        &format!("/zones/{ENTERPRISE}/logpush/jobs/{id}"),
        Some(json!({"destination_conf": "http://127.0.0.1:1/elsewhere"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        get_job(&sim, ENTERPRISE, id).await["destination_conf"],
        format!("{}/ingest", receiver.base)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn pushes_gzip_ndjson_batches_that_equal_the_truth() {
    let sim = start().await;
    let receiver = Receiver::start().await;
    // Half a second in: records of T0 itself were received before the job existed and are never pushed.
    sim.set_now(T0 + Duration::from_millis(500));
    let t0 = T0.unix_timestamp();
    let (status, a) = create_job(
        &sim,
        ENTERPRISE,
        job_body(
            &format!("{}/a?header_Authorization=Bearer%20token-a", receiver.base),
            json!({}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{a}");
    let (status, b) = create_job(
        &sim,
        ENTERPRISE,
        job_body(
            &format!(
                "{}/b?header_Content-Type=application%2Fx-ndjson",
                receiver.base
            ),
            json!({"max_upload_records": 1000, "max_upload_interval_seconds": 60}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{b}");
    let (job_a, job_b) = (job_id(&a), job_id(&b));

    // Nothing is pushed while the frozen clock stands still.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sim.logpush_deliveries(ENTERPRISE).is_empty());

    sim.advance(secs(95));
    // Job A: 30 s batches from T0+1 while seconds up to T0+94 are complete -> [1,30], [31,60], [61,90].
    let deliveries = wait_deliveries(&sim, ENTERPRISE, "job A's three batches", |d| {
        d.iter()
            .filter(|b| b.job_id == job_a && b.status == DeliveryStatus::Delivered)
            .count()
            == 3
    })
    .await;
    let spans: Vec<(i64, i64)> = deliveries
        .iter()
        .filter(|b| b.job_id == job_a)
        .map(|b| (b.first_second - t0, b.last_second - t0))
        .collect();
    assert_eq!(spans, [(1, 30), (31, 60), (61, 90)]);
    for batch in deliveries.iter().filter(|b| b.job_id == job_a) {
        assert_eq!(batch.attempts, 1);
        assert_eq!(batch.duplicates_sent, 0);
    }

    let uploads = receiver.accepted("/a");
    assert_eq!(uploads.len(), 3);
    for upload in &uploads {
        assert_eq!(upload.path, "/a");
        assert_eq!(upload.authorization.as_deref(), Some("Bearer token-a"));
        assert_eq!(
            upload.content_type.as_deref(),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(upload.content_encoding.as_deref(), Some("gzip"));
        assert!(upload.body.ends_with('\n'));
    }
    let truth = truth_for(
        &sim,
        ENTERPRISE,
        t0 + 1,
        t0 + 90,
        TimestampFormat::Rfc3339ms,
    );
    assert!(truth.len() > 1000, "the enterprise zone is busy");
    assert_eq!(received_lines(&receiver, "/a"), truth);
    assert!(
        truth[0].contains("\"EdgeStartTimestamp\":\"2026-01-15T1"),
        "{}",
        truth[0]
    );

    let job = get_job(&sim, ENTERPRISE, job_a).await;
    assert_eq!(job["last_complete"], rfc3339(sim.now()));
    assert_eq!(job["last_error"], Value::Null);

    // A clock jump is caught up in batches.
    sim.advance(secs(600));
    let deliveries = wait_deliveries(&sim, ENTERPRISE, "job A catching up", |d| {
        let mine: Vec<_> = d.iter().filter(|b| b.job_id == job_a).collect();
        mine.last().is_some_and(|b| b.last_second == t0 + 690)
            && mine.iter().all(|b| b.status == DeliveryStatus::Delivered)
    })
    .await;
    assert_eq!(deliveries.iter().filter(|b| b.job_id == job_a).count(), 23);
    assert_eq!(
        received_lines(&receiver, "/a"),
        truth_for(
            &sim,
            ENTERPRISE,
            t0 + 1,
            t0 + 690,
            TimestampFormat::Rfc3339ms
        )
    );
    // Job B: cut at 1000 records (about 20 s of this zone), with its Content-Type override. Once it has cut a
    // batch starting after T0+600, everything before was cut, and its lines hold every record of those seconds.
    let deliveries = wait_deliveries(&sim, ENTERPRISE, "job B catching up", |d| {
        let mine: Vec<_> = d.iter().filter(|b| b.job_id == job_b).collect();
        mine.iter().all(|b| b.status == DeliveryStatus::Delivered)
            && mine.iter().any(|b| b.first_second > t0 + 600)
    })
    .await;
    let uploads = receiver.accepted("/b");
    let sent: u64 = deliveries
        .iter()
        .filter(|b| b.job_id == job_b)
        .map(|b| b.records)
        .sum();
    assert_eq!(
        uploads.iter().map(|u| u.lines().len() as u64).sum::<u64>(),
        sent
    );
    for upload in &uploads {
        assert_eq!(upload.lines().len(), 1000);
        assert_eq!(upload.content_type.as_deref(), Some("application/x-ndjson"));
    }
    let lines_b: BTreeSet<String> = received_lines(&receiver, "/b").into_iter().collect();
    assert_eq!(lines_b.len() as u64, sent, "no record twice");
    // Job B walked the same complete seconds as job A (up to T0+694), cutting by count.
    let walked = truth_for(
        &sim,
        ENTERPRISE,
        t0 + 1,
        t0 + 694,
        TimestampFormat::Rfc3339ms,
    );
    assert!(lines_b.iter().all(|l| walked.binary_search(l).is_ok()));
    assert!(
        truth_for(
            &sim,
            ENTERPRISE,
            t0 + 1,
            t0 + 600,
            TimestampFormat::Rfc3339ms
        )
        .iter()
        .all(|l| lines_b.contains(l))
    );

    // Disabled and deleted jobs push nothing more; re-enabling does not backfill.
    let (status, _) = send(
        &sim,
        reqwest::Method::PUT,
        FULL,
        &format!("/zones/{ENTERPRISE}/logpush/jobs/{job_a}"),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(
        &sim,
        reqwest::Method::DELETE,
        FULL,
        &format!("/zones/{ENTERPRISE}/logpush/jobs/{job_b}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let before = receiver.all().len();
    sim.advance(secs(300));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.all().len(), before);
    let (status, _) = send(
        &sim,
        reqwest::Method::PUT,
        FULL,
        &format!("/zones/{ENTERPRISE}/logpush/jobs/{job_a}"),
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, 200);
    let resumed = sim.now().unix_timestamp() + 1;
    sim.advance(secs(40));
    let deliveries = wait_deliveries(&sim, ENTERPRISE, "job A after re-enabling", |d| {
        d.iter().any(|b| {
            b.job_id == job_a && b.status == DeliveryStatus::Delivered && b.first_second >= resumed
        })
    })
    .await;
    let later: Vec<_> = deliveries
        .iter()
        .filter(|b| b.job_id == job_a && b.first_second > t0 + 690)
        .collect();
    assert_eq!(later.len(), 2, "{later:?}");
    // What job A had received but not cut when it was disabled is accounted as dropped.
    assert_eq!(later[0].status, DeliveryStatus::Dropped);
    assert_eq!(later[0].error.as_deref(), Some("job disabled"));
    assert_eq!(
        (later[0].first_second, later[0].last_second),
        (t0 + 691, t0 + 695)
    );
    assert_eq!(
        sim.logpush_dropped_lines(ENTERPRISE, Some(job_a)),
        truth_for(
            &sim,
            ENTERPRISE,
            t0 + 691,
            t0 + 695,
            TimestampFormat::Rfc3339ms
        )
    );
    assert_eq!(later[1].status, DeliveryStatus::Delivered);
    assert_eq!(later[1].first_second, resumed);
    sim.shutdown().await;
}

#[tokio::test]
async fn failed_pushes_are_retried_with_backoff() {
    let sim = start().await;
    let receiver = Receiver::start().await;
    let t0 = T0.unix_timestamp();
    let id = pushing_job(&sim, &receiver, "/retry").await;
    receiver.answer(503);

    sim.advance(secs(31));
    wait_deliveries(&sim, ENTERPRISE, "a first failed attempt", |d| {
        d.first().is_some_and(|b| b.attempts == 1)
    })
    .await;
    let job = get_job(&sim, ENTERPRISE, id).await;
    assert_eq!(job["last_error"], rfc3339(sim.now()));
    let message = job["error_message"].as_str().expect("error_message");
    assert!(
        message.contains("error uploading to https: 503 sink says 503"),
        "{message}"
    );
    assert_eq!(job["last_complete"], Value::Null);

    // The first retry waits 15 s of simulated time, the next 30 s.
    sim.advance(secs(14));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sim.logpush_deliveries(ENTERPRISE)[0].attempts, 1);
    sim.advance(secs(1));
    wait_deliveries(&sim, ENTERPRISE, "the first retry", |d| {
        d.first().is_some_and(|b| b.attempts == 2)
    })
    .await;
    receiver.answer(200);
    sim.advance(secs(30));
    let deliveries = wait_deliveries(&sim, ENTERPRISE, "the second retry", |d| {
        d.first()
            .is_some_and(|b| b.status == DeliveryStatus::Delivered)
    })
    .await;
    let first = &deliveries[0];
    assert_eq!(first.attempts, 3);
    assert_eq!((first.first_second, first.last_second), (t0, t0 + 29));
    let job = get_job(&sim, ENTERPRISE, id).await;
    assert_eq!(job["last_error"], Value::Null, "cleared by a success");
    assert_eq!(job["error_message"], Value::Null);
    assert!(job["last_complete"].is_string());
    let got: BTreeSet<String> = received_lines(&receiver, "/retry").into_iter().collect();
    let truth = truth_for(&sim, ENTERPRISE, t0, t0 + 29, TimestampFormat::Rfc3339ms);
    assert_eq!(truth.len() as u64, first.records);
    assert!(truth.iter().all(|l| got.contains(l)));
    sim.shutdown().await;
}

#[tokio::test]
async fn batches_are_dropped_after_the_retry_budget() {
    let mut scenario = scenario();
    scenario.logpush.max_attempts = 3;
    scenario.logpush.retry_backoff_secs = 10;
    let sim = start_with(scenario).await;
    let receiver = Receiver::start().await;
    let t0 = T0.unix_timestamp();
    let id = pushing_job(&sim, &receiver, "/drop").await;
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
    let deliveries = wait_deliveries(&sim, ENTERPRISE, "the drop", |d| {
        d.first()
            .is_some_and(|b| b.status == DeliveryStatus::Dropped)
    })
    .await;
    let dropped = deliveries[0].clone();
    assert_eq!(dropped.attempts, 3);
    assert_eq!(dropped.first_second, t0);
    assert!(
        dropped
            .error
            .as_deref()
            .is_some_and(|e| e.contains("error uploading to https: 503")),
        "{dropped:?}"
    );
    let job = get_job(&sim, ENTERPRISE, id).await;
    assert!(job["last_error"].is_string(), "{job}");
    assert!(
        job["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("503")),
        "{job}"
    );
    // The same over HTTP, for clients that are not Rust.
    let listed: Vec<LogpushDelivery> = client()
        .get(format!(
            "{}/__sim/logpush/deliveries?zone={ENTERPRISE}",
            sim.root_url()
        ))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(listed[0], dropped);
    let dropped_lines = sim.logpush_dropped_lines(ENTERPRISE, Some(id));
    assert_eq!(
        dropped_lines,
        truth_for(
            &sim,
            ENTERPRISE,
            dropped.first_second,
            dropped.last_second,
            TimestampFormat::Rfc3339ms
        )
    );
    let over_http = client()
        .get(format!(
            "{}/__sim/logpush/dropped?zone={ENTERPRISE}",
            sim.root_url()
        ))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert_eq!(sorted_lines(&over_http), dropped_lines);

    // Once the destination recovers, what it holds is the truth minus the dropped lines.
    receiver.answer(200);
    sim.advance(secs(120));
    let deliveries = wait_deliveries(&sim, ENTERPRISE, "recovery", |d| {
        d.iter()
            .skip(1)
            .all(|b| b.status == DeliveryStatus::Delivered)
            && d.last().is_some_and(|b| b.last_second >= t0 + 150)
    })
    .await;
    let last = deliveries.last().map(|b| b.last_second).unwrap_or_default();
    let expected: Vec<String> = truth_for(&sim, ENTERPRISE, t0, last, TimestampFormat::Rfc3339ms)
        .into_iter()
        .filter(|l| !dropped_lines.contains(l))
        .collect();
    assert_eq!(received_lines(&receiver, "/drop"), expected);
    sim.shutdown().await;
}

/// Where in the receiver's log the accepted upload(s) carrying exactly batch `b`'s records are.
fn positions(sim: &RunningSim, receiver: &Receiver, path: &str, b: &LogpushDelivery) -> Vec<usize> {
    let want = truth_for(
        sim,
        &b.zone,
        b.first_second,
        b.last_second,
        TimestampFormat::Rfc3339ms,
    );
    receiver
        .all()
        .iter()
        .enumerate()
        .filter(|(_, u)| !u.is_check() && u.path.starts_with(path) && u.answered < 300)
        .filter(|(_, u)| {
            let mut lines = u.lines();
            lines.sort();
            lines == want
        })
        .map(|(i, _)| i)
        .collect()
}

#[tokio::test]
async fn push_faults_duplicate_reorder_delay_and_drop() {
    let sim = start().await;
    let receiver = Receiver::start().await;
    let t0 = T0.unix_timestamp();
    let id = pushing_job(&sim, &receiver, "/faults").await;
    let push_fault = |kind| Fault::on_zone(ENTERPRISE, EndpointKind::LogpushPush, 1, kind);
    // An `any` fault of the API kinds never touches a push.
    sim.inject(Fault::on_zone(
        ENTERPRISE,
        EndpointKind::Any,
        1,
        FaultKind::IdleTimeout,
    ));

    // duplicate: batch 1 arrives twice.
    sim.inject(push_fault(FaultKind::Duplicate { after_secs: 0 }));
    sim.advance(secs(31));
    let d = wait_deliveries(&sim, ENTERPRISE, "the duplicate", |d| {
        d.first().is_some_and(|b| b.duplicates_sent == 1)
    })
    .await;
    assert_eq!(d[0].status, DeliveryStatus::Delivered);
    assert_eq!(d[0].attempts, 1);
    assert_eq!(d[0].fault.as_deref(), Some("duplicate"));
    assert_eq!(positions(&sim, &receiver, "/faults", &d[0]).len(), 2);

    // reorder: batches 2 and 3 are cut in the same tick; batch 2 is held until batch 3 has been delivered.
    sim.inject(push_fault(FaultKind::Reorder));
    sim.advance(secs(60));
    let d = wait_deliveries(&sim, ENTERPRISE, "the reordered pair", |d| {
        d.len() == 3 && d.iter().all(|b| b.status == DeliveryStatus::Delivered)
    })
    .await;
    assert_eq!(d[1].fault.as_deref(), Some("reorder"));
    let (second, third) = (
        positions(&sim, &receiver, "/faults", &d[1]),
        positions(&sim, &receiver, "/faults", &d[2]),
    );
    assert_eq!((second.len(), third.len()), (1, 1));
    assert!(third[0] < second[0], "batch 3 arrived before batch 2");

    // delay: batch 4 waits 45 s, so batch 5 is delivered first.
    sim.inject(Fault {
        zone: Some(ENTERPRISE.to_owned()),
        dataset: None,
        endpoint: EndpointKind::LogpushPush,
        count: Some(1),
        probability: None,
        kind: FaultKind::Delay { secs: 45 },
    });
    sim.advance(secs(30));
    wait_deliveries(&sim, ENTERPRISE, "batch 4 cut", |d| d.len() == 4).await;
    sim.advance(secs(30));
    let d = wait_deliveries(&sim, ENTERPRISE, "batch 5", |d| {
        d.get(4)
            .is_some_and(|b| b.status == DeliveryStatus::Delivered)
    })
    .await;
    assert_eq!(d[3].status, DeliveryStatus::Pending);
    assert_eq!((d[3].attempts, d[3].fault.as_deref()), (0, Some("delay")));
    sim.advance(secs(15));
    let d = wait_deliveries(&sim, ENTERPRISE, "batch 4 at last", |d| {
        d.get(3)
            .is_some_and(|b| b.status == DeliveryStatus::Delivered)
    })
    .await;
    assert!(
        positions(&sim, &receiver, "/faults", &d[4])[0]
            < positions(&sim, &receiver, "/faults", &d[3])[0]
    );

    // drop: batch 6 is lost without an attempt, and the job says so.
    sim.inject(push_fault(FaultKind::DropBatch));
    sim.advance(secs(30));
    let d = wait_deliveries(&sim, ENTERPRISE, "the drop", |d| d.len() == 6).await;
    assert_eq!(d[5].status, DeliveryStatus::Dropped);
    assert_eq!((d[5].attempts, d[5].fault.as_deref()), (0, Some("drop")));
    // Six batches went by and the `any` fault is still armed (it would hit the next API call).
    let armed: Value = client()
        .get(format!("{}/__sim/faults", sim.root_url()))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(armed.as_array().map(Vec::len), Some(1), "{armed}");
    assert_eq!(armed[0]["kind"], "idle_timeout");
    sim.clear_faults();
    let job = get_job(&sim, ENTERPRISE, id).await;
    assert!(job["error_message"].is_string(), "{job}");
    assert!(positions(&sim, &receiver, "/faults", &d[5]).is_empty());

    // After deduplication the receiver holds the truth minus the dropped batch.
    let last = d[5].last_second;
    let dropped = sim.logpush_dropped_lines(ENTERPRISE, Some(id));
    let expected: Vec<String> = truth_for(&sim, ENTERPRISE, t0, last, TimestampFormat::Rfc3339ms)
        .into_iter()
        .filter(|l| dropped.binary_search(l).is_err())
        .collect();
    assert_eq!(received_lines(&receiver, "/faults"), expected);
    sim.shutdown().await;
}

#[tokio::test]
async fn firewall_events_are_pushed_with_logpush_names() {
    let sim = start().await;
    let receiver = Receiver::start().await;
    let t0 = T0.unix_timestamp();
    let firewall_job = |path: &str, output: Value| {
        json!({
            "name": "rainlogs-firewall",
            "dataset": "firewall_events",
            "enabled": true,
            "destination_conf": format!("{}{path}", receiver.base),
            "output_options": output,
        })
    };
    // GraphQL's camelCase names are not Logpush fields.
    let (status, body) = create_job(
        &sim,
        ENTERPRISE,
        firewall_job("/fw-bad", json!({"field_names": ["rayName", "datetime"]})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["message"], "invalid field: rayName");

    // Every field with unixnano timestamps (the defaults), and a few fields with RFC 3339.
    let (status, body) = create_job(&sim, ENTERPRISE, firewall_job("/fw-all", json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let job_all = job_id(&body);
    let picked = ["RayID", "Datetime", "ClientIP", "Action", "Source"];
    let (status, body) = create_job(
        &sim,
        ENTERPRISE,
        firewall_job(
            "/fw-some",
            json!({"field_names": picked, "timestamp_format": "rfc3339"}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let job_some = job_id(&body);
    sim.advance(secs(95));
    let deliveries = wait_deliveries(&sim, ENTERPRISE, "two batches per job", |d| {
        let count = |job| d.iter().filter(|b| b.job_id == job).count();
        count(job_all) >= 2
            && count(job_all) == count(job_some)
            && d.iter().all(|b| b.status == DeliveryStatus::Delivered)
    })
    .await;
    // Both jobs walk the same seconds and cut them the same way (by interval).
    let spans = |job: u64| -> Vec<(i64, i64)> {
        deliveries
            .iter()
            .filter(|b| b.job_id == job)
            .map(|b| (b.first_second, b.last_second))
            .collect()
    };
    assert_eq!(spans(job_all), spans(job_some));
    let last = spans(job_some).last().map(|s| s.1).expect("a batch");
    assert!(last >= t0 + 55, "{deliveries:?}");

    let mut all = cf_sim::TruthQuery::logpush(
        ENTERPRISE,
        cf_sim::Dataset::FirewallEvents,
        at(t0),
        at(last + 1),
    );
    let truth_all = sim.truth(&all).expect("truth");
    assert!(truth_all.len() > 60, "the enterprise zone has 2 events/s");
    assert_eq!(received_lines(&receiver, "/fw-all"), truth_all);
    let first: Value = serde_json::from_str(&truth_all[0]).expect("json");
    let names: Vec<&str> = first
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, cf_sim::logpush_firewall_event_fields());
    for name in [
        "Datetime",
        "RayID",
        "ClientIP",
        "ClientRequestHost",
        "EdgeColoCode",
    ] {
        assert!(names.contains(&name), "{name}");
    }
    let datetime = first["Datetime"].as_i64().expect("unixnano Datetime");
    assert!((t0 * 1_000_000_000..=last * 1_000_000_000).contains(&datetime));
    assert!(first["ClientASN"].is_u64(), "{first}");
    assert!(first["Metadata"].is_object(), "{first}");

    all.fields = Some(picked.iter().map(|f| (*f).to_owned()).collect());
    all.timestamps = TimestampFormat::Rfc3339;
    let truth_some = sim.truth(&all).expect("truth");
    assert_eq!(received_lines(&receiver, "/fw-some"), truth_some);
    let line: Value = serde_json::from_str(&truth_some[0]).expect("json");
    assert!(
        line["Datetime"]
            .as_str()
            .is_some_and(|d| d.starts_with("2026-01-15T12:00:") && d.ends_with('Z')),
        "{line}"
    );
    assert_eq!(line.as_object().map(|o| o.len()), Some(picked.len()));

    // GraphQL's form is unchanged and describes the same events.
    let graphql = sim
        .truth(&TruthQuery {
            dataset: cf_sim::Dataset::FirewallEvents,
            fields: Some(vec!["rayName".into(), "datetime".into()]),
            ..TruthQuery::http(ENTERPRISE, at(t0), at(last + 1))
        })
        .expect("graphql truth");
    let rays = |lines: &[String], field: &str| -> BTreeSet<String> {
        lines
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("json");
                v[field].as_str().expect("ray").to_owned()
            })
            .collect()
    };
    assert_eq!(rays(&graphql, "rayName"), rays(&truth_all, "RayID"));
    assert!(graphql[0].contains("\"datetime\":\"2026-01-15T12:00:"));

    // The same over HTTP.
    let over_http = client()
        .get(format!(
            "{}/__sim/truth?zone={ENTERPRISE}&dataset=firewall_events&form=logpush&start={t0}&end={}&fields={}&timestamps=rfc3339",
            sim.root_url(),
            last + 1,
            picked.join(",")
        ))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert_eq!(sorted_lines(&over_http), truth_some);
    sim.shutdown().await;
}
