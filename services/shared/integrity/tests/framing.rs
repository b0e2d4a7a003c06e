//! Archive framing: multi-frame zstd that still decodes as one stream, hashes and record counts
//! that match an independent computation, and line-aligned frames.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use rainlogs_integrity::framing::{ArchiveWriter, FrameInfo, digest_archive, digest_stored};
use rainlogs_integrity::{ArchiveDigest, ArchiveReader, Sha256Hash};

/// About `target` bytes of NDJSON lines of varied length, like Cloudflare HTTP request logs.
fn ndjson(target: usize) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(target + 1024);
    let mut lines = 0u64;
    let mut i = 0u64;
    while out.len() < target {
        let pad = "a".repeat((i % 300) as usize);
        out.extend_from_slice(
            format!(
                "{{\"RayID\":\"{:016x}\",\"EdgeStartTimestamp\":{},\"ClientRequestPath\":\"/p/{pad}\",\"EdgeResponseStatus\":{}}}\n",
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                1_768_485_600_000_000_000u64 + i * 1000,
                200 + (i % 5)
            )
            .as_bytes(),
        );
        lines += 1;
        i += 1;
    }
    (out, lines)
}

fn write_archive(content: &[u8], chunk: usize) -> (Vec<u8>, ArchiveDigest, Vec<FrameInfo>) {
    let mut writer = ArchiveWriter::new(Vec::new()).unwrap();
    for piece in content.chunks(chunk) {
        writer.write_all(piece).unwrap();
    }
    writer.finish().unwrap()
}

/// Splits a .zst file into its frames using zstd's own frame-size parser.
fn split_frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    while !data.is_empty() {
        let len = zstd::zstd_safe::find_frame_compressed_size(data).unwrap();
        let (frame, rest) = data.split_at(len);
        frames.push(frame);
        data = rest;
    }
    frames
}

#[test]
fn a_few_mib_become_several_line_aligned_frames_with_matching_digests() {
    let (content, lines) = ndjson(5 * 1024 * 1024 + 12345);
    // Odd write sizes exercise cutting inside a caller's chunk.
    let (stored, digest, frames) = write_archive(&content, 77_777);

    assert_eq!(digest.content_sha256, Sha256Hash::digest(&content));
    assert_eq!(digest.content_size, content.len() as u64);
    assert_eq!(digest.record_count, lines);
    assert_eq!(digest.stored_sha256, Sha256Hash::digest(&stored));
    assert_eq!(digest.stored_size, stored.len() as u64);

    let raw_frames = split_frames(&stored);
    assert!(raw_frames.len() >= 5, "only {} frames", raw_frames.len());
    assert_eq!(raw_frames.len(), frames.len());
    let mut records_before = 0u64;
    for (raw, info) in raw_frames.iter().zip(&frames) {
        let start = info.stored_offset as usize;
        assert_eq!(&stored[start..start + info.stored_len as usize], *raw);
        // Each frame decodes on its own, ends at a line end and is at most ~1 MiB.
        let text = zstd::decode_all(*raw).unwrap();
        assert!(text.len() <= 1 << 20, "frame of {} bytes", text.len());
        assert_eq!(text.last(), Some(&b'\n'));
        let c = info.content_offset as usize;
        assert_eq!(text, content[c..c + info.content_len as usize]);
        assert_eq!(info.first_record, records_before);
        records_before += text.iter().filter(|&&b| b == b'\n').count() as u64;
    }

    // One stream for the zstd crate...
    assert_eq!(zstd::decode_all(stored.as_slice()).unwrap(), content);
    // ...and for our reader, which recomputes the same digest.
    let mut reader = ArchiveReader::new(stored.as_slice()).unwrap();
    let mut back = Vec::new();
    reader.read_to_end(&mut back).unwrap();
    assert_eq!(back, content);
    assert_eq!(reader.finish().unwrap(), digest);
    assert_eq!(digest_archive(stored.as_slice()).unwrap(), digest);
    assert_eq!(
        digest_stored(stored.as_slice()).unwrap(),
        (digest.stored_size, digest.stored_sha256)
    );
}

#[test]
fn the_zstd_cli_decodes_the_archive_as_one_stream() {
    let (content, _) = ndjson(3 * 1024 * 1024);
    let (stored, _, frames) = write_archive(&content, 1 << 16);
    assert!(frames.len() >= 3);
    let mut child = Command::new("zstd")
        .args(["-d", "-c", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the zstd command-line tool is required for this test (apt-get install zstd)");
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(&stored));
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(output.status.success());
    assert_eq!(output.stdout, content);
}

#[test]
fn a_line_longer_than_the_frame_target_is_never_split() {
    let mut content = b"short\n".to_vec();
    content.extend(std::iter::repeat_n(b'x', 300));
    content.extend_from_slice(b"\nend\n");
    let mut writer = ArchiveWriter::with_options(Vec::new(), 3, 64).unwrap();
    writer.write_all(&content).unwrap();
    let (stored, digest, frames) = writer.finish().unwrap();
    assert_eq!(digest.record_count, 3);
    for raw in split_frames(&stored) {
        assert_eq!(zstd::decode_all(raw).unwrap().last(), Some(&b'\n'));
    }
    assert!(frames.iter().any(|f| f.content_len > 300));
}

#[test]
fn corruption_truncation_and_trailing_bytes_are_detected() {
    let (content, _) = ndjson(300_000);
    let (stored, digest, _) = write_archive(&content, 4096);

    let mut flipped = stored.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    match digest_archive(flipped.as_slice()) {
        Err(_) => {}
        Ok(d) => assert_ne!(d, digest, "a flipped bit must change the digest"),
    }
    assert_ne!(
        digest_stored(flipped.as_slice()).unwrap().1,
        digest.stored_sha256
    );

    assert!(
        digest_archive(&stored[..stored.len() - 3]).is_err(),
        "truncated"
    );

    let mut trailing = stored.clone();
    trailing.extend_from_slice(b"junk");
    assert!(
        digest_archive(trailing.as_slice()).is_err(),
        "trailing garbage"
    );
}

#[test]
fn unterminated_last_line_counts_and_empty_lines_do_not() {
    let content = b"{\"a\":1}\n\n{\"a\":2}";
    let (stored, digest, _) = write_archive(content, 3);
    assert_eq!(digest.record_count, 2);
    assert_eq!(zstd::decode_all(stored.as_slice()).unwrap(), content);
}
