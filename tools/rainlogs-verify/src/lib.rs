//! rainlogs-verify: the offline verifier an auditor runs against a RainLogs bucket (or a local copy of it)
//! with nothing but read access and pinned public keys.
//!
//! Every check of `docs/FORMAT.md` §9 is a small function producing [`Finding`]s with a stable [`Reason`] code;
//! [`verify`] runs them all over one zone and returns a [`Report`] whose verdict gives the exit code:
//! 0 verified, 1 tamper evidence, 2 could not check everything, 3 posture warnings only, 4 declared gaps
//! (only with `--fail-on-gap`).
//! The byte formats are those of `docs/FORMAT.md`, through the `rainlogs-integrity` crate.

mod archives;
mod checkpoints;
pub mod cli;
mod coverage;
mod erasure;
mod finding;
mod freshness;
mod indexes;
mod inventory;
mod log;
mod options;
mod report;
mod retention;
mod run;
mod source;
mod state;
mod tlog_files;

pub use coverage::{CoverageSummary, DatasetCoverage, GapTally, Gaps, WindowCounts};
pub use finding::{Finding, Kind, Reason, Status};
pub use options::{
    CopyRole, DEFAULT_JOBS, DEFAULT_MAX_STALENESS, OptionsError, StoreLocation, VerifyOptions,
    parse_prefix, parse_since, parse_staleness, parse_store, parse_trusted_key,
};
pub use report::{PER_REASON_LIMIT, Report, Summary, Verdict};
pub use run::{location, verified_entries, verify};
