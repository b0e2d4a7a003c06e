//! The result of one run: findings, a summary, the exit code, and the human and JSON renderings.

use std::collections::HashMap;

use serde_json::json;

use crate::coverage::CoverageSummary;
use crate::finding::{Finding, Kind, Reason, Status};
use crate::options::CopyRole;

/// Findings of one reason beyond this many are counted, not listed (a bucket without Object Lock or a
/// substituted bundle would otherwise print one line per object).
pub const PER_REASON_LIMIT: usize = 25;

/// Collects findings, listing at most [`PER_REASON_LIMIT`] per reason.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    listed: Vec<Finding>,
    counts: HashMap<Reason, usize>,
    first_kind: HashMap<Reason, Kind>,
}

impl Findings {
    pub fn push(&mut self, finding: Finding) {
        let count = self.counts.entry(finding.reason).or_default();
        *count += 1;
        self.first_kind
            .entry(finding.reason)
            .or_insert(finding.kind);
        if *count <= PER_REASON_LIMIT {
            self.listed.push(finding);
        }
    }

    pub fn extend(&mut self, findings: impl IntoIterator<Item = Finding>) {
        for finding in findings {
            self.push(finding);
        }
    }

    /// Findings with `status` so far, listed or not.
    pub fn count_status(&self, status: Status) -> usize {
        self.counts
            .iter()
            .filter(|(reason, _)| reason.status() == status)
            .map(|(_, count)| count)
            .sum()
    }

    /// The listed findings plus one line per reason that had more than the limit.
    pub fn into_vec(self) -> Vec<Finding> {
        let mut out = self.listed;
        let mut overflow: Vec<(Reason, usize)> = self
            .counts
            .iter()
            .filter(|(_, count)| **count > PER_REASON_LIMIT)
            .map(|(reason, count)| (*reason, *count))
            .collect();
        overflow.sort_by_key(|(reason, _)| reason.code());
        for (reason, count) in overflow {
            let kind = self.first_kind.get(&reason).copied().unwrap_or(Kind::Store);
            out.push(Finding::new(
                kind,
                "…",
                reason,
                format!(
                    "{} more findings with this reason were not listed ({count} in total)",
                    count - PER_REASON_LIMIT
                ),
            ));
        }
        out
    }
}

/// Counters for the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Size and root of the checkpoint the log was verified against.
    pub checkpoint_size: Option<u64>,
    pub checkpoint_root: Option<String>,
    pub history_checkpoints: u64,
    pub entries: u64,
    /// Archive objects read and hashed.
    pub archives_checked: u64,
    pub archive_bytes_read: u64,
    /// Index objects read (their bytes count in `archive_bytes_read`).
    pub indexes_checked: u64,
    pub archives_pruned: u64,
    pub objects_listed: u64,
    pub tlog_files_checked: u64,
    /// Windows by kind, declared gaps by reason and time, and records: per dataset and in total.
    pub coverage: CoverageSummary,
}

/// The outcome of verifying one zone.
#[derive(Debug, Clone)]
pub struct Report {
    pub origin: String,
    /// Where the store is, without credentials.
    pub location: String,
    pub deep: bool,
    /// Which rule archive versions were judged by (FORMAT.md §10): the sealing copy's or a replica's.
    pub copy: CopyRole,
    pub findings: Vec<Finding>,
    pub summary: Summary,
}

/// The one-word result, in the order of precedence used for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Verified,
    PostureWarnings,
    /// Only with `--fail-on-gap`.
    DeclaredGaps,
    Incomplete,
    TamperEvidence,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Verified => "VERIFIED",
            Verdict::PostureWarnings => "VERIFIED_WITH_POSTURE_WARNINGS",
            Verdict::DeclaredGaps => "DECLARED_GAPS",
            Verdict::Incomplete => "INCOMPLETE",
            Verdict::TamperEvidence => "TAMPER_EVIDENCE",
        }
    }

    /// 0 verified, 1 tamper evidence, 2 could not check everything, 3 posture warnings only, 4 declared
    /// gaps under `--fail-on-gap`.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Verified => 0,
            Verdict::TamperEvidence => 1,
            Verdict::Incomplete => 2,
            Verdict::PostureWarnings => 3,
            Verdict::DeclaredGaps => 4,
        }
    }
}

