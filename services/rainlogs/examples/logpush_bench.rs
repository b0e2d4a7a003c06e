//! Logpush pipeline benchmark: gzip NDJSON pushes → `POST /logpush/v1/…` (ingest) → RL_PUSH →
//! the collector files every record into its 60 s window → windows closed → the archiver stores
//! one zstd archive per window → the sealer covers every entry with a signed checkpoint. Timed
//! from the first push to the last entry covered by a signed checkpoint, and reported as a ratio
//! against `gzip -d | zstd -3 -T1 | openssl dgst -sha256` over the same gzip bodies in the same
//! run (never as an absolute pass/fail).
//!
//! ```sh
//! cargo build --release -p rainlogs          # first: the archiver and sealer run from it
//! cargo run --release -p rainlogs --example logpush_bench -- [PUSHES] [PUSH_MIB] [CONCURRENCY]
//! ```
//! `LOGPUSH_BENCH_ZONE=enterprise` pushes to the Enterprise zone instead of the EU-only one: its
//! short windows can be repaired from Logpull, so the collector also keeps each record's Ray ID.
//! Defaults: 32 pushes of 16 MiB of NDJSON each (512 MiB, as much as `ingest_bench` pushes),
//! 4 at a time: about 20 s on 2 cores once built, of which about 5 s are timed. The `rainlogs`
//! binary next to this example (`target/release/rainlogs`) must be built first and be current:
//! the bench does not build it, refuses to start without it and warns when a source file of the
//! workspace changed after it was built.
//!
//! What runs where:
//! * this process: the ingest service (as in `services/ingest/examples/ingest_bench.rs`), the
//!   collector (on a clock the bench moves), the pushing client and the Cloudflare
//!   simulator (which only serves the Logpush job API here);
//! * a `rainlogs run --dev --service archiver --service sealer` child process (local file store,
//!   its log in `<data>/run-0.log`);
//! * a private `nats-server` and a fresh database on the dev PostgreSQL (`source var/dev-env.sh`).
//!
//! The zone is added with `method: logpush_http` as in `tests/logpush.rs`; the collector makes the
//! zone's job at the simulator, whose clock stays frozen so that it pushes nothing of its own (the
//! bench checks that it delivered nothing). The bench reads the job's bearer secret back from the
//! simulator and pushes its own bodies to the ingest endpoint with it. Every record is distinct
//! (a running counter, also in `RayID`), timestamped evenly over `PUSHES` minutes starting 30 s
//! after t0, so each push straddles two windows. The collector's clock stays at t0 while pushing
//! (no window closes); once the collector has filed every pushed record, its clock jumps past the
//! last window's end plus the lateness and every window closes at once. So the phases after
//! filing (archive, seal) do not overlap the pushes here, as they would in steady operation.
//!
//! Afterwards every archive object is read back: each pushed record must be archived exactly
//! once (by its `RayID`), the entries' `record_count` must add up, and `rainlogs-verify` must pass.
//! Anything else is reported loudly and the bench exits non-zero.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use cf_sim::{ClockStart, SimOptions};
use rainlogs_bus::{Bus, CancellationToken};
use rainlogs_cloudflare::ClientConfig;
use rainlogs_collector::{
    CollectorDeps, CollectorOptions, FnClock, Identity, TokenKey, TokenKeyring, run_collector,
};
use rainlogs_config::{Config, TelemetrySettings};
use rainlogs_integrity::{
    ArchiveReader, BucketPrefix, Entry, EntryBody, Name, NoteVerifierKey, Origin, open_checkpoint,
};
use rainlogs_runtime::{ObjectStore, ServiceContext};
use rainlogs_schemas::events::{Method, ZoneAdded};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_store::{Backend, FsStore, ObjectKey, Store};
use rainlogs_telemetry::{Health, Telemetry};
use rainlogs_testkit::{NatsServer, TestDatabase, free_port};

const MIB: usize = 1 << 20;
const TENANT: &str = "acme";
/// The example scenario's EU-only zone (enterprise: Logpush is offered, Logpull is not).
const EU_ONLY_ZONE: &str = "4c3f2e1d0a9b8c7d6e5f4a3b2c1d0e9f";
/// The example scenario's Enterprise zone with Logpull: its short windows can be repaired, so
/// the collector also keeps every pushed record's Ray ID until the window is checked.
const ENTERPRISE_ZONE: &str = "3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e";

