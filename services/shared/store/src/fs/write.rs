//! Streaming the content into the temporary file. Reading and hashing run on the async side while a blocking
//! thread writes the previous chunks, so hashing and disk writes overlap; a few chunks in flight bound memory.

use std::io::{self, Write};
use std::path::Path;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::AsyncRead;
use tokio::sync::mpsc;

use crate::digest::Sha256Hash;
use crate::error::StoreError;
use crate::key::ObjectKey;
use crate::stream::{CHUNK, fill};

const CHUNKS_IN_FLIGHT: usize = 4;

enum Message {
    Chunk(Bytes),
    /// All content sent: fsync. A channel that closes without it means the put was abandoned.
    Finish,
}

/// Writes everything `reader` yields into a new file at `temp` and fsyncs it; returns its SHA-256 and size.
pub(super) async fn write_temp<R: AsyncRead + Unpin>(
    key: &ObjectKey,
    mut reader: R,
    temp: &Path,
) -> Result<(Sha256Hash, u64), StoreError> {
    let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let path = temp.to_path_buf();
    let writer = tokio::task::spawn_blocking(move || write_chunks(&path, receiver));

    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let fed: Result<(), StoreError> = async {
        loop {
            let chunk = fill(&mut reader, CHUNK)
                .await
                .map_err(|source| StoreError::Source {
                    key: key.to_string(),
                    source,
                })?;
            if chunk.is_empty() {
                // A failed writer has dropped its receiver; its own error is reported below.
                let _ = sender.send(Message::Finish).await;
                return Ok(());
            }
            hasher.update(&chunk);
            size += chunk.len() as u64;
            if sender.send(Message::Chunk(chunk)).await.is_err() {
                return Ok(());
            }
        }
    }
    .await;
    drop(sender);
    let written = match writer.await {
        Ok(result) => result,
        Err(join) => Err(io::Error::other(join)),
    };
    fed?;
    written.map_err(|error| StoreError::io(temp, error))?;
    Ok((Sha256Hash(hasher.finalize().into()), size))
}

fn write_chunks(path: &Path, mut receiver: mpsc::Receiver<Message>) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    while let Some(message) = receiver.blocking_recv() {
        match message {
            Message::Chunk(chunk) => file.write_all(&chunk)?,
            Message::Finish => return file.sync_all(),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::Interrupted,
        "the put was abandoned before its content ended",
    ))
}
