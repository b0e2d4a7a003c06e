//! Logpush over HTTP: Cloudflare pushes the zone's records to RainLogs' ingest endpoint, which
//! stores each push in `RL_PUSH` (`rl.push.<zone>`) before it answers. This method reads those
//! parts in order and files every record into the window of its own timestamp.
//!
//! * A window is closed once its end is `collector.logpush_lateness` in the past (the
//!   watermark), so the chain keeps one entry per window, in order.
//! * A record whose window is already closed is **late**: late records of a window are gathered
//!   for one window length, then closed as a `late` close of that window (archived and sealed as
//!   a `late` entry that names it). Nothing pushed for a window of the log is dropped.
//! * Records are stored once: Cloudflare's retried and duplicated batches are cut into the same
//!   parts and stored once by JetStream (1 h duplicate window); records repeated inside other
//!   batches are recognised by their bytes while their window, or its late close, is open.
//! * Delivery: exactly once per record read, across restarts. Windows still open when a
//!   collector stops are abandoned and filled again from the parts after the durable resume
//!   point ([`PushCursor`]).
//!
//! What this method cannot see: batches Cloudflare dropped after its retries (its Logpush
//! health says how many), and pushes while the zone is paused (their windows are `paused` gaps).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use rainlogs_bus::async_nats::jetstream::consumer::{DeliverPolicy, pull};
use rainlogs_bus::{Bus, CancellationToken};
use rainlogs_cloudflare::{LogpushDataset, LogpushJob};
use rainlogs_schemas::events::{GapReason, Method, PushReceived, Window, WindowShort};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use crate::attempt::{Attempt, AttemptError};
use crate::bucket_feed::BucketFeed;
use crate::completeness::{Completeness, Shortfall};
use crate::health::Status;
use crate::journal::JournalError;
use crate::ledger::align_down;
use crate::logpush_job;
use crate::onboarding::OnboardingFailure;
use crate::push_cursor::{ClosedFate, PushCursor};
use crate::repair::{self, SeenRays};
use crate::settings::secs;
use crate::zone_run::{Exit, ZoneRun, journal_exit};
use rainlogs_push::PushSource;

/// One part read from `RL_PUSH`, with its stream sequence.
struct ReadPart {
    seq: u64,
    /// More parts were already stored when this one was read: the reader is behind.
    behind: bool,
    part: Result<PushReceived, String>,
}

/// A window (or a late close of one) being filled.
struct Filling {
    attempt: Attempt,
    /// The oldest part that put a record here: the resume point may not pass it while open.
    first_part: Option<u64>,
    /// Collector time of the first record (late closes wait one window length from it).
    opened_at: i64,
    /// 128-bit digests of the records taken, to store a repeated record once.
    seen: HashSet<[u8; 16]>,
}

impl Filling {
    /// The window of `size` seconds from `start`.
    fn new(dataset: &str, start: i64, size: i64, batch_bytes: usize, now: i64) -> Self {
        let window = Window {
            start,
            end: start + size,
        };
        Self {
            attempt: Attempt::new(dataset, window, batch_bytes),
            first_part: None,
            opened_at: now,
            seen: HashSet::new(),
        }
    }
}

/// Digests of the records of recently closed windows, so a duplicate that arrives shortly after
/// its window closed is not stored again as late.
struct RecentlyClosed {
    windows: BTreeMap<i64, HashSet<[u8; 16]>>,
}

impl RecentlyClosed {
    fn holds(&self, start: i64, digest: &[u8; 16]) -> bool {
        self.windows.get(&start).is_some_and(|s| s.contains(digest))
    }

    fn keep(&mut self, start: i64, seen: HashSet<[u8; 16]>) {
        self.windows.entry(start).or_default().extend(seen);
    }

    fn forget_before(&mut self, start: i64) {
        self.windows = self.windows.split_off(&start);
    }
}

fn digest(line: &[u8]) -> [u8; 16] {
    let hash = blake3::hash(line);
    let mut out = [0u8; 16];
    out.copy_from_slice(&hash.as_bytes()[..16]);
    out
}

/// How long (collector seconds) a window found short stays in the zone's health.
const SHOW_SHORTFALL_FOR: i64 = 24 * 3600;

