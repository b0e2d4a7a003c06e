//! What a zone's log says about one archive (or late) object and its index object: read from the
//! log's entries by an auditor, or from the API's projection of them.

/// The index object of an archive, as its `index` entry logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRef {
    pub key: String,
    pub stored_size: u64,
    pub stored_sha256: [u8; 32],
}

/// One archive or late object, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    /// Log index of its `archive` or `late` entry.
    pub entry_index: u64,
    /// Its entry id (SHA-256 of the entry), hex: the job id the API shows.
    pub entry_id: String,
    pub dataset: String,
    /// The window it belongs to, Unix ns, half-open.
    pub window: (u64, u64),
    pub key: String,
    pub stored_size: u64,
    pub stored_sha256: [u8; 32],
    pub content_sha256: [u8; 32],
    pub index: Option<IndexRef>,
}

impl Archived {
    /// The archives of a log's entries, in log order, each with its index where an `index`
    /// entry names it (only archives whose objects are kept: pruned ones are left out).
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = &'a rainlogs_integrity::Entry> + Clone,
    ) -> Vec<Self> {
        use std::collections::{HashMap, HashSet};

        use rainlogs_integrity::EntryBody;
        let mut indexes: HashMap<u64, IndexRef> = HashMap::new();
        let mut pruned: HashSet<u64> = HashSet::new();
        for entry in entries.clone() {
            match &entry.body {
                EntryBody::Index(index) => {
                    indexes.insert(
                        index.target_index,
                        IndexRef {
                            key: index.object.key.clone(),
                            stored_size: index.stored_size,
                            stored_sha256: index.stored_sha256.0,
                        },
                    );
                }
                EntryBody::Prune(prune) => {
                    pruned.insert(prune.target_index);
                }
                _ => {}
            }
        }
        entries
            .into_iter()
            .filter(|entry| !pruned.contains(&entry.index))
            .filter_map(|entry| {
                let archive = entry.body.archive()?;
                let id = entry
                    .encode()
                    .ok()
                    .map(|b| rainlogs_integrity::entry_id(&b))?;
                Some(Self {
                    entry_index: entry.index,
                    entry_id: id.to_hex(),
                    dataset: archive.dataset.to_string(),
                    window: (archive.window.start_ns(), archive.window.end_ns()),
                    key: archive.object.key.clone(),
                    stored_size: archive.stored_size,
                    stored_sha256: archive.stored_sha256.0,
                    content_sha256: archive.content_sha256.0,
                    index: indexes.remove(&entry.index),
                })
            })
            .collect()
    }
}
