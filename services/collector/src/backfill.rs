//! A long backfill, followed for the operator: logged when it starts and ends and every
//! `backfill_report_every` in between, counted in metrics, and told in the zone's health. Shared
//! by the pull methods (Logpull, GraphQL), whose windows come from a [`Ledger`].

use std::time::Instant;

use crate::clock::at;
use crate::ledger::{Backfill, Ledger, Step, span};
use crate::settings::secs;
use crate::zone_run::{Shared, ZoneRun};

/// One zone dataset's backfill, if one runs. Dropping it (the zone task's method ends) clears
/// the remaining-windows gauge: whoever collects the zone next counts again.
pub struct BackfillWatch<'a> {
    shared: &'a Shared,
    zone: String,
    dataset: &'static str,
    progress: Option<Backfill>,
    /// The cursor when windows were last counted.
    counted: i64,
}

impl<'a> BackfillWatch<'a> {
    pub fn new(shared: &'a Shared, zone: &str, dataset: &'static str, ledger: &Ledger) -> Self {
        Self {
            shared,
            zone: zone.to_owned(),
            dataset,
            progress: None,
            counted: ledger.cursor(),
        }
    }

    /// Once per turn of the window loop, with the step the ledger chose: counts the windows
    /// closed since the last turn, and starts, reports or ends the backfill. Health is told
    /// only while nothing worse is (`healthy`).
    pub async fn observe(
        &mut self,
        run: &mut ZoneRun<'_>,
        ledger: &Ledger,
        step: Step,
        (latest, earliest): (i64, i64),
        healthy: bool,
    ) {
        if ledger.cursor() != self.counted {
            self.counted = ledger.cursor();
            if let Some(progress) = self.progress.as_mut() {
                progress.window_done();
                self.shared
                    .metrics
                    .backfill_window_done(&self.zone, self.dataset);
            }
        }
        let shared = run.shared;
        let settings = &shared.settings;
        let dataset = run.plan.dataset;
        let now = Instant::now();
        let behind = latest - ledger.cursor();
        match (self.progress.as_mut(), step) {
            (None, Step::Wait) => {}
            (None, _) => {
                if behind < secs(settings.backfill_report_after) {
                    return;
                }
                let progress = Backfill::start(ledger, latest, earliest, now);
                tracing::info!(
                    zone = %run.zone(),
                    dataset,
                    windows = progress.total(),
                    span_secs = progress.span(),
                    from = %at(progress.from()),
                    to = %at(latest),
                    "backfill starts: {} windows covering {} of logs",
                    progress.total(),
                    span(progress.span()),
                );
                shared
                    .metrics
                    .backfill_remaining(run.zone(), dataset, progress.remaining());
                if healthy {
                    let reason = format!("{}; {}", run.plan.reason, progress.describe(behind, now));
                    run.report(run.plan.status, reason).await;
                }
                self.progress = Some(progress);
            }
            (Some(progress), Step::Wait) => {
                let elapsed = progress.elapsed(now);
                tracing::info!(
                    zone = %run.zone(),
                    dataset,
                    windows = progress.done(),
                    elapsed_secs = elapsed.as_secs(),
                    "backfill done: {} windows in {}; the zone is current",
                    progress.done(),
                    span(secs(elapsed)),
                );
                shared.metrics.backfill_remaining(run.zone(), dataset, 0);
                self.progress = None;
                if healthy {
                    run.report_plan().await;
                }
            }
            (Some(progress), _) => {
                if healthy && progress.report_due(now, settings.backfill_report_every) {
                    progress.recount(ledger, latest, earliest);
                    progress.reported(now);
                    let text = progress.describe(behind, now);
                    tracing::info!(
                        zone = %run.zone(),
                        dataset,
                        done = progress.done(),
                        total = progress.total(),
                        rate_per_min = progress.rate_per_min(now).unwrap_or(0.0),
                        eta_secs = progress.eta(now).map(|eta| eta.as_secs()),
                        "{text}"
                    );
                    let reason = format!("{}; {text}", run.plan.reason);
                    run.report(run.plan.status, reason).await;
                }
                shared
                    .metrics
                    .backfill_remaining(run.zone(), dataset, progress.remaining());
            }
        }
    }

    /// After failures ended: the health the zone had before them, progress included.
    pub async fn report_recovered(&self, run: &mut ZoneRun<'_>, behind: i64) {
        match &self.progress {
            Some(progress) => {
                let reason = format!(
                    "{}; {}",
                    run.plan.reason,
                    progress.describe(behind, Instant::now())
                );
                run.report(run.plan.status, reason).await;
            }
            None => run.report_plan().await,
        }
    }
}

impl Drop for BackfillWatch<'_> {
    fn drop(&mut self) {
        if self.progress.is_some() {
            self.shared
                .metrics
                .backfill_remaining(&self.zone, self.dataset, 0);
        }
    }
}
