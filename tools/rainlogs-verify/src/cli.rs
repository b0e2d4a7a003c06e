//! The command line: arguments, opening the store read-only, and running one verification.

use std::path::PathBuf;

use rainlogs_integrity::BucketPrefix;
use rainlogs_store::{FsStore, S3Config, S3Store, Store};

use crate::finding::{Finding, Kind, Reason};
use crate::options::{
    CopyRole, DEFAULT_JOBS, OptionsError, StoreLocation, VerifyOptions, parse_prefix, parse_since,
    parse_staleness, parse_store, parse_trusted_key,
};
use crate::report::{Report, Summary};
use crate::run::verify;

/// Where a zone's log is and which keys may sign it: what every reader of a bucket needs (the
/// verifier, a search from the bucket alone).
#[derive(Debug, Clone, clap::Args)]
pub struct ZoneArgs {
    /// A local directory with the bucket layout, or s3://BUCKET[/PREFIX]. S3 credentials come from
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (read and list suffice).
    #[arg(long, value_name = "DIR | s3://BUCKET/PREFIX")]
    pub store: String,
    /// S3 endpoint URL for non-AWS providers.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Path-style S3 addressing (most non-AWS providers).
    #[arg(long)]
    pub path_style: bool,
    /// Bucket prefix before the tenant, for a directory store (for S3 it is part of --store).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    #[arg(long)]
    pub tenant: String,
    #[arg(long)]
    pub zone: String,
    /// Pinned checkpoint verifier key (`name+id+base64`), or a file of them, one per line. Repeatable. Keys
    /// found in the bucket are never trusted.
    #[arg(long = "trusted-key", value_name = "VKEY_OR_FILE", required = true)]
    pub trusted_keys: Vec<String>,
}

impl ZoneArgs {
    /// The store's location and the options naming the zone, its prefix and its pinned keys.
    pub fn into_parts(self) -> Result<(StoreLocation, VerifyOptions), OptionsError> {
        let mut keys = Vec::new();
        for value in &self.trusted_keys {
            keys.extend(parse_trusted_key(value)?);
        }
        let mut options = VerifyOptions::new(&self.tenant, &self.zone, keys)?;
        let (mut location, url_prefix) = parse_store(&self.store)?;
        let prefix = match (url_prefix, self.prefix) {
            (Some(_), Some(flag)) => {
                return Err(OptionsError::Invalid {
                    what: "--prefix",
                    value: flag,
                    reason: "the s3:// URL already carries the prefix".into(),
                });
            }
            (Some(prefix), None) | (None, Some(prefix)) => parse_prefix(&prefix)?,
            (None, None) => BucketPrefix::default(),
        };
        if let StoreLocation::S3 {
            endpoint,
            region,
            path_style,
            ..
        } = &mut location
        {
            *endpoint = self.endpoint;
            *region = self.region;
            *path_style = self.path_style;
        }
        options.prefix = prefix;
        Ok((location, options))
    }
}

