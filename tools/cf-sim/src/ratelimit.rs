//! Fixed-window rate limits on the simulated clock (so tests can advance past them).

use std::collections::HashMap;

/// Result of admitting one request against a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Quota {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_secs: i64,
    pub window_secs: i64,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    start: i64,
    count: u32,
}

#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    windows: HashMap<(&'static str, String), Window>,
    blocked_until: HashMap<(&'static str, String), i64>,
}

impl RateLimiter {
    /// Count one request for `key` under `scope`. `Err(retry_after_secs)` when over the limit; an exceeded
    /// scope stays blocked for a whole window (Cloudflare blocks all calls for 5 minutes).
    pub fn admit(
        &mut self,
        scope: &'static str,
        key: &str,
        limit: u32,
        window_secs: i64,
        now: i64,
    ) -> Result<Quota, i64> {
        let id = (scope, key.to_owned());
        if let Some(until) = self.blocked_until.get(&id) {
            if now < *until {
                return Err(until - now);
            }
            self.blocked_until.remove(&id);
        }
        let window = self.windows.entry(id.clone()).or_insert(Window {
            start: now,
            count: 0,
        });
        if now >= window.start + window_secs {
            *window = Window {
                start: now,
                count: 0,
            };
        }
        window.count += 1;
        if window.count > limit {
            self.blocked_until.insert(id, now + window_secs);
            return Err(window_secs);
        }
        Ok(Quota {
            limit,
            remaining: limit - window.count,
            reset_secs: (window.start + window_secs - now).max(0),
            window_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_until_window_passes() {
        let mut rl = RateLimiter::default();
        for i in 0..3 {
            let q = rl.admit("t", "k", 3, 60, 100).expect("within limit");
            assert_eq!(q.remaining, 2 - i);
        }
        assert_eq!(rl.admit("t", "k", 3, 60, 110), Err(60));
        assert_eq!(rl.admit("t", "k", 3, 60, 150), Err(20));
        assert!(rl.admit("t", "k", 3, 60, 170).is_ok());
    }
}
