//! `POST /api/v1/auth/login`: dashboard users trade email and password for a session token.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use rainlogs_schemas::Actor;

use crate::error::{ApiError, ErrorCode};
use crate::events::Outcome;
use crate::jwt::SESSION_SECS;
use crate::passwords;
use crate::state::SharedState;
use crate::views::{ApiTags, now};

pub struct LoginApi;

#[derive(Object)]
struct Credentials {
    #[oai(validator(
        min_length = 3,
        max_length = 254,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]+$"
    ))]
    email: String,
    #[oai(validator(min_length = 1, max_length = 1024))]
    password: String,
}

#[derive(Object)]
struct Session {
    /// Send as `Authorization: Bearer <access_token>`.
    access_token: String,
    /// Always `Bearer`.
    token_type: String,
    /// Seconds until the token expires.
    expires_in: i64,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Auth")]
impl LoginApi {
    /// Sign in as a dashboard user
    #[oai(path = "/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        state: Data<&SharedState>,
        body: Json<Credentials>,
    ) -> Result<Json<Session>, ApiError> {
        let keys = state.jwt.as_ref().ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unavailable,
                "dashboard sign-in is not configured (secrets.jwt_secret)",
            )
        })?;
        let user: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT u.user_id, u.tenant_id, u.role, u.password_hash FROM users u \
             JOIN tenants t USING (tenant_id) \
             WHERE lower(u.email) = lower($1) AND u.deleted_at IS NULL AND t.deleted_at IS NULL",
        )
        .bind(body.email.trim())
        .fetch_optional(&state.db)
        .await?;
        let stored = user.as_ref().map(|u| u.3.clone());
        let genuine = passwords::verify(body.0.password, stored).await?;
        let Some((user_id, tenant, role, _)) = user.filter(|_| genuine) else {
            return Err(ApiError::new(
                ErrorCode::InvalidCredentials,
                "email or password is wrong",
            ));
        };
        let access_token = keys
            .issue(&user_id, &tenant, &role, now().unix_timestamp())
            .map_err(ApiError::internal)?;
        state
            .audit(
                &tenant,
                &Actor::user(&user_id),
                "auth.login",
                &format!("user/{user_id}"),
                Outcome::Ok,
                None,
            )
            .await?;
        Ok(Json(Session {
            access_token,
            token_type: "Bearer".into(),
            expires_in: SESSION_SECS,
        }))
    }
}
