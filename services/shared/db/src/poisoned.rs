//! Events a projection can never apply: told apart from passing failures, set aside in
//! `projection_poisoned` (in the transaction that moves the offset past them), counted, listed,
//! and re-applied on an operator's request once their cause is fixed.
//!
//! One event that PostgreSQL refuses for what it holds (a NUL byte in a text, a value out of
//! range, a duplicate key) would otherwise be retried forever, and every event after it would
//! wait behind it: for the audit log, that is every tenant's.

use std::collections::BTreeMap;

use rainlogs_bus::Bus;
use rainlogs_bus::async_nats::jetstream::stream::DirectGetErrorKind;
use rainlogs_schemas::Envelope;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::projector::{self, Projection, ProjectionError, signed};

/// Longest error text kept in the table and the log. PostgreSQL's messages are short; a decoder's
/// can quote what it read, which is the sender's and may be anything.
const ERROR_CHARS: usize = 1000;

/// What a failure to apply says about the event that was being applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// PostgreSQL refused the event for what it holds: applying it again can only fail again.
    AboutTheEvent,
    /// The database was unavailable, busy, or not as this build expects (a missing migration):
    /// the same event applies once that passes, so it is retried and nothing is skipped.
    Transient,
}

/// SQLSTATE classes that name the data being written, not the state of the server:
///
/// - `22` data exception: a NUL byte or an invalid byte sequence in a text (22021), a number or
///   a time out of range (22003, 22008), text that is not a value of its type (22P02), a
///   `pg_notify` payload that is too long (22023).
/// - `23` integrity constraint violation: a duplicate key (23505), a NULL where none is allowed
///   (23502), a CHECK (23514), a foreign key (23503) or an exclusion (23P01). The same event
///   against the same rows fails the same way; if the rows it collides with are later changed,
///   `rainlogs projections poisoned --retry` applies it then.
/// - `54` program limit exceeded: a value too large for an index row (54000), a statement too
///   complex. A run is re-applied one event at a time before anything is set aside, so a limit
///   that only a whole run exceeds sets nothing aside.
///
/// Everything else is [`Failure::Transient`], notably: 08 (connection), 40001 and 40P01
/// (serialization failure, deadlock), 42 (an undefined table or column: a migration that has not
/// run yet), 53 (disk full, out of memory, too many connections), 55 (lock not available), 57
/// (shutdown, cancelled statement), 58 (I/O), XX (internal error); and every error that did not
/// come from the server (I/O, TLS, protocol, pool timeout).
const ABOUT_THE_EVENT: [&str; 3] = ["22", "23", "54"];

/// Tells an error that the event caused apart from one that will pass.
pub fn classify(error: &sqlx::Error) -> Failure {
    match sqlstate(error) {
        Some(code) if is_about_the_event(&code) => Failure::AboutTheEvent,
        _ => Failure::Transient,
    }
}

fn is_about_the_event(sqlstate: &str) -> bool {
    sqlstate.len() == 5
        && ABOUT_THE_EVENT
            .iter()
            .any(|class| sqlstate.starts_with(class))
}

fn sqlstate(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(e) => e.code().map(|code| code.into_owned()),
        _ => None,
    }
}

/// An event set aside, as written to `projection_poisoned`.
#[derive(Clone, Debug)]
pub(crate) struct SetAside {
    pub sequence: u64,
    pub subject: Option<String>,
    pub sqlstate: Option<String>,
    pub error: String,
}

impl SetAside {
    /// An event PostgreSQL refused.
    pub(crate) fn refused(sequence: u64, subject: Option<String>, error: &sqlx::Error) -> Self {
        Self {
            sequence,
            subject,
            sqlstate: sqlstate(error),
            error: describe(error),
        }
    }

    /// Bytes that are not an event this build understands (not CBOR, not an envelope, or a
    /// newer schema: `--retry` after an upgrade applies those).
    pub(crate) fn undecodable(
        sequence: u64,
        subject: Option<String>,
        error: &impl std::fmt::Display,
    ) -> Self {
        Self {
            sequence,
            subject,
            sqlstate: None,
            error: printable(&format!("does not decode: {error}")),
        }
    }

