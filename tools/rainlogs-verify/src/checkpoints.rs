//! The signed checkpoints: `tlog/checkpoint` (newest) and `tlog/checkpoints/<size>` (every published size).
//!
//! Each is opened with the pinned keys only and must name this zone's origin. The log is verified against the
//! largest valid one, so a rolled-back or forged `tlog/checkpoint` cannot hide a larger signed tree kept in
//! history; every other checkpoint must then be the root of a prefix of that log.

use std::collections::BTreeSet;

use futures::{StreamExt as _, stream};
use rainlogs_integrity::{CheckpointError, MemoryTree, Sha256Hash, open_checkpoint};
use rainlogs_store::Store;
use time::OffsetDateTime;

use crate::finding::{Finding, Kind, Reason};
use crate::options::VerifyOptions;
use crate::report::Findings;
use crate::source::{self, Fetched, Listing, ReadFailure};

/// A newer history checkpoint younger than this is a sealer caught between writing it and replacing
/// `tlog/checkpoint` (it writes history first), not a rollback.
const PUBLISHING_GRACE: time::Duration = time::Duration::minutes(5);

/// History file names: the tree size as exactly this many decimal digits.
const HISTORY_DIGITS: usize = 20;

/// A checkpoint whose signature and origin verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedHead {
    pub path: String,
    pub size: u64,
    pub root: Sha256Hash,
    pub signed_by: Vec<String>,
}

/// What the checkpoints say about the log.
#[derive(Debug, Default)]
pub(crate) struct Checkpoints {
    /// `tlog/checkpoint`, when present and valid.
    pub latest: Option<SignedHead>,
    /// Valid history checkpoints.
    pub history: Vec<SignedHead>,
    /// Every size a history file exists for (valid or not): each implies tiles (FORMAT.md §7).
    pub history_sizes: BTreeSet<u64>,
    /// The largest valid checkpoint: the log is verified against it.
    pub target: Option<SignedHead>,
}

