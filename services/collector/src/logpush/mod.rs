//! Logpush: Cloudflare pushes the zone's records to RainLogs' ingest endpoint (or into the
//! customer's bucket, whose new objects a feed stores), which stores each push in `RL_PUSH`
//! (`rl.push.<zone>`) before it answers. This method reads those parts in order and files every
//! record into the window of its own timestamp.
//!
//! * Each dataset (`http_requests`, and the zone's security events, `firewall_events`) has its
//!   own job, windows and cursor ([`dataset::PushRun`]); one reader hands each part to its
//!   dataset. A dataset whose job Cloudflare refuses (its plan, the 4-job limit) is shown in the
//!   zone's health and tried again at every recheck; the others go on.
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
//!   point ([`crate::push_cursor::PushCursor`]).
//!
//! What this method cannot see: batches Cloudflare dropped after its retries (its Logpush
//! health says how many), and pushes while the zone is paused (their windows are `paused` gaps).

use std::time::{Duration, Instant};

use rainlogs_bus::async_nats::jetstream::consumer::{DeliverPolicy, pull};
use rainlogs_bus::{Bus, CancellationToken};
use rainlogs_cloudflare::{LOGPUSH_FIREWALL_FIELDS, LogpushDataset};
use rainlogs_push::PushSource;
use rainlogs_schemas::events::{Method, PushReceived};
use rainlogs_schemas::{Envelope, Event, subjects};
use tokio::sync::mpsc;

use crate::bucket_feed::BucketFeed;
use crate::health::Status;
use crate::journal::JournalError;
use crate::logpush_job::{self, JobSpec};
use crate::onboarding::OnboardingFailure;
use crate::settings::CollectorOptions;
use crate::zone_run::{Exit, ZoneRun, journal_exit};

mod dataset;

use dataset::PushRun;

/// One part read from `RL_PUSH`, with its stream sequence.
struct ReadPart {
    seq: u64,
    /// More parts were already stored when this one was read: the reader is behind.
    behind: bool,
    part: Result<PushReceived, String>,
}

/// The datasets a Logpush zone pushes: its own first, then its security events.
fn datasets(own: LogpushDataset) -> Vec<LogpushDataset> {
    let mut all = vec![own];
    all.extend(LogpushDataset::ALL.into_iter().filter(|d| *d != own));
    all
}

/// The fields a dataset's job asks for: the zone's chosen ones for its own dataset.
fn fields_of(run: &ZoneRun<'_>, dataset: LogpushDataset) -> Vec<String> {
    if dataset.as_str() == run.plan.dataset {
        run.plan
            .fields
            .to_query_value()
            .split(',')
            .map(str::to_owned)
            .collect()
    } else {
        LOGPUSH_FIREWALL_FIELDS
            .iter()
            .map(|f| (*f).to_owned())
            .collect()
    }
}

/// When to try again after `problem`: soon for network trouble, else at the slow recheck.
fn retry_after(settings: &CollectorOptions, problem: &OnboardingFailure) -> Duration {
    if problem.transient {
        settings.retry_delay(1, None)
    } else {
        settings.recheck
    }
}

/// A dataset's job, found or made, what it asks for, and the feed that reads its bucket.
struct Job {
    ensured: logpush_job::Ensured,
    fields: String,
    feed: Option<BucketFeed>,
}

async fn ensure_job(
    run: &mut ZoneRun<'_>,
    dataset: LogpushDataset,
) -> Result<Job, OnboardingFailure> {
    let source = way_in(run, dataset)?;
    let spec = JobSpec {
        dataset,
        destination: source.destination,
        fields: fields_of(run, dataset),
    };
    let ensured = logpush_job::ensure(run, &spec).await?;
    Ok(Job {
        ensured,
        fields: spec.fields.join(","),
        feed: source.feed,
    })
}

/// A dataset whose job could not be made: why, and when to try again.
struct Missing {
    dataset: LogpushDataset,
    reason: String,
    retry_at: Instant,
}

