use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use futures::StreamExt as _;
use rainlogs_bus::async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull};
use rainlogs_bus::{Bus, CancellationToken};
use rainlogs_schemas::Envelope;
use sqlx::{PgConnection, PgPool};

use crate::lag::{self, ProjectionMetrics};
use crate::poisoned::{self, Failure, SetAside};

/// PostgreSQL channel on which every projection transaction announces, at commit, the tenants
/// whose read model it changed: one notification per tenant, `<projection> <tenant>`. Readers
/// that cache the read model listen here.
pub const PROJECTED_CHANNEL: &str = "rl_projected";

/// Most events applied in one transaction. A projector that keeps up applies them one or a few
/// at a time; one that is behind (a burst of audited reads, a rebuild) catches up in runs.
const MAX_RUN: usize = 512;

/// Pause before reading the stream again after a failure (PostgreSQL or NATS unavailable).
const RETRY_PAUSE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("NATS: {0}")]
    Nats(String),
    #[error("PostgreSQL: {0}")]
    Db(#[from] sqlx::Error),
}

pub(crate) fn nats(e: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Nats(e.to_string())
}

/// One read model.
pub trait Projection: Send + Sync + 'static {
    /// Key in `projection_offsets`.
    const NAME: &'static str;
    /// Tables this projection owns, emptied by a rebuild.
    const TABLES: &'static [&'static str];
    /// The JetStream stream it reads, every subject of it, in order.
    const STREAM: &'static str;

    /// Applies one event inside the caller's transaction. Events this projection does not
    /// care about are ignored. An error PostgreSQL raises for what the event holds sets the
    /// event aside ([`crate::poisoned`]); any other error is retried from the offset, so an
    /// event that should be skipped must return `Ok`.
    fn apply(
        &self,
        conn: &mut PgConnection,
        sequence: u64,
        event: &Envelope,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Applies a run of events, in stream order, inside the caller's transaction. A projection
    /// whose events are independent rows may do it in fewer statements.
    fn apply_run(
        &self,
        conn: &mut PgConnection,
        events: &[(u64, &Envelope)],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        async move {
            for (sequence, event) in events {
                self.apply(conn, *sequence, event).await?;
            }
            Ok(())
        }
    }
}

/// Whether a message changed the read model.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// Its sequence was already applied (redelivery or replay).
    AlreadyApplied,
}

/// Applies one message exactly once (see [`apply_events`]).
pub async fn apply_message<P: Projection>(
    pool: &PgPool,
    projection: &P,
    sequence: u64,
    event: &Envelope,
) -> Result<Applied, sqlx::Error> {
    let applied = apply_events(pool, projection, &[(sequence, event)], sequence).await?;
    Ok(if applied == 0 {
        Applied::AlreadyApplied
    } else {
        Applied::Applied
    })
}

/// Applies the events with a sequence past the projection's offset and moves the offset to
/// `through` (the last sequence read, which may be a message that did not decode), all in one
/// transaction: the read model and its offset change together or not at all. Returns how many
/// events were applied.
///
/// The offset row is locked first, so two projector processes never apply the same sequence:
/// the second waits, then finds the offset moved. At commit the transaction notifies
/// [`PROJECTED_CHANNEL`] once per tenant it touched.
pub async fn apply_events<P: Projection>(
    pool: &PgPool,
    projection: &P,
    events: &[(u64, &Envelope)],
    through: u64,
) -> Result<usize, sqlx::Error> {
    Ok(apply_with(pool, projection, events, &[], through)
        .await?
        .applied)
}

/// What one transaction of [`apply_with`] did.
#[derive(Default)]
struct Committed {
    applied: usize,
    /// Indices into the `set_aside` argument of those this transaction recorded (the ones past
    /// the offset): only those are reported, so a second projector process does not count them
    /// twice.
    set_aside: Vec<usize>,
}

