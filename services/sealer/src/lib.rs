//! The chain-sealer: the single ordered writer of each zone's integrity log.
//!
//! - Every `archive.*` event on `rl.archive.<zone>` becomes one entry (archive, empty or gap,
//!   docs/FORMAT.md §4) appended to `rl.chain.<zone>` with `Nats-Expected-Last-Subject-Sequence`,
//!   so two sealers can never fork a chain: the loser re-reads the chain and decides again.
//! - A window that already has an entry never gets a second one (duplicates are recognised from
//!   the dataset's covered span, rebuilt from the chain on start).
//! - New entries are written as C2SP tiles and entry bundles into the bucket, then covered by an
//!   Ed25519-signed checkpoint that is checked consistent with the bucket's newest one first.
//! - On start (per zone, at its first event) the log is reconciled with the bucket's signed
//!   checkpoint: never signed below it, entries lost from JetStream restored from the bundles.

mod body;
mod checkpointer;
mod coverage;
mod first_windows;
mod journal;
pub mod keys;
pub mod metrics;
mod pruned;
mod reconcile;
mod service;
mod settings;
mod tlog;
mod unindexed;
mod zone;

pub use journal::entry_event_id;
pub use keys::{DEV_KEY_NAME, SigningKeyError, generate_signing_key, verifier_key_text};
pub use service::{CONSUMER, Sealer, SealerError};
pub use settings::SealerSettings;

use rainlogs_runtime::{Config, ConfigCheck, ServiceContext, ServiceDescriptor, ServiceError};
use rainlogs_telemetry::ServiceState;

pub const NAME: &str = "sealer";

pub const SERVICE: ServiceDescriptor = ServiceDescriptor {
    name: NAME,
    summary: "appends one entry per archived window, gap or prune to each zone's hash chain and \
              Merkle log, writes its tiles and signs checkpoints into the bucket; exactly one \
              entry per window (a window that has its entry is acknowledged again)",
    run: |ctx| Box::pin(run(ctx)),
    projections: &[],
    metrics: metrics::FAMILIES,
    check_config,
};

fn check_config(config: &Config, check: &mut ConfigCheck) {
    // The sealer's own parser: the note key format is the sealer's business.
    let key = config.secrets.signing_key.as_ref().map(|s| s.expose());
    match keys::signing_key_from_config(key) {
        Ok(_) => {}
        Err(SigningKeyError::Missing) => check.problem("missing secrets.signing_key"),
        Err(e) => check.problem(e.to_string()),
    }
}

pub async fn run(ctx: ServiceContext) -> Result<(), ServiceError> {
    let key =
        keys::signing_key_from_config(ctx.config.secrets.signing_key.as_ref().map(|s| s.expose()))
            .map_err(|e| ServiceError::new(NAME, e))?;
    let sealer = Sealer::start(
        ctx.bus.clone(),
        ctx.store.clone(),
        key,
        SealerSettings::default(),
    )
    .await
    .map_err(|e| ServiceError::new(NAME, e))?
    .metered(&ctx.telemetry.meter(NAME));
    ctx.watch_consumer(CONSUMER);
    ctx.report(NAME, ServiceState::Ready);
    let result = sealer.run(ctx.shutdown.clone()).await;
    ctx.report(NAME, ServiceState::Stopping);
    result.map_err(|e| ServiceError::new(NAME, e))
}
