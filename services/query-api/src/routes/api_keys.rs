//! `POST|GET /api/v1/api-keys`, `DELETE /api/v1/api-keys/{key_id}`.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use rainlogs_schemas::Actor;
use rainlogs_schemas::events::{ApiKeyCreated, ApiKeyRevoked, Event, Role};
use time::{Duration, OffsetDateTime};

use crate::api_keys::is_key_id;
use crate::auth::{BearerAuth, role_name};
use crate::error::{ApiError, ErrorCode};
use crate::events::Outcome;
use crate::state::{AppState, SharedState};
use crate::text::Label;
use crate::views::{ApiTags, now, to_ns};

pub struct ApiKeysApi;

/// A role on an API key or user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "lowercase")]
pub enum RoleName {
    /// Everything, including keys, erasure and export.
    Admin,
    /// Zones and pulls, plus reading.
    Operator,
    /// Reading, downloading and verifying.
    Auditor,
}

impl RoleName {
    pub fn role(self) -> Role {
        match self {
            Self::Admin => Role::Admin,
            Self::Operator => Role::Operator,
            Self::Auditor => Role::Auditor,
        }
    }

    pub fn of(role: Role) -> Self {
        match role {
            Role::Admin => Self::Admin,
            Role::Operator => Self::Operator,
            Role::Auditor => Self::Auditor,
        }
    }

    pub fn parse(text: &str) -> Self {
        crate::auth::parse_role(text).map_or(Self::Auditor, Self::of)
    }
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
struct NewApiKey {
    /// A label for people, e.g. `ci-exporter`.
    #[oai(validator(max_length = 100))]
    name: Label,
    /// At most the caller's own role.
    role: RoleName,
    /// The key stops working this many days from now; absent or null: it does not expire.
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "3650")))]
    expires_in_days: Option<u32>,
}

/// A new key. `key` is shown only in this answer: store it now.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CreatedApiKey {
    pub key_id: String,
    /// `rl_<key id>_<secret>`; send as `Authorization: Bearer <key>`.
    pub key: String,
    pub name: String,
    pub role: RoleName,
    pub expires_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// An API key without its secret.
#[derive(Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ApiKeyInfo {
    pub key_id: String,
    pub name: String,
    pub role: RoleName,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Object)]
struct ApiKeyList {
    api_keys: Vec<ApiKeyInfo>,
}

#[derive(ApiResponse)]
enum CreateKeyResponse {
    /// The key; its secret is never shown again.
    #[oai(status = 201)]
    Created(Json<CreatedApiKey>),
}

#[derive(ApiResponse)]
enum RevokeKeyResponse {
    /// Revoked; requests with it now answer 401 `ACCESS_DENIED`.
    #[oai(status = 204)]
    Revoked,
}

impl AppState {
    /// Mints a key, publishes it and returns the secret form. The caller waits for the
    /// projection (usually together with other events).
    pub fn mint_key(
        &self,
        name: &str,
        role: Role,
        expires_in_days: Option<u32>,
    ) -> (Event, CreatedApiKey) {
        let minted = self.digester.mint();
        let created_at = now();
        let expires_at = expires_in_days.map(|d| created_at + Duration::days(i64::from(d)));
        let event = Event::ApiKeyCreated(ApiKeyCreated {
            key_id: minted.key_id.clone(),
            name: name.to_owned(),
            role,
            digest: minted.digest,
            expires_at_ns: expires_at.map(to_ns),
        });
        let view = CreatedApiKey {
            key_id: minted.key_id,
            key: minted.token.to_string(),
            name: name.to_owned(),
            role: RoleName::of(role),
            expires_at,
            created_at,
        };
        (event, view)
    }

    pub async fn list_keys(&self, tenant: &str) -> Result<Vec<ApiKeyInfo>, ApiError> {
        type Row = (
            String,
            String,
            String,
            OffsetDateTime,
            Option<OffsetDateTime>,
            Option<OffsetDateTime>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT key_id, name, role, created_at, expires_at, revoked_at FROM api_keys \
             WHERE tenant_id = $1 ORDER BY created_at, key_id",
        )
        .bind(tenant)
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(key_id, name, role, created_at, expires_at, revoked_at)| ApiKeyInfo {
                    key_id,
                    name,
                    role: RoleName::parse(&role),
                    created_at,
                    expires_at,
                    revoked_at,
                },
            )
            .collect())
    }
}

