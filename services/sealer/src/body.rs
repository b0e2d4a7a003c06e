//! From `archive.*` events to entry bodies (docs/FORMAT.md §4): the mapping of every field, and
//! the checks the entry format makes, so a bad event is refused before it reaches the log.

use rainlogs_integrity::{
    ArchiveRecord, CollectionMethod, Dataset, EmptyRecord, Entry, EntryBody, GapReason, GapRecord,
    Name, ObjectRef, Origin, PruneRecord, Sampling, Sha256Hash, ShortfallRecord, Window, entry_id,
};
use rainlogs_schemas::Event;
use rainlogs_schemas::events::{self, Method};

use crate::coverage::Coverage;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("{0} events are not sealed")]
    NotAnArchiveEvent(&'static str),
    #[error("dataset {0:?} is not a valid dataset name")]
    Dataset(String),
    #[error("window [{start}, {end}) is not a valid window of Unix seconds")]
    Window { start: i64, end: i64 },
    #[error("{field} is {len} bytes, not a SHA-256")]
    Hash { field: &'static str, len: usize },
    #[error("sample_interval 0 is not valid: 1 means unsampled, 4294967295 per-record sampling")]
    Sampling,
    #[error("retain_until {0} is not a positive Unix time")]
    RetainUntil(i64),
    #[error("a shortfall needs the source's count of at least one record")]
    SourceCount,
    #[error("prune of entry {index}: {why}")]
    PruneTarget { index: u64, why: String },
    #[error("index object {index} is not the index of {archive}")]
    IndexKey { index: String, archive: String },
}

/// An index object an event names, checked against the archive it indexes.
#[derive(Debug, Clone)]
pub struct IndexObject {
    pub object: ObjectRef,
    pub stored_size: u64,
    pub stored_sha256: Sha256Hash,
}

/// The index object of the archive at `archive_key`: its key must be that archive's index key
/// (docs/FORMAT.md §2) and its hash a SHA-256.
pub fn index_object(
    archive_key: &str,
    index: &events::IndexStored,
) -> Result<IndexObject, BodyError> {
    if rainlogs_integrity::layout::index_key(archive_key).as_deref()
        != Some(index.object_key.as_str())
    {
        return Err(BodyError::IndexKey {
            index: index.object_key.clone(),
            archive: archive_key.to_owned(),
        });
    }
    Ok(IndexObject {
        object: ObjectRef {
            key: index.object_key.clone(),
            version: index.object_version.clone().unwrap_or_default(),
        },
        stored_size: index.stored_size,
        stored_sha256: hash("index stored_sha256", &index.stored_sha256)?,
    })
}

/// The window an event accounts for, before anything else is checked.
pub fn dataset_and_window(event: &Event) -> Option<(&str, events::Window)> {
    match event {
        Event::ArchiveStored(e) => Some((&e.dataset, e.window)),
        Event::WindowEmpty(e) => Some((&e.dataset, e.window)),
        Event::WindowGap(e) => Some((&e.dataset, e.window)),
        _ => None,
    }
}

pub fn method(method: Method) -> CollectionMethod {
    match method {
        Method::Logpull => CollectionMethod::Logpull,
        Method::InstantLogs => CollectionMethod::InstantLogs,
        Method::Graphql => CollectionMethod::Graphql,
        Method::LogpushHttp | Method::LogpushS3 => CollectionMethod::Logpush,
    }
}

/// Event gap reasons in the entry format's closed set (docs/FORMAT.md §4.4).
pub fn gap_reason(reason: events::GapReason) -> GapReason {
    match reason {
        events::GapReason::RetentionExpired => GapReason::SourceRetentionExpired,
        events::GapReason::Disconnected => GapReason::LiveSessionLost,
        events::GapReason::Refused => GapReason::SourceError,
        events::GapReason::RetentionFlagOff => GapReason::SourceUnavailable,
        events::GapReason::Paused => GapReason::OperatorSkip,
        events::GapReason::CollectorOutage => GapReason::CollectorOutage,
    }
}

pub fn window(window: &events::Window) -> Result<Window, BodyError> {
    let bad = || BodyError::Window {
        start: window.start,
        end: window.end,
    };
    let ns = |secs: i64| {
        u64::try_from(secs)
            .ok()
            .and_then(|s| s.checked_mul(1_000_000_000))
    };
    Window::new(
        ns(window.start).ok_or_else(bad)?,
        ns(window.end).ok_or_else(bad)?,
    )
    .map_err(|_| bad())
}

fn dataset(name: &str) -> Result<Dataset, BodyError> {
    Dataset::new(name).map_err(|_| BodyError::Dataset(name.to_owned()))
}

fn hash(field: &'static str, bytes: &[u8]) -> Result<Sha256Hash, BodyError> {
    let array: [u8; 32] = bytes.try_into().map_err(|_| BodyError::Hash {
        field,
        len: bytes.len(),
    })?;
    Ok(Sha256Hash(array))
}

/// The entry body of an archive event. Gap events carry no collection method yet; the method of
/// the dataset's previous entry stands in (see `Coverage::method_for`).
pub fn entry_body(event: &Event, coverage: &Coverage) -> Result<EntryBody, BodyError> {
    match event {
        Event::ArchiveStored(e) => {
            let sampling = match e.sample_interval {
                0 => return Err(BodyError::Sampling),
                n => Sampling::from_code(n).map_err(|_| BodyError::Sampling)?,
            };
            let retain_until_ns = u64::try_from(e.retain_until)
                .ok()
                .filter(|s| *s > 0)
                .and_then(|s| s.checked_mul(1_000_000_000))
                .ok_or(BodyError::RetainUntil(e.retain_until))?;
            let record = ArchiveRecord {
                dataset: dataset(&e.dataset)?,
                window: window(&e.window)?,
                method: method(e.method),
                sampling,
                object: ObjectRef {
                    key: e.object_key.clone(),
                    version: e.object_version.clone().unwrap_or_default(),
                },
                stored_size: e.stored_size,
                stored_sha256: hash("stored_sha256", &e.stored_sha256)?,
                content_sha256: hash("content_sha256", &e.content_sha256)?,
                record_count: e.records,
                retain_until_ns,
            };
            Ok(if e.late {
                EntryBody::Late(record)
            } else {
                EntryBody::Archive(record)
            })
        }
        Event::WindowEmpty(e) => Ok(EntryBody::Empty(EmptyRecord {
            dataset: dataset(&e.dataset)?,
            window: window(&e.window)?,
            method: method(e.method),
            // An empty window has no records to sample; Logpull and Logpush are complete by
            // contract, the other methods are sampled at rates that vary per record.
            sampling: match e.method {
                Method::Logpull | Method::LogpushHttp | Method::LogpushS3 => Sampling::UNSAMPLED,
                Method::InstantLogs | Method::Graphql => Sampling::PerRecord,
            },
        })),
        Event::WindowGap(e) => {
            let dataset = dataset(&e.dataset)?;
            let method = coverage.method_for(&dataset);
            Ok(EntryBody::Gap(GapRecord {
                dataset,
                window: window(&e.window)?,
                method,
                reason: gap_reason(e.reason),
            }))
        }
        other => Err(BodyError::NotAnArchiveEvent(other.type_name())),
    }
}

/// What the `shortfall` entry for an `archive.window_short` event records.
pub fn shortfall_record(event: &events::WindowShort) -> Result<ShortfallRecord, BodyError> {
    if event.source_records == 0 {
        return Err(BodyError::SourceCount);
    }
    Ok(ShortfallRecord {
        dataset: dataset(&event.dataset)?,
        window: window(&event.window)?,
        method: method(event.method),
        source_count: event.source_records,
    })
}

/// The `prune` entry for an `archive.pruned` event. The event carries the target entry's bytes;
/// they must decode to an `archive` entry of this zone's log at the named index whose
/// retain-until had passed when the object was deleted, or nothing is logged.
pub fn prune_body(
    event: &events::ArchivePruned,
    origin: &Origin,
    log_size: u64,
    now_ns: u64,
) -> Result<EntryBody, BodyError> {
    let index = event.target_index;
    let refuse = |why: String| BodyError::PruneTarget { index, why };
    if index >= log_size {
        return Err(refuse(format!("the log has only {log_size} entries")));
    }
    let target = Entry::decode(&event.target_entry)
        .map_err(|e| refuse(format!("target entry does not decode: {e}")))?;
    if target.index != index || &target.origin != origin {
        return Err(refuse(format!(
            "the target bytes are entry {} of {}",
            target.index,
            target.origin.as_str()
        )));
    }
    let EntryBody::Archive(archive) = &target.body else {
        return Err(refuse(format!(
            "the target is a {} entry",
            target.kind().as_str()
        )));
    };
    let pruned_at_ns = u64::try_from(event.pruned_at_ns)
        .ok()
        .filter(|ns| *ns > 0)
        .ok_or_else(|| refuse(format!("pruned_at_ns {} is not a time", event.pruned_at_ns)))?;
    // Both clocks must be past retain-until: an auditor checks the claimed deletion time and
    // the time the prune was sealed, so an early deletion cannot be back- or forward-dated.
    if pruned_at_ns < archive.retain_until_ns || now_ns < archive.retain_until_ns {
        return Err(refuse(format!(
            "retain-until {} has not passed (deleted at {pruned_at_ns}, sealing at {now_ns})",
            archive.retain_until_ns
        )));
    }
    let policy =
        Name::new(&event.policy).map_err(|e| refuse(format!("policy {:?}: {e}", event.policy)))?;
    Ok(EntryBody::Prune(PruneRecord {
        dataset: archive.dataset.clone(),
        object: archive.object.clone(),
        target_index: index,
        target_entry_id: entry_id(&event.target_entry),
        policy,
        pruned_at_ns,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rainlogs_integrity::{Entry, Name, Origin};
    use uuid::Uuid;

    fn stored() -> events::ArchiveStored {
        events::ArchiveStored {
            dataset: "http_requests".into(),
            window: events::Window {
                start: 1_768_485_600,
                end: 1_768_485_660,
            },
            attempt: Uuid::nil(),
            object_key: "acme/z1/http_requests/2026/01/15/14/x.ndjson.zst".into(),
            object_version: Some("v1".into()),
            stored_size: 123,
            stored_sha256: vec![1; 32],
            content_sha256: vec![2; 32],
            records: 2,
            event_time_min_ns: None,
            event_time_max_ns: None,
            method: Method::Logpull,
            sample_interval: 1,
            fields: "default".into(),
            retain_until: 1_803_045_600,
            late: false,
            index: None,
        }
    }

    fn encodes(body: EntryBody) -> bool {
        let origin = Origin::new(&Name::new("acme").unwrap(), &Name::new("z1").unwrap());
        Entry {
            index: 0,
            origin,
            prev_chain_hash: Sha256Hash::ZERO,
            sealed_at_ns: 1,
            body,
        }
        .encode()
        .is_ok()
    }

    #[test]
    fn archive_events_map_field_by_field_and_encode() {
        let body = entry_body(&Event::ArchiveStored(stored()), &Coverage::default()).unwrap();
        let EntryBody::Archive(record) = &body else {
            panic!("not an archive body")
        };
        assert_eq!(record.window.start_ns(), 1_768_485_600_000_000_000);
        assert_eq!(record.retain_until_ns, 1_803_045_600_000_000_000);
        assert_eq!(record.object.version, "v1");
        assert_eq!(record.stored_sha256, Sha256Hash([1; 32]));
        assert_eq!(record.sampling, Sampling::UNSAMPLED);
        assert!(encodes(body));
    }

    #[test]
    fn malformed_archive_events_are_refused() {
        let mut short_hash = stored();
        short_hash.stored_sha256 = vec![1; 31];
        let mut zero_sampling = stored();
        zero_sampling.sample_interval = 0;
        let mut no_retention = stored();
        no_retention.retain_until = 0;
        let mut backwards = stored();
        backwards.window.end = backwards.window.start;
        for bad in [short_hash, zero_sampling, no_retention, backwards] {
            assert!(entry_body(&Event::ArchiveStored(bad), &Coverage::default()).is_err());
        }
    }

    #[test]
    fn every_gap_reason_has_an_entry_code_and_gaps_encode() {
        use events::GapReason as R;
        for reason in [
            R::RetentionExpired,
            R::Disconnected,
            R::Refused,
            R::RetentionFlagOff,
            R::Paused,
            R::CollectorOutage,
        ] {
            let event = Event::WindowGap(events::WindowGap {
                dataset: "http_requests".into(),
                window: events::Window { start: 0, end: 60 },
                attempt: Uuid::nil(),
                reason,
                detail: "x".into(),
            });
            let body = entry_body(&event, &Coverage::default()).unwrap();
            assert!(encodes(body));
        }
    }
}
