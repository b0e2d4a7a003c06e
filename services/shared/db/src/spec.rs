//! A projection as a value: what a service descriptor lists, and what `rainlogs projections
//! rebuild`, `projections poisoned` and the boundary test iterate over without knowing its type.

use futures::future::BoxFuture;
use rainlogs_bus::{Bus, CancellationToken};
use sqlx::PgPool;

use crate::poisoned::{Retried, retry_poisoned};
use crate::projector::{Projection, ProjectionError, rebuild, run_projection};

type Run = fn(PgPool, Bus, CancellationToken) -> BoxFuture<'static, Result<(), ProjectionError>>;
type Rebuild = for<'a> fn(&'a PgPool, &'a Bus) -> BoxFuture<'a, Result<u64, ProjectionError>>;
type RetryPoisoned =
    for<'a> fn(&'a PgPool, &'a Bus) -> BoxFuture<'a, Result<Vec<(u64, Retried)>, ProjectionError>>;

/// One projection's name, tables and stream, with its operations.
#[derive(Clone, Copy)]
pub struct ProjectionSpec {
    /// Key in `projection_offsets` and `projection_poisoned`.
    pub name: &'static str,
    /// The tables it owns: only its service reads them, and a rebuild empties them.
    pub tables: &'static [&'static str],
    /// The stream it reads.
    pub stream: &'static str,
    run: Run,
    rebuild: Rebuild,
    retry_poisoned: RetryPoisoned,
}

impl std::fmt::Debug for ProjectionSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionSpec")
            .field("name", &self.name)
            .field("tables", &self.tables)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl ProjectionSpec {
    /// The spec of projection `P` (a unit value: projections keep no state of their own).
    pub const fn of<P: Projection + Default>() -> Self {
        Self {
            name: P::NAME,
            tables: P::TABLES,
            stream: P::STREAM,
            run: |pool, bus, shutdown| Box::pin(run_projection(pool, bus, P::default(), shutdown)),
            rebuild: |pool, bus| Box::pin(rebuild(pool, bus, P::default())),
            retry_poisoned: |pool, bus| {
                Box::pin(async move { retry_poisoned(pool, bus, &P::default()).await })
            },
        }
    }

    /// Keeps the read model up to date until `shutdown` fires.
    pub fn run(
        &self,
        pool: PgPool,
        bus: Bus,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, Result<(), ProjectionError>> {
        (self.run)(pool, bus, shutdown)
    }

    /// Empties its tables and replays its stream; returns how many events were applied.
    pub fn rebuild<'a>(
        &self,
        pool: &'a PgPool,
        bus: &'a Bus,
    ) -> BoxFuture<'a, Result<u64, ProjectionError>> {
        (self.rebuild)(pool, bus)
    }

    /// Applies its set-aside events again, each alone.
    pub fn retry_poisoned<'a>(
        &self,
        pool: &'a PgPool,
        bus: &'a Bus,
    ) -> BoxFuture<'a, Result<Vec<(u64, Retried)>, ProjectionError>> {
        (self.retry_poisoned)(pool, bus)
    }
}
