//! Zone ownership between collector processes, in the KV bucket `RL_COLLECTOR_LEASES` (declared
//! in `nats/` like every stream, so it gets `nats.replicas`).
//!
//! * A zone's lease is the key `<zone id>` holding its collector's name. Every write carries the
//!   writer's `collector.lease_ttl` as a per-message TTL (`Nats-TTL`), so a lease lasts exactly
//!   as long as the process that wrote it says, whatever the bucket was created with; a process
//!   that dies stops renewing and its leases vanish one TTL later, leaving a delete marker that
//!   waiting collectors see at once ([`Leases::freed`]).
//! * Writes are compare-and-set on the key's revision: taking a free lease expects the key empty
//!   (or ending in a delete marker), renewing expects the revision this process wrote last.
//! * `member.<name>` says a collector is alive (same TTL, renewed with the leases), so each can
//!   work out its fair share of the zones.
//!
//! The single-writer fence on the zone's subject (see `journal`) backs all this up: even a
//! process that missed losing its lease cannot close a window another process is writing.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rainlogs_bus::Bus;
use rainlogs_bus::async_nats::HeaderMap;
use rainlogs_bus::async_nats::header::{NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_TTL};
use rainlogs_bus::async_nats::jetstream::context::PublishErrorKind;
use rainlogs_bus::async_nats::jetstream::kv;
use rainlogs_bus::definitions::COLLECTOR_LEASES;

const MEMBER_PREFIX: &str = "member.";

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

/// A compare-and-set write that found another revision.
enum Write {
    Done(u64),
    Conflict,
}

pub struct Leases {
    bus: Bus,
    store: kv::Store,
    owner: String,
    /// `Nats-TTL` of every write: whole seconds, at least one (the server's granularity).
    ttl_secs: u64,
}

