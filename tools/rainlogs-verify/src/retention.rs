//! Retention: an archive may be gone only under a logged `prune` entry that names it exactly (entry id, key,
//! version, dataset) and that happened at or after its retain-until. A late object is an archive object
//! (FORMAT.md §3), so a prune may target a `late` entry on the same terms. Both the claimed deletion time and the
//! time the prune was sealed must be past retain-until, so an early deletion cannot be back-dated into policy.

use std::collections::HashSet;

use rainlogs_integrity::EntryBody;

use crate::finding::{Finding, Kind, Reason};
use crate::log::LoggedEntry;
use crate::options::format_ns;

/// Checks every prune entry; returns the indexes of archive and late entries whose deletion is legitimate.
pub(crate) fn check(entries: &[Option<LoggedEntry>]) -> (HashSet<u64>, Vec<Finding>) {
    let mut pruned = HashSet::new();
    let mut seen_targets = HashSet::new();
    let mut findings = Vec::new();
    for logged in entries.iter().flatten() {
        let EntryBody::Prune(prune) = &logged.entry.body else {
            continue;
        };
        let index = logged.entry.index;
        let path = prune.object.key.as_str();
        let bad_target = |why: String| {
            Finding::new(
                Kind::Prune,
                path,
                Reason::PruneBadTarget,
                format!("prune entry {index} → entry {}: {why}", prune.target_index),
            )
        };
        let (target, archive) = match crate::log::archive_target(entries, prune.target_index) {
            Ok(Some(found)) => found,
            Ok(None) => continue,
            Err(why) => {
                findings.push(bad_target(why));
                continue;
            }
        };
        let mut mismatches = Vec::new();
        if prune.target_entry_id != target.id {
            mismatches.push(format!(
                "entry id {} ≠ target's {}",
                prune.target_entry_id, target.id
            ));
        }
        if prune.object != archive.object {
            mismatches.push(format!(
                "object {}@{:?} ≠ target's {}@{:?}",
                prune.object.key, prune.object.version, archive.object.key, archive.object.version
            ));
        }
        if prune.dataset != archive.dataset {
            mismatches.push(format!(
                "dataset {} ≠ target's {}",
                prune.dataset, archive.dataset
            ));
        }
        if !mismatches.is_empty() {
            findings.push(bad_target(mismatches.join("; ")));
            continue;
        }
        if !seen_targets.insert(prune.target_index) {
            findings.push(Finding::new(
                Kind::Prune,
                path,
                Reason::PruneDuplicate,
                format!(
                    "entry {} is pruned again by entry {index}",
                    prune.target_index
                ),
            ));
            continue;
        }
        let retain_until = archive.retain_until_ns;
        let sealed_at = logged.entry.sealed_at_ns;
        if prune.pruned_at_ns < retain_until || sealed_at < retain_until {
            findings.push(Finding::new(
                Kind::Prune,
                path,
                Reason::PruneBeforeRetainUntil,
                format!(
                    "prune entry {index} (policy {}) deleted it at {} and was sealed at {}, but entry {} retains it until {}",
                    prune.policy,
                    format_ns(prune.pruned_at_ns),
                    format_ns(sealed_at),
                    prune.target_index,
                    format_ns(retain_until)
                ),
            ));
            continue;
        }
        pruned.insert(prune.target_index);
    }
    (pruned, findings)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rainlogs_integrity::{
        ArchiveRecord, Chain, CollectionMethod, Dataset, Name, ObjectRef, Origin, PruneRecord,
        Sampling, Sha256Hash, Window,
    };

    use super::*;

    struct Log {
        chain: Chain,
        entries: Vec<Option<LoggedEntry>>,
    }

    impl Log {
        fn new() -> Self {
            let origin = Origin::new(&Name::new("t").unwrap(), &Name::new("z").unwrap());
            Self {
                chain: Chain::new(origin),
                entries: Vec::new(),
            }
        }

        fn seal(&mut self, body: EntryBody, sealed_at_ns: u64) -> (u64, Sha256Hash) {
            let sealed = self.chain.seal(body, sealed_at_ns).unwrap();
            let out = (sealed.entry.index, sealed.id);
            self.entries.push(Some(LoggedEntry {
                entry: sealed.entry,
                id: sealed.id,
            }));
            out
        }

        fn archive(&mut self, key: &str, retain_until_ns: u64) -> (u64, Sha256Hash) {
            let body = EntryBody::Archive(record(key, retain_until_ns));
            self.seal(body, 3)
        }

        fn late(&mut self, key: &str, retain_until_ns: u64) -> (u64, Sha256Hash) {
            let body = EntryBody::Late(record(key, retain_until_ns));
            self.seal(body, 3)
        }

        fn prune(
            &mut self,
            key: &str,
            target: (u64, Sha256Hash),
            pruned_at_ns: u64,
            sealed_at_ns: u64,
        ) {
            let body = EntryBody::Prune(PruneRecord {
                dataset: Dataset::new("http_requests").unwrap(),
                object: object(key),
                target_index: target.0,
                target_entry_id: target.1,
                policy: Name::new("p30d").unwrap(),
                pruned_at_ns,
            });
            self.seal(body, sealed_at_ns);
        }
    }

    fn record(key: &str, retain_until_ns: u64) -> ArchiveRecord {
        ArchiveRecord {
            dataset: Dataset::new("http_requests").unwrap(),
            window: Window::new(1, 2).unwrap(),
            method: CollectionMethod::Logpull,
            sampling: Sampling::UNSAMPLED,
            object: object(key),
            stored_size: 1,
            stored_sha256: Sha256Hash::digest(key.as_bytes()),
            content_sha256: Sha256Hash::ZERO,
            record_count: 1,
            retain_until_ns,
        }
    }

    fn object(key: &str) -> ObjectRef {
        ObjectRef {
            key: key.into(),
            version: String::new(),
        }
    }

    fn reasons(log: &Log) -> (HashSet<u64>, Vec<Reason>) {
        let (pruned, findings) = check(&log.entries);
        (pruned, findings.iter().map(|f| f.reason).collect())
    }

    #[test]
    fn a_prune_after_retain_until_legitimises_the_deletion() {
        let mut log = Log::new();
        let a = log.archive("a", 100);
        log.prune("a", a, 150, 160);
        assert_eq!(reasons(&log), ([a.0].into(), vec![]));
    }

    #[test]
    fn a_back_dated_prune_sealed_before_retain_until_is_early_deletion() {
        let mut log = Log::new();
        let a = log.archive("a", 100);
        log.prune("a", a, 150, 90);
        assert_eq!(
            reasons(&log),
            (HashSet::new(), vec![Reason::PruneBeforeRetainUntil])
        );
    }

    #[test]
    fn a_prune_must_name_its_target_exactly_and_only_once() {
        let mut log = Log::new();
        let a = log.archive("a", 100);
        let b = log.archive("b", 100);
        log.prune("b", (a.0, a.1), 150, 150);
        log.prune("a", (a.0, b.1), 150, 150);
        log.prune("a", a, 150, 150);
        log.prune("a", a, 151, 151);
        assert_eq!(
            reasons(&log),
            (
                [a.0].into(),
                vec![
                    Reason::PruneBadTarget,
                    Reason::PruneBadTarget,
                    Reason::PruneDuplicate
                ]
            )
        );
    }

    #[test]
    fn a_late_entry_is_pruned_on_the_same_terms_as_an_archive() {
        let mut log = Log::new();
        let late = log.late("l", 100);
        let early = log.late("e", 100);
        log.prune("l", late, 150, 160);
        log.prune("e", early, 150, 90);
        assert_eq!(
            reasons(&log),
            ([late.0].into(), vec![Reason::PruneBeforeRetainUntil])
        );
    }
}