/// Verifies a RainLogs zone offline: signed checkpoints, entries, hash chain, coverage, archives, retention,
/// planted objects, freshness and Object Lock posture. Exit 0 verified, 1 tamper evidence, 2 could not check
/// everything, 3 posture warnings only, 4 declared gaps (only with --fail-on-gap).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "rainlogs-verify", version)]
pub struct Args {
    #[command(flatten)]
    pub zone: ZoneArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also decompress every archive and check content SHA-256 and record count.
    #[arg(long)]
    pub deep: bool,
    /// Read archive objects only for windows ending after this RFC 3339 time (the log is always verified whole).
    #[arg(long, value_name = "RFC3339")]
    pub since: Option<String>,
    /// Remember the verified (size, root) here and require later logs to extend it.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Tamper evidence if the newest entry is older than this (e.g. 2h, 90m), or `off`.
    #[arg(long, value_name = "DUR", default_value = "2h")]
    pub max_staleness: String,
    /// Archive objects read at the same time.
    #[arg(long, default_value_t = DEFAULT_JOBS)]
    pub jobs: usize,
    /// Exit 4 if any window is a declared gap (a `gap` entry) or short of the source's count (a `shortfall`
    /// entry), naming the gaps' reasons and time and the shortfalls' counts. Without it both are counted in
    /// the report but do not change the exit code.
    #[arg(long)]
    pub fail_on_gap: bool,
    /// The store is a replica (the secondary provider, an auditor's copy): the version ids logged
    /// are the sealing bucket's, so they are not compared; each archive must instead have the logged bytes
    /// and COMPLIANCE Object Lock retention until at least its logged retain-until (FORMAT.md §10).
    #[arg(long)]
    pub replica: bool,
    /// With --replica, for a replica that keeps the zone under another bucket prefix than the sealing copy:
    /// the sealing copy's prefix, which the logged object keys start with (empty for none). Default: the
    /// replica's own prefix.
    #[arg(long, value_name = "PREFIX", requires = "replica")]
    pub sealing_prefix: Option<String>,
}

/// A parsed command line.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub location: StoreLocation,
    pub options: VerifyOptions,
    pub json: bool,
}

impl Args {
    pub fn into_invocation(self) -> Result<Invocation, OptionsError> {
        let (location, mut options) = self.zone.into_parts()?;
        options.deep = self.deep;
        options.since_ns = self.since.as_deref().map(parse_since).transpose()?;
        options.state_file = self.state;
        options.max_staleness = parse_staleness(&self.max_staleness)?;
        options.jobs = self.jobs.max(1);
        options.fail_on_gap = self.fail_on_gap;
        options.copy = if self.replica {
            CopyRole::Replica
        } else {
            CopyRole::Primary
        };
        options.sealing_prefix = self
            .sealing_prefix
            .as_deref()
            .map(|p| parse_prefix(p.trim_matches('/')))
            .transpose()?;
        Ok(Invocation {
            location,
            options,
            json: self.json,
        })
    }
}

/// Opens the store for reading. A directory must already exist: the verifier never creates one.
pub async fn open_store(location: &StoreLocation) -> Result<Store, Finding> {
    match location {
        StoreLocation::Directory(path) => {
            let shown = path.display().to_string();
            if !path.is_dir() {
                return Err(Finding::new(
                    Kind::Store,
                    shown,
                    Reason::StoreUnreachable,
                    "no such directory",
                ));
            }
            FsStore::open(path)
                .await
                .map(|store| Store::from(rainlogs_store::Backend::from(store)))
                .map_err(|error| {
                    Finding::new(Kind::Store, shown, Reason::ReadFailed, error.to_string())
                })
        }
        StoreLocation::S3 {
            bucket,
            endpoint,
            region,
            path_style,
        } => {
            let mut config = S3Config::new(bucket.clone());
            config.endpoint = endpoint.clone();
            config.region = region.clone();
            config.path_style = *path_style;
            // No explicit credentials: the standard AWS environment variables.
            config.credentials = None;
            let shown = config.location();
            S3Store::new(config)
                .map(|store| Store::from(rainlogs_store::Backend::from(store)))
                .map_err(|error| {
                    Finding::new(Kind::Store, shown, Reason::ReadFailed, error.to_string())
                })
        }
    }
}

