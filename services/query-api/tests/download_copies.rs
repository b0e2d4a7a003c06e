//! Downloads that lie (issue 22), against the real SeaweedFS of `tools/dev-env` (Object Lock
//! buckets, so versioned): an archive download serves only bytes that hash to what the entry
//! sealed. When the primary's current version was replaced by a plain PUT (a new, unlocked
//! version with other bytes), the locked version the entry names serves instead; when the
//! primary holds no intact copy, the secondary does; when no copy is intact, the answer is an
//! error and never a 200 with a body, and an archive too large to check before the status line
//! is cut off mid-body instead of ending cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use rainlogs_bus::{Bus, CancellationToken};
use rainlogs_config::{Config, Secret};
use rainlogs_db::PgPool;
use rainlogs_integrity::{
    ArchiveRecord, ArchiveWriter, BucketPrefix, Chain, CollectionMethod, Dataset, EntryBody, Name,
    ObjectRef, Origin, Sampling, Window,
};
use rainlogs_runtime::{ObjectStore, ServiceContext};
use rainlogs_schemas::events::EntrySealed;
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_store::{Backend, FileRepairQueue, ObjectKey, PutOptions, Replicated, S3Store, Store};
use rainlogs_telemetry::{Health, Telemetry};
use rainlogs_testkit::{NatsServer, TestDatabase, free_port};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const ZONE: &str = "3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e";
const SERVED_FROM: &str = "x-rainlogs-served-from";

