//! One task per owned zone: open the token, onboard, then run the zone's collection method until
//! the zone changes, is removed, or the process stops. A zone's failures only ever delay itself.

use std::sync::Arc;
use std::time::Duration;

use rainlogs_bus::async_nats::jetstream::kv;
use rainlogs_bus::{Bus, CancellationToken};
use rainlogs_cloudflare::{ApiToken, CfError, CloudflareClient, Endpoint, TokenClient};
use rainlogs_schemas::events::{GapReason, Window, WindowClosed, WindowOutcome};
use tokio::sync::watch;
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::health::{HealthReporter, Status};
use crate::journal::{JournalError, ZoneJournal};
use crate::ledger::Ledger;
use crate::metrics::CollectorMetrics;
use crate::onboarding::{self, ZonePlan};
use crate::registry::ZoneEntry;
use crate::settings::CollectorOptions;
use rainlogs_tokens::TokenKeyring;

/// What every zone task shares.
pub struct Shared {
    pub bus: Bus,
    pub cursors: kv::Store,
    pub client: CloudflareClient,
    pub keyring: TokenKeyring,
    pub clock: SharedClock,
    pub settings: CollectorOptions,
    pub metrics: CollectorMetrics,
}

/// Why a method loop returned.
#[derive(Debug)]
pub enum Exit {
    /// The process stops or the zone is no longer ours.
    Cancelled,
    /// Token, method or fields changed: onboard again.
    Reconfigure,
    /// Something failed; start over after this delay.
    RetryAfter(Duration),
}

/// Why a wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    Elapsed,
    Changed,
    Cancelled,
}

/// The state a method loop works with.
pub struct ZoneRun<'a> {
    pub shared: &'a Shared,
    pub entry: ZoneEntry,
    pub client: TokenClient,
    pub plan: ZonePlan,
    pub journal: ZoneJournal,
    pub health: &'a mut HealthReporter,
    zone_rx: &'a mut watch::Receiver<ZoneEntry>,
    cancel: &'a CancellationToken,
    /// Collector time at which this task saw the zone paused.
    paused_since: Option<i64>,
}

