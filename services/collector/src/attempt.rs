//! One collection attempt of one window: records go out as `batch.collected` events as soon as a
//! batch is full (each publish waits for JetStream's ack, so a slow stream slows the collector
//! instead of filling memory), and the attempt ends as exactly one `batch.window_closed`, or is
//! abandoned (its batches are then ignored downstream because no close names it).

use rainlogs_schemas::events::{BatchCollected, Method, Window, WindowClosed, WindowOutcome};
use rainlogs_schemas::{Actor, Envelope, Event};
use uuid::Uuid;

use crate::ids;
use crate::journal::{JournalError, ZoneJournal};

/// NATS refuses messages over 1 MB by default; CBOR framing adds a few hundred bytes.
pub const MAX_EVENT_CONTENT: usize = 1_000_000 - 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("a record of {bytes} bytes does not fit in one event even compressed")]
    RecordTooLarge { bytes: usize },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttemptTotals {
    pub batches: u32,
    pub records: u64,
    pub bytes: u64,
}

pub struct Attempt {
    pub dataset: String,
    /// The window the attempt was opened for; every batch names it.
    pub window: Window,
    pub id: Uuid,
    /// Where the close ends the window: `window.end` unless collection stopped early.
    close_end: i64,
    buffer: Vec<u8>,
    /// When the oldest buffered record was added.
    buffered_since: Option<tokio::time::Instant>,
    buffered_records: u32,
    batch_bytes: usize,
    next_seq: u32,
    totals: AttemptTotals,
    /// Live tails: the collector's clock at the newest record pushed (see `BatchCollected`).
    received_until: Option<i64>,
    /// Pushed sources: what the close says in `pushed_through` and `late` (see `WindowClosed`).
    pub pushed_through: Option<u64>,
    pub late: bool,
}

impl Attempt {
    pub fn new(dataset: &str, window: Window, batch_bytes: usize) -> Self {
        Self {
            dataset: dataset.to_owned(),
            window,
            id: Uuid::new_v4(),
            close_end: window.end,
            buffer: Vec::new(),
            buffered_since: None,
            buffered_records: 0,
            batch_bytes: batch_bytes.max(1),
            next_seq: 0,
            totals: AttemptTotals::default(),
            received_until: None,
            pushed_through: None,
            late: false,
        }
    }

    /// Adds one record (its bytes exactly as received, without a line terminator).
    pub async fn push(
        &mut self,
        journal: &mut ZoneJournal,
        line: &[u8],
    ) -> Result<(), AttemptError> {
        if !self.buffer.is_empty() && self.buffer.len() + line.len() + 1 > self.batch_bytes {
            self.flush(journal).await?;
        }
        if self.buffer.is_empty() {
            self.buffered_since = Some(tokio::time::Instant::now());
        }
        self.buffer.extend_from_slice(line);
        self.buffer.push(b'\n');
        self.buffered_records += 1;
        if self.buffer.len() >= self.batch_bytes {
            self.flush(journal).await?;
        }
        Ok(())
    }

    /// When the oldest record not yet published was added; `None` when nothing waits.
    /// Records pushed from now on arrived by `now` (collector clock, Unix seconds); batches
    /// carry it so a crash does not lose what was already published (live tails only).
    pub fn received_by(&mut self, now: i64) {
        self.received_until = Some(self.received_until.map_or(now, |t| t.max(now)));
    }

    pub fn buffered_since(&self) -> Option<tokio::time::Instant> {
        self.buffered_since
    }

    /// Ends the window at `end`, before the planned end, because collection stopped there. The
    /// batches already published keep naming the planned window; the close names the shorter
    /// one (docs/EVENTS.md, "Windows and attempts").
    pub fn end_early(&mut self, end: i64) {
        self.close_end = end.clamp(self.window.start.saturating_add(1), self.window.end);
    }

