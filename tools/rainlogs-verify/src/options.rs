//! What one run verifies and how: the zone, the pinned keys, the optional modes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rainlogs_integrity::{BucketPrefix, Name, NoteVerifierKey, Origin};
use time::OffsetDateTime;

/// Default `--max-staleness`: a sealer seals every window, so a healthy zone never goes this long without one.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(2 * 3600);

/// Default number of archive objects read at the same time.
pub const DEFAULT_JOBS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("trusted key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no trusted key given: pin at least one with --trusted-key")]
    NoTrustedKey,
}

fn invalid(what: &'static str, value: &str, reason: impl ToString) -> OptionsError {
    OptionsError::Invalid {
        what,
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

/// Everything a verification run needs besides the store.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub origin: Origin,
    /// The part of every key before the tenant.
    pub prefix: BucketPrefix,
    /// Pinned checkpoint keys; keys found in the bucket are never trusted.
    pub trusted_keys: Vec<NoteVerifierKey>,
    /// Decompress archives and check content SHA-256 and record count too.
    pub deep: bool,
    /// Read archive objects only for windows ending after this time (unix ns); the log is always verified whole.
    pub since_ns: Option<u64>,
    /// Remembers the last verified (size, root) per origin to detect rollback and forks.
    pub state_file: Option<PathBuf>,
    /// `None` turns the staleness check off.
    pub max_staleness: Option<Duration>,
    /// Archive objects read concurrently.
    pub jobs: usize,
    /// Declared gaps (`gap` entries) fail the run (exit 4), for auditors who require complete coverage.
    /// Without it gaps are counted and reported but do not change the exit code.
    pub fail_on_gap: bool,
    /// The verifier's clock; a parameter so tests can move it.
    pub now: OffsetDateTime,
}

impl VerifyOptions {
    pub fn new(
        tenant: &str,
        zone: &str,
        trusted_keys: Vec<NoteVerifierKey>,
    ) -> Result<Self, OptionsError> {
        let tenant = Name::new(tenant).map_err(|e| invalid("tenant", tenant, e))?;
        let zone = Name::new(zone).map_err(|e| invalid("zone", zone, e))?;
        if trusted_keys.is_empty() {
            return Err(OptionsError::NoTrustedKey);
        }
        Ok(Self {
            origin: Origin::new(&tenant, &zone),
            prefix: BucketPrefix::default(),
            trusted_keys,
            deep: false,
            since_ns: None,
            state_file: None,
            max_staleness: Some(DEFAULT_MAX_STALENESS),
            jobs: DEFAULT_JOBS,
            fail_on_gap: false,
            now: OffsetDateTime::now_utc(),
        })
    }

    pub fn now_ns(&self) -> u64 {
        unix_ns(self.now)
    }

    /// How long an unsealed archive may wait for its entry before it counts as planted.
    pub fn pending_grace(&self) -> Duration {
        self.max_staleness.unwrap_or(DEFAULT_MAX_STALENESS)
    }
}

pub(crate) fn unix_ns(time: OffsetDateTime) -> u64 {
    u64::try_from(time.unix_timestamp_nanos()).unwrap_or(0)
}

/// Unix ns as RFC 3339 for messages; the raw number when out of range.
pub(crate) fn format_ns(ns: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ns} ns"))
}

/// `--trusted-key`: a verifier key text, or a file holding one key per line (`#` comments allowed).
pub fn parse_trusted_key(value: &str) -> Result<Vec<NoteVerifierKey>, OptionsError> {
    let key_error = match NoteVerifierKey::parse(value.trim()) {
        Ok(key) => return Ok(vec![key]),
        Err(error) => error,
    };
    let path = Path::new(value);
    if !path.is_file() {
        return Err(invalid(
            "trusted key",
            value,
            format!("not a verifier key ({key_error}) and not a readable file"),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|source| OptionsError::KeyFile {
        path: path.to_owned(),
        source,
    })?;
    let keys = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| NoteVerifierKey::parse(line).map_err(|e| invalid("trusted key", line, e)))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(invalid("trusted key file", value, "holds no key"));
    }
    Ok(keys)
}

