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
    /// Which copy of the bucket this is (FORMAT.md §10): the one whose version ids the entries hold, or a
    /// replica, where logged versions are not compared.
    pub copy: CopyRole,
    /// On a replica kept under another bucket prefix than the sealing copy: the sealing copy's prefix, which
    /// the logged object keys start with (FORMAT.md §10.1). `None`: the same prefix as this store's.
    pub sealing_prefix: Option<BucketPrefix>,
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
            copy: CopyRole::Primary,
            sealing_prefix: None,
            now: OffsetDateTime::now_utc(),
        })
    }

    pub fn now_ns(&self) -> u64 {
        unix_ns(self.now)
    }

    /// The prefix the log's archive keys were sealed under: the sealing copy's, which is this store's own
    /// unless `--sealing-prefix` names another for a replica.
    pub fn sealed_prefix(&self) -> &BucketPrefix {
        self.sealing_prefix.as_ref().unwrap_or(&self.prefix)
    }

    /// Where this store keeps the object a logged key names (FORMAT.md §10.1): the logged key with the sealing
    /// copy's zone prefix replaced by this store's. A key outside the sealing copy's zone is looked up as it is.
    pub(crate) fn stored_key<'a>(&self, logged: &'a str) -> std::borrow::Cow<'a, str> {
        let sealed = self.sealed_prefix();
        if *sealed == self.prefix {
            return logged.into();
        }
        match logged.strip_prefix(&sealed.zone_prefix(&self.origin)) {
            Some(rest) => format!("{}{rest}", self.prefix.zone_prefix(&self.origin)).into(),
            None => logged.into(),
        }
    }

    /// How long an unsealed archive may wait for its entry before it counts as planted.
    pub fn pending_grace(&self) -> Duration {
        self.max_staleness.unwrap_or(DEFAULT_MAX_STALENESS)
    }
}

/// Which copy of a zone's objects a run reads (FORMAT.md §10, "Copies: the sealing copy and replicas").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyRole {
    /// The sealing copy: the bucket whose version ids the archive entries hold (RainLogs' primary). Each
    /// archive's current version must be the logged one.
    #[default]
    Primary,
    /// Any other copy with the same keys (the secondary provider, an auditor's copy).
    /// Logged versions are not compared; each archive is accepted by its bytes and its Object Lock retention.
    Replica,
}

impl CopyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            CopyRole::Primary => "primary",
            CopyRole::Replica => "replica",
        }
    }
}

impl std::fmt::Display for CopyRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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

    /// FORMAT.md §10.3's stored-key example: the second text block after the heading.
    #[test]
    fn the_format_doc_stored_key_example_is_what_the_verifier_reads() {
        let doc = include_str!("../../../docs/FORMAT.md");
        let section = &doc[doc.find("### 10.3 Example").unwrap()..];
        let block = section.split("```text\n").nth(2).unwrap();
        let block = &block[..block.find("```").unwrap()];
        let value = |name: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .unwrap()
                .trim()
        };
        let parsed = parse_trusted_key(TEST_KEY).unwrap();
        let mut options =
            VerifyOptions::new("acme", "0123456789abcdef0123456789abcdef", parsed).unwrap();
        options.prefix = parse_prefix(value("P")).unwrap();
        let logged = value("object_key");
        // Without a sealing prefix (or with the store's own) the logged key is read as it is.
        assert_eq!(options.stored_key(logged), logged);
        options.sealing_prefix = Some(parse_prefix(value("S")).unwrap());
        assert_eq!(
            options.sealed_prefix().zone_prefix(&options.origin),
            value("Z(S)")
        );
        assert_eq!(options.prefix.zone_prefix(&options.origin), value("Z(P)"));
        assert_eq!(options.stored_key(logged), value("stored key"));
        // The logged key is the object key of FORMAT.md §2's example.
        assert!(doc.contains(&format!("object key:     {logged}\n")));
        // A key outside the sealing copy's zone is looked up as it is (and fails A1).
        assert_eq!(options.stored_key("elsewhere/k"), "elsewhere/k");
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
