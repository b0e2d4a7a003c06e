//! The store watch's word to the rest of the deployment: with two providers, every pass writes
//! whether each provider answers and what this process's repair queue holds (in total and per
//! `<tenant>/<zone>`) to the KV bucket `RL_STORE_STATUS` (`rainlogs_bus::store_status`), where
//! the query API's zone health reads it, whichever process or machine serves the API.
//!
//! The entry's key is this process's name, kept in `<data_dir>/store-status-id`: the repair
//! queue belongs to the data directory, so a restart keeps its key (its old entry is simply
//! overwritten), and processes sharing a directory, which share its queue, share its entry
//! instead of counting the queue twice. Each write lives [`STATUS_TTL`], about three passes: a
//! process that stops leaves nothing behind for long. A failed write is logged, never fatal.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use rainlogs_bus::Bus;
use rainlogs_bus::store_status::{self, StoreStatus};
use rainlogs_store::{FileRepairQueue, RepairEntry};
use uuid::Uuid;

/// How long an entry lives unless written again: about three passes of the store watch.
pub const STATUS_TTL: Duration = Duration::from_secs(30);
/// The most zones one entry names (the largest backlogs first), so a long outage over many
/// zones cannot make the entry bigger than a NATS message may be; `backlog` still counts all.
const MAX_ZONES: usize = 2_000;
/// A write that takes longer is abandoned: the watch's pass must go on.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const NAME_FILE: &str = "store-status-id";

pub struct StatusWriter {
    bus: Bus,
    key: String,
    /// The deployment's key prefix (`store.url`'s): queued keys are `<prefix>/<tenant>/<zone>/…`.
    prefix: String,
    ttl: Duration,
    host: Option<String>,
    /// What the last write failed with, so each different failure is logged once.
    failing: Option<String>,
}

impl StatusWriter {
    pub fn new(bus: Bus, key: String, prefix: &str, ttl: Duration) -> Self {
        Self {
            bus,
            key,
            prefix: prefix.trim_matches('/').to_owned(),
            ttl,
            host: hostname(),
            failing: None,
        }
    }

    /// A writer whose key is the name kept in `data_dir` (created on first use).
    pub fn open(bus: Bus, data_dir: &Path, prefix: &str) -> std::io::Result<Self> {
        Ok(Self::new(bus, process_name(data_dir)?, prefix, STATUS_TTL))
    }

    /// Writes this pass's status: `providers` as (role, answering), the backlog as `queue`
    /// holds it now. Nothing is written when the queue cannot be read (the watch logs that);
    /// the entry then expires rather than claim a backlog nobody knows.
    pub async fn report(&mut self, providers: &[(&str, bool)], queue: &FileRepairQueue) {
        let Ok(pending) = queue.pending().await else {
            return;
        };
        let status = self.status(providers, &pending);
        let written = tokio::time::timeout(
            WRITE_TIMEOUT,
            store_status::write(&self.bus, &self.key, &status, self.ttl),
        )
        .await
        .unwrap_or_else(|_| {
            Err(store_status::StoreStatusError::new(
                format!("writing {}", self.key),
                format!("no answer within {} s", WRITE_TIMEOUT.as_secs()),
            ))
        });
        match written {
            Ok(()) => {
                if self.failing.take().is_some() {
                    tracing::info!(key = %self.key, "store status is written again");
                }
            }
            Err(e) => {
                let text = e.to_string();
                if self.failing.as_deref() != Some(text.as_str()) {
                    tracing::warn!(key = %self.key, error = %text, "cannot publish the store status; zone health does not show this process's repair backlog until it can (the store watch goes on)");
                    self.failing = Some(text);
                }
            }
        }
    }

