//! Index entries (FORMAT.md §4.2, §12): each names exactly one earlier `archive` or `late` entry
//! (its index and entry id, and its dataset, window and retain-until), its object has the key
//! §2 derives from that entry's object key, and no entry is indexed twice. The index objects
//! themselves are read with the archives (`archives.rs`): present with the logged bytes, and
//! under `--deep` equal to the index the archive's content rebuilds to.

use std::collections::{HashMap, HashSet};

use rainlogs_integrity::layout::index_key;
use rainlogs_integrity::{EntryBody, Sha256Hash};

use crate::finding::{Finding, Kind, Reason};
use crate::log::LoggedEntry;

/// A valid index entry, by the entry it indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SealedIndex {
    /// The index entry's own log index.
    pub entry: u64,
    pub stored_sha256: Sha256Hash,
}

/// Checks every index entry; returns the valid ones by their target's log index. Archive and late
/// entries without one, and not pruned (`pruned`), are counted in an info finding.
pub(crate) fn check(
    entries: &[Option<LoggedEntry>],
    pruned: &HashSet<u64>,
) -> (HashMap<u64, SealedIndex>, Vec<Finding>) {
    let mut indexed: HashMap<u64, SealedIndex> = HashMap::new();
    let mut findings = Vec::new();
    for logged in entries.iter().flatten() {
        let EntryBody::Index(record) = &logged.entry.body else {
            continue;
        };
        let index = logged.entry.index;
        let bad_target = |why: String| {
            Finding::new(
                Kind::Archive,
                record.object.key.as_str(),
                Reason::IndexBadTarget,
                format!("index entry {index} → entry {}: {why}", record.target_index),
            )
        };
        let (target, archive) = match crate::log::archive_target(entries, record.target_index) {
            Ok(Some(found)) => found,
            Ok(None) => continue,
            Err(why) => {
                findings.push(bad_target(why));
                continue;
            }
        };
        let mut mismatches = Vec::new();
        if record.target_entry_id != target.id {
            mismatches.push(format!(
                "entry id {} ≠ target's {}",
                record.target_entry_id, target.id
            ));
        }
        if record.dataset != archive.dataset || record.window != archive.window {
            mismatches.push(format!(
                "{} {:?} ≠ target's {} {:?}",
                record.dataset, record.window, archive.dataset, archive.window
            ));
        }
        if record.retain_until_ns != archive.retain_until_ns {
            mismatches.push(format!(
                "retain-until {} ≠ target's {}",
                record.retain_until_ns, archive.retain_until_ns
            ));
        }
        let expected_key = index_key(&archive.object.key);
        if expected_key.as_deref() != Some(record.object.key.as_str()) {
            mismatches.push(format!(
                "key {} ≠ {}",
                record.object.key,
                expected_key.unwrap_or_else(|| "(none derivable)".into())
            ));
        }
        if !mismatches.is_empty() {
            findings.push(bad_target(mismatches.join("; ")));
            continue;
        }
        let sealed = SealedIndex {
            entry: index,
            stored_sha256: record.stored_sha256,
        };
        if let Some(first) = indexed.insert(record.target_index, sealed) {
            indexed.insert(record.target_index, first);
            findings.push(bad_target(format!(
                "entry {} already indexes it",
                first.entry
            )));
        }
    }
    let unindexed = entries
        .iter()
        .flatten()
        .filter(|l| {
            l.entry.body.archive().is_some()
                && !indexed.contains_key(&l.entry.index)
                && !pruned.contains(&l.entry.index)
        })
        .count();
    if unindexed > 0 {
        findings.push(Finding::new(
            Kind::Archive,
            "",
            Reason::ArchivesUnindexed,
            format!(
                "{unindexed} archived objects have no index entry (sealed before indexes, or not rebuilt yet); a search reads them whole"
            ),
        ));
    }
    (indexed, findings)
}
