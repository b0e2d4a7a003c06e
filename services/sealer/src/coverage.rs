//! Which windows a zone's log already accounts for, per dataset.
//!
//! The verifier requires the `archive`, `empty` and `gap` windows of a dataset, in log order, to
//! be contiguous and not to overlap (docs/FORMAT.md §9.5). The sealer keeps the log that way, so
//! the covered time of a dataset is one span `[first start, end)`, and deciding whether a window
//! is new, already sealed, early or overlapping needs only that span: state stays small however
//! long the log grows.

use std::collections::{BTreeMap, HashMap, HashSet};

use rainlogs_integrity::{CollectionMethod, Dataset, EntryBody, ShortfallRecord, Window};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    first_start_ns: u64,
    end_ns: u64,
    method: CollectionMethod,
}

/// Where a window falls relative to what is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Starts where the dataset's covered span ends (or the dataset is new): seal it.
    Next,
    /// Inside the covered span: the window already has its entry.
    Sealed,
    /// Starts after the covered span ends: an earlier window has no entry yet.
    Early { covered_until_ns: u64 },
    /// Crosses the covered span's edge or lies before it: sealing it would break the order.
    Overlapping {
        covered_from_ns: u64,
        covered_until_ns: u64,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Coverage {
    datasets: HashMap<Dataset, Span>,
    last_method: Option<CollectionMethod>,
    /// Object keys of the sealed `late` entries: a late archive is sealed once, and its key
    /// (derived from its content) is what tells a redelivery from a new late archive.
    late_objects: HashSet<String>,
    /// Per dataset, the windows sealed in the last [`LATE_HORIZON_NS`] before its covered end,
    /// by start. Only recent windows are kept, so state stays small.
    recent: HashMap<Dataset, BTreeMap<u64, RecentWindow>>,
}

/// A recently sealed window, as late records and shortfalls see it.
#[derive(Debug, Clone, Copy)]
struct RecentWindow {
    end_ns: u64,
    /// Archive and empty windows take late records and shortfalls; a gap does not.
    takes_late: bool,
    /// Records the log holds for the window: its archive's and its late entries'.
    held: u64,
    /// Whether the window has its `shortfall` entry.
    short: bool,
}

/// How far back late records are taken: pushed parts live 7 days in `RL_PUSH`, so no late
/// record can name a window much older than that.
pub const LATE_HORIZON_NS: u64 = 8 * 24 * 3600 * 1_000_000_000;

/// Whether a shortfall may be logged for a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShortfallTarget {
    /// An archive or empty window without a shortfall, holding fewer records than counted.
    Takes,
    /// The window's shortfall is logged already.
    Logged,
    /// The log holds as many records as the source counted, within the tolerance (late records
    /// came first).
    Whole { held: u64 },
    /// Not a window a shortfall can name, or not short; why.
    Refused(String),
    /// Not sealed yet: wait for its entry.
    NotYet,
}

/// Whether late records may be added to a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LateTarget {
    /// An archive or empty window sealed exactly so.
    Takes,
    /// Not a window late records can join; why.
    Refused(String),
    /// Not sealed yet: wait for its entry.
    NotYet,
}

impl Coverage {
    pub fn place(&self, dataset: &Dataset, window: &Window) -> Placement {
        let Some(span) = self.datasets.get(dataset) else {
            return Placement::Next;
        };
        if window.start_ns() == span.end_ns {
            Placement::Next
        } else if window.start_ns() > span.end_ns {
            Placement::Early {
                covered_until_ns: span.end_ns,
            }
        } else if window.start_ns() >= span.first_start_ns && window.end_ns() <= span.end_ns {
            Placement::Sealed
        } else {
            Placement::Overlapping {
                covered_from_ns: span.first_start_ns,
                covered_until_ns: span.end_ns,
            }
        }
    }

    /// Whether late records may join `window` of `dataset` (docs/FORMAT.md §9: a late entry
    /// names a window an earlier archive or empty entry accounts for, exactly).
    pub fn late_target(&self, dataset: &Dataset, window: &Window) -> LateTarget {
        match self.place(dataset, window) {
            Placement::Next | Placement::Early { .. } => return LateTarget::NotYet,
            Placement::Overlapping { .. } | Placement::Sealed => {}
        }
        match self.recent_window(dataset, window) {
            Ok(_) => LateTarget::Takes,
            Err(why) => LateTarget::Refused(why),
        }
    }

