//! Coverage: per dataset, the windows of `archive`, `empty` and `gap` entries, in log order, follow each other
//! exactly (each starts where the previous ended). A hole is a window nobody accounted for; an overlap is a
//! window logged twice or a clock going backwards.
//!
//! A `gap` entry is a window accounted for without data. It keeps coverage contiguous, but an auditor must
//! see it: every dataset's windows are counted by kind, declared gaps by reason and time, and records by
//! dataset, in the findings and in the report's summary. `--fail-on-gap` turns declared gaps into a failure.
//!
//! A `late` entry adds records to a window another entry already accounts for, so it is no part of the
//! sequence of windows. It must name, exactly, the window of an earlier `archive` or `empty` entry of its
//! dataset (FORMAT.md §9 step 5); late entries and their records are counted beside the windows.
//!
//! A `shortfall` entry names a window the same way and says the source counted more records for it than
//! the log held: at most one per window, with a count above what the entries before it hold. Every
//! shortfall is reported with the source's count and what the whole log holds for the window (late
//! records may have come since); `--fail-on-gap` fails on them as on declared gaps.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use rainlogs_integrity::{ArchiveRecord, EntryBody, EntryKind, ShortfallRecord, Window};

use crate::finding::{Finding, Kind, Reason};
use crate::log::LoggedEntry;
use crate::options::format_ns;

/// Windows counted by the kind of entry that accounts for them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WindowCounts {
    /// Windows whose records were stored as an archive object.
    pub archive: u64,
    /// Windows the source answered for with no records.
    pub empty: u64,
    /// Windows declared as gaps: no data could be collected.
    pub gap: u64,
}

impl WindowCounts {
    pub fn total(&self) -> u64 {
        self.archive + self.empty + self.gap
    }

    fn add(&mut self, other: &WindowCounts) {
        self.archive += other.archive;
        self.empty += other.empty;
        self.gap += other.gap;
    }
}

/// Declared gaps of one reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct GapTally {
    /// Gap windows.
    pub count: u64,
    /// Their summed length in nanoseconds.
    pub duration_ns: u64,
}

impl GapTally {
    fn add(&mut self, count: u64, duration_ns: u64) {
        self.count += count;
        self.duration_ns = self.duration_ns.saturating_add(duration_ns);
    }
}

/// Declared gaps: how many, how long, why, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Gaps {
    /// Gap windows.
    pub count: u64,
    /// Their summed length in nanoseconds.
    pub duration_ns: u64,
    /// Per gap reason code (`collector_outage`, `source_error`, …, FORMAT.md §4).
    pub by_reason: BTreeMap<String, GapTally>,
    /// Start of the earliest gap window (unix ns); `None` without gaps.
    pub first_start_ns: Option<u64>,
    /// End of the latest gap window (unix ns); `None` without gaps.
    pub last_end_ns: Option<u64>,
}

impl Gaps {
    fn record(&mut self, reason: &str, window: Window) {
        let length = window.end_ns() - window.start_ns();
        self.count += 1;
        self.duration_ns = self.duration_ns.saturating_add(length);
        self.by_reason
            .entry(reason.to_owned())
            .or_default()
            .add(1, length);
        self.widen(Some(window.start_ns()), Some(window.end_ns()));
    }

    fn add(&mut self, other: &Gaps) {
        self.count += other.count;
        self.duration_ns = self.duration_ns.saturating_add(other.duration_ns);
        for (reason, tally) in &other.by_reason {
            self.by_reason
                .entry(reason.clone())
                .or_default()
                .add(tally.count, tally.duration_ns);
        }
        self.widen(other.first_start_ns, other.last_end_ns);
    }

    fn widen(&mut self, start: Option<u64>, end: Option<u64>) {
        self.first_start_ns = match (self.first_start_ns, start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_end_ns = self.last_end_ns.max(end);
    }

    /// `declared gaps 30m: 4 × collector_outage 20m, 2 × source_error 10m`, or `no declared gaps`.
    pub fn describe(&self) -> String {
        if self.count == 0 {
            return "no declared gaps".to_owned();
        }
        let reasons: Vec<String> = self
            .by_reason
            .iter()
            .map(|(reason, tally)| {
                format!(
                    "{} × {reason} {}",
                    tally.count,
                    format_duration(tally.duration_ns)
                )
            })
            .collect();
        format!(
            "declared gaps {}: {}",
            format_duration(self.duration_ns),
            reasons.join(", ")
        )
    }
}

/// What the log accounts for in one dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DatasetCoverage {
    /// Start of the first window (unix ns).
    pub start_ns: u64,
    /// End of the last window, in log order (unix ns).
    pub end_ns: u64,
    /// No hole and no overlap between consecutive windows (otherwise `coverage_gap` / `coverage_overlap`).
    pub contiguous: bool,
    pub windows: WindowCounts,
    /// Records in the dataset's archive entries, as logged (pruned archives included; `--deep` checks the
    /// count of every archive read against its content).
    pub records: u64,
    /// Late entries of the dataset (records that arrived after their window was sealed). Left out of the
    /// JSON when 0, so reports of logs without late entries read as before.
    #[serde(skip_serializing_if = "is_zero")]
    pub late: u64,
    /// Records in those late entries, as logged; not part of `records`.
    #[serde(skip_serializing_if = "is_zero")]
    pub late_records: u64,
    pub gaps: Gaps,
    /// Windows with a shortfall entry: the source counted more records than the log held.
    #[serde(skip_serializing_if = "Shortfalls::is_none")]
    pub shortfalls: Shortfalls,
}