struct PushRun {
    /// The zone's job at Cloudflare, as last read or changed.
    job: LogpushJob,
    /// When the job's health was last read (real time).
    job_read_at: std::time::Instant,
    /// What Cloudflare last said went wrong with the job's pushes.
    job_trouble: Option<String>,
    /// Logpush to a bucket: what the bucket feed last could not do (`None`: it reads).
    bucket_trouble: Option<tokio::sync::watch::Receiver<Option<String>>>,
    bucket_now: Option<String>,
    /// Closed windows waiting for the cross-check with Cloudflare's counts.
    completeness: Completeness,
    /// What a cross-check found missing (when, and in words).
    completeness_trouble: Option<(i64, String)>,
    /// Windows found short whose `archive.window_short` is not published yet.
    unsent_shortfalls: Vec<Shortfall>,
    /// Enterprise zones: the Ray IDs of the windows awaiting their check, to repair a short
    /// window from Logpull; where that cannot be done, why.
    seen_rays: Result<SeenRays, String>,
    /// Short windows waiting for their repair from Logpull.
    repairs: Vec<repair::Due>,
    /// The troubles above as the zone's health last showed them.
    trouble_shown: Option<String>,
    dataset: &'static str,
    pushed: LogpushDataset,
    size: i64,
    lateness: i64,
    state: PushCursor,
    /// Start of the next window to close (everything before it has a close).
    next_close: i64,
    /// The newest part whose records have all been filed.
    read_through: u64,
    /// Parts stored before the newest one read are still unread (after an outage, a backlog):
    /// windows wait for them instead of closing with their records still in `RL_PUSH`.
    behind: bool,
    open: BTreeMap<i64, Filling>,
    late: BTreeMap<i64, Filling>,
    recent: RecentlyClosed,
}

pub async fn run(run: &mut ZoneRun<'_>) -> Exit {
    let settings = &run.shared.settings;
    let dataset = run.plan.dataset;
    let Some(pushed) = LogpushDataset::parse(dataset) else {
        run.report(
            Status::Failing,
            format!("Logpush cannot push the dataset {dataset}"),
        )
        .await;
        return Exit::RetryAfter(settings.recheck);
    };
    let problem_exit = |problem: &crate::onboarding::OnboardingFailure| {
        Exit::RetryAfter(if problem.transient {
            settings.retry_delay(1, None)
        } else {
            settings.recheck
        })
    };
    let source = match way_in(run) {
        Ok(source) => source,
        Err(problem) => {
            let exit = problem_exit(&problem);
            run.report(problem.status, problem.reason).await;
            return exit;
        }
    };
    let job = match logpush_job::ensure(run, &source.destination).await {
        Ok(job) => job,
        Err(problem) => {
            let exit = problem_exit(&problem);
            run.report(problem.status, problem.reason).await;
            return exit;
        }
    };
    let mut push = match PushRun::recover(run, pushed, job).await {
        Ok(push) => push,
        Err(e) => return journal_exit(run.zone(), &e, settings),
    };
    let stop = CancellationToken::new();
    let (parts_tx, mut parts) = mpsc::channel(4);
    let reader = tokio::spawn(read_parts(
        run.shared.bus.clone(),
        subjects::push(run.zone()),
        push.state.resume_after,
        parts_tx,
        stop.clone(),
    ));
    let (trouble_tx, trouble_rx) = tokio::sync::watch::channel(None);
    if source.feed.is_some() {
        push.bucket_trouble = Some(trouble_rx);
    }
    let poller = source.feed.map(|feed| {
        tokio::spawn(poll_bucket(
            feed,
            BucketTarget {
                bus: run.shared.bus.clone(),
                tenant: run.entry.tenant.clone(),
                zone: run.zone().to_owned(),
                dataset: pushed,
            },
            run.shared.clock.clone(),
            settings.bucket_poll,
            trouble_tx,
            stop.clone(),
        ))
    });
    let exit = push.follow(run, &mut parts).await;
    stop.cancel();
    let _ = reader.await;
    if let Some(poller) = poller {
        let _ = poller.await;
    }
    // A removed zone, or one collected another way from now on, needs no job pushing for it:
    // what it pushed would wait for nobody.
    if run.is_removed() || run.entry.method != run.plan.method {
        logpush_job::remove(run, &push.job).await;
    }
    exit
}

/// How the zone's records come in: where its job pushes, and for a bucket, the feed that reads it.
struct WayIn {
    destination: logpush_job::Destination,
    feed: Option<BucketFeed>,
}

