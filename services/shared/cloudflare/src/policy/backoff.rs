//! Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): the delay is
//! uniform in `[0, min(max, base * 2^attempt)]`, which spreads synchronised retries best.

use rand::Rng;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The upper bound for retry number `attempt` (0 for the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// A jittered delay in `[0, ceiling(attempt)]`.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn ceiling_doubles_then_caps() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let ceilings: Vec<_> = (0..6).map(|a| b.ceiling(a).as_millis()).collect();
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(
            b.ceiling(500),
            Duration::from_secs(1),
            "huge attempt numbers must not overflow"
        );
    }

    #[test]
    fn delays_stay_within_bounds_and_actually_jitter() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(10),
        };
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 0..8 {
            let samples: Vec<_> = (0..200).map(|_| b.delay(attempt, &mut rng)).collect();
            assert!(
                samples.iter().all(|d| *d <= b.ceiling(attempt)),
                "attempt {attempt} exceeded its ceiling"
            );
            let distinct: std::collections::BTreeSet<_> = samples.iter().collect();
            assert!(
                distinct.len() > 150,
                "full jitter should rarely repeat a value"
            );
            let low = samples
                .iter()
                .filter(|d| **d < b.ceiling(attempt) / 2)
                .count();
            assert!(
                (50..150).contains(&low),
                "jitter should cover the whole range, {low}/200 in the lower half"
            );
        }
    }

    #[test]
    fn zero_base_means_no_wait() {
        let b = Backoff {
            base: Duration::ZERO,
            max: Duration::from_secs(1),
        };
        assert_eq!(b.delay(3, &mut rand::rng()), Duration::ZERO);
    }
}
