//! Reading the log: the entry bundles covering `0 … size-1`, decoded strictly, every leaf hashed into a tree
//! and every chain link checked against its predecessor recomputed from genesis.
//!
//! While reading, the entries are replayed through the integrity crate's `TileWriter`, publishing at every
//! size a checkpoint exists for: that yields the exact bytes every tile and bundle must hold.

use std::collections::{BTreeSet, HashMap};

use futures::{StreamExt as _, stream};
use rainlogs_integrity::tiles::{TileKind, decode_entry_bundle};
use rainlogs_integrity::{
    Entry, MemoryTree, Origin, SealedEntry, Sha256Hash, TileId, TileWriter, genesis,
};
use rainlogs_store::Store;

use crate::finding::{Finding, Kind, Reason};
use crate::options::VerifyOptions;
use crate::report::Findings;
use crate::source::{self, Fetched};

/// One decoded entry and its id.
#[derive(Debug, Clone)]
pub(crate) struct LoggedEntry {
    pub entry: Entry,
    pub id: Sha256Hash,
}

/// What a tile or bundle must hold, from the replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExpectedBytes {
    pub len: u64,
    pub sha256: Sha256Hash,
}

#[derive(Debug)]
pub(crate) struct Log {
    /// The size of the checkpoint the log is read for.
    pub size: u64,
    /// By position; `None` where the bundle is missing or the entry does not decode.
    pub entries: Vec<Option<LoggedEntry>>,
    /// Leaves up to the first missing or malformed bundle.
    pub tree: MemoryTree,
    /// SHA-256 of the stored bytes of every bundle read, by key.
    pub read_bundles: HashMap<String, Sha256Hash>,
    /// Bundles already reported missing or malformed (not reported again as tiles).
    pub reported: BTreeSet<String>,
    /// Tile and bundle contents the replay produced, by key (empty if a bundle was broken).
    pub expected: HashMap<String, ExpectedBytes>,
    /// `ChainHash` of the last entry, when it decoded.
    pub head: Option<Sha256Hash>,
}

impl Log {
    /// Every entry was read and every leaf is in the tree.
    pub fn is_complete(&self) -> bool {
        self.tree.size() == self.size
    }

    pub fn decoded(&self) -> impl Iterator<Item = &LoggedEntry> {
        self.entries.iter().flatten()
    }

    /// The newest `sealed_at_ns` of any decoded entry.
    pub fn newest_sealed_ns(&self) -> Option<u64> {
        self.decoded().map(|e| e.entry.sealed_at_ns).max()
    }
}

/// The bundles a tree of `size` is stored in: full ones, then the partial one of `size`.
pub(crate) fn bundles_for(size: u64) -> Vec<TileId> {
    let full = size / 256;
    let mut out: Vec<TileId> = (0..full)
        .filter_map(|n| TileId::new(TileKind::Entries, n, 256).ok())
        .collect();
    let rest = u16::try_from(size % 256).unwrap_or(0);
    if rest > 0
        && let Ok(id) = TileId::new(TileKind::Entries, full, rest)
    {
        out.push(id);
    }
    out
}

/// Checks one entry at `position` against the chain hash of its predecessor (`None` when that one could not be
/// decoded). Returns the decoded entry, if any, and what is wrong with it.
pub(crate) fn check_entry(
    position: u64,
    bytes: &[u8],
    previous_chain_hash: Option<Sha256Hash>,
    origin: &Origin,
    path: &str,
) -> (Option<SealedEntry>, Vec<Finding>) {
    let at = format!("{path}#{position}");
    let sealed = match SealedEntry::from_bytes(bytes) {
        Ok(sealed) => sealed,
        Err(error) => {
            let finding = Finding::new(
                Kind::Entry,
                at,
                Reason::EntryMalformed,
                format!("entry {position} does not decode: {error}"),
            );
            return (None, vec![finding]);
        }
    };
    let mut findings = Vec::new();
    let entry = &sealed.entry;
    if entry.origin != *origin {
        findings.push(Finding::new(
            Kind::Entry,
            &at,
            Reason::EntryWrongOrigin,
            format!("entry {position} belongs to {}, not {origin}", entry.origin),
        ));
    }
    if entry.index != position {
        findings.push(Finding::new(
            Kind::Entry,
            &at,
            Reason::EntryWrongIndex,
            format!(
                "the entry at position {position} says it is entry {}",
                entry.index
            ),
        ));
    }
    if let Some(expected) = previous_chain_hash
        && entry.prev_chain_hash != expected
    {
        findings.push(Finding::new(
            Kind::Chain,
            &at,
            Reason::ChainBroken,
            format!(
                "entry {position}: prev_chain_hash {} but the chain recomputed from genesis is at {expected}",
                entry.prev_chain_hash
            ),
        ));
    }
    (Some(sealed), findings)
}

/// Replays entries through a `TileWriter`, taking tiles at every published size.
struct Replay {
    writer: TileWriter,
    publish_at: Vec<u64>,
    next: usize,
    expected: HashMap<String, ExpectedBytes>,
    tlog_prefix: String,
    broken: bool,
}

