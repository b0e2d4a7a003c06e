//! Ingest benchmark: simulator NDJSON → batches on RL_BATCH → archiver → sealer → signed
//! checkpoint, on the local directory store, against the practical floor
//! `zstd -3 -T1 | openssl dgst -sha256` over the same bytes in the same run.
//!
//! ```sh
//! cargo run --release -p rainlogs-archiver --example pipeline_bench -- [TOTAL_MIB] [WINDOW_MIB]
//! ```
//! Defaults: 1024 MiB in windows of 64 MiB. Every window carries the same simulator content (one
//! window's worth is generated up front and kept in memory, so the generator is not measured);
//! each gets its own archive. Peak RSS is this process (archiver + sealer + the pool); the NATS
//! server is a separate process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rainlogs_archiver::{Archiver, ArchiverSettings};
use rainlogs_bus::CancellationToken;
use rainlogs_integrity::{BucketPrefix, Name, NoteSigningKey, Origin, open_checkpoint};
use rainlogs_runtime::ObjectStore;
use rainlogs_schemas::events::{BatchCollected, Method, Window, WindowClosed, WindowOutcome};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_sealer::{Sealer, SealerSettings};
use rainlogs_store::{Backend, FsStore, ObjectKey, Store};

const MIB: usize = 1 << 20;
const TENANT: &str = "bench";
const ZONE: &str = "3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e";
/// Uncompressed content per batch: about 1 MB once lz4-compressed, the collector's cut.
const BATCH_CONTENT: usize = 3 * MIB;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One window of default-field Logpull lines from the simulator, at least `bytes` long.
async fn simulator_window(bytes: usize) -> Vec<u8> {
    let scenario = cf_sim::Scenario::from_toml(&format!(
        "seed = 7\n[[zones]]\nid = \"{ZONE}\"\nname = \"bench.example.eu\"\nplan = \"enterprise\"\n\
         account_id = \"9a7806061c88ada191ed06f989cc3dac\"\nrate = 20000.0\nretention = true\n"
    ))
    .unwrap();
    let start = time::macros::datetime!(2026-01-15 12:00 UTC);
    let sim = cf_sim::Simulator::start(
        scenario,
        cf_sim::SimOptions {
            clock: Some(cf_sim::ClockStart::FrozenAt(
                start + Duration::from_secs(86_400),
            )),
            ..cf_sim::SimOptions::default()
        },
    )
    .await
    .unwrap();
    let mut out = Vec::with_capacity(bytes + MIB);
    let mut from = start;
    while out.len() < bytes {
        let to = from + Duration::from_secs(5);
        for line in sim
            .truth(&cf_sim::TruthQuery::http(ZONE, from, to))
            .unwrap()
        {
            out.extend_from_slice(line.as_bytes());
            if !line.ends_with('\n') {
                out.push(b'\n');
            }
        }
        from = to;
    }
    sim.shutdown().await;
    out
}

/// Splits content into batches at line ends.
fn batches(content: &[u8]) -> Vec<(Vec<u8>, u32)> {
    let mut out = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let cut = if rest.len() <= BATCH_CONTENT {
            rest.len()
        } else {
            memchr::memrchr(b'\n', &rest[..BATCH_CONTENT]).map_or(rest.len(), |p| p + 1)
        };
        let (chunk, tail) = rest.split_at(cut);
        let records = chunk.iter().filter(|b| **b == b'\n').count();
        out.push((
            BatchCollected::compress(chunk),
            u32::try_from(records).unwrap(),
        ));
        rest = tail;
    }
    out
}

