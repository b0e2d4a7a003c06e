//! Logpush to S3: S3-compatible jobs writing gzipped NDJSON objects into a real SeaweedFS bucket (the dev
//! environment's: `source var/dev-env.sh`), the destination check refusing bad or read-only credentials, retries against a
//! failing S3 endpoint, and the ownership challenge for Amazon S3 destinations.

use std::collections::BTreeSet;
use std::io::Read;
use std::time::Duration;

use cf_sim::{
    DeliveryStatus, EndpointKind, Fault, FaultKind, LogpushDelivery, Scenario, TimestampFormat,
};
use futures::StreamExt;
use rainlogs_store::{ObjectKey, S3Store};
use rainlogs_testkit::s3::{dev_bucket, dev_s3_auditor, dev_s3_endpoint, dev_s3_writer};
use serde_json::{Value, json};

use crate::common::*;
use crate::logpush::{
    Receiver, create_job, get_job, job_body, job_id, secs, send, truth_for, wait_deliveries,
};

/// Percent-encode a query value (secrets may hold `+` and `/`).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The dev SeaweedFS as Cloudflare's docs write an endpoint: `host:port`, no scheme.
fn endpoint_host() -> String {
    let endpoint = dev_s3_endpoint();
    endpoint
        .split_once("://")
        .map_or(endpoint.as_str(), |(_, rest)| rest)
        .trim_end_matches('/')
        .to_owned()
}

/// An S3-compatible destination on the dev SeaweedFS with the writer's keys (`secret` overrides the secret).
fn compatible_conf(bucket: &str, path: &str, secret: Option<&str>) -> String {
    let writer = dev_s3_writer();
    format!(
        "s3://{bucket}/{path}?region=us-east-1&endpoint={}&access-key-id={}&secret-access-key={}",
        endpoint_host(),
        encode(&writer.access_key_id),
        encode(secret.unwrap_or(&writer.secret_access_key))
    )
}

/// The same with the dev auditor's keys, which may read and list but not write.
fn auditor_conf(bucket: &str, path: &str) -> String {
    let auditor = dev_s3_auditor();
    format!(
        "s3://{bucket}/{path}?region=us-east-1&endpoint={}&access-key-id={}&secret-access-key={}",
        endpoint_host(),
        encode(&auditor.access_key_id),
        encode(&auditor.secret_access_key)
    )
}

fn bucket_of(store: &S3Store) -> String {
    store.config().bucket.clone()
}

/// Every object under `prefix`, key-sorted, with its bytes.
async fn objects(store: &S3Store, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut keys: Vec<String> = store
        .list(prefix)
        .map(|o| o.expect("list").key)
        .collect()
        .await;
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let bytes = store
            .get_bytes(&ObjectKey::new(key.clone()).expect("key"))
            .await
            .expect("get");
        out.push((key, bytes.to_vec()));
    }
    out
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("gzip");
    text
}

fn error_message(body: &Value) -> String {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `(start, end)` receive seconds from `<start>_<end>_<8 hex>.log.gz`, checking the name's shape.
fn span_of(key: &str, dir: &str) -> (i64, i64) {
    let name = key
        .strip_prefix(dir)
        .unwrap_or_else(|| panic!("{key} outside {dir}"));
    let stem = name.strip_suffix(".log.gz").expect(".log.gz");
    let parts: Vec<&str> = stem.split('_').collect();
    assert_eq!(parts.len(), 3, "{key}");
    assert!(
        parts[2].len() == 8 && parts[2].bytes().all(|b| b.is_ascii_hexdigit()),
        "{key}"
    );
    let parse = |s: &str| {
        let format =
            time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        time::PrimitiveDateTime::parse(s, format)
            .expect("compact time")
            .assume_utc()
            .unix_timestamp()
    };
    (parse(parts[0]), parse(parts[1]))
}

/// `YYYYMMDDTHHMMSSZ` of a Unix second.
fn compact(second: i64) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::from_unix_timestamp(second)
        .expect("time")
        .format(format)
        .expect("format")
}

