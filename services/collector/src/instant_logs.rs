//! Instant Logs collection (Business): a sampled live tail over one WebSocket session per zone.
//!
//! Windows follow the collector's clock and end on the window grid while the session is up.
//! When the session drops, the open window is cut at that moment and the time until the next
//! session is connected becomes one `disconnected` gap, so coverage stays contiguous and every
//! hole is explicit. Sessions are replaced before Cloudflare's 60-minute cap (at a window
//! boundary), a silent socket is detected by the client's ping deadline, and reconnects back off.
//! Records go to JetStream as they arrive (after at most [`LINGER`] to group them into batches):
//! batches name the planned window, and a cut only shortens the window its close names
//! (docs/EVENTS.md, "Windows and attempts").
//!
//! Delivery: at most once per record, and what reached JetStream survives the collector. A
//! collector that dies mid-window leaves batches without a close; the next owner of the zone
//! closes that window where the published records end (each batch says when its newest record
//! arrived), and the time until its own session is a `collector_outage` gap. Lost are only the
//! records of the last [`LINGER`] before the crash and the outage itself.

use std::time::Duration;

use rainlogs_bus::CancellationToken;
use rainlogs_cloudflare::{
    CfError, Endpoint, InstantLogsJobRequest, InstantLogsRecord, SessionClosed,
};
use rainlogs_schemas::events::{GapReason, Method, Window, WindowClosed, WindowOutcome};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use crate::attempt::{Attempt, AttemptError};
use crate::health::Status;
use crate::journal::{JournalError, UnclosedAttempt};
use crate::ledger::{Ledger, align_down};
use crate::zone_run::{Exit, ZoneRun, journal_exit};

enum SessionEvent {
    Records(Vec<InstantLogsRecord>),
    Closed(Option<SessionClosed>),
    Failed(CfError),
}

/// The longest a received record waits before it is published. Grouping what arrives within a
/// second keeps the number of batches (each held unacknowledged by the archiver until its window
/// closes) small on busy zones, and memory is bounded by the batch size either way.
pub const LINGER: Duration = Duration::from_secs(1);

/// How old the newest record of an unclosed attempt may be for the next owner to close it. The
/// archiver lets go of an attempt that saw no batch and no close for 30 minutes; closing one
/// after that would wait for batches it no longer holds, so older ones stay unclosed and their
/// time is part of the outage gap.
const CLOSE_UNCLOSED_WITHIN: i64 = 10 * 60;

/// The window being collected: its attempt publishes records as they arrive.
struct OpenWindow {
    attempt: Attempt,
    sample_interval: u64,
}

impl OpenWindow {
    fn new(run: &ZoneRun<'_>, grid: &Ledger, start: i64) -> Self {
        let window = Window {
            start,
            end: grid.window_end(start),
        };
        Self {
            attempt: Attempt::new(run.plan.dataset, window, run.shared.settings.batch_bytes),
            sample_interval: 1,
        }
    }

    fn start(&self) -> i64 {
        self.attempt.window.start
    }

    /// How long to wait for the session before publishing what is buffered.
    fn wait(&self, tick: Duration) -> Duration {
        self.attempt.buffered_since().map_or(tick, |since| {
            LINGER.saturating_sub(since.elapsed()).min(tick)
        })
    }

    /// Whether buffered records have waited their [`LINGER`].
    fn publish_due(&self) -> bool {
        self.attempt
            .buffered_since()
            .is_some_and(|since| since.elapsed() >= LINGER)
    }
}

