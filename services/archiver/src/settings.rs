//! Tunables of the archiver. Defaults suit production; tests shorten the timers.

use std::path::PathBuf;
use std::time::Duration;

/// Retention of tenants without a policy of their own (`retention.default_days`): 395 days
/// (13 months) after the window ends, a common floor for access logs under NIS2 guidance.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(395 * 24 * 60 * 60);

#[derive(Debug, Clone)]
pub struct ArchiverSettings {
    /// Directory for the compressed archive while it is being written (`<data_dir>/archiver`).
    /// Its contents are disposable: everything is rebuilt from RL_BATCH after a crash.
    pub work_dir: PathBuf,
    /// Objects of tenants without a retention policy may not be deleted before window end + this.
    pub retention: Duration,
    /// An attempt that received no batch for this long and was never closed is abandoned: its
    /// batches are terminated so they stop occupying the consumer's ack window.
    pub abandon_after: Duration,
    /// How often held batch messages get an in-progress ack. Must stay below the consumer's
    /// `ack_wait` (60 s), or the server redelivers messages that are still being assembled.
    pub keep_alive_every: Duration,
    /// Windows assembled at the same time (each uses one core while compressing).
    pub parallel_windows: usize,
    /// How long a closed window is remembered, so late duplicates are acknowledged at once.
    pub remember_closed_for: Duration,
}

impl ArchiverSettings {
    pub fn new(work_dir: impl Into<PathBuf>) -> Self {
        Self {
            work_dir: work_dir.into(),
            retention: DEFAULT_RETENTION,
            abandon_after: Duration::from_secs(30 * 60),
            keep_alive_every: Duration::from_secs(20),
            parallel_windows: 2,
            remember_closed_for: Duration::from_secs(24 * 60 * 60),
        }
    }
}
