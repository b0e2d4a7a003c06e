//! The storage providers and the repair backlog as zone health sees them.
//!
//! With two providers, every `rainlogs run` process publishes its store watch's view in the KV
//! bucket `RL_STORE_STATUS` (`rainlogs_bus::store_status`): whether each provider answers, and
//! how many objects of each `<tenant>/<zone>` wait in its repair queue. Entries expire with the
//! process that wrote them, so what is there is the live processes' word. This module sums it
//! (kept for [`crate::ApiOptions::storage_status_cache`]) and says what it means for one zone.
//!
//! No entries (one provider, or no process has written yet) means nothing to say. A bucket that
//! cannot be read is logged and also means nothing to say: zone health answers either way.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rainlogs_bus::Bus;
use rainlogs_bus::store_status::{self, StoreStatus};
use tokio::sync::Mutex;

/// A read that takes longer is given up: zone health does not wait on it.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Every live process's storage status, summed.
#[derive(Debug, Default, PartialEq)]
pub struct StorageAggregate {
    /// Processes reporting.
    processes: usize,
    /// Every role reported.
    roles: BTreeSet<String>,
    /// Role → how many processes report it as not answering (roles every process reaches are
    /// absent).
    down: BTreeMap<String, usize>,
    /// `<tenant>/<zone>` → objects waiting for repair, over every process.
    zones: HashMap<String, u64>,
}

/// What the storage means for one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneStorage {
    /// The zone's archives are all on both providers and both answer.
    pub ok: bool,
    pub reason: String,
    /// The zone's objects on one provider only, waiting to be copied to the other.
    pub backlog: u64,
}

impl StorageAggregate {
    /// `None` without entries: nothing is known, so nothing is said.
    pub fn sum(entries: &[(String, StoreStatus)]) -> Option<Self> {
        if entries.is_empty() {
            return None;
        }
        let mut sum = Self {
            processes: entries.len(),
            ..Self::default()
        };
        for (_, status) in entries {
            sum.roles.extend(status.providers.keys().cloned());
            for role in status.down() {
                *sum.down.entry(role.to_owned()).or_default() += 1;
            }
            for (zone, count) in &status.zones {
                *sum.zones.entry(zone.clone()).or_default() += count;
            }
        }
        Some(sum)
    }

    /// The storage part of one zone's health.
    pub fn zone(&self, tenant: &str, zone: &str) -> ZoneStorage {
        let backlog = self
            .zones
            .get(&format!("{tenant}/{zone}"))
            .copied()
            .unwrap_or(0);
        let down = self.down_text();
        let reason = match (backlog, &down) {
            (0, None) => {
                "both storage providers answer; nothing of this zone waits for repair".to_owned()
            }
            (0, Some(down)) if self.down.len() == self.roles.len() => format!(
                "storage providers {down}: no archive can be stored until one answers again"
            ),
            (0, Some(down)) => format!(
                "storage provider {down}: new archives are kept on the other provider only and \
                 copied to it when it answers again"
            ),
            (n, Some(down)) => format!("{} ({down})", waiting(n)),
            (n, None) => format!(
                "{} (both providers answer: the store watch copies them on its next passes)",
                waiting(n)
            ),
        };
        ZoneStorage {
            ok: backlog == 0 && down.is_none(),
            reason,
            backlog,
        }
    }

    /// `secondary not answering`, with how many processes see it when not all do.
    fn down_text(&self) -> Option<String> {
        if self.down.is_empty() {
            return None;
        }
        let roles: Vec<&str> = self.down.keys().map(String::as_str).collect();
        let mut text = format!("{} not answering", roles.join(" and "));
        let seen_by = self.down.values().copied().max().unwrap_or(0);
        if seen_by < self.processes {
            text.push_str(&format!(
                " for {seen_by} of {} RainLogs processes",
                self.processes
            ));
        }
        Some(text)
    }
}

fn waiting(n: u64) -> String {
    if n == 1 {
        "1 object of this zone is on one storage provider only, waiting for repair".to_owned()
    } else {
        format!("{n} objects of this zone are on one storage provider only, waiting for repair")
    }
}

struct Cached {
    read_at: Instant,
    aggregate: Option<Arc<StorageAggregate>>,
}

/// Reads and caches the bucket for the API.
pub struct StorageStatus {
    bus: Bus,
    keep_for: Duration,
    /// Held while the bucket is read, so one request reads it and the others wait for that.
    cached: Mutex<Option<Cached>>,
    /// The last read's failure, so each different one is logged at warn level once.
    failing: std::sync::Mutex<Option<String>>,
}

