//! A zone's `rl.batch.<zone>` subject as the collector writes it, and the durable cursor.
//!
//! * Single writer: every publish carries `Nats-Expected-Last-Subject-Sequence`, so if another
//!   process wrote to the subject (a lease that moved while this one was slow) the server refuses
//!   this process' next event and it stops instead of closing a window twice.
//! * Cursor: the end of the last `batch.window_closed` per dataset. It is kept in the KV bucket
//!   [`CURSOR_BUCKET`] together with the stream sequence of that close, and reconciled on start
//!   by reading the subject forward from that sequence, so a close that was published but whose
//!   cursor write was lost (a crash in between) is still found: the stream is the truth, the KV
//!   entry only says where to start reading.

use std::time::Duration;

use bytes::Bytes;
use rainlogs_bus::async_nats::jetstream::{self, kv, stream::DirectGetErrorKind};
use rainlogs_bus::{Bus, PublishError};
use std::collections::HashMap;

use rainlogs_schemas::events::{Window, WindowClosed};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use serde::{Deserialize, Serialize};

use crate::ids;

/// KV bucket holding one cursor per `<zone>.<dataset>`.
pub const CURSOR_BUCKET: &str = rainlogs_bus::definitions::COLLECTOR_CURSORS;

/// The longest wait between two tries of the same publish.
const PUBLISH_RETRY_MAX: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Another writer appended to the zone's subject: this process no longer owns the zone.
    #[error("another collector wrote to {subject}; this one stops writing the zone")]
    Fenced { subject: String },
    #[error("JetStream: {0}")]
    Bus(String),
}

impl From<PublishError> for JournalError {
    fn from(e: PublishError) -> Self {
        JournalError::Bus(e.to_string())
    }
}

/// Where a dataset's ledger stands, as recorded after each close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorRecord {
    /// End of the last closed window.
    pub end: i64,
    /// RL_BATCH sequence of that `batch.window_closed`.
    pub seq: u64,
}

pub struct ZoneJournal {
    bus: Bus,
    stream: jetstream::stream::Stream,
    cursors: kv::Store,
    subject: String,
    tenant: String,
    zone: String,
    /// Sequence of the last message on the subject (0: none); the fence for the next publish.
    last_seq: u64,
    /// Per dataset, the attempt an earlier process left unclosed right after the cursor.
    unclosed: HashMap<String, UnclosedAttempt>,
    /// How long a publish is retried while JetStream is away or electing a leader (the lease
    /// TTL: nobody else can take the zone meanwhile, and what is held in memory is kept).
    bus_grace: Duration,
}

/// Batches an earlier process published for the window after the cursor, without a close: it
/// stopped mid-window. A live tail cannot fetch that time again, so the next owner closes the
/// attempt with what it holds (see `instant_logs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnclosedAttempt {
    pub attempt: uuid::Uuid,
    /// The window the attempt was opened for.
    pub window: Window,
    pub batches: u32,
    pub records: u64,
    /// The newest `received_until` of its batches; `None` when they do not carry it.
    pub received_until: Option<i64>,
    /// Batch `seq`s seen; the attempt is whole only when they are 0..batches.
    seqs: std::collections::BTreeSet<u32>,
    /// RL_BATCH sequences of its batches, to read their records again when it is closed.
    stream_seqs: Vec<u64>,
}

impl UnclosedAttempt {
    /// Every batch from 0 to the last is on the stream.
    pub fn is_whole(&self) -> bool {
        self.seqs.len() == self.batches as usize
            && self
                .seqs
                .last()
                .is_none_or(|last| *last as usize + 1 == self.seqs.len())
    }
}

/// Opens the cursor bucket (`rainlogs provision` creates it, with `nats.replicas`).
pub async fn cursor_store(bus: &Bus) -> Result<kv::Store, JournalError> {
    bus.js.get_key_value(CURSOR_BUCKET).await.map_err(|e| {
        JournalError::Bus(format!(
            "KV bucket {CURSOR_BUCKET} ({e}); run `rainlogs provision`"
        ))
    })
}

impl ZoneJournal {
    pub async fn open(
        bus: &Bus,
        cursors: kv::Store,
        tenant: &str,
        zone: &str,
        bus_grace: Duration,
    ) -> Result<Self, JournalError> {
        let stream = bus
            .js
            .get_stream(rainlogs_bus::definitions::BATCH)
            .await
            .map_err(|e| JournalError::Bus(format!("opening RL_BATCH: {e}")))?;
        let mut journal = Self {
            bus: bus.clone(),
            stream,
            cursors,
            subject: subjects::batch(zone),
            tenant: tenant.to_owned(),
            zone: zone.to_owned(),
            last_seq: 0,
            unclosed: HashMap::new(),
            bus_grace,
        };
        journal.last_seq = journal.last_message().await?.map_or(0, |(seq, _)| seq);
        Ok(journal)
    }