/// The zone pushed to: the EU-only one, or with `LOGPUSH_BENCH_ZONE=enterprise` the Enterprise
/// one, to measure what keeping Ray IDs for repairs costs.
fn zone() -> &'static str {
    match std::env::var("LOGPUSH_BENCH_ZONE").as_deref() {
        Ok("enterprise") => ENTERPRISE_ZONE,
        _ => EU_ONLY_ZONE,
    }
}
const TOKEN: &str = "cfut_full_access_token_0000000000000000";
/// What the generator writes, as the zone's explicit field list.
const FIELDS: &str = "CacheCacheStatus,ClientCountry,ClientIP,ClientRequestHost,\
                      ClientRequestMethod,ClientRequestPath,ClientRequestUserAgent,\
                      EdgeResponseBytes,EdgeResponseStatus,EdgeStartTimestamp,\
                      OriginResponseStatus,RayID,SecurityAction,WAFAttackScore";
const WINDOW_SECS: i64 = 60;
const LATENESS_SECS: i64 = 60;
/// `RayID` is the record's counter times this (odd, so invertible modulo 2^64).
const RAY_MUL: u64 = 0x9e37_79b9_7f4a_7c15;
/// The bench gives up when nothing moves (records filed, windows closed, entries sealed) this long.
const STALL: Duration = Duration::from_secs(180);

/// Peak RSS (VmHWM) of a process, `self` or a pid, in MiB.
fn peak_rss_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// About `bytes` of NDJSON shaped like Cloudflare's http_requests lines, records from `first`
/// on, record `n` dated `time_ns(n)`.
fn ndjson(first: u64, bytes: usize, time_ns: impl Fn(u64) -> i64) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(bytes + 1024);
    let mut n = first;
    while out.len() < bytes {
        writeln!(
            out,
            "{{\"CacheCacheStatus\":\"{}\",\"ClientCountry\":\"de\",\"ClientIP\":\"198.51.100.{}\",\
             \"ClientRequestHost\":\"sovereign.example.eu\",\"ClientRequestMethod\":\"GET\",\
             \"ClientRequestPath\":\"/api/v2/items/{}\",\
             \"ClientRequestUserAgent\":\"Mozilla/5.0 (X11; Linux x86_64)\",\
             \"EdgeResponseBytes\":{},\"EdgeResponseStatus\":{},\"EdgeStartTimestamp\":{},\
             \"OriginResponseStatus\":200,\"RayID\":\"{:016x}\",\"SecurityAction\":\"\",\
             \"WAFAttackScore\":{}}}",
            if n.is_multiple_of(3) { "hit" } else { "miss" },
            n % 250,
            n % 10_007,
            1_000 + (n * 7919) % 90_000,
            if n.is_multiple_of(50) { 404 } else { 200 },
            time_ns(n),
            n.wrapping_mul(RAY_MUL),
            n % 99,
        )
        .unwrap();
        n += 1;
    }
    (out, n - first)
}

/// The record counter back from an archived line's `RayID`.
fn counter_of(line: &str, inverse: u64) -> Option<u64> {
    let at = line.find("\"RayID\":\"")? + 9;
    let hex = line.get(at..at + 16)?;
    Some(u64::from_str_radix(hex, 16).ok()?.wrapping_mul(inverse))
}

/// The multiplicative inverse of an odd number modulo 2^64 (Newton's iteration).
fn inverse_mod_2_64(odd: u64) -> u64 {
    let mut inverse = odd;
    for _ in 0..6 {
        inverse = inverse.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inverse)));
    }
    assert_eq!(odd.wrapping_mul(inverse), 1);
    inverse
}

/// `gzip -6` (what flate2's default level makes too), by the command the baseline uses.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .args(["-6", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip must be installed");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut out = Vec::with_capacity(bytes.len() / 4);
    std::thread::scope(|s| {
        s.spawn(move || stdin.write_all(bytes).unwrap());
        stdout.read_to_end(&mut out).unwrap();
    });
    assert!(child.wait().unwrap().success());
    out
}

