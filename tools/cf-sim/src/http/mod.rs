//! The HTTP front: routing, authentication, rate limits, faults and the request log.

mod admin;
mod body;
pub(crate) mod logpull;
mod query;
pub(crate) mod respond;
mod zones;

use std::sync::Arc;

use poem::http::Method;
use poem::{Endpoint, Request, Response};

use crate::auth::{Caller, authenticate};
use crate::fault::{EndpointKind, FaultKind};
use crate::lock;
use crate::ratelimit::Quota;
use crate::scenario::{Permission, ZoneSpec, is_hex32};
use crate::state::{RequestRecord, Shared};

pub(crate) use query::{get as query_get, parse_query};

const API_PREFIX: &str = "/client/v4";
const MAX_BODY: usize = 1 << 20;
/// "Exceeding it blocks all calls for 5 min" (reference §5), for the per-IP limit as for the per-token one.
const IP_BLOCK_SECS: i64 = 300;

pub(crate) struct SimApp {
    pub shared: Arc<Shared>,
}

/// Per-request bookkeeping that ends up in response headers and the request log.
pub(crate) struct Ctx {
    pub shared: Arc<Shared>,
    pub method: Method,
    pub path: String,
    pub params: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub zone: Option<String>,
    pub fault: Option<String>,
    pub quota: Option<Quota>,
}

impl Ctx {
    /// Authenticate, reject inactive tokens and count the request against the global per-credential limit.
    pub fn caller(&mut self, req: &Request) -> Result<Caller, Response> {
        let caller =
            authenticate(req.headers(), &self.shared).map_err(|f| respond::auth_failure(&f))?;
        if !caller.is_active() {
            return Err(respond::invalid_access_token());
        }
        self.admit_global(&caller)?;
        Ok(caller)
    }

    pub fn admit_global(&mut self, caller: &Caller) -> Result<(), Response> {
        let now = self.shared.now().unix_timestamp();
        let limit = self.shared.limits.global_per_5min;
        let admitted =
            lock(&self.shared.limiter).admit("global", &caller.principal(), limit, 300, now);
        match admitted {
            Ok(quota) => {
                self.quota = Some(quota);
                Ok(())
            }
            Err(retry) => {
                self.quota = Some(Quota {
                    limit,
                    remaining: 0,
                    reset_secs: retry,
                    window_secs: 300,
                });
                Err(respond::rate_limited(retry))
            }
        }
    }

    /// The zone, if the caller holds one of `permissions` on it.
    pub fn zone_for(
        &mut self,
        caller: &Caller,
        zone_id: &str,
        permissions: &[Permission],
    ) -> Result<ZoneSpec, Response> {
        self.zone = Some(zone_id.to_owned());
        let zone = self
            .shared
            .zone(zone_id)
            .ok_or_else(respond::authentication_error)?;
        if !caller.can_access_zone(&zone) || !caller.has_any(permissions) {
            return Err(respond::authentication_error());
        }
        Ok(zone)
    }

    /// Take a fault armed for this request, remembering its name for the request log.
    pub fn take_fault(&mut self, endpoint: EndpointKind) -> Option<FaultKind> {
        let kind = lock(&self.shared.faults).take(self.zone.as_deref(), endpoint)?;
        self.fault = Some(respond::fault_name(&kind));
        Some(kind)
    }

    /// Faults that replace the whole response short-circuit here; body-shaping ones are returned.
    pub fn apply_fault(&mut self, endpoint: EndpointKind) -> Result<Option<FaultKind>, Response> {
        match self.take_fault(endpoint) {
            Some(kind) => match respond::whole_response_fault(&kind) {
                Some(resp) => Err(resp),
                None => Ok(Some(kind)),
            },
            None => Ok(None),
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        query_get(&self.params, name)
    }
}

impl Endpoint for SimApp {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let path = req.uri().path().to_owned();
        let raw_query = req.uri().query().unwrap_or_default().to_owned();
        let body = if req.method() == Method::POST || req.method() == Method::PUT {
            let bytes = req.take_body().into_vec().await.unwrap_or_default();
            if bytes.len() > MAX_BODY {
                Vec::new()
            } else {
                bytes
            }
        } else {
            Vec::new()
        };
        let mut ctx = Ctx {
            shared: self.shared.clone(),
            method: req.method().clone(),
            path: path.clone(),
            params: parse_query(&raw_query),
            body,
            zone: None,
            fault: None,
            quota: None,
        };
        let is_api = path.starts_with(API_PREFIX);
        let mut resp = match admit_ip(&mut ctx, &req, is_api) {
            Ok(()) => route(&mut ctx, &req).await,
            Err(resp) => resp,
        };
        if is_api {
            add_rate_limit_headers(&ctx, &mut resp);
        }
        if !path.starts_with("/__sim/") {
            ctx.shared.record_request(RequestRecord {
                method: ctx.method.to_string(),
                path,
                query: raw_query,
                status: resp.status().as_u16(),
                time: ctx.shared.now(),
                zone: ctx.zone.clone(),
                fault: ctx.fault.clone(),
            });
        }
        Ok(resp)
    }
}

