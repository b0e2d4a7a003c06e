//! A customer who has only `openapi/rainlogs.json` and `docs/FORMAT.md`: a Python client generated
//! by openapi-python-client drives the whole product (`rainlogs run` with every service, the
//! simulator as Cloudflare) from registration to a downloaded archive, and checks its inclusion
//! proof and the checkpoint signature with code written from the format document alone
//! (`tools/api-check/flow.py`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use cf_sim::{ClockStart, Plan, Scenario, SimOptions, Simulator};
use rainlogs_testkit::{NatsServer, TestDatabase, free_port};

/// The example scenario's token that may read every zone's logs and analytics.
const FULL_TOKEN: &str = "cfut_full_access_token_0000000000000000";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A tool the pinned `.venv` provides (`tools/dev-env up` installs it).
fn venv_tool(name: &str) -> PathBuf {
    let path = repo_root().join(".venv/bin").join(name);
    assert!(
        path.exists(),
        "{} missing: run `tools/dev-env up` (it installs tools/api-check/requirements.txt)",
        path.display()
    );
    path
}

/// `PATH` with the venv first (the generator formats its output with the venv's ruff).
fn venv_path() -> String {
    format!(
        "{}:{}",
        repo_root().join(".venv/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_python_client_registers_archives_downloads_and_verifies_with_the_format_doc() {
    let started = Instant::now();
    let root = repo_root();
    let work = tempfile::tempdir().expect("dir");

    // The client, generated from the committed document exactly as a customer would.
    let generated = tokio::process::Command::new(venv_tool("openapi-python-client"))
        .args(["generate", "--meta", "none", "--path"])
        .arg(root.join("openapi/rainlogs.json"))
        .arg("--config")
        .arg(root.join("tools/api-check/generator.yaml"))
        .arg("--output-path")
        .arg(work.path().join("rainlogs_client"))
        .env("PATH", venv_path())
        .output()
        .await
        .expect("run openapi-python-client");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&generated.stdout),
        String::from_utf8_lossy(&generated.stderr)
    );
    assert!(generated.status.success(), "generation failed:\n{report}");
    assert!(
        !report.contains("Warning") && !report.contains("WARNING"),
        "every schema and operation of the document must generate:\n{report}"
    );

    // Cloudflare: the simulator on the real clock. The product runs without --demo, so no
    // tenant owns the simulator's zones before the client adds one.
    let scenario = Scenario::example();
    let zone = scenario
        .zones
        .iter()
        .find(|z| matches!(z.plan, Plan::Enterprise) && z.cmb_region.is_none())
        .map(|z| z.id.clone())
        .expect("an Enterprise zone in the example scenario");
    let sim = Simulator::start(
        scenario,
        SimOptions {
            clock: Some(ClockStart::Real),
            ..SimOptions::default()
        },
    )
    .await
    .expect("cf-sim");

    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let api = format!("127.0.0.1:{}", free_port());
    let telemetry = format!("127.0.0.1:{}", free_port());
    let log_path = work.path().join("rainlogs.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut rainlogs = tokio::process::Command::new(env!("CARGO_BIN_EXE_rainlogs"))
        .args(["run", "--dev"])
        .current_dir(work.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RAINLOGS__NATS__URL", &nats.url)
        .env("RAINLOGS__DATABASE__URL", &db.url)
        .env("RAINLOGS__STORE__URL", work.path().join("archive"))
        .env("RAINLOGS__SERVICE__DATA_DIR", work.path().join("data"))
        .env("RAINLOGS__SERVICE__SHUTDOWN_TIMEOUT", "20s")
        .env("RAINLOGS__API__LISTEN", &api)
        .env("RAINLOGS__TELEMETRY__LISTEN", &telemetry)
        .env("RAINLOGS__CLOUDFLARE__BASE_URL", sim.base_url())
        // Logpull serves windows that ended 5 minutes ago: starting 12 minutes back gives six
        // or seven windows to collect at once, so a log of several entries is sealed quickly.
        .env("RAINLOGS__COLLECTOR__BACKFILL", "12m")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rainlogs");

    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = http.get(format!("http://{telemetry}/ready")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        if let Ok(Some(status)) = rainlogs.try_wait() {
            panic!("rainlogs exited with {status}:\n{}", tail(&log_path));
        }
        assert!(
            Instant::now() < deadline,
            "rainlogs never became ready:\n{}",
            tail(&log_path)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let flow = tokio::time::timeout(
        Duration::from_secs(420),
        tokio::process::Command::new(venv_tool("python"))
            .arg(root.join("tools/api-check/flow.py"))
            .args(["--base-url", &format!("http://{api}")])
            .args(["--zone-id", &zone, "--cf-token", FULL_TOKEN])
            .args(["--timeout", "300"])
            .env("PYTHONPATH", work.path())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("flow.py finished within 7 minutes")
    .expect("run flow.py");
    let stdout = String::from_utf8_lossy(&flow.stdout);
    let stderr = String::from_utf8_lossy(&flow.stderr);
    assert!(
        flow.status.success(),
        "flow.py failed ({}):\n{stdout}\n{stderr}\nrainlogs log:\n{}",
        flow.status,
        tail(&log_path)
    );
    println!("{stdout}");

    // The summary names each step the script checked.
    let lines: Vec<&str> = stdout.lines().collect();
    let line = |prefix: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .copied()
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{stdout}"))
    };
    assert!(line("customer: ").contains(" registered, admin key "));
    assert!(
        line("zone: ").starts_with(&format!(
            "zone: {zone} added (enterprise.example.eu, enterprise, logpull)"
        )),
        "{stdout}"
    );
    assert!(
        line("job: ").ends_with(" records, http_requests"),
        "{stdout}"
    );
    assert!(line("download: ").ends_with("digests match the job"));
    assert!(line("entry: ").contains(" decode as an archive entry of rainlogs/"));
    assert!(
        line("checkpoint: ").ends_with(&format!(
            "signed by {}: signature ok",
            rainlogs_sealer::DEV_KEY_NAME
        )),
        "{stdout}"
    );
    // `proof: leaf <i> in tree <size>, <n> hashes: ok`, in a tree big enough to need hashes.
    let words: Vec<&str> = line("proof: ")
        .split([' ', ','])
        .filter(|w| !w.is_empty())
        .collect();
    let number_at = |word: &str, offset: isize| -> u64 {
        let at = words.iter().position(|w| *w == word).expect(word);
        words[at.checked_add_signed(offset).expect("in range")]
            .parse()
            .expect("a number")
    };
    assert!(number_at("tree", 1) >= 5, "{stdout}");
    assert!(number_at("hashes:", -1) >= 1, "{stdout}");
    assert_eq!(words.last(), Some(&"ok"), "{stdout}");
    assert!(line("log: ").contains(" entries chain from genesis"));
    assert!(line("negative controls: ").ends_with("is rejected"));
    assert_eq!(lines.last().copied(), Some("flow: ok"), "{stdout}");

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &rainlogs.id().expect("pid").to_string()])
        .status();
    let status = tokio::time::timeout(Duration::from_secs(30), rainlogs.wait())
        .await
        .expect("rainlogs stops on SIGTERM")
        .expect("wait");
    assert!(
        status.success(),
        "clean exit: {status}\n{}",
        tail(&log_path)
    );
    drop(sim);
    println!("client flow took {:?}", started.elapsed());
}
