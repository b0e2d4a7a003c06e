//! The README's run command: `rainlogs run --demo` with no configuration registers a demo tenant
//! and one zone per plan through the API, archives them, and prints a `rainlogs-verify` command
//! that passes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rainlogs_store::{Backend, FsStore, Store};
use rainlogs_testkit::{NatsServer, TestDatabase, flag_value, free_port};

#[tokio::test]
async fn the_demo_registers_zones_through_the_api_and_its_verify_command_passes() {
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("dir");
    let api = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_rainlogs"))
        .args(["run", "--demo"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RAINLOGS__NATS__URL", &nats.url)
        .env("RAINLOGS__DATABASE__URL", &db.url)
        .env("RAINLOGS__API__LISTEN", &api)
        .env(
            "RAINLOGS__TELEMETRY__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
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
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "clean exit: {status}");
}
