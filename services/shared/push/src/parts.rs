//! Cutting a push into parts: NDJSON lines, each checked to be a record of the push's dataset,
//! gathered in push order into parts small enough for one NATS message. Cutting is a pure
//! function of the decompressed bytes, so a retried push cuts the same parts and each is stored
//! once.

use rainlogs_cloudflare::LogpushDataset as Dataset;
use serde::Deserialize;

/// Cloudflare checks a destination before it creates the job by pushing one object with a
/// single `content` string (`{"content":"tests"}`); it is answered 200 and stored nowhere.
fn is_destination_check(line: &[u8]) -> bool {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Check {
        #[serde(rename = "content")]
        _content: String,
    }
    serde_json::from_slice::<Check>(line).is_ok()
}

/// Why a push is refused (nothing of it is stored after the refusal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the push decompresses to more than {limit} bytes (ingest.max_push_bytes)")]
    TooLarge { limit: u64 },
    #[error("line {line} is not a {dataset} record: {reason}")]
    NotARecord {
        line: u64,
        dataset: &'static str,
        reason: String,
    },
    #[error("line {line} is a record of {bytes} bytes; one record may be at most {limit}")]
    RecordTooLarge {
        line: u64,
        bytes: usize,
        limit: usize,
    },
}

/// Records of one part, NDJSON, each line ending in `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub content: Vec<u8>,
    pub records: u32,
}

/// What a whole push held, once cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Records(u64),
    /// Cloudflare's destination check.
    DestinationCheck,
}

pub struct Cutter {
    dataset: Dataset,
    part_bytes: usize,
    max_push_bytes: u64,
    /// Bytes after the last newline seen.
    partial: Vec<u8>,
    part: Part,
    lines: u64,
    records: u64,
    total: u64,
    destination_check: bool,
}

impl Cutter {
    /// `part_bytes`: the most NDJSON one part holds (and so the largest record).
    pub fn new(dataset: Dataset, part_bytes: usize, max_push_bytes: u64) -> Self {
        Self {
            dataset,
            part_bytes,
            max_push_bytes,
            partial: Vec::new(),
            part: Part {
                content: Vec::new(),
                records: 0,
            },
            lines: 0,
            records: 0,
            total: 0,
            destination_check: false,
        }
    }

    /// Takes the next decompressed bytes; parts that are full are added to `full`.
    pub fn push(&mut self, mut bytes: &[u8], full: &mut Vec<Part>) -> Result<(), Refusal> {
        self.total += bytes.len() as u64;
        if self.total > self.max_push_bytes {
            return Err(Refusal::TooLarge {
                limit: self.max_push_bytes,
            });
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            let (head, rest) = bytes.split_at(end);
            bytes = &rest[1..];
            if self.partial.is_empty() {
                self.line(head, full)?;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(head);
                self.line(&line, full)?;
            }
        }
        if self.partial.len() + bytes.len() > self.part_bytes {
            return Err(Refusal::RecordTooLarge {
                line: self.lines + 1,
                bytes: self.partial.len() + bytes.len(),
                limit: self.part_bytes,
            });
        }
        self.partial.extend_from_slice(bytes);
        Ok(())
    }

