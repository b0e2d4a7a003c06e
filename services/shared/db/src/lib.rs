//! The projector runtime: PostgreSQL read models built from JetStream, and the migrations. The
//! projections themselves live in the service that reads them (`docs/ARCHITECTURE.md`).
//!
//! A projection owns a few tables and a row in `projection_offsets`, the last stream sequence it
//! applied. It reads its stream with an ordered consumer starting after that offset and applies
//! what arrived, in runs, each run and the new offset in one transaction; so the position is
//! exactly as durable as the read model, and a restart, a replay or a second projector process
//! changes nothing twice. `rebuild` truncates and replays.
//!
//! A failure is retried from the offset, skipping nothing, unless it is about the event itself:
//! an event PostgreSQL refuses for what it holds (SQLSTATE class 22, 23 or 54, alone in its
//! transaction), or bytes that do not decode. Such an event can never apply, so it is set aside
//! in `projection_poisoned` in the transaction that moves the offset past it, logged, counted
//! (`rainlogs_projection_poisoned_total`), and the projection goes on; [`poisoned`] lists them
//! and re-applies them on request.

mod lag;
pub mod poisoned;
mod pool;
mod projector;
mod spec;

pub use poisoned::{
    PoisonedEvent, Retried, poisoned_counts, poisoned_events, reapply_poisoned, retry_poisoned,
};
pub use pool::{DbError, connect, migrate, ping};
pub use projector::{
    Applied, PROJECTED_CHANNEL, Projection, ProjectionError, applied_sequence, apply_events,
    apply_message, rebuild, run_projection, wait_until_applied,
};
pub use spec::ProjectionSpec;

/// The metric families of every projection a process runs (labelled `projection`).
pub use lag::FAMILIES as METRIC_FAMILIES;
pub use sqlx::{PgPool, Postgres, Transaction};
