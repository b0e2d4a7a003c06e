//! Builds a window's archive from its batches: reads each batch back from RL_BATCH by stream
//! sequence, checks it belongs to the attempt being closed, and streams the NDJSON, exactly as
//! received and in `seq` order, through the integrity crate's framed zstd writer into a temporary
//! file. One batch is in memory at a time (plus one in flight), whatever the window's size.
//! Each frame is indexed (docs/FORMAT.md §12) on a thread of its own as it is written, so the
//! index costs no second pass over the data and little time beside the compression.

use std::io::{BufWriter, Write as _};
use std::path::Path;

use rainlogs_bus::async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
use rainlogs_index::{ArchiveIndex, IndexBuilder};
use rainlogs_integrity::{ArchiveDigest, ArchiveWriter, FrameInfo};
use rainlogs_schemas::events::{BatchCollected, Window};
use rainlogs_schemas::{Envelope, Event};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Batches decoded ahead of the compressor: enough to keep it busy, few enough to stay small.
const BATCHES_IN_FLIGHT: usize = 2;
/// Frames (about 1 MiB each) written but not yet indexed.
const FRAMES_IN_FLIGHT: usize = 2;

/// What the batches must say about themselves.
#[derive(Debug, Clone)]
pub struct Expected {
    pub zone: String,
    pub dataset: String,
    /// The window the close names; each batch names a window with the same start that ends no
    /// earlier (the one its attempt was opened for).
    pub window: Window,
    pub attempt: Uuid,
}

/// The compressed archive in a temporary file (deleted on drop), with what was measured.
#[derive(Debug)]
pub struct Assembled {
    pub file: tempfile::TempPath,
    pub digest: ArchiveDigest,
    /// The archive's search index; its `time` is the range of the records' event times.
    pub index: ArchiveIndex,
    /// Sum of the batches' own `records`.
    pub declared_records: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    #[error("batch {seq} (RL_BATCH sequence {stream_seq}) is no longer in the stream")]
    Missing { seq: usize, stream_seq: u64 },
    #[error("reading batch {seq} (RL_BATCH sequence {stream_seq}): {reason}")]
    Unavailable {
        seq: usize,
        stream_seq: u64,
        reason: String,
    },
    #[error("RL_BATCH sequence {stream_seq} is not batch {seq} of this attempt: {reason}")]
    Mismatch {
        seq: usize,
        stream_seq: u64,
        reason: String,
    },
    #[error("batch {seq} is damaged: {reason}")]
    Damaged { seq: usize, reason: String },
    #[error("writing the archive in {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
}

impl AssembleError {
    /// Whether trying again later cannot help (the batches themselves are wrong or gone).
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Unavailable { .. } | Self::Io { .. })
    }
}

pub async fn assemble(
    stream: &Stream,
    sequences: &[u64],
    expected: &Expected,
    work_dir: &Path,
) -> Result<Assembled, AssembleError> {
    let (sender, receiver) = mpsc::channel(BATCHES_IN_FLIGHT);
    let dir = work_dir.to_owned();
    let writer = tokio::task::spawn_blocking(move || write_archive(receiver, &dir));
    let mut fetch_error = None;
    for (seq, &stream_seq) in sequences.iter().enumerate() {
        match fetch(stream, seq, stream_seq, expected).await {
            Ok(batch) => {
                if sender.send((seq, batch)).await.is_err() {
                    // The writer stopped early; its own error says why.
                    break;
                }
            }
            Err(error) => {
                fetch_error = Some(error);
                break;
            }
        }
    }
    drop(sender);
    let written = writer.await.map_err(|e| AssembleError::Io {
        dir: work_dir.display().to_string(),
        source: std::io::Error::other(e),
    })?;
    match fetch_error {
        Some(error) => Err(error),
        None => written,
    }
}

