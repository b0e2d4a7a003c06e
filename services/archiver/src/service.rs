//! The archiver's loop: take batches and window closes from the `archiver` consumer, hold batch
//! messages (unacknowledged, kept alive) until their window's outcome is durable, close windows
//! one at a time per (zone, dataset) and a few in parallel overall, then acknowledge.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use rainlogs_bus::async_nats::jetstream::{self, AckKind};
use rainlogs_bus::async_nats::{Client, Subject};
use rainlogs_bus::{
    Bus, CancellationToken, ControlFeed, continue_trace, control_feed, definitions,
};
use rainlogs_runtime::ObjectStore;
use rainlogs_schemas::{Envelope, Event};
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::close::{CloseContext, CloseJob, CloseOutcome, close_window};
use crate::metrics::ArchiverMetrics;
use crate::retention::RetentionPolicies;
use crate::settings::ArchiverSettings;
use crate::tracker::{BatchVerdict, CloseVerdict, Settlement, Tracker, WindowKey};

/// Name of the durable consumer in `nats/consumers`.
pub const CONSUMER: &str = "archiver";

/// How long a batch that arrived before its predecessors waits before it is delivered again.
const OUT_OF_ORDER_DELAY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ArchiverError {
    #[error("archiver cannot start: {0}")]
    Setup(String),
    #[error("archiver lost its consumer: {0}")]
    Consumer(String),
}

/// A started archiver: consumer attached, work directory ready.
pub struct Archiver {
    ctx: Arc<CloseContext>,
    consumer: jetstream::consumer::PullConsumer,
    control: ControlFeed,
    metrics: ArchiverMetrics,
}

/// A `WindowClosed` waiting for its lane.
struct PendingClose {
    key: WindowKey,
    envelope: Envelope,
    closed: rainlogs_schemas::events::WindowClosed,
    delivered: i64,
    /// The close's span, a child of the collector's window span when the message carried it.
    span: tracing::Span,
}

type Lane = (String, String);

impl Archiver {
    pub async fn start(
        bus: Bus,
        store: ObjectStore,
        settings: ArchiverSettings,
    ) -> Result<Self, ArchiverError> {
        let setup = |e: &dyn std::fmt::Display| ArchiverError::Setup(e.to_string());
        let prefix = store.prefix.clone();
        clear_work_dir(&settings.work_dir).await.map_err(|e| {
            setup(&format!(
                "work directory {}: {e}",
                settings.work_dir.display()
            ))
        })?;
        let consumer = bus
            .durable_consumer(CONSUMER)
            .await
            .map_err(|e| setup(&e))?;
        let batch_stream = bus
            .js
            .get_stream(definitions::BATCH)
            .await
            .map_err(|e| setup(&e))?;
        // Every policy must be known before the first window is archived with one.
        let mut control = control_feed(&bus).await.map_err(|e| setup(&e))?;
        let mut retention = RetentionPolicies::new(settings.retention);
        control
            .catch_up(|event| retention.apply(event))
            .await
            .map_err(|e| setup(&e))?;
        Ok(Self {
            ctx: Arc::new(CloseContext {
                bus,
                batch_stream,
                store: store.store,
                prefix,
                settings,
                retention: std::sync::RwLock::new(retention),
            }),
            consumer,
            control,
            metrics: ArchiverMetrics::new(&opentelemetry::global::meter(crate::NAME)),
        })
    }

    /// Reports on `meter` instead of the global meter provider.
    #[must_use]
    pub fn metered(mut self, meter: &opentelemetry::metrics::Meter) -> Self {
        self.metrics = ArchiverMetrics::new(meter);
        self
    }

    /// Runs until `shutdown` fires; windows being closed are finished first.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), ArchiverError> {
        let mut messages = self
            .consumer
            .messages()
            .await
            .map_err(|e| ArchiverError::Consumer(e.to_string()))?;
        let mut state = State {
            ctx: self.ctx.clone(),
            client: self.ctx.bus.client.clone(),
            tracker: Tracker::default(),
            lanes: HashMap::new(),
            busy_lanes: HashSet::new(),
            jobs: JoinSet::new(),
            metrics: self.metrics.clone(),
        };
        let mut keep_alive = tokio::time::interval(self.ctx.settings.keep_alive_every);
        keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result = loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break Ok(()),
                Some(done) = state.jobs.join_next(), if !state.jobs.is_empty() => {
                    match done {
                        Ok((pending, outcome, took)) => state.settle(pending, outcome, took).await,
                        Err(e) => tracing::error!(error = %e, "a window close task failed"),
                    }
                    state.start_ready();
                }
                _ = keep_alive.tick() => state.keep_alive().await,
                control = self.control.next() => match control {
                    Some(Ok(event)) => self
                        .ctx
                        .retention
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .apply(&event),
                    Some(Err(e)) => tracing::error!(error = %e, "undecodable control event"),
                    None => break Err(ArchiverError::Consumer("control stream ended".into())),
                },
                next = messages.next() => match next {
                    Some(Ok(message)) => {
                        state.handle(message).await;
                        state.start_ready();
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "archiver consumer error; continuing"),
                    None => break Err(ArchiverError::Consumer("message stream ended".into())),
                },
            }
        };
        state.shut_down().await;
        result
    }
}

