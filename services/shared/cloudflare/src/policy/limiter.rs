//! Client-side rate limiting that mirrors Cloudflare's published limits.
//!
//! A sliding-window log rather than a token bucket: Cloudflare states its limits as "N requests per window", and a
//! bucket with burst N can emit nearly 2N inside one window. Keeping the last N grant times is exact and cheap at
//! these sizes (≤ 1200 instants per token). A 429 with `Retry-After` blocks the key for everyone sharing it.

use crate::token::TokenId;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimit {
    pub max: u32,
    pub per: Duration,
}

impl WindowLimit {
    pub const fn new(max: u32, per: Duration) -> Self {
        Self { max, per }
    }
}

/// Cloudflare's published limits; `None` disables a limit (tests, or an operator who knows better).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Global API limit: 1200 requests / 5 min per token.
    pub per_token: Option<WindowLimit>,
    /// Logpull: 15 requests / min per zone.
    pub logpull_per_zone: Option<WindowLimit>,
    /// Logpull: 180 requests / min per user.
    pub logpull_per_token: Option<WindowLimit>,
    /// GraphQL: 300 queries / 5 min per token.
    pub graphql_per_token: Option<WindowLimit>,
    /// Cloudflare's 200 requests/s per client IP, over every token: one process is one address.
    /// Kept a little below 200 so requests granted just over a second apart cannot reach
    /// Cloudflare inside one.
    pub per_process: Option<WindowLimit>,
}

impl RateLimits {
    pub const CLOUDFLARE: Self = Self {
        per_token: Some(WindowLimit::new(1200, Duration::from_secs(300))),
        logpull_per_zone: Some(WindowLimit::new(15, Duration::from_secs(60))),
        logpull_per_token: Some(WindowLimit::new(180, Duration::from_secs(60))),
        graphql_per_token: Some(WindowLimit::new(300, Duration::from_secs(300))),
        per_process: Some(WindowLimit::new(180, Duration::from_secs(1))),
    };

    pub const UNLIMITED: Self = Self {
        per_token: None,
        logpull_per_zone: None,
        logpull_per_token: None,
        graphql_per_token: None,
        per_process: None,
    };

