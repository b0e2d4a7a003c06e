//! Logpush over HTTP: parts the ingest endpoint stored in `RL_PUSH` become windows by each
//! record's own time, closed after the lateness; late records become late closes; a killed
//! collector's successor stores every record exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rainlogs_schemas::events::{BatchCollected, Method, PushReceived, Window, WindowOutcome};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use sha2::{Digest, Sha256};

use crate::support::*;

const ZONE: &str = SOVEREIGN_ZONE;

/// An HTTP endpoint that answers every request 200, standing in for the ingest endpoint when
/// Cloudflare checks the destination of the job the collector creates (the test stores parts
/// itself). Returns its base URL.
async fn accept_everything() -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Head, then as many body bytes as it announces.
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let length = text[..head_end]
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if request.len() >= head_end + 4 + length {
                            break;
                        }
                    }
                }
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

fn t(offset: i64) -> i64 {
    t0().unix_timestamp() + offset
}

/// One http_requests record at `second` (collector time), told apart by `n`.
fn record(second: i64, n: u32) -> Vec<u8> {
    let ns = i128::from(second) * 1_000_000_000 + i128::from(n) * 1_000;
    format!(
        r#"{{"ClientIP":"192.0.2.{}","EdgeStartTimestamp":{ns},"RayID":"{n:016x}"}}"#,
        n % 250
    )
    .into_bytes()
}

/// Stores a part on the zone's push subject as the ingest endpoint does.
async fn push(h: &Harness, lines: &[Vec<u8>]) {
    let mut content = Vec::new();
    for line in lines {
        content.extend_from_slice(line);
        content.push(b'\n');
    }
    let part = PushReceived {
        dataset: HTTP.into(),
        records: lines.len() as u32,
        content_sha256: Sha256::digest(&content).to_vec(),
        content_lz4: BatchCollected::compress(&content),
    };
    let envelope = Envelope::new(
        TENANT,
        Some(ZONE.to_owned()),
        Actor::service("ingest"),
        Event::PushReceived(part),
    );
    h.bus
        .publish(&subjects::push(ZONE), &envelope)
        .await
        .expect("store part");
}

/// Every record of the zone's `http_requests` closes, per window, with the number of times it
/// was stored.
fn stored(events: &ZoneEvents) -> BTreeMap<i64, BTreeMap<Vec<u8>, usize>> {
    let mut out: BTreeMap<i64, BTreeMap<Vec<u8>, usize>> = BTreeMap::new();
    for close in events.closes_of(HTTP) {
        if let WindowOutcome::Complete { records, .. } = &close.outcome {
            let lines = events.attempt_lines(close.attempt);
            assert_eq!(lines.len() as u64, *records);
            for line in lines {
                *out.entry(close.window.start)
                    .or_default()
                    .entry(line)
                    .or_default() += 1;
            }
        }
    }
    out
}