/// Windows the source says are incomplete, with the counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Shortfalls {
    /// Windows with a shortfall entry.
    pub windows: u64,
    /// Of those, windows the log still holds fewer records for than the source counted.
    pub still_short: u64,
    /// Records the source counted for them.
    pub source_records: u64,
    /// Records the whole log holds for them (archive and late entries).
    pub held_records: u64,
}

impl Shortfalls {
    fn is_none(&self) -> bool {
        self.windows == 0
    }

    fn add(&mut self, other: &Shortfalls) {
        self.windows += other.windows;
        self.still_short += other.still_short;
        self.source_records = self.source_records.saturating_add(other.source_records);
        self.held_records = self.held_records.saturating_add(other.held_records);
    }

    /// `2 windows short of the source's count (it counted 2000 records, the log holds 1800)`, then
    /// `, 1 made whole since` when later records filled some.
    fn describe(&self) -> String {
        let whole = self.windows - self.still_short;
        format!(
            "{} short of the source's count (it counted {} records, the log holds {}){}",
            windows(self.windows),
            self.source_records,
            self.held_records,
            if whole > 0 {
                format!(", {whole} made whole since")
            } else {
                String::new()
            }
        )
    }
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

/// What the log accounts for, per dataset and in total.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CoverageSummary {
    /// Over all datasets.
    pub windows: WindowCounts,
    pub records: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub late: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub late_records: u64,
    pub gaps: Gaps,
    #[serde(skip_serializing_if = "Shortfalls::is_none")]
    pub shortfalls: Shortfalls,
    /// By dataset name.
    pub datasets: BTreeMap<String, DatasetCoverage>,
}

impl CoverageSummary {
    /// `300 windows in 2 datasets: 21 archive, 274 empty, 5 gap; declared gaps …; 3456 records`, then
    /// `; 4 late entries with 37 records` if there are any.
    pub fn describe(&self) -> String {
        format!(
            "{} in {} dataset{}: {}",
            windows(self.windows.total()),
            self.datasets.len(),
            if self.datasets.len() == 1 { "" } else { "s" },
            tally(
                &self.windows,
                &self.gaps,
                self.records,
                (self.late, self.late_records),
                &self.shortfalls
            )
        )
    }
}

/// `21 archive, 274 empty, 5 gap; declared gaps 25m: …; 3456 records`, then `; 4 late entries with 37
/// records` and `; 2 windows short of the source's count (…)` only when there are such entries: logs
/// without them read exactly as before they existed.
fn tally(
    windows: &WindowCounts,
    gaps: &Gaps,
    records: u64,
    (late, late_records): (u64, u64),
    shortfalls: &Shortfalls,
) -> String {
    let mut out = format!(
        "{} archive, {} empty, {} gap; {}; {records} records",
        windows.archive,
        windows.empty,
        windows.gap,
        gaps.describe()
    );
    if late > 0 {
        out.push_str(&format!(
            "; {late} late {} with {late_records} records",
            if late == 1 { "entry" } else { "entries" }
        ));
    }
    if !shortfalls.is_none() {
        out.push_str("; ");
        out.push_str(&shortfalls.describe());
    }
    out
}

/// `1 window`, `6 windows`.
fn windows(count: u64) -> String {
    format!("{count} window{}", if count == 1 { "" } else { "s" })
}

/// Exact and short: `30m`, `1h 5m`, `2h 30m 15s`.
fn format_duration(ns: u64) -> String {
    humantime::format_duration(Duration::from_nanos(ns)).to_string()
}

/// What coverage learned, for the other checks and the summary.
#[derive(Debug, Default)]
pub(crate) struct Coverage {
    /// Per dataset, the end of its newest window.
    pub covered_until: BTreeMap<String, u64>,
    pub summary: CoverageSummary,
}

struct DatasetState {
    last: Window,
    last_index: u64,
    counted: DatasetCoverage,
}

