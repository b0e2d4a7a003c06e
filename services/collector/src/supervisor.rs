//! The collector process: replays `rl.ctl.>` into the zone registry, takes leases on zones, runs
//! one task per owned zone and tells each task when its zone changes.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use rainlogs_bus::{Bus, CancellationToken};
use rainlogs_cloudflare::CloudflareClient;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::clock::SharedClock;
use crate::identity::Identity;
use crate::journal;
use crate::lease::{Leases, Renewal};
use crate::metrics::CollectorMetrics;
use crate::registry::{ZoneEntry, ZoneRegistry};
use crate::settings::CollectorOptions;
use crate::zone::run_zone;
use crate::zone_run::Shared;
use rainlogs_tokens::TokenKeyring;

#[derive(Debug, thiserror::Error)]
#[error("collector: {0}")]
pub struct CollectorError(pub String);

/// Everything a collector process needs; `run` builds it from the service context.
pub struct CollectorDeps {
    pub bus: Bus,
    pub settings: CollectorOptions,
    pub keyring: TokenKeyring,
    pub clock: SharedClock,
    pub meter: opentelemetry::metrics::Meter,
    pub shutdown: CancellationToken,
    /// The name this process writes on zone leases (see [`Identity`]).
    pub identity: Identity,
}

struct OwnedZone {
    revision: u64,
    task: tokio::task::Id,
    updates: watch::Sender<ZoneEntry>,
    cancel: CancellationToken,
    /// Fired, before `cancel`, when the zone is removed (not when it is handed over or lost):
    /// a method that set something up at Cloudflare takes it down.
    removed: CancellationToken,
    /// Stopping to give the zone to a collector with fewer zones; its lease is released when
    /// the task has ended, so the next owner never overlaps it.
    handing_over: bool,
}

/// Zones a freed-lease watch reports; `None` once the watch ended (it is opened again on the
/// next lease round).
type Freed = std::pin::Pin<Box<dyn futures::Stream<Item = String> + Send>>;

/// Runs until `deps.shutdown` fires. `on_ready` is called once the control stream is replayed.
pub async fn run_collector(
    deps: CollectorDeps,
    on_ready: impl FnOnce(),
) -> Result<(), CollectorError> {
    let err = |what: &str, e: &dyn std::fmt::Display| CollectorError(format!("{what}: {e}"));
    let cursors = journal::cursor_store(&deps.bus)
        .await
        .map_err(|e| err("cursor store", &e))?;
    // Whether a restart can take zones back at once depends on this: say it.
    tracing::info!(
        name = %deps.identity.name,
        kept = deps.identity.kept,
        "collector name on zone leases (kept: the one earlier runs on this data directory used)"
    );
    let leases = Leases::open(
        &deps.bus,
        deps.settings.lease_ttl,
        deps.identity.name.clone(),
    )
    .await
    .map_err(|e| err("lease store", &e))?;
    let client = CloudflareClient::new(deps.settings.client.clone())
        .map_err(|e| err("Cloudflare client", &e))?;
    let shared = Arc::new(Shared {
        bus: deps.bus.clone(),
        cursors,
        client,
        keyring: deps.keyring,
        clock: deps.clock,
        metrics: CollectorMetrics::new(&deps.meter),
        settings: deps.settings,
    });

    let mut control = rainlogs_bus::control_feed(&deps.bus)
        .await
        .map_err(|e| err("control stream", &e))?;
    let mut owner = Owner {
        shared: &shared,
        leases: &leases,
        registry: ZoneRegistry::default(),
        owned: HashMap::new(),
        tasks: JoinSet::new(),
        share: usize::MAX,
    };
    let mut on_ready = Some(on_ready);
    let mut freed: Option<Freed> = None;
    let mut renew = tokio::time::interval(
        (shared.settings.lease_ttl / 3).max(std::time::Duration::from_millis(50)),
    );
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        let caught_up = control.caught_up();
        if caught_up && let Some(ready) = on_ready.take() {
            ready();
            owner.lease_round().await;
        }
        tokio::select! {
            biased;
            () = deps.shutdown.cancelled() => break,
            next = control.next() => match next {
                Some(event) => {
                    match event {
                        Ok(event) => owner.registry.apply(&event),
                        Err(e) => tracing::error!(error = %e, "undecodable control event"),
                    }
                    if control.caught_up() && on_ready.is_none() {
                        owner.sync_zones().await;
                        owner.claim_zones().await;
                    }
                }
                None => return Err(CollectorError("control stream ended".into())),
            },
            _ = renew.tick(), if caught_up => {
                owner.lease_round().await;
                if freed.is_none() {
                    freed = leases.freed().await.ok().map(|s| Box::pin(s) as Freed);
                }
            }
            zone = next_freed(&mut freed), if caught_up && freed.is_some() => match zone {
                Some(zone) => owner.claim_freed(&zone).await,
                None => freed = None,
            },
            Some(joined) = owner.tasks.join_next_with_id(), if !owner.tasks.is_empty() => {
                // Zone tasks end when cancelled (removed, lost or handed over) or on a panic;
                // either way the zone's lease goes, so the next claim round (here or elsewhere)
                // starts it afresh.
                let id = match &joined {
                    Ok((id, ())) => *id,
                    Err(e) => {
                        tracing::error!(error = %e, "a zone task failed");
                        e.id()
                    }
                };
                owner.task_ended(id).await;
            }
        }
    }

    for zone in owner.owned.values() {
        zone.cancel.cancel();
    }
    while owner.tasks.join_next().await.is_some() {}
    for (zone, lease) in owner.owned.drain() {
        leases.release(&zone, lease.revision).await;
    }
    leases.leave().await;
    Ok(())
}

