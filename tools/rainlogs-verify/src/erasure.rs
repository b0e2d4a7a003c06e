//! Erasure (docs/FORMAT.md §4.2, §9 step 8): an `erasure` entry says the tenant was erased at its
//! `sealed_at_ns`, so the log stops on purpose. Window entries after it must end no later than
//! that time (collected before the erasure, sealed just after); a second erasure is a fault. A `late` entry
//! after it archived records of the erased tenant, whatever window they belong to; a `shortfall` entry
//! after it counted them.

use rainlogs_integrity::EntryBody;

use crate::finding::{Finding, Kind, Reason};
use crate::log::LoggedEntry;
use crate::options::format_ns;

/// When the log's tenant was erased (the first erasure entry), and what the entries after it say.
pub(crate) fn check<'a>(
    entries: impl Iterator<Item = &'a LoggedEntry>,
) -> (Option<u64>, Vec<Finding>) {
    let mut erased_at = None;
    let mut findings = Vec::new();
    for logged in entries {
        let entry = &logged.entry;
        let path = format!("entry {}", entry.index);
        match (&entry.body, erased_at) {
            (EntryBody::Erasure, None) => {
                erased_at = Some(entry.sealed_at_ns);
                findings.push(Finding::new(
                    Kind::Log,
                    path,
                    Reason::TenantErased,
                    format!(
                        "the tenant was erased at {}; nothing after it is collected",
                        format_ns(entry.sealed_at_ns)
                    ),
                ));
            }
            (EntryBody::Erasure, Some(first)) => findings.push(Finding::new(
                Kind::Log,
                path,
                Reason::WindowAfterErasure,
                format!(
                    "a second erasure entry; the tenant was erased at {}",
                    format_ns(first)
                ),
            )),
            (EntryBody::Late(late), Some(at)) => findings.push(Finding::new(
                Kind::Log,
                path,
                Reason::LateAfterErasure,
                format!(
                    "late entry for the {} window [{}, {}) ({}) follows the erasure at {}: records were \
                     archived after the tenant was erased",
                    late.dataset,
                    format_ns(late.window.start_ns()),
                    format_ns(late.window.end_ns()),
                    late.object.key,
                    format_ns(at)
                ),
            )),
            (EntryBody::Shortfall(short), Some(at)) => findings.push(Finding::new(
                Kind::Log,
                path,
                Reason::ShortfallAfterErasure,
                format!(
                    "shortfall entry for the {} window [{}, {}) follows the erasure at {}",
                    short.dataset,
                    format_ns(short.window.start_ns()),
                    format_ns(short.window.end_ns()),
                    format_ns(at)
                ),
            )),
            (body, Some(at)) => {
                // Only window entries have a window.
                if let Some(window) = body.window().filter(|w| w.end_ns() > at) {
                    findings.push(Finding::new(
                        Kind::Log,
                        path,
                        Reason::WindowAfterErasure,
                        format!(
                            "{} window ending {} is after the erasure at {}",
                            entry.kind().as_str(),
                            format_ns(window.end_ns()),
                            format_ns(at)
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    (erased_at, findings)
}
