//! What a collection method works with while it collects one zone: the [`ZoneRun`] (the zone's
//! entry, token client, plan, journal and health, plus how it hears of changes and shutdown),
//! the [`Exit`] a method loop ends with, and the decisions every method shares.
//!
//! The method modules ([`logpull`](crate::logpull), [`graphql`](crate::graphql),
//! [`instant_logs`](crate::instant_logs)) and [`backfill`](crate::backfill) depend on this
//! module; [`zone`](crate::zone), which drives a zone and picks its method, depends on them.
//! Nothing here knows the methods, so the dependencies only point one way.

use std::time::Duration;

use rainlogs_bus::async_nats::jetstream::kv;
use rainlogs_bus::{Bus, CancellationToken};
use rainlogs_cloudflare::{CfError, CloudflareClient, Endpoint, TokenClient};
use rainlogs_schemas::events::{GapReason, Window, WindowClosed, WindowOutcome};
use rainlogs_tokens::TokenKeyring;
use tokio::sync::watch;
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::health::{HealthReporter, Status};
use crate::journal::{JournalError, ZoneJournal};
use crate::ledger::{Ledger, Step};
use crate::metrics::CollectorMetrics;
use crate::onboarding::ZonePlan;
use crate::registry::ZoneEntry;
use crate::settings::CollectorOptions;

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

/// How a zone task hears that its zone changed or that it must stop.
pub struct ZoneSignals<'a> {
    /// The zone's entry as the supervisor last saw it; the sender is dropped when the zone goes.
    pub zone_rx: &'a mut watch::Receiver<ZoneEntry>,
    /// Fires when the process stops or the zone is no longer ours.
    pub cancel: &'a CancellationToken,
    /// Fires (before `cancel`) when the zone was removed.
    pub removed: &'a CancellationToken,
}

/// What a pull method's window loop does after [`ZoneRun::next_window`].
#[derive(Debug)]
pub enum NextWindow {
    /// Fetch this window.
    Collect(Window),
    /// Nothing to fetch on this turn (the loop waited, or closed a window as a gap): turn again.
    Again,
    /// Leave the method loop.
    Exit(Exit),
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
    removed: &'a CancellationToken,
    /// Collector time at which this task saw the zone paused.
    paused_since: Option<i64>,
}

impl<'a> ZoneRun<'a> {
    /// The state for an onboarded zone. A zone that is paused already counts as paused from
    /// now: its entry does not say since when.
    pub fn new(
        shared: &'a Shared,
        entry: ZoneEntry,
        client: TokenClient,
        plan: ZonePlan,
        journal: ZoneJournal,
        health: &'a mut HealthReporter,
        signals: ZoneSignals<'a>,
    ) -> Self {
        let paused_since = entry.paused.then(|| shared.clock.now_unix());
        Self {
            shared,
            entry,
            client,
            plan,
            journal,
            health,
            zone_rx: signals.zone_rx,
            cancel: signals.cancel,
            removed: signals.removed,
            paused_since,
        }
    }
}

impl ZoneRun<'_> {
    /// The span a window's batches and close are published in: the root of the window's trace,
    /// which the archiver and the sealer continue from the messages' headers.
    pub fn window_span(&self, window: Window) -> tracing::Span {
        tracing::info_span!(
            "collector.window",
            zone = %self.zone(),
            dataset = self.plan.dataset,
            start = window.start,
            end = window.end,
        )
    }

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
            || latest.fields != self.entry.fields
            || latest.push_source != self.entry.push_source;
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

    /// Whether the task stops because the zone was removed (not lost or handed over).
    pub fn is_removed(&self) -> bool {
        self.removed.is_cancelled()
    }

    pub fn is_paused(&self) -> bool {
        self.paused_since.is_some()
    }

    /// Whether a window ending at `end` falls into a pause the operator asked for.
    pub fn paused_at(&self, end: i64) -> bool {
        self.paused_since.is_some_and(|p| end > p)
    }

    /// What a pull method (Logpull, GraphQL) does with the `step` its ledger chose at `now`,
    /// before anything is fetched. The same for every pull method, so a zone behaves the same
    /// whichever method its plan allows:
    ///
    /// * nothing due yet: wait until the next window is due, `ready_after` seconds after its
    ///   end (at most `tick`, and waking early on a zone change or shutdown);
    /// * a window Cloudflare no longer serves: a `retention_expired` gap saying
    ///   `expired_detail`;
    /// * a window inside an operator's pause: a `paused` gap (the time is not fetched later);
    /// * otherwise the window to fetch.
    ///
    /// A journal failure while closing a gap ends the loop like any other journal failure.
    pub async fn next_window(
        &mut self,
        ledger: &mut Ledger,
        step: Step,
        now: i64,
        ready_after: i64,
        expired_detail: &str,
    ) -> NextWindow {
        let dataset = self.plan.dataset;
        let window = match step {
            Step::Wait => {
                let due = ledger.window_end(ledger.cursor()) + ready_after;
                let until_due = Duration::from_secs(u64::try_from(due - now).unwrap_or(0).max(1));
                return match self.idle(until_due.min(self.shared.settings.tick)).await {
                    Some(exit) => NextWindow::Exit(exit),
                    None => NextWindow::Again,
                };
            }
            Step::Expired(window) => {
                return self
                    .skip_as_gap(
                        ledger,
                        dataset,
                        window,
                        GapReason::RetentionExpired,
                        expired_detail,
                    )
                    .await
                    .map_or_else(NextWindow::Exit, |()| NextWindow::Again);
            }
            Step::Collect(window) => window,
        };
        if self.paused_at(window.end) {
            return self
                .skip_as_gap(
                    ledger,
                    dataset,
                    window,
                    GapReason::Paused,
                    "collection paused by an operator",
                )
                .await
                .map_or_else(NextWindow::Exit, |()| NextWindow::Again);
        }
        NextWindow::Collect(window)
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
                pushed_through: None,
                late: false,
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