    /// Decompressed bytes taken so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The last part (if any records are left) and what the push held.
    pub fn finish(mut self) -> Result<(Option<Part>, Held), Refusal> {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            let mut full = Vec::new();
            self.line(&line, &mut full)?;
            debug_assert!(full.is_empty());
        }
        if self.destination_check {
            return Ok((None, Held::DestinationCheck));
        }
        let last = (self.part.records > 0).then_some(self.part);
        Ok((last, Held::Records(self.records)))
    }

    fn line(&mut self, line: &[u8], full: &mut Vec<Part>) -> Result<(), Refusal> {
        self.lines += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        if let Err(e) = self.dataset.record_time_ns(line) {
            if self.lines == 1 && is_destination_check(line) {
                self.destination_check = true;
                return Ok(());
            }
            return Err(Refusal::NotARecord {
                line: self.lines,
                dataset: self.dataset.as_str(),
                reason: e.to_string(),
            });
        }
        if self.destination_check {
            return Err(Refusal::NotARecord {
                line: 1,
                dataset: self.dataset.as_str(),
                reason: "a destination check followed by records".into(),
            });
        }
        let size = line.len() + 1;
        if size > self.part_bytes {
            return Err(Refusal::RecordTooLarge {
                line: self.lines,
                bytes: size,
                limit: self.part_bytes,
            });
        }
        if self.part.content.len() + size > self.part_bytes {
            let records = std::mem::take(&mut self.part.records);
            let content = std::mem::take(&mut self.part.content);
            full.push(Part { content, records });
        }
        self.part.content.extend_from_slice(line);
        self.part.content.push(b'\n');
        self.part.records += 1;
        self.records += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u32) -> String {
        format!(
            "{{\"EdgeStartTimestamp\":{},\"RayID\":\"{n:016x}\"}}\n",
            1_768_485_600_000_000_000_u64 + u64::from(n)
        )
    }

    fn cut(bytes: &[u8], chunk: usize, part_bytes: usize) -> Result<(Vec<Part>, Held), Refusal> {
        let mut cutter = Cutter::new(Dataset::HttpRequests, part_bytes, 1 << 20);
        let mut parts = Vec::new();
        for piece in bytes.chunks(chunk.max(1)) {
            cutter.push(piece, &mut parts)?;
        }
        let (last, held) = cutter.finish()?;
        parts.extend(last);
        Ok((parts, held))
    }

    #[test]
    fn parts_hold_every_line_in_order_whatever_the_chunking() {
        let body: String = (0..100).map(record).collect();
        let (reference, held) = cut(body.as_bytes(), body.len(), 400).expect("cut");
        assert_eq!(held, Held::Records(100));
        assert!(reference.len() > 1, "several parts");
        assert!(reference.iter().all(|p| p.content.len() <= 400));
        let joined: Vec<u8> = reference.iter().flat_map(|p| p.content.clone()).collect();
        assert_eq!(joined, body.as_bytes());
        for chunk in [1, 7, 64, 1000] {
            let (parts, _) = cut(body.as_bytes(), chunk, 400).expect("cut");
            assert_eq!(parts, reference, "chunks of {chunk} cut the same parts");
        }
    }

    #[test]
    fn a_last_line_without_newline_and_blank_lines_and_crlf_are_records_or_nothing() {
        let body = format!("{}\r\n\n{}", record(1).trim_end(), record(2).trim_end());
        let (parts, held) = cut(body.as_bytes(), 5, 1000).expect("cut");
        assert_eq!(held, Held::Records(2));
        assert_eq!(
            parts[0].content,
            format!("{}{}", record(1), record(2)).as_bytes()
        );
    }

    #[test]
    fn the_destination_check_is_recognised_and_holds_nothing() {
        let (parts, held) = cut(b"{\"content\":\"tests\"}", 3, 1000).expect("cut");
        assert_eq!((parts.len(), held), (0, Held::DestinationCheck));
        let mixed = format!("{{\"content\":\"tests\"}}\n{}", record(1));
        assert!(matches!(
            cut(mixed.as_bytes(), 100, 1000),
            Err(Refusal::NotARecord { .. })
        ));
    }

    #[test]
    fn what_is_not_a_record_of_the_dataset_is_refused_with_its_line() {
        let body = format!("{}{{\"Datetime\":1}}\n", record(1));
        let refusal = cut(body.as_bytes(), 100, 1000).expect_err("firewall event");
        assert!(
            matches!(&refusal, Refusal::NotARecord { line: 2, reason, .. } if reason.contains("EdgeStartTimestamp")),
            "{refusal}"
        );
        for bad in ["[1,2]\n", "not json\n", "{\"EdgeStartTimestamp\":1\n"] {
            assert!(
                matches!(
                    cut(bad.as_bytes(), 3, 1000),
                    Err(Refusal::NotARecord { line: 1, .. })
                ),
                "{bad}"
            );
        }
        let seconds = cut(b"{\"EdgeStartTimestamp\":1768485600}\n", 8, 1000);
        assert!(
            matches!(&seconds, Err(Refusal::NotARecord { reason, .. }) if reason.contains("timestamp_format")),
            "{seconds:?}"
        );
    }

    #[test]
    fn size_limits_refuse_a_bomb_and_a_giant_record_without_buffering_them() {
        let mut cutter = Cutter::new(Dataset::HttpRequests, 100, 1000);
        let mut parts = Vec::new();
        let refusal = cutter
            .push(&[b'x'; 150], &mut parts)
            .expect_err("a line longer than a part");
        assert!(matches!(refusal, Refusal::RecordTooLarge { line: 1, .. }));
        let mut cutter = Cutter::new(Dataset::HttpRequests, 100, 1000);
        let line = record(1);
        let mut refused = None;
        for _ in 0..1000 {
            if let Err(e) = cutter.push(line.as_bytes(), &mut parts) {
                refused = Some(e);
                break;
            }
        }
        assert_eq!(refused, Some(Refusal::TooLarge { limit: 1000 }));
    }
}