pub async fn run(run: &mut ZoneRun<'_>) -> Exit {
    let settings = &run.shared.settings;
    let Some(own) = LogpushDataset::parse(run.plan.dataset) else {
        let dataset = run.plan.dataset;
        run.report(
            Status::Failing,
            format!("Logpush cannot push the dataset {dataset}"),
        )
        .await;
        return Exit::RetryAfter(settings.recheck);
    };
    // Read before any job is found or made: a dataset read for the first time starts after it.
    let newest = match newest_part(&run.shared.bus, run.zone()).await {
        Ok(newest) => newest,
        Err(e) => return journal_exit(run.zone(), &e, settings),
    };
    let mut pushes = Pushes {
        own,
        runs: Vec::new(),
        missing: Vec::new(),
        trouble_shown: None,
    };
    let mut feeds = Vec::new();
    for dataset in datasets(own) {
        match ensure_job(run, dataset).await {
            Ok(job) => {
                match PushRun::recover(run, dataset, job.ensured, job.fields, newest).await {
                    Ok(push) => {
                        pushes.runs.push(push);
                        feeds.push(job.feed);
                    }
                    Err(e) => return journal_exit(run.zone(), &e, settings),
                }
            }
            Err(problem) if dataset == own => {
                let exit = Exit::RetryAfter(retry_after(settings, &problem));
                run.report(problem.status, problem.reason).await;
                return exit;
            }
            Err(problem) => {
                tracing::warn!(zone = %run.zone(), dataset = dataset.as_str(), reason = %problem.reason,
                    "the zone's Logpush job for this dataset cannot be made; its other datasets go on");
                pushes.missing.push(Missing {
                    dataset,
                    retry_at: Instant::now() + retry_after(settings, &problem),
                    reason: problem.reason,
                });
            }
        }
    }
    let stop = CancellationToken::new();
    let (parts_tx, mut parts) = mpsc::channel(4);
    let reader = tokio::spawn(read_parts(
        run.shared.bus.clone(),
        subjects::push(run.zone()),
        pushes.resume_after(),
        parts_tx,
        stop.clone(),
    ));
    let mut pollers = Vec::new();
    for (push, feed) in pushes.runs.iter_mut().zip(feeds) {
        let Some(feed) = feed else { continue };
        let (trouble_tx, trouble_rx) = tokio::sync::watch::channel(None);
        push.bucket_trouble = Some(trouble_rx);
        pollers.push(tokio::spawn(poll_bucket(
            feed,
            BucketTarget {
                bus: run.shared.bus.clone(),
                tenant: run.entry.tenant.clone(),
                zone: run.zone().to_owned(),
                dataset: push.pushed,
            },
            run.shared.clock.clone(),
            settings.bucket_poll,
            trouble_tx,
            stop.clone(),
        )));
    }
    let exit = pushes.follow(run, &mut parts).await;
    stop.cancel();
    let _ = reader.await;
    for poller in pollers {
        let _ = poller.await;
    }
    // A removed zone, or one collected another way from now on, needs no job pushing for it:
    // what it pushed would wait for nobody. Its push state goes too, so the time until it is
    // pushed again is a gap, not windows its job pushed nothing for.
    if run.is_removed() || run.entry.method != run.plan.method {
        for push in &pushes.runs {
            logpush_job::remove(run, &push.job).await;
            crate::push_cursor::PushCursor::forget(&run.shared.cursors, run.zone(), push.dataset)
                .await;
            BucketFeed::forget(&run.shared.cursors, run.zone(), push.dataset).await;
        }
    }
    exit
}

/// How the zone's records come in: where its job pushes, and for a bucket, the feed that reads it.
struct WayIn {
    destination: logpush_job::Destination,
    feed: Option<BucketFeed>,
}

