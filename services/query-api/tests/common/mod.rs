//! A running query-api against real NATS, PostgreSQL, a local store and cf-sim, plus a small
//! writer of sealed logs so jobs, downloads and proofs have real data behind them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use rainlogs_bus::{Bus, CancellationToken};
use rainlogs_config::{Config, Secret};
use rainlogs_db::PgPool;
use rainlogs_integrity::{
    ArchiveRecord, ArchiveWriter, BucketPrefix, Chain, CollectionMethod, Dataset, EmptyRecord,
    EntryBody, GapReason, GapRecord, Name, NoteSigningKey, ObjectRef, Origin, Sampling,
    SealedEntry, TileWriter, Window, sign_checkpoint,
};
use rainlogs_runtime::{ObjectStore, ServiceContext};
use rainlogs_schemas::events::EntrySealed;
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_store::{Backend, FsStore, ObjectKey, PutOptions, Store};
use rainlogs_telemetry::Health;
use rainlogs_testkit::{NatsServer, TestDatabase, free_port};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const TEST_SIGNING_KEY: &str =
    "PRIVATE+KEY+rainlogs.test/sealer+6e0f8e34+AawcVNj/nAGF+9XKIbP0CLBeT+kg1yx3SeIY2GzrZj+h";
pub const TEST_VERIFIER_KEY: &str =
    "rainlogs.test/sealer+6e0f8e34+Ab1PUuw/U9QTk4YHISDIf3/6tQ3QUkJfM808ohbGgGft";
/// cf-sim's example scenario: an Enterprise zone and a token that can read every zone.
pub const ENTERPRISE_ZONE: &str = "3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e";
pub const PRO_ZONE: &str = "1d5fdc9e88c8a8c4518b068cd94331fe";
pub const BUSINESS_ZONE: &str = "2a1f0a9b7c3d4e5f60718293a4b5c6d7";
pub const FULL_TOKEN: &str = "cfut_full_access_token_0000000000000000";
pub const DISABLED_TOKEN: &str = "cfut_disabled_token_00000000000000000000";
pub const JWT_SECRET: &str = "6a7774207365637265742c2033322062797465732c20666f722074657374732e";

/// A pull window of `minutes` that started two hours ago: within what Cloudflare keeps.
pub fn recent_window(minutes: i64) -> Value {
    let start = time::OffsetDateTime::now_utc() - time::Duration::hours(2);
    let at = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    json!({"start": at(start), "end": at(start + time::Duration::minutes(minutes))})
}

pub struct Stack {
    pub base: String,
    pub http: reqwest::Client,
    pub bus: Bus,
    pub pool: PgPool,
    pub store: ObjectStore,
    pub config: Arc<Config>,
    pub sim: Option<cf_sim::RunningSim>,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<Result<(), rainlogs_runtime::ServiceError>>>,
    _store_dir: tempfile::TempDir,
    _db: TestDatabase,
    _nats: NatsServer,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Limits high enough that a test's own request volume never trips them.
pub fn relaxed() -> rainlogs_query_api::ApiOptions {
    rainlogs_query_api::ApiOptions {
        ip_rate: rainlogs_query_api::Rate {
            per_second: 10_000.0,
            burst: 10_000,
        },
        tenant_rate: rainlogs_query_api::Rate {
            per_second: 10_000.0,
            burst: 10_000,
        },
        ..Default::default()
    }
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(relaxed(), |_| {}).await
    }

