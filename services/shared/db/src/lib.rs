//! PostgreSQL read models built from JetStream: tenants, zones and keys (`control`), the audit
//! log (`audit`) and the sealed chain entries the API calls jobs (`chain`).
//!
//! A projection owns a few tables and one durable consumer (`proj-<name>`). For every message it
//! applies the event and records the stream sequence in `projection_offsets` in the same
//! transaction, then acknowledges. A redelivered message finds its sequence already applied and is
//! only acknowledged, so redelivery and replay are harmless. `rebuild` truncates and replays.

mod chain;
mod control;
mod legal_holds;
mod pool;
mod projector;

pub use chain::ChainProjection;
pub use control::{AuditProjection, ControlProjection};
pub use legal_holds::LegalHoldsProjection;
pub use pool::{DbError, connect, migrate, ping};
pub use projector::{
    Applied, Projection, ProjectionError, applied_sequence, apply_message, rebuild, run_projection,
    wait_until_applied,
};
pub use sqlx::{PgPool, Postgres, Transaction};
