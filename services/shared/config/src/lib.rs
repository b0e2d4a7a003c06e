//! RainLogs configuration.
//!
//! Precedence: built-in defaults < TOML file < environment (`RAINLOGS__SECTION__KEY`) < CLI flags.
//! Every secret can instead come from a file (`<key>_file` in TOML, `RAINLOGS__SECTION__KEY_FILE`
//! in the environment) so it never sits in a process listing; no secret has a built-in default.
//! Unknown keys and bad values are errors that name the key.

mod secret;
mod settings;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};

pub use secret::{DevSecrets, Secret, generate_dev_secrets, random_hex_32};
pub use settings::*;

/// Environment prefix; `__` separates section and key.
pub const ENV_PREFIX: &str = "RAINLOGS__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Figment's message names the key and where the value came from (file, env var).
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("config file {path} does not exist")]
    MissingFile { path: PathBuf },
    #[error("secret {key}: {reason}")]
    Secret { key: String, reason: String },
    #[error("dev secrets in {dir}: {source}")]
    DevSecrets {
        dir: PathBuf,
        source: std::io::Error,
    },
}

impl From<figment::Error> for ConfigError {
    fn from(err: figment::Error) -> Self {
        // figment reports one error per line; keep all of them, each names its key.
        let lines: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
        ConfigError::Invalid(lines.join("; "))
    }
}

/// Where configuration comes from, in rising precedence.
pub struct Sources<'a> {
    pub file: Option<&'a Path>,
    /// Process environment (tests pass their own).
    pub env: Vec<(String, String)>,
    /// CLI flag overrides as dotted keys, e.g. `("nats.url", "nats://…")`.
    pub overrides: Vec<(&'static str, String)>,
}

impl Sources<'_> {
    /// Environment variables of this process that start with [`ENV_PREFIX`].
    pub fn process_env() -> Vec<(String, String)> {
        std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect()
    }
}

/// Loads and validates the configuration. Secrets referenced by `*_file` keys are read here.
pub fn load(sources: &Sources<'_>) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = sources.file {
        if !path.exists() {
            return Err(ConfigError::MissingFile {
                path: path.to_owned(),
            });
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    for var in env_providers(&sources.env) {
        figment = figment.merge(var);
    }
    for (key, value) in &sources.overrides {
        figment = figment.merge(Serialized::default(key, value));
    }
    let mut config: Config = figment.extract()?;
    config.check_ranges()?;
    config.resolve_secret_files()?;
    Ok(config)
}

/// One `RAINLOGS__SECTION__KEY` variable as a figment provider, so an error names the variable.
struct EnvVar {
    name: String,
    key: String,
    value: figment::value::Value,
}

impl figment::Provider for EnvVar {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(format!("environment variable {}", self.name))
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Serialized::default(&self.key, &self.value).data()
    }
}

fn env_providers(vars: &[(String, String)]) -> Vec<EnvVar> {
    vars.iter()
        .filter_map(|(name, raw)| {
            let rest = name.strip_prefix(ENV_PREFIX)?;
            let key = rest.to_ascii_lowercase().replace("__", ".");
            // Values parse like TOML scalars ("true", "8", "30s" stays a string).
            let value = raw
                .parse::<figment::value::Value>()
                .unwrap_or_else(|_| figment::value::Value::from(raw.clone()));
            Some(EnvVar {
                name: name.clone(),
                key,
                value,
            })
        })
        .collect()
}
