//! Read model of the sealed integrity logs: one `jobs` row per chain entry (docs/FORMAT.md §4).

use rainlogs_integrity::{EntryBody, SealedEntry, leaf_hash};
use rainlogs_schemas::{Envelope, Event};
use sqlx::PgConnection;

use rainlogs_db::Projection;

/// Chain entries from `rl.chain.>`, decoded from their canonical bytes.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChainProjection;

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Zero means "not set" in the entry format; the table says so with NULL.
fn set(value: u64) -> Option<i64> {
    (value != 0).then(|| signed(value))
}

impl Projection for ChainProjection {
    const NAME: &'static str = "chain";
    const TABLES: &'static [&'static str] = &["jobs"];
    const STREAM: &'static str = rainlogs_bus::definitions::CHAIN;

    async fn apply(
        &self,
        conn: &mut PgConnection,
        sequence: u64,
        event: &Envelope,
    ) -> Result<(), sqlx::Error> {
        let Event::EntrySealed(sealed) = &event.event else {
            return Ok(());
        };
        // An entry that does not decode was never valid; the verifier reports it. Projecting it
        // would show clients a job nobody can check, so it is skipped (and logged).
        let entry = match SealedEntry::from_bytes(&sealed.entry) {
            Ok(entry) => entry,
            Err(e) => {
                tracing::error!(sequence, error = %e, "chain entry does not decode; not projected");
                return Ok(());
            }
        };
        let origin = &entry.entry.origin;
        if origin.tenant().as_str() != event.tenant {
            tracing::error!(
                sequence,
                origin = %origin,
                envelope_tenant = %event.tenant,
                "chain entry origin disagrees with its envelope; projected under the origin's tenant"
            );
        }
        let body = &entry.entry.body;
        // Late, shortfall and index entries are listed under the window they add to, report on
        // or index.
        let window = body.named_window();
        let mut row = JobRow {
            zone_id: origin.zone().as_str(),
            tenant_id: origin.tenant().as_str(),
            leaf_index: signed(entry.entry.index),
            job_id: entry.id.to_hex(),
            kind: body.kind().as_str(),
            dataset: body.dataset().map(|d| d.as_str().to_owned()),
            window_start_ns: window.map(|w| signed(w.start_ns())),
            window_end_ns: window.map(|w| signed(w.end_ns())),
            ..JobRow::default()
        };
        match body {
            EntryBody::Archive(r) | EntryBody::Late(r) => {
                row.method = Some(r.method.as_str());
                row.sampling = Some(i64::from(r.sampling.code()));
                row.object_key = Some(r.object.key.clone());
                row.object_version = Some(r.object.version.clone()).filter(|v| !v.is_empty());
                row.stored_size = Some(signed(r.stored_size));
                row.stored_sha256 = Some(r.stored_sha256.0.to_vec());
                row.content_sha256 = Some(r.content_sha256.0.to_vec());
                row.record_count = Some(signed(r.record_count));
                row.retain_until_ns = set(r.retain_until_ns);
            }
            EntryBody::Empty(r) => {
                row.method = Some(r.method.as_str());
                row.sampling = Some(i64::from(r.sampling.code()));
                row.record_count = Some(0);
            }
            EntryBody::Gap(r) => {
                row.method = Some(r.method.as_str());
                row.gap_reason = Some(r.reason.as_str());
            }
            EntryBody::Prune(r) => {
                row.object_key = Some(r.object.key.clone());
                row.object_version = Some(r.object.version.clone()).filter(|v| !v.is_empty());
                row.prune_target_index = Some(signed(r.target_index));
                row.pruned_at_ns = set(r.pruned_at_ns);
            }
            EntryBody::Shortfall(r) => {
                row.method = Some(r.method.as_str());
                row.source_count = Some(signed(r.source_count));
            }
            EntryBody::Index(r) => {
                row.object_key = Some(r.object.key.clone());
                row.object_version = Some(r.object.version.clone()).filter(|v| !v.is_empty());
                row.stored_size = Some(signed(r.stored_size));
                row.stored_sha256 = Some(r.stored_sha256.0.to_vec());
                row.retain_until_ns = set(r.retain_until_ns);
                row.prune_target_index = Some(signed(r.target_index));
            }
            EntryBody::Key(_) | EntryBody::Erasure => {}
        }
        sqlx::query(
            "INSERT INTO jobs (zone_id, leaf_index, tenant_id, job_id, kind, dataset, window_start_ns, \
             window_end_ns, method, sampling, object_key, object_version, stored_size, stored_sha256, \
             content_sha256, record_count, retain_until_ns, gap_reason, prune_target_index, pruned_at_ns, \
             prev_chain_hash, chain_hash, leaf_hash, entry_bytes, sealed_at_ns, stream_sequence, source_count) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27) \
             ON CONFLICT (zone_id, leaf_index) DO NOTHING",
        )
        .bind(row.zone_id)
        .bind(row.leaf_index)
        .bind(row.tenant_id)
        .bind(&row.job_id)
        .bind(row.kind)
        .bind(&row.dataset)
        .bind(row.window_start_ns)
        .bind(row.window_end_ns)
        .bind(row.method)
        .bind(row.sampling)
        .bind(&row.object_key)
        .bind(&row.object_version)
        .bind(row.stored_size)
        .bind(&row.stored_sha256)
        .bind(&row.content_sha256)
        .bind(row.record_count)
        .bind(row.retain_until_ns)
        .bind(row.gap_reason)
        .bind(row.prune_target_index)
        .bind(row.pruned_at_ns)
        .bind(entry.entry.prev_chain_hash.0.to_vec())
        .bind(entry.chain_hash.0.to_vec())
        .bind(leaf_hash(&entry.bytes).0.to_vec())
        .bind(&entry.bytes)
        .bind(signed(entry.entry.sealed_at_ns))
        .bind(signed(sequence))
        .bind(row.source_count)
        .execute(&mut *conn)
        .await?;
        if let EntryBody::Prune(r) = body {
            sqlx::query(
                "UPDATE jobs SET pruned_by_index = $3 WHERE zone_id = $1 AND leaf_index = $2",
            )
            .bind(row.zone_id)
            .bind(signed(r.target_index))
            .bind(row.leaf_index)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct JobRow<'a> {
    zone_id: &'a str,
    tenant_id: &'a str,
    leaf_index: i64,
    job_id: String,
    kind: &'static str,
    dataset: Option<String>,
    window_start_ns: Option<i64>,
    window_end_ns: Option<i64>,
    method: Option<&'static str>,
    sampling: Option<i64>,
    object_key: Option<String>,
    object_version: Option<String>,
    stored_size: Option<i64>,
    stored_sha256: Option<Vec<u8>>,
    content_sha256: Option<Vec<u8>>,
    record_count: Option<i64>,
    retain_until_ns: Option<i64>,
    gap_reason: Option<&'static str>,
    prune_target_index: Option<i64>,
    pruned_at_ns: Option<i64>,
    source_count: Option<i64>,
}
