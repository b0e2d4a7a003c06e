//! The archiver service: turns each window's batches on `rl.batch.<zone>` into one archive object
//! and one `archive.*` event on `rl.archive.<zone>`.
//!
//! - Batches are held unacknowledged (kept alive with in-progress acks) and remembered only by
//!   stream sequence; memory does not grow with the size of a window.
//! - On `WindowClosed{Complete}` the batches of the attempt it names are read back from RL_BATCH
//!   in `seq` order and written, byte for byte as received, as framed zstd (docs/FORMAT.md §3)
//!   under the content-derived key, with retain-until, then `ArchiveStored` is published, and
//!   only then are the window's messages acknowledged. Batches of other attempts are ignored.
//! - A window that already has an archive in the bucket keeps it: Cloudflare returns lines in a
//!   different order on every fetch, so lines are not re-sorted; the first stored archive is the
//!   window's archive and a later attempt only re-announces it.
//! - Every `archive.*` event of a window has the same id (from zone, dataset, window), so a re-run
//!   after a crash is deduplicated; the sealer also seals each window once.

mod assemble;
mod close;
mod existing;
mod ids;
pub mod metrics;
mod retention;
mod service;
mod settings;
mod target;
mod tracker;

pub use ids::window_outcome_id;
pub use retention::RetentionPolicies;
pub use service::{Archiver, ArchiverError, CONSUMER};
pub use settings::{ArchiverSettings, DEFAULT_RETENTION};

use rainlogs_runtime::{ServiceContext, ServiceDescriptor, ServiceError, nothing_to_check};
use rainlogs_telemetry::ServiceState;

pub const NAME: &str = "archiver";

pub const SERVICE: ServiceDescriptor = ServiceDescriptor {
    name: NAME,
    summary: "assembles each closed window's batches into one zstd archive, stores it with \
              Object Lock on every provider and announces it on rl.archive; at least once, \
              idempotent (a window's archive key is derived from its content)",
    run: |ctx| Box::pin(run(ctx)),
    projections: &[],
    metrics: metrics::FAMILIES,
    check_config: nothing_to_check,
};

pub async fn run(ctx: ServiceContext) -> Result<(), ServiceError> {
    let mut settings = ArchiverSettings::new(ctx.config.service.data_dir.join(NAME));
    settings.retention =
        std::time::Duration::from_secs(u64::from(ctx.config.retention.default_days) * 86_400);
    let archiver = Archiver::start(ctx.bus.clone(), ctx.store.clone(), settings)
        .await
        .map_err(|e| ServiceError::new(NAME, e))?
        .metered(&ctx.telemetry.meter(NAME));
    ctx.watch_consumer(CONSUMER);
    ctx.report(NAME, ServiceState::Ready);
    let result = archiver.run(ctx.shutdown.clone()).await;
    ctx.report(NAME, ServiceState::Stopping);
    result.map_err(|e| ServiceError::new(NAME, e))
}
