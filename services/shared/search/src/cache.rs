//! Index objects kept on local disk, named by their SHA-256, under a size cap: a search reads an
//! index once, and a responder's next search of the same zone reads it from disk. A cached file is
//! checked against the logged SHA-256 each time it is used, so a damaged cache costs a read, never
//! a wrong answer.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

#[derive(Debug, Clone)]
pub struct IndexCache {
    dir: Option<PathBuf>,
    cap_bytes: u64,
}

impl IndexCache {
    /// No cache: every index is read from the store.
    pub fn none() -> Self {
        Self {
            dir: None,
            cap_bytes: 0,
        }
    }

    /// A cache in `dir` (created if missing) holding at most `cap_bytes` of index objects.
    pub fn in_dir(dir: impl Into<PathBuf>, cap_bytes: u64) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir: Some(dir),
            cap_bytes,
        })
    }

    fn path(&self, sha256: &[u8; 32]) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join(hex::encode(sha256)))
    }

    /// The cached bytes whose SHA-256 is `sha256`, if any.
    pub async fn get(&self, sha256: &[u8; 32]) -> Option<Vec<u8>> {
        let path = self.path(sha256)?;
        let bytes = tokio::fs::read(&path).await.ok()?;
        if <[u8; 32]>::from(Sha256::digest(&bytes)) == *sha256 {
            Some(bytes)
        } else {
            // Damaged: read it from the store again.
            let _ = tokio::fs::remove_file(&path).await;
            None
        }
    }

    /// Keeps `bytes` (whose SHA-256 is `sha256`), then trims the cache to its cap, oldest first.
    /// A cache that cannot be written only costs later reads.
    pub async fn put(&self, sha256: &[u8; 32], bytes: &[u8]) {
        let (Some(dir), Some(path)) = (self.dir.clone(), self.path(sha256)) else {
            return;
        };
        if bytes.len() as u64 > self.cap_bytes {
            return;
        }
        let temporary = path.with_extension("part");
        if tokio::fs::write(&temporary, bytes).await.is_err()
            || tokio::fs::rename(&temporary, &path).await.is_err()
        {
            tracing::debug!(path = %path.display(), "index cache not written");
            return;
        }
        let cap = self.cap_bytes;
        let _ = tokio::task::spawn_blocking(move || trim(&dir, cap)).await;
    }
}

/// Removes the least recently written files until the directory holds at most `cap` bytes.
fn trim(dir: &Path, cap: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let metadata = entry.metadata().ok().filter(|m| m.is_file())?;
            Some((metadata.modified().ok()?, metadata.len(), entry.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= cap {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cache_serves_what_it_holds_refuses_damage_and_keeps_its_cap() {
        let dir = tempfile::tempdir().expect("dir");
        let cache = IndexCache::in_dir(dir.path(), 250).expect("cache");
        let one = vec![1u8; 100];
        let sha: [u8; 32] = Sha256::digest(&one).into();
        assert_eq!(cache.get(&sha).await, None);
        cache.put(&sha, &one).await;
        assert_eq!(cache.get(&sha).await, Some(one.clone()));
        // Damaged on disk: not served.
        std::fs::write(dir.path().join(hex::encode(sha)), [9u8; 100]).expect("write");
        assert_eq!(cache.get(&sha).await, None);
        // Three objects of 100 bytes under a cap of 250: the oldest goes.
        let mut shas = Vec::new();
        for fill in 2u8..5 {
            let bytes = vec![fill; 100];
            let sha: [u8; 32] = Sha256::digest(&bytes).into();
            cache.put(&sha, &bytes).await;
            shas.push(sha);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let held: Vec<bool> = futures_held(&cache, &shas).await;
        assert_eq!(held, [false, true, true]);
        // Nothing at all without a directory.
        let none = IndexCache::none();
        none.put(&sha, &one).await;
        assert_eq!(none.get(&sha).await, None);
    }

    async fn futures_held(cache: &IndexCache, shas: &[[u8; 32]]) -> Vec<bool> {
        let mut held = Vec::new();
        for sha in shas {
            held.push(cache.get(sha).await.is_some());
        }
        held
    }
}