/// The tree size a history file name stands for (`checkpoints/<20 digits>`).
pub(crate) fn history_size(name: &str) -> Option<u64> {
    if name.len() != HISTORY_DIGITS || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// Opens one signed note; a failure is the finding that explains it.
pub(crate) fn open_note(
    kind: Kind,
    path: &str,
    note: &[u8],
    options: &VerifyOptions,
) -> Result<SignedHead, Finding> {
    let fail = |reason, message: String| Finding::new(kind, path, reason, message);
    match open_checkpoint(note, &options.origin, &options.trusted_keys) {
        Ok(verified) => Ok(SignedHead {
            path: path.to_owned(),
            size: verified.checkpoint.size,
            root: verified.checkpoint.root,
            signed_by: verified
                .signed_by
                .iter()
                .map(|k| format!("{}+{:08x}", k.name(), k.key_id()))
                .collect(),
        }),
        Err(error) => Err(match &error {
            CheckpointError::WrongOrigin { expected, found } => fail(
                Reason::CheckpointWrongOrigin,
                format!("signed for origin {found:?}, this zone is {expected:?}"),
            ),
            CheckpointError::UnknownKey => fail(
                Reason::UntrustedKey,
                format!(
                    "no signature by a pinned key ({}); a key found in the bucket is never trusted",
                    pinned(options)
                ),
            ),
            CheckpointError::BadSignature { name, id } => fail(
                Reason::BadSignature,
                format!("signature of pinned key {name}+{id:08x} does not verify"),
            ),
            CheckpointError::AmbiguousKey => fail(Reason::AmbiguousTrustedKeys, error.to_string()),
            _ => fail(Reason::CheckpointMalformed, error.to_string()),
        }),
    }
}

fn pinned(options: &VerifyOptions) -> String {
    options
        .trusted_keys
        .iter()
        .map(|k| format!("{}+{:08x}", k.name(), k.key_id()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn failure_finding(kind: Kind, path: &str, failure: ReadFailure) -> Finding {
    Finding::new(kind, path, failure.reason, failure.message)
}

/// Reads and opens every checkpoint. `Err` when the store is unreachable (nothing else will work either).
pub(crate) async fn collect(
    store: &Store,
    options: &VerifyOptions,
    listing: Option<&Listing>,
    findings: &mut Findings,
) -> Result<Checkpoints, ()> {
    let tlog = options.prefix.tlog_prefix(&options.origin);
    let latest_path = options.prefix.checkpoint_key(&options.origin);
    let mut out = Checkpoints::default();

    let latest_present = match source::fetch(store, &latest_path).await {
        Fetched::Found(note) => {
            match open_note(Kind::Checkpoint, &latest_path, &note, options) {
                Ok(head) => out.latest = Some(head),
                Err(finding) => findings.push(finding),
            }
            true
        }
        Fetched::Missing => false,
        Fetched::Failed(failure) => {
            let fatal = failure.is_fatal();
            findings.push(failure_finding(Kind::Checkpoint, &latest_path, failure));
            if fatal {
                return Err(());
            }
            true
        }
    };

    let history_prefix = format!("{tlog}checkpoints/");
    let history_files: Vec<(String, u64, Option<OffsetDateTime>)> = listing
        .into_iter()
        .flat_map(|l| l.range(history_prefix.clone()..))
        .take_while(|(key, _)| key.starts_with(&history_prefix))
        .filter_map(|(key, object)| {
            history_size(&key[history_prefix.len()..])
                .map(|size| (key.clone(), size, object.last_modified))
        })
        .collect();
    let mut newest_history_write: Option<(u64, Option<OffsetDateTime>)> = None;
    let fetched: Vec<_> = stream::iter(history_files)
        .map(|(key, size, modified)| async move {
            let fetched = source::fetch(store, &key).await;
            (key, size, modified, fetched)
        })
        .buffered(options.jobs.max(1))
        .collect()
        .await;
    for (key, size, modified, fetched) in fetched {
        out.history_sizes.insert(size);
        match fetched {
            Fetched::Found(note) => match open_note(Kind::History, &key, &note, options) {
                Ok(head) if head.size != size => findings.push(Finding::new(
                    Kind::History,
                    &key,
                    Reason::HistoryNameMismatch,
                    format!(
                        "holds a checkpoint of size {} under the name of size {size}",
                        head.size
                    ),
                )),
                Ok(head) => {
                    if newest_history_write.is_none_or(|(s, _)| s < size) {
                        newest_history_write = Some((size, modified));
                    }
                    out.history.push(head);
                }
                Err(finding) => findings.push(finding),
            },
            // Listed a moment ago and gone now: deleted while we looked.
            Fetched::Missing => findings.push(Finding::new(
                Kind::History,
                &key,
                Reason::HistoryMissing,
                "listed but could not be read back: deleted during verification",
            )),
            Fetched::Failed(failure) => {
                findings.push(failure_finding(Kind::History, &key, failure))
            }
        }
    }

    out.target = out
        .history
        .iter()
        .chain(out.latest.iter())
        .max_by_key(|head| (head.size, head.path == latest_path))
        .cloned();

    // The store cannot replace an object in place, so a sealer updates tlog/checkpoint by delete + create,
    // after writing the history copy: for a moment the newest checkpoint lags history or is absent.
    let publishing = newest_history_write
        .and_then(|(_, modified)| modified)
        .is_some_and(|modified| options.now - modified < PUBLISHING_GRACE);
    match (&out.latest, &out.target) {
        (Some(latest), Some(target)) if target.size > latest.size => {
            let (reason, text) = if publishing {
                (
                    Reason::CheckpointPublishing,
                    "was written moments ago; re-run to confirm the sealer finished publishing",
                )
            } else {
                (
                    Reason::CheckpointRollback,
                    "is signed and larger: tlog/checkpoint was rolled back (or the sealer stopped mid-publish)",
                )
            };
            findings.push(Finding::new(
                Kind::Checkpoint,
                &latest_path,
                reason,
                format!(
                    "tlog/checkpoint has size {}, but {} {text}",
                    latest.size, target.path
                ),
            ));
        }
        _ => {}
    }

    if !latest_present {
        let zone_has_objects = listing.is_some_and(|l| !l.is_empty());
        if let (true, Some(target)) = (publishing, &out.target) {
            findings.push(Finding::new(
                Kind::Checkpoint,
                &latest_path,
                Reason::CheckpointPublishing,
                format!(
                    "tlog/checkpoint is absent, but {} was written moments ago; re-run to confirm the sealer finished publishing",
                    target.path
                ),
            ));
        } else if zone_has_objects {
            findings.push(Finding::new(
                Kind::Checkpoint,
                &latest_path,
                Reason::CheckpointMissing,
                "the zone holds objects but no newest checkpoint",
            ));
        } else {
            findings.push(Finding::new(
                Kind::Store,
                options.prefix.zone_prefix(&options.origin),
                Reason::ZoneEmpty,
                format!(
                    "no tlog/checkpoint and {} under the zone prefix",
                    if listing.is_some() {
                        "nothing else"
                    } else {
                        "no listing"
                    }
                ),
            ));
        }
    }

    if let Some(latest) = &out.latest
        && listing.is_some()
        && !out.history_sizes.contains(&latest.size)
    {
        findings.push(Finding::new(
            Kind::History,
            options
                .prefix
                .checkpoint_history_key(&options.origin, latest.size),
            Reason::HistoryMissing,
            format!(
                "the newest checkpoint (size {}) has no copy in history",
                latest.size
            ),
        ));
    }
    Ok(out)
}

/// Every valid checkpoint must be the root of the log's prefix of its size. `tree` holds the whole verified
/// log (it must have at least the target's size).
pub(crate) fn check_roots(
    checkpoints: &Checkpoints,
    tree: &MemoryTree,
    history_dir: &str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(target) = &checkpoints.target else {
        return out;
    };
    let in_history = checkpoints.history.iter().map(|head| (head, true));
    let latest = checkpoints.latest.iter().map(|head| (head, false));
    let mut consistent_history = 0u64;
    for (head, from_history) in in_history.chain(latest) {
        let Ok(root) = tree.root_at(head.size) else {
            continue;
        };
        if root == head.root {
            consistent_history += u64::from(from_history);
            continue;
        }
        let is_target = head.size == target.size && head.path == target.path;
        let (kind, reason) = if is_target {
            (Kind::Checkpoint, Reason::RootMismatch)
        } else {
            (Kind::History, Reason::HistoryInconsistent)
        };
        out.push(Finding::new(
            kind,
            &head.path,
            reason,
            format!(
                "signed root of size {} is {}, the entries give {root}",
                head.size, head.root
            ),
        ));
    }
    if out.is_empty() {
        out.push(Finding::new(
            Kind::Checkpoint,
            &target.path,
            Reason::CheckpointVerified,
            format!(
                "size {}, root {}, signed by {}; entries reproduce the root",
                target.size,
                target.root,
                target.signed_by.join(", ")
            ),
        ));
        out.push(Finding::new(
            Kind::History,
            history_dir,
            Reason::HistoryVerified,
            format!(
                "{consistent_history} checkpoints in history, each the root of a prefix of the log"
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_names_are_exactly_twenty_digits() {
        assert_eq!(history_size("00000000000000000006"), Some(6));
        assert_eq!(history_size("6"), None);
        assert_eq!(history_size("0000000000000000000x"), None);
        assert_eq!(history_size("000000000000000000006"), None);
    }
}
