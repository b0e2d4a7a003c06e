//! The REST API as a client sees it, against real NATS, PostgreSQL, a store and cf-sim.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test]
async fn onboarding_returns_a_key_that_works_at_once() {
    let stack = Stack::start().await;
    let reply = stack
        .call(
            Method::POST,
            "/customers",
            None,
            Some(json!({"name": "Acme GmbH", "email": "sec@acme.example", "retention_days": 400})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
    let id = reply.json["customer"]["id"].as_str().unwrap();
    let key = reply.json["api_key"]["key"].as_str().unwrap();
    assert_eq!(reply.json["api_key"]["role"], "admin");
    assert!(key.starts_with("rl_"));

    let profile = stack.get(&format!("/api/v1/customers/{id}"), key).await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.json);
    assert_eq!(profile.json["email"], "sec@acme.example");
    assert_eq!(profile.json["retention_days"], 400);
    assert_eq!(profile.json["quotas"]["max_zones"], 50);
    assert_eq!(profile.json["usage"]["zones"], 0);

    // The secret is never stored: the key id is, the key is not.
    let (stored,): (String,) = sqlx::query_as("SELECT to_jsonb(k)::text FROM api_keys k")
        .fetch_one(&stack.pool)
        .await
        .unwrap();
    assert!(
        !stored.contains(&key[20..]),
        "the secret must not be stored"
    );

    let again = stack
        .call(
            Method::POST,
            "/customers",
            None,
            Some(json!({"name": "Other", "email": "SEC@acme.example"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.error_code(), "CUSTOMER_EMAIL_EXISTS");

    for (body, why) in [
        (json!({"name": "X", "email": "not-an-address"}), "bad email"),
        (json!({"name": "X"}), "missing email"),
        (
            json!({"name": "X", "email": "a@b.example", "retention_days": 0}),
            "retention 0",
        ),
        (
            json!({"name": "X", "email": "a@b.example", "password": "short"}),
            "short password",
        ),
    ] {
        let reply = stack
            .call(Method::POST, "/customers", None, Some(body))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{why}: {}",
            reply.json
        );
        assert_eq!(reply.error_code(), "INVALID_REQUEST", "{why}");
    }
}

#[tokio::test]
async fn every_error_has_the_same_shape_and_headers() {
    let stack = Stack::start().await;
    let (_, key) = stack.register("shape@acme.example").await;

    let not_found = stack.get("/api/v1/nothing-here", &key).await;
    assert_eq!(not_found.status, StatusCode::NOT_FOUND);
    assert_eq!(not_found.error_code(), "NOT_FOUND");

    let unauthenticated = stack.call(Method::GET, "/api/v1/zones", None, None).await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unauthenticated.error_code(), "UNAUTHENTICATED");

    let garbage = stack.get("/api/v1/zones", "rl_nonsense").await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    assert_eq!(garbage.error_code(), "UNAUTHENTICATED");

    let method = stack.call(Method::PUT, "/customers", None, None).await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(method.error_code(), "METHOD_NOT_ALLOWED");
    assert_eq!(method.headers["allow"], "POST");

    let media = stack
        .http
        .post(stack.url("/customers"))
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    let status = media.status();
    let body: Value = media.json().await.unwrap();
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(body["error_code"], "UNSUPPORTED_MEDIA_TYPE");

    let broken = stack
        .http
        .post(stack.url("/customers"))
        .header("content-type", "application/json")
        .body("{\"name\":")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    let body: Value = broken.json().await.unwrap();
    assert_eq!(body["error_code"], "INVALID_REQUEST");

    let huge = stack
        .call(
            Method::POST,
            "/customers",
            None,
            Some(json!({"name": "x".repeat(100_000), "email": "a@b.example"})),
        )
        .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(huge.error_code(), "PAYLOAD_TOO_LARGE");

    let bad_query = stack.get("/api/v1/logs/jobs?limit=abc", &key).await;
    assert_eq!(bad_query.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_query.error_code(), "INVALID_REQUEST");
    let bad_limit = stack.get("/api/v1/logs/jobs?limit=0", &key).await;
    assert_eq!(bad_limit.error_code(), "INVALID_REQUEST");

    for reply in [&not_found, &unauthenticated, &method] {
        for header in [
            "x-content-type-options",
            "x-frame-options",
            "content-security-policy",
            "referrer-policy",
            "x-request-id",
        ] {
            assert!(reply.headers.contains_key(header), "{header} missing");
        }
        assert!(
            !reply.headers.contains_key("access-control-allow-origin"),
            "CORS is closed"
        );
    }
    let ids: std::collections::HashSet<_> = [&not_found, &unauthenticated, &method]
        .iter()
        .map(|r| r.json["request_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3, "request ids are unique");
}

#[tokio::test]
async fn another_tenants_ids_answer_404_and_change_nothing() {
    let stack = Stack::start().await;
    let (acme, acme_key) = stack.register("a@acme.example").await;
    let (_globex, globex_key) = stack.register("b@globex.example").await;
    assert_eq!(
        stack.add_zone(&acme_key, ENTERPRISE_ZONE).await.status,
        StatusCode::CREATED
    );
    let log = stack
        .seal_log(
            &acme,
            ENTERPRISE_ZONE,
            &[WindowSpec::Archive(b"{\"RayID\":\"1\"}\n".to_vec())],
        )
        .await;
    let job = log.entries[0].id.to_hex();
    let acme_key_id = &acme_key[3..19];

    let zone = format!("/api/v1/zones/{ENTERPRISE_ZONE}");
    let cases: Vec<(Method, String, Option<Value>, &str)> = vec![
        (
            Method::GET,
            format!("/api/v1/customers/{acme}"),
            None,
            "CUSTOMER_NOT_FOUND",
        ),
        (
            Method::DELETE,
            format!("/api/v1/customers/{acme}"),
            None,
            "CUSTOMER_NOT_FOUND",
        ),
        (
            Method::PATCH,
            zone.clone(),
            Some(json!({"paused": true})),
            "ZONE_NOT_FOUND",
        ),
        (Method::DELETE, zone.clone(), None, "ZONE_NOT_FOUND"),
        (
            Method::POST,
            format!("{zone}/pull"),
            Some(recent_window(1)),
            "ZONE_NOT_FOUND",
        ),
        (Method::GET, format!("{zone}/logs"), None, "ZONE_NOT_FOUND"),
        (
            Method::GET,
            format!("{zone}/checkpoint"),
            None,
            "ZONE_NOT_FOUND",
        ),
        (
            Method::GET,
            format!("/api/v1/logs/jobs/{job}"),
            None,
            "JOB_NOT_FOUND",
        ),
        (
            Method::GET,
            format!("/api/v1/logs/jobs/{job}/download"),
            None,
            "JOB_NOT_FOUND",
        ),
        (
            Method::DELETE,
            format!("/api/v1/api-keys/{acme_key_id}"),
            None,
            "API_KEY_NOT_FOUND",
        ),
    ];
    for (method, path, body, code) in cases {
        let reply = stack
            .call(method.clone(), &path, Some(&globex_key), body)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            reply.json
        );
        assert_eq!(reply.error_code(), code, "{method} {path}");
    }
    let listed = stack.get("/api/v1/logs/jobs", &globex_key).await;
    assert_eq!(listed.json["jobs"].as_array().unwrap().len(), 0);
    let zones = stack.get("/api/v1/zones", &globex_key).await;
    assert_eq!(zones.json["zones"].as_array().unwrap().len(), 0);
    let filtered = stack
        .get(
            &format!("/api/v1/logs/jobs?zone_id={ENTERPRISE_ZONE}"),
            &globex_key,
        )
        .await;
    assert_eq!(filtered.json["jobs"].as_array().unwrap().len(), 0);

    // Acme still has everything, unpaused, and its key works.
    let zones = stack.get("/api/v1/zones", &acme_key).await;
    assert_eq!(zones.status, StatusCode::OK);
    assert_eq!(zones.json["zones"][0]["paused"], false);
    assert_eq!(
        stack
            .get(&format!("/api/v1/logs/jobs/{job}"), &acme_key)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_forbidden_request_gets_403_and_leaves_no_change() {
    let stack = Stack::start().await;
    let (tenant, admin) = stack.register("roles@acme.example").await;
    let auditor = stack.key(&admin, "auditor").await;
    let operator = stack.key(&admin, "operator").await;

    let add = stack.add_zone(&auditor, ENTERPRISE_ZONE).await;
    assert_eq!(add.status, StatusCode::FORBIDDEN, "{}", add.json);
    assert_eq!(add.error_code(), "ACCESS_DENIED");
    let zones = stack.get("/api/v1/zones", &admin).await;
    assert!(
        zones.json["zones"].as_array().unwrap().is_empty(),
        "no zone was added"
    );

    let revoke = stack
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", &auditor[3..19]),
            Some(&operator),
            None,
        )
        .await;
    assert_eq!(revoke.status, StatusCode::FORBIDDEN);
    assert_eq!(
        stack.get("/api/v1/zones", &auditor).await.status,
        StatusCode::OK,
        "the auditor key still works"
    );

    let erase = stack
        .call(
            Method::DELETE,
            &format!("/api/v1/customers/{tenant}"),
            Some(&operator),
            None,
        )
        .await;
    assert_eq!(erase.status, StatusCode::FORBIDDEN);
    assert_eq!(
        stack
            .get(&format!("/api/v1/customers/{tenant}"), &admin)
            .await
            .status,
        StatusCode::OK
    );

    // An operator cannot mint an admin key.
    let escalate = stack
        .post(
            "/api/v1/api-keys",
            &operator,
            json!({"name": "x", "role": "admin"}),
        )
        .await;
    assert_eq!(escalate.status, StatusCode::FORBIDDEN);
    assert_eq!(escalate.error_code(), "ACCESS_DENIED");
    let keys = stack.get("/api/v1/api-keys", &admin).await;
    assert_eq!(keys.json["api_keys"].as_array().unwrap().len(), 3);

    // The refusals are on record, as refusals.
    assert!(stack.audit_count(&tenant, "zone.add", 1).await >= 1);
    let log = stack.get("/api/v1/audit-log?action=zone.add", &admin).await;
    let record = &log.json["records"][0];
    assert_eq!(record["outcome"], "denied");
    assert_eq!(record["actor"], format!("key:{}", &auditor[3..19]));
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    // Time is moved in the database behind the API's back, so its key cache must be off.
    let options = rainlogs_query_api::ApiOptions {
        key_cache_ttl: std::time::Duration::ZERO,
        ..relaxed()
    };
    let stack = Stack::start_with(options, |_| {}).await;
    let (_, admin) = stack.register("expiry@acme.example").await;
    let reply = stack
        .post(
            "/api/v1/api-keys",
            &admin,
            json!({"name": "temp", "role": "auditor", "expires_in_days": 1}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert!(reply.json["expires_at"].is_string());
    let temp = reply.json["key"].as_str().unwrap().to_owned();
    let temp_id = reply.json["key_id"].as_str().unwrap().to_owned();
    assert_eq!(
        stack.get("/api/v1/zones", &temp).await.status,
        StatusCode::OK
    );

    // A day passes.
    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE key_id = $1")
        .bind(&temp_id)
        .execute(&stack.pool)
        .await
        .unwrap();
    let expired = stack.get("/api/v1/zones", &temp).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.error_code(), "API_KEY_EXPIRED");
}

#[tokio::test]
async fn revoked_and_forged_credentials_are_refused() {
    let stack = Stack::start().await;
    let (tenant, admin) = stack.register("keys@acme.example").await;
    let operator = stack.key(&admin, "operator").await;
    // Used once, so the key is in this process' key cache when it is revoked.
    assert_eq!(
        stack.get("/api/v1/zones", &operator).await.status,
        StatusCode::OK
    );
    let operator_id = &operator[3..19];
    let revoked = stack
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{operator_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let refused = stack.get("/api/v1/zones", &operator).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.error_code(), "ACCESS_DENIED");

    // Right key id, wrong secret: the same answer as an unknown key.
    let forged = format!("{}{}", &admin[..20], "0".repeat(64));
    let reply = stack.get("/api/v1/zones", &forged).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error_code(), "UNAUTHENTICATED");

    let listed = stack.get("/api/v1/api-keys", &admin).await;
    let keys = listed.json["api_keys"].as_array().unwrap();
    assert!(
        keys.iter()
            .all(|k| k.get("digest").is_none() && k.get("key").is_none())
    );
    assert!(
        keys.iter()
            .any(|k| k["key_id"] == operator_id && k["revoked_at"].is_string())
    );
    assert!(stack.audit_count(&tenant, "api_key.revoke", 1).await >= 1);
}

#[tokio::test]
async fn a_key_revoked_by_another_api_process_is_refused_at_once() {
    let stack = Stack::start().await;
    let (tenant, admin) = stack.register("fleet@acme.example").await;
    let auditor = stack.key(&admin, "auditor").await;
    assert_eq!(
        stack.get("/api/v1/zones", &auditor).await.status,
        StatusCode::OK,
        "the key is now cached"
    );
    // Another API process revokes it: the event is all this process sees.
    let envelope = rainlogs_schemas::Envelope::new(
        &tenant,
        None,
        rainlogs_schemas::Actor::api_key(&admin[3..19]),
        rainlogs_schemas::Event::ApiKeyRevoked(rainlogs_schemas::events::ApiKeyRevoked {
            key_id: auditor[3..19].to_owned(),
        }),
    );
    stack
        .bus
        .publish(&rainlogs_schemas::subjects::control(&tenant), &envelope)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let reply = stack.get("/api/v1/zones", &auditor).await;
        if reply.status == StatusCode::UNAUTHORIZED {
            assert_eq!(reply.error_code(), "ACCESS_DENIED");
            break;
        }
        assert_eq!(reply.status, StatusCode::OK);
        // Well under the cache's 10 s time to live: the event evicted the key.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "a revoked key kept working"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sessions_from_login_work_and_end_with_the_user() {
    let stack = Stack::start().await;
    let (tenant, admin) = stack.register("dash@acme.example").await;
    let login = stack
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "dash@acme.example", "password": "correct horse battery staple"})),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.json);
    let token = login.json["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        stack
            .get(&format!("/api/v1/customers/{tenant}"), &token)
            .await
            .status,
        StatusCode::OK
    );

    let wrong = stack
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "dash@acme.example", "password": "wrong horse battery staple"})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.error_code(), "INVALID_CREDENTIALS");
    let unknown = stack
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "nobody@acme.example", "password": "whatever whatever"})),
        )
        .await;
    assert_eq!(unknown.error_code(), "INVALID_CREDENTIALS");

    let claims = |aud: &str, exp: i64| {
        json!({"iss": "rainlogs", "aud": aud, "sub": "u1", "tenant": tenant, "role": "admin",
               "iat": 0, "exp": exp})
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let sign = |secret: &[u8], claims: &Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    for (token, why) in [
        (
            sign(
                b"not the deployment's secret",
                &claims("rainlogs-dashboard", now + 600),
            ),
            "forged",
        ),
        (
            sign(JWT_SECRET.as_bytes(), &claims("someone-else", now + 600)),
            "wrong audience",
        ),
        (
            sign(
                JWT_SECRET.as_bytes(),
                &claims("rainlogs-dashboard", now - 600),
            ),
            "expired",
        ),
    ] {
        let reply = stack
            .get(&format!("/api/v1/customers/{tenant}"), &token)
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{why}");
        assert_eq!(reply.error_code(), "UNAUTHENTICATED", "{why}");
    }

    let erase = stack
        .call(
            Method::DELETE,
            &format!("/api/v1/customers/{tenant}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(erase.status, StatusCode::OK, "{}", erase.json);
    let after = stack
        .get(&format!("/api/v1/customers/{tenant}"), &token)
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.error_code(), "ACCESS_DENIED");
}

#[tokio::test]
async fn adding_a_zone_checks_cloudflare_and_seals_the_token() {
    let stack = Stack::start().await;
    let (tenant, admin) = stack.register("zones@acme.example").await;

    let added = stack.add_zone(&admin, ENTERPRISE_ZONE).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.json);
    assert_eq!(added.json["plan"], "enterprise");
    assert_eq!(added.json["method"], "logpull");
    assert_eq!(added.json["name"], "enterprise.example.eu");
    assert_eq!(added.json["health"]["status"], "pending");
    assert!(
        added.json["health"]["reason"]
            .as_str()
            .unwrap()
            .contains("never pulled")
    );

    let (sealed, key_id): (Vec<u8>, String) =
        sqlx::query_as("SELECT sealed_token, token_key_id FROM zones WHERE zone_id = $1")
            .bind(ENTERPRISE_ZONE)
            .fetch_one(&stack.pool)
            .await
            .unwrap();
    assert!(
        !sealed
            .windows(FULL_TOKEN.len())
            .any(|w| w == FULL_TOKEN.as_bytes())
    );
    let ring = rainlogs_tokens::TokenKey::from_hex(&"22".repeat(32)).unwrap();
    assert_eq!(key_id, ring.id());
    assert_eq!(
        ring.open(&tenant, ENTERPRISE_ZONE, &sealed)
            .unwrap()
            .as_str(),
        FULL_TOKEN,
        "the collector can open what the API sealed"
    );

    let again = stack.add_zone(&admin, ENTERPRISE_ZONE).await;
    assert_eq!(again.error_code(), "ZONE_EXISTS");
    let (_, other) = stack.register("other@globex.example").await;
    assert_eq!(
        stack.add_zone(&other, ENTERPRISE_ZONE).await.error_code(),
        "ZONE_EXISTS",
        "a zone is collected for one tenant only"
    );

    let wrong_method = stack
        .post(
            "/api/v1/zones",
            &admin,
            json!({"zone_id": PRO_ZONE, "cf_api_token": FULL_TOKEN, "method": "logpull"}),
        )
        .await;
    assert_eq!(wrong_method.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong_method.json["message"]
            .as_str()
            .unwrap()
            .contains("pro plan")
    );

    let disabled = stack
        .post(
            "/api/v1/zones",
            &admin,
            json!({"zone_id": BUSINESS_ZONE, "cf_api_token": DISABLED_TOKEN}),
        )
        .await;
    assert_eq!(
        disabled.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        disabled.json
    );
    assert_eq!(disabled.error_code(), "CLOUDFLARE_REJECTED");
    let bad_token = stack
        .post(
            "/api/v1/zones",
            &admin,
            json!({"zone_id": BUSINESS_ZONE, "cf_api_token": "cfut_nobody_knows_this"}),
        )
        .await;
    assert_eq!(bad_token.error_code(), "CLOUDFLARE_REJECTED");
    let bad_id = stack
        .post(
            "/api/v1/zones",
            &admin,
            json!({"zone_id": "XYZ", "cf_api_token": FULL_TOKEN}),
        )
        .await;
    assert_eq!(bad_id.error_code(), "INVALID_REQUEST");

    let business = stack.add_zone(&admin, BUSINESS_ZONE).await;
    assert_eq!(business.json["method"], "instant_logs");

    let paused = stack
        .call(
            Method::PATCH,
            &format!("/api/v1/zones/{ENTERPRISE_ZONE}"),
            Some(&admin),
            Some(json!({"paused": true})),
        )
        .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.json);
    assert_eq!(paused.json["paused"], true);
    assert_eq!(paused.json["health"]["status"], "paused");

    let pull_request = recent_window(5);
    let pull_path = format!("/api/v1/zones/{ENTERPRISE_ZONE}/pull");
    // A paused zone would collect nothing: the pull is refused, not silently accepted.
    let refused = stack.post(&pull_path, &admin, pull_request.clone()).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.json);
    assert_eq!(refused.error_code(), "ZONE_PAUSED");
    let resumed = stack
        .call(
            Method::PATCH,
            &format!("/api/v1/zones/{ENTERPRISE_ZONE}"),
            Some(&admin),
            Some(json!({"paused": false})),
        )
        .await;
    assert_eq!(resumed.json["paused"], false, "{}", resumed.json);
    let pull = stack.post(&pull_path, &admin, pull_request).await;
    assert_eq!(pull.status, StatusCode::ACCEPTED, "{}", pull.json);
    let (pulls,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = 'zone.pull'",
    )
    .bind(&tenant)
    .fetch_one(&stack.pool)
    .await
    .unwrap();
    assert!(pulls <= 1);
    let backwards = stack
        .post(
            &format!("/api/v1/zones/{ENTERPRISE_ZONE}/pull"),
            &admin,
            json!({"start": recent_window(5)["end"], "end": recent_window(5)["start"]}),
        )
        .await;
    assert_eq!(backwards.error_code(), "INVALID_WINDOW");

    let removed = stack
        .call(
            Method::DELETE,
            &format!("/api/v1/zones/{ENTERPRISE_ZONE}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let zones = stack.get("/api/v1/zones", &admin).await;
    let ids: Vec<&str> = zones.json["zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["zone_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![BUSINESS_ZONE]);
    assert_eq!(
        stack.add_zone(&other, ENTERPRISE_ZONE).await.error_code(),
        "ZONE_EXISTS",
        "a removed zone's history stays with its tenant"
    );
    let readded = stack.add_zone(&admin, ENTERPRISE_ZONE).await;
    assert_eq!(readded.status, StatusCode::CREATED, "{}", readded.json);
}

#[tokio::test]
async fn jobs_download_and_prove_against_the_signed_checkpoint() {
    let stack = Stack::start().await;
    let (tenant, admin) = stack.register("jobs@acme.example").await;
    let auditor = stack.key(&admin, "auditor").await;
    stack.add_zone(&admin, ENTERPRISE_ZONE).await;
    let first = b"{\"ClientIP\":\"192.0.2.1\",\"RayID\":\"a\"}\n".repeat(3000);
    let second = b"{\"ClientIP\":\"192.0.2.2\",\"RayID\":\"b\"}\n".to_vec();
    let log = stack
        .seal_log(
            &tenant,
            ENTERPRISE_ZONE,
            &[
                WindowSpec::Archive(first.clone()),
                WindowSpec::Empty,
                WindowSpec::Gap,
                WindowSpec::Archive(second.clone()),
            ],
        )
        .await;

    let page = stack.get("/api/v1/logs/jobs?limit=3", &auditor).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.json);
    let jobs = page.json["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3);
    let cursor = page.json["next_cursor"].as_str().unwrap();
    let rest = stack
        .get(
            &format!("/api/v1/logs/jobs?limit=3&cursor={cursor}"),
            &auditor,
        )
        .await;
    assert_eq!(rest.json["jobs"].as_array().unwrap().len(), 1);
    assert!(rest.json["next_cursor"].is_null());
    let gaps = stack
        .get(
            &format!("/api/v1/zones/{ENTERPRISE_ZONE}/logs?kind=gap"),
            &auditor,
        )
        .await;
    assert_eq!(gaps.json["jobs"][0]["gap_reason"], "source_error");

    let archive = &log.entries[0];
    let job_id = archive.id.to_hex();
    let detail = stack
        .get(&format!("/api/v1/logs/jobs/{job_id}?proof=true"), &auditor)
        .await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.json);
    let job = &detail.json["job"];
    assert_eq!(job["kind"], "archive");
    assert_eq!(job["record_count"], 3000);
    assert_eq!(job["leaf_index"], 0);
    assert_eq!(job["chain_hash"], archive.chain_hash.to_hex());
    assert_eq!(job["content_sha256"], sha256_hex(&first));

    // What a client does with the proof, trusting only the pinned public key.
    use base64::Engine as _;
    let entry = base64::engine::general_purpose::STANDARD
        .decode(job["entry"].as_str().unwrap())
        .unwrap();
    let proof = &detail.json["proof"];
    let note = proof["checkpoint"]["note"].as_str().unwrap();
    assert_eq!(note, log.note);
    let pinned = rainlogs_integrity::NoteVerifierKey::parse(TEST_VERIFIER_KEY).unwrap();
    let origin =
        rainlogs_integrity::Origin::parse(&format!("rainlogs/{tenant}/{ENTERPRISE_ZONE}")).unwrap();
    let checkpoint = rainlogs_integrity::open_checkpoint(note.as_bytes(), &origin, &[pinned])
        .unwrap()
        .checkpoint;
    assert_eq!(checkpoint.size, 4);
    let path: Vec<rainlogs_integrity::Sha256Hash> = proof["audit_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| rainlogs_integrity::Sha256Hash::from_hex(h.as_str().unwrap()).unwrap())
        .collect();
    rainlogs_integrity::verify_inclusion(
        &rainlogs_integrity::leaf_hash(&entry),
        0,
        checkpoint.size,
        &checkpoint.root,
        &path,
    )
    .expect("the proof verifies");

    let download = stack
        .get(&format!("/api/v1/logs/jobs/{job_id}/download"), &auditor)
        .await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.bytes, first);
    assert_eq!(
        download.headers["x-content-sha256"].to_str().unwrap(),
        sha256_hex(&download.bytes),
        "the header matches the body it came with"
    );
    assert_eq!(
        download.headers["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    let raw = stack
        .get(
            &format!("/api/v1/logs/jobs/{job_id}/download?format=zst"),
            &auditor,
        )
        .await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.bytes, log.contents[0].1);
    assert_eq!(
        raw.headers["x-object-sha256"].to_str().unwrap(),
        sha256_hex(&raw.bytes)
    );
    assert_eq!(job["stored_sha256"], sha256_hex(&raw.bytes));

    let empty_job = log.entries[1].id.to_hex();
    let no_archive = stack
        .get(&format!("/api/v1/logs/jobs/{empty_job}/download"), &auditor)
        .await;
    assert_eq!(no_archive.error_code(), "JOB_HAS_NO_ARCHIVE");

    let checkpoint_reply = stack
        .get(
            &format!("/api/v1/zones/{ENTERPRISE_ZONE}/checkpoint"),
            &auditor,
        )
        .await;
    assert_eq!(checkpoint_reply.json["tree_size"], 4);
    assert_eq!(checkpoint_reply.json["note"], log.note);
    let key = stack
        .call(Method::GET, "/api/v1/integrity/verifier-key", None, None)
        .await;
    assert_eq!(key.json["verifier_key"], TEST_VERIFIER_KEY);

    let zones = stack.get("/api/v1/zones", &auditor).await;
    let health = &zones.json["zones"][0]["health"];
    assert!(health["last_window_end"].is_string(), "{health}");

    // Someone with bucket access changes a byte: the download is cut off, never completed.
    let object_key = job["object_key"].as_str().unwrap();
    let file = stack_store_path(&stack, object_key);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, &bytes).unwrap();
    let tampered = stack
        .http
        .get(stack.url(&format!("/api/v1/logs/jobs/{job_id}/download?format=zst")))
        .bearer_auth(&auditor)
        .send()
        .await;
    // A small archive is checked whole before the status line: with no intact copy (the local
    // store keeps one), the answer is an error, never a 200 (tests/download_copies.rs has the
    // fallback copies and the cut-off of large archives).
    let tampered = tampered.expect("an answer");
    assert_eq!(tampered.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = tampered.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("no intact copy"),
        "{body}"
    );
    assert!(stack.audit_count(&tenant, "archive.download", 3).await >= 3);
}

