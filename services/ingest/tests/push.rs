//! The ingest endpoint against a real NATS JetStream: what Cloudflare pushes is in RL_PUSH,
//! exactly once, before the push is answered 200; what must be refused is refused and leaves
//! nothing behind.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use rainlogs_bus::async_nats::jetstream::consumer::{DeliverPolicy, pull};
use rainlogs_bus::{Bus, CancellationToken, definitions};
use rainlogs_config::Config;
use rainlogs_integrity::BucketPrefix;
use rainlogs_runtime::{ObjectStore, ServiceContext};
use rainlogs_schemas::events::{PushEndpointSet, ZoneRemoved};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_store::{Backend, FsStore, Store};
use rainlogs_telemetry::Health;
use rainlogs_testkit::{NatsServer, free_port};
use sha2::{Digest, Sha256};

const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const SECRET: &str = "push-secret-of-the-zone-0123456789abcdef";

struct Stack {
    nats: NatsServer,
    bus: Bus,
    base: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<Result<(), rainlogs_runtime::ServiceError>>,
    _store_dir: tempfile::TempDir,
}

impl Stack {
    async fn start(configure: impl FnOnce(&mut Config)) -> Self {
        let nats = NatsServer::start();
        let bus = rainlogs_bus::connect(&nats.url).await.expect("nats");
        rainlogs_bus::provision(&bus, 1).await.expect("provision");
        let store_dir = tempfile::tempdir().expect("store dir");
        let store = ObjectStore {
            store: Store::Single(Backend::Fs(
                FsStore::open(store_dir.path()).await.expect("store"),
            )),
            prefix: BucketPrefix::default(),
        };
        let port = free_port();
        let mut config = Config::default();
        config.ingest.listen = Some(([127, 0, 0, 1], port).into());
        config.service.shutdown_timeout = Duration::from_secs(1);
        configure(&mut config);
        let shutdown = CancellationToken::new();
        publish_control(&bus, push_endpoint(SECRET)).await;
        let ctx = ServiceContext {
            config: Arc::new(config),
            bus: bus.clone(),
            // The ingest service never touches PostgreSQL.
            db: sqlx::postgres::PgPoolOptions::new()
                .connect_lazy("postgres://nobody@127.0.0.1:1/none")
                .expect("lazy pool"),
            store,
            health: Health::default(),
            telemetry: rainlogs_telemetry::init(&Default::default()).expect("telemetry"),
            shutdown: shutdown.clone(),
        };
        let server = tokio::spawn(rainlogs_ingest::run(ctx));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "ingest never listened"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            nats,
            bus,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            shutdown,
            server,
            _store_dir: store_dir,
        }
    }

    async fn push(&self, dataset: &str, secret: &str, body: Vec<u8>) -> (u16, String) {
        let response = self
            .http
            .post(format!("{}/logpush/v1/{ZONE}/{dataset}", self.base))
            .bearer_auth(secret)
            .body(body)
            .send()
            .await
            .expect("push");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Every NDJSON line stored in `rl.push.<zone>`, in stream order, and the number of parts.
    async fn stored(&self) -> (Vec<String>, usize) {
        self.stored_for(ZONE).await
    }

    async fn stored_for(&self, zone: &str) -> (Vec<String>, usize) {
        let stream = self
            .bus
            .js
            .get_stream(definitions::PUSH)
            .await
            .expect("RL_PUSH");
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                filter_subject: subjects::push(zone),
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let (mut lines, mut parts) = (Vec::new(), 0);
        // The subject's last message says nothing is pending after it; a subject without
        // messages delivers nothing at all.
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_secs(1), messages.next()).await
        {
            let message = message.expect("message");
            let pending = message.info().expect("info").pending;
            let envelope = Envelope::from_cbor(&message.payload).expect("envelope");
            assert_eq!(envelope.tenant, "acme");
            let Event::PushReceived(part) = envelope.event else {
                panic!("not a push: {:?}", envelope.event);
            };
            let content = part.content().expect("content");
            assert_eq!(part.content_sha256, Sha256::digest(&content).to_vec());
            let text = String::from_utf8(content).expect("utf-8");
            assert_eq!(text.lines().count(), part.records as usize);
            lines.extend(text.lines().map(str::to_owned));
            parts += 1;
            if pending == 0 {
                break;
            }
        }
        (lines, parts)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("ingest stops");
        stopped.expect("join").expect("clean stop");
    }
}

