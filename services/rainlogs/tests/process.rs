//! The real binary against real NATS 2.15 and PostgreSQL: start, ready, metrics, refusal
//! messages, and SIGTERM in the middle of work.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rainlogs_bus::{CancellationToken, connect, provision};
use rainlogs_db::run_projection;
use rainlogs_query_api::AuditProjection;
use rainlogs_schemas::events::AuditRecorded;
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_testkit::{NatsServer, TestDatabase, free_port};

struct Rainlogs {
    child: Child,
    telemetry: u16,
    api: u16,
    _data: tempfile::TempDir,
}

impl Rainlogs {
    fn spawn(nats: &str, db: &str, args: &[&str]) -> Self {
        let data = tempfile::tempdir().expect("data dir");
        let telemetry = free_port();
        let api = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_rainlogs"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RAINLOGS__NATS__URL", nats)
            .env("RAINLOGS__DATABASE__URL", db)
            .env("RAINLOGS__STORE__URL", data.path().join("archive"))
            .env("RAINLOGS__SERVICE__DATA_DIR", data.path().join("data"))
            .env("RAINLOGS__SERVICE__SHUTDOWN_TIMEOUT", "20s")
            .env("RAINLOGS__API__LISTEN", format!("127.0.0.1:{api}"))
            .env(
                "RAINLOGS__TELEMETRY__LISTEN",
                format!("127.0.0.1:{telemetry}"),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rainlogs");
        Self {
            child,
            telemetry,
            api,
            _data: data,
        }
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        Self::fetch(self.telemetry, path).await
    }

    async fn get_api(&self, path: &str) -> Option<(u16, String)> {
        Self::fetch(self.api, path).await
    }

    async fn fetch(port: u16, path: &str) -> Option<(u16, String)> {
        let resp = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
            .await
            .ok()?;
        Some((resp.status().as_u16(), resp.text().await.ok()?))
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some((200, _)) = self.get("/ready").await {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let out = self
                    .child
                    .stderr
                    .take()
                    .map(std::io::read_to_string)
                    .transpose()
                    .ok()
                    .flatten();
                panic!("rainlogs exited with {status} before ready: {out:?}");
            }
            assert!(
                Instant::now() < deadline,
                "rainlogs never became ready: {:?}",
                self.get("/ready").await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn terminate(self) -> Output {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        self.child.wait_with_output().expect("wait")
    }
}

#[tokio::test]
async fn all_services_reach_ready_serve_metrics_and_stop_on_sigterm() {
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let mut rainlogs = Rainlogs::spawn(&nats.url, &db.url, &["run", "--dev"]);
    rainlogs.wait_ready().await;

    let (status, body) = rainlogs.get("/ready").await.expect("ready");
    assert_eq!(status, 200);
    for service in [
        "ingest",
        "collector",
        "archiver",
        "sealer",
        "reaper",
        "query-api",
    ] {
        assert!(
            body.contains(&format!("\"{service}\":\"ready\"")),
            "{service} not ready: {body}"
        );
    }
    assert!(
        body.contains("\"store_posture\""),
        "the store posture is shown: {body}"
    );
    assert!(
        body.contains("\"store\":\"ok\""),
        "the store answers: {body}"
    );
    let (status, metrics) = rainlogs.get("/metrics").await.expect("metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("target_info"), "{metrics}");
    assert!(
        metrics.contains("rainlogs_store_protection{") && metrics.contains("check=\"object_lock\""),
        "the storage posture is a metric: {metrics}"
    );
    assert_eq!(rainlogs.get("/health").await.expect("health").0, 200);
    // The public API port keeps liveness only: readiness shows store paths and metrics carry
    // every tenant's zone ids.
    assert_eq!(
        rainlogs.get_api("/health").await.expect("api health").0,
        200
    );
    for private in ["/metrics", "/ready"] {
        let (status, body) = rainlogs.get_api(private).await.expect("api answers");
        assert_eq!(status, 404, "{private} on the API port: {body}");
        assert!(!body.contains("rainlogs_"), "{private}: {body}");
    }

    let output = rainlogs.terminate();
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(
        logs.contains("--dev generated development secrets"),
        "dev mode must say what it generated"
    );
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        assert!(line.starts_with('{'), "log lines are JSON: {line}");
    }
}

#[tokio::test]
async fn refuses_to_start_on_an_unprovisioned_server() {
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let output = Rainlogs::spawn(&nats.url, &db.url, &["run", "--service", "archiver"])
        .child
        .wait_with_output()
        .expect("wait");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("run `rainlogs provision`"), "{stderr}");
}

#[tokio::test]
async fn refuses_to_start_on_nats_2_9() {
    let nats = NatsServer::start_with(std::path::Path::new("/usr/sbin/nats-server"), true);
    let db = TestDatabase::create().await;
    let output = Rainlogs::spawn(&nats.url, &db.url, &["run"])
        .child
        .wait_with_output()
        .expect("wait");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("needs 2.11 or newer"));
}

