//! Every authenticated route × every role, and the rate limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Route {
    method: Method,
    path: String,
    body: Option<Value>,
    /// Roles that may call it; the others must get 403 `ACCESS_DENIED`.
    allowed: &'static [&'static str],
    /// The audit action an allowed, successful call records (the README's table).
    action: &'static str,
}

const ALL: &[&str] = &["admin", "operator", "auditor"];
const WRITERS: &[&str] = &["admin", "operator"];
const ADMIN: &[&str] = &["admin"];
const READERS_OF_AUDIT: &[&str] = &["admin", "auditor"];

#[tokio::test]
async fn every_route_for_every_role() {
    let stack = Stack::start().await;
    let (tenant, admin) = stack.register("matrix@acme.example").await;
    stack.add_zone(&admin, ENTERPRISE_ZONE).await;
    let log = stack
        .seal_log(
            &tenant,
            ENTERPRISE_ZONE,
            &[WindowSpec::Archive(b"{\"a\":1}\n".to_vec())],
        )
        .await;
    let job = log.entries[0].id.to_hex();
    let keys = [
        ("admin", admin.clone()),
        ("operator", stack.key(&admin, "operator").await),
        ("auditor", stack.key(&admin, "auditor").await),
    ];
    let zone = format!("/api/v1/zones/{ENTERPRISE_ZONE}");
    let route = |method: Method, path: String, body: Option<Value>, allowed, action| Route {
        method,
        path,
        body,
        allowed,
        action,
    };
    let hold = stack
        .post(
            "/api/v1/legal-holds",
            &admin,
            json!({"reason": "to release"}),
        )
        .await;
    assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.json);
    let hold = hold.json["hold_id"].as_str().unwrap().to_owned();
    let now = time::OffsetDateTime::now_utc();
    let pull = json!({
        "start": (now - time::Duration::hours(2)).format(&time::format_description::well_known::Rfc3339).unwrap(),
        "end": (now - time::Duration::hours(1)).format(&time::format_description::well_known::Rfc3339).unwrap(),
    });
    // Non-destructive first; the destructive ones run last, admin last of all.
    let routes = vec![
        route(
            Method::GET,
            format!("/api/v1/customers/{tenant}"),
            None,
            ALL,
            "customer.read",
        ),
        route(
            Method::GET,
            "/api/v1/export".into(),
            None,
            ADMIN,
            "customer.export",
        ),
        route(
            Method::GET,
            "/api/v1/audit-log".into(),
            None,
            READERS_OF_AUDIT,
            "audit_log.read",
        ),
        route(
            Method::GET,
            "/api/v1/api-keys".into(),
            None,
            WRITERS,
            "api_key.list",
        ),
        route(
            Method::POST,
            "/api/v1/api-keys".into(),
            Some(json!({"name": "m", "role": "auditor"})),
            WRITERS,
            "api_key.create",
        ),
        route(Method::GET, "/api/v1/zones".into(), None, ALL, "zone.list"),
        route(
            Method::PATCH,
            zone.clone(),
            Some(json!({"paused": false})),
            WRITERS,
            "zone.change",
        ),
        route(
            Method::POST,
            format!("{zone}/pull"),
            Some(pull.clone()),
            WRITERS,
            "zone.pull",
        ),
        route(Method::GET, format!("{zone}/logs"), None, ALL, "zone.logs"),
        route(
            Method::GET,
            format!("{zone}/checkpoint"),
            None,
            ALL,
            "zone.checkpoint",
        ),
        route(
            Method::GET,
            "/api/v1/logs/jobs".into(),
            None,
            ALL,
            "job.list",
        ),
        route(
            Method::GET,
            format!("/api/v1/logs/jobs/{job}?proof=true"),
            None,
            ALL,
            "job.read",
        ),
        route(
            Method::GET,
            format!("/api/v1/logs/jobs/{job}/download"),
            None,
            ALL,
            "archive.download",
        ),
        route(
            Method::GET,
            "/api/v1/retention".into(),
            None,
            ALL,
            "retention.read",
        ),
        route(
            Method::PUT,
            "/api/v1/retention".into(),
            Some(json!({"days": 400})),
            ADMIN,
            "retention.set",
        ),
        route(
            Method::PUT,
            format!("{zone}/retention"),
            Some(json!({"days": 500})),
            ADMIN,
            "zone.retention",
        ),
        route(
            Method::GET,
            "/api/v1/legal-holds".into(),
            None,
            ADMIN,
            "legal_hold.list",
        ),
        route(
            Method::POST,
            "/api/v1/legal-holds".into(),
            Some(json!({"reason": "matrix"})),
            ADMIN,
            "legal_hold.set",
        ),
        route(
            Method::DELETE,
            format!("/api/v1/legal-holds/{hold}"),
            None,
            ADMIN,
            "legal_hold.release",
        ),
        route(
            Method::POST,
            "/api/v1/zones".into(),
            Some(json!({"zone_id": BUSINESS_ZONE, "cf_api_token": FULL_TOKEN})),
            WRITERS,
            "zone.add",
        ),
        route(
            Method::DELETE,
            format!("/api/v1/zones/{BUSINESS_ZONE}"),
            None,
            WRITERS,
            "zone.remove",
        ),
    ];
    let mut checked = 0;
    let mut served: std::collections::BTreeMap<&str, i64> = Default::default();
    for route in &routes {
        for (role, key) in keys.iter().rev() {
            let reply = stack
                .call(
                    route.method.clone(),
                    &route.path,
                    Some(key),
                    route.body.clone(),
                )
                .await;
            let what = format!("{role} {} {}", route.method, route.path);
            if route.allowed.contains(role) {
                // Allowed means the role check passed: success, or a state answer such as 409
                // (already added) or 404 (a writer before it removed the zone).
                assert!(
                    reply.status.is_success()
                        || [StatusCode::CONFLICT, StatusCode::NOT_FOUND].contains(&reply.status),
                    "{what}: {} {}",
                    reply.status,
                    reply.json
                );
                if reply.status.is_success() {
                    *served.entry(route.action).or_default() += 1;
                }
            } else {
                assert_eq!(
                    reply.status,
                    StatusCode::FORBIDDEN,
                    "{what}: {}",
                    reply.json
                );
                assert_eq!(reply.error_code(), "ACCESS_DENIED", "{what}");
            }
            checked += 1;
        }
    }

    // Every route is audited: each allowed call that was served left an `ok` record of its
    // action (reads included), each refused one a `denied` record.
    assert_eq!(
        served.len(),
        routes.len(),
        "every route served someone: {served:?}"
    );
    for route in &routes {
        let ok = stack
            .audit_outcomes(&tenant, route.action, "ok", served[route.action])
            .await;
        assert!(
            ok >= served[route.action],
            "{}: {ok} ok records of {} served",
            route.action,
            served[route.action]
        );
        let refused = (keys.len() - route.allowed.len()) as i64;
        let denied = stack
            .audit_outcomes(&tenant, route.action, "denied", refused)
            .await;
        assert!(
            denied >= refused,
            "{}: {denied} denied records of {refused}",
            route.action
        );
    }

    // Key revocation and erasure: admin only.
    let victim = stack.key(&admin, "auditor").await;
    let victim_path = format!("/api/v1/api-keys/{}", &victim[3..19]);
    for (role, key) in &keys[1..] {
        let reply = stack
            .call(Method::DELETE, &victim_path, Some(key), None)
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{role} revoke");
        let reply = stack
            .call(
                Method::DELETE,
                &format!("/api/v1/customers/{tenant}"),
                Some(key),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{role} erase");
        checked += 2;
    }
    let reply = stack
        .call(Method::DELETE, &victim_path, Some(&admin), None)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = stack
        .call(
            Method::DELETE,
            &format!("/api/v1/customers/{tenant}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(checked >= 49);

    // Nothing answers without credentials.
    for route in &routes {
        let reply = stack
            .call(route.method.clone(), &route.path, None, route.body.clone())
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{} {}",
            route.method,
            route.path
        );
    }
}

async fn hammer(
    stack: &Stack,
    path: &str,
    key: Option<&str>,
    spoof: bool,
    n: usize,
) -> Vec<reqwest::Response> {
    // All at once: sent one by one, a loaded machine could spread them past the refill.
    let requests = (0..n).map(|i| {
        let mut request = stack.http.get(stack.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if spoof {
            request = request.header("x-forwarded-for", format!("198.51.100.{}", i % 250));
        }
        async move { request.send().await.unwrap() }
    });
    futures::future::join_all(requests).await
}

#[tokio::test]
async fn the_per_ip_limit_holds_whatever_x_forwarded_for_says() {
    let stack = Stack::start_with(rainlogs_query_api::ApiOptions::default(), |_| {}).await;
    let replies = hammer(&stack, "/health", None, true, 160).await;
    let refused: Vec<_> = replies
        .into_iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(
        !refused.is_empty(),
        "a client rotating X-Forwarded-For must still hit the per-IP limit"
    );
    let first = refused.into_iter().next().unwrap();
    let headers = first.headers().clone();
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(headers["ratelimit-limit"], "120");
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert!(headers.contains_key("ratelimit-reset"));
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["error_code"], "RATE_LIMITED");
    assert_eq!(body["code"], 429);
}

#[tokio::test]
async fn the_per_tenant_limit_applies_after_authentication() {
    let options = rainlogs_query_api::ApiOptions {
        ip_rate: rainlogs_query_api::Rate {
            per_second: 10_000.0,
            burst: 10_000,
        },
        ..Default::default()
    };
    let stack = Stack::start_with(options, |_| {}).await;
    let (_, admin) = stack.register("busy@acme.example").await;
    let replies = hammer(&stack, "/api/v1/zones", Some(&admin), false, 90).await;
    let limited = replies
        .iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        limited > 0,
        "30/s with a burst of 60 cannot serve 90 at once"
    );
    let ok = replies
        .iter()
        .find(|r| r.status() == StatusCode::OK)
        .unwrap();
    assert_eq!(ok.headers()["ratelimit-limit"], "60");
    // Another tenant is not affected.
    let (_, other) = stack.register("calm@globex.example").await;
    assert_eq!(
        stack.get("/api/v1/zones", &other).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_trusted_proxy_forwards_the_client_address() {
    let stack = Stack::start_with(common::relaxed(), |config| {
        config.api.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let reply = stack
        .http
        .post(stack.url("/customers"))
        .header("x-forwarded-for", "203.0.113.77")
        .json(&json!({"name": "Proxy", "email": "p@acme.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::CREATED);
    let body: Value = reply.json().await.unwrap();
    let tenant = body["customer"]["id"].as_str().unwrap().to_owned();
    assert!(stack.audit_count(&tenant, "customer.create", 1).await >= 1);
    let (ip,): (Option<String>,) = sqlx::query_as(
        "SELECT client_ip FROM audit_log WHERE tenant_id = $1 AND action = 'customer.create'",
    )
    .bind(&tenant)
    .fetch_one(&stack.pool)
    .await
    .unwrap();
    assert_eq!(ip.as_deref(), Some("203.0.113.77"));
}
