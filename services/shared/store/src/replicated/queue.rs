//! Where a replicated write records the provider that missed an object, so repair can copy it later. The
//! default is a local JSON-lines file, appended and fsynced per entry; callers can supply their own sink (a
//! database table, a stream).

use std::io::Write;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::error::StoreError;
use crate::key::ObjectKey;
use crate::model::Side;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RepairEntry {
    pub key: ObjectKey,
    /// The provider that does not have the object yet.
    pub missing_on: Side,
    /// Why the write to it failed (no credentials or secrets appear in store errors).
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
}

/// Durable record of objects one provider lacks: a JSON-lines file, one entry per line, appended
/// with fsync; `remove` rewrites it atomically.
#[derive(Debug)]
pub struct FileRepairQueue {
    path: PathBuf,
    // Serialises appends against rewrites so no entry recorded during a repair pass is lost.
    guard: Mutex<()>,
}

impl FileRepairQueue {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            guard: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every entry recorded and not yet removed, oldest first.
    pub async fn pending(&self) -> Result<Vec<RepairEntry>, StoreError> {
        let _held = self.guard.lock().await;
        let path = self.path.clone();
        self.blocking(move || read_entries(&path)).await
    }

    /// Removes the given entries (matched by key and side), keeping anything recorded meanwhile.
    pub async fn remove(&self, done: &[RepairEntry]) -> Result<(), StoreError> {
        let _held = self.guard.lock().await;
        let path = self.path.clone();
        let done: Vec<(ObjectKey, Side)> = done
            .iter()
            .map(|entry| (entry.key.clone(), entry.missing_on))
            .collect();
        self.blocking(move || {
            let kept: Vec<RepairEntry> = read_entries(&path)?
                .into_iter()
                .filter(|entry| !done.contains(&(entry.key.clone(), entry.missing_on)))
                .collect();
            rewrite(&path, &kept)
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, StoreError> {
        let result = tokio::task::spawn_blocking(work)
            .await
            .map_err(|join| join.to_string());
        result
            .and_then(|inner| inner)
            .map_err(|detail| StoreError::RepairQueue {
                path: self.path.clone(),
                detail,
            })
    }
}

impl FileRepairQueue {
    /// Returns only once the entry is durable: the write it belongs to is reported successful
    /// right after.
    pub async fn record(&self, entry: &RepairEntry) -> Result<(), StoreError> {
        let _held = self.guard.lock().await;
        let path = self.path.clone();
        let mut line = serde_json::to_vec(entry).map_err(|error| StoreError::RepairQueue {
            path: path.clone(),
            detail: error.to_string(),
        })?;
        line.push(b'\n');
        self.blocking(move || append(&path, &line)).await
    }
}

fn append(path: &Path, line: &[u8]) -> Result<(), String> {
    let existed = path.exists();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(|error| error.to_string())?;
    // After a torn append the file ends mid-line; start on a fresh line so this entry stays readable.
    if ends_mid_line(&mut file).map_err(|error| error.to_string())? {
        file.write_all(b"\n").map_err(|error| error.to_string())?;
    }
    file.write_all(line).map_err(|error| error.to_string())?;
    file.sync_all().map_err(|error| error.to_string())?;
    if !existed {
        sync_parent(path)?;
    }
    Ok(())
}

fn ends_mid_line(file: &mut std::fs::File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

fn read_entries(path: &Path) -> Result<Vec<RepairEntry>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error.to_string()),
    };
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(entry) => entries.push(entry),
            // A torn last line (crash mid-append) is the only expected damage; its write was never
            // acknowledged, so the listing-based repair covers it.
            Err(error) => {
                tracing::warn!(line = number + 1, %error, "skipping an unreadable repair queue line")
            }
        }
    }
    Ok(entries)
}

fn rewrite(path: &Path, entries: &[RepairEntry]) -> Result<(), String> {
    let temp = path.with_extension("rewrite");
    {
        let mut file = std::fs::File::create(&temp).map_err(|error| error.to_string())?;
        for entry in entries {
            let mut line = serde_json::to_vec(entry).map_err(|error| error.to_string())?;
            line.push(b'\n');
            file.write_all(&line).map_err(|error| error.to_string())?;
        }
        file.sync_all().map_err(|error| error.to_string())?;
    }
    std::fs::rename(&temp, path).map_err(|error| error.to_string())?;
    sync_parent(path)
}

fn sync_parent(path: &Path) -> Result<(), String> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|error| error.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(key: &str, side: Side) -> RepairEntry {
        RepairEntry {
            key: ObjectKey::new(key).unwrap(),
            missing_on: side,
            reason: "connection refused".into(),
            recorded_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[tokio::test]
    async fn entries_survive_reopening_and_removal_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repair.jsonl");
        let queue = FileRepairQueue::new(&path);
        for key in ["a/1", "a/2", "a/3"] {
            queue.record(&entry(key, Side::Secondary)).await.unwrap();
        }
        let reopened = FileRepairQueue::new(&path);
        let pending = reopened.pending().await.unwrap();
        assert_eq!(pending.len(), 3);
        reopened.remove(&pending[..2]).await.unwrap();
        assert_eq!(
            reopened.pending().await.unwrap(),
            vec![entry("a/3", Side::Secondary)]
        );
    }

    #[tokio::test]
    async fn a_torn_last_line_does_not_hide_earlier_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repair.jsonl");
        let queue = FileRepairQueue::new(&path);
        queue.record(&entry("a/1", Side::Primary)).await.unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"key\":\"a/2\",\"miss")
            .unwrap();
        assert_eq!(
            queue.pending().await.unwrap(),
            vec![entry("a/1", Side::Primary)]
        );
        queue.record(&entry("a/3", Side::Primary)).await.unwrap();
        let keys: Vec<String> = queue
            .pending()
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.key.to_string())
            .collect();
        assert_eq!(
            keys,
            ["a/1", "a/3"],
            "an entry appended after a torn line must stay readable"
        );
    }
}