    /// Whether a shortfall of `source_count` records may be logged for `window` of `dataset`
    /// (docs/FORMAT.md §9: it names a window as a late entry does, once, and counts more than
    /// the log holds for it).
    pub fn shortfall_target(
        &self,
        dataset: &Dataset,
        window: &Window,
        source_count: u64,
    ) -> ShortfallTarget {
        match self.place(dataset, window) {
            Placement::Next | Placement::Early { .. } => return ShortfallTarget::NotYet,
            Placement::Overlapping { .. } | Placement::Sealed => {}
        }
        match self.recent_window(dataset, window) {
            Ok(recent) if recent.short => ShortfallTarget::Logged,
            Ok(recent)
                if source_count
                    <= recent
                        .held
                        .saturating_add(ShortfallRecord::tolerance(source_count)) =>
            {
                ShortfallTarget::Whole { held: recent.held }
            }
            Ok(_) => ShortfallTarget::Takes,
            Err(why) => ShortfallTarget::Refused(why),
        }
    }

    /// The sealed archive or empty window with exactly these bounds, or why there is none.
    fn recent_window(&self, dataset: &Dataset, window: &Window) -> Result<RecentWindow, String> {
        let found = self
            .recent
            .get(dataset)
            .and_then(|windows| windows.get(&window.start_ns()));
        match found {
            Some(recent) if !recent.takes_late => Err("the window is a gap".into()),
            Some(recent) if recent.end_ns == window.end_ns() => Ok(*recent),
            Some(_) => Err("no sealed window has exactly these bounds".into()),
            None => Err("no sealed window starts there within the last 8 days of the log".into()),
        }
    }

    /// Whether a `late` entry for this object is sealed.
    pub fn has_late(&self, object_key: &str) -> bool {
        self.late_objects.contains(object_key)
    }

    /// Whether the dataset has no entry yet.
    pub fn is_new(&self, dataset: &Dataset) -> bool {
        !self.datasets.contains_key(dataset)
    }

    /// Takes a sealed entry into account (entries of any kind, in log order).
    pub fn record(&mut self, body: &EntryBody) {
        let (dataset, window, method) = match body {
            EntryBody::Archive(r) => (&r.dataset, r.window, r.method),
            EntryBody::Empty(r) => (&r.dataset, r.window, r.method),
            EntryBody::Gap(r) => (&r.dataset, r.window, r.method),
            EntryBody::Late(r) => {
                self.late_objects.insert(r.object.key.clone());
                if let Some(recent) = self.recent_mut(&r.dataset, &r.window) {
                    recent.held = recent.held.saturating_add(r.record_count);
                }
                return;
            }
            EntryBody::Shortfall(r) => {
                if let Some(recent) = self.recent_mut(&r.dataset, &r.window) {
                    recent.short = true;
                }
                return;
            }
            EntryBody::Prune(_) | EntryBody::Index(_) | EntryBody::Key(_) | EntryBody::Erasure => {
                return;
            }
        };
        self.last_method = Some(method);
        let recent = self.recent.entry(dataset.clone()).or_default();
        recent.insert(
            window.start_ns(),
            RecentWindow {
                end_ns: window.end_ns(),
                takes_late: !matches!(body, EntryBody::Gap(_)),
                held: body.archive().map_or(0, |r| r.record_count),
                short: false,
            },
        );
        let horizon = window.end_ns().saturating_sub(LATE_HORIZON_NS);
        while recent
            .first_key_value()
            .is_some_and(|(_, recent)| recent.end_ns < horizon)
        {
            recent.pop_first();
        }
        let span = self.datasets.entry(dataset.clone()).or_insert(Span {
            first_start_ns: window.start_ns(),
            end_ns: window.end_ns(),
            method,
        });
        span.first_start_ns = span.first_start_ns.min(window.start_ns());
        span.end_ns = span.end_ns.max(window.end_ns());
        span.method = method;
    }

    fn recent_mut(&mut self, dataset: &Dataset, window: &Window) -> Option<&mut RecentWindow> {
        self.recent
            .get_mut(dataset)?
            .get_mut(&window.start_ns())
            .filter(|recent| recent.end_ns == window.end_ns())
    }