    /// Records it; the caller's transaction also moves the offset past it.
    pub(crate) async fn record(
        &self,
        conn: &mut PgConnection,
        projection: &str,
        stream: &str,
    ) -> Result<(), sqlx::Error> {
        // Found again (a second projector process, or an offset moved back by hand): the first
        // sighting stays, the latest reason wins.
        sqlx::query(
            "INSERT INTO projection_poisoned \
             (projection, stream, stream_sequence, subject, sqlstate, error) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (projection, stream_sequence) DO UPDATE \
             SET stream = EXCLUDED.stream, subject = EXCLUDED.subject, \
             sqlstate = EXCLUDED.sqlstate, error = EXCLUDED.error",
        )
        .bind(projection)
        .bind(stream)
        .bind(signed(self.sequence))
        .bind(self.subject.as_deref().map(printable))
        .bind(&self.sqlstate)
        .bind(&self.error)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Once committed: the operator's alarm (a log line at error level and
    /// `rainlogs_projection_poisoned_total`). The event's payload is never logged: it may hold
    /// personal data.
    pub(crate) fn report(&self, projection: &'static str) {
        tracing::error!(
            projection,
            sequence = self.sequence,
            sqlstate = self.sqlstate.as_deref(),
            error = %self.error,
            "event can never be applied; set aside in projection_poisoned, the projection goes on"
        );
        // The global provider is the one `rainlogs_telemetry::init` installed (a no-op one
        // before it, as in tests that do not ask for metrics). Poisoned events are rare, so the
        // instrument is looked up each time rather than kept.
        crate::lag::POISONED
            .u64_counter(&opentelemetry::global::meter("rainlogs-projections"))
            .add(1, &[opentelemetry::KeyValue::new("projection", projection)]);
    }
}

/// PostgreSQL's own message with its SQLSTATE (not sqlx's "error returned from database"
/// wrapping), printable and bounded.
fn describe(error: &sqlx::Error) -> String {
    let text = match error {
        sqlx::Error::Database(e) => match e.code() {
            Some(code) => format!("{code}: {}", e.message()),
            None => e.message().to_owned(),
        },
        other => other.to_string(),
    };
    printable(&text)
}

/// Control characters (a NUL above all: PostgreSQL would refuse the row recording the refusal)
/// are escaped, and the text is cut at [`ERROR_CHARS`].
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(ERROR_CHARS));
    for (count, c) in text.chars().enumerate() {
        if count == ERROR_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn unsigned(sequence: i64) -> u64 {
    u64::try_from(sequence).unwrap_or(0)
}

/// One row of `projection_poisoned`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoisonedEvent {
    pub projection: String,
    pub stream: String,
    pub stream_sequence: u64,
    pub subject: Option<String>,
    pub sqlstate: Option<String>,
    pub error: String,
    pub first_seen: OffsetDateTime,
}

type PoisonedRow = (
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    String,
    OffsetDateTime,
);

fn from_row(row: PoisonedRow) -> PoisonedEvent {
    let (projection, stream, sequence, subject, sqlstate, error, first_seen) = row;
    PoisonedEvent {
        projection,
        stream,
        stream_sequence: unsigned(sequence),
        subject,
        sqlstate,
        error,
        first_seen,
    }
}

const SELECT_POISONED: &str = "SELECT projection, stream, stream_sequence, subject, sqlstate, \
     error, first_seen FROM projection_poisoned";

/// Every event set aside, by projection and stream order.
pub async fn poisoned_events(pool: &PgPool) -> Result<Vec<PoisonedEvent>, sqlx::Error> {
    let rows: Vec<PoisonedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_POISONED} ORDER BY projection, stream_sequence"
    )))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// How many events each projection has set aside (projections with none are absent).
pub async fn poisoned_counts(pool: &PgPool) -> Result<BTreeMap<String, u64>, sqlx::Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT projection, count(*) FROM projection_poisoned GROUP BY projection")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(projection, count)| (projection, unsigned(count)))
        .collect())
}