impl ZoneRun<'_> {
    pub fn zone(&self) -> &str {
        &self.entry.zone_id
    }

    pub fn now(&self) -> i64 {
        self.shared.clock.now_unix()
    }

    /// Sleeps up to `delay`, waking early on a zone change or cancellation.
    pub async fn wait(&mut self, delay: Duration) -> Wake {
        tokio::select! {
            () = self.cancel.cancelled() => Wake::Cancelled,
            changed = self.zone_rx.changed() => match changed {
                Ok(()) => Wake::Changed,
                // The supervisor dropped the sender: the zone is gone.
                Err(_) => Wake::Cancelled,
            },
            () = tokio::time::sleep(delay) => Wake::Elapsed,
        }
    }

    /// Applies pending zone changes. `Some(exit)` when the loop must stop.
    pub fn take_changes(&mut self) -> Option<Exit> {
        if self.cancel.is_cancelled() {
            return Some(Exit::Cancelled);
        }
        // Compared by value: `changed()` in `wait` already marked the newest value as seen.
        let latest = self.zone_rx.borrow_and_update().clone();
        if latest == self.entry {
            return None;
        }
        let reconfigure = latest.sealed_token != self.entry.sealed_token
            || latest.token_key_id != self.entry.token_key_id
            || latest.method != self.entry.method
            || latest.fields != self.entry.fields;
        if latest.pulls != self.entry.pulls {
            // The wait that `wait` just ended was the point: due windows are collected now.
            // Windows already closed are not fetched again (each window is archived once).
            tracing::info!(zone = %latest.zone_id, paused = latest.paused,
                "pull requested; collecting the windows that are due without waiting");
        }
        match (latest.paused, self.paused_since) {
            (true, None) => self.paused_since = Some(self.now()),
            (false, Some(_)) => self.paused_since = None,
            _ => {}
        }
        self.entry = latest;
        reconfigure.then_some(Exit::Reconfigure)
    }

    /// Waits a while unless something happened; a loop calls it when nothing is due.
    pub async fn idle(&mut self, delay: Duration) -> Option<Exit> {
        match self.wait(delay).await {
            Wake::Cancelled => Some(Exit::Cancelled),
            Wake::Changed => self.take_changes(),
            Wake::Elapsed => None,
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused_since.is_some()
    }

    /// Whether a window ending at `end` falls into a pause the operator asked for.
    pub fn paused_at(&self, end: i64) -> bool {
        self.paused_since.is_some_and(|p| end > p)
    }

    /// Ends a window that is not fetched (expired, paused, refused…) as a gap and moves the
    /// ledger past it; on a journal failure, the exit the zone task takes.
    pub async fn skip_as_gap(
        &mut self,
        ledger: &mut Ledger,
        dataset: &str,
        window: Window,
        reason: GapReason,
        detail: impl Into<String>,
    ) -> Result<(), Exit> {
        if let Err(e) = self.close_gap(dataset, window, reason, detail).await {
            return Err(journal_exit(self.zone(), &e, &self.shared.settings));
        }
        ledger.advance(window);
        Ok(())
    }

    /// Closes a window as a gap.
    pub async fn close_gap(
        &mut self,
        dataset: &str,
        window: Window,
        reason: GapReason,
        detail: impl Into<String>,
    ) -> Result<(), JournalError> {
        let detail = detail.into();
        tracing::info!(zone = %self.entry.zone_id, dataset, start = window.start, end = window.end, ?reason, %detail, "window closed as a gap");
        self.journal
            .close(WindowClosed {
                dataset: dataset.to_owned(),
                window,
                attempt: Uuid::new_v4(),
                outcome: WindowOutcome::Gap { reason, detail },
            })
            .await?;
        self.shared
            .metrics
            .window_closed(&self.entry.zone_id, dataset, "gap");
        Ok(())
    }

    /// Counts a Cloudflare answer and records the breaker state it left.
    pub fn record_response<T>(&self, endpoint: Endpoint, result: &Result<T, CfError>) {
        // GraphQL and the Instant Logs socket are not zone paths: their breaker is the token's.
        let breaker_zone = match endpoint {
            Endpoint::Graphql | Endpoint::InstantLogsSocket => None,
            _ => Some(self.zone()),
        };
        self.shared.metrics.response(
            self.zone(),
            endpoint,
            result.as_ref().map(|_| ()),
            self.client.breaker_state(endpoint, breaker_zone),
        );
    }

    pub async fn report(&mut self, status: Status, reason: impl Into<String>) {
        let plan = self.plan.plan.clone();
        let method = self.plan.method;
        self.health
            .report(status, reason, Some(&plan), Some(method))
            .await;
    }

    /// Back to the onboarding verdict (after a problem cleared).
    pub async fn report_plan(&mut self) {
        let (status, reason) = (self.plan.status, self.plan.reason.clone());
        self.report(status, reason).await;
    }
}

/// Runs one zone until cancelled.
pub async fn run_zone(
    shared: Arc<Shared>,
    mut zone_rx: watch::Receiver<ZoneEntry>,
    cancel: CancellationToken,
) {
    let first = zone_rx.borrow_and_update().clone();
    let mut health = HealthReporter::new(shared.bus.clone(), &first.tenant, &first.zone_id);
    loop {
        let entry = zone_rx.borrow_and_update().clone();
        let exit = run_once(&shared, entry, &mut zone_rx, &cancel, &mut health).await;
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
    zone_rx: &mut watch::Receiver<ZoneEntry>,
    cancel: &CancellationToken,
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
    let paused_since = entry.paused.then(|| shared.clock.now_unix());
    let method = plan.method;
    let mut run = ZoneRun {
        shared,
        entry,
        client,
        plan,
        journal,
        health,
        zone_rx,
        cancel,
        paused_since,
    };
    match method {
        rainlogs_schemas::events::Method::Logpull => crate::logpull::run(&mut run).await,
        rainlogs_schemas::events::Method::Graphql => crate::graphql::run(&mut run).await,
        rainlogs_schemas::events::Method::InstantLogs => crate::instant_logs::run(&mut run).await,
    }
}

/// How a journal failure ends a method loop.
pub fn journal_exit(zone: &str, error: &JournalError, settings: &CollectorOptions) -> Exit {
    match error {
        JournalError::Fenced { .. } => {
            tracing::warn!(zone, %error, "fenced out of the zone's subject; re-reading it");
            Exit::RetryAfter(settings.retry_base)
        }
        JournalError::Bus(_) => {
            tracing::warn!(
                zone,
                %error,
                "JetStream did not take the zone's events within the lease TTL; collection restarts from the last closed window (Logpull and GraphQL fetch the rest again; a live tail declares the time until it is back as a gap)"
            );
            Exit::RetryAfter(settings.retry_base)
        }
    }
}