/// Seconds `zstd -3 -T1 | openssl dgst -sha256` takes over `windows` copies of `content`.
fn baseline(content: &[u8], windows: usize) -> f64 {
    let started = Instant::now();
    let mut child = Command::new("sh")
        .args(["-c", "zstd -3 -T1 -c | openssl dgst -sha256 > /dev/null"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("zstd and openssl must be installed");
    let mut stdin = child.stdin.take().unwrap();
    for _ in 0..windows {
        stdin.write_all(content).unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let total_mib: usize = args.next().map_or(1024, |a| a.parse().unwrap());
    let window_mib: usize = args.next().map_or(64, |a| a.parse().unwrap());
    let windows = total_mib.div_ceil(window_mib).max(1);

    let content = simulator_window(window_mib * MIB).await;
    let prepared = batches(&content);
    let lz4_bytes: usize = prepared.iter().map(|(b, _)| b.len()).sum();
    let records: u64 = prepared.iter().map(|(_, r)| u64::from(*r)).sum();
    let total_bytes = content.len() * windows;
    println!(
        "content: {windows} windows x {:.1} MiB = {:.1} MiB NDJSON ({} lines/window, {} batches/window, lz4 ratio {:.2})",
        content.len() as f64 / MIB as f64,
        total_bytes as f64 / MIB as f64,
        records,
        prepared.len(),
        content.len() as f64 / lz4_bytes as f64
    );

    let base_secs = baseline(&content, windows);
    let base_mbps = total_bytes as f64 / MIB as f64 / base_secs;
    println!("baseline zstd -3 -T1 | openssl dgst -sha256: {base_secs:.2} s, {base_mbps:.0} MiB/s");

    let nats = rainlogs_testkit::NatsServer::start();
    let bus = rainlogs_bus::connect(&nats.url).await.unwrap();
    rainlogs_bus::provision(&bus, 1).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStore {
        store: Store::Single(Backend::Fs(
            FsStore::open(dir.path().join("bucket")).await.unwrap(),
        )),
        prefix: rainlogs_integrity::BucketPrefix::default(),
    };
    let key = NoteSigningKey::generate("rainlogs.bench/sealer").unwrap();
    let verifier = key.verifier_key();
    let stop = CancellationToken::new();
    let archiver = Archiver::start(
        bus.clone(),
        store.clone(),
        ArchiverSettings::new(dir.path().join("work")),
    )
    .await
    .unwrap();
    let sealer = Sealer::start(bus.clone(), store.clone(), key, SealerSettings::default())
        .await
        .unwrap();
    let archiver_task = tokio::spawn(archiver.run(stop.clone()));
    let sealer_task = tokio::spawn(sealer.run(stop.clone()));
    let rss_before = peak_rss_mib();

    let started = Instant::now();
    let subject = subjects::batch(ZONE);
    for n in 0..windows {
        let start = 1_768_485_600 + 60 * n as i64;
        let window = Window {
            start,
            end: start + 60,
        };
        let attempt = uuid::Uuid::now_v7();
        for (seq, (lz4, records)) in prepared.iter().enumerate() {
            let event = Event::BatchCollected(BatchCollected {
                dataset: "http_requests".into(),
                window,
                attempt,
                seq: u32::try_from(seq).unwrap(),
                records: *records,
                received_until: None,
                late: false,
                content_lz4: lz4.clone(),
            });
            let envelope = Envelope::new(
                TENANT,
                Some(ZONE.into()),
                Actor::service("collector"),
                event,
            );
            bus.publish(&subject, &envelope).await.unwrap();
        }
        let closed = Event::WindowClosed(WindowClosed {
            dataset: "http_requests".into(),
            window,
            attempt,
            outcome: WindowOutcome::Complete {
                batches: u32::try_from(prepared.len()).unwrap(),
                records,
                method: Method::Logpull,
                sample_interval: 1,
                fields: "default".into(),
            },
            pushed_through: None,
            late: false,
        });
        let envelope = Envelope::new(
            TENANT,
            Some(ZONE.into()),
            Actor::service("collector"),
            closed,
        );
        bus.publish(&subject, &envelope).await.unwrap();
    }
    let published = started.elapsed().as_secs_f64();

    let origin = Origin::new(&Name::new(TENANT).unwrap(), &Name::new(ZONE).unwrap());
    let checkpoint = ObjectKey::new(BucketPrefix::default().checkpoint_key(&origin)).unwrap();
    loop {
        if let Ok(note) = store.store.get_bytes(&checkpoint).await
            && let Ok(verified) = open_checkpoint(&note, &origin, std::slice::from_ref(&verifier))
            && verified.checkpoint.size == windows as u64
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let mbps = total_bytes as f64 / MIB as f64 / secs;
    let stored: u64 = walk_size(&dir.path().join("bucket"));
    println!(
        "pipeline (publish {published:.2} s) -> {windows} archives sealed and checkpointed: {secs:.2} s, {mbps:.0} MiB/s, {:.0}k lines/s",
        (records * windows as u64) as f64 / secs / 1000.0
    );
    println!(
        "ratio to baseline: {:.2}; stored {:.1} MiB (zstd ratio {:.2})",
        mbps / base_mbps,
        stored as f64 / MIB as f64,
        total_bytes as f64 / stored as f64
    );
    println!(
        "peak RSS: {:.0} MiB before ingest (pool {:.0} MiB content + {:.0} MiB lz4), {:.0} MiB at the end",
        rss_before,
        content.len() as f64 / MIB as f64,
        lz4_bytes as f64 / MIB as f64,
        peak_rss_mib()
    );
    stop.cancel();
    archiver_task.await.unwrap().unwrap();
    sealer_task.await.unwrap().unwrap();
}

fn walk_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            total += walk_size(&path);
        } else if let Ok(meta) = entry.metadata() {
            total += meta.len();
        }
    }
    total
}