    fn limit_for(&self, key: &LimitKey) -> Option<WindowLimit> {
        match key {
            LimitKey::Token(_) => self.per_token,
            LimitKey::LogpullZone(_) => self.logpull_per_zone,
            LimitKey::LogpullToken(_) => self.logpull_per_token,
            LimitKey::GraphqlToken(_) => self.graphql_per_token,
            LimitKey::Process => self.per_process,
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::CLOUDFLARE
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    Token(TokenId),
    LogpullZone(String),
    LogpullToken(TokenId),
    GraphqlToken(TokenId),
    /// Every API call of this process (Cloudflare's per-IP limit).
    Process,
}

/// One key's state: recent grant times and an optional server-imposed block.
#[derive(Debug, Default)]
pub struct SlidingWindow {
    grants: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

impl SlidingWindow {
    /// How long until one more request fits (zero: it fits now). Does not record anything.
    pub fn wait_time(&mut self, limit: Option<WindowLimit>, now: Instant) -> Duration {
        let blocked = self
            .blocked_until
            .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
        let Some(limit) = limit else { return blocked };
        while self
            .grants
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= limit.per)
        {
            self.grants.pop_front();
        }
        let windowed = if limit.max == 0 {
            limit.per
        } else if self.grants.len() < limit.max as usize {
            Duration::ZERO
        } else {
            // The oldest grant inside the window must age out before another fits.
            let oldest = self.grants[self.grants.len() - limit.max as usize];
            (oldest + limit.per).saturating_duration_since(now)
        };
        blocked.max(windowed)
    }

    pub fn record(&mut self, now: Instant) {
        self.grants.push_back(now);
    }

    pub fn block_until(&mut self, until: Instant) {
        self.blocked_until = Some(
            self.blocked_until
                .map_or(until, |current| current.max(until)),
        );
    }
}

#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    windows: Mutex<HashMap<LimitKey, SlidingWindow>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Grants one request against every key at once, or says how long to wait; all-or-nothing so a request that
    /// must wait does not consume another key's budget.
    pub fn try_acquire(&self, keys: &[LimitKey], now: Instant) -> Result<(), Duration> {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut wait = Duration::ZERO;
        for key in keys {
            let limit = self.limits.limit_for(key);
            wait = wait.max(
                windows
                    .entry(key.clone())
                    .or_default()
                    .wait_time(limit, now),
            );
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for key in keys {
            windows.entry(key.clone()).or_default().record(now);
        }
        Ok(())
    }

    /// Waits for a slot. Gives up with the required wait when it exceeds `max_wait`.
    pub async fn acquire(&self, keys: &[LimitKey], max_wait: Duration) -> Result<(), Duration> {
        loop {
            match self.try_acquire(keys, Instant::now()) {
                Ok(()) => return Ok(()),
                Err(wait) if wait > max_wait => return Err(wait),
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Honours a server's `Retry-After` for everybody using `key`.
    pub fn block(&self, key: LimitKey, until: Instant) {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        windows.entry(key).or_default().block_until(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(z: &str) -> LimitKey {
        LimitKey::LogpullZone(z.to_owned())
    }

    fn limiter(max: u32, per_secs: u64) -> RateLimiter {
        RateLimiter::new(RateLimits {
            logpull_per_zone: Some(WindowLimit::new(max, Duration::from_secs(per_secs))),
            ..RateLimits::UNLIMITED
        })
    }

    #[test]
    fn never_more_than_max_in_any_window() {
        let limiter = limiter(15, 60);
        let start = Instant::now();
        let mut granted = Vec::new();
        // Try every second for five minutes.
        for s in 0..300 {
            let now = start + Duration::from_secs(s);
            if limiter.try_acquire(&[zone("z")], now).is_ok() {
                granted.push(s);
            }
        }
        for (i, first) in granted.iter().enumerate() {
            let in_window = granted[i..].iter().take_while(|t| **t < first + 60).count();
            assert!(
                in_window <= 15,
                "{in_window} grants in the minute starting at {first}s"
            );
        }
        assert_eq!(
            granted.len(),
            75,
            "a sliding window should still allow the full 15/min over 5 minutes"
        );
    }

    #[test]
    fn reports_the_wait_until_the_oldest_grant_expires() {
        let limiter = limiter(2, 60);
        let t0 = Instant::now();
        limiter.try_acquire(&[zone("z")], t0).unwrap();
        limiter
            .try_acquire(&[zone("z")], t0 + Duration::from_secs(10))
            .unwrap();
        assert_eq!(
            limiter.try_acquire(&[zone("z")], t0 + Duration::from_secs(20)),
            Err(Duration::from_secs(40))
        );
        assert!(
            limiter
                .try_acquire(&[zone("z")], t0 + Duration::from_secs(60))
                .is_ok()
        );
    }

    #[test]
    fn zones_are_independent_but_a_shared_token_key_is_not() {
        let limiter = RateLimiter::new(RateLimits {
            per_token: Some(WindowLimit::new(3, Duration::from_secs(60))),
            logpull_per_zone: Some(WindowLimit::new(2, Duration::from_secs(60))),
            ..RateLimits::UNLIMITED
        });
        let token = LimitKey::Token(crate::token::ApiToken::new("t").id().clone());
        let now = Instant::now();
        assert!(
            limiter
                .try_acquire(&[token.clone(), zone("a")], now)
                .is_ok()
        );
        assert!(
            limiter
                .try_acquire(&[token.clone(), zone("a")], now)
                .is_ok()
        );
        assert!(
            limiter
                .try_acquire(&[token.clone(), zone("a")], now)
                .is_err(),
            "zone a is exhausted"
        );
        assert!(
            limiter
                .try_acquire(&[token.clone(), zone("b")], now)
                .is_ok(),
            "zone b has its own budget"
        );
        assert!(
            limiter
                .try_acquire(&[token.clone(), zone("c")], now)
                .is_err(),
            "the token's 3/min is spent"
        );
    }

    #[test]
    fn the_per_process_limit_spans_every_token() {
        let limiter = RateLimiter::new(RateLimits {
            per_process: Some(WindowLimit::new(2, Duration::from_secs(1))),
            ..RateLimits::UNLIMITED
        });
        let token = |t: &str| LimitKey::Token(crate::token::ApiToken::new(t).id().clone());
        let now = Instant::now();
        assert!(
            limiter
                .try_acquire(&[token("a"), LimitKey::Process], now)
                .is_ok()
        );
        assert!(
            limiter
                .try_acquire(&[token("b"), LimitKey::Process], now)
                .is_ok()
        );
        assert!(
            limiter
                .try_acquire(&[token("c"), LimitKey::Process], now)
                .is_err(),
            "a third token shares the address's budget"
        );
        assert!(
            limiter
                .try_acquire(
                    &[token("c"), LimitKey::Process],
                    now + Duration::from_secs(1)
                )
                .is_ok(),
            "the next second has room again"
        );
    }

    #[test]
    fn a_refused_request_consumes_nothing() {
        let limiter = limiter(1, 60);
        let now = Instant::now();
        limiter.block(zone("b"), now + Duration::from_secs(5));
        limiter
            .try_acquire(&[zone("a"), zone("b")], now)
            .unwrap_err();
        assert!(
            limiter.try_acquire(&[zone("a")], now).is_ok(),
            "zone a's only slot must still be free"
        );
    }

    #[test]
    fn server_blocks_apply_even_without_a_configured_limit() {
        let limiter = RateLimiter::new(RateLimits::UNLIMITED);
        let now = Instant::now();
        limiter.block(zone("z"), now + Duration::from_secs(30));
        assert_eq!(
            limiter.try_acquire(&[zone("z")], now),
            Err(Duration::from_secs(30))
        );
        limiter.block(zone("z"), now + Duration::from_secs(10));
        assert_eq!(
            limiter.try_acquire(&[zone("z")], now),
            Err(Duration::from_secs(30)),
            "a shorter block never shortens a longer one"
        );
        assert!(
            limiter
                .try_acquire(&[zone("z")], now + Duration::from_secs(30))
                .is_ok()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_waits_then_gives_up_beyond_max_wait() {
        let limiter = limiter(1, 60);
        limiter.acquire(&[zone("z")], Duration::ZERO).await.unwrap();
        let before = Instant::now();
        limiter
            .acquire(&[zone("z")], Duration::from_secs(120))
            .await
            .unwrap();
        assert!(
            Instant::now() - before >= Duration::from_secs(60),
            "second request must wait out the window"
        );
        assert_eq!(
            limiter.acquire(&[zone("z")], Duration::from_secs(5)).await,
            Err(Duration::from_secs(60))
        );
    }
}
