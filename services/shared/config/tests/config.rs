use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rainlogs_config::{ConfigError, SecretSettings, Sources, generate_dev_secrets, load};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn defaults_then_file_then_env_then_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "rainlogs.toml",
        "[nats]\nurl = \"nats://file:1\"\n[api]\nlisten = \"127.0.0.1:7000\"\n[store]\nurl = \"s3://bucket/pfx\"\n",
    );
    let config = load(&Sources {
        file: Some(&file),
        env: env(&[
            ("RAINLOGS__NATS__URL", "nats://env:2"),
            ("RAINLOGS__API__LISTEN", "127.0.0.1:7001"),
        ]),
        overrides: vec![("api.listen", "127.0.0.1:7002".into())],
    })
    .expect("valid");
    assert_eq!(config.nats.url, ["nats://env:2"], "env beats file");
    assert_eq!(config.api.listen.port(), 7002, "flag beats env");
    assert_eq!(config.store.url, "s3://bucket/pfx", "file beats default");
    assert_eq!(
        config.telemetry.listen.port(),
        9464,
        "default stays when nothing overrides"
    );
}

#[test]
fn unknown_key_in_file_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "c.toml", "[nats]\nurll = \"nats://x\"\n");
    let err = load(&Sources {
        file: Some(&file),
        env: vec![],
        overrides: vec![],
    })
    .expect_err("unknown key");
    let msg = err.to_string();
    assert!(msg.contains("urll"), "{msg}");
}

#[test]
fn unknown_section_from_env_is_an_error_naming_the_variable() {
    let err = load(&Sources {
        file: None,
        env: env(&[("RAINLOGS__NAST__URL", "x")]),
        overrides: vec![],
    })
    .expect_err("unknown section");
    let msg = err.to_string();
    assert!(msg.contains("nast"), "{msg}");
}

#[test]
fn bad_value_names_key_and_source() {
    let err = load(&Sources {
        file: None,
        env: env(&[("RAINLOGS__API__LISTEN", "not-an-address")]),
        overrides: vec![],
    })
    .expect_err("bad value");
    let msg = err.to_string();
    assert!(msg.contains("listen"), "{msg}");
    assert!(msg.contains("RAINLOGS__API__LISTEN"), "{msg}");

    let err = load(&Sources {
        file: None,
        env: env(&[("RAINLOGS__SERVICE__SHUTDOWN_TIMEOUT", "soon")]),
        overrides: vec![],
    })
    .expect_err("bad duration");
    assert!(err.to_string().contains("shutdown_timeout"), "{err}");
}

#[test]
fn a_misspelt_key_is_named_as_written_with_a_suggestion() {
    let from_env = |name: &str| {
        load(&Sources {
            file: None,
            env: env(&[(name, "soon")]),
            overrides: vec![],
        })
        .expect_err(name)
        .to_string()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "rainlogs.toml",
        "[collector]\nbackfil = \"1d\"\n",
    );
    let message = load(&Sources {
        file: Some(&file),
        env: vec![],
        overrides: vec![],
    })
    .expect_err("unknown key")
    .to_string();
    assert!(message.contains("`collector.backfil`"), "{message}");
    assert!(
        message.contains("did you mean `collector.backfill`?"),
        "{message}"
    );
    assert!(
        message.contains("rainlogs.toml"),
        "names the file: {message}"
    );
    assert!(
        !message.contains("default."),
        "no figment profile: {message}"
    );

    let message = from_env("RAINLOGS__NAST__URL");
    assert!(message.contains("did you mean `nats`?"), "{message}");
    assert!(message.contains("RAINLOGS__NAST__URL"), "{message}");

    // Far from every known key: no guess, but the list of keys stays.
    let message = from_env("RAINLOGS__STORE__ZZZZZZ");
    assert!(!message.contains("did you mean"), "{message}");
    assert!(message.contains("secondary"), "{message}");

    // Bad values name the key without the profile too.
    let message = from_env("RAINLOGS__SERVICE__SHUTDOWN_TIMEOUT");
    assert!(message.contains("`service.shutdown_timeout`"), "{message}");
    assert!(!message.contains("default."), "{message}");
}

#[test]
fn missing_config_file_is_an_error() {
    let err = load(&Sources {
        file: Some(Path::new("/nonexistent/rainlogs.toml")),
        env: vec![],
        overrides: vec![],
    })
    .expect_err("missing file");
    assert!(matches!(err, ConfigError::MissingFile { .. }));
}

