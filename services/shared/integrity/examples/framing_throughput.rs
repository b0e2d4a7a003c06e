//! Throughput of the archive writer and reader against the practical floor measured in the same
//! process: one-shot zstd level 3 plus SHA-256 over the same bytes.
//!
//! `cargo run --release -p rainlogs-integrity --example framing_throughput [MiB]`

use std::io::Write;
use std::time::Instant;

use rainlogs_integrity::framing::{ArchiveWriter, digest_archive};
use sha2::{Digest, Sha256};

fn ndjson(target: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(target + 1024);
    let mut i = 0u64;
    while out.len() < target {
        out.extend_from_slice(
            format!(
                "{{\"RayID\":\"{:016x}\",\"EdgeStartTimestamp\":{},\"ClientIP\":\"192.0.2.{}\",\"ClientRequestHost\":\"example.com\",\"ClientRequestMethod\":\"GET\",\"ClientRequestURI\":\"/api/v1/items/{}\",\"EdgeResponseStatus\":{},\"EdgeResponseBytes\":{}}}\n",
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                1_768_485_600_000_000_000u64 + i * 1_000_003,
                i % 250,
                i % 10_000,
                200 + (i % 7) * 50,
                500 + (i * 37) % 20_000
            )
            .as_bytes(),
        );
        i += 1;
    }
    out
}

fn mb_per_s(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 / 1e6 / seconds
}

fn main() -> std::io::Result<()> {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(256);
    let content = ndjson(mib << 20);

    let start = Instant::now();
    let compressed = zstd::bulk::compress(&content, 3)?;
    let floor_digest = Sha256::digest(&content);
    let floor = start.elapsed().as_secs_f64();
    std::hint::black_box(floor_digest);

    let start = Instant::now();
    let mut writer = ArchiveWriter::new(Vec::with_capacity(compressed.len() + (1 << 20)))?;
    for chunk in content.chunks(64 * 1024) {
        writer.write_all(chunk)?;
    }
    let (stored, digest, frames) = writer.finish()?;
    let write = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let read_digest = digest_archive(stored.as_slice())?;
    let read = start.elapsed().as_secs_f64();
    assert_eq!(read_digest, digest);

    println!(
        "content {} MB, {} records, {} frames, ratio {:.2}",
        content.len() / 1_000_000,
        digest.record_count,
        frames.len(),
        content.len() as f64 / stored.len() as f64
    );
    println!(
        "floor  (zstd-3 one shot + sha256): {:.0} MB/s",
        mb_per_s(content.len(), floor)
    );
    println!(
        "writer (frames + 2 hashes + count): {:.0} MB/s = {:.2} x floor",
        mb_per_s(content.len(), write),
        floor / write
    );
    println!(
        "reader (decode + 2 hashes + count): {:.0} MB/s",
        mb_per_s(content.len(), read)
    );
    Ok(())
}