impl DatasetState {
    fn new(window: Window, index: u64) -> Self {
        Self {
            last: window,
            last_index: index,
            counted: DatasetCoverage {
                start_ns: window.start_ns(),
                end_ns: window.end_ns(),
                contiguous: true,
                ..DatasetCoverage::default()
            },
        }
    }

    fn count(&mut self, body: &EntryBody, window: Window) {
        let counted = &mut self.counted;
        match body {
            EntryBody::Archive(record) => {
                counted.windows.archive += 1;
                counted.records = counted.records.saturating_add(record.record_count);
            }
            EntryBody::Empty(_) => counted.windows.empty += 1,
            EntryBody::Gap(record) => {
                counted.windows.gap += 1;
                counted.gaps.record(record.reason.as_str(), window);
            }
            // covers_window() admits only the three kinds above.
            EntryBody::Late(_)
            | EntryBody::Shortfall(_)
            | EntryBody::Index(_)
            | EntryBody::Prune(_)
            | EntryBody::Key(_)
            | EntryBody::Erasure => {}
        }
        counted.end_ns = window.end_ns();
    }

    fn count_late(&mut self, record: &ArchiveRecord) {
        let counted = &mut self.counted;
        counted.late += 1;
        counted.late_records = counted.late_records.saturating_add(record.record_count);
    }
}

/// Which entry accounts for a window, by (dataset, start, end): the earliest `archive` or `empty` entry
/// if there is one, else the earliest `gap` entry.
type WindowsSeen<'a> = HashMap<(&'a str, u64, u64), (EntryKind, u64)>;

fn remember<'a>(
    seen: &mut WindowsSeen<'a>,
    dataset: &'a str,
    window: Window,
    kind: EntryKind,
    index: u64,
) {
    let slot = seen
        .entry((dataset, window.start_ns(), window.end_ns()))
        .or_insert((kind, index));
    if slot.0 == EntryKind::Gap && kind != EntryKind::Gap {
        *slot = (kind, index);
    }
}

/// FORMAT.md §9 step 5 for a late entry: it names, exactly, a window an earlier `archive` or `empty` entry
/// of its dataset accounts for. `seen` holds only the entries before it, so a window sealed after the late
/// entry does not count.
fn judge_late(seen: &WindowsSeen<'_>, index: u64, late: &ArchiveRecord) -> Option<Finding> {
    let named = format!("late entry {index} ({})", late.object.key);
    let why = judge_named(
        seen,
        named,
        late.dataset.as_str(),
        late.window,
        ": records cannot arrive late for a window whose data could not be collected",
    )?;
    Some(Finding::new(
        Kind::Coverage,
        late.dataset.as_str(),
        Reason::LateWithoutWindow,
        why,
    ))
}

/// Why an entry that names a window (late, shortfall) names none it may, if it does not;
/// `on_gap` ends the sentence when the window is a declared gap.
fn judge_named(
    seen: &WindowsSeen<'_>,
    named: String,
    dataset: &str,
    window: Window,
    on_gap: &str,
) -> Option<String> {
    let named = format!(
        "{named} names [{}, {})",
        format_ns(window.start_ns()),
        format_ns(window.end_ns())
    );
    match seen.get(&(dataset, window.start_ns(), window.end_ns())) {
        Some((EntryKind::Archive | EntryKind::Empty, _)) => None,
        Some((kind, earlier)) => Some(format!(
            "{named}, which entry {earlier} accounts for as a {} window{on_gap}",
            kind.as_str()
        )),
        None => Some(format!(
            "{named}, but no earlier archive or empty entry of {dataset} accounts for exactly that window"
        )),
    }
}

/// Records the log holds per window (archive and late entries), by (dataset, start, end).
type Held<'a> = HashMap<(&'a str, u64, u64), u64>;

fn held_key(dataset: &str, window: Window) -> (&str, u64, u64) {
    (dataset, window.start_ns(), window.end_ns())
}

/// A valid shortfall entry, reported once the whole log is read.
struct ShortfallSeen<'a> {
    index: u64,
    record: &'a ShortfallRecord,
}

