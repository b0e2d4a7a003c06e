use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use poem::http::StatusCode;
use poem::web::Json;
use poem::{Body, EndpointExt, IntoResponse, Response, Route, get, handler};
use serde::Serialize;
use serde_json::Value;

use crate::Telemetry;

/// Lifecycle of one service in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    Starting,
    Ready,
    Stopping,
}

/// `Ok(None)`: fine; `Ok(Some(why))`: working, but degraded (still ready); `Err(why)`: not ready.
type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<Option<String>, String>> + Send + Sync>;
type InfoSource = Arc<dyn Fn() -> BoxFuture<'static, Value> + Send + Sync>;

#[derive(Default)]
struct State {
    services: BTreeMap<String, ServiceState>,
    checks: Vec<(String, Check)>,
    info: BTreeMap<String, Value>,
    info_sources: Vec<(String, InfoSource)>,
}

/// What `/ready` reports: services' states, dependency checks, and facts such as storage posture.
#[derive(Clone, Default)]
pub struct Health {
    state: Arc<Mutex<State>>,
}

/// How long one dependency check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

impl Health {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state)
    }

    pub fn set_service(&self, name: &str, state: ServiceState) {
        self.with(|s| s.services.insert(name.to_owned(), state));
    }

    /// A dependency that must answer for the process to be ready (NATS, Postgres, store).
    pub fn add_check<F>(&self, name: &str, check: F)
    where
        F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
    {
        let check = Arc::new(check);
        self.add_degradable_check(name, move || {
            let check = Arc::clone(&check);
            Box::pin(async move { check().await.map(|()| None) })
        });
    }

    /// A dependency that can also be degraded: working on part of itself (one of two storage
    /// providers). Degraded keeps the process ready, so an orchestrator does not kill a process
    /// that works, and `/ready` says `degraded` with the reason.
    pub fn add_degradable_check<F>(&self, name: &str, check: F)
    where
        F: Fn() -> BoxFuture<'static, Result<Option<String>, String>> + Send + Sync + 'static,
    {
        self.with(|s| s.checks.push((name.to_owned(), Arc::new(check))));
    }

    /// Extra facts shown on `/ready` (e.g. the store's Object Lock posture).
    pub fn set_info(&self, key: &str, value: Value) {
        self.with(|s| s.info.insert(key.to_owned(), value));
    }

    /// A fact shown on `/ready` under `info.<key>`, computed each time it is asked for (e.g.
    /// events a projection set aside). It never makes the process not ready: it is for the
    /// operator, and readiness is what a load balancer acts on. A source that does not answer
    /// within the check timeout shows as a string saying so.
    pub fn add_info_source<F>(&self, key: &str, source: F)
    where
        F: Fn() -> BoxFuture<'static, Value> + Send + Sync + 'static,
    {
        self.with(|s| s.info_sources.push((key.to_owned(), Arc::new(source))));
    }

    /// Runs every check and info source; `true` when the process is ready.
    pub async fn report(&self) -> (bool, Value) {
        let (services, checks, mut info, sources) = self.with(|s| {
            (
                s.services.clone(),
                s.checks.clone(),
                s.info.clone(),
                s.info_sources.clone(),
            )
        });
        let live = futures::future::join_all(sources.into_iter().map(|(key, source)| async move {
            let value = tokio::time::timeout(CHECK_TIMEOUT, source())
                .await
                .unwrap_or_else(|_| {
                    Value::String(format!("no answer within {}s", CHECK_TIMEOUT.as_secs()))
                });
            (key, value)
        }));
        let results =
            futures::future::join_all(checks.into_iter().map(|(name, check)| async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
                };
                (name, outcome)
            }));
        let (results, live) = futures::future::join(results, live).await;
        info.extend(live);
        let checks_ok = results.iter().all(|(_, r)| r.is_ok());
        let degraded = results.iter().any(|(_, r)| matches!(r, Ok(Some(_))));
        let services_ok =
            !services.is_empty() && services.values().all(|s| *s == ServiceState::Ready);
        let checks: BTreeMap<String, String> = results
            .into_iter()
            .map(|(name, r)| {
                let said = match r {
                    Ok(None) => "ok".to_owned(),
                    Ok(Some(why)) => format!("degraded: {why}"),
                    Err(why) => why,
                };
                (name, said)
            })
            .collect();
        let ready = checks_ok && services_ok;
        let status = match (ready, degraded) {
            (false, _) => "not_ready",
            (true, true) => "degraded",
            (true, false) => "ready",
        };
        let body = serde_json::json!({
            "status": status,
            "services": services,
            "checks": checks,
            "info": info,
        });
        (ready, body)
    }
}

#[handler]
async fn health_endpoint() -> Json<Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

#[handler]
async fn ready_endpoint(health: poem::web::Data<&Health>) -> Response {
    let (ok, body) = health.report().await;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Json(body).with_status(status).into_response()
}

#[handler]
async fn metrics_endpoint(telemetry: poem::web::Data<&Telemetry>) -> Response {
    Response::builder()
        .content_type("text/plain; version=0.0.4")
        .body(Body::from_string(telemetry.render()))
}

/// `/health`, `/ready` and `/metrics`, mounted on the telemetry port (and on the API).
pub fn health_routes(health: Health, telemetry: Telemetry) -> impl poem::Endpoint {
    Route::new()
        .at("/health", get(health_endpoint))
        .at("/ready", get(ready_endpoint))
        .at("/metrics", get(metrics_endpoint))
        .data(health)
        .data(telemetry)
}
