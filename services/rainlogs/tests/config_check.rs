//! Issue 21, "Configuration that fails before it starts", through the real binary: `config check`
//! says per service what is missing or malformed, `secrets generate` makes the hex secrets,
//! `run` refuses without a store, `nats.url` takes a list, and a missing database is named and
//! can be created.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use rainlogs_testkit::{NatsServer, free_port};

/// The binary with nothing but `vars` in its environment, in `cwd`.
fn rainlogs(cwd: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rainlogs"))
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().copied())
        .output()
        .expect("run rainlogs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const STORE: (&str, &str) = ("RAINLOGS__STORE__URL", "s3://rainlogs-archive/prod");

#[test]
fn config_check_says_which_services_can_run_and_what_the_others_miss() {
    let dir = tempfile::tempdir().expect("dir");
    let output = rainlogs(dir.path(), &["config", "check"], &[STORE]);
    let report = stderr(&output);
    assert!(!output.status.success(), "no secrets: {report}");
    for line in [
        "collector: missing secrets.token_encryption_key",
        "archiver: ok",
        "sealer: missing secrets.signing_key",
        "reaper: ok",
        "query-api: missing secrets.api_key_digest_key; missing secrets.token_encryption_key",
        "configuration cannot run collector, sealer, query-api",
    ] {
        assert!(report.lines().any(|l| l == line), "{line:?} in:\n{report}");
    }
    assert!(report.contains("rainlogs secrets generate"), "{report}");
    assert!(
        !report.contains("configuration is valid"),
        "never valid without secrets: {report}"
    );
    assert!(
        stdout(&output).contains("\"nats\""),
        "the effective configuration is still printed"
    );

    // Chosen services decide the exit status alone.
    let archiver = rainlogs(
        dir.path(),
        &[
            "config",
            "check",
            "--service",
            "archiver",
            "--service",
            "reaper",
        ],
        &[STORE],
    );
    assert!(archiver.status.success(), "{}", stderr(&archiver));
    assert!(
        stderr(&archiver).contains("configuration is valid for archiver, reaper"),
        "{}",
        stderr(&archiver)
    );
    let sealer = rainlogs(
        dir.path(),
        &["config", "check", "--service", "sealer"],
        &[STORE],
    );
    assert!(!sealer.status.success());
    assert!(
        !stderr(&sealer).contains("collector"),
        "only the chosen services are reported: {}",
        stderr(&sealer)
    );
}

#[test]
fn config_check_refuses_malformed_secrets_without_printing_them() {
    let dir = tempfile::tempdir().expect("dir");
    let hex_signing_key = "ab".repeat(32);
    let output = rainlogs(
        dir.path(),
        &["config", "check"],
        &[
            STORE,
            ("RAINLOGS__SECRETS__TOKEN_ENCRYPTION_KEY", "abcd"),
            ("RAINLOGS__SECRETS__API_KEY_DIGEST_KEY", &"cd".repeat(32)),
            ("RAINLOGS__SECRETS__JWT_SECRET", "too-short"),
            ("RAINLOGS__SECRETS__SIGNING_KEY", &hex_signing_key),
        ],
    );
    let report = stderr(&output);
    assert!(!output.status.success(), "{report}");
    assert!(
        report.contains("collector: secrets.token_encryption_key must be 32 bytes"),
        "{report}"
    );
    assert!(
        report.contains("sealer: secrets.signing_key is not a valid note signing key"),
        "hex is not a signing key: {report}"
    );
    assert!(
        report.contains("secrets.jwt_secret must be at least 32 bytes"),
        "{report}"
    );
    let everything = format!("{report}{}", stdout(&output));
    for secret in ["abcd", "too-short", hex_signing_key.as_str()] {
        assert!(
            !everything.contains(secret),
            "{secret} printed:\n{everything}"
        );
    }
}

#[test]
fn config_check_refuses_a_malformed_verifier_key_and_cloudflare_url_for_whoever_uses_them() {
    let dir = tempfile::tempdir().expect("dir");
    let output = rainlogs(
        dir.path(),
        &[
            "config",
            "check",
            "--service",
            "collector",
            "--service",
            "query-api",
            "--service",
            "archiver",
        ],
        &[
            STORE,
            ("RAINLOGS__SECRETS__TOKEN_ENCRYPTION_KEY", &"ab".repeat(32)),
            ("RAINLOGS__SECRETS__API_KEY_DIGEST_KEY", &"cd".repeat(32)),
            ("RAINLOGS__API__VERIFIER_KEY", "not-a-key"),
            (
                "RAINLOGS__CLOUDFLARE__BASE_URL",
                "ftp://api.cloudflare.com/client/v4",
            ),
        ],
    );
    let report = stderr(&output);
    assert!(!output.status.success(), "{report}");
    let line = |service: &str| {
        report
            .lines()
            .find(|l| l.starts_with(&format!("{service}: ")))
            .unwrap_or_else(|| panic!("no {service} line in:\n{report}"))
            .to_owned()
    };
    assert!(
        line("query-api").contains("api.verifier_key is not a valid note verifier key"),
        "{report}"
    );
    for service in ["collector", "query-api"] {
        assert!(
            line(service).contains("cloudflare.base_url: base URL `ftp://"),
            "{report}"
        );
    }
    assert_eq!(line("archiver"), "archiver: ok", "{report}");
}

#[test]
fn config_check_refuses_a_key_prefix_the_archive_layout_cannot_hold() {
    let dir = tempfile::tempdir().expect("dir");
    let output = rainlogs(
        dir.path(),
        &["config", "check", "--service", "archiver"],
        &[(
            "RAINLOGS__STORE__URL",
            "s3://rainlogs-archive/prod/../other",
        )],
    );
    let report = stderr(&output);
    assert!(!output.status.success(), "{report}");
    assert!(
        report.lines().any(|l| l
            .starts_with("every service: store.url = \"s3://rainlogs-archive/prod/../other\": ")),
        "{report}"
    );
}

#[test]
fn secrets_generate_writes_private_files_whose_lines_config_check_accepts() {
    let dir = tempfile::tempdir().expect("dir");
    let secrets = dir.path().join("secrets");
    let secrets_arg = secrets.to_str().expect("utf-8 path");
    let generated = rainlogs(
        dir.path(),
        &["secrets", "generate", "--dir", secrets_arg],
        &[],
    );
    assert!(generated.status.success(), "{}", stderr(&generated));
    let lines = stdout(&generated);
    assert!(lines.starts_with("[secrets]\n"), "{lines}");
    for name in ["token_encryption_key", "api_key_digest_key", "jwt_secret"] {
        let path = secrets.join(name);
        assert!(
            lines.contains(&format!("{name}_file = '{}'", path.display())),
            "{lines}"
        );
        let mode = std::fs::metadata(&path)
            .expect("written")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name}");
        let value = std::fs::read_to_string(&path).expect("read");
        assert_eq!(value.len(), 64, "32 bytes as hex");
        assert!(value.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
        assert!(
            !lines.contains(&value),
            "the secret itself is never printed"
        );
    }
    assert!(
        stderr(&generated).contains("rainlogs keys generate"),
        "says how to make the signing key: {}",
        stderr(&generated)
    );

    // A second run refuses and changes nothing.
    let before = std::fs::read_to_string(secrets.join("jwt_secret")).expect("read");
    let again = rainlogs(
        dir.path(),
        &["secrets", "generate", "--dir", secrets_arg],
        &[],
    );
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exist"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read_to_string(secrets.join("jwt_secret")).expect("read"),
        before
    );

    // The printed lines plus a signing key make a configuration every service can run.
    let key = rainlogs(
        dir.path(),
        &["keys", "generate", "--name", "rainlogs.test/sealer"],
        &[],
    );
    assert!(key.status.success());
    std::fs::write(secrets.join("signing_key"), key.stdout).expect("write key");
    let file = dir.path().join("rainlogs.toml");
    std::fs::write(
        &file,
        format!(
            "[store]\nurl = \"s3://rainlogs-archive/prod\"\n\n{lines}signing_key_file = '{}'\n",
            secrets.join("signing_key").display()
        ),
    )
    .expect("write config");
    let check = rainlogs(
        dir.path(),
        &["config", "check", "--config", file.to_str().expect("utf-8")],
        &[],
    );
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(
        stderr(&check).contains(
            "configuration is valid for ingest, collector, archiver, sealer, reaper, query-api"
        ),
        "{}",
        stderr(&check)
    );
}