    fn status(&self, providers: &[(&str, bool)], pending: &[RepairEntry]) -> StoreStatus {
        let mut zones: BTreeMap<String, u64> = BTreeMap::new();
        for entry in pending {
            if let Some(zone) = zone_of(&self.prefix, entry.key.as_str()) {
                *zones.entry(zone).or_default() += 1;
            }
        }
        if zones.len() > MAX_ZONES {
            let mut largest: Vec<(String, u64)> = zones.into_iter().collect();
            largest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            largest.truncate(MAX_ZONES);
            zones = largest.into_iter().collect();
        }
        StoreStatus {
            providers: providers
                .iter()
                .map(|(role, answering)| ((*role).to_owned(), *answering))
                .collect(),
            backlog: pending.len() as u64,
            zones,
            host: self.host.clone(),
        }
    }
}

/// `<tenant>/<zone>` of an archive-layout key `<prefix>/<tenant>/<zone>/<more>` (docs/FORMAT.md
/// §2); `None` for anything else.
fn zone_of(prefix: &str, key: &str) -> Option<String> {
    let rest = if prefix.is_empty() {
        key
    } else {
        key.strip_prefix(prefix)?.strip_prefix('/')?
    };
    let mut segments = rest.splitn(3, '/');
    let (tenant, zone, more) = (segments.next()?, segments.next()?, segments.next()?);
    let name = |s: &str| {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    (name(tenant) && name(zone) && !more.is_empty()).then(|| format!("{tenant}/{zone}"))
}

/// This process's name on its status entry, kept in `<data_dir>/store-status-id`: a UUID made
/// on first use. Linked into place, so two processes starting at once on one directory agree.
pub fn process_name(data_dir: &Path) -> std::io::Result<String> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join(NAME_FILE);
    if let Some(name) = read_name(&path) {
        return Ok(name);
    }
    let name = Uuid::new_v4().to_string();
    let partial = data_dir.join(format!("{NAME_FILE}.{name}.partial"));
    let mut file = std::fs::File::create(&partial)?;
    writeln!(file, "{name}")?;
    file.sync_all()?;
    let linked = match std::fs::hard_link(&partial, &path) {
        // Another process linked its name first: use that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match read_name(&path) {
            Some(theirs) => Ok(theirs),
            // A damaged file: replace it.
            None => std::fs::rename(&partial, &path).map(|()| name.clone()),
        },
        Err(e) => Err(e),
        Ok(()) => Ok(name.clone()),
    };
    let _ = std::fs::remove_file(&partial);
    linked
}

fn read_name(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Uuid::parse_str(text.trim()).ok().map(|id| id.to_string())
}