async fn fetch(
    stream: &Stream,
    seq: usize,
    stream_seq: u64,
    expected: &Expected,
) -> Result<BatchCollected, AssembleError> {
    let message = stream
        .direct_get(stream_seq)
        .await
        .map_err(|e| match e.kind() {
            DirectGetErrorKind::NotFound => AssembleError::Missing { seq, stream_seq },
            _ => AssembleError::Unavailable {
                seq,
                stream_seq,
                reason: e.to_string(),
            },
        })?;
    let mismatch = |reason: String| AssembleError::Mismatch {
        seq,
        stream_seq,
        reason,
    };
    let envelope = Envelope::from_cbor(&message.payload).map_err(|e| mismatch(e.to_string()))?;
    if envelope.zone.as_deref() != Some(expected.zone.as_str()) {
        return Err(mismatch(format!("zone is {:?}", envelope.zone)));
    }
    let Event::BatchCollected(batch) = envelope.event else {
        return Err(mismatch(format!("event is {}", envelope.event.type_name())));
    };
    let same_attempt = batch.dataset == expected.dataset
        && batch.window.start == expected.window.start
        && batch.window.end >= expected.window.end
        && batch.attempt == expected.attempt
        && batch.seq as usize == seq;
    if !same_attempt {
        return Err(mismatch(format!(
            "it is batch {} of attempt {} of {} {:?}",
            batch.seq, batch.attempt, batch.dataset, batch.window
        )));
    }
    Ok(batch)
}

fn write_archive(
    mut batches: mpsc::Receiver<(usize, BatchCollected)>,
    dir: &Path,
) -> Result<Assembled, AssembleError> {
    let io = |source| AssembleError::Io {
        dir: dir.display().to_string(),
        source,
    };
    let file = tempfile::Builder::new()
        .prefix("archive-")
        .suffix(".ndjson.zst.part")
        .tempfile_in(dir)
        .map_err(io)?;
    let (file, path) = file.into_parts();
    let (frames, indexer) = spawn_indexer().map_err(io)?;
    let mut writer = ArchiveWriter::new(BufWriter::with_capacity(1 << 20, file))
        .map_err(io)?
        .observe_frames(Box::new(move |frame: &FrameInfo, content: &[u8]| {
            // Fails only when the indexer is gone, which joining it reports.
            let _ = frames.send((*frame, content.to_vec()));
        }));
    let mut declared_records = 0u64;
    while let Some((seq, batch)) = batches.blocking_recv() {
        let damaged = |reason: String| AssembleError::Damaged { seq, reason };
        let content = batch.content().map_err(|e| damaged(e.to_string()))?;
        // Batches are concatenated; a batch cut inside a line would glue two records together.
        if content.last().is_some_and(|&last| last != b'\n') {
            return Err(damaged("content does not end with a line break".into()));
        }
        writer.write_all(&content).map_err(io)?;
        declared_records += u64::from(batch.records);
    }
    let (buffered, digest, _frames) = writer.finish().map_err(io)?;
    buffered.into_inner().map_err(|e| io(e.into_error()))?;
    let index = indexer
        .join()
        .map_err(|_| io(std::io::Error::other("the indexing thread failed")))?
        .finish(digest.stored_sha256.0, digest.content_sha256.0);
    Ok(Assembled {
        file: path,
        digest,
        index,
        declared_records,
    })
}

type FrameSender = std::sync::mpsc::SyncSender<(FrameInfo, Vec<u8>)>;

/// A thread that indexes the frames sent to it until the sender is dropped.
fn spawn_indexer() -> std::io::Result<(FrameSender, std::thread::JoinHandle<IndexBuilder>)> {
    let (sender, frames) = std::sync::mpsc::sync_channel(FRAMES_IN_FLIGHT);
    let indexer = std::thread::Builder::new()
        .name("archive-index".into())
        .spawn(move || {
            let mut builder = IndexBuilder::default();
            for (frame, content) in frames {
                let (frame, content): (FrameInfo, Vec<u8>) = (frame, content);
                builder.add(&frame, &content);
            }
            builder
        })?;
    Ok((sender, indexer))
}
