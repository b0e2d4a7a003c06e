//! The sealer's loop: for each `archive.*` event, append exactly one entry for its window to
//! `rl.chain.<zone>` (compare-and-set on the subject's last sequence), and cover new entries
//! with signed checkpoints after each burst or at least every `checkpoint_every`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use rainlogs_bus::async_nats::jetstream;
use rainlogs_bus::{Bus, CancellationToken, PublishError, definitions};
use rainlogs_bus::{Disposition, continue_trace, settle};
use rainlogs_integrity::NoteSigningKey;
use rainlogs_runtime::ObjectStore;
use rainlogs_schemas::{Envelope, Event};
use tracing::Instrument as _;

use crate::body;
use crate::checkpointer::{self, Covered};
use crate::coverage::{LateTarget, Placement, ShortfallTarget};
use crate::first_windows::FirstWindows;
use crate::journal::Journal;
use crate::metrics::SealerMetrics;
use crate::reconcile::{self, catch_up};
use crate::settings::SealerSettings;
use crate::tlog::Tlog;
use crate::zone::ZoneLog;

/// Name of the durable consumer in `nats/consumers`.
pub const CONSUMER: &str = "sealer";

/// Appends that lose the race to another sealer before this one gives the event back.
const APPEND_ATTEMPTS: usize = 16;
/// After a failed checkpoint, wait this long before the next try.
const CHECKPOINT_RETRY: Duration = Duration::from_secs(5);
/// How often each zone's checkpoint age is reported while nothing else happens.
const REPORT_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum SealerError {
    #[error("sealer cannot start: {0}")]
    Setup(String),
    #[error("sealer lost its consumer: {0}")]
    Consumer(String),
}

pub struct Sealer {
    core: Core,
    consumer: jetstream::consumer::PullConsumer,
}

struct Core {
    journal: Journal,
    tlog: Tlog,
    key: NoteSigningKey,
    settings: SealerSettings,
    zones: HashMap<String, ZoneLog>,
    first_windows: FirstWindows,
    /// Events whose window starts after its dataset's covered span, since when they wait.
    early: HashMap<(String, String, rainlogs_integrity::Window), Instant>,
    metrics: SealerMetrics,
}

impl Sealer {
    pub async fn start(
        bus: Bus,
        store: ObjectStore,
        key: NoteSigningKey,
        settings: SealerSettings,
    ) -> Result<Self, SealerError> {
        let setup = |e: &dyn std::fmt::Display| SealerError::Setup(e.to_string());
        let prefix = store.prefix.clone();
        let journal = Journal::open(bus.clone()).await.map_err(|e| setup(&e))?;
        let consumer = bus
            .durable_consumer(CONSUMER)
            .await
            .map_err(|e| setup(&e))?;
        let tlog = Tlog::new(store.store, prefix, key.verifier_key());
        let archive_stream = bus
            .js
            .get_stream(definitions::ARCHIVE)
            .await
            .map_err(|e| setup(&e))?;
        let batch_stream = bus
            .js
            .get_stream(definitions::BATCH)
            .await
            .map_err(|e| setup(&e))?;
        Ok(Self {
            core: Core {
                journal,
                tlog,
                key,
                settings,
                zones: HashMap::new(),
                first_windows: FirstWindows::new(archive_stream, batch_stream),
                early: HashMap::new(),
                metrics: SealerMetrics::new(&opentelemetry::global::meter(crate::NAME)),
            },
            consumer,
        })
    }

    /// Reports on `meter` instead of the global meter provider.
    #[must_use]
    pub fn metered(mut self, meter: &opentelemetry::metrics::Meter) -> Self {
        self.core.metrics = SealerMetrics::new(meter);
        self
    }

    /// Runs until `shutdown` fires, then covers what was sealed with a checkpoint.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), SealerError> {
        self.core.load_uncovered_zones().await;
        let mut messages = self
            .consumer
            .messages()
            .await
            .map_err(|e| SealerError::Consumer(e.to_string()))?;
        let mut last_message = Instant::now();
        let mut report = tokio::time::interval(REPORT_EVERY);
        report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result = loop {
            let due = self.core.next_checkpoint(last_message);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break Ok(()),
                () = sleep_until(due), if due.is_some() => self.core.checkpoint_due().await,
                _ = report.tick() => self.core.report(),
                next = messages.next() => match next {
                    Some(Ok(message)) => {
                        last_message = Instant::now();
                        let span = tracing::info_span!("sealer.seal", subject = %message.subject);
                        continue_trace(&span, message.headers.as_ref());
                        let answer = self.core.handle(&message).instrument(span).await;
                        settle(&message, answer).await;
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "sealer consumer error; continuing"),
                    None => break Err(SealerError::Consumer("message stream ended".into())),
                },
            }
        };
        self.core.checkpoint_all().await;
        result
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