/// Opens the store and verifies; a store that cannot be opened is a report with one finding.
pub async fn run(invocation: &Invocation) -> Report {
    match open_store(&invocation.location).await {
        Ok(store) => verify(&store, &invocation.options).await,
        Err(finding) => Report {
            origin: invocation.options.origin.to_string(),
            location: finding.path.clone(),
            deep: invocation.options.deep,
            copy: invocation.options.copy,
            findings: vec![finding],
            summary: Summary::default(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser as _;

    use super::*;

    const KEY: &str = "rainlogs.test/sealer+6e0f8e34+Ab1PUuw/U9QTk4YHISDIf3/6tQ3QUkJfM808ohbGgGft";

    fn parse(extra: &[&str]) -> Result<Invocation, OptionsError> {
        let mut argv = vec![
            "rainlogs-verify",
            "--tenant",
            "acme",
            "--zone",
            "z1",
            "--trusted-key",
            KEY,
        ];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap().into_invocation()
    }

    #[test]
    fn s3_store_takes_prefix_from_the_url_and_flags_for_the_endpoint() {
        let inv = parse(&[
            "--store",
            "s3://logs/eu-archive",
            "--endpoint",
            "http://127.0.0.1:9000",
            "--path-style",
            "--since",
            "2026-01-15T14:00:00Z",
            "--max-staleness",
            "off",
        ])
        .unwrap();
        assert_eq!(inv.options.prefix.as_str(), "eu-archive");
        assert_eq!(inv.options.origin.as_str(), "rainlogs/acme/z1");
        assert!(matches!(
            inv.location,
            StoreLocation::S3 { ref endpoint, path_style: true, .. } if endpoint.as_deref() == Some("http://127.0.0.1:9000")
        ));
        assert_eq!(inv.options.max_staleness, None);
        assert!(inv.options.since_ns.is_some());
    }

    #[test]
    fn replica_and_sealing_prefix_set_the_copy_rule() {
        let inv = parse(&["--store", "s3://logs/eu-archive"]).unwrap();
        assert_eq!(inv.options.copy, CopyRole::Primary);
        assert_eq!(inv.options.sealed_prefix().as_str(), "eu-archive");
        let inv = parse(&[
            "--store",
            "s3://logs/mirror/eu-archive",
            "--replica",
            "--sealing-prefix",
            "eu-archive/",
        ])
        .unwrap();
        assert_eq!(inv.options.copy, CopyRole::Replica);
        assert_eq!(inv.options.sealed_prefix().as_str(), "eu-archive");
        assert_eq!(inv.options.prefix.as_str(), "mirror/eu-archive");
        let unprefixed = parse(&[
            "--store",
            "s3://logs/p",
            "--replica",
            "--sealing-prefix",
            "",
        ]);
        assert_eq!(unprefixed.unwrap().options.sealed_prefix().as_str(), "");
        assert!(parse(&["--store", "/x", "--replica", "--sealing-prefix", "a b"]).is_err());
        let without_replica = Args::try_parse_from([
            "rainlogs-verify",
            "--store",
            "/x",
            "--tenant",
            "acme",
            "--zone",
            "z1",
            "--trusted-key",
            KEY,
            "--sealing-prefix",
            "p",
        ]);
        assert!(without_replica.is_err(), "--sealing-prefix needs --replica");
    }

    #[test]
    fn bad_arguments_are_refused_before_anything_is_read() {
        assert!(parse(&["--store", "s3://logs/p", "--prefix", "q"]).is_err());
        assert!(parse(&["--store", "/x", "--since", "last week"]).is_err());
        let bad_zone = Args::try_parse_from([
            "rainlogs-verify",
            "--store",
            "/x",
            "--tenant",
            "acme",
            "--zone",
            "Z!",
            "--trusted-key",
            KEY,
        ])
        .unwrap()
        .into_invocation();
        assert!(bad_zone.is_err());
        assert!(
            Args::try_parse_from([
                "rainlogs-verify",
                "--store",
                "/x",
                "--tenant",
                "a",
                "--zone",
                "b"
            ])
            .is_err(),
            "--trusted-key is required"
        );
    }

    #[tokio::test]
    async fn a_missing_directory_is_unreachable_and_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope");
        let error = open_store(&StoreLocation::Directory(path.clone()))
            .await
            .unwrap_err();
        assert_eq!(error.reason, Reason::StoreUnreachable);
        assert!(!path.exists());
    }
}
