//! Listing the local store in the same key order S3 documents (UTF-8 byte order), one directory in memory at
//! a time, so a listing of a year of archives stays small.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use futures::stream::{self, BoxStream, StreamExt};
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::key::RESERVED_TOP_LEVEL;
use crate::model::ListedObject;

struct Entry {
    /// The key of a file, or the key prefix of a directory ending in '/', which also orders it correctly
    /// among its siblings ("a/" sorts after "a-c" and before "a0", exactly as "a/x" does).
    key: String,
    is_dir: bool,
    size: u64,
    modified: Option<OffsetDateTime>,
}

struct Walk {
    root: PathBuf,
    /// Unvisited entries, in key order; a directory is replaced in place by its children when reached.
    pending: VecDeque<Entry>,
}

pub(crate) fn list(
    root: PathBuf,
    prefix: String,
) -> BoxStream<'static, Result<ListedObject, StoreError>> {
    // Start in the deepest directory the prefix names fully; the rest of the prefix filters its entries.
    let dir_key = match prefix.rfind('/') {
        Some(at) => prefix[..=at].to_owned(),
        None => String::new(),
    };
    if let Some(reason) = escapes_root(&dir_key) {
        let error = StoreError::InvalidKey {
            key: prefix,
            reason,
        };
        return stream::once(async move { Err(error) }).boxed();
    }
    let start = stream::once(async move {
        let dir = root.join(&dir_key);
        let listed = read_dir(root.clone(), dir, dir_key).await?;
        let pending = listed
            .into_iter()
            .filter(|entry| entry.key.starts_with(&prefix))
            .collect::<VecDeque<_>>();
        Ok::<_, StoreError>(Walk { root, pending })
    });
    start
        .flat_map(|walk| match walk {
            Ok(walk) => stream::try_unfold(walk, next).boxed(),
            Err(error) => stream::once(async move { Err(error) }).boxed(),
        })
        .boxed()
}

/// A listing prefix becomes a path under the root, so it gets the same segment rules as keys.
fn escapes_root(dir_key: &str) -> Option<&'static str> {
    if dir_key.starts_with('/') {
        return Some("starts with '/'");
    }
    if dir_key.is_empty() {
        return None;
    }
    let has_bad_segment = dir_key.trim_end_matches('/').split('/').any(|segment| {
        segment.is_empty() || segment == "." || segment == ".." || segment.contains('\\')
    });
    has_bad_segment.then_some("has an empty, '.' or '..' segment")
}

async fn next(mut walk: Walk) -> Result<Option<(ListedObject, Walk)>, StoreError> {
    while let Some(entry) = walk.pending.pop_front() {
        if entry.is_dir {
            let dir = walk.root.join(&entry.key);
            let children = read_dir(walk.root.clone(), dir, entry.key).await?;
            for child in children.into_iter().rev() {
                walk.pending.push_front(child);
            }
            continue;
        }
        let object = ListedObject {
            key: entry.key,
            size: entry.size,
            last_modified: entry.modified,
        };
        return Ok(Some((object, walk)));
    }
    Ok(None)
}

/// Entries of one directory, sorted by key. A missing directory lists as empty, like an unused S3 prefix.
async fn read_dir(root: PathBuf, dir: PathBuf, dir_key: String) -> Result<Vec<Entry>, StoreError> {
    tokio::task::spawn_blocking(move || read_dir_blocking(&root, &dir, &dir_key))
        .await
        .map_err(|join| StoreError::io(PathBuf::new(), std::io::Error::other(join)))?
}

fn read_dir_blocking(root: &Path, dir: &Path, dir_key: &str) -> Result<Vec<Entry>, StoreError> {
    let reader = match std::fs::read_dir(dir) {
        Ok(reader) => reader,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) if error.kind() == std::io::ErrorKind::NotADirectory => return Ok(Vec::new()),
        Err(error) => return Err(StoreError::io(dir, error)),
    };
    let mut entries = Vec::new();
    for item in reader {
        let item = item.map_err(|error| StoreError::io(dir, error))?;
        // Lossy rather than skipped: an odd file in the archive tree must still show up to the verifier.
        let name = item.file_name().to_string_lossy().into_owned();
        if dir == root && name == RESERVED_TOP_LEVEL {
            continue;
        }
        let file_type = item
            .file_type()
            .map_err(|error| StoreError::io(item.path(), error))?;
        if file_type.is_dir() {
            entries.push(Entry {
                key: format!("{dir_key}{name}/"),
                is_dir: true,
                size: 0,
                modified: None,
            });
        } else if file_type.is_file() {
            let metadata = item
                .metadata()
                .map_err(|error| StoreError::io(item.path(), error))?;
            entries.push(Entry {
                key: format!("{dir_key}{name}"),
                is_dir: false,
                size: metadata.len(),
                modified: metadata.modified().ok().map(OffsetDateTime::from),
            });
        }
    }
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(entries)
}