/// Which machine wrote an entry, for a person reading the bucket.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rainlogs_store::{ObjectKey, Side};
    use rainlogs_testkit::NatsServer;
    use time::OffsetDateTime;

    fn entry(key: &str) -> RepairEntry {
        RepairEntry {
            key: ObjectKey::new(key).unwrap(),
            missing_on: Side::Secondary,
            reason: "connection refused".into(),
            recorded_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn zones_come_from_archive_layout_keys_only() {
        let archive = "prod/c1/3b2e/http_requests/2026/01/15/14/x.ndjson.zst";
        assert_eq!(zone_of("prod", archive).as_deref(), Some("c1/3b2e"));
        assert_eq!(
            zone_of("prod", "prod/c1/3b2e/tlog/checkpoint").as_deref(),
            Some("c1/3b2e")
        );
        assert_eq!(
            zone_of("", "c1/3b2e/tlog/checkpoint").as_deref(),
            Some("c1/3b2e")
        );
        for other in [
            "elsewhere/c1/3b2e/tlog/checkpoint",
            "prod/c1/3b2e",
            "prod/c1/3b2e/",
            "prod/_rainlogs-ready",
            "prodx/c1/3b2e/tlog/checkpoint",
            "prod/c 1/3b2e/tlog/checkpoint",
        ] {
            assert_eq!(zone_of("prod", other), None, "{other}");
        }
    }

    #[test]
    fn the_name_is_kept_in_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let first = process_name(dir.path()).unwrap();
        assert!(Uuid::parse_str(&first).is_ok());
        assert!(store_status::is_valid_key(&first));
        assert_eq!(process_name(dir.path()).unwrap(), first);
        std::fs::write(dir.path().join(NAME_FILE), "damaged").unwrap();
        let replaced = process_name(dir.path()).unwrap();
        assert_ne!(replaced, first);
        assert_eq!(process_name(dir.path()).unwrap(), replaced);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, [NAME_FILE], "no partial file is left behind");
    }

    /// From a real repair queue file to a real NATS KV entry, which expires by its TTL.
    #[tokio::test]
    async fn a_pass_writes_the_queue_per_zone_and_the_entry_expires() {
        let nats = NatsServer::start();
        let bus = rainlogs_bus::connect(&nats.url).await.expect("nats");
        rainlogs_bus::provision(&bus, 1).await.expect("provision");
        let dir = tempfile::tempdir().unwrap();
        let queue = FileRepairQueue::new(dir.path().join("store-repair-queue.jsonl"));
        for key in [
            "prod/c1/z1/http_requests/2026/01/15/14/a.ndjson.zst",
            "prod/c1/z1/tlog/checkpoint",
            "prod/c1/z2/tlog/tile/0/000",
            "prod/c2/z3/tlog/checkpoint",
            "somewhere-else/x",
        ] {
            queue.record(&entry(key)).await.unwrap();
        }
        let mut writer = StatusWriter::new(
            bus.clone(),
            process_name(dir.path()).unwrap(),
            "prod/",
            Duration::from_secs(60),
        );
        writer
            .report(&[("primary", true), ("secondary", false)], &queue)
            .await;
        assert!(writer.failing.is_none(), "{:?}", writer.failing);

        let entries = store_status::read_all(&bus).await.unwrap();
        assert_eq!(entries.len(), 1, "{entries:?}");
        let (key, status) = &entries[0];
        assert_eq!(*key, writer.key);
        assert_eq!(status.backlog, 5);
        assert_eq!(
            status.zones,
            BTreeMap::from([
                ("c1/z1".to_owned(), 2),
                ("c1/z2".to_owned(), 1),
                ("c2/z3".to_owned(), 1)
            ])
        );
        assert_eq!(
            status.providers,
            BTreeMap::from([
                ("primary".to_owned(), true),
                ("secondary".to_owned(), false)
            ])
        );
        assert_eq!(status.down().collect::<Vec<_>>(), ["secondary"]);

        // Repaired: the next pass says so.
        queue.remove(&queue.pending().await.unwrap()).await.unwrap();
        writer
            .report(&[("primary", true), ("secondary", true)], &queue)
            .await;
        let entries = store_status::read_all(&bus).await.unwrap();
        assert_eq!(entries[0].1.backlog, 0);
        assert!(entries[0].1.zones.is_empty());

        // A last pass with a short TTL, then none: the entry is gone once its TTL has passed.
        writer.ttl = Duration::from_secs(1);
        writer
            .report(&[("primary", true), ("secondary", true)], &queue)
            .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !store_status::read_all(&bus).await.unwrap().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the entry never expired"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Without the bucket the write fails, is remembered (logged once) and nothing panics.
    #[tokio::test]
    async fn a_failed_write_is_remembered_not_fatal() {
        let nats = NatsServer::start();
        let bus = rainlogs_bus::connect(&nats.url).await.expect("nats");
        let dir = tempfile::tempdir().unwrap();
        let queue = FileRepairQueue::new(dir.path().join("queue.jsonl"));
        let mut writer = StatusWriter::new(bus, "p1".into(), "", Duration::from_secs(1));
        writer.report(&[("primary", true)], &queue).await;
        let first = writer.failing.clone().expect("no bucket: the write fails");
        writer.report(&[("primary", true)], &queue).await;
        assert_eq!(writer.failing, Some(first));
    }
}