/// Seconds `gzip -d | zstd -3 -T1 | openssl dgst -sha256` takes over the bodies.
fn baseline(bodies: &[Bytes]) -> f64 {
    let started = Instant::now();
    let mut child = Command::new("sh")
        .args([
            "-c",
            "gzip -d | zstd -3 -T1 -c | openssl dgst -sha256 > /dev/null",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("gzip, zstd and openssl must be installed");
    let mut stdin = child.stdin.take().unwrap();
    for body in bodies {
        stdin.write_all(body).unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    started.elapsed().as_secs_f64()
}

/// The most recently modified Rust source or manifest under `dir`, and when.
fn newest_source(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let found = if path.is_dir() {
            // What goes into the binary: not tests, examples (this one) or build output.
            if name.starts_with('.') || ["target", "tests", "examples", "benches"].contains(&&*name)
            {
                continue;
            }
            newest_source(&path)
        } else if name.ends_with(".rs") || name == "Cargo.toml" {
            entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .map(|t| (t, path))
        } else {
            None
        };
        newest = newest.max(found);
    }
    newest
}

/// `target/release/rainlogs`, which must exist; a warning when it is older than the sources.
fn rainlogs_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/release/examples/logpush_bench -> target/release/rainlogs
    let expected = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("rainlogs"))
        .expect("target dir");
    if !expected.exists() {
        eprintln!(
            "error: {} is missing. The archiver and sealer run from the release binary; build it \
             first with the same CARGO_TARGET_DIR:\n    cargo build --release -p rainlogs",
            expected.display()
        );
        std::process::exit(2);
    }
    let path = rainlogs_testkit::workspace_binary("rainlogs");
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    let sources = ["services", "schemas", "tools"]
        .iter()
        .filter_map(|d| newest_source(&workspace.join(d)))
        .max();
    if let (Some(built), Some((changed, file))) = (built, sources)
        && changed > built
    {
        eprintln!(
            "warning: {} is older than {} (changed since the build); the archiver/sealer \
             process may not run the current code (cargo build --release -p rainlogs)",
            path.display(),
            file.display()
        );
    }
    path
}

/// The `rainlogs run --dev` child with the archiver and sealer (as `tests/common` starts it).
struct Pipeline {
    child: Child,
    telemetry: u16,
}

