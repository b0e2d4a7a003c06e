//! What the archiver knows about windows in flight: the batches it holds per collection attempt,
//! which windows are being closed, and which were closed recently. Pure bookkeeping; the service
//! loop acts on its verdicts.
//!
//! A batch is only remembered by its stream sequence and the reply subject that acknowledges it:
//! the payload stays in RL_BATCH and is read again when the window is assembled, so memory does
//! not grow with the size of a window.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rainlogs_bus::async_nats::Subject;
use rainlogs_schemas::events::Window;
use uuid::Uuid;

/// One window of one dataset of one zone, named by its start: a lane's windows never overlap,
/// and an attempt's batches name the window it was opened for, which its close may end earlier
/// (an Instant Logs session cut mid-window). See docs/EVENTS.md, "Windows and attempts".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WindowKey {
    pub zone: String,
    pub dataset: String,
    pub start: i64,
    /// A `late` attempt adds to a window already closed: it is closed on its own, once.
    pub late_attempt: Option<Uuid>,
}

impl WindowKey {
    pub fn new(zone: &str, dataset: &str, window: &Window) -> Self {
        Self {
            zone: zone.to_owned(),
            dataset: dataset.to_owned(),
            start: window.start,
            late_attempt: None,
        }
    }

    /// The key of a window's batches or close: late attempts are keyed apart from the window.
    pub fn of(zone: &str, dataset: &str, window: &Window, late: bool, attempt: Uuid) -> Self {
        Self {
            late_attempt: late.then_some(attempt),
            ..Self::new(zone, dataset, window)
        }
    }

    /// Windows of the same lane are closed one after the other, in the order they were closed.
    pub fn lane(&self) -> (String, String) {
        (self.zone.clone(), self.dataset.clone())
    }
}

#[derive(Debug, Default)]
struct Attempt {
    /// Stream sequence of batch `seq`, for seq 0, 1, 2, … received without a hole.
    sequences: Vec<u64>,
    replies: Vec<Subject>,
    last_batch_at: Option<Instant>,
}

#[derive(Debug, Default)]
struct OpenWindow {
    attempts: HashMap<Uuid, Attempt>,
    /// Deliveries of `WindowClosed` while its close is queued or running.
    closers: Option<Vec<Subject>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum BatchVerdict {
    /// The window is already closed: a late duplicate or a batch of an abandoned attempt.
    Ack,
    /// Kept; acknowledged once the window's outcome is durable.
    Hold,
    /// An earlier batch of the attempt has not arrived yet; deliver this one again later.
    AheadOfOrder { expected: u32 },
}

#[derive(Debug, PartialEq, Eq)]
pub enum CloseVerdict {
    /// The window's outcome was already published.
    Ack,
    /// The window is already being closed; this delivery shares that outcome.
    Hold,
    /// Close the window (queue it in its lane).
    Close,
}

/// How a close ended, as far as message acknowledgement is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// The outcome is durable: acknowledge everything of the window.
    Done,
    /// Try again later: the closing messages go back to the server, batches stay held.
    Later,
    /// The window can never be archived: terminate everything of the window.
    Failed,
}

/// Replies to send after a close.
#[derive(Debug, Default)]
pub struct Replies {
    pub ack: Vec<Subject>,
    pub nak: Vec<Subject>,
    pub term: Vec<Subject>,
}

#[derive(Debug, Default)]
pub struct Tracker {
    windows: HashMap<WindowKey, OpenWindow>,
    closed: HashMap<WindowKey, Instant>,
    closed_order: VecDeque<(Instant, WindowKey)>,
}

impl Tracker {
    pub fn on_batch(
        &mut self,
        key: &WindowKey,
        attempt: Uuid,
        seq: u32,
        stream_seq: u64,
        reply: Option<Subject>,
        now: Instant,
    ) -> BatchVerdict {
        if self.closed.contains_key(key) {
            return BatchVerdict::Ack;
        }
        let received = self
            .windows
            .get(key)
            .and_then(|w| w.attempts.get(&attempt))
            .map_or(0, |a| a.sequences.len());
        let seq = seq as usize;
        if seq > received {
            // Nothing is recorded, so a batch that never gets its predecessors leaves no state.
            return BatchVerdict::AheadOfOrder {
                expected: u32::try_from(received).unwrap_or(u32::MAX),
            };
        }
        let state = self
            .windows
            .entry(key.clone())
            .or_default()
            .attempts
            .entry(attempt)
            .or_default();
        if seq == received {
            state.sequences.push(stream_seq);
        }
        state.replies.extend(reply);
        state.last_batch_at = Some(now);
        BatchVerdict::Hold
    }

