//! Real services for tests, isolated per test.
//!
//! Each test gets its own `nats-server` process (the pinned 2.15.1 from `tools/dev-env`) on a free
//! loopback port with its own store directory, and its own PostgreSQL database, so tests run in
//! parallel without sharing streams or tables. Nothing here is a mock.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod s3;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `tools/dev-env up` and `source var/dev-env.sh` (or use `make test`)")
    })
}

/// Pinned NATS server binary installed by `tools/dev-env`.
pub fn nats_server_binary() -> PathBuf {
    let path = repo_root().join(".venv/bin/nats-server");
    assert!(
        path.exists(),
        "{} missing: run `tools/dev-env up`",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A private nats-server process; killed on drop.
pub struct NatsServer {
    child: Child,
    pub url: String,
    pub port: u16,
    store: tempfile::TempDir,
    binary: PathBuf,
    jetstream: bool,
}

impl NatsServer {
    /// NATS 2.15.1 with JetStream.
    pub fn start() -> Self {
        Self::start_with(&nats_server_binary(), true)
    }

    /// Any binary (e.g. Debian's 2.9 at /usr/sbin/nats-server), with or without JetStream.
    pub fn start_with(binary: &Path, jetstream: bool) -> Self {
        let store = tempfile::tempdir().expect("nats store dir");
        let port = free_port();
        let child = Self::spawn(binary, port, jetstream.then_some(store.path()));
        Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store,
            binary: binary.to_owned(),
            jetstream,
        }
    }

    fn spawn(binary: &Path, port: u16, store: Option<&Path>) -> Child {
        let mut cmd = Command::new(binary);
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
        if let Some(store) = store {
            cmd.args(["-js", "-sd"]).arg(store);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        wait_for_port(port, Duration::from_secs(10));
        child
    }

    /// SIGKILL; [`NatsServer::restart`] brings the same server (port and store) back.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn restart(&mut self) {
        self.child = Self::spawn(
            &self.binary,
            self.port,
            self.jetstream.then_some(self.store.path()),
        );
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JetStream cluster of private nats-server processes on loopback (names `n1`, `n2`, …), each
/// with its own store; nodes can be killed and restarted with their data. Killed on drop.
pub struct NatsCluster {
    nodes: Vec<ClusterNode>,
    routes: String,
}

struct ClusterNode {
    name: String,
    port: u16,
    cluster_port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsCluster {
    /// `size` nodes; returns once every node listens (the cluster may still be forming: the
    /// first JetStream request waits for it).
    pub fn start(size: usize) -> Self {
        let mut nodes: Vec<ClusterNode> = (1..=size)
            .map(|n| ClusterNode {
                name: format!("n{n}"),
                port: free_port(),
                cluster_port: free_port(),
                store: tempfile::tempdir().expect("nats store dir"),
                child: None,
            })
            .collect();
        let routes = nodes
            .iter()
            .map(|n| format!("nats-route://127.0.0.1:{}", n.cluster_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Self {
            nodes: Vec::new(),
            routes,
        };
        for node in &mut nodes {
            node.child = Some(cluster.spawn(node));
        }
        for node in &nodes {
            wait_for_port(node.port, Duration::from_secs(10));
        }
        cluster.nodes = nodes;
        cluster
    }

    fn spawn(&self, node: &ClusterNode) -> Child {
        Command::new(nats_server_binary())
            .args(["-a", "127.0.0.1", "-p", &node.port.to_string()])
            .args(["-n", &node.name, "--cluster_name", "rainlogs-test"])
            .args([
                "--cluster",
                &format!("nats://127.0.0.1:{}", node.cluster_port),
            ])
            .args(["--routes", &self.routes])
            .args(["-js", "-sd"])
            .arg(node.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server")
    }

    /// Every node's client URL (seed servers for `connect_any`).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect()
    }

    /// SIGKILLs the node named `name` (`n1`, …); its store stays for [`NatsCluster::restart`].
    pub fn kill(&mut self, name: &str) {
        let node = self.node(name);
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed node again on its ports and store.
    pub fn restart(&mut self, name: &str) {
        let index = self
            .nodes
            .iter()
            .position(|n| n.name == name)
            .expect("node name");
        let child = self.spawn(&self.nodes[index]);
        self.nodes[index].child = Some(child);
        wait_for_port(self.nodes[index].port, Duration::from_secs(10));
    }

    fn node(&mut self, name: &str) -> &mut ClusterNode {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .expect("node name")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A private SeaweedFS (the pinned 4.48 from `tools/dev-env`, `weed mini`: S3 with Object Lock,
/// checksums and If-None-Match) with its own credentials, for tests that need a second,
/// separate storage provider. It can be killed and restarted with its data. Killed on drop.
pub struct SeaweedServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Master port; SeaweedFS also listens on each port + 10000 (gRPC).
    base: u16,
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

impl SeaweedServer {
    pub fn start(access_key: &str, secret_key: &str) -> Self {
        let dir = tempfile::tempdir().expect("seaweed dir");
        let identities = format!(
            r#"{{"identities":[{{"name":"rainlogs","credentials":[{{"accessKey":"{access_key}","secretKey":"{secret_key}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
        );
        std::fs::write(dir.path().join("identities.json"), identities).expect("identities");
        let base = free_port_block(8);
        let mut server = Self {
            child: None,
            dir,
            base,
            endpoint: format!("http://127.0.0.1:{}", base + 5),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
        };
        server.restart();
        server
    }

    /// SIGKILL; [`SeaweedServer::restart`] brings it back with its data.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) and waits until S3 answers.
    pub fn restart(&mut self) {
        let binary = repo_root().join(".venv/bin/weed");
        assert!(
            binary.exists(),
            "{} missing: run `tools/dev-env up`",
            binary.display()
        );
        let port = |n: u16| (self.base + n).to_string();
        let child = Command::new(binary)
            .arg("mini")
            .arg(format!("-dir={}", self.dir.path().join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false"])
            .arg(format!("-master.port={}", port(0)))
            .arg(format!("-volume.port={}", port(1)))
            .arg(format!("-filer.port={}", port(2)))
            .arg(format!("-webdav.port={}", port(3)))
            .arg(format!("-admin.port={}", port(4)))
            .arg(format!("-s3.port={}", port(5)))
            .arg(format!("-s3.port.iceberg={}", port(6)))
            .arg(format!("-s3.port.lance={}", port(7)))
            .arg(format!(
                "-s3.config={}",
                self.dir.path().join("identities.json").display()
            ))
            .args(["-master.volumeSizeLimitMB=64", "-volume.max=300"])
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("weed.log"))
                    .map_or_else(|_| Stdio::null(), Stdio::from),
            )
            .spawn()
            .expect("spawn weed");
        self.child = Some(child);
        if !wait_for_http(self.base + 5, Duration::from_secs(60)) {
            let log = std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "SeaweedFS on {} did not answer; last log lines:\n{}",
                self.endpoint,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

impl Drop for SeaweedServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `count` consecutive free loopback ports whose gRPC twins (+10000) are free too.
fn free_port_block(count: u16) -> u16 {
    let free = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
    for _ in 0..200 {
        let base = 20_000 + free_port() % 30_000;
        if (0..count).all(|n| free(base + n) && free(base + n + 10_000)) {
            return base;
        }
    }
    panic!("no block of {count} free ports");
}

/// Waits until an HTTP server answers on the port with anything but a 5xx (S3 refuses anonymous
/// requests with a 4xx once it serves; a SeaweedFS whose filer is still starting answers 500).
fn wait_for_http(port: u16, timeout: Duration) -> bool {
    use std::io::{Read, Write};
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut answer = [0_u8; 12];
            if stream.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok()
                && stream.read_exact(&mut answer).is_ok()
                && answer.starts_with(b"HTTP/1.")
                && answer[9] != b'5'
            {
                return true;
            }
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn wait_for_port(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh database on the dev PostgreSQL server, dropped on drop.
pub struct TestDatabase {
    pub url: String,
    name: String,
    server_url: String,
}

impl TestDatabase {
    /// A fresh name on the dev server, not created (for tests that create it themselves, e.g.
    /// `rainlogs migrate --create-database`); whatever exists under it is dropped on drop.
    pub fn uncreated() -> Self {
        let server_url = required_env("RAINLOGS_TEST_DATABASE_URL");
        let name = format!("rl_test_{}", uuid::Uuid::new_v4().simple());
        Self {
            url: format!("{server_url}/{name}"),
            name,
            server_url,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn create() -> Self {
        use sqlx::Connection;
        let server_url = required_env("RAINLOGS_TEST_DATABASE_URL");
        let name = format!("rl_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&format!("{server_url}/postgres"))
            .await
            .expect("connect to postgres");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        Self {
            url: format!("{server_url}/{name}"),
            name,
            server_url,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop synchronously through psql-free SQL on a fresh runtime thread: Drop cannot be async.
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) =
                    sqlx::PgConnection::connect(&format!("{server_url}/postgres")).await
                {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

/// Path of a workspace binary whose package has its name (`cf-sim`, `rainlogs-verify`);
/// `CARGO_BIN_EXE_*` only works inside the binary's own package. A workspace test run has built
/// it; a run of one package's tests builds it here when it is missing.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", name, "--bin", name])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.."))
            .status()
            .expect("cargo build");
        assert!(status.success(), "cargo build -p {name}");
        assert!(path.exists(), "{} missing after the build", path.display());
    }
    path
}

/// Polls `check` every 200 ms until it holds; `what` names it in the panic after `timeout`.
pub async fn wait_for<F>(what: &str, timeout: Duration, mut check: F)
where
    F: AsyncFnMut() -> bool,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The value after `flag` in a printed command line (quotes removed).
pub fn flag_value(command: &str, flag: &str) -> String {
    command
        .split_whitespace()
        .skip_while(|word| *word != flag)
        .nth(1)
        .unwrap_or_else(|| panic!("{flag} missing in {command}"))
        .trim_matches('\'')
        .to_owned()
}
