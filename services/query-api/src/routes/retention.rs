//! Retention policy: how long archives are kept, per tenant with per-zone overrides. A change
//! applies to windows archived from then on; archives already sealed keep their retain-until.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use rainlogs_schemas::events::{Event, RetentionSet, Role};

use crate::auth::BearerAuth;
use crate::error::{ApiError, ErrorCode};
use crate::events::Outcome;
use crate::routes::zones::ZoneView;
use crate::state::{AppState, SharedState};
use crate::views::ApiTags;

pub struct RetentionApi;

#[derive(Clone, Object)]
struct ZoneRetention {
    zone_id: String,
    days: u32,
}

#[derive(Clone, Object)]
struct RetentionPolicy {
    /// Days after a window's end that its archive is kept (zones without their own).
    days: u32,
    /// The range this installation allows.
    min_days: u32,
    max_days: u32,
    /// Zones with their own retention.
    zones: Vec<ZoneRetention>,
}

// The schemas' floor is `rainlogs_config::MIN_RETENTION_DAYS` and their ceiling what a u32
// holds (a client must learn that a larger number does not parse from the document, not from a
// 400); the configured range (`retention.min_days`..`retention.max_days`) is checked by the
// operations and answers 422 `RETENTION_OUT_OF_RANGE`.
#[derive(Object)]
struct NewTenantRetention {
    /// Days after a window's end, within `retention.min_days`..`retention.max_days`.
    #[oai(validator(minimum(value = "7"), maximum(value = "4294967295")))]
    days: u32,
}

#[derive(Object)]
struct NewZoneRetention {
    /// Absent or null: the zone follows the tenant's retention again.
    #[oai(
        nullable,
        validator(minimum(value = "7"), maximum(value = "4294967295"))
    )]
    days: Option<u32>,
}

impl AppState {
    pub(crate) fn check_retention_days(&self, days: u32) -> Result<(), ApiError> {
        let bounds = &self.options.retention;
        if days < bounds.min_days || days > bounds.max_days {
            return Err(ApiError::new(
                ErrorCode::RetentionOutOfRange,
                format!(
                    "retention must be between {} and {} days",
                    bounds.min_days, bounds.max_days
                ),
            ));
        }
        Ok(())
    }

    async fn retention_policy(&self, tenant: &str) -> Result<RetentionPolicy, ApiError> {
        let policy = self
            .read_cache
            .get_or_load(
                tenant,
                "retention".into(),
                crate::read_cache::CONTROL,
                || self.load_retention_policy(tenant),
            )
            .await?;
        Ok(policy.as_ref().clone())
    }

    async fn load_retention_policy(&self, tenant: &str) -> Result<RetentionPolicy, ApiError> {
        let (days,): (i32,) =
            sqlx::query_as("SELECT retention_days FROM tenants WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_one(&self.db)
                .await?;
        let zones: Vec<(String, i32)> = sqlx::query_as(
            "SELECT zone_id, retention_days FROM zones \
             WHERE tenant_id = $1 AND removed_at IS NULL AND retention_days IS NOT NULL \
             ORDER BY zone_id",
        )
        .bind(tenant)
        .fetch_all(&self.db)
        .await?;
        let days_of = |d: i32| u32::try_from(d).unwrap_or(0);
        Ok(RetentionPolicy {
            days: days_of(days),
            min_days: self.options.retention.min_days,
            max_days: self.options.retention.max_days,
            zones: zones
                .into_iter()
                .map(|(zone_id, days)| ZoneRetention {
                    zone_id,
                    days: days_of(days),
                })
                .collect(),
        })
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Customers")]
impl RetentionApi {
    /// The tenant's retention policy and zone overrides (every role)
    #[oai(path = "/retention", method = "get", operation_id = "getRetention")]
    async fn get(
        &self,
        state: Data<&SharedState>,
        auth: BearerAuth,
    ) -> Result<Json<RetentionPolicy>, ApiError> {
        let p = &auth.0;
        state
            .authorize(
                p,
                &[Role::Admin, Role::Operator, Role::Auditor],
                "retention.read",
                "retention",
            )
            .await?;
        let policy = state.retention_policy(&p.tenant).await?;
        state
            .audit(
                &p.tenant,
                &p.actor,
                "retention.read",
                "retention",
                Outcome::Ok,
                None,
            )
            .await?;
        Ok(Json(policy))
    }

    /// Set the tenant's retention for windows archived from now on (admin)
    #[oai(path = "/retention", method = "put", operation_id = "setRetention")]
    async fn set(
        &self,
        state: Data<&SharedState>,
        auth: BearerAuth,
        body: Json<NewTenantRetention>,
    ) -> Result<Json<RetentionPolicy>, ApiError> {
        let p = &auth.0;
        state
            .authorize(p, &[Role::Admin], "retention.set", "retention")
            .await?;
        state.check_retention_days(body.days)?;
        let event = Event::RetentionSet(RetentionSet {
            zone_id: None,
            days: Some(body.days),
        });
        state
            .command(&p.tenant, None, &p.actor, vec![event])
            .await?;
        state
            .audit(
                &p.tenant,
                &p.actor,
                "retention.set",
                "retention",
                Outcome::Ok,
                Some(format!("days={}", body.days)),
            )
            .await?;
        Ok(Json(state.retention_policy(&p.tenant).await?))
    }

    /// Give a zone its own retention, or (days null) make it follow the tenant's again (admin)
    #[oai(
        path = "/zones/:zone_id/retention",
        method = "put",
        operation_id = "setZoneRetention"
    )]
    async fn set_zone(
        &self,
        state: Data<&SharedState>,
        #[oai(validator(pattern = r"^[0-9a-f]{32}$"))] zone_id: Path<String>,
        auth: BearerAuth,
        body: Json<NewZoneRetention>,
    ) -> Result<Json<ZoneView>, ApiError> {
        let p = &auth.0;
        let target = format!("zone/{}", zone_id.0);
        state
            .authorize(p, &[Role::Admin], "zone.retention", &target)
            .await?;
        let zone = state.own_zone(&p.tenant, &zone_id.0).await?;
        if let Some(days) = body.days {
            state.check_retention_days(days)?;
        }
        let event = Event::RetentionSet(RetentionSet {
            zone_id: Some(zone.zone_id.clone()),
            days: body.days,
        });
        state
            .command(&p.tenant, Some(&zone.zone_id), &p.actor, vec![event])
            .await?;
        let detail = body
            .days
            .map_or_else(|| "days=tenant".to_owned(), |d| format!("days={d}"));
        state
            .audit(
                &p.tenant,
                &p.actor,
                "zone.retention",
                &target,
                Outcome::Ok,
                Some(detail),
            )
            .await?;
        Ok(Json(state.own_zone(&p.tenant, &zone.zone_id).await?))
    }
}
