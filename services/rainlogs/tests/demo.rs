//! The README's run command: `rainlogs run --demo` with no configuration registers a demo tenant
//! and one zone per plan through the API, archives them, and prints a `rainlogs-verify` command
//! that passes.

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
    every_family_is_on_metrics(telemetry).await;
    demo.stop();
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