fn way_in(run: &ZoneRun<'_>) -> Result<WayIn, OnboardingFailure> {
    if run.plan.method != Method::LogpushS3 {
        return Ok(WayIn {
            destination: logpush_job::Destination::endpoint(run)?,
            feed: None,
        });
    }
    let failing = |reason: String| OnboardingFailure {
        status: Status::Failing,
        reason,
        plan: None,
        transient: false,
    };
    let Some((key_id, sealed)) = &run.entry.push_source else {
        return Err(failing(
            "Logpush to a bucket needs the bucket (ctl.push_source_set); none is set".into(),
        ));
    };
    let source = PushSource::open(
        &run.shared.keyring,
        key_id,
        &run.entry.tenant,
        run.zone(),
        sealed,
    )
    .map_err(failing)?;
    let location = source.location().map_err(failing)?;
    let reader = source
        .reader(&location, &run.shared.settings.bucket_access)
        .map_err(failing)?;
    Ok(WayIn {
        destination: logpush_job::Destination::Bucket {
            destination_conf: source.destination_conf.clone(),
            // Without keys of the customer's, Cloudflare writes with its own identity, and
            // proves the bucket is the customer's with a file only its owner can read.
            ownership: (!location.has_write_keys).then(|| reader.clone()),
        },
        feed: Some(BucketFeed::new(
            reader,
            &location.path,
            run.shared.cursors.clone(),
            run.zone(),
            run.plan.dataset,
        )),
    })
}

struct BucketTarget {
    bus: Bus,
    tenant: String,
    zone: String,
    dataset: LogpushDataset,
}

/// Stores the bucket's new objects in `RL_PUSH` every `every` until `stop` fires; the filing
/// loop reads them from there like pushes to the ingest endpoint.
async fn poll_bucket(
    feed: BucketFeed,
    target: BucketTarget,
    clock: crate::clock::SharedClock,
    every: Duration,
    trouble: tokio::sync::watch::Sender<Option<String>>,
    stop: CancellationToken,
) {
    let push_target = rainlogs_push::PushTarget {
        bus: &target.bus,
        tenant: &target.tenant,
        zone: &target.zone,
        dataset: target.dataset,
        actor: crate::NAME,
    };
    loop {
        let problem = match feed.poll(&push_target, clock.now_unix()).await {
            Ok(polled) => {
                if polled.objects > 0 {
                    tracing::debug!(zone = %target.zone, objects = polled.objects, records = polled.records, "stored the bucket's new objects");
                }
                None
            }
            Err(error) => {
                tracing::warn!(zone = %target.zone, %error, "cannot read the zone's Logpush bucket; trying again");
                Some(format!(
                    "cannot read the zone's Logpush bucket ({error}); its objects wait there and are read once it can be"
                ))
            }
        };
        trouble.send_if_modified(|shown| {
            let changed = *shown != problem;
            *shown = problem;
            changed
        });
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// The `RL_PUSH` sequence of the zone's newest part, if it has any.
async fn newest_part(bus: &Bus, zone: &str) -> Result<Option<u64>, JournalError> {
    use rainlogs_bus::async_nats::jetstream::stream::DirectGetErrorKind;
    let stream = bus
        .js
        .get_stream(rainlogs_bus::definitions::PUSH)
        .await
        .map_err(|e| JournalError::Bus(format!("opening RL_PUSH: {e}")))?;
    match stream
        .direct_get_last_for_subject(subjects::push(zone))
        .await
    {
        Ok(message) => Ok(Some(message.sequence)),
        Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
        Err(e) => Err(JournalError::Bus(format!(
            "reading the zone's newest push: {e}"
        ))),
    }
}

/// Reads the zone's parts after `after`, in stream order, until `stop` fires.
async fn read_parts(
    bus: Bus,
    subject: String,
    after: u64,
    parts: mpsc::Sender<ReadPart>,
    stop: CancellationToken,
) {
    let consumer = async {
        let stream = bus
            .js
            .get_stream(rainlogs_bus::definitions::PUSH)
            .await
            .map_err(|e| e.to_string())?;
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                },
                filter_subject: subject.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        consumer.messages().await.map_err(|e| e.to_string())
    };
    let mut messages = tokio::select! {
        () = stop.cancelled() => return,
        opened = consumer => match opened {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%subject, %error, "cannot read the zone's pushes; trying again");
                return;
            }
        },
    };
    use futures::StreamExt as _;
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => return,
            next = messages.next() => next,
        };
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(error)) => {
                tracing::warn!(%subject, %error, "reading pushes; continuing");
                continue;
            }
            None => return,
        };
        let Ok(info) = message.info() else { continue };
        let (seq, behind) = (info.stream_sequence, info.pending > 0);
        let part = match Envelope::from_cbor(&message.payload).map(|e| e.event) {
            Ok(Event::PushReceived(part)) => Ok(part),
            Ok(other) => Err(format!("a {} event on the push subject", other.type_name())),
            Err(e) => Err(e.to_string()),
        };
        if parts.send(ReadPart { seq, behind, part }).await.is_err() {
            return;
        }
    }
}

