//! `GET /api/v1/audit-log`: the tenant's audit records, newest first.

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use rainlogs_schemas::events::Role;
use time::OffsetDateTime;

use crate::auth::BearerAuth;
use crate::error::ApiError;
use crate::events::Outcome;
use crate::state::{AppState, SharedState};
use crate::views::{ApiTags, page_size};

pub struct AuditLogApi;

/// Who did what, when, from where, with which result.
#[derive(Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditRecord {
    /// Position in the audit stream; pass as `before` to page back.
    pub sequence: u64,
    pub event_id: String,
    pub occurred_at: OffsetDateTime,
    /// `key:<key id>`, `user:<user id>`, `service:<name>` or `operator:cli`.
    pub actor: String,
    pub action: String,
    pub target: String,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    pub detail: Option<String>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
struct AuditPage {
    records: Vec<AuditRecord>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    next_before: Option<u64>,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    stream_sequence: i64,
    event_id: uuid::Uuid,
    occurred_at: OffsetDateTime,
    actor: String,
    action: String,
    target: String,
    outcome: String,
    client_ip: Option<String>,
    request_id: Option<String>,
    detail: Option<String>,
}

impl AppState {
    /// Records with a stream sequence below `before`, newest first.
    pub async fn audit_records(
        &self,
        tenant: &str,
        before: i64,
        action: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<AuditRecord>, ApiError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT stream_sequence, event_id, occurred_at, actor, action, target, outcome, \
             client_ip, request_id, detail FROM audit_log \
             WHERE tenant_id = $1 AND stream_sequence < $2 AND ($3::TEXT IS NULL OR action = $3) \
             ORDER BY stream_sequence DESC LIMIT $4",
        )
        .bind(tenant)
        .bind(before)
        .bind(action)
        .bind(limit.unwrap_or(i64::MAX))
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditRecord {
                sequence: u64::try_from(r.stream_sequence).unwrap_or(0),
                event_id: r.event_id.to_string(),
                occurred_at: r.occurred_at,
                actor: r.actor,
                action: r.action,
                target: r.target,
                outcome: r.outcome,
                client_ip: r.client_ip,
                request_id: r.request_id,
                detail: r.detail,
            })
            .collect())
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Audit")]
impl AuditLogApi {
    /// The tenant's audit log, newest first (admin, auditor)
    #[oai(path = "/audit-log", method = "get", operation_id = "listAuditLog")]
    async fn list(
        &self,
        state: Data<&SharedState>,
        auth: BearerAuth,
        /// Only records older than this sequence.
        // 10^15: below 2^53, so the bound is the same number to every client and to the
        // validator (both compare doubles) and prints exactly in the document. No audit log
        // comes near it.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000000000000")))]
        before: Query<Option<u64>>,
        /// Only this action, e.g. `archive.download`.
        #[oai(validator(max_length = 100, pattern = r"^[a-z_]+(\.[a-z_]+)*$"))]
        action: Query<Option<String>>,
        /// 1 to 1000 (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<AuditPage>, ApiError> {
        let p = &auth.0;
        state
            .authorize(
                p,
                &[Role::Admin, Role::Auditor],
                "audit_log.read",
                "audit_log",
            )
            .await?;
        let limit = page_size(limit.0, 100, 1000)?;
        let before = before
            .0
            .map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let mut records = state
            .audit_records(&p.tenant, before, action.0.as_deref(), Some(limit + 1))
            .await?;
        let more = records.len() as i64 > limit;
        records.truncate(usize::try_from(limit).unwrap_or(0));
        let next_before = more.then(|| records.last().map(|r| r.sequence)).flatten();
        state
            .audit(
                &p.tenant,
                &p.actor,
                "audit_log.read",
                "audit_log",
                Outcome::Ok,
                None,
            )
            .await?;
        Ok(Json(AuditPage {
            records,
            next_before,
        }))
    }
}
