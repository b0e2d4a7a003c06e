//! The README's "### Production" start, run as an operator would, then a SIGKILL chaos round.
//!
//! In a fresh directory: `rainlogs secrets generate`, a signing key written with mode 0600,
//! `deploy/rainlogs.example.toml` copied with its keys set (a private NATS server, a database
//! that does not exist yet, an Object Lock bucket on the dev SeaweedFS, the simulator as
//! Cloudflare, short collector windows, the printed `[secrets]` lines), `config check` (every
//! service ok), `migrate --create-database`, `provision`. Then the simulator (`cf-sim`, its own
//! process) and four `rainlogs run --service …` processes, each with its own data directory and
//! ports; `tenants create`; a Logpull zone and an Instant Logs zone registered through the API.
//!
//! Chaos: the archiver is SIGKILLed once, while it holds the batches of an open Instant Logs
//! window (normally the zone's first), and the collector twice, each time with records of an
//! open window published; each is restarted on its data directory. Afterwards every window the
//! collector closed has its entry, `rainlogs-verify` passes for both zones with the key
//! `rainlogs keys show` prints, the Logpull zone holds exactly the simulator's records of its
//! sealed range, on the Instant Logs zone the archives plus the declared gaps account for every
//! record the simulator served, and each collector kill left one `collector_outage` gap no
//! longer than the outage plus [`GAP_BOUND`].
//!
//! The collector follows the system clock in production (there is no clock setting), so the
//! simulator runs on the real clock too: the Logpull backfill gives archives from the first
//! seconds, and windows are 10 s. Most of the wall time is the archiver's redelivery: what the
//! killed archiver held comes back after the consumer's `ack_wait` (60 s).

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rainlogs_bus::Bus;
use rainlogs_collector::fields::DEFAULT_FIELDS;
use rainlogs_integrity::{
    ArchiveReader, BucketPrefix, Entry, EntryBody, GapReason, Name, NoteVerifierKey, Origin,
    open_checkpoint,
};
use rainlogs_schemas::events::{BatchCollected, WindowClosed, WindowOutcome};
use rainlogs_schemas::{Envelope, Event, subjects};
use rainlogs_store::{Backend, BucketOptions, ObjectKey, S3Config, S3Credentials, S3Store};
use rainlogs_testkit::{
    NatsServer, TestDatabase, free_port, wait_for, wait_for_port, workspace_binary,
};

/// An Enterprise zone of the simulator: Logpull, backfilled.
const LOGPULL_ZONE: &str = "3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e";
/// A Business zone: Instant Logs, a live tail.
const INSTANT_ZONE: &str = "2a1f0a9b7c3d4e5f60718293a4b5c6d7";
const CF_TOKEN: &str = "cfut_full_access_token_0000000000000000";
const HTTP: &str = "http_requests";
/// `collector.window` in the configuration, in seconds.
const WINDOW: i64 = 10;
/// The part of a `collector_outage` gap beyond the outage (SIGKILL until the restarted process is
/// ready): the records of the last publish linger (1 s) before the kill, whole-second rounding at
/// both ends, and onboarding plus a new Instant Logs session after the process is ready.
const GAP_BOUND: f64 = 5.0;
/// Records of up to this many seconds before a gap's start may have been received but not yet
/// published when the collector was killed (the 1 s linger, and the second a record is served
/// after it was received); the README says those are lost with the outage.
const LINGER_SLACK: i64 = 2;

/// The simulator's world: the two zones and a token that may read them.
const SCENARIO: &str = r#"
seed = 20260115

[[zones]]
id = "3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e"
name = "shop.example.eu"
plan = "enterprise"
account_id = "9a7806061c88ada191ed06f989cc3dac"
rate = 5.0
firewall_rate = 0.5
retention = true

[[zones]]
id = "2a1f0a9b7c3d4e5f60718293a4b5c6d7"
name = "blog.example.eu"
plan = "business"
account_id = "9a7806061c88ada191ed06f989cc3dac"
rate = 5.0
firewall_rate = 0.5

[[tokens]]
value = "cfut_full_access_token_0000000000000000"
permissions = ["zone_read", "logs_read", "logs_edit", "analytics_read"]
"#;

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `tools/dev-env up` and `source var/dev-env.sh`")
    })
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

fn utf8(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `rainlogs` binary as an operator runs it: nothing from the test's environment but PATH
/// (`var/dev-env.sh` exports `RAINLOGS__*` variables that would win over the file).
fn rainlogs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rainlogs"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("run rainlogs")
}

/// Runs `rainlogs args`, insists on exit 0 and returns stdout.
fn rainlogs_ok(args: &[&str]) -> String {
    let output = rainlogs(args);
    assert!(
        output.status.success(),
        "rainlogs {}: {}\n{}{}",
        args.join(" "),
        output.status,
        utf8(&output.stdout),
        utf8(&output.stderr)
    );
    utf8(&output.stdout)
}

