//! What the binary's process tests share: the `rainlogs` process with some services, and the
//! zone's bucket as an auditor reads it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rainlogs_bus::Bus;
use rainlogs_integrity::{BucketPrefix, Entry, Name, NoteVerifierKey, Origin, open_checkpoint};
use rainlogs_schemas::{Envelope, Event, subjects};
use rainlogs_store::{Backend, FsStore, ObjectKey, Store};
use rainlogs_testkit::free_port;

pub struct Process {
    child: Child,
    telemetry: u16,
}

/// Starts the binary with `services`; its log goes to `data/run-<n>.log` so a failure can show
/// what it did.
/// The `rainlogs` binary with nothing of this process's environment but `PATH`, configured for
/// NATS at `nats`, PostgreSQL at `db`, the archive in `<data>/archive` and local state in
/// `<data>/data`.
pub fn rainlogs_command(nats: &str, db: &str, data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rainlogs"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RAINLOGS__NATS__URL", nats)
        .env("RAINLOGS__DATABASE__URL", db)
        .env("RAINLOGS__STORE__URL", data.join("archive"))
        .env("RAINLOGS__SERVICE__DATA_DIR", data.join("data"));
    command
}

pub fn spawn_services(
    nats: &str,
    db: &str,
    data: &Path,
    run: u32,
    services: &[&str],
    env: &[(&str, String)],
) -> Process {
    let telemetry = free_port();
    let log = std::fs::File::create(data.join(format!("run-{run}.log"))).expect("log file");
    let mut args = vec!["run", "--dev"];
    for service in services {
        args.extend(["--service", service]);
    }
    let child = rainlogs_command(nats, db, data)
        .args(args)
        .env(
            "RAINLOGS__TELEMETRY__LISTEN",
            format!("127.0.0.1:{telemetry}"),
        )
        .env(
            "RAINLOGS__API__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("RUST_LOG", "info")
        // The shortest retention allowed: the test's windows (January 2026) are long expired.
        .env("RAINLOGS__RETENTION__DEFAULT_DAYS", "7")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn rainlogs");
    Process { child, telemetry }
}

impl Process {
    pub async fn wait_ready(&mut self) {
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

    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

/// A test that fails leaves no process behind.
impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Warnings and errors of every run, for a failure report.
pub fn print_logs(data: &Path, runs: u32) {
    for run in 0..=runs {
        let text = std::fs::read_to_string(data.join(format!("run-{run}.log"))).unwrap_or_default();
        eprintln!("--- run {run}");
        for line in text
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        {
            eprintln!("{line}");
        }
    }
}

/// The zone as an auditor sees it: the local bucket the processes write and the dev key's
/// public half.
pub struct Bucket {
    pub store: Store,
    pub verifier: NoteVerifierKey,
    pub origin: Origin,
    pub prefix: BucketPrefix,
    tenant: String,
    zone: String,
}

impl Bucket {
    pub async fn open(data: &Path, tenant: &str, zone: &str) -> Self {
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
            &Name::new(tenant).expect("tenant"),
            &Name::new(zone).expect("zone"),
        );
        Self {
            store,
            verifier,
            origin,
            prefix: BucketPrefix::default(),
            tenant: tenant.to_owned(),
            zone: zone.to_owned(),
        }
    }

    /// Size of the latest checkpoint (0 when there is none or it does not verify).
    pub async fn checkpoint_size(&self) -> u64 {
        let key = ObjectKey::new(self.prefix.checkpoint_key(&self.origin)).expect("key");
        match self.store.get_bytes(&key).await {
            Ok(note) => open_checkpoint(&note, &self.origin, std::slice::from_ref(&self.verifier))
                .map(|c| c.checkpoint.size)
                .unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// Archive objects of the zone (everything outside `tlog/`).
    /// Keys of the zone's archive and late objects (not their indexes).
    pub async fn archive_objects(&self) -> Vec<String> {
        let mut keys = self.objects().await;
        keys.retain(|k| k.ends_with(rainlogs_integrity::layout::ARCHIVE_SUFFIX));
        keys
    }

    /// Keys of every object of the zone outside `tlog/`.
    pub async fn objects(&self) -> Vec<String> {
        use futures::TryStreamExt as _;
        let tlog = self.prefix.tlog_prefix(&self.origin);
        self.store
            .list(&self.prefix.zone_prefix(&self.origin))
            .map_ok(|o| o.key)
            .try_collect::<Vec<_>>()
            .await
            .expect("list")
            .into_iter()
            .filter(|k| !k.starts_with(&tlog))
            .collect()
    }

    pub async fn verify(&self) -> rainlogs_verify::Report {
        let options = rainlogs_verify::VerifyOptions::new(
            &self.tenant,
            &self.zone,
            vec![self.verifier.clone()],
        )
        .expect("options");
        rainlogs_verify::verify(&self.store, &options).await
    }
}

/// The zone's chain entries as published on `rl.chain.<zone>`, in order.
pub async fn chain_entries(bus: &Bus, zone: &str) -> Vec<Entry> {
    let chain = bus.js.get_stream("RL_CHAIN").await.expect("stream");
    let mut entries = Vec::new();
    let mut next = 1;
    while let Ok(message) = chain
        .direct_get_next_for_subject(subjects::chain(zone), Some(next))
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
