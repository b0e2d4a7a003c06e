//! Logpush over HTTP end to end: the simulator's Logpush job pushes a zone's records to the
//! ingest endpoint (a `rainlogs` process), the collector files them into windows, and another
//! `rainlogs` process archives and seals them. With a delayed batch that lands after its windows
//! were sealed, duplicates (at once and after sealing), a reordered and a dropped batch, and the
//! ingest process SIGKILLed and down for two minutes, the archive holds exactly the truth of the
//! pushed seconds minus what the simulator reports dropped, each record once, and
//! `rainlogs-verify` passes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cf_sim::{ClockStart, DeliveryStatus, EndpointKind, Fault, FaultKind, SimOptions};
use rainlogs_bus::{Bus, CancellationToken, connect, provision};
use rainlogs_cloudflare::ClientConfig;
use rainlogs_collector::{
    CollectorDeps, CollectorOptions, FnClock, Identity, TokenKey, TokenKeyring, run_collector,
};
use rainlogs_integrity::{ArchiveReader, EntryBody};
use rainlogs_schemas::events::{Method, ZoneAdded};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_store::ObjectKey;
use rainlogs_testkit::{NatsServer, TestDatabase, free_port};
use sha2::Digest as _;

mod common;
use common::{Bucket, Process, chain_entries, print_logs, spawn_services};

const TENANT: &str = "acme";
/// The example scenario's EU-only zone: Logpull is closed to it, Logpush is its complete source.
const ZONE: &str = "4c3f2e1d0a9b8c7d6e5f4a3b2c1d0e9f";
const TOKEN: &str = "cfut_full_access_token_0000000000000000";
const FIELDS: [&str; 3] = ["ClientIP", "EdgeStartTimestamp", "RayID"];
/// The token-encryption key the zones' tokens and buckets are sealed with.
const KEY: [u8; 32] = [7; 32];

async fn publish_control(bus: &Bus, event: Event) {
    let envelope = Envelope::new(TENANT, Some(ZONE.into()), Actor::operator(), event);
    bus.publish(&subjects::control(TENANT), &envelope)
        .await
        .expect("control event");
}

fn spawn_ingest(nats: &str, db: &str, data: &Path, run: u32, port: u16) -> Process {
    spawn_services(
        nats,
        db,
        data,
        run,
        &["ingest"],
        &[("RAINLOGS__INGEST__LISTEN", format!("127.0.0.1:{port}"))],
    )
}

fn collector_settings(sim: &cf_sim::RunningSim, port: u16) -> CollectorOptions {
    CollectorOptions {
        push_url: Some(format!("http://127.0.0.1:{port}")),
        window: Duration::from_secs(60),
        logpush_lateness: Duration::from_secs(120),
        tick: Duration::from_millis(20),
        retry_base: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        // The job's state is read back rarely, so the test's own switching-off of the job at the
        // end (to stop the pushes) stands.
        recheck: Duration::from_secs(3600),
        lease_ttl: Duration::from_secs(2),
        client: ClientConfig::with_base_url(sim.base_url()),
        ..CollectorOptions::default()
    }
}

