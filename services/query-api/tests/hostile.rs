//! What an attacker tried, kept as tests: malformed ids and text never reach an event or a
//! table, a pull cannot burn quota on a window Cloudflare cannot serve, registration and zone
//! onboarding are no oracles, and sign-in guessing is slowed down and audited.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// All audit records of `tenant`, once the audit projection has applied everything published
/// before a marker read made now.
async fn settled_audit_count(stack: &Stack, tenant: &str, key: &str) -> i64 {
    let before = stack.audit_outcomes(tenant, "customer.read", "ok", 0).await;
    let reply = stack.get(&format!("/api/v1/customers/{tenant}"), key).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    let after = stack
        .audit_outcomes(tenant, "customer.read", "ok", before + 1)
        .await;
    assert_eq!(after, before + 1, "the audit projection keeps moving");
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM audit_log WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(&stack.pool)
        .await
        .unwrap();
    count
}

#[tokio::test]
async fn malformed_ids_are_refused_before_any_audit_or_database_work() {
    let stack = Stack::start().await;
    let (tenant, admin) = stack.register("ids@acme.example").await;
    let operator = stack.key(&admin, "operator").await;
    let baseline = settled_audit_count(&stack, &tenant, &admin).await;

    let bad_ids = [
        "%00",
        "h%00",
        "%0D%0Aforged",
        "..%2F..%2Fetc",
        "ZZZZ",
        "3B2E1D0C9F8A7B6C5D4E3F2A1B0C9D8E",
        "3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e0",
        "%E2%80%AE3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8",
    ];
    let mut refused = 0;
    for bad in bad_ids {
        let requests = [
            (Method::DELETE, format!("/api/v1/legal-holds/{bad}"), None),
            (Method::GET, format!("/api/v1/zones/{bad}/logs"), None),
            (Method::GET, format!("/api/v1/zones/{bad}/checkpoint"), None),
            (Method::DELETE, format!("/api/v1/zones/{bad}"), None),
            (
                Method::PATCH,
                format!("/api/v1/zones/{bad}"),
                Some(json!({"paused": true})),
            ),
            (
                Method::POST,
                format!("/api/v1/zones/{bad}/pull"),
                Some(json!({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:01:00Z"})),
            ),
            (
                Method::PUT,
                format!("/api/v1/zones/{bad}/retention"),
                Some(json!({"days": 30})),
            ),
            (Method::GET, format!("/api/v1/logs/jobs/{bad}"), None),
            (
                Method::GET,
                format!("/api/v1/logs/jobs/{bad}/download"),
                None,
            ),
            (
                Method::GET,
                format!("/api/v1/logs/jobs?zone_id={bad}"),
                None,
            ),
            (Method::DELETE, format!("/api/v1/api-keys/{bad}"), None),
            (Method::GET, format!("/api/v1/customers/{bad}"), None),
            (Method::DELETE, format!("/api/v1/customers/{bad}"), None),
        ];
        for (method, path, body) in requests {
            for key in [&operator, &admin] {
                let reply = stack
                    .call(method.clone(), &path, Some(key), body.clone())
                    .await;
                assert_eq!(
                    reply.status,
                    StatusCode::BAD_REQUEST,
                    "{method} {path}: {}",
                    reply.json
                );
                assert_eq!(reply.error_code(), "INVALID_REQUEST", "{method} {path}");
                refused += 1;
            }
        }
    }
    assert!(refused > 200);
    // Nothing of those requests was audited, and the audit projection still moves for
    // everyone (the NUL target once stalled it for every tenant).
    assert_eq!(
        settled_audit_count(&stack, &tenant, &admin).await,
        baseline + 1
    );
    let (other, other_admin) = stack.register("bystander@globex.example").await;
    settled_audit_count(&stack, &other, &other_admin).await;
}

#[tokio::test]
async fn text_that_could_break_a_table_or_forge_a_line_is_refused() {
    let stack = Stack::start().await;
    let (tenant, admin) = stack.register("text@acme.example").await;
    let baseline = settled_audit_count(&stack, &tenant, &admin).await;
    let hostile = [
        "nul\u{0}byte",
        "two\r\nlines",
        "tab\tbed",
        "evil\u{202E}txt.exe",
        "zero\u{200B}width",
        "isolate\u{2067}x",
        " padded",
        "",
    ];
    for text in hostile {
        let attempts = [
            (
                "/customers",
                json!({"name": text, "email": "new@acme.example"}),
            ),
            ("/api/v1/api-keys", json!({"name": text, "role": "auditor"})),
            ("/api/v1/legal-holds", json!({"reason": text})),
            (
                "/api/v1/zones",
                json!({"zone_id": BUSINESS_ZONE, "cf_api_token": FULL_TOKEN, "name": text}),
            ),
        ];
        for (path, body) in attempts {
            let reply = stack.post(path, &admin, body.clone()).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{path} {body}: {}",
                reply.json
            );
            assert_eq!(reply.error_code(), "INVALID_REQUEST");
        }
    }
    // A number or a boolean where the document says string is refused, not read as text.
    for body in [
        json!({"name": false, "email": "n@acme.example"}),
        json!({"name": 12, "email": "n@acme.example"}),
        json!({"name": "Acme", "email": true}),
    ] {
        let reply = stack
            .call(Method::POST, "/customers", None, Some(body.clone()))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.json
        );
    }
    let reply = stack
        .post("/api/v1/legal-holds", &admin, json!({"reason": 7}))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.json);
    // An erasure reason travels in the query string.
    for reason in ["%00", "line%0Aforged", "%E2%80%AE"] {
        let reply = stack
            .call(
                Method::DELETE,
                &format!("/api/v1/customers/{tenant}?reason={reason}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{reason}: {}",
            reply.json
        );
    }
    // Nothing was created and nothing audited; printable text in any script still works.
    assert_eq!(
        settled_audit_count(&stack, &tenant, &admin).await,
        baseline + 1
    );
    let hold = stack
        .post(
            "/api/v1/legal-holds",
            &admin,
            json!({"reason": "Az. 4711/26 – Staatsanwaltschaft Köln, 東京"}),
        )
        .await;
    assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.json);
}