/// `sealed_at_ns` is non-zero (docs/FORMAT.md §4.1), even on a clock set before 1970.
fn now_ns() -> u64 {
    rainlogs_schemas::unix_now_ns().max(1)
}

impl Core {
    async fn handle(&mut self, message: &jetstream::Message) -> Disposition {
        let envelope = match Envelope::from_cbor(&message.payload) {
            Ok(envelope) => envelope,
            Err(e) => return Disposition::Reject(format!("undecodable event: {e}")),
        };
        let subject_zone = message
            .subject
            .strip_prefix("rl.archive.")
            .unwrap_or_default();
        let Some(zone) = envelope.zone.clone().filter(|z| z == subject_zone) else {
            return Disposition::Reject(format!(
                "event zone {:?} does not match subject {}",
                envelope.zone, message.subject
            ));
        };
        let is_log_event = matches!(
            envelope.event,
            Event::ArchivePruned(_)
                | Event::ErasureRequested(_)
                | Event::WindowShort(_)
                | Event::IndexRebuilt(_)
        );
        if !is_log_event && body::dataset_and_window(&envelope.event).is_none() {
            return Disposition::Reject(format!(
                "{} is not an archive event",
                envelope.event.type_name()
            ));
        }
        if !self.zones.contains_key(&zone) {
            // Boxed: loading is rare and its future is large.
            match Box::pin(reconcile::load(
                &self.journal,
                &self.tlog,
                &envelope.tenant,
                &zone,
            ))
            .await
            {
                Ok(log) => {
                    self.zones.insert(zone.clone(), log);
                }
                Err(e) if e.is_retryable() => {
                    tracing::warn!(%zone, error = %e, "zone log cannot be loaded yet");
                    return Disposition::Retry(Duration::from_secs(5));
                }
                Err(e) => return Disposition::Reject(e.to_string()),
            }
        }
        let Some(log) = self.zones.get_mut(&zone) else {
            return Disposition::Retry(Duration::from_secs(1));
        };
        if log.tenant != envelope.tenant {
            return Disposition::Reject(format!(
                "zone {zone} is logged under tenant {}, not {}",
                log.tenant, envelope.tenant
            ));
        }
        if let Some(fault) = &log.fault {
            tracing::error!(alarm = true, %zone, %fault, "zone log is faulted; event held back");
            return Disposition::Retry(Duration::from_secs(60));
        }
        let appender = Appender {
            journal: &self.journal,
            metrics: &self.metrics,
        };
        if let Event::ArchivePruned(pruned) = &envelope.event {
            return Box::pin(seal_prune(appender, log, pruned, &envelope)).await;
        }
        if let Event::ErasureRequested(_) = &envelope.event {
            return Box::pin(seal_erasure(appender, log, &envelope)).await;
        }
        if let Event::IndexRebuilt(rebuilt) = &envelope.event {
            return Box::pin(seal_rebuilt_index(appender, log, rebuilt, &envelope)).await;
        }
        if let Event::WindowShort(short) = &envelope.event {
            return Box::pin(seal_shortfall(appender, log, short, &envelope)).await;
        }
        let body = match body::entry_body(&envelope.event, &log.coverage) {
            Ok(body) => body,
            Err(e) => return Disposition::Reject(e.to_string()),
        };
        let sealed = if let rainlogs_integrity::EntryBody::Late(_) = &body {
            Box::pin(seal_late(appender, log, body, &envelope)).await
        } else {
            Box::pin(seal(
                appender,
                &mut self.first_windows,
                log,
                &mut self.early,
                &self.settings,
                body,
                &envelope,
            ))
            .await
        };
        // The object's entry is in the log (now or before): its index follows it.
        if let (Disposition::Ack, Event::ArchiveStored(stored)) = (&sealed, &envelope.event)
            && let Some(index) = &stored.index
        {
            return Box::pin(seal_index(
                appender,
                log,
                &stored.object_key,
                index,
                &envelope,
            ))
            .await;
        }
        sealed
    }

