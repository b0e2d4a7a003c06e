//! Tenants created by an operator (`rainlogs tenants create`): the way in when
//! `api.registration` is closed. The same checks and events as `POST /customers`.

use poem_openapi::types::ParseFromJSON as _;
use rainlogs_db::run_projection;

use crate::projections::ControlProjection;
use rainlogs_runtime::ServiceContext;
use serde_json::json;

use crate::routes::customers::NewCustomer;
use crate::state::{ApiOptions, AppState, Parts};

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Refused(String),
}

/// What an operator hands to the customer: its id and first admin key (shown only once).
pub struct CreatedTenant {
    pub customer_id: String,
    pub key_id: String,
    pub api_key: String,
}

/// Creates a tenant named `name` with contact `email`. Runs the control projection while it
/// waits for its own events (another process may run it too; each event is applied once).
pub async fn create_tenant(
    ctx: ServiceContext,
    name: &str,
    email: &str,
) -> Result<CreatedTenant, TenantError> {
    let state = AppState::new(
        Parts {
            config: ctx.config.clone(),
            db: ctx.db.clone(),
            bus: ctx.bus.clone(),
            store: ctx.store.clone(),
        },
        ApiOptions {
            retention: ctx.config.retention.clone(),
            ..ApiOptions::default()
        },
    )
    .map_err(|e| TenantError::Refused(e.to_string()))?;
    // Parsed as the API parses a registration body: the document's rules, in one place.
    let body = NewCustomer::parse_from_json(Some(json!({"name": name, "email": email})))
        .map_err(|e| TenantError::Invalid(e.into_message()))?;
    let stop = ctx.shutdown.child_token();
    let projector = tokio::spawn(run_projection(
        ctx.db.clone(),
        ctx.bus.clone(),
        ControlProjection,
        stop.clone(),
    ));
    let result = state.register(body).await;
    stop.cancel();
    let _ = projector.await;
    let onboarded = result.map_err(|e| TenantError::Refused(e.body().message.clone()))?;
    Ok(CreatedTenant {
        customer_id: onboarded.customer.id,
        key_id: onboarded.api_key.key_id,
        api_key: onboarded.api_key.key,
    })
}