/// Writes `content` to a new file with mode 0600, as `(umask 077; … > file)` would.
fn write_private(path: &Path, content: &[u8]) {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.write_all(content).expect("write");
}

/// `cp deploy/rainlogs.example.toml rainlogs.toml` and set keys: each `(section, key, TOML
/// value)` replaces the key's line in its section (a multi-line array whole), or is added at the
/// top of the section, or in a new section at the end.
fn configure(example: &str, set: &[(&str, &str, String)]) -> String {
    // The file as sections: the lines before the first header, then one entry per `[table]`.
    let mut sections: Vec<(String, Vec<String>)> = vec![(String::new(), Vec::new())];
    for line in example.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') && trimmed.ends_with(']') && !trimmed.starts_with("[[") {
            sections.push((trimmed.trim_matches(['[', ']']).to_owned(), Vec::new()));
        }
        sections
            .last_mut()
            .expect("a section")
            .1
            .push(line.to_owned());
    }
    let key_of = |line: &str| {
        let (key, _) = line.split_once('=')?;
        let key = key.trim();
        (!key.starts_with('#')).then(|| key.to_owned())
    };
    for (section, key, value) in set {
        let line = format!("{key} = {value}");
        let Some((_, lines)) = sections.iter_mut().find(|(name, _)| name == section) else {
            sections.push((
                section.to_string(),
                vec![String::new(), format!("[{section}]"), line],
            ));
            continue;
        };
        match lines.iter().position(|l| key_of(l).as_deref() == Some(key)) {
            Some(at) => {
                // A multi-line array ends at its closing bracket.
                let mut until = at;
                if lines[at].trim_end().ends_with('[') {
                    while lines[until].trim() != "]" {
                        until += 1;
                    }
                }
                lines.splice(at..=until, [line]);
            }
            None => lines.insert(1, line),
        }
    }
    let mut out: Vec<String> = sections.into_iter().flat_map(|(_, lines)| lines).collect();
    out.push(String::new());
    out.join("\n")
}

fn toml_str(text: &str) -> String {
    format!("'{text}'")
}

/// One `rainlogs run` process of the deployment, restartable on its own data directory and ports.
struct Service {
    name: &'static str,
    services: &'static [&'static str],
    config: PathBuf,
    data_dir: PathBuf,
    logs: PathBuf,
    telemetry: u16,
    api: u16,
    runs: u32,
    child: Option<Child>,
}

