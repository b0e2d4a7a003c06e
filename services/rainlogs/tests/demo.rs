//! The README's run command: `rainlogs run --demo` with no configuration registers a demo tenant
//! and one zone per plan through the API, archives them, and prints a `rainlogs-verify` command
//! that passes.

#![allow(clippy::unwrap_used)]
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use poem::listener::Listener as _;
use rainlogs_store::{Backend, FsStore, Store};
use rainlogs_testkit::{NatsServer, TestDatabase, flag_value, free_port};

struct Demo {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    api: String,
    telemetry: String,
    dir: tempfile::TempDir,
}

/// `rainlogs run --demo` with no configuration beyond where NATS, PostgreSQL and its ports are.
fn spawn_demo(nats: &NatsServer, db: &TestDatabase, env: &[(&str, &str)]) -> Demo {
    let dir = tempfile::tempdir().expect("dir");
    let api = format!("127.0.0.1:{}", free_port());
    let telemetry = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_rainlogs"))
        .args(["run", "--demo"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RAINLOGS__NATS__URL", &nats.url)
        .env("RAINLOGS__DATABASE__URL", &db.url)
        .env("RAINLOGS__API__LISTEN", &api)
        .env("RAINLOGS__TELEMETRY__LISTEN", &telemetry)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rainlogs");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    Demo {
        child,
        lines,
        api,
        telemetry,
        dir,
    }
}

/// A test that fails leaves no demo running.
impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Demo {
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "clean exit: {status}");
    }
}

