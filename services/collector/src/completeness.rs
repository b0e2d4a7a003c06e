//! The cross-check of a Logpush zone against Cloudflare's own counts. Logpush cannot backfill
//! and drops a batch for good once its retries run out, so an archive built from pushes is
//! complete only if Cloudflare says so: its GraphQL analytics count the zone's requests per
//! minute (`httpRequestsAdaptiveGroups`), and its Logpush health counts the records it gave up
//! delivering (`logpushHealthAdaptiveGroups`).
//!
//! The request counts are adaptively sampled, so they are estimates: a window falls short only
//! when it holds fewer records than Cloudflare counted by more than [`tolerance`] (5 % of the
//! count, and at least 5 records, which also absorbs requests dated across a window's edge).
//! Windows are checked once their close is [`CHECK_EVERY`] old, in one query per hour of
//! windows, so a zone costs Cloudflare's GraphQL budget a few queries an hour. Late records
//! count for their window until it is checked; those that arrive later are not counted. The
//! windows waiting for their check are saved with the zone's push cursor, so the process that
//! takes the zone next checks them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use rainlogs_cloudflare::{LogpushHealth, RequestsPerMinute};
use rainlogs_schemas::events::Window;

/// How often a zone's closed windows are checked, in collector seconds; also how long after its
/// close a window waits, so that Cloudflare's analytics have counted it.
pub const CHECK_EVERY: i64 = 300;
/// The most windows one check covers (one hour of one-minute windows).
const MAX_SPAN: i64 = 3600;
/// Closed windows kept for checking; older ones are forgotten unchecked (after a long outage
/// of Cloudflare's analytics).
const KEEP: i64 = 6 * 3600;

/// How far below Cloudflare's count a window may fall and still count as complete.
pub fn tolerance(expected: u64) -> u64 {
    rainlogs_integrity::ShortfallRecord::tolerance(expected)
}

/// A window that holds fewer records than Cloudflare counted, beyond the tolerance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortfall {
    pub window: Window,
    /// Cloudflare's count of the window's requests.
    pub expected: u64,
    /// Records the window's close holds.
    pub archived: u64,
}

/// What one check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Finding {
    /// `[start, end)` of the windows checked.
    pub checked: Option<Window>,
    pub windows: u64,
    pub short: Vec<Shortfall>,
    /// Records Cloudflare reports its job gave up delivering in `dropped_span` (by upload time:
    /// a batch is given up minutes after its records' windows).
    pub dropped: u64,
    pub dropped_span: Option<Window>,
}

impl Finding {
    /// The finding in words for the zone's health, when something is missing.
    pub fn trouble(&self) -> Option<String> {
        if self.short.is_empty() && self.dropped == 0 {
            return None;
        }
        let mut words = Vec::new();
        if let Some(checked) = self.checked.filter(|_| !self.short.is_empty()) {
            let examples: Vec<String> = self
                .short
                .iter()
                .take(3)
                .map(|s| {
                    format!(
                        "{} holds {} of {} (tolerance {})",
                        clock_time(s.window.start),
                        s.archived,
                        s.expected,
                        tolerance(s.expected)
                    )
                })
                .collect();
            words.push(format!(
                "{} of {} windows from {} to {} hold fewer records than Cloudflare counted: {}{}",
                self.short.len(),
                self.windows,
                clock_time(checked.start),
                clock_time(checked.end),
                examples.join(", "),
                if self.short.len() > 3 { ", …" } else { "" }
            ));
        }
        if let Some(span) = self.dropped_span.filter(|_| self.dropped > 0) {
            words.push(format!(
                "Cloudflare reports {} records its Logpush job gave up delivering between {} and {}",
                self.dropped,
                clock_time(span.start),
                clock_time(span.end)
            ));
        }
        Some(format!(
            "incomplete: {}; Logpush cannot send them again",
            words.join("; ")
        ))
    }
}

/// What survives a restart: the closed windows not checked yet, by start, with the records
/// their closes hold, and how far Cloudflare's Logpush health was read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unchecked {
    pub windows: BTreeMap<i64, u64>,
    /// Cloudflare's Logpush health is read up to here (by upload time), each minute once.
    pub health_until: Option<i64>,
}

impl Unchecked {
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty() && self.health_until.is_none()
    }
}

/// Closed windows of one zone and dataset, with the records their closes hold, until checked.
#[derive(Debug)]
pub struct Completeness {
    size: i64,
    closed: BTreeMap<i64, u64>,
    last_check: Option<i64>,
    /// Cloudflare's Logpush health is read up to here (by upload time), each minute once.
    health_until: Option<i64>,
    /// Windows starting earlier are not checked: Cloudflare counted requests in them that the
    /// job never pushed, as it was not pushing yet (made, switched on, or watched by this
    /// process only since).
    not_before: i64,
}

impl Completeness {
    pub fn new(size: i64) -> Self {
        Self {
            size,
            closed: BTreeMap::new(),
            last_check: None,
            health_until: None,
            not_before: i64::MIN,
        }
    }