/// FORMAT.md §9 step 5 for a shortfall entry, against the entries before it.
fn judge_shortfall(
    seen: &WindowsSeen<'_>,
    held: &Held<'_>,
    short_windows: &HashSet<(&str, u64, u64)>,
    index: u64,
    short: &ShortfallRecord,
) -> Option<Finding> {
    let dataset = short.dataset.as_str();
    let finding = |reason, why: String| Some(Finding::new(Kind::Coverage, dataset, reason, why));
    if let Some(why) = judge_named(
        seen,
        format!("shortfall entry {index}"),
        dataset,
        short.window,
        "",
    ) {
        return finding(Reason::ShortfallWithoutWindow, why);
    }
    let (start, end) = (
        format_ns(short.window.start_ns()),
        format_ns(short.window.end_ns()),
    );
    let key = held_key(dataset, short.window);
    if short_windows.contains(&key) {
        return finding(
            Reason::ShortfallInvalid,
            format!(
                "shortfall entry {index} is a second shortfall for the {dataset} window [{start}, {end})"
            ),
        );
    }
    let held_before = held.get(&key).copied().unwrap_or(0);
    if !short.is_short_of(held_before) {
        return finding(
            Reason::ShortfallInvalid,
            format!(
                "shortfall entry {index} says the source counted {} records for the {dataset} window \
                 [{start}, {end}), but the log already held {held_before} (tolerance {})",
                short.source_count,
                ShortfallRecord::tolerance(short.source_count)
            ),
        );
    }
    None
}

/// What the whole log holds for a shortfall's window.
fn held_now(held: &Held<'_>, record: &ShortfallRecord) -> u64 {
    held.get(&held_key(record.dataset.as_str(), record.window))
        .copied()
        .unwrap_or(0)
}

/// One `window_short` finding per shortfall, with what the whole log holds for the window: records that
/// came later (a repair, late pushes) may have made it whole since.
fn report_shortfall(held: &Held<'_>, short: &ShortfallSeen<'_>) -> Finding {
    let record = short.record;
    let holds = held_now(held, record);
    let state = if record.is_short_of(holds) {
        "is incomplete"
    } else {
        "was short and has been made whole by later records"
    };
    Finding::new(
        Kind::Coverage,
        record.dataset.as_str(),
        Reason::WindowShort,
        format!(
            "window [{}, {}) {state} (shortfall entry {}): the source ({}) counted {} records, the log holds \
             {holds}",
            format_ns(record.window.start_ns()),
            format_ns(record.window.end_ns()),
            short.index,
            record.method.as_str(),
            record.source_count,
        ),
    )
}

