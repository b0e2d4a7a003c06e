//! Writes are events: control changes go to `rl.ctl.<tenant>` and the answer waits until the
//! control projection has applied them (read-your-writes); every mutating action and every data
//! read goes to `rl.audit.<tenant>`.

use rainlogs_db::{Projection as _, wait_until_applied};

use crate::projections::ControlProjection;

use crate::projected::Watcher as _;
use rainlogs_schemas::events::AuditRecorded;
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode};
use crate::request;
use crate::state::AppState;

/// Outcome words of an audit record.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Ok,
    Denied,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }
}

/// Ties the events of one request together (`correlation`), so an auditor can see which control
/// events an audit record stands for.
pub(crate) fn correlation() -> Option<Uuid> {
    request::current().and_then(|c| Uuid::parse_str(&c.id).ok())
}

impl AppState {
    /// Publishes control events in order and returns once the projection shows the last one.
    pub async fn command(
        &self,
        tenant: &str,
        zone: Option<&str>,
        actor: &Actor,
        events: Vec<Event>,
    ) -> Result<(), ApiError> {
        self.command_seen_by(ControlProjection::NAME, tenant, zone, actor, events)
            .await
    }

    /// Like `command`, waiting for the projection named `projection` instead of the control one.
    pub async fn command_seen_by(
        &self,
        projection: &str,
        tenant: &str,
        zone: Option<&str>,
        actor: &Actor,
        events: Vec<Event>,
    ) -> Result<(), ApiError> {
        let mut last = 0;
        for event in events {
            let mut envelope = Envelope::new(tenant, zone.map(str::to_owned), actor.clone(), event);
            envelope.correlation = correlation();
            last = self
                .bus
                .publish(&subjects::control(tenant), &envelope)
                .await
                .map_err(|e| ApiError::unavailable("the event backbone", e))?
                .sequence;
        }
        let applied =
            wait_until_applied(&self.db, projection, last, self.options.read_your_writes).await?;
        if applied {
            // The notification may reach this process after the caller's next request (a
            // revoked key must not work for it, nor a stale answer be served).
            self.read_cache.changed(projection, tenant);
            self.key_cache.changed(projection, tenant);
        } else {
            return Err(ApiError::new(
                ErrorCode::ProjectionLagging,
                format!(
                    "the change was accepted (stream sequence {last}) but is not visible yet; \
                     read it again shortly"
                ),
            ));
        }
        Ok(())
    }

    /// Records an audit event. Data reads call this before serving: a read that cannot be
    /// audited is refused.
    pub async fn audit(
        &self,
        tenant: &str,
        actor: &Actor,
        action: &str,
        target: &str,
        outcome: Outcome,
        detail: Option<String>,
    ) -> Result<(), ApiError> {
        let context = request::current();
        let event = Event::AuditRecorded(AuditRecorded {
            action: action.to_owned(),
            target: target.to_owned(),
            outcome: outcome.as_str().to_owned(),
            client_ip: context.as_ref().map(|c| c.client_ip.to_string()),
            request_id: context.as_ref().map(|c| c.id.clone()),
            detail,
        });
        let mut envelope = Envelope::new(tenant, None, actor.clone(), event);
        envelope.correlation = correlation();
        self.bus
            .publish(&subjects::audit(tenant), &envelope)
            .await
            .map_err(|e| ApiError::unavailable("the audit log", e))?;
        Ok(())
    }

    /// Audits a refused attempt; the refusal is answered whether or not the record lands.
    pub async fn audit_denied(&self, tenant: &str, actor: &Actor, action: &str, target: &str) {
        if let Err(e) = self
            .audit(tenant, actor, action, target, Outcome::Denied, None)
            .await
        {
            tracing::warn!(action, error = ?e.body().message, "could not audit a denied request");
        }
    }
}

impl AppState {
    /// Checks the caller's role for `action`; a refusal is audited and answered 403.
    pub async fn authorize(
        &self,
        principal: &crate::auth::Principal,
        allowed: &[rainlogs_schemas::events::Role],
        action: &str,
        target: &str,
    ) -> Result<(), ApiError> {
        if let Err(refused) = principal.require(allowed) {
            self.audit_denied(&principal.tenant, &principal.actor, action, target)
                .await;
            return Err(refused);
        }
        Ok(())
    }
}