    /// Loads every zone whose chain holds entries the bucket's checkpoint does not cover yet:
    /// a sealer stopped after appending them and before signing. Without this they would wait
    /// for the zone's next archive event, which may never come (a paused or removed zone).
    async fn load_uncovered_zones(&mut self) {
        let heads = match self.journal.heads().await {
            Ok(heads) => heads,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the zones' chains; uncovered entries wait for their zone's next event");
                return;
            }
        };
        for head in heads {
            let origin = match reconcile::origin(&head.tenant, &head.zone) {
                Ok(origin) => origin,
                Err(e) => {
                    tracing::error!(zone = %head.zone, error = %e, "chain of a zone that cannot name a log");
                    continue;
                }
            };
            let signed = match self.tlog.latest_checkpoint(&origin).await {
                Ok(signed) => signed.map_or(0, |c| c.size),
                Err(e) => {
                    tracing::warn!(zone = %head.zone, error = %e, "cannot read the zone's checkpoint");
                    continue;
                }
            };
            if head.index < signed {
                continue;
            }
            tracing::info!(zone = %head.zone, entries = head.index + 1, checkpoint = signed,
                "chain entries without a checkpoint; loading the zone to sign them");
            match Box::pin(reconcile::load(
                &self.journal,
                &self.tlog,
                &head.tenant,
                &head.zone,
            ))
            .await
            {
                Ok(log) => {
                    self.zones.insert(head.zone, log);
                }
                Err(e) => {
                    tracing::warn!(zone = %head.zone, error = %e, "zone log cannot be loaded yet; it loads with its next event");
                }
            }
        }
    }

    fn report(&self) {
        let now = Instant::now();
        for log in self.zones.values() {
            self.metrics.zone(log, now);
        }
    }

    fn next_checkpoint(&self, last_message: Instant) -> Option<Instant> {
        self.zones
            .values()
            .filter(|z| z.fault.is_none())
            .filter_map(|z| {
                let since = z.uncovered_since?;
                let due = (since + self.settings.checkpoint_every)
                    .min(last_message + self.settings.quiet);
                Some(z.checkpoint_not_before.map_or(due, |nb| due.max(nb)))
            })
            .min()
    }

    async fn checkpoint_due(&mut self) {
        let now = Instant::now();
        let zones: Vec<String> = self
            .zones
            .iter()
            .filter(|(_, z)| {
                z.fault.is_none()
                    && z.uncovered_since.is_some()
                    && z.checkpoint_not_before.is_none_or(|nb| nb <= now)
            })
            .map(|(zone, _)| zone.clone())
            .collect();
        for zone in zones {
            self.checkpoint_zone(&zone).await;
        }
    }

    async fn checkpoint_all(&mut self) {
        let zones: Vec<String> = self
            .zones
            .iter()
            .filter(|(_, z)| z.fault.is_none() && z.uncovered_since.is_some())
            .map(|(zone, _)| zone.clone())
            .collect();
        for zone in zones {
            self.checkpoint_zone(&zone).await;
        }
    }

    async fn checkpoint_zone(&mut self, zone: &str) {
        let Some(log) = self.zones.get_mut(zone) else {
            return;
        };
        match Box::pin(checkpointer::checkpoint(
            &self.journal,
            &self.tlog,
            &self.key,
            log,
        ))
        .await
        {
            Ok(Covered::Signed(size)) => {
                log.checkpoint_not_before = None;
                self.metrics.checkpoint(zone, "signed");
                tracing::debug!(zone, size, "checkpoint signed");
            }
            Ok(Covered::Already(size)) => {
                log.checkpoint_not_before = None;
                self.metrics.checkpoint(zone, "already");
                tracing::debug!(zone, size, "bucket checkpoint already covers the log");
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(zone, error = %e, "checkpoint failed; will retry");
                self.metrics.checkpoint(zone, "failed");
                log.checkpoint_not_before = Some(Instant::now() + CHECKPOINT_RETRY);
            }
            Err(e) => {
                tracing::error!(alarm = true, zone, error = %e, "checkpoint refused");
                self.metrics.checkpoint(zone, "refused");
                log.checkpoint_not_before = Some(Instant::now() + CHECKPOINT_RETRY);
            }
        }
        self.metrics.zone(log, Instant::now());
    }
}

