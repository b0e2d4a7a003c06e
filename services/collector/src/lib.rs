//! The collector service: every window of every zone collected once, by the right method.
//!
//! * [`supervisor`] replays `rl.ctl.>` into the [`ZoneRegistry`], takes a lease per zone
//!   ([`lease`]) and runs one task per owned zone ([`zone`]).
//! * A zone task onboards the zone ([`onboarding`]), then runs its method: [`logpull`],
//!   [`graphql`] or [`instant_logs`], each working on the zone's [`zone_run::ZoneRun`]. Windows
//!   come from the [`ledger`]; records leave as `batch.collected` events of one attempt
//!   ([`attempt`]) and every window ends as exactly one `batch.window_closed` on
//!   `rl.batch.<zone>` ([`journal`], which also keeps the cursor).
//! * Tokens are stored sealed (`rainlogs_tokens`).

pub mod attempt;
pub mod backfill;
pub mod bucket_feed;
pub mod clock;
pub mod completeness;
pub mod fields;
pub mod graphql;
pub mod health;
pub mod identity;
pub mod ids;
pub mod instant_logs;
pub mod journal;
pub mod lease;
pub mod ledger;
pub mod logpull;
pub mod logpush;
pub mod logpush_job;
pub mod metrics;
pub mod onboarding;
pub mod push_cursor;
mod registry;
pub mod repair;
pub mod settings;
pub mod supervisor;
pub mod zone;
pub mod zone_run;

use std::sync::Arc;

use rainlogs_runtime::{
    Config, ConfigCheck, SecretForm, ServiceContext, ServiceDescriptor, ServiceError,
};
use rainlogs_telemetry::ServiceState;

pub use clock::{Clock, FnClock, SharedClock, SystemClock};
pub use identity::Identity;
pub use rainlogs_tokens::{SealError, TokenKey, TokenKeyring};
pub use registry::{ZoneEntry, ZoneRegistry};
pub use settings::CollectorOptions;
pub use supervisor::{CollectorDeps, CollectorError, run_collector};

pub const NAME: &str = "collector";

/// Delivery: at least once per window. A window is published only as a whole (its batches,
/// then its close), a window a collector could not finish is collected again by the next
/// owner of the zone's lease, and what Cloudflare no longer serves is declared as a gap.
pub const SERVICE: ServiceDescriptor = ServiceDescriptor {
    name: NAME,
    summary: "pulls each zone's logs from Cloudflare (Logpull, Instant Logs or GraphQL, by plan) \
              and publishes them window by window on rl.batch.<zone>; at least once per window, \
              gaps declared",
    run: |ctx| Box::pin(run(ctx)),
    projections: &[],
    metrics: metrics::FAMILIES,
    check_config,
};

fn check_config(config: &Config, check: &mut ConfigCheck) {
    // Opens every zone's Cloudflare token; during a rotation also with the old key.
    let secrets = &config.secrets;
    check.require_secret(
        "token_encryption_key",
        secrets.token_encryption_key.as_ref(),
        SecretForm::Hex32,
    );
    if let Some(previous) = &secrets.previous_token_encryption_key {
        check.check_secret("previous_token_encryption_key", previous, SecretForm::Hex32);
    }
    if let Err(e) = rainlogs_cloudflare::parse_base_url(&config.cloudflare.base_url) {
        check.problem(format!("cloudflare.base_url: {e}"));
    }
}

pub async fn run(ctx: ServiceContext) -> Result<(), ServiceError> {
    let keyring = token_keyring(&ctx.config.secrets).map_err(|e| ServiceError::new(NAME, e))?;
    let configured = &ctx.config.collector;
    let mut settings = CollectorOptions {
        window: configured.window,
        backfill: configured.backfill,
        lease_ttl: configured.lease_ttl,
        logpull_delay: configured.logpull_delay,
        logpush_lateness: configured.logpush_lateness,
        push_url: ctx.config.ingest.public_url.clone(),
        bucket_access: rainlogs_push::BucketAccess {
            addresses: rainlogs_store::AddressPolicy::from_allow_private(
                ctx.config.outbound.allow_private_networks,
            ),
            amazon_s3_endpoint: ctx.config.outbound.amazon_s3_endpoint.clone(),
        },
        ..CollectorOptions::default()
    };
    settings
        .client
        .base_url
        .clone_from(&ctx.config.cloudflare.base_url);
    let deps = CollectorDeps {
        bus: ctx.bus.clone(),
        settings,
        keyring,
        clock: Arc::new(SystemClock),
        meter: ctx.telemetry.meter(NAME),
        shutdown: ctx.shutdown.clone(),
        identity: identity::Identity::claim(&ctx.config.service.data_dir)
            .map_err(|e| ServiceError::new(NAME, e))?,
    };
    let ready = || ctx.report(NAME, ServiceState::Ready);
    run_collector(deps, ready)
        .await
        .map_err(|e| ServiceError::new(NAME, e))
}

/// The keys that open Cloudflare tokens: the current one (which also seals) and, during a
/// rotation, the one it replaced.
pub fn token_keyring(secrets: &rainlogs_config::SecretSettings) -> Result<TokenKeyring, String> {
    let current = secrets.token_encryption_key.as_ref().ok_or(
        "secrets.token_encryption_key is not set: the collector cannot open Cloudflare tokens",
    )?;
    let mut keys = vec![
        TokenKey::from_hex(current.expose())
            .map_err(|e| format!("secrets.token_encryption_key: {e}"))?,
    ];
    if let Some(previous) = &secrets.previous_token_encryption_key {
        keys.push(
            TokenKey::from_hex(previous.expose())
                .map_err(|e| format!("secrets.previous_token_encryption_key: {e}"))?,
        );
    }
    Ok(TokenKeyring::new(keys))
}