impl PushRun {
    async fn recover(
        run: &mut ZoneRun<'_>,
        pushed: LogpushDataset,
        job: LogpushJob,
    ) -> Result<Self, JournalError> {
        let settings = &run.shared.settings;
        let dataset = run.plan.dataset;
        let size = settings.window_secs();
        let cursor = run.journal.recover_cursor(dataset).await?;
        // An attempt an earlier owner left open is abandoned: its records are read again.
        if run.journal.take_unclosed(dataset).is_some() {
            run.shared.metrics.abandoned(run.zone(), dataset);
        }
        let now = run.now();
        let stored = PushCursor::load(&run.shared.cursors, &run.journal, dataset).await?;
        let mut push = Self {
            job,
            job_read_at: std::time::Instant::now(),
            job_trouble: None,
            bucket_trouble: None,
            bucket_now: None,
            completeness: Completeness::new(size),
            completeness_trouble: None,
            unsent_shortfalls: Vec::new(),
            seen_rays: match &run.plan.no_logpull_repair {
                None if pushed == LogpushDataset::HttpRequests => Ok(SeenRays::default()),
                None => Err("only http_requests windows are cross-checked".into()),
                Some(why) => Err(format!("short windows cannot be repaired: {why}")),
            },
            repairs: Vec::new(),
            trouble_shown: None,
            dataset,
            pushed,
            size,
            lateness: secs(settings.logpush_lateness),
            state: stored.clone().unwrap_or_default(),
            next_close: align_down(now, size),
            read_through: 0,
            behind: false,
            open: BTreeMap::new(),
            late: BTreeMap::new(),
            recent: RecentlyClosed {
                windows: BTreeMap::new(),
            },
        };
        // Until the next whole window, this process does not know the job pushed everything;
        // the windows an earlier owner closed, it did.
        push.completeness.pushing_from(now);
        push.completeness.restore(push.state.unchecked.clone());
        match (stored, cursor) {
            (Some(state), Some(cursor)) => {
                push.next_close = cursor;
                push.read_through = state.resume_after;
            }
            (Some(state), None) => {
                push.next_close = state.log_start.unwrap_or(push.next_close);
                push.read_through = state.resume_after;
            }
            (None, cursor) => {
                // The zone's first pushed window is the one before now: a request that began
                // before the job was made and ended after it is pushed too, dated by its start.
                // Time since an earlier method's last window is a gap: nothing pushed it.
                let start = push.next_close - size;
                if let Some(cursor) = cursor
                    && cursor < start
                {
                    run.close_gap(
                        dataset,
                        Window {
                            start: cursor,
                            end: start,
                        },
                        GapReason::CollectorOutage,
                        "before the zone's Logpush job pushed to RainLogs",
                    )
                    .await?;
                }
                let start = cursor.map_or(start, |c| c.max(start));
                push.next_close = start;
                push.state.log_start = Some(start);
                push.state
                    .store(&run.shared.cursors, run.zone(), dataset)
                    .await;
            }
        }
        // Parts stored after the resume point are a backlog to read before any window closes.
        push.behind = newest_part(&run.shared.bus, run.zone())
            .await?
            .is_some_and(|newest| newest > push.state.resume_after);
        tracing::info!(zone = %run.zone(), dataset, next_window = push.next_close,
            resume_after = push.state.resume_after, backlog = push.behind, "reading the zone's pushes");
        Ok(push)
    }

    async fn follow(
        &mut self,
        run: &mut ZoneRun<'_>,
        parts: &mut mpsc::Receiver<ReadPart>,
    ) -> Exit {
        let settings = &run.shared.settings;
        loop {
            if let Some(exit) = run.take_changes() {
                return exit;
            }
            if let Some(exit) = self.keep_job(run).await {
                return exit;
            }
            self.show_trouble(run).await;
            if let Err(e) = self.close_due(run).await {
                return self.exit(run, &e);
            }
            self.check_completeness(run).await;
            let wait = std::time::Duration::from_secs(
                u64::try_from(self.next_due() - run.now())
                    .unwrap_or(0)
                    .max(1),
            )
            .min(settings.tick);
            let part = tokio::select! {
                part = parts.recv() => part,
                wake = run.wait(wait) => match wake {
                    crate::zone_run::Wake::Cancelled => return Exit::Cancelled,
                    crate::zone_run::Wake::Changed | crate::zone_run::Wake::Elapsed => continue,
                },
            };
            let Some(part) = part else {
                // The reader stopped (JetStream away, stream gone): start over from the cursor.
                tracing::warn!(zone = %run.zone(), "the zone's push reader stopped; reading again");
                return Exit::RetryAfter(settings.retry_base);
            };
            self.behind = part.behind;
            if let Err(e) = self.file(run, part).await {
                return self.exit(run, &e);
            }
        }
    }

