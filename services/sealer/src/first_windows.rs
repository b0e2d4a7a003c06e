//! Which window of a dataset comes first, before the log has any entry for it.
//!
//! Once a dataset has entries, the next window is the one that starts where they end. Its first
//! window has no such anchor: with two sealers, or events redelivered after a restart, a later
//! window can be handled before an earlier one, and sealing it first would leave the earlier
//! one impossible to seal in order. So before a dataset's first entry, the zone's archive events
//! are read (once, then incrementally) and the earliest window announced for the dataset goes
//! first. What the collector wrote first on `rl.batch.<zone>` counts too: an archiver that died
//! holding the first window's batches gets them again only after the consumer's ack wait, and
//! by then later windows may be announced; the first window must still go first.

use std::collections::HashMap;

use rainlogs_bus::async_nats::jetstream::stream::DirectGetErrorKind;
use rainlogs_bus::async_nats::jetstream::stream::Stream;
use rainlogs_integrity::Dataset;
use rainlogs_schemas::{Envelope, Event, subjects};

use crate::body;
use crate::journal::{JournalError, read_subject};

#[derive(Debug, Default)]
struct ZoneScan {
    /// Stream sequence up to which `rl.archive.<zone>` has been read.
    read_until: u64,
    /// Earliest announced window start (ns) per dataset.
    earliest: HashMap<String, u64>,
    /// Start (ns) of the window of the first collector event per dataset on `rl.batch.<zone>`
    /// (read once; `None` until then).
    collected: Option<HashMap<String, u64>>,
}

/// How many of the first `rl.batch.<zone>` messages are looked at for each dataset's first
/// window (a zone's datasets start together, so their first events are among the first few).
const COLLECTED_LOOKAHEAD: usize = 32;

pub struct FirstWindows {
    stream: Stream,
    batches: Stream,
    zones: HashMap<String, ZoneScan>,
}

impl FirstWindows {
    pub fn new(stream: Stream, batches: Stream) -> Self {
        Self {
            stream,
            batches,
            zones: HashMap::new(),
        }
    }

    /// Start (ns) of the earliest window announced so far for `dataset` of `zone`.
    pub async fn earliest(
        &mut self,
        zone: &str,
        dataset: &Dataset,
    ) -> Result<Option<u64>, JournalError> {
        let scan = self.zones.entry(zone.to_owned()).or_default();
        let subject = subjects::archive(zone);
        let mut read_until = scan.read_until;
        let earliest = &mut scan.earliest;
        read_subject(
            &self.stream,
            &subject,
            scan.read_until,
            |sequence, payload| {
                read_until = sequence;
                // Undecodable events are the consumer's to reject; they announce nothing here.
                if let Ok(envelope) = Envelope::from_cbor(payload)
                    && let Some((dataset, window)) = body::dataset_and_window(&envelope.event)
                    && let Ok(window) = body::window(&window)
                {
                    let start = earliest.entry(dataset.to_owned()).or_insert(u64::MAX);
                    *start = (*start).min(window.start_ns());
                }
                Ok(true)
            },
        )
        .await?;
        scan.read_until = read_until;
        if scan.collected.is_none() {
            scan.collected = Some(first_collected(&self.batches, zone).await?);
        }
        let announced = scan.earliest.get(dataset.as_str()).copied();
        let collected = scan
            .collected
            .as_ref()
            .and_then(|c| c.get(dataset.as_str()).copied());
        Ok(match (announced, collected) {
            (Some(a), Some(c)) => Some(a.min(c)),
            (a, c) => a.or(c),
        })
    }

    /// The zone's datasets all have entries: the scan is no longer needed.
    pub fn forget(&mut self, zone: &str) {
        self.zones.remove(zone);
    }
}

/// The window start (ns) of the first collector event per dataset among the first messages of
/// `rl.batch.<zone>`. Older than the replay buffer (7 days) means nothing is found, and the
/// archive events alone decide.
async fn first_collected(
    batches: &Stream,
    zone: &str,
) -> Result<HashMap<String, u64>, JournalError> {
    let subject = subjects::batch(zone);
    let mut found = HashMap::new();
    let mut next = None;
    for _ in 0..COLLECTED_LOOKAHEAD {
        let message = match batches
            .direct_get_next_for_subject(subject.clone(), next)
            .await
        {
            Ok(message) => message,
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => break,
            Err(e) => {
                return Err(JournalError::Unavailable {
                    subject,
                    reason: e.to_string(),
                });
            }
        };
        next = Some(message.sequence + 1);
        let Ok(envelope) = Envelope::from_cbor(&message.payload) else {
            continue;
        };
        let (dataset, window) = match &envelope.event {
            Event::BatchCollected(e) => (e.dataset.clone(), e.window),
            Event::WindowClosed(e) => (e.dataset.clone(), e.window),
            _ => continue,
        };
        if let Ok(window) = body::window(&window) {
            found.entry(dataset).or_insert(window.start_ns());
        }
    }
    Ok(found)
}