#[tokio::test]
async fn the_demo_registers_zones_through_the_api_and_its_verify_command_passes() {
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let demo = spawn_demo(&nats, &db, &[]);
    let (lines, api, telemetry, dir) = (&demo.lines, &demo.api, &demo.telemetry, &demo.dir);
    let mut printed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let command = loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no verify command printed; got {printed:#?}"));
        if line.contains("rainlogs-verify --") {
            break line;
        }
        printed.push(line);
    };
    let added = printed.iter().filter(|l| l.contains(") added: ")).count();
    assert_eq!(
        added, 5,
        "one zone per plan added through the API: {printed:#?}"
    );
    assert!(
        printed
            .iter()
            .any(|l| l.contains("sovereign.example.eu") && l.contains("added: logpush_http")),
        "the EU-only zone is collected with Logpush: {printed:#?}"
    );
    assert!(
        printed.iter().any(|l| l.contains(&format!("http://{api}"))),
        "{printed:#?}"
    );
    let key = printed
        .iter()
        .find_map(|l| l.trim().strip_prefix("API key:"))
        .expect("an API key is printed")
        .trim()
        .to_owned();
    let zones = reqwest::Client::new()
        .get(format!("http://{api}/api/v1/zones"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("list zones");
    assert_eq!(zones.status(), 200, "the printed key works");

    let store_dir = flag_value(&command, "--store");
    assert!(
        store_dir.starts_with(dir.path().to_str().expect("utf-8")),
        "{command}"
    );
    let store = Store::Single(Backend::Fs(
        FsStore::open(std::path::Path::new(&store_dir))
            .await
            .expect("store"),
    ));
    let trusted = rainlogs_verify::parse_trusted_key(&flag_value(&command, "--trusted-key"))
        .expect("trusted key");
    let options = rainlogs_verify::VerifyOptions::new(
        &flag_value(&command, "--tenant"),
        &flag_value(&command, "--zone"),
        trusted,
    )
    .expect("options");
    // The first windows are sealed and checkpointed within a minute or two.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let report = rainlogs_verify::verify(&store, &options).await;
        if report.exit_code() == 0 && report.has(rainlogs_verify::Reason::ArchivesVerified) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the printed command does not pass: {}",
            report.to_human()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    search_from_the_bucket_finds_what_a_scan_finds(&command, &store, &options, api, &key).await;
    every_family_is_on_metrics(telemetry).await;
    demo.stop();
}

/// `rainlogs search` from the bucket alone (the printed command's store, zone and pinned key)
/// returns exactly the records a scan of every archived object finds, in log order, each with its
/// provenance; it reads frames through the sealed indexes.
async fn search_from_the_bucket_finds_what_a_scan_finds(
    command: &str,
    store: &Store,
    options: &rainlogs_verify::VerifyOptions,
    api: &str,
    api_key: &str,
) {
    use rainlogs_search::{Key, Query};
    let entries = rainlogs_verify::verified_entries(store, options)
        .await
        .expect("the log verifies");
    let archives = rainlogs_search::Archived::from_entries(&entries);
    assert!(
        archives.iter().any(|a| a.index.is_some()),
        "the archiver indexes what it archives"
    );
    // Every archived record, in log order.
    let mut records: Vec<String> = Vec::new();
    for archive in &archives {
        let bytes = store
            .get_bytes(&rainlogs_store::ObjectKey::new(&archive.key).expect("key"))
            .await
            .expect("archive");
        let mut content = Vec::new();
        std::io::Read::read_to_end(
            &mut rainlogs_integrity::ArchiveReader::new(&bytes[..]).expect("archive"),
            &mut content,
        )
        .expect("zstd");
        records.extend(
            String::from_utf8(content)
                .expect("utf-8")
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    let sample = records
        .iter()
        .find(|r| {
            r.contains("\"RayID\"")
                && r.contains("\"ClientIP\":\"")
                && !r.contains("\"ClientIP\":\"2")
        })
        .or_else(|| records.iter().find(|r| r.contains("\"RayID\"")))
        .expect("an archived request");
    let keys = rainlogs_index::record_keys(sample.as_bytes());
    let ray = keys.ray.expect("a Ray ID").to_string();
    let mut searches = vec![(
        vec!["--ray-id".to_owned(), ray.clone()],
        Query::new(Key::Ray(keys.ray.unwrap()), None).unwrap(),
    )];
    if let (Some(ip), Some(time)) = (keys.client_ip, keys.time_ns) {
        let block = match ip {
            std::net::IpAddr::V4(v4) => {
                let o = v4.octets();
                format!("{}.{}.{}.0/24", o[0], o[1], o[2])
            }
            std::net::IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
            }
        };
        // The demo keeps archiving: a range ending before the newest sealed windows (less two
        // minutes) gets no records the scan above has not seen.
        let sealed_until = archives.iter().map(|a| a.window.1).max().unwrap_or(0) - 120_000_000_000;
        let (start, end) = (
            time - 600_000_000_000,
            (time + 600_000_000_000).min(sealed_until).max(time + 1),
        );
        let rfc = |ns: u64| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        searches.push((
            vec![
                "--cidr".into(),
                block.clone(),
                "--start".into(),
                rfc(start),
                "--end".into(),
                rfc(end),
            ],
            Query::new(
                Key::Client(rainlogs_index::IpBlock::parse(&block).unwrap()),
                Some((start, end)),
            )
            .unwrap(),
        ));
        searches.push((
            vec![
                "--client-ip".into(),
                ip.to_string(),
                "--start".into(),
                rfc(start),
                "--end".into(),
                rfc(end),
            ],
            Query::new(
                Key::Client(rainlogs_index::IpBlock::parse(&ip.to_string()).unwrap()),
                Some((start, end)),
            )
            .unwrap(),
        ));
    }
    for (flags, query) in searches {
        let expected: Vec<&String> = records
            .iter()
            .filter(|r| query.matches(r.as_bytes()))
            .collect();
        let mut args: Vec<String> = vec!["search".into()];
        for flag in ["--store", "--tenant", "--zone", "--trusted-key"] {
            args.extend([flag.to_owned(), flag_value(command, flag)]);
        }
        args.extend(flags.iter().cloned());
        args.extend(["--limit".to_owned(), "100000000".to_owned()]);
        let output = Command::new(env!("CARGO_BIN_EXE_rainlogs"))
            .args(&args)
            .output()
            .expect("rainlogs search");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {stderr}");
        let hits: Vec<serde_json::Value> = String::from_utf8(output.stdout)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per hit"))
            .collect();
        let got: Vec<serde_json::Value> = hits.iter().map(|h| h["record"].clone()).collect();
        let want: Vec<serde_json::Value> = expected
            .iter()
            .map(|r| serde_json::from_str(r).expect("json"))
            .collect();
        assert_eq!(got.len(), want.len(), "{flags:?}: {stderr}");
        assert!(got == want, "{flags:?}: the records differ from the scan's");
        assert!(!hits.is_empty(), "{flags:?} finds the sampled record");
        let provenance = &hits[0]["provenance"];
        assert_eq!(
            provenance["frame_content_sha256"].as_str().map(str::len),
            Some(64),
            "{provenance}"
        );
        // Every archive of the demo is indexed: frames are read, no archive whole.
        assert!(stderr.contains(" 0 archives read whole"), "{stderr}");

        // The API answers the same, streamed in pages with a summary line last; the pages,
        // each continuing at the previous one's cursor, give every record once.
        let mut params: Vec<(String, String)> = vec![
            ("zone_id".into(), flag_value(command, "--zone")),
            ("limit".into(), "500".into()),
        ];
        for pair in flags.chunks(2) {
            params.push((
                pair[0].trim_start_matches("--").replace('-', "_"),
                pair[1].clone(),
            ));
        }
        let mut records: Vec<serde_json::Value> = Vec::new();
        let mut first_hit = None;
        let mut cursor: Option<String> = None;
        loop {
            let mut query = params.clone();
            query.extend(cursor.iter().map(|c| ("cursor".to_owned(), c.clone())));
            let answer = api_search(api, api_key, &query).await;
            let status = answer.status();
            let content_type = answer.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            let body = answer.text().await.unwrap();
            assert_eq!(status, 200, "{query:?}: {body}");
            assert_eq!(content_type, "application/x-ndjson");
            let lines: Vec<serde_json::Value> = body
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let (summary, hits) = lines.split_last().expect("a summary line");
            assert_eq!(summary["summary"]["archives_read_whole"], 0, "{summary}");
            assert!(hits.len() <= 500);
            first_hit = first_hit.or_else(|| hits.first().cloned());
            records.extend(hits.iter().map(|h| h["record"].clone()));
            match summary["summary"]["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(records.len(), want.len(), "API {flags:?}");
        assert!(
            records == want,
            "API {flags:?}: the records differ from the scan's"
        );
        let first_hit = first_hit.expect("a hit");
        let proof = first_hit["provenance"]["proof"].as_str().unwrap();
        let job = reqwest::Client::new()
            .get(format!("http://{api}{proof}"))
            .bearer_auth(api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(job.status(), 200, "the provenance links to the job's proof");
    }
    // A request the document forbids (a Ray ID of the wrong shape, a /0) is a 400 naming the
    // parameter; one it allows that cannot be run is a 422 that says why; another tenant's
    // (or no) zone is a 404.
    let zone = flag_value(command, "--zone");
    for (params, status, said) in [
        (vec![("ray_id", "8d2f61c1fa0b1c3")], 400, "ray_id"),
        (vec![("cidr", "203.0.113.0/0")], 400, "cidr"),
        (vec![("client_ip", "203.0.113.999")], 422, "client_ip"),
        (
            vec![("client_ip", "203.0.113.9")],
            422,
            "needs start and end",
        ),
        (
            vec![("cidr", "2001:db8::/12")],
            422,
            "broader than a search may ask for",
        ),
        (
            vec![("cidr", "203.0.113.7/24")],
            422,
            "starts at 203.0.113.0",
        ),
        (
            vec![("ray_id", "8d2f61c1fa0b1c3e"), ("cidr", "203.0.113.0/24")],
            422,
            "exactly one",
        ),
        (
            vec![
                ("cidr", "203.0.113.0/24"),
                ("start", "2026-01-01T00:00:00Z"),
                ("end", "2026-03-01T00:00:00Z"),
            ],
            422,
            "at most 31 days",
        ),
    ] {
        let mut query: Vec<(String, String)> = vec![("zone_id".into(), zone.clone())];
        query.extend(
            params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let answer = api_search(api, api_key, &query).await;
        assert_eq!(answer.status(), status, "{params:?}");
        let body = answer.text().await.unwrap();
        assert!(body.contains(said), "{params:?}: {body}");
    }
    let other = vec![
        ("zone_id".to_owned(), "0".repeat(32)),
        ("ray_id".to_owned(), "8d2f61c1fa0b1c3e".to_owned()),
    ];
    assert_eq!(api_search(api, api_key, &other).await.status(), 404);
    // Bad input is refused with what is wrong, and nothing is searched.
    let output = Command::new(env!("CARGO_BIN_EXE_rainlogs"))
        .args([
            "search",
            "--store",
            &flag_value(command, "--store"),
            "--tenant",
            "t",
            "--zone",
            "z",
            "--trusted-key",
            &flag_value(command, "--trusted-key"),
            "--cidr",
            "203.0.113.0/0",
        ])
        .output()
        .expect("rainlogs search");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("broader than a search may ask for"));
}

async fn api_search(api: &str, key: &str, query: &[(String, String)]) -> reqwest::Response {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let query: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    reqwest::Client::new()
        .get(format!("http://{api}/api/v1/search?{}", query.join("&")))
        .bearer_auth(key)
        .send()
        .await
        .expect("search request")
}

/// Families that appear only once what they count has happened (a failure, a repair, a second
/// provider, a backfill longer than the demo's): a healthy single-provider demo never shows them.
const ONLY_WHEN_IT_HAPPENS: &[&str] = &[
    "rainlogs_collector_backfill_windows_remaining",
    "rainlogs_collector_backfill_windows_done_total",
    "rainlogs_collector_attempts_abandoned_total",
    "rainlogs_archiver_close_failures_total",
    "rainlogs_projection_poisoned_total",
    "rainlogs_store_repaired_total",
    "rainlogs_store_repair_incidents_total",
    "rainlogs_store_repair_backlog",
    // Counted by the first completeness check, five minutes after a Logpush window closes.
    "rainlogs_collector_logpush_short_windows_total",
    "rainlogs_collector_logpush_cloudflare_dropped_records_total",
    // Counted only when a short window of an Enterprise zone is repaired from Logpull.
    "rainlogs_collector_logpush_repaired_records_total",
];

/// Every family of every service descriptor is on `/metrics` of a process that collected,
/// archived and sealed, with the labels an operator filters on.
async fn every_family_is_on_metrics(telemetry: &str) {
    let metrics = || async {
        reqwest::get(format!("http://{telemetry}/metrics"))
            .await
            .expect("/metrics")
            .text()
            .await
            .expect("/metrics body")
    };
    let mut text = String::new();
    let missing = |text: &str| -> Vec<String> {
        rainlogs::metric_families()
            .into_iter()
            .flat_map(|(_, families)| families.iter())
            .map(|family| family.exposed_name())
            .filter(|name| !ONLY_WHEN_IT_HAPPENS.contains(&name.as_str()))
            .filter(|name| !text.contains(&format!("# TYPE {name} ")))
            .collect()
    };
    // Gauges measured on a timer (lag, consumers, checkpoint age) show within seconds; the
    // Logpush zone's first batch comes about 30 s after its job is made.
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        text = metrics().await;
        if missing(&text).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        missing(&text),
        Vec::<String>::new(),
        "families missing from:\n{text}"
    );
    let has = |needles: &[&str]| {
        text.lines()
            .any(|line| needles.iter().all(|needle| line.contains(needle)))
    };
    for needles in [
        &[
            "rainlogs_api_requests_total{",
            "route=\"listZones\"",
            "status=\"200\"",
        ][..],
        &[
            "rainlogs_api_request_duration_seconds_bucket{",
            "route=\"listZones\"",
        ],
        &["rainlogs_archiver_windows_total{", "outcome=\"stored\""],
        &["rainlogs_sealer_entries_total{", "kind=\"archive\""],
        &["rainlogs_sealer_checkpoints_total{", "outcome=\"signed\""],
        &[
            "rainlogs_consumer_pending_messages{",
            "consumer=\"archiver\"",
        ],
        &["rainlogs_consumer_pending_messages{", "consumer=\"sealer\""],
        &["rainlogs_projection_lag_events{", "projection=\"control\""],
        &[
            "rainlogs_projection_lag_seconds{",
            "projection=\"legal-holds\"",
        ],
    ] {
        assert!(has(needles), "no series with {needles:?} in:\n{text}");
    }
}

/// Spans as an OTLP/HTTP collector receives them: (trace id, span id, parent span id, name).
type Spans = Arc<Mutex<Vec<(String, String, String, String)>>>;

/// A minimal OTLP/HTTP (JSON) collector on a free port.
async fn otlp_receiver() -> (String, Spans) {
    let spans: Spans = Arc::default();
    let received = spans.clone();
    let port = free_port();
    let app = poem::Route::new().at(
        "/v1/traces",
        poem::post(poem::endpoint::make(move |mut req: poem::Request| {
            let received = received.clone();
            async move {
                let body: serde_json::Value = req.take_body().into_json().await.map_err(|e| {
                    poem::Error::from_string(e.to_string(), poem::http::StatusCode::BAD_REQUEST)
                })?;
                let all = body["resourceSpans"].as_array().into_iter().flatten();
                let scopes = all.flat_map(|r| r["scopeSpans"].as_array().into_iter().flatten());
                for span in scopes.flat_map(|s| s["spans"].as_array().into_iter().flatten()) {
                    let field = |name: &str| span[name].as_str().unwrap_or_default().to_owned();
                    received.lock().expect("spans").push((
                        field("traceId"),
                        field("spanId"),
                        field("parentSpanId"),
                        field("name"),
                    ));
                }
                Ok::<_, poem::Error>(poem::web::Json(serde_json::json!({})))
            }
        })),
    );
    // Bound before the demo starts, so its first export finds the port open.
    let acceptor = poem::listener::TcpListener::bind(format!("127.0.0.1:{port}"))
        .into_acceptor()
        .await
        .expect("bind the OTLP receiver");
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    (format!("http://127.0.0.1:{port}"), spans)
}

/// A window's trace crosses three services: the archiver's close is a child of the collector's
/// window span, and the sealer's seal a child of the archiver's close, through the headers of
/// the messages between them.
#[tokio::test]
async fn with_an_otlp_endpoint_a_window_is_one_trace_from_collector_to_sealer() {
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let (endpoint, spans) = otlp_receiver().await;
    let demo = spawn_demo(
        &nats,
        &db,
        &[("RAINLOGS__TELEMETRY__OTLP_ENDPOINT", endpoint.as_str())],
    );
    let linked = |spans: &[(String, String, String, String)]| {
        let named = |name: &'static str| spans.iter().filter(move |s| s.3 == name);
        named("sealer.seal").any(|seal| {
            named("archiver.close").any(|close| {
                seal.0 == close.0
                    && seal.2 == close.1
                    && named("collector.window")
                        .any(|window| close.0 == window.0 && close.2 == window.1)
            })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen = spans.lock().expect("spans").clone();
        if linked(&seen) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no trace links collector.window → archiver.close → sealer.seal; spans: {:?}",
            seen.iter()
                .map(|s| &s.3)
                .collect::<std::collections::BTreeSet<_>>()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    demo.stop();
}
