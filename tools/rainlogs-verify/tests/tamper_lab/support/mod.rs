//! Shared by the tamper lab: the reference zone builder, attacker tools, and ways to run the verifier (as a
//! library and as the binary an auditor runs).
#![allow(dead_code)]

pub mod fixture;
pub mod tamper;

use std::path::{Path, PathBuf};
use std::process::Command;

use rainlogs_store::{Backend, BucketOptions, FsStore, S3Config, S3Credentials, S3Store, Store};
use rainlogs_verify::{Reason, Report, VerifyOptions};

pub use fixture::*;

pub const TENANT: &str = "acme";
pub const ZONE: &str = "0123456789abcdef0123456789abcdef";
pub const PREFIX: &str = "eu-archive";

/// A directory store holding the standard zone.
pub struct DirZone {
    pub dir: tempfile::TempDir,
    pub zone: StandardZone,
}

impl DirZone {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let zone = standard_zone(
            fs_store(dir.path()).await,
            PREFIX,
            TENANT,
            ZONE,
            now_ns(),
            false,
        )
        .await;
        Self { dir, zone }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn builder(&mut self) -> &mut ZoneBuilder {
        &mut self.zone.builder
    }

    pub fn b(&self) -> &ZoneBuilder {
        &self.zone.builder
    }

    pub fn options(&self) -> VerifyOptions {
        options()
    }

    pub async fn verify(&self) -> Report {
        self.verify_with(options()).await
    }

    pub async fn verify_with(&self, options: VerifyOptions) -> Report {
        rainlogs_verify::verify(&fs_store(self.root()).await, &options).await
    }
}

pub async fn fs_store(root: &Path) -> Store {
    Store::from(Backend::from(FsStore::open(root).await.unwrap()))
}

pub fn options() -> VerifyOptions {
    options_for(PREFIX)
}

pub fn options_for(prefix: &str) -> VerifyOptions {
    let mut options = VerifyOptions::new(TENANT, ZONE, vec![pinned()]).unwrap();
    options.prefix = rainlogs_integrity::BucketPrefix::new(prefix).unwrap();
    options
}

pub fn reasons(report: &Report) -> Vec<&'static str> {
    report.findings.iter().map(|f| f.reason.code()).collect()
}

/// Asserts the exit code and that every `reasons` is among the findings, printing the report otherwise.
#[track_caller]
pub fn assert_verdict(report: &Report, exit: u8, expected: &[Reason]) {
    let missing: Vec<&str> = expected
        .iter()
        .filter(|r| !report.has(**r))
        .map(|r| r.code())
        .collect();
    assert!(
        report.exit_code() == exit && missing.is_empty(),
        "expected exit {exit} with {expected:?}, got exit {} (missing {missing:?}):\n{}",
        report.exit_code(),
        report.to_human()
    );
}

/// The tamper-evidence reasons in a report.
pub fn tamper_reasons(report: &Report) -> Vec<Reason> {
    let mut out: Vec<Reason> = report
        .findings
        .iter()
        .filter(|f| f.status() == rainlogs_verify::Status::Tamper)
        .map(|f| f.reason)
        .collect();
    out.dedup();
    out
}

/// Runs the `rainlogs-verify` binary; returns (exit code, stdout).
pub fn run_binary(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rainlogs-verify"));
    command.args(args);
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
    ] {
        command.env_remove(var);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.is_empty() || output.status.code() == Some(2),
        "stderr: {stderr}"
    );
    (output.status.code().unwrap_or(-1), stdout)
}

/// The standard arguments for the test zone (key given as text).
pub fn zone_args(store: &str) -> Vec<String> {
    vec![
        "--store".into(),
        store.into(),
        "--tenant".into(),
        TENANT.into(),
        "--zone".into(),
        ZONE.into(),
        "--trusted-key".into(),
        pinned().to_string(),
    ]
}

pub fn dir_arg(root: &Path) -> String {
    root.to_str().unwrap().to_owned()
}

