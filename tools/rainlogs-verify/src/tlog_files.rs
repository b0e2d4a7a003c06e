//! `tlog/` must hold exactly the files the log implies: the checkpoints, and the tiles and bundles the sealer
//! writes at each published size (FORMAT.md §7: full tiles once, a partial tile per published size).
//!
//! Contents are compared with a replay of the verified entries through the integrity crate's `TileWriter`:
//! every full tile and the partial tiles of the verified size are read; older partial tiles (superseded
//! copies that any tile client authenticates against a root anyway) are compared by size, and read with
//! `--deep`.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt as _, stream};
use rainlogs_integrity::tiles::{TileKind, tiles_for_growth};
use rainlogs_integrity::{Sha256Hash, TileId, TileWriter};
use rainlogs_store::Store;

use crate::checkpoints::{Checkpoints, history_size};
use crate::finding::{Finding, Kind, Reason};
use crate::log::Log;
use crate::options::VerifyOptions;
use crate::source::{self, Fetched, Listing};

/// Relative tile paths (below `tlog/`) a sequence of published sizes implies.
pub(crate) fn implied_tiles(sizes: &BTreeSet<u64>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut previous = 0;
    for &size in sizes {
        if let Ok(ids) = tiles_for_growth(previous, size) {
            out.extend(ids.iter().map(TileId::path));
        }
        previous = previous.max(size);
    }
    out
}

/// The tree size a level-0 tile or bundle shows was published (for a full one: at least this size).
fn implied_size(id: &TileId) -> Option<u64> {
    let level_zero = matches!(id.kind(), TileKind::Entries | TileKind::Hashes { level: 0 });
    level_zero.then(|| id.index() * 256 + u64::from(id.width()))
}

/// What the rest of the run learned that this check needs.
pub(crate) struct Inputs<'a> {
    pub listing: &'a Listing,
    pub checkpoints: &'a Checkpoints,
    pub log: &'a Log,
    /// The newest entry is within `--max-staleness`.
    pub fresh: bool,
}

/// Checks the set and the contents of the files under `tlog/`. Returns the findings and how many files
/// were checked.
pub(crate) async fn check(
    store: &Store,
    options: &VerifyOptions,
    inputs: Inputs<'_>,
) -> (Vec<Finding>, u64) {
    let tlog = options.prefix.tlog_prefix(&options.origin);
    let Some(target) = &inputs.checkpoints.target else {
        return (Vec::new(), 0);
    };
    let mut findings = Vec::new();

    let mut listed: BTreeMap<String, (TileId, u64)> = BTreeMap::new();
    for (key, object) in inputs.listing.range(tlog.clone()..) {
        let Some(relative) = key.strip_prefix(&tlog) else {
            break;
        };
        if relative == "checkpoint" {
            continue;
        }
        if relative
            .strip_prefix("checkpoints/")
            .and_then(history_size)
            .is_some()
        {
            continue;
        }
        match TileId::parse_path(relative) {
            Ok(id) => {
                listed.insert(relative.to_owned(), (id, object.size));
            }
            Err(_) => findings.push(Finding::new(
                Kind::Tlog,
                key,
                Reason::TlogUnexpectedObject,
                format!(
                    "{} bytes that are no checkpoint, tile or entry bundle",
                    object.size
                ),
            )),
        }
    }

    let mut published: BTreeSet<u64> = inputs.checkpoints.history_sizes.clone();
    published.extend(inputs.checkpoints.latest.as_ref().map(|h| h.size));
    published.insert(target.size);
    published.retain(|&s| s > 0 && s <= target.size);
    let expected = implied_tiles(&published);

    for path in expected.difference(&listed.keys().cloned().collect()) {
        let key = format!("{tlog}{path}");
        if !inputs.log.reported.contains(&key) {
            findings.push(Finding::new(
                Kind::Tlog,
                key,
                Reason::TileMissing,
                "implied by the published checkpoint sizes but not stored",
            ));
        }
    }

    findings.extend(diagnose_unexpected(
        options,
        &tlog,
        &listed,
        &expected,
        &published,
        target.size,
        inputs.fresh,
    ));

    // Contents.
    let latest_tiles: BTreeSet<String> = TileWriter::resume_tiles(target.size)
        .iter()
        .map(TileId::path)
        .collect();
    let mut to_read = Vec::new();
    let mut checked = 0u64;
    for (path, (id, size)) in &listed {
        if !expected.contains(path) {
            continue;
        }
        let key = format!("{tlog}{path}");
        let Some(want) = inputs.log.expected.get(&key) else {
            continue;
        };
        checked += 1;
        if *size != want.len {
            findings.push(Finding::new(
                Kind::Tlog,
                &key,
                Reason::TileMismatch,
                format!("{size} bytes stored, the log implies {}", want.len),
            ));
            continue;
        }
        if !id.is_partial() || latest_tiles.contains(path) || options.deep {
            match inputs.log.read_bundles.get(&key) {
                Some(read) if *read != want.sha256 => findings.push(mismatch(&key)),
                Some(_) => {}
                None => to_read.push((key, want.sha256)),
            }
        }
    }
    let read: Vec<_> = stream::iter(to_read)
        .map(|(key, want)| async move {
            let fetched = source::fetch(store, &key).await;
            (key, want, fetched)
        })
        .buffered(options.jobs.max(1))
        .collect()
        .await;
    for (key, want, fetched) in read {
        match fetched {
            Fetched::Found(bytes) if Sha256Hash::digest(&bytes) != want => {
                findings.push(mismatch(&key))
            }
            Fetched::Found(_) => {}
            Fetched::Missing => findings.push(Finding::new(
                Kind::Tlog,
                key,
                Reason::TileMissing,
                "listed but gone when read",
            )),
            Fetched::Failed(failure) => findings.push(Finding::new(
                Kind::Tlog,
                key,
                failure.reason,
                failure.message,
            )),
        }
    }

    if findings.is_empty() {
        findings.push(Finding::new(
            Kind::Tlog,
            &tlog,
            Reason::TlogFilesVerified,
            format!(
                "{} tiles and bundles for {} published sizes, exactly as the log implies ({checked} compared with the replayed log)",
                listed.len(),
                published.len()
            ),
        ));
    }
    (findings, checked)
}