    /// Keeps the job switched off while the zone is paused, and the zone's health showing
    /// what Cloudflare says about the job's pushes.
    async fn keep_job(&mut self, run: &mut ZoneRun<'_>) -> Option<Exit> {
        let settings = &run.shared.settings;
        if self.job.enabled == run.is_paused() {
            match logpush_job::set_enabled(run, self.job.clone(), !run.is_paused()).await {
                Ok(job) => {
                    if job.enabled {
                        self.completeness.pushing_from(run.now());
                    }
                    self.job = job;
                }
                Err(problem) => {
                    run.report(problem.status, problem.reason).await;
                    return None;
                }
            }
        }
        if self.job_read_at.elapsed() < settings.recheck {
            return None;
        }
        self.job_read_at = std::time::Instant::now();
        let jobs = match run.client.logpush_jobs(run.zone()).await {
            Ok(jobs) => jobs,
            Err(error) => {
                tracing::debug!(zone = %run.zone(), %error, "cannot read the zone's Logpush job");
                return None;
            }
        };
        let Some(job) = jobs.into_iter().find(|j| j.id == self.job.id) else {
            run.report(
                Status::Failing,
                format!(
                    "the zone's Logpush job {} is gone at Cloudflare; RainLogs creates a new one",
                    self.job.id
                ),
            )
            .await;
            // Onboarding again makes a new job; open windows are filled again from the pushes.
            return Some(Exit::RetryAfter(settings.retry_base));
        };
        if !job.enabled && !run.is_paused() {
            tracing::warn!(zone = %run.zone(), job = job.id,
                "the zone's Logpush job was switched off at Cloudflare; switching it on again (the time it was off is lost at Cloudflare)");
        }
        self.job_trouble = logpush_job::trouble(&job);
        self.job = job;
        self.show_trouble(run).await;
        None
    }

    /// Compares the windows closed a while ago with Cloudflare's counts of the zone's requests
    /// and of the records its Logpush job gave up on, and shows what is missing in the zone's
    /// health and metrics. A check Cloudflare cannot answer is logged and left; the windows are
    /// archived either way.
    async fn check_completeness(&mut self, run: &mut ZoneRun<'_>) {
        if self.pushed != LogpushDataset::HttpRequests {
            return;
        }
        let Some(checked) = self.completeness.due(run.now()) else {
            return;
        };
        let now = run.now();
        let at = crate::clock::at;
        let counts = run
            .client
            .http_requests_per_minute(run.zone(), at(checked.start), at(checked.end))
            .await;
        let health_span = self.completeness.health_span(checked, now);
        let health = match health_span {
            Some(span) => {
                run.client
                    .logpush_health(run.zone(), Some(self.job.id), at(span.start), at(span.end))
                    .await
            }
            None => Ok(Vec::new()),
        };
        let trouble = match (counts, health) {
            (Ok(counts), Ok(health)) => {
                let finding = self
                    .completeness
                    .compare(checked, &counts, health_span, &health);
                run.shared.metrics.completeness(
                    run.zone(),
                    self.dataset,
                    finding.short.len() as u64,
                    finding.dropped,
                );
                self.unsent_shortfalls.extend(finding.short.iter().cloned());
                if let Ok(rays) = &mut self.seen_rays {
                    for short in &finding.short {
                        match rays.take(short.window.start) {
                            Some(held) => self.repairs.push(repair::Due {
                                window: short.window,
                                held,
                                tries: 0,
                            }),
                            None => tracing::info!(zone = %run.zone(), start = short.window.start,
                                "a short window closed by an earlier owner of the zone is not repaired from Logpull"),
                        }
                    }
                    rays.forget_before(checked.end);
                }
                finding.trouble().map(|words| match &self.seen_rays {
                    Ok(_) => format!("{words}; RainLogs recovers what Logpull still serves"),
                    Err(why) => format!("{words}; {why}"),
                })
            }
            // The windows stay for the next check (until they are hours old).
            (Err(error), _) | (_, Err(error)) => Some(format!(
                "cannot check the archive against Cloudflare's counts ({error}); the token needs \
                 Analytics Read and Logs Read"
            )),
        };
        if let Some(words) = &trouble {
            tracing::warn!(zone = %run.zone(), start = checked.start, end = checked.end, "{words}");
        }
        // The shortfalls go out before their repairs, so the log says first what was missing.
        self.send_shortfalls(run).await;
        let repaired = self.repair_short_windows(run).await;
        // What was missing stays in the zone's health for a day, with what was recovered.
        self.completeness_trouble = match trouble {
            Some(words) => Some((now, words)),
            None => self
                .completeness_trouble
                .take()
                .filter(|(at, _)| now - at < SHOW_SHORTFALL_FOR),
        };
        if let Some(repaired) = repaired {
            self.completeness_trouble = Some(match self.completeness_trouble.take() {
                Some((_, words)) => (now, format!("{words}; {repaired}")),
                None => (now, repaired),
            });
        }
        self.show_trouble(run).await;
    }

