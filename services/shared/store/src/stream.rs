//! Small streaming helpers: fill one bounded buffer, hash a stream. Memory use is bounded by the buffer asked
//! for, whatever the length of the stream.

use std::io;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::digest::Sha256Hash;

/// Read granularity for streams that are hashed or copied without being kept.
pub(crate) const CHUNK: usize = 1024 * 1024;

/// Smallest first allocation when filling a part, so tiny objects (checkpoints) do not cost a whole part.
const FIRST_ALLOCATION: usize = 64 * 1024;

/// Reads until `limit` bytes are buffered or the reader ends. Grows the buffer geometrically but never past
/// `limit`, so a part never costs more than its size.
pub(crate) async fn fill<R: AsyncRead + Unpin>(reader: &mut R, limit: usize) -> io::Result<Bytes> {
    let mut buf: Vec<u8> = Vec::new();
    while buf.len() < limit {
        if buf.len() == buf.capacity() {
            let grow = buf.len().max(FIRST_ALLOCATION).min(limit - buf.len());
            buf.reserve_exact(grow);
        }
        let room = buf.capacity() - buf.len();
        let wanted = room.min(limit - buf.len());
        let read = (&mut *reader)
            .take(wanted as u64)
            .read_buf(&mut buf)
            .await?;
        if read == 0 {
            break;
        }
    }
    Ok(Bytes::from(buf))
}

/// SHA-256 and length of everything `reader` yields.
pub(crate) async fn hash_stream<R: AsyncRead + Unpin>(
    mut reader: R,
) -> io::Result<(Sha256Hash, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let read = reader.read(&mut buf).await?;
        if read == 0 {
            break;
        }
        hasher.update(&buf[..read]);
        size += read as u64;
    }
    Ok((Sha256Hash(hasher.finalize().into()), size))
}

/// Reads a whole (small) object into memory.
pub(crate) async fn read_whole(
    key: &str,
    mut reader: crate::model::ObjectReader,
) -> Result<Bytes, crate::error::StoreError> {
    let mut bytes = Vec::with_capacity(reader.size.unwrap_or(0).min(1 << 20) as usize);
    reader.read_to_end(&mut bytes).await.map_err(|error| {
        crate::error::StoreError::Unavailable {
            operation: "get",
            key: key.to_owned(),
            detail: error.to_string(),
        }
    })?;
    Ok(Bytes::from(bytes))
}

/// A ranged read holds exactly the bytes asked for (a provider that ignores `Range` answers with
/// the whole object; an object shorter than the range answers with fewer).
pub(crate) fn exact_range(
    key: &str,
    bytes: Bytes,
    len: u64,
) -> Result<Bytes, crate::error::StoreError> {
    if bytes.len() as u64 == len {
        Ok(bytes)
    } else {
        Err(crate::error::StoreError::Unavailable {
            operation: "get range",
            key: key.to_owned(),
            detail: format!("{} bytes came back for a range of {len}", bytes.len()),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fill_stops_at_the_limit_and_leaves_the_rest() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut reader = &data[..];
        let first = fill(&mut reader, 150_000).await.unwrap();
        let second = fill(&mut reader, 150_000).await.unwrap();
        let third = fill(&mut reader, 150_000).await.unwrap();
        assert_eq!(first.len(), 150_000);
        assert_eq!(second.len(), 50_000);
        assert!(third.is_empty());
        assert_eq!([&first[..], &second[..]].concat(), data);
    }

    #[tokio::test]
    async fn hash_stream_matches_one_shot_hash() {
        let data = vec![7u8; 3 * CHUNK + 5];
        let (hash, size) = hash_stream(&data[..]).await.unwrap();
        assert_eq!(hash, Sha256Hash::of(&data));
        assert_eq!(size, data.len() as u64);
    }
}
