//! Bringing a zone's log into memory when its first event arrives, and reconciling the two places
//! it lives: JetStream (`rl.chain.<zone>`, every entry) and the bucket (tiles and the signed
//! checkpoint, the final source of truth since JetStream fsyncs lazily).
//!
//! 1. The bucket's newest checkpoint is read and verified with this sealer's key.
//! 2. The JetStream chain is replayed from genesis, verifying every link; at the checkpoint's
//!    size its root must match the bucket's, or the zone is faulted (a fork).
//! 3. Entries the bucket has beyond JetStream (a lost tail) are read from the entry bundles,
//!    verified against the chain, and published again under their original index.

use rainlogs_bus::PublishError;
use rainlogs_integrity::tiles::{TILE_WIDTH, decode_entry_bundle};
use rainlogs_integrity::{Name, Origin, TileId, TileSet};

use crate::journal::{Journal, JournalError};
use crate::tlog::{Tlog, TlogError};
use crate::zone::{ZoneError, ZoneLog};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("tenant {tenant:?} / zone {zone:?} cannot name a log: {reason}")]
    BadOrigin {
        tenant: String,
        zone: String,
        reason: String,
    },
    #[error(transparent)]
    Tlog(#[from] TlogError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("republishing entry {index} from the bucket: {source}")]
    Republish { index: u64, source: PublishError },
}

impl LoadError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::BadOrigin { .. } => false,
            Self::Tlog(e) => e.is_retryable(),
            Self::Journal(JournalError::Unavailable { .. }) => true,
            Self::Journal(JournalError::NotAnEntry { .. }) => false,
            Self::Republish { .. } => true,
        }
    }
}

pub fn origin(tenant: &str, zone: &str) -> Result<Origin, LoadError> {
    let bad = |reason: String| LoadError::BadOrigin {
        tenant: tenant.to_owned(),
        zone: zone.to_owned(),
        reason,
    };
    let tenant_name = Name::new(tenant).map_err(|e| bad(e.to_string()))?;
    let zone_name = Name::new(zone).map_err(|e| bad(e.to_string()))?;
    Ok(Origin::new(&tenant_name, &zone_name))
}

/// Loads a zone's log. A zone whose history is inconsistent is returned with `fault` set.
pub async fn load(
    journal: &Journal,
    tlog: &Tlog,
    tenant: &str,
    zone: &str,
) -> Result<ZoneLog, LoadError> {
    let origin = origin(tenant, zone)?;
    let signed = tlog.latest_checkpoint(&origin).await?;
    let signed_size = signed.as_ref().map_or(0, |c| c.size);
    let unsigned_sizes = tlog.unsigned_sizes(&origin, signed_size).await?;
    if !unsigned_sizes.is_empty() {
        tracing::warn!(zone, sizes = ?unsigned_sizes, "tiles stored without a checkpoint; signing those sizes first");
    }
    let mut log = ZoneLog::new(tenant, zone, origin, signed);
    log.unsigned_sizes = unsigned_sizes;
    catch_up(journal, &mut log).await?;
    if log.fault.is_none() {
        restore_from_bucket(journal, tlog, &mut log).await?;
    }
    if log.fault.is_none() {
        let signed_size = log.signed.as_ref().map_or(0, |c| c.size);
        if log.size() < signed_size {
            log.fault = Some(format!(
                "the bucket's checkpoint covers {signed_size} entries but only {} exist in JetStream and the entry bundles",
                log.size()
            ));
        }
    }
    if log.fault.is_none() && !log.unsigned_sizes.is_empty() {
        // Tiles of sizes beyond every entry that exists: they cannot be signed, and a verifier
        // will name them as an unsigned tail.
        tracing::error!(alarm = true, zone, sizes = ?log.unsigned_sizes, entries = log.size(),
            "tiles in the bucket describe entries that neither JetStream nor the bundles hold");
    }
    if let Some(fault) = &log.fault {
        tracing::error!(alarm = true, zone, %fault, "zone log is inconsistent; sealing stops for this zone");
    } else {
        tracing::info!(zone, entries = log.size(), checkpoint = ?log.signed.as_ref().map(|c| c.size), "zone log loaded");
    }
    Ok(log)
}

