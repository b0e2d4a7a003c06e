//! Where a pushed (Logpush) zone's reading of `RL_PUSH` stands, durably.
//!
//! Pushed records reach a window in any order, so a window may hold records of many pushes and
//! one push may feed many windows. What survives a restart is:
//!
//! * `resume_after`: every push part up to this `RL_PUSH` sequence has all its records in a
//!   closed window (or in a `late` close). A new owner reads again from the part after it;
//!   windows still open when the last owner stopped are filled again from those parts.
//! * `through`, per closed window: the records of that window in parts up to this sequence are
//!   in its closes (the `pushed_through` of its newest close). A part read again is skipped for
//!   a window whose `through` reaches it, and its records are `late` for a window whose does not.
//! * `gaps`: windows closed as gaps (paused, before any push): their records are not archived.
//! * `log_start`: the zone's first pushed window; older records have no window to join.
//!
//! The state is written to the collector's cursor bucket after closes; a close published just
//! before a crash (its state write lost) is found again on the zone's subject after `batch_seq`,
//! because every close of a pushed window carries its `pushed_through`.

use std::collections::BTreeMap;

use bytes::Bytes;
use rainlogs_bus::async_nats::jetstream::kv;
use rainlogs_schemas::events::{Window, WindowClosed, WindowOutcome};
use serde::{Deserialize, Serialize};

use crate::completeness::Unchecked;
use crate::journal::{JournalError, ZoneJournal};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushCursor {
    pub resume_after: u64,
    /// `RL_BATCH` sequence of the newest close this state reflects.
    pub batch_seq: u64,
    /// Window start → `pushed_through` of its newest close.
    pub through: BTreeMap<i64, u64>,
    /// Windows closed as gaps, merged where they touch.
    pub gaps: Vec<Window>,
    pub log_start: Option<i64>,
    /// Closed windows the completeness cross-check has not compared with Cloudflare's counts.
    #[serde(default, skip_serializing_if = "Unchecked::is_empty")]
    pub unchecked: Unchecked,
}

/// What a record of a window that is no longer open is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClosedFate {
    /// Its window's close already holds it (a part read again after a restart).
    Stored,
    /// It came after its window closed: it goes into a `late` close of the window.
    Late,
    /// Its window is a gap or lies before the zone's log: nothing can take it.
    NoWindow,
}

impl PushCursor {
    fn key(zone: &str, dataset: &str) -> String {
        format!("{zone}.{dataset}.push")
    }

    /// The stored state, brought up to date with the closes published after it.
    pub async fn load(
        cursors: &kv::Store,
        journal: &ZoneJournal,
        dataset: &str,
    ) -> Result<Option<Self>, JournalError> {
        let key = Self::key(journal.zone(), dataset);
        let stored = match cursors.get(&key).await {
            Ok(Some(bytes)) => serde_json::from_slice::<Self>(&bytes).ok(),
            Ok(None) => None,
            Err(e) => return Err(JournalError::Bus(format!("reading {key}: {e}"))),
        };
        let Some(mut state) = stored else {
            return Ok(None);
        };
        for (seq, closed) in journal.closes_after(dataset, state.batch_seq).await? {
            state.closed(seq, &closed);
        }
        Ok(Some(state))
    }

    /// The state as last stored, without the closes published after it (a reader that only
    /// needs a position that is certainly reached).
    pub async fn stored(
        cursors: &kv::Store,
        zone: &str,
        dataset: &str,
    ) -> Result<Option<Self>, String> {
        let key = Self::key(zone, dataset);
        match cursors.get(&key).await {
            Ok(Some(bytes)) => Ok(serde_json::from_slice::<Self>(&bytes).ok()),
            Ok(None) => Ok(None),
            Err(e) => Err(format!("reading {key}: {e}")),
        }
    }

    /// Forgets the state of a dataset no longer pushed (its zone removed, or collected another
    /// way): pushed again later, it starts afresh after a gap instead of taking the time in
    /// between for windows its job pushed nothing for.
    pub async fn forget(cursors: &kv::Store, zone: &str, dataset: &str) {
        if let Err(e) = cursors.delete(Self::key(zone, dataset)).await {
            tracing::warn!(zone, dataset, error = %e, "cannot forget the push cursor");
        }
    }

