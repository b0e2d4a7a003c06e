//! Who this collector process is, kept across restarts: the owner name it writes into zone
//! leases. A restarted process finds its own name on the leases it held and takes those zones
//! back at once, instead of leaving them uncollected until the leases expire.
//!
//! The name lives in `<data_dir>/collector-id`. A second process started on the same data
//! directory must not share it (two processes with one name would each take the other's
//! leases), so the first holds an exclusive lock on `<data_dir>/collector.lock` for its whole
//! life, and any other gets a fresh name of its own.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

use uuid::Uuid;

const NAME_FILE: &str = "collector-id";
const LOCK_FILE: &str = "collector.lock";

/// The owner name of this process; the name stays reserved while this value lives.
#[derive(Debug)]
pub struct Identity {
    pub name: String,
    /// Whether the name is the one earlier processes on this data directory used.
    pub kept: bool,
    _lock: Option<File>,
}

#[derive(Debug, thiserror::Error)]
#[error("collector identity in {dir}: {source}")]
pub struct IdentityError {
    dir: String,
    source: std::io::Error,
}

impl Identity {
    /// A name used by nobody before and kept nowhere (tests, or a data directory in use).
    pub fn fresh() -> Self {
        Self {
            name: Uuid::new_v4().to_string(),
            kept: false,
            _lock: None,
        }
    }

    /// A given name, reserved by nothing: whoever passes it keeps it unique (tests restart a
    /// collector in-process with the name it had).
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kept: true,
            _lock: None,
        }
    }

    /// The name kept in `dir`, created on first use; a fresh one while another process holds
    /// the directory's lock.
    pub fn claim(dir: &Path) -> Result<Self, IdentityError> {
        let failed = |source| IdentityError {
            dir: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(failed)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(failed)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let identity = Self::fresh();
                tracing::warn!(dir = %dir.display(), name = %identity.name,
                    "another collector uses this data directory; this one takes a new name and cannot take its zones back after a restart");
                return Ok(identity);
            }
            Err(TryLockError::Error(e)) => return Err(failed(e)),
        }
        let path = dir.join(NAME_FILE);
        let kept = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| Uuid::parse_str(text.trim()).ok());
        let name = match kept {
            Some(name) => name,
            None => {
                let name = Uuid::new_v4();
                // Written then renamed: a crash leaves either no name or a whole one.
                let partial = dir.join(format!("{NAME_FILE}.partial"));
                let mut file = File::create(&partial).map_err(failed)?;
                writeln!(file, "{name}").map_err(failed)?;
                file.sync_all().map_err(failed)?;
                std::fs::rename(&partial, &path).map_err(failed)?;
                name
            }
        };
        Ok(Self {
            name: name.to_string(),
            kept: kept.is_some(),
            _lock: Some(lock),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_name_survives_a_restart_and_is_not_shared_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity::claim(dir.path()).unwrap();
        assert!(!first.kept);
        let second = Identity::claim(dir.path()).unwrap();
        assert_ne!(
            second.name, first.name,
            "held: a second process gets its own"
        );
        assert!(!second.kept);
        let name = first.name.clone();
        drop(first);
        let restarted = Identity::claim(dir.path()).unwrap();
        assert_eq!(restarted.name, name);
        assert!(restarted.kept);
    }

    #[test]
    fn a_damaged_name_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(NAME_FILE), "not a uuid").unwrap();
        let identity = Identity::claim(dir.path()).unwrap();
        assert!(!identity.kept);
        assert!(Uuid::parse_str(&identity.name).is_ok());
    }
}
