//! Logpull: window bounds, plain-text errors, rendering options, ordering, truth, gzip and Ray ID look-ups.

use std::io::Read;
use std::time::Duration;

use cf_sim::{TimestampFormat, TruthQuery};
use serde_json::Value;

use crate::common::*;

async fn text_of(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    (status, ctype, resp.text().await.expect("body"))
}

async fn pull(url: &str) -> (u16, String, String) {
    text_of(
        client()
            .get(url)
            .bearer_auth(FULL)
            .send()
            .await
            .expect("request"),
    )
    .await
}

#[tokio::test]
async fn window_errors_are_plain_text_with_documented_messages() {
    let sim = start().await;
    let base = format!("{}/zones/{ENTERPRISE}/logs/received", sim.base_url());
    let t0 = T0.unix_timestamp();
    let cases = [
        (
            format!("start={}&end={}", t0 - 7200, t0 - 3000),
            "bad query: error parsing time: invalid time range: too long: maximum query range (difference between start and end) is 1h0m0s\n",
        ),
        (
            format!("start={}&end={}", t0 - 169 * 3600, t0 - 169 * 3600 + 60),
            "bad query: error parsing time: invalid time range: too early: logs older than 168h0m0s are not available\n",
        ),
        (
            format!("start={}&end={}", t0 - 90, t0 - 30),
            "bad query: error parsing time: invalid time range: too recent: minimum delay in serving logs is 1m0s\n",
        ),
        (
            format!("start={}&end={}", t0 - 600, t0 - 600),
            "bad query: error parsing time: invalid time range: start not before end\n",
        ),
        (
            format!("start=yesterday&end={}", t0 - 600),
            "bad query: error parsing start time: must be unix timestamp or rfc3339 string\n",
        ),
        (
            format!("start={}", t0 - 600),
            "bad query: error parsing end time: must be unix timestamp or rfc3339 string\n",
        ),
        // An unencoded `+` in an RFC 3339 offset decodes to a space and is rejected, as Cloudflare documents.
        (
            "start=2026-01-15T12:40:00+01:00&end=2026-01-15T12:45:00%2B01:00".to_owned(),
            "bad query: error parsing start time: must be unix timestamp or rfc3339 string\n",
        ),
    ];
    for (query, expected) in cases {
        let (status, ctype, body) = pull(&format!("{base}?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert!(
            ctype.starts_with("text/plain"),
            "{query}: content type {ctype}"
        );
        assert_eq!(body, expected, "{query}");
    }
    // Boundaries are accepted: exactly 1 h, exactly 168 h back, end exactly now - 1 m, RFC 3339 with %2B offset.
    for query in [
        format!("start={}&end={}", t0 - 4000, t0 - 400),
        format!("start={}&end={}", t0 - 168 * 3600, t0 - 168 * 3600 + 10),
        format!("start={}&end={}", t0 - 120, t0 - 60),
        "start=2026-01-15T12:40:00%2B01:00&end=2026-01-15T12:45:00%2B01:00".to_owned(),
        format!(
            "start={}&end={}",
            (t0 - 120) * 1_000_000_000,
            (t0 - 60) * 1_000_000_000
        ),
    ] {
        let (status, _, body) = pull(&format!("{base}?{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn too_recent_limit_is_configurable_to_five_minutes() {
    let mut scenario = scenario();
    scenario.logpull.min_delay_secs = 300;
    let sim = start_with(scenario).await;
    let t0 = T0.unix_timestamp();
    let (status, _, body) = pull(&format!(
        "{}/zones/{ENTERPRISE}/logs/received?start={}&end={}",
        sim.base_url(),
        t0 - 400,
        t0 - 240
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "bad query: error parsing time: invalid time range: too recent: minimum delay in serving logs is 5m0s\n"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn fields_and_timestamps_parameters_are_validated() {
    let sim = start().await;
    let (start, end) = window();
    for (extra, expected) in [
        (
            "&fields=ClientIP,%20RayID",
            "bad query: error parsing fields: fields must be a comma-separated list without whitespace\n",
        ),
        (
            "&fields=ClientIP,NoSuchField",
            "bad query: error parsing fields: unknown field \"NoSuchField\"\n",
        ),
        (
            "&timestamps=iso",
            "bad query: error parsing timestamps: must be one of unixnano, unix or rfc3339\n",
        ),
        (
            "&count=0",
            "bad query: error parsing count: must be a positive integer\n",
        ),
        (
            "&sample=1.5",
            "bad query: error parsing sample: must be greater than 0.0 and at most 1.0\n",
        ),
    ] {
        let (status, ctype, body) = pull(&received_url(&sim, ENTERPRISE, start, end, extra)).await;
        assert_eq!((status, body.as_str()), (400, expected), "{extra}");
        assert!(ctype.starts_with("text/plain"));
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn repeated_pulls_return_the_truth_multiset_in_different_orders() {
    let sim = start().await;
    let (start, end) = window();
    let fields = "&fields=RayID,ClientIP,EdgeStartTimestamp,ClientRequestURI,EdgeResponseStatus";
    let url = received_url(&sim, ENTERPRISE, start, end, fields);
    let (s1, ctype, first) = pull(&url).await;
    let (s2, _, second) = pull(&url).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(ctype, "application/json");
    assert_ne!(
        first, second,
        "two pulls of a 3000-line window came back in the same order"
    );
    assert_eq!(sorted_lines(&first), sorted_lines(&second));

    let truth = sim
        .truth(&TruthQuery {
            fields: Some(
                [
                    "RayID",
                    "ClientIP",
                    "EdgeStartTimestamp",
                    "ClientRequestURI",
                    "EdgeResponseStatus",
                ]
                .map(String::from)
                .to_vec(),
            ),
            ..TruthQuery::http(ENTERPRISE, start, end)
        })
        .expect("truth");
    assert!(
        truth.len() > 1000,
        "enterprise zone at 50 rps should hold thousands of lines, got {}",
        truth.len()
    );
    assert_eq!(sorted_lines(&first), truth);

    // The HTTP truth route renders the same bytes.
    let http_truth = client()
        .get(format!(
            "{}/__sim/truth?zone={ENTERPRISE}&dataset=http_requests&start={}&end={}{fields}",
            sim.root_url(),
            start.unix_timestamp(),
            end.unix_timestamp()
        ))
        .send()
        .await
        .expect("truth")
        .text()
        .await
        .expect("body");
    assert_eq!(http_truth, truth.concat());
    sim.shutdown().await;
}

#[tokio::test]
async fn adjacent_windows_partition_the_records() {
    let sim = start().await;
    let (start, end) = window();
    let mid = start + Duration::from_secs(27);
    let whole = sorted_lines(
        &pull(&received_url(&sim, ENTERPRISE, start, end, ""))
            .await
            .2,
    );
    let mut parts = sorted_lines(
        &pull(&received_url(&sim, ENTERPRISE, start, mid, ""))
            .await
            .2,
    );
    parts.extend(sorted_lines(
        &pull(&received_url(&sim, ENTERPRISE, mid, end, "")).await.2,
    ));
    parts.sort();
    assert_eq!(parts, whole);
    // Windows select by receive time, so some requests started before the window did.
    let early = whole
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .filter(|v| {
            v["EdgeStartTimestamp"].as_i64().expect("int") < start.unix_timestamp() * 1_000_000_000
        })
        .count();
    assert!(
        early > 0,
        "expected some EdgeStartTimestamp before the window start"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn default_fields_and_three_timestamp_renderings() {
    let sim = start().await;
    let (start, end) = window();
    let (_, _, body) = pull(&received_url(&sim, ENTERPRISE, start, end, "")).await;
    let first: Value = serde_json::from_str(body.lines().next().expect("a line")).expect("json");
    let mut keys: Vec<&str> = first
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, cf_sim::default_http_request_fields());
    let records: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let ips: Vec<&str> = records
        .iter()
        .map(|v| v["ClientIP"].as_str().expect("ip"))
        .collect();
    assert!(
        ips.iter()
            .any(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok()),
        "IPv4 clients"
    );
    assert!(
        ips.iter()
            .any(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok()),
        "IPv6 clients"
    );
    assert!(records.iter().all(|v| {
        v["RayID"]
            .as_str()
            .is_some_and(|r| r.len() == 16 && r.bytes().all(|b| b.is_ascii_hexdigit()))
    }));
    let statuses = records
        .iter()
        .map(|v| v["EdgeResponseStatus"].as_u64().expect("status"))
        .collect::<std::collections::BTreeSet<_>>();
    assert!(
        statuses.contains(&200) && statuses.contains(&404) && statuses.len() >= 5,
        "{statuses:?}"
    );

    let ts_fields = "&fields=RayID,EdgeStartTimestamp,EdgeEndTimestamp";
    let render = |format: TimestampFormat| TruthQuery {
        fields: Some(
            ["RayID", "EdgeStartTimestamp", "EdgeEndTimestamp"]
                .map(String::from)
                .to_vec(),
        ),
        timestamps: format,
        ..TruthQuery::http(ENTERPRISE, start, end)
    };
    let nanos = sorted_lines(
        &pull(&received_url(&sim, ENTERPRISE, start, end, ts_fields))
            .await
            .2,
    );
    assert_eq!(
        nanos,
        sim.truth(&render(TimestampFormat::Unixnano))
            .expect("truth")
    );
    let unix = pull(&received_url(
        &sim,
        ENTERPRISE,
        start,
        end,
        &format!("{ts_fields}&timestamps=unix"),
    ))
    .await
    .2;
    let rfc = pull(&received_url(
        &sim,
        ENTERPRISE,
        start,
        end,
        &format!("{ts_fields}&timestamps=rfc3339"),
    ))
    .await
    .2;
    let by_ray = |body: &str| {
        body.lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("json"))
            .map(|v| (v["RayID"].as_str().expect("ray").to_owned(), v))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (unix, rfc) = (by_ray(&unix), by_ray(&rfc));
    let mut beyond_f64 = 0;
    for line in &nanos {
        // Parse the integer straight from the text: a float parser would round it.
        let raw = line
            .split("\"EdgeStartTimestamp\":")
            .nth(1)
            .expect("field")
            .split([',', '}'])
            .next()
            .expect("value");
        assert!(
            raw.bytes().all(|b| b.is_ascii_digit()),
            "unixnano must be a bare integer: {raw}"
        );
        let ns: i64 = raw.parse().expect("i64");
        assert!(ns > 1 << 53);
        if (ns as f64) as i64 != ns {
            beyond_f64 += 1;
        }
        let v: Value = serde_json::from_str(line).expect("json");
        let ray = v["RayID"].as_str().expect("ray");
        assert_eq!(
            v["EdgeStartTimestamp"].as_i64(),
            Some(ns),
            "serde_json keeps the exact integer"
        );
        assert_eq!(
            unix[ray]["EdgeStartTimestamp"].as_i64(),
            Some(ns.div_euclid(1_000_000_000))
        );
        let t =
            time::OffsetDateTime::from_unix_timestamp(ns.div_euclid(1_000_000_000)).expect("time");
        assert_eq!(
            rfc[ray]["EdgeStartTimestamp"].as_str(),
            Some(rfc3339(t).as_str())
        );
    }
    assert!(
        beyond_f64 > 0,
        "nanosecond values should not all survive a round trip through f64"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn requested_fields_are_returned_whatever_their_order() {
    let sim = start().await;
    let (start, end) = window();
    let (status, _, body) = pull(&received_url(
        &sim,
        ENTERPRISE,
        start,
        end,
        "&fields=ZoneName,WAFAttackScore,ClientCountry,SecurityActions",
    ))
    .await;
    assert_eq!(status, 200);
    for line in body.lines().take(50) {
        let v: Value = serde_json::from_str(line).expect("json");
        let keys: Vec<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "ClientCountry",
                "SecurityActions",
                "WAFAttackScore",
                "ZoneName"
            ]
        );
        assert_eq!(v["ZoneName"], "enterprise.example.eu");
        assert!(v["SecurityActions"].is_array());
    }
    // Every catalogue field renders valid JSON.
    let all = cf_sim::http_request_fields().join(",");
    let (status, _, body) = pull(&received_url(
        &sim,
        ENTERPRISE,
        start,
        start + Duration::from_secs(5),
        &format!("&fields={all}"),
    ))
    .await;
    assert_eq!(status, 200);
    for line in body.lines() {
        let v: Value = serde_json::from_str(line).expect("every line is JSON");
        assert_eq!(
            v.as_object().expect("object").len(),
            cf_sim::http_request_fields().len()
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn log4shell_rewrite_changes_dollar_brace() {
    let sim = start().await;
    let (start, end) = window();
    let fields = ["ClientRequestUserAgent", "ClientRequestURI", "RayID"]
        .map(String::from)
        .to_vec();
    let plain = sim
        .truth(&TruthQuery {
            fields: Some(fields.clone()),
            ..TruthQuery::http(ENTERPRISE, start, end)
        })
        .expect("truth");
    let probes = plain.iter().filter(|l| l.contains("${")).count();
    assert!(probes > 0, "the window should contain Log4Shell probes");
    let extra = "&fields=ClientRequestUserAgent,ClientRequestURI,RayID&CVE-2021-44228=true";
    let (_, _, body) = pull(&received_url(&sim, ENTERPRISE, start, end, extra)).await;
    assert!(!body.contains("${"));
    assert_eq!(
        body.matches("x{jndi").count(),
        plain
            .iter()
            .map(|l| l.matches("${jndi").count())
            .sum::<usize>()
    );
    let rewritten = sim
        .truth(&TruthQuery {
            fields: Some(fields),
            log4shell_rewrite: true,
            ..TruthQuery::http(ENTERPRISE, start, end)
        })
        .expect("truth");
    assert_eq!(sorted_lines(&body), rewritten);
    sim.shutdown().await;
}

#[tokio::test]
async fn count_and_sample_drop_records() {
    let sim = start().await;
    let (start, end) = window();
    let truth = sim
        .truth(&TruthQuery::http(ENTERPRISE, start, end))
        .expect("truth");
    let (_, _, counted) = pull(&received_url(&sim, ENTERPRISE, start, end, "&count=7")).await;
    let counted = sorted_lines(&counted);
    assert_eq!(counted.len(), 7);
    assert!(counted.iter().all(|l| truth.binary_search(l).is_ok()));
    let (_, _, sampled) = pull(&received_url(&sim, ENTERPRISE, start, end, "&sample=0.1")).await;
    let sampled = sorted_lines(&sampled);
    assert!(
        !sampled.is_empty() && sampled.len() < truth.len() / 4,
        "sample=0.1 kept {} of {}",
        sampled.len(),
        truth.len()
    );
    assert!(sampled.iter().all(|l| truth.binary_search(l).is_ok()));
    sim.shutdown().await;
}

#[tokio::test]
async fn empty_window_is_200_with_empty_body() {
    let mut scenario = scenario();
    let zone = scenario
        .zones
        .iter_mut()
        .find(|z| z.id == ENTERPRISE)
        .expect("zone");
    zone.rate = 0.05;
    let sim = start_with(scenario).await;
    let (start, _) = window();
    let mut empty_seen = false;
    let mut full_seen = false;
    for offset in 0..60 {
        let s = start + Duration::from_secs(offset);
        let e = s + Duration::from_secs(1);
        let truth = sim
            .truth(&TruthQuery::http(ENTERPRISE, s, e))
            .expect("truth");
        let resp = raw_client()
            .get(received_url(&sim, ENTERPRISE, s, e, ""))
            .bearer_auth(FULL)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .expect("req");
        assert_eq!(resp.status(), 200);
        if truth.is_empty() {
            assert!(resp.headers().get("content-encoding").is_none());
            assert_eq!(resp.bytes().await.expect("body").len(), 0);
            empty_seen = true;
        } else {
            full_seen = true;
        }
    }
    assert!(
        empty_seen && full_seen,
        "a 0.05 rps zone has both empty and non-empty seconds"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn gzip_when_asked() {
    let sim = start().await;
    let (start, end) = window();
    let url = received_url(&sim, ENTERPRISE, start, end, "");
    let resp = raw_client()
        .get(&url)
        .bearer_auth(FULL)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("req");
    assert_eq!(
        resp.headers()
            .get("content-encoding")
            .map(|v| v.to_str().expect("ascii")),
        Some("gzip")
    );
    let compressed = resp.bytes().await.expect("body");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .expect("valid gzip");
    assert!(
        compressed.len() < text.len() / 3,
        "gzip should compress NDJSON well"
    );
    let truth = sim
        .truth(&TruthQuery::http(ENTERPRISE, start, end))
        .expect("truth");
    assert_eq!(sorted_lines(&text), truth);
    // Without Accept-Encoding the body is identity-encoded.
    let resp = raw_client()
        .get(&url)
        .bearer_auth(FULL)
        .send()
        .await
        .expect("req");
    assert!(resp.headers().get("content-encoding").is_none());
    assert_eq!(sorted_lines(&resp.text().await.expect("body")), truth);
    sim.shutdown().await;
}

#[tokio::test]
async fn retention_flag_gates_logpull() {
    let sim = start().await;
    let (start, end) = window();
    let flag_path = format!("/zones/{ENTERPRISE}/logs/control/retention/flag");
    let (status, body) = get_json(&sim, FULL, &flag_path).await;
    assert_eq!(
        (status, &body["result"]),
        (200, &serde_json::json!({"flag": true}))
    );
    assert_eq!(body["success"], true);

    let set = |flag: bool| {
        client()
            .post(format!("{}{flag_path}", sim.base_url()))
            .bearer_auth(FULL)
            .json(&serde_json::json!({ "flag": flag }))
            .send()
    };
    let resp = set(false).await.expect("post");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["result"]["flag"],
        false
    );
    let (status, ctype, body) = pull(&received_url(&sim, ENTERPRISE, start, end, "")).await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "Retention is not turned on. Please enable log retention\n"
        )
    );
    assert!(ctype.starts_with("text/plain"));
    // Logs Read is not enough to change the flag.
    let resp = client()
        .post(format!("{}{flag_path}", sim.base_url()))
        .bearer_auth(LOGS_ONLY)
        .json(&serde_json::json!({"flag": true}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 403);
    assert_eq!(set(true).await.expect("post").status(), 200);
    assert_eq!(
        pull(&received_url(&sim, ENTERPRISE, start, end, ""))
            .await
            .0,
        200
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn fields_endpoint_is_a_bare_object() {
    let sim = start().await;
    let (status, body) = get_json(
        &sim,
        FULL,
        &format!("/zones/{ENTERPRISE}/logs/received/fields"),
    )
    .await;
    assert_eq!(status, 200);
    let map = body.as_object().expect("object");
    assert!(
        map.get("success").is_none() && map.get("result").is_none(),
        "no v4 envelope"
    );
    assert_eq!(map.len(), cf_sim::http_request_fields().len());
    assert!(
        map["CacheCacheStatus"]
            .as_str()
            .expect("description")
            .contains("miss")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn rayids_finds_records_and_strips_colo_suffix() {
    let sim = start().await;
    let (start, end) = window();
    let fields = ["RayID", "ClientIP", "EdgeEndTimestamp"]
        .map(String::from)
        .to_vec();
    let truth = sim
        .truth(&TruthQuery {
            fields: Some(fields),
            ..TruthQuery::http(ENTERPRISE, start, end)
        })
        .expect("truth");
    let line = &truth[truth.len() / 2];
    let ray = serde_json::from_str::<Value>(line).expect("json")["RayID"]
        .as_str()
        .expect("ray")
        .to_owned();
    assert_eq!(ray.len(), 16);
    let path =
        format!("/zones/{ENTERPRISE}/logs/rayids/{ray}-FRA?fields=RayID,ClientIP,EdgeEndTimestamp");
    let resp = get(&sim, FULL, &path).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(&resp.text().await.expect("body"), line);
    let resp = get(
        &sim,
        FULL,
        &format!("/zones/{ENTERPRISE}/logs/rayids/00000000000000ff"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("body"), "");
    sim.shutdown().await;
}

/// Legacy fields (ZoneID, WAF*, FirewallMatches*, ...) are UNCONFIRMED in the reference; the simulator keeps to
/// the current field reference and rejects them like any unknown field, so a client that still asks for them
/// finds out in tests rather than in production.
#[tokio::test]
async fn legacy_logpull_fields_are_unknown() {
    let sim = start().await;
    let (start, end) = window();
    for legacy in [
        "ZoneID",
        "SecurityLevel",
        "WAFAction",
        "WAFProfile",
        "WAFRuleID",
        "WAFRuleMessage",
        "EdgeRateLimitAction",
        "EdgeRateLimitID",
        "FirewallMatchesActions",
        "FirewallMatchesRuleIDs",
        "FirewallMatchesSources",
    ] {
        let (status, ctype, body) = pull(&received_url(
            &sim,
            ENTERPRISE,
            start,
            end,
            &format!("&fields=RayID,{legacy}"),
        ))
        .await;
        assert_eq!(status, 400, "{legacy}");
        assert!(ctype.starts_with("text/plain"), "{legacy}: {ctype}");
        assert_eq!(
            body,
            format!("bad query: error parsing fields: unknown field \"{legacy}\"\n")
        );
        assert!(!cf_sim::http_request_fields().contains(&legacy));
    }
    sim.shutdown().await;
}
