//! The zone's signed checkpoint and inclusion proofs, read from the bucket (docs/FORMAT.md §7,
//! §8): what a client needs to check a job against the log without trusting this API.

use rainlogs_integrity::tiles::{TILE_HEIGHT, TILE_WIDTH, TileProof, inclusion_proof_from_tiles};
use rainlogs_integrity::{
    Checkpoint, MemoryTree, Name, Origin, Sha256Hash, TileId, TileKind, TileSet, open_checkpoint,
};
use rainlogs_store::{ObjectKey, StoreError};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// A checkpoint note as stored, and what it says.
pub struct SignedCheckpoint {
    pub note: String,
    pub checkpoint: Checkpoint,
}

/// Rounds of tile fetching before giving up (a proof needs at most a handful of tiles per level).
const MAX_TILE_ROUNDS: usize = 8;

fn origin(tenant: &str, zone: &str) -> Result<Origin, ApiError> {
    let tenant = Name::new(tenant).map_err(ApiError::internal)?;
    let zone = Name::new(zone).map_err(ApiError::internal)?;
    Ok(Origin::new(&tenant, &zone))
}

fn store_error(e: StoreError) -> ApiError {
    ApiError::unavailable("the archive store", e)
}

impl AppState {
    /// The zone's newest checkpoint, verified with the configured key; `None` before the first.
    pub async fn latest_checkpoint(
        &self,
        tenant: &str,
        zone: &str,
    ) -> Result<Option<SignedCheckpoint>, ApiError> {
        let origin = origin(tenant, zone)?;
        let key = ObjectKey::new(self.store.prefix.checkpoint_key(&origin))
            .map_err(ApiError::internal)?;
        let note = match self.store.store.get_bytes(&key).await {
            Ok(bytes) => bytes,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(store_error(e)),
        };
        let verifier = self.verifier.as_ref().ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unavailable,
                "this API process is not configured with the checkpoint key",
            )
        })?;
        let verified =
            open_checkpoint(&note, &origin, std::slice::from_ref(verifier)).map_err(|e| {
                // Evidence of tampering or misconfiguration: never serve it as valid.
                tracing::error!(%origin, error = %e, "checkpoint in the bucket does not verify");
                ApiError::internal(format!("checkpoint of {origin} does not verify: {e}"))
            })?;
        let note = String::from_utf8(note.to_vec()).map_err(ApiError::internal)?;
        Ok(Some(SignedCheckpoint {
            note,
            checkpoint: verified.checkpoint,
        }))
    }

    /// The audit path of leaf `index` in the tree of `checkpoint`, built from the bucket's tiles
    /// and verified against the checkpoint's root before it is returned.
    pub async fn inclusion_proof(
        &self,
        tenant: &str,
        zone: &str,
        index: u64,
        checkpoint: &Checkpoint,
    ) -> Result<Vec<Sha256Hash>, ApiError> {
        let origin = origin(tenant, zone)?;
        let tlog = self.store.prefix.tlog_prefix(&origin);
        let mut tiles = TileSet::new();
        // The leaf's own level-0 tile is always needed to check the proof, but a tree that needs
        // no sibling hashes (size 1) never asks for it, so it is fetched up front.
        let tile_index = index >> TILE_HEIGHT;
        let width = if tile_index < checkpoint.size >> TILE_HEIGHT {
            TILE_WIDTH
        } else {
            u16::try_from(checkpoint.size & 0xff).map_err(ApiError::internal)?
        };
        let leaf_tile = TileId::new(TileKind::Hashes { level: 0 }, tile_index, width)
            .map_err(ApiError::internal)?;
        let data = self.hash_tile(&tlog, leaf_tile).await?;
        tiles
            .insert(leaf_tile, &data)
            .map_err(|e| ApiError::internal(format!("tile {tlog}{}: {e}", leaf_tile.path())))?;
        for _ in 0..MAX_TILE_ROUNDS {
            let answer = match inclusion_proof_from_tiles(
                index,
                checkpoint.size,
                &checkpoint.root,
                &tiles,
            ) {
                Ok(answer) => answer,
                Err(e) => {
                    tracing::warn!(%origin, index, error = %e, "no proof from tiles; using the projection's leaves");
                    return self
                        .proof_from_leaves(tenant, zone, index, checkpoint)
                        .await;
                }
            };
            let needed = match answer {
                TileProof::Complete(proof) => return Ok(proof),
                TileProof::NeedTiles(needed) => needed,
            };
            for id in needed {
                let data = self.hash_tile(&tlog, id).await?;
                tiles
                    .insert(id, &data)
                    .map_err(|e| ApiError::internal(format!("tile {tlog}{}: {e}", id.path())))?;
            }
        }
        Err(ApiError::internal(format!(
            "proof for {origin} #{index} needed more than {MAX_TILE_ROUNDS} rounds of tiles"
        )))
    }

    /// A hash tile; a partial tile that has since been completed is read from the full tile,
    /// whose first hashes are the same.
    async fn hash_tile(&self, tlog: &str, id: TileId) -> Result<Vec<u8>, ApiError> {
        let key =
            |id: TileId| ObjectKey::new(format!("{tlog}{}", id.path())).map_err(ApiError::internal);
        match self.store.store.get_bytes(&key(id)?).await {
            Ok(data) => return Ok(data.to_vec()),
            Err(StoreError::NotFound { .. }) if id.is_partial() => {}
            Err(e) => return Err(store_error(e)),
        }
        let full = TileId::new(id.kind(), id.index(), TILE_WIDTH).map_err(ApiError::internal)?;
        let data = self
            .store
            .store
            .get_bytes(&key(full)?)
            .await
            .map_err(store_error)?;
        let wanted = usize::from(id.width()) * 32;
        data.get(..wanted)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| ApiError::internal(format!("tile {tlog}{} is short", full.path())))
    }

    /// The proof from the leaf hashes of the chain projection. Only as trustworthy as the root
    /// check: the tree they form must have the signed checkpoint's root.
    async fn proof_from_leaves(
        &self,
        tenant: &str,
        zone: &str,
        index: u64,
        checkpoint: &Checkpoint,
    ) -> Result<Vec<Sha256Hash>, ApiError> {
        let size = i64::try_from(checkpoint.size).map_err(ApiError::internal)?;
        let leaves: Vec<(Vec<u8>,)> = sqlx::query_as(
            "SELECT leaf_hash FROM jobs WHERE zone_id = $1 AND tenant_id = $2 AND leaf_index < $3 \
             ORDER BY leaf_index",
        )
        .bind(zone)
        .bind(tenant)
        .bind(size)
        .fetch_all(&self.db)
        .await?;
        if leaves.len() as u64 != checkpoint.size {
            return Err(ApiError::new(
                ErrorCode::ProjectionLagging,
                "the job list has not caught up with the signed checkpoint yet; ask again shortly",
            ));
        }
        let mut tree = MemoryTree::new();
        for (leaf,) in leaves {
            let leaf: [u8; 32] = leaf.as_slice().try_into().map_err(ApiError::internal)?;
            tree.push_leaf_hash(Sha256Hash(leaf))
                .map_err(ApiError::internal)?;
        }
        if tree.root_at(checkpoint.size).map_err(ApiError::internal)? != checkpoint.root {
            return Err(ApiError::internal(format!(
                "the projected log of {zone} does not match its signed checkpoint"
            )));
        }
        tree.inclusion_proof(index, checkpoint.size)
            .map_err(ApiError::internal)
    }
}