#[test]
fn nats_url_is_a_list_whose_every_url_is_checked() {
    let dir = tempfile::tempdir().expect("dir");
    let bad = rainlogs(
        dir.path(),
        &["config", "check", "--service", "archiver"],
        &[STORE, ("RAINLOGS__NATS__URL", "nats://a:4222,nats://b:x")],
    );
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("nats.url `nats://b:x`") && stderr(&bad).contains("invalid port"),
        "{}",
        stderr(&bad)
    );
    let good = rainlogs(
        dir.path(),
        &["config", "check", "--service", "archiver"],
        &[
            STORE,
            ("RAINLOGS__NATS__URL", "nats://a:4222, nats://b:4222"),
        ],
    );
    assert!(good.status.success(), "{}", stderr(&good));
    assert!(
        stdout(&good).contains("\"nats://b:4222\""),
        "{}",
        stdout(&good)
    );
}

/// Every seed goes to the client: the first one answers nothing, the second is the server.
#[test]
fn provision_connects_through_a_list_of_seed_servers() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let seeds = format!("nats://127.0.0.1:{},{}", free_port(), nats.url);
    let output = rainlogs(
        dir.path(),
        &["provision"],
        &[("RAINLOGS__NATS__URL", &seeds)],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("RL_BATCH"), "{}", stdout(&output));
}

