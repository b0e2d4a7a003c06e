//! The query-api service: keeps the Postgres projections current and serves the REST API.
//! This foundation serves `/health`, `/ready` and `/metrics` on `api.listen`; the REST
//! routes land with the query-api issue.

use rainlogs_db::{AuditProjection, ControlProjection, run_projection};
use rainlogs_runtime::{ServiceContext, ServiceError};
use rainlogs_telemetry::{ServiceState, health_routes};

pub const NAME: &str = "query-api";

pub async fn run(ctx: ServiceContext) -> Result<(), ServiceError> {
    let err = |e: &dyn std::fmt::Display| ServiceError::new(NAME, e);
    let listener = poem::listener::TcpListener::bind(ctx.config.api.listen);
    let app = health_routes(ctx.health.clone(), ctx.telemetry.clone());
    let shutdown = ctx.shutdown.clone();
    let server = poem::Server::new(listener).run_with_graceful_shutdown(
        app,
        async move { shutdown.cancelled().await },
        Some(ctx.config.service.shutdown_timeout),
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
    ctx.report(NAME, ServiceState::Ready);
    tracing::info!(listen = %ctx.config.api.listen, "query-api listening");
    // The first failure ends the service; the process decides what to do with the others.
    tokio::try_join!(
        async { server.await.map_err(|e| err(&e)) },
        async { control.await.map_err(|e| err(&e)) },
        async { audit.await.map_err(|e| err(&e)) },
    )?;
    Ok(())
}