impl StorageStatus {
    pub fn new(bus: Bus, keep_for: Duration) -> Self {
        Self {
            bus,
            keep_for,
            cached: Mutex::new(None),
            failing: std::sync::Mutex::new(None),
        }
    }

    /// The live processes' status summed; `None` when none reports or the bucket cannot be
    /// read. At most `keep_for` old.
    pub async fn aggregate(&self) -> Option<Arc<StorageAggregate>> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && c.read_at.elapsed() < self.keep_for
        {
            return c.aggregate.clone();
        }
        let read_at = Instant::now();
        let aggregate = self.read().await.map(Arc::new);
        *cached = Some(Cached {
            read_at,
            aggregate: aggregate.clone(),
        });
        aggregate
    }

    async fn read(&self) -> Option<StorageAggregate> {
        let read = tokio::time::timeout(READ_TIMEOUT, store_status::read_all(&self.bus))
            .await
            .unwrap_or_else(|_| {
                Err(store_status::StoreStatusError::new(
                    "reading",
                    format!("no answer within {} s", READ_TIMEOUT.as_secs()),
                ))
            });
        let mut failing = self
            .failing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match read {
            Ok(entries) => {
                if failing.take().is_some() {
                    tracing::info!("the storage status can be read again");
                }
                StorageAggregate::sum(&entries)
            }
            Err(e) => {
                let text = e.to_string();
                if failing.as_deref() == Some(text.as_str()) {
                    tracing::debug!(error = %text, "storage status still unreadable");
                } else {
                    tracing::warn!(error = %text, "cannot read the storage status: zone health shows no storage part until it can");
                    *failing = Some(text);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(secondary: bool, zones: &[(&str, u64)]) -> StoreStatus {
        StoreStatus {
            providers: [
                ("primary".to_owned(), true),
                ("secondary".to_owned(), secondary),
            ]
            .into(),
            backlog: zones.iter().map(|(_, n)| n).sum::<u64>() + 1,
            zones: zones.iter().map(|(z, n)| ((*z).to_owned(), *n)).collect(),
            host: None,
        }
    }

    #[test]
    fn nothing_is_said_without_entries() {
        assert_eq!(StorageAggregate::sum(&[]), None);
    }

    #[test]
    fn backlogs_add_up_and_a_provider_down_concerns_every_zone() {
        let sum = StorageAggregate::sum(&[
            ("a".into(), status(false, &[("t/z1", 12), ("t/z2", 0)])),
            ("b".into(), status(true, &[("t/z1", 3), ("u/z9", 1)])),
        ])
        .expect("entries");
        let z1 = sum.zone("t", "z1");
        assert!(!z1.ok);
        assert_eq!(z1.backlog, 15);
        assert_eq!(
            z1.reason,
            "15 objects of this zone are on one storage provider only, waiting for repair \
             (secondary not answering for 1 of 2 RainLogs processes)"
        );
        let z2 = sum.zone("t", "z2");
        assert_eq!((z2.ok, z2.backlog), (false, 0));
        assert!(
            z2.reason
                .starts_with("storage provider secondary not answering")
        );
        let z9 = sum.zone("u", "z9");
        assert_eq!(
            z9.reason,
            "1 object of this zone is on one storage provider only, waiting for repair \
             (secondary not answering for 1 of 2 RainLogs processes)"
        );
    }

    #[test]
    fn all_well_is_ok_and_a_leftover_backlog_is_not() {
        let sum =
            StorageAggregate::sum(&[("a".into(), status(true, &[("t/z1", 2)]))]).expect("entries");
        let quiet = sum.zone("t", "other");
        assert!(quiet.ok);
        assert_eq!(quiet.backlog, 0);
        let z1 = sum.zone("t", "z1");
        assert!(!z1.ok);
        assert!(z1.reason.contains("both providers answer"), "{}", z1.reason);
        let everyone = StorageAggregate::sum(&[
            ("a".into(), status(false, &[])),
            ("b".into(), status(false, &[])),
        ])
        .expect("entries");
        assert_eq!(
            everyone.zone("t", "z1").reason,
            "storage provider secondary not answering: new archives are kept on the other \
             provider only and copied to it when it answers again"
        );
        let none = StorageAggregate::sum(&[(
            "a".into(),
            StoreStatus {
                providers: [
                    ("primary".to_owned(), false),
                    ("secondary".to_owned(), false),
                ]
                .into(),
                ..StoreStatus::default()
            },
        )])
        .expect("entries");
        assert_eq!(
            none.zone("t", "z1").reason,
            "storage providers primary and secondary not answering: no archive can be stored \
             until one answers again"
        );
    }
}
