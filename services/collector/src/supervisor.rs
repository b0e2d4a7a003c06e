//! The collector process: replays `rl.ctl.>` into the zone registry, takes leases on zones, runs
//! one task per owned zone and tells each task when its zone changes.

use std::collections::HashMap;
use std::sync::Arc;

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
use crate::settings::CollectorSettings;
use crate::zone::{Shared, run_zone};
use rainlogs_tokens::TokenKeyring;

#[derive(Debug, thiserror::Error)]
#[error("collector: {0}")]
pub struct CollectorError(pub String);

/// Everything a collector process needs; `run` builds it from the service context.
pub struct CollectorDeps {
    pub bus: Bus,
    pub settings: CollectorSettings,
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
}

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
    let mut registry = ZoneRegistry::default();
    let mut on_ready = Some(on_ready);
    let mut owned: HashMap<String, OwnedZone> = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut renew = tokio::time::interval(
        (shared.settings.lease_ttl / 3).max(std::time::Duration::from_millis(50)),
    );
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        let caught_up = control.caught_up();
        if caught_up && let Some(ready) = on_ready.take() {
            ready();
            claim_zones(&shared, &leases, &registry, &mut owned, &mut tasks).await;
        }
        tokio::select! {
            biased;
            () = deps.shutdown.cancelled() => break,
            next = control.next() => match next {
                Some(event) => {
                    match event {
                        Ok(event) => registry.apply(&event),
                        Err(e) => tracing::error!(error = %e, "undecodable control event"),
                    }
                    if control.caught_up() && on_ready.is_none() {
                        sync_zones(&leases, &registry, &mut owned).await;
                        claim_zones(&shared, &leases, &registry, &mut owned, &mut tasks).await;
                    }
                }
                None => return Err(CollectorError("control stream ended".into())),
            },
            _ = renew.tick(), if caught_up => {
                renew_leases(&leases, &mut owned).await;
                claim_zones(&shared, &leases, &registry, &mut owned, &mut tasks).await;
            }
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                // Zone tasks end only when cancelled; one that ended on its own (a panic) gives
                // its zone back so the next claim round starts it afresh.
                let id = match &joined {
                    Ok((id, ())) => *id,
                    Err(e) => {
                        tracing::error!(error = %e, "a zone task failed");
                        e.id()
                    }
                };
                let ended = owned.iter().find(|(_, z)| z.task == id).map(|(zone, _)| zone.clone());
                if let Some(zone) = ended.and_then(|zone| owned.remove_entry(&zone)) {
                    leases.release(&zone.0, zone.1.revision).await;
                }
            }
        }
    }

    for zone in owned.values() {
        zone.cancel.cancel();
    }
    while tasks.join_next().await.is_some() {}
    for (zone, lease) in owned {
        leases.release(&zone, lease.revision).await;
    }
    Ok(())
}

/// Passes registry changes to running zone tasks and stops the tasks of removed zones.
async fn sync_zones(
    leases: &Leases,
    registry: &ZoneRegistry,
    owned: &mut HashMap<String, OwnedZone>,
) {
    let mut removed = Vec::new();
    for (zone, task) in owned.iter() {
        match registry.get(zone) {
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
        if let Some(task) = owned.remove(&zone) {
            tracing::info!(zone, "zone removed; its collection stops");
            task.cancel.cancel();
            leases.release(&zone, task.revision).await;
        }
    }
}

/// Takes the leases of registered zones nobody holds and starts their tasks.
async fn claim_zones(
    shared: &Arc<Shared>,
    leases: &Leases,
    registry: &ZoneRegistry,
    owned: &mut HashMap<String, OwnedZone>,
    tasks: &mut JoinSet<()>,
) {
    for entry in registry.all() {
        if owned.contains_key(&entry.zone_id) {
            continue;
        }
        match leases.acquire(&entry.zone_id).await {
            Ok(Some(revision)) => {
                tracing::info!(zone = %entry.zone_id, owner = leases.owner(), "collecting zone");
                let (updates, zone_rx) = watch::channel(entry.clone());
                let cancel = CancellationToken::new();
                let task = tasks
                    .spawn(run_zone(Arc::clone(shared), zone_rx, cancel.clone()))
                    .id();
                owned.insert(
                    entry.zone_id.clone(),
                    OwnedZone {
                        task,
                        revision,
                        updates,
                        cancel,
                    },
                );
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(zone = %entry.zone_id, error = %e, "cannot take the zone's lease")
            }
        }
    }
}

async fn renew_leases(leases: &Leases, owned: &mut HashMap<String, OwnedZone>) {
    let mut lost = Vec::new();
    for (zone, task) in owned.iter_mut() {
        match leases.renew(zone, task.revision).await {
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
        if let Some(task) = owned.remove(&zone) {
            tracing::warn!(zone, %holder, "another collector holds the zone's lease now; stopping it here");
            task.cancel.cancel();
        }
    }
}
