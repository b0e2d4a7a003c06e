use std::future::Future;
use std::time::Duration;

use rainlogs_bus::async_nats::jetstream::{self, consumer::pull};
use rainlogs_bus::{Bus, CancellationToken, Disposition, consume, definitions};
use rainlogs_schemas::Envelope;
use sqlx::{PgConnection, PgPool};

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("projection {0} has no consumer definition in nats/consumers")]
    NoDefinition(String),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("PostgreSQL: {0}")]
    Db(#[from] sqlx::Error),
}

fn nats(e: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Nats(e.to_string())
}

/// One read model.
pub trait Projection: Send + Sync + 'static {
    /// Key in `projection_offsets`; the durable consumer is `proj-<name>`.
    const NAME: &'static str;
    /// Tables this projection owns, emptied by a rebuild.
    const TABLES: &'static [&'static str];

    /// Applies one event inside the caller's transaction. Events this projection does not
    /// care about are ignored.
    fn apply(
        &self,
        conn: &mut PgConnection,
        sequence: u64,
        event: &Envelope,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

fn consumer_name<P: Projection>() -> String {
    format!("proj-{}", P::NAME)
}

/// Whether a message changed the read model.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// Its sequence was already applied (redelivery or replay).
    AlreadyApplied,
}

/// Applies one message exactly once: the offset check, the change and the new offset commit
/// together or not at all.
pub async fn apply_message<P: Projection>(
    pool: &PgPool,
    projection: &P,
    sequence: u64,
    event: &Envelope,
) -> Result<Applied, sqlx::Error> {
    let sequence_i64 = i64::try_from(sequence).unwrap_or(i64::MAX);
    let mut tx = pool.begin().await?;
    if !advance_offset(&mut tx, P::NAME, sequence_i64).await? {
        tx.rollback().await?;
        return Ok(Applied::AlreadyApplied);
    }
    projection.apply(&mut tx, sequence, event).await?;
    tx.commit().await?;
    Ok(Applied::Applied)
}

/// Moves the projection's offset to `sequence` if it is behind; false when `sequence` was
/// already applied. Moving it first takes the row lock, so two projector processes cannot apply
/// the same sequence (the second waits, then finds the offset moved), and a failed apply rolls
/// the offset back with everything else. One statement in the common case keeps a projection's
/// round trips per event at four (begin, offset, change, commit).
async fn advance_offset(
    conn: &mut PgConnection,
    projection: &str,
    sequence: i64,
) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query(
        "UPDATE projection_offsets SET stream_sequence = $2, updated_at = now() \
         WHERE projection = $1 AND stream_sequence < $2",
    )
    .bind(projection)
    .bind(sequence)
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() == 1 {
        return Ok(true);
    }
    // No row yet (the first event, or the first after a rebuild); a row that exists is ahead.
    let created = sqlx::query(
        "INSERT INTO projection_offsets (projection, stream_sequence) VALUES ($1, $2) \
         ON CONFLICT (projection) DO NOTHING",
    )
    .bind(projection)
    .bind(sequence)
    .execute(&mut *conn)
    .await?;
    Ok(created.rows_affected() == 1)
}

async fn durable_consumer<P: Projection>(
    bus: &Bus,
) -> Result<jetstream::consumer::Consumer<pull::Config>, ProjectionError> {
    bus.durable_consumer(&consumer_name::<P>())
        .await
        .map_err(nats)
}

async fn handle<P: Projection>(
    pool: &PgPool,
    projection: &P,
    message: &jetstream::Message,
) -> Disposition {
    let sequence = match message.info() {
        Ok(info) => info.stream_sequence,
        Err(e) => return Disposition::Reject(format!("no JetStream metadata: {e}")),
    };
    let event = match Envelope::from_cbor(&message.payload) {
        Ok(event) => event,
        Err(e) => return Disposition::Reject(format!("stream sequence {sequence}: {e}")),
    };
    match apply_message(pool, projection, sequence, &event).await {
        Ok(_) => Disposition::Ack,
        Err(e) => {
            tracing::warn!(projection = P::NAME, sequence, error = %e, "projection failed; retrying");
            Disposition::Retry(Duration::from_secs(1))
        }
    }
}

/// Keeps the projection up to date until `shutdown`.
pub async fn run_projection<P: Projection>(
    pool: PgPool,
    bus: Bus,
    projection: P,
    shutdown: CancellationToken,
) -> Result<(), ProjectionError> {
    let consumer = durable_consumer::<P>(&bus).await?;
    consume(consumer, shutdown, |message| {
        let pool = &pool;
        let projection = &projection;
        async move { handle(pool, projection, &message).await }
    })
    .await
    .map_err(nats)
}

/// Drops the projection's tables and replays its stream from the start; returns once caught up.
/// Run it with the live projector stopped (its consumer is recreated from the start).
pub async fn rebuild<P: Projection>(
    pool: &PgPool,
    bus: &Bus,
    projection: P,
) -> Result<u64, ProjectionError> {
    let name = consumer_name::<P>();
    let definition = definitions::consumer(&name)
        .map_err(nats)?
        .ok_or_else(|| ProjectionError::NoDefinition(name.clone()))?;
    let mut stream = bus.js.get_stream(definition.stream).await.map_err(nats)?;
    // Ignore "not found": a first rebuild may have nothing to delete.
    let _ = stream.delete_consumer(&name).await;

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
    tx.commit().await?;

    let target = stream.info().await.map_err(nats)?.state.last_sequence;
    let consumer = durable_consumer::<P>(bus).await?;
    let caught_up = CancellationToken::new();
    let done = caught_up.clone();
    let applied = std::sync::atomic::AtomicU64::new(0);
    if target > 0 {
        consume(consumer, caught_up, |message| {
            let pool = &pool;
            let projection = &projection;
            let done = &done;
            let applied = &applied;
            async move {
                let disposition = handle(pool, projection, &message).await;
                if matches!(disposition, Disposition::Ack) {
                    applied.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                if message
                    .info()
                    .is_ok_and(|i| i.stream_sequence >= target || i.pending == 0)
                {
                    done.cancel();
                }
                disposition
            }
        })
        .await
        .map_err(nats)?;
    }
    Ok(applied.into_inner())
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
