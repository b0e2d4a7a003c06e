//! The query-api service: keeps the Postgres projections current and serves the REST API
//! (poem-openapi; the document is committed as `openapi/rainlogs.json`).
//!
//! - Writes become `rl.ctl.<tenant>` events; the answer waits until the control projection
//!   shows them (read-your-writes).
//! - Every mutating action and every data read is an `rl.audit.<tenant>` event.
//! - Jobs are the sealed windows of `rl.chain.<zone>`; downloads are served only from a stored
//!   copy whose bytes match the sealed hashes: archives up to 32 MiB are checked whole before the
//!   status line (no intact copy: 500 `ARCHIVE_DAMAGED`), larger ones are streamed, checked while
//!   they stream and cut off mid-body on a mismatch.

mod allow;
mod api_keys;
mod app;
mod auth;
mod download;
mod erasure_records;
mod error;
mod events;
mod jwt;
mod key_cache;
mod login_throttle;
pub mod metrics;
mod middleware;
mod passwords;
mod projected;
mod projections;
mod proofs;
mod rate_limit;
mod read_cache;
mod request;
mod routes;
mod state;
mod storage_status;
mod tenants;
mod text;
mod views;

use std::sync::Arc;

use rainlogs_db::ProjectionSpec;
use rainlogs_integrity::{NoteSigningKey, NoteVerifierKey};
use rainlogs_runtime::{
    Config, ConfigCheck, SecretForm, ServiceContext, ServiceDescriptor, ServiceError,
};
use rainlogs_telemetry::ServiceState;

pub use app::openapi_json;
pub use error::ErrorBody;
pub use projections::{
    AuditProjection, ChainProjection, ControlProjection, LegalHoldListProjection,
};
pub use rainlogs_http::ConnectionLimits;
pub use rate_limit::Rate;
pub use state::{ApiOptions, Quotas};
pub use tenants::{CreatedTenant, TenantError, create_tenant};

pub const NAME: &str = "query-api";

/// The read models this service owns.
const PROJECTIONS: &[ProjectionSpec] = &[
    ProjectionSpec::of::<ControlProjection>(),
    ProjectionSpec::of::<AuditProjection>(),
    ProjectionSpec::of::<ChainProjection>(),
    ProjectionSpec::of::<LegalHoldListProjection>(),
];

pub const SERVICE: ServiceDescriptor = ServiceDescriptor {
    name: NAME,
    summary: "the REST API for tenants, zones, keys, sealed windows, downloads and proofs; \
              commands are published as events and answered once their projection has \
              applied them, reads come from its own projections",
    run: |ctx| Box::pin(run(ctx)),
    projections: PROJECTIONS,
    metrics: metrics::FAMILIES,
    check_config,
};

fn check_config(config: &Config, check: &mut ConfigCheck) {
    let secrets = &config.secrets;
    check.require_secret(
        "api_key_digest_key",
        secrets.api_key_digest_key.as_ref(),
        SecretForm::Hex32,
    );
    check.require_secret(
        "token_encryption_key",
        secrets.token_encryption_key.as_ref(),
        SecretForm::Hex32,
    );
    match &secrets.jwt_secret {
        Some(jwt) => check.check_secret("jwt_secret", jwt, SecretForm::AtLeast32Bytes),
        None => check.note("secrets.jwt_secret is not set: dashboard sign-in answers 503"),
    }
    // The public key: configured, or derived from the signing key (as the API does at start).
    match (&config.api.verifier_key, &secrets.signing_key) {
        (Some(text), _) => {
            if let Err(e) = NoteVerifierKey::parse(text.trim()) {
                check.problem(format!(
                    "api.verifier_key is not a valid note verifier key \
                     (<name>+<key id>+<base64>): {e}"
                ));
            }
        }
        (None, Some(key)) => {
            if let Err(e) = NoteSigningKey::parse(key.expose().trim()) {
                check.problem(format!(
                    "secrets.signing_key is not a valid note signing key \
                     (PRIVATE+KEY+<name>+<key id>+<base64>): {e}"
                ));
            }
        }
        (None, None) => check.note(
            "neither api.verifier_key nor secrets.signing_key is set: the verifier key and \
             inclusion proofs answer 503",
        ),
    }
    if let Err(e) = rainlogs_cloudflare::parse_base_url(&config.cloudflare.base_url) {
        check.problem(format!("cloudflare.base_url: {e}"));
    }
}

/// Runs the API with the default limits and the configured retention bounds.
pub async fn run(ctx: ServiceContext) -> Result<(), ServiceError> {
    let options = ApiOptions {
        retention: ctx.config.retention.clone(),
        ..ApiOptions::default()
    };
    run_with(ctx, options).await
}

/// Runs the API with `options` (tests use lower timeouts or higher limits).
pub async fn run_with(ctx: ServiceContext, options: ApiOptions) -> Result<(), ServiceError> {
    let err = |e: &dyn std::fmt::Display| ServiceError::new(NAME, e);
    let state = state::AppState::new(
        state::Parts {
            config: ctx.config.clone(),
            db: ctx.db.clone(),
            bus: ctx.bus.clone(),
            store: ctx.store.clone(),
        },
        options,
    )
    .map_err(|e| err(&e))?;
    let caches: Vec<Arc<dyn projected::Watcher>> =
        vec![state.key_cache.clone(), state.read_cache.clone()];
    let projected = projected::follow(ctx.db.clone(), caches, ctx.shutdown.clone());
    let state = Arc::new(state);
    let erasure_records = erasure_records::follow(
        state.clone(),
        state.options.erasure_record_retry,
        ctx.shutdown.clone(),
    );
    let listener = tokio::net::TcpListener::bind(ctx.config.api.listen)
        .await
        .map_err(|e| err(&format!("api.listen {}: {e}", ctx.config.api.listen)))?;
    let server = rainlogs_http::serve(
        listener,
        app::app(state.clone()),
        state.options.connections,
        ctx.shutdown.clone(),
        ctx.config.service.shutdown_timeout,
    );
    let projections = ctx.run_projections(NAME, PROJECTIONS);
    ctx.report(NAME, ServiceState::Ready);
    tracing::info!(listen = %ctx.config.api.listen, "query-api listening");
    // The first failure ends the service; the process decides what to do with the others.
    tokio::try_join!(
        async { server.await.map_err(|e| err(&e)) },
        projections,
        async {
            projected.await;
            Ok(())
        },
        async {
            erasure_records.await;
            Ok(())
        },
    )?;
    Ok(())
}
