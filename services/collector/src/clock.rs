//! "Now" for the collector. Production follows the system clock; tests follow the simulator's.

use std::sync::Arc;

use time::OffsetDateTime;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;

    fn now_unix(&self) -> i64 {
        self.now().unix_timestamp()
    }
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock read through a function, e.g. a simulator's `now()`.
pub struct FnClock<F>(pub F);

impl<F> Clock for FnClock<F>
where
    F: Fn() -> OffsetDateTime + Send + Sync + 'static,
{
    fn now(&self) -> OffsetDateTime {
        (self.0)()
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// A window bound (Unix seconds) as a time, for logs and Cloudflare queries; the epoch for a
/// value no date holds.
pub fn at(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