pub(crate) fn check<'a>(
    entries: impl IntoIterator<Item = &'a LoggedEntry>,
) -> (Coverage, Vec<Finding>) {
    let mut datasets: BTreeMap<String, DatasetState> = BTreeMap::new();
    let mut seen = WindowsSeen::new();
    let mut held = Held::new();
    let mut short_windows = HashSet::new();
    let mut shortfalls = Vec::new();
    let mut findings = Vec::new();
    for logged in entries {
        let entry = &logged.entry;
        if let Some(record) = entry.body.archive() {
            *held
                .entry(held_key(record.dataset.as_str(), record.window))
                .or_default() += record.record_count;
        }
        if let EntryBody::Shortfall(short) = &entry.body {
            match judge_shortfall(&seen, &held, &short_windows, entry.index, short) {
                Some(invalid) => findings.push(invalid),
                None => {
                    short_windows.insert(held_key(short.dataset.as_str(), short.window));
                    shortfalls.push(ShortfallSeen {
                        index: entry.index,
                        record: short,
                    });
                }
            }
            continue;
        }
        if let EntryBody::Late(late) = &entry.body {
            findings.extend(judge_late(&seen, entry.index, late));
            // A late entry of a dataset with no window yet has already been reported above; it has no
            // coverage line to be counted in.
            if let Some(state) = datasets.get_mut(late.dataset.as_str()) {
                state.count_late(late);
            }
            continue;
        }
        let (Some(dataset), Some(window)) = (entry.body.dataset(), entry.body.window()) else {
            continue;
        };
        if !entry.kind().covers_window() {
            continue;
        }
        remember(
            &mut seen,
            dataset.as_str(),
            window,
            entry.kind(),
            entry.index,
        );
        let Some(state) = datasets.get_mut(dataset.as_str()) else {
            let mut state = DatasetState::new(window, entry.index);
            state.count(&entry.body, window);
            datasets.insert(dataset.as_str().to_owned(), state);
            continue;
        };
        let previous = state.last;
        let between = format!("entries {} and {}", state.last_index, entry.index);
        if window.start_ns() > previous.end_ns() {
            state.counted.contiguous = false;
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
            state.counted.contiguous = false;
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
        state.count(&entry.body, window);
    }
    for short in &shortfalls {
        findings.push(report_shortfall(&held, short));
        let record = short.record;
        if let Some(state) = datasets.get_mut(record.dataset.as_str()) {
            let holds = held_now(&held, record);
            state.counted.shortfalls.add(&Shortfalls {
                windows: 1,
                still_short: u64::from(record.is_short_of(holds)),
                source_records: record.source_count,
                held_records: holds,
            });
        }
    }
    let mut coverage = Coverage::default();
    for (dataset, state) in datasets {
        let counted = state.counted;
        // Holes and overlaps were reported one by one above; the counts are still the auditor's to see.
        let (reason, shape) = if counted.contiguous {
            (Reason::CoverageContiguous, "contiguous, none overlapping")
        } else {
            (
                Reason::CoverageCounted,
                "not contiguous (see coverage_gap / coverage_overlap)",
            )
        };
        findings.push(Finding::new(
            Kind::Coverage,
            &dataset,
            reason,
            format!(
                "{} from {} to {} {shape}: {}",
                windows(counted.windows.total()),
                format_ns(counted.start_ns),
                format_ns(counted.end_ns),
                tally(
                    &counted.windows,
                    &counted.gaps,
                    counted.records,
                    (counted.late, counted.late_records),
                    &counted.shortfalls
                )
            ),
        ));
        let summary = &mut coverage.summary;
        summary.windows.add(&counted.windows);
        summary.records = summary.records.saturating_add(counted.records);
        summary.late += counted.late;
        summary.late_records = summary.late_records.saturating_add(counted.late_records);
        summary.gaps.add(&counted.gaps);
        summary.shortfalls.add(&counted.shortfalls);
        coverage
            .covered_until
            .insert(dataset.clone(), counted.end_ns);
        summary.datasets.insert(dataset, counted);
    }
    (coverage, findings)
}

/// `--fail-on-gap`: one finding per dataset with declared gaps, naming their reasons, length and span.
pub(crate) fn declared_gaps(summary: &CoverageSummary) -> Vec<Finding> {
    summary
        .datasets
        .iter()
        .filter(|(_, dataset)| dataset.gaps.count > 0)
        .map(|(name, dataset)| {
            let gaps = &dataset.gaps;
            let span = match (gaps.first_start_ns, gaps.last_end_ns) {
                (Some(start), Some(end)) => {
                    format!(" between {} and {}", format_ns(start), format_ns(end))
                }
                _ => String::new(),
            };
            Finding::new(
                Kind::Coverage,
                name,
                Reason::DeclaredGaps,
                format!(
                    "{} of {} {} no data{span}: {}; --fail-on-gap requires every window collected",
                    gaps.count,
                    windows(dataset.windows.total()),
                    if gaps.count == 1 { "holds" } else { "hold" },
                    gaps.describe()
                ),
            )
        })
        .collect()
}

/// `--fail-on-gap`: one finding per dataset with shortfall entries, with the counts.
pub(crate) fn declared_shortfalls(summary: &CoverageSummary) -> Vec<Finding> {
    summary
        .datasets
        .iter()
        .filter(|(_, dataset)| dataset.shortfalls.still_short > 0)
        .map(|(name, dataset)| {
            Finding::new(
                Kind::Coverage,
                name,
                Reason::DeclaredShortfalls,
                format!(
                    "{} of {} still short: {}; --fail-on-gap requires every window whole",
                    dataset.shortfalls.still_short,
                    windows(dataset.windows.total()),
                    dataset.shortfalls.describe()
                ),
            )
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rainlogs_integrity::{
        ArchiveRecord, CollectionMethod, Dataset, EmptyRecord, Entry, GapReason, GapRecord, Name,
        ObjectRef, Origin, Sampling, Sha256Hash,
    };

    use super::*;

    /// 2026-01-15T14:00:00Z, so messages read like real ones.
    const T0: u64 = 1_768_485_600_000_000_000;
    const MIN: u64 = 60_000_000_000;

    enum Ends {
        Empty,
        Gap(GapReason),
        Archive(u64),
        /// A late entry naming the window, with this many records.
        Late(u64),
        /// A shortfall entry naming the window: the source counted this many records.
        Short(u64),
    }

    /// An entry for `[T0 + from min, T0 + to min)`.
    fn entry(index: u64, dataset: &str, from: u64, to: u64, ends: Ends) -> LoggedEntry {
        let dataset = Dataset::new(dataset).unwrap();
        let window = Window::new(T0 + from * MIN, T0 + to * MIN).unwrap();
        let method = CollectionMethod::Logpull;
        let body = match ends {
            Ends::Empty => EntryBody::Empty(EmptyRecord {
                dataset,
                window,
                method,
                sampling: Sampling::UNSAMPLED,
            }),
            Ends::Gap(reason) => EntryBody::Gap(GapRecord {
                dataset,
                window,
                method,
                reason,
            }),
            Ends::Archive(record_count) | Ends::Late(record_count) => {
                let record = ArchiveRecord {
                    dataset,
                    window,
                    method,
                    sampling: Sampling::UNSAMPLED,
                    object: ObjectRef {
                        key: format!("k{index}"),
                        version: String::new(),
                    },
                    stored_size: 1,
                    stored_sha256: Sha256Hash::ZERO,
                    content_sha256: Sha256Hash::ZERO,
                    record_count,
                    retain_until_ns: 1,
                };
                if matches!(ends, Ends::Late(_)) {
                    EntryBody::Late(record)
                } else {
                    EntryBody::Archive(record)
                }
            }
            Ends::Short(source_count) => EntryBody::Shortfall(ShortfallRecord {
                dataset,
                window,
                method: CollectionMethod::Logpush,
                source_count,
            }),
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
            entry(0, "a", 0, 1, Ends::Empty),
            entry(1, "b", 0, 5, Ends::Empty),
            entry(2, "a", 1, 2, Ends::Gap(GapReason::SourceError)),
            entry(3, "a", 2, 3, Ends::Empty),
        ];
        let (coverage, findings) = check(&log);
        assert_eq!(
            reasons(&findings),
            [Reason::CoverageContiguous, Reason::CoverageContiguous]
        );
        assert_eq!(coverage.covered_until["a"], T0 + 3 * MIN);
    }

    #[test]
    fn holes_and_overlaps_are_named_and_the_windows_still_counted() {
        let log = [
            entry(0, "a", 0, 1, Ends::Empty),
            entry(1, "a", 2, 3, Ends::Archive(4)),
            entry(2, "a", 2, 4, Ends::Empty),
        ];
        let (coverage, findings) = check(&log);
        assert_eq!(
            reasons(&findings),
            [
                Reason::CoverageGap,
                Reason::CoverageOverlap,
                Reason::CoverageCounted
            ]
        );
        let a = &coverage.summary.datasets["a"];
        assert!(!a.contiguous);
        assert_eq!((a.windows.total(), a.records), (3, 4));
        assert!(
            findings[2].message.starts_with(
                "3 windows from 2026-01-15T14:00:00Z to 2026-01-15T14:04:00Z not contiguous"
            ),
            "{}",
            findings[2].message
        );
    }

    /// Dataset `a`: 2 archive, 1 empty and 3 gap windows of two reasons and unequal lengths; `b`: no gaps.
    fn log_with_gaps() -> Vec<LoggedEntry> {
        vec![
            entry(0, "a", 0, 5, Ends::Archive(120)),
            entry(1, "b", 0, 60, Ends::Archive(9)),
            entry(2, "a", 5, 10, Ends::Gap(GapReason::SourceError)),
            entry(3, "a", 10, 40, Ends::Gap(GapReason::CollectorOutage)),
            entry(4, "a", 40, 45, Ends::Empty),
            entry(5, "a", 45, 50, Ends::Gap(GapReason::CollectorOutage)),
            entry(6, "a", 50, 55, Ends::Archive(30)),
        ]
    }

    #[test]
    fn windows_are_counted_by_kind_and_gaps_by_reason_and_time() {
        let (coverage, findings) = check(&log_with_gaps());
        assert_eq!(
            findings[0].to_string(),
            "coverage\ta\tOK: coverage_contiguous: 6 windows from 2026-01-15T14:00:00Z to \
             2026-01-15T14:55:00Z contiguous, none overlapping: 2 archive, 1 empty, 3 gap; declared gaps \
             40m: 2 × collector_outage 35m, 1 × source_error 5m; 150 records"
        );
        assert_eq!(
            findings[1].message,
            "1 window from 2026-01-15T14:00:00Z to 2026-01-15T15:00:00Z contiguous, none overlapping: \
             1 archive, 0 empty, 0 gap; no declared gaps; 9 records"
        );
        let summary = &coverage.summary;
        let a = &summary.datasets["a"];
        assert_eq!(
            a.windows,
            WindowCounts {
                archive: 2,
                empty: 1,
                gap: 3
            }
        );
        assert_eq!(
            (a.records, a.gaps.count, a.gaps.duration_ns),
            (150, 3, 40 * MIN)
        );
        assert_eq!(
            a.gaps.by_reason["collector_outage"],
            GapTally {
                count: 2,
                duration_ns: 35 * MIN
            }
        );
        assert_eq!(a.gaps.first_start_ns, Some(T0 + 5 * MIN));
        assert_eq!(a.gaps.last_end_ns, Some(T0 + 50 * MIN));
        assert_eq!(summary.datasets["b"].gaps, Gaps::default());
        assert_eq!(summary.windows.total(), 7);
        assert_eq!((summary.records, summary.gaps.count), (159, 3));
        assert_eq!(summary.gaps.by_reason["source_error"].duration_ns, 5 * MIN);
        assert_eq!(
            summary.describe(),
            "7 windows in 2 datasets: 3 archive, 1 empty, 3 gap; declared gaps 40m: 2 × collector_outage \
             35m, 1 × source_error 5m; 159 records"
        );
    }

    #[test]
    fn fail_on_gap_names_each_dataset_with_gaps() {
        let (coverage, _) = check(&log_with_gaps());
        let findings = declared_gaps(&coverage.summary);
        assert_eq!(reasons(&findings), [Reason::DeclaredGaps]);
        assert_eq!(
            findings[0].to_string(),
            "coverage\ta\tGAP: declared_gaps: 3 of 6 windows hold no data between 2026-01-15T14:05:00Z and \
             2026-01-15T14:50:00Z: declared gaps 40m: 2 × collector_outage 35m, 1 × source_error 5m; \
             --fail-on-gap requires every window collected"
        );
        let (clean, _) = check(&log_with_gaps()[..2]);
        assert!(declared_gaps(&clean.summary).is_empty());
    }

    #[test]
    fn late_entries_are_counted_beside_the_windows_and_do_not_touch_contiguity() {
        let log = [
            entry(0, "a", 0, 1, Ends::Archive(4)),
            entry(1, "a", 1, 2, Ends::Empty),
            entry(2, "a", 0, 1, Ends::Late(3)),
            entry(3, "a", 1, 2, Ends::Late(2)),
            entry(4, "a", 1, 2, Ends::Late(1)),
            entry(5, "a", 2, 3, Ends::Empty),
            entry(6, "b", 0, 5, Ends::Empty),
        ];
        let (coverage, findings) = check(&log);
        assert_eq!(
            reasons(&findings),
            [Reason::CoverageContiguous, Reason::CoverageContiguous]
        );
        assert_eq!(
            findings[0].message,
            "3 windows from 2026-01-15T14:00:00Z to 2026-01-15T14:03:00Z contiguous, none overlapping: \
             1 archive, 2 empty, 0 gap; no declared gaps; 4 records; 3 late entries with 6 records"
        );
        // Without late entries the line is what it always was.
        assert!(
            findings[1]
                .message
                .ends_with("; no declared gaps; 0 records")
        );
        let summary = &coverage.summary;
        let a = &summary.datasets["a"];
        assert_eq!((a.windows.total(), a.records), (3, 4));
        assert_eq!((a.late, a.late_records), (3, 6));
        assert_eq!((summary.late, summary.late_records), (3, 6));
        assert!(
            summary
                .describe()
                .ends_with("; 4 records; 3 late entries with 6 records"),
            "{}",
            summary.describe()
        );
        assert_eq!(coverage.covered_until["a"], T0 + 3 * MIN);
        // JSON names late counts only where there are some.
        let json = serde_json::to_value(summary).unwrap();
        assert_eq!(json["late"], 3);
        assert_eq!(json["datasets"]["a"]["late_records"], 6);
        assert!(json["datasets"]["b"].get("late").is_none());
        assert!(json["datasets"]["b"].get("late_records").is_none());
        let one = [
            entry(0, "a", 0, 1, Ends::Empty),
            entry(1, "a", 0, 1, Ends::Late(1)),
        ];
        assert!(
            check(&one).1[0]
                .message
                .ends_with("; 1 late entry with 1 records")
        );
    }

    #[test]
    fn a_late_entry_must_name_an_earlier_archive_or_empty_window_exactly() {
        let log = [
            entry(0, "a", 0, 1, Ends::Archive(4)),
            entry(1, "a", 1, 2, Ends::Gap(GapReason::CollectorOutage)),
            entry(2, "b", 0, 1, Ends::Empty),
            // A declared gap window.
            entry(3, "a", 1, 2, Ends::Late(1)),
            // Part of a window, and a window spanning two.
            entry(4, "a", 0, 2, Ends::Late(1)),
            // A window sealed only after the late entry.
            entry(5, "a", 2, 3, Ends::Late(1)),
            entry(6, "a", 2, 3, Ends::Empty),
            // Another dataset's window.
            entry(7, "c", 0, 1, Ends::Late(1)),
            // Fine: these name earlier windows exactly.
            entry(8, "a", 2, 3, Ends::Late(1)),
            entry(9, "b", 0, 1, Ends::Late(1)),
        ];
        let (coverage, findings) = check(&log);
        let late: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.reason == Reason::LateWithoutWindow)
            .collect();
        assert_eq!(late.len(), 4, "{findings:#?}");
        assert!(
            late.iter()
                .all(|f| f.status() == crate::finding::Status::Tamper)
        );
        assert!(
            late[0].message.starts_with(
                "late entry 3 (k3) names [2026-01-15T14:01:00Z, 2026-01-15T14:02:00Z), \
                 which entry 1 accounts for as a gap window"
            ),
            "{}",
            late[0].message
        );
        assert!(late[1].message.contains("late entry 4 (k4)"));
        assert!(late[2].message.contains("late entry 5 (k5)"));
        assert_eq!(
            (late[3].path.as_str(), late[3].message.contains("of c")),
            ("c", true)
        );
        // Coverage itself is untouched by late entries, and each is counted in its dataset.
        assert!(coverage.summary.datasets["a"].contiguous);
        assert_eq!(coverage.summary.datasets["a"].late, 4);
        assert_eq!(coverage.summary.datasets["b"].late, 1);
        assert!(!coverage.summary.datasets.contains_key("c"));
    }

    #[test]
    fn shortfalls_are_reported_with_the_counts_and_held_to_their_rules() {
        let log = [
            entry(0, "a", 0, 1, Ends::Archive(90)),
            entry(1, "a", 1, 2, Ends::Empty),
            entry(2, "a", 2, 3, Ends::Gap(GapReason::SourceError)),
            entry(3, "a", 3, 4, Ends::Archive(10)),
            // Valid: 100 counted, 90 held; the late records that come after are counted as held now.
            entry(4, "a", 0, 1, Ends::Short(100)),
            entry(5, "a", 0, 1, Ends::Late(4)),
            // Valid: an empty window the source counted 7 records for.
            entry(6, "a", 1, 2, Ends::Short(7)),
            // A second shortfall for a window.
            entry(7, "a", 1, 2, Ends::Short(9)),
            // A gap window, and a window no entry accounts for yet.
            entry(8, "a", 2, 3, Ends::Short(5)),
            entry(9, "a", 4, 5, Ends::Short(5)),
            // No more than the log holds already.
            entry(10, "a", 3, 4, Ends::Short(10)),
        ];
        let (coverage, findings) = check(&log);
        let of =
            |reason| -> Vec<&Finding> { findings.iter().filter(|f| f.reason == reason).collect() };
        let short = of(Reason::WindowShort);
        assert_eq!(short.len(), 2, "{findings:#?}");
        assert_eq!(
            short[0].to_string(),
            "coverage\ta\tINFO: window_short: window [2026-01-15T14:00:00Z, 2026-01-15T14:01:00Z) is incomplete \
             (shortfall entry 4): the source (logpush) counted 100 records, the log holds 94"
        );
        assert!(
            short[1]
                .message
                .contains("counted 7 records, the log holds 0")
        );
        let without = of(Reason::ShortfallWithoutWindow);
        assert_eq!(without.len(), 2, "{findings:#?}");
        assert!(without[0].message.contains("accounts for as a gap window"));
        assert!(without[1].message.contains("shortfall entry 9"));
        let invalid = of(Reason::ShortfallInvalid);
        assert_eq!(invalid.len(), 2, "{findings:#?}");
        assert!(invalid[0].message.contains("a second shortfall"));
        assert!(invalid[1].message.contains("but the log already held 10"));
        assert!(
            invalid
                .iter()
                .chain(&without)
                .all(|f| f.status() == crate::finding::Status::Tamper)
        );
        // Coverage is untouched; the dataset and the summary carry the totals.
        let a = &coverage.summary.datasets["a"];
        assert!(a.contiguous);
        let expected = Shortfalls {
            windows: 2,
            still_short: 2,
            source_records: 107,
            held_records: 94,
        };
        assert_eq!(
            (a.shortfalls, coverage.summary.shortfalls),
            (expected, expected)
        );
        assert!(
            coverage.summary.describe().ends_with(
                "; 1 late entry with 4 records; 2 windows short of the source's count (it counted 107 records, \
                 the log holds 94)"
            ),
            "{}",
            coverage.summary.describe()
        );
        let declared = declared_shortfalls(&coverage.summary);
        assert_eq!(declared.len(), 1);
        assert_eq!(declared[0].status(), crate::finding::Status::Gap);
        assert!(
            declared[0]
                .message
                .starts_with("2 of 4 windows still short: 2 windows short")
        );
        let clean = check(&log[..4]).0;
        assert!(declared_shortfalls(&clean.summary).is_empty());
        assert!(!clean.summary.describe().contains("short"));

        // Records that came after the shortfall (a repair) make the window whole: still reported, no longer
        // failed on.
        let repaired = [
            entry(0, "a", 0, 1, Ends::Archive(90)),
            entry(1, "a", 0, 1, Ends::Short(100)),
            entry(2, "a", 0, 1, Ends::Late(10)),
        ];
        let (coverage, findings) = check(&repaired);
        let short: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.reason == Reason::WindowShort)
            .collect();
        assert!(
            short[0].message.contains(
                "was short and has been made whole by later records (shortfall entry 1): \
                 the source (logpush) counted 100 records, the log holds 100"
            ),
            "{}",
            short[0].message
        );
        assert!(
            coverage
                .summary
                .describe()
                .ends_with("), 1 made whole since"),
            "{}",
            coverage.summary.describe()
        );
        assert!(declared_shortfalls(&coverage.summary).is_empty());
    }
}
