//! Archive objects (docs/FORMAT.md §3): NDJSON exactly as received, zstd-compressed in independent
//! frames of about 1 MiB of content, each ending at a line boundary. The object is a plain `.zst`
//! file (frames concatenated), so `zstd -d` reads it as one stream, while a reader can also start
//! at any frame.
//!
//! The writer and reader hash as they go and hold at most one frame in memory.

use std::io::{self, BufRead, BufReader, Read, Write};

use sha2::{Digest as _, Sha256};

use crate::hash::Sha256Hash;

/// Target uncompressed size of one frame.
pub const DEFAULT_FRAME_TARGET: usize = 1 << 20;
/// zstd level used for archives.
pub const DEFAULT_LEVEL: i32 = 3;

/// Where one frame sits in the object and in the content (a seek index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    pub stored_offset: u64,
    pub stored_len: u64,
    pub content_offset: u64,
    pub content_len: u64,
    /// Index of the first record that starts in this frame.
    pub first_record: u64,
}

/// What the entry of an archive records about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveDigest {
    pub stored_size: u64,
    pub stored_sha256: Sha256Hash,
    pub content_size: u64,
    pub content_sha256: Sha256Hash,
    pub record_count: u64,
}

/// Counts records: non-empty runs of bytes between `\n` separators (a last line without `\n`
/// counts too; empty lines do not).
#[derive(Debug, Clone, Default)]
struct RecordCounter {
    records: u64,
    in_line: bool,
}

impl RecordCounter {
    fn update(&mut self, data: &[u8]) {
        let mut start = 0;
        for newline in memchr::memchr_iter(b'\n', data) {
            if newline > start || self.in_line {
                self.records += 1;
            }
            self.in_line = false;
            start = newline + 1;
        }
        if start < data.len() {
            self.in_line = true;
        }
    }

    fn finish(&self) -> u64 {
        self.records + u64::from(self.in_line)
    }
}

/// Streaming archive writer: `write` NDJSON bytes (any chunking), then [`ArchiveWriter::finish`].
pub struct ArchiveWriter<W: Write> {
    inner: W,
    compressor: zstd::bulk::Compressor<'static>,
    frame_target: usize,
    pending: Vec<u8>,
    compressed: Vec<u8>,
    stored_size: u64,
    stored_hash: Sha256,
    content_size: u64,
    content_hash: Sha256,
    records: RecordCounter,
    pending_first_record: u64,
    frames: Vec<FrameInfo>,
    on_frame: Option<FrameObserver>,
}

/// Called with every frame as it is written: where it lies, and its content.
pub type FrameObserver = Box<dyn FnMut(&FrameInfo, &[u8]) + Send>;

impl<W: Write> ArchiveWriter<W> {
    pub fn new(inner: W) -> io::Result<Self> {
        Self::with_options(inner, DEFAULT_LEVEL, DEFAULT_FRAME_TARGET)
    }

    /// `frame_target` is the uncompressed size after which a frame is cut at the last line end.
    pub fn with_options(inner: W, level: i32, frame_target: usize) -> io::Result<Self> {
        let mut compressor = zstd::bulk::Compressor::new(level)?;
        // A per-frame content checksum lets a reader that seeks to one frame detect bit rot.
        compressor.include_checksum(true)?;
        compressor.include_contentsize(true)?;
        let frame_target = frame_target.max(1);
        Ok(Self {
            inner,
            compressor,
            frame_target,
            pending: Vec::with_capacity(frame_target),
            compressed: Vec::new(),
            stored_size: 0,
            stored_hash: Sha256::new(),
            content_size: 0,
            content_hash: Sha256::new(),
            records: RecordCounter::default(),
            pending_first_record: 0,
            frames: Vec::new(),
            on_frame: None,
        })
    }

    /// Shows every frame to `observer` once it is written (the search index is built from
    /// them, in the same pass as the compression).
    pub fn observe_frames(mut self, observer: FrameObserver) -> Self {
        self.on_frame = Some(observer);
        self
    }

    /// Compresses `pending[..len]` as one frame and writes it out.
    fn emit_frame(&mut self, len: usize) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        let bound = zstd::zstd_safe::compress_bound(len);
        self.compressed.clear();
        self.compressed.reserve(bound);
        self.compressor
            .compress_to_buffer(&self.pending[..len], &mut self.compressed)?;
        self.inner.write_all(&self.compressed)?;
        self.stored_hash.update(&self.compressed);
        let content_offset = self
            .frames
            .last()
            .map_or(0, |f| f.content_offset + f.content_len);
        let frame = FrameInfo {
            stored_offset: self.stored_size,
            stored_len: self.compressed.len() as u64,
            content_offset,
            content_len: len as u64,
            first_record: self.pending_first_record,
        };
        if let Some(observer) = &mut self.on_frame {
            observer(&frame, &self.pending[..len]);
        }
        self.frames.push(frame);
        self.stored_size += self.compressed.len() as u64;
        self.pending.drain(..len);
        // Frames end at a line end, so the next record starts in the next frame.
        self.pending_first_record = self.records.records;
        Ok(())
    }

    /// Flushes the last frame and returns the inner writer, the digest and the frame index.
    pub fn finish(mut self) -> io::Result<(W, ArchiveDigest, Vec<FrameInfo>)> {
        self.emit_frame(self.pending.len())?;
        self.inner.flush()?;
        let digest = ArchiveDigest {
            stored_size: self.stored_size,
            stored_sha256: Sha256Hash(self.stored_hash.finalize().into()),
            content_size: self.content_size,
            content_sha256: Sha256Hash(self.content_hash.finalize().into()),
            record_count: self.records.finish(),
        };
        Ok((self.inner, digest, self.frames))
    }
}