#[test]
fn run_refuses_without_a_store_and_names_the_missing_secret() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let provisioned = rainlogs(
        dir.path(),
        &["provision"],
        &[("RAINLOGS__NATS__URL", &nats.url)],
    );
    assert!(provisioned.status.success(), "{}", stderr(&provisioned));
    let telemetry = format!("127.0.0.1:{}", free_port());
    let base = [
        ("RAINLOGS__NATS__URL", nats.url.as_str()),
        ("RAINLOGS__TELEMETRY__LISTEN", telemetry.as_str()),
        (
            "RAINLOGS__DATABASE__URL",
            "postgres://nobody@127.0.0.1:1/none",
        ),
    ];

    let output = rainlogs(dir.path(), &["run", "--service", "archiver"], &base);
    let message = stderr(&output);
    assert!(!output.status.success(), "{message}");
    for name in ["store.url", "--store-url", "RAINLOGS__STORE__URL"] {
        assert!(message.contains(name), "{name} in {message}");
    }
    assert!(
        !dir.path().join("var").exists(),
        "nothing is created in the working directory"
    );

    let mut with_store = base.to_vec();
    with_store.push(STORE);
    let output = rainlogs(dir.path(), &["run", "--service", "sealer"], &with_store);
    let message = stderr(&output);
    assert!(!output.status.success(), "{message}");
    assert!(
        message.contains("sealer: missing secrets.signing_key"),
        "refused before PostgreSQL is tried: {message}"
    );
    assert!(!message.contains("PostgreSQL"), "{message}");
}

#[test]
fn a_missing_database_is_named_and_migrate_can_create_it() {
    let database = rainlogs_testkit::TestDatabase::uncreated();
    let url = database.url.clone();
    let dir = tempfile::tempdir().expect("dir");
    let env = [("RAINLOGS__DATABASE__URL", url.as_str())];

    let missing = rainlogs(dir.path(), &["migrate"], &env);
    let message = stderr(&missing);
    assert!(!missing.status.success());
    assert!(
        message.contains(&format!("database \"{}\" does not exist", database.name())),
        "{message}"
    );
    assert!(
        message.contains("rainlogs migrate --create-database"),
        "{message}"
    );
    assert!(
        !message.contains(" at line "),
        "no driver internals: {message}"
    );

    let created = rainlogs(dir.path(), &["migrate", "--create-database"], &env);
    assert!(created.status.success(), "{}", stderr(&created));
    let said = stdout(&created);
    assert!(
        said.contains(&format!("database \"{}\" created", database.name())),
        "{said}"
    );
    assert!(said.contains("migrations applied"), "{said}");

    let again = rainlogs(dir.path(), &["migrate", "--create-database"], &env);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("already exists"),
        "{}",
        stdout(&again)
    );
    drop(database);
}

/// `deploy/rainlogs.example.toml` is a configuration every service can run once its secret
/// files exist (here redirected to real files through the environment, which wins over the file).
#[test]
fn the_deploy_example_passes_config_check_for_every_service() {
    let dir = tempfile::tempdir().expect("dir");
    let secrets = dir.path().join("secrets");
    let generated = rainlogs(
        dir.path(),
        &[
            "secrets",
            "generate",
            "--dir",
            secrets.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert!(generated.status.success(), "{}", stderr(&generated));
    let key = rainlogs(
        dir.path(),
        &["keys", "generate", "--name", "rainlogs.example.eu/sealer"],
        &[],
    );
    std::fs::write(secrets.join("signing_key"), key.stdout).expect("signing key");
    std::fs::write(
        secrets.join("database_url"),
        "postgres://rainlogs:pw@db.example.internal:5432/rainlogs\n",
    )
    .expect("database url");
    std::fs::write(secrets.join("s3_secret_key"), "s3-secret\n").expect("s3 secret");
    let files: Vec<(String, String)> = [
        ("DATABASE__URL", "database_url"),
        ("STORE__SECRET_ACCESS_KEY", "s3_secret_key"),
        ("SECRETS__TOKEN_ENCRYPTION_KEY", "token_encryption_key"),
        ("SECRETS__API_KEY_DIGEST_KEY", "api_key_digest_key"),
        ("SECRETS__JWT_SECRET", "jwt_secret"),
        ("SECRETS__SIGNING_KEY", "signing_key"),
    ]
    .iter()
    .map(|(key, file)| {
        (
            format!("RAINLOGS__{key}_FILE"),
            secrets.join(file).display().to_string(),
        )
    })
    .collect();
    let vars: Vec<(&str, &str)> = files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rainlogs.example.toml");
    let check = rainlogs(
        dir.path(),
        &[
            "config",
            "check",
            "--config",
            example.to_str().expect("utf-8"),
        ],
        &vars,
    );
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(
        stderr(&check).contains(
            "configuration is valid for ingest, collector, archiver, sealer, reaper, query-api"
        ),
        "{}",
        stderr(&check)
    );
    assert!(
        stdout(&check).contains("nats-3.example.internal"),
        "all seed servers: {}",
        stdout(&check)
    );
}
