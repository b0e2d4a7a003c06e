//! `ctl.zone_health` events: what an operator needs to know about a zone, said once per change.

use rainlogs_bus::Bus;
use rainlogs_schemas::events::{Method, ZoneHealth};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Degraded,
    Failing,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Failing => "failing",
        }
    }
}

/// Publishes a zone's health when it differs from what this task said last.
pub struct HealthReporter {
    bus: Bus,
    tenant: String,
    zone: String,
    last: Option<(Status, String, Option<String>, Option<Method>)>,
}

impl HealthReporter {
    pub fn new(bus: Bus, tenant: &str, zone: &str) -> Self {
        Self {
            bus,
            tenant: tenant.to_owned(),
            zone: zone.to_owned(),
            last: None,
        }
    }

    pub async fn report(
        &mut self,
        status: Status,
        reason: impl Into<String>,
        plan: Option<&str>,
        method: Option<Method>,
    ) {
        let reason = reason.into();
        let state = (status, reason.clone(), plan.map(str::to_owned), method);
        if self.last.as_ref() == Some(&state) {
            return;
        }
        match status {
            Status::Ok => tracing::info!(zone = %self.zone, %reason, "zone health ok"),
            _ => {
                tracing::warn!(zone = %self.zone, status = status.as_str(), %reason, "zone health")
            }
        }
        let event = Envelope::new(
            self.tenant.clone(),
            Some(self.zone.clone()),
            Actor::service(crate::NAME),
            Event::ZoneHealth(ZoneHealth {
                zone_id: self.zone.clone(),
                status: status.as_str().to_owned(),
                reason,
                plan: plan.map(str::to_owned),
                method,
            }),
        );
        match self
            .bus
            .publish(&subjects::control(&self.tenant), &event)
            .await
        {
            Ok(_) => self.last = Some(state),
            // Not remembered, so the next report tries again.
            Err(e) => tracing::warn!(zone = %self.zone, error = %e, "cannot publish zone health"),
        }
    }
}
