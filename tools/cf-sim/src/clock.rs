//! The simulator's notion of "now": the real clock, or a controllable one for tests.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::lock;

/// How the simulated clock starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockStart {
    /// Follow the system clock (adjustable by offsets).
    Real,
    /// Start at this time and stand still until moved.
    FrozenAt(OffsetDateTime),
    /// Start at this time and tick with real time.
    RunningFrom(OffsetDateTime),
}

#[derive(Debug)]
enum Mode {
    /// `now = base + elapsed since anchor`.
    Running {
        base: OffsetDateTime,
        anchor: Instant,
    },
    Frozen(OffsetDateTime),
}

#[derive(Debug)]
pub(crate) struct SimClock {
    mode: Mutex<Mode>,
}

impl SimClock {
    pub fn new(start: ClockStart) -> Self {
        let mode = match start {
            ClockStart::Real => Mode::Running {
                base: OffsetDateTime::now_utc(),
                anchor: Instant::now(),
            },
            ClockStart::RunningFrom(t) => Mode::Running {
                base: t,
                anchor: Instant::now(),
            },
            ClockStart::FrozenAt(t) => Mode::Frozen(t),
        };
        Self {
            mode: Mutex::new(mode),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        match &*lock(&self.mode) {
            Mode::Running { base, anchor } => *base + anchor.elapsed(),
            Mode::Frozen(t) => *t,
        }
    }

    /// Jump to `t`, keeping the current mode (a running clock keeps ticking from there).
    pub fn set(&self, t: OffsetDateTime) {
        let mut mode = lock(&self.mode);
        *mode = match &*mode {
            Mode::Running { .. } => Mode::Running {
                base: t,
                anchor: Instant::now(),
            },
            Mode::Frozen(_) => Mode::Frozen(t),
        };
    }

    pub fn advance(&self, by: Duration) {
        let mut mode = lock(&self.mode);
        match &mut *mode {
            Mode::Running { base, .. } => *base += by,
            Mode::Frozen(t) => *t += by,
        }
    }
}
