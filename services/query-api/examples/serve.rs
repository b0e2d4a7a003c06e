//! A running API with data, for schemathesis, a generated client or a load tool:
//! `QUERY_API_SERVE_SECS=600 cargo run -p rainlogs-query-api --example serve` prints the base URL
//! and an admin key, then serves until the time is up. Needs `tools/dev-env up` (PostgreSQL).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;

#[tokio::main]
async fn main() {
    let stack = Stack::start().await;
    let (tenant, admin) = stack.register("serve@acme.example").await;
    stack.add_zone(&admin, ENTERPRISE_ZONE).await;
    let log = stack
        .seal_log(
            &tenant,
            ENTERPRISE_ZONE,
            &[
                WindowSpec::Archive(b"{\"ClientIP\":\"192.0.2.1\"}\n".to_vec()),
                WindowSpec::Empty,
            ],
        )
        .await;
    let secs: u64 = std::env::var("QUERY_API_SERVE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    println!("QUERY_API_BASE={}", stack.base);
    println!("QUERY_API_KEY={admin}");
    println!("QUERY_API_JOB={}", log.entries[0].id.to_hex());
    tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
}