fn stack_store_path(stack: &Stack, key: &str) -> std::path::PathBuf {
    stack.store_root().join(key)
}

#[tokio::test]
async fn the_audit_log_shows_who_did_what_from_where() {
    let stack = Stack::start().await;
    let (tenant, admin) = stack.register("audit@acme.example").await;
    let auditor = stack.key(&admin, "auditor").await;
    let operator = stack.key(&admin, "operator").await;
    let added = stack.add_zone(&admin, ENTERPRISE_ZONE).await;
    let request_id = added.headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(stack.audit_count(&tenant, "zone.add", 1).await >= 1);

    let log = stack
        .get("/api/v1/audit-log?action=zone.add", &auditor)
        .await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.json);
    let record = &log.json["records"][0];
    assert_eq!(record["outcome"], "ok");
    assert_eq!(record["client_ip"], "127.0.0.1");
    assert_eq!(record["request_id"], request_id);
    assert_eq!(record["target"], format!("zone/{ENTERPRISE_ZONE}"));
    assert_eq!(record["actor"], format!("key:{}", &admin[3..19]));

    let denied = stack.get("/api/v1/audit-log", &operator).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    // Reads are audited too.
    stack.get("/api/v1/logs/jobs", &auditor).await;
    assert!(stack.audit_count(&tenant, "job.list", 1).await >= 1);
    let all = stack.get("/api/v1/audit-log?limit=2", &admin).await;
    assert_eq!(all.json["records"].as_array().unwrap().len(), 2);
    let before = all.json["next_before"].as_u64().unwrap();
    let older = stack
        .get(
            &format!("/api/v1/audit-log?limit=2&before={before}"),
            &admin,
        )
        .await;
    assert!(
        older.json["records"][0]["sequence"].as_u64().unwrap() < before,
        "pages go back in time"
    );
}