impl Replay {
    fn append(&mut self, entry: &[u8]) {
        if self.broken || self.writer.append(entry).is_err() {
            self.broken = true;
            return;
        }
        while self
            .publish_at
            .get(self.next)
            .is_some_and(|&s| s < self.writer.size())
        {
            self.next += 1;
        }
        if self.publish_at.get(self.next) == Some(&self.writer.size()) {
            self.next += 1;
            match self.writer.take_tiles() {
                Ok(files) => {
                    for file in files {
                        self.expected.insert(
                            format!("{}{}", self.tlog_prefix, file.path()),
                            ExpectedBytes {
                                len: file.data.len() as u64,
                                sha256: Sha256Hash::digest(&file.data),
                            },
                        );
                    }
                }
                Err(_) => self.broken = true,
            }
        }
    }
}

/// Reads the log of `size` entries. `published` are the sizes checkpoints exist for (tiles are replayed at
/// those). `Err` when the store became unreachable.
pub(crate) async fn read(
    store: &Store,
    options: &VerifyOptions,
    size: u64,
    published: &BTreeSet<u64>,
    findings: &mut Findings,
) -> Result<Log, ()> {
    let tlog = options.prefix.tlog_prefix(&options.origin);
    let mut log = Log {
        size,
        entries: Vec::new(),
        tree: MemoryTree::new(),
        read_bundles: HashMap::new(),
        reported: BTreeSet::new(),
        expected: HashMap::new(),
        head: None,
    };
    let mut replay = Replay {
        writer: TileWriter::new(),
        publish_at: published
            .iter()
            .copied()
            .filter(|&s| s > 0 && s <= size)
            .collect(),
        next: 0,
        expected: HashMap::new(),
        tlog_prefix: tlog.clone(),
        broken: false,
    };
    let mut previous = Some(genesis(&options.origin));
    let mut tree_intact = true;

    let mut bundles = stream::iter(bundles_for(size))
        .map(|id| {
            let path = format!("{tlog}{}", id.path());
            async move {
                let fetched = source::fetch(store, &path).await;
                (id, path, fetched)
            }
        })
        .buffered(options.jobs.max(1));

    while let Some((id, path, fetched)) = bundles.next().await {
        let first = id.index() * 256;
        let width = usize::from(id.width());
        // `Err(None)`: unreadable, already reported; `Err(Some(_))`: evidence to report.
        let decoded: Result<Vec<Vec<u8>>, Option<Finding>> = match fetched {
            Fetched::Found(bytes) => {
                log.read_bundles
                    .insert(path.clone(), Sha256Hash::digest(&bytes));
                decode_entry_bundle(&id, &bytes).map_err(|error| {
                    Some(Finding::new(
                        Kind::Log,
                        &path,
                        Reason::BundleMalformed,
                        error.to_string(),
                    ))
                })
            }
            Fetched::Missing => Err(Some(Finding::new(
                Kind::Log,
                &path,
                Reason::BundleMissing,
                format!(
                    "entries {first}…{} of the signed tree of size {size} are gone",
                    first + width as u64 - 1
                ),
            ))),
            Fetched::Failed(failure) => {
                let fatal = failure.is_fatal();
                findings.push(Finding::new(
                    Kind::Log,
                    &path,
                    failure.reason,
                    failure.message,
                ));
                if fatal {
                    return Err(());
                }
                Err(None)
            }
        };
        let entries = match decoded {
            Ok(entries) => entries,
            Err(evidence) => {
                findings.extend(evidence);
                log.reported.insert(path);
                tree_intact = false;
                replay.broken = true;
                log.entries.extend((0..width).map(|_| None));
                previous = None;
                continue;
            }
        };
        for (offset, bytes) in entries.iter().enumerate() {
            let position = first + offset as u64;
            if tree_intact && log.tree.push(bytes).is_err() {
                tree_intact = false;
            }
            replay.append(bytes);
            let (sealed, problems) = check_entry(position, bytes, previous, &options.origin, &path);
            findings.extend(problems);
            previous = sealed.as_ref().map(|s| s.chain_hash);
            log.entries.push(sealed.map(|s| LoggedEntry {
                id: s.id,
                entry: s.entry,
            }));
        }
    }
    if !replay.broken {
        log.expected = replay.expected;
    }
    log.head = previous;
    Ok(log)
}

/// The archive or late entry a prune or index entry names by its log index. `Err` says why it
/// names none; `Ok(None)`: the entry exists but could not be read (already reported with its
/// bundle).
pub(crate) fn archive_target(
    entries: &[Option<LoggedEntry>],
    target_index: u64,
) -> Result<Option<(&LoggedEntry, &rainlogs_integrity::ArchiveRecord)>, String> {
    let target = usize::try_from(target_index)
        .ok()
        .and_then(|i| entries.get(i))
        .ok_or_else(|| "no such entry in the log".to_owned())?;
    let Some(target) = target else {
        return Ok(None);
    };
    let archive = target.entry.body.archive().ok_or_else(|| {
        format!(
            "the target is a {} entry, not an archive or late entry",
            target.entry.kind().as_str()
        )
    })?;
    Ok(Some((target, archive)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bundles_cover_the_tree_exactly() {
        let paths: Vec<String> = bundles_for(513).iter().map(TileId::path).collect();
        assert_eq!(
            paths,
            [
                "tile/entries/000",
                "tile/entries/001",
                "tile/entries/002.p/1"
            ]
        );
        assert!(bundles_for(0).is_empty());
        assert_eq!(bundles_for(256).len(), 1);
    }
}