/// [`apply_events`], also recording `set_aside` (events that can never apply, each with a
/// sequence up to `through`) in `projection_poisoned` in the same transaction.
async fn apply_with<P: Projection>(
    pool: &PgPool,
    projection: &P,
    events: &[(u64, &Envelope)],
    set_aside: &[SetAside],
    through: u64,
) -> Result<Committed, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let offset = lock_offset(&mut tx, P::NAME).await?;
    if through <= offset {
        tx.rollback().await?;
        return Ok(Committed::default());
    }
    let fresh: Vec<(u64, &Envelope)> = events
        .iter()
        .filter(|(sequence, _)| *sequence > offset)
        .copied()
        .collect();
    projection.apply_run(&mut tx, &fresh).await?;
    let mut recorded = Vec::new();
    for (index, poisoned) in set_aside.iter().enumerate() {
        if poisoned.sequence > offset {
            poisoned.record(&mut tx, P::NAME, P::STREAM).await?;
            recorded.push(index);
        }
    }
    sqlx::query(
        "UPDATE projection_offsets SET stream_sequence = $2, updated_at = now() \
         WHERE projection = $1",
    )
    .bind(P::NAME)
    .bind(signed(through))
    .execute(&mut *tx)
    .await?;
    notify_tenants(
        &mut tx,
        P::NAME,
        fresh.iter().map(|(_, event)| event.tenant.as_str()),
    )
    .await?;
    tx.commit().await?;
    Ok(Committed {
        applied: fresh.len(),
        set_aside: recorded,
    })
}

/// Announces on [`PROJECTED_CHANNEL`], at the caller's commit, each distinct tenant once.
pub(crate) async fn notify_tenants<'a>(
    conn: &mut PgConnection,
    projection: &str,
    tenants: impl IntoIterator<Item = &'a str>,
) -> Result<(), sqlx::Error> {
    let tenants: Vec<&str> = tenants
        .into_iter()
        .filter(|tenant| !tenant.is_empty())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !tenants.is_empty() {
        sqlx::query("SELECT pg_notify($1, $2 || ' ' || tenant) FROM unnest($3::text[]) AS tenant")
            .bind(PROJECTED_CHANNEL)
            .bind(projection)
            .bind(&tenants)
            .execute(conn)
            .await?;
    }
    Ok(())
}

pub(crate) fn signed(sequence: u64) -> i64 {
    i64::try_from(sequence).unwrap_or(i64::MAX)
}

/// The projection's offset, with its row locked until the transaction ends (created at 0 the
/// first time, and after a rebuild).
pub(crate) async fn lock_offset(
    conn: &mut PgConnection,
    projection: &str,
) -> Result<u64, sqlx::Error> {
    let (offset,): (i64,) = sqlx::query_as(
        "INSERT INTO projection_offsets (projection, stream_sequence) VALUES ($1, 0) \
         ON CONFLICT (projection) DO UPDATE SET projection = EXCLUDED.projection \
         RETURNING stream_sequence",
    )
    .bind(projection)
    .fetch_one(&mut *conn)
    .await?;
    Ok(u64::try_from(offset).unwrap_or(0))
}

/// An ordered consumer of the projection's stream from `start` on: the server delivers every
/// message in stream order and the client recreates the consumer itself on any gap. There is
/// nothing to acknowledge: the position lives in `projection_offsets`, next to the read model.
async fn ordered_from<P: Projection>(
    bus: &Bus,
    start: u64,
) -> Result<jetstream::consumer::Consumer<pull::OrderedConfig>, ProjectionError> {
    let stream = bus.js.get_stream(P::STREAM).await.map_err(nats)?;
    stream
        .create_consumer(pull::OrderedConfig {
            description: Some(format!("projection {}", P::NAME)),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start.max(1),
            },
            ..Default::default()
        })
        .await
        .map_err(nats)
}

/// One message as read from the stream: its event, or why its bytes are not one.
struct Read<'a> {
    sequence: u64,
    subject: &'a str,
    event: Result<Envelope, rainlogs_schemas::DecodeError>,
}

impl Read<'_> {
    fn undecodable(&self) -> Option<SetAside> {
        self.event
            .as_ref()
            .err()
            .map(|e| SetAside::undecodable(self.sequence, Some(self.subject.to_owned()), e))
    }
}