impl<W: Write> Write for ArchiveWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let room = self.frame_target.saturating_sub(self.pending.len());
        // Below the target, take what fits; once full, take only up to the next line end, so
        // the frame can be cut there (a line longer than the target stays whole).
        let taken = if room > 0 {
            room.min(data.len())
        } else {
            memchr::memchr(b'\n', data).map_or(data.len(), |p| p + 1)
        };
        let chunk = &data[..taken];
        self.pending.extend_from_slice(chunk);
        self.content_hash.update(chunk);
        self.content_size += chunk.len() as u64;
        self.records.update(chunk);
        if self.pending.len() >= self.frame_target
            && let Some(last_newline) = memchr::memrchr(b'\n', &self.pending)
        {
            self.emit_frame(last_newline + 1)?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Frames are only cut at line ends near the target; flushing the inner writer is all
        // that can be done without changing the framing.
        self.inner.flush()
    }
}

/// Hashes and counts every byte read through it.
struct HashingReader<R> {
    inner: R,
    size: u64,
    hash: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// Streaming archive reader: `read` yields the NDJSON content; [`ArchiveReader::finish`] returns
/// the digest, for comparison with the entry.
pub struct ArchiveReader<R: Read> {
    decoder: zstd::stream::read::Decoder<'static, BufReader<HashingReader<R>>>,
    content_size: u64,
    content_hash: Sha256,
    records: RecordCounter,
}

impl<R: Read> ArchiveReader<R> {
    pub fn new(inner: R) -> io::Result<Self> {
        let hashing = HashingReader {
            inner,
            size: 0,
            hash: Sha256::new(),
        };
        Ok(Self {
            decoder: zstd::stream::read::Decoder::with_buffer(BufReader::new(hashing))?,
            content_size: 0,
            content_hash: Sha256::new(),
            records: RecordCounter::default(),
        })
    }

    /// Reads any content not yet read, checks nothing follows the last frame, returns the digest.
    pub fn finish(mut self) -> io::Result<ArchiveDigest> {
        io::copy(&mut self, &mut io::sink())?;
        let mut buffered = self.decoder.finish();
        if !buffered.fill_buf()?.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bytes after the last zstd frame",
            ));
        }
        let mut hashing = buffered.into_inner();
        // Drain the source so the stored hash covers every byte of the object.
        let mut tail = Vec::new();
        hashing.read_to_end(&mut tail)?;
        if !tail.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bytes after the last zstd frame",
            ));
        }
        Ok(ArchiveDigest {
            stored_size: hashing.size,
            stored_sha256: Sha256Hash(hashing.hash.finalize().into()),
            content_size: self.content_size,
            content_sha256: Sha256Hash(self.content_hash.finalize().into()),
            record_count: self.records.finish(),
        })
    }
}

impl<R: Read> Read for ArchiveReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.decoder.read(buf)?;
        self.content_hash.update(&buf[..n]);
        self.content_size += n as u64;
        self.records.update(&buf[..n]);
        Ok(n)
    }
}

/// Largest content of one frame a scanner decompresses: far above the 1 MiB target (a single
/// record longer than that stays whole), far below what would exhaust memory.
const MAX_FRAME_CONTENT: usize = 256 << 20;
/// Largest stored frame a scanner buffers while looking for the frame's end.
const MAX_STORED_FRAME: usize = 512 << 20;

/// Reads an archive object one frame at a time: where each frame lies and its content, as the
/// writer showed them to its frame observer. Rebuilding an index from a stored archive needs
/// the frames, which a plain zstd stream hides.
pub struct FrameScanner<R> {
    inner: R,
    buffer: Vec<u8>,
    at_end: bool,
    stored_size: u64,
    stored_hash: Sha256,
    content_size: u64,
    content_hash: Sha256,
    records: RecordCounter,
}