/// Applies every entry other sealers appended since `log.last_sequence`.
pub async fn catch_up(journal: &Journal, log: &mut ZoneLog) -> Result<(), JournalError> {
    let subject = log.subject.clone();
    let after = log.last_sequence;
    let applied = journal
        .read_after(&subject, after, |entry| {
            log.apply(entry.sequence, entry.index, &entry.bytes)
                .map(|_| ())
        })
        .await?;
    if let Err(e) = applied {
        log.fault = Some(fault_text(&e));
    }
    Ok(())
}

fn fault_text(error: &ZoneError) -> String {
    format!("the published chain does not verify: {error}")
}

/// Entries in the bucket's bundles beyond what JetStream holds are published again.
async fn restore_from_bucket(
    journal: &Journal,
    tlog: &Tlog,
    log: &mut ZoneLog,
) -> Result<(), LoadError> {
    loop {
        let size = log.size();
        let index = size / u64::from(TILE_WIDTH);
        let Some(widest) = tlog.widest_bundle(&log.origin, index).await? else {
            return Ok(());
        };
        let stored_until = index * u64::from(TILE_WIDTH) + u64::from(widest.width());
        if stored_until <= size {
            return Ok(());
        }
        let Some(data) = tlog.get_tile(&log.origin, widest).await? else {
            return Ok(());
        };
        let entries = decode_entry_bundle(&widest, &data).map_err(|e| TlogError::BadTile {
            key: widest.path(),
            reason: e.to_string(),
        })?;
        let skip = usize::try_from(size - index * u64::from(TILE_WIDTH)).unwrap_or(usize::MAX);
        for bytes in entries.into_iter().skip(skip) {
            let Ok(sealed) = log.chain.clone().verify_next(&bytes) else {
                // Not a continuation of the published chain: an abandoned tail that no
                // checkpoint covered, or tampering, which the size check after loading reports.
                tracing::warn!(zone = %log.zone, index = log.size(), "bundle entry does not continue the chain; not restored");
                return Ok(());
            };
            let index = sealed.entry.index;
            match journal
                .append(
                    &log.subject,
                    &log.tenant,
                    &log.zone,
                    &sealed,
                    None,
                    log.last_sequence,
                )
                .await
            {
                Ok(published) => {
                    if let Err(e) = log.apply(published.sequence, index, &bytes) {
                        log.fault = Some(fault_text(&e));
                        return Ok(());
                    }
                    tracing::warn!(zone = %log.zone, index, "entry lost from JetStream restored from the bucket");
                }
                Err(PublishError::WrongLastSequence { .. }) => {
                    // Another sealer is restoring or appending too: take its entries and look again.
                    catch_up(journal, log).await?;
                    if log.fault.is_some() {
                        return Ok(());
                    }
                    break;
                }
                Err(source) => return Err(LoadError::Republish { index, source }),
            }
        }
        if widest.width() < TILE_WIDTH && log.size() >= stored_until {
            return Ok(());
        }
    }
}

/// Hash tiles for consistency proofs: the ones given, plus any fetched from the bucket.
pub async fn fill_tiles(
    tlog: &Tlog,
    origin: &Origin,
    set: &mut TileSet,
    needed: &[TileId],
) -> Result<(), TlogError> {
    for id in needed {
        if id.level().is_none() {
            continue;
        }
        let data = tlog
            .get_tile(origin, *id)
            .await?
            .ok_or_else(|| TlogError::BadTile {
                key: id.path(),
                reason: "needed for a consistency proof but not in the bucket".into(),
            })?;
        let data = if id.is_partial() {
            data.get(..usize::from(id.width()) * 32)
                .map(<[u8]>::to_vec)
                .unwrap_or(data)
        } else {
            data
        };
        set.insert(*id, &data).map_err(|e| TlogError::BadTile {
            key: id.path(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}