    /// What a process taking the zone next needs to check what this one closed.
    pub fn unchecked(&self) -> Unchecked {
        Unchecked {
            windows: self.closed.clone(),
            health_until: self.health_until,
        }
    }

    /// Takes over the windows an earlier owner of the zone closed and did not check. They were
    /// closed while that owner knew the job pushed, so [`Self::pushing_from`] does not apply.
    pub fn restore(&mut self, unchecked: Unchecked) {
        for (start, records) in unchecked.windows {
            self.closed.entry(start).or_insert(records);
        }
        self.health_until = self.health_until.max(unchecked.health_until);
    }

    /// The job pushes only from `now` on: the window around it and earlier ones hold part of
    /// what Cloudflare counted, by design, and are not checked.
    pub fn pushing_from(&mut self, now: i64) {
        self.not_before = now.div_euclid(self.size) * self.size + self.size;
        self.closed.retain(|start, _| *start >= self.not_before);
    }

    /// A window's close with the records it holds. Late closes add to their window while it
    /// waits for its check; after the check they are not counted again.
    pub fn closed(&mut self, window: Window, records: u64, late: bool) {
        if window.start < self.not_before {
            return;
        }
        match self.closed.get_mut(&window.start) {
            Some(held) if late => *held += records,
            None if late => {}
            _ => {
                self.closed.insert(window.start, records);
            }
        }
    }

    /// The windows due for a check at `now`: closed at least [`CHECK_EVERY`] ago, at most an
    /// hour of them, the oldest first; `None` while the last check is too recent.
    pub fn due(&mut self, now: i64) -> Option<Window> {
        if self.last_check.is_some_and(|last| now - last < CHECK_EVERY) {
            return None;
        }
        let horizon = now - KEEP;
        self.closed.retain(|start, _| *start >= horizon);
        let first = *self.closed.keys().next()?;
        let ripe = now - CHECK_EVERY;
        let last = self
            .closed
            .range(first..first + MAX_SPAN)
            .map(|(start, _)| *start)
            .take_while(|start| start + self.size <= ripe)
            .last()?;
        self.last_check = Some(now);
        Some(Window {
            start: first,
            end: last + self.size,
        })
    }

    /// The upload minutes whose Logpush health the check at `now` reads: from where the last
    /// check stopped (or the first checked window) to the last whole minute.
    pub fn health_span(&self, checked: Window, now: i64) -> Option<Window> {
        let start = self.health_until.unwrap_or(checked.start);
        let end = now.div_euclid(60) * 60;
        (start < end).then_some(Window { start, end })
    }

    /// Compares the windows in `checked` with Cloudflare's counts, and forgets them; `health`
    /// is what Cloudflare reported for `health_span`.
    pub fn compare(
        &mut self,
        checked: Window,
        per_minute: &[RequestsPerMinute],
        health_span: Option<Window>,
        health: &[LogpushHealth],
    ) -> Finding {
        if let Some(span) = health_span {
            self.health_until = Some(span.end);
        }
        let mut finding = Finding {
            checked: Some(checked),
            dropped_span: health_span,
            dropped: health.iter().filter(|h| h.lost()).map(|h| h.records).sum(),
            ..Finding::default()
        };
        let windows: Vec<(i64, u64)> = self
            .closed
            .range(checked.start..checked.end)
            .map(|(start, records)| (*start, *records))
            .collect();
        for (start, archived) in windows {
            self.closed.remove(&start);
            let window = Window {
                start,
                end: start + self.size,
            };
            let expected: u64 = per_minute
                .iter()
                .filter(|m| (window.start..window.end).contains(&m.minute.unix_timestamp()))
                .map(|m| m.count)
                .sum();
            finding.windows += 1;
            if expected > archived + tolerance(expected) {
                finding.short.push(Shortfall {
                    window,
                    expected,
                    archived,
                });
            }
        }
        finding
    }
}

