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

pub use secret::{
    DevSecrets, Secret, SecretForm, generate_dev_secrets, random_hex_32, write_new_secrets,
};
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
    #[error("writing secrets into {dir}: {source}")]
    WriteSecrets {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} already exist{}; nothing was written (a replaced secret makes what it sealed \
         unreadable: move the old files away first, or choose another --dir)",
        display_paths(paths),
        if paths.len() == 1 { "s" } else { "" }
    )]
    SecretFilesExist { paths: Vec<PathBuf> },
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<figment::Error> for ConfigError {
    fn from(err: figment::Error) -> Self {
        // figment reports one error per line; keep all of them, each names its key.
        let lines: Vec<String> = err.into_iter().map(|e| describe(&e)).collect();
        ConfigError::Invalid(lines.join("; "))
    }
}

/// One figment error as an operator reads it: the dotted key as written in the file, what is
/// wrong with it, and where the value came from. figment's own text prefixes the key with its
/// profile (`default.collector.backfil`), which RainLogs does not use, and nests backquotes.
fn describe(err: &figment::Error) -> String {
    use figment::error::Kind;
    let key = err.path.join(".");
    let what = match &err.kind {
        Kind::UnknownField(field, known) => {
            let section = err
                .path
                .split_last()
                .map(|(_, parent)| parent.join("."))
                .unwrap_or_default();
            let qualify = |name: &str| {
                if section.is_empty() {
                    name.to_owned()
                } else {
                    format!("{section}.{name}")
                }
            };
            let unknown = if key.is_empty() {
                qualify(field)
            } else {
                key.clone()
            };
            let suggestion = closest(field, known)
                .map(|name| format!("; did you mean `{}`?", qualify(name)))
                .unwrap_or_default();
            let place = if section.is_empty() {
                "sections".to_owned()
            } else {
                format!("keys of [{section}]")
            };
            return format!(
                "unknown key `{unknown}`{}{suggestion} (the {place} are {})",
                origin(err),
                known.join(", "),
            );
        }
        other => other.to_string(),
    };
    if key.is_empty() {
        format!("{what}{}", origin(err))
    } else {
        format!("`{key}`{}: {what}", origin(err))
    }
}

/// ` from TOML file <path>` / ` from environment variable RAINLOGS__…`.
fn origin(err: &figment::Error) -> String {
    match &err.metadata {
        Some(md) => match &md.source {
            Some(source) => format!(" from {} {}", md.name, source),
            None => format!(" from {}", md.name),
        },
        None => String::new(),
    }
}

/// The known name a misspelt one most likely meant: one edit away, or one per three letters
/// for longer names, so a short key never "suggests" an unrelated one.
fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let allowed = (name.chars().count() / 3).max(1);
    known
        .iter()
        .map(|candidate| (edit_distance(name, candidate), *candidate))
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Edits (insert, delete, replace, swap two neighbours) from `a` to `b`; key names are short,
/// so the quadratic table is fine.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
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
        figment = figment.merge(Flag { key, value });
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

/// A command-line flag as a figment provider, so an error says the value came from a flag.
struct Flag<'a> {
    key: &'a str,
    value: &'a String,
}

impl figment::Provider for Flag<'_> {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(format!("the command-line flag for {}", self.key))
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Serialized::default(self.key, self.value).data()
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