/// What re-applying one set-aside event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Retried {
    /// Applied; its row is gone from `projection_poisoned`.
    Applied,
    /// Refused again; its row now holds this reason.
    StillFails(String),
    /// The stream no longer holds it (erased or expired), so no replay will ever meet it again;
    /// its row is gone.
    GoneFromStream,
    /// It was not (or no longer) set aside by this projection; nothing changed.
    NotPoisoned,
}

/// Applies one set-aside event alone, in one transaction: on success its row is deleted, on
/// another refusal the row's reason is updated. The offset is not moved (it is already past
/// the event), so the event lands after the ones that followed it in the stream; whether that
/// order is acceptable is the operator's call, which is why this only runs on request.
///
/// A failure that is not about the event (PostgreSQL away) changes nothing and is returned.
pub async fn reapply_poisoned<P: Projection>(
    pool: &PgPool,
    projection: &P,
    sequence: u64,
    event: &Envelope,
) -> Result<Retried, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // The live projector's lock: its runs and this re-application do not interleave.
    projector::lock_offset(&mut tx, P::NAME).await?;
    if !lock_row(&mut tx, P::NAME, sequence).await? {
        tx.rollback().await?;
        return Ok(Retried::NotPoisoned);
    }
    // A savepoint, so a refusal can still be written down in this transaction.
    let mut attempt = sqlx::Connection::begin(&mut *tx).await?;
    let applied = match projection
        .apply_run(&mut attempt, &[(sequence, event)])
        .await
    {
        Ok(()) => projector::notify_tenants(&mut attempt, P::NAME, [event.tenant.as_str()]).await,
        Err(e) => Err(e),
    };
    let retried = match applied {
        Ok(()) => {
            attempt.commit().await?;
            delete_row(&mut tx, P::NAME, sequence).await?;
            Retried::Applied
        }
        Err(e) if classify(&e) == Failure::AboutTheEvent => {
            attempt.rollback().await?;
            let again = SetAside::refused(sequence, None, &e);
            update_reason(&mut tx, P::NAME, &again).await?;
            Retried::StillFails(again.error)
        }
        Err(e) => return Err(e),
    };
    tx.commit().await?;
    Ok(retried)
}

/// `rainlogs projections poisoned --retry` for one projection: fetches each of its set-aside
/// events from its stream by sequence and re-applies it ([`reapply_poisoned`]). Returns each
/// event's sequence and outcome, in stream order.
pub async fn retry_poisoned<P: Projection>(
    pool: &PgPool,
    bus: &Bus,
    projection: &P,
) -> Result<Vec<(u64, Retried)>, ProjectionError> {
    let sequences: Vec<(i64,)> = sqlx::query_as(
        "SELECT stream_sequence FROM projection_poisoned WHERE projection = $1 \
         ORDER BY stream_sequence",
    )
    .bind(P::NAME)
    .fetch_all(pool)
    .await?;
    if sequences.is_empty() {
        return Ok(Vec::new());
    }
    let stream = bus
        .js
        .get_stream(P::STREAM)
        .await
        .map_err(projector::nats)?;
    let mut outcomes = Vec::with_capacity(sequences.len());
    for (sequence,) in sequences {
        let sequence = unsigned(sequence);
        let message = match stream.direct_get(sequence).await {
            Ok(message) => message,
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => {
                delete_poisoned(pool, P::NAME, sequence).await?;
                outcomes.push((sequence, Retried::GoneFromStream));
                continue;
            }
            Err(e) => return Err(projector::nats(e)),
        };
        let retried = match Envelope::from_cbor(&message.payload) {
            Ok(event) => reapply_poisoned(pool, projection, sequence, &event).await?,
            Err(e) => {
                let again = SetAside::undecodable(sequence, Some(message.subject.to_string()), &e);
                let mut tx = pool.begin().await?;
                let found = lock_row(&mut tx, P::NAME, sequence).await?;
                if found {
                    update_reason(&mut tx, P::NAME, &again).await?;
                }
                tx.commit().await?;
                if found {
                    Retried::StillFails(again.error)
                } else {
                    Retried::NotPoisoned
                }
            }
        };
        outcomes.push((sequence, retried));
    }
    Ok(outcomes)
}

