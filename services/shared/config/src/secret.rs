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
        write_private(&path, &Zeroizing::new(generate())).map_err(io_err)?;
        created.push((*name).to_owned());
    }
    Ok(DevSecrets { dir, created })
}

/// Writes one new file `dir/<name>` (mode 0600) per secret and returns their paths, in order.
///
/// Never replaces a file: a secret that is overwritten while data sealed with it still exists
/// makes that data unreadable. If any of the files already exists nothing is written.
pub fn write_new_secrets(
    dir: &Path,
    wanted: &[(&str, &dyn Fn() -> String)],
) -> Result<Vec<PathBuf>, ConfigError> {
    let io_err = |source| ConfigError::WriteSecrets {
        dir: dir.to_owned(),
        source,
    };
    create_private_dir(dir).map_err(io_err)?;
    let paths: Vec<PathBuf> = wanted.iter().map(|(name, _)| dir.join(name)).collect();
    let existing: Vec<PathBuf> = paths
        .iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .cloned()
        .collect();
    if !existing.is_empty() {
        return Err(ConfigError::SecretFilesExist { paths: existing });
    }
    for ((_, generate), path) in wanted.iter().zip(&paths) {
        // `create_new` also refuses a file that appeared since the check above.
        write_private(path, &Zeroizing::new(generate())).map_err(io_err)?;
    }
    Ok(paths)
}

fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    let mut file = open_private(path)?;
    file.write_all(value.as_bytes())?;
    file.sync_all()
}

/// Creates `dir` (and its parents) readable only by the owner; an existing directory is left
/// as it is.
#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
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

/// 32 random bytes, hex: the form of every symmetric secret ([`SecretForm::Hex32`]).
pub fn random_hex_32() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// What a secret must look like to be usable. `rainlogs config check` and `rainlogs run` check
/// every secret a service needs against its form before any service starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretForm {
    /// 32 bytes written as 64 hex characters (surrounding whitespace ignored, as the services
    /// do): `token_encryption_key`, `previous_token_encryption_key`, `api_key_digest_key`.
    Hex32,
    /// At least 32 bytes, any text: `jwt_secret`. An HMAC-SHA256 key shorter than the hash
    /// weakens every token signed with it (RFC 7518 §3.2 requires at least 256 bits).
    AtLeast32Bytes,
}

impl Secret {
    /// Whether the secret has `form`. The reason never contains the secret.
    pub fn check_form(&self, form: SecretForm) -> Result<(), String> {
        let text = self.expose().trim();
        match form {
            SecretForm::Hex32 => {
                let bytes = Zeroizing::new(hex::decode(text).map_err(|_| {
                    "must be 32 bytes written as 64 hex characters; this is not hex \
                     (`rainlogs secrets generate` makes one)"
                        .to_owned()
                })?);
                if bytes.len() != 32 {
                    return Err(format!(
                        "must be 32 bytes written as 64 hex characters, not {} bytes \
                         (`rainlogs secrets generate` makes one)",
                        bytes.len()
                    ));
                }
                Ok(())
            }
            SecretForm::AtLeast32Bytes if text.len() < 32 => Err(format!(
                "must be at least 32 bytes, not {} (`rainlogs secrets generate` makes one)",
                text.len()
            )),
            SecretForm::AtLeast32Bytes => Ok(()),
        }
    }
}