fn push_endpoint(secret: &str) -> Event {
    Event::PushEndpointSet(PushEndpointSet {
        zone_id: ZONE.into(),
        secret_sha256: Sha256::digest(secret.as_bytes()).to_vec(),
        dataset: None,
    })
}

async fn publish_control(bus: &Bus, event: Event) {
    let envelope = Envelope::new("acme", Some(ZONE.into()), Actor::service("test"), event);
    bus.publish(&subjects::control("acme"), &envelope)
        .await
        .expect("control event");
}

fn records(from: u32, count: u32) -> Vec<String> {
    (from..from + count)
        .map(|n| {
            format!(
                "{{\"ClientIP\":\"192.0.2.{}\",\"EdgeStartTimestamp\":{},\"RayID\":\"{n:016x}\"}}",
                n % 250,
                1_767_225_600_000_000_000_u64 + u64::from(n) * 1_000_000
            )
        })
        .collect()
}

fn gzip(lines: &[String]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for line in lines {
        encoder.write_all(line.as_bytes()).expect("gzip");
        encoder.write_all(b"\n").expect("gzip");
    }
    encoder.finish().expect("gzip")
}

#[tokio::test]
async fn a_push_is_stored_whole_in_order_and_a_retried_push_is_stored_once() {
    let stack = Stack::start(|_| {}).await;
    // About 3 MB of NDJSON: several parts, each under a NATS message.
    let pushed = records(0, 25_000);
    let body = gzip(&pushed);
    let (status, text) = stack.push("http_requests", SECRET, body.clone()).await;
    assert_eq!((status, text.trim()), (200, "stored 25000 records"));
    let (stored, parts) = stack.stored().await;
    assert!(parts > 2, "cut into parts: {parts}");
    assert_eq!(
        stored, pushed,
        "the records that came out are the records that went in"
    );

    // Cloudflare retries a push it did not see answered: nothing is stored twice.
    let (status, _) = stack.push("http_requests", SECRET, body).await;
    assert_eq!(status, 200);
    assert_eq!(stack.stored().await, (pushed.clone(), parts));

    // A plain (not gzipped) body is taken too.
    let more = records(25_000, 10);
    let (status, _) = stack
        .push("http_requests", SECRET, more.join("\n").into_bytes())
        .await;
    assert_eq!(status, 200);
    let (stored, _) = stack.stored().await;
    assert_eq!(stored, [pushed, more].concat());
    stack.stop().await;
}

#[tokio::test]
async fn what_must_be_refused_is_refused_with_its_reason_and_leaves_nothing() {
    let stack = Stack::start(|config| config.ingest.max_push_bytes = 2_000_000).await;
    let body = gzip(&records(0, 100));

    // Wrong secret, unknown zone, unknown dataset.
    let (status, text) = stack.push("http_requests", "wrong", body.clone()).await;
    assert_eq!(
        (status, text.trim()),
        (401, "unknown zone or wrong push secret")
    );
    let (status, _) = stack.push("dns_logs", SECRET, body.clone()).await;
    assert_eq!(status, 404);
    let other = stack
        .http
        .post(format!(
            "{}/logpush/v1/ffffffffffffffffffffffffffffffff/http_requests",
            stack.base
        ))
        .bearer_auth(SECRET)
        .body(body.clone())
        .send()
        .await
        .expect("push");
    assert_eq!(
        other.status(),
        401,
        "an unknown zone answers like a wrong secret"
    );

    // A gzip bomb: 1 GB of zeros in a few MB, stopped at ingest.max_push_bytes.
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..64 {
        bomb.write_all(&zeros).expect("bomb");
    }
    let (status, text) = stack
        .push("http_requests", SECRET, bomb.finish().expect("bomb"))
        .await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("ingest.max_push_bytes"), "{text}");

    // Not NDJSON of the dataset: the line is named.
    let mut wrong = records(0, 3);
    wrong.push("{\"Datetime\":\"2026-01-01T00:00:00Z\",\"Action\":\"block\"}".into());
    let (status, text) = stack.push("http_requests", SECRET, gzip(&wrong)).await;
    assert_eq!(status, 400);
    assert!(
        text.contains("line 4") && text.contains("EdgeStartTimestamp"),
        "{text}"
    );
    let (status, text) = stack
        .push("http_requests", SECRET, b"<html>".to_vec())
        .await;
    assert_eq!(status, 400, "{text}");

    // A gzip body cut short.
    let (status, text) = stack
        .push("http_requests", SECRET, body[..body.len() / 2].to_vec())
        .await;
    assert_eq!(status, 400);
    assert!(text.contains("gzip"), "{text}");

    // Cloudflare's destination check: answered 200, stored nowhere.
    let check = gzip(&["{\"content\":\"tests\"}".to_owned()]);
    let (status, _) = stack.push("http_requests", SECRET, check).await;
    assert_eq!(status, 200);

    assert_eq!(
        stack.stored().await,
        (Vec::new(), 0),
        "nothing of it was stored"
    );

    // A removed zone no longer pushes.
    publish_control(
        &stack.bus,
        Event::ZoneRemoved(ZoneRemoved {
            zone_id: ZONE.into(),
        }),
    )
    .await;
    rainlogs_testkit::wait_for(
        "the removal to reach ingest",
        Duration::from_secs(10),
        async || stack.push("http_requests", SECRET, body.clone()).await.0 == 401,
    )
    .await;
    stack.stop().await;
}