    pub fn totals(&self) -> AttemptTotals {
        let mut totals = self.totals;
        totals.records += u64::from(self.buffered_records);
        totals.bytes += self.buffer.len() as u64;
        totals
    }

    /// Publishes what is buffered.
    pub async fn flush(&mut self, journal: &mut ZoneJournal) -> Result<(), AttemptError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let content = std::mem::take(&mut self.buffer);
        let records = std::mem::take(&mut self.buffered_records);
        self.buffered_since = None;
        self.publish_content(journal, &content, records).await
    }

    async fn publish_content(
        &mut self,
        journal: &mut ZoneJournal,
        content: &[u8],
        records: u32,
    ) -> Result<(), AttemptError> {
        let compressed = BatchCollected::compress(content);
        if compressed.len() > MAX_EVENT_CONTENT {
            // Rare (incompressible records): split on a line boundary near the middle.
            let Some(cut) = middle_line_boundary(content) else {
                return Err(AttemptError::RecordTooLarge {
                    bytes: content.len(),
                });
            };
            let (head, tail) = content.split_at(cut);
            let head_records = count_lines(head);
            Box::pin(self.publish_content(journal, head, head_records)).await?;
            return Box::pin(self.publish_content(journal, tail, records - head_records)).await;
        }
        let seq = self.next_seq;
        let batch = BatchCollected {
            dataset: self.dataset.clone(),
            window: self.window,
            attempt: self.id,
            seq,
            records,
            received_until: self.received_until,
            late: self.late,
            content_lz4: compressed,
        };
        let mut envelope = Envelope::new(
            journal.tenant().to_owned(),
            Some(journal.zone().to_owned()),
            Actor::service(crate::NAME),
            Event::BatchCollected(batch),
        );
        envelope.id = ids::batch_id(journal.zone(), &self.dataset, self.window, self.id, seq);
        envelope.correlation = Some(self.id);
        journal.publish(envelope).await?;
        self.next_seq += 1;
        self.totals.batches += 1;
        self.totals.records += u64::from(records);
        self.totals.bytes += content.len() as u64;
        Ok(())
    }

    /// Flushes and closes the window as complete (or empty when nothing came).
    pub async fn complete(
        mut self,
        journal: &mut ZoneJournal,
        method: Method,
        sample_interval: u32,
        fields: &str,
    ) -> Result<AttemptTotals, AttemptError> {
        self.flush(journal).await?;
        let outcome = if self.totals.records == 0 {
            WindowOutcome::Empty { method }
        } else {
            WindowOutcome::Complete {
                batches: self.totals.batches,
                records: self.totals.records,
                method,
                sample_interval,
                fields: fields.to_owned(),
            }
        };
        journal
            .close(WindowClosed {
                dataset: self.dataset.clone(),
                window: Window {
                    start: self.window.start,
                    end: self.close_end,
                },
                attempt: self.id,
                outcome,
                pushed_through: self.pushed_through,
                late: self.late,
            })
            .await?;
        Ok(self.totals)
    }
}

fn count_lines(content: &[u8]) -> u32 {
    u32::try_from(content.iter().filter(|b| **b == b'\n').count()).unwrap_or(u32::MAX)
}

/// A cut just after a `\n` near the middle, leaving both halves non-empty; `None` for one line.
fn middle_line_boundary(content: &[u8]) -> Option<usize> {
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    let middle = body.len() / 2;
    let after = body[middle..]
        .iter()
        .position(|b| *b == b'\n')
        .map(|p| middle + p + 1);
    let before = body[..middle]
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|p| p + 1);
    after
        .or(before)
        .filter(|cut| *cut > 0 && *cut < content.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_fall_on_line_boundaries() {
        assert_eq!(middle_line_boundary(b"aa\nbb\ncc\n"), Some(6));
        assert_eq!(middle_line_boundary(b"aaaaaa\nb\n"), Some(7));
        assert_eq!(middle_line_boundary(b"only one line\n"), None);
        assert_eq!(count_lines(b"a\nb\n"), 2);
    }
}