#[tokio::test]
async fn a_pull_cloudflare_cannot_serve_is_refused_and_uses_no_quota() {
    let stack = Stack::start().await;
    let (tenant, admin) = stack.register("pull@acme.example").await;
    assert_eq!(
        stack.add_zone(&admin, ENTERPRISE_ZONE).await.status,
        StatusCode::CREATED
    );
    let zone = stack.get("/api/v1/zones", &admin).await.json["zones"][0].clone();
    let method = zone["method"].as_str().unwrap().to_owned();
    let now = time::OffsetDateTime::now_utc();
    let at = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let hour = time::Duration::hours(1);
    let path = format!("/api/v1/zones/{ENTERPRISE_ZONE}/pull");
    for (what, start, end) in [
        (
            "year one",
            "0001-01-01T00:00:00Z".to_owned(),
            "0001-01-01T01:00:00Z".to_owned(),
        ),
        ("future", at(now + hour), at(now + hour * 2)),
        ("ends in the future", at(now - hour), at(now + hour)),
        ("empty", at(now - hour), at(now - hour)),
        ("backwards", at(now - hour), at(now - hour * 2)),
        (
            "beyond retention",
            at(now - time::Duration::days(40)),
            at(now - time::Duration::days(40) + hour),
        ),
    ] {
        let reply = stack
            .post(&path, &admin, json!({"start": start, "end": end}))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what} ({method}): {}",
            reply.json
        );
        assert_eq!(reply.error_code(), "INVALID_WINDOW", "{what}");
    }
    let usage = stack
        .get(&format!("/api/v1/customers/{tenant}"), &admin)
        .await;
    assert_eq!(usage.json["usage"]["pulls_last_hour"], 0, "{}", usage.json);
    let reply = stack
        .post(
            &path,
            &admin,
            json!({"start": at(now - hour * 2), "end": at(now - hour)}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.json);
}