    pub fn on_closed(&mut self, key: &WindowKey, reply: Option<Subject>) -> CloseVerdict {
        if self.closed.contains_key(key) {
            return CloseVerdict::Ack;
        }
        let window = self.windows.entry(key.clone()).or_default();
        match &mut window.closers {
            Some(closers) => {
                closers.extend(reply);
                CloseVerdict::Hold
            }
            None => {
                window.closers = Some(reply.into_iter().collect());
                CloseVerdict::Close
            }
        }
    }

    /// Stream sequences of the batches of `attempt` received so far, in `seq` order.
    pub fn batches(&self, key: &WindowKey, attempt: Uuid) -> Vec<u64> {
        self.windows
            .get(key)
            .and_then(|w| w.attempts.get(&attempt))
            .map(|a| a.sequences.clone())
            .unwrap_or_default()
    }

    /// Ends the close of `key` and says what to answer for each held message.
    pub fn settle(&mut self, key: &WindowKey, settlement: Settlement, now: Instant) -> Replies {
        let mut replies = Replies::default();
        match settlement {
            Settlement::Later => {
                if let Some(window) = self.windows.get_mut(key) {
                    replies.nak = window.closers.take().unwrap_or_default();
                }
            }
            Settlement::Done | Settlement::Failed => {
                let window = self.windows.remove(key).unwrap_or_default();
                let mut all = window.closers.unwrap_or_default();
                for attempt in window.attempts.into_values() {
                    all.extend(attempt.replies);
                }
                if settlement == Settlement::Done {
                    replies.ack = all;
                } else {
                    replies.term = all;
                }
                self.closed.insert(key.clone(), now);
                self.closed_order.push_back((now, key.clone()));
            }
        }
        replies
    }

    /// Every reply held, for in-progress acks.
    pub fn held(&self) -> impl Iterator<Item = &Subject> {
        self.windows.values().flat_map(|w| {
            w.attempts
                .values()
                .flat_map(|a| a.replies.iter())
                .chain(w.closers.iter().flatten())
        })
    }

    /// Drops attempts of windows not being closed whose last batch is older than `after`;
    /// returns their replies, to be terminated.
    pub fn abandon_idle(
        &mut self,
        now: Instant,
        after: Duration,
    ) -> Vec<(WindowKey, Uuid, Vec<Subject>)> {
        let mut abandoned = Vec::new();
        for (key, window) in &mut self.windows {
            if window.closers.is_some() {
                continue;
            }
            let idle: Vec<Uuid> = window
                .attempts
                .iter()
                .filter(|(_, a)| {
                    a.last_batch_at
                        .is_some_and(|t| now.saturating_duration_since(t) >= after)
                })
                .map(|(id, _)| *id)
                .collect();
            for id in idle {
                if let Some(attempt) = window.attempts.remove(&id) {
                    abandoned.push((key.clone(), id, attempt.replies));
                }
            }
        }
        self.windows
            .retain(|_, w| !w.attempts.is_empty() || w.closers.is_some());
        abandoned
    }

    /// Forgets windows closed longer ago than `keep`.
    pub fn forget_closed(&mut self, now: Instant, keep: Duration) {
        while let Some((at, _)) = self.closed_order.front() {
            if now.saturating_duration_since(*at) < keep {
                break;
            }
            if let Some((at, key)) = self.closed_order.pop_front()
                && self.closed.get(&key) == Some(&at)
            {
                self.closed.remove(&key);
            }
        }
    }

    /// Every held reply, forgetting all windows (at shutdown: the server redelivers them).
    pub fn release_all(&mut self) -> Vec<Subject> {
        let windows = std::mem::take(&mut self.windows);
        windows
            .into_values()
            .flat_map(|w| {
                w.attempts
                    .into_values()
                    .flat_map(|a| a.replies)
                    .chain(w.closers.into_iter().flatten())
            })
            .collect()
    }

