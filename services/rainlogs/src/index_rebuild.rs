//! `rainlogs index rebuild`: indexes archives sealed before indexes existed. For every archive
//! and late object of the log (per zone, or all) that is not pruned and has no `index` entry: its
//! stored bytes are read and checked against the logged SHA-256, its index object is built as the
//! archiver builds one (docs/FORMAT.md §12), written beside it with the same retention, and
//! `archive.index_rebuilt` asks the sealer for its `index` entry. Idempotent: a second run
//! finds nothing to do once the sealer has caught up, and a repeated request is logged once.
//! Progress goes to stdout (and the log) every 100 archives.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use rainlogs_config::Config;
use rainlogs_integrity::{Entry, Sha256Hash};
use rainlogs_schemas::events::{IndexRebuilt, IndexStored};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_store::{ObjectKey, PutOptions, Store};
use sha2::Digest as _;
use time::OffsetDateTime;

/// One archive without an index, from the API's projection of the logs.
#[derive(sqlx::FromRow)]
struct Unindexed {
    tenant_id: String,
    zone_id: String,
    leaf_index: i64,
    entry_bytes: Vec<u8>,
}

/// What a rebuild did.
#[derive(Debug, Default)]
struct Tally {
    indexed: u64,
    failed: u64,
    bytes_read: u64,
}

pub async fn rebuild(config: &Config, zone: Option<&str>) -> anyhow::Result<ExitCode> {
    let bus = crate::run::connect_bus(config).await?;
    let db = crate::run::database(config).await?;
    let store = rainlogs_runtime::open_store(config)
        .await
        .context("opening the store")?
        .store;
    let rows: Vec<Unindexed> = sqlx::query_as(
        "SELECT j.tenant_id, j.zone_id, j.leaf_index, j.entry_bytes FROM jobs j \
         WHERE j.kind IN ('archive', 'late') AND j.pruned_by_index IS NULL \
         AND ($1::TEXT IS NULL OR j.zone_id = $1) \
         AND NOT EXISTS (SELECT 1 FROM jobs i WHERE i.zone_id = j.zone_id AND i.kind = 'index' \
                         AND i.prune_target_index = j.leaf_index) \
         ORDER BY j.zone_id, j.leaf_index",
    )
    .bind(zone)
    .fetch_all(&db)
    .await
    .context("reading the archives without an index")?;
    let total = rows.len();
    println!("{total} archives have no index");
    let started = Instant::now();
    let mut tally = Tally::default();
    for (n, row) in rows.iter().enumerate() {
        match index_one(&store, &bus, row).await {
            Ok(read) => {
                tally.indexed += 1;
                tally.bytes_read += read;
            }
            Err(e) => {
                tally.failed += 1;
                tracing::error!(zone = %row.zone_id, entry = row.leaf_index, error = %format!("{e:#}"),
                    "archive not indexed");
                eprintln!("zone {} entry {}: {e:#}", row.zone_id, row.leaf_index);
            }
        }
        if (n + 1) % 100 == 0 || n + 1 == total {
            let line = format!(
                "{} of {total} archives done ({} indexed, {} failed, {} MiB read, {:.0} s)",
                n + 1,
                tally.indexed,
                tally.failed,
                tally.bytes_read >> 20,
                started.elapsed().as_secs_f64()
            );
            tracing::info!("{line}");
            println!("{line}");
        }
    }
    println!(
        "requested {} index entries; the sealer logs them (rainlogs-verify reports archives still unindexed)",
        tally.indexed
    );
    Ok(if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Indexes one archive; returns the bytes read.
async fn index_one(store: &Store, bus: &rainlogs_bus::Bus, row: &Unindexed) -> anyhow::Result<u64> {
    let entry = Entry::decode(&row.entry_bytes).context("the projected entry does not decode")?;
    let archive = entry
        .body
        .archive()
        .context("the entry holds no archive")?
        .clone();
    let key = ObjectKey::new(&archive.object.key)?;
    let reader = tokio_util::io::SyncIoBridge::new(store.get(&key).await?);
    let (digest, index) =
        tokio::task::spawn_blocking(move || rainlogs_index::index_archive(reader)).await??;
    anyhow::ensure!(
        digest.stored_sha256 == archive.stored_sha256 && digest.stored_size == archive.stored_size,
        "{} is not the archive its entry logs (SHA-256 {})",
        archive.object.key,
        digest.stored_sha256
    );
    let bytes = index.encode();
    let sha256 = Sha256Hash::digest(&bytes);
    let index_key = rainlogs_integrity::layout::index_key(&archive.object.key)
        .context("the archive key has no index key")?;
    let retain_until_s = i64::try_from(archive.retain_until_ns / 1_000_000_000).unwrap_or(i64::MAX);
    let options = PutOptions {
        sha256: Some(rainlogs_store::Sha256Hash(sha256.0)),
        retain_until: OffsetDateTime::from_unix_timestamp(retain_until_s).ok(),
        content_type: Some("application/octet-stream".into()),
    };
    let put = store
        .put_stream(&ObjectKey::new(&index_key)?, bytes.as_slice(), &options)
        .await?;
    let mut envelope = Envelope::new(
        row.tenant_id.clone(),
        Some(row.zone_id.clone()),
        Actor::service("index-rebuild"),
        Event::IndexRebuilt(IndexRebuilt {
            target_index: u64::try_from(row.leaf_index)?,
            target_entry: row.entry_bytes.clone(),
            index: IndexStored {
                object_key: index_key,
                object_version: put.version_id,
                stored_size: bytes.len() as u64,
                stored_sha256: sha256.0.to_vec(),
            },
        }),
    );
    // The same id for every request about one entry, so JetStream keeps one of them.
    let digest = sha2::Sha256::new()
        .chain_update(b"rainlogs archive.index_rebuilt\0")
        .chain_update(&row.entry_bytes)
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    envelope.id = uuid::Builder::from_custom_bytes(id).into_uuid();
    bus.publish(&subjects::archive(&row.zone_id), &envelope)
        .await
        .context("publishing archive.index_rebuilt")?;
    Ok(archive.stored_size)
}