/// Appends the entry for `body`'s window unless the log already accounts for it.
async fn seal(
    appender: Appender<'_>,
    first_windows: &mut FirstWindows,
    log: &mut ZoneLog,
    early: &mut HashMap<(String, String, rainlogs_integrity::Window), Instant>,
    settings: &SealerSettings,
    body: rainlogs_integrity::EntryBody,
    cause: &Envelope,
) -> Disposition {
    let (Some(dataset), Some(window)) = (body.dataset().cloned(), body.window()) else {
        return Disposition::Reject("entry has no window".into());
    };
    let early_key = (log.zone.clone(), dataset.to_string(), window);
    let mut caught_up = false;
    for _ in 0..APPEND_ATTEMPTS {
        let first_of_dataset = log.coverage.is_new(&dataset);
        // The start of the earlier window this one has to wait for, if any.
        let waits_for = match log.coverage.place(&dataset, &window) {
            Placement::Next if first_of_dataset => {
                match first_windows.earliest(&log.zone, &dataset).await {
                    Ok(Some(earliest)) if earliest < window.start_ns() => Some(earliest),
                    Ok(_) => None,
                    Err(e) => {
                        tracing::warn!(zone = %log.zone, error = %e, "cannot read the archive events");
                        return Disposition::Retry(Duration::from_secs(2));
                    }
                }
            }
            Placement::Next => None,
            Placement::Sealed => {
                early.remove(&early_key);
                tracing::debug!(zone = %log.zone, %dataset, ?window, "window already sealed");
                return Disposition::Ack;
            }
            Placement::Overlapping {
                covered_from_ns,
                covered_until_ns,
            } => {
                return Disposition::Reject(format!(
                    "window {window:?} of {dataset} overlaps the sealed span [{covered_from_ns}, {covered_until_ns})"
                ));
            }
            Placement::Early { covered_until_ns } => Some(covered_until_ns),
        };
        if let Some(earlier) = waits_for {
            if !caught_up {
                // Another sealer may have sealed the windows in between.
                caught_up = true;
                if let Err(e) = catch_up(appender.journal, log).await {
                    tracing::warn!(zone = %log.zone, error = %e, "cannot read the chain");
                    return Disposition::Retry(Duration::from_secs(2));
                }
                continue;
            }
            let since = *early.entry(early_key.clone()).or_insert_with(Instant::now);
            if since.elapsed() < settings.early_window_wait {
                return Disposition::Retry(Duration::from_secs(1));
            }
            tracing::error!(zone = %log.zone, %dataset, ?window, earlier,
                "the windows before this one never got an entry; sealing past the hole");
        }
        match appender.append(log, &body, cause).await {
            Appended::Sealed { index, kind } => {
                early.remove(&early_key);
                if first_of_dataset {
                    first_windows.forget(&log.zone);
                }
                tracing::debug!(zone = %log.zone, index, %dataset, ?window, kind, "entry sealed");
                return Disposition::Ack;
            }
            Appended::Raced => {}
            Appended::Stop(answer) => return answer,
        }
    }
    Disposition::Retry(Duration::from_millis(100))
}

