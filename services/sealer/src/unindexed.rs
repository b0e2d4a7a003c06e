//! The newest `archive` and `late` entries of a zone's log that have no `index` entry yet, so an
//! archive event's index can be sealed right after its object's entry, also when the event is
//! delivered again after a crash between the two. Older ones are forgotten: their indexes come
//! from `rainlogs index rebuild`, which names its target entry itself.

use std::collections::{HashMap, HashSet, VecDeque};

use rainlogs_integrity::layout::{ARCHIVE_SUFFIX, INDEX_SUFFIX};

use crate::body::IndexObject;
use rainlogs_integrity::{ArchiveRecord, EntryBody, IndexRecord, SealedEntry, Sha256Hash};

/// Entries remembered; an event arrives long before this many newer objects are sealed.
const REMEMBERED: usize = 4_096;

/// An entry an index may name.
#[derive(Debug, Clone)]
pub struct IndexTarget {
    pub index: u64,
    pub entry_id: Sha256Hash,
    pub record: ArchiveRecord,
}

impl IndexTarget {
    /// The `index` entry body naming this entry, for its index object.
    pub fn index_body(&self, index: IndexObject) -> EntryBody {
        EntryBody::Index(IndexRecord {
            dataset: self.record.dataset.clone(),
            window: self.record.window,
            object: index.object,
            stored_size: index.stored_size,
            stored_sha256: index.stored_sha256,
            target_index: self.index,
            target_entry_id: self.entry_id,
            retain_until_ns: self.record.retain_until_ns,
        })
    }
}

#[derive(Debug, Default)]
pub struct Unindexed {
    by_key: HashMap<String, IndexTarget>,
    order: VecDeque<String>,
    /// Every entry an index entry names (8 bytes per archive), so no entry is indexed twice.
    indexed: HashSet<u64>,
}

impl Unindexed {
    /// Follows the log: remembers archive and late entries, forgets those an index entry names.
    pub fn record(&mut self, sealed: &SealedEntry) {
        match &sealed.entry.body {
            EntryBody::Archive(record) | EntryBody::Late(record) => {
                if self.order.len() == REMEMBERED
                    && let Some(oldest) = self.order.pop_front()
                {
                    self.by_key.remove(&oldest);
                }
                self.order.push_back(record.object.key.clone());
                self.by_key.insert(
                    record.object.key.clone(),
                    IndexTarget {
                        index: sealed.entry.index,
                        entry_id: sealed.id,
                        record: record.clone(),
                    },
                );
            }
            EntryBody::Index(index) => {
                self.indexed.insert(index.target_index);
                if let Some(stem) = index.object.key.strip_suffix(INDEX_SUFFIX) {
                    self.by_key.remove(&format!("{stem}{ARCHIVE_SUFFIX}"));
                }
            }
            _ => {}
        }
    }

    /// Whether an index entry names the entry at `index`.
    pub fn is_indexed(&self, index: u64) -> bool {
        self.indexed.contains(&index)
    }

    /// The entry of the object at `object_key`, while it has no index entry.
    pub fn target(&self, object_key: &str) -> Option<&IndexTarget> {
        self.by_key.get(object_key)
    }
}
