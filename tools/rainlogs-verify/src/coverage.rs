//! Coverage: per dataset, the windows of `archive`, `empty` and `gap` entries, in log order, follow each other
//! exactly (each starts where the previous ended). A hole is a window nobody accounted for; an overlap is a
//! window logged twice or a clock going backwards.

use std::collections::BTreeMap;

use rainlogs_integrity::Window;

use crate::finding::{Finding, Kind, Reason};
use crate::log::LoggedEntry;
use crate::options::format_ns;

/// What coverage learned, for the other checks.
#[derive(Debug, Default)]
pub(crate) struct Coverage {
    /// Per dataset, the end of its newest window.
    pub covered_until: BTreeMap<String, u64>,
}

struct DatasetState {
    first_start: u64,
    last: Window,
    last_index: u64,
    windows: u64,
    problems: bool,
}

pub(crate) fn check<'a>(
    entries: impl IntoIterator<Item = &'a LoggedEntry>,
) -> (Coverage, Vec<Finding>) {
    let mut datasets: BTreeMap<String, DatasetState> = BTreeMap::new();
    let mut findings = Vec::new();
    for logged in entries {
        let entry = &logged.entry;
        let (Some(dataset), Some(window)) = (entry.body.dataset(), entry.body.window()) else {
            continue;
        };
        if !entry.kind().covers_window() {
            continue;
        }
        let Some(state) = datasets.get_mut(dataset.as_str()) else {
            datasets.insert(
                dataset.as_str().to_owned(),
                DatasetState {
                    first_start: window.start_ns(),
                    last: window,
                    last_index: entry.index,
                    windows: 1,
                    problems: false,
                },
            );
            continue;
        };
        let previous = state.last;
        let between = format!("entries {} and {}", state.last_index, entry.index);
        if window.start_ns() > previous.end_ns() {
            state.problems = true;
            findings.push(Finding::new(
                Kind::Coverage,
                dataset.as_str(),
                Reason::CoverageGap,
                format!(
                    "no entry accounts for [{}, {}) between {between}",
                    format_ns(previous.end_ns()),
                    format_ns(window.start_ns())
                ),
            ));
        } else if window.start_ns() < previous.end_ns() {
            state.problems = true;
            findings.push(Finding::new(
                Kind::Coverage,
                dataset.as_str(),
                Reason::CoverageOverlap,
                format!(
                    "window [{}, {}) of entry {} starts before the previous window ended at {} ({between})",
                    format_ns(window.start_ns()),
                    format_ns(window.end_ns()),
                    entry.index,
                    format_ns(previous.end_ns())
                ),
            ));
        }
        state.last = window;
        state.last_index = entry.index;
        state.windows += 1;
    }
    let mut coverage = Coverage::default();
    for (dataset, state) in datasets {
        if !state.problems {
            findings.push(Finding::new(
                Kind::Coverage,
                &dataset,
                Reason::CoverageContiguous,
                format!(
                    "{} windows from {} to {} without gap or overlap",
                    state.windows,
                    format_ns(state.first_start),
                    format_ns(state.last.end_ns())
                ),
            ));
        }
        coverage.covered_until.insert(dataset, state.last.end_ns());
    }
    (coverage, findings)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rainlogs_integrity::{
        CollectionMethod, Dataset, EmptyRecord, Entry, EntryBody, GapReason, GapRecord, Name,
        Origin, Sampling, Sha256Hash,
    };

    use super::*;

    fn entry(index: u64, dataset: &str, start: u64, end: u64, gap: bool) -> LoggedEntry {
        let dataset = Dataset::new(dataset).unwrap();
        let window = Window::new(start, end).unwrap();
        let body = if gap {
            EntryBody::Gap(GapRecord {
                dataset,
                window,
                method: CollectionMethod::Logpull,
                reason: GapReason::SourceError,
            })
        } else {
            EntryBody::Empty(EmptyRecord {
                dataset,
                window,
                method: CollectionMethod::Logpull,
                sampling: Sampling::UNSAMPLED,
            })
        };
        LoggedEntry {
            entry: Entry {
                index,
                origin: Origin::new(&Name::new("t").unwrap(), &Name::new("z").unwrap()),
                prev_chain_hash: Sha256Hash::ZERO,
                sealed_at_ns: 1,
                body,
            },
            id: Sha256Hash::ZERO,
        }
    }

    fn reasons(findings: &[Finding]) -> Vec<Reason> {
        findings.iter().map(|f| f.reason).collect()
    }

    #[test]
    fn interleaved_datasets_are_each_contiguous() {
        let log = [
            entry(0, "a", 0, 60, false),
            entry(1, "b", 0, 300, false),
            entry(2, "a", 60, 120, true),
            entry(3, "a", 120, 180, false),
        ];
        let (coverage, findings) = check(&log);
        assert_eq!(
            reasons(&findings),
            [Reason::CoverageContiguous, Reason::CoverageContiguous]
        );
        assert_eq!(coverage.covered_until["a"], 180);
    }

    #[test]
    fn holes_and_overlaps_are_named() {
        let log = [
            entry(0, "a", 0, 60, false),
            entry(1, "a", 90, 120, false),
            entry(2, "a", 100, 160, false),
        ];
        let (_, findings) = check(&log);
        assert_eq!(
            reasons(&findings),
            [Reason::CoverageGap, Reason::CoverageOverlap]
        );
    }
}
