//! PostgreSQL read models built from JetStream.
//!
//! A projection owns a few tables and one durable consumer (`proj-<name>`). For every message it
//! applies the event and records the stream sequence in `projection_offsets` in the same
//! transaction, then acknowledges. A redelivered message finds its sequence already applied and is
//! only acknowledged, so redelivery and replay are harmless. `rebuild` truncates and replays.

mod control;
mod pool;
mod projector;

pub use control::{AuditProjection, ControlProjection};
pub use pool::{DbError, connect, migrate, ping};
pub use projector::{Applied, Projection, ProjectionError, apply_message, rebuild, run_projection};
pub use sqlx::{PgPool, Postgres, Transaction};