async fn clear_work_dir(dir: &std::path::Path) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        if entry.file_name().to_string_lossy().ends_with(".part") {
            tokio::fs::remove_file(entry.path()).await?;
        }
    }
    Ok(())
}

struct State {
    ctx: Arc<CloseContext>,
    client: Client,
    tracker: Tracker,
    lanes: HashMap<Lane, VecDeque<PendingClose>>,
    busy_lanes: HashSet<Lane>,
    jobs: JoinSet<(PendingClose, CloseOutcome, Duration)>,
    metrics: ArchiverMetrics,
}

impl State {
    async fn handle(&mut self, message: jetstream::Message) {
        let reply = message.reply.clone();
        let (stream_seq, delivered) = match message.info() {
            Ok(info) => (info.stream_sequence, info.delivered),
            Err(e) => {
                tracing::warn!(error = %e, "message without JetStream metadata; ignored");
                return;
            }
        };
        let envelope = match Envelope::from_cbor(&message.payload) {
            Ok(envelope) => envelope,
            Err(e) => {
                tracing::error!(subject = %message.subject, error = %e, "undecodable event on RL_BATCH; terminated");
                self.answer(reply, AckKind::Term).await;
                return;
            }
        };
        let subject_zone = message
            .subject
            .strip_prefix("rl.batch.")
            .unwrap_or_default();
        let Some(zone) = envelope.zone.clone().filter(|z| z == subject_zone) else {
            tracing::error!(subject = %message.subject, zone = ?envelope.zone,
                "event zone does not match its subject; terminated");
            self.answer(reply, AckKind::Term).await;
            return;
        };
        match envelope.event.clone() {
            Event::BatchCollected(batch) => {
                let key = WindowKey::of(
                    &zone,
                    &batch.dataset,
                    &batch.window,
                    batch.late,
                    batch.attempt,
                );
                let verdict = self.tracker.on_batch(
                    &key,
                    batch.attempt,
                    batch.seq,
                    stream_seq,
                    reply.clone(),
                    Instant::now(),
                );
                match verdict {
                    BatchVerdict::Hold => {}
                    BatchVerdict::Ack => self.answer(reply, AckKind::Ack).await,
                    BatchVerdict::AheadOfOrder { expected } => {
                        tracing::debug!(
                            ?key,
                            seq = batch.seq,
                            expected,
                            "batch ahead of its predecessors"
                        );
                        self.answer(reply, AckKind::Nak(Some(OUT_OF_ORDER_DELAY)))
                            .await;
                    }
                }
            }
            Event::WindowClosed(closed) => {
                let key = WindowKey::of(
                    &zone,
                    &closed.dataset,
                    &closed.window,
                    closed.late,
                    closed.attempt,
                );
                match self.tracker.on_closed(&key, reply.clone()) {
                    CloseVerdict::Ack => self.answer(reply, AckKind::Ack).await,
                    CloseVerdict::Hold => {}
                    CloseVerdict::Close => {
                        let span = tracing::info_span!(
                            "archiver.close",
                            zone = %key.zone,
                            dataset = %key.dataset,
                            start = closed.window.start,
                            end = closed.window.end,
                        );
                        continue_trace(&span, message.headers.as_ref());
                        let pending = PendingClose {
                            key,
                            envelope,
                            closed,
                            delivered,
                            span,
                        };
                        self.lanes
                            .entry(pending.key.lane())
                            .or_default()
                            .push_back(pending);
                    }
                }
            }
            other => {
                tracing::error!(
                    event = other.type_name(),
                    "unexpected event type on RL_BATCH; terminated"
                );
                self.answer(reply, AckKind::Term).await;
            }
        }
    }

