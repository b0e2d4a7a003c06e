//! `POST /api/v1/auth/login`: dashboard users trade email and password for a session token.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use rainlogs_schemas::Actor;
use std::net::IpAddr;
use std::sync::Arc;

use crate::error::{ApiError, ErrorCode};
use crate::events::Outcome;
use crate::jwt::SESSION_SECS;
use crate::passwords;
use crate::rate_limit::Decision;
use crate::request;
use crate::state::SharedState;
use crate::text::Text;
use crate::views::{ApiTags, now};

pub struct LoginApi;

#[derive(Object)]
struct Credentials {
    #[oai(validator(
        min_length = 3,
        max_length = 254,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]+$"
    ))]
    email: Text,
    #[oai(validator(min_length = 1, max_length = 1024))]
    password: Text,
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
        let context = request::current();
        let address = context
            .as_ref()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.client_ip);
        if let Err(wait) = state.login_throttle.check(&body.email, address) {
            let wait_secs = wait.as_secs().max(1);
            if let Some(context) = &context {
                context.record_rate(Decision {
                    allowed: false,
                    limit: 0,
                    remaining: 0,
                    reset_secs: wait_secs,
                    retry_after_secs: wait_secs,
                });
            }
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                "too many failed sign-ins for this account or from this address; retry after \
                 the Retry-After seconds",
            ));
        }
        let user: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT u.user_id, u.tenant_id, u.role, u.password_hash FROM users u \
             JOIN tenants t USING (tenant_id) \
             WHERE lower(u.email) = lower($1) AND u.deleted_at IS NULL AND t.deleted_at IS NULL",
        )
        .bind(body.email.trim())
        .fetch_optional(&state.db)
        .await?;
        let stored = user.as_ref().map(|u| u.3.clone());
        let genuine = passwords::verify(body.password.to_string(), stored).await?;
        if !genuine {
            state.login_throttle.failed(&body.email, address);
            if let (Some((user_id, tenant, _, _)), Some(context)) = (user, context) {
                // Off the answer's path: a known address must not answer slower than an
                // unknown one.
                let state = Arc::clone(&state);
                tokio::spawn(request::scope(context, async move {
                    if let Err(e) = state
                        .audit(
                            &tenant,
                            &Actor::user(&user_id),
                            "auth.login",
                            &format!("user/{user_id}"),
                            Outcome::Failed,
                            Some("wrong password".into()),
                        )
                        .await
                    {
                        tracing::warn!(error = ?e.body().message, "could not audit a failed sign-in");
                    }
                }));
            }
            return Err(ApiError::new(
                ErrorCode::InvalidCredentials,
                "email or password is wrong",
            ));
        }
        state.login_throttle.succeeded(&body.email);
        let Some((user_id, tenant, role, _)) = user else {
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
