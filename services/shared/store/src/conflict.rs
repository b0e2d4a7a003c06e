//! What a put does when its key is already taken: same bytes is an idempotent retry, different bytes is an
//! incident. Never an overwrite.

use crate::digest::Sha256Hash;
use crate::error::{Incident, StoreError};
use crate::model::{Presence, PutOutcome};

pub(crate) struct Existing {
    pub sha256: Sha256Hash,
    pub size: u64,
    pub version_id: Option<String>,
}

pub(crate) fn settle(
    key: &str,
    provider: &str,
    existing: Existing,
    attempted_sha256: Sha256Hash,
    attempted_size: u64,
) -> Result<PutOutcome, StoreError> {
    if existing.sha256 == attempted_sha256 && existing.size == attempted_size {
        return Ok(PutOutcome {
            presence: Presence::AlreadyPresent,
            sha256: existing.sha256,
            size: existing.size,
            version_id: existing.version_id,
            pending_repair: None,
        });
    }
    // Returned, not logged: the caller knows whether this is an incident (an archive key) or an
    // expected race (the storage probe, a concurrent checkpoint replace) and reports it.
    Err(StoreError::Incident(Box::new(Incident {
        key: key.to_owned(),
        provider: provider.to_owned(),
        existing_sha256: existing.sha256,
        existing_size: existing.size,
        attempted_sha256,
        attempted_size,
    })))
}
