//! Token-bucket rate limits keyed by client IP (before authentication) and by tenant (after).
//! In-process: each API process enforces its own budget, which is what a per-node limit means.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
#[cfg(test)]
use std::time::Duration;
use std::time::Instant;

/// A sustained rate and the burst allowed on top of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

/// What a limiter decided, in the terms of the `RateLimit-*` headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again (`RateLimit-Reset`).
    pub reset_secs: u64,
    /// Seconds until the next request is allowed (`Retry-After`), when refused.
    pub retry_after_secs: u64,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Buckets beyond this many are swept of full (idle) ones, so a flood of addresses cannot grow
/// memory without bound.
const SWEEP_ABOVE: usize = 100_000;

pub struct Limiter<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Clone> Limiter<K> {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn check(&self, key: &K) -> Decision {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &K, now: Instant) -> Decision {
        let burst = f64::from(self.rate.burst.max(1));
        let per_second = self.rate.per_second.max(f64::MIN_POSITIVE);
        let Ok(mut buckets) = self.buckets.lock() else {
            // A poisoned lock means a panic elsewhere; fail open rather than lock everyone out.
            return Decision {
                allowed: true,
                limit: self.rate.burst,
                remaining: self.rate.burst,
                reset_secs: 0,
                retry_after_secs: 0,
            };
        };
        if buckets.len() > SWEEP_ABOVE {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * per_second < burst
            });
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.updated = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        let missing = burst - bucket.tokens;
        let until_one = if allowed {
            0.0
        } else {
            (1.0 - bucket.tokens) / per_second
        };
        Decision {
            allowed,
            limit: self.rate.burst,
            remaining: bucket.tokens.floor().max(0.0) as u32,
            reset_secs: (missing / per_second).ceil() as u64,
            retry_after_secs: until_one.ceil().max(if allowed { 0.0 } else { 1.0 }) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_then_refill() {
        let limiter = Limiter::new(Rate {
            per_second: 10.0,
            burst: 3,
        });
        let start = Instant::now();
        for expected_remaining in [2, 1, 0] {
            let d = limiter.check_at(&"ip", start);
            assert!(d.allowed);
            assert_eq!(d.remaining, expected_remaining);
        }
        let refused = limiter.check_at(&"ip", start);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 1);
        assert_eq!(refused.limit, 3);
        assert!(
            limiter
                .check_at(&"ip", start + Duration::from_millis(150))
                .allowed
        );
        assert!(
            limiter.check_at(&"other", start).allowed,
            "keys are independent"
        );
    }
}
