//! The search: which archives the time range leaves, which of their frames their indexes name,
//! ranged reads of only those frames, each checked against its sealed hash, and the records
//! matched exactly, in log order.

use std::time::{Duration, Instant};

use futures::{StreamExt as _, stream};
use rainlogs_index::{ArchiveIndex, FrameIndex};
use rainlogs_integrity::FrameScanner;
use rainlogs_store::{ObjectKey, Store, StoreError};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use crate::archived::Archived;
use crate::cache::IndexCache;
use crate::query::Query;

/// Largest content of one frame decompressed (as the archive reader allows).
const MAX_FRAME_CONTENT: usize = 256 << 20;

/// Where a record is in the log: its archive's entry, and its position among the archive's
/// records (0-based). Searches go in this order, and a cursor continues after one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub entry_index: u64,
    pub record: u64,
}

/// One record found, exactly as archived, and where: enough to prove it with the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The record, without its line break.
    pub line: Vec<u8>,
    pub position: Position,
    /// The archive's entry id (the job id), hex.
    pub entry_id: String,
    pub dataset: String,
    pub object_key: String,
    /// The frame the record is in, and the frame's content SHA-256 from the sealed index
    /// (absent when the archive has no index and was read whole).
    pub frame: u32,
    pub frame_content_sha256: Option<[u8; 32]>,
}

/// What a search read and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Archives whose window the time range (with its margin) leaves.
    pub archives_considered: u64,
    pub index_objects_read: u64,
    /// Index objects served from the local cache.
    pub index_objects_cached: u64,
    pub index_bytes_read: u64,
    pub frames_read: u64,
    /// Archives without an index (or whose index could not be used), read whole.
    pub archives_read_whole: u64,
    /// Bytes read from the store: indexes (not cached), frames and whole archives.
    pub bytes_read: u64,
    /// Store requests made.
    pub requests: u64,
    pub hits: u64,
    /// Set when the limit was reached: continue after this position.
    pub next: Option<Position>,
    /// Index objects that could not be used (the archive was read whole instead), with why.
    pub index_problems: Vec<String>,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("reading {key}: {source}")]
    Store { key: String, source: StoreError },
    #[error("{key}: frame {frame} does not hash to the content SHA-256 its sealed index gives")]
    FrameMismatch { key: String, frame: u32 },
    #[error("{key} is not the archive its entry logs: {why}")]
    ArchiveMismatch { key: String, why: String },
    #[error("the receiver of the results went away")]
    Closed,
}

/// Searches archives in one store.
#[derive(Debug, Clone)]
pub struct Searcher {
    store: Store,
    cache: IndexCache,
    /// Index objects read at once.
    concurrency: usize,
    /// How far outside an archive's window its records' times may lie and still be searched
    /// for a time range (late and pushed records belong to the window of their arrival).
    margin_ns: u64,
}

/// What to read of one archive.
enum Plan {
    Frames {
        index: ArchiveIndex,
        frames: Vec<usize>,
    },
    Whole,
}

struct Planned {
    plan: Plan,
    cached: bool,
    index_bytes: u64,
    problem: Option<String>,
}