#[tokio::test]
async fn bad_configuration_names_the_key() {
    let output = Command::new(env!("CARGO_BIN_EXE_rainlogs"))
        .args(["config", "check"])
        .env("RAINLOGS__API__LISTN", "127.0.0.1:1")
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("listn"));
}

#[test]
fn keys_generate_then_show_prints_the_public_half_only() {
    let generated = Command::new(env!("CARGO_BIN_EXE_rainlogs"))
        .args(["keys", "generate", "--name", "rainlogs.test/sealer"])
        .output()
        .expect("run");
    assert!(generated.status.success(), "{generated:?}");
    let private = String::from_utf8(generated.stdout).expect("utf-8");
    assert!(
        private.starts_with("PRIVATE+KEY+rainlogs.test/sealer+"),
        "{private}"
    );
    let dir = tempfile::tempdir().expect("dir");
    let key_file = dir.path().join("signing_key");
    std::fs::write(&key_file, &private).expect("write key");

    let shown = Command::new(env!("CARGO_BIN_EXE_rainlogs"))
        .args(["keys", "show"])
        .env("RAINLOGS__SECRETS__SIGNING_KEY_FILE", &key_file)
        .output()
        .expect("run");
    assert!(shown.status.success(), "{shown:?}");
    let public = String::from_utf8(shown.stdout).expect("utf-8");
    assert_eq!(
        public.trim(),
        rainlogs_sealer::verifier_key_text(&private).expect("valid key")
    );
    // `PRIVATE+KEY+<name>+<key id>+<base64 key>`: the base64 may hold `+` itself, so the
    // material is everything after the fourth separator, not after the last.
    let secret_part = private.trim().splitn(5, '+').nth(4).expect("key material");
    assert!(secret_part.len() > 40, "{secret_part}");
    assert!(
        !public.contains(secret_part),
        "the private key never leaves"
    );

    let unset = Command::new(env!("CARGO_BIN_EXE_rainlogs"))
        .args(["keys", "show"])
        .output()
        .expect("run");
    assert!(!unset.status.success());
    assert!(String::from_utf8_lossy(&unset.stderr).contains("secrets.signing_key"));
}

fn audit(n: u32) -> Envelope {
    Envelope::new(
        "acme",
        None,
        Actor::api_key("k1"),
        Event::AuditRecorded(AuditRecorded {
            action: "archive.download".into(),
            target: format!("job/{n}"),
            outcome: "ok".into(),
            client_ip: None,
            request_id: None,
            detail: None,
        }),
    )
}

async fn applied(pool: &sqlx::PgPool) -> (i64, i64) {
    let offset: Option<(i64,)> =
        sqlx::query_as("SELECT stream_sequence FROM projection_offsets WHERE projection = 'audit'")
            .fetch_optional(pool)
            .await
            .expect("offset");
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM audit_log")
        .fetch_one(pool)
        .await
        .expect("rows");
    (offset.map_or(0, |(o,)| o), rows)
}

#[tokio::test]
async fn sigterm_mid_work_loses_nothing_and_applies_nothing_twice() {
    // Enough that a projector applying runs of hundreds is still busy when the signal comes.
    const EVENTS: u32 = 20_000;
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let bus = connect(&nats.url).await.expect("connect");
    provision(&bus, 1).await.expect("provision");
    let pool = rainlogs_db::connect(&db.url, 2).await.expect("pool");
    rainlogs_db::migrate(&pool).await.expect("migrate");
    for n in 0..EVENTS {
        bus.publish(&subjects::audit("acme"), &audit(n))
            .await
            .expect("publish");
    }

    let mut rainlogs = Rainlogs::spawn(
        &nats.url,
        &db.url,
        &["run", "--dev", "--service", "query-api"],
    );
    rainlogs.wait_ready().await;
    // Let it get partway through, then stop it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while applied(&pool).await.0 < 20 {
        assert!(Instant::now() < deadline, "projection made no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let output = rainlogs.terminate();
    assert!(
        output.status.success(),
        "clean exit expected: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let (offset, rows) = applied(&pool).await;
    assert!(
        offset < i64::from(EVENTS),
        "SIGTERM should have arrived mid-work (applied {offset})"
    );
    assert_eq!(rows, offset, "every applied sequence has exactly its row");
    let mut stream = bus.js.get_stream("RL_AUDIT").await.expect("stream");
    assert_eq!(
        stream.info().await.expect("info").state.messages,
        u64::from(EVENTS)
    );

    // A new projector picks up exactly where the stopped one left off.
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_projection(
        pool.clone(),
        bus.clone(),
        AuditProjection,
        shutdown.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(120);
    while applied(&pool).await.0 < i64::from(EVENTS) {
        assert!(
            Instant::now() < deadline,
            "projection never caught up: {:?}",
            applied(&pool).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    task.await.expect("join").expect("projector");
    let (distinct,): (i64,) = sqlx::query_as("SELECT count(DISTINCT event_id) FROM audit_log")
        .fetch_one(&pool)
        .await
        .expect("distinct");
    assert_eq!(applied(&pool).await, (i64::from(EVENTS), i64::from(EVENTS)));
    assert_eq!(
        distinct,
        i64::from(EVENTS),
        "no event lost or applied twice"
    );
}
