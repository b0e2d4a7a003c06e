//! Logpull collection (Enterprise): one window at a time, streamed straight into batches.
//!
//! Commit rule: a window is closed only after the body ended cleanly. A body that ends with
//! `Error streaming data`, is reset, stalls or carries truncated gzip abandons the attempt (no
//! close names it) and the whole window is fetched again under a new attempt id.

use std::time::Duration;

use futures::StreamExt;
use rainlogs_cloudflare::{CfError, Endpoint, LogpullItem, LogpullQuery, LogpullWindow};
use rainlogs_schemas::events::{GapReason, Method, Window};
use tracing::Instrument as _;

use crate::attempt::{Attempt, AttemptError};
use crate::backfill::BackfillWatch;
use crate::clock::at;
use crate::health::Status;
use crate::ledger::Ledger;
use crate::settings::secs;
use crate::zone_run::{Exit, NextWindow, ZoneRun, journal_exit};

/// What one fetch of a window came to.
enum Fetched {
    Closed { records: u64, bytes: u64 },
    Failed(CfError),
    Attempt(AttemptError),
}

/// What a `retention_expired` gap says: the window was not fetched while Cloudflare kept it.
const EXPIRED_DETAIL: &str =
    "Cloudflare keeps Logpull data for 7 days; this window was not fetched before it expired";

/// Oldest window start worth requesting at `now` (retention edge plus a safety margin).
fn earliest_start(now: i64, margin: i64) -> i64 {
    LogpullWindow::earliest_start(at(now)).unix_timestamp() + margin
}

/// Newest window end requested at `now`: `collector.logpull_delay` before it.
fn latest_end(now: i64, delay: i64) -> i64 {
    now - delay
}

pub async fn run(run: &mut ZoneRun<'_>) -> Exit {
    let shared = run.shared;
    let settings = &shared.settings;
    let dataset = run.plan.dataset;
    let size = settings.window_secs();
    let margin = secs(settings.retention_margin);
    let cursor = match run.journal.recover_cursor(dataset).await {
        Ok(cursor) => cursor,
        Err(e) => return journal_exit(run.zone(), &e, settings),
    };
    let now = run.now();
    let cursor = cursor.unwrap_or_else(|| {
        let floor =
            earliest_start(now, margin).max(run.plan.retention_enabled_at.unwrap_or(i64::MIN));
        Ledger::initial_cursor(now, secs(settings.backfill), floor, size)
    });
    let delay = settings.logpull_delay_secs();
    tracing::info!(zone = %run.zone(), dataset, cursor, delay_secs = delay, "Logpull collection starts");
    let ledger = Ledger::new(cursor, size).with_catch_up(settings.catch_up_secs());
    let mut backfill = BackfillWatch::new(shared, run.zone(), dataset, &ledger);
    collect(run, ledger, &mut backfill).await
}