    /// Pulls the short windows from Logpull and archives the records they lack as late closes,
    /// collected by `logpull`; a pull that fails is tried again with the next checks. What was
    /// recovered, in words, if anything was tried.
    async fn repair_short_windows(&mut self, run: &mut ZoneRun<'_>) -> Option<String> {
        if self.repairs.is_empty() {
            return None;
        }
        let (mut windows, mut recovered) = (0, 0);
        let mut failed = Vec::new();
        for mut due in std::mem::take(&mut self.repairs) {
            if !repair::ready(due.window, run.now()) {
                self.repairs.push(due);
                continue;
            }
            due.tries += 1;
            let outcome = match repair::missing_records(run, due.window, &due.held).await {
                Ok(missing) => self
                    .archive_recovered(run, due.window, missing)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) if !e.is_retryable() => {
                    due.tries = repair::TRIES;
                    Err(e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(records) => {
                    windows += 1;
                    recovered += records;
                    run.shared
                        .metrics
                        .repaired(run.zone(), self.dataset, records);
                    tracing::info!(zone = %run.zone(), start = due.window.start, records,
                        "records of a short window recovered from Logpull");
                }
                Err(error) if due.tries < repair::TRIES => {
                    tracing::warn!(zone = %run.zone(), start = due.window.start, %error,
                        "cannot repair a short window from Logpull yet; trying with the next check");
                    self.repairs.push(due);
                }
                Err(error) => {
                    tracing::warn!(zone = %run.zone(), start = due.window.start, %error,
                        "a short window cannot be repaired from Logpull; it stays short");
                    failed.push(error);
                }
            }
        }
        let mut words = Vec::new();
        if windows > 0 {
            words.push(format!(
                "{recovered} records of {windows} short windows recovered from Logpull and archived as late records"
            ));
        }
        if let Some(error) = failed.first() {
            words.push(format!(
                "{} short windows cannot be repaired from Logpull ({error})",
                failed.len()
            ));
        }
        (!words.is_empty()).then(|| words.join("; "))
    }

    /// Archives `records` of `window` as a late close collected by Logpull.
    async fn archive_recovered(
        &mut self,
        run: &mut ZoneRun<'_>,
        window: Window,
        records: Vec<Vec<u8>>,
    ) -> Result<u64, AttemptError> {
        if records.is_empty() {
            return Ok(0);
        }
        let mut attempt = Attempt::new(self.dataset, window, run.shared.settings.batch_bytes);
        attempt.late = true;
        // Claims no more pushed parts than the window's closes already hold: records pushed
        // for it but not closed yet stay late on a restart.
        attempt.pushed_through = Some(self.state.through.get(&window.start).copied().unwrap_or(0));
        for line in &records {
            attempt.push(&mut run.journal, line).await?;
        }
        let fields = run.plan.fields.to_query_value();
        let totals = attempt
            .complete(&mut run.journal, Method::Logpull, 1, &fields)
            .await?;
        self.state.batch_seq = self.state.batch_seq.max(run.journal.last_seq());
        run.shared
            .metrics
            .window_closed(run.zone(), self.dataset, "late");
        Ok(totals.records)
    }

    /// Publishes the windows found short, for the sealer to log as `shortfall` entries; those
    /// JetStream does not take now are sent with the next check.
    async fn send_shortfalls(&mut self, run: &mut ZoneRun<'_>) {
        while let Some(short) = self.unsent_shortfalls.first() {
            let mut envelope = Envelope::new(
                run.journal.tenant(),
                Some(run.zone().to_owned()),
                Actor::service(crate::NAME),
                Event::WindowShort(WindowShort {
                    dataset: self.dataset.to_owned(),
                    window: short.window,
                    method: run.plan.method,
                    source_records: short.expected,
                    archived_records: short.archived,
                }),
            );
            envelope.id = crate::ids::short_id(run.zone(), self.dataset, short.window);
            match run
                .shared
                .bus
                .publish(&subjects::archive(run.zone()), &envelope)
                .await
            {
                Ok(_) => {
                    self.unsent_shortfalls.remove(0);
                }
                Err(e) => {
                    tracing::warn!(zone = %run.zone(), error = %e,
                        "cannot publish a short window for the chain yet; trying with the next check");
                    return;
                }
            }
        }
    }

    /// Shows in the zone's health every trouble at once — the job's pushes, the bucket feed,
    /// the cross-check — so one that clears does not hide another that has not.
    async fn show_trouble(&mut self, run: &mut ZoneRun<'_>) {
        if let Some(feed) = self.bucket_trouble.as_mut()
            && feed.has_changed().unwrap_or(false)
        {
            self.bucket_now = feed.borrow_and_update().clone();
        }
        let troubles: Vec<&str> = [
            self.job_trouble.as_deref(),
            self.bucket_now.as_deref(),
            self.completeness_trouble
                .as_ref()
                .map(|(_, words)| words.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let shown = (!troubles.is_empty()).then(|| troubles.join("; "));
        if shown != self.trouble_shown {
            match &shown {
                Some(reason) => run.report(Status::Degraded, reason.clone()).await,
                None => run.report_plan().await,
            }
            self.trouble_shown = shown;
        }
    }

    /// When the next window or late close is due, in collector time.
    fn next_due(&self) -> i64 {
        let window = self.next_close + self.size + self.lateness;
        self.late
            .values()
            .map(|l| l.opened_at + self.size)
            .fold(window, i64::min)
    }

    /// Files every record of one part into its window.
    async fn file(&mut self, run: &mut ZoneRun<'_>, read: ReadPart) -> Result<(), AttemptError> {
        let zone = run.zone().to_owned();
        let metrics = run.shared.metrics.clone();
        let part = match read.part {
            Ok(part) if part.dataset == self.dataset => part,
            Ok(part) => {
                tracing::debug!(%zone, seq = read.seq, dataset = %part.dataset, "a part of another dataset; not this method's");
                self.read_through = read.seq;
                return Ok(());
            }
            Err(error) => {
                tracing::error!(%zone, seq = read.seq, %error, "an unreadable push part; skipped");
                self.read_through = read.seq;
                return Ok(());
            }
        };
        let content = match part.content() {
            Ok(content) => content,
            Err(error) => {
                tracing::error!(%zone, seq = read.seq, %error, records = part.records, "a push part does not decompress; skipped");
                metrics.pushed(&zone, self.dataset, "unreadable", u64::from(part.records));
                self.read_through = read.seq;
                return Ok(());
            }
        };
        let now = run.now();
        let batch = run.shared.settings.batch_bytes;
        let mut counts = Counts::default();
        for line in content.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let time = match self.pushed.record_time_ns(line) {
                Ok(ns) => ns,
                Err(error) => {
                    tracing::warn!(%zone, seq = read.seq, %error, "a pushed record without a readable time; skipped");
                    counts.unreadable += 1;
                    continue;
                }
            };
            let start = align_down(time.div_euclid(1_000_000_000), self.size);
            let digest = digest(line);
            let on_time = start >= self.next_close;
            let filling = if on_time {
                self.open
                    .entry(start)
                    .or_insert_with(|| Filling::new(self.dataset, start, self.size, batch, now))
            } else {
                match self.state.fate(start, read.seq) {
                    ClosedFate::Stored => {
                        counts.duplicate += 1;
                        continue;
                    }
                    ClosedFate::NoWindow => {
                        counts.before_start += 1;
                        continue;
                    }
                    ClosedFate::Late if self.recent.holds(start, &digest) => {
                        counts.duplicate += 1;
                        continue;
                    }
                    ClosedFate::Late => self.late.entry(start).or_insert_with(|| {
                        let mut late = Filling::new(self.dataset, start, self.size, batch, now);
                        late.attempt.late = true;
                        late
                    }),
                }
            };
            if !filling.seen.insert(digest) {
                counts.duplicate += 1;
                continue;
            }
            filling.first_part.get_or_insert(read.seq);
            filling.attempt.push(&mut run.journal, line).await?;
            if let Ok(rays) = &mut self.seen_rays {
                rays.saw(start, line);
            }
            if on_time {
                counts.on_time += 1;
            } else {
                counts.late += 1;
            }
        }
        self.read_through = read.seq;
        counts.report(&metrics, &zone, self.dataset);
        if counts.before_start > 0 {
            tracing::warn!(%zone, seq = read.seq, records = counts.before_start,
                "pushed records for time the zone's log does not cover (before its first pushed window, or a paused gap); not archived");
        }
        Ok(())
    }

    /// Closes every window the watermark has passed and every late close that waited long enough.
    async fn close_due(&mut self, run: &mut ZoneRun<'_>) -> Result<(), AttemptError> {
        let now = run.now();
        let mut closed_any = false;
        while !self.behind && self.next_close + self.size + self.lateness <= now {
            let window = Window {
                start: self.next_close,
                end: self.next_close + self.size,
            };
            let filling = self.open.remove(&window.start);
            if run.paused_at(window.end) {
                // Records of a paused window are not archived; its batches stay unclosed.
                run.close_gap(
                    self.dataset,
                    window,
                    GapReason::Paused,
                    "collection paused by an operator",
                )
                .await?;
                self.state.add_gap(window);
            } else {
                let filling = filling.unwrap_or_else(|| {
                    let batch = run.shared.settings.batch_bytes;
                    Filling::new(self.dataset, window.start, self.size, batch, now)
                });
                self.close(run, filling).await?;
            }
            self.next_close = window.end;
            closed_any = true;
        }
        let due: Vec<i64> = self
            .late
            .iter()
            .filter(|(_, late)| late.opened_at + self.size <= now)
            .map(|(start, _)| *start)
            .collect();
        for start in due {
            if let Some(late) = self.late.remove(&start) {
                self.close(run, late).await?;
                closed_any = true;
            }
        }
        if closed_any {
            let resume = self
                .open
                .values()
                .chain(self.late.values())
                .filter_map(|f| f.first_part)
                .min()
                .map_or(self.read_through, |first| first - 1);
            self.state.resume_at(resume, now - 8 * 24 * 3600);
            self.recent
                .forget_before(self.next_close - self.size - 2 * self.lateness);
            self.state.unchecked = self.completeness.unchecked();
            self.state
                .store(&run.shared.cursors, run.zone(), self.dataset)
                .await;
        }
        Ok(())
    }

    async fn close(
        &mut self,
        run: &mut ZoneRun<'_>,
        mut filling: Filling,
    ) -> Result<(), AttemptError> {
        let window = filling.attempt.window;
        let late = filling.attempt.late;
        filling.attempt.pushed_through = Some(self.read_through);
        let span = run.window_span(window);
        let fields = run.plan.fields.to_query_value();
        let totals = async {
            filling
                .attempt
                .complete(&mut run.journal, run.plan.method, 1, &fields)
                .await
        }
        .instrument(span)
        .await?;
        let outcome = match (late, totals.records) {
            (true, _) => "late",
            (false, 0) => "empty",
            (false, _) => "complete",
        };
        tracing::debug!(zone = %run.zone(), start = window.start, outcome, records = totals.records, "pushed window closed");
        run.shared
            .metrics
            .window_closed(run.zone(), self.dataset, outcome);
        run.shared
            .metrics
            .published(run.zone(), self.dataset, totals.records, totals.bytes);
        self.completeness.closed(window, totals.records, late);
        let through = self.state.through.entry(window.start).or_default();
        *through = (*through).max(self.read_through);
        self.state.batch_seq = self.state.batch_seq.max(run.journal.last_seq());
        self.recent.keep(window.start, filling.seen);
        Ok(())
    }

    fn exit(&self, run: &ZoneRun<'_>, error: &AttemptError) -> Exit {
        match error {
            AttemptError::Journal(e) => journal_exit(run.zone(), e, &run.shared.settings),
            AttemptError::RecordTooLarge { bytes } => {
                tracing::error!(zone = %run.zone(), bytes, "a pushed record does not fit in one event");
                Exit::RetryAfter(run.shared.settings.retry_base)
            }
        }
    }
}

#[derive(Default)]
struct Counts {
    on_time: u64,
    late: u64,
    duplicate: u64,
    before_start: u64,
    unreadable: u64,
}

impl Counts {
    fn report(&self, metrics: &crate::metrics::CollectorMetrics, zone: &str, dataset: &str) {
        metrics.pushed(zone, dataset, "on_time", self.on_time);
        metrics.pushed(zone, dataset, "late", self.late);
        metrics.pushed(zone, dataset, "duplicate", self.duplicate);
        metrics.pushed(zone, dataset, "before_start", self.before_start);
        metrics.pushed(zone, dataset, "unreadable", self.unreadable);
    }
}
