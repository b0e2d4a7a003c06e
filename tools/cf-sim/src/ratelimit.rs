//! Rate limits. Block periods run on the simulated clock so tests can advance past them.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

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

/// Cloudflare's per-IP limit (200 requests/s). The rate is counted on the real clock: with a frozen simulated
/// clock every request would share one second and the limit would turn into a cap on the whole test. Once
/// exceeded, the IP is blocked for `block_secs` of simulated time, like the other global limits.
#[derive(Debug, Default)]
pub(crate) struct PerIpLimiter {
    windows: HashMap<IpAddr, (Instant, u32)>,
    blocked_until: HashMap<IpAddr, i64>,
}

impl PerIpLimiter {
    /// Count one request from `ip`. `Err(retry_after_secs)` while blocked or when this request exceeds the limit.
    pub fn admit(
        &mut self,
        ip: IpAddr,
        per_sec: u32,
        block_secs: i64,
        real_now: Instant,
        sim_now: i64,
    ) -> Result<(), i64> {
        if let Some(until) = self.blocked_until.get(&ip) {
            if sim_now < *until {
                return Err(until - sim_now);
            }
            self.blocked_until.remove(&ip);
            // A fresh second after the block: requests refused during it do not count.
            self.windows.remove(&ip);
        }
        let window = self.windows.entry(ip).or_insert((real_now, 0));
        if real_now.saturating_duration_since(window.0) >= Duration::from_secs(1) {
            *window = (real_now, 0);
        }
        window.1 += 1;
        if window.1 > per_sec {
            self.blocked_until.insert(ip, sim_now + block_secs);
            return Err(block_secs);
        }
        Ok(())
    }
}

/// Logpull timeout abuse: more than `max` 408s for a zone within a sliding hour blocks the zone for an hour.
#[derive(Debug, Default)]
pub(crate) struct TimeoutTracker {
    recent: HashMap<String, VecDeque<i64>>,
    blocked_until: HashMap<String, i64>,
}

pub(crate) const TIMEOUT_WINDOW_SECS: i64 = 3600;
pub(crate) const TIMEOUT_BLOCK_SECS: i64 = 3600;

impl TimeoutTracker {
    /// Seconds left on the zone's block, if it is blocked.
    pub fn blocked(&mut self, zone: &str, now: i64) -> Option<i64> {
        let until = *self.blocked_until.get(zone)?;
        if now < until {
            return Some(until - now);
        }
        self.blocked_until.remove(zone);
        None
    }

    /// Record one 408 for `zone`; true when it pushes the zone over `max` in the last hour (the zone is then
    /// blocked and its count starts again, so the block is one hour and not "until old timeouts age out").
    pub fn record(&mut self, zone: &str, max: u32, now: i64) -> bool {
        let times = self.recent.entry(zone.to_owned()).or_default();
        while times
            .front()
            .is_some_and(|t| *t <= now - TIMEOUT_WINDOW_SECS)
        {
            times.pop_front();
        }
        times.push_back(now);
        if times.len() > max as usize {
            times.clear();
            self.blocked_until
                .insert(zone.to_owned(), now + TIMEOUT_BLOCK_SECS);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_blocks_past_the_rate_until_the_simulated_block_ends() {
        let mut rl = PerIpLimiter::default();
        let ip = IpAddr::from([127, 0, 0, 1]);
        let other = IpAddr::from([127, 0, 0, 2]);
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(rl.admit(ip, 3, 300, t, 1000), Ok(()));
        }
        assert_eq!(rl.admit(ip, 3, 300, t, 1000), Err(300));
        assert_eq!(rl.admit(other, 3, 300, t, 1000), Ok(()));
        // Real time passing does not lift the block; simulated time does.
        let later = t + Duration::from_secs(5);
        assert_eq!(rl.admit(ip, 3, 300, later, 1200), Err(100));
        assert_eq!(rl.admit(ip, 3, 300, later, 1300), Ok(()));
        // A new real second starts a new count.
        for _ in 0..2 {
            assert_eq!(rl.admit(ip, 3, 300, later, 1300), Ok(()));
        }
        let next = later + Duration::from_secs(1);
        for _ in 0..3 {
            assert_eq!(rl.admit(ip, 3, 300, next, 1300), Ok(()));
        }
    }

    #[test]
    fn timeouts_slide_over_an_hour() {
        let mut tt = TimeoutTracker::default();
        for i in 0..12 {
            assert!(!tt.record("z", 12, i));
        }
        // The first timeout (t=0) leaves the hour at t=3600, so the 13th there does not block.
        assert!(!tt.record("z", 12, 3600));
        assert_eq!(tt.blocked("z", 3600), None);
        // 1..=11 and 3600 are in the hour; one more makes 13.
        assert!(tt.record("z", 12, 3600));
        assert_eq!(tt.blocked("z", 3600), Some(3600));
        assert_eq!(tt.blocked("other", 3600), None);
        assert_eq!(tt.blocked("z", 7199), Some(1));
        assert_eq!(tt.blocked("z", 7200), None);
    }

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
