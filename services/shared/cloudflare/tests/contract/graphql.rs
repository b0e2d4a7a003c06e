//! GraphQL: firewall events equal the simulator's truth, settings per plan, errors inside HTTP 200 and 429.

use crate::support::*;
use cf_sim::{EndpointKind, Fault, FaultKind};
use rainlogs_cloudflare::{CfError, FirewallEventsQuery, RateLimitScope};
use std::time::Duration;

async fn firewall_truth(
    sim: &cf_sim::RunningSim,
    query: &FirewallEventsQuery,
) -> Vec<serde_json::Value> {
    let url = format!(
        "{}/__sim/truth?dataset=firewall_events&zone={}&start={}&end={}&fields={}",
        sim.root_url(),
        query.zone_tag,
        query.since.unix_timestamp(),
        query.until.unix_timestamp(),
        query.fields.join(","),
    );
    let body = reqwest::get(url)
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap();
    canonical(
        body.lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    )
}

fn canonical(mut rows: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    rows.sort_by_key(|v| v.to_string());
    rows
}

fn hour_query(zone: &str, limit: u32) -> FirewallEventsQuery {
    let until = sim_now() - time::Duration::minutes(10);
    FirewallEventsQuery::new(zone, until - time::Duration::hours(1), until, limit)
}

#[tokio::test]
async fn firewall_events_equal_the_truth() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let max_page = cf
        .firewall_events_settings(PRO_ZONE)
        .await
        .unwrap()
        .max_page_size;
    let query = hour_query(PRO_ZONE, max_page);
    let page = cf.firewall_events(&query).await.unwrap();
    assert!(!page.limit_reached);
    let rows: Vec<serde_json::Value> = page
        .rows
        .iter()
        .map(|r| serde_json::from_slice(r).unwrap())
        .collect();
    let expected = firewall_truth(&sim, &query).await;
    assert!(!expected.is_empty());
    assert_eq!(canonical(rows.clone()), expected);
    let datetimes: Vec<&str> = rows
        .iter()
        .map(|r| r["datetime"].as_str().unwrap())
        .collect();
    assert!(
        datetimes.windows(2).all(|w| w[0] <= w[1]),
        "ordered by datetime ascending"
    );
}

#[tokio::test]
async fn a_full_page_says_so() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let page = cf.firewall_events(&hour_query(PRO_ZONE, 5)).await.unwrap();
    assert_eq!(page.rows.len(), 5);
    assert!(page.limit_reached, "the caller must split the window");
}

#[tokio::test]
async fn settings_follow_the_plan() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let free = cf.firewall_events_settings(FREE_ZONE).await.unwrap();
    let enterprise = cf.firewall_events_settings(ENTERPRISE_ZONE).await.unwrap();
    assert!(free.enabled && free.max_page_size > 0 && free.max_duration > 0);
    assert!(free.available_fields.iter().any(|f| f == "datetime"));
    assert!(
        enterprise.not_older_than >= free.not_older_than,
        "{free:?} vs {enterprise:?}"
    );
}

#[tokio::test]
async fn budget_errors_with_200_and_429_are_rate_limits_returned_at_once() {
    for status in [200, 429] {
        let sim = start_sim().await;
        let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
        inject(
            &sim,
            Fault::everywhere(
                EndpointKind::Graphql,
                1,
                FaultKind::GraphqlBudget { status },
            ),
        );
        let error = cf
            .firewall_events(&hour_query(PRO_ZONE, 100))
            .await
            .unwrap_err();
        match &error {
            CfError::RateLimited {
                scope: RateLimitScope::Graphql,
                retry_after: Some(wait),
                detail,
            } => {
                assert_eq!(*wait, Duration::from_secs(300), "HTTP {status}");
                assert!(detail.contains("budget depleted"), "{detail}");
            }
            other => panic!("HTTP {status}: expected a GraphQL rate limit, got {other:?}"),
        }
        assert_eq!(
            statuses(&sim, "/graphql"),
            vec![status],
            "a 5-minute wait is not retried in-line"
        );
        // The budget block applies to the next GraphQL call of this token without contacting Cloudflare.
        assert!(matches!(
            cf.firewall_events_settings(PRO_ZONE).await,
            Err(CfError::RateLimited {
                scope: RateLimitScope::Local,
                ..
            })
        ));
        cf.zone(PRO_ZONE).await.unwrap();
    }
}

#[tokio::test]
async fn query_limit_errors_keep_the_message_and_are_permanent() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let settings = cf.firewall_events_settings(FREE_ZONE).await.unwrap();
    let too_old = sim_now() - time::Duration::seconds(settings.not_older_than as i64 + 3600);
    let query = FirewallEventsQuery::new(
        FREE_ZONE,
        too_old,
        too_old + time::Duration::minutes(10),
        100,
    );
    let error = cf.firewall_events(&query).await.unwrap_err();
    assert!(
        matches!(&error, CfError::BadQuery { message, .. } if message.contains("older than")),
        "{error:?}"
    );
    let too_many = hour_query(FREE_ZONE, settings.max_page_size + 1);
    let error = cf.firewall_events(&too_many).await.unwrap_err();
    assert!(
        matches!(&error, CfError::BadQuery { message, .. } if message.contains("limit")),
        "{error:?}"
    );
    assert_eq!(
        statuses(&sim, "/graphql").len(),
        3,
        "settings + two refused queries, no retries"
    );
}

#[tokio::test]
async fn a_token_without_analytics_gets_auth_errors_inside_200() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), LOGS_READ_ONLY_TOKEN);
    let error = cf
        .firewall_events(&hour_query(ENTERPRISE_ZONE, 100))
        .await
        .unwrap_err();
    assert!(matches!(error, CfError::Auth { .. }), "{error:?}");
}

#[tokio::test]
async fn graphql_server_errors_are_retried() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    inject(
        &sim,
        Fault::everywhere(
            EndpointKind::Graphql,
            2,
            FaultKind::ServerError { status: 503 },
        ),
    );
    cf.firewall_events(&hour_query(PRO_ZONE, 100))
        .await
        .unwrap();
    assert_eq!(statuses(&sim, "/graphql"), vec![503, 503, 200]);
}

#[tokio::test]
async fn a_global_429_on_graphql_waits_out_retry_after() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    inject(
        &sim,
        Fault::everywhere(
            EndpointKind::Graphql,
            1,
            FaultKind::RateLimit {
                retry_after_secs: 1,
            },
        ),
    );
    cf.firewall_events(&hour_query(PRO_ZONE, 100))
        .await
        .unwrap();
    assert_eq!(statuses(&sim, "/graphql"), vec![429, 200]);
}
