//! The ingest service: Cloudflare Logpush pushes over HTTP, stored in RL_PUSH (`rl.push.<zone>`)
//! before they are answered 200. It takes pushes from any zone with a push endpoint
//! (`ctl.push_endpoint_set`), whichever collector holds the zone; cutting what was pushed into
//! windows happens downstream.

mod endpoints;
pub mod metrics;
mod receive;

use std::sync::Arc;
use std::time::Duration;

use poem::{EndpointExt as _, Route, post};
use rainlogs_runtime::{Config, ConfigCheck, ServiceContext, ServiceDescriptor, ServiceError};
use rainlogs_telemetry::ServiceState;
use tokio::sync::Semaphore;

pub use endpoints::PushEndpoints;
pub use rainlogs_push::{PART_BYTES, part_id};

use crate::metrics::IngestMetrics;
use crate::receive::{Ingest, take_push};

pub const NAME: &str = "ingest";

pub const SERVICE: ServiceDescriptor = ServiceDescriptor {
    name: NAME,
    summary: "takes Cloudflare Logpush HTTP pushes on ingest.listen and stores them in RL_PUSH \
              before answering 200; at least once, each part stored once (its id comes from its \
              content)",
    run: |ctx| Box::pin(run(ctx)),
    projections: &[],
    metrics: metrics::FAMILIES,
    check_config,
};

fn check_config(config: &Config, check: &mut ConfigCheck) {
    let ingest = &config.ingest;
    if ingest.listen.is_none() {
        check.note("ingest.listen is not set: Logpush pushes over HTTP are not taken");
    }
    if ingest.max_push_bytes < PART_BYTES as u64 {
        check.problem(format!(
            "ingest.max_push_bytes = {}: must be at least {PART_BYTES} (one part)",
            ingest.max_push_bytes
        ));
    }
    if ingest.max_concurrent_pushes == 0 {
        check.problem("ingest.max_concurrent_pushes must be at least 1");
    }
}

pub async fn run(ctx: ServiceContext) -> Result<(), ServiceError> {
    let settings = ctx.config.ingest.clone();
    let Some(listen) = settings.listen else {
        ctx.report(NAME, ServiceState::Ready);
        ctx.shutdown.cancelled().await;
        return Ok(());
    };
    let endpoints = PushEndpoints::follow(&ctx.bus, ctx.shutdown.clone())
        .await
        .map_err(|e| ServiceError::new(NAME, e))?;
    let ingest = Arc::new(Ingest {
        bus: ctx.bus.clone(),
        endpoints,
        metrics: IngestMetrics::new(&ctx.telemetry.meter(NAME)),
        max_push_bytes: settings.max_push_bytes,
        body_timeout: settings.body_timeout,
        pushes: Semaphore::new(settings.max_concurrent_pushes.max(1)),
    });
    let app = Route::new()
        .at("/logpush/v1/:zone/:dataset", post(take_push))
        .data(ingest);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| ServiceError::new(NAME, format!("ingest.listen {listen}: {e}")))?;
    tracing::info!(%listen, "ingest listening for Logpush pushes");
    ctx.report(NAME, ServiceState::Ready);
    let limits = rainlogs_http::ConnectionLimits {
        header_timeout: settings.body_timeout.min(Duration::from_secs(10)),
        body_timeout: settings.body_timeout,
        ..rainlogs_http::ConnectionLimits::default()
    };
    let served = rainlogs_http::serve(
        listener,
        app,
        limits,
        ctx.shutdown.clone(),
        ctx.config.service.shutdown_timeout,
    )
    .await;
    ctx.report(NAME, ServiceState::Stopping);
    served.map_err(|e| ServiceError::new(NAME, format!("ingest.listen {listen}: {e}")))
}