/// `--since`: an RFC 3339 time.
pub fn parse_since(value: &str) -> Result<u64, OptionsError> {
    let time = OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|e| invalid("--since", value, e))?;
    u64::try_from(time.unix_timestamp_nanos()).map_err(|_| invalid("--since", value, "before 1970"))
}

/// `--max-staleness`: a duration such as `2h` or `90m`, or `off`.
pub fn parse_staleness(value: &str) -> Result<Option<Duration>, OptionsError> {
    if value == "off" {
        return Ok(None);
    }
    humantime::parse_duration(value)
        .map(Some)
        .map_err(|e| invalid("--max-staleness", value, e))
}

/// Where the store is: a local directory with the bucket layout, or an S3 bucket and prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Directory(PathBuf),
    S3 {
        bucket: String,
        endpoint: Option<String>,
        region: String,
        path_style: bool,
    },
}

/// Splits `--store` into a location and the bucket prefix it carries (`s3://bucket/prefix`).
pub fn parse_store(value: &str) -> Result<(StoreLocation, Option<String>), OptionsError> {
    let Some(rest) = value.strip_prefix("s3://") else {
        if value.is_empty() {
            return Err(invalid("--store", value, "empty"));
        }
        return Ok((StoreLocation::Directory(PathBuf::from(value)), None));
    };
    let (bucket, prefix) = match rest.split_once('/') {
        Some((bucket, prefix)) => (bucket, prefix.trim_end_matches('/')),
        None => (rest, ""),
    };
    if bucket.is_empty() {
        return Err(invalid("--store", value, "no bucket name"));
    }
    let location = StoreLocation::S3 {
        bucket: bucket.to_owned(),
        endpoint: None,
        region: "us-east-1".to_owned(),
        path_style: false,
    };
    Ok((location, (!prefix.is_empty()).then(|| prefix.to_owned())))
}

pub fn parse_prefix(value: &str) -> Result<BucketPrefix, OptionsError> {
    BucketPrefix::new(value).map_err(|e| invalid("bucket prefix", value, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TEST_KEY: &str =
        "rainlogs.test/sealer+6e0f8e34+Ab1PUuw/U9QTk4YHISDIf3/6tQ3QUkJfM808ohbGgGft";

    #[test]
    fn trusted_keys_come_from_text_or_a_file() {
        assert_eq!(parse_trusted_key(TEST_KEY).unwrap().len(), 1);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        std::fs::write(&file, format!("# pinned\n{TEST_KEY}\n\n")).unwrap();
        let keys = parse_trusted_key(file.to_str().unwrap()).unwrap();
        assert_eq!(keys[0].name(), "rainlogs.test/sealer");
        let tampered = TEST_KEY.replace("6e0f8e34", "6e0f8e35");
        assert!(parse_trusted_key(&tampered).is_err());
        std::fs::write(&file, "# nothing\n").unwrap();
        assert!(parse_trusted_key(file.to_str().unwrap()).is_err());
    }

    #[test]
    fn store_argument_separates_bucket_and_prefix() {
        let (location, prefix) = parse_store("s3://logs/eu-archive/v1/").unwrap();
        assert!(matches!(location, StoreLocation::S3 { ref bucket, .. } if bucket == "logs"));
        assert_eq!(prefix.as_deref(), Some("eu-archive/v1"));
        assert_eq!(parse_store("s3://logs").unwrap().1, None);
        assert!(parse_store("s3:///x").is_err());
        assert_eq!(
            parse_store("/srv/archive").unwrap().0,
            StoreLocation::Directory("/srv/archive".into())
        );
    }

    #[test]
    fn durations_and_times_parse() {
        assert_eq!(
            parse_staleness("90m").unwrap(),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(parse_staleness("off").unwrap(), None);
        assert!(parse_staleness("soon").is_err());
        assert_eq!(
            parse_since("2026-01-15T14:00:00Z").unwrap(),
            1_768_485_600_000_000_000
        );
        assert!(parse_since("yesterday").is_err());
    }
}
