//! Logpull happy paths: windows equal the simulator's truth, gzip, timestamps, fields, Ray IDs, retention, CMB.

use crate::support::*;
use rainlogs_cloudflare::{CfError, LogpullWindow, TimestampFormat, edge_start_timestamp};

#[tokio::test]
async fn a_window_streams_exactly_the_truth_as_a_multiset_with_gzip() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let q = query(ENTERPRISE_ZONE, window(10, 60));
    let (lines, verdict) = drain(&cf, &q).await;
    let summary = verdict.unwrap();
    let expected = truth(&sim, &q).await;
    assert!(
        !expected.is_empty(),
        "the enterprise zone should have traffic in a minute"
    );
    assert_eq!(sorted(lines), expected);
    assert_eq!(summary.lines as usize, expected.len());
    assert!(summary.gzip, "the client asks for gzip and must decode it");
    assert!(
        summary.wire_bytes < summary.body_bytes,
        "gzip should shrink the body"
    );

    let sent = sim.requests();
    let request = sent
        .iter()
        .find(|r| r.path.ends_with("/logs/received"))
        .unwrap();
    assert!(
        request.query.contains("fields=RayID%2CEdgeStartTimestamp")
            || request.query.contains("fields=RayID,EdgeStartTimestamp"),
        "{}",
        request.query
    );
    assert!(request.query.contains("timestamps=unixnano"));
    assert!(!request.query.contains("count=") && !request.query.contains("sample="));
}

#[tokio::test]
async fn adjacent_windows_together_equal_the_covering_truth() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let first = query(ENTERPRISE_ZONE, window(12, 60));
    let second = query(ENTERPRISE_ZONE, window(11, 60));
    let (mut lines, verdict) = drain(&cf, &first).await;
    verdict.unwrap();
    let (more, verdict) = drain(&cf, &second).await;
    verdict.unwrap();
    lines.extend(more);
    let covering = query(
        ENTERPRISE_ZONE,
        LogpullWindow::new(first.window.start(), second.window.end()).unwrap(),
    );
    assert_eq!(sorted(lines), truth(&sim, &covering).await);
}

#[tokio::test]
async fn every_timestamp_format_parses_exactly() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let mut nanos = Vec::new();
    let mut seconds = Vec::new();
    for format in [
        TimestampFormat::UnixNano,
        TimestampFormat::Unix,
        TimestampFormat::Rfc3339,
    ] {
        let mut q = query(ENTERPRISE_ZONE, window(20, 5));
        q.timestamps = format;
        let (lines, verdict) = drain(&cf, &q).await;
        verdict.unwrap();
        assert_eq!(sorted(lines.clone()), truth(&sim, &q).await, "{format:?}");
        let mut parsed: Vec<_> = lines
            .iter()
            .map(|l| edge_start_timestamp(l, format).unwrap().unwrap())
            .collect();
        parsed.sort();
        match format {
            TimestampFormat::UnixNano => nanos = parsed,
            _ => seconds.push(parsed),
        }
    }
    assert!(
        nanos.iter().any(|t| t.nanosecond() != 0),
        "unixnano must keep sub-second digits"
    );
    let truncated: Vec<_> = nanos
        .iter()
        .map(|t| t.replace_nanosecond(0).unwrap())
        .collect();
    for other in seconds {
        assert_eq!(
            other, truncated,
            "unix and rfc3339 are the same instants at second precision"
        );
    }
}

#[tokio::test]
async fn fields_endpoint_lists_the_catalogue() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let fields = cf.logpull_fields(ENTERPRISE_ZONE).await.unwrap();
    for name in FIELDS {
        assert!(fields.contains_key(*name), "{name} missing");
    }
    assert_eq!(fields.len(), cf_sim::http_request_fields().len());
}

#[tokio::test]
async fn ray_lookup_returns_the_same_record() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let (lines, verdict) = drain(&cf, &query(ENTERPRISE_ZONE, window(30, 2))).await;
    verdict.unwrap();
    let line = &lines[0];
    let record: serde_json::Value = serde_json::from_slice(line).unwrap();
    let ray = record["RayID"].as_str().unwrap();
    let found = cf
        .logpull_ray(
            ENTERPRISE_ZONE,
            &format!("{ray}-FRA"),
            &fields(),
            TimestampFormat::UnixNano,
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let found: serde_json::Value = serde_json::from_slice(&found[0]).unwrap();
    assert_eq!(found, record, "field order may differ, content may not");
    let unknown = cf
        .logpull_ray(
            ENTERPRISE_ZONE,
            "0000000000000001",
            &fields(),
            TimestampFormat::UnixNano,
        )
        .await
        .unwrap();
    assert!(unknown.is_empty());
}