impl Searcher {
    pub fn new(store: Store, cache: IndexCache) -> Self {
        Self {
            store,
            cache,
            concurrency: 16,
            margin_ns: 3_600_000_000_000,
        }
    }

    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin_ns = u64::try_from(margin.as_nanos()).unwrap_or(u64::MAX);
        self
    }

    /// Sends every hit of `query` among `archives` (in log order) after `after` to `hits`, at
    /// most `limit` of them, and says what it read.
    pub async fn search(
        &self,
        archives: &[Archived],
        query: &Query,
        limit: u64,
        after: Option<Position>,
        hits: mpsc::Sender<Found>,
    ) -> Result<Summary, SearchError> {
        let started = Instant::now();
        let mut summary = Summary::default();
        let candidates: Vec<Archived> = archives
            .iter()
            .filter(|a| after.is_none_or(|p| a.entry_index >= p.entry_index))
            .filter(|a| {
                query.time.is_none_or(|(start, end)| {
                    a.window.0 < end.saturating_add(self.margin_ns)
                        && a.window.1.saturating_add(self.margin_ns) > start
                })
            })
            .cloned()
            .collect();
        summary.archives_considered = candidates.len() as u64;
        // Owned futures (a searcher and an archive each): indexes are fetched ahead, in order.
        let query = *query;
        let mut plans = stream::iter(candidates.into_iter().map(|archive| {
            let searcher = self.clone();
            async move {
                let planned = searcher.plan(&archive, &query).await;
                (archive, planned)
            }
        }))
        .buffered(self.concurrency.max(1));
        while let Some((archive, planned)) = plans.next().await {
            let planned = planned?;
            if planned.cached {
                summary.index_objects_cached += 1;
            } else if planned.index_bytes > 0 {
                summary.index_objects_read += 1;
                summary.index_bytes_read += planned.index_bytes;
                summary.bytes_read += planned.index_bytes;
                summary.requests += 1;
            }
            summary.index_problems.extend(planned.problem);
            let done = match planned.plan {
                Plan::Frames { index, frames } => {
                    self.read_frames(
                        &archive,
                        &index,
                        &frames,
                        &query,
                        limit,
                        after,
                        &hits,
                        &mut summary,
                    )
                    .await?
                }
                Plan::Whole => {
                    self.read_whole(&archive, &query, limit, after, &hits, &mut summary)
                        .await?
                }
            };
            if done {
                break;
            }
        }
        summary.elapsed = started.elapsed();
        Ok(summary)
    }

    /// The archive's sealed index and the frames it names, or a whole read when there is none.
    async fn plan(&self, archive: &Archived, query: &Query) -> Result<Planned, SearchError> {
        let whole = |problem: Option<String>| Planned {
            plan: Plan::Whole,
            cached: false,
            index_bytes: 0,
            problem,
        };
        let Some(index_ref) = &archive.index else {
            return Ok(whole(None));
        };
        let (bytes, cached) = match self.cache.get(&index_ref.stored_sha256).await {
            Some(bytes) => (bytes, true),
            None => {
                let key = object_key(&index_ref.key)?;
                match self.store.get_bytes(&key).await {
                    Ok(bytes) => (bytes.to_vec(), false),
                    Err(e) => return Ok(whole(Some(format!("{}: {e}", index_ref.key)))),
                }
            }
        };
        let index_bytes = if cached { 0 } else { bytes.len() as u64 };
        let sha256: [u8; 32] = Sha256::digest(&bytes).into();
        if sha256 != index_ref.stored_sha256 || bytes.len() as u64 != index_ref.stored_size {
            return Ok(Planned {
                index_bytes,
                ..whole(Some(format!(
                    "{}: not the bytes its index entry logs",
                    index_ref.key
                )))
            });
        }
        let index = match ArchiveIndex::decode(&bytes) {
            Ok(index)
                if index.archive_stored_sha256 == archive.stored_sha256
                    && index.archive_content_sha256 == archive.content_sha256 =>
            {
                index
            }
            Ok(_) => {
                return Ok(Planned {
                    index_bytes,
                    ..whole(Some(format!(
                        "{}: describes another archive",
                        index_ref.key
                    )))
                });
            }
            Err(e) => {
                return Ok(Planned {
                    index_bytes,
                    ..whole(Some(format!("{}: {e}", index_ref.key)))
                });
            }
        };
        if !cached {
            self.cache.put(&sha256, &bytes).await;
        }
        let frames = index
            .frames
            .iter()
            .enumerate()
            .filter(|(_, f)| query.frame_may_match(&f.keys))
            .map(|(n, _)| n)
            .collect();
        Ok(Planned {
            plan: Plan::Frames { index, frames },
            cached,
            index_bytes,
            problem: None,
        })
    }

    /// Reads the named frames with ranged reads. `true` when the limit is reached.
    #[allow(clippy::too_many_arguments)]
    async fn read_frames(
        &self,
        archive: &Archived,
        index: &ArchiveIndex,
        frames: &[usize],
        query: &Query,
        limit: u64,
        after: Option<Position>,
        hits: &mpsc::Sender<Found>,
        summary: &mut Summary,
    ) -> Result<bool, SearchError> {
        let key = object_key(&archive.key)?;
        for &n in frames {
            let frame: &FrameIndex = &index.frames[n];
            let location = frame.location;
            if after.is_some_and(|p| {
                Position {
                    entry_index: archive.entry_index,
                    record: location.first_record + frame.keys.records,
                } <= p
            }) {
                continue;
            }
            let stored = self
                .store
                .get_range(&key, location.stored_offset, location.stored_len)
                .await
                .map_err(|source| SearchError::Store {
                    key: archive.key.clone(),
                    source,
                })?;
            summary.requests += 1;
            summary.frames_read += 1;
            summary.bytes_read += stored.len() as u64;
            let frame_number = u32::try_from(n).unwrap_or(u32::MAX);
            let mismatch = || SearchError::FrameMismatch {
                key: archive.key.clone(),
                frame: frame_number,
            };
            let content =
                zstd::bulk::decompress(&stored, MAX_FRAME_CONTENT).map_err(|_| mismatch())?;
            if <[u8; 32]>::from(Sha256::digest(&content)) != frame.content_sha256 {
                return Err(mismatch());
            }
            let provenance = Provenance {
                archive,
                frame: frame_number,
                frame_content_sha256: Some(frame.content_sha256),
            };
            if scan(
                &content,
                location.first_record,
                &provenance,
                query,
                limit,
                after,
                hits,
                summary,
            )
            .await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Reads an archive without a usable index whole, checked against its logged hash.
    async fn read_whole(
        &self,
        archive: &Archived,
        query: &Query,
        limit: u64,
        after: Option<Position>,
        hits: &mpsc::Sender<Found>,
        summary: &mut Summary,
    ) -> Result<bool, SearchError> {
        let key = object_key(&archive.key)?;
        let stored = self
            .store
            .get_bytes(&key)
            .await
            .map_err(|source| SearchError::Store {
                key: archive.key.clone(),
                source,
            })?;
        summary.requests += 1;
        summary.archives_read_whole += 1;
        summary.bytes_read += stored.len() as u64;
        let mismatch = |why: String| SearchError::ArchiveMismatch {
            key: archive.key.clone(),
            why,
        };
        if <[u8; 32]>::from(Sha256::digest(&stored)) != archive.stored_sha256 {
            return Err(mismatch(
                "its bytes do not hash to the logged stored SHA-256".into(),
            ));
        }
        let mut scanner = FrameScanner::new(&stored[..]);
        let mut n = 0u32;
        while let Some((frame, content)) =
            scanner.next_frame().map_err(|e| mismatch(e.to_string()))?
        {
            let provenance = Provenance {
                archive,
                frame: n,
                frame_content_sha256: None,
            };
            if scan(
                &content,
                frame.first_record,
                &provenance,
                query,
                limit,
                after,
                hits,
                summary,
            )
            .await?
            {
                return Ok(true);
            }
            n += 1;
        }
        Ok(false)
    }
}

struct Provenance<'a> {
    archive: &'a Archived,
    frame: u32,
    frame_content_sha256: Option<[u8; 32]>,
}