pub async fn run(run: &mut ZoneRun<'_>) -> Exit {
    let shared = run.shared;
    let settings = &shared.settings;
    let dataset = run.plan.dataset;
    let size = settings.window_secs();
    let mut cursor = match run.journal.recover_cursor(dataset).await {
        Ok(cursor) => cursor,
        Err(e) => return journal_exit(run.zone(), &e, settings),
    };
    if let Some(unclosed) = run.journal.take_unclosed(dataset) {
        match close_unclosed(run, unclosed).await {
            Ok(Some(end)) => cursor = Some(end),
            Ok(None) => {}
            Err(e) => return journal_exit(run.zone(), &e, settings),
        }
    }
    // Until this run's first session, the time since the cursor is time no collector was
    // collecting the zone (a crash, a restart, a hand-over): RainLogs' loss, not Cloudflare's.
    let mut before_first_session = true;
    let mut failures: u32 = 0;
    // The time before the next session is a pause, not a disconnection, after a pause.
    let mut was_paused = false;
    loop {
        if let Some(exit) = run.take_changes() {
            return exit;
        }
        let now = run.now();
        if run.is_paused() {
            was_paused = true;
            // No session while paused; the time so far is a paused gap.
            let end = align_down(now, size);
            if let Some(start) = cursor
                && end > start
            {
                if let Err(e) = run
                    .close_gap(
                        dataset,
                        Window { start, end },
                        GapReason::Paused,
                        "collection paused by an operator",
                    )
                    .await
                {
                    return journal_exit(run.zone(), &e, settings);
                }
                cursor = Some(end);
            }
            if let Some(exit) = run.idle(settings.tick).await {
                return exit;
            }
            continue;
        }
        let request = InstantLogsJobRequest::all_records(&run.plan.fields);
        let connected = match run
            .client
            .create_instant_logs_job(run.zone(), &request)
            .await
        {
            Ok(job) => run.client.connect_instant_logs(&job).await,
            Err(e) => Err(e),
        };
        run.record_response(Endpoint::InstantLogsSocket, &connected);
        let session = match connected {
            Ok(session) => session,
            Err(error) => {
                failures += 1;
                let (status, delay) = match &error {
                    CfError::Auth { .. } => (Status::Failing, settings.recheck),
                    CfError::SessionAlreadyActive { .. } => {
                        (Status::Degraded, settings.backoff(failures))
                    }
                    e if e.is_retryable() => (
                        Status::Degraded,
                        settings.retry_delay(failures, e.retry_after()),
                    ),
                    _ => (Status::Failing, settings.recheck),
                };
                run.report(status, format!("cannot open an Instant Logs session: {error}; the time without one is recorded as disconnected gaps")).await;
                if let Some(exit) = run.idle(delay).await {
                    return exit;
                }
                continue;
            }
        };
        let connected_at = run.now();
        // The time without a session is a gap (none on the very first connect).
        let start = match cursor {
            Some(start) if start < connected_at => {
                let gap = Window {
                    start,
                    end: connected_at,
                };
                let (reason, detail) = if was_paused {
                    (GapReason::Paused, "collection paused by an operator")
                } else if before_first_session {
                    (
                        GapReason::CollectorOutage,
                        "no collector was collecting the zone (stopped, crashed or handing it over); Instant Logs cannot replay the time",
                    )
                } else {
                    (
                        GapReason::Disconnected,
                        "no Instant Logs session was connected",
                    )
                };
                if let Err(e) = run.close_gap(dataset, gap, reason, detail).await {
                    return journal_exit(run.zone(), &e, settings);
                }
                connected_at
            }
            Some(start) => start,
            None => connected_at,
        };
        was_paused = false;
        before_first_session = false;
        if failures > 0 {
            failures = 0;
            run.report_plan().await;
        }
        // Room for what arrives while a publish waits out a JetStream election or outage (up to
        // the lease TTL): the reader keeps draining the socket, so Cloudflare's side of the
        // session does not stall, and nothing received is dropped.
        let (events, mut inbox) = mpsc::channel(1024);
        let stop = CancellationToken::new();
        let reader = tokio::spawn(read_session(session, events, stop.clone()));
        let ended = tail(run, start, connected_at, size, &mut inbox).await;
        stop.cancel();
        let _ = reader.await;
        match ended {
            Tail::Rotate(end) => cursor = Some(end),
            Tail::Dropped(end, why) => {
                cursor = Some(end);
                failures += 1;
                run.report(
                    Status::Degraded,
                    format!("Instant Logs session ended ({why}); reconnecting"),
                )
                .await;
                if let Some(exit) = run.idle(settings.backoff(failures - 1)).await {
                    return exit;
                }
            }
            Tail::Exit(exit) => return exit,
        }
    }
}

