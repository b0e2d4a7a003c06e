//! The zone's integrity log in the bucket (docs/FORMAT.md §2, §7, §8): tiles, entry bundles,
//! the signed checkpoint and its history. Everything is written create-only except
//! `tlog/checkpoint`, which always holds the newest checkpoint.

use std::collections::BTreeSet;

use bytes::Bytes;
use futures::TryStreamExt as _;
use rainlogs_integrity::tiles::TILE_WIDTH;
use rainlogs_integrity::{
    BucketPrefix, Checkpoint, NoteVerifierKey, Origin, TileFile, TileId, TileKind, open_checkpoint,
};
use rainlogs_store::{ObjectKey, PutOptions, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum TlogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key} does not verify with this sealer's key {key_name}: {reason}")]
    BadCheckpoint {
        key: String,
        key_name: String,
        reason: String,
    },
    #[error("{key} holds a malformed tile: {reason}")]
    BadTile { key: String, reason: String },
}

impl TlogError {
    /// Worth trying again later (provider trouble), as opposed to evidence of tampering.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => !e.is_alarm(),
            _ => false,
        }
    }
}

#[derive(Clone)]
pub struct Tlog {
    store: Store,
    prefix: BucketPrefix,
    verifier: NoteVerifierKey,
}

impl Tlog {
    pub fn new(store: Store, prefix: BucketPrefix, verifier: NoteVerifierKey) -> Self {
        Self {
            store,
            prefix,
            verifier,
        }
    }

    fn key(&self, origin: &Origin, path: &str) -> Result<ObjectKey, StoreError> {
        ObjectKey::new(format!("{}{path}", self.prefix.tlog_prefix(origin)))
    }

    /// The newest checkpoint in the bucket, verified with this sealer's public key. When
    /// `tlog/checkpoint` is missing (a crash while it was being replaced) the newest of the
    /// history stands in.
    pub async fn latest_checkpoint(
        &self,
        origin: &Origin,
    ) -> Result<Option<Checkpoint>, TlogError> {
        if let Some(latest) = self.current_checkpoint(origin).await? {
            return Ok(Some(latest));
        }
        let history = self.prefix.checkpoint_history_key(origin, 0);
        let history_dir = &history[..history.len() - 20];
        let listed: Vec<_> = self.store.list(history_dir).try_collect().await?;
        let Some(newest) = listed.into_iter().map(|o| o.key).max() else {
            return Ok(None);
        };
        let key = ObjectKey::new(newest)?;
        let note = self.store.get_bytes(&key).await?;
        self.open(origin, &key, &note).map(Some)
    }