/// A fresh Object Lock bucket (versioned) on the dev SeaweedFS.
async fn bucket(purpose: &str) -> S3Store {
    rainlogs_testkit::s3::dev_bucket_with(purpose, true, |config| {
        config.part_size = 5 * 1024 * 1024;
    })
    .await
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&sha256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn uri_encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What someone with the bucket's write credentials can always do, Object Lock or not: a plain
/// PUT (SigV4, no `If-None-Match`, no retention) that makes a new current version of `key`.
/// Returns the new version id.
async fn plain_put(store: &S3Store, key: &str, body: Vec<u8>) -> String {
    let endpoint = rainlogs_testkit::s3::dev_s3_endpoint();
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let path = uri_encode(&format!("/{}/{key}", store.config().bucket));
    let now = time::OffsetDateTime::now_utc();
    let date = format!(
        "{:04}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    let stamp = format!(
        "{date}T{:02}{:02}{:02}Z",
        now.hour(),
        now.minute(),
        now.second()
    );
    let payload = hex::encode(sha256(&body));
    let signed_headers = "host;x-amz-content-sha256;x-amz-date";
    let canonical = format!(
        "PUT\n{path}\n\nhost:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{stamp}\n\n{signed_headers}\n{payload}"
    );
    let region = &store.config().region;
    let scope = format!("{date}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex::encode(sha256(canonical.as_bytes()))
    );
    let credentials = rainlogs_testkit::s3::dev_s3_writer();
    let mut signing = hmac(
        format!("AWS4{}", credentials.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [region.as_str(), "s3", "aws4_request"] {
        signing = hmac(&signing, part.as_bytes());
    }
    let signature = hex::encode(hmac(&signing, to_sign.as_bytes()));
    let response = reqwest::Client::new()
        .put(format!("http://{host}{path}"))
        .header("x-amz-date", &stamp)
        .header("x-amz-content-sha256", &payload)
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                credentials.access_key_id
            ),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let version = response
        .headers()
        .get("x-amz-version-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "plain PUT of {key}: {status} {text}");
    version.expect("a versioned bucket answers a PUT with its new version id")
}

/// Bytes that do not compress: stand-ins for a large archive.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// An archive as the archiver writes it: NDJSON records, compressed in frames.
struct Archive {
    records: Vec<Value>,
    content: Vec<u8>,
    stored: Vec<u8>,
}

fn archive(records: usize, tag: &str) -> Archive {
    let records: Vec<Value> = (0..records)
        .map(|i| json!({"ClientIP": format!("192.0.2.{}", i % 250), "RayID": format!("{tag}{i:06}"), "EdgeResponseStatus": 200}))
        .collect();
    let mut content = Vec::new();
    for record in &records {
        content.extend_from_slice(serde_json::to_string(record).unwrap().as_bytes());
        content.push(b'\n');
    }
    let mut writer = ArchiveWriter::new(Vec::new()).unwrap();
    std::io::Write::write_all(&mut writer, &content).unwrap();
    let (stored, _, _) = writer.finish().unwrap();
    Archive {
        records,
        content,
        stored,
    }
}

/// The same length, one byte changed: what bit rot or a careful forger leaves.
fn damaged(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let middle = out.len() / 2;
    out[middle] ^= 0x20;
    out
}

/// The query-api on real NATS and PostgreSQL, its store in Object Lock buckets of SeaweedFS
/// (one provider, or a primary and a secondary), and a writer of one zone's sealed log.
struct Lab {
    base: String,
    http: reqwest::Client,
    bus: Bus,
    pool: PgPool,
    telemetry: Telemetry,
    tenant: String,
    key: String,
    primary: S3Store,
    secondary: Option<S3Store>,
    chain: Chain,
    origin: Origin,
    windows: u64,
    shutdown: CancellationToken,
    _repairs: tempfile::TempDir,
    _db: TestDatabase,
    _nats: NatsServer,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// One answer of the download route.
struct Download {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Result<Vec<u8>, String>,
}

impl Download {
    fn served_from(&self) -> &str {
        self.headers
            .get(SERVED_FROM)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn bytes(&self) -> &[u8] {
        self.body.as_deref().expect("a complete body")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(self.bytes()).unwrap_or(Value::Null)
    }
}

impl Lab {
    async fn start(replicated: bool) -> Self {
        let (nats, db, primary, secondary) = tokio::join!(
            async { NatsServer::start() },
            TestDatabase::create(),
            bucket("dl-primary"),
            async {
                if replicated {
                    Some(bucket("dl-secondary").await)
                } else {
                    None
                }
            }
        );
        let bus = rainlogs_bus::connect(&nats.url).await.expect("nats");
        rainlogs_bus::provision(&bus, 1).await.expect("provision");
        let pool = rainlogs_db::connect(&db.url, Config::default().database.max_connections)
            .await
            .expect("pool");
        rainlogs_db::migrate(&pool).await.expect("migrate");
        let repairs = tempfile::tempdir().unwrap();
        let store = match &secondary {
            None => Store::Single(Backend::S3(primary.clone())),
            Some(secondary) => Store::from(Replicated::new(
                Backend::S3(primary.clone()),
                Backend::S3(secondary.clone()),
                Arc::new(FileRepairQueue::new(repairs.path().join("repair.jsonl"))),
            )),
        };
        let port = free_port();
        let mut config = Config::default();
        config.api.listen = ([127, 0, 0, 1], port).into();
        config.api.registration = Some(rainlogs_config::Registration::Open);
        config.service.shutdown_timeout = Duration::from_secs(1);
        config.secrets.api_key_digest_key = Some(Secret::new("11".repeat(32)));
        config.secrets.token_encryption_key = Some(Secret::new("22".repeat(32)));
        let config = Arc::new(config);
        let telemetry = rainlogs_telemetry::init(&config.telemetry).expect("telemetry");
        let shutdown = CancellationToken::new();
        let ctx = ServiceContext {
            config: config.clone(),
            bus: bus.clone(),
            db: pool.clone(),
            store: ObjectStore {
                store,
                prefix: rainlogs_integrity::BucketPrefix::default(),
            },
            health: Health::default(),
            telemetry: telemetry.clone(),
            shutdown: shutdown.clone(),
        };
        let options = rainlogs_query_api::ApiOptions {
            ip_rate: rainlogs_query_api::Rate {
                per_second: 10_000.0,
                burst: 10_000,
            },
            tenant_rate: rainlogs_query_api::Rate {
                per_second: 10_000.0,
                burst: 10_000,
            },
            ..Default::default()
        };
        let server = tokio::spawn(rainlogs_query_api::run_with(ctx, options));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(tokio::time::Instant::now() < deadline, "never listened");
            assert!(
                !server.is_finished(),
                "query-api stopped: {:?}",
                server.await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let registered: Value = {
            let response = http
                .post(format!("{base}/customers"))
                .json(&json!({"name": "Acme GmbH", "email": "copies@acme.example",
                              "password": "correct horse battery staple"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
            response.json().await.unwrap()
        };
        let tenant = registered["customer"]["id"].as_str().unwrap().to_owned();
        let key = registered["api_key"]["key"].as_str().unwrap().to_owned();
        let origin = Origin::new(&Name::new(&tenant).unwrap(), &Name::new(ZONE).unwrap());
        Self {
            base,
            http,
            bus,
            pool,
            telemetry,
            tenant,
            key,
            primary,
            secondary,
            chain: Chain::new(origin.clone()),
            origin,
            windows: 0,
            shutdown,
            _repairs: repairs,
            _db: db,
            _nats: nats,
        }
    }

    fn next_window(&mut self) -> Window {
        let base_ns: u64 = 1_768_485_600_000_000_000;
        let n = self.windows;
        self.windows += 1;
        Window::new(
            base_ns + n * 60_000_000_000,
            base_ns + (n + 1) * 60_000_000_000,
        )
        .unwrap()
    }

    fn object_key(&self, window: &Window, content: &[u8]) -> String {
        BucketPrefix::new("")
            .unwrap()
            .archive_key(
                &self.origin,
                &Dataset::new("http_requests").unwrap(),
                window,
                &rainlogs_integrity::Sha256Hash::digest(content),
            )
            .unwrap()
    }

    /// Stores `bytes` under `key` on `provider` as the archiver does (create-only, checksum,
    /// COMPLIANCE retention); returns the version id.
    async fn put_locked(provider: &S3Store, key: &str, bytes: &[u8]) -> String {
        let options = PutOptions {
            sha256: None,
            retain_until: Some(time::OffsetDateTime::now_utc() + time::Duration::minutes(2)),
            content_type: Some("application/zstd".into()),
        };
        provider
            .put_bytes(
                &ObjectKey::new(key).unwrap(),
                bytes.to_vec().into(),
                &options,
            )
            .await
            .unwrap()
            .version_id
            .expect("an Object Lock bucket is versioned")
    }

    /// Seals the archive entry of `window` for `sealed` (the bytes the archiver wrote, whose hash
    /// the entry records) at `version`, as the sealer does; waits until the API shows it.
    /// Returns the job id.
    async fn seal(
        &mut self,
        window: Window,
        key: &str,
        sealed: &[u8],
        content: &[u8],
        records: u64,
        version: &str,
    ) -> String {
        let body = EntryBody::Archive(ArchiveRecord {
            dataset: Dataset::new("http_requests").unwrap(),
            window,
            method: CollectionMethod::Logpull,
            sampling: Sampling::UNSAMPLED,
            object: ObjectRef {
                key: key.to_owned(),
                version: version.to_owned(),
            },
            stored_size: sealed.len() as u64,
            stored_sha256: rainlogs_integrity::Sha256Hash::digest(sealed),
            content_sha256: rainlogs_integrity::Sha256Hash::digest(content),
            record_count: records,
            retain_until_ns: window.end_ns() + 395 * 86_400 * 1_000_000_000,
        });
        let entry = self
            .chain
            .seal(body, window.end_ns() + 5_000_000_000)
            .unwrap();
        let event = Event::EntrySealed(EntrySealed {
            index: entry.entry.index,
            entry: entry.bytes.clone(),
            chain_hash: entry.chain_hash.0.to_vec(),
        });
        let envelope = Envelope::new(
            &self.tenant,
            Some(ZONE.to_owned()),
            Actor::service("sealer"),
            event,
        );
        let sequence = self
            .bus
            .publish(&subjects::chain(ZONE), &envelope)
            .await
            .unwrap()
            .sequence;
        assert!(
            rainlogs_db::wait_until_applied(&self.pool, "chain", sequence, Duration::from_secs(20))
                .await
                .unwrap(),
            "chain projection never caught up"
        );
        entry.id.to_hex()
    }

    /// An archive stored intact on every provider and sealed; returns (job id, key, version).
    async fn stored(&mut self, archive: &Archive) -> (String, String, String) {
        let window = self.next_window();
        let key = self.object_key(&window, &archive.content);
        let version = Self::put_locked(&self.primary, &key, &archive.stored).await;
        if let Some(secondary) = &self.secondary {
            Self::put_locked(secondary, &key, &archive.stored).await;
        }
        let job = self
            .seal(
                window,
                &key,
                &archive.stored,
                &archive.content,
                archive.records.len() as u64,
                &version,
            )
            .await;
        (job, key, version)
    }

    async fn download(&self, job: &str, form: &str) -> Download {
        let response = self
            .http
            .get(format!(
                "{}/api/v1/logs/jobs/{job}/download?format={form}",
                self.base
            ))
            .bearer_auth(&self.key)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            // Cut before the head went out.
            Err(error) => {
                return Download {
                    status: StatusCode::from_u16(599).unwrap(),
                    headers: Default::default(),
                    body: Err(error.to_string()),
                };
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| format!("{e:?}"));
        Download {
            status,
            headers,
            body,
        }
    }

    fn metrics(&self) -> String {
        self.telemetry.render()
    }
}

fn parse_records(ndjson: &[u8]) -> Vec<Value> {
    ndjson
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect()
}

/// Asserts a 200 with exactly `bytes` (NDJSON: also record for record), served from `copy`.
fn assert_served(download: &Download, bytes: &[u8], copy: &str, what: &str) {
    assert_eq!(
        download.status,
        StatusCode::OK,
        "{what}: {:?}",
        download.body
    );
    assert_eq!(download.served_from(), copy, "{what}");
    let body = download.bytes();
    assert!(body == bytes, "{what}: the body is not the sealed bytes");
}

/// Asserts the answer for an archive without an intact copy: a 500 `ARCHIVE_DAMAGED` error body
/// naming it and what an operator should run, never a 200.
fn assert_no_intact_copy(download: &Download, key: &str, what: &str) {
    assert_eq!(
        download.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{what}: {:?}",
        download.body.as_ref().map(|b| String::from_utf8_lossy(b))
    );
    assert!(download.served_from().is_empty(), "{what}");
    let body = download.json();
    assert_eq!(body["code"], 500, "{what}: {body}");
    assert_eq!(body["error_code"], "ARCHIVE_DAMAGED", "{what}: {body}");
    assert!(
        body["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{what}: {body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(key) && message.contains("no intact copy"),
        "{what}: {message}"
    );
    assert!(
        message.contains("rainlogs-verify") && message.contains("rainlogs store compare"),
        "{what}: the message tells the reader what to do: {message}"
    );
}

#[tokio::test]
async fn an_intact_archive_is_served_from_the_primary_as_it_is() {
    let mut lab = Lab::start(false).await;
    let archive = archive(400, "intact");
    let (job, _, _) = lab.stored(&archive).await;

    let raw = lab.download(&job, "zst").await;
    assert_served(&raw, &archive.stored, "primary-current", "zst");
    assert_eq!(
        raw.headers["content-length"].to_str().unwrap(),
        archive.stored.len().to_string(),
        "checked whole first, so sent with its length"
    );
    assert_eq!(
        raw.headers["x-object-sha256"].to_str().unwrap(),
        hex::encode(sha256(&archive.stored))
    );
    let ndjson = lab.download(&job, "ndjson").await;
    assert_served(&ndjson, &archive.content, "primary-current", "ndjson");
    assert_eq!(parse_records(ndjson.bytes()), archive.records);
    assert!(
        !lab.metrics()
            .contains("rainlogs_archive_download_fallbacks"),
        "no fallback was counted"
    );
}

#[tokio::test]
async fn a_replaced_current_version_falls_back_to_the_sealed_version() {
    let mut lab = Lab::start(false).await;
    let archive = archive(400, "replaced");
    let (job, key, sealed_version) = lab.stored(&archive).await;
    // Other bytes of a valid archive (so nothing but the hash can tell), and plain garbage.
    let other = self::archive(400, "forged");
    let new_version = plain_put(&lab.primary, &key, other.stored.clone()).await;
    assert_ne!(new_version, sealed_version);
    let current = lab
        .primary
        .get_bytes(&ObjectKey::new(key.as_str()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        &current[..],
        &other.stored[..],
        "the current version is replaced"
    );

    let raw = lab.download(&job, "zst").await;
    assert_served(&raw, &archive.stored, "primary-sealed-version", "zst");
    let ndjson = lab.download(&job, "ndjson").await;
    assert_served(
        &ndjson,
        &archive.content,
        "primary-sealed-version",
        "ndjson",
    );
    assert_eq!(parse_records(ndjson.bytes()), archive.records);

    plain_put(&lab.primary, &key, b"not even zstd".to_vec()).await;
    let raw = lab.download(&job, "zst").await;
    assert_served(
        &raw,
        &archive.stored,
        "primary-sealed-version",
        "zst, garbage",
    );
    let ndjson = lab.download(&job, "ndjson").await;
    assert_served(
        &ndjson,
        &archive.content,
        "primary-sealed-version",
        "ndjson, garbage",
    );

    let metrics = lab.metrics();
    let counted = metrics
        .lines()
        .find(|line| {
            line.starts_with("rainlogs_archive_download_fallbacks")
                && line.contains("served_from=\"primary-sealed-version\"")
                && line.contains("form=\"ndjson\"")
        })
        .unwrap_or_else(|| panic!("fallbacks are counted:\n{metrics}"));
    assert!(counted.ends_with(" 2"), "{counted}");
}

#[tokio::test]
async fn with_every_copy_wrong_the_answer_is_an_error_not_a_200() {
    let mut lab = Lab::start(true).await;
    let archive = archive(400, "rotten");
    let window = lab.next_window();
    let key = lab.object_key(&window, &archive.content);
    // Every copy holds the same wrong bytes, the sealed version too (as if rotten at rest),
    // and the primary's current version was replaced as well.
    let wrong = damaged(&archive.stored);
    let version = Lab::put_locked(&lab.primary, &key, &wrong).await;
    Lab::put_locked(lab.secondary.as_ref().unwrap(), &key, &wrong).await;
    let job = lab
        .seal(
            window,
            &key,
            &archive.stored,
            &archive.content,
            400,
            &version,
        )
        .await;
    for form in ["zst", "ndjson"] {
        let download = lab.download(&job, form).await;
        assert_no_intact_copy(&download, &key, &format!("{form}, damaged everywhere"));
    }
    plain_put(&lab.primary, &key, b"other".to_vec()).await;
    for form in ["zst", "ndjson"] {
        let download = lab.download(&job, form).await;
        assert_no_intact_copy(&download, &key, &format!("{form}, replaced too"));
    }
    assert!(
        lab.metrics().lines().any(
            |line| line.starts_with("rainlogs_archive_download_failures")
                && line.contains("reason=\"no_intact_copy\"")
                && line.ends_with(" 4")
        ),
        "{}",
        lab.metrics()
    );
}

#[tokio::test]
async fn the_secondary_serves_when_the_primary_holds_no_intact_copy() {
    let mut lab = Lab::start(true).await;
    let archive = archive(400, "second");
    let window = lab.next_window();
    let key = lab.object_key(&window, &archive.content);
    // The primary's sealed version is damaged (so the current version is too), the secondary
    // holds the sealed bytes.
    let version = Lab::put_locked(&lab.primary, &key, &damaged(&archive.stored)).await;
    Lab::put_locked(lab.secondary.as_ref().unwrap(), &key, &archive.stored).await;
    let job = lab
        .seal(
            window,
            &key,
            &archive.stored,
            &archive.content,
            400,
            &version,
        )
        .await;
    let raw = lab.download(&job, "zst").await;
    assert_served(&raw, &archive.stored, "secondary", "zst");
    let ndjson = lab.download(&job, "ndjson").await;
    assert_served(&ndjson, &archive.content, "secondary", "ndjson");
    assert_eq!(parse_records(ndjson.bytes()), archive.records);

    // Replaced on the primary as well: the sealed version is still the damaged one.
    plain_put(&lab.primary, &key, archive.stored[1..].to_vec()).await;
    let raw = lab.download(&job, "zst").await;
    assert_served(&raw, &archive.stored, "secondary", "zst, replaced");

    // The sealed version is gone from the primary (a version id the provider does not hold,
    // as after a bucket without Object Lock lost it) and the current one replaced.
    let lost = self::archive(200, "lost");
    let window = lab.next_window();
    let key = lab.object_key(&window, &lost.content);
    Lab::put_locked(&lab.primary, &key, &lost.stored).await;
    Lab::put_locked(lab.secondary.as_ref().unwrap(), &key, &lost.stored).await;
    plain_put(&lab.primary, &key, damaged(&lost.stored)).await;
    let gone = "0000000000000000000000000000dead";
    let missing = lab
        .primary
        .get_version(&ObjectKey::new(key.as_str()).unwrap(), Some(gone))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, rainlogs_store::StoreError::NotFound { .. }),
        "{missing:?}"
    );
    let job = lab
        .seal(window, &key, &lost.stored, &lost.content, 200, gone)
        .await;
    let ndjson = lab.download(&job, "ndjson").await;
    assert_served(
        &ndjson,
        &lost.content,
        "secondary",
        "ndjson, sealed version gone",
    );

    // An intact replicated archive whose primary copy was replaced: the sealed version first.
    let intact = self::archive(300, "both");
    let (job, key, _) = lab.stored(&intact).await;
    plain_put(&lab.primary, &key, b"other".to_vec()).await;
    let raw = lab.download(&job, "zst").await;
    assert_served(
        &raw,
        &intact.stored,
        "primary-sealed-version",
        "zst, replicated",
    );
}

#[tokio::test]
async fn an_archive_too_large_to_check_first_is_cut_off_never_ended_cleanly() {
    let mut lab = Lab::start(false).await;
    // Larger than the API reads whole before answering (32 MiB): streamed and checked as it
    // goes. For `format=zst` the bytes need not be zstd.
    let size = 32 * 1024 * 1024 + 4096;
    let sealed = noise(size, 7);
    let content = b"{}\n".to_vec();

    // Replaced by a plain PUT: the response names another version, so the sealed version is
    // streamed instead, whole.
    let window = lab.next_window();
    let key = lab.object_key(&window, &sealed[..64]);
    let version = Lab::put_locked(&lab.primary, &key, &sealed).await;
    let job = lab.seal(window, &key, &sealed, &content, 1, &version).await;
    plain_put(&lab.primary, &key, damaged(&sealed)).await;
    let raw = lab.download(&job, "zst").await;
    assert_served(&raw, &sealed, "primary-sealed-version", "large, replaced");

    // The sealed version itself is wrong (same size): nothing before the status line can
    // tell, so the body is cut off, and the client sees an error rather than an end.
    let window = lab.next_window();
    let key = lab.object_key(&window, &sealed[64..128]);
    let version = Lab::put_locked(&lab.primary, &key, &damaged(&sealed)).await;
    let job = lab.seal(window, &key, &sealed, &content, 1, &version).await;
    let raw = lab.download(&job, "zst").await;
    assert!(
        raw.body.is_err(),
        "a body that does not match its sealed hash must not end cleanly: {} with {} bytes",
        raw.status,
        raw.body.as_ref().map_or(0, Vec::len)
    );
    assert!(
        lab.metrics().lines().any(
            |line| line.starts_with("rainlogs_archive_download_failures")
                && line.contains("reason=\"cut_off\"")
        ),
        "{}",
        lab.metrics()
    );
}