pub fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

// --- SeaweedFS from tools/dev-env ---

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run tools/dev-env up and source var/dev-env.sh (this test needs the real SeaweedFS)")
    })
}

pub fn s3_endpoint() -> String {
    required("RAINLOGS_TEST_S3_ENDPOINT")
}

pub fn writer_credentials() -> S3Credentials {
    S3Credentials {
        access_key_id: required("RAINLOGS_TEST_S3_ACCESS_KEY"),
        secret_access_key: required("RAINLOGS_TEST_S3_SECRET_KEY"),
        session_token: None,
    }
}

/// The read+list-only identity the verifier is given.
pub fn auditor_env() -> Vec<(&'static str, String)> {
    vec![
        (
            "AWS_ACCESS_KEY_ID",
            required("RAINLOGS_TEST_S3_AUDITOR_ACCESS_KEY"),
        ),
        (
            "AWS_SECRET_ACCESS_KEY",
            required("RAINLOGS_TEST_S3_AUDITOR_SECRET_KEY"),
        ),
    ]
}

pub fn auditor_credentials() -> S3Credentials {
    S3Credentials {
        access_key_id: required("RAINLOGS_TEST_S3_AUDITOR_ACCESS_KEY"),
        secret_access_key: required("RAINLOGS_TEST_S3_AUDITOR_SECRET_KEY"),
        session_token: None,
    }
}

fn s3_config(bucket: &str, credentials: S3Credentials) -> S3Config {
    let mut config = S3Config::new(bucket);
    config.endpoint = Some(s3_endpoint());
    config.path_style = true;
    config.credentials = Some(credentials);
    config
}

/// A prefix no other test run uses, so runs can share the lab buckets.
pub fn unique_prefix(purpose: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "lab-{purpose}-{:x}{:04x}",
        nanos & 0xffff_ffff_ffff,
        rand::random::<u16>()
    )
}

/// One of the two lab buckets (with or without Object Lock), created on first use and shared by every
/// test and run: SeaweedFS gives each bucket its own volumes, and a bucket per test exhausts them.
pub async fn lab_bucket(object_lock: bool) -> (String, Store) {
    let bucket = if object_lock {
        "rl-verify-lab-lock"
    } else {
        "rl-verify-lab-plain"
    }
    .to_owned();
    let store = S3Store::new(s3_config(&bucket, writer_credentials())).unwrap();
    store
        .create_bucket(BucketOptions {
            object_lock,
            default_retention: None,
        })
        .await
        .unwrap_or_else(|e| panic!("creating bucket {bucket} at {}: {e}", s3_endpoint()));
    (bucket, Store::from(Backend::from(store)))
}

/// The Object Lock bucket replicas of lab zones are copied into (same keys as the source bucket, so its own
/// version ids), created on first use and shared like the other lab buckets.
pub async fn replica_bucket() -> (String, Store) {
    let bucket = "rl-verify-lab-replica".to_owned();
    let store = S3Store::new(s3_config(&bucket, writer_credentials())).unwrap();
    store
        .create_bucket(BucketOptions {
            object_lock: true,
            default_retention: None,
        })
        .await
        .unwrap_or_else(|e| panic!("creating bucket {bucket} at {}: {e}", s3_endpoint()));
    (bucket, Store::from(Backend::from(store)))
}

/// The verifier's view of a bucket: auditor credentials.
pub fn auditor_store(bucket: &str) -> Store {
    Store::from(Backend::from(
        S3Store::new(s3_config(bucket, auditor_credentials())).unwrap(),
    ))
}

/// `--store s3://bucket/prefix --endpoint … --path-style` plus the zone arguments.
pub fn s3_args(bucket: &str, prefix: &str) -> Vec<String> {
    let mut args = zone_args(&format!("s3://{bucket}/{prefix}"));
    args.extend(["--endpoint".into(), s3_endpoint(), "--path-style".into()]);
    args
}

pub fn temp_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}