fn main_closes(events: &ZoneEvents) -> Vec<(Window, &'static str)> {
    events
        .closes_of(HTTP)
        .into_iter()
        .filter(|c| !c.late)
        .map(|c| (c.window, outcome_name(&c.outcome)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_records_are_filed_by_their_time_late_ones_added_and_a_crash_loses_none() {
    let h = Harness::start().await;
    let mut settings = h.settings.clone();
    settings.logpush_lateness = Duration::from_secs(120);
    // Small batches, so an open window has published batches when the collector is killed.
    settings.batch_bytes = 300;
    settings.push_url = Some(accept_everything().await);
    let collector = h.start_collector_with(settings.clone());
    h.add_zone(ZONE, Method::LogpushHttp, "default", FULL_TOKEN)
        .await;
    h.wait_for_health(ZONE, "collecting with Logpush", |health| {
        health.method == Some(Method::LogpushHttp) && health.status == "ok"
    })
    .await;

    // Out of order, across two windows, with a record repeated inside another part.
    let a: Vec<Vec<u8>> = vec![record(t(70), 1), record(t(10), 2), record(t(11), 3)];
    let b: Vec<Vec<u8>> = vec![record(t(12), 4), record(t(10), 2), record(t(71), 5)];
    push(&h, &a).await;
    push(&h, &b).await;
    // The exact same part again (a retried push is deduplicated by JetStream; this one was not).
    push(&h, &a).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The log starts one window before the job: [t0-60, t0) closes empty at t0+120. Nothing
    // closes before its watermark: [t0, t0+60) needs now ≥ t0+60+120.
    let before = Window {
        start: t(-60),
        end: t(0),
    };
    h.sim.advance(Duration::from_secs(179));
    h.wait_for(ZONE, "the window before the job", |e| {
        !main_closes(e).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        main_closes(&h.zone_events(ZONE).await),
        vec![(before, "empty")]
    );
    h.sim.advance(Duration::from_secs(1));
    let events = h
        .wait_for(ZONE, "the first window", |e| main_closes(e).len() >= 2)
        .await;
    let first = Window {
        start: t(0),
        end: t(60),
    };
    assert_eq!(
        main_closes(&events),
        vec![(before, "empty"), (first, "complete")]
    );
    assert!(
        events.closes.iter().all(|c| c.pushed_through.is_some()),
        "pushed closes say how far they read"
    );

    // A late record for the closed window and one for the open next-but-one window; then the
    // collector dies before either is closed.
    let busy: Vec<Vec<u8>> = (0..4).map(|n| record(t(73), 10 + n)).collect();
    push(&h, &busy).await;
    push(&h, &[record(t(20), 6), record(t(130), 7)]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    collector.kill().await;
    push(&h, &[record(t(72), 8), record(t(21), 9)]).await;

    // The successor reads again from the resume point.
    let successor = h.start_collector_with(settings.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    h.sim.advance(Duration::from_secs(60));
    h.wait_for(ZONE, "the second window and the late close", |e| {
        main_closes(e).len() >= 3 && e.closes.iter().any(|c| c.late)
    })
    .await;
    h.sim.advance(Duration::from_secs(60));
    let events = h
        .wait_for(ZONE, "the third window", |e| main_closes(e).len() >= 4)
        .await;
    successor.stop().await;

    let windows: Vec<Window> = main_closes(&events).iter().map(|(w, _)| *w).collect();
    assert_eq!(
        windows,
        vec![
            before,
            first,
            Window {
                start: t(60),
                end: t(120)
            },
            Window {
                start: t(120),
                end: t(180)
            }
        ],
        "one close per window, in order"
    );
    let late: Vec<_> = events.closes.iter().filter(|c| c.late).collect();
    assert!(
        late.iter().all(|c| c.window == first),
        "late closes name the window their records belong to: {late:?}"
    );
    let expect: BTreeMap<i64, BTreeSet<Vec<u8>>> = [
        (
            t(0),
            vec![
                record(t(10), 2),
                record(t(11), 3),
                record(t(12), 4),
                record(t(20), 6),
                record(t(21), 9),
            ],
        ),
        (
            t(60),
            [record(t(70), 1), record(t(71), 5), record(t(72), 8)]
                .into_iter()
                .chain((0..4).map(|n| record(t(73), 10 + n)))
                .collect(),
        ),
        (t(120), vec![record(t(130), 7)]),
    ]
    .into_iter()
    .map(|(start, lines)| (start, lines.into_iter().collect()))
    .collect();
    let stored = stored(&events);
    for (start, lines) in &expect {
        let got = stored.get(start).cloned().unwrap_or_default();
        assert_eq!(
            got.keys().cloned().collect::<BTreeSet<_>>(),
            *lines,
            "records of the window at {start}"
        );
        let repeated: Vec<String> = got
            .iter()
            .filter(|(_, n)| **n != 1)
            .map(|(line, n)| format!("{n}× {}", String::from_utf8_lossy(line)))
            .collect();
        assert!(
            repeated.is_empty(),
            "each record stored once in window {start}: {repeated:?}"
        );
    }
    assert!(
        !events.abandoned_attempts().is_empty(),
        "the killed collector left an attempt open, whose records were filed again"
    );
}

/// The zone's Logpush jobs at the simulator, as `(name, enabled, destination_conf, output)`.
async fn jobs(h: &Harness, zone: &str) -> Vec<serde_json::Value> {
    let answer: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/zones/{zone}/logpush/jobs", h.sim.base_url()))
        .bearer_auth(FULL_TOKEN)
        .send()
        .await
        .expect("list jobs")
        .json()
        .await
        .expect("json");
    answer["result"].as_array().cloned().unwrap_or_default()
}

/// The zone's two jobs: `http_requests` writing to `conf`, `firewall_events` one directory below.
fn writes_to(jobs: &[serde_json::Value], conf: &str) -> bool {
    let (base, query) = conf.split_once('?').unwrap_or((conf, ""));
    let firewall = format!(
        "{}/firewall_events/{{DATE}}?{query}",
        base.trim_end_matches("/{DATE}")
    );
    let writes = |dataset: &str, conf: &str| {
        jobs.iter()
            .any(|job| job["dataset"] == dataset && job["destination_conf"] == conf)
    };
    jobs.len() == 2 && writes(HTTP, conf) && writes("firewall_events", &firewall)
}

async fn wait_for_jobs(h: &Harness, what: &str, check: impl Fn(&[serde_json::Value]) -> bool) {
    wait_for_jobs_of(h, ZONE, what, check).await;
}

async fn wait_for_jobs_of(
    h: &Harness,
    zone: &str,
    what: &str,
    check: impl Fn(&[serde_json::Value]) -> bool,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let jobs = jobs(h, zone).await;
        if check(&jobs) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: {jobs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zone_gets_a_job_per_dataset_that_a_pause_disables_and_removal_deletes() {
    let h = Harness::start().await;
    let mut settings = h.settings.clone();
    let push_url = accept_everything().await;
    settings.push_url = Some(format!("{push_url}/"));
    let collector = h.start_collector_with(settings.clone());
    h.add_zone(ZONE, Method::LogpushHttp, "default", FULL_TOKEN)
        .await;
    wait_for_jobs(&h, "the zone's jobs", |jobs| jobs.len() == 2).await;
    let mut secrets = Vec::new();
    for (dataset, fields) in [
        ("http_requests", None),
        (
            "firewall_events",
            Some(rainlogs_cloudflare::LOGPUSH_FIREWALL_FIELDS),
        ),
    ] {
        let all = jobs(&h, ZONE).await;
        let job = all
            .iter()
            .find(|job| job["dataset"] == dataset)
            .unwrap_or_else(|| panic!("a job for {dataset}: {all:#?}"));
        assert_eq!(job["name"], "rainlogs");
        assert_eq!(job["enabled"], true);
        assert_eq!(job["output_options"]["timestamp_format"], "unixnano");
        if let Some(fields) = fields {
            assert_eq!(
                job["output_options"]["field_names"],
                serde_json::json!(fields)
            );
        }
        let destination = job["destination_conf"].as_str().expect("destination");
        let prefix =
            format!("{push_url}/logpush/v1/{ZONE}/{dataset}?header_Authorization=Bearer%20");
        let secret = destination
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{destination} pushes to the ingest endpoint"));
        assert_eq!(secret.len(), 64, "32 random bytes");
        secrets.push((
            Some(dataset.to_owned()),
            Sha256::digest(secret.as_bytes()).to_vec(),
        ));
    }
    assert_ne!(secrets[0].1, secrets[1].1, "each job has its own secret");
    // The ingest endpoint learns each secret's digest, never the secret.
    let mut announced: Vec<(Option<String>, Vec<u8>)> = h
        .read_subject(&subjects::control(TENANT), "RL_CONTROL")
        .await
        .into_iter()
        .filter_map(|e| match e.event {
            Event::PushEndpointSet(set) if set.zone_id == ZONE => {
                Some((set.dataset, set.secret_sha256))
            }
            _ => None,
        })
        .collect();
    announced.sort();
    secrets.sort();
    assert_eq!(announced, secrets);

    // A restarted collector keeps the jobs it finds.
    collector.stop().await;
    let collector = h.start_collector_with(settings.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(jobs(&h, ZONE).await.len(), 2, "no second job per dataset");

    h.change_zone(rainlogs_schemas::events::ZoneChanged {
        zone_id: ZONE.into(),
        paused: Some(true),
        ..Default::default()
    })
    .await;
    wait_for_jobs(&h, "the paused zone's jobs off", |jobs| {
        jobs.len() == 2 && jobs.iter().all(|job| job["enabled"] == false)
    })
    .await;
    h.change_zone(rainlogs_schemas::events::ZoneChanged {
        zone_id: ZONE.into(),
        paused: Some(false),
        ..Default::default()
    })
    .await;
    wait_for_jobs(&h, "the resumed zone's jobs on", |jobs| {
        jobs.len() == 2 && jobs.iter().all(|job| job["enabled"] == true)
    })
    .await;

    // Collected another way from now on: the job goes.
    h.change_zone(rainlogs_schemas::events::ZoneChanged {
        zone_id: ZONE.into(),
        method: Some(Method::Graphql),
        ..Default::default()
    })
    .await;
    wait_for_jobs(
        &h,
        "the job of a zone switched to GraphQL deleted",
        <[_]>::is_empty,
    )
    .await;
    h.change_zone(rainlogs_schemas::events::ZoneChanged {
        zone_id: ZONE.into(),
        method: Some(Method::LogpushHttp),
        ..Default::default()
    })
    .await;
    wait_for_jobs(&h, "new jobs once it is Logpush again", |jobs| {
        jobs.len() == 2
    })
    .await;

    let removed = Envelope::new(
        TENANT,
        Some(ZONE.to_owned()),
        Actor::operator(),
        Event::ZoneRemoved(rainlogs_schemas::events::ZoneRemoved {
            zone_id: ZONE.into(),
        }),
    );
    h.bus
        .publish(&subjects::control(TENANT), &removed)
        .await
        .expect("remove zone");
    wait_for_jobs(&h, "the removed zone's jobs deleted", <[_]>::is_empty).await;
    collector.stop().await;
}

/// A zone collected another way for a while, then by Logpush again: its requests' log shows
/// the time in between as a gap, not as windows its job pushed nothing for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_a_zone_was_collected_another_way_is_a_gap_when_it_is_pushed_again() {
    let h = Harness::start().await;
    let mut settings = h.settings.clone();
    settings.logpush_lateness = Duration::from_secs(120);
    settings.push_url = Some(accept_everything().await);
    let collector = h.start_collector_with(settings);
    let play = async |seconds: u64| {
        for _ in 0..seconds / 30 {
            h.sim.advance(Duration::from_secs(30));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let switch_to = async |method: Method| {
        h.change_zone(rainlogs_schemas::events::ZoneChanged {
            zone_id: ZONE.into(),
            method: Some(method),
            ..Default::default()
        })
        .await;
    };
    h.add_zone(ZONE, Method::LogpushHttp, "default", FULL_TOKEN)
        .await;
    wait_for_jobs(&h, "the zone's jobs", |jobs| jobs.len() == 2).await;
    play(240).await;
    h.wait_for(ZONE, "a pushed window closed", |e| {
        !main_closes(e).is_empty()
    })
    .await;

    let switched_at = h.sim.now().unix_timestamp();
    switch_to(Method::Graphql).await;
    wait_for_jobs(&h, "the jobs deleted", <[_]>::is_empty).await;
    play(600).await;
    let back_at = h.sim.now().unix_timestamp();
    switch_to(Method::LogpushHttp).await;
    wait_for_jobs(&h, "the zone's jobs again", |jobs| jobs.len() == 2).await;
    play(300).await;
    let events = h
        .wait_for(ZONE, "pushed windows after the switch back", |e| {
            main_closes(e).iter().any(|(w, _)| w.start >= back_at)
        })
        .await;
    let closes = main_closes(&events);
    let pushed_nothing: Vec<_> = closes
        .iter()
        .filter(|(w, outcome)| {
            *outcome != "gap" && w.end > switched_at + 60 && w.start < back_at - 60
        })
        .collect();
    assert!(
        pushed_nothing.is_empty(),
        "windows of the time collected another way: {pushed_nothing:?} (all: {closes:?})"
    );
    assert!(
        closes.iter().any(|(w, outcome)| *outcome == "gap"
            && w.start <= switched_at + 60
            && w.end >= back_at - 60),
        "a gap covers the time collected another way: {closes:?}"
    );
    collector.stop().await;
}

/// The zone with `count` Logpush jobs of the customer's, then added as `logpush_http` to a
/// running collector.
async fn logpush_zone_with_jobs_of_its_own(h: &Harness, count: usize) -> Process {
    let push_url = accept_everything().await;
    for n in 0..count {
        let created = reqwest::Client::new()
            .post(format!("{}/zones/{ZONE}/logpush/jobs", h.sim.base_url()))
            .bearer_auth(FULL_TOKEN)
            .json(&serde_json::json!({
                "name": format!("siem-{n}"),
                "dataset": "http_requests",
                "destination_conf": format!("{push_url}/siem/{n}"),
            }))
            .send()
            .await
            .expect("create");
        assert_eq!(created.status(), 200);
    }
    let mut settings = h.settings.clone();
    settings.push_url = Some(push_url);
    let collector = h.start_collector_with(settings);
    h.add_zone(ZONE, Method::LogpushHttp, "default", FULL_TOKEN)
        .await;
    collector
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_with_four_jobs_of_its_own_is_told_why_rainlogs_cannot_add_one() {
    let h = Harness::start().await;
    let collector = logpush_zone_with_jobs_of_its_own(&h, 4).await;
    let health = h
        .wait_for_health(ZONE, "the job limit explained", |health| {
            health.status == "failing" && health.reason.contains("at most 4 Logpush jobs")
        })
        .await;
    assert!(health.reason.contains("siem-0"), "{}", health.reason);
    assert_eq!(
        jobs(&h, ZONE).await.len(),
        4,
        "the customer's jobs untouched"
    );
    collector.stop().await;
}

/// With three jobs of the customer's, the zone's requests take the fourth and its security
/// events cannot have one: the requests are collected, and the zone's health says what is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_with_room_for_one_job_collects_its_requests_and_says_what_it_cannot() {
    let h = Harness::start().await;
    let collector = logpush_zone_with_jobs_of_its_own(&h, 3).await;
    let health = h
        .wait_for_health(ZONE, "the missing dataset explained", |health| {
            health.reason.contains("firewall_events is not collected")
        })
        .await;
    assert_eq!(health.status, "degraded", "{}", health.reason);
    assert!(
        health.reason.contains("at most 4 Logpush jobs"),
        "{}",
        health.reason
    );
    let ours: Vec<_> = jobs(&h, ZONE)
        .await
        .into_iter()
        .filter(|job| job["name"] == "rainlogs")
        .collect();
    assert_eq!(ours.len(), 1, "{ours:#?}");
    assert_eq!(ours[0]["dataset"], "http_requests");
    collector.stop().await;
}

/// After an outage the parts stored meanwhile are read before windows close: every record
/// lands in its window's own close, none is late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_after_an_outage_fills_its_windows_before_they_close() {
    let h = Harness::start().await;
    let mut settings = h.settings.clone();
    settings.logpush_lateness = Duration::from_secs(120);
    settings.push_url = Some(accept_everything().await);
    let collector = h.start_collector_with(settings.clone());
    h.add_zone(ZONE, Method::LogpushHttp, "default", FULL_TOKEN)
        .await;
    h.wait_for_health(ZONE, "collecting with Logpush", |health| {
        health.method == Some(Method::LogpushHttp) && health.status == "ok"
    })
    .await;
    collector.stop().await;

    // Five windows of records pushed while no collector ran, one part per 10 seconds.
    let mut pushed = BTreeSet::new();
    for part in 0..30_i64 {
        let lines: Vec<Vec<u8>> = (0..20)
            .map(|n| record(t(part * 10 + n / 4), u32::try_from(part * 20 + n).unwrap()))
            .collect();
        pushed.extend(lines.iter().cloned());
        push(&h, &lines).await;
    }
    h.sim.advance(Duration::from_secs(3600));
    let collector = h.start_collector_with(settings);
    let events = h
        .wait_for(ZONE, "the backlog's windows", |e| {
            main_closes(e).iter().any(|(w, _)| w.start >= t(300))
        })
        .await;
    collector.stop().await;
    assert!(
        events.closes.iter().all(|c| !c.late),
        "nothing is late after an outage: {:?}",
        events
            .closes
            .iter()
            .filter(|c| c.late)
            .map(|c| c.window)
            .collect::<Vec<_>>()
    );
    let stored: BTreeSet<Vec<u8>> = stored(&events)
        .into_values()
        .flat_map(BTreeMap::into_keys)
        .collect();
    assert_eq!(
        (
            stored.len(),
            pushed.len() - stored.intersection(&pushed).count()
        ),
        (pushed.len(), 0),
        "every record of the backlog in its window"
    );
}

/// An S3-compatible Logpush destination in `bucket` on the dev SeaweedFS, under `cf/{DATE}`,
/// written with the dev writer's keys.
fn bucket_destination(bucket: &str) -> String {
    use rainlogs_testkit::s3::{dev_s3_host, logpush_destination};
    logpush_destination(bucket, "cf", &dev_s3_host())
}

/// What the API publishes for a `logpush_s3` zone: its bucket and RainLogs' read keys, sealed.
async fn set_push_source(h: &Harness, conf: &str, read_key_id: &str, read_secret: &str) {
    set_push_source_of(h, ZONE, conf, read_key_id, read_secret).await;
}

async fn set_push_source_of(
    h: &Harness,
    zone: &str,
    conf: &str,
    read_key_id: &str,
    read_secret: &str,
) {
    let source = serde_json::json!({
        "destination_conf": conf,
        "read_access_key_id": read_key_id,
        "read_secret_access_key": read_secret,
    })
    .to_string();
    let set = Envelope::new(
        TENANT,
        Some(zone.to_owned()),
        Actor::operator(),
        Event::PushSourceSet(rainlogs_schemas::events::PushSourceSet {
            zone_id: zone.into(),
            sealed_source: key().seal(TENANT, zone, &source),
            key_id: key().id().to_owned(),
        }),
    );
    h.bus
        .publish(&subjects::control(TENANT), &set)
        .await
        .expect("push source");
}

/// Logpush to the customer's bucket: what Cloudflare wrote there (a duplicate object included,
/// a dropped batch not) is stored in `RL_PUSH` once, read with read-only keys, and a second poll
/// or a restarted feed stores nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_feed_stores_each_object_cloudflare_wrote_once() {
    use cf_sim::{DeliveryStatus, EndpointKind, Fault, FaultKind};
    use rainlogs_collector::bucket_feed::{BucketFeed, Polled};
    use rainlogs_testkit::s3::{dev_bucket, dev_s3_auditor, dev_s3_config};

    let h = Harness::start().await;
    let zone = ENTERPRISE_ZONE;
    let writer = dev_bucket("logpush-feed", false).await;
    let bucket = writer.config().bucket.clone();
    let fields = ["ClientIP", "EdgeStartTimestamp", "RayID"];
    let created = reqwest::Client::new()
        .post(format!("{}/zones/{zone}/logpush/jobs", h.sim.base_url()))
        .bearer_auth(FULL_TOKEN)
        .json(&serde_json::json!({
            "name": "rainlogs",
            "dataset": "http_requests",
            "enabled": true,
            "destination_conf": bucket_destination(&bucket),
            "output_options": { "field_names": fields, "timestamp_format": "unixnano" },
        }))
        .send()
        .await
        .expect("create job");
    assert_eq!(
        created.status(),
        200,
        "{}",
        created.text().await.unwrap_or_default()
    );

    // Four batches: the second sent twice (two objects), the third dropped.
    for (n, fault) in [
        None,
        Some(FaultKind::Duplicate { after_secs: 0 }),
        Some(FaultKind::DropBatch),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        if let Some(kind) = fault {
            h.sim
                .inject(Fault::on_zone(zone, EndpointKind::LogpushPush, 1, kind));
        }
        h.sim.advance(Duration::from_secs(30));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !(h.sim.logpush_deliveries(zone).len() > n
            && h.sim
                .logpush_deliveries(zone)
                .iter()
                .all(|d| d.status != DeliveryStatus::Pending))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "batch {n} not settled"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let deliveries = h.sim.logpush_deliveries(zone);
    assert_eq!(
        deliveries.iter().filter(|d| d.duplicates_sent > 0).count(),
        1
    );

    let reader = rainlogs_store::S3Store::new(dev_s3_config(&bucket, dev_s3_auditor()))
        .expect("read-only client");
    let cursors = rainlogs_collector::journal::cursor_store(&h.bus)
        .await
        .expect("cursors");
    let target = rainlogs_push::PushTarget {
        bus: &h.bus,
        tenant: TENANT,
        zone,
        dataset: rainlogs_cloudflare::LogpushDataset::HttpRequests,
        actor: "collector",
    };
    let now = h.sim.now().unix_timestamp();
    let mut feed = BucketFeed::new(reader.clone(), "cf", cursors.clone(), zone, HTTP);
    let polled = feed.poll(&target, now).await.expect("poll");
    assert_eq!(
        polled.objects, 4,
        "three delivered batches and one duplicate"
    );

    let mut stored: Vec<Vec<u8>> = h
        .read_subject(&subjects::push(zone), "RL_PUSH")
        .await
        .into_iter()
        .flat_map(|e| match e.event {
            Event::PushReceived(part) => part
                .content()
                .expect("content")
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>(),
            other => panic!("{} on the push subject", other.type_name()),
        })
        .collect();
    let total = stored.len();
    stored.sort();
    stored.dedup();
    assert_eq!(total, stored.len(), "the duplicate object is stored once");
    assert!(!h.sim.logpush_dropped_lines(zone, None).is_empty());
    let expected: Vec<Vec<u8>> = h
        .sim
        .logpush_delivered_lines(zone, None)
        .into_iter()
        .map(|l| l.trim_end().as_bytes().to_vec())
        .collect();
    assert_eq!(stored.len(), expected.len());
    assert!(
        stored == expected,
        "stored = what Cloudflare wrote, minus what it dropped"
    );

    assert_eq!(
        feed.poll(&target, now).await.expect("poll"),
        Polled::default()
    );
    let mut restarted = BucketFeed::new(reader, "cf", cursors, zone, HTTP);
    assert_eq!(
        restarted.poll(&target, now).await.expect("poll"),
        Polled::default(),
        "the keys stored are remembered"
    );
}

/// `logpush_s3`: the collector makes the zone's job writing into the customer's bucket, reads
/// the objects back with read-only keys, and files their records into windows like pushes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logpush_to_a_bucket_is_filed_into_windows_like_pushes() {
    use rainlogs_testkit::s3::{dev_bucket, dev_s3_auditor};

    let h = Harness::start().await;
    let mut settings = h.settings.clone();
    settings.logpush_lateness = Duration::from_secs(120);
    let writer = dev_bucket("logpush-s3", false).await;
    let bucket = writer.config().bucket.clone();
    let reader = dev_s3_auditor();
    let conf = bucket_destination(&bucket);
    let fields = "ClientIP,EdgeStartTimestamp,RayID";
    let collector = h.start_collector_with(settings);
    h.add_zone(ZONE, Method::LogpushS3, fields, FULL_TOKEN)
        .await;
    set_push_source(&h, &conf, &reader.access_key_id, &reader.secret_access_key).await;
    wait_for_jobs(&h, "the zone's job writing to the bucket", |jobs| {
        writes_to(jobs, &conf)
    })
    .await;

    // Four minutes of batches written to the bucket, then past the lateness of the last window.
    for _ in 0..8 {
        h.sim.advance(Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let deliveries = h.sim.logpush_deliveries(ZONE);
    let last = deliveries
        .iter()
        .map(|d| d.last_second)
        .max()
        .expect("batches");
    assert!(
        deliveries
            .iter()
            .all(|d| d.status == cf_sim::DeliveryStatus::Delivered)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    for _ in 0..6 {
        h.sim.advance(Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let events = h
        .wait_for(ZONE, "the windows of the pushed seconds", |e| {
            main_closes(e).iter().any(|(w, _)| w.end > last)
        })
        .await;
    collector.stop().await;

    let first = deliveries
        .iter()
        .map(|d| d.first_second)
        .min()
        .expect("batches");
    // Every record of the closed windows (the job kept writing meanwhile, into later ones).
    let closed_until = events.closed_until(HTTP).expect("closes");
    assert!(
        closed_until > last,
        "the windows of the first four minutes closed"
    );
    let stored: BTreeSet<Vec<u8>> = stored(&events)
        .into_values()
        .flat_map(BTreeMap::into_keys)
        .collect();
    // Windows hold records by their own time, which can be before the second Cloudflare
    // received them: the truth of every received second, kept where the record dates itself
    // inside a closed window.
    let dated_before = |line: &Vec<u8>, end: i64| {
        let record: serde_json::Value = serde_json::from_slice(line).expect("record");
        let ns = record["EdgeStartTimestamp"].as_i64().expect("time");
        ns.div_euclid(1_000_000_000) < end
    };
    let truth: BTreeSet<Vec<u8>> = h
        .truth(
            ZONE,
            Window {
                start: first,
                end: h.sim.now().unix_timestamp(),
            },
            fields,
        )
        .into_iter()
        .filter(|line| dated_before(line, closed_until))
        .collect();
    assert!(truth.len() > 100, "the zone had traffic");
    assert_eq!(
        (stored.len(), truth.difference(&stored).count()),
        (truth.len(), 0),
        "every record Cloudflare wrote to the bucket is in its window"
    );
    // The simulated clock runs far ahead of the bucket polls here, so some records arrive after
    // their window closed: they are in late closes, counted above with the rest.
}

/// A bucket RainLogs cannot read (wrong read keys) is said in the zone's health.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_cannot_be_read_is_said_in_zone_health() {
    use rainlogs_testkit::s3::{dev_bucket, dev_s3_writer};

    let h = Harness::start().await;
    let writer = dev_bucket("logpush-s3-denied", false).await;
    let bucket = writer.config().bucket.clone();
    let keys = dev_s3_writer();
    let conf = bucket_destination(&bucket);
    let collector = h.start_collector();
    h.add_zone(ZONE, Method::LogpushS3, "default", FULL_TOKEN)
        .await;
    set_push_source(&h, &conf, &keys.access_key_id, "not-the-secret").await;
    let health = h
        .wait_for_health(ZONE, "the unreadable bucket", |health| {
            health.status == "degraded" && health.reason.contains("Logpush bucket")
        })
        .await;
    assert!(
        !health.reason.contains("not-the-secret"),
        "{}",
        health.reason
    );
    collector.stop().await;
}

/// Amazon S3 written with Cloudflare's own identity: the job needs the ownership challenge. The
/// collector asks Cloudflare to write the token into the bucket, reads it back with the read
/// keys, creates the job with it, and reads the objects that follow. With read keys that cannot
/// read the bucket, the zone says why no job was made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amazon_s3_bucket_passes_the_ownership_challenge_with_the_read_keys() {
    use rainlogs_testkit::s3::{dev_bucket, dev_s3_auditor, dev_s3_endpoint, dev_s3_writer};

    // The dev SeaweedFS stands in for Amazon S3, on both sides: Cloudflare writes there as
    // itself (the writer's keys), RainLogs reaches "Amazon S3" there.
    let mut scenario = scenario();
    let cloudflare = dev_s3_writer();
    scenario.logpush.aws_endpoint = Some(dev_s3_endpoint());
    scenario.logpush.aws_access_key_id = Some(cloudflare.access_key_id.clone());
    scenario.logpush.aws_secret_access_key = Some(cloudflare.secret_access_key.clone());
    let h = Harness::start_with(scenario).await;
    let mut settings = h.settings.clone();
    settings.bucket_access.amazon_s3_endpoint = Some(dev_s3_endpoint());
    let customer = dev_bucket("logpush-aws", false).await;
    let conf = format!(
        "s3://{}/cf/{{DATE}}?region=eu-central-1",
        customer.config().bucket
    );
    let reader = dev_s3_auditor();

    // Read keys that cannot read: Cloudflare wrote the challenge, RainLogs cannot show it.
    let collector = h.start_collector_with(settings.clone());
    h.add_zone(ZONE, Method::LogpushS3, "default", FULL_TOKEN)
        .await;
    set_push_source(&h, &conf, &reader.access_key_id, "not-the-secret").await;
    let health = h
        .wait_for_health(ZONE, "the failed ownership challenge", |health| {
            health.reason.contains("ownership challenge")
        })
        .await;
    assert!(
        health.reason.contains("cannot read it"),
        "{}",
        health.reason
    );
    assert!(jobs(&h, ZONE).await.is_empty(), "no job without the token");

    // The right read keys: the challenge passes and the job writes into the bucket.
    set_push_source(&h, &conf, &reader.access_key_id, &reader.secret_access_key).await;
    wait_for_jobs(&h, "the zone's job writing to Amazon S3", |jobs| {
        writes_to(jobs, &conf)
    })
    .await;
    for _ in 0..4 {
        h.sim.advance(Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    rainlogs_testkit::wait_for(
        "objects read from the bucket",
        Duration::from_secs(20),
        async || {
            h.bus
                .js
                .get_stream("RL_PUSH")
                .await
                .expect("stream")
                .info()
                .await
                .expect("info")
                .state
                .messages
                > 0
        },
    )
    .await;
    collector.stop().await;
}

/// The cross-check with Cloudflare's own counts: a batch Cloudflare gave up on leaves its
/// windows short of what its analytics counted, and the zone's health names the windows with
/// their figures and the records Cloudflare reports lost, once the checks ran; windows that
/// received everything are not named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_short_of_cloudflares_count_are_named_in_zone_health() {
    use cf_sim::{EndpointKind, Fault, FaultKind};
    use rainlogs_testkit::s3::{dev_bucket, dev_s3_auditor};

    let h = Harness::start().await;
    let mut settings = h.settings.clone();
    settings.logpush_lateness = Duration::from_secs(120);
    let writer = dev_bucket("logpush-short", false).await;
    let conf = bucket_destination(&writer.config().bucket);
    let reader = dev_s3_auditor();
    let collector = h.start_collector_with(settings);
    h.add_zone(
        ZONE,
        Method::LogpushS3,
        "ClientIP,EdgeStartTimestamp,RayID",
        FULL_TOKEN,
    )
    .await;
    set_push_source(&h, &conf, &reader.access_key_id, &reader.secret_access_key).await;
    wait_for_jobs(&h, "the zone's jobs", |jobs| jobs.len() == 2).await;
    // The fourth batch is lost for good.
    for kind in [
        FaultKind::Duplicate { after_secs: 0 },
        FaultKind::Duplicate { after_secs: 0 },
        FaultKind::Duplicate { after_secs: 0 },
        FaultKind::DropBatch,
    ] {
        h.sim
            .inject(Fault::on_zone(ZONE, EndpointKind::LogpushPush, 1, kind).for_dataset(HTTP));
    }
    for _ in 0..40 {
        h.sim.advance(Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let dropped = h.sim.logpush_dropped_lines(ZONE, None).len();
    assert!(dropped > 0, "a batch was dropped");
    let health = h
        .wait_for_health(ZONE, "the shortfall in the zone's health", |health| {
            health
                .reason
                .contains("hold fewer records than Cloudflare counted")
        })
        .await;
    assert_eq!(health.status, "degraded");
    // The EU-only account has no Logpull to repair the windows from, and the health says so.
    assert!(
        health.reason.contains(
            "short windows cannot be repaired: Logpull is unavailable: the account's Customer \
             Metadata Boundary is EU-only"
        ),
        "{}",
        health.reason
    );
    assert!(
        health
            .reason
            .contains(&format!("Cloudflare reports {dropped} records")),
        "{}",
        health.reason
    );
    // The windows named are those of the dropped batch's records, each short beyond the
    // tolerance.
    let lost_minutes: BTreeSet<String> = h
        .sim
        .logpush_dropped_lines(ZONE, None)
        .iter()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).expect("record");
            let ns = record["EdgeStartTimestamp"].as_i64().expect("time");
            time::OffsetDateTime::from_unix_timestamp(ns.div_euclid(60_000_000_000) * 60)
                .expect("time")
                .format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]Z"
                ))
                .expect("format")
        })
        .collect();
    let named: Vec<(String, u64, u64)> = health
        .reason
        .split([',', ';'])
        .filter_map(|part| {
            let part = part.trim().rsplit(": ").next()?;
            let (minute, rest) = part.split_once(" holds ")?;
            let (held, rest) = rest.split_once(" of ")?;
            let expected = rest.split(' ').next()?;
            Some((
                minute.to_owned(),
                held.parse().ok()?,
                expected.parse().ok()?,
            ))
        })
        .collect();
    assert!(!named.is_empty(), "{}", health.reason);
    for (minute, held, expected) in &named {
        assert!(
            lost_minutes.contains(minute),
            "{minute} lost nothing: {}",
            health.reason
        );
        assert!(
            *expected > held + rainlogs_collector::completeness::tolerance(*expected),
            "{}",
            health.reason
        );
    }
    // Each window named is published for the chain, once, with the same figures.
    let shorts: Vec<(uuid::Uuid, rainlogs_schemas::events::WindowShort)> = h
        .read_subject(&subjects::archive(ZONE), "RL_ARCHIVE")
        .await
        .into_iter()
        .filter_map(|envelope| match envelope.event {
            Event::WindowShort(short) => Some((envelope.id, short)),
            _ => None,
        })
        .collect();
    let published: BTreeSet<(String, u64, u64)> = shorts
        .iter()
        .map(|(_, short)| {
            (
                at(short.window.start)
                    .format(time::macros::format_description!(
                        "[year]-[month]-[day] [hour]:[minute]Z"
                    ))
                    .expect("format"),
                short.archived_records,
                short.source_records,
            )
        })
        .collect();
    assert_eq!(
        published.len(),
        shorts.len(),
        "each window once: {shorts:?}"
    );
    for named in &named {
        assert!(published.contains(named), "{named:?} not in {published:?}");
    }
    for (id, short) in &shorts {
        assert_eq!(
            (
                short.dataset.as_str(),
                short.method,
                short.window.end - short.window.start
            ),
            ("http_requests", Method::LogpushS3, 60)
        );
        assert_eq!(
            *id,
            rainlogs_collector::ids::short_id(ZONE, "http_requests", short.window)
        );
    }
    collector.stop().await;
}

/// An Enterprise zone's short window is repaired from Logpull: the records Cloudflare's Logpush
/// gave up on are pulled, matched by Ray ID, and archived as a late close collected by Logpull,
/// so the window's closes hold each request of the truth once; the zone's health says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_window_of_an_enterprise_zone_is_repaired_from_logpull() {
    use cf_sim::{EndpointKind, Fault, FaultKind};
    use rainlogs_collector::repair::ray_id;
    use rainlogs_testkit::s3::{dev_bucket, dev_s3_auditor};

    const FIELDS: &str = "ClientIP,EdgeStartTimestamp,RayID";
    // Logpull retention is off: onboarding switches it on so short windows can be repaired.
    let mut scenario = scenario();
    for zone in &mut scenario.zones {
        if zone.id == ENTERPRISE_ZONE {
            zone.retention = false;
        }
    }
    let h = Harness::start_with(scenario).await;
    let mut settings = h.settings.clone();
    settings.logpush_lateness = Duration::from_secs(120);
    let writer = dev_bucket("logpush-repair", false).await;
    let conf = bucket_destination(&writer.config().bucket);
    let reader = dev_s3_auditor();
    let collector = h.start_collector_with(settings);
    h.add_zone(ENTERPRISE_ZONE, Method::LogpushS3, FIELDS, FULL_TOKEN)
        .await;
    set_push_source_of(
        &h,
        ENTERPRISE_ZONE,
        &conf,
        &reader.access_key_id,
        &reader.secret_access_key,
    )
    .await;
    wait_for_jobs_of(&h, ENTERPRISE_ZONE, "the zone's jobs", |jobs| {
        jobs.len() == 2
    })
    .await;
    h.wait_for_health(ENTERPRISE_ZONE, "retention switched on", |health| {
        health
            .reason
            .contains("switched Logpull log retention on, so short windows can be repaired")
    })
    .await;
    // The third batch is lost for good.
    for kind in [
        FaultKind::Duplicate { after_secs: 0 },
        FaultKind::Duplicate { after_secs: 0 },
        FaultKind::DropBatch,
    ] {
        h.sim.inject(
            Fault::on_zone(ENTERPRISE_ZONE, EndpointKind::LogpushPush, 1, kind).for_dataset(HTTP),
        );
    }
    for _ in 0..40 {
        h.sim.advance(Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let dropped = h.sim.logpush_dropped_lines(ENTERPRISE_ZONE, None);
    assert!(!dropped.is_empty(), "a batch was dropped");
    let health = h
        .wait_for_health(
            ENTERPRISE_ZONE,
            "the repair in the zone's health",
            |health| health.reason.contains("recovered from Logpull"),
        )
        .await;
    assert!(
        health
            .reason
            .contains("hold fewer records than Cloudflare counted"),
        "{}",
        health.reason
    );

    // The repaired windows: those with a late close collected by Logpull.
    let events = h.zone_events(ENTERPRISE_ZONE).await;
    let closes = events.closes_of("http_requests");
    let repaired: Vec<Window> = closes
        .iter()
        .filter(|c| {
            c.late
                && matches!(
                    c.outcome,
                    WindowOutcome::Complete {
                        method: Method::Logpull,
                        ..
                    }
                )
        })
        .map(|c| c.window)
        .collect();
    assert!(!repaired.is_empty(), "no window was repaired: {closes:#?}");
    for window in &repaired {
        // Every request of the window, once: what Logpush delivered, what came late, and
        // what Logpull gave back.
        let mut held: Vec<u64> = closes
            .iter()
            .filter(|c| c.window.start == window.start)
            .flat_map(|c| events.attempt_lines(c.attempt))
            .map(|line| ray_id(&line).expect("ray id"))
            .collect();
        held.sort_unstable();
        // The truth is selected by receive time; the window holds the requests that started in it.
        let around = Window {
            start: window.start - 120,
            end: window.end + 120,
        };
        let started_in = |line: &Vec<u8>| {
            let record: serde_json::Value = serde_json::from_slice(line).expect("record");
            let ns = record["EdgeStartTimestamp"].as_i64().expect("time");
            (window.start..window.end).contains(&ns.div_euclid(1_000_000_000))
        };
        let mut truth: Vec<u64> = h
            .truth(ENTERPRISE_ZONE, around, FIELDS)
            .iter()
            .filter(|line| started_in(line))
            .map(|line| ray_id(line).expect("ray id"))
            .collect();
        truth.sort_unstable();
        assert_eq!(
            held.len(),
            truth.len(),
            "window {window:?}: {} held of {} requests",
            held.len(),
            truth.len()
        );
        assert_eq!(held, truth, "window {window:?}");
        let lost_here = dropped
            .iter()
            .filter(|line| {
                let record: serde_json::Value = serde_json::from_str(line).expect("record");
                let ns = record["EdgeStartTimestamp"].as_i64().expect("time");
                ns.div_euclid(1_000_000_000) >= window.start
                    && ns.div_euclid(1_000_000_000) < window.end
            })
            .count();
        assert!(lost_here > 0, "window {window:?} lost nothing to repair");
    }
    collector.stop().await;
}