fn key_not_found(key_id: &str) -> ApiError {
    let shown: String = key_id.chars().take(64).collect();
    ApiError::new(
        ErrorCode::ApiKeyNotFound,
        format!("API key {shown} not found"),
    )
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::ApiKeys")]
impl ApiKeysApi {
    /// Create an API key (admin, operator; at most the caller's own role)
    #[oai(path = "/api-keys", method = "post", operation_id = "createApiKey")]
    async fn create(
        &self,
        state: Data<&SharedState>,
        auth: BearerAuth,
        body: Json<NewApiKey>,
    ) -> Result<CreateKeyResponse, ApiError> {
        let p = &auth.0;
        state
            .authorize(
                p,
                &[Role::Admin, Role::Operator],
                "api_key.create",
                "api_keys",
            )
            .await?;
        let wanted = body.role.role();
        if wanted > p.role {
            state
                .audit_denied(&p.tenant, &p.actor, "api_key.create", "api_keys")
                .await;
            return Err(ApiError::with_status(
                poem::http::StatusCode::FORBIDDEN,
                ErrorCode::AccessDenied.as_str(),
                format!(
                    "a {} cannot create a key with the {} role",
                    role_name(p.role),
                    role_name(wanted)
                ),
            ));
        }
        let (event, view) = state.mint_key(&body.name, wanted, body.expires_in_days);
        state
            .command(&p.tenant, None, &p.actor, vec![event])
            .await?;
        state
            .audit(
                &p.tenant,
                &p.actor,
                "api_key.create",
                &format!("api_key/{}", view.key_id),
                Outcome::Ok,
                Some(format!("role={}", role_name(wanted))),
            )
            .await?;
        Ok(CreateKeyResponse::Created(Json(view)))
    }

    /// List the tenant's API keys (admin, operator)
    #[oai(path = "/api-keys", method = "get", operation_id = "listApiKeys")]
    async fn list(
        &self,
        state: Data<&SharedState>,
        auth: BearerAuth,
    ) -> Result<Json<ApiKeyList>, ApiError> {
        let p = &auth.0;
        state
            .authorize(
                p,
                &[Role::Admin, Role::Operator],
                "api_key.list",
                "api_keys",
            )
            .await?;
        let api_keys = state.list_keys(&p.tenant).await?;
        state
            .audit(
                &p.tenant,
                &p.actor,
                "api_key.list",
                "api_keys",
                Outcome::Ok,
                None,
            )
            .await?;
        Ok(Json(ApiKeyList { api_keys }))
    }

    /// Revoke an API key (admin)
    #[oai(
        path = "/api-keys/:key_id",
        method = "delete",
        operation_id = "revokeApiKey"
    )]
    async fn revoke(
        &self,
        state: Data<&SharedState>,
        #[oai(validator(pattern = r"^[0-9a-f]{16}$"))] key_id: Path<String>,
        auth: BearerAuth,
    ) -> Result<RevokeKeyResponse, ApiError> {
        let p = &auth.0;
        let target = format!("api_key/{}", key_id.0);
        state
            .authorize(p, &[Role::Admin], "api_key.revoke", &target)
            .await?;
        if !is_key_id(&key_id.0) {
            return Err(key_not_found(&key_id.0));
        }
        let found: Option<(Option<OffsetDateTime>,)> =
            sqlx::query_as("SELECT revoked_at FROM api_keys WHERE key_id = $1 AND tenant_id = $2")
                .bind(&key_id.0)
                .bind(&p.tenant)
                .fetch_optional(&state.db)
                .await?;
        let Some((revoked_at,)) = found else {
            return Err(key_not_found(&key_id.0));
        };
        if revoked_at.is_none() {
            let event = Event::ApiKeyRevoked(ApiKeyRevoked {
                key_id: key_id.0.clone(),
            });
            state
                .command(&p.tenant, None, &p.actor, vec![event])
                .await?;
        }
        state
            .audit(
                &p.tenant,
                &p.actor,
                "api_key.revoke",
                &target,
                Outcome::Ok,
                None,
            )
            .await?;
        Ok(RevokeKeyResponse::Revoked)
    }
}

/// The actor of the first admin key, minted at registration.
pub fn registration_actor() -> Actor {
    Actor::service("query-api")
}