impl Report {
    /// Tamper evidence outranks an incomplete check, which outranks declared gaps (`--fail-on-gap`), which
    /// outrank posture warnings.
    pub fn verdict(&self) -> Verdict {
        let worst = self
            .findings
            .iter()
            .map(Finding::status)
            .max()
            .unwrap_or(Status::Ok);
        match worst {
            Status::Tamper => Verdict::TamperEvidence,
            Status::Incomplete => Verdict::Incomplete,
            Status::Gap => Verdict::DeclaredGaps,
            Status::Warning => Verdict::PostureWarnings,
            Status::Ok | Status::Info => Verdict::Verified,
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.verdict().exit_code()
    }

    pub fn count(&self, status: Status) -> usize {
        self.findings
            .iter()
            .filter(|f| f.status() == status)
            .count()
    }

    /// Whether any finding has `reason`.
    pub fn has(&self, reason: Reason) -> bool {
        self.findings.iter().any(|f| f.reason == reason)
    }

    /// One line per finding, then the summary line.
    pub fn to_human(&self) -> String {
        let mut out = String::new();
        for finding in &self.findings {
            out.push_str(&finding.to_string());
            out.push('\n');
        }
        out.push_str(&format!(
            "summary\t{}\t{}: {}\n",
            self.origin,
            self.verdict().as_str(),
            self.summary_text()
        ));
        out
    }

    fn summary_text(&self) -> String {
        let s = &self.summary;
        let checkpoint = match (s.checkpoint_size, &s.checkpoint_root) {
            (Some(size), Some(root)) => format!("checkpoint size {size} root {root}"),
            _ => "no verified checkpoint".to_owned(),
        };
        format!(
            "exit {}; {checkpoint}; {} entries; {}; {} archives and {} index objects read ({} bytes, {}); {}; {} pruned; \
             {} objects listed; {} tamper, {} incomplete, {} gap, {} warning findings; store {}",
            self.exit_code(),
            s.entries,
            s.coverage.describe(),
            s.archives_checked,
            s.indexes_checked,
            s.archive_bytes_read,
            if self.deep {
                "deep: stored and content hashes, record counts, rebuilt indexes"
            } else {
                "stored-bytes hashes"
            },
            match self.copy {
                CopyRole::Primary => "copy primary (logged object versions compared)",
                CopyRole::Replica => "copy replica (logged object versions not compared)",
            },
            s.archives_pruned,
            s.objects_listed,
            self.count(Status::Tamper),
            self.count(Status::Incomplete),
            self.count(Status::Gap),
            self.count(Status::Warning),
            self.location,
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        let findings: Vec<_> = self
            .findings
            .iter()
            .map(|f| {
                json!({
                    "kind": f.kind,
                    "path": f.path,
                    "status": f.status(),
                    "reason": f.reason.code(),
                    "message": f.message,
                })
            })
            .collect();
        json!({
            "origin": self.origin,
            "store": self.location,
            "deep": self.deep,
            "copy": self.copy,
            "verdict": self.verdict().as_str(),
            "exit_code": self.exit_code(),
            "counts": {
                "tamper": self.count(Status::Tamper),
                "incomplete": self.count(Status::Incomplete),
                "gap": self.count(Status::Gap),
                "warning": self.count(Status::Warning),
                "info": self.count(Status::Info),
                "ok": self.count(Status::Ok),
            },
            "summary": self.summary,
            "findings": findings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(reasons: &[Reason]) -> Report {
        Report {
            origin: "rainlogs/a/b".into(),
            location: "/tmp/x".into(),
            deep: false,
            copy: CopyRole::Primary,
            findings: reasons
                .iter()
                .map(|r| Finding::new(Kind::Store, "p", *r, "m"))
                .collect(),
            summary: Summary::default(),
        }
    }

    #[test]
    fn exit_code_follows_the_worst_status() {
        assert_eq!(report(&[Reason::LogVerified]).exit_code(), 0);
        assert_eq!(report(&[Reason::ArchivePruned]).exit_code(), 0);
        assert_eq!(report(&[Reason::NoObjectLock]).exit_code(), 3);
        assert_eq!(
            report(&[Reason::NoObjectLock, Reason::StoreUnreachable]).exit_code(),
            2
        );
        assert_eq!(
            report(&[Reason::StoreUnreachable, Reason::ArchiveMissing]).exit_code(),
            1
        );
    }

    #[test]
    fn declared_gaps_outrank_posture_warnings_only() {
        let gaps = report(&[Reason::CoverageContiguous, Reason::DeclaredGaps]);
        assert_eq!(gaps.verdict(), Verdict::DeclaredGaps);
        assert_eq!(gaps.exit_code(), 4);
        assert_eq!(
            report(&[Reason::NoObjectLock, Reason::DeclaredGaps]).exit_code(),
            4
        );
        assert_eq!(
            report(&[Reason::DeclaredGaps, Reason::StoreUnreachable]).exit_code(),
            2
        );
        assert_eq!(
            report(&[Reason::DeclaredGaps, Reason::ArchiveMissing]).exit_code(),
            1
        );
        assert_eq!(gaps.to_json()["counts"]["gap"], 1);
    }

    #[test]
    fn floods_of_one_reason_are_counted_not_listed() {
        let mut findings = Findings::default();
        for i in 0..(PER_REASON_LIMIT + 5) {
            findings.push(Finding::new(
                Kind::Posture,
                format!("k{i}"),
                Reason::NoObjectLock,
                "m",
            ));
        }
        let listed = findings.into_vec();
        assert_eq!(listed.len(), PER_REASON_LIMIT + 1);
        assert!(listed.last().is_some_and(|f| f.message.contains("5 more")));
    }
}
