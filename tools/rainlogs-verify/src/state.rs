//! Remembered state (`--state FILE`): the (size, root) of each log at its last successful verification.
//! A later log must extend it: smaller means rollback, another root at that size means a fork. One file can
//! hold the state of many zones; it is replaced atomically and only after a run that verified.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use rainlogs_integrity::{MemoryTree, Sha256Hash};

use crate::finding::{Finding, Kind, Reason};

const FORMAT: &str = "rainlogs-verify state v1";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Remembered {
    pub size: u64,
    /// Root as 64 lowercase hex digits.
    pub root: String,
    /// When it was verified (RFC 3339), for humans.
    pub verified_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct StateFile {
    pub format: String,
    /// By origin.
    pub logs: BTreeMap<String, Remembered>,
}

fn describe(path: &Path) -> String {
    path.display().to_string()
}

/// Reads the state file; a file that does not exist yet is an empty state (first run).
pub(crate) fn load(path: &Path) -> Result<StateFile, Finding> {
    let unreadable =
        |why: String| Finding::new(Kind::State, describe(path), Reason::StateUnreadable, why);
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Ok(StateFile {
                format: FORMAT.to_owned(),
                logs: BTreeMap::new(),
            });
        }
        Err(error) => return Err(unreadable(error.to_string())),
    };
    let state: StateFile = serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
    if state.format != FORMAT {
        return Err(unreadable(format!("unknown format {:?}", state.format)));
    }
    Ok(state)
}

/// Compares the verified log (`tree` holds all `size` leaves) with what was remembered.
pub(crate) fn compare(remembered: &Remembered, tree: &MemoryTree, path: &Path) -> Finding {
    let finding =
        |reason, message: String| Finding::new(Kind::State, describe(path), reason, message);
    let Ok(root) = Sha256Hash::from_hex(&remembered.root) else {
        return finding(
            Reason::StateUnreadable,
            format!("remembered root {:?} is not a hash", remembered.root),
        );
    };
    if remembered.size > tree.size() {
        return finding(
            Reason::StateRollback,
            format!(
                "verified at size {} on {}, the log now has only {} entries",
                remembered.size,
                remembered.verified_at,
                tree.size()
            ),
        );
    }
    match tree.root_at(remembered.size) {
        Ok(now) if now == root => finding(
            Reason::StateConsistent,
            format!(
                "extends the log verified at size {} on {}",
                remembered.size, remembered.verified_at
            ),
        ),
        Ok(now) => finding(
            Reason::StateFork,
            format!(
                "at size {} the root was {root} when verified on {}, it is now {now}",
                remembered.size, remembered.verified_at
            ),
        ),
        Err(error) => finding(Reason::StateUnreadable, error.to_string()),
    }
}

/// Writes the new (size, root) for `origin`, keeping other zones' entries. Never moves a log backwards.
pub(crate) fn record(
    path: &Path,
    mut state: StateFile,
    origin: &str,
    size: u64,
    root: &Sha256Hash,
    verified_at: String,
) -> Finding {
    let finding =
        |reason, message: String| Finding::new(Kind::State, describe(path), reason, message);
    if state.logs.get(origin).is_some_and(|old| old.size > size) {
        return finding(
            Reason::StateNotUpdated,
            "the remembered log is larger".into(),
        );
    }
    state.format = FORMAT.to_owned();
    state.logs.insert(
        origin.to_owned(),
        Remembered {
            size,
            root: root.to_hex(),
            verified_at,
        },
    );
    let write = || -> io::Result<()> {
        let text = serde_json::to_string_pretty(&state).map_err(io::Error::other)?;
        let mut temp = path.as_os_str().to_owned();
        temp.push(".tmp");
        std::fs::write(&temp, text + "\n")?;
        std::fs::rename(&temp, path)
    };
    match write() {
        Ok(()) => finding(
            Reason::StateRecorded,
            format!("remembered size {size}, root {root}"),
        ),
        Err(error) => finding(Reason::StateWriteFailed, error.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tree(leaves: u8) -> MemoryTree {
        let mut tree = MemoryTree::new();
        for i in 0..leaves {
            tree.push(&[i]).unwrap();
        }
        tree
    }

    fn remembered(tree: &MemoryTree, size: u64) -> Remembered {
        Remembered {
            size,
            root: tree.root_at(size).unwrap().to_hex(),
            verified_at: "then".into(),
        }
    }

    #[test]
    fn a_smaller_or_different_log_contradicts_the_remembered_one() {
        let path = Path::new("state.json");
        let grown = tree(9);
        assert_eq!(
            compare(&remembered(&tree(5), 5), &grown, path).reason,
            Reason::StateConsistent
        );
        assert_eq!(
            compare(&remembered(&grown, 9), &tree(5), path).reason,
            Reason::StateRollback
        );
        let mut forked = MemoryTree::new();
        for i in [0u8, 1, 2, 3, 99] {
            forked.push(&[i]).unwrap();
        }
        assert_eq!(
            compare(&remembered(&forked, 5), &grown, path).reason,
            Reason::StateFork
        );
    }

    #[test]
    fn state_round_trips_and_keeps_other_zones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let state = load(&path).unwrap();
        assert!(state.logs.is_empty());
        let root = Sha256Hash::digest(b"r");
        let first = record(&path, state, "rainlogs/a/b", 3, &root, "t1".into());
        assert_eq!(first.reason, Reason::StateRecorded);
        let state = load(&path).unwrap();
        let second = record(&path, state, "rainlogs/a/c", 7, &root, "t2".into());
        assert_eq!(second.reason, Reason::StateRecorded);
        let state = load(&path).unwrap();
        assert_eq!(state.logs.len(), 2);
        assert_eq!(state.logs["rainlogs/a/b"].size, 3);
        let backwards = record(&path, state, "rainlogs/a/c", 6, &root, "t3".into());
        assert_eq!(backwards.reason, Reason::StateNotUpdated);
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(load(&path).unwrap_err().reason, Reason::StateUnreadable);
    }
}