#[tokio::test]
async fn closed_registration_refuses_strangers_and_an_operator_creates_tenants() {
    let stack = Stack::start_with(relaxed(), |config| config.api.registration = None).await;
    let reply = stack
        .call(
            Method::POST,
            "/customers",
            None,
            Some(json!({"name": "Acme GmbH", "email": "stranger@acme.example"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.json);
    assert_eq!(reply.error_code(), "REGISTRATION_CLOSED");

    let created =
        rainlogs_query_api::create_tenant(stack.context(), "Acme GmbH", "ops@acme.example")
            .await
            .expect("operator creates the tenant");
    let profile = stack
        .get(
            &format!("/api/v1/customers/{}", created.customer_id),
            &created.api_key,
        )
        .await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.json);
    assert_eq!(profile.json["email"], "ops@acme.example");
    assert!(created.api_key.contains(&created.key_id));
    // The same rules as the API: a second tenant for the address, or a forged name, is refused.
    for (name, email) in [
        ("Acme GmbH", "ops@acme.example"),
        ("x\ny", "other@acme.example"),
    ] {
        assert!(
            rainlogs_query_api::create_tenant(stack.context(), name, email)
                .await
                .is_err(),
            "{name:?} {email}"
        );
    }
}

#[tokio::test]
async fn a_taken_zone_is_only_revealed_to_whoever_has_cloudflare_access_to_it() {
    let stack = Stack::start().await;
    let (_, owner) = stack.register("owner@acme.example").await;
    assert_eq!(
        stack.add_zone(&owner, ENTERPRISE_ZONE).await.status,
        StatusCode::CREATED
    );
    let (_, prober) = stack.register("prober@globex.example").await;
    let bogus = stack
        .post(
            "/api/v1/zones",
            &prober,
            json!({"zone_id": ENTERPRISE_ZONE, "cf_api_token": "cfut_not_a_real_token_000000000000000"}),
        )
        .await;
    let unknown = stack
        .post(
            "/api/v1/zones",
            &prober,
            json!({"zone_id": "0123456789abcdef0123456789abcdef", "cf_api_token": "cfut_not_a_real_token_000000000000000"}),
        )
        .await;
    assert_eq!(
        bogus.status, unknown.status,
        "{} / {}",
        bogus.json, unknown.json
    );
    assert_eq!(bogus.error_code(), unknown.error_code());
    assert_eq!(bogus.status, StatusCode::UNPROCESSABLE_ENTITY);
    let with_access = stack.add_zone(&prober, ENTERPRISE_ZONE).await;
    assert_eq!(
        with_access.status,
        StatusCode::CONFLICT,
        "{}",
        with_access.json
    );
}

async fn login(stack: &Stack, email: &str, password: &str) -> Reply {
    stack
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
}

#[tokio::test]
async fn guessing_a_password_is_slowed_down_and_audited() {
    let stack = Stack::start().await;
    let (tenant, _) = stack.register("guessed@acme.example").await;
    let right = "correct horse battery staple";
    let mut statuses = Vec::new();
    for n in 0..30 {
        statuses.push(login(&stack, "guessed@acme.example", &format!("guess {n}")).await);
    }
    let wrong = statuses
        .iter()
        .filter(|r| r.status == StatusCode::UNAUTHORIZED)
        .count();
    let throttled: Vec<&Reply> = statuses
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!((5..=7).contains(&wrong), "{wrong} guesses were checked");
    assert!(throttled.len() >= 20, "{} throttled", throttled.len());
    let retry: u64 = throttled[0].headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    assert_eq!(throttled[0].error_code(), "RATE_LIMITED");
    // The right password during the block is refused too: the block tells a guesser nothing.
    let during = login(&stack, "guessed@acme.example", right).await;
    assert_eq!(
        during.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        during.json
    );
    let failed = stack
        .audit_outcomes(&tenant, "auth.login", "failed", wrong as i64)
        .await;
    assert_eq!(
        failed, wrong as i64,
        "every checked wrong password is audited"
    );
    // Blocks are short for an account: the owner gets in once it ends.
    let wait = during.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let after = login(&stack, "guessed@acme.example", right).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.json);
}

#[tokio::test]
async fn an_unknown_address_is_refused_as_slowly_as_a_wrong_password() {
    let stack = Stack::start().await;
    stack.register("known@acme.example").await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    // Within the free failures of each account: no throttling in the way.
    for n in 0..4 {
        let started = Instant::now();
        let reply = login(&stack, "known@acme.example", &format!("wrong {n}")).await;
        known.push(started.elapsed());
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        let started = Instant::now();
        let reply = login(&stack, &format!("nobody{n}@acme.example"), "wrong").await;
        unknown.push(started.elapsed());
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.error_code(), "INVALID_CREDENTIALS");
    }
    known.sort();
    unknown.sort();
    // Both hash a password; skipping the hash for unknown addresses would make them ~100x
    // faster, far outside this margin.
    assert!(
        unknown[1] * 2 >= known[1],
        "unknown {unknown:?} vs known {known:?}"
    );
}