#[test]
fn no_secret_has_a_default() {
    let config = load(&Sources {
        file: None,
        env: vec![],
        overrides: vec![],
    })
    .expect("defaults load");
    let s = &config.secrets;
    assert!(s.token_encryption_key.is_none());
    assert!(s.api_key_digest_key.is_none());
    assert!(s.jwt_secret.is_none());
    assert!(s.signing_key.is_none());
    let err = SecretSettings::require(&s.signing_key, "secrets.signing_key", "the chain-sealer")
        .expect_err("required");
    let msg = err.to_string();
    assert!(msg.contains("RAINLOGS__SECRETS__SIGNING_KEY_FILE"), "{msg}");
}

#[test]
fn secrets_come_from_files_and_never_print() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = write(dir.path(), "jwt", "s3cr3t-value\n");
    let config = load(&Sources {
        file: None,
        env: env(&[(
            "RAINLOGS__SECRETS__JWT_SECRET_FILE",
            secret_file.to_str().expect("utf8"),
        )]),
        overrides: vec![],
    })
    .expect("valid");
    let jwt = config.secrets.jwt_secret.as_ref().expect("read from file");
    assert_eq!(jwt.expose(), "s3cr3t-value", "trailing newline stripped");
    assert!(
        !format!("{config:?}").contains("s3cr3t"),
        "Debug must redact secrets"
    );
    assert!(
        !toml::to_string(&config)
            .expect("serialise")
            .contains("s3cr3t"),
        "serialisation must redact"
    );
}

#[test]
fn secret_set_twice_or_unreadable_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = write(dir.path(), "jwt", "a");
    let err = load(&Sources {
        file: None,
        env: env(&[
            ("RAINLOGS__SECRETS__JWT_SECRET", "b"),
            (
                "RAINLOGS__SECRETS__JWT_SECRET_FILE",
                secret_file.to_str().expect("utf8"),
            ),
        ]),
        overrides: vec![],
    })
    .expect_err("both set");
    assert!(err.to_string().contains("set only one"), "{err}");

    let err = load(&Sources {
        file: None,
        env: env(&[("RAINLOGS__SECRETS__SIGNING_KEY_FILE", "/nonexistent/key")]),
        overrides: vec![],
    })
    .expect_err("unreadable");
    assert!(err.to_string().contains("secrets.signing_key"), "{err}");

    let empty = write(dir.path(), "empty", "\n");
    let err = load(&Sources {
        file: None,
        env: env(&[(
            "RAINLOGS__SECRETS__JWT_SECRET_FILE",
            empty.to_str().expect("utf8"),
        )]),
        overrides: vec![],
    })
    .expect_err("empty");
    assert!(err.to_string().contains("empty"), "{err}");
}

#[test]
fn dev_secrets_are_private_files_created_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let generate = || "generated".to_owned();
    let first = generate_dev_secrets(
        dir.path(),
        &[("jwt_secret", &generate), ("signing_key", &generate)],
    )
    .expect("create");
    assert_eq!(first.created, vec!["jwt_secret", "signing_key"]);
    let mode = std::fs::metadata(first.path("jwt_secret"))
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::write(first.path("jwt_secret"), "kept").expect("write");
    let second = generate_dev_secrets(dir.path(), &[("jwt_secret", &generate)]).expect("reuse");
    assert!(second.created.is_empty());
    assert_eq!(
        std::fs::read_to_string(second.path("jwt_secret")).expect("read"),
        "kept",
        "never regenerated"
    );

    let mut config = load(&Sources {
        file: None,
        env: vec![],
        overrides: vec![],
    })
    .expect("defaults");
    config
        .secrets
        .fill_from_dir(second.dir())
        .expect_err("token key file missing in this dir");
}

#[test]
fn collector_window_must_divide_the_hour() {
    let ok = load(&Sources {
        file: None,
        env: env(&[("RAINLOGS__COLLECTOR__WINDOW", "5m")]),
        overrides: Vec::new(),
    })
    .expect("5m divides the hour");
    assert_eq!(ok.collector.window.as_secs(), 300);
    for bad in ["7m", "2h", "0s"] {
        let error = load(&Sources {
            file: None,
            env: env(&[("RAINLOGS__COLLECTOR__WINDOW", bad)]),
            overrides: Vec::new(),
        })
        .expect_err(bad)
        .to_string();
        assert!(error.contains("collector.window"), "{bad}: {error}");
    }
}

