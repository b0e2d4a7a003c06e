//! Zone details, token verification, the retention flag and the CMB config.

use poem::http::StatusCode;
use poem::{Request, Response};
use serde_json::{Value, json};

use super::{Ctx, respond};
use crate::auth::Credential;
use crate::fault::EndpointKind;
use crate::lock;
use crate::rng::hash_str;
use crate::scenario::{Permission, Plan, TokenKind, TokenStatus, ZoneSpec};

type Handled = Result<Response, Response>;

pub(crate) fn zone_object(zone: &ZoneSpec) -> Value {
    let (plan_id, plan_name, price) = zone.plan.catalogue_entry();
    let created = "2024-03-11T09:12:44.214738Z";
    json!({
        "id": zone.id,
        "name": zone.name,
        "status": "active",
        "paused": false,
        "type": "full",
        "development_mode": 0,
        "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
        "original_name_servers": null,
        "original_registrar": null,
        "original_dnshost": null,
        "created_on": created,
        "modified_on": "2025-11-02T17:40:03.118276Z",
        "activated_on": "2024-03-11T09:20:12.504117Z",
        "owner": {"id": null, "type": "user", "email": null},
        "account": {"id": zone.account_id, "name": format!("Account {}", &zone.account_id[..6])},
        "meta": {"step": 2, "custom_certificate_quota": 0, "page_rule_quota": 3, "phishing_detected": false},
        "permissions": ["#zone:read", "#logs:read", "#analytics:read"],
        "plan": {
            "id": plan_id,
            "name": plan_name,
            "price": price,
            "currency": "USD",
            "frequency": if matches!(zone.plan, Plan::Pro | Plan::Business) { "monthly" } else { "" },
            "legacy_id": zone.plan.legacy_id(),
            "is_subscribed": true,
            "can_subscribe": zone.plan != Plan::Enterprise,
            "legacy_discount": false,
            "externally_managed": zone.plan == Plan::Enterprise,
        },
        "vanity_name_servers": [],
        "cname_suffix": "cdn.cloudflare.net",
        "verification_key": format!("{:016x}-{:016x}", hash_str(&zone.id), hash_str(&zone.name)),
        "tenant": {"id": null, "name": null},
        "tenant_unit": {"id": null},
    })
}

pub(crate) fn zone_details(ctx: &mut Ctx, req: &Request, zone_id: &str) -> Handled {
    let caller = ctx.caller(req)?;
    let zone = ctx.zone_for(&caller, zone_id, &[Permission::ZoneRead])?;
    ctx.apply_fault(EndpointKind::Zone)?;
    Ok(respond::ok(zone_object(&zone)))
}

fn token_result(value: &str, status: TokenStatus) -> Value {
    let status = match status {
        TokenStatus::Active => "active",
        TokenStatus::Disabled => "disabled",
        TokenStatus::Expired => "expired",
    };
    json!({"id": format!("{:016x}{:016x}", hash_str(value), hash_str(&format!("id:{value}"))), "status": status})
}

fn verified(value: &str, status: TokenStatus) -> Response {
    let message = match status {
        TokenStatus::Active => "This API Token is valid and active",
        TokenStatus::Disabled => "This API Token is disabled",
        TokenStatus::Expired => "This API Token has expired",
    };
    respond::json_response(
        StatusCode::OK,
        &json!({
            "result": token_result(value, status),
            "success": true,
            "errors": [],
            "messages": [{"code": 10000, "message": message, "type": null}],
        }),
    )
}

/// `GET /user/tokens/verify`: user tokens only; account tokens and unknown tokens get 1000.
pub(crate) fn verify_user_token(ctx: &mut Ctx, req: &Request) -> Handled {
    let caller = match crate::auth::authenticate(req.headers(), &ctx.shared) {
        Ok(caller) => caller,
        Err(crate::auth::AuthFailure::MalformedHeaders(chain)) => {
            return Err(respond::auth_failure(
                &crate::auth::AuthFailure::MalformedHeaders(chain),
            ));
        }
        Err(_) => return Err(respond::invalid_api_token()),
    };
    ctx.admit_global(&caller)?;
    ctx.apply_fault(EndpointKind::TokenVerify)?;
    match &caller.credential {
        Credential::Token(t) if t.kind == TokenKind::User => Ok(verified(&t.value, t.status)),
        _ => Err(respond::invalid_api_token()),
    }
}

/// `GET /accounts/{id}/tokens/verify`: account tokens of that account.
pub(crate) fn verify_account_token(ctx: &mut Ctx, req: &Request, account: &str) -> Handled {
    let caller = match crate::auth::authenticate(req.headers(), &ctx.shared) {
        Ok(caller) => caller,
        Err(crate::auth::AuthFailure::MalformedHeaders(chain)) => {
            return Err(respond::auth_failure(
                &crate::auth::AuthFailure::MalformedHeaders(chain),
            ));
        }
        Err(_) => return Err(respond::invalid_api_token()),
    };
    ctx.admit_global(&caller)?;
    ctx.apply_fault(EndpointKind::TokenVerify)?;
    match &caller.credential {
        Credential::Token(t)
            if t.kind == TokenKind::Account && t.account_id.as_deref() == Some(account) =>
        {
            Ok(verified(&t.value, t.status))
        }
        _ => Err(respond::invalid_api_token()),
    }
}

#[derive(serde::Deserialize)]
struct FlagBody {
    flag: bool,
}

/// `GET|POST /zones/{id}/logs/control/retention/flag`.
pub(crate) fn retention_flag(ctx: &mut Ctx, req: &Request, zone_id: &str) -> Handled {
    let caller = ctx.caller(req)?;
    let write = ctx.method == poem::http::Method::POST;
    let needed: &[Permission] = if write {
        &[Permission::LogsEdit]
    } else {
        &[Permission::LogsRead, Permission::AnalyticsRead]
    };
    let zone = ctx.zone_for(&caller, zone_id, needed)?;
    ctx.apply_fault(EndpointKind::Retention)?;
    if write {
        let body: FlagBody = serde_json::from_slice(&ctx.body).map_err(|_| {
            respond::error(
                StatusCode::BAD_REQUEST,
                6007,
                "Malformed JSON in request body",
            )
        })?;
        ctx.shared.set_retention(&zone.id, body.flag);
        return Ok(respond::ok(json!({"flag": body.flag})));
    }
    Ok(respond::ok(json!({"flag": zone.retention})))
}

/// `GET /accounts/{id}/logs/control/cmb/config`.
pub(crate) fn cmb_config(ctx: &mut Ctx, req: &Request, account: &str) -> Handled {
    let caller = ctx.caller(req)?;
    if !caller.has_any(&[Permission::LogsRead, Permission::AnalyticsRead])
        || !caller.can_access_account(account, &ctx.shared)
    {
        return Err(respond::authentication_error());
    }
    ctx.apply_fault(EndpointKind::CmbConfig)?;
    let region = lock(&ctx.shared.zones)
        .values()
        .find(|z| z.spec.account_id == account)
        .map(|z| z.spec.cmb_region.clone());
    match region {
        None => Err(respond::authentication_error()),
        Some(None) => Ok(respond::ok(Value::Null)),
        Some(Some(regions)) => Ok(respond::ok(
            json!({"regions": regions, "allow_out_of_region_access": false}),
        )),
    }
}
