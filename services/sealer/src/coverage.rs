//! Which windows a zone's log already accounts for, per dataset.
//!
//! The verifier requires the `archive`, `empty` and `gap` windows of a dataset, in log order, to
//! be contiguous and not to overlap (docs/FORMAT.md §9.5). The sealer keeps the log that way, so
//! the covered time of a dataset is one span `[first start, end)`, and deciding whether a window
//! is new, already sealed, early or overlapping needs only that span: state stays small however
//! long the log grows.

use std::collections::{HashMap, HashSet};

use rainlogs_integrity::{CollectionMethod, Dataset, EntryBody, Window};

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
                return;
            }
            EntryBody::Prune(_) | EntryBody::Key(_) | EntryBody::Erasure => return,
        };
        self.last_method = Some(method);
        let span = self.datasets.entry(dataset.clone()).or_insert(Span {
            first_start_ns: window.start_ns(),
            end_ns: window.end_ns(),
            method,
        });
        span.first_start_ns = span.first_start_ns.min(window.start_ns());
        span.end_ns = span.end_ns.max(window.end_ns());
        span.method = method;
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
}
