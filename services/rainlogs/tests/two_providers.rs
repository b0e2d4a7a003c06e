//! Two storage providers for real: two separate SeaweedFS servers with their own endpoints,
//! credentials and key prefixes, configured as `store` and `store.secondary`. Each is killed in
//! turn while objects are written; writes go on; `rainlogs store compare` shows what each
//! lacks; a running process repairs what it queued on its own and says `degraded` (not "not
//! ready") while one provider is away; `rainlogs store repair` fills in the rest; afterwards both
//! buckets hold every object, byte for byte, under their own prefix.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rainlogs_integrity::{BucketPrefix, Name, NoteVerifierKey, Origin, open_checkpoint};
use rainlogs_store::{
    BucketOptions, ObjectKey, PutOptions, S3Config, S3Credentials, S3Store, Store,
};
use rainlogs_testkit::{
    NatsServer, SeaweedServer, TestDatabase, flag_value, free_port, wait_for, workspace_binary,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

const PRIMARY_PREFIX: &str = "rainlogs";
const SECONDARY_PREFIX: &str = "replica/eu-2";

fn s3(server: &SeaweedServer, bucket: &str) -> S3Store {
    let mut config = S3Config::new(bucket);
    config.endpoint = Some(server.endpoint.clone());
    config.path_style = true;
    config.connect_timeout = Duration::from_secs(2);
    config.credentials = Some(S3Credentials {
        access_key_id: server.access_key.clone(),
        secret_access_key: server.secret_key.clone(),
        session_token: None,
    });
    S3Store::new(config).expect("s3 store")
}

async fn bucket_with_object_lock(server: &SeaweedServer, bucket: &str) {
    s3(server, bucket)
        .create_bucket(BucketOptions {
            object_lock: true,
            default_retention: None,
        })
        .await
        .expect("bucket");
}

/// `store.*` and `store.secondary.*` as environment variables (the nested form).
fn store_env(
    primary: &SeaweedServer,
    secondary: &SeaweedServer,
    data: &Path,
) -> Vec<(String, String)> {
    [
        (
            "RAINLOGS__STORE__URL",
            format!("s3://first/{PRIMARY_PREFIX}"),
        ),
        ("RAINLOGS__STORE__ENDPOINT", primary.endpoint.clone()),
        ("RAINLOGS__STORE__ACCESS_KEY_ID", primary.access_key.clone()),
        (
            "RAINLOGS__STORE__SECRET_ACCESS_KEY",
            primary.secret_key.clone(),
        ),
        (
            "RAINLOGS__STORE__SECONDARY__URL",
            format!("s3://second/{SECONDARY_PREFIX}"),
        ),
        (
            "RAINLOGS__STORE__SECONDARY__ENDPOINT",
            secondary.endpoint.clone(),
        ),
        ("RAINLOGS__STORE__SECONDARY__REGION", "eu-west-2".into()),
        (
            "RAINLOGS__STORE__SECONDARY__ACCESS_KEY_ID",
            secondary.access_key.clone(),
        ),
        (
            "RAINLOGS__STORE__SECONDARY__SECRET_ACCESS_KEY",
            secondary.secret_key.clone(),
        ),
        ("RAINLOGS__SERVICE__DATA_DIR", data.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn rainlogs(env: &[(String, String)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rainlogs"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run rainlogs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn object(n: u32) -> (ObjectKey, Bytes) {
    let key =
        ObjectKey::new(format!("{PRIMARY_PREFIX}/v1/acme/zone/archive/{n:04}.zst")).expect("key");
    (
        key,
        Bytes::from(format!("archive {n}: ").repeat(200 + n as usize)),
    )
}

async fn write(store: &Store, range: std::ops::Range<u32>) {
    for n in range {
        let (key, bytes) = object(n);
        let options = PutOptions {
            retain_until: Some(OffsetDateTime::now_utc() + time::Duration::days(1)),
            ..PutOptions::default()
        };
        store
            .put_bytes(&key, bytes, &options)
            .await
            .unwrap_or_else(|e| panic!("write {n} with one provider away: {e}"));
    }
}

/// Every object is on both providers, byte for byte, each under its own prefix.
async fn assert_both_whole(primary: &SeaweedServer, secondary: &SeaweedServer, count: u32) {
    let (first, second) = (s3(primary, "first"), s3(secondary, "second"));
    for n in 0..count {
        let (key, bytes) = object(n);
        let replica_key =
            ObjectKey::new(key.as_str().replacen(PRIMARY_PREFIX, SECONDARY_PREFIX, 1))
                .expect("key");
        assert_eq!(first.get_bytes(&key).await.expect("on the primary"), bytes);
        assert_eq!(
            second
                .get_bytes(&replica_key)
                .await
                .expect("on the secondary"),
            bytes
        );
    }
}

struct Running {
    child: Child,
    telemetry: u16,
}

/// Ready but degraded, `/ready` naming `role` as the provider away, and its metric at 0.
fn degraded_without(role: &str, status: u16, body: &serde_json::Value, metrics: &str) -> bool {
    let up = format!("rainlogs_store_provider_up{{role=\"{role}\"");
    status == 200
        && body["status"] == "degraded"
        && body["checks"]["store"]
            .as_str()
            .is_some_and(|c| c.starts_with(&format!("degraded: {role}")))
        && metrics
            .lines()
            .any(|l| l.starts_with(&up) && l.ends_with(" 0"))
}

impl Running {
    async fn ready(&self) -> (u16, serde_json::Value) {
        let url = format!("http://127.0.0.1:{}/ready", self.telemetry);
        let response = reqwest::get(&url).await.expect("/ready");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json"))
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("http://127.0.0.1:{}/metrics", self.telemetry))
            .await
            .expect("/metrics")
            .text()
            .await
            .expect("text")
    }

    async fn wait_until(&self, what: &str, ok: impl Fn(u16, &serde_json::Value, &str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(resp) =
                reqwest::get(format!("http://127.0.0.1:{}/ready", self.telemetry)).await
            {
                let status = resp.status().as_u16();
                if let Ok(body) = resp.json::<serde_json::Value>().await {
                    let metrics = self.metrics().await;
                    if ok(status, &body, &metrics) {
                        return;
                    }
                    assert!(Instant::now() < deadline, "{what}: {status} {body}");
                }
            }
            assert!(Instant::now() < deadline, "{what}: no /ready");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Running {
    /// SIGTERM, and a clean exit.
    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "clean exit after SIGTERM: {status}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn two_separate_providers_survive_each_outage_and_end_up_whole() {
    let mut primary = SeaweedServer::start("first-key", "first-secret-0123456789");
    let mut secondary = SeaweedServer::start("second-key", "second-secret-9876543210");
    bucket_with_object_lock(&primary, "first").await;
    bucket_with_object_lock(&secondary, "second").await;
    let dir = tempfile::tempdir().expect("dir");
    let env = store_env(&primary, &secondary, dir.path());

    // The configuration names two providers; every service accepts it.
    let check = rainlogs(&env, &["config", "check", "--service", "archiver"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // What the services open from that configuration: writes go to both.
    let mut config = rainlogs_config::Config::default();
    config.store.url = format!("s3://first/{PRIMARY_PREFIX}");
    config.store.endpoint = Some(primary.endpoint.clone());
    config.store.access_key_id = Some(primary.access_key.clone());
    config.store.secret_access_key = Some(rainlogs_config::Secret::new(primary.secret_key.clone()));
    config.store.secondary = Some(Box::new(rainlogs_config::StoreSettings {
        url: format!("s3://second/{SECONDARY_PREFIX}"),
        endpoint: Some(secondary.endpoint.clone()),
        region: "eu-west-2".into(),
        access_key_id: Some(secondary.access_key.clone()),
        secret_access_key: Some(rainlogs_config::Secret::new(secondary.secret_key.clone())),
        ..rainlogs_config::StoreSettings::default()
    }));
    config.service.data_dir = dir.path().to_owned();
    let store = rainlogs_runtime::open_store(&config)
        .await
        .expect("open")
        .store;
    write(&store, 0..4).await;

    // The latest checkpoint, the one key that is ever replaced.
    let checkpoint =
        ObjectKey::new(format!("{PRIMARY_PREFIX}/v1/acme/zone/tlog/checkpoint")).expect("key");
    let replica_checkpoint =
        ObjectKey::new(format!("{SECONDARY_PREFIX}/v1/acme/zone/tlog/checkpoint")).expect("key");
    let replace = |version: &'static str| {
        let store = &store;
        let checkpoint = &checkpoint;
        async move {
            store
                .replace_bytes(checkpoint, Bytes::from(version), &PutOptions::default())
                .await
                .unwrap_or_else(|e| panic!("replacing with {version}: {e}"));
        }
    };
    replace("checkpoint 1").await;

    // The secondary goes away: writes go on, and compare names what it lacks.
    secondary.kill();
    write(&store, 4..8).await;
    // Replacing the checkpoint during the outage keeps it on the primary (it used to be deleted
    // on both and put on neither).
    replace("checkpoint 2, after more entries").await;
    assert_eq!(
        s3(&primary, "first")
            .get_bytes(&checkpoint)
            .await
            .expect("on the primary"),
        Bytes::from("checkpoint 2, after more entries")
    );
    secondary.restart();
    // The secondary keeps its previous checkpoint, consistent with what it holds, until the
    // next replacement; that is not something to repair.
    assert_eq!(
        s3(&secondary, "second")
            .get_bytes(&replica_checkpoint)
            .await
            .expect("on the secondary"),
        Bytes::from("checkpoint 1")
    );
    let compare = rainlogs(&env, &["store", "compare"]);
    assert_eq!(compare.status.code(), Some(1), "{}", stdout(&compare));
    assert_eq!(
        stdout(&compare).matches("secondary lacks\t").count(),
        4,
        "{}",
        stdout(&compare)
    );
    assert!(
        !stdout(&compare).contains("primary lacks\t"),
        "{}",
        stdout(&compare)
    );
    assert!(
        !stdout(&compare).contains("sizes differ\t"),
        "the replaced checkpoint is not a difference: {}",
        stdout(&compare)
    );

    // A running process drains the queue its own writes left (same data directory) at once,
    // and reports the backlog.
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let telemetry = free_port();
    let log = std::fs::File::create(dir.path().join("run.log")).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_rainlogs"))
        .args(["run", "--dev", "--service", "archiver"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RAINLOGS__NATS__URL", &nats.url)
        .env("RAINLOGS__DATABASE__URL", &db.url)
        .env(
            "RAINLOGS__TELEMETRY__LISTEN",
            format!("127.0.0.1:{telemetry}"),
        )
        .env(
            "RAINLOGS__API__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn");
    let running = Running { child, telemetry };
    running
        .wait_until(
            "the queued objects are repaired",
            |status, body, metrics| {
                status == 200
                    && body["status"] == "ready"
                    && body["info"]["store"]["repair_backlog"] == 0
                    && metrics.contains("rainlogs_store_repaired_total")
                    && metrics.lines().any(|l| {
                        l.starts_with("rainlogs_store_repair_backlog") && l.ends_with(" 0")
                    })
            },
        )
        .await;
    let compare = rainlogs(&env, &["store", "compare"]);
    assert!(compare.status.success(), "{}", stdout(&compare));

    // The primary goes away: still ready, but degraded, and the metric says which provider.
    primary.kill();
    running
        .wait_until(
            "degraded while the primary is away",
            |status, body, metrics| degraded_without("primary", status, body, metrics),
        )
        .await;
    // Written by another process (its own repair queue): the running one does not know of them.
    config.service.data_dir = dir.path().join("elsewhere");
    std::fs::create_dir_all(&config.service.data_dir).expect("data dir");
    let elsewhere = rainlogs_runtime::open_store(&config)
        .await
        .expect("open")
        .store;
    write(&elsewhere, 8..12).await;
    // Reads fall back to the secondary meanwhile.
    let (key, bytes) = object(9);
    assert_eq!(
        store
            .get_bytes(&key)
            .await
            .expect("read from the secondary"),
        bytes
    );
    primary.restart();
    running
        .wait_until("ready again", |status, body, _| {
            status == 200 && body["status"] == "ready"
        })
        .await;
    let (status, _) = running.ready().await;
    assert_eq!(status, 200);
    drop(running);

    // What no running process repairs (the other process' queue), the command finds from both
    // listings; then both are whole.
    let dry = rainlogs(&env, &["store", "repair", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(1), "{}", stdout(&dry));
    assert_eq!(
        stdout(&dry).matches("would repair\t").count(),
        4,
        "{}",
        stdout(&dry)
    );
    let repair = rainlogs(&env, &["store", "repair"]);
    assert!(repair.status.success(), "{}", stdout(&repair));
    assert!(stdout(&repair).contains("copied 4,"), "{}", stdout(&repair));
    let compare = rainlogs(&env, &["store", "compare"]);
    assert!(compare.status.success(), "{}", stdout(&compare));
    assert!(!stdout(&repair).contains("INCIDENT"), "{}", stdout(&repair));
    assert_both_whole(&primary, &secondary, 12).await;
    replace("checkpoint 3").await;
    assert_eq!(
        s3(&secondary, "second")
            .get_bytes(&replica_checkpoint)
            .await
            .expect("on the secondary"),
        Bytes::from("checkpoint 3")
    );
}

/// The size of the zone's latest signed checkpoint in one bucket (`None`: none yet, or the
/// provider does not answer).
async fn checkpoint_size(
    server: &SeaweedServer,
    bucket: &str,
    prefix: &str,
    origin: &Origin,
    key: &NoteVerifierKey,
) -> Option<u64> {
    let at = BucketPrefix::new(prefix)
        .expect("prefix")
        .checkpoint_key(origin);
    let note = s3(server, bucket)
        .get_bytes(&ObjectKey::new(at).expect("key"))
        .await
        .ok()?;
    open_checkpoint(&note, origin, std::slice::from_ref(key))
        .ok()
        .map(|opened| opened.checkpoint.size)
}

/// `rainlogs-verify --deep --json` on one bucket, with that provider's credentials.
fn verify(
    server: &SeaweedServer,
    store_url: &str,
    copy: &[&str],
    tenant: &str,
    zone: &str,
    key: &str,
) -> (i32, serde_json::Value) {
    let output = Command::new(workspace_binary("rainlogs-verify"))
        .args(["--store", store_url, "--endpoint", &server.endpoint])
        .args(["--path-style", "--tenant", tenant, "--zone", zone])
        .args(["--trusted-key", key, "--deep", "--json"])
        .args(copy)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", &server.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &server.secret_key)
        .output()
        .expect("run rainlogs-verify");
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "rainlogs-verify printed no JSON ({e}): {}{}",
            stdout(&output),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().expect("exit code"), report)
}

/// The API as the demo tenant uses it.
struct Api {
    client: reqwest::Client,
    root: String,
    key: String,
}

impl Api {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.root))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Every sealed archive of the zone: (job id, stored SHA-256).
    async fn archives(&self, zone: &str) -> Vec<(String, String)> {
        let mut archives = Vec::new();
        let mut cursor = String::new();
        loop {
            let page: serde_json::Value = self
                .get(&format!(
                    "/api/v1/zones/{zone}/logs?kind=archive&limit=1000{cursor}"
                ))
                .await
                .json()
                .await
                .expect("job page");
            for job in page["jobs"].as_array().expect("jobs") {
                archives.push((
                    job["job_id"].as_str().expect("job id").to_owned(),
                    job["stored_sha256"].as_str().expect("sha256").to_owned(),
                ));
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return archives,
            }
        }
    }

    /// Downloads an archive as stored (`.zst`): never a 200 with other bytes than the sealed ones.
    /// Returns which copy served it.
    async fn download_intact(&self, job: &str, sealed_sha256: &str) -> String {
        let response = self
            .get(&format!("/api/v1/logs/jobs/{job}/download?format=zst"))
            .await;
        let status = response.status();
        let served_from = response
            .headers()
            .get("x-rainlogs-served-from")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.bytes().await.expect("download body");
        assert_eq!(
            status,
            200,
            "download of {job}: {:?}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(
            hex::encode(Sha256::digest(&body)),
            sealed_sha256,
            "download of {job} served by {served_from}"
        );
        served_from
    }
}

/// The whole pipeline on two separate providers: `rainlogs run --demo` (the Cloudflare simulator,
/// collector, archiver, sealer, API and reaper in one process) with `store` and
/// `store.secondary` on two SeaweedFS servers. Each is killed in turn while windows are
/// collected and sealed: the process stays ready but degraded and says which provider is away,
/// sealing goes on into the other bucket, downloads are served from the surviving copy, and
/// what one provider missed is repaired once it is back. Afterwards `store compare` finds both
/// buckets whole, every archive downloads intact, and `rainlogs-verify` passes on each bucket on
/// its own: the primary as the sealing copy, the secondary as a replica under its own prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_on_two_providers_survives_each_outage_and_each_bucket_verifies_alone() {
    let began = Instant::now();
    let phase = |what: &str| eprintln!("[{:5.1} s] {what}", began.elapsed().as_secs_f64());
    let mut primary = SeaweedServer::start("first-key", "first-secret-0123456789");
    let mut secondary = SeaweedServer::start("second-key", "second-secret-9876543210");
    bucket_with_object_lock(&primary, "first").await;
    bucket_with_object_lock(&secondary, "second").await;
    let dir = tempfile::tempdir().expect("dir");
    let env = store_env(&primary, &secondary, &dir.path().join("data"));
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let (telemetry, api_port) = (free_port(), free_port());
    let log = std::fs::File::create(dir.path().join("run.log")).expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rainlogs"))
        .args(["run", "--demo"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RAINLOGS__NATS__URL", &nats.url)
        .env("RAINLOGS__DATABASE__URL", &db.url)
        .env(
            "RAINLOGS__TELEMETRY__LISTEN",
            format!("127.0.0.1:{telemetry}"),
        )
        .env("RAINLOGS__API__LISTEN", format!("127.0.0.1:{api_port}"))
        // Short windows, so that each outage lasts a few of them.
        .env("RAINLOGS__COLLECTOR__WINDOW", "20s")
        .env("RAINLOGS__SERVICE__SHUTDOWN_TIMEOUT", "20s")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn");
    let printed = BufReader::new(child.stdout.take().expect("stdout"));
    let mut running = Running { child, telemetry };
    let (key_line, command) = tokio::task::spawn_blocking(move || {
        let mut key = None;
        for line in printed.lines().map_while(Result::ok) {
            if let Some(k) = line.trim().strip_prefix("API key:") {
                key = Some(k.trim().to_owned());
            }
            if line.contains("rainlogs-verify --") {
                return (key.expect("API key printed before the command"), line);
            }
        }
        panic!("the demo printed no verify command")
    })
    .await
    .expect("demo output");
    let api = Api {
        client: reqwest::Client::new(),
        root: format!("http://127.0.0.1:{api_port}"),
        key: key_line,
    };
    let tenant = flag_value(&command, "--tenant");
    let zone = flag_value(&command, "--zone");
    let trusted = flag_value(&command, "--trusted-key");
    let verifier = NoteVerifierKey::parse(&trusted).expect("verifier key");
    let origin = Origin::new(
        &Name::new(&tenant).expect("tenant"),
        &Name::new(&zone).expect("zone"),
    );
    // The zone's signed size in the primary's bucket (`true`) or the secondary's.
    let signed = async |server: &SeaweedServer, in_primary: bool| {
        let (bucket, prefix) = if in_primary {
            ("first", PRIMARY_PREFIX)
        } else {
            ("second", SECONDARY_PREFIX)
        };
        checkpoint_size(server, bucket, prefix, &origin, &verifier).await
    };
    wait_for(
        "the first windows sealed on both providers",
        Duration::from_secs(240),
        async || {
            signed(&primary, true).await >= Some(3) && signed(&secondary, false).await >= Some(3)
        },
    )
    .await;
    phase("demo running, the Logpull zone sealed on both providers");

    // The secondary goes away while windows are collected: sealing goes on into the primary.
    secondary.kill();
    running
        .wait_until(
            "degraded while the secondary is away",
            |status, body, metrics| degraded_without("secondary", status, body, metrics),
        )
        .await;
    let before = signed(&primary, true).await.expect("checkpoint");
    wait_for(
        "windows sealed while the secondary is away",
        Duration::from_secs(120),
        async || signed(&primary, true).await >= Some(before + 3),
    )
    .await;
    secondary.restart();
    running
        .wait_until("the secondary repaired", |status, body, _| {
            status == 200
                && body["status"] == "ready"
                && body["info"]["store"]["repair_backlog"] == 0
        })
        .await;
    phase("secondary outage over, its backlog repaired");

    // The primary goes away: sealing goes on into the secondary, downloads come from it.
    primary.kill();
    running
        .wait_until(
            "degraded while the primary is away",
            |status, body, metrics| degraded_without("primary", status, body, metrics),
        )
        .await;
    let before = signed(&secondary, false).await.expect("checkpoint");
    wait_for(
        "windows sealed while the primary is away",
        Duration::from_secs(120),
        async || signed(&secondary, false).await >= Some(before + 3),
    )
    .await;
    let archives = api.archives(&zone).await;
    let (job, sha256) = archives.first().expect("archives");
    assert_eq!(api.download_intact(job, sha256).await, "secondary");
    primary.restart();
    running
        .wait_until("the primary repaired", |status, body, metrics| {
            status == 200
                && body["status"] == "ready"
                && body["info"]["store"]["repair_backlog"] == 0
                && metrics.contains("rainlogs_store_repaired_total")
        })
        .await;
    let sealed_in_outage = signed(&secondary, false).await.expect("checkpoint");
    wait_for(
        "windows sealed on both providers again",
        Duration::from_secs(120),
        async || {
            signed(&primary, true).await >= Some(sealed_in_outage + 2)
                && signed(&secondary, false).await >= Some(sealed_in_outage + 2)
        },
    )
    .await;
    phase("primary outage over, its backlog repaired, sealing on both");

    // Every archive downloads intact, now from the primary again.
    let archives = api.archives(&zone).await;
    assert!(archives.len() >= 9, "{} archives", archives.len());
    for (job, sha256) in &archives {
        assert_eq!(api.download_intact(job, sha256).await, "primary-current");
    }
    running.terminate();
    phase("stopped");

    // Both buckets hold the same keys (repairing what the stopped process left, if anything).
    let compare = rainlogs(&env, &["store", "compare"]);
    if !compare.status.success() {
        let repair = rainlogs(&env, &["store", "repair"]);
        assert!(repair.status.success(), "{}", stdout(&repair));
        assert!(!stdout(&repair).contains("INCIDENT"), "{}", stdout(&repair));
    }
    let compare = rainlogs(&env, &["store", "compare"]);
    assert!(compare.status.success(), "{}", stdout(&compare));

    // Each bucket verifies on its own, to the same signed size.
    let size = signed(&primary, true).await.expect("checkpoint");
    for (server, store_url, copy) in [
        (&primary, format!("s3://first/{PRIMARY_PREFIX}"), &[][..]),
        (
            &secondary,
            format!("s3://second/{SECONDARY_PREFIX}"),
            &["--replica", "--sealing-prefix", PRIMARY_PREFIX][..],
        ),
    ] {
        let (code, report) = verify(server, &store_url, copy, &tenant, &zone, &trusted);
        assert_eq!(code, 0, "rainlogs-verify on {store_url}: {report:#}");
        assert_eq!(report["summary"]["checkpoint_size"], size, "{report:#}");
    }
    phase("both buckets verified on their own");
}