fn clock_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_768_478_400; // 2026-01-15 12:00 UTC

    fn minute(offset: i64, count: u64) -> RequestsPerMinute {
        RequestsPerMinute {
            minute: time::OffsetDateTime::from_unix_timestamp(T0 + offset * 60).expect("time"),
            count,
        }
    }

    #[test]
    fn the_tolerance_is_five_percent_and_at_least_five_records() {
        assert_eq!(
            (
                tolerance(0),
                tolerance(100),
                tolerance(1000),
                tolerance(1019)
            ),
            (5, 5, 50, 50)
        );
    }

    #[test]
    fn windows_are_checked_once_ripe_an_hour_at_most_and_each_once() {
        let mut c = Completeness::new(60);
        for n in 0..90 {
            c.closed(
                Window {
                    start: T0 + n * 60,
                    end: T0 + n * 60 + 60,
                },
                10,
                false,
            );
        }
        // The newest windows are not ripe yet; the first hour is.
        let now = T0 + 90 * 60 + 120;
        let first = c.due(now).expect("due");
        assert_eq!(
            first,
            Window {
                start: T0,
                end: T0 + 3600
            }
        );
        let finding = c.compare(first, &[], None, &[]);
        assert_eq!((finding.windows, finding.short.len()), (60, 0));
        assert_eq!(c.due(now + 10), None, "at most one check per interval");
        let second = c.due(now + CHECK_EVERY).expect("due");
        assert_eq!(
            second,
            Window {
                start: T0 + 3600,
                end: T0 + 5400
            }
        );
        c.compare(second, &[], None, &[]);
        assert_eq!(
            c.due(now + 2 * CHECK_EVERY),
            None,
            "every window checked once"
        );
    }

    #[test]
    fn a_window_short_beyond_the_tolerance_is_named_with_its_figures() {
        let mut c = Completeness::new(60);
        let window = |n: i64| Window {
            start: T0 + n * 60,
            end: T0 + n * 60 + 60,
        };
        for (n, held) in [(0, 60), (1, 96), (2, 900), (3, 0)] {
            c.closed(window(n), held, false);
        }
        // Late records count for their window until it is checked.
        c.closed(window(0), 40, true);
        c.closed(window(9), 40, true);
        let checked = c.due(T0 + 4 * 60 + CHECK_EVERY).expect("due");
        assert_eq!(
            checked,
            Window {
                start: T0,
                end: T0 + 240
            },
            "a late close opens no window"
        );
        let counts = [
            minute(0, 100),
            minute(1, 100),
            minute(2, 1000),
            minute(3, 4),
        ];
        let dropped = LogpushHealth {
            minute: time::OffsetDateTime::from_unix_timestamp(T0).expect("time"),
            job_id: 1,
            status: 0,
            destination_type: "http".into(),
            final_upload: true,
            uploads: 1,
            records: 100,
            bytes: 1,
            bytes_compressed: 1,
        };
        let span = c.health_span(checked, T0 + 9 * 60 + 30);
        assert_eq!(
            span,
            Some(Window {
                start: T0,
                end: T0 + 540
            })
        );
        let finding = c.compare(checked, &counts, span, &[dropped]);
        assert_eq!(
            c.health_span(checked, T0 + 9 * 60 + 50),
            None,
            "each upload minute's health is read once"
        );
        assert_eq!(
            finding.short,
            vec![Shortfall {
                window: Window {
                    start: T0 + 120,
                    end: T0 + 180
                },
                expected: 1000,
                archived: 900
            }],
            "60 + 40 late of 100, 96 of 100 and 0 of 4 are within the tolerance"
        );
        c.closed(window(2), 100, true);
        assert_eq!(
            c.due(T0 + 3600),
            None,
            "a checked window is not counted again"
        );

        // A job switched on at 12:10:30 pushed part of 12:10 only.
        c.pushing_from(T0 + 630);
        c.closed(window(10), 3, false);
        c.closed(window(11), 90, false);
        let checked = c.due(T0 + 3600).expect("due");
        assert_eq!(checked, window(11));
        assert_eq!(finding.dropped, 100);
        let words = finding.trouble().expect("trouble");
        assert!(
            words.contains("2026-01-15 12:02Z holds 900 of 1000 (tolerance 50)"),
            "{words}"
        );
        assert!(
            words.contains("100 records its Logpush job gave up delivering between 2026-01-15 12:00Z and 2026-01-15 12:09Z"),
            "{words}"
        );
        assert_eq!(Finding::default().trouble(), None);
    }

    #[test]
    fn windows_an_earlier_owner_closed_are_checked_by_the_next() {
        let window = |n: i64| Window {
            start: T0 + n * 60,
            end: T0 + n * 60 + 60,
        };
        let mut first = Completeness::new(60);
        first.closed(window(0), 10, false);
        first.closed(window(1), 900, false);
        first.health_until = Some(T0 + 60);
        let saved = first.unchecked();
        let json = serde_json::to_string(&saved).expect("json");
        let saved: Unchecked = serde_json::from_str(&json).expect("json");

        // The next owner knows the job pushed only from its own start, yet checks what the first
        // one closed, and reads Cloudflare's health on from where the first one stopped.
        let mut next = Completeness::new(60);
        next.pushing_from(T0 + 150);
        next.restore(saved);
        next.closed(window(2), 5, false);
        let checked = next.due(T0 + 180 + CHECK_EVERY).expect("due");
        assert_eq!(
            checked,
            Window {
                start: T0,
                end: T0 + 120
            }
        );
        assert_eq!(
            next.health_span(checked, T0 + 180 + CHECK_EVERY),
            Some(Window {
                start: T0 + 60,
                end: T0 + 480
            })
        );
        let finding = next.compare(checked, &[minute(0, 10), minute(1, 1000)], None, &[]);
        assert_eq!(
            finding.short,
            vec![Shortfall {
                window: window(1),
                expected: 1000,
                archived: 900
            }]
        );
        assert!(
            next.unchecked().windows.is_empty(),
            "checked windows are not saved again"
        );
        assert!(Unchecked::default().is_empty());
    }
}