    pub fn zone(&self) -> &str {
        &self.zone
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Sequence of the last message this writer saw on the zone's subject.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The last message on the subject, decoded, with its sequence.
    async fn last_message(&self) -> Result<Option<(u64, Option<Envelope>)>, JournalError> {
        match self
            .stream
            .direct_get_last_for_subject(self.subject.clone())
            .await
        {
            Ok(message) => Ok(Some((
                message.sequence,
                Envelope::from_cbor(&message.payload).ok(),
            ))),
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(JournalError::Bus(format!(
                "reading the last message of {}: {e}",
                self.subject
            ))),
        }
    }

    fn cursor_key(&self, dataset: &str) -> String {
        format!("{}.{}", self.zone, dataset)
    }

    /// The attempt an earlier process left unclosed at the cursor `recover_cursor` found.
    pub fn take_unclosed(&mut self, dataset: &str) -> Option<UnclosedAttempt> {
        self.unclosed.remove(dataset)
    }

    /// End of the last closed window of `dataset`, or `None` if it never had one. Also notes
    /// the attempt left unclosed after it, for [`Self::take_unclosed`].
    pub async fn recover_cursor(&mut self, dataset: &str) -> Result<Option<i64>, JournalError> {
        let recorded = match self.cursors.get(self.cursor_key(dataset)).await {
            Ok(Some(bytes)) => serde_json::from_slice::<CursorRecord>(&bytes).ok(),
            Ok(None) => None,
            Err(e) => return Err(JournalError::Bus(format!("reading cursor: {e}"))),
        };
        let mut cursor = recorded.map(|r| r.end);
        let mut next_seq = recorded.map_or(1, |r| r.seq + 1);
        let mut last_close: Option<CursorRecord> = None;
        let mut open: HashMap<uuid::Uuid, UnclosedAttempt> = HashMap::new();
        // Read forward from the recorded close: anything closed after it wins.
        while let Some(message) = self.message_from(next_seq).await? {
            next_seq = message.sequence + 1;
            match Envelope::from_cbor(&message.payload).map(|e| e.event) {
                Ok(Event::WindowClosed(closed)) if closed.dataset == dataset && !closed.late => {
                    open.remove(&closed.attempt);
                    if cursor.is_none_or(|c| closed.window.end > c) {
                        cursor = Some(closed.window.end);
                        last_close = Some(CursorRecord {
                            end: closed.window.end,
                            seq: message.sequence,
                        });
                    }
                }
                Ok(Event::BatchCollected(batch)) if batch.dataset == dataset => {
                    let entry = open.entry(batch.attempt).or_insert(UnclosedAttempt {
                        attempt: batch.attempt,
                        window: batch.window,
                        batches: 0,
                        records: 0,
                        received_until: None,
                        seqs: Default::default(),
                        stream_seqs: Vec::new(),
                    });
                    if entry.seqs.insert(batch.seq) {
                        entry.batches += 1;
                        entry.records += u64::from(batch.records);
                        entry.received_until = entry.received_until.max(batch.received_until);
                        entry.stream_seqs.push(message.sequence);
                    }
                }
                _ => {}
            }
        }
        if let Some(record) = last_close {
            self.store_cursor(dataset, record).await;
        }
        // Only an attempt for the window right after the cursor can be closed now; older
        // ones were superseded by a close of their window.
        let unclosed = open
            .into_values()
            .filter(|a| cursor.is_none_or(|c| a.window.start == c))
            .max_by_key(|a| (a.received_until, a.batches));
        match unclosed {
            Some(attempt) => {
                self.unclosed.insert(dataset.to_owned(), attempt);
            }
            None => {
                self.unclosed.remove(dataset);
            }
        }
        Ok(cursor)
    }

    /// The largest `sampleInterval` among an unclosed attempt's records, read back from the
    /// stream (1 when none says or a batch does not decode: the close then under-states
    /// sampling rather than inventing it). Read only for the attempt being closed, so the
    /// cursor scan never decompresses batches.
    pub async fn largest_sample_interval(
        &self,
        attempt: &UnclosedAttempt,
    ) -> Result<u64, JournalError> {
        let mut largest = 1;
        for seq in &attempt.stream_seqs {
            let message = self
                .stream
                .direct_get(*seq)
                .await
                .map_err(|e| JournalError::Bus(format!("reading batch {seq}: {e}")))?;
            let Ok(Envelope {
                event: Event::BatchCollected(batch),
                ..
            }) = Envelope::from_cbor(&message.payload)
            else {
                continue;
            };
            if let Ok(content) = batch.content() {
                largest = content
                    .split(|b| *b == b'\n')
                    .filter(|line| !line.is_empty())
                    .map(rainlogs_cloudflare::sample_interval_of)
                    .fold(largest, u64::max);
            }
        }
        Ok(largest)
    }

    async fn store_cursor(&self, dataset: &str, record: CursorRecord) {
        let Ok(value) = serde_json::to_vec(&record) else {
            return;
        };
        // Losing this write only costs a longer scan on the next start.
        if let Err(e) = self
            .cursors
            .put(self.cursor_key(dataset), Bytes::from(value))
            .await
        {
            tracing::warn!(zone = %self.zone, dataset, error = %e, "cursor write failed; the next start scans further");
        }
    }

    /// Publishes one event on the zone's subject, fenced on the last sequence this writer saw.
    pub async fn publish(&mut self, mut envelope: Envelope) -> Result<u64, JournalError> {
        envelope.tenant.clone_from(&self.tenant);
        envelope.zone = Some(self.zone.clone());
        let started = std::time::Instant::now();
        let mut wait = Duration::from_millis(100);
        let mut attempt = 0_u32;
        loop {
            attempt += 1;
            match self
                .bus
                .publish_after(&self.subject, &envelope, self.last_seq)
                .await
            {
                Ok(published) => {
                    if attempt > 1 {
                        tracing::info!(zone = %self.zone, attempt, waited_ms = started.elapsed().as_millis() as u64, "JetStream took the event again");
                    }
                    self.last_seq = self.last_seq.max(published.sequence);
                    return Ok(published.sequence);
                }
                Err(PublishError::WrongLastSequence { .. }) => {
                    // Either an earlier try of this very event was stored (its ack got lost), or
                    // someone else writes this zone.
                    return match self.last_message().await? {
                        Some((seq, Some(last))) if last.id == envelope.id => {
                            self.last_seq = seq;
                            Ok(seq)
                        }
                        _ => Err(JournalError::Fenced {
                            subject: self.subject.clone(),
                        }),
                    };
                }
                Err(e) if e.is_transient() && started.elapsed() + wait < self.bus_grace => {
                    tracing::warn!(zone = %self.zone, attempt, error = %e, grace_s = self.bus_grace.as_secs(), "JetStream did not take the event; holding it and retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(PUBLISH_RETRY_MAX);
                }
                Err(e) => {
                    return Err(JournalError::Bus(format!(
                        "{e} (retried for {} s)",
                        started.elapsed().as_secs()
                    )));
                }
            }
        }
    }

    /// The first message on the subject at or after `seq`, up to the last one this writer saw.
    async fn message_from(
        &self,
        seq: u64,
    ) -> Result<Option<rainlogs_bus::async_nats::jetstream::message::StreamMessage>, JournalError>
    {
        if seq > self.last_seq {
            return Ok(None);
        }
        match self
            .stream
            .direct_get_next_for_subject(self.subject.clone(), Some(seq))
            .await
        {
            Ok(message) => Ok(Some(message)),
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(JournalError::Bus(format!("scanning {}: {e}", self.subject))),
        }
    }

    /// The closes of `dataset` on the subject after stream sequence `after`, oldest first, each
    /// with its sequence. Undecodable messages are skipped (the cursor scan does the same).
    pub async fn closes_after(
        &self,
        dataset: &str,
        after: u64,
    ) -> Result<Vec<(u64, WindowClosed)>, JournalError> {
        let mut closes = Vec::new();
        let mut next_seq = after + 1;
        while let Some(message) = self.message_from(next_seq).await? {
            next_seq = message.sequence + 1;
            if let Ok(Event::WindowClosed(closed)) =
                Envelope::from_cbor(&message.payload).map(|e| e.event)
                && closed.dataset == dataset
            {
                closes.push((message.sequence, closed));
            }
        }
        Ok(closes)
    }

    /// Publishes a window's close and records the new cursor; returns the close's sequence.
    /// A `late` close adds to a window closed before and leaves the cursor alone.
    pub async fn close(&mut self, closed: WindowClosed) -> Result<u64, JournalError> {
        let id = if closed.late {
            ids::late_close_id(&self.zone, &closed.dataset, closed.window, closed.attempt)
        } else {
            ids::close_id(&self.zone, &closed.dataset, closed.window)
        };
        let late = closed.late;
        let dataset = closed.dataset.clone();
        let end = closed.window.end;
        let attempt = closed.attempt;
        let mut envelope = Envelope::new(
            self.tenant.clone(),
            Some(self.zone.clone()),
            Actor::service(crate::NAME),
            Event::WindowClosed(closed),
        );
        envelope.id = id;
        envelope.correlation = Some(attempt);
        let seq = self.publish(envelope).await?;
        if !late {
            self.store_cursor(&dataset, CursorRecord { end, seq }).await;
        }
        Ok(seq)
    }
}