/// Appends a `late` entry once per late archive, after the entry of the window it adds to.
async fn seal_late(
    appender: Appender<'_>,
    log: &mut ZoneLog,
    body: rainlogs_integrity::EntryBody,
    cause: &Envelope,
) -> Disposition {
    let Some(record) = body.archive().cloned() else {
        return Disposition::Reject("a late entry without an archive".into());
    };
    let mut caught_up = false;
    for _ in 0..APPEND_ATTEMPTS {
        if log.coverage.has_late(&record.object.key) {
            tracing::debug!(zone = %log.zone, key = %record.object.key, "late archive already sealed");
            return Disposition::Ack;
        }
        if log.erased {
            return Disposition::Reject(
                "late records after the tenant's erasure are not logged".into(),
            );
        }
        match log.coverage.late_target(&record.dataset, &record.window) {
            LateTarget::Takes => {}
            LateTarget::Refused(why) => {
                tracing::error!(alarm = true, zone = %log.zone, dataset = %record.dataset,
                    window = ?record.window, %why, "late records refused");
                return Disposition::Reject(format!(
                    "late records for {:?} of {}: {why}",
                    record.window, record.dataset
                ));
            }
            LateTarget::NotYet => {
                if let Some(answer) = wait_for_window(appender, log, &mut caught_up).await {
                    return answer;
                }
                continue;
            }
        }
        match appender.append(log, &body, cause).await {
            Appended::Sealed { index, .. } => {
                tracing::info!(zone = %log.zone, index, dataset = %record.dataset, window = ?record.window,
                    records = record.record_count, "late records sealed");
                return Disposition::Ack;
            }
            Appended::Raced => {}
            Appended::Stop(answer) => return answer,
        }
    }
    Disposition::Retry(Duration::from_millis(100))
}

/// The entry a late or shortfall entry names is not sealed yet (its event is still on its way):
/// reads the chain once, as another sealer may have sealed it, then waits for it. `None`: look
/// again.
async fn wait_for_window(
    appender: Appender<'_>,
    log: &mut ZoneLog,
    caught_up: &mut bool,
) -> Option<Disposition> {
    if *caught_up {
        return Some(Disposition::Retry(Duration::from_secs(2)));
    }
    *caught_up = true;
    if let Err(e) = catch_up(appender.journal, log).await {
        tracing::warn!(zone = %log.zone, error = %e, "cannot read the chain");
        return Some(Disposition::Retry(Duration::from_secs(2)));
    }
    None
}

/// Appends a window's one `shortfall` entry, after the window's own entry.
async fn seal_shortfall(
    appender: Appender<'_>,
    log: &mut ZoneLog,
    event: &rainlogs_schemas::events::WindowShort,
    cause: &Envelope,
) -> Disposition {
    let record = match body::shortfall_record(event) {
        Ok(record) => record,
        Err(e) => return Disposition::Reject(e.to_string()),
    };
    let body = rainlogs_integrity::EntryBody::Shortfall(record.clone());
    let mut caught_up = false;
    for _ in 0..APPEND_ATTEMPTS {
        if log.erased {
            return Disposition::Reject("no shortfall is logged after the tenant's erasure".into());
        }
        match log
            .coverage
            .shortfall_target(&record.dataset, &record.window, record.source_count)
        {
            ShortfallTarget::Takes => {}
            ShortfallTarget::Logged => {
                tracing::debug!(zone = %log.zone, dataset = %record.dataset, window = ?record.window,
                    "shortfall already logged");
                return Disposition::Ack;
            }
            // Late records made the window whole before its shortfall came: nothing is missing.
            ShortfallTarget::Whole { held } => {
                tracing::info!(zone = %log.zone, dataset = %record.dataset, window = ?record.window,
                    source_records = record.source_count, held, "window already whole; no shortfall logged");
                return Disposition::Ack;
            }
            ShortfallTarget::Refused(why) => {
                tracing::error!(alarm = true, zone = %log.zone, dataset = %record.dataset,
                    window = ?record.window, %why, "shortfall refused");
                return Disposition::Reject(format!(
                    "shortfall of {:?} of {}: {why}",
                    record.window, record.dataset
                ));
            }
            ShortfallTarget::NotYet => {
                if let Some(answer) = wait_for_window(appender, log, &mut caught_up).await {
                    return answer;
                }
                continue;
            }
        }
        match appender.append(log, &body, cause).await {
            Appended::Sealed { index, .. } => {
                tracing::warn!(zone = %log.zone, index, dataset = %record.dataset, window = ?record.window,
                    source_records = record.source_count, archived_records = event.archived_records,
                    "window sealed as short of the source's count");
                return Disposition::Ack;
            }
            Appended::Raced => {}
            Appended::Stop(answer) => return answer,
        }
    }
    Disposition::Retry(Duration::from_millis(100))
}

