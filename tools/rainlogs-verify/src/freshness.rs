//! Freshness: the sealer seals an entry for every window, so the newest entry's `sealed_at_ns` tells how
//! current the log claims to be. A log cut back to an older checkpoint (tail truncation) looks old.

use std::time::Duration;

use crate::finding::{Finding, Kind, Reason};
use crate::options::format_ns;

/// Judges the newest entry's age. Returns whether the log counts as fresh, and the finding.
pub(crate) fn check(
    newest_sealed_ns: Option<u64>,
    now_ns: u64,
    max_staleness: Option<Duration>,
    path: &str,
) -> (bool, Finding) {
    let Some(max) = max_staleness else {
        let finding = Finding::new(
            Kind::Freshness,
            path,
            Reason::StalenessNotChecked,
            "--max-staleness off: a truncated tail is only caught with --state",
        );
        return (true, finding);
    };
    let Some(newest) = newest_sealed_ns else {
        let finding = Finding::new(
            Kind::Freshness,
            path,
            Reason::EmptyLog,
            "no entry could be read, so nothing shows the log is current",
        );
        return (false, finding);
    };
    let age = Duration::from_nanos(now_ns.saturating_sub(newest));
    let age_text = humantime::format_duration(Duration::from_secs(age.as_secs()));
    if age > max {
        let finding = Finding::new(
            Kind::Freshness,
            path,
            Reason::CheckpointStale,
            format!(
                "newest entry sealed {} ({age_text} ago), more than --max-staleness {}: entries after it may have been cut off, or the sealer stopped",
                format_ns(newest),
                humantime::format_duration(max)
            ),
        );
        return (false, finding);
    }
    let finding = Finding::new(
        Kind::Freshness,
        path,
        Reason::Fresh,
        format!("newest entry sealed {} ({age_text} ago)", format_ns(newest)),
    );
    (true, finding)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_NS: u64 = 3_600_000_000_000;

    #[test]
    fn age_beyond_the_limit_is_tail_truncation_evidence() {
        let max = Some(Duration::from_secs(7200));
        let now = 100 * HOUR_NS;
        assert_eq!(
            check(Some(now - HOUR_NS), now, max, "p").1.reason,
            Reason::Fresh
        );
        let (fresh, stale) = check(Some(now - 3 * HOUR_NS), now, max, "p");
        assert!(!fresh);
        assert_eq!(stale.reason, Reason::CheckpointStale);
        assert_eq!(check(None, now, max, "p").1.reason, Reason::EmptyLog);
        assert_eq!(
            check(Some(0), now, None, "p").1.reason,
            Reason::StalenessNotChecked
        );
    }
}