#[tokio::test]
async fn export_holds_everything_and_erasure_keeps_only_what_the_law_requires() {
    let stack = Stack::start().await;
    let (tenant, admin) = stack.register("gdpr@acme.example").await;
    stack.add_zone(&admin, ENTERPRISE_ZONE).await;
    stack
        .seal_log(
            &tenant,
            ENTERPRISE_ZONE,
            &[WindowSpec::Archive(b"{\"a\":1}\n".to_vec())],
        )
        .await;
    let auditor = stack.key(&admin, "auditor").await;
    assert_eq!(
        stack.get("/api/v1/export", &auditor).await.status,
        StatusCode::FORBIDDEN
    );

    // The audit projection is eventually consistent: wait for the zone's audit record first.
    assert_eq!(stack.audit_count(&tenant, "zone.add", 1).await, 1);
    let export = stack.get("/api/v1/export", &admin).await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.json);
    let body = &export.json;
    assert_eq!(body["customer"]["email"], "gdpr@acme.example");
    assert_eq!(body["users"][0]["email"], "gdpr@acme.example");
    assert_eq!(body["api_keys"].as_array().unwrap().len(), 2);
    assert_eq!(body["zones"][0]["zone_id"], ENTERPRISE_ZONE);
    assert_eq!(body["jobs"].as_array().unwrap().len(), 1);
    assert!(!body["audit_log"].as_array().unwrap().is_empty());
    let text = body.to_string();
    for secret in [FULL_TOKEN, "sealed_token", "digest", "password"] {
        assert!(!text.contains(secret), "the export holds no {secret}");
    }

    let erase = stack
        .call(
            Method::DELETE,
            &format!("/api/v1/customers/{tenant}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(erase.status, StatusCode::OK, "{}", erase.json);
    let retained = erase.json["retained"].as_array().unwrap();
    assert!(
        retained
            .iter()
            .any(|r| r["what"].as_str().unwrap().contains("archived") && r["until"].is_string()),
        "{}",
        erase.json
    );
    let (name, email): (String, String) =
        sqlx::query_as("SELECT name, email FROM tenants WHERE tenant_id = $1")
            .bind(&tenant)
            .fetch_one(&stack.pool)
            .await
            .unwrap();
    assert_eq!((name.as_str(), email.as_str()), ("", ""));
    let (users,): (i64,) = sqlx::query_as("SELECT count(*) FROM users WHERE tenant_id = $1")
        .bind(&tenant)
        .fetch_one(&stack.pool)
        .await
        .unwrap();
    assert_eq!(users, 0);
    let after = stack.get("/api/v1/zones", &admin).await;
    assert_eq!(after.error_code(), "ACCESS_DENIED");

    // The control stream no longer holds the address or the key labels, anywhere in its bytes;
    // the deletion and the zone's registration (kept for the archives' retention) are still there.
    let control = control_events(&stack, &tenant).await;
    assert!(
        !control.iter().any(|(raw, _)| raw
            .windows(b"gdpr@acme.example".len())
            .any(|w| w == b"gdpr@acme.example")),
        "the email address is still in the control stream"
    );
    let kinds: Vec<&str> = control
        .iter()
        .map(|(_, event)| event.event.type_name())
        .collect();
    assert!(
        !kinds.contains(&"ctl.tenant_created") && !kinds.contains(&"ctl.api_key_created"),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"ctl.tenant_deleted") && kinds.contains(&"ctl.zone_added"),
        "{kinds:?}"
    );
    // The sealer is asked to end the zone's log with an erasure entry.
    let archive = stack
        .bus
        .js
        .get_stream("RL_ARCHIVE")
        .await
        .unwrap()
        .get_last_raw_message_by_subject(&rainlogs_schemas::subjects::archive(ENTERPRISE_ZONE))
        .await
        .unwrap();
    let requested = rainlogs_schemas::Envelope::from_cbor(&archive.payload).unwrap();
    assert_eq!(requested.event.type_name(), "archive.erasure_requested");
    assert_eq!(requested.tenant, tenant);
    // The address is free again.
    stack.register("gdpr@acme.example").await;
}

