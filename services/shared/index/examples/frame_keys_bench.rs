//! What building a frame's keys costs beside compressing the frame, which the archiver does
//! anyway: 1 MiB frames of records with Cloudflare's default Logpull fields, each compressed
//! (zstd level 3, as archives are) and indexed ([`FrameKeys::build`]) in turn. Reports the
//! archiver's compression throughput with indexing as a ratio to it without (the target is
//! ≥ 0.85), never as a pass/fail on time.
//!
//! ```sh
//! cargo run --release -p rainlogs-index --example frame_keys_bench -- [FRAMES]
//! ```

use std::time::{Duration, Instant};

use rainlogs_index::FrameKeys;

fn frame(seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 << 20);
    let mut state = seed | 1;
    let mut next = || {
        // xorshift64*: deterministic records, no dependency.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    while out.len() < (1 << 20) - 400 {
        let r = next();
        let ip = if r % 5 == 0 {
            format!("2001:db8:{:x}::{:x}", r >> 48 & 0xff, r >> 32 & 0xffff)
        } else {
            format!(
                "{}.{}.{}.{}",
                198 + (r >> 60) % 8,
                r >> 52 & 0xff,
                r >> 44 & 0xff,
                r >> 36 & 0xff
            )
        };
        let start = 1_768_485_600_000_000_000u64 + (r >> 20) % 60_000_000_000;
        out.extend_from_slice(
            format!(
                "{{\"ClientIP\":\"{ip}\",\"ClientRequestHost\":\"www.example.eu\",\"ClientRequestMethod\":\"GET\",\
                 \"ClientRequestURI\":\"/products/{}?page={}\",\"EdgeEndTimestamp\":{},\"EdgeResponseBytes\":{},\
                 \"EdgeResponseStatus\":{},\"EdgeStartTimestamp\":{start},\"RayID\":\"{:016x}\"}}\n",
                r % 977,
                r % 13,
                start + (r % 90_000_000),
                r % 150_000,
                [200, 200, 200, 304, 404, 403][(r % 6) as usize],
                next()
            )
            .as_bytes(),
        );
    }
    out
}

fn main() {
    let frames: usize = std::env::args()
        .nth(1)
        .map_or(64, |a| a.parse().expect("frame count"));
    let content: Vec<Vec<u8>> = (0..frames as u64).map(frame).collect();
    let bytes: usize = content.iter().map(Vec::len).sum();
    let records: usize = content
        .iter()
        .map(|f| f.iter().filter(|b| **b == b'\n').count())
        .sum();
    let mut compressor = zstd::bulk::Compressor::new(3).expect("zstd");
    let (mut compress, mut index) = (Duration::ZERO, Duration::ZERO);
    let (mut stored, mut keys) = (0usize, 0usize);
    for round in 0..2 {
        for f in &content {
            let t = Instant::now();
            let compressed = compressor.compress(f).expect("compress");
            compress += t.elapsed();
            let t = Instant::now();
            let built = FrameKeys::build(f);
            index += t.elapsed();
            if round == 0 {
                stored += compressed.len();
                keys +=
                    built.ray_set.len() + built.networks.v4.len() * 3 + built.networks.v6.len() * 6;
            }
        }
    }
    // Where the time goes: reading the fields alone.
    let t = Instant::now();
    let mut found = 0usize;
    for f in &content {
        for line in f.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let keys = rainlogs_index::record_keys(line);
            found += usize::from(keys.ray.is_some()) + usize::from(keys.client_ip.is_some());
        }
    }
    let fields = t.elapsed();
    let mib = bytes as f64 / f64::from(1 << 20);
    println!(
        "reading the fields alone: {:.0} MiB/s ({found} keys)",
        mib / fields.as_secs_f64()
    );
    println!(
        "{frames} frames, {mib:.0} MiB, {records} records ({:.0} B each, {:.1} B compressed)",
        bytes as f64 / records as f64,
        stored as f64 / records as f64
    );
    println!(
        "compress (zstd -3): {:.0} MiB/s; build keys: {:.0} MiB/s",
        2.0 * mib / compress.as_secs_f64(),
        2.0 * mib / index.as_secs_f64()
    );
    println!(
        "ratio with indexing to without: {:.3} (target >= 0.85)",
        compress.as_secs_f64() / (compress + index).as_secs_f64()
    );
    println!(
        "keys: {:.2} B per record, {:.2} % of the stored bytes",
        keys as f64 / records as f64,
        100.0 * keys as f64 / stored as f64
    );
}