async fn lock_row(
    conn: &mut PgConnection,
    projection: &str,
    sequence: u64,
) -> Result<bool, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT stream_sequence FROM projection_poisoned \
         WHERE projection = $1 AND stream_sequence = $2 FOR UPDATE",
    )
    .bind(projection)
    .bind(signed(sequence))
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

async fn delete_row(
    conn: &mut PgConnection,
    projection: &str,
    sequence: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM projection_poisoned WHERE projection = $1 AND stream_sequence = $2")
        .bind(projection)
        .bind(signed(sequence))
        .execute(conn)
        .await?;
    Ok(())
}

async fn delete_poisoned(
    pool: &PgPool,
    projection: &str,
    sequence: u64,
) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    delete_row(&mut conn, projection, sequence).await
}

async fn update_reason(
    conn: &mut PgConnection,
    projection: &str,
    again: &SetAside,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projection_poisoned SET sqlstate = $3, error = $4 \
         WHERE projection = $1 AND stream_sequence = $2",
    )
    .bind(projection)
    .bind(signed(again.sequence))
    .bind(&again.sqlstate)
    .bind(&again.error)
    .execute(conn)
    .await?;
    Ok(())
}

/// Empties a projection's rows, in the rebuild's transaction (the replay finds them again).
pub(crate) async fn clear(conn: &mut PgConnection, projection: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM projection_poisoned WHERE projection = $1")
        .bind(projection)
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    /// A server error with a given SQLSTATE, as sqlx hands it over.
    #[derive(Debug)]
    struct ServerError(&'static str);

    impl std::fmt::Display for ServerError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "server said {}", self.0)
        }
    }

    impl std::error::Error for ServerError {}

    impl sqlx::error::DatabaseError for ServerError {
        fn message(&self) -> &str {
            "refused"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn server(code: &'static str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(ServerError(code)))
    }

    #[test]
    fn refusals_of_the_data_are_about_the_event() {
        for code in [
            "22021", // a NUL byte in a text
            "22P02", // invalid text representation
            "22003", // numeric value out of range
            "22008", // datetime field overflow
            "22001", // string data right truncation
            "22023", // invalid parameter value (pg_notify payload too long)
            "23505", // unique violation
            "23502", // not-null violation
            "23503", // foreign key violation
            "23514", // check violation
            "23P01", // exclusion violation
            "54000", // index row too large
        ] {
            assert_eq!(classify(&server(code)), Failure::AboutTheEvent, "{code}");
        }
    }

    #[test]
    fn everything_else_is_retried() {
        for code in [
            "08006", // connection failure
            "08P01", // protocol violation
            "40001", // serialization failure
            "40P01", // deadlock
            "42P01", // undefined table: a migration has not run
            "42703", // undefined column
            "42501", // insufficient privilege
            "53100", // disk full
            "53300", // too many connections
            "55P03", // lock not available
            "57P01", // admin shutdown
            "57014", // query cancelled
            "58030", // I/O error
            "XX000", // internal error
            "2",     // not a SQLSTATE
            "",
        ] {
            assert_eq!(classify(&server(code)), Failure::Transient, "{code}");
        }
        for error in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
            sqlx::Error::Protocol("unexpected message".into()),
            sqlx::Error::RowNotFound,
        ] {
            assert_eq!(classify(&error), Failure::Transient, "{error}");
        }
    }

    #[test]
    fn a_reason_is_printable_and_bounded() {
        let refused = SetAside::refused(7, None, &server("22021"));
        assert_eq!(refused.error, "22021: refused");
        assert_eq!(refused.sqlstate.as_deref(), Some("22021"));

        let nul = SetAside::undecodable(8, None, &"unknown variant `a\0b`");
        assert_eq!(nul.error, "does not decode: unknown variant `a\\u{0}b`");
        assert!(!nul.error.contains('\0'));

        let long = printable(&"x".repeat(5000));
        assert_eq!(long.chars().count(), ERROR_CHARS + 1);
    }
}
