//! The retention-reaper: archives live exactly as long as their logged retain-until says, not a
//! day less and, unless a legal hold says otherwise, not much more.
//!
//! - [`schedule`]: projections of every archive entry's retain-until (RL_CHAIN) and of legal
//!   holds (RL_CONTROL) into PostgreSQL.
//! - [`sweep`]: every `interval`, archives past retain-until and under no hold first get their
//!   `prune` entry (through the sealer), then their object is deleted on every provider.
//!
//! Delivery: at least once, idempotent. A crash between the two steps is repaired by the next
//! pass; repeating either step changes nothing.

pub mod holds;
pub mod metrics;
pub mod schedule;
pub mod sweep;

use std::time::Duration;

use rainlogs_bus::CancellationToken;
use rainlogs_db::ProjectionSpec;
use rainlogs_runtime::{ServiceContext, ServiceDescriptor, ServiceError, nothing_to_check};
use rainlogs_telemetry::ServiceState;

pub use holds::LegalHoldsProjection;
pub use metrics::ReaperMetrics;
pub use schedule::RetentionSchedule;
pub use sweep::{Candidate, Decision, Outlook, Reaper, SweepError, SweepReport};

pub const NAME: &str = "reaper";

/// The read models this service owns.
const PROJECTIONS: &[ProjectionSpec] = &[
    ProjectionSpec::of::<RetentionSchedule>(),
    ProjectionSpec::of::<LegalHoldsProjection>(),
];

pub const SERVICE: ServiceDescriptor = ServiceDescriptor {
    name: NAME,
    summary: "deletes each archive once its logged retain-until has passed and no legal hold \
              covers it, after the sealer has logged its prune entry; at least once, idempotent",
    run: |ctx| Box::pin(run(ctx)),
    projections: PROJECTIONS,
    metrics: metrics::FAMILIES,
    check_config: nothing_to_check,
};

/// Time between passes. Retain-until is a lower bound: an hour late is lawful, a second early
/// is not.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// Archives looked at per pass.
pub const BATCH: i64 = 500;

pub use rainlogs_schemas::unix_now_ns as now_ns;

pub async fn run(ctx: ServiceContext) -> Result<(), ServiceError> {
    let fail = |e: &dyn std::fmt::Display| ServiceError::new(NAME, e.to_string());
    let projections = {
        let ctx = ctx.clone();
        tokio::spawn(async move { ctx.run_projections(NAME, PROJECTIONS).await })
    };
    let reaper = Reaper {
        db: ctx.db.clone(),
        bus: ctx.bus.clone(),
        store: ctx.store.store.clone(),
        batch: BATCH,
        metrics: Some(ReaperMetrics::new(&ctx.telemetry.meter(NAME))),
    };
    ctx.report(NAME, ServiceState::Ready);
    sweep_until(&reaper, &ctx.shutdown).await;
    ctx.report(NAME, ServiceState::Stopping);
    projections.await.map_err(|e| fail(&e))?
}

async fn sweep_until(reaper: &Reaper, shutdown: &CancellationToken) {
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => match reaper.sweep(now_ns()).await {
                Ok(report) if report != SweepReport::default() => {
                    tracing::info!(?report, "retention pass");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "retention pass failed; next one retries"),
            },
        }
    }
}