/// The window loop, until the zone changes, goes away or a journal failure ends it.
async fn collect(
    run: &mut ZoneRun<'_>,
    mut ledger: Ledger,
    backfill: &mut BackfillWatch<'_>,
) -> Exit {
    let shared = run.shared;
    let settings = &shared.settings;
    let dataset = run.plan.dataset;
    let margin = secs(settings.retention_margin);
    let delay = settings.logpull_delay_secs();
    let mut retention_on_since = run.plan.retention_enabled_at;
    let mut failures: u32 = 0;
    loop {
        if let Some(exit) = run.take_changes() {
            return exit;
        }
        let now = run.now();
        let (latest, earliest) = (latest_end(now, delay), earliest_start(now, margin));
        // Measured from real time: data `delay` old is `delay` behind, not current.
        shared
            .metrics
            .lag(run.zone(), dataset, now - ledger.cursor());
        let step = ledger.next(latest, earliest);
        backfill
            .observe(run, &ledger, step, (latest, earliest), failures == 0)
            .await;
        let window = match run
            .next_window(&mut ledger, step, now, delay, EXPIRED_DETAIL)
            .await
        {
            NextWindow::Collect(window) => window,
            NextWindow::Again => continue,
            NextWindow::Exit(exit) => return exit,
        };
        if let Some(since) = retention_on_since
            && window.start < since
        {
            let detail = format!("Logpull log retention was off before {}", at(since));
            if let Err(exit) = run
                .skip_as_gap(
                    &mut ledger,
                    dataset,
                    window,
                    GapReason::RetentionFlagOff,
                    detail,
                )
                .await
            {
                return exit;
            }
            continue;
        }

        let span = run.window_span(window);
        match fetch(run, window).instrument(span).await {
            Fetched::Closed { records, bytes } => {
                let outcome = if records == 0 { "empty" } else { "complete" };
                run.shared
                    .metrics
                    .window_closed(run.zone(), dataset, outcome);
                run.shared
                    .metrics
                    .published(run.zone(), dataset, records, bytes);
                ledger.advance(window);
                ledger.grow();
                if failures > 0 {
                    failures = 0;
                    backfill
                        .report_recovered(run, latest - ledger.cursor())
                        .await;
                }
            }
            Fetched::Attempt(AttemptError::Journal(e)) => {
                return journal_exit(run.zone(), &e, settings);
            }
            Fetched::Attempt(AttemptError::RecordTooLarge { bytes }) => {
                let detail = format!("a record of {bytes} bytes cannot be carried in one event");
                if let Err(exit) = run
                    .skip_as_gap(&mut ledger, dataset, window, GapReason::Refused, detail)
                    .await
                {
                    return exit;
                }
            }
            Fetched::Failed(error) => {
                run.shared.metrics.abandoned(run.zone(), dataset);
                match handle_failure(
                    run,
                    &mut ledger,
                    window,
                    error,
                    &mut failures,
                    &mut retention_on_since,
                )
                .await
                {
                    Ok(None) => {}
                    Ok(Some(delay)) => {
                        if let Some(exit) = run.idle(delay).await {
                            return exit;
                        }
                    }
                    Err(exit) => return exit,
                }
            }
        }
    }
}

/// Streams one window into batches under a fresh attempt.
async fn fetch(run: &mut ZoneRun<'_>, window: Window) -> Fetched {
    let shared = run.shared;
    let settings = &shared.settings;
    let logpull_window = match LogpullWindow::new(at(window.start), at(window.end)) {
        Ok(w) => w,
        Err(e) => return Fetched::Failed(e),
    };
    let query = LogpullQuery::new(run.zone(), logpull_window, run.plan.fields.clone());
    let received = run.client.logpull_received(&query).await;
    run.record_response(Endpoint::LogpullReceived, &received);
    let mut stream = match received {
        Ok(stream) => stream,
        Err(e) => return Fetched::Failed(e),
    };
    let mut attempt = Attempt::new(run.plan.dataset, window, settings.batch_bytes);
    tracing::debug!(zone = %run.zone(), start = window.start, end = window.end, attempt = %attempt.id, "fetching window");
    while let Some(item) = stream.next().await {
        match item {
            Ok(LogpullItem::Line(line)) => {
                if let Err(e) = attempt.push(&mut run.journal, &line).await {
                    return Fetched::Attempt(e);
                }
            }
            Ok(LogpullItem::Complete(_)) => {
                let fields = run.plan.fields.to_query_value();
                return match attempt
                    .complete(&mut run.journal, Method::Logpull, 1, &fields)
                    .await
                {
                    Ok(totals) => Fetched::Closed {
                        records: totals.records,
                        bytes: totals.bytes,
                    },
                    Err(e) => Fetched::Attempt(e),
                };
            }
            Err(e) => {
                tracing::info!(zone = %run.zone(), start = window.start, attempt = %attempt.id, records = attempt.totals().records, error = %e, "attempt abandoned; the window will be fetched again");
                return Fetched::Failed(e);
            }
        }
    }
    Fetched::Failed(CfError::Protocol {
        endpoint: rainlogs_cloudflare::Endpoint::LogpullReceived,
        detail: "stream ended without a verdict".into(),
    })
}