impl Leases {
    pub async fn open(bus: &Bus, ttl: Duration, owner: String) -> Result<Self, LeaseError> {
        let store = bus.js.get_key_value(COLLECTOR_LEASES).await.map_err(|e| {
            LeaseError(format!(
                "KV bucket {COLLECTOR_LEASES} ({e}); run `rainlogs provision`"
            ))
        })?;
        Ok(Self {
            bus: bus.clone(),
            store,
            owner,
            ttl_secs: ttl.as_secs_f64().ceil().max(1.0) as u64,
        })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Takes the zone's lease if nobody holds it, or if it is this process' own name on it (a
    /// restart of this collector: no other process collects the zone, so waiting for the
    /// lease to expire would only lose time). The revision to renew with.
    pub async fn acquire(&self, zone: &str) -> Result<Option<u64>, LeaseError> {
        if let Write::Done(revision) = self.write(zone, 0).await? {
            return Ok(Some(revision));
        }
        match self.entry(zone).await? {
            // Released, or expired with a marker left behind: free.
            Some(entry) if entry.operation != kv::Operation::Put => {
                self.take_over(zone, entry.revision).await
            }
            Some(entry) if holder_of(&entry) == self.owner => {
                tracing::info!(zone, owner = %self.owner, "taking back a zone this collector held before it restarted");
                self.take_over(zone, entry.revision).await
            }
            Some(_) => Ok(None),
            // Expired between the two reads: the next round takes it.
            None => Ok(None),
        }
    }

    /// Renews a held lease. A lease that expired while the bus could not be reached is taken
    /// again if nobody else took it; only another holder's name means it is lost.
    pub async fn renew(&self, zone: &str, revision: u64) -> Result<Renewal, LeaseError> {
        if let Write::Done(revision) = self.write(zone, revision).await? {
            return Ok(Renewal::Renewed(revision));
        }
        match self.entry(zone).await? {
            Some(entry) if entry.operation == kv::Operation::Put => {
                let holder = holder_of(&entry);
                if holder == self.owner {
                    Ok(self
                        .take_over(zone, entry.revision)
                        .await?
                        .map_or_else(Renewal::lost_to_unknown, Renewal::Renewed))
                } else {
                    Ok(Renewal::Lost { holder })
                }
            }
            _ => Ok(self
                .acquire(zone)
                .await?
                .map_or_else(Renewal::lost_to_unknown, Renewal::Renewed)),
        }
    }

    async fn take_over(&self, zone: &str, revision: u64) -> Result<Option<u64>, LeaseError> {
        Ok(match self.write(zone, revision).await? {
            Write::Done(revision) => Some(revision),
            // Someone wrote in between: theirs now.
            Write::Conflict => None,
        })
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

    /// Says this collector is alive for one more TTL.
    pub async fn heartbeat(&self) -> Result<(), LeaseError> {
        let subject = self.subject(&member_key(&self.owner));
        let mut headers = HeaderMap::new();
        headers.insert(NATS_MESSAGE_TTL, self.ttl_secs.to_string().as_str());
        self.bus
            .js
            .publish_with_headers(subject, headers, Bytes::from(self.owner.clone()))
            .await
            .map_err(|e| LeaseError(format!("heartbeat: {e}")))?
            .await
            .map_err(|e| LeaseError(format!("heartbeat: {e}")))?;
        Ok(())
    }

    /// Takes this collector off the member list (a clean stop), so the others' shares grow now
    /// rather than one TTL later.
    pub async fn leave(&self) {
        if let Err(e) = self.store.delete(member_key(&self.owner)).await {
            tracing::debug!(error = %e, "leaving the member list failed; the entry expires on its own");
        }
    }

    /// How many collectors are alive (this one included, even before its first heartbeat).
    pub async fn members(&self) -> Result<usize, LeaseError> {
        let filter = format!("{}{MEMBER_PREFIX}>", self.store.prefix);
        let mut info = self
            .store
            .stream
            .info_with_subjects(filter)
            .await
            .map_err(|e| LeaseError(format!("listing collectors: {e}")))?;
        let mut subjects = Vec::new();
        while let Some(subject) = info.next().await {
            let (subject, _) =
                subject.map_err(|e| LeaseError(format!("listing collectors: {e}")))?;
            subjects.push(subject);
        }
        let ours = member_key(&self.owner);
        let mut alive = 1;
        for subject in subjects {
            let Some(key) = subject.strip_prefix(&self.store.prefix) else {
                continue;
            };
            if key == ours {
                continue;
            }
            // A member that left or expired leaves a marker until it is cleaned up.
            if self
                .entry(key)
                .await?
                .is_some_and(|e| e.operation == kv::Operation::Put)
            {
                alive += 1;
            }
        }
        Ok(alive)
    }

    /// Yields the id of every zone whose lease is released or expires from now on (its delete
    /// marker), so a collector with room takes it without waiting for its next claim round.
    /// Ends when the bus connection does; claim rounds go on without it.
    pub async fn freed(&self) -> Result<impl futures::Stream<Item = String> + use<>, LeaseError> {
        let watch = self
            .store
            .watch_all()
            .await
            .map_err(|e| LeaseError(format!("watching leases: {e}")))?;
        Ok(watch.filter_map(|entry| async move {
            let entry = entry.ok()?;
            (entry.operation != kv::Operation::Put && !entry.key.starts_with(MEMBER_PREFIX))
                .then_some(entry.key)
        }))
    }

    fn subject(&self, key: &str) -> String {
        format!("{}{key}", self.store.prefix)
    }

    async fn entry(&self, key: &str) -> Result<Option<kv::Entry>, LeaseError> {
        self.store
            .entry(key)
            .await
            .map_err(|e| LeaseError(format!("reading {key}: {e}")))
    }

    /// Writes this process' name under `key` if the key's last revision is still `expected`
    /// (0: no message), with the lease TTL.
    async fn write(&self, key: &str, expected: u64) -> Result<Write, LeaseError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            expected.to_string().as_str(),
        );
        headers.insert(NATS_MESSAGE_TTL, self.ttl_secs.to_string().as_str());
        let published = self
            .bus
            .js
            .publish_with_headers(self.subject(key), headers, Bytes::from(self.owner.clone()))
            .await;
        let acked = match published {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match acked {
            Ok(ack) => Ok(Write::Done(ack.sequence)),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(Write::Conflict),
            Err(e) => Err(LeaseError(format!("writing the lease of {key}: {e}"))),
        }
    }
}

fn holder_of(entry: &kv::Entry) -> String {
    String::from_utf8_lossy(&entry.value).into_owned()
}

/// KV keys allow `[-/_=.a-zA-Z0-9]`; a name kept in a file may hold anything else.
fn member_key(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '=') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{MEMBER_PREFIX}{safe}")
}
