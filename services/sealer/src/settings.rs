//! Tunables of the sealer.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SealerSettings {
    /// New entries are covered by a signed checkpoint at most this long after they were sealed.
    pub checkpoint_every: Duration,
    /// A pause in arriving events this long ends a burst: its entries are checkpointed at once.
    pub quiet: Duration,
    /// How long an event whose window starts after the dataset's covered span waits for the
    /// windows in between (archives can finish out of order) before it is sealed anyway, leaving
    /// a hole the verifier reports.
    pub early_window_wait: Duration,
}

impl Default for SealerSettings {
    fn default() -> Self {
        Self {
            checkpoint_every: Duration::from_secs(1),
            quiet: Duration::from_millis(50),
            early_window_wait: Duration::from_secs(10 * 60),
        }
    }
}
