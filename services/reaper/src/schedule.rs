//! The reaper's read model of every archive entry with its retain-until (from RL_CHAIN). It is a
//! projection, so replays and redeliveries change nothing. Legal holds come from
//! `rainlogs_db::LegalHoldsProjection`.

use rainlogs_db::Projection;
use rainlogs_integrity::{Entry, EntryBody};
use rainlogs_schemas::{Envelope, Event};
use sqlx::PgConnection;

/// `retention_archives`, from the sealed entries of every zone.
#[derive(Debug, Default, Clone, Copy)]
pub struct RetentionSchedule;

impl Projection for RetentionSchedule {
    const NAME: &'static str = "retention";
    const TABLES: &'static [&'static str] = &["retention_archives"];
    const STREAM: &'static str = rainlogs_bus::definitions::CHAIN;

    async fn apply(
        &self,
        conn: &mut PgConnection,
        _sequence: u64,
        event: &Envelope,
    ) -> Result<(), sqlx::Error> {
        let Event::EntrySealed(sealed) = &event.event else {
            return Ok(());
        };
        let Some(zone) = &event.zone else {
            tracing::error!(id = %event.id, "chain entry without a zone; not scheduled");
            return Ok(());
        };
        let entry = match Entry::decode(&sealed.entry) {
            Ok(entry) => entry,
            Err(e) => {
                // The sealer verified it before appending; an undecodable entry here is an
                // alarm for the verifier, not something retention can act on.
                tracing::error!(alarm = true, %zone, index = sealed.index, error = %e,
                    "chain entry does not decode; not scheduled");
                return Ok(());
            }
        };
        match &entry.body {
            EntryBody::Archive(archive) | EntryBody::Late(archive) => {
                sqlx::query(
                    "INSERT INTO retention_archives \
                     (zone, tenant, entry_index, entry, object_key, stored_size, retain_until_ns) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (zone, entry_index) DO NOTHING",
                )
                .bind(zone)
                .bind(&event.tenant)
                .bind(as_i64(entry.index))
                .bind(&sealed.entry)
                .bind(&archive.object.key)
                .bind(as_i64(archive.stored_size))
                .bind(as_i64(archive.retain_until_ns))
                .execute(conn)
                .await?;
            }
            EntryBody::Prune(prune) => {
                sqlx::query(
                    "UPDATE retention_archives SET pruned_at_ns = $3 \
                     WHERE zone = $1 AND entry_index = $2 AND pruned_at_ns IS NULL",
                )
                .bind(zone)
                .bind(as_i64(prune.target_index))
                .bind(as_i64(prune.pruned_at_ns))
                .execute(conn)
                .await?;
            }
            EntryBody::Empty(_)
            | EntryBody::Gap(_)
            | EntryBody::Shortfall(_)
            | EntryBody::Index(_)
            | EntryBody::Key(_)
            | EntryBody::Erasure => {}
        }
        Ok(())
    }
}

pub(crate) fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