/// Applies a run read from the stream and moves the offset past it, adding to `applied` the
/// events applied. Messages that do not decode are set aside with the run.
///
/// When PostgreSQL refuses the run for what an event in it holds ([`Failure::AboutTheEvent`]),
/// the run is applied again one event per transaction: each event refused on its own is set
/// aside in the transaction that moves the offset past it, and the others are applied as
/// usual. Any other failure is returned, and the caller reads again from the offset, skipping
/// nothing.
async fn apply_reads<P: Projection>(
    pool: &PgPool,
    projection: &P,
    reads: &[Read<'_>],
    tally: &mut Tally,
) -> Result<(), ProjectionError> {
    let (Some(first), Some(last)) = (reads.first(), reads.last()) else {
        return Ok(());
    };
    let events: Vec<(u64, &Envelope)> = reads
        .iter()
        .filter_map(|read| read.event.as_ref().ok().map(|event| (read.sequence, event)))
        .collect();
    let undecodable: Vec<SetAside> = reads.iter().filter_map(Read::undecodable).collect();
    let started = std::time::Instant::now();
    match apply_with(pool, projection, &events, &undecodable, last.sequence).await {
        Ok(committed) => {
            tracing::debug!(
                projection = P::NAME,
                read = reads.len(),
                applied = committed.applied,
                through = last.sequence,
                took_us = started.elapsed().as_micros(),
                "run applied"
            );
            tally.add(committed.applied);
            for index in committed.set_aside {
                undecodable[index].report(P::NAME);
            }
            Ok(())
        }
        Err(e) if poisoned::classify(&e) == Failure::AboutTheEvent => {
            tracing::warn!(
                projection = P::NAME,
                first = first.sequence,
                through = last.sequence,
                error = %e,
                "run refused for an event in it; applying it one event at a time"
            );
            apply_one_by_one(pool, projection, reads, tally).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn apply_one_by_one<P: Projection>(
    pool: &PgPool,
    projection: &P,
    reads: &[Read<'_>],
    tally: &mut Tally,
) -> Result<(), ProjectionError> {
    for read in reads {
        let sequence = read.sequence;
        let refused = match &read.event {
            Ok(event) => {
                match apply_with(pool, projection, &[(sequence, event)], &[], sequence).await {
                    Ok(committed) => {
                        tally.add(committed.applied);
                        continue;
                    }
                    Err(e) if poisoned::classify(&e) == Failure::AboutTheEvent => {
                        SetAside::refused(sequence, Some(read.subject.to_owned()), &e)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => SetAside::undecodable(sequence, Some(read.subject.to_owned()), e),
        };
        let committed = apply_with(
            pool,
            projection,
            &[],
            std::slice::from_ref(&refused),
            sequence,
        )
        .await?;
        if !committed.set_aside.is_empty() {
            refused.report(P::NAME);
        }
    }
    Ok(())
}

/// Events applied by one run or rebuild, counted on `/metrics` too when the projection runs live.
struct Tally {
    applied: u64,
    metrics: Option<ProjectionMetrics>,
}

impl Tally {
    fn add(&mut self, more: usize) {
        let more = u64::try_from(more).unwrap_or(u64::MAX);
        self.applied += more;
        if let Some(metrics) = &self.metrics {
            metrics.applied(more);
        }
    }
}

/// What one pass over the stream ended with.
enum Pass {
    Shutdown,
    /// Read the stream again from the committed offset.
    Restart,
}

/// Reads the stream from the committed offset and applies it in runs until `caught_up` says so,
/// shutdown, or a failure (after which the caller starts again from the offset).
async fn pass<P: Projection>(
    pool: &PgPool,
    bus: &Bus,
    projection: &P,
    shutdown: &CancellationToken,
    tally: &mut Tally,
    mut caught_up: impl FnMut(&jetstream::Message) -> bool,
) -> Result<Pass, ProjectionError> {
    let from = applied_sequence(pool, P::NAME).await? + 1;
    let consumer = ordered_from::<P>(bus, from).await?;
    let mut runs = consumer
        .messages()
        .await
        .map_err(nats)?
        .ready_chunks(MAX_RUN);
    loop {
        let run = tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(Pass::Shutdown),
            run = runs.next() => run,
        };
        let Some(run) = run else {
            return Ok(Pass::Restart);
        };
        let mut messages = Vec::with_capacity(run.len());
        let mut failure = None;
        for message in run {
            match message {
                Ok(message) => messages.push(message),
                Err(e) => {
                    // Apply what arrived in order before it, then read again from the offset.
                    failure = Some(nats(e));
                    break;
                }
            }
        }
        let mut reads = Vec::with_capacity(messages.len());
        for message in &messages {
            let Ok(info) = message.info() else {
                failure = Some(ProjectionError::Nats(
                    "a message without JetStream metadata".into(),
                ));
                break;
            };
            reads.push(Read {
                sequence: info.stream_sequence,
                subject: message.subject.as_str(),
                event: Envelope::from_cbor(&message.payload),
            });
        }
        apply_reads(pool, projection, &reads, tally).await?;
        if let Some(failure) = failure {
            return Err(failure);
        }
        if messages.last().is_some_and(&mut caught_up) {
            return Ok(Pass::Shutdown);
        }
    }
}

/// Keeps the projection up to date until `shutdown`. Failures (PostgreSQL or NATS away) are
/// logged and retried from the committed offset; nothing is skipped or applied twice. The one
/// exception is an event that can never apply (PostgreSQL refuses what it holds, or it does not
/// decode): it is set aside in `projection_poisoned`, and the events after it are applied.
pub async fn run_projection<P: Projection>(
    pool: PgPool,
    bus: Bus,
    projection: P,
    shutdown: CancellationToken,
) -> Result<(), ProjectionError> {
    let metrics = ProjectionMetrics::new(P::NAME);
    let lag = tokio::spawn(lag::watch(
        metrics.clone(),
        pool.clone(),
        bus.clone(),
        P::NAME,
        P::STREAM,
        shutdown.clone(),
    ));
    let mut tally = Tally {
        applied: 0,
        metrics: Some(metrics),
    };
    let result = apply_until_shutdown(&pool, &bus, &projection, &shutdown, &mut tally).await;
    lag.abort();
    result
}

async fn apply_until_shutdown<P: Projection>(
    pool: &PgPool,
    bus: &Bus,
    projection: &P,
    shutdown: &CancellationToken,
    tally: &mut Tally,
) -> Result<(), ProjectionError> {
    loop {
        match pass(pool, bus, projection, shutdown, tally, |_| false).await {
            Ok(Pass::Shutdown) => return Ok(()),
            Ok(Pass::Restart) => {}
            Err(e) => {
                tracing::warn!(projection = P::NAME, error = %e, "projection interrupted; resuming from its offset");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(RETRY_PAUSE) => {}
                }
            }
        }
    }
}

/// Drops the projection's tables (and its rows in `projection_poisoned`) and replays its stream
/// from the start; returns how many events were applied once caught up with the stream as it
/// was when the rebuild began. Events that can never apply are set aside again on the way. Run
/// it with the live projector stopped.
pub async fn rebuild<P: Projection>(
    pool: &PgPool,
    bus: &Bus,
    projection: P,
) -> Result<u64, ProjectionError> {
    let mut tx = pool.begin().await?;
    for table in P::TABLES {
        // Table names are compile-time constants of the projection, never input.
        sqlx::query(sqlx::AssertSqlSafe(format!("TRUNCATE {table}")))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("DELETE FROM projection_offsets WHERE projection = $1")
        .bind(P::NAME)
        .execute(&mut *tx)
        .await?;
    poisoned::clear(&mut tx, P::NAME).await?;
    tx.commit().await?;

    let mut stream = bus.js.get_stream(P::STREAM).await.map_err(nats)?;
    let target = stream.info().await.map_err(nats)?.state.last_sequence;
    let never = CancellationToken::new();
    let mut tally = Tally {
        applied: 0,
        metrics: None,
    };
    while applied_sequence(pool, P::NAME).await? < target {
        let caught_up = |message: &jetstream::Message| {
            message
                .info()
                .is_ok_and(|i| i.stream_sequence >= target || i.pending == 0)
        };
        match pass(pool, bus, &projection, &never, &mut tally, caught_up).await {
            Ok(Pass::Shutdown) => break,
            Ok(Pass::Restart) => {}
            Err(e) => {
                tracing::warn!(projection = P::NAME, error = %e, "rebuild interrupted; resuming");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
    Ok(tally.applied)
}

/// The last stream sequence `projection` has applied (0 before its first event).
pub async fn applied_sequence(pool: &PgPool, projection: &str) -> Result<u64, sqlx::Error> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT stream_sequence FROM projection_offsets WHERE projection = $1")
            .bind(projection)
            .fetch_optional(pool)
            .await?;
    Ok(row.map_or(0, |(s,)| u64::try_from(s).unwrap_or(0)))
}

/// Waits until `projection` has applied stream sequence `sequence` (read-your-writes for a
/// command that was just published). Returns `false` when `timeout` passed first. The offset
/// lives in PostgreSQL, so this holds whichever process runs the projector.
pub async fn wait_until_applied(
    pool: &PgPool,
    projection: &str,
    sequence: u64,
    timeout: Duration,
) -> Result<bool, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + timeout;
    // Short first pauses: a projector that keeps up applies an event within a few milliseconds.
    let mut pause = Duration::from_millis(2);
    loop {
        if applied_sequence(pool, projection).await? >= sequence {
            return Ok(true);
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Ok(false);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