/// Cloudflare's per-IP limit, checked before authentication because it counts every API call from the address.
fn admit_ip(ctx: &mut Ctx, req: &Request, is_api: bool) -> Result<(), Response> {
    let per_sec = ctx.shared.limits.per_ip_per_sec;
    let Some(ip) = req.remote_addr().as_socket_addr().map(|a| a.ip()) else {
        return Ok(());
    };
    if !is_api || per_sec == 0 {
        return Ok(());
    }
    let sim_now = ctx.shared.now().unix_timestamp();
    let admitted = lock(&ctx.shared.ip_limiter).admit(
        ip,
        per_sec,
        IP_BLOCK_SECS,
        std::time::Instant::now(),
        sim_now,
    );
    admitted.map_err(|retry| {
        // Every call is refused until the block ends, so the remaining budget the headers report is zero.
        let limit = ctx.shared.limits.global_per_5min;
        ctx.quota = Some(Quota {
            limit,
            remaining: 0,
            reset_secs: retry,
            window_secs: 300,
        });
        respond::rate_limited(retry)
    })
}

/// `Ratelimit` / `Ratelimit-Policy` on every API response (the 2025-09 header set).
fn add_rate_limit_headers(ctx: &Ctx, resp: &mut Response) {
    let limit = ctx.shared.limits.global_per_5min;
    let quota = ctx.quota.unwrap_or(Quota {
        limit,
        remaining: limit,
        reset_secs: 300,
        window_secs: 300,
    });
    respond::set_header(
        resp,
        "ratelimit",
        &format!("\"default\";r={};t={}", quota.remaining, quota.reset_secs),
    );
    respond::set_header(
        resp,
        "ratelimit-policy",
        &format!("\"default\";q={};w={}", quota.limit, quota.window_secs),
    );
}

async fn route(ctx: &mut Ctx, req: &Request) -> Response {
    let path = ctx.path.clone();
    if let Some(rest) = path.strip_prefix("/__sim/") {
        return admin::handle(ctx, rest).await;
    }
    if let Some(session) = path.strip_prefix("/instant-logs/ws/sessions/") {
        return crate::instant_logs::websocket(ctx, req, session);
    }
    let Some(api_path) = path.strip_prefix(API_PREFIX) else {
        return respond::unknown_route();
    };
    let segments: Vec<&str> = api_path.trim_end_matches('/').split('/').skip(1).collect();
    let method = ctx.method.clone();
    let result = match (method.clone(), segments.as_slice()) {
        (_, ["zones", zone, ..]) if !is_hex32(zone) => Err(respond::no_route(&path)),
        (Method::GET, ["zones", zone]) => zones::zone_details(ctx, req, zone),
        (Method::GET, ["zones", zone, "logs", "received"]) => logpull::received(ctx, req, zone),
        (Method::GET, ["zones", zone, "logs", "received", "fields"]) => {
            logpull::fields(ctx, req, zone)
        }
        (Method::GET, ["zones", zone, "logs", "rayids", ray]) => {
            logpull::rayids(ctx, req, zone, ray)
        }
        (Method::GET | Method::POST, ["zones", zone, "logs", "control", "retention", "flag"]) => {
            zones::retention_flag(ctx, req, zone)
        }
        (
            Method::GET | Method::POST,
            ["zones", zone, "logpush", "edge"] | ["zones", zone, "logpush", "edge", "jobs"],
        ) => crate::instant_logs::jobs(ctx, req, zone),
        (Method::GET | Method::POST, ["zones", zone, "logpush", "jobs"]) => {
            crate::logpush::jobs(ctx, req, zone).await
        }
        (Method::GET | Method::PUT | Method::DELETE, ["zones", zone, "logpush", "jobs", job]) => {
            crate::logpush::job(ctx, req, zone, job).await
        }
        (Method::POST, ["zones", zone, "logpush", "ownership"]) => {
            crate::logpush::ownership(ctx, req, zone).await
        }
        (Method::GET, ["user", "tokens", "verify"]) => zones::verify_user_token(ctx, req),
        (Method::GET, ["accounts", account, "tokens", "verify"]) => {
            zones::verify_account_token(ctx, req, account)
        }
        (Method::GET, ["accounts", account, "logs", "control", "cmb", "config"]) => {
            zones::cmb_config(ctx, req, account)
        }
        (Method::POST, ["graphql"]) => Ok(crate::graphql::handle(ctx, req)),
        (
            _,
            ["zones", _]
            | ["zones", _, "logs", ..]
            | ["zones", _, "logpush", ..]
            | ["graphql"]
            | ["user", "tokens", "verify"],
        )
        | (
            _,
            ["accounts", _, "tokens", "verify"]
            | ["accounts", _, "logs", "control", "cmb", "config"],
        ) => Err(respond::method_not_allowed()),
        _ => Err(respond::unknown_route()),
    };
    result.unwrap_or_else(|resp| resp)
}
