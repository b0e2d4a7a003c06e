use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::ConfigError;

/// A secret value: never printed, never serialised, wiped from memory on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret itself; call only where it is used, never to log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// Reads a secret from `value` or `file`; exactly one may be set.
pub(crate) fn resolve(
    key: &str,
    value: &mut Option<Secret>,
    file: &Option<PathBuf>,
) -> Result<(), ConfigError> {
    let Some(path) = file else { return Ok(()) };
    if value.is_some() {
        return Err(ConfigError::Secret {
            key: key.to_owned(),
            reason: format!("both {key} and {key}_file are set; set only one"),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Secret {
        key: key.to_owned(),
        reason: format!("cannot read {key}_file {}: {e}", path.display()),
    })?;
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(ConfigError::Secret {
            key: key.to_owned(),
            reason: format!("{key}_file {} is empty", path.display()),
        });
    }
    *value = Some(Secret::new(trimmed));
    Ok(())
}

/// Development secrets kept in the data directory, created once with mode 0600.
pub struct DevSecrets {
    dir: PathBuf,
    /// Names of the secrets this call created (the rest already existed).
    pub created: Vec<String>,
}

impl DevSecrets {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Makes sure `<data_dir>/dev-secrets/<name>` exists for every name, generating missing ones.
pub fn generate_dev_secrets(
    data_dir: &Path,
    wanted: &[(&str, &dyn Fn() -> String)],
) -> Result<DevSecrets, ConfigError> {
    let dir = data_dir.join("dev-secrets");
    let io_err = |source| ConfigError::DevSecrets {
        dir: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io_err)?;
    let mut created = Vec::new();
    for (name, generate) in wanted {
        let path = dir.join(name);
        if path.exists() {
            continue;
        }
        let value = Zeroizing::new(generate());
        let mut file = open_private(&path).map_err(io_err)?;
        file.write_all(value.as_bytes()).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        created.push((*name).to_owned());
    }
    Ok(DevSecrets { dir, created })
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// 32 random bytes, hex: the form of every symmetric dev secret.
pub fn random_hex_32() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}