/// Appends the `index` entry of an archive or late object right after the object's entry, once.
async fn seal_index(
    appender: Appender<'_>,
    log: &mut ZoneLog,
    object_key: &str,
    index: &rainlogs_schemas::events::IndexStored,
    cause: &Envelope,
) -> Disposition {
    let index = match body::index_object(object_key, index) {
        Ok(index) => index,
        Err(e) => return Disposition::Reject(e.to_string()),
    };
    for _ in 0..APPEND_ATTEMPTS {
        let Some(target) = log
            .unindexed
            .target(object_key)
            .filter(|t| !log.unindexed.is_indexed(t.index))
        else {
            tracing::debug!(zone = %log.zone, key = %object_key, "index already sealed");
            return Disposition::Ack;
        };
        let body = target.index_body(index.clone());
        match appender.append(log, &body, cause).await {
            Appended::Sealed { .. } => return Disposition::Ack,
            Appended::Raced => {}
            Appended::Stop(answer) => return answer,
        }
    }
    Disposition::Retry(Duration::from_millis(100))
}

/// Logs the index object `rainlogs index rebuild` wrote for an archive sealed without one, as an
/// `index` entry naming that archive's entry, once.
async fn seal_rebuilt_index(
    appender: Appender<'_>,
    log: &mut ZoneLog,
    event: &rainlogs_schemas::events::IndexRebuilt,
    cause: &Envelope,
) -> Disposition {
    let target = match rainlogs_integrity::Entry::decode(&event.target_entry) {
        Ok(entry) if entry.index == event.target_index && entry.origin == log.origin => entry,
        Ok(_) => {
            return Disposition::Reject(format!(
                "the target entry is not entry {} of {}",
                event.target_index, log.origin
            ));
        }
        Err(e) => return Disposition::Reject(format!("the target entry does not decode: {e}")),
    };
    let Some(record) = target.body.archive().cloned() else {
        return Disposition::Reject(format!(
            "entry {} is a {} entry, which has no archive to index",
            event.target_index,
            target.kind().as_str()
        ));
    };
    let index = match body::index_object(&record.object.key, &event.index) {
        Ok(index) => index,
        Err(e) => return Disposition::Reject(e.to_string()),
    };
    if let Some(answer) = reach(appender.journal, log, event.target_index).await {
        return answer;
    }
    for _ in 0..APPEND_ATTEMPTS {
        if log.unindexed.is_indexed(event.target_index) {
            tracing::debug!(zone = %log.zone, target = event.target_index, "index already sealed");
            return Disposition::Ack;
        }
        if event.target_index >= log.size() {
            return Disposition::Reject(format!("entry {} is not in the log", event.target_index));
        }
        if log.pruned.contains(event.target_index) {
            return Disposition::Reject(format!(
                "the archive of entry {} was pruned; its index goes with it",
                event.target_index
            ));
        }
        let target = crate::unindexed::IndexTarget {
            index: event.target_index,
            entry_id: rainlogs_integrity::entry_id(&event.target_entry),
            record: record.clone(),
        };
        let body = target.index_body(index.clone());
        match appender.append(log, &body, cause).await {
            Appended::Sealed { index, .. } => {
                tracing::info!(zone = %log.zone, index, target = event.target_index, "rebuilt index sealed");
                return Disposition::Ack;
            }
            Appended::Raced => {}
            Appended::Stop(answer) => return answer,
        }
    }
    Disposition::Retry(Duration::from_millis(100))
}

/// Reads the chain once when the entry at `target` is beyond what this sealer has seen: another
/// sealer may have sealed it since. `Some` is the answer when the chain cannot be read.
async fn reach(journal: &Journal, log: &mut ZoneLog, target: u64) -> Option<Disposition> {
    if target < log.size() {
        return None;
    }
    match catch_up(journal, log).await {
        Ok(()) => None,
        Err(e) => {
            tracing::warn!(zone = %log.zone, error = %e, "cannot read the chain");
            Some(Disposition::Retry(Duration::from_secs(2)))
        }
    }
}