#[tokio::test]
async fn s3_compatible_job_writes_the_truth_as_objects() {
    let sim = start().await;
    let store = dev_bucket("cfsim-push", false).await;
    let bucket = bucket_of(&store);
    let t0 = T0.unix_timestamp();
    let conf = compatible_conf(&bucket, "cf/http", None);
    // No ownership challenge: S3-compatible destinations authenticate with their keys.
    let (status, body) = create_job(&sim, ENTERPRISE, job_body(&conf, json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let id = job_id(&body);
    assert_eq!(body["result"]["destination_conf"], conf.as_str());

    // The destination check left its object.
    let check = objects(&store, "cf/http/test.txt.gz").await;
    assert_eq!(check.len(), 1, "{check:?}");
    assert_eq!(gunzip(&check[0].1), r#"{"content":"tests"}"#);

    // Batch 1 delivered, batch 2 dropped by a fault, batch 3 delivered twice, batch 4 delivered.
    let push_fault = |kind| Fault::on_zone(ENTERPRISE, EndpointKind::LogpushPush, 1, kind);
    sim.advance(secs(31));
    wait_deliveries(&sim, ENTERPRISE, "batch 1", |d| {
        d.len() == 1 && d[0].status == DeliveryStatus::Delivered
    })
    .await;
    sim.inject(push_fault(FaultKind::DropBatch));
    sim.advance(secs(30));
    wait_deliveries(&sim, ENTERPRISE, "batch 2 dropped", |d| d.len() == 2).await;
    sim.inject(push_fault(FaultKind::Duplicate { after_secs: 0 }));
    sim.advance(secs(30));
    wait_deliveries(&sim, ENTERPRISE, "batch 3 and its copy", |d| {
        d.len() == 3 && d[2].duplicates_sent == 1
    })
    .await;
    sim.advance(secs(30));
    let d = wait_deliveries(&sim, ENTERPRISE, "batch 4", |d| {
        d.len() == 4 && d[3].status == DeliveryStatus::Delivered
    })
    .await;
    assert_eq!(
        d.iter().map(|b| b.status).collect::<Vec<_>>(),
        [
            DeliveryStatus::Delivered,
            DeliveryStatus::Dropped,
            DeliveryStatus::Delivered,
            DeliveryStatus::Delivered
        ]
    );
    assert_eq!((d[1].attempts, d[1].fault.as_deref()), (0, Some("drop")));
    assert!(d.iter().all(|b| b.error.is_none() || b.fault.is_some()));
    let job = get_job(&sim, ENTERPRISE, id).await;
    assert!(job["last_complete"].is_string(), "{job}");

    // One object per delivered batch plus one for the duplicate, under <path>/<YYYYMMDD>/, named by the batch's
    // first and last receive second: key order is time order.
    let dir = "cf/http/20260115/";
    let written: Vec<(String, Vec<u8>)> = objects(&store, "cf/http/")
        .await
        .into_iter()
        .filter(|(k, _)| k.ends_with(".log.gz"))
        .collect();
    assert_eq!(
        written.len(),
        4,
        "{:?}",
        written.iter().map(|o| &o.0).collect::<Vec<_>>()
    );
    let spans: Vec<(i64, i64)> = written.iter().map(|(k, _)| span_of(k, dir)).collect();
    let delivered: Vec<(i64, i64)> = d
        .iter()
        .filter(|b| b.status == DeliveryStatus::Delivered)
        .map(|b| (b.first_second, b.last_second))
        .collect();
    assert_eq!(
        spans,
        [delivered[0], delivered[1], delivered[1], delivered[2]],
        "the duplicate is a second object of batch 3"
    );
    assert_ne!(written[1].0, written[2].0);
    assert_eq!(gunzip(&written[1].1), gunzip(&written[2].1));

    // Gunzipped and concatenated, the objects hold the truth of the pushed seconds minus the dropped batch, the
    // duplicated batch twice.
    let mut lines: Vec<String> = written
        .iter()
        .flat_map(|(_, bytes)| {
            gunzip(bytes)
                .split_inclusive('\n')
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    let with_copies = lines.len();
    lines.dedup();
    let dropped = sim.logpush_dropped_lines(ENTERPRISE, Some(id));
    assert_eq!(dropped.len() as u64, d[1].records);
    assert_eq!(
        dropped,
        truth_for(
            &sim,
            ENTERPRISE,
            d[1].first_second,
            d[1].last_second,
            TimestampFormat::Rfc3339ms
        )
    );
    let expected: Vec<String> = truth_for(
        &sim,
        ENTERPRISE,
        t0,
        d[3].last_second,
        TimestampFormat::Rfc3339ms,
    )
    .into_iter()
    .filter(|l| dropped.binary_search(l).is_err())
    .collect();
    assert_eq!(lines, expected);
    assert_eq!(with_copies as u64, expected.len() as u64 + d[2].records);
    sim.shutdown().await;
}

#[tokio::test]
async fn s3_destination_check_refuses_bad_credentials_and_buckets() {
    let sim = start().await;
    let store = dev_bucket("cfsim-check", false).await;
    let bucket = bucket_of(&store);
    for (conf, why) in [
        (
            compatible_conf(&bucket, "cf", Some("not-the-secret")),
            "wrong secret",
        ),
        (auditor_conf(&bucket, "cf"), "read-only keys"),
        (
            "s3://b/cf?region=us-east-1&endpoint=127.0.0.1:1&access-key-id=a&secret-access-key=b"
                .to_owned(),
            "nothing listening",
        ),
    ] {
        let (status, body) = create_job(&sim, ENTERPRISE, job_body(&conf, json!({}))).await;
        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(error_codes(&body), [1002], "{why}");
        let message = error_message(&body);
        assert!(
            message.starts_with("error validating destination: error writing object: "),
            "{why}: {message}"
        );
        if why != "nothing listening" {
            assert!(message.contains("403"), "{why}: {message}");
        }
    }
    let (_, listed) = get_json(&sim, FULL, &format!("/zones/{ENTERPRISE}/logpush/jobs")).await;
    assert_eq!(listed["result"], json!([]));
    assert!(objects(&store, "cf/").await.is_empty());

    // A PUT to a bad destination leaves the job as it was.
    let good = compatible_conf(&bucket, "cf", None);
    let (status, body) =
        create_job(&sim, ENTERPRISE, job_body(&good, json!({"enabled": false}))).await;
    assert_eq!(status, 200, "{body}");
    let id = job_id(&body);
    let (status, body) = send(
        &sim,
        reqwest::Method::PUT,
        FULL,
        &format!("/zones/{ENTERPRISE}/logpush/jobs/{id}"),
        Some(json!({"destination_conf": compatible_conf(&bucket, "cf", Some("wrong"))})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        get_job(&sim, ENTERPRISE, id).await["destination_conf"],
        good.as_str()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn s3_uploads_are_retried_and_dropped_like_http_ones() {
    let mut scenario = scenario();
    scenario.logpush.max_attempts = 3;
    scenario.logpush.retry_backoff_secs = 10;
    let sim = start_with(scenario).await;
    // A fake S3 endpoint: it answers every PUT with the status it is told.
    let fake = Receiver::start().await;
    let host = fake.base.trim_start_matches("http://");
    let conf = format!(
        "s3://fake-bucket/x?region=us-east-1&endpoint={host}&access-key-id=a&secret-access-key=b"
    );
    let (status, body) = create_job(&sim, ENTERPRISE, job_body(&conf, json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let id = job_id(&body);
    let check = fake.all();
    assert_eq!(check.len(), 1);
    assert!(check[0].is_check(), "{check:?}");
    // Path-style addressing (the SDK adds its `x-id` query parameter).
    assert_eq!(
        check[0].path.split('?').next(),
        Some("/fake-bucket/x/test.txt.gz")
    );

    fake.answer(503);
    sim.advance(secs(30));
    wait_deliveries(&sim, ENTERPRISE, "attempt 1", |d| {
        d.first().is_some_and(|b| b.attempts == 1)
    })
    .await;
    let job = get_job(&sim, ENTERPRISE, id).await;
    let message = job["error_message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("error 503: error pushing: error uploading to s3: 503"),
        "{job}"
    );
    sim.advance(secs(10));
    wait_deliveries(&sim, ENTERPRISE, "attempt 2", |d| {
        d.first().is_some_and(|b| b.attempts == 2)
    })
    .await;
    fake.answer(403);
    sim.advance(secs(20));
    let d = wait_deliveries(&sim, ENTERPRISE, "the drop", |d| {
        d.first()
            .is_some_and(|b| b.status == DeliveryStatus::Dropped)
    })
    .await;
    assert_eq!(d[0].attempts, 3);
    assert!(
        d[0].error
            .as_deref()
            .is_some_and(|e| e.contains("error uploading to s3: 403")),
        "{:?}",
        d[0]
    );
    // Every attempt wrote the batch's own key.
    let first = format!(
        "/fake-bucket/x/20260115/{}_{}_",
        compact(d[0].first_second),
        compact(d[0].last_second)
    );
    assert_eq!(
        (d[0].first_second, d[0].last_second),
        (T0.unix_timestamp(), T0.unix_timestamp() + 29)
    );
    let attempts: Vec<String> = fake
        .all()
        .iter()
        .map(|u| u.path.split('?').next().unwrap_or_default().to_owned())
        .filter(|p| p.starts_with(&first))
        .collect();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert_eq!(
        attempts.iter().collect::<BTreeSet<_>>().len(),
        1,
        "{attempts:?}"
    );

    // Once the endpoint recovers, later batches arrive, and the lost one is reported.
    fake.answer(200);
    // Retries fall due in simulated time: an attempt still on its way when the clock last
    // moved is retried only once it moves again, so it moves until every later batch is in.
    let recovered = |d: &[LogpushDelivery]| {
        d.len() >= 3
            && d.iter()
                .skip(1)
                .all(|b| b.status == DeliveryStatus::Delivered)
    };
    let mut d = Vec::new();
    for _ in 0..20 {
        sim.advance(secs(30));
        for _ in 0..20 {
            d = sim.logpush_deliveries(ENTERPRISE);
            if recovered(&d) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if recovered(&d) {
            break;
        }
    }
    assert!(recovered(&d), "timed out waiting for recovery: {d:#?}");
    let accepted = fake.accepted("/fake-bucket/x/");
    for batch in d.iter().skip(1) {
        let prefix = format!(
            "/fake-bucket/x/20260115/{}_{}_",
            compact(batch.first_second),
            compact(batch.last_second)
        );
        assert!(
            accepted.iter().any(|u| u.path.starts_with(&prefix)),
            "{prefix}"
        );
    }
    assert_eq!(
        sim.logpush_dropped_lines(ENTERPRISE, Some(id)),
        truth_for(
            &sim,
            ENTERPRISE,
            d[0].first_second,
            d[0].last_second,
            TimestampFormat::Rfc3339ms
        )
    );
    sim.shutdown().await;
}

/// The example scenario with the dev SeaweedFS standing in for Amazon S3 and the writer as Cloudflare's identity.
fn with_aws() -> Scenario {
    let mut scenario = scenario();
    let writer = dev_s3_writer();
    scenario.logpush.aws_endpoint = Some(dev_s3_endpoint());
    scenario.logpush.aws_access_key_id = Some(writer.access_key_id);
    scenario.logpush.aws_secret_access_key = Some(writer.secret_access_key);
    scenario
}

async fn challenge(sim: &cf_sim::RunningSim, conf: &str) -> (u16, Value) {
    send(
        sim,
        reqwest::Method::POST,
        FULL,
        &format!("/zones/{ENTERPRISE}/logpush/ownership"),
        Some(json!({"destination_conf": conf})),
    )
    .await
}

#[tokio::test]
async fn ownership_challenge_writes_a_token_that_creation_requires() {
    let sim = start_with(with_aws()).await;
    let store = dev_bucket("cfsim-owner", false).await;
    let bucket = bucket_of(&store);
    let conf = format!("s3://{bucket}/cf/logs?region=us-east-1");
    let body_with = |conf: &str, token: Option<&str>| {
        let mut extra = json!({"enabled": false});
        if let Some(token) = token {
            extra["ownership_challenge"] = json!(token);
        }
        job_body(conf, extra)
    };

    // Amazon S3 with Cloudflare's identity: no job without the token.
    let (status, body) = create_job(&sim, ENTERPRISE, body_with(&conf, None)).await;
    assert_eq!((status, error_codes(&body)), (400, vec![1002]), "{body}");
    assert_eq!(error_message(&body), "incorrect ownership challenge");

    // The challenge: a token written to <path>/ownership-challenge-<8 hex>.txt, the key answered.
    let (status, body) = challenge(&sim, &conf).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["valid"], true);
    assert_eq!(body["result"]["message"], "");
    let filename = body["result"]["filename"]
        .as_str()
        .expect("filename")
        .to_owned();
    let tag = filename
        .strip_prefix("cf/logs/ownership-challenge-")
        .and_then(|f| f.strip_suffix(".txt"))
        .unwrap_or_else(|| panic!("{filename}"));
    assert!(
        tag.len() == 8 && tag.bytes().all(|b| b.is_ascii_hexdigit()),
        "{filename}"
    );
    let files = objects(&store, &filename).await;
    assert_eq!(files.len(), 1, "{filename}");
    let token = String::from_utf8(files[0].1.clone()).expect("text token");
    assert_eq!(token.split('.').count(), 3, "JWT-shaped: {token}");
    assert!(
        objects(&store, "cf/logs/test.txt.gz").await.is_empty(),
        "no check yet"
    );

    // A wrong token, or one issued for another destination, is refused.
    let (status, body) = create_job(
        &sim,
        ENTERPRISE,
        body_with(&conf, Some("00000000000000000")),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_message(&body), "incorrect ownership challenge");
    let other = format!("s3://{bucket}/other?region=us-east-1");
    let (status, body) = challenge(&sim, &other).await;
    assert_eq!(status, 200, "{body}");
    let other_file = body["result"]["filename"]
        .as_str()
        .expect("filename")
        .to_owned();
    assert!(
        other_file.starts_with("other/ownership-challenge-"),
        "{other_file}"
    );
    let other_token =
        String::from_utf8(objects(&store, &other_file).await[0].1.clone()).expect("token");
    assert_ne!(other_token, token);
    let (status, body) = create_job(&sim, ENTERPRISE, body_with(&conf, Some(&other_token))).await;
    assert_eq!(status, 400, "{body}");

    // The right token (as read from the file, trailing newline and all) creates the job, after the check.
    let (status, body) = create_job(
        &sim,
        ENTERPRISE,
        body_with(&conf, Some(&format!("{token}\n"))),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let check = objects(&store, "cf/logs/test.txt.gz").await;
    assert_eq!(check.len(), 1);
    assert_eq!(gunzip(&check[0].1), r#"{"content":"tests"}"#);

    // An S3-compatible destination needs no token, but one given is checked.
    let compatible = compatible_conf(&bucket, "compat", None);
    let (status, body) = create_job(&sim, ENTERPRISE, body_with(&compatible, Some(&token))).await;
    assert_eq!(status, 400, "a token for another destination: {body}");
    let (status, body) = challenge(&sim, &compatible).await;
    assert_eq!(status, 200, "{body}");
    let file = body["result"]["filename"]
        .as_str()
        .expect("filename")
        .to_owned();
    let compatible_token =
        String::from_utf8(objects(&store, &file).await[0].1.clone()).expect("token");
    let (status, body) = create_job(
        &sim,
        ENTERPRISE,
        body_with(&compatible, Some(&compatible_token)),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Tokens expire after 7 days.
    let late = format!("s3://{bucket}/late?region=us-east-1");
    let (status, body) = challenge(&sim, &late).await;
    assert_eq!(status, 200, "{body}");
    let late_file = body["result"]["filename"]
        .as_str()
        .expect("filename")
        .to_owned();
    let late_token =
        String::from_utf8(objects(&store, &late_file).await[0].1.clone()).expect("token");
    sim.advance(secs(7 * 24 * 3600 + 1));
    let (status, body) = create_job(&sim, ENTERPRISE, body_with(&late, Some(&late_token))).await;
    assert_eq!(status, 400, "expired: {body}");
    sim.shutdown().await;

    // Without a stand-in for Amazon S3 the challenge cannot be written.
    let sim = start().await;
    let (status, body) = challenge(&sim, &conf).await;
    assert_eq!((status, error_codes(&body)), (400, vec![1002]), "{body}");
    assert!(
        error_message(&body)
            .starts_with("error writing ownership challenge: Amazon S3 is not simulated"),
        "{body}"
    );
    sim.shutdown().await;
}