    pub fn open_windows(&self) -> usize {
        self.windows.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(start: i64) -> WindowKey {
        WindowKey::new(
            "z",
            "http_requests",
            &Window {
                start,
                end: start + 60,
            },
        )
    }

    fn reply(n: u64) -> Option<Subject> {
        Some(Subject::from(format!("$JS.ACK.{n}")))
    }

    #[test]
    fn batches_are_taken_in_seq_order_and_duplicates_are_held_not_added() {
        let mut t = Tracker::default();
        let (k, a, now) = (key(0), Uuid::from_u128(1), Instant::now());
        assert_eq!(t.on_batch(&k, a, 0, 10, reply(10), now), BatchVerdict::Hold);
        assert_eq!(
            t.on_batch(&k, a, 2, 12, reply(12), now),
            BatchVerdict::AheadOfOrder { expected: 1 }
        );
        assert_eq!(t.on_batch(&k, a, 1, 11, reply(11), now), BatchVerdict::Hold);
        assert_eq!(
            t.on_batch(&k, a, 1, 11, reply(111), now),
            BatchVerdict::Hold
        );
        assert_eq!(t.batches(&k, a), vec![10, 11]);
        assert_eq!(
            t.held().count(),
            3,
            "the redelivery's reply is acknowledged too"
        );
    }

    #[test]
    fn a_close_acknowledges_every_attempt_of_the_window_and_later_duplicates() {
        let mut t = Tracker::default();
        let (k, now) = (key(0), Instant::now());
        let (abandoned, winner) = (Uuid::from_u128(1), Uuid::from_u128(2));
        t.on_batch(&k, abandoned, 0, 1, reply(1), now);
        t.on_batch(&k, winner, 0, 2, reply(2), now);
        assert_eq!(t.on_closed(&k, reply(3)), CloseVerdict::Close);
        assert_eq!(t.on_closed(&k, reply(4)), CloseVerdict::Hold);
        let replies = t.settle(&k, Settlement::Done, now);
        assert_eq!(replies.ack.len(), 4);
        assert!(replies.nak.is_empty() && replies.term.is_empty());
        assert_eq!(
            t.on_batch(&k, abandoned, 1, 5, reply(5), now),
            BatchVerdict::Ack
        );
        assert_eq!(t.on_closed(&k, reply(6)), CloseVerdict::Ack);
        assert_eq!(t.open_windows(), 0);
    }

    #[test]
    fn a_close_that_must_wait_returns_only_the_closers_and_keeps_the_batches() {
        let mut t = Tracker::default();
        let (k, a, now) = (key(0), Uuid::from_u128(1), Instant::now());
        t.on_batch(&k, a, 0, 1, reply(1), now);
        assert_eq!(t.on_closed(&k, reply(2)), CloseVerdict::Close);
        let replies = t.settle(&k, Settlement::Later, now);
        assert_eq!(replies.nak.len(), 1);
        assert_eq!(t.batches(&k, a), vec![1]);
        assert_eq!(
            t.on_closed(&k, reply(3)),
            CloseVerdict::Close,
            "can be closed again"
        );
    }

    #[test]
    fn idle_attempts_are_abandoned_unless_their_window_is_closing() {
        let mut t = Tracker::default();
        let start = Instant::now();
        let later = start + Duration::from_secs(3600);
        t.on_batch(&key(0), Uuid::from_u128(1), 0, 1, reply(1), start);
        t.on_batch(&key(60), Uuid::from_u128(2), 0, 2, reply(2), start);
        t.on_closed(&key(60), reply(3));
        t.on_batch(&key(120), Uuid::from_u128(3), 0, 4, reply(4), later);
        let abandoned = t.abandon_idle(later, Duration::from_secs(600));
        assert_eq!(abandoned.len(), 1);
        assert_eq!(abandoned[0].0, key(0));
        assert_eq!(t.open_windows(), 2);
    }

    #[test]
    fn closed_windows_are_forgotten_after_the_memory_period() {
        let mut t = Tracker::default();
        let now = Instant::now();
        t.on_closed(&key(0), reply(1));
        t.settle(&key(0), Settlement::Failed, now);
        t.forget_closed(now + Duration::from_secs(10), Duration::from_secs(60));
        assert_eq!(t.on_closed(&key(0), reply(2)), CloseVerdict::Ack);
        t.forget_closed(now + Duration::from_secs(61), Duration::from_secs(60));
        assert_eq!(t.on_closed(&key(0), reply(3)), CloseVerdict::Close);
    }
}
