//! The API's cache of read-model answers: an answer is served from memory until a projection it
//! depends on announces a commit for its tenant, and a lost listener leaves nothing stale.
//!
//! The tests change a row behind the projections' backs (a plain UPDATE announces nothing), so
//! what the API answers shows whether it read the database or its cache.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;

async fn zone_name(stack: &Stack, key: &str) -> String {
    let reply = stack.get("/api/v1/zones", key).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    reply.json["zones"][0]["name"]
        .as_str()
        .expect("a zone name")
        .to_owned()
}

async fn rename_behind_the_projection(stack: &Stack, name: &str) {
    let renamed = sqlx::query("UPDATE zones SET name = $1 WHERE zone_id = $2")
        .bind(name)
        .bind(ENTERPRISE_ZONE)
        .execute(&stack.pool)
        .await
        .unwrap();
    assert_eq!(renamed.rows_affected(), 1);
}

async fn announce(stack: &Stack, payload: &str) {
    sqlx::query("SELECT pg_notify('rl_projected', $1)")
        .bind(payload)
        .execute(&stack.pool)
        .await
        .unwrap();
}

/// Asks until the API answers `expected` (the announcement travels asynchronously).
async fn until_named(stack: &Stack, key: &str, expected: &str, why: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if zone_name(stack, key).await == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{why}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn cached_zone(stack: &Stack) -> (String, String, String) {
    let (tenant, key) = stack.register("cache@acme.example").await;
    assert_eq!(stack.add_zone(&key, ENTERPRISE_ZONE).await.status, 201);
    let name = zone_name(stack, &key).await;
    (tenant, key, name)
}

#[tokio::test]
async fn an_answer_is_served_from_memory_until_its_projection_commits_for_the_tenant() {
    let stack = Stack::start().await;
    let (tenant, key, name) = cached_zone(&stack).await;
    rename_behind_the_projection(&stack, "renamed").await;
    assert_eq!(zone_name(&stack, &key).await, name, "served from the cache");

    // Commits for another tenant, or of a projection the answer does not read, change nothing.
    let (other, _) = stack.register("other@acme.example").await;
    announce(&stack, &format!("control {other}")).await;
    announce(&stack, &format!("audit {tenant}")).await;
    // Announcements arrive in order: once this one is seen, the two above were too.
    announce(&stack, &format!("chain {other}")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(zone_name(&stack, &key).await, name);

    announce(&stack, &format!("control {tenant}")).await;
    until_named(
        &stack,
        &key,
        "renamed",
        "a control commit for the tenant did not refresh its zones",
    )
    .await;
}

#[tokio::test]
async fn a_write_through_the_api_is_read_back_at_once() {
    let stack = Stack::start().await;
    let (_tenant, key, _) = cached_zone(&stack).await;
    let paused = stack
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/zones/{ENTERPRISE_ZONE}"),
            Some(&key),
            Some(serde_json::json!({"paused": true})),
        )
        .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.json);
    let zones = stack.get("/api/v1/zones", &key).await;
    assert_eq!(zones.json["zones"][0]["paused"], true, "{}", zones.json);
}

#[tokio::test]
async fn a_lost_listener_leaves_no_stale_answer() {
    let stack = Stack::start().await;
    let (_tenant, key, name) = cached_zone(&stack).await;
    rename_behind_the_projection(&stack, "renamed").await;
    assert_eq!(zone_name(&stack, &key).await, name, "served from the cache");

    // Cut the listening connection: what it would have been told is unknown from here on.
    let (cut,): (i64,) = sqlx::query_as(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(&stack.pool)
    .await
    .unwrap();
    assert_eq!(cut, 1, "one listening connection");
    until_named(
        &stack,
        &key,
        "renamed",
        "an answer cached before the listener was lost is still served",
    )
    .await;
}
