//! `rainlogs search`: the records of a Ray ID, an address or a CIDR block from the bucket alone,
//! with read-only credentials and the pinned key, for an auditor or a responder without the API.
//! The log is read and checked as the verifier reads it (signed checkpoint, chained entries, the
//! signed root); only index objects and archives it commits are used. Hits go to stdout as NDJSON,
//! one object per record: the record exactly as archived and where it was found. What was read
//! goes to stderr.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use rainlogs_search::{Archived, IndexCache, Key, Position, Query, Searcher};
use rainlogs_verify::cli::{ZoneArgs, open_store};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Searches one zone's archives in the bucket (a directory or s3://).
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    #[command(flatten)]
    pub zone: ZoneArgs,
    /// A Ray ID (16 hex digits, as in 8d2f61c1fa0b1c3e).
    #[arg(long, value_name = "RAY_ID", conflicts_with_all = ["client_ip", "cidr"], required_unless_present_any = ["client_ip", "cidr"])]
    pub ray_id: Option<String>,
    /// A client address, IPv4 or IPv6.
    #[arg(long, value_name = "ADDRESS", conflicts_with = "cidr")]
    pub client_ip: Option<String>,
    /// A CIDR block (at least a /8 of IPv4, a /16 of IPv6).
    #[arg(long, value_name = "BLOCK")]
    pub cidr: Option<String>,
    /// Records at or after this RFC 3339 time.
    #[arg(long, value_name = "RFC3339", requires = "end")]
    pub start: Option<String>,
    /// Records before this RFC 3339 time.
    #[arg(long, value_name = "RFC3339", requires = "start")]
    pub end: Option<String>,
    /// At most this many records; the last line of stderr says where to continue.
    #[arg(long, default_value_t = 1_000)]
    pub limit: u64,
    /// Continue after this position (`ENTRY:RECORD`, from an earlier search's stderr).
    #[arg(long, value_name = "ENTRY:RECORD")]
    pub after: Option<String>,
    /// Keep index objects here for later searches.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Largest size of the index cache, in MiB.
    #[arg(long, default_value_t = 512)]
    pub cache_mib: u64,
}

fn time_ns(text: &str, what: &str) -> anyhow::Result<u64> {
    let time = OffsetDateTime::parse(text, &Rfc3339)
        .with_context(|| format!("{what} {text:?} is not an RFC 3339 time"))?;
    u64::try_from(time.unix_timestamp_nanos()).with_context(|| format!("{what} is before 1970"))
}

fn position(text: &str) -> anyhow::Result<Position> {
    let parsed = text
        .split_once(':')
        .and_then(|(entry, record)| Some((entry.parse().ok()?, record.parse().ok()?)));
    let (entry_index, record) =
        parsed.with_context(|| format!("--after {text:?} is not ENTRY:RECORD"))?;
    Ok(Position {
        entry_index,
        record,
    })
}

impl SearchArgs {
    fn query(&self) -> anyhow::Result<Query> {
        let key = Key::one_of(
            self.ray_id.as_deref(),
            self.client_ip.as_deref(),
            self.cidr.as_deref(),
        )?;
        let time = match (&self.start, &self.end) {
            (Some(start), Some(end)) => Some((time_ns(start, "--start")?, time_ns(end, "--end")?)),
            _ => None,
        };
        Ok(Query::new(key, time)?)
    }
}

/// Exit 0 with the hits on stdout; 1 when the log does not verify far enough to be trusted or
/// the search failed (what was found before is on stdout).
pub async fn search(args: SearchArgs) -> anyhow::Result<ExitCode> {
    let query = args.query()?;
    let after = args.after.as_deref().map(position).transpose()?;
    let (location, options) = args.zone.clone().into_parts()?;
    let store = open_store(&location)
        .await
        .map_err(|finding| anyhow::anyhow!("{}: {}", finding.path, finding.message))?;
    let entries = match rainlogs_verify::verified_entries(&store, &options).await {
        Ok(entries) => entries,
        Err(findings) => {
            for finding in findings {
                eprintln!("{finding}");
            }
            eprintln!("search: the log does not verify; nothing is searched");
            return Ok(ExitCode::FAILURE);
        }
    };
    let archives = Archived::from_entries(&entries);
    let cache = match &args.cache_dir {
        Some(dir) => IndexCache::in_dir(dir, args.cache_mib.saturating_mul(1 << 20))
            .with_context(|| format!("index cache {}", dir.display()))?,
        None => IndexCache::none(),
    };
    let searcher = Searcher::new(store, cache);
    let (sender, mut receiver) = tokio::sync::mpsc::channel(256);
    let limit = args.limit.max(1);
    let search = tokio::spawn(async move {
        searcher
            .search(&archives, &query, limit, after, sender)
            .await
    });
    let mut stdout = std::io::stdout().lock();
    while let Some(found) = receiver.recv().await {
        writeln!(stdout, "{}", found.to_ndjson(None))?;
    }
    drop(stdout);
    let summary = search.await??;
    for problem in &summary.index_problems {
        eprintln!("search: index not used (archive read whole): {problem}");
    }
    eprintln!("{}", crate::search_output::summary_line(&summary));
    Ok(ExitCode::SUCCESS)
}
