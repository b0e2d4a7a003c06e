//! Covering a zone's new entries with a signed checkpoint: store the new tiles and bundles, then
//! sign the new tree head, but only after proving it consistent with the newest checkpoint in
//! the bucket (this sealer's or another's). A size the bucket already covers is never signed again,
//! and a smaller one never replaces a larger one.

use rainlogs_integrity::tiles::consistency_proof_from_tiles;
use rainlogs_integrity::{
    Checkpoint, NoteSigningKey, TileKind, TileProof, TileSet, sign_consistent_checkpoint,
};

use crate::journal::{Journal, JournalError};
use crate::reconcile::{catch_up, fill_tiles};
use crate::tlog::{Tlog, TlogError};
use crate::zone::ZoneLog;

/// Proof rounds before giving up (each round fetches the tiles the previous one lacked).
const PROOF_ROUNDS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Tlog(#[from] TlogError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{0}")]
    Integrity(String),
}

impl CheckpointError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Tlog(e) => e.is_retryable(),
            Self::Journal(JournalError::Unavailable { .. }) => true,
            _ => false,
        }
    }
}

/// What a checkpoint round did.
#[derive(Debug, PartialEq, Eq)]
pub enum Covered {
    /// A new checkpoint of this size was signed and stored.
    Signed(u64),
    /// The bucket already holds a checkpoint at least this large.
    Already(u64),
}

pub async fn checkpoint(
    journal: &Journal,
    tlog: &Tlog,
    key: &NoteSigningKey,
    log: &mut ZoneLog,
) -> Result<Covered, CheckpointError> {
    // Entries other sealers appended belong in the tree this checkpoint signs.
    catch_up(journal, log).await?;
    if let Some(fault) = &log.fault {
        return Err(CheckpointError::Integrity(fault.clone()));
    }
    let taken = log
        .tiles
        .take_tiles()
        .map_err(|e| CheckpointError::Integrity(e.to_string()))?;
    log.unwritten.extend(taken);
    for file in &log.unwritten {
        tlog.put_tile(&log.origin, file).await?;
    }
    let written = std::mem::take(&mut log.unwritten);
    let edge: Vec<_> = written
        .into_iter()
        .filter(|f| matches!(f.id.kind(), TileKind::Hashes { .. }))
        .collect();
    // Sizes whose tiles an earlier sealer stored but never signed come first: a verifier reads
    // their partial tiles as published sizes, each of which needs its checkpoint.
    while let Some(head) = log.unsigned_heads.first().cloned() {
        let covered = sign_head(tlog, key, log, head, None).await?;
        tracing::warn!(zone = %log.zone, ?covered, "signed a size whose tiles were stored without a checkpoint");
        log.unsigned_heads.remove(0);
    }
    let new = Checkpoint::new(log.origin.clone(), log.size(), log.tiles.root());
    let covered = sign_head(tlog, key, log, new, Some(edge)).await?;
    log.uncovered_since = None;
    Ok(covered)
}

/// Signs `new` unless the bucket already covers it, after proving it consistent with the newest
/// checkpoint there. `edge` (the hash tiles just stored for `new`) becomes the hint for the next
/// proof.
async fn sign_head(
    tlog: &Tlog,
    key: &NoteSigningKey,
    log: &mut ZoneLog,
    new: Checkpoint,
    edge: Option<Vec<rainlogs_integrity::TileFile>>,
) -> Result<Covered, CheckpointError> {
    let in_bucket = tlog.latest_checkpoint(&log.origin).await?;
    let previous = [log.signed.clone(), in_bucket]
        .into_iter()
        .flatten()
        .max_by_key(|c| c.size);
    if let Some(previous) = &previous
        && previous.size >= new.size
    {
        if previous.size == new.size && previous.root != new.root {
            let fault = format!(
                "the bucket's checkpoint of size {} has root {}, this log has {}",
                new.size, previous.root, new.root
            );
            log.fault = Some(fault.clone());
            return Err(CheckpointError::Integrity(fault));
        }
        log.signed = Some(previous.clone());
        if let Some(edge) = edge {
            log.previous_edge = edge;
        }
        return Ok(Covered::Already(previous.size));
    }
    let hint = edge.as_deref().unwrap_or_default();
    let proof = match &previous {
        Some(previous) => match consistency_proof(tlog, log, previous, &new, hint).await {
            Ok(proof) => proof,
            Err(CheckpointError::Integrity(reason)) => {
                let fault = format!(
                    "no consistency proof from the checkpoint of size {} to size {}: {reason}",
                    previous.size, new.size
                );
                log.fault = Some(fault.clone());
                return Err(CheckpointError::Integrity(fault));
            }
            Err(e) => return Err(e),
        },
        None => Vec::new(),
    };
    let note = sign_consistent_checkpoint(previous.as_ref(), &new, &proof, key).map_err(|e| {
        let fault = format!(
            "refusing to sign size {}: not consistent with the checkpoint of size {}: {e}",
            new.size,
            previous.as_ref().map_or(0, |c| c.size)
        );
        log.fault = Some(fault.clone());
        CheckpointError::Integrity(fault)
    })?;
    tlog.put_checkpoint(&log.origin, &new, &note).await?;
    let size = new.size;
    log.signed = Some(new);
    if let Some(edge) = edge {
        log.previous_edge = edge;
    }
    Ok(Covered::Signed(size))
}

async fn consistency_proof(
    tlog: &Tlog,
    log: &ZoneLog,
    previous: &Checkpoint,
    new: &Checkpoint,
    edge: &[rainlogs_integrity::TileFile],
) -> Result<Vec<rainlogs_integrity::Sha256Hash>, CheckpointError> {
    let integrity = |e: &dyn std::fmt::Display| CheckpointError::Integrity(e.to_string());
    let mut set = TileSet::new();
    for file in log.previous_edge.iter().chain(edge) {
        set.insert(file.id, &file.data).map_err(|e| integrity(&e))?;
    }
    for _ in 0..PROOF_ROUNDS {
        match consistency_proof_from_tiles(previous.size, &previous.root, new.size, &new.root, &set)
            .map_err(|e| integrity(&e))?
        {
            TileProof::Complete(proof) => return Ok(proof),
            TileProof::NeedTiles(ids) => fill_tiles(tlog, &log.origin, &mut set, &ids).await?,
        }
    }
    Err(integrity(
        &"tiles for the consistency proof could not be assembled",
    ))
}