    pub async fn store(&self, cursors: &kv::Store, zone: &str, dataset: &str) {
        let Ok(value) = serde_json::to_vec(self) else {
            return;
        };
        // Losing this write only means reading more parts again on the next start.
        if let Err(e) = cursors
            .put(Self::key(zone, dataset), Bytes::from(value))
            .await
        {
            tracing::warn!(zone, dataset, error = %e, "push cursor write failed; the next start reads further back");
        }
    }

    /// Takes note of a close published at `RL_BATCH` sequence `seq`.
    pub fn closed(&mut self, seq: u64, closed: &WindowClosed) {
        self.batch_seq = self.batch_seq.max(seq);
        match (&closed.outcome, closed.pushed_through) {
            (WindowOutcome::Gap { .. }, _) => self.add_gap(closed.window),
            (_, Some(through)) => {
                let entry = self.through.entry(closed.window.start).or_default();
                *entry = (*entry).max(through);
            }
            // A close without `pushed_through` was not written by the push reader (the zone
            // was pulled before): its window counts as a gap for pushed records.
            (_, None) => self.add_gap(closed.window),
        }
    }

    pub fn add_gap(&mut self, window: Window) {
        match self.gaps.last_mut() {
            Some(last) if last.end == window.start => last.end = window.end,
            _ => self.gaps.push(window),
        }
    }

    /// What a record of the closed window starting at `start`, read in part `part`, is.
    pub fn fate(&self, start: i64, part: u64) -> ClosedFate {
        if self.log_start.is_none_or(|first| start < first)
            || self
                .gaps
                .iter()
                .any(|gap| gap.start <= start && start < gap.end)
        {
            return ClosedFate::NoWindow;
        }
        match self.through.get(&start) {
            Some(through) if *through >= part => ClosedFate::Stored,
            _ => ClosedFate::Late,
        }
    }

    /// Moves the resume point and forgets what no part after it can need: a window whose
    /// `through` is below the resume point takes any record read from now on as late.
    pub fn resume_at(&mut self, resume_after: u64, forget_gaps_before: i64) {
        self.resume_after = self.resume_after.max(resume_after);
        let resume = self.resume_after;
        self.through.retain(|_, through| *through > resume);
        self.gaps.retain(|gap| gap.end > forget_gaps_before);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn close(start: i64, through: Option<u64>, gap: bool) -> WindowClosed {
        WindowClosed {
            dataset: "http_requests".into(),
            window: Window {
                start,
                end: start + 60,
            },
            attempt: Uuid::nil(),
            outcome: if gap {
                WindowOutcome::Gap {
                    reason: rainlogs_schemas::events::GapReason::Paused,
                    detail: String::new(),
                }
            } else {
                WindowOutcome::Empty {
                    method: rainlogs_schemas::events::Method::LogpushHttp,
                }
            },
            pushed_through: through,
            late: false,
        }
    }

    #[test]
    fn a_part_read_again_is_stored_once_and_a_newer_one_is_late() {
        let mut state = PushCursor {
            log_start: Some(60),
            ..PushCursor::default()
        };
        state.closed(7, &close(60, Some(10), false));
        assert_eq!(state.fate(60, 10), ClosedFate::Stored);
        assert_eq!(state.fate(60, 11), ClosedFate::Late);
        assert_eq!(state.fate(0, 11), ClosedFate::NoWindow, "before the log");
        // A late close moves the window's mark.
        state.closed(8, &close(60, Some(20), false));
        assert_eq!(state.fate(60, 15), ClosedFate::Stored);
        assert_eq!(state.batch_seq, 8);
        state.closed(9, &close(120, None, true));
        state.closed(10, &close(180, None, true));
        assert_eq!(
            state.gaps,
            vec![Window {
                start: 120,
                end: 240
            }]
        );
        assert_eq!(state.fate(180, 30), ClosedFate::NoWindow);
    }

    #[test]
    fn forgetting_a_window_below_the_resume_point_keeps_its_records_late() {
        let mut state = PushCursor {
            log_start: Some(60),
            ..PushCursor::default()
        };
        state.closed(1, &close(60, Some(10), false));
        state.closed(2, &close(120, Some(30), false));
        state.resume_at(20, 0);
        assert_eq!(state.through.keys().copied().collect::<Vec<_>>(), vec![120]);
        // Every part read from now on is after 20, so after window 60's mark: late, as before.
        assert_eq!(state.fate(60, 21), ClosedFate::Late);
        assert_eq!(state.fate(120, 25), ClosedFate::Stored);
    }
}
