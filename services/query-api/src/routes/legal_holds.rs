//! Legal holds: while one is set, nothing of the tenant (or of one zone) is deleted, whatever its
//! retain-until. Admin only, every change audited.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use rainlogs_db::Projection as _;

use crate::projections::LegalHoldListProjection;
use rainlogs_schemas::events::{Event, LegalHoldReleased, LegalHoldSet, Role};
use time::OffsetDateTime;

use crate::auth::BearerAuth;
use crate::error::{ApiError, ErrorCode};
use crate::events::Outcome;
use crate::state::{AppState, SharedState};
use crate::text::{Label, Text};
use crate::views::{ApiTags, from_ns};

pub struct LegalHoldsApi;

#[derive(Object)]
struct NewLegalHold {
    /// The zone it covers; absent or null: every zone of the tenant.
    #[oai(nullable, validator(pattern = "^[0-9a-f]{32}$"))]
    zone_id: Option<Text>,
    /// Why, for the audit trail (case number, authority).
    #[oai(validator(max_length = 500))]
    reason: Label,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
struct LegalHold {
    hold_id: String,
    zone_id: Option<String>,
    reason: String,
    set_at: OffsetDateTime,
}

#[derive(Object)]
struct LegalHoldList {
    holds: Vec<LegalHold>,
}

#[derive(ApiResponse)]
enum SetHoldResponse {
    /// The hold is in force: nothing it covers is deleted until it is released.
    #[oai(status = 201)]
    Set(Json<LegalHold>),
}

#[derive(ApiResponse)]
enum ReleaseHoldResponse {
    /// Released; deletion at retain-until resumes for what it covered.
    #[oai(status = 204)]
    Released,
}

impl AppState {
    async fn holds(&self, tenant: &str, hold_id: Option<&str>) -> Result<Vec<LegalHold>, ApiError> {
        let rows: Vec<(String, Option<String>, String, i64)> = sqlx::query_as(
            "SELECT hold_id, zone, reason, set_at_ns FROM api_legal_holds \
             WHERE tenant = $1 AND ($2::TEXT IS NULL OR hold_id = $2) ORDER BY set_at_ns, hold_id",
        )
        .bind(tenant)
        .bind(hold_id)
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(hold_id, zone_id, reason, set_at)| LegalHold {
                hold_id,
                zone_id,
                reason,
                set_at: from_ns(set_at),
            })
            .collect())
    }
}

fn hold_not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such legal hold")
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Customers")]
impl LegalHoldsApi {
    /// Put a legal hold on the tenant's archives or one zone's (admin)
    #[oai(path = "/legal-holds", method = "post", operation_id = "setLegalHold")]
    async fn set(
        &self,
        state: Data<&SharedState>,
        auth: BearerAuth,
        body: Json<NewLegalHold>,
    ) -> Result<SetHoldResponse, ApiError> {
        let p = &auth.0;
        state
            .authorize(p, &[Role::Admin], "legal_hold.set", "legal-holds")
            .await?;
        // Archives outlive their zone, so a removed zone can still be held.
        if let Some(zone) = &body.zone_id
            && !state.zone_known(&p.tenant, zone).await?
        {
            return Err(crate::views::zone_not_found(zone));
        }
        let hold_id = format!("h{}", uuid::Uuid::new_v4().simple());
        let event = Event::LegalHoldSet(LegalHoldSet {
            hold_id: hold_id.clone(),
            zone_id: body.zone_id.clone().map(Text::into_string),
            reason: body.reason.to_string(),
        });
        state
            .command_seen_by(
                LegalHoldListProjection::NAME,
                &p.tenant,
                body.zone_id.as_deref(),
                &p.actor,
                vec![event],
            )
            .await?;
        let target = format!("legal-hold/{hold_id}");
        state
            .audit(
                &p.tenant,
                &p.actor,
                "legal_hold.set",
                &target,
                Outcome::Ok,
                Some(format!("zone={}", body.zone_id.as_deref().unwrap_or("all"))),
            )
            .await?;
        let hold = state
            .holds(&p.tenant, Some(&hold_id))
            .await?
            .into_iter()
            .next()
            .ok_or_else(hold_not_found)?;
        Ok(SetHoldResponse::Set(Json(hold)))
    }

    /// The tenant's legal holds in force (admin)
    #[oai(path = "/legal-holds", method = "get", operation_id = "listLegalHolds")]
    async fn list(
        &self,
        state: Data<&SharedState>,
        auth: BearerAuth,
    ) -> Result<Json<LegalHoldList>, ApiError> {
        let p = &auth.0;
        state
            .authorize(p, &[Role::Admin], "legal_hold.list", "legal-holds")
            .await?;
        let holds = state.holds(&p.tenant, None).await?;
        state
            .audit(
                &p.tenant,
                &p.actor,
                "legal_hold.list",
                "legal-holds",
                Outcome::Ok,
                None,
            )
            .await?;
        Ok(Json(LegalHoldList { holds }))
    }

    /// Release a legal hold (admin)
    #[oai(
        path = "/legal-holds/:hold_id",
        method = "delete",
        operation_id = "releaseLegalHold"
    )]
    async fn release(
        &self,
        state: Data<&SharedState>,
        #[oai(validator(pattern = r"^h[0-9a-f]{32}$"))] hold_id: Path<String>,
        auth: BearerAuth,
    ) -> Result<ReleaseHoldResponse, ApiError> {
        let p = &auth.0;
        let target = format!("legal-hold/{}", hold_id.0);
        state
            .authorize(p, &[Role::Admin], "legal_hold.release", &target)
            .await?;
        if state.holds(&p.tenant, Some(&hold_id.0)).await?.is_empty() {
            return Err(hold_not_found());
        }
        let event = Event::LegalHoldReleased(LegalHoldReleased {
            hold_id: hold_id.0.clone(),
        });
        state
            .command_seen_by(
                LegalHoldListProjection::NAME,
                &p.tenant,
                None,
                &p.actor,
                vec![event],
            )
            .await?;
        state
            .audit(
                &p.tenant,
                &p.actor,
                "legal_hold.release",
                &target,
                Outcome::Ok,
                None,
            )
            .await?;
        Ok(ReleaseHoldResponse::Released)
    }
}