    /// What `tlog/checkpoint` holds, verified.
    async fn current_checkpoint(&self, origin: &Origin) -> Result<Option<Checkpoint>, TlogError> {
        let latest = ObjectKey::new(self.prefix.checkpoint_key(origin))?;
        match self.store.get_bytes(&latest).await {
            Ok(note) => self.open(origin, &latest, &note).map(Some),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn open(&self, origin: &Origin, key: &ObjectKey, note: &[u8]) -> Result<Checkpoint, TlogError> {
        open_checkpoint(note, origin, std::slice::from_ref(&self.verifier))
            .map(|v| v.checkpoint)
            .map_err(|e| TlogError::BadCheckpoint {
                key: key.to_string(),
                key_name: self.verifier.to_string(),
                reason: e.to_string(),
            })
    }

    /// Stores a tile or bundle. Its path fixes its content, so finding it stored is success.
    pub async fn put_tile(&self, origin: &Origin, file: &TileFile) -> Result<(), TlogError> {
        let key = self.key(origin, &file.path())?;
        self.store
            .put_bytes(&key, Bytes::from(file.data.clone()), &PutOptions::default())
            .await?;
        Ok(())
    }

    /// A hash tile or bundle; a partial tile that has since been completed is served by the
    /// full tile (whose first hashes are the same).
    pub async fn get_tile(
        &self,
        origin: &Origin,
        id: TileId,
    ) -> Result<Option<Vec<u8>>, TlogError> {
        let mut candidates = vec![id];
        if id.is_partial()
            && let Ok(full) = TileId::new(id.kind(), id.index(), TILE_WIDTH)
        {
            candidates.push(full);
        }
        for candidate in candidates {
            let key = self.key(origin, &candidate.path())?;
            match self.store.get_bytes(&key).await {
                Ok(data) => return Ok(Some(data.to_vec())),
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// The widest entry bundle stored at level-0 index `index` (full = 256), if any.
    pub async fn widest_bundle(
        &self,
        origin: &Origin,
        index: u64,
    ) -> Result<Option<TileId>, TlogError> {
        Ok(self
            .stored_widths(origin, TileKind::Entries, index)
            .await?
            .into_iter()
            .max_by_key(TileId::width))
    }

    /// Every width of the tile `kind`/`index` stored in the bucket (partial ones and the full).
    async fn stored_widths(
        &self,
        origin: &Origin,
        kind: TileKind,
        index: u64,
    ) -> Result<Vec<TileId>, TlogError> {
        let full = TileId::new(kind, index, TILE_WIDTH).map_err(|e| TlogError::BadTile {
            key: format!("{kind:?} index {index}"),
            reason: e.to_string(),
        })?;
        let tlog_prefix = self.prefix.tlog_prefix(origin);
        let listed: Vec<_> = self
            .store
            .list(&format!("{tlog_prefix}{}", full.path()))
            .try_collect()
            .await?;
        Ok(listed
            .iter()
            .filter_map(|o| o.key.strip_prefix(&tlog_prefix))
            .filter_map(|path| TileId::parse_path(path).ok())
            .filter(|id| id.kind() == kind && id.index() == index)
            .collect())
    }

    /// Tree sizes beyond `signed_size` whose level-0 partial tiles are in the bucket: a sealer
    /// stored the tiles of that size and stopped before signing it. Each such size counts as
    /// published (a verifier reads a partial tile as a tree size), so it must be signed before
    /// any larger one.
    pub async fn unsigned_sizes(
        &self,
        origin: &Origin,
        signed_size: u64,
    ) -> Result<BTreeSet<u64>, TlogError> {
        let mut sizes = BTreeSet::new();
        let mut index = signed_size / u64::from(TILE_WIDTH);
        loop {
            let mut stored = self.stored_widths(origin, TileKind::Entries, index).await?;
            stored.extend(
                self.stored_widths(origin, TileKind::Hashes { level: 0 }, index)
                    .await?,
            );
            let mut full = false;
            for id in stored {
                if id.is_partial() {
                    let size = index * u64::from(TILE_WIDTH) + u64::from(id.width());
                    if size > signed_size {
                        sizes.insert(size);
                    }
                } else {
                    full = true;
                }
            }
            if !full {
                return Ok(sizes);
            }
            index += 1;
        }
    }

    /// Publishes a signed checkpoint: first in the history (create-only: the first checkpoint
    /// signed at a size stays), then as `tlog/checkpoint`.
    pub async fn put_checkpoint(
        &self,
        origin: &Origin,
        checkpoint: &Checkpoint,
        note: &str,
    ) -> Result<(), TlogError> {
        let history = ObjectKey::new(self.prefix.checkpoint_history_key(origin, checkpoint.size))?;
        let note = Bytes::from(note.as_bytes().to_vec());
        let options = PutOptions {
            content_type: Some("text/plain; charset=utf-8".into()),
            ..PutOptions::default()
        };
        // Signatures are deterministic: the same key signing the same tree gives the same bytes,
        // so a different note already stored at this size is another tree (an incident).
        self.store
            .put_bytes(&history, note.clone(), &options)
            .await?;
        self.replace_latest(origin, checkpoint, note, &options)
            .await
    }

    /// Replaces `tlog/checkpoint`, never with an older checkpoint than the one it holds.
    ///
    /// The store writes create-only, so replacing is delete-then-put (`Store::replace_bytes`); a
    /// reader in between finds no latest checkpoint and falls back to the history (as
    /// `latest_checkpoint` does).
    async fn replace_latest(
        &self,
        origin: &Origin,
        checkpoint: &Checkpoint,
        note: Bytes,
        options: &PutOptions,
    ) -> Result<(), TlogError> {
        let latest = ObjectKey::new(self.prefix.checkpoint_key(origin))?;
        for _ in 0..3 {
            if let Some(current) = self.current_checkpoint(origin).await?
                && current.size >= checkpoint.size
            {
                return Ok(());
            }
            // With two providers each is replaced on its own, so an outage of one never takes
            // the latest checkpoint away from the other.
            match self
                .store
                .replace_bytes(&latest, note.clone(), options)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e @ StoreError::RetentionRefused { .. }) => {
                    tracing::warn!(error = %e, key = %latest,
                        "the bucket's retention keeps tlog/checkpoint from being replaced; only the history is updated");
                    return Ok(());
                }
                // Another sealer put its checkpoint between our delete and put: look again.
                Err(StoreError::Incident(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rainlogs_integrity::{BucketPrefix, Name, Origin};

    /// Repair must know the latest checkpoint is the key that is replaced (not an incident when
    /// the providers differ on it for a while).
    #[test]
    fn the_latest_checkpoint_is_the_key_the_store_knows_as_replaced() {
        let prefix = BucketPrefix::new("prod").expect("prefix");
        let origin = Origin::new(
            &Name::new("acme").expect("name"),
            &Name::new("023e105f4ecef8ad9ca31a8372d0c353").expect("name"),
        );
        assert!(
            prefix
                .checkpoint_key(&origin)
                .ends_with(rainlogs_store::REPLACED_KEY_SUFFIX)
        );
        assert!(
            !prefix
                .checkpoint_history_key(&origin, 7)
                .ends_with(rainlogs_store::REPLACED_KEY_SUFFIX)
        );
    }
}
