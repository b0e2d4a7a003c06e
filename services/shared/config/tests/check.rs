//! Issue 21, "Configuration that fails before it starts": the parts the configuration crate owns
//! (lists of NATS servers, no default store, secret forms, key suggestions, secret files).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rainlogs_config::{
    Config, ConfigError, DEV_STORE_URL, Secret, SecretForm, Sources, load, write_new_secrets,
};

fn load_with(
    file: Option<&Path>,
    env: &[(&str, &str)],
    flags: &[(&'static str, &str)],
) -> Result<Config, ConfigError> {
    load(&Sources {
        file,
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        overrides: flags.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
    })
}

fn toml(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("rainlogs.toml");
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn nats_url_takes_one_url_a_comma_list_or_an_array() {
    let dir = tempfile::tempdir().expect("tempdir");
    let array = toml(
        dir.path(),
        "[nats]\nurl = [\"nats://a:4222\", \"nats://b:4222\"]\n",
    );
    let config = load_with(Some(&array), &[], &[]).expect("a TOML array");
    assert_eq!(config.nats.url, ["nats://a:4222", "nats://b:4222"]);

    let config = load_with(
        None,
        &[("RAINLOGS__NATS__URL", "nats://a:4222, nats://b:4222")],
        &[],
    )
    .expect("a comma list in the environment");
    assert_eq!(config.nats.url, ["nats://a:4222", "nats://b:4222"]);

    let config = load_with(None, &[], &[("nats.url", "nats://c:4222,nats://d:4222")])
        .expect("a comma list as a flag");
    assert_eq!(config.nats.url, ["nats://c:4222", "nats://d:4222"]);

    let config = load_with(None, &[], &[]).expect("defaults");
    assert_eq!(config.nats.url, ["nats://127.0.0.1:4222"]);

    for bad in ["nats://a:4222,", "nats://a:4222,,nats://b:4222"] {
        let err = load_with(None, &[("RAINLOGS__NATS__URL", bad)], &[]).expect_err(bad);
        let message = err.to_string();
        assert!(
            message.contains("nats.url") && message.contains("empty URL"),
            "{message}"
        );
    }
    let empty = toml(dir.path(), "[nats]\nurl = []\n");
    let err = load_with(Some(&empty), &[], &[]).expect_err("an empty array");
    assert!(
        err.to_string().contains("at least one NATS server"),
        "{err}"
    );
}

#[test]
fn the_store_has_no_default_outside_dev() {
    let mut config = load_with(None, &[], &[]).expect("defaults");
    assert_eq!(config.store.configured_url(), None);
    config.store.use_dev_default();
    assert_eq!(config.store.configured_url(), Some(DEV_STORE_URL));

    let mut config =
        load_with(None, &[("RAINLOGS__STORE__URL", "s3://bucket/p")], &[]).expect("set");
    config.store.use_dev_default();
    assert_eq!(
        config.store.configured_url(),
        Some("s3://bucket/p"),
        "--dev keeps a configured store"
    );
}

#[test]
fn secret_forms_are_checked_without_showing_the_secret() {
    let good = Secret::new("ab".repeat(32));
    assert_eq!(good.check_form(SecretForm::Hex32), Ok(()));
    assert_eq!(
        Secret::new(format!("{}\n", "AB".repeat(32))).check_form(SecretForm::Hex32),
        Ok(()),
        "surrounding whitespace is ignored, as the services ignore it"
    );
    for bad in ["abcd", "zz", &"ab".repeat(31), &"ab".repeat(33)] {
        let reason = Secret::new(bad)
            .check_form(SecretForm::Hex32)
            .expect_err(bad);
        assert!(reason.contains("64 hex characters"), "{reason}");
        assert!(
            !reason.contains(bad),
            "the secret is never echoed: {reason}"
        );
    }
    let reason = Secret::new("short-jwt-secret")
        .check_form(SecretForm::AtLeast32Bytes)
        .expect_err("16 bytes");
    assert!(reason.contains("at least 32 bytes"), "{reason}");
    assert!(!reason.contains("short-jwt-secret"), "{reason}");
    assert_eq!(good.check_form(SecretForm::AtLeast32Bytes), Ok(()));
}

#[test]
fn new_secret_files_are_private_and_never_overwritten() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("nested/secrets");
    let generate = || "value".to_owned();
    let wanted: [(&str, &dyn Fn() -> String); 2] = [("one", &generate), ("two", &generate)];
    let paths = write_new_secrets(&dir, &wanted).expect("write");
    assert_eq!(paths, [dir.join("one"), dir.join("two")]);
    for path in &paths {
        let mode = std::fs::metadata(path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    let mode = std::fs::metadata(&dir).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "a directory it creates is private too");

    std::fs::write(dir.join("one"), "kept").expect("write");
    std::fs::remove_file(dir.join("two")).expect("remove");
    let err = write_new_secrets(&dir, &wanted).expect_err("one exists");
    assert!(matches!(err, ConfigError::SecretFilesExist { .. }), "{err}");
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("one")).expect("read"),
        "kept"
    );
    assert!(
        !dir.join("two").exists(),
        "nothing is written when any file exists"
    );
}
