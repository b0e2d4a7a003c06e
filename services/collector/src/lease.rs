//! Zone ownership between collector processes: a lease per zone in a JetStream KV bucket whose
//! entries expire after the lease TTL. `create` takes a free lease, `update` with the expected
//! revision renews it (compare-and-set), and a process that dies simply stops renewing, so its
//! zones move to another process within one TTL. The single-writer fence on the zone's subject
//! (see `journal`) backs this up: even a process that missed losing its lease cannot close a
//! window another process is writing.

use std::time::Duration;

use bytes::Bytes;
use rainlogs_bus::Bus;
use rainlogs_bus::async_nats::jetstream::{self, kv};

pub const LEASE_BUCKET: &str = "RL_COLLECTOR_LEASES";

#[derive(Debug, thiserror::Error)]
#[error("zone leases: {0}")]
pub struct LeaseError(String);

/// What renewing a lease found.
#[derive(Debug, PartialEq, Eq)]
pub enum Renewal {
    Renewed(u64),
    /// Another process holds the zone now (its name, as written on the lease).
    Lost {
        holder: String,
    },
}

impl Renewal {
    fn lost_to_unknown() -> Self {
        Self::Lost {
            holder: "another collector (it took the lease while this one renewed)".into(),
        }
    }
}

pub struct Leases {
    store: kv::Store,
    owner: String,
}

impl Leases {
    pub async fn open(bus: &Bus, ttl: Duration, owner: String) -> Result<Self, LeaseError> {
        let store = match bus.js.get_key_value(LEASE_BUCKET).await {
            Ok(store) => store,
            Err(_) => bus
                .js
                .create_key_value(kv::Config {
                    bucket: LEASE_BUCKET.to_owned(),
                    description: "Collector: which process collects which zone".into(),
                    history: 1,
                    max_age: ttl,
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| LeaseError(format!("creating KV bucket {LEASE_BUCKET}: {e}")))?,
        };
        Ok(Self { store, owner })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Takes the zone's lease if nobody holds it, or if it is this process' own name on it (a
    /// restart of this collector: no other process collects the zone, so waiting for the
    /// lease to expire would only lose time). The revision to renew with.
    pub async fn acquire(&self, zone: &str) -> Result<Option<u64>, LeaseError> {
        match self
            .store
            .create(zone, Bytes::from(self.owner.clone()))
            .await
        {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                match self.holder(zone).await? {
                    Some((holder, revision)) if holder == self.owner => {
                        tracing::info!(zone, owner = %self.owner, "taking back a zone this collector held before it restarted");
                        self.take_over(zone, revision).await
                    }
                    _ => Ok(None),
                }
            }
            Err(e) => Err(LeaseError(format!("acquiring {zone}: {e}"))),
        }
    }

    /// Renews a held lease. A lease that expired while the bus could not be reached is taken
    /// again if nobody else took it; only another holder's name means it is lost.
    pub async fn renew(&self, zone: &str, revision: u64) -> Result<Renewal, LeaseError> {
        match self
            .store
            .update(zone, Bytes::from(self.owner.clone()), revision)
            .await
        {
            Ok(revision) => Ok(Renewal::Renewed(revision)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                match self.holder(zone).await? {
                    Some((holder, _)) if holder != self.owner => Ok(Renewal::Lost { holder }),
                    Some((_, current)) => Ok(self
                        .take_over(zone, current)
                        .await?
                        .map_or_else(Renewal::lost_to_unknown, Renewal::Renewed)),
                    None => Ok(self
                        .acquire(zone)
                        .await?
                        .map_or_else(Renewal::lost_to_unknown, Renewal::Renewed)),
                }
            }
            Err(e) => Err(LeaseError(format!("renewing {zone}: {e}"))),
        }
    }

    /// The name on the zone's lease and its revision; `None` when nobody holds it.
    async fn holder(&self, zone: &str) -> Result<Option<(String, u64)>, LeaseError> {
        let entry = self
            .store
            .entry(zone)
            .await
            .map_err(|e| LeaseError(format!("reading the lease of {zone}: {e}")))?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .map(|e| (String::from_utf8_lossy(&e.value).into_owned(), e.revision)))
    }

    async fn take_over(&self, zone: &str, revision: u64) -> Result<Option<u64>, LeaseError> {
        match self
            .store
            .update(zone, Bytes::from(self.owner.clone()), revision)
            .await
        {
            Ok(revision) => Ok(Some(revision)),
            // Someone wrote in between: theirs now.
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(LeaseError(format!("taking over {zone}: {e}"))),
        }
    }

    /// Gives a lease up so another process can take the zone at once.
    pub async fn release(&self, zone: &str, revision: u64) {
        if let Err(e) = self
            .store
            .delete_expect_revision(zone, Some(revision))
            .await
        {
            tracing::debug!(zone, error = %e, "lease release failed; it expires on its own");
        }
    }
}