/// Decides what a failed fetch means. `Ok(None)`: the window was settled (gap), go on;
/// `Ok(Some(delay))`: try the window again after `delay`; `Err(exit)`: leave the loop.
async fn handle_failure(
    run: &mut ZoneRun<'_>,
    ledger: &mut Ledger,
    window: Window,
    error: CfError,
    failures: &mut u32,
    retention_on_since: &mut Option<i64>,
) -> Result<Option<Duration>, Exit> {
    let shared = run.shared;
    let settings = &shared.settings;
    let dataset = run.plan.dataset;
    let zone = run.zone().to_owned();
    let settled = match &error {
        CfError::RetentionDisabled { message } => {
            // Cloudflare kept nothing for this window. Switch retention back on if allowed.
            let now = run.now();
            match run.client.set_retention_flag(&zone, true).await {
                Ok(true) => {
                    *retention_on_since = Some(now);
                    run.report(
                        Status::Degraded,
                        format!("Logpull log retention had been switched off; switched it back on at {}; windows before that are retention_flag_off gaps", at(now)),
                    )
                    .await;
                }
                _ => {
                    run.report(
                        Status::Failing,
                        "Logpull log retention is off and this token cannot switch it on (it needs Logs Edit): enable it in the dashboard; windows are recorded as retention_flag_off gaps meanwhile",
                    )
                    .await;
                }
            }
            Some((
                GapReason::RetentionFlagOff,
                format!("Cloudflare: {message}"),
            ))
        }
        CfError::BadQuery { message, .. } if message.contains("too early") => Some((
            GapReason::RetentionExpired,
            format!("Cloudflare no longer serves this window: {message}"),
        )),
        CfError::LogpullBlockedByMetadataBoundary { .. } | CfError::NotEntitled { .. } => {
            run.report(
                Status::Degraded,
                format!("Logpull refused ({error}); choosing another method"),
            )
            .await;
            if let Err(e) = run
                .close_gap(
                    dataset,
                    window,
                    GapReason::Refused,
                    format!("Logpull refused: {error}"),
                )
                .await
            {
                return Err(journal_exit(&zone, &e, settings));
            }
            ledger.advance(window);
            // Onboarding again picks the fallback method for this plan or boundary.
            return Err(Exit::Reconfigure);
        }
        _ => None,
    };
    if let Some((reason, detail)) = settled {
        if let Err(e) = run.close_gap(dataset, window, reason, detail).await {
            return Err(journal_exit(&zone, &e, settings));
        }
        ledger.advance(window);
        return Ok(None);
    }

    *failures += 1;
    match &error {
        CfError::Auth { .. } => {
            run.report(
                Status::Failing,
                format!("Cloudflare refuses the zone's token for Logpull ({error}); windows wait for a valid token and become retention_expired gaps after 7 days"),
            )
            .await;
            Ok(Some(settings.recheck))
        }
        CfError::RequestTimeout { .. } => {
            ledger.shrink();
            run.report(
                Status::Degraded,
                format!(
                    "Logpull timed out (HTTP 408); window size reduced to {} s",
                    ledger.granularity()
                ),
            )
            .await;
            Ok(Some(settings.backoff(*failures - 1)))
        }
        e if e.is_retryable() => {
            if *failures >= 3 {
                run.report(
                    Status::Degraded,
                    format!("Logpull keeps failing ({failures} tries for the window starting {}): {error}", at(window.start)),
                )
                .await;
            }
            let delay = settings.retry_delay(*failures - 1, e.retry_after());
            Ok(Some(delay))
        }
        _ => {
            run.report(
                Status::Failing,
                format!("Cloudflare refuses the Logpull query: {error}; the window is tried again in {:?}", settings.recheck),
            )
            .await;
            Ok(Some(settings.recheck))
        }
    }
}