impl Pipeline {
    fn spawn(binary: &Path, nats: &str, db: &str, data: &Path) -> Self {
        let telemetry = free_port();
        let log = std::fs::File::create(data.join("run-0.log")).expect("log file");
        let child = Command::new(binary)
            .args([
                "run",
                "--dev",
                "--service",
                "archiver",
                "--service",
                "sealer",
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RAINLOGS__NATS__URL", nats)
            .env("RAINLOGS__DATABASE__URL", db)
            .env("RAINLOGS__STORE__URL", data.join("archive"))
            .env("RAINLOGS__SERVICE__DATA_DIR", data.join("data"))
            .env(
                "RAINLOGS__TELEMETRY__LISTEN",
                format!("127.0.0.1:{telemetry}"),
            )
            .env(
                "RAINLOGS__API__LISTEN",
                format!("127.0.0.1:{}", free_port()),
            )
            .env("RUST_LOG", "info")
            // The bench's windows (January 2026) are long past: the shortest retention allowed.
            .env("RAINLOGS__RETENTION__DEFAULT_DAYS", "7")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn rainlogs");
        Self { child, telemetry }
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("http://127.0.0.1:{}/ready", self.telemetry);
        loop {
            if let Ok(resp) = reqwest::get(&url).await
                && resp.status() == 200
            {
                return;
            }
            assert!(
                self.child.try_wait().expect("wait").is_none(),
                "rainlogs exited before ready"
            );
            assert!(Instant::now() < deadline, "rainlogs never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Peak RSS just before it is killed.
    fn kill(self) -> f64 {
        peak_rss_mib(&self.child.id().to_string())
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The WARN and ERROR lines of the child's log.
fn log_problems(data: &Path) -> Vec<String> {
    std::fs::read_to_string(data.join("run-0.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .map(str::to_owned)
        .collect()
}

/// The zone's bucket as an auditor reads it (as `tests/common` does).
struct Bucket {
    store: Store,
    verifier: NoteVerifierKey,
    origin: Origin,
    prefix: BucketPrefix,
}

impl Bucket {
    async fn open(data: &Path) -> Self {
        let store = Store::Single(Backend::Fs(
            FsStore::open(&data.join("archive")).await.expect("store"),
        ));
        let signing_key = std::fs::read_to_string(data.join("data/dev-secrets/signing_key"))
            .expect("dev signing key");
        let verifier = NoteVerifierKey::parse(
            &rainlogs_sealer::verifier_key_text(&signing_key).expect("valid key"),
        )
        .expect("verifier key");
        let origin = Origin::new(
            &Name::new(TENANT).expect("tenant"),
            &Name::new(zone()).expect("zone"),
        );
        Self {
            store,
            verifier,
            origin,
            prefix: BucketPrefix::default(),
        }
    }

    /// Size of the latest checkpoint (0 when there is none or it does not verify).
    async fn checkpoint_size(&self) -> u64 {
        let key = ObjectKey::new(self.prefix.checkpoint_key(&self.origin)).expect("key");
        match self.store.get_bytes(&key).await {
            Ok(note) => open_checkpoint(&note, &self.origin, std::slice::from_ref(&self.verifier))
                .map(|c| c.checkpoint.size)
                .unwrap_or(0),
            Err(_) => 0,
        }
    }
}

/// The zone's chain entries as published on `rl.chain.<zone>`, in order.
async fn chain_entries(bus: &Bus) -> Vec<Entry> {
    let chain = bus.js.get_stream("RL_CHAIN").await.expect("stream");
    let mut entries = Vec::new();
    let mut next = 1;
    while let Ok(message) = chain
        .direct_get_next_for_subject(subjects::chain(zone()), Some(next))
        .await
    {
        next = message.sequence + 1;
        let Event::EntrySealed(sealed) = Envelope::from_cbor(&message.payload)
            .expect("envelope")
            .event
        else {
            panic!("not an entry");
        };
        entries.push(Entry::decode(&sealed.entry).expect("entry"));
    }
    entries
}

/// Closes on `rl.batch.<zone>`.
/// The zone's closes on `RL_BATCH`, of one dataset or of all.
async fn closes_on_stream(bus: &Bus, dataset: Option<&str>) -> u64 {
    let stream = bus.js.get_stream("RL_BATCH").await.expect("stream");
    let mut count = 0;
    let mut next = 1;
    while let Ok(message) = stream
        .direct_get_next_for_subject(subjects::batch(zone()), Some(next))
        .await
    {
        next = message.sequence + 1;
        if let Ok(Envelope {
            event: Event::WindowClosed(closed),
            ..
        }) = Envelope::from_cbor(&message.payload)
            && dataset.is_none_or(|d| closed.dataset == d)
        {
            count += 1;
        }
    }
    count
}

/// The sum of a counter family's series for the zone, by label value of `by` (all when `None`).
fn counter(telemetry: &Telemetry, family: &str, by: Option<(&str, &str)>) -> u64 {
    let zone_label = format!("zone=\"{}\"", zone());
    let label = by.map(|(k, v)| format!("{k}=\"{v}\""));
    telemetry
        .render()
        .lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) && l.contains(&zone_label))
        .filter(|l| label.as_ref().is_none_or(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// The bearer secret of the zone's `http_requests` job, read back from the simulator's job list.
async fn job_secret(sim: &cf_sim::RunningSim) -> Option<String> {
    let answer: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/zones/{}/logpush/jobs", sim.base_url(), zone()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let job = answer["result"]
        .as_array()?
        .iter()
        .find(|job| job["name"] == "rainlogs" && job["dataset"] == "http_requests")?;
    let destination = job["destination_conf"].as_str()?;
    let (_, secret) = destination.split_once("header_Authorization=Bearer%20")?;
    Some(secret.split('&').next()?.to_owned())
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let pushes: usize = args.next().map_or(32, |a| a.parse().unwrap());
    let push_mib: usize = args.next().map_or(16, |a| a.parse().unwrap());
    let concurrency: usize = args.next().map_or(4, |a| a.parse().unwrap()).max(1);
    let binary = rainlogs_binary();
    let data = tempfile::tempdir().expect("data dir");
    // Everything `bench` started (NATS, database, child process, services) is stopped when it
    // returns; the data directory (the child's log, the archive) is kept when it failed.
    if let Err(what) = bench(&binary, data.path(), pushes, push_mib, concurrency).await {
        eprintln!("\n!!! BENCHMARK FAILED: {what}");
        let problems = log_problems(data.path());
        eprintln!(
            "--- {} WARN/ERROR lines in the archiver/sealer log {}:",
            problems.len(),
            data.path().join("run-0.log").display()
        );
        for line in problems.iter().take(60) {
            eprintln!("{line}");
        }
        eprintln!("--- data kept in {}", data.keep().display());
        std::process::exit(1);
    }
}

async fn bench(
    binary: &Path,
    data: &Path,
    pushes: usize,
    push_mib: usize,
    concurrency: usize,
) -> Result<(), String> {
    // Content: records dated evenly over PUSHES minutes from t0 + 30 s.
    let t0: i64 = time::macros::datetime!(2026-01-15 12:00 UTC).unix_timestamp();
    let first_ns = (t0 + 30) * 1_000_000_000;
    let per_mib = ndjson(0, MIB, |_| first_ns).1;
    let estimated = per_mib * (push_mib * pushes) as u64;
    let step_ns = (pushes as i64 * WINDOW_SECS * 1_000_000_000) / estimated.max(1) as i64;
    let time_ns = |n: u64| first_ns + n as i64 * step_ns;
    let mut bodies = Vec::with_capacity(pushes);
    let (mut records, mut plain) = (0u64, 0usize);
    for _ in 0..pushes {
        let (text, count) = ndjson(records, push_mib * MIB, time_ns);
        records += count;
        plain += text.len();
        bodies.push(Bytes::from(gzip(&text)));
    }
    let last_second = time_ns(records - 1).div_euclid(1_000_000_000);
    let last_window = last_second - last_second.rem_euclid(WINDOW_SECS);
    // The log starts one window before the collector's clock at its first start (t0).
    let log_start = t0 - WINDOW_SECS;
    let expected_closes = u64::try_from((last_window - log_start) / WINDOW_SECS + 1).unwrap();
    let compressed: usize = bodies.iter().map(Bytes::len).sum();
    let mib = plain as f64 / MIB as f64;
    println!(
        "content: {pushes} pushes x {push_mib} MiB = {mib:.1} MiB NDJSON, {records} records, \
         gzip {:.1} MiB (ratio {:.2}); dated {}..{} s after t0, {expected_closes} windows of \
         {WINDOW_SECS} s to close (the log's first, empty one included)",
        compressed as f64 / MIB as f64,
        plain as f64 / compressed as f64,
        30,
        last_second - t0 + 1,
    );
    let base_before = baseline(&bodies);
    println!(
        "baseline gzip -d | zstd -3 -T1 | openssl dgst -sha256: {base_before:.2} s, {:.0} MiB/s",
        mib / base_before,
    );

    // Backbone: a private NATS, a fresh database, the archiver and sealer as a child process.
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let bus = rainlogs_bus::connect(&nats.url).await.unwrap();
    rainlogs_bus::provision(&bus, 1).await.unwrap();
    let mut pipeline = Pipeline::spawn(binary, &nats.url, &db.url, data);
    pipeline.wait_ready().await;

    // The simulator serves the job API only: its clock stays at t0, so it pushes nothing.
    let mut scenario = cf_sim::Scenario::example();
    scenario.limits.per_ip_per_sec = 0;
    let sim = cf_sim::Simulator::start(
        scenario,
        SimOptions {
            clock: Some(ClockStart::FrozenAt(
                time::OffsetDateTime::from_unix_timestamp(t0).unwrap(),
            )),
            ..SimOptions::default()
        },
    )
    .await
    .expect("simulator");

    // The ingest service, in this process.
    let telemetry = rainlogs_telemetry::init(&TelemetrySettings {
        log_level: "warn".into(),
        ..TelemetrySettings::default()
    })
    .unwrap();
    let ingest_store = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = Config::default();
    config.ingest.listen = Some(([127, 0, 0, 1], port).into());
    let shutdown = CancellationToken::new();
    // The services in this process stop whenever `bench` returns, before NATS goes away.
    let _stop_services = shutdown.clone().drop_guard();
    let ctx = ServiceContext {
        config: Arc::new(config),
        bus: bus.clone(),
        db: sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .unwrap(),
        store: ObjectStore {
            store: Store::Single(Backend::Fs(
                FsStore::open(ingest_store.path()).await.unwrap(),
            )),
            prefix: BucketPrefix::default(),
        },
        health: Health::default(),
        telemetry: telemetry.clone(),
        shutdown: shutdown.clone(),
    };
    let ingest = tokio::spawn(rainlogs_ingest::run(ctx));

    // The zone, as onboarding leaves it: collected with Logpush.
    let key = TokenKey::new([7; 32]);
    let added = Envelope::new(
        TENANT,
        Some(zone().into()),
        Actor::operator(),
        Event::ZoneAdded(ZoneAdded {
            zone_id: zone().into(),
            name: "sovereign.example.eu".into(),
            plan: "enterprise".into(),
            method: Method::LogpushHttp,
            fields: FIELDS.into(),
            sealed_token: key.seal(TENANT, zone(), TOKEN),
            token_key_id: key.id().to_owned(),
        }),
    );
    bus.publish(&subjects::control(TENANT), &added)
        .await
        .unwrap();

    // The collector, in this process, on a clock the bench moves.
    let clock = Arc::new(AtomicI64::new(t0));
    let clock_read = Arc::clone(&clock);
    let collector = tokio::spawn(run_collector(
        CollectorDeps {
            bus: bus.clone(),
            settings: CollectorOptions {
                push_url: Some(format!("http://127.0.0.1:{port}")),
                window: Duration::from_secs(WINDOW_SECS as u64),
                logpush_lateness: Duration::from_secs(LATENESS_SECS as u64),
                tick: Duration::from_millis(20),
                retry_base: Duration::from_millis(50),
                retry_max: Duration::from_millis(500),
                // The job is not read back: the simulator's frozen clock is no news.
                recheck: Duration::from_secs(3600),
                client: ClientConfig::with_base_url(sim.base_url()),
                ..CollectorOptions::default()
            },
            keyring: TokenKeyring::new(vec![key]),
            clock: Arc::new(FnClock(move || {
                time::OffsetDateTime::from_unix_timestamp(clock_read.load(Ordering::SeqCst))
                    .unwrap()
            })),
            meter: telemetry.meter("collector"),
            shutdown: shutdown.clone(),
            identity: Identity::fresh(),
        },
        || {},
    ));

    // The collector makes the job; its secret is what the bench pushes with.
    let secret = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(secret) = job_secret(&sim).await {
                break secret;
            }
            if Instant::now() > deadline {
                return Err("the collector made no Logpush job at the simulator".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let url = format!(
        "http://127.0.0.1:{port}/logpush/v1/{}/http_requests",
        zone()
    );
    let client = reqwest::Client::new();
    // Ready once the ingest endpoint knows the secret: a destination check answers 200.
    loop {
        let check = client
            .post(&url)
            .bearer_auth(&secret)
            .body(gzip(b"{\"content\":\"tests\"}"))
            .send()
            .await;
        if check.is_ok_and(|r| r.status() == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_before = peak_rss_mib("self");

    // Push everything.
    let started = Instant::now();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, bodies, next, secret) = (
                client.clone(),
                url.clone(),
                bodies.clone(),
                next.clone(),
                secret.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(body) = bodies.get(i) else {
                        return Ok(());
                    };
                    let response = client
                        .post(&url)
                        .bearer_auth(&secret)
                        .body(body.clone())
                        .send()
                        .await
                        .map_err(|e| format!("push {i}: {e}"))?;
                    if response.status() != 200 {
                        return Err(format!(
                            "push {i}: {} {:?}",
                            response.status(),
                            response.text().await
                        ));
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        if let Err(e) = worker.await.unwrap() {
            return Err(format!("a push was refused: {e}"));
        }
    }
    let pushed_at = started.elapsed().as_secs_f64();
    println!(
        "  {pushed_at:7.2} s  every push answered 200 (stored in RL_PUSH): {:.0} MiB/s",
        mib / pushed_at
    );

    // Until the collector has filed every pushed record, then past the last window's lateness.
    let pushed_family = rainlogs_collector::metrics::PUSHED_RECORDS.exposed_name();
    let windows_family = rainlogs_collector::metrics::WINDOWS.exposed_name();
    let bucket = Bucket::open(data).await;
    let mut progress = (0, 0, 0);
    let mut moved = Instant::now();
    let mut filed_at = None;
    let mut closed_at = None;
    let sealed_at = loop {
        let read = counter(&telemetry, &pushed_family, None);
        // The zone's security events have windows of their own (empty here), sealed too.
        let closes = counter(
            &telemetry,
            &windows_family,
            Some(("dataset", "http_requests")),
        );
        let all_closes = counter(&telemetry, &windows_family, None);
        let sealed = bucket.checkpoint_size().await;
        let elapsed = started.elapsed().as_secs_f64();
        if filed_at.is_none() && read >= records {
            filed_at = Some(elapsed);
            let on_time = counter(&telemetry, &pushed_family, Some(("fate", "on_time")));
            println!(
                "  {elapsed:7.2} s  the collector filed every record ({on_time} on time of {read} \
                 read); its clock moves from t0 to t0 + {} s",
                last_window + WINDOW_SECS + LATENESS_SECS - t0
            );
            clock.store(last_window + WINDOW_SECS + LATENESS_SECS, Ordering::SeqCst);
        }
        if closed_at.is_none() && closes >= expected_closes {
            closed_at = Some(elapsed);
            println!("  {elapsed:7.2} s  every window closed ({closes} closes)");
        }
        if closed_at.is_some() && sealed >= all_closes {
            println!("  {elapsed:7.2} s  a signed checkpoint covers all {sealed} entries");
            break elapsed;
        }
        if (read, closes, sealed) != progress {
            progress = (read, closes, sealed);
            moved = Instant::now();
        } else if moved.elapsed() > STALL {
            return Err(format!(
                "stalled for {} s: {read} of {records} records read by the collector, {closes} \
                 of {expected_closes} windows closed, {sealed} entries signed",
                STALL.as_secs()
            ));
        }
        if let Some(status) = pipeline.exited() {
            return Err(format!("the archiver/sealer process exited: {status}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let rss_bench = peak_rss_mib("self");
    let rss_child = pipeline.kill();
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(20), collector).await;
    let _ = tokio::time::timeout(Duration::from_secs(20), ingest).await;
    // Once more now that the pipeline is stopped; the ratio is to the mean of both runs, and a
    // large difference between them says the machine was busy with something else.
    let base_after = baseline(&bodies);
    let base = f64::midpoint(base_before, base_after);
    println!(
        "baseline again, after the pipeline: {base_after:.2} s, {:.0} MiB/s",
        mib / base_after
    );

    println!(
        "pipeline ({concurrency} pushes at a time) -> sealed: {sealed_at:.2} s, {:.1} MiB/s \
         NDJSON, {:.0}k records/s",
        mib / sealed_at,
        records as f64 / sealed_at / 1000.0
    );
    println!(
        "  phases: pushes {pushed_at:.2} s, filing done +{:.2} s, windows closed +{:.2} s, \
         sealed +{:.2} s",
        filed_at.unwrap_or(0.0) - pushed_at,
        closed_at.unwrap_or(0.0) - filed_at.unwrap_or(0.0),
        sealed_at - closed_at.unwrap_or(0.0),
    );
    println!(
        "ratio to baseline: {:.3} (baseline {:.0} MiB/s, the mean of both runs; pipeline \
         {:.1} MiB/s)",
        base / sealed_at,
        mib / base,
        mib / sealed_at
    );
    println!(
        "peak RSS: bench process (ingest + collector + client) {rss_before:.0} MiB before the \
         pushes (gzip bodies {:.0} MiB), {rss_bench:.0} MiB at the end; archiver + sealer process \
         {rss_child:.0} MiB",
        compressed as f64 / MIB as f64,
    );

    // Checks: the simulator pushed nothing, every record archived exactly once, verify passes.
    let mut problems = Vec::new();
    let deliveries = sim.logpush_deliveries(zone());
    if deliveries.is_empty() {
        println!("check: the simulator's job delivered nothing of its own (frozen clock)");
    } else {
        problems.push(format!(
            "the simulator's job delivered {} batches of its own: {deliveries:?}",
            deliveries.len()
        ));
    }
    let by_fate = |fate| counter(&telemetry, &pushed_family, Some(("fate", fate)));
    let (late, duplicate, before, unreadable) = (
        by_fate("late"),
        by_fate("duplicate"),
        by_fate("before_start"),
        by_fate("unreadable"),
    );
    if late + duplicate + before + unreadable > 0 {
        problems.push(format!(
            "collector fates: {late} late, {duplicate} duplicate, {before} before the log's \
             start, {unreadable} unreadable (all should be 0)"
        ));
    }
    let closes = closes_on_stream(&bus, Some("http_requests")).await;
    let all_closes = closes_on_stream(&bus, None).await;
    let entries = chain_entries(&bus).await;
    let (mut counted, mut objects, mut archives, mut lates, mut empties) = (0, 0u64, 0, 0, 0);
    let mut seen = vec![false; usize::try_from(records).unwrap()];
    let (mut archived, mut twice, mut foreign) = (0u64, 0u64, 0u64);
    let inverse = inverse_mod_2_64(RAY_MUL);
    for entry in &entries {
        let record = match &entry.body {
            EntryBody::Archive(record) => {
                archives += 1;
                record
            }
            EntryBody::Late(record) => {
                lates += 1;
                record
            }
            EntryBody::Empty(_) => {
                empties += 1;
                continue;
            }
            _ => continue,
        };
        counted += record.record_count;
        let bytes = bucket
            .store
            .get_bytes(&ObjectKey::new(&record.object.key).expect("key"))
            .await
            .expect("archive object");
        objects += bytes.len() as u64;
        let mut content = String::new();
        ArchiveReader::new(std::io::Cursor::new(bytes.to_vec()))
            .expect("zstd")
            .read_to_string(&mut content)
            .expect("archive content");
        for line in content.lines().filter(|l| !l.is_empty()) {
            archived += 1;
            match counter_of(line, inverse).and_then(|n| seen.get_mut(usize::try_from(n).ok()?)) {
                Some(seen) if *seen => twice += 1,
                Some(seen) => *seen = true,
                None => foreign += 1,
            }
        }
    }
    let missing = seen.iter().filter(|s| !**s).count();
    println!(
        "archive: {} chain entries ({archives} archive, {lates} late, {empties} empty) for \
         {all_closes} closes ({closes} of http_requests); {archived} records in the objects ({:.1} MiB zstd), {counted} by the \
         entries' record_count; pushed {records}",
        entries.len(),
        objects as f64 / MIB as f64
    );
    if entries.len() as u64 != all_closes {
        problems.push(format!(
            "{} chain entries for {all_closes} closes",
            entries.len()
        ));
    }
    if closes != expected_closes {
        problems.push(format!("{closes} closes, {expected_closes} expected"));
    }
    if archived != records || counted != records || missing > 0 || twice > 0 || foreign > 0 {
        problems.push(format!(
            "RECORDS LOST OR DUPLICATED: pushed {records}, archived {archived} (record_count \
             {counted}); {missing} pushed records missing, {twice} archived twice, {foreign} \
             not pushed by the bench"
        ));
    }
    let verify_started = Instant::now();
    let mut options =
        rainlogs_verify::VerifyOptions::new(TENANT, zone(), vec![bucket.verifier.clone()])
            .expect("options");
    // Every archive decompressed, its content hash and record count checked; no gap allowed.
    options.deep = true;
    options.fail_on_gap = true;
    let report = rainlogs_verify::verify(&bucket.store, &options).await;
    if report.exit_code() == 0 {
        println!(
            "check: rainlogs-verify --deep passes, no gaps ({:.1} s)",
            verify_started.elapsed().as_secs_f64()
        );
    } else {
        problems.push(format!("rainlogs-verify fails:\n{}", report.to_human()));
    }
    // `--dev` on a local directory always warns about its generated secrets and the missing
    // Object Lock; anything else is shown.
    let (expected, child_problems): (Vec<String>, Vec<String>) =
        log_problems(data).into_iter().partition(|l| {
            l.contains("--dev generated development secrets")
                || (l.contains("storage posture") && l.contains("no Object Lock"))
        });
    if child_problems.is_empty() {
        println!(
            "check: no WARN/ERROR lines in the archiver/sealer log but the {} of --dev \
             (generated secrets, no Object Lock on a local directory)",
            expected.len()
        );
    } else {
        println!(
            "note: {} unexpected WARN/ERROR lines in the archiver/sealer log:",
            child_problems.len()
        );
        for line in child_problems.iter().take(20) {
            println!("  {line}");
        }
    }
    sim.shutdown().await;
    if !problems.is_empty() {
        return Err(problems.join("\n!!! "));
    }
    println!("ok: {records} records pushed, archived once each and sealed");
    Ok(())
}