enum Tail {
    /// The session was replaced on purpose; the cursor is at this window end.
    Rotate(i64),
    /// The session ended; windows are closed up to this time.
    Dropped(i64, String),
    Exit(Exit),
}

/// Reads the session until it ends or `stop` fires, forwarding what arrives. Running on its own
/// task means the session's read deadline is never reset by the window loop's timers.
async fn read_session(
    mut session: rainlogs_cloudflare::InstantLogsSession,
    events: mpsc::Sender<SessionEvent>,
    stop: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => break,
            next = session.next_batch() => next,
        };
        let event = match next {
            Ok(Some(records)) => SessionEvent::Records(records),
            Ok(None) => SessionEvent::Closed(session.closed().cloned()),
            Err(e) => SessionEvent::Failed(e),
        };
        let last = !matches!(event, SessionEvent::Records(_));
        if events.send(event).await.is_err() || last {
            return;
        }
    }
    // Frees the zone's single session slot for the next session.
    let _ = session.close().await;
}

async fn tail(
    run: &mut ZoneRun<'_>,
    start: i64,
    connected_at: i64,
    size: i64,
    inbox: &mut mpsc::Receiver<SessionEvent>,
) -> Tail {
    let settings = &run.shared.settings;
    let rotate_after = crate::settings::secs(settings.instant_logs_rotate_after);
    let grid = Ledger::new(start, size);
    let mut open = OpenWindow::new(run, &grid, start);
    loop {
        let event = tokio::select! {
            event = inbox.recv() => Some(event),
            () = tokio::time::sleep(open.wait(settings.tick)) => None,
        };
        let now = run.now();
        let mut ended = None;
        match event {
            Some(Some(SessionEvent::Records(records))) => {
                open.attempt.received_by(now);
                for record in records {
                    open.sample_interval = open.sample_interval.max(record.sample_interval);
                    if let Err(e) = open.attempt.push(&mut run.journal, &record.line).await {
                        return Tail::Exit(attempt_exit(run, &e));
                    }
                }
            }
            Some(Some(SessionEvent::Closed(closed))) => {
                ended = Some(closed.map_or_else(
                    || "closed by Cloudflare".to_owned(),
                    |c| format!("closed by Cloudflare: {:?} {}", c.code, c.reason),
                ));
            }
            Some(Some(SessionEvent::Failed(error))) => ended = Some(error.to_string()),
            Some(None) => ended = Some("session reader stopped".into()),
            None => {}
        }
        if open.publish_due()
            && let Err(e) = open.attempt.flush(&mut run.journal).await
        {
            return Tail::Exit(attempt_exit(run, &e));
        }
        // Close every window the clock has passed.
        while open.attempt.window.end <= now {
            let end = open.attempt.window.end;
            let next = OpenWindow::new(run, &grid, end);
            let finished = std::mem::replace(&mut open, next);
            if let Err(e) = close_window(run, finished).await {
                return Tail::Exit(attempt_exit(run, &e));
            }
            if ended.is_none() && now - connected_at >= rotate_after {
                return Tail::Rotate(end);
            }
        }
        if let Some(why) = ended {
            return cut(run, open, now, why).await;
        }
        let exit = run.take_changes();
        if exit.is_some() || run.is_paused() {
            // The open window keeps what arrived so far; it ends now.
            let end = now.max(open.start() + 1);
            open.attempt.end_early(end);
            if let Err(e) = close_window(run, open).await {
                return Tail::Exit(attempt_exit(run, &e));
            }
            // Paused: the session is closed and the run loop records the pause.
            return exit.map_or(Tail::Rotate(end), Tail::Exit);
        }
    }
}

/// The session ended at `now`: close the open window there.
async fn cut(run: &mut ZoneRun<'_>, mut open: OpenWindow, now: i64, why: String) -> Tail {
    if open.start() >= now && open.attempt.totals().records == 0 {
        // Nothing of the window was collected: the time from its start is the next gap.
        return Tail::Dropped(open.start(), why);
    }
    let end = now.max(open.start() + 1);
    open.attempt.end_early(end);
    match close_window(run, open).await {
        Ok(()) => Tail::Dropped(end, why),
        Err(e) => Tail::Exit(attempt_exit(run, &e)),
    }
}