#[tokio::test]
async fn server_side_window_errors_keep_cloudflares_text_and_are_not_retried() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    // Inside the simulator's 1 min delay but allowed by the client type: the server must refuse it.
    let end = sim_now();
    let q = query(
        ENTERPRISE_ZONE,
        LogpullWindow::new(end - time::Duration::minutes(1), end).unwrap(),
    );
    assert!(
        q.window.check_servable(sim_now()).is_err(),
        "the client-side check would have refused it too"
    );
    let (_, verdict) = drain(&cf, &q).await;
    match verdict {
        Err(CfError::BadQuery {
            status: 400,
            message,
        }) => {
            assert!(
                message
                    .starts_with("bad query: error parsing time: invalid time range: too recent"),
                "{message}"
            )
        }
        other => panic!("expected BadQuery, got {other:?}"),
    }
    let old = sim_now() - time::Duration::hours(169);
    let q = query(
        ENTERPRISE_ZONE,
        LogpullWindow::new(old, old + time::Duration::minutes(1)).unwrap(),
    );
    let (_, verdict) = drain(&cf, &q).await;
    assert!(
        matches!(&verdict, Err(CfError::BadQuery { message, .. }) if message.contains("too early")),
        "{verdict:?}"
    );
    assert_eq!(
        statuses(&sim, "/logs/received"),
        vec![400, 400],
        "permanent errors are sent once"
    );
}

#[tokio::test]
async fn retention_flag_round_trip_and_retention_off() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    assert!(cf.retention_flag(ENTERPRISE_ZONE).await.unwrap());
    assert!(!cf.retention_flag(BUSINESS_ZONE).await.unwrap());
    assert!(!cf.set_retention_flag(ENTERPRISE_ZONE, false).await.unwrap());
    assert!(!cf.retention_flag(ENTERPRISE_ZONE).await.unwrap());
    let (_, verdict) = drain(&cf, &query(ENTERPRISE_ZONE, window(10, 60))).await;
    assert!(
        matches!(verdict, Err(CfError::RetentionDisabled { .. })),
        "{verdict:?}"
    );
    assert!(cf.set_retention_flag(ENTERPRISE_ZONE, true).await.unwrap());
    let (_, verdict) = drain(&cf, &query(ENTERPRISE_ZONE, window(10, 60))).await;
    assert!(verdict.is_ok());

    let (_, read_only) = client(fast_config(&sim), LOGS_READ_ONLY_TOKEN);
    let refused = read_only.set_retention_flag(ENTERPRISE_ZONE, false).await;
    assert!(
        matches!(refused, Err(CfError::Auth { .. })),
        "setting the flag needs Logs Edit: {refused:?}"
    );
}

#[tokio::test]
async fn eu_metadata_boundary_is_detected_up_front_and_on_logpull() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let cmb = cf.cmb_config(SOVEREIGN_ACCOUNT).await.unwrap();
    assert!(cmb.blocks_logpull(), "{cmb:?}");
    assert!(matches!(
        cf.ensure_logpull_allowed(SOVEREIGN_ACCOUNT).await,
        Err(CfError::LogpullBlockedByMetadataBoundary { .. })
    ));
    assert!(!cf.cmb_config(EU_ACCOUNT).await.unwrap().blocks_logpull());
    cf.ensure_logpull_allowed(EU_ACCOUNT).await.unwrap();
    let (_, verdict) = drain(&cf, &query(SOVEREIGN_ZONE, window(10, 60))).await;
    assert!(
        matches!(
            verdict,
            Err(CfError::LogpullBlockedByMetadataBoundary { .. })
        ),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn logpull_outside_enterprise_is_not_entitled() {
    let sim = start_sim().await;
    let (_, cf) = client(fast_config(&sim), FULL_TOKEN);
    let (_, verdict) = drain(&cf, &query(BUSINESS_ZONE, window(10, 60))).await;
    assert!(
        matches!(verdict, Err(CfError::NotEntitled { .. })),
        "{verdict:?}"
    );
}
