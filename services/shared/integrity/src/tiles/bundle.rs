//! Entry bundles: the entries of one level-0 tile, each prefixed with its big-endian u16 length.

use super::{TileError, TileId, TileKind};
use crate::entry::MAX_ENTRY_LEN;

pub fn encode_entry_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, TileError> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.as_ref().len() + 2).sum());
    for entry in entries {
        let entry = entry.as_ref();
        let len = u16::try_from(entry.len()).map_err(|_| TileError::EntryTooLong(entry.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(entry);
    }
    Ok(out)
}

/// Splits a bundle into exactly `id.width()` entries; anything else is an error.
pub fn decode_entry_bundle(id: &TileId, data: &[u8]) -> Result<Vec<Vec<u8>>, TileError> {
    let bad = |reason: &str| TileError::BadBundle {
        path: id.path(),
        reason: reason.to_owned(),
    };
    if id.kind() != TileKind::Entries {
        return Err(bad("not an entry bundle id"));
    }
    let mut entries = Vec::with_capacity(usize::from(id.width()));
    let mut rest = data;
    while !rest.is_empty() {
        if entries.len() == usize::from(id.width()) {
            return Err(bad("more entries than the bundle width"));
        }
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return Err(bad("truncated length prefix"));
        };
        let len = usize::from(u16::from_be_bytes(*len));
        if len > MAX_ENTRY_LEN || tail.len() < len {
            return Err(bad("truncated entry"));
        }
        let (entry, tail) = tail.split_at(len);
        entries.push(entry.to_vec());
        rest = tail;
    }
    if entries.len() != usize::from(id.width()) {
        return Err(bad("fewer entries than the bundle width"));
    }
    Ok(entries)
}