/// Moves the simulated clock `seconds` forward in steps, so pushes and closes happen as time
/// passes rather than all at once.
async fn play(sim: &cf_sim::RunningSim, seconds: u64) {
    for _ in 0..seconds / 10 {
        sim.advance(Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
}

const HTTP: &str = "http_requests";
const FIREWALL: &str = "firewall_events";

/// The zone's jobs named `rainlogs`: (id, dataset).
async fn jobs_of(sim: &cf_sim::RunningSim, zone: &str) -> Vec<(u64, String)> {
    let answer: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/zones/{zone}/logpush/jobs", sim.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("jobs")
        .json()
        .await
        .expect("jobs");
    answer["result"]
        .as_array()
        .map(|jobs| {
            jobs.iter()
                .filter(|job| job["name"] == "rainlogs")
                .filter_map(|job| Some((job["id"].as_u64()?, job["dataset"].as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// A private NATS with the streams provisioned, a fresh database, and a `rainlogs` process
/// archiving and sealing into a local store under `data`, ready.
struct Pipeline {
    nats: NatsServer,
    db: TestDatabase,
    bus: Bus,
    data: tempfile::TempDir,
    services: Process,
}

impl Pipeline {
    async fn start() -> Self {
        let nats = NatsServer::start();
        let db = TestDatabase::create().await;
        let bus = connect(&nats.url).await.expect("connect");
        provision(&bus, 1).await.expect("provision");
        let data = tempfile::tempdir().expect("data dir");
        let mut services = spawn_services(
            &nats.url,
            &db.url,
            data.path(),
            0,
            &["archiver", "sealer"],
            &[],
        );
        services.wait_ready().await;
        Self {
            nats,
            db,
            bus,
            data,
            services,
        }
    }
}

/// The example scenario on a clock frozen at 2026-01-15 12:00 UTC, moved only by [`play`].
async fn frozen_sim() -> (Arc<cf_sim::RunningSim>, time::OffsetDateTime) {
    let mut scenario = cf_sim::Scenario::example();
    scenario.limits.per_ip_per_sec = 0;
    let t0 = time::macros::datetime!(2026-01-15 12:00 UTC);
    let sim = cf_sim::Simulator::start(
        scenario,
        SimOptions {
            clock: Some(ClockStart::FrozenAt(t0)),
            ..SimOptions::default()
        },
    )
    .await
    .expect("simulator");
    (Arc::new(sim), t0)
}

/// The zone as onboarding leaves it: collected with `method`, its token sealed with `key`.
async fn add_zone(bus: &Bus, key: &TokenKey, zone: &str, method: Method) {
    publish_control(
        bus,
        Event::ZoneAdded(ZoneAdded {
            zone_id: zone.into(),
            name: format!("{zone}.example.eu"),
            plan: "enterprise".into(),
            method,
            fields: FIELDS.join(","),
            sealed_token: key.seal(TENANT, zone, TOKEN),
            token_key_id: key.id().to_owned(),
        }),
    )
    .await;
}

/// An in-process collector on the simulator's clock, with the key [`add_zone`] sealed with.
fn spawn_collector(
    bus: &Bus,
    sim: &Arc<cf_sim::RunningSim>,
    settings: CollectorOptions,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<Result<(), rainlogs_collector::CollectorError>> {
    let clock_sim = Arc::clone(sim);
    tokio::spawn(run_collector(
        CollectorDeps {
            bus: bus.clone(),
            settings,
            keyring: TokenKeyring::new(vec![TokenKey::new(KEY)]),
            clock: Arc::new(FnClock(move || clock_sim.now())),
            meter: opentelemetry::global::meter("logpush-test"),
            shutdown,
            identity: Identity::fresh(),
        },
        || {},
    ))
}

/// A `logpush_s3` zone as the API leaves it: onboarded, and its bucket (the customer's, on the
/// dev SeaweedFS) set. Cloudflare writes with the writer's keys, RainLogs reads with the
/// auditor's, which cannot write or delete.
async fn add_bucket_zone(
    bus: &Bus,
    key: &TokenKey,
    zone: &str,
    customer: &rainlogs_store::S3Store,
    after_sealing: AfterSealing,
) {
    use rainlogs_testkit::s3::{dev_s3_auditor, dev_s3_host, dev_s3_writer, logpush_destination};
    let reader = match after_sealing {
        AfterSealing::Keep => dev_s3_auditor(),
        AfterSealing::Delete => dev_s3_writer(),
    };
    let destination_conf =
        logpush_destination(&customer.config().bucket, "cloudflare", &dev_s3_host());
    let source = serde_json::json!({
        "destination_conf": destination_conf,
        "read_access_key_id": reader.access_key_id,
        "read_secret_access_key": reader.secret_access_key,
        "delete_after_sealing": after_sealing == AfterSealing::Delete,
    })
    .to_string();
    add_zone(bus, key, zone, Method::LogpushS3).await;
    publish_control(
        bus,
        Event::PushSourceSet(rainlogs_schemas::events::PushSourceSet {
            zone_id: zone.into(),
            sealed_source: key.seal(TENANT, zone, &source),
            key_id: key.id().to_owned(),
        }),
    )
    .await;
}

/// What becomes of the objects in the customer's bucket once their records are sealed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AfterSealing {
    /// Read-only keys; the objects stay.
    Keep,
    /// Keys that may delete, and `delete_after_sealing`.
    Delete,
}

/// The collector's settings for zones whose Logpush writes to a bucket it polls.
fn bucket_settings(sim: &cf_sim::RunningSim) -> CollectorOptions {
    let mut settings = collector_settings(sim, 0);
    settings.push_url = None;
    settings.bucket_poll = Duration::from_millis(100);
    settings.bucket_access = rainlogs_push::BucketAccess {
        addresses: rainlogs_store::AddressPolicy::AllowPrivate,
        amazon_s3_endpoint: None,
    };
    settings
}

/// Batch faults, taken in this order by the batches as they are cut: one lands after its
/// windows were sealed, one is sent twice at once and one again after ten minutes, one comes
/// out of order, one is dropped.
fn inject_batch_faults(sim: &cf_sim::RunningSim) {
    for kind in [
        FaultKind::Delay { secs: 400 },
        FaultKind::Duplicate { after_secs: 0 },
        FaultKind::Reorder,
        FaultKind::DropBatch,
        FaultKind::Duplicate { after_secs: 600 },
    ] {
        sim.inject(Fault::on_zone(ZONE, EndpointKind::LogpushPush, 1, kind).for_dataset(HTTP));
    }
}

/// The ids of the jobs the collector makes for the zone: `http_requests`, `firewall_events`.
async fn wait_for_jobs(sim: &cf_sim::RunningSim, zone: &str) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let jobs = jobs_of(sim, zone).await;
        let find = |dataset: &str| jobs.iter().find(|(_, d)| d == dataset).map(|(id, _)| *id);
        if let (Some(http), Some(firewall)) = (find(HTTP), find(FIREWALL)) {
            assert_eq!(jobs.len(), 2, "one job per dataset: {jobs:?}");
            return (http, firewall);
        }
        assert!(
            Instant::now() < deadline,
            "the collector made no Logpush job for each dataset: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Switches the zone's jobs off at Cloudflare, as the end of a test's pushes.
async fn disable_jobs(sim: &cf_sim::RunningSim, zone: &str) {
    for (job_id, _) in jobs_of(sim, zone).await {
        let stopped = reqwest::Client::new()
            .put(format!(
                "{}/zones/{zone}/logpush/jobs/{job_id}",
                sim.base_url()
            ))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "enabled": false }))
            .send()
            .await
            .expect("disable job");
        assert_eq!(stopped.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_records_are_archived_once_minus_what_cloudflare_dropped_and_verify() {
    let Pipeline {
        nats,
        db,
        bus,
        data,
        services: pipeline,
    } = Pipeline::start().await;
    let ingest_data = tempfile::tempdir().expect("ingest data dir");
    let port = free_port();
    let mut ingest = spawn_ingest(&nats.url, &db.url, ingest_data.path(), 0, port);
    ingest.wait_ready().await;

    let (sim, t0) = frozen_sim().await;

    // The zone as onboarding leaves it: collected with Logpush, its endpoint secret known.
    let key = TokenKey::new(KEY);
    add_zone(&bus, &key, ZONE, Method::LogpushHttp).await;
    let shutdown = CancellationToken::new();
    let collector = spawn_collector(&bus, &sim, collector_settings(&sim, port), shutdown.clone());
    inject_batch_faults(&sim);
    // The collector makes the zone's job, pushing to the ingest endpoint.
    let jobs = wait_for_jobs(&sim, ZONE).await;

    // Four minutes of pushes, then the receiver is killed mid-push and stays down for two
    // (simulated) minutes while Cloudflare retries, then seven more minutes.
    play(&sim, 240).await;
    ingest.kill();
    play(&sim, 120).await;
    let mut ingest = spawn_ingest(&nats.url, &db.url, ingest_data.path(), 1, port);
    ingest.wait_ready().await;
    // Long enough for the delayed batch (400 s) and the late duplicate (600 s after delivery).
    play(&sim, 440).await;
    // Uploads due now finish before the job stops; what it still holds back is dropped with
    // the job and reported as dropped.
    tokio::time::sleep(Duration::from_millis(500)).await;
    disable_jobs(&sim, ZONE).await;

    settle(&sim).await;
    archive_holds_the_truth_minus_drops(&sim, &bus, data.path(), t0, jobs).await;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(20), collector).await;
    pipeline.kill();
    ingest.kill();
    sim_shutdown(sim).await;
}

/// Logpush into the customer's bucket end to end: the simulator writes the zone's batches as
/// gzip objects into a bucket of its own on the dev SeaweedFS (with the same faults as above, a
/// dropped batch and duplicate objects among them), the collector reads them with read-only
/// keys, and is killed without a goodbye and stays away for two minutes while objects pile up.
/// The archive holds each record of the truth once minus what was dropped, and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_cloudflare_writes_to_a_bucket_are_archived_once_and_verify() {
    use rainlogs_testkit::s3::dev_bucket;

    let Pipeline {
        nats: _nats,
        db: _db,
        bus,
        data,
        services: pipeline,
    } = Pipeline::start().await;

    let (sim, t0) = frozen_sim().await;

    let customer = dev_bucket("logpush-e2e", false).await;
    let key = TokenKey::new(KEY);
    add_bucket_zone(&bus, &key, ZONE, &customer, AfterSealing::Keep).await;
    let start_collector =
        |shutdown: CancellationToken| spawn_collector(&bus, &sim, bucket_settings(&sim), shutdown);
    let collector = start_collector(CancellationToken::new());
    inject_batch_faults(&sim);
    let jobs = wait_for_jobs(&sim, ZONE).await;

    play(&sim, 240).await;
    // A crash: the task is dropped where it stands, its lease left to expire.
    collector.abort();
    let _ = collector.await;
    play(&sim, 120).await;
    let shutdown = CancellationToken::new();
    let collector = start_collector(shutdown.clone());
    play(&sim, 440).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    disable_jobs(&sim, ZONE).await;

    settle(&sim).await;
    archive_holds_the_truth_minus_drops(&sim, &bus, data.path(), t0, jobs).await;
    // Duplicates showed up as objects of their own, and nothing was deleted from the bucket.
    let objects = bucket_objects(&customer).await;
    assert_eq!(objects.len(), objects_written(&sim), "{objects:?}");
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(20), collector).await;
    pipeline.kill();
    sim_shutdown(sim).await;
}

/// The Logpush objects in the customer's bucket.
async fn bucket_objects(customer: &rainlogs_store::S3Store) -> std::collections::BTreeSet<String> {
    futures::TryStreamExt::try_collect::<Vec<_>>(customer.list("cloudflare/"))
        .await
        .expect("list")
        .into_iter()
        .map(|o| o.key.to_string())
        .filter(|k| k.ends_with(".log.gz"))
        .collect()
}

/// How many objects the simulator's jobs wrote for [`ZONE`], duplicates included.
fn objects_written(sim: &cf_sim::RunningSim) -> usize {
    sim.logpush_deliveries(ZONE)
        .iter()
        .filter(|d| d.status == DeliveryStatus::Delivered)
        .map(|d| 1 + d.duplicates_sent as usize)
        .sum()
}

/// `delete_after_sealing`, with keys that may delete: the objects Cloudflare writes into the
/// customer's bucket are deleted once their records are sealed. While the archiver and sealer
/// are down nothing more is deleted though the collector goes on reading; once they are back,
/// every object goes, and the archive holds each record of the truth once minus what was
/// dropped, and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_deleted_from_the_customers_bucket_once_sealed_when_asked() {
    use rainlogs_testkit::s3::dev_bucket;

    let Pipeline {
        nats,
        db,
        bus,
        data,
        services: pipeline,
    } = Pipeline::start().await;
    let (sim, t0) = frozen_sim().await;
    let customer = dev_bucket("logpush-delete", false).await;
    let key = TokenKey::new(KEY);
    add_bucket_zone(&bus, &key, ZONE, &customer, AfterSealing::Delete).await;
    let shutdown = CancellationToken::new();
    let collector = spawn_collector(&bus, &sim, bucket_settings(&sim), shutdown.clone());
    inject_batch_faults(&sim);
    let jobs = wait_for_jobs(&sim, ZONE).await;
    let objects = || bucket_objects(&customer);

    // Sealed windows' objects go while the pipeline runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        play(&sim, 30).await;
        if objects().await.len() < objects_written(&sim) {
            break;
        }
        assert!(Instant::now() < deadline, "no sealed object was deleted");
    }

    // The archiver and sealer stop: what is read from now on is not sealed, so it stays.
    pipeline.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = objects().await;
    play(&sim, 240).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = objects().await;
    assert!(
        before.is_subset(&during) && during.len() > before.len(),
        "nothing is deleted while nothing is sealed: {} objects before, {} after, {} gone",
        before.len(),
        during.len(),
        before.difference(&during).count()
    );

    let mut pipeline = spawn_services(
        &nats.url,
        &db.url,
        data.path(),
        1,
        &["archiver", "sealer"],
        &[],
    );
    pipeline.wait_ready().await;
    play(&sim, 440).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    disable_jobs(&sim, ZONE).await;
    settle(&sim).await;
    archive_holds_the_truth_minus_drops(&sim, &bus, data.path(), t0, jobs).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = objects().await;
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            print_logs(data.path(), 1);
            panic!(
                "{} sealed objects are still in the bucket: {left:?}",
                left.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(20), collector).await;
    pipeline.kill();
    sim_shutdown(sim).await;
}

/// Lets every batch be delivered or dropped (and at least two duplicates be sent), then time
/// pass beyond the lateness of the last window and the wait of the last late close.
async fn settle(sim: &cf_sim::RunningSim) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let deliveries = sim.logpush_deliveries(ZONE);
        if deliveries
            .iter()
            .all(|d| d.status != DeliveryStatus::Pending)
            && deliveries.iter().filter(|d| d.duplicates_sent > 0).count() >= 2
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "batches not settled: {deliveries:#?}"
        );
        play(sim, 30).await;
    }
    play(sim, 300).await;
}

/// Waits until every close on the zone's subject, and every window found short, is sealed and
/// signed.
async fn wait_until_sealed(bus: &Bus, bucket: &Bucket, zone: &str, data: &Path) {
    // Every close is sealed as one entry, and so is every window the cross-check found short.
    let closes = || async {
        let mut count = 0_u64;
        for (stream, subject) in [
            ("RL_BATCH", subjects::batch(zone)),
            ("RL_ARCHIVE", subjects::archive(zone)),
        ] {
            let stream = bus.js.get_stream(stream).await.expect("stream");
            let mut next = 1;
            while let Ok(message) = stream
                .direct_get_next_for_subject(subject.clone(), Some(next))
                .await
            {
                next = message.sequence + 1;
                if let Ok(Envelope {
                    event: Event::WindowClosed(_) | Event::WindowShort(_),
                    ..
                }) = Envelope::from_cbor(&message.payload)
                {
                    count += 1;
                }
            }
        }
        count
    };
    // Besides, every archive and late entry is followed by its index entry.
    let sealed = || async {
        let entries = chain_entries(bus, zone).await;
        let indexes = entries
            .iter()
            .filter(|e| matches!(e.body, EntryBody::Index(_)))
            .count() as u64;
        let objects = entries
            .iter()
            .filter(|e| e.body.archive().is_some())
            .count() as u64;
        let signed = bucket.checkpoint_size().await;
        let complete = indexes == objects && signed == entries.len() as u64;
        (entries.len() as u64 - indexes, complete)
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let ((sealed, complete), closed) = (sealed().await, closes().await);
        if sealed > 0 && sealed == closed && complete {
            break;
        }
        if Instant::now() >= deadline {
            print_logs(data, 0);
            panic!("{sealed} entries signed of {closed} closes (indexed and signed: {complete})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Once every close on the zone's subject is sealed: the archive (window and late objects)
/// holds each record of the pushed seconds' truth once, minus exactly what the simulator
/// reports dropped; some records came late; the windows of the dropped batch are sealed short;
/// the zone's security events are archived likewise; and `rainlogs-verify` passes.
async fn archive_holds_the_truth_minus_drops(
    sim: &cf_sim::RunningSim,
    bus: &Bus,
    data: &Path,
    t0: time::OffsetDateTime,
    (http_job, firewall_job): (u64, u64),
) {
    let bucket = Bucket::open(data, TENANT, ZONE).await;
    wait_until_sealed(bus, &bucket, ZONE, data).await;

    // The truth of the pushed seconds, minus exactly what Cloudflare dropped.
    let deliveries: Vec<_> = sim
        .logpush_deliveries(ZONE)
        .into_iter()
        .filter(|d| d.job_id == http_job)
        .collect();
    let first = deliveries
        .iter()
        .map(|d| d.first_second)
        .min()
        .expect("batches");
    let last = deliveries
        .iter()
        .map(|d| d.last_second)
        .max()
        .expect("batches");
    let mut query = cf_sim::TruthQuery::http(
        ZONE,
        time::OffsetDateTime::from_unix_timestamp(first).expect("time"),
        time::OffsetDateTime::from_unix_timestamp(last + 1).expect("time"),
    );
    query.fields = Some(FIELDS.iter().map(|f| (*f).to_owned()).collect());
    let dropped: std::collections::BTreeSet<String> = sim
        .logpush_dropped_lines(ZONE, Some(http_job))
        .into_iter()
        .map(|l| l.trim_end().to_owned())
        .collect();
    assert!(!dropped.is_empty(), "a batch was dropped: {deliveries:#?}");
    let mut expected: Vec<String> = sim
        .truth(&query)
        .expect("truth")
        .into_iter()
        .map(|l| l.trim_end().to_owned())
        .filter(|l| !dropped.contains(l))
        .collect();
    expected.sort_unstable();

    // What the archive holds: every archive and late object, read back.
    let Archived {
        records: archived,
        late_entries,
        shortfalls,
    } = archived_of(bus, &bucket, HTTP).await;
    let missing_by_minute = {
        let have: std::collections::BTreeSet<&String> = archived.iter().collect();
        let mut minutes: BTreeMap<i64, usize> = BTreeMap::new();
        for line in expected.iter().filter(|l| !have.contains(l)) {
            let ns: serde_json::Value = serde_json::from_str(line).expect("record");
            let second = ns["EdgeStartTimestamp"].as_i64().unwrap_or(0) / 1_000_000_000;
            *minutes
                .entry((second - t0.unix_timestamp()) / 60)
                .or_default() += 1;
        }
        minutes
    };
    assert_eq!(
        archived.len(),
        expected.len(),
        "archived {} records, Cloudflare pushed {} it did not drop; missing per minute after t0: \
         {missing_by_minute:?}; deliveries: {deliveries:#?}",
        archived.len(),
        expected.len()
    );
    assert_eq!(archived, expected);
    assert!(
        late_entries > 0,
        "the delayed batch arrived after its windows were sealed"
    );

    // A window sealed short is one Cloudflare dropped records of, beyond the tolerance; the
    // cross-check counted what the simulator's analytics count: the whole truth of the window.
    let dropped_in = |window: rainlogs_integrity::Window| {
        dropped
            .iter()
            .filter(|line| {
                let record: serde_json::Value = serde_json::from_str(line).expect("record");
                let ns = record["EdgeStartTimestamp"].as_u64().unwrap_or(0);
                (window.start_ns()..window.end_ns()).contains(&ns)
            })
            .count() as u64
    };
    for short in &shortfalls {
        let lost = dropped_in(short.window);
        let tolerance = (short.source_count / 20).max(5);
        assert!(
            lost > tolerance,
            "window {:?} sealed short of {} records, but Cloudflare dropped only {lost} of it",
            short.window,
            short.source_count
        );
    }

    // Also where the collector crashed and another process checked the windows: those it
    // closed before, and those open at the crash, filled again from the parts.
    assert!(
        !shortfalls.is_empty(),
        "the windows of the dropped batch were sealed short"
    );

    // The zone's security events, pushed by a job of their own, are archived the same way.
    let firewall_deliveries: Vec<_> = sim
        .logpush_deliveries(ZONE)
        .into_iter()
        .filter(|d| d.job_id == firewall_job && d.status == DeliveryStatus::Delivered)
        .collect();
    let second = |unix: i64| time::OffsetDateTime::from_unix_timestamp(unix).expect("time");
    let mut query = cf_sim::TruthQuery::logpush(
        ZONE,
        cf_sim::Dataset::FirewallEvents,
        second(
            firewall_deliveries
                .iter()
                .map(|d| d.first_second)
                .min()
                .expect("firewall batches"),
        ),
        second(
            firewall_deliveries
                .iter()
                .map(|d| d.last_second)
                .max()
                .expect("firewall batches")
                + 1,
        ),
    );
    query.fields = Some(
        rainlogs_cloudflare::LOGPUSH_FIREWALL_FIELDS
            .iter()
            .map(|f| (*f).to_owned())
            .collect(),
    );
    let firewall_dropped: std::collections::BTreeSet<String> = sim
        .logpush_dropped_lines(ZONE, Some(firewall_job))
        .into_iter()
        .map(|l| l.trim_end().to_owned())
        .collect();
    let mut firewall_expected: Vec<String> = sim
        .truth(&query)
        .expect("firewall truth")
        .into_iter()
        .map(|l| l.trim_end().to_owned())
        .filter(|l| !firewall_dropped.contains(l))
        .collect();
    firewall_expected.sort_unstable();
    let firewall = archived_of(bus, &bucket, FIREWALL).await;
    assert!(
        !firewall_expected.is_empty(),
        "the zone had security events"
    );
    assert_eq!(firewall.records.len(), firewall_expected.len());
    assert!(
        firewall.records == firewall_expected,
        "the security events archived are those Cloudflare pushed"
    );

    let report = bucket.verify().await;
    if report.exit_code() != 0 {
        print_logs(data, 0);
    }
    assert_eq!(report.exit_code(), 0, "{}", report.to_human());
    let reported = report.to_human().matches("window_short").count();
    assert_eq!(
        reported,
        shortfalls.len(),
        "the verifier names each short window: {}",
        report.to_human()
    );
    eprintln!(
        "{} windows sealed short of Cloudflare's count; {} records dropped",
        shortfalls.len(),
        dropped.len()
    );
}

/// What the archive holds for one dataset of [`ZONE`].
struct Archived {
    /// Every record of the dataset's archive and late objects, sorted, each once.
    records: Vec<String>,
    late_entries: usize,
    shortfalls: Vec<rainlogs_integrity::ShortfallRecord>,
}

/// Reads back every archive and late object of `dataset`; a record archived twice fails.
async fn archived_of(bus: &Bus, bucket: &Bucket, dataset: &str) -> Archived {
    let mut records: BTreeMap<String, usize> = BTreeMap::new();
    let mut late_entries = 0;
    let mut shortfalls = Vec::new();
    for entry in chain_entries(bus, ZONE).await {
        let record = match &entry.body {
            EntryBody::Archive(record) if record.dataset.as_str() == dataset => record,
            EntryBody::Late(record) if record.dataset.as_str() == dataset => {
                late_entries += 1;
                record
            }
            EntryBody::Shortfall(short) if short.dataset.as_str() == dataset => {
                shortfalls.push(short.clone());
                continue;
            }
            _ => continue,
        };
        let bytes = bucket
            .store
            .get_bytes(&ObjectKey::new(&record.object.key).expect("key"))
            .await
            .expect("object");
        let mut content = String::new();
        std::io::Read::read_to_string(
            &mut ArchiveReader::new(std::io::Cursor::new(bytes.to_vec())).expect("zstd"),
            &mut content,
        )
        .expect("archive content");
        for line in content.lines().filter(|l| !l.is_empty()) {
            *records.entry(line.to_owned()).or_default() += 1;
        }
    }
    let twice: Vec<&String> = records
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(l, _)| l)
        .collect();
    assert!(
        twice.is_empty(),
        "{dataset} records archived more than once: {twice:?}"
    );
    Archived {
        records: records.into_keys().collect(),
        late_entries,
        shortfalls,
    }
}

/// An Enterprise zone's short window end to end: the window Cloudflare's Logpush dropped a
/// batch of is sealed as a shortfall, the collector repairs it from Logpull, the sealer logs the
/// recovered records as a `late` entry after the shortfall, and `rainlogs-verify` reports the
/// window as made whole (so even `--fail-on-gap` would pass it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_window_repaired_from_logpull_is_logged_short_then_whole() {
    use rainlogs_integrity::CollectionMethod;
    use rainlogs_testkit::s3::dev_bucket;
    /// The example scenario's Enterprise zone with Logpull (retention on, no EU-only boundary).
    const ENTERPRISE: &str = "3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e";

    let Pipeline {
        nats: _nats,
        db: _db,
        bus,
        data,
        services: pipeline,
    } = Pipeline::start().await;
    let (sim, _) = frozen_sim().await;
    let customer = dev_bucket("logpush-repair-e2e", false).await;
    let key = TokenKey::new(KEY);
    add_bucket_zone(&bus, &key, ENTERPRISE, &customer, AfterSealing::Keep).await;
    let shutdown = CancellationToken::new();
    let collector = spawn_collector(&bus, &sim, bucket_settings(&sim), shutdown.clone());
    // The third batch is lost for good.
    for kind in [
        FaultKind::Duplicate { after_secs: 0 },
        FaultKind::Duplicate { after_secs: 0 },
        FaultKind::DropBatch,
    ] {
        sim.inject(
            Fault::on_zone(ENTERPRISE, EndpointKind::LogpushPush, 1, kind).for_dataset(HTTP),
        );
    }
    let (http_job, _) = wait_for_jobs(&sim, ENTERPRISE).await;
    // The short window is checked five minutes after its end and pulled at the next check.
    let bucket = Bucket::open(data.path(), TENANT, ENTERPRISE).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let (short, repair) = loop {
        play(&sim, 60).await;
        let entries = chain_entries(&bus, ENTERPRISE).await;
        let short = entries.iter().find_map(|e| match &e.body {
            EntryBody::Shortfall(short) => Some((e.index, short.clone())),
            _ => None,
        });
        let repair = short.as_ref().and_then(|(_, short)| {
            entries.iter().find(|e| {
                matches!(&e.body, EntryBody::Late(late)
                    if late.window == short.window && late.method == CollectionMethod::Logpull)
            })
        });
        if let (Some(short), Some(repair)) = (short.clone(), repair)
            && bucket.checkpoint_size().await == entries.len() as u64
        {
            break (short, repair.clone());
        }
        if Instant::now() >= deadline {
            print_logs(data.path(), 0);
            panic!("no shortfall followed by its repair: {entries:#?}");
        }
    };
    disable_jobs(&sim, ENTERPRISE).await;
    play(&sim, 300).await;
    wait_until_sealed(&bus, &bucket, ENTERPRISE, data.path()).await;
    assert!(
        short.0 < repair.index,
        "the shortfall is logged before the repair"
    );
    let EntryBody::Late(recovered) = &repair.body else {
        unreachable!()
    };
    let dropped = sim.logpush_dropped_lines(ENTERPRISE, Some(http_job)).len() as u64;
    assert!(
        recovered.record_count > 0 && recovered.record_count <= dropped,
        "recovered {} of {dropped} dropped",
        recovered.record_count
    );

    let report = bucket.verify().await;
    if report.exit_code() != 0 {
        print_logs(data.path(), 0);
    }
    assert_eq!(report.exit_code(), 0, "{}", report.to_human());
    assert!(
        report
            .to_human()
            .contains("was short and has been made whole by later records"),
        "{}",
        report.to_human()
    );
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(20), collector).await;
    pipeline.kill();
    sim_shutdown(sim).await;
}

async fn sim_shutdown(sim: Arc<cf_sim::RunningSim>) {
    if let Ok(sim) = Arc::try_unwrap(sim) {
        sim.shutdown().await;
    }
}

/// The ingest process is SIGKILLed in the middle of a push, after some of its parts are in
/// `RL_PUSH` and before it answered: Cloudflare sees no 200 and pushes the batch again, and the
/// restarted endpoint stores the rest, so every record is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_killed_between_receiving_and_answering_stores_the_retried_push_once() {
    use futures::StreamExt as _;
    use std::io::Write as _;

    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let bus = connect(&nats.url).await.expect("connect");
    provision(&bus, 1).await.expect("provision");
    let data = tempfile::tempdir().expect("data dir");
    let port = free_port();
    let secret = "kill-me-push-secret-0123456789abcdef";
    publish_control(
        &bus,
        Event::PushEndpointSet(rainlogs_schemas::events::PushEndpointSet {
            zone_id: ZONE.into(),
            secret_sha256: sha2::Sha256::digest(secret.as_bytes()).to_vec(),
            dataset: None,
        }),
    )
    .await;
    let mut ingest = spawn_ingest(&nats.url, &db.url, data.path(), 0, port);
    ingest.wait_ready().await;

    // About 12 MB of NDJSON: a dozen parts of at most 900 KiB.
    let lines: Vec<String> = (0..60_000_u64)
        .map(|n| {
            format!(
                r#"{{"ClientIP":"198.51.100.{}","ClientRequestPath":"/items/{n}/{}","EdgeStartTimestamp":{},"RayID":"{n:016x}"}}"#,
                n % 250,
                "x".repeat(100),
                1_768_478_400_000_000_000_u64 + n * 1_000_000
            )
        })
        .collect();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for line in &lines {
        writeln!(encoder, "{line}").expect("gzip");
    }
    let body = encoder.finish().expect("gzip");
    let url = format!("http://127.0.0.1:{port}/logpush/v1/{ZONE}/http_requests");
    let stored_parts = || async {
        bus.js
            .get_stream("RL_PUSH")
            .await
            .expect("stream")
            .info()
            .await
            .expect("info")
            .state
            .messages
    };

    // The first try trickles in, and the process dies once parts of it are stored.
    let chunks: Vec<Vec<u8>> = body.chunks(8 * 1024).map(<[u8]>::to_vec).collect();
    let slow = futures::stream::iter(chunks).then(|chunk| async move {
        tokio::time::sleep(Duration::from_millis(40)).await;
        Ok::<_, std::io::Error>(chunk)
    });
    let first_try = tokio::spawn(
        reqwest::Client::new()
            .post(&url)
            .bearer_auth(secret)
            .body(reqwest::Body::wrap_stream(slow))
            .send(),
    );
    rainlogs_testkit::wait_for(
        "parts of the push stored",
        Duration::from_secs(60),
        async || stored_parts().await >= 2,
    )
    .await;
    ingest.kill();
    let answered = first_try.await.expect("task");
    assert!(
        answered.as_ref().map_or(true, |r| r.status() != 200),
        "the killed endpoint never answered 200: {answered:?}"
    );
    let before_retry = stored_parts().await;
    assert!(before_retry >= 2, "some parts were stored before the kill");

    // Cloudflare pushes the batch again to the restarted endpoint.
    let mut ingest = spawn_ingest(&nats.url, &db.url, data.path(), 1, port);
    ingest.wait_ready().await;
    let retried = reqwest::Client::new()
        .post(&url)
        .bearer_auth(secret)
        .body(body.clone())
        .send()
        .await
        .expect("retry");
    assert_eq!(retried.status(), 200);
    ingest.kill();

    let stream = bus.js.get_stream("RL_PUSH").await.expect("stream");
    let mut stored: Vec<String> = Vec::new();
    let mut parts = 0_u64;
    let mut next = 1;
    while let Ok(message) = stream
        .direct_get_next_for_subject(subjects::push(ZONE), Some(next))
        .await
    {
        next = message.sequence + 1;
        let Event::PushReceived(part) = Envelope::from_cbor(&message.payload)
            .expect("envelope")
            .event
        else {
            panic!("not a part");
        };
        let content = String::from_utf8(part.content().expect("content")).expect("utf-8");
        parts += 1;
        stored.extend(content.lines().map(str::to_owned));
    }
    assert!(parts > before_retry, "the retry stored the rest");
    let total = stored.len();
    stored.sort_unstable();
    stored.dedup();
    assert_eq!(total, stored.len(), "no record stored twice");
    let mut expected = lines;
    expected.sort_unstable();
    assert_eq!(stored, expected, "every record of the push stored");
}
