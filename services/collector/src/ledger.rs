//! The window ledger of one (zone, dataset): which window comes next, and whether it is due.
//!
//! Windows are `[start, end)` in whole Unix seconds, contiguous (each starts where the last one
//! ended) and end on the grid of the configured size, so a zone's archive has the same shape on
//! every run. While the cursor is far behind (first backfill, after an outage) windows of the
//! larger catch-up size are used where they are wholly due, so a week of backlog is a few hundred
//! requests rather than ten thousand (Logpull allows 15 a minute per zone). After an HTTP 408 the
//! ledger first gives up catch-up windows, then shrinks its granularity (smaller windows, still
//! contiguous) and grows it back after successes; windows always re-align to the normal grid.
//! Pure arithmetic: the caller supplies "now"-derived bounds, which keeps every rule testable.
//!
//! [`Backfill`] follows a long run of due windows (a new zone's backfill, catching up after an
//! outage): how many are done and left, the rate and when it will be over.

use std::time::{Duration, Instant};

use rainlogs_schemas::events::Window;

/// What to do with the next window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The window is complete at the source and still retained: fetch it.
    Collect(Window),
    /// The window fell out of the source's retention before it was fetched: record a gap.
    /// Consecutive expired windows are merged into one gap that ends on the grid.
    Expired(Window),
    /// The next window is not complete yet.
    Wait,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ledger {
    /// Start of the next window; everything before it has a `WindowClosed`.
    cursor: i64,
    /// The configured window size in seconds.
    size: i64,
    /// The current window size (≤ `size`), smaller after timeouts.
    granularity: i64,
    /// Window size used while far behind (≥ `size`; equal to it when catch-up is off).
    catch_up: i64,
}

impl Ledger {
    /// A ledger whose next window starts at `cursor`.
    pub fn new(cursor: i64, size_secs: i64) -> Self {
        let size = size_secs.max(1);
        Self {
            cursor,
            size,
            granularity: size,
            catch_up: size,
        }
    }

    /// Uses windows of `catch_up_secs` (a multiple of the size works best) while they are due.
    pub fn with_catch_up(mut self, catch_up_secs: i64) -> Self {
        self.catch_up = catch_up_secs.max(self.size);
        self
    }

    /// Where a zone seen for the first time starts: `backfill` seconds back, but never before
    /// `floor` (the oldest window the source still serves, or when retention was switched on),
    /// rounded up onto the grid so every later window is aligned.
    pub fn initial_cursor(now: i64, backfill_secs: i64, floor: i64, size_secs: i64) -> i64 {
        align_up((now - backfill_secs).max(floor), size_secs.max(1))
    }

    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    pub fn size(&self) -> i64 {
        self.size
    }

    /// The next window given the newest end the source will serve and its oldest servable start.
    pub fn next(&self, latest_end: i64, earliest_start: i64) -> Step {
        if self.cursor < earliest_start {
            let end = align_up(earliest_start, self.size);
            return Step::Expired(Window {
                start: self.cursor,
                end,
            });
        }
        let big = grid_end(self.cursor, self.catch_up);
        if self.catch_up > self.size && self.granularity == self.size && big <= latest_end {
            return Step::Collect(Window {
                start: self.cursor,
                end: big,
            });
        }
        let end = self.window_end(self.cursor);
        if end <= latest_end {
            Step::Collect(Window {
                start: self.cursor,
                end,
            })
        } else {
            Step::Wait
        }
    }

    /// End of the window that starts at `start` under the current granularity.
    pub fn window_end(&self, start: i64) -> i64 {
        grid_end(start, self.granularity).min(grid_end(start, self.size))
    }

    /// Moves past a window that now has its `WindowClosed`. Returns false (and changes nothing)
    /// for a window that does not start at the cursor: the ledger never skips or overlaps.
    pub fn advance(&mut self, closed: Window) -> bool {
        if closed.start != self.cursor || closed.end <= closed.start {
            return false;
        }
        self.cursor = closed.end;
        true
    }

    /// Halves the window size (after a 408 timeout); false when already at one second.
    pub fn shrink(&mut self) -> bool {
        if self.catch_up > self.size {
            // Catch-up windows were too large for the source: normal windows from now on.
            self.catch_up = self.size;
            return true;
        }
        if self.granularity <= 1 {
            return false;
        }
        self.granularity = (self.granularity / 2).max(1);
        true
    }

    /// Doubles the window size back towards the configured size (after a success).
    pub fn grow(&mut self) {
        self.granularity = (self.granularity * 2).min(self.size);
    }

    pub fn granularity(&self) -> i64 {
        self.granularity
    }