/// Every event still stored on the tenant's control subject: (stored bytes, event).
async fn control_events(stack: &Stack, tenant: &str) -> Vec<(Vec<u8>, rainlogs_schemas::Envelope)> {
    let mut stream = stack.bus.js.get_stream("RL_CONTROL").await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut events = Vec::new();
    for sequence in 1..=last {
        // Erased sequences are gone.
        let Ok(message) = stream.get_raw_message(sequence).await else {
            continue;
        };
        if message.subject.as_str() == rainlogs_schemas::subjects::control(tenant) {
            let event = rainlogs_schemas::Envelope::from_cbor(&message.payload).unwrap();
            events.push((message.payload.to_vec(), event));
        }
    }
    events
}

#[tokio::test]
async fn a_one_entry_log_has_a_proof_too() {
    let stack = Stack::start().await;
    let (tenant, admin) = stack.register("single@acme.example").await;
    stack.add_zone(&admin, ENTERPRISE_ZONE).await;
    let log = stack
        .seal_log(&tenant, ENTERPRISE_ZONE, &[WindowSpec::Empty])
        .await;
    let job = log.entries[0].id.to_hex();
    let detail = stack
        .get(&format!("/api/v1/logs/jobs/{job}?proof=true"), &admin)
        .await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.json);
    let proof = &detail.json["proof"];
    assert_eq!(proof["tree_size"], 1);
    assert!(proof["audit_path"].as_array().unwrap().is_empty());
    // In a tree of one the root is the leaf.
    assert_eq!(
        proof["leaf_hash"],
        rainlogs_integrity::leaf_hash(&log.entries[0].bytes).to_hex()
    );
    let origin =
        rainlogs_integrity::Origin::parse(&format!("rainlogs/{tenant}/{ENTERPRISE_ZONE}")).unwrap();
    let pinned = rainlogs_integrity::NoteVerifierKey::parse(TEST_VERIFIER_KEY).unwrap();
    let checkpoint = rainlogs_integrity::open_checkpoint(
        proof["checkpoint"]["note"].as_str().unwrap().as_bytes(),
        &origin,
        &[pinned],
    )
    .unwrap()
    .checkpoint;
    assert_eq!(proof["leaf_hash"], checkpoint.root.to_hex());
}