#[test]
fn retention_bounds_must_hold_the_default() {
    let ok = load(&Sources {
        file: None,
        env: env(&[
            ("RAINLOGS__RETENTION__MIN_DAYS", "180"),
            ("RAINLOGS__RETENTION__DEFAULT_DAYS", "400"),
        ]),
        overrides: Vec::new(),
    })
    .expect("180 <= 400 <= 3650");
    assert_eq!(ok.retention.min_days, 180);
    for (key, value) in [
        ("RAINLOGS__RETENTION__MIN_DAYS", "6"),
        ("RAINLOGS__RETENTION__MIN_DAYS", "400"),
        ("RAINLOGS__RETENTION__MAX_DAYS", "100"),
    ] {
        let error = load(&Sources {
            file: None,
            env: env(&[(key, value)]),
            overrides: Vec::new(),
        })
        .expect_err(value)
        .to_string();
        assert!(error.contains("retention"), "{key}={value}: {error}");
    }
}

#[test]
fn collector_logpull_delay_defaults_to_five_minutes_and_is_at_least_one() {
    let default = load(&Sources {
        file: None,
        env: Vec::new(),
        overrides: Vec::new(),
    })
    .expect("defaults");
    assert_eq!(default.collector.logpull_delay.as_secs(), 300);
    let ok = load(&Sources {
        file: None,
        env: env(&[("RAINLOGS__COLLECTOR__LOGPULL_DELAY", "1m")]),
        overrides: Vec::new(),
    })
    .expect("Cloudflare allows one minute");
    assert_eq!(ok.collector.logpull_delay.as_secs(), 60);
    for bad in ["59s", "30s", "0s"] {
        let error = load(&Sources {
            file: None,
            env: env(&[("RAINLOGS__COLLECTOR__LOGPULL_DELAY", bad)]),
            overrides: Vec::new(),
        })
        .expect_err(bad)
        .to_string();
        assert!(
            error.contains("collector.logpull_delay") && error.contains("at least 1m"),
            "{bad}: {error}"
        );
    }
}

#[test]
fn collector_logpush_lateness_defaults_to_ten_minutes_and_is_at_most_twenty() {
    let at = |value: &str| {
        load(&Sources {
            file: None,
            env: env(&[("RAINLOGS__COLLECTOR__LOGPUSH_LATENESS", value)]),
            overrides: Vec::new(),
        })
    };
    let default = load(&Sources {
        file: None,
        env: Vec::new(),
        overrides: Vec::new(),
    })
    .expect("defaults");
    assert_eq!(default.collector.logpush_lateness.as_secs(), 600);
    assert_eq!(
        at("20m")
            .expect("twenty minutes")
            .collector
            .logpush_lateness
            .as_secs(),
        1200
    );
    let error = at("21m").expect_err("too late").to_string();
    assert!(
        error.contains("collector.logpush_lateness") && error.contains("at most 20m"),
        "{error}"
    );
}

#[test]
fn ingest_public_url_must_be_an_http_url_without_a_query() {
    let at = |value: &str| {
        load(&Sources {
            file: None,
            env: env(&[("RAINLOGS__INGEST__PUBLIC_URL", value)]),
            overrides: Vec::new(),
        })
    };
    assert_eq!(
        at("https://logs.example.eu/")
            .expect("an https URL")
            .ingest
            .public_url
            .as_deref(),
        Some("https://logs.example.eu/")
    );
    for bad in [
        "logs.example.eu",
        "https://",
        "https://logs.example.eu/?x=1",
        "ftp://x",
    ] {
        let error = at(bad).expect_err(bad).to_string();
        assert!(error.contains("ingest.public_url"), "{bad}: {error}");
    }
}

#[test]
fn otlp_endpoint_is_off_by_default_and_must_be_an_http_url() {
    let default = load(&Sources {
        file: None,
        env: Vec::new(),
        overrides: Vec::new(),
    })
    .expect("defaults");
    assert_eq!(
        default.telemetry.otlp_endpoint, None,
        "no traces unless asked"
    );
    let ok = load(&Sources {
        file: None,
        env: env(&[(
            "RAINLOGS__TELEMETRY__OTLP_ENDPOINT",
            "https://otel.example:4318",
        )]),
        overrides: Vec::new(),
    })
    .expect("an https collector");
    assert_eq!(
        ok.telemetry.otlp_endpoint.as_deref(),
        Some("https://otel.example:4318")
    );
    for bad in [
        "otel:4318",
        "grpc://otel:4317",
        "http://",
        "http:// otel:4318",
        "",
    ] {
        let error = load(&Sources {
            file: None,
            env: env(&[("RAINLOGS__TELEMETRY__OTLP_ENDPOINT", bad)]),
            overrides: Vec::new(),
        })
        .expect_err(bad)
        .to_string();
        assert!(
            error.contains("telemetry.otlp_endpoint") && error.contains("http://"),
            "{bad}: {error}"
        );
    }
}
