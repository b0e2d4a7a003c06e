//! One task per owned zone: open the token, onboard, then run the zone's collection method until
//! the zone changes, is removed, or the process stops. A zone's failures only ever delay itself.
//! What a method works with while it runs is in [`zone_run`](crate::zone_run).

use std::sync::Arc;

use rainlogs_bus::CancellationToken;
use rainlogs_cloudflare::ApiToken;
use rainlogs_schemas::events::Method;
use tokio::sync::watch;

use crate::health::{HealthReporter, Status};
use crate::journal::ZoneJournal;
use crate::onboarding;
use crate::registry::ZoneEntry;
use crate::zone_run::{Exit, Shared, ZoneRun, ZoneSignals};

/// Runs one zone until cancelled.
pub async fn run_zone(
    shared: Arc<Shared>,
    mut zone_rx: watch::Receiver<ZoneEntry>,
    cancel: CancellationToken,
    removed: CancellationToken,
) {
    let first = zone_rx.borrow_and_update().clone();
    let mut health = HealthReporter::new(shared.bus.clone(), &first.tenant, &first.zone_id);
    loop {
        let entry = zone_rx.borrow_and_update().clone();
        let signals = (&mut zone_rx, &cancel, &removed);
        let exit = run_once(&shared, entry, signals, &mut health).await;
        let delay = match exit {
            Exit::Cancelled => return,
            Exit::Reconfigure => continue,
            Exit::RetryAfter(delay) => delay,
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = zone_rx.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(delay) => {}
        }
    }
}

async fn run_once(
    shared: &Shared,
    entry: ZoneEntry,
    (zone_rx, cancel, removed): (
        &mut watch::Receiver<ZoneEntry>,
        &CancellationToken,
        &CancellationToken,
    ),
    health: &mut HealthReporter,
) -> Exit {
    let settings = &shared.settings;
    let token = match shared.keyring.open(
        &entry.token_key_id,
        &entry.tenant,
        &entry.zone_id,
        &entry.sealed_token,
    ) {
        Ok(token) => token,
        Err(e) => {
            health
                .report(
                    Status::Failing,
                    format!("cannot open the zone's sealed Cloudflare token: {e}"),
                    None,
                    None,
                )
                .await;
            return Exit::RetryAfter(settings.recheck);
        }
    };
    let client = shared.client.with_token(ApiToken::new(token.as_str()));
    drop(token);
    let plan = match onboarding::onboard(&client, &entry, shared.clock.now_unix()).await {
        Ok(plan) => plan,
        Err(failure) => {
            health
                .report(
                    failure.status,
                    failure.reason,
                    failure.plan.as_deref(),
                    None,
                )
                .await;
            return Exit::RetryAfter(if failure.transient {
                settings.retry_base
            } else {
                settings.recheck
            });
        }
    };
    health
        .report(
            plan.status,
            plan.reason.clone(),
            Some(&plan.plan),
            Some(plan.method),
        )
        .await;
    let journal = match ZoneJournal::open(
        &shared.bus,
        shared.cursors.clone(),
        &entry.tenant,
        &entry.zone_id,
        shared.settings.lease_ttl,
    )
    .await
    {
        Ok(journal) => journal,
        Err(e) => {
            tracing::warn!(zone = %entry.zone_id, error = %e, "cannot open the zone's journal");
            return Exit::RetryAfter(settings.retry_base);
        }
    };
    let method = plan.method;
    let signals = ZoneSignals {
        zone_rx,
        cancel,
        removed,
    };
    let mut run = ZoneRun::new(shared, entry, client, plan, journal, health, signals);
    match method {
        Method::Logpull => crate::logpull::run(&mut run).await,
        Method::Graphql => crate::graphql::run(&mut run).await,
        Method::InstantLogs => crate::instant_logs::run(&mut run).await,
        Method::LogpushHttp | Method::LogpushS3 => crate::logpush::run(&mut run).await,
    }
}