#[tokio::test]
async fn retention_is_set_per_tenant_and_zone_within_bounds_by_admins_only() {
    let stack = Stack::start().await;
    let (tenant, admin) = stack.register("retention@acme.example").await;
    let operator = stack.key(&admin, "operator").await;
    let put = |path: String, key: String, body: serde_json::Value| {
        let stack = &stack;
        async move { stack.call(Method::PUT, &path, Some(&key), Some(body)).await }
    };

    let policy = stack.get("/api/v1/retention", &operator).await;
    assert_eq!(policy.status, StatusCode::OK, "{}", policy.json);
    assert_eq!(policy.json["days"], 395);
    assert_eq!(policy.json["min_days"], 7);
    assert_eq!(policy.json["max_days"], 3650);

    // Below the floor every installation shares breaks the schema (400); beyond this
    // installation's configured range follows it but cannot be done (422).
    for (days, status, code) in [
        (6, StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
        (
            3651,
            StatusCode::UNPROCESSABLE_ENTITY,
            "RETENTION_OUT_OF_RANGE",
        ),
    ] {
        let refused = put(
            "/api/v1/retention".into(),
            admin.clone(),
            json!({"days": days}),
        )
        .await;
        assert_eq!(refused.status, status, "{days}: {}", refused.json);
        assert_eq!(refused.error_code(), code, "{days}");
    }

    let denied = put(
        "/api/v1/retention".into(),
        operator.clone(),
        json!({"days": 30}),
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let set = put(
        "/api/v1/retention".into(),
        admin.clone(),
        json!({"days": 730}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.json);
    assert_eq!(set.json["days"], 730);

    stack.add_zone(&admin, ENTERPRISE_ZONE).await;
    let zone_path = format!("/api/v1/zones/{ENTERPRISE_ZONE}/retention");
    let beyond = put(zone_path.clone(), admin.clone(), json!({"days": 3651})).await;
    assert_eq!(
        beyond.error_code(),
        "RETENTION_OUT_OF_RANGE",
        "{}",
        beyond.json
    );
    let zone = put(zone_path.clone(), admin.clone(), json!({"days": 1000})).await;
    assert_eq!(zone.status, StatusCode::OK, "{}", zone.json);
    assert_eq!(zone.json["retention_days"], 1000);
    let policy = stack.get("/api/v1/retention", &admin).await;
    assert_eq!(
        policy.json["zones"],
        json!([{"zone_id": ENTERPRISE_ZONE, "days": 1000}])
    );
    let (_, other) = stack.register("other-retention@globex.example").await;
    let foreign = put(zone_path.clone(), other, json!({"days": 30})).await;
    assert_eq!(foreign.error_code(), "ZONE_NOT_FOUND");
    let back = put(zone_path, admin.clone(), json!({"days": null})).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.json);
    assert!(back.json["retention_days"].is_null(), "{}", back.json);
    assert_eq!(stack.audit_count(&tenant, "zone.retention", 2).await, 2);
    stack.audit_count(&tenant, "retention.set", 2).await;
    let outcomes: Vec<(String,)> = sqlx::query_as(
        "SELECT outcome FROM audit_log WHERE tenant_id = $1 AND action = 'retention.set' ORDER BY outcome",
    )
    .bind(&tenant)
    .fetch_all(&stack.pool)
    .await
    .unwrap();
    assert_eq!(
        outcomes,
        vec![("denied".to_owned(),), ("ok".to_owned(),)],
        "the change and the operator's refused attempt"
    );
}

#[tokio::test]
async fn legal_holds_are_set_listed_and_released_by_admins_and_audited() {
    let stack = Stack::start().await;
    let (tenant, admin) = stack.register("holds@acme.example").await;
    let auditor = stack.key(&admin, "auditor").await;
    stack.add_zone(&admin, ENTERPRISE_ZONE).await;

    let denied = stack
        .post("/api/v1/legal-holds", &auditor, json!({"reason": "case 1"}))
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let blank = stack
        .post("/api/v1/legal-holds", &admin, json!({"reason": "  "}))
        .await;
    assert_eq!(blank.error_code(), "INVALID_REQUEST");
    let unknown = stack
        .post(
            "/api/v1/legal-holds",
            &admin,
            json!({"reason": "case 1", "zone_id": "0123456789abcdef0123456789abcdef"}),
        )
        .await;
    assert_eq!(unknown.error_code(), "ZONE_NOT_FOUND");

    let set = stack
        .post(
            "/api/v1/legal-holds",
            &admin,
            json!({"reason": "BSI incident 2026-0042", "zone_id": ENTERPRISE_ZONE}),
        )
        .await;
    assert_eq!(set.status, StatusCode::CREATED, "{}", set.json);
    let hold_id = set.json["hold_id"].as_str().unwrap().to_owned();
    assert_eq!(set.json["zone_id"], ENTERPRISE_ZONE);
    let held: (i64,) =
        sqlx::query_as("SELECT count(*) FROM api_legal_holds WHERE tenant = $1 AND zone = $2")
            .bind(&tenant)
            .bind(ENTERPRISE_ZONE)
            .fetch_one(&stack.pool)
            .await
            .unwrap();
    assert_eq!(held.0, 1, "the API's read model holds the zone");

    let list = stack.get("/api/v1/legal-holds", &admin).await;
    assert_eq!(list.json["holds"].as_array().unwrap().len(), 1);
    let (_, other) = stack.register("holds@globex.example").await;
    assert!(
        stack.get("/api/v1/legal-holds", &other).await.json["holds"]
            .as_array()
            .unwrap()
            .is_empty(),
        "another tenant sees none"
    );
    let foreign = stack
        .call(
            Method::DELETE,
            &format!("/api/v1/legal-holds/{hold_id}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);

    let released = stack
        .call(
            Method::DELETE,
            &format!("/api/v1/legal-holds/{hold_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(released.status, StatusCode::NO_CONTENT, "{}", released.json);
    assert!(
        stack.get("/api/v1/legal-holds", &admin).await.json["holds"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    stack.audit_count(&tenant, "legal_hold.release", 1).await;
    stack
        .audit_outcomes(&tenant, "legal_hold.list", "ok", 2)
        .await;
    let audited: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, outcome FROM audit_log WHERE tenant_id = $1 AND action LIKE 'legal_hold.%' \
         ORDER BY action, outcome",
    )
    .bind(&tenant)
    .fetch_all(&stack.pool)
    .await
    .unwrap();
    let pairs: Vec<(&str, &str)> = audited
        .iter()
        .map(|(a, o)| (a.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("legal_hold.list", "ok"),
            ("legal_hold.list", "ok"),
            ("legal_hold.release", "ok"),
            ("legal_hold.set", "denied"),
            ("legal_hold.set", "ok"),
        ]
    );
}

/// An API process can serve the verification key without holding the private signing key.
#[tokio::test]
async fn the_verifier_key_can_be_configured_without_the_signing_key() {
    let stack = Stack::start_with(relaxed(), |config| {
        config.secrets.signing_key = None;
        config.api.verifier_key = Some(TEST_VERIFIER_KEY.into());
    })
    .await;
    let key = stack
        .call(Method::GET, "/api/v1/integrity/verifier-key", None, None)
        .await;
    assert_eq!(key.status, StatusCode::OK, "{}", key.json);
    assert_eq!(key.json["verifier_key"], TEST_VERIFIER_KEY);
}

#[tokio::test]
async fn a_used_up_storage_quota_refuses_new_zones_and_pulls_but_keeps_collecting() {
    let options = rainlogs_query_api::ApiOptions {
        quotas: rainlogs_query_api::Quotas {
            max_stored_bytes_per_month: 16,
            ..Default::default()
        },
        ..relaxed()
    };
    let stack = Stack::start_with(options, |_| {}).await;
    let (tenant, admin) = stack.register("storage@acme.example").await;
    let added = stack.add_zone(&admin, ENTERPRISE_ZONE).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.json);
    stack
        .seal_log(
            &tenant,
            ENTERPRISE_ZONE,
            &[WindowSpec::Archive(vec![b'x'; 4096])],
        )
        .await;
    // The log was sealed for January; count it as sealed this month.
    sqlx::query(
        "UPDATE jobs SET sealed_at_ns = (extract(epoch FROM now()) * 1e9)::BIGINT \
         WHERE tenant_id = $1",
    )
    .bind(&tenant)
    .execute(&stack.pool)
    .await
    .unwrap();
    let profile = stack
        .get(&format!("/api/v1/customers/{tenant}"), &admin)
        .await;
    let stored = profile.json["usage"]["stored_bytes_this_month"]
        .as_u64()
        .unwrap();
    assert!(stored > 16, "{}", profile.json);

    let refused = stack.add_zone(&admin, PRO_ZONE).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.error_code(), "QUOTA_EXCEEDED");
    assert!(
        refused.json["message"]
            .as_str()
            .unwrap()
            .contains("keep being collected"),
        "{}",
        refused.json
    );
    let pull = stack
        .post(
            &format!("/api/v1/zones/{ENTERPRISE_ZONE}/pull"),
            &admin,
            recent_window(5),
        )
        .await;
    assert_eq!(pull.error_code(), "QUOTA_EXCEEDED", "{}", pull.json);
    // Nothing of the refused zone was recorded; the existing zone is still collected.
    let zones = stack.get("/api/v1/zones", &admin).await;
    let listed = zones.json["zones"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{}", zones.json);
    assert_eq!(listed[0]["zone_id"], ENTERPRISE_ZONE);
    assert_eq!(listed[0]["paused"], false);
}

#[tokio::test]
async fn an_erased_tenants_logs_are_asked_for_their_erasure_entry_even_if_the_first_request_was_lost()
 {
    let options = rainlogs_query_api::ApiOptions {
        erasure_record_retry: std::time::Duration::from_millis(200),
        ..relaxed()
    };
    let stack = Stack::start_with(options, |_| {}).await;
    let (tenant, admin) = stack.register("lost@acme.example").await;
    assert_eq!(stack.add_zone(&admin, ENTERPRISE_ZONE).await.status, 201);
    // Another API process published the deletion and crashed before asking the sealer.
    let deleted = rainlogs_schemas::Envelope::new(
        &tenant,
        None,
        rainlogs_schemas::Actor::operator(),
        rainlogs_schemas::Event::TenantDeleted(rainlogs_schemas::events::TenantDeleted {
            reason: "GDPR Art. 17 request".into(),
        }),
    );
    stack
        .bus
        .publish(&rainlogs_schemas::subjects::control(&tenant), &deleted)
        .await
        .unwrap();
    let archive = stack.bus.js.get_stream("RL_ARCHIVE").await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let requested = loop {
        if let Ok(message) = archive
            .get_last_raw_message_by_subject(&rainlogs_schemas::subjects::archive(ENTERPRISE_ZONE))
            .await
        {
            break rainlogs_schemas::Envelope::from_cbor(&message.payload).unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no erasure entry was requested for the erased tenant's zone"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(requested.event.type_name(), "archive.erasure_requested");
    assert_eq!(requested.tenant, tenant);
}

/// `logpush_http` needs this RainLogs to be reachable by Cloudflare (`ingest.public_url`); with
/// it, any plan may use it and `auto` picks it.
#[tokio::test]
async fn logpush_zones_need_the_ingest_url_and_auto_prefers_logpush() {
    const SOVEREIGN_ZONE: &str = "4c3f2e1d0a9b8c7d6e5f4a3b2c1d0e9f";
    async fn add(stack: &Stack, admin: &str, zone: &str, method: &str) -> Reply {
        let body = json!({"zone_id": zone, "cf_api_token": FULL_TOKEN, "method": method});
        stack.post("/api/v1/zones", admin, body).await
    }
    let without = Stack::start().await;
    let (_, admin) = without.register("ops@acme.example").await;
    let refused = add(&without, &admin, SOVEREIGN_ZONE, "logpush_http").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.json);
    assert!(
        refused.json["message"]
            .as_str()
            .unwrap()
            .contains("ingest.public_url"),
        "{}",
        refused.json
    );
    let auto = add(&without, &admin, PRO_ZONE, "auto").await;
    assert_eq!(
        auto.json["method"], "graphql",
        "no Logpush here: the plan's best"
    );

    let with = Stack::start_with(relaxed(), |config| {
        config.ingest.public_url = Some("https://logs.example.eu".into());
    })
    .await;
    let (_, admin) = with.register("ops@acme.example").await;
    let pushed = add(&with, &admin, SOVEREIGN_ZONE, "logpush_http").await;
    assert_eq!(pushed.status, StatusCode::CREATED, "{}", pushed.json);
    assert_eq!(pushed.json["method"], "logpush_http");
    let auto = add(&with, &admin, PRO_ZONE, "auto").await;
    assert_eq!(
        auto.json["method"], "logpush_http",
        "Logpush on the Pro plan too"
    );
}

/// `logpush_s3` brings the customer's bucket: checked before anything is stored (the
/// destination's form, an endpoint at a public address, read keys that can list it), then
/// sealed and published after the zone, so the collector can open it and no secret is in the
/// clear on the control stream.
#[tokio::test]
async fn logpush_s3_zones_bring_a_bucket_that_is_checked_then_sealed() {
    use rainlogs_testkit::s3::{
        dev_bucket, dev_s3_auditor, dev_s3_host, dev_s3_writer, logpush_destination,
    };
    const SOVEREIGN_ZONE: &str = "4c3f2e1d0a9b8c7d6e5f4a3b2c1d0e9f";
    let customer = dev_bucket("api-logpush", false).await;
    let host = &dev_s3_host();
    let writer = dev_s3_writer();
    let reader = dev_s3_auditor();
    let destination = |host: &str| logpush_destination(&customer.config().bucket, "cf", host);
    let body = |method: &str, conf: &str, secret: &str| {
        json!({
            "zone_id": SOVEREIGN_ZONE,
            "cf_api_token": FULL_TOKEN,
            "method": method,
            "bucket": {
                "destination_conf": conf,
                "read_access_key_id": reader.access_key_id,
                "read_secret_access_key": secret,
            }
        })
    };

    // By default a tenant cannot point RainLogs at this machine or the cloud's metadata service.
    let guarded = Stack::start().await;
    let (tenant, admin) = guarded.register("ops@acme.example").await;
    for host in [
        host.to_owned(),
        "169.254.169.254".into(),
        "[::1]:8333".into(),
        "localhost:8333".into(),
    ] {
        let refused = guarded
            .post(
                "/api/v1/zones",
                &admin,
                body("logpush_s3", &destination(&host), &reader.secret_access_key),
            )
            .await;
        assert_eq!(
            refused.error_code(),
            "INVALID_BUCKET",
            "{host}: {}",
            refused.json
        );
        assert!(
            refused.json["message"]
                .as_str()
                .unwrap()
                .contains("not a public address"),
            "{host}: {}",
            refused.json
        );
    }
    assert!(
        zone_events(&guarded, &tenant).await.is_empty(),
        "a refused bucket leaves no event"
    );

    let stack = Stack::start_with(relaxed(), |config| {
        config.outbound.allow_private_networks = true;
    })
    .await;
    let (tenant, admin) = stack.register("ops@acme.example").await;
    let cases = [
        (
            json!({"zone_id": SOVEREIGN_ZONE, "cf_api_token": FULL_TOKEN, "method": "logpush_s3"}),
            "INVALID_BUCKET",
            "needs bucket",
        ),
        (
            body("graphql", &destination(host), &reader.secret_access_key),
            "INVALID_BUCKET",
            "only taken with method logpush_s3",
        ),
        (
            body(
                "logpush_s3",
                &destination(host).replace("region=us-east-1&", ""),
                &reader.secret_access_key,
            ),
            "INVALID_BUCKET",
            "no region",
        ),
        (
            body(
                "logpush_s3",
                &format!("{}&acl=public-read", destination(host)),
                &reader.secret_access_key,
            ),
            "INVALID_BUCKET",
            "unknown parameter",
        ),
        (
            body(
                "logpush_s3",
                &destination(&format!("{host}/other")),
                &reader.secret_access_key,
            ),
            "INVALID_BUCKET",
            "host[:port]",
        ),
        (
            body("logpush_s3", &destination(host), "not-the-secret"),
            "BUCKET_UNREADABLE",
            "cannot list",
        ),
    ];
    for (request, code, why) in cases {
        let refused = stack.post("/api/v1/zones", &admin, request).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{why}: {}",
            refused.json
        );
        assert_eq!(refused.error_code(), code, "{why}: {}", refused.json);
        assert!(
            refused.json["message"].as_str().unwrap().contains(why),
            "{why}: {}",
            refused.json
        );
    }
    assert!(zone_events(&stack, &tenant).await.is_empty());

    let added = stack
        .post(
            "/api/v1/zones",
            &admin,
            body("logpush_s3", &destination(host), &reader.secret_access_key),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.json);
    assert_eq!(added.json["method"], "logpush_s3");
    let events = zone_events(&stack, &tenant).await;
    let names: Vec<&str> = events.iter().map(|(_, e)| e.event.type_name()).collect();
    assert_eq!(names, ["ctl.zone_added", "ctl.push_source_set"]);
    let (stored, set) = &events[1];
    for secret in [&reader.secret_access_key, &writer.secret_access_key] {
        assert!(
            !stored.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "no secret in the clear"
        );
    }
    let rainlogs_schemas::Event::PushSourceSet(set) = &set.event else {
        panic!("not a push source");
    };
    let ring = rainlogs_tokens::TokenKeyring::new(vec![
        rainlogs_tokens::TokenKey::from_hex(&"22".repeat(32)).unwrap(),
    ]);
    let open = |set: &rainlogs_schemas::events::PushSourceSet| {
        rainlogs_push::PushSource::open(
            &ring,
            &set.key_id,
            &tenant,
            SOVEREIGN_ZONE,
            &set.sealed_source,
        )
        .expect("the collector opens what the API sealed")
    };
    let opened = open(set);
    assert_eq!(opened.destination_conf, destination(host));
    assert_eq!(opened.read_secret_access_key, reader.secret_access_key);
    assert!(!opened.delete_after_sealing, "objects stay unless asked");

    // New read keys for the zone are checked the same way before they replace the old ones.
    let patch =
        |secret: &str| json!({"bucket": body("logpush_s3", &destination(host), secret)["bucket"]});
    let refused = stack
        .call(
            Method::PATCH,
            &format!("/api/v1/zones/{SOVEREIGN_ZONE}"),
            Some(&admin),
            Some(patch("wrong")),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.json
    );
    let mut deleting = patch(&reader.secret_access_key);
    deleting["bucket"]["delete_after_sealing"] = json!(true);
    let changed = stack
        .call(
            Method::PATCH,
            &format!("/api/v1/zones/{SOVEREIGN_ZONE}"),
            Some(&admin),
            Some(deleting),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.json);
    let events = zone_events(&stack, &tenant).await;
    let Some(rainlogs_schemas::Event::PushSourceSet(set)) = events.last().map(|(_, e)| &e.event)
    else {
        panic!("no new push source");
    };
    assert!(
        open(set).delete_after_sealing,
        "asked to delete after sealing"
    );
    let names: Vec<String> = events
        .iter()
        .map(|(_, e)| e.event.type_name().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "ctl.zone_added",
            "ctl.push_source_set",
            "ctl.push_source_set"
        ],
        "new read keys alone change nothing else about the zone"
    );
}

/// The tenant's control events about its zones (registration's own events left out).
async fn zone_events(stack: &Stack, tenant: &str) -> Vec<(Vec<u8>, rainlogs_schemas::Envelope)> {
    control_events(stack, tenant)
        .await
        .into_iter()
        .filter(|(_, e)| e.zone.is_some())
        .collect()
}
