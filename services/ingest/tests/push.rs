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
        let mut stream = self
            .bus
            .js
            .get_stream(definitions::PUSH)
            .await
            .expect("RL_PUSH");
        let count = stream.info().await.expect("info").state.messages;
        if count == 0 {
            return (Vec::new(), 0);
        }
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                filter_subject: subjects::push(ZONE),
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let mut lines = Vec::new();
        for _ in 0..count {
            let message = messages.next().await.expect("message").expect("message");
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
        }
        (lines, count as usize)
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
