//! Nothing here can run a container engine, so this test reads deploy/ and fails when a
//! command, subcommand, flag, port or config key it uses does not exist in this build.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use rainlogs::cli::Cli;
use rainlogs_config::{Sources, load};
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
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

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compose_services_use_real_commands_keys_and_ports() {
    let text = std::fs::read_to_string(deploy_dir().join("compose.yaml")).expect("compose.yaml");
    let json: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let compose: Value = serde_json::from_str(&json).expect("compose.yaml is JSON-form YAML");
    let services = compose["services"].as_object().expect("services");
    let mut rainlogs_services = 0;
    for (name, service) in services {
        if service.get("build").is_none() {
            continue; // nats, postgres, s3
        }
        rainlogs_services += 1;
        let origin = format!("compose service {name}");
        assert_command_exists(&strings(&service["command"]), &origin);
        let env = string_map(&service["environment"]);
        let config = assert_env_is_valid(&env, &origin);
        let declared_secrets = strings(&service["secrets"]);
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
        if let Some(check) = service.get("healthcheck") {
            let url = strings(&check["test"])
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
        for port in strings(&service["ports"]) {
            let container_port: u16 = port
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port");
            assert!(
                container_port == config.api.listen.port()
                    || container_port == config.telemetry.listen.port(),
                "{origin}: publishes {container_port}, which no listener uses"
            );
        }
    }
    assert_eq!(
        rainlogs_services, 7,
        "provision, migrate and the five services"
    );
}

#[test]
fn every_service_has_a_container_and_a_nomad_job() {
    for service in ["collector", "archiver", "sealer", "reaper", "query-api"] {
        let path = deploy_dir().join(format!("nomad/rainlogs-{service}.nomad.json"));
        let job: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("nomad job"))
            .expect("json");
        let origin = path.display().to_string();
        let group = &job["Job"]["TaskGroups"][0];
        let task = &group["Tasks"][0];
        let args = strings(&task["Config"]["args"]);
        assert_command_exists(&args, &origin);
        assert_eq!(args, ["run", "--service", service], "{origin}");
        let env = string_map(&task["Env"]);
        let config = assert_env_is_valid(&env, &origin);
        let templates: Vec<String> = task["Templates"]
            .as_array()
            .expect("templates")
            .iter()
            .map(|t| t["DestPath"].as_str().expect("dest").to_owned())
            .collect();
        for (key, value) in env.iter().filter(|(k, _)| k.ends_with("_FILE")) {
            let rel = value.trim_start_matches('/');
            assert!(
                templates.iter().any(|t| t == rel),
                "{origin}: {key} reads {value}, which no template writes"
            );
        }
        let ports: Vec<u64> = group["Networks"][0]["ReservedPorts"]
            .as_array()
            .expect("ports")
            .iter()
            .map(|p| p["Value"].as_u64().expect("port"))
            .collect();
        assert!(
            ports.contains(&u64::from(config.telemetry.listen.port())),
            "{origin}: telemetry port not reserved"
        );
        assert_eq!(
            group["Services"][0]["Checks"][0]["Path"], "/ready",
            "{origin}"
        );
        let shutdown_ns = config.service.shutdown_timeout.as_nanos();
        assert!(
            u128::from(task["KillTimeout"].as_u64().expect("kill timeout")) > shutdown_ns,
            "{origin}: KillTimeout must exceed service.shutdown_timeout"
        );
    }
}

#[test]
fn dockerfile_entrypoint_env_and_ports_exist() {
    let text = std::fs::read_to_string(deploy_dir().join("Dockerfile")).expect("Dockerfile");
    let json_args = |directive: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.starts_with(directive))
            .unwrap_or_else(|| panic!("no {directive}"));
        serde_json::from_str(line.trim_start_matches(directive).trim()).expect("exec form")
    };
    assert_eq!(json_args("ENTRYPOINT"), ["rainlogs"]);
    assert_command_exists(&json_args("CMD"), "Dockerfile CMD");

    // ENV may continue over several lines with `\`.
    let joined = text.replace("\\\n", " ");
    let env_line = joined.lines().find(|l| l.starts_with("ENV ")).expect("ENV");
    let env: BTreeMap<String, String> = env_line[4..]
        .split_whitespace()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    let config = assert_env_is_valid(&env, "Dockerfile ENV");
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
}