/// Closes the attempt an earlier owner left open with the records it published: the window
/// ends one second past the newest of them, so it claims no time nobody collected. Returns
/// the new cursor, or `None` when the attempt cannot be closed truthfully (batches without
/// `received_until`, a batch missing, or too old for the archiver to still hold).
async fn close_unclosed(
    run: &mut ZoneRun<'_>,
    unclosed: UnclosedAttempt,
) -> Result<Option<i64>, JournalError> {
    let zone = run.zone().to_owned();
    let Some(received_until) = unclosed.received_until else {
        return Ok(None);
    };
    if !unclosed.is_whole() || unclosed.records == 0 {
        tracing::warn!(%zone, attempt = %unclosed.attempt, "an unclosed attempt misses batches; its time becomes part of the outage gap");
        return Ok(None);
    }
    let age = run.now() - received_until;
    if age > CLOSE_UNCLOSED_WITHIN {
        tracing::warn!(%zone, attempt = %unclosed.attempt, age_secs = age, "an unclosed attempt is too old to close; its time becomes part of the outage gap");
        return Ok(None);
    }
    let window = Window {
        start: unclosed.window.start,
        end: received_until
            .saturating_add(1)
            .clamp(unclosed.window.start + 1, unclosed.window.end),
    };
    let dataset = run.plan.dataset;
    let sample_interval = run.journal.largest_sample_interval(&unclosed).await?;
    run.journal
        .close(WindowClosed {
            dataset: dataset.to_owned(),
            window,
            attempt: unclosed.attempt,
            outcome: WindowOutcome::Complete {
                batches: unclosed.batches,
                records: unclosed.records,
                method: Method::InstantLogs,
                sample_interval: u32::try_from(sample_interval).unwrap_or(u32::MAX),
                fields: run.plan.fields.to_query_value(),
            },
            pushed_through: None,
            late: false,
        })
        .await?;
    tracing::info!(%zone, dataset, attempt = %unclosed.attempt, start = window.start, end = window.end,
        records = unclosed.records, "closed the window an earlier collector left open, with the records it published");
    run.shared.metrics.window_closed(&zone, dataset, "complete");
    Ok(Some(window.end))
}

/// A window that cannot be published leaves its attempt unclosed: after the retry, the run
/// loop starts again at the cursor, closes that attempt where its published records end and
/// records the rest as a `collector_outage` gap.
fn attempt_exit(run: &ZoneRun<'_>, error: &AttemptError) -> Exit {
    match error {
        AttemptError::Journal(e) => journal_exit(run.zone(), e, &run.shared.settings),
        AttemptError::RecordTooLarge { bytes } => {
            tracing::error!(zone = %run.zone(), bytes, "an Instant Logs record does not fit in one event");
            Exit::RetryAfter(run.shared.settings.retry_base)
        }
    }
}

async fn close_window(run: &mut ZoneRun<'_>, open: OpenWindow) -> Result<(), AttemptError> {
    // Batches of a live tail are published as they arrive; the window's trace starts at its
    // close, which is what the archiver continues.
    let span = run.window_span(open.attempt.window);
    close_attempt(run, open).instrument(span).await
}

async fn close_attempt(run: &mut ZoneRun<'_>, open: OpenWindow) -> Result<(), AttemptError> {
    let dataset = run.plan.dataset;
    let fields = run.plan.fields.to_query_value();
    let interval = u32::try_from(open.sample_interval).unwrap_or(u32::MAX);
    let totals = open
        .attempt
        .complete(&mut run.journal, Method::InstantLogs, interval, &fields)
        .await?;
    let outcome = if totals.records == 0 {
        "empty"
    } else {
        "complete"
    };
    run.shared
        .metrics
        .window_closed(run.zone(), dataset, outcome);
    run.shared
        .metrics
        .published(run.zone(), dataset, totals.records, totals.bytes);
    Ok(())
}
