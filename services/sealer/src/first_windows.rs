//! Which window of a dataset comes first, before the log has any entry for it.
//!
//! Once a dataset has entries, the next window is the one that starts where they end. Its first
//! window has no such anchor: with two sealers, or events redelivered after a restart, a later
//! window can be handled before an earlier one, and sealing it first would leave the earlier
//! one impossible to seal in order. So before a dataset's first entry, the zone's archive events
//! are read (once, then incrementally) and the earliest window announced for the dataset goes
//! first.

use std::collections::HashMap;

use rainlogs_bus::async_nats::jetstream::stream::Stream;
use rainlogs_integrity::Dataset;
use rainlogs_schemas::{Envelope, subjects};

use crate::body;
use crate::journal::{JournalError, read_subject};

#[derive(Debug, Default)]
struct ZoneScan {
    /// Stream sequence up to which `rl.archive.<zone>` has been read.
    read_until: u64,
    /// Earliest announced window start (ns) per dataset.
    earliest: HashMap<String, u64>,
}

pub struct FirstWindows {
    stream: Stream,
    zones: HashMap<String, ZoneScan>,
}

impl FirstWindows {
    pub fn new(stream: Stream) -> Self {
        Self {
            stream,
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
        Ok(scan.earliest.get(dataset.as_str()).copied())
    }

    /// The zone's datasets all have entries: the scan is no longer needed.
    pub fn forget(&mut self, zone: &str) {
        self.zones.remove(zone);
    }
}
