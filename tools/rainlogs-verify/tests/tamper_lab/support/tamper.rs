//! What an attacker with write access to a directory store does: edit, delete and plant files directly,
//! bypassing the store's create-only API (the store marks files read-only; an attacker just chmods them).

use std::path::{Path, PathBuf};

use rainlogs_integrity::TileId;
use rainlogs_integrity::tiles::{decode_entry_bundle, encode_entry_bundle};

pub fn file(root: &Path, key: &str) -> PathBuf {
    root.join(key)
}

fn make_writable(path: &Path) {
    if let Ok(metadata) = std::fs::metadata(path) {
        let mut permissions = metadata.permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        permissions.set_readonly(false);
        std::fs::set_permissions(path, permissions).unwrap();
    }
}

pub fn read(root: &Path, key: &str) -> Vec<u8> {
    std::fs::read(file(root, key)).unwrap_or_else(|e| panic!("reading {key}: {e}"))
}

/// Replaces (or creates) the object `key` with `bytes`.
pub fn write(root: &Path, key: &str, bytes: &[u8]) {
    let path = file(root, key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    make_writable(&path);
    std::fs::write(&path, bytes).unwrap();
}

pub fn remove(root: &Path, key: &str) {
    let path = file(root, key);
    std::fs::remove_file(&path).unwrap_or_else(|e| panic!("removing {key}: {e}"));
}

pub fn exists(root: &Path, key: &str) -> bool {
    file(root, key).is_file()
}

/// Flips one bit of the byte at `offset`.
pub fn flip_byte(root: &Path, key: &str, offset: usize) {
    let mut bytes = read(root, key);
    bytes[offset] ^= 0x01;
    write(root, key, &bytes);
}

/// Every key below `prefix`, sorted.
pub fn keys_under(root: &Path, prefix: &str) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.retain(|k| k.starts_with(prefix));
    out.sort();
    out
}

/// Rewrites the entry bundle `key` (a `tile/entries/...` path below `tlog_prefix`) with `edit` applied to its
/// entries.
pub fn edit_bundle(
    root: &Path,
    tlog_prefix: &str,
    key: &str,
    edit: impl FnOnce(&mut Vec<Vec<u8>>),
) {
    let relative = key.strip_prefix(tlog_prefix).unwrap();
    let id = TileId::parse_path(relative).unwrap();
    let mut entries = decode_entry_bundle(&id, &read(root, key)).unwrap();
    edit(&mut entries);
    write(root, key, &encode_entry_bundle(&entries).unwrap());
}

/// Sets the time the store lists `key` as last written (a directory store lists the file's mtime).
pub fn set_modified(root: &Path, key: &str, when: std::time::SystemTime) {
    let handle =
        std::fs::File::open(file(root, key)).unwrap_or_else(|e| panic!("opening {key}: {e}"));
    handle.set_modified(when).unwrap();
}
