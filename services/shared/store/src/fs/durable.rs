//! Filesystem durability: a rename or link is only durable once its directory is fsynced, and a new directory
//! only once its parent is.

use std::io;
use std::path::Path;

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Creates `dir` and any missing ancestors below `root`, fsyncing each parent that gained an entry.
pub(crate) fn create_dirs(root: &Path, dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let relative = dir
        .strip_prefix(root)
        .map_err(|_| io::Error::other("directory outside the store root"))?;
    let mut current = root.to_path_buf();
    for component in relative.components() {
        let parent = current.clone();
        current.push(component);
        match std::fs::create_dir(&current) {
            Ok(()) => sync_dir(&parent)?,
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