    /// How many windows (gaps included) are due now, counted at the configured granularity.
    /// An estimate while windows are shrunk after timeouts; capped at [`MAX_COUNTED`].
    pub fn due_windows(&self, latest_end: i64, earliest_start: i64) -> u64 {
        let mut probe = self.clone();
        probe.granularity = probe.size;
        let mut count = 0;
        while count < MAX_COUNTED {
            match probe.next(latest_end, earliest_start) {
                Step::Collect(w) | Step::Expired(w) => {
                    if !probe.advance(w) {
                        break;
                    }
                    count += 1;
                }
                Step::Wait => break,
            }
        }
        count
    }
}

/// The most windows [`Ledger::due_windows`] counts (a week of one-second windows).
pub const MAX_COUNTED: u64 = 7 * 86_400;

/// Progress through a long run of due windows. Counts are kept as windows close; what is left
/// is counted again from the ledger at each report, since time makes new windows due meanwhile.
#[derive(Clone, Debug)]
pub struct Backfill {
    started: Instant,
    last_report: Instant,
    /// Cursor and span (seconds of logs behind) when it started.
    from: i64,
    span: i64,
    done: u64,
    /// Windows left at the last count, and `done` at that moment.
    left_at_count: u64,
    done_at_count: u64,
}

impl Backfill {
    /// Starts following `ledger`, which is `latest_end - cursor` seconds behind.
    pub fn start(ledger: &Ledger, latest_end: i64, earliest_start: i64, now: Instant) -> Self {
        Self {
            started: now,
            last_report: now,
            from: ledger.cursor(),
            span: (latest_end - ledger.cursor()).max(0),
            done: 0,
            left_at_count: ledger.due_windows(latest_end, earliest_start),
            done_at_count: 0,
        }
    }

    /// Counts again what is left (at a report).
    pub fn recount(&mut self, ledger: &Ledger, latest_end: i64, earliest_start: i64) {
        self.left_at_count = ledger.due_windows(latest_end, earliest_start);
        self.done_at_count = self.done;
    }

    /// One more window closed.
    pub fn window_done(&mut self) {
        self.done += 1;
    }

    pub fn done(&self) -> u64 {
        self.done
    }

    pub fn remaining(&self) -> u64 {
        self.left_at_count
            .saturating_sub(self.done - self.done_at_count)
    }

    pub fn total(&self) -> u64 {
        self.done + self.remaining()
    }

    /// Where it started and how many seconds of logs were behind then.
    pub fn from(&self) -> i64 {
        self.from
    }

    pub fn span(&self) -> i64 {
        self.span
    }

    pub fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    /// Windows per minute since the start; `None` before the first window.
    pub fn rate_per_min(&self, now: Instant) -> Option<f64> {
        let secs = self.elapsed(now).as_secs_f64();
        (self.done > 0 && secs > 0.0).then(|| self.done as f64 * 60.0 / secs)
    }

    /// Time to the end at the rate so far.
    pub fn eta(&self, now: Instant) -> Option<Duration> {
        let rate = self.rate_per_min(now)?;
        Some(Duration::from_secs_f64(
            (self.remaining() as f64 / rate * 60.0).min(1e9),
        ))
    }

    /// Whether a progress report is due (`every` after the last one).
    pub fn report_due(&self, now: Instant, every: Duration) -> bool {
        now.saturating_duration_since(self.last_report) >= every
    }

    pub fn reported(&mut self, now: Instant) {
        self.last_report = now;
    }

    /// One line for logs and the zone's health, e.g. `backfill: 40 of 168 windows (23%),
    /// 5d 1h of logs behind, 12.0 windows/min, about 10m left`.
    pub fn describe(&self, behind_secs: i64, now: Instant) -> String {
        let total = self.total();
        let percent = (self.done * 100).checked_div(total).unwrap_or(100);
        let mut text = format!(
            "backfill: {} of {total} windows ({percent}%), {} of logs behind",
            self.done,
            span(behind_secs),
        );
        match (self.rate_per_min(now), self.eta(now)) {
            (Some(rate), Some(eta)) => text.push_str(&format!(
                ", {rate:.1} windows/min, about {} left",
                span(i64::try_from(eta.as_secs()).unwrap_or(i64::MAX))
            )),
            _ => text.push_str(", rate not known yet"),
        }
        text
    }
}