/// Matches the records of one frame's content; `true` when the limit is reached.
#[allow(clippy::too_many_arguments)]
async fn scan(
    content: &[u8],
    first_record: u64,
    provenance: &Provenance<'_>,
    query: &Query,
    limit: u64,
    after: Option<Position>,
    hits: &mpsc::Sender<Found>,
    summary: &mut Summary,
) -> Result<bool, SearchError> {
    let records = content.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    for (i, line) in records.enumerate() {
        let position = Position {
            entry_index: provenance.archive.entry_index,
            record: first_record + i as u64,
        };
        if after.is_some_and(|p| position <= p) || !query.matches(line) {
            continue;
        }
        let found = Found {
            line: line.to_vec(),
            position,
            entry_id: provenance.archive.entry_id.clone(),
            dataset: provenance.archive.dataset.clone(),
            object_key: provenance.archive.key.clone(),
            frame: provenance.frame,
            frame_content_sha256: provenance.frame_content_sha256,
        };
        hits.send(found).await.map_err(|_| SearchError::Closed)?;
        summary.hits += 1;
        if summary.hits >= limit {
            summary.next = Some(position);
            return Ok(true);
        }
    }
    Ok(false)
}

fn object_key(key: &str) -> Result<ObjectKey, SearchError> {
    ObjectKey::new(key).map_err(|source| SearchError::Store {
        key: key.to_owned(),
        source,
    })
}

impl Found {
    /// The hit as one NDJSON line (without its line break): `{"record": <the record exactly as
    /// archived>, "provenance": {job_id, entry_index, record, frame, frame_content_sha256,
    /// dataset, object_key[, proof]}}`. A record that is not JSON (Cloudflare's always are) is
    /// given as a string, so every line stays JSON.
    pub fn to_ndjson(&self, proof: Option<String>) -> String {
        let mut provenance = serde_json::json!({
            "job_id": self.entry_id,
            "entry_index": self.position.entry_index,
            "record": self.position.record,
            "frame": self.frame,
            "frame_content_sha256": self.frame_content_sha256.map(hex::encode),
            "dataset": self.dataset,
            "object_key": self.object_key,
        });
        if let (Some(proof), Some(fields)) = (proof, provenance.as_object_mut()) {
            fields.insert("proof".into(), proof.into());
        }
        let record = std::str::from_utf8(&self.line)
            .ok()
            .filter(|text| serde_json::from_str::<&serde_json::value::RawValue>(text).is_ok())
            .map_or_else(
                || {
                    serde_json::Value::String(String::from_utf8_lossy(&self.line).into_owned())
                        .to_string()
                },
                str::to_owned,
            );
        format!("{{\"record\":{record},\"provenance\":{provenance}}}")
    }
}