#[tokio::test]
async fn with_jetstream_away_a_push_is_answered_503_and_stored_once_it_is_back() {
    let mut stack = Stack::start(|_| {}).await;
    let pushed = records(0, 500);
    let body = gzip(&pushed);
    stack.nats.kill();
    let (status, _) = stack.push("http_requests", SECRET, body.clone()).await;
    assert_eq!(status, 503, "not taken while it cannot be stored");
    stack.nats.restart();
    rainlogs_testkit::wait_for(
        "the push to be taken again",
        Duration::from_secs(30),
        async || stack.push("http_requests", SECRET, body.clone()).await.0 == 200,
    )
    .await;
    assert_eq!(stack.stored().await.0, pushed);
    stack.stop().await;
}

const SOVEREIGN: &str = "4c3f2e1d0a9b8c7d6e5f4a3b2c1d0e9f";
const CLOUDFLARE_TOKEN: &str = "cfut_full_access_token_0000000000000000";

/// The simulator's Logpush pushes into the ingest endpoint as Cloudflare would: the destination
/// check, gzip batches with the `header_Authorization` secret, and the faults it injects
/// (duplicates, reordering, a batch dropped after its retries). What is stored is the truth of
/// the pushed seconds minus exactly what the simulator reports dropped, each record once.
#[tokio::test]
async fn what_cloudflare_pushes_is_stored_once_minus_exactly_what_it_dropped() {
    use cf_sim::{ClockStart, DeliveryStatus, EndpointKind, Fault, FaultKind, SimOptions};

    let stack = Stack::start(|_| {}).await;
    let secret = "sovereign-push-secret-0123456789abcdef";
    let envelope = Envelope::new(
        "acme",
        Some(SOVEREIGN.into()),
        Actor::service("test"),
        Event::PushEndpointSet(PushEndpointSet {
            zone_id: SOVEREIGN.into(),
            secret_sha256: Sha256::digest(secret.as_bytes()).to_vec(),
            dataset: None,
        }),
    );
    stack
        .bus
        .publish(&subjects::control("acme"), &envelope)
        .await
        .expect("endpoint");
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
    for kind in [
        FaultKind::Duplicate { after_secs: 0 },
        FaultKind::Reorder,
        FaultKind::DropBatch,
    ] {
        sim.inject(Fault::on_zone(
            SOVEREIGN,
            EndpointKind::LogpushPush,
            1,
            kind,
        ));
    }
    let destination = format!(
        "http://{}/logpush/v1/{SOVEREIGN}/http_requests?header_Authorization=Bearer%20{secret}",
        stack.base.trim_start_matches("http://")
    );
    // Ingest must know the endpoint before Cloudflare's destination check arrives.
    rainlogs_testkit::wait_for(
        "the endpoint to reach ingest",
        Duration::from_secs(10),
        async || {
            let check = stack
                .http
                .post(format!(
                    "{}/logpush/v1/{SOVEREIGN}/http_requests",
                    stack.base
                ))
                .bearer_auth(secret)
                .body(gzip(&["{\"content\":\"tests\"}".to_owned()]))
                .send()
                .await
                .expect("check");
            check.status() == 200
        },
    )
    .await;
    let created = reqwest::Client::new()
        .post(format!("{}/zones/{SOVEREIGN}/logpush/jobs", sim.base_url()))
        .bearer_auth(CLOUDFLARE_TOKEN)
        .json(&serde_json::json!({
            "name": "rainlogs",
            "dataset": "http_requests",
            "enabled": true,
            "destination_conf": destination,
            "output_options": {
                "field_names": ["ClientIP", "EdgeStartTimestamp", "RayID"],
                "timestamp_format": "unixnano"
            },
        }))
        .send()
        .await
        .expect("create job");
    let status = created.status();
    let body: serde_json::Value = created.json().await.expect("job");
    assert_eq!(status, 200, "{body}");

    // Five minutes of traffic (10 records/s), pushed in 30 s batches.
    sim.advance(Duration::from_secs(300));
    let settled = |deliveries: &[cf_sim::LogpushDelivery]| {
        deliveries.len() >= 9
            && deliveries
                .iter()
                .all(|d| d.status != DeliveryStatus::Pending)
            && deliveries.iter().any(|d| d.duplicates_sent > 0)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !settled(&sim.logpush_deliveries(SOVEREIGN)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "batches not settled: {:#?}",
            sim.logpush_deliveries(SOVEREIGN)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deliveries = sim.logpush_deliveries(SOVEREIGN);
    let dropped = sim.logpush_dropped_lines(SOVEREIGN, None);
    assert!(
        !dropped.is_empty(),
        "one batch was dropped: {deliveries:#?}"
    );
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
        SOVEREIGN,
        time::OffsetDateTime::from_unix_timestamp(first).expect("time"),
        time::OffsetDateTime::from_unix_timestamp(last + 1).expect("time"),
    );
    query.fields = Some(vec![
        "ClientIP".into(),
        "EdgeStartTimestamp".into(),
        "RayID".into(),
    ]);
    let truth = sim.truth(&query).expect("truth");
    let dropped: std::collections::BTreeSet<&str> = dropped.iter().map(|l| l.trim_end()).collect();
    let mut expected: Vec<&str> = truth
        .iter()
        .map(|l| l.trim_end())
        .filter(|l| !dropped.contains(l))
        .collect();
    expected.sort_unstable();

    let (mut stored, _) = stack.stored_for(SOVEREIGN).await;
    let total = stored.len();
    stored.sort_unstable();
    stored.dedup();
    assert_eq!(total, stored.len(), "a duplicated batch is stored once");
    assert_eq!(
        stored, expected,
        "stored = truth of the pushed seconds minus what Cloudflare dropped"
    );
    sim.shutdown().await;
    stack.stop().await;
}

/// A push whose body stalls is dropped with 408 once `ingest.body_timeout` passes, stores
/// nothing, and frees its slot.
#[tokio::test]
async fn a_stalled_push_is_dropped_after_the_body_timeout_and_stores_nothing() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let stack = Stack::start(|config| {
        config.ingest.body_timeout = Duration::from_secs(1);
        config.ingest.max_concurrent_pushes = 1;
    })
    .await;
    let body = gzip(&records(0, 100));
    let mut stalled = tokio::net::TcpStream::connect(stack.base.trim_start_matches("http://"))
        .await
        .expect("connect");
    let head = format!(
        "POST /logpush/v1/{ZONE}/http_requests HTTP/1.1\r\nHost: ingest\r\n\
         Authorization: Bearer {SECRET}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stalled.write_all(head.as_bytes()).await.expect("head");
    stalled
        .write_all(&body[..body.len() / 2])
        .await
        .expect("half the body");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stalled.read_to_end(&mut answer))
        .await
        .expect("answered within the timeout");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        read.is_ok() && answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    let (status, _) = stack.push("http_requests", SECRET, body).await;
    assert_eq!(status, 200, "the slot was freed");
    assert_eq!(
        stack.stored().await.0,
        records(0, 100),
        "only the whole push"
    );
    stack.stop().await;
}
