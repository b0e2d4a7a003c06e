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
mod middleware;
mod passwords;
mod projected;
mod proofs;
mod rate_limit;
mod read_cache;
mod request;
mod routes;
mod server;
mod state;
mod storage_status;
mod tenants;
mod text;
mod views;

use std::sync::Arc;

use rainlogs_db::{AuditProjection, ChainProjection, ControlProjection, run_projection};
use rainlogs_runtime::{ServiceContext, ServiceError};
use rainlogs_telemetry::ServiceState;

pub use app::openapi_json;
pub use error::ErrorBody;
pub use rate_limit::Rate;
pub use server::ConnectionLimits;
pub use state::{ApiOptions, Quotas};
pub use tenants::{CreatedTenant, TenantError, create_tenant};

pub const NAME: &str = "query-api";

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
    let server = server::serve(
        listener,
        app::app(state.clone()),
        state.options.connections,
        ctx.shutdown.clone(),
        ctx.config.service.shutdown_timeout,
    );
    let control = run_projection(
        ctx.db.clone(),
        ctx.bus.clone(),
        ControlProjection,
        ctx.shutdown.clone(),
    );
    let audit = run_projection(
        ctx.db.clone(),
        ctx.bus.clone(),
        AuditProjection,
        ctx.shutdown.clone(),
    );
    let chain = run_projection(
        ctx.db.clone(),
        ctx.bus.clone(),
        ChainProjection,
        ctx.shutdown.clone(),
    );
    ctx.report(NAME, ServiceState::Ready);
    tracing::info!(listen = %ctx.config.api.listen, "query-api listening");
    // The first failure ends the service; the process decides what to do with the others.
    tokio::try_join!(
        async { server.await.map_err(|e| err(&e)) },
        async { control.await.map_err(|e| err(&e)) },
        async { audit.await.map_err(|e| err(&e)) },
        async { chain.await.map_err(|e| err(&e)) },
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