    /// Collection method for a gap of `dataset`, whose event does not name one: that of the
    /// dataset's previous entry, else of the zone's previous entry, else Logpull.
    pub fn method_for(&self, dataset: &Dataset) -> CollectionMethod {
        self.datasets
            .get(dataset)
            .map(|s| s.method)
            .or(self.last_method)
            .unwrap_or(CollectionMethod::Logpull)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rainlogs_integrity::{EmptyRecord, Sampling};

    fn w(start: u64, end: u64) -> Window {
        Window::new(start, end).unwrap()
    }

    fn empty(dataset: &Dataset, window: Window) -> EntryBody {
        EntryBody::Empty(EmptyRecord {
            dataset: dataset.clone(),
            window,
            method: CollectionMethod::Graphql,
            sampling: Sampling::PerRecord,
        })
    }

    #[test]
    fn windows_are_placed_against_the_covered_span() {
        let http = Dataset::new("http_requests").unwrap();
        let fw = Dataset::new("firewall_events").unwrap();
        let mut c = Coverage::default();
        assert_eq!(c.place(&http, &w(100, 160)), Placement::Next);
        c.record(&empty(&http, w(100, 160)));
        c.record(&empty(&http, w(160, 220)));
        assert_eq!(c.place(&http, &w(220, 280)), Placement::Next);
        assert_eq!(c.place(&http, &w(160, 220)), Placement::Sealed);
        assert_eq!(c.place(&http, &w(100, 160)), Placement::Sealed);
        assert_eq!(
            c.place(&http, &w(280, 340)),
            Placement::Early {
                covered_until_ns: 220
            }
        );
        assert!(matches!(
            c.place(&http, &w(190, 250)),
            Placement::Overlapping { .. }
        ));
        assert!(matches!(
            c.place(&http, &w(40, 100)),
            Placement::Overlapping { .. }
        ));
        assert_eq!(
            c.place(&fw, &w(0, 60)),
            Placement::Next,
            "datasets are independent"
        );
        assert_eq!(
            c.method_for(&fw),
            CollectionMethod::Graphql,
            "zone's last method"
        );
    }

    #[test]
    fn late_records_join_only_an_archive_or_empty_window_sealed_exactly_so() {
        use rainlogs_integrity::{GapReason, GapRecord};
        let http = Dataset::new("http_requests").unwrap();
        let mut c = Coverage::default();
        c.record(&empty(&http, w(100, 160)));
        c.record(&EntryBody::Gap(GapRecord {
            dataset: http.clone(),
            window: w(160, 220),
            method: CollectionMethod::Logpush,
            reason: GapReason::OperatorSkip,
        }));
        assert_eq!(c.late_target(&http, &w(100, 160)), LateTarget::Takes);
        assert!(matches!(
            c.late_target(&http, &w(160, 220)),
            LateTarget::Refused(why) if why.contains("gap")
        ));
        assert!(matches!(
            c.late_target(&http, &w(100, 130)),
            LateTarget::Refused(_)
        ));
        assert_eq!(c.late_target(&http, &w(220, 280)), LateTarget::NotYet);
        // Windows older than the horizon are forgotten, and refused.
        let day = 24 * 3600 * 1_000_000_000;
        c.record(&empty(&http, w(220, 9 * day)));
        assert!(matches!(
            c.late_target(&http, &w(100, 160)),
            LateTarget::Refused(_)
        ));
        assert_eq!(c.late_target(&http, &w(220, 9 * day)), LateTarget::Takes);
    }

    #[test]
    fn a_shortfall_names_a_window_once_and_counts_more_than_the_log_holds() {
        use rainlogs_integrity::{ArchiveRecord, ObjectRef, Sha256Hash};
        let http = Dataset::new("http_requests").unwrap();
        let archive = |window: Window, records: u64, late: bool| {
            let record = ArchiveRecord {
                dataset: http.clone(),
                window,
                method: CollectionMethod::Logpush,
                sampling: Sampling::UNSAMPLED,
                object: ObjectRef {
                    key: format!("k{records}{late}"),
                    version: String::new(),
                },
                stored_size: 1,
                stored_sha256: Sha256Hash::ZERO,
                content_sha256: Sha256Hash::ZERO,
                record_count: records,
                retain_until_ns: 1,
            };
            if late {
                EntryBody::Late(record)
            } else {
                EntryBody::Archive(record)
            }
        };
        let mut c = Coverage::default();
        c.record(&archive(w(100, 160), 90, false));
        c.record(&empty(&http, w(160, 220)));
        assert_eq!(
            c.shortfall_target(&http, &w(100, 160), 100),
            ShortfallTarget::Takes
        );
        assert_eq!(
            c.shortfall_target(&http, &w(220, 280), 100),
            ShortfallTarget::NotYet
        );
        // Late records count toward what the window holds; within the tolerance it is whole.
        c.record(&archive(w(100, 160), 5, true));
        assert_eq!(
            c.shortfall_target(&http, &w(100, 160), 100),
            ShortfallTarget::Whole { held: 95 }
        );
        assert_eq!(
            c.shortfall_target(&http, &w(160, 220), 6),
            ShortfallTarget::Takes,
            "an empty window holds nothing"
        );
        c.record(&EntryBody::Shortfall(ShortfallRecord {
            dataset: http.clone(),
            window: w(160, 220),
            method: CollectionMethod::Logpush,
            source_count: 7,
        }));
        assert_eq!(
            c.shortfall_target(&http, &w(160, 220), 7),
            ShortfallTarget::Logged
        );
        assert!(matches!(
            c.shortfall_target(&http, &w(160, 190), 7),
            ShortfallTarget::Refused(_)
        ));
    }
}
