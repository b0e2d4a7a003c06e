//! Who is calling: `Authorization: Bearer rl_…` (API key) or `Bearer <JWT>` (dashboard user),
//! resolved to a tenant and a role, then rate limited per tenant. Roles are checked per
//! operation with [`Principal::require`].

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use rainlogs_schemas::Actor;
use rainlogs_schemas::events::Role;
use time::OffsetDateTime;

use crate::error::{ApiError, ErrorCode};
use crate::key_cache::CachedKey;
use crate::state::SharedState;
use crate::{api_keys, request};

/// An API key (`rl_…`) or a dashboard session token from `POST /api/v1/auth/login`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "authenticate")]
pub struct BearerAuth(pub Principal);

#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: String,
    pub role: Role,
    pub actor: Actor,
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Operator => "operator",
        Role::Auditor => "auditor",
    }
}

pub fn parse_role(text: &str) -> Option<Role> {
    match text {
        "admin" => Some(Role::Admin),
        "operator" => Some(Role::Operator),
        "auditor" => Some(Role::Auditor),
        _ => None,
    }
}

impl Principal {
    /// Refuses the operation unless the caller holds one of `allowed`.
    pub fn require(&self, allowed: &[Role]) -> Result<(), ApiError> {
        if allowed.contains(&self.role) {
            return Ok(());
        }
        Err(ApiError::with_status(
            poem::http::StatusCode::FORBIDDEN,
            ErrorCode::AccessDenied.as_str(),
            format!(
                "the {} role may not do this; it needs one of: {}",
                role_name(self.role),
                allowed
                    .iter()
                    .map(|r| role_name(*r))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }
}

fn unauthenticated(message: &str) -> poem::Error {
    ApiError::new(ErrorCode::Unauthenticated, message).into()
}

/// Dummy digest compared against when a key id is unknown, so that path costs the same hash and
/// compare as a known one.
const ABSENT_DIGEST: [u8; 32] = [0; 32];

async fn authenticate(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    let state = req
        .data::<SharedState>()
        .ok_or_else(|| poem::Error::from(ApiError::internal("state missing")))?;
    let token = bearer.token.trim();
    let principal = if token.starts_with("rl_") {
        api_key_principal(state, token).await?
    } else if token.split('.').count() == 3 {
        session_principal(state, token).await?
    } else {
        return Err(unauthenticated(
            "the bearer token is neither an API key (rl_…) nor a session token",
        ));
    };
    let decision = state.tenant_limiter.check(&principal.tenant);
    let allowed = decision.allowed;
    if let Some(context) = request::current() {
        context.record_rate(decision);
    }
    if !allowed {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            "too many requests for this tenant; slow down and retry after the Retry-After seconds",
        )
        .into());
    }
    Ok(principal)
}

type KeyRow = (
    String,
    String,
    Vec<u8>,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
    bool,
);

async fn api_key_principal(state: &SharedState, token: &str) -> poem::Result<Principal> {
    let Some(presented) = api_keys::parse(token) else {
        return Err(unauthenticated("malformed API key"));
    };
    if let Some(cached) = state.key_cache.get(presented.key_id)
        && state.digester.matches(&presented, &cached.digest)
    {
        if cached
            .expires_at
            .is_some_and(|at| at <= OffsetDateTime::now_utc())
        {
            state.key_cache.evict_key(presented.key_id);
            return Err(ApiError::new(ErrorCode::ApiKeyExpired, "this API key has expired").into());
        }
        return Ok(Principal {
            tenant: cached.tenant,
            role: cached.role,
            actor: Actor::api_key(presented.key_id),
        });
    }
    let stamp = state.key_cache.stamp();
    let row: Option<KeyRow> = sqlx::query_as(
        "SELECT k.tenant_id, k.role, k.digest, k.expires_at, k.revoked_at, t.deleted_at, \
         t.tenant_id IS NOT NULL FROM api_keys k LEFT JOIN tenants t USING (tenant_id) \
         WHERE k.key_id = $1",
    )
    .bind(presented.key_id)
    .fetch_optional(&state.db)
    .await
    .map_err(ApiError::from)?;
    let stored = row.as_ref().map_or(&ABSENT_DIGEST[..], |r| &r.2[..]);
    // The secret is checked before anything about the key is revealed (expired, revoked).
    let genuine = state.digester.matches(&presented, stored);
    let Some((tenant, role, digest, expires_at, revoked_at, tenant_deleted_at, tenant_known)) = row
    else {
        return Err(unauthenticated("unknown API key"));
    };
    if !genuine {
        return Err(unauthenticated("unknown API key"));
    }
    if revoked_at.is_some() || tenant_deleted_at.is_some() || !tenant_known {
        return Err(ApiError::new(ErrorCode::AccessDenied, "this API key has been revoked").into());
    }
    if expires_at.is_some_and(|at| at <= OffsetDateTime::now_utc()) {
        return Err(ApiError::new(ErrorCode::ApiKeyExpired, "this API key has expired").into());
    }
    let role = parse_role(&role).ok_or_else(|| ApiError::internal("stored role unknown"))?;
    state.key_cache.insert(
        stamp,
        presented.key_id,
        CachedKey::new(tenant.clone(), role, digest, expires_at),
    );
    Ok(Principal {
        tenant,
        role,
        actor: Actor::api_key(presented.key_id),
    })
}

async fn session_principal(state: &SharedState, token: &str) -> poem::Result<Principal> {
    let Some(keys) = &state.jwt else {
        return Err(unauthenticated(
            "session tokens are not enabled on this deployment",
        ));
    };
    let claims = keys.verify(token).map_err(|e| match e {
        crate::jwt::JwtError::Expired => {
            poem::Error::from(ApiError::new(ErrorCode::Unauthenticated, e.to_string()))
        }
        crate::jwt::JwtError::Invalid => unauthenticated("invalid session token"),
    })?;
    // The token is only as valid as its user and tenant right now (revocation, erasure).
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT u.tenant_id, u.role FROM users u JOIN tenants t USING (tenant_id) \
         WHERE u.user_id = $1 AND u.deleted_at IS NULL AND t.deleted_at IS NULL",
    )
    .bind(&claims.sub)
    .fetch_optional(&state.db)
    .await
    .map_err(ApiError::from)?;
    let Some((tenant, role)) = row else {
        return Err(ApiError::new(ErrorCode::AccessDenied, "this user no longer exists").into());
    };
    if tenant != claims.tenant {
        return Err(unauthenticated("invalid session token"));
    }
    // The stored role wins over the claim: a demotion takes effect before the token expires.
    let role = parse_role(&role).ok_or_else(|| ApiError::internal("stored role unknown"))?;
    Ok(Principal {
        tenant,
        role,
        actor: Actor::user(&claims.sub),
    })
}
