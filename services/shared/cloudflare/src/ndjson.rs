//! Incremental NDJSON line splitting over arbitrary body chunks.
//!
//! Lines come back as zero-copy slices of the received bytes whenever a line lies inside one chunk, so nothing is
//! re-serialised and a window is never buffered whole. There is no 64 KiB token limit: a line may grow up to
//! `max_line_bytes`, which exists only to bound memory against a hostile or broken peer.

use bytes::{Bytes, BytesMut};

/// A line longer than this is treated as a protocol failure rather than kept growing in memory.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an NDJSON line exceeded {limit} bytes")]
pub struct LineTooLong {
    pub limit: usize,
}

#[derive(Debug)]
pub struct LineSplitter {
    partial: BytesMut,
    max_line_bytes: usize,
}

impl Default for LineSplitter {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LINE_BYTES)
    }
}

impl LineSplitter {
    pub fn new(max_line_bytes: usize) -> Self {
        Self {
            partial: BytesMut::new(),
            max_line_bytes,
        }
    }

    /// Appends the complete lines found in `chunk` to `out` (without `\n` or `\r\n`; blank lines are skipped).
    pub fn push(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), LineTooLong> {
        let mut start = 0;
        if !self.partial.is_empty() {
            match memchr::memchr(b'\n', &chunk) {
                None => {
                    self.partial.extend_from_slice(&chunk);
                    return self.check_partial();
                }
                Some(newline) => {
                    self.partial.extend_from_slice(&chunk[..newline]);
                    let line = self.partial.split().freeze();
                    self.accept(line, out)?;
                    start = newline + 1;
                }
            }
        }
        while let Some(offset) = memchr::memchr(b'\n', &chunk[start..]) {
            let end = start + offset;
            self.accept(chunk.slice(start..end), out)?;
            start = end + 1;
        }
        if start < chunk.len() {
            self.partial.extend_from_slice(&chunk[start..]);
            self.check_partial()?;
        }
        Ok(())
    }

    /// The last line when the body did not end with a newline.
    pub fn finish(&mut self) -> Option<Bytes> {
        let rest = self.partial.split().freeze();
        let line = strip_cr(rest);
        (!line.is_empty()).then_some(line)
    }

    fn accept(&self, line: Bytes, out: &mut Vec<Bytes>) -> Result<(), LineTooLong> {
        let line = strip_cr(line);
        if line.len() > self.max_line_bytes {
            return Err(LineTooLong {
                limit: self.max_line_bytes,
            });
        }
        if !line.is_empty() {
            out.push(line);
        }
        Ok(())
    }

    fn check_partial(&self) -> Result<(), LineTooLong> {
        // A trailing `\r` still belongs to the terminator, so allow one byte of slack.
        if self.partial.len() > self.max_line_bytes + 1 {
            return Err(LineTooLong {
                limit: self.max_line_bytes,
            });
        }
        Ok(())
    }
}

fn strip_cr(line: Bytes) -> Bytes {
    match line.last() {
        Some(b'\r') => line.slice(..line.len() - 1),
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(chunks: &[&[u8]], max: usize) -> Result<Vec<Vec<u8>>, LineTooLong> {
        let mut splitter = LineSplitter::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.push(Bytes::copy_from_slice(chunk), &mut out)?;
        }
        out.extend(splitter.finish());
        Ok(out.into_iter().map(|b| b.to_vec()).collect())
    }

    #[test]
    fn lines_split_across_chunks_are_joined() {
        let lines = split_all(&[b"{\"a\":1}\n{\"b\"", b":2}\n{", b"\"c\":3}\n"], 1024).unwrap();
        assert_eq!(
            lines,
            vec![
                b"{\"a\":1}".to_vec(),
                b"{\"b\":2}".to_vec(),
                b"{\"c\":3}".to_vec()
            ]
        );
    }

    #[test]
    fn crlf_terminators_are_removed_even_when_split_between_chunks() {
        let lines = split_all(&[b"{\"a\":1}\r", b"\n{\"b\":2}\r\n"], 1024).unwrap();
        assert_eq!(lines, vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
    }

    #[test]
    fn missing_final_newline_still_yields_the_last_line() {
        let lines = split_all(&[b"{\"a\":1}\n{\"b\":2}"], 1024).unwrap();
        assert_eq!(lines.last().unwrap(), b"{\"b\":2}");
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn blank_lines_and_empty_bodies_yield_nothing() {
        assert!(split_all(&[], 1024).unwrap().is_empty());
        assert_eq!(
            split_all(&[b"\n\r\n{}\n\n"], 1024).unwrap(),
            vec![b"{}".to_vec()]
        );
    }

    #[test]
    fn lines_far_beyond_64_kib_survive_byte_for_byte() {
        let long = format!("{{\"Cookies\":\"{}\"}}", "x".repeat(300 * 1024));
        let body = format!("{long}\n{{\"short\":1}}\n");
        let chunks: Vec<&[u8]> = body.as_bytes().chunks(7_000).collect();
        let lines = split_all(&chunks, DEFAULT_MAX_LINE_BYTES).unwrap();
        assert_eq!(lines[0], long.as_bytes());
        assert_eq!(lines[1], b"{\"short\":1}");
    }

    #[test]
    fn lines_over_the_memory_cap_fail_instead_of_growing() {
        assert_eq!(
            split_all(&[b"0123456789\n"], 5),
            Err(LineTooLong { limit: 5 })
        );
        assert_eq!(
            split_all(&[b"0123", b"456789"], 5),
            Err(LineTooLong { limit: 5 })
        );
        assert_eq!(
            split_all(&[b"01234\r\n"], 5).unwrap(),
            vec![b"01234".to_vec()]
        );
    }

    #[test]
    fn single_chunk_lines_are_zero_copy_slices() {
        let chunk = Bytes::from_static(b"{\"a\":1}\n{\"b\":2}\n");
        let mut out = Vec::new();
        LineSplitter::default()
            .push(chunk.clone(), &mut out)
            .unwrap();
        assert_eq!(
            out[0].as_ptr(),
            chunk.as_ptr(),
            "expected a slice of the chunk, not a copy"
        );
    }
}