/// Logs the deletion of an archive object as a `prune` entry, once per archive entry.
async fn seal_prune(
    appender: Appender<'_>,
    log: &mut ZoneLog,
    event: &rainlogs_schemas::events::ArchivePruned,
    cause: &Envelope,
) -> Disposition {
    if let Some(answer) = reach(appender.journal, log, event.target_index).await {
        return answer;
    }
    for _ in 0..APPEND_ATTEMPTS {
        if log.pruned.contains(event.target_index) {
            tracing::debug!(zone = %log.zone, target = event.target_index, "prune already logged");
            return Disposition::Ack;
        }
        let body = match body::prune_body(event, &log.origin, log.size(), now_ns()) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(alarm = true, zone = %log.zone, error = %e, "prune refused");
                return Disposition::Reject(e.to_string());
            }
        };
        match appender.append(log, &body, cause).await {
            Appended::Sealed { index, .. } => {
                tracing::info!(zone = %log.zone, index, target = event.target_index, "prune sealed");
                return Disposition::Ack;
            }
            Appended::Raced => {}
            Appended::Stop(answer) => return answer,
        }
    }
    Disposition::Retry(Duration::from_millis(100))
}

/// Appends the log's one `erasure` entry; a repeated request (or one another sealer already
/// served) is acknowledged without a second.
async fn seal_erasure(appender: Appender<'_>, log: &mut ZoneLog, cause: &Envelope) -> Disposition {
    for _ in 0..APPEND_ATTEMPTS {
        if log.erased {
            tracing::debug!(zone = %log.zone, "erasure already logged");
            return Disposition::Ack;
        }
        match appender
            .append(log, &rainlogs_integrity::EntryBody::Erasure, cause)
            .await
        {
            Appended::Sealed { index, .. } => {
                tracing::info!(zone = %log.zone, index, "erasure sealed");
                return Disposition::Ack;
            }
            Appended::Raced => {}
            Appended::Stop(answer) => return answer,
        }
    }
    Disposition::Retry(Duration::from_millis(100))
}

enum Appended {
    /// This sealer's entry is now in the chain (and applied to `log`).
    Sealed {
        index: u64,
        kind: &'static str,
    },
    /// Another writer got there first; `log` has caught up, decide again.
    Raced,
    Stop(Disposition),
}

/// What appending an entry needs: the chain, and the count of what was sealed.
#[derive(Clone, Copy)]
struct Appender<'a> {
    journal: &'a Journal,
    metrics: &'a SealerMetrics,
}

impl Appender<'_> {
    async fn append(
        self,
        log: &mut ZoneLog,
        body: &rainlogs_integrity::EntryBody,
        cause: &Envelope,
    ) -> Appended {
        let appended = append_entry(self.journal, log, body, cause).await;
        if let Appended::Sealed { kind, .. } = &appended {
            self.metrics.sealed(&log.zone, kind);
        }
        appended
    }
}

/// One compare-and-set append of `body` after the log's newest entry.
async fn append_entry(
    journal: &Journal,
    log: &mut ZoneLog,
    body: &rainlogs_integrity::EntryBody,
    cause: &Envelope,
) -> Appended {
    let sealed = match log.chain.clone().seal(body.clone(), now_ns()) {
        Ok(sealed) => sealed,
        Err(e) => return Appended::Stop(Disposition::Reject(e.to_string())),
    };
    let index = sealed.entry.index;
    let appended = journal
        .append(
            &log.subject,
            &log.tenant,
            &log.zone,
            &sealed,
            Some(cause),
            log.last_sequence,
        )
        .await;
    match appended {
        Ok(published) if !published.duplicate => {
            if let Err(e) = log.apply(published.sequence, index, &sealed.bytes) {
                log.fault = Some(format!("own entry does not apply: {e}"));
                return Appended::Stop(Disposition::Retry(Duration::from_secs(60)));
            }
            Appended::Sealed {
                index,
                kind: sealed.entry.kind().as_str(),
            }
        }
        // The same entry is already stored, or another sealer appended first: read what the
        // chain holds now.
        Ok(_) | Err(PublishError::WrongLastSequence { .. }) => {
            if let Err(e) = catch_up(journal, log).await {
                tracing::warn!(zone = %log.zone, error = %e, "cannot read the chain");
                return Appended::Stop(Disposition::Retry(Duration::from_secs(2)));
            }
            if let Some(fault) = &log.fault {
                tracing::error!(alarm = true, zone = %log.zone, %fault, "chain does not verify");
                return Appended::Stop(Disposition::Retry(Duration::from_secs(60)));
            }
            Appended::Raced
        }
        Err(e) => {
            tracing::warn!(zone = %log.zone, error = %e, "appending to the chain failed");
            Appended::Stop(Disposition::Retry(Duration::from_secs(1)))
        }
    }
}