impl<R: Read> FrameScanner<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buffer: Vec::new(),
            at_end: false,
            stored_size: 0,
            stored_hash: Sha256::new(),
            content_size: 0,
            content_hash: Sha256::new(),
            records: RecordCounter::default(),
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let before = self.buffer.len();
        self.buffer.resize(before + (256 << 10), 0);
        let n = self.inner.read(&mut self.buffer[before..])?;
        self.buffer.truncate(before + n);
        self.at_end = n == 0;
        Ok(())
    }

    /// The next frame, `None` after the last.
    pub fn next_frame(&mut self) -> io::Result<Option<(FrameInfo, Vec<u8>)>> {
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
        loop {
            if !self.buffer.is_empty() {
                if let Ok(len) = zstd::zstd_safe::find_frame_compressed_size(&self.buffer) {
                    let stored: Vec<u8> = self.buffer.drain(..len).collect();
                    let content = zstd::bulk::decompress(&stored, MAX_FRAME_CONTENT)
                        .map_err(|e| invalid(format!("frame at byte {}: {e}", self.stored_size)))?;
                    let frame = FrameInfo {
                        stored_offset: self.stored_size,
                        stored_len: len as u64,
                        content_offset: self.content_size,
                        content_len: content.len() as u64,
                        first_record: self.records.records + u64::from(self.records.in_line),
                    };
                    self.stored_hash.update(&stored);
                    self.stored_size += len as u64;
                    self.content_hash.update(&content);
                    self.content_size += content.len() as u64;
                    self.records.update(&content);
                    return Ok(Some((frame, content)));
                }
                if self.at_end {
                    return Err(invalid(format!(
                        "the bytes after byte {} are not a whole zstd frame",
                        self.stored_size
                    )));
                }
                if self.buffer.len() > MAX_STORED_FRAME {
                    return Err(invalid(format!(
                        "no frame ends within {MAX_STORED_FRAME} bytes of byte {}",
                        self.stored_size
                    )));
                }
            } else if self.at_end {
                return Ok(None);
            }
            self.fill()?;
        }
    }

    /// Reads the frames not yet read and returns the digest.
    pub fn finish(mut self) -> io::Result<ArchiveDigest> {
        while self.next_frame()?.is_some() {}
        Ok(ArchiveDigest {
            stored_size: self.stored_size,
            stored_sha256: Sha256Hash(self.stored_hash.finalize().into()),
            content_size: self.content_size,
            content_sha256: Sha256Hash(self.content_hash.finalize().into()),
            record_count: self.records.finish(),
        })
    }
}

/// Decompresses a whole archive and returns its digest (verifier deep mode).
pub fn digest_archive<R: Read>(reader: R) -> io::Result<ArchiveDigest> {
    ArchiveReader::new(reader)?.finish()
}

/// Size and SHA-256 of the stored bytes only (verifier fast mode).
pub fn digest_stored<R: Read>(mut reader: R) -> io::Result<(u64, Sha256Hash)> {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, Sha256Hash(hash.finalize().into())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn count(chunks: &[&[u8]]) -> u64 {
        let mut c = RecordCounter::default();
        for chunk in chunks {
            c.update(chunk);
        }
        c.finish()
    }

    #[test]
    fn a_scanner_sees_the_frames_the_writer_wrote() {
        let content: Vec<u8> = (0..5_000)
            .flat_map(|i| {
                format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 90)).into_bytes()
            })
            .collect();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let shown = seen.clone();
        let mut writer = ArchiveWriter::with_options(Vec::new(), 3, 64 << 10)
            .unwrap()
            .observe_frames(Box::new(move |frame, bytes| {
                shown.lock().unwrap().push((*frame, bytes.to_vec()));
            }));
        for chunk in content.chunks(7_777) {
            writer.write_all(chunk).unwrap();
        }
        let (stored, digest, frames) = writer.finish().unwrap();
        let written = seen.lock().unwrap().clone();
        assert!(frames.len() > 3);
        assert_eq!(written.iter().map(|(f, _)| *f).collect::<Vec<_>>(), frames);
        let mut scanner = FrameScanner::new(&stored[..]);
        let mut scanned = Vec::new();
        while let Some(frame) = scanner.next_frame().unwrap() {
            scanned.push(frame);
        }
        assert_eq!(scanned, written);
        assert_eq!(FrameScanner::new(&stored[..]).finish().unwrap(), digest);
        // A cut object is an error, never a shorter archive.
        let cut = FrameScanner::new(&stored[..stored.len() - 1]).finish();
        assert_eq!(cut.unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn records_are_non_empty_lines_across_chunk_boundaries() {
        assert_eq!(count(&[b""]), 0);
        assert_eq!(count(&[b"\n\n"]), 0);
        assert_eq!(count(&[b"a\nb\n"]), 2);
        assert_eq!(count(&[b"a\nb"]), 2);
        assert_eq!(count(&[b"a", b"b\n", b"\nc"]), 2);
        assert_eq!(count(&[b"a", b"\n"]), 1);
        assert_eq!(count(&[b"ab", b"", b"c"]), 1);
    }
}