/// A duration in seconds for people: `6d 23h`, `2h 5m`, `45m`, `30s`.
pub fn span(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

/// The first multiple of `step` after `start`.
fn grid_end(start: i64, step: i64) -> i64 {
    let step = step.max(1);
    (start.div_euclid(step) + 1) * step
}

/// The smallest multiple of `step` that is ≥ `t`.
pub fn align_up(t: i64, step: i64) -> i64 {
    let step = step.max(1);
    let down = t.div_euclid(step) * step;
    if down == t { t } else { down + step }
}

/// The largest multiple of `step` that is ≤ `t`.
pub fn align_down(t: i64, step: i64) -> i64 {
    let step = step.max(1);
    t.div_euclid(step) * step
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_768_478_400; // 2026-01-15 12:00 UTC, on every grid used here

    #[test]
    fn windows_are_contiguous_aligned_and_wait_for_the_delay() {
        let mut ledger = Ledger::new(T0, 60);
        let mut seen = Vec::new();
        loop {
            match ledger.next(T0 + 300, T0 - 7 * 86_400) {
                Step::Collect(w) => {
                    assert!(ledger.advance(w));
                    seen.push(w);
                }
                Step::Wait => break,
                Step::Expired(w) => panic!("nothing expired here: {w:?}"),
            }
        }
        assert_eq!(seen.len(), 5);
        assert!(seen.windows(2).all(|p| p[0].end == p[1].start));
        assert!(
            seen.iter()
                .all(|w| w.start % 60 == 0 && w.end - w.start == 60)
        );
        assert_eq!(ledger.cursor(), T0 + 300);
    }

    #[test]
    fn a_partly_elapsed_window_is_not_due() {
        let ledger = Ledger::new(T0, 60);
        assert_eq!(ledger.next(T0 + 59, T0 - 100), Step::Wait);
        assert_eq!(
            ledger.next(T0 + 60, T0 - 100),
            Step::Collect(Window {
                start: T0,
                end: T0 + 60
            })
        );
    }

    #[test]
    fn windows_past_retention_merge_into_one_gap_ending_on_the_grid() {
        let mut ledger = Ledger::new(T0, 3600);
        let earliest = T0 + 5 * 3600 + 17;
        let Step::Expired(gap) = ledger.next(T0 + 100 * 3600, earliest) else {
            panic!("expected a gap");
        };
        assert_eq!(
            gap,
            Window {
                start: T0,
                end: T0 + 6 * 3600
            }
        );
        assert!(ledger.advance(gap));
        assert!(
            matches!(ledger.next(T0 + 100 * 3600, earliest), Step::Collect(w) if w.start == T0 + 6 * 3600 && w.end == T0 + 7 * 3600)
        );
    }

    #[test]
    fn the_ledger_refuses_to_skip_or_overlap() {
        let mut ledger = Ledger::new(T0, 60);
        assert!(!ledger.advance(Window {
            start: T0 + 60,
            end: T0 + 120
        }));
        assert!(!ledger.advance(Window {
            start: T0 - 60,
            end: T0 + 60
        }));
        assert!(!ledger.advance(Window { start: T0, end: T0 }));
        assert_eq!(ledger.cursor(), T0);
    }

    #[test]
    fn shrinking_keeps_windows_contiguous_and_growing_realigns_to_the_grid() {
        let mut ledger = Ledger::new(T0, 60);
        assert!(ledger.shrink());
        assert!(ledger.shrink());
        assert_eq!(ledger.granularity(), 15);
        let first = ledger.window_end(T0);
        assert_eq!(first, T0 + 15);
        ledger.advance(Window {
            start: T0,
            end: first,
        });
        ledger.grow();
        assert_eq!(ledger.granularity(), 30);
        // From T0+15 with 30 s granularity the next grid point is T0+30.
        assert_eq!(ledger.window_end(ledger.cursor()), T0 + 30);
        ledger.grow();
        ledger.grow();
        assert_eq!(ledger.granularity(), 60, "never above the configured size");
        assert_eq!(ledger.window_end(T0 + 30), T0 + 60, "back on the 60 s grid");
        let mut tiny = Ledger::new(T0, 1);
        assert!(!tiny.shrink(), "one second is the floor");
    }

    #[test]
    fn odd_granularities_never_cross_the_normal_grid() {
        let mut ledger = Ledger::new(T0 + 45, 60);
        for _ in 0..3 {
            ledger.shrink();
        }
        assert_eq!(ledger.granularity(), 7);
        let mut start = T0 + 45;
        while start < T0 + 60 {
            let end = ledger.window_end(start);
            assert!(end > start && end <= T0 + 60);
            start = end;
        }
        assert_eq!(start, T0 + 60);
    }

    #[test]
    fn far_behind_uses_catch_up_windows_then_normal_ones() {
        let mut ledger = Ledger::new(T0 + 17 * 60, 60).with_catch_up(3600);
        let latest = T0 + 3 * 3600 + 300;
        let mut seen = Vec::new();
        while let Step::Collect(w) = ledger.next(latest, 0) {
            assert!(ledger.advance(w));
            seen.push(w.end - w.start);
        }
        // The rest of the first hour, two whole hours, then five minutes of normal windows.
        assert_eq!(seen, vec![43 * 60, 3600, 3600, 60, 60, 60, 60, 60]);
        assert_eq!(ledger.cursor(), latest);
    }

    #[test]
    fn a_timeout_first_drops_catch_up_windows() {
        let mut ledger = Ledger::new(T0, 60).with_catch_up(3600);
        assert!(matches!(ledger.next(T0 + 7200, 0), Step::Collect(w) if w.end == T0 + 3600));
        assert!(ledger.shrink());
        assert_eq!(ledger.granularity(), 60);
        assert!(matches!(ledger.next(T0 + 7200, 0), Step::Collect(w) if w.end == T0 + 60));
        assert!(ledger.shrink());
        assert_eq!(ledger.granularity(), 30);
    }

    #[test]
    fn due_windows_count_catch_up_windows_gaps_and_normal_ones() {
        let ledger = Ledger::new(T0 + 17 * 60, 60).with_catch_up(3600);
        // 43 min, two hours, five minutes: as far_behind_uses_catch_up_windows_then_normal_ones.
        assert_eq!(ledger.due_windows(T0 + 3 * 3600 + 300, 0), 8);
        assert_eq!(ledger.due_windows(T0 + 17 * 60 + 59, 0), 0);
        let plain = Ledger::new(T0, 60);
        assert_eq!(plain.due_windows(T0 + 7200, 0), 120);
        // An expired stretch is one gap.
        assert_eq!(plain.due_windows(T0 + 7200, T0 + 3600), 61);
        let mut shrunk = plain.clone();
        shrunk.shrink();
        assert_eq!(
            shrunk.due_windows(T0 + 7200, 0),
            120,
            "counted at the configured size"
        );
    }

    #[test]
    fn backfill_progress_counts_rate_and_eta() {
        let start = Instant::now();
        let mut ledger = Ledger::new(T0, 60);
        let latest = T0 + 7200;
        let mut backfill = Backfill::start(&ledger, latest, 0, start);
        assert_eq!((backfill.done(), backfill.total()), (0, 120));
        assert_eq!(backfill.span(), 7200);
        assert!(
            backfill
                .describe(7200, start)
                .starts_with("backfill: 0 of 120 windows (0%), 2h of logs behind, rate not known")
        );
        for _ in 0..30 {
            let Step::Collect(w) = ledger.next(latest, 0) else {
                panic!("due")
            };
            ledger.advance(w);
            backfill.window_done();
        }
        let later = start + Duration::from_secs(60);
        assert_eq!(backfill.remaining(), 90);
        assert_eq!(backfill.rate_per_min(later), Some(30.0));
        assert_eq!(backfill.eta(later), Some(Duration::from_secs(180)));
        assert_eq!(
            backfill.describe(latest - ledger.cursor(), later),
            "backfill: 30 of 120 windows (25%), 1h 30m of logs behind, 30.0 windows/min, about 3m left"
        );
        // Time moved on: two more windows became due.
        backfill.recount(&ledger, latest + 120, 0);
        assert_eq!((backfill.remaining(), backfill.total()), (92, 122));
        assert!(!backfill.report_due(start + Duration::from_secs(59), Duration::from_secs(60)));
        assert!(backfill.report_due(later, Duration::from_secs(60)));
        backfill.reported(later);
        assert!(!backfill.report_due(later, Duration::from_secs(60)));
    }

    #[test]
    fn spans_read_like_people_write_them() {
        assert_eq!(span(30), "30s");
        assert_eq!(span(45 * 60 + 10), "45m");
        assert_eq!(span(7200), "2h");
        assert_eq!(span(7500), "2h 5m");
        assert_eq!(span(7 * 86_400 - 300), "6d 23h");
        assert_eq!(span(2 * 86_400 + 60), "2d");
        assert_eq!(span(-5), "0s");
    }

    #[test]
    fn initial_cursor_respects_backfill_floor_and_grid() {
        let now = T0 + 1234;
        assert_eq!(
            Ledger::initial_cursor(now, 600, 0, 60),
            align_up(now - 600, 60)
        );
        assert_eq!(
            Ledger::initial_cursor(now, 30 * 86_400, now - 7 * 86_400, 3600),
            align_up(now - 7 * 86_400, 3600),
            "never before the oldest servable start"
        );
        assert_eq!(align_down(T0 + 59, 60), T0);
        assert_eq!(align_up(T0, 60), T0);
        assert_eq!(align_up(-61, 60), -60);
    }
}