fn way_in(run: &ZoneRun<'_>, dataset: LogpushDataset) -> Result<WayIn, OnboardingFailure> {
    if run.plan.method != Method::LogpushS3 {
        return Ok(WayIn {
            destination: logpush_job::Destination::endpoint(run, dataset)?,
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
    .map_err(failing)?
    .for_dataset(dataset.as_str());
    let location = source.location().map_err(failing)?;
    let reader = source
        .reader(&location, &run.shared.settings.bucket_access)
        .map_err(failing)?;
    let mut feed = BucketFeed::new(
        reader.clone(),
        &location.path,
        run.shared.cursors.clone(),
        run.zone(),
        dataset.as_str(),
    );
    if source.delete_after_sealing {
        feed = feed.deleting_after_sealing(run.shared.bus.clone());
    }
    Ok(WayIn {
        destination: logpush_job::Destination::Bucket {
            destination_conf: source.destination_conf.clone(),
            // Without keys of the customer's, Cloudflare writes with its own identity, and
            // proves the bucket is the customer's with a file only its owner can read.
            ownership: (!location.has_write_keys).then_some(reader),
        },
        feed: Some(feed),
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
    mut feed: BucketFeed,
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
                if let Some(trouble) = &polled.delete_trouble {
                    tracing::warn!(zone = %target.zone, %trouble, "sealed objects stay in the bucket for now");
                }
                polled.delete_trouble
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

/// Every pushed dataset of the zone, fed by one reader of the zone's parts.
struct Pushes {
    /// The dataset the zone is collected for (`http_requests`); troubles of the others are
    /// named with their dataset.
    own: LogpushDataset,
    runs: Vec<PushRun>,
    missing: Vec<Missing>,
    /// The troubles as the zone's health last showed them.
    trouble_shown: Option<String>,
}

impl Pushes {
    /// Where the reader starts: after the part every dataset has filed.
    fn resume_after(&self) -> u64 {
        self.runs
            .iter()
            .map(|push| push.state.resume_after)
            .min()
            .unwrap_or(0)
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
            for push in &mut self.runs {
                if let Some(exit) = push.keep_job(run).await {
                    return exit;
                }
            }
            if let Some(exit) = self.retry_missing(run).await {
                return exit;
            }
            for push in &mut self.runs {
                if let Err(e) = push.close_due(run).await {
                    return push.exit(run, &e);
                }
                push.check_completeness(run).await;
            }
            self.show_trouble(run).await;
            let next_due = self
                .runs
                .iter()
                .map(PushRun::next_due)
                .min()
                .unwrap_or(i64::MAX);
            let wait = Duration::from_secs(
                u64::try_from(next_due.saturating_sub(run.now()))
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
            if let Some(exit) = self.file(run, part).await {
                return exit;
            }
        }
    }

    /// Hands a part to its dataset; the others only note it was read.
    async fn file(&mut self, run: &mut ZoneRun<'_>, read: ReadPart) -> Option<Exit> {
        let owner = match &read.part {
            Ok(part) => {
                let owner = self.runs.iter().position(|p| p.dataset == part.dataset);
                if owner.is_none() {
                    tracing::debug!(zone = %run.zone(), seq = read.seq, dataset = %part.dataset,
                        "a part of a dataset the zone's jobs do not push; not filed");
                }
                owner
            }
            Err(error) => {
                tracing::error!(zone = %run.zone(), seq = read.seq, %error, "an unreadable push part; skipped");
                None
            }
        };
        for (i, push) in self.runs.iter_mut().enumerate() {
            push.behind = read.behind;
            match (&read.part, owner == Some(i)) {
                // A part before the dataset's resume point has all its records in closes.
                (Ok(part), true) if read.seq > push.state.resume_after => {
                    if let Err(e) = push.file(run, read.seq, part).await {
                        return Some(push.exit(run, &e));
                    }
                }
                _ => push.pass(read.seq),
            }
        }
        None
    }

    /// Tries again to make the jobs Cloudflare refused; once one is made, the zone's collection
    /// starts over to read its dataset too.
    async fn retry_missing(&mut self, run: &mut ZoneRun<'_>) -> Option<Exit> {
        let settings = &run.shared.settings;
        for missing in &mut self.missing {
            if missing.retry_at > Instant::now() {
                continue;
            }
            match ensure_job(run, missing.dataset).await {
                Ok(job) => {
                    tracing::info!(zone = %run.zone(), dataset = missing.dataset.as_str(), job = job.ensured.job.id,
                        "the zone's Logpush job for this dataset is made; collection starts over to read it");
                    return Some(Exit::RetryAfter(settings.retry_base));
                }
                Err(problem) => {
                    missing.retry_at = Instant::now() + retry_after(settings, &problem);
                    missing.reason = problem.reason;
                }
            }
        }
        None
    }

    /// Shows in the zone's health every trouble of every dataset at once, so one that clears
    /// does not hide another that has not.
    async fn show_trouble(&mut self, run: &mut ZoneRun<'_>) {
        let mut troubles = Vec::new();
        for push in &mut self.runs {
            let named = push.pushed != self.own;
            troubles.extend(push.troubles().into_iter().map(|words| {
                if named {
                    format!("{}: {words}", push.dataset)
                } else {
                    words
                }
            }));
        }
        troubles.extend(self.missing.iter().map(|missing| {
            format!(
                "{} is not collected: {}",
                missing.dataset.as_str(),
                missing.reason
            )
        }));
        let shown = (!troubles.is_empty()).then(|| troubles.join("; "));
        if shown != self.trouble_shown {
            match &shown {
                Some(reason) => run.report(Status::Degraded, reason.clone()).await,
                None => run.report_plan().await,
            }
            self.trouble_shown = shown;
        }
    }
}