impl Service {
    fn new(
        name: &'static str,
        services: &'static [&'static str],
        config: &Path,
        dir: &Path,
    ) -> Self {
        let data_dir = dir.join("data").join(name);
        std::fs::create_dir_all(&data_dir).expect("data dir");
        Self {
            name,
            services,
            config: config.to_owned(),
            data_dir,
            logs: dir.join("logs"),
            telemetry: free_port(),
            api: free_port(),
            runs: 0,
            child: None,
        }
    }

    /// `RAINLOGS__SERVICE__DATA_DIR=… rainlogs run --config F --service S… --telemetry-listen …
    /// --api-listen …`; its log goes to `logs/<name>-<run>.log`.
    fn start(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.name);
        self.runs += 1;
        let log = std::fs::File::create(self.logs.join(format!("{}-{}.log", self.name, self.runs)))
            .expect("log file");
        let telemetry = format!("127.0.0.1:{}", self.telemetry);
        let api = format!("127.0.0.1:{}", self.api);
        let mut args = vec!["run", "--config", self.config.to_str().expect("utf-8")];
        for service in self.services {
            args.extend(["--service", service]);
        }
        args.extend(["--telemetry-listen", &telemetry, "--api-listen", &api]);
        let child = Command::new(env!("CARGO_BIN_EXE_rainlogs"))
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RAINLOGS__SERVICE__DATA_DIR", &self.data_dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn rainlogs run");
        self.child = Some(child);
    }

    /// Waits for `/ready` to answer 200; returns when (Unix seconds).
    async fn wait_ready(&mut self) -> f64 {
        let url = format!("http://127.0.0.1:{}/ready", self.telemetry);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = reqwest::get(&url).await
                && response.status() == 200
            {
                return unix_now();
            }
            let child = self.child.as_mut().expect("started");
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("{} exited with {status} before it was ready", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{} never became ready",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL; returns when it was sent (Unix seconds).
    fn kill(&mut self) -> f64 {
        let mut child = self.child.take().expect("running");
        let at = unix_now();
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        at
    }

    /// SIGTERM, then the exit status must be 0 (in-flight work finished within
    /// service.shutdown_timeout).
    fn terminate(&mut self) {
        let mut child = self.child.take().expect("running");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success());
        let status = child.wait().expect("wait");
        assert!(status.success(), "{} stopped with {status}", self.name);
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A child process killed on drop (the simulator).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The operator's directory (secrets, configuration, data directories, `logs/`). Removed when
/// the test passes; when it fails, kept, with the warnings and errors of every log printed.
struct Workdir(Option<tempfile::TempDir>);

impl Workdir {
    fn path(&self) -> &Path {
        self.0.as_ref().expect("directory").path()
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let dir = self.0.take().expect("directory").keep();
        let mut files: Vec<_> = std::fs::read_dir(dir.join("logs"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            eprintln!("--- {}", file.display());
            for line in text.lines().filter(|l| {
                l.contains("\"WARN\"") || l.contains("\"ERROR\"") || !l.starts_with('{')
            }) {
                eprintln!("{line}");
            }
        }
        eprintln!("kept {} for inspection", dir.display());
    }
}

/// A fresh bucket with Object Lock on the dev SeaweedFS, read back with the auditor's
/// read-only credentials.
struct Bucket {
    name: String,
    endpoint: String,
    reader: Backend,
}

impl Bucket {
    async fn create() -> Self {
        let name = format!(
            "rl-test-prod-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let endpoint = required_env("RAINLOGS_TEST_S3_ENDPOINT");
        let config = |access: &str, secret: &str| {
            let mut config = S3Config::new(&name);
            config.endpoint = Some(endpoint.clone());
            config.path_style = true;
            config.credentials = Some(S3Credentials {
                access_key_id: required_env(access),
                secret_access_key: required_env(secret),
                session_token: None,
            });
            config
        };
        let writer = S3Store::new(config(
            "RAINLOGS_TEST_S3_ACCESS_KEY",
            "RAINLOGS_TEST_S3_SECRET_KEY",
        ))
        .expect("s3 store");
        writer
            .create_bucket(BucketOptions {
                object_lock: true,
                default_retention: None,
            })
            .await
            .unwrap_or_else(|e| panic!("creating bucket {name} on {endpoint}: {e}"));
        let reader = Backend::S3(
            S3Store::new(config(
                "RAINLOGS_TEST_S3_AUDITOR_ACCESS_KEY",
                "RAINLOGS_TEST_S3_AUDITOR_SECRET_KEY",
            ))
            .expect("s3 store"),
        );
        Self {
            name,
            endpoint,
            reader,
        }
    }

    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.reader
            .get_bytes(&ObjectKey::new(key).expect("key"))
            .await
            .ok()
            .map(|b| b.to_vec())
    }

    /// The NDJSON lines of an archive object.
    async fn archive_lines(&self, key: &str) -> Vec<String> {
        let stored = self
            .get(key)
            .await
            .unwrap_or_else(|| panic!("{key} missing"));
        let mut content = Vec::new();
        ArchiveReader::new(&stored[..])
            .expect("zstd")
            .read_to_end(&mut content)
            .expect("archive");
        utf8(&content)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Size of the zone's signed checkpoint (0 while there is none).
    async fn checkpoint_size(&self, prefix: &str, origin: &Origin, key: &NoteVerifierKey) -> u64 {
        let prefix = BucketPrefix::new(prefix).expect("prefix");
        match self.get(&prefix.checkpoint_key(origin)).await {
            Some(note) => open_checkpoint(&note, origin, std::slice::from_ref(key))
                .map(|c| c.checkpoint.size)
                .unwrap_or(0),
            None => 0,
        }
    }
}

/// A zone's events on one subject, read incrementally with direct gets.
struct Feed {
    stream: &'static str,
    subject: String,
    next: u64,
    events: Vec<Event>,
}

impl Feed {
    fn new(stream: &'static str, subject: String) -> Self {
        Self {
            stream,
            subject,
            next: 1,
            events: Vec::new(),
        }
    }

    async fn poll(&mut self, bus: &Bus) {
        let stream = bus.js.get_stream(self.stream).await.expect("stream");
        while let Ok(message) = stream
            .direct_get_next_for_subject(self.subject.clone(), Some(self.next))
            .await
        {
            self.next = message.sequence + 1;
            self.events.push(
                Envelope::from_cbor(&message.payload)
                    .expect("envelope")
                    .event,
            );
        }
    }
}

/// What the collector published for a zone (`rl.batch.<zone>`).
struct Batches(Feed);

impl Batches {
    fn new(zone: &str) -> Self {
        Self(Feed::new("RL_BATCH", subjects::batch(zone)))
    }

    fn batches(&self) -> impl Iterator<Item = &BatchCollected> {
        self.0.events.iter().filter_map(|e| match e {
            Event::BatchCollected(b) => Some(b),
            _ => None,
        })
    }

    fn closes(&self) -> impl Iterator<Item = &WindowClosed> {
        self.0.events.iter().filter_map(|e| match e {
            Event::WindowClosed(c) => Some(c),
            _ => None,
        })
    }

    /// Attempts with published batches and no close.
    fn open_attempts(&self) -> BTreeSet<uuid::Uuid> {
        let closed: BTreeSet<_> = self.closes().map(|c| c.attempt).collect();
        self.batches()
            .map(|b| b.attempt)
            .filter(|a| !closed.contains(a))
            .collect()
    }

    fn closed_until(&self) -> i64 {
        self.closes().map(|c| c.window.end).max().unwrap_or(0)
    }

    /// Records of the window after the closed ones are published (the live tail mid-window).
    fn open_window_published(&self) -> bool {
        let closed = self.closed_until();
        let closed_attempts: BTreeSet<_> = self.closes().map(|c| c.attempt).collect();
        self.batches().any(|b| {
            b.window.start >= closed
                && b.received_until.is_some()
                && !closed_attempts.contains(&b.attempt)
        })
    }
}

/// The zone's sealed entries (`rl.chain.<zone>`), in log order.
struct Chain(Feed);

impl Chain {
    fn new(zone: &str) -> Self {
        Self(Feed::new("RL_CHAIN", subjects::chain(zone)))
    }

    fn entries(&self) -> Vec<Entry> {
        self.0
            .events
            .iter()
            .map(|e| match e {
                Event::EntrySealed(sealed) => Entry::decode(&sealed.entry).expect("entry"),
                other => panic!("not an entry on the chain: {other:?}"),
            })
            .collect()
    }

    /// `(start, end, body)` of every `http_requests` window entry (Unix seconds), in log order.
    fn windows(&self) -> Vec<(i64, i64, EntryBody)> {
        self.entries()
            .into_iter()
            .filter_map(|entry| {
                if entry.body.dataset()?.as_str() != HTTP {
                    return None;
                }
                let window = entry.body.window()?;
                let secs = |ns: u64| i64::try_from(ns / 1_000_000_000).expect("seconds");
                Some((secs(window.start_ns()), secs(window.end_ns()), entry.body))
            })
            .collect()
    }
}

/// Windows the collector closed for a zone (`batch.window_closed`) that have no entry in its log.
fn unsealed(batches: &Batches, chain: &Chain) -> Vec<(i64, i64)> {
    let sealed: BTreeSet<(i64, i64)> = chain.windows().iter().map(|w| (w.0, w.1)).collect();
    let closed: BTreeSet<(i64, i64)> = batches
        .closes()
        .filter(|c| c.dataset == HTTP)
        .map(|c| (c.window.start, c.window.end))
        .collect();
    closed.difference(&sealed).copied().collect()
}

/// The simulator, a process of its own, and what it says Cloudflare holds.
struct Simulator {
    _process: Killed,
    root: String,
}

impl Simulator {
    fn start(dir: &Path, port: u16) -> Self {
        let scenario = dir.join("cf-sim-scenario.toml");
        std::fs::write(&scenario, SCENARIO).expect("scenario");
        let log = std::fs::File::create(dir.join("logs/cf-sim.log")).expect("log");
        let child = Command::new(workspace_binary("cf-sim"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--scenario"])
            .arg(&scenario)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn cf-sim");
        let process = Killed(child);
        wait_for_port(port, Duration::from_secs(30));
        Self {
            _process: process,
            root: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Every record received in `[start, end)` (Unix seconds), as Logpull renders the default
    /// fields, one line each.
    async fn truth(&self, zone: &str, start: i64, end: i64) -> Vec<String> {
        let url = format!(
            "{}/__sim/truth?zone={zone}&start={start}&end={end}&fields={}",
            self.root,
            DEFAULT_FIELDS.join(",")
        );
        let response = reqwest::get(url).await.expect("truth");
        assert_eq!(response.status(), 200);
        let body = response.text().await.expect("truth body");
        body.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// `rainlogs-verify … --json` for one zone; returns the exit code and the report.
fn verify(
    bucket: &Bucket,
    store_url: &str,
    tenant: &str,
    zone: &str,
    key: &str,
    fail_on_gap: bool,
) -> (i32, serde_json::Value) {
    let mut command = Command::new(workspace_binary("rainlogs-verify"));
    command
        .args(["--store", store_url, "--endpoint", &bucket.endpoint])
        .args(["--region", "eu-central-1", "--path-style"])
        .args(["--tenant", tenant, "--zone", zone, "--trusted-key", key])
        .args(["--deep", "--json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "AWS_ACCESS_KEY_ID",
            required_env("RAINLOGS_TEST_S3_AUDITOR_ACCESS_KEY"),
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            required_env("RAINLOGS_TEST_S3_AUDITOR_SECRET_KEY"),
        );
    if fail_on_gap {
        command.arg("--fail-on-gap");
    }
    let output = command.output().expect("run rainlogs-verify");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "rainlogs-verify printed no JSON ({e}): {}{}",
            utf8(&output.stdout),
            utf8(&output.stderr)
        )
    });
    (output.status.code().expect("exit code"), report)
}

/// A SIGKILL of the collector: when it was sent, when the collector was started again and when
/// it answered ready (Unix seconds), and the Instant Logs attempt that was open, with records
/// published, at the kill.
#[derive(Debug)]
struct Outage {
    killed: f64,
    restarted: f64,
    ready: f64,
    attempt: uuid::Uuid,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_production_start_runs_and_survives_sigkills() {
    let began = Instant::now();
    let phase = |what: &str| eprintln!("[{:5.1} s] {what}", began.elapsed().as_secs_f64());
    let workdir = Workdir(Some(tempfile::tempdir().expect("dir")));
    let dir = workdir.path();
    std::fs::create_dir_all(dir.join("logs")).expect("logs dir");
    let nats = NatsServer::start();
    let database = TestDatabase::uncreated();
    let bucket = Bucket::create().await;
    let store_url = format!("s3://{}/prod", bucket.name);
    let sim_port = free_port();

    // 1. Secrets, the signing key, the configuration.
    let secrets = dir.join("secrets");
    let secrets_dir = secrets.to_str().expect("utf-8");
    let printed = rainlogs_ok(&["secrets", "generate", "--dir", secrets_dir]);
    let signing_key = rainlogs_ok(&["keys", "generate", "--name", "rainlogs.example.eu/sealer"]);
    write_private(&secrets.join("signing_key"), signing_key.as_bytes());
    write_private(&secrets.join("database_url"), database.url.as_bytes());
    write_private(
        &secrets.join("s3_secret_key"),
        required_env("RAINLOGS_TEST_S3_SECRET_KEY").as_bytes(),
    );
    let path = |name: &str| toml_str(secrets.join(name).to_str().expect("utf-8"));
    let mut set = vec![
        ("nats", "url", format!("[\"{}\"]", nats.url)),
        ("nats", "replicas", "1".to_owned()),
        ("database", "url_file", path("database_url")),
        ("store", "url", toml_str(&store_url)),
        ("store", "endpoint", toml_str(&bucket.endpoint)),
        (
            "store",
            "access_key_id",
            toml_str(&required_env("RAINLOGS_TEST_S3_ACCESS_KEY")),
        ),
        ("store", "secret_access_key_file", path("s3_secret_key")),
        ("api", "listen", toml_str("127.0.0.1:8080")),
        ("telemetry", "listen", toml_str("127.0.0.1:9464")),
        // The test's own: the simulator as Cloudflare, short windows, a short backfill.
        (
            "cloudflare",
            "base_url",
            toml_str(&format!("http://127.0.0.1:{sim_port}/client/v4")),
        ),
        ("collector", "backfill", toml_str("2m")),
        ("collector", "window", toml_str(&format!("{WINDOW}s"))),
        ("collector", "logpull_delay", toml_str("1m")),
        ("service", "shutdown_timeout", toml_str("15s")),
        ("secrets", "signing_key_file", path("signing_key")),
    ];
    // The printed [secrets] lines.
    assert!(printed.starts_with("[secrets]\n"), "{printed}");
    for line in printed.lines().skip(1) {
        let (key, value) = line.split_once(" = ").expect("key = value");
        set.push(("secrets", key.trim(), value.trim().to_owned()));
    }
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rainlogs.example.toml"),
    )
    .expect("deploy/rainlogs.example.toml");
    let config = dir.join("rainlogs.toml");
    std::fs::write(&config, configure(&example, &set)).expect("config");
    let config_arg = config.to_str().expect("utf-8");

    // 2. Check, create the database, provision.
    let check = rainlogs(&["config", "check", "--config", config_arg]);
    let report = utf8(&check.stderr);
    assert!(check.status.success(), "config check: {report}");
    for service in [
        "ingest",
        "collector",
        "archiver",
        "sealer",
        "reaper",
        "query-api",
    ] {
        assert!(
            report.lines().any(|l| l == format!("{service}: ok")),
            "{service} ok in:\n{report}"
        );
    }
    let migrated = rainlogs_ok(&["migrate", "--create-database", "--config", config_arg]);
    assert!(
        migrated.contains(&format!("database \"{}\" created", database.name()))
            && migrated.contains("migrations applied"),
        "{migrated}"
    );
    rainlogs_ok(&["provision", "--config", config_arg]);
    phase("configured, migrated, provisioned");

    // 3. The simulator, then one process per service (query-api and reaper share one).
    let sim = Simulator::start(dir, sim_port);
    let mut collector = Service::new("collector", &["collector"], &config, dir);
    let mut archiver = Service::new("archiver", &["archiver"], &config, dir);
    let mut sealer = Service::new("sealer", &["sealer"], &config, dir);
    let mut api = Service::new("api", &["query-api", "reaper"], &config, dir);
    for service in [&mut collector, &mut archiver, &mut sealer, &mut api] {
        service.start();
    }
    for service in [&mut collector, &mut archiver, &mut sealer, &mut api] {
        service.wait_ready().await;
    }
    phase("four processes ready");

    // 4. A tenant and its admin key, then the two zones through the API.
    let created = rainlogs_ok(&[
        "tenants",
        "create",
        "--config",
        config_arg,
        "--name",
        "Acme GmbH",
        "--email",
        "security@acme.example",
    ]);
    let field = |name: &str| {
        created
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("{name} in {created}"))
            .to_owned()
    };
    let (tenant, api_key) = (field("customer_id"), field("api_key"));
    let verifier_key = rainlogs_ok(&["keys", "show", "--config", config_arg])
        .trim()
        .to_owned();
    let client = reqwest::Client::new();
    for (zone, method) in [(LOGPULL_ZONE, "logpull"), (INSTANT_ZONE, "instant_logs")] {
        if zone == INSTANT_ZONE {
            // Just after a window boundary: the tail's first window ends on the grid, so it is
            // long enough for the archiver to be killed in it below.
            let into = unix_now().rem_euclid(WINDOW as f64);
            if into > 0.5 {
                tokio::time::sleep(Duration::from_secs_f64(WINDOW as f64 - into + 0.2)).await;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let response = client
                .post(format!("http://127.0.0.1:{}/api/v1/zones", api.api))
                .bearer_auth(&api_key)
                .json(&serde_json::json!({ "zone_id": zone, "cf_api_token": CF_TOKEN }))
                .send()
                .await
                .expect("add zone");
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            if status == 201 {
                // The best method the plan allows.
                assert_eq!(body["method"], method, "{body}");
                break;
            }
            // The new key may need a moment to reach the API's projection.
            assert!(
                status == 401 && Instant::now() < deadline,
                "adding {zone}: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    phase("tenant and zones added");

    // 5. Chaos while windows are collected, archived and sealed.
    let bus = rainlogs_bus::connect(&nats.url).await.expect("connect");
    let mut logpull_chain = Chain::new(LOGPULL_ZONE);
    let mut instant_chain = Chain::new(INSTANT_ZONE);
    let mut instant = Batches::new(INSTANT_ZONE);
    let mut logpull = Batches::new(LOGPULL_ZONE);

    // The archiver, while it holds the batches of the open Instant Logs window (unacknowledged
    // until the window closes; the zone was added so that this is its first window, unless the
    // collector took long to pick it up) and the Logpull backfill is being sealed: what it held
    // comes back to the restarted process after the consumer's ack_wait (60 s), and the windows
    // closed meanwhile must wait for it.
    wait_for(
        "the Logpull backfill sealing and records of an open Instant Logs window",
        Duration::from_secs(60),
        async || {
            logpull_chain.0.poll(&bus).await;
            instant.0.poll(&bus).await;
            !logpull_chain.windows().is_empty() && instant.open_window_published()
        },
    )
    .await;
    let first_window = instant.closes().next().is_none();
    archiver.kill();
    let archiver_killed = Instant::now();
    archiver.start();
    archiver.wait_ready().await;
    phase(if first_window {
        "archiver killed in the Instant Logs zone's first window, restarted"
    } else {
        "archiver killed in a later Instant Logs window, restarted"
    });

    // The collector, twice, each time with records of the open Instant Logs window published.
    let mut outages: Vec<Outage> = Vec::new();
    for pause in [Duration::from_secs(2), Duration::from_secs(6)] {
        let after = outages.last().map_or(0.0, |o| o.ready);
        wait_for(
            "records published in an open Instant Logs window",
            Duration::from_secs(60),
            async || {
                instant.0.poll(&bus).await;
                instant.closed_until() as f64 > after && instant.open_window_published()
            },
        )
        .await;
        let killed = collector.kill();
        instant.0.poll(&bus).await;
        let open = instant.open_attempts();
        assert_eq!(open.len(), 1, "one open attempt at the kill: {open:?}");
        tokio::time::sleep(pause).await;
        let restarted = unix_now();
        collector.start();
        let ready = collector.wait_ready().await;
        outages.push(Outage {
            killed,
            restarted,
            ready,
            attempt: open.into_iter().next().expect("attempt"),
        });
        phase(&format!(
            "collector killed, back after {:.1} s",
            ready - killed
        ));
    }
    // A whole window after the last restart, then a graceful stop of the collector: it closes
    // the open window where it is.
    let back = outages.last().expect("outages").ready;
    wait_for(
        "a window after the last restart",
        Duration::from_secs(60),
        async || {
            instant.0.poll(&bus).await;
            instant.closed_until() as f64 >= back + WINDOW as f64
        },
    )
    .await;
    collector.terminate();
    phase("collector stopped");

    // Every window the collector closed is archived and sealed (the batches the killed archiver
    // held come back after ack_wait), and covered by a signed checkpoint in the bucket.
    let origin = |zone: &str| {
        Origin::new(
            &Name::new(&tenant).expect("tenant"),
            &Name::new(zone).expect("zone"),
        )
    };
    let key = NoteVerifierKey::parse(&verifier_key).expect("verifier key");
    // What the killed archiver held is redelivered ack_wait (60 s) after it was delivered.
    let deadline = archiver_killed + Duration::from_secs(120);
    loop {
        instant.0.poll(&bus).await;
        logpull.0.poll(&bus).await;
        instant_chain.0.poll(&bus).await;
        logpull_chain.0.poll(&bus).await;
        let unsealed = [
            (LOGPULL_ZONE, unsealed(&logpull, &logpull_chain)),
            (INSTANT_ZONE, unsealed(&instant, &instant_chain)),
        ];
        let mut checkpointed = true;
        for (zone, chain) in [
            (LOGPULL_ZONE, &logpull_chain),
            (INSTANT_ZONE, &instant_chain),
        ] {
            checkpointed &= bucket.checkpoint_size("prod", &origin(zone), &key).await
                == chain.entries().len() as u64;
        }
        if checkpointed && unsealed.iter().all(|(_, missing)| missing.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after {:.0} s, windows the collector closed that have no entry in the zone's log: \
             {unsealed:?}; the logs begin with Logpull {:?} and Instant Logs {:?}; checkpoints \
             cover every entry: {checkpointed}",
            began.elapsed().as_secs_f64(),
            logpull_chain.windows().first().map(|w| (w.0, w.1)),
            instant_chain.windows().first().map(|w| (w.0, w.1)),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for service in [&mut archiver, &mut sealer, &mut api] {
        service.terminate();
    }
    phase("sealed; every process stopped");

    // 6. The auditor's view: rainlogs-verify with the public key `keys show` printed.
    for zone in [LOGPULL_ZONE, INSTANT_ZONE] {
        let (code, report) = verify(&bucket, &store_url, &tenant, zone, &verifier_key, false);
        assert_eq!(code, 0, "rainlogs-verify {zone}: {report:#}");
        let entries = if zone == LOGPULL_ZONE {
            logpull_chain.entries().len()
        } else {
            instant_chain.entries().len()
        };
        assert_eq!(
            report["summary"]["checkpoint_size"], entries,
            "the bucket holds every sealed entry: {report:#}"
        );
    }

    // The Logpull zone: exactly the simulator's records of the sealed range, once each.
    let windows = logpull_chain.windows();
    let (first, last) = (windows[0].0, windows.last().expect("windows").1);
    assert!(
        last - first >= 6 * WINDOW,
        "backfill and live windows sealed: {first}..{last}"
    );
    let mut archived = Vec::new();
    for (start, end, body) in &windows {
        match body {
            EntryBody::Archive(archive) => {
                let lines = bucket.archive_lines(&archive.object.key).await;
                assert_eq!(lines.len() as u64, archive.record_count);
                archived.extend(lines);
            }
            EntryBody::Empty(_) => {}
            other => panic!("Logpull window {start}..{end} sealed as {:?}", other.kind()),
        }
    }
    let mut truth = sim.truth(LOGPULL_ZONE, first, last).await;
    assert!(truth.len() > 100, "{} records", truth.len());
    truth.sort();
    archived.sort();
    assert!(
        archived == truth,
        "Logpull {first}..{last}: {} archived, {} at Cloudflare ({} archived not at Cloudflare, {} \
         at Cloudflare not archived)",
        archived.len(),
        truth.len(),
        archived
            .iter()
            .filter(|l| truth.binary_search(l).is_err())
            .count(),
        truth
            .iter()
            .filter(|l| archived.binary_search(l).is_err())
            .count(),
    );
    let (code, report) = verify(
        &bucket,
        &store_url,
        &tenant,
        LOGPULL_ZONE,
        &verifier_key,
        true,
    );
    assert_eq!(code, 0, "no gaps, so --fail-on-gap passes: {report:#}");
    assert_eq!(report["summary"]["coverage"]["records"], truth.len());
    eprintln!(
        "Logpull {first}..{last}: {} windows, {} records archived, exactly Cloudflare's",
        windows.len(),
        truth.len()
    );

    // The Instant Logs zone: archives plus declared gaps account for every record served.
    let windows = instant_chain.windows();
    let (first, last) = (windows[0].0, windows.last().expect("windows").1);
    let mut archived = BTreeSet::new();
    let mut archived_count: usize = 0;
    let mut gaps = Vec::new();
    for (start, end, body) in &windows {
        match body {
            EntryBody::Archive(archive) => {
                for line in bucket.archive_lines(&archive.object.key).await {
                    archived_count += 1;
                    assert!(archived.insert(line), "a record archived twice");
                }
            }
            EntryBody::Empty(_) => {}
            EntryBody::Gap(gap) => gaps.push((*start, *end, gap.reason)),
            other => panic!(
                "Instant Logs window {start}..{end} sealed as {:?}",
                other.kind()
            ),
        }
    }
    // Every archived record is one the simulator has (a record may arrive a second after it
    // was received at Cloudflare, so the range starts a little earlier).
    let served: BTreeSet<String> = sim
        .truth(INSTANT_ZONE, first - LINGER_SLACK, last)
        .await
        .into_iter()
        .collect();
    assert!(
        archived.is_subset(&served),
        "{} archived records Cloudflare never had",
        archived.difference(&served).count()
    );
    // Every record the simulator served in the range is archived or inside a declared gap (up
    // to the last seconds, which a stopping collector may not have received).
    let mut unaccounted: BTreeSet<String> = sim
        .truth(INSTANT_ZONE, first, last - LINGER_SLACK)
        .await
        .into_iter()
        .filter(|l| !archived.contains(l))
        .collect();
    let (mut in_gaps, mut in_linger) = (0, 0);
    for (start, end, _) in &gaps {
        for line in sim.truth(INSTANT_ZONE, start - LINGER_SLACK, *start).await {
            in_linger += usize::from(unaccounted.remove(&line));
        }
        for line in sim.truth(INSTANT_ZONE, *start, *end).await {
            in_gaps += usize::from(unaccounted.remove(&line));
        }
    }
    assert!(
        unaccounted.is_empty(),
        "{} records served in {first}..{last} neither archived nor in a gap ({gaps:?}); e.g. {:?}",
        unaccounted.len(),
        unaccounted.first()
    );
    eprintln!(
        "Instant Logs {first}..{last}: {} windows, {archived_count} records archived, {in_gaps} \
         served during declared gaps, {in_linger} lost in the linger before a kill",
        windows.len()
    );
    // Each kill left exactly one gap: the collector's own outage, bounded.
    assert_eq!(
        gaps.len(),
        outages.len(),
        "one gap per kill and no other: {gaps:?} for outages {outages:?}"
    );
    for Outage {
        killed,
        restarted,
        ready,
        attempt,
    } in &outages
    {
        let overlapping: Vec<_> = gaps
            .iter()
            .filter(|(start, end, _)| (*start as f64) < *ready && (*end as f64) > *killed)
            .collect();
        assert_eq!(overlapping.len(), 1, "{gaps:?} vs outage {killed}..{ready}");
        let (start, end, reason) = overlapping[0];
        assert_eq!(*reason, GapReason::CollectorOutage, "{start}..{end}");
        assert!(
            *start as f64 <= killed + 1.0 && *end as f64 >= restarted.floor(),
            "gap {start}..{end} covers the outage {killed:.1}..{restarted:.1} (ready {ready:.1})"
        );
        let length = (end - start) as f64;
        let outage = ready - killed;
        assert!(
            length <= outage + GAP_BOUND,
            "gap of {length} s for an outage of {outage:.1} s (bound {GAP_BOUND} s)"
        );
        // What was published before the kill is archived: the restarted collector closed the
        // open attempt where its records end, and the gap starts there.
        let close = instant
            .closes()
            .find(|c| c.attempt == *attempt)
            .unwrap_or_else(|| panic!("the attempt open at {killed:.1} was never closed"));
        let WindowOutcome::Complete { records, .. } = &close.outcome else {
            panic!("the attempt open at the kill closed as {close:?}");
        };
        let published: u64 = instant
            .batches()
            .filter(|b| b.attempt == *attempt)
            .map(|b| u64::from(b.records))
            .sum();
        assert_eq!(*records, published, "{close:?}");
        assert_eq!(close.window.end, *start, "{close:?} is followed by the gap");
        assert!(
            windows.iter().any(
                |(s, e, body)| (*s, *e) == (close.window.start, close.window.end)
                    && matches!(body, EntryBody::Archive(a) if a.record_count == published)
            ),
            "{close:?} is sealed as an archive of its records"
        );
        eprintln!(
            "outage {:.1} s: {published} records of the open window kept, gap {start}..{end} ({length} s, {reason:?})",
            ready - killed
        );
    }
    let (code, report) = verify(
        &bucket,
        &store_url,
        &tenant,
        INSTANT_ZONE,
        &verifier_key,
        false,
    );
    assert_eq!(code, 0, "{report:#}");
    let coverage = &report["summary"]["coverage"];
    assert_eq!(coverage["records"], archived_count);
    assert_eq!(
        coverage["gaps"]["by_reason"]["collector_outage"]["count"],
        outages.len(),
        "{coverage:#}"
    );
    let (code, report) = verify(
        &bucket,
        &store_url,
        &tenant,
        INSTANT_ZONE,
        &verifier_key,
        true,
    );
    assert_eq!(code, 4, "--fail-on-gap: declared gaps exit 4: {report:#}");

    drop(database);
    phase("verified");
}
