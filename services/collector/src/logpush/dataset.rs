//! One pushed dataset of a zone: files each record of the dataset's parts into the window of
//! its own time, closes windows behind the watermark and late records after a window length,
//! and cross-checks closed windows with Cloudflare's counts (see the module above).

use std::collections::{BTreeMap, HashSet};

use rainlogs_cloudflare::{LogpushDataset, LogpushJob};
use rainlogs_schemas::events::{GapReason, Method, PushReceived, Window, WindowShort};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use tracing::Instrument as _;

use crate::attempt::{Attempt, AttemptError};
use crate::completeness::{Completeness, Shortfall};
use crate::health::Status;
use crate::journal::JournalError;
use crate::ledger::align_down;
use crate::logpush_job;
use crate::push_cursor::{ClosedFate, PushCursor};
use crate::repair::{self, SeenRays};
use crate::settings::secs;
use crate::zone_run::{Exit, ZoneRun, journal_exit};

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

/// One dataset of a zone pushed by its own job: its windows, cursor and checks.
pub(super) struct PushRun {
    /// The zone's job at Cloudflare, as last read or changed.
    pub(super) job: LogpushJob,
    /// When the job's health was last read (real time).
    job_read_at: std::time::Instant,
    /// What Cloudflare last said went wrong with the job's pushes.
    job_trouble: Option<String>,
    /// Logpush to a bucket: what the bucket feed last could not do (`None`: it reads).
    pub(super) bucket_trouble: Option<tokio::sync::watch::Receiver<Option<String>>>,
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
    pub(super) dataset: &'static str,
    pub(super) pushed: LogpushDataset,
    /// The fields the job asks for, as archives record them.
    fields: String,
    size: i64,
    lateness: i64,
    pub(super) state: PushCursor,
    /// Start of the next window to close (everything before it has a close).
    next_close: i64,
    /// The newest part whose records have all been filed.
    read_through: u64,
    /// Parts stored before the newest one read are still unread (after an outage, a backlog):
    /// windows wait for them instead of closing with their records still in `RL_PUSH`.
    pub(super) behind: bool,
    open: BTreeMap<i64, Filling>,
    late: BTreeMap<i64, Filling>,
    recent: RecentlyClosed,
}

impl PushRun {
    /// Picks up where the dataset's last owner left off: its cursor, its closed windows, the
    /// checks still due. `newest` is the zone's newest part, read before its jobs were found or
    /// made: a dataset read for the first time starts after it (older parts are not its job's),
    /// and parts after the resume point are a backlog.
    pub(super) async fn recover(
        run: &mut ZoneRun<'_>,
        pushed: LogpushDataset,
        ensured: logpush_job::Ensured,
        fields: String,
        newest: Option<u64>,
    ) -> Result<Self, JournalError> {
        let logpush_job::Ensured {
            job,
            pushing_before,
        } = ensured;
        let settings = &run.shared.settings;
        let dataset = pushed.as_str();
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
            dataset,
            pushed,
            fields,
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
        // A job made or switched on just now pushes only from now: the window around it holds
        // part of what Cloudflare counts. A job that pushed on while no collector read kept
        // everything (the windows open at a crash are filled again from the parts), and the
        // windows an earlier owner closed are checked too.
        if !pushing_before || stored.is_none() {
            push.completeness.pushing_from(now);
        }
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
                push.state.resume_after = newest.unwrap_or(0);
                push.read_through = push.state.resume_after;
                push.state
                    .store(&run.shared.cursors, run.zone(), dataset)
                    .await;
            }
        }
        // Parts stored after the resume point are a backlog to read before any window closes.
        push.behind = newest.is_some_and(|newest| newest > push.state.resume_after);
        tracing::info!(zone = %run.zone(), dataset, next_window = push.next_close,
            resume_after = push.state.resume_after, backlog = push.behind, "reading the zone's pushes");
        Ok(push)
    }

    /// Keeps the job switched off while the zone is paused, and the zone's health showing
    /// what Cloudflare says about the job's pushes.
    pub(super) async fn keep_job(&mut self, run: &mut ZoneRun<'_>) -> Option<Exit> {
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
                    self.job_trouble = Some(problem.reason);
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
        None
    }

    /// Compares the windows closed a while ago with Cloudflare's counts of the zone's requests
    /// and of the records its Logpush job gave up on, and shows what is missing in the zone's
    /// health and metrics. A check Cloudflare cannot answer is logged and left; the windows are
    /// archived either way.
    pub(super) async fn check_completeness(&mut self, run: &mut ZoneRun<'_>) {
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
        let fields = self.fields.clone();
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

    /// Every trouble of the dataset at once — the job's pushes, the bucket feed, the
    /// cross-check — so one that clears does not hide another that has not.
    pub(super) fn troubles(&mut self) -> Vec<String> {
        if let Some(feed) = self.bucket_trouble.as_mut()
            && feed.has_changed().unwrap_or(false)
        {
            self.bucket_now = feed.borrow_and_update().clone();
        }
        [
            self.job_trouble.as_deref(),
            self.bucket_now.as_deref(),
            self.completeness_trouble
                .as_ref()
                .map(|(_, words)| words.as_str()),
        ]
        .into_iter()
        .flatten()
        .map(str::to_owned)
        .collect()
    }

    /// When the next window or late close is due, in collector time.
    pub(super) fn next_due(&self) -> i64 {
        let window = self.next_close + self.size + self.lateness;
        self.late
            .values()
            .map(|l| l.opened_at + self.size)
            .fold(window, i64::min)
    }

    /// Notes a part with nothing for this dataset (another dataset's, or one read before).
    pub(super) fn pass(&mut self, seq: u64) {
        self.read_through = self.read_through.max(seq);
    }

    /// Files every record of one of the dataset's parts into its window.
    pub(super) async fn file(
        &mut self,
        run: &mut ZoneRun<'_>,
        seq: u64,
        part: &PushReceived,
    ) -> Result<(), AttemptError> {
        let zone = run.zone().to_owned();
        let metrics = run.shared.metrics.clone();
        let content = match part.content() {
            Ok(content) => content,
            Err(error) => {
                tracing::error!(%zone, seq, %error, records = part.records, "a push part does not decompress; skipped");
                metrics.pushed(&zone, self.dataset, "unreadable", u64::from(part.records));
                self.read_through = seq;
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
                    tracing::warn!(%zone, seq, %error, "a pushed record without a readable time; skipped");
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
                match self.state.fate(start, seq) {
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
            filling.first_part.get_or_insert(seq);
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
        self.read_through = seq;
        counts.report(&metrics, &zone, self.dataset);
        if counts.before_start > 0 {
            tracing::warn!(%zone, seq, records = counts.before_start,
                "pushed records for time the zone's log does not cover (before its first pushed window, or a paused gap); not archived");
        }
        Ok(())
    }

    /// Closes every window the watermark has passed and every late close that waited long enough.
    pub(super) async fn close_due(&mut self, run: &mut ZoneRun<'_>) -> Result<(), AttemptError> {
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
        let fields = self.fields.clone();
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

    pub(super) fn exit(&self, run: &ZoneRun<'_>, error: &AttemptError) -> Exit {
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