    pub async fn start_with(
        options: rainlogs_query_api::ApiOptions,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let nats = NatsServer::start();
        let db = TestDatabase::create().await;
        let bus = rainlogs_bus::connect(&nats.url).await.expect("nats");
        rainlogs_bus::provision(&bus, 1).await.expect("provision");
        let pool = rainlogs_db::connect(&db.url, Config::default().database.max_connections)
            .await
            .expect("pool");
        rainlogs_db::migrate(&pool).await.expect("migrate");
        let sim = cf_sim::Simulator::start(cf_sim::Scenario::example(), Default::default())
            .await
            .expect("cf-sim");
        let store_dir = tempfile::tempdir().expect("store dir");
        let store = ObjectStore {
            store: Store::Single(Backend::Fs(
                FsStore::open(store_dir.path()).await.expect("fs store"),
            )),
            prefix: BucketPrefix::default(),
        };
        let port = free_port();
        let mut config = Config::default();
        config.api.listen = ([127, 0, 0, 1], port).into();
        config.api.registration = Some(rainlogs_config::Registration::Open);
        config.cloudflare.base_url = sim.base_url();
        config.service.shutdown_timeout = Duration::from_secs(1);
        config.secrets.api_key_digest_key = Some(Secret::new("11".repeat(32)));
        config.secrets.token_encryption_key = Some(Secret::new("22".repeat(32)));
        config.secrets.jwt_secret = Some(Secret::new(JWT_SECRET));
        config.secrets.signing_key = Some(Secret::new(TEST_SIGNING_KEY));
        configure(&mut config);
        let config = Arc::new(config);
        let telemetry = rainlogs_telemetry::init(&config.telemetry).expect("telemetry");
        let shutdown = CancellationToken::new();
        let ctx = ServiceContext {
            config: config.clone(),
            bus: bus.clone(),
            db: pool.clone(),
            store: store.clone(),
            health: Health::default(),
            telemetry,
            shutdown: shutdown.clone(),
        };
        let server = tokio::spawn(rainlogs_query_api::run_with(ctx, options));
        // The server runs on this test's runtime: wait without blocking it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "query-api never listened"
            );
            if server.is_finished() {
                panic!("query-api stopped: {:?}", server.await);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            bus,
            pool,
            store,
            config,
            sim: Some(sim),
            shutdown,
            server: Some(server),
            _store_dir: store_dir,
            _db: db,
            _nats: nats,
        }
    }

    /// Where the local store keeps its objects (a key is a relative path below it).
    pub fn store_root(&self) -> std::path::PathBuf {
        self._store_dir.path().to_owned()
    }

    /// A service context on this stack's NATS, database, store and configuration.
    pub fn context(&self) -> ServiceContext {
        ServiceContext {
            config: self.config.clone(),
            bus: self.bus.clone(),
            db: self.pool.clone(),
            store: self.store.clone(),
            health: Health::default(),
            telemetry: rainlogs_telemetry::init(&self.config.telemetry).expect("telemetry"),
            shutdown: self.shutdown.child_token(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request and returns status, headers and the JSON body (Null when not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.http.request(method, self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            json,
            bytes: bytes.to_vec(),
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.call(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    /// Registers a customer; returns (customer id, admin key).
    pub async fn register(&self, email: &str) -> (String, String) {
        let reply = self
            .call(
                Method::POST,
                "/customers",
                None,
                Some(json!({"name": "Acme GmbH", "email": email, "password": "correct horse battery staple"})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
        (
            reply.json["customer"]["id"].as_str().unwrap().to_owned(),
            reply.json["api_key"]["key"].as_str().unwrap().to_owned(),
        )
    }

    /// A key of `role` in the tenant of `admin_key`.
    pub async fn key(&self, admin_key: &str, role: &str) -> String {
        let reply = self
            .post(
                "/api/v1/api-keys",
                admin_key,
                json!({"name": format!("{role} key"), "role": role}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
        reply.json["key"].as_str().unwrap().to_owned()
    }

    /// Adds the Enterprise zone of cf-sim to the tenant of `key`.
    pub async fn add_zone(&self, key: &str, zone: &str) -> Reply {
        self.post(
            "/api/v1/zones",
            key,
            json!({"zone_id": zone, "cf_api_token": FULL_TOKEN}),
        )
        .await
    }

    /// Waits until the audit projection holds `at_least` records of `action` for `tenant`.
    pub async fn audit_count(&self, tenant: &str, action: &str, at_least: i64) -> i64 {
        self.audit_records(tenant, action, None, at_least).await
    }

    /// Waits until the audit projection holds `at_least` records of `action` with `outcome`.
    pub async fn audit_outcomes(
        &self,
        tenant: &str,
        action: &str,
        outcome: &str,
        at_least: i64,
    ) -> i64 {
        self.audit_records(tenant, action, Some(outcome), at_least)
            .await
    }

    async fn audit_records(
        &self,
        tenant: &str,
        action: &str,
        outcome: Option<&str>,
        at_least: i64,
    ) -> i64 {
        let mut count = 0;
        for _ in 0..250 {
            (count,) = sqlx::query_as(
                "SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = $2 \
                 AND ($3::TEXT IS NULL OR outcome = $3)",
            )
            .bind(tenant)
            .bind(action)
            .bind(outcome)
            .fetch_one(&self.pool)
            .await
            .unwrap();
            if count >= at_least {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        count
    }

    /// Seals a small log for `zone` of `tenant` the way the sealer does: archive objects in the
    /// store, entries on `rl.chain.<zone>`, tiles and a signed checkpoint in the bucket. Waits
    /// until the chain projection shows every entry.
    pub async fn seal_log(&self, tenant: &str, zone: &str, windows: &[WindowSpec]) -> SealedLog {
        let origin = Origin::new(&Name::new(tenant).unwrap(), &Name::new(zone).unwrap());
        let prefix = self.store.prefix.clone();
        let dataset = Dataset::new("http_requests").unwrap();
        let key = NoteSigningKey::parse(TEST_SIGNING_KEY).unwrap();
        let mut chain = Chain::new(origin.clone());
        let mut tiles = TileWriter::new();
        let mut sealed = Vec::new();
        let mut contents = Vec::new();
        let base_ns: u64 = 1_768_485_600_000_000_000;
        for (n, spec) in windows.iter().enumerate() {
            let n = n as u64;
            let window = Window::new(
                base_ns + n * 60_000_000_000,
                base_ns + (n + 1) * 60_000_000_000,
            )
            .unwrap();
            let body = match spec {
                WindowSpec::Archive(content) => {
                    let mut writer = ArchiveWriter::new(Vec::new()).unwrap();
                    std::io::Write::write_all(&mut writer, content).unwrap();
                    let (bytes, digest, _) = writer.finish().unwrap();
                    let object_key = prefix
                        .archive_key(&origin, &dataset, &window, &digest.content_sha256)
                        .unwrap();
                    self.store
                        .store
                        .put_bytes(
                            &ObjectKey::new(object_key.clone()).unwrap(),
                            bytes.clone().into(),
                            &PutOptions::default(),
                        )
                        .await
                        .unwrap();
                    contents.push((content.clone(), bytes));
                    EntryBody::Archive(ArchiveRecord {
                        dataset: dataset.clone(),
                        window,
                        method: CollectionMethod::Logpull,
                        sampling: Sampling::UNSAMPLED,
                        object: ObjectRef {
                            key: object_key,
                            version: String::new(),
                        },
                        stored_size: digest.stored_size,
                        stored_sha256: digest.stored_sha256,
                        content_sha256: digest.content_sha256,
                        record_count: digest.record_count,
                        retain_until_ns: window.end_ns() + 395 * 86_400 * 1_000_000_000,
                    })
                }
                WindowSpec::Empty => EntryBody::Empty(EmptyRecord {
                    dataset: dataset.clone(),
                    window,
                    method: CollectionMethod::Logpull,
                    sampling: Sampling::UNSAMPLED,
                }),
                WindowSpec::Gap => EntryBody::Gap(GapRecord {
                    dataset: dataset.clone(),
                    window,
                    method: CollectionMethod::Logpull,
                    reason: GapReason::SourceError,
                }),
            };
            let entry = chain.seal(body, window.end_ns() + 5_000_000_000).unwrap();
            tiles.append(&entry.bytes).unwrap();
            sealed.push(entry);
        }
        let tlog = prefix.tlog_prefix(&origin);
        for file in tiles.take_tiles().unwrap() {
            self.store
                .store
                .put_bytes(
                    &ObjectKey::new(format!("{tlog}{}", file.path())).unwrap(),
                    file.data.into(),
                    &PutOptions::default(),
                )
                .await
                .unwrap();
        }
        let checkpoint =
            rainlogs_integrity::Checkpoint::new(origin.clone(), tiles.size(), tiles.root());
        let note = sign_checkpoint(&checkpoint, &key).unwrap();
        self.store
            .store
            .put_bytes(
                &ObjectKey::new(prefix.checkpoint_key(&origin)).unwrap(),
                note.clone().into_bytes().into(),
                &PutOptions::default(),
            )
            .await
            .unwrap();
        let mut last = 0;
        for entry in &sealed {
            let event = Event::EntrySealed(EntrySealed {
                index: entry.entry.index,
                entry: entry.bytes.clone(),
                chain_hash: entry.chain_hash.0.to_vec(),
            });
            let envelope = Envelope::new(
                tenant,
                Some(zone.to_owned()),
                Actor::service("sealer"),
                event,
            );
            last = self
                .bus
                .publish(&subjects::chain(zone), &envelope)
                .await
                .unwrap()
                .sequence;
        }
        assert!(
            rainlogs_db::wait_until_applied(&self.pool, "chain", last, Duration::from_secs(20))
                .await
                .unwrap(),
            "chain projection never caught up"
        );
        SealedLog {
            entries: sealed,
            contents,
            note,
        }
    }
}

pub enum WindowSpec {
    Archive(Vec<u8>),
    Empty,
    Gap,
}

pub struct SealedLog {
    pub entries: Vec<SealedEntry>,
    /// (content, stored bytes) of each archive, in order.
    pub contents: Vec<(Vec<u8>, Vec<u8>)>,
    pub note: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
    pub bytes: Vec<u8>,
}

impl Reply {
    /// Asserts the common error shape and returns its `error_code`.
    pub fn error_code(&self) -> String {
        let body = &self.json;
        assert_eq!(
            body["code"].as_u64(),
            Some(u64::from(self.status.as_u16())),
            "error body {body} for {}",
            self.status
        );
        assert!(body["message"].is_string(), "{body}");
        let request_id = body["request_id"].as_str().expect("request_id");
        assert_eq!(
            self.headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok()),
            Some(request_id),
            "the body's request id is the header's"
        );
        body["error_code"].as_str().expect("error_code").to_owned()
    }
}