async fn next_freed(freed: &mut Option<Freed>) -> Option<String> {
    match freed {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// The zones this process collects, and the rules for taking and giving them.
struct Owner<'a> {
    shared: &'a Arc<Shared>,
    leases: &'a Leases,
    registry: ZoneRegistry,
    owned: HashMap<String, OwnedZone>,
    tasks: JoinSet<()>,
    /// How many zones this process should hold: the registered zones divided by the live
    /// collectors, rounded up (so the shares always cover every zone).
    share: usize,
}

impl Owner<'_> {
    /// Every lease period: say this process is alive, renew, recompute the fair share, give one
    /// zone away if above it, and take free zones while below it.
    async fn lease_round(&mut self) {
        if let Err(e) = self.leases.heartbeat().await {
            tracing::warn!(error = %e, "cannot tell other collectors this one is alive; retrying");
        }
        self.renew_leases().await;
        self.share = match self.leases.members().await {
            Ok(members) => fair_share(self.registry.len(), members),
            // Unknown: rather collect too much than leave a zone uncollected.
            Err(e) => {
                tracing::warn!(error = %e, "cannot count the live collectors; claiming every free zone");
                usize::MAX
            }
        };
        self.hand_over_one().await;
        self.claim_zones().await;
    }

    /// Passes registry changes to running zone tasks and stops the tasks of removed zones.
    async fn sync_zones(&mut self) {
        let mut removed = Vec::new();
        for (zone, task) in &self.owned {
            match self.registry.get(zone) {
                Some(entry) => {
                    task.updates.send_if_modified(|current| {
                        if current == entry {
                            false
                        } else {
                            *current = entry.clone();
                            true
                        }
                    });
                }
                None => removed.push(zone.clone()),
            }
        }
        for zone in removed {
            if let Some(task) = self.owned.remove(&zone) {
                tracing::info!(zone, "zone removed; its collection stops");
                task.removed.cancel();
                task.cancel.cancel();
                self.leases.release(&zone, task.revision).await;
            }
        }
    }

    /// Takes the leases of registered zones nobody holds, while below the fair share.
    async fn claim_zones(&mut self) {
        let free: Vec<ZoneEntry> = self
            .registry
            .all()
            .filter(|entry| !self.owned.contains_key(&entry.zone_id))
            .cloned()
            .collect();
        for entry in free {
            if self.owned.len() >= self.share {
                return;
            }
            self.claim(&entry).await;
        }
    }

    /// A lease was released or expired: take the zone now if this process has room.
    async fn claim_freed(&mut self, zone: &str) {
        if self.owned.len() >= self.share || self.owned.contains_key(zone) {
            return;
        }
        if let Some(entry) = self.registry.get(zone).cloned() {
            self.claim(&entry).await;
        }
    }

    async fn claim(&mut self, entry: &ZoneEntry) {
        match self.leases.acquire(&entry.zone_id).await {
            Ok(Some(revision)) => {
                tracing::info!(zone = %entry.zone_id, owner = self.leases.owner(), "collecting zone");
                let (updates, zone_rx) = watch::channel(entry.clone());
                let cancel = CancellationToken::new();
                let removed = CancellationToken::new();
                let task = self
                    .tasks
                    .spawn(run_zone(
                        Arc::clone(self.shared),
                        zone_rx,
                        cancel.clone(),
                        removed.clone(),
                    ))
                    .id();
                self.owned.insert(
                    entry.zone_id.clone(),
                    OwnedZone {
                        task,
                        revision,
                        updates,
                        cancel,
                        removed,
                        handing_over: false,
                    },
                );
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(zone = %entry.zone_id, error = %e, "cannot take the zone's lease")
            }
        }
    }

    /// Above the fair share (another collector joined): stop one zone, preferring those whose
    /// method can fetch the hand-over time again (Logpull, GraphQL) over a live tail, which
    /// cannot. One per round, so shares settle without every process shedding at once.
    async fn hand_over_one(&mut self) {
        let active = self.owned.values().filter(|z| !z.handing_over).count();
        if active <= self.share || self.owned.values().any(|z| z.handing_over) {
            return;
        }
        let choice = self
            .owned
            .iter()
            .filter(|(_, z)| !z.handing_over)
            .map(|(zone, _)| {
                let live = self
                    .registry
                    .get(zone)
                    .is_some_and(|e| e.method == rainlogs_schemas::events::Method::InstantLogs);
                (live, zone.clone())
            })
            .min();
        if let Some((_, zone)) = choice
            && let Some(task) = self.owned.get_mut(&zone)
        {
            tracing::info!(
                zone,
                share = self.share,
                held = active,
                "handing the zone to a collector with fewer zones"
            );
            task.handing_over = true;
            task.cancel.cancel();
        }
    }

    async fn task_ended(&mut self, id: tokio::task::Id) {
        let ended = self
            .owned
            .iter()
            .find(|(_, z)| z.task == id)
            .map(|(zone, _)| zone.clone());
        if let Some((zone, task)) = ended.and_then(|zone| self.owned.remove_entry(&zone)) {
            self.leases.release(&zone, task.revision).await;
        }
    }

    async fn renew_leases(&mut self) {
        let mut lost = Vec::new();
        for (zone, task) in &mut self.owned {
            match self.leases.renew(zone, task.revision).await {
                Ok(Renewal::Renewed(revision)) => task.revision = revision,
                Ok(Renewal::Lost { holder }) => lost.push((zone.clone(), holder)),
                // The bus is away: nobody else can take the lease either, and the subject fence
                // stops a second writer anyway, so collection goes on and renewal is tried again.
                Err(e) => {
                    tracing::warn!(zone, error = %e, "lease renewal failed; collecting on and retrying")
                }
            }
        }
        for (zone, holder) in lost {
            if let Some(task) = self.owned.remove(&zone) {
                tracing::warn!(zone, %holder, "another collector holds the zone's lease now; stopping it here");
                task.cancel.cancel();
            }
        }
    }
}

/// The zones each of `members` live collectors should hold so that together they hold all.
fn fair_share(zones: usize, members: usize) -> usize {
    zones.div_ceil(members.max(1))
}

#[cfg(test)]
mod tests {
    use super::fair_share;

    #[test]
    fn shares_cover_every_zone() {
        assert_eq!(fair_share(0, 3), 0);
        assert_eq!(fair_share(2, 2), 1);
        assert_eq!(fair_share(3, 2), 2);
        assert_eq!(fair_share(5, 1), 5);
        assert_eq!(fair_share(5, 0), 5);
        for zones in 0..50 {
            for members in 1..8 {
                assert!(fair_share(zones, members) * members >= zones);
            }
        }
    }
}