    /// Starts queued closes whose lane is free, up to the parallelism limit.
    fn start_ready(&mut self) {
        while self.jobs.len() < self.ctx.settings.parallel_windows.max(1) {
            let Some(lane) = self
                .lanes
                .iter()
                .find(|(lane, queue)| !queue.is_empty() && !self.busy_lanes.contains(*lane))
                .map(|(lane, _)| lane.clone())
            else {
                return;
            };
            let Some(pending) = self.lanes.get_mut(&lane).and_then(VecDeque::pop_front) else {
                return;
            };
            if self.lanes.get(&lane).is_some_and(VecDeque::is_empty) {
                self.lanes.remove(&lane);
            }
            self.busy_lanes.insert(lane);
            let job = CloseJob {
                key: pending.key.clone(),
                envelope: pending.envelope.clone(),
                closed: pending.closed.clone(),
                sequences: self.tracker.batches(&pending.key, pending.closed.attempt),
            };
            let ctx = self.ctx.clone();
            let span = pending.span.clone();
            self.jobs.spawn(async move {
                let started = Instant::now();
                let outcome = close_window(ctx, job).instrument(span).await;
                (pending, outcome, started.elapsed())
            });
        }
    }

    async fn settle(&mut self, pending: PendingClose, outcome: CloseOutcome, took: Duration) {
        self.busy_lanes.remove(&pending.key.lane());
        let key = &pending.key;
        let (settlement, delay) = match &outcome {
            CloseOutcome::Published { outcome, .. } => {
                tracing::info!(zone = %key.zone, dataset = %key.dataset, window = ?pending.closed.window, outcome, "window closed");
                (Settlement::Done, Duration::ZERO)
            }
            CloseOutcome::NotReady { have, want } => {
                tracing::debug!(
                    ?key,
                    have,
                    want,
                    "window closed before all its batches arrived; waiting"
                );
                (
                    Settlement::Later,
                    backoff(pending.delivered, Duration::from_secs(2)),
                )
            }
            CloseOutcome::Retry { reason } => {
                tracing::warn!(?key, %reason, "closing the window failed; will retry");
                (
                    Settlement::Later,
                    backoff(pending.delivered, Duration::from_secs(5)),
                )
            }
            CloseOutcome::Failed { reason, alarm } => {
                tracing::error!(?key, %reason, alarm, "window cannot be archived; its messages are terminated");
                (Settlement::Failed, Duration::ZERO)
            }
        };
        self.metrics.closed(&key.zone, &key.dataset, &outcome, took);
        let replies = self.tracker.settle(key, settlement, Instant::now());
        for reply in replies.ack {
            self.send(reply, AckKind::Ack).await;
        }
        for reply in replies.term {
            self.send(reply, AckKind::Term).await;
        }
        for reply in replies.nak {
            self.send(reply, AckKind::Nak(Some(delay))).await;
        }
    }

    async fn keep_alive(&mut self) {
        let now = Instant::now();
        let held: Vec<Subject> = self.tracker.held().cloned().collect();
        for reply in held {
            self.send(reply, AckKind::Progress).await;
        }
        for (key, attempt, replies) in self
            .tracker
            .abandon_idle(now, self.ctx.settings.abandon_after)
        {
            tracing::warn!(?key, %attempt, batches = replies.len(),
                "attempt got no batch and no close for too long; abandoned");
            for reply in replies {
                self.send(reply, AckKind::Term).await;
            }
        }
        self.tracker
            .forget_closed(now, self.ctx.settings.remember_closed_for);
        self.metrics.open_windows(self.tracker.open_windows());
        tracing::debug!(
            open_windows = self.tracker.open_windows(),
            closing = self.jobs.len(),
            "archiver keep-alive"
        );
    }

    async fn shut_down(&mut self) {
        while let Some(done) = self.jobs.join_next().await {
            if let Ok((pending, outcome, took)) = done {
                self.settle(pending, outcome, took).await;
            }
        }
        // Everything still held goes back to the server at once instead of after ack_wait.
        for reply in self.tracker.release_all() {
            self.send(reply, AckKind::Nak(None)).await;
        }
        if let Err(e) = self.client.flush().await {
            tracing::warn!(error = %e, "could not flush acknowledgements at shutdown");
        }
    }

    async fn answer(&self, reply: Option<Subject>, kind: AckKind) {
        if let Some(reply) = reply {
            self.send(reply, kind).await;
        }
    }

    async fn send(&self, reply: Subject, kind: AckKind) {
        // A lost acknowledgement only causes a redelivery, which the tracker answers again.
        if let Err(e) = self.client.publish(reply, kind.into()).await {
            tracing::warn!(error = %e, "acknowledgement not sent; the message will be redelivered");
        }
    }
}

/// Grows with the number of deliveries, up to five minutes.
fn backoff(delivered: i64, base: Duration) -> Duration {
    let factor = u32::try_from(delivered.clamp(1, 16)).unwrap_or(16);
    base.saturating_mul(factor).min(Duration::from_secs(300))
}
