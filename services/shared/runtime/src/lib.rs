//! The context a service runs in. Services never call each other; they share only this.

pub mod consumers;
mod descriptor;
mod store;

pub use descriptor::{ConfigCheck, ServiceDescriptor, nothing_to_check};
pub use rainlogs_config::{Config, SecretForm};
pub use store::{ObjectStore, OpenStoreError, open_store, store_problems};

use std::sync::Arc;

use rainlogs_bus::{Bus, CancellationToken};
use rainlogs_db::ProjectionSpec;
use rainlogs_telemetry::{Health, ServiceState, Telemetry};
use sqlx::PgPool;

#[derive(Clone)]
pub struct ServiceContext {
    pub config: Arc<Config>,
    pub bus: Bus,
    pub db: PgPool,
    /// Archive object storage (`store.url`), opened once per process.
    pub store: ObjectStore,
    pub health: Health,
    pub telemetry: Telemetry,
    /// Fires on SIGTERM/SIGINT: stop taking new work, finish what is in hand, return.
    pub shutdown: CancellationToken,
}

impl ServiceContext {
    pub fn report(&self, service: &str, state: ServiceState) {
        self.health.set_service(service, state);
    }

    /// Reports durable consumer `name` on `/metrics` until shutdown ([`consumers`]).
    pub fn watch_consumer(&self, name: &'static str) {
        consumers::watch(
            self.bus.clone(),
            &self.telemetry,
            name,
            self.shutdown.clone(),
        );
    }

    /// Keeps the projections a service owns up to date until shutdown; the first failure ends
    /// them all.
    pub async fn run_projections(
        &self,
        service: &'static str,
        projections: &[ProjectionSpec],
    ) -> Result<(), ServiceError> {
        let runs = projections
            .iter()
            .map(|p| p.run(self.db.clone(), self.bus.clone(), self.shutdown.clone()));
        futures::future::try_join_all(runs)
            .await
            .map(|_| ())
            .map_err(|e| ServiceError::new(service, e))
    }
}

/// Why a service stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
#[error("{service}: {reason}")]
pub struct ServiceError {
    pub service: &'static str,
    pub reason: String,
}

impl ServiceError {
    pub fn new(service: &'static str, reason: impl std::fmt::Display) -> Self {
        Self {
            service,
            reason: reason.to_string(),
        }
    }
}