fn mismatch(key: &str) -> Finding {
    Finding::new(
        Kind::Tlog,
        key,
        Reason::TileMismatch,
        "does not hold the hashes or entries of the verified log",
    )
}

/// Explains tiles no published size implies: a checkpoint whose history copy was deleted, a tail beyond the
/// newest checkpoint, or a planted file.
fn diagnose_unexpected(
    options: &VerifyOptions,
    tlog: &str,
    listed: &BTreeMap<String, (TileId, u64)>,
    expected: &BTreeSet<String>,
    published: &BTreeSet<u64>,
    target_size: u64,
    fresh: bool,
) -> Vec<Finding> {
    let unexpected: Vec<(&String, &TileId)> = listed
        .iter()
        .filter(|(path, _)| !expected.contains(*path))
        .map(|(path, (id, _))| (path, id))
        .collect();
    if unexpected.is_empty() {
        return Vec::new();
    }
    let mut lost_history = BTreeSet::new();
    let mut tail = BTreeSet::new();
    for (_, id) in &unexpected {
        let Some(size) = implied_size(id) else {
            continue;
        };
        if size > target_size {
            tail.insert(size);
        } else if id.is_partial() && !published.contains(&size) {
            lost_history.insert(size);
        }
    }
    let mut with_lost = published.clone();
    with_lost.extend(&lost_history);
    let explained_by_history = implied_tiles(&with_lost);
    let mut with_tail = published.clone();
    with_tail.extend(&tail);
    let explained_by_tail = implied_tiles(&with_tail);

    let mut findings = Vec::new();
    for size in &lost_history {
        findings.push(Finding::new(
            Kind::History,
            options.prefix.checkpoint_history_key(&options.origin, *size),
            Reason::HistoryMissing,
            format!(
                "tiles of size {size} exist, so a checkpoint of that size was published, but its copy in history \
                 is gone; history is never deleted. The entries still verify against the newest checkpoint."
            ),
        ));
    }
    if let Some(largest) = tail.last() {
        let files = unexpected
            .iter()
            .filter(|(path, _)| explained_by_tail.contains(*path))
            .count();
        let (reason, why) = if fresh {
            (
                Reason::PendingTail,
                "the checkpoint is fresh: a sealer between writing tiles and signing",
            )
        } else {
            (
                Reason::UnsignedTail,
                "the checkpoint is stale: entries beyond it were cut off",
            )
        };
        findings.push(Finding::new(
            Kind::Tlog,
            tlog,
            reason,
            format!(
                "{files} tiles hold entries up to size {largest} beyond the newest checkpoint (size {target_size}); {why}"
            ),
        ));
    }
    for (path, _) in unexpected {
        if !explained_by_history.contains(path) && !explained_by_tail.contains(path) {
            findings.push(Finding::new(
                Kind::Tlog,
                format!("{tlog}{path}"),
                Reason::TlogUnexpectedObject,
                "a tile no published checkpoint size implies",
            ));
        }
    }
    findings
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The paths derived from sizes alone must be exactly what a `TileWriter` writes when it publishes at
    /// those sizes, or the verifier would call a sealer's honest tiles unexpected (or miss missing ones).
    #[test]
    fn implied_tiles_equal_what_a_tile_writer_publishes() {
        let sizes: BTreeSet<u64> = [1, 2, 7, 255, 256, 300, 511, 512, 513, 700, 65_536 + 3]
            .into_iter()
            .collect();
        let mut writer = TileWriter::new();
        let mut written = BTreeSet::new();
        for i in 1..=*sizes.last().unwrap() {
            writer.append(&i.to_be_bytes()).unwrap();
            if sizes.contains(&i) {
                written.extend(writer.take_tiles().unwrap().iter().map(|f| f.path()));
            }
        }
        assert_eq!(implied_tiles(&sizes), written);
    }

    #[test]
    fn level_zero_tiles_tell_the_size_they_were_written_for() {
        let partial = TileId::parse_path("tile/entries/001.p/7").unwrap();
        assert_eq!(implied_size(&partial), Some(263));
        let upper = TileId::parse_path("tile/1/000.p/2").unwrap();
        assert_eq!(implied_size(&upper), None);
    }
}
