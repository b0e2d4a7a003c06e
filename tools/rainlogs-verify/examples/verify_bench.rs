//! Verification throughput against `openssl dgst -sha256` over the same archive bytes, in the same run.
//!
//! Builds a zone of a few hundred MB of archives in a directory store (with the tamper lab's reference
//! sealer), warms the page cache, then times: openssl over every archive file, the verifier (stored-bytes
//! hashing, the default), and the verifier with `--deep`. Prints MB/s and ratios to openssl.
//!
//! `cargo run --release -p rainlogs-verify --example verify_bench [-- STORED_MIB [JOBS]]` (default 320 MiB, 4 jobs)

#![allow(clippy::unwrap_used, dead_code)]

#[path = "../tests/tamper_lab/support/fixture.rs"]
mod fixture;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fixture::{DAY_NS, MINUTE_NS, ZoneBuilder, now_ns};
use rainlogs_integrity::{CollectionMethod, Sampling, Window};
use rainlogs_store::{Backend, FsStore, Store};
use rainlogs_verify::{VerifyOptions, verify};

const MIB: u64 = 1 << 20;
const PREFIX: &str = "bench";
const TENANT: &str = "acme";
const ZONE: &str = "bench-zone";

/// Log lines with enough random fields to compress about 2:1 (real logs compress 6:1), so a few hundred MB
/// of stored bytes do not need gigabytes of content.
fn content(window: u64, target: usize, seed: &mut u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(target + 512);
    let mut i = 0u64;
    while out.len() < target {
        let mut word = || {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed
        };
        let line = format!(
            r#"{{"ClientIP":"198.51.100.{}","ClientRequestURI":"/p/{:016x}{:016x}?q={:016x}","EdgeStartTimestamp":{},"RayID":"{:016x}","Cookie":"{:016x}{:016x}","ClientRequestUserAgent":"bench/{}","EdgeResponseStatus":200}}"#,
            i % 250,
            word(),
            word(),
            word(),
            window + i,
            word(),
            word(),
            word(),
            i % 97
        );
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        i += 1;
    }
    out
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best: Option<(Duration, T)> = None;
    for _ in 0..runs {
        let start = Instant::now();
        let out = f();
        let elapsed = start.elapsed();
        if best.as_ref().is_none_or(|(d, _)| elapsed < *d) {
            best = Some((elapsed, out));
        }
    }
    best.unwrap()
}

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let stored_mib: u64 = args.next().map_or(320, |a| a.parse().unwrap());
    let jobs: usize = args.next().map_or(4, |a| a.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    let build = Instant::now();
    let (files, stored_bytes) = runtime.block_on(build_zone(dir.path(), stored_mib));
    eprintln!(
        "built {} archives, {:.1} MB stored, in {:.1} s",
        files.len(),
        stored_bytes as f64 / 1e6,
        build.elapsed().as_secs_f64()
    );
    // Warm the page cache so every contender hashes from memory.
    for file in &files {
        std::hint::black_box(std::fs::read(file).unwrap());
    }

    let (openssl, _) = best_of(3, || {
        let status = Command::new("openssl")
            .arg("dgst")
            .arg("-sha256")
            .args(&files)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    });
    let openssl_rate = mb_per_s(stored_bytes, openssl);

    let mut options = VerifyOptions::new(TENANT, ZONE, vec![fixture::pinned()]).unwrap();
    options.prefix = rainlogs_integrity::BucketPrefix::new(PREFIX).unwrap();
    let store = runtime
        .block_on(async { Store::from(Backend::from(FsStore::open(dir.path()).await.unwrap())) });
    let run = |deep: bool, jobs: usize, read_archives: bool| {
        let mut options = options.clone();
        options.deep = deep;
        options.jobs = jobs;
        // A --since after every window skips the archive reads: what remains is the log, tiles and listing.
        options.since_ns = (!read_archives).then_some(u64::MAX);
        best_of(3, || {
            let report = runtime.block_on(verify(&store, &options));
            assert_eq!(report.exit_code(), 0, "{}", report.to_human());
            let expected = if read_archives { stored_bytes } else { 0 };
            assert_eq!(report.summary.archive_bytes_read, expected);
            report
        })
    };
    let (fixed, _) = run(false, jobs, false);
    let (stored_default, _) = run(false, jobs, true);
    let (stored_single, _) = run(false, 1, true);
    let (deep, _) = run(true, jobs, true);

    println!(
        "archive bytes: {:.1} MB in {} objects (page cache warm), {} cores",
        stored_bytes as f64 / 1e6,
        files.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("openssl dgst -sha256 (1 process, all files): {openssl_rate:>8.1} MB/s");
    println!(
        "verifier without archive reads (listing, log, tiles): {:.3} s",
        fixed.as_secs_f64()
    );
    for (label, elapsed) in [
        (format!("rainlogs-verify, --jobs {jobs}"), stored_default),
        ("rainlogs-verify, --jobs 1".to_owned(), stored_single),
        (format!("rainlogs-verify --deep, --jobs {jobs}"), deep),
    ] {
        let rate = mb_per_s(stored_bytes, elapsed);
        let archives_only = mb_per_s(stored_bytes, elapsed.saturating_sub(fixed));
        println!(
            "{label:<40} whole run {rate:>7.1} MB/s = {:.2}x openssl; archive reads alone {archives_only:>7.1} MB/s = {:.2}x",
            rate / openssl_rate,
            archives_only / openssl_rate,
        );
    }
}

/// Writes archives of 16 MiB content each until `stored_mib` of stored bytes is reached, sealing them like a
/// sealer.
async fn build_zone(root: &Path, stored_mib: u64) -> (Vec<std::path::PathBuf>, u64) {
    let store = Store::from(Backend::from(FsStore::open(root).await.unwrap()));
    let now = now_ns();
    let mut zone = ZoneBuilder::new(store, PREFIX, TENANT, ZONE, now);
    let window_ns = 5 * MINUTE_NS;
    // Windows end 30 minutes ago at the latest, so the zone is fresh.
    let start = now - 30 * MINUTE_NS - 2000 * window_ns;
    zone.key_entry(start);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut stored = 0;
    let mut k = 0;
    while stored < stored_mib * MIB {
        let window = Window::new(start + k * window_ns, start + (k + 1) * window_ns).unwrap();
        let ndjson = content(window.start_ns(), (16 * MIB) as usize, &mut seed);
        zone.archive(
            "http_requests",
            window,
            CollectionMethod::Logpull,
            Sampling::UNSAMPLED,
            &ndjson,
            now + DAY_NS,
            false,
            window.end_ns() + MINUTE_NS,
        )
        .await;
        stored += zone.archives.last().unwrap().digest.stored_size;
        if k % 8 == 7 {
            zone.publish().await;
        }
        k += 1;
    }
    // The windows after the archives held no records.
    for j in k..2000 {
        let window = Window::new(start + j * window_ns, start + (j + 1) * window_ns).unwrap();
        zone.empty(
            "http_requests",
            window,
            CollectionMethod::Logpull,
            window.end_ns() + MINUTE_NS,
        );
    }
    zone.finish().await;
    let files = zone.archives.iter().map(|a| root.join(&a.key)).collect();
    let bytes = zone.archives.iter().map(|a| a.digest.stored_size).sum();
    (files, bytes)
}
