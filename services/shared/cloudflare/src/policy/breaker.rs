//! Circuit breakers per (token, endpoint, zone): one zone's failing calls never hold back another
//! zone of the same token.
//!
//! Closed → (N consecutive endpoint failures) → Open for `open_for` → HalfOpen: exactly one probe goes through;
//! its success closes the breaker, its failure re-opens it. Permanent errors and 429s are not endpoint failures
//! (see `CfError::is_endpoint_failure`), so a revoked token does not trip the breaker for a healthy API.

use crate::route::Endpoint;
use crate::token::TokenId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

/// The externally visible state, for metrics (`0 closed, 1 half-open, 2 open` is a common gauge encoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed { consecutive_failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_in_flight: bool },
}

/// What a caller may do: a normal call, or the single half-open probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Normal,
    Probe,
}

/// The pure state machine, driven with explicit instants.
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    phase: Phase,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            phase: Phase::Closed {
                consecutive_failures: 0,
            },
        }
    }

    /// May a call go out now? `Err` carries the time until a probe will be allowed.
    pub fn try_pass(&mut self, now: Instant) -> Result<Pass, Duration> {
        match self.phase {
            Phase::Closed { .. } => Ok(Pass::Normal),
            Phase::Open { until } if now < until => Err(until - now),
            Phase::Open { .. }
            | Phase::HalfOpen {
                probe_in_flight: false,
            } => {
                self.phase = Phase::HalfOpen {
                    probe_in_flight: true,
                };
                Ok(Pass::Probe)
            }
            // Another caller holds the probe; check back roughly when it should have finished.
            Phase::HalfOpen {
                probe_in_flight: true,
            } => Err(self.config.open_for),
        }
    }

    pub fn on_success(&mut self) {
        self.phase = Phase::Closed {
            consecutive_failures: 0,
        };
    }

    pub fn on_failure(&mut self, now: Instant) {
        self.phase = match self.phase {
            Phase::Closed {
                consecutive_failures,
            } if consecutive_failures + 1 < self.config.failure_threshold => Phase::Closed {
                consecutive_failures: consecutive_failures + 1,
            },
            Phase::Closed { .. } | Phase::HalfOpen { .. } => Phase::Open {
                until: now + self.config.open_for,
            },
            open @ Phase::Open { .. } => open,
        };
    }

    /// A probe that ended without a verdict (cancelled, or a 429/permanent error) frees the probe slot.
    pub fn on_probe_abandoned(&mut self) {
        if let Phase::HalfOpen { .. } = self.phase {
            self.phase = Phase::HalfOpen {
                probe_in_flight: false,
            };
        }
    }

    pub fn state(&self, now: Instant) -> BreakerState {
        match self.phase {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { until } if now < until => BreakerState::Open,
            Phase::Open { .. } | Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

pub type BreakerKey = (TokenId, Endpoint, Option<String>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerSnapshot {
    pub token: TokenId,
    pub endpoint: Endpoint,
    pub zone: Option<String>,
    pub state: BreakerState,
}

/// All breakers of one client, shared across its tokens.
#[derive(Debug)]
pub struct CircuitBreakers {
    config: BreakerConfig,
    breakers: Mutex<HashMap<BreakerKey, Breaker>>,
}

impl CircuitBreakers {
    pub fn new(config: BreakerConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            breakers: Mutex::new(HashMap::new()),
        })
    }

    fn with<R>(&self, key: &BreakerKey, f: impl FnOnce(&mut Breaker) -> R) -> R {
        let mut breakers = self
            .breakers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(breakers
            .entry(key.clone())
            .or_insert_with(|| Breaker::new(self.config)))
    }

    pub fn acquire(self: &Arc<Self>, key: BreakerKey) -> Result<BreakerPermit, Duration> {
        let pass = self.with(&key, |b| b.try_pass(Instant::now()))?;
        Ok(BreakerPermit {
            breakers: Arc::clone(self),
            key,
            pass,
            settled: false,
        })
    }

    /// Records a failure noticed after the permit was settled (e.g. a body that broke mid-stream).
    pub fn report_failure(&self, key: &BreakerKey) {
        self.with(key, |b| b.on_failure(Instant::now()));
    }

    pub fn state(&self, key: &BreakerKey) -> BreakerState {
        self.with(key, |b| b.state(Instant::now()))
    }

    pub fn snapshot(&self) -> Vec<BreakerSnapshot> {
        let now = Instant::now();
        let breakers = self
            .breakers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut all: Vec<_> = breakers
            .iter()
            .map(|((token, endpoint, zone), b)| BreakerSnapshot {
                token: token.clone(),
                endpoint: *endpoint,
                zone: zone.clone(),
                state: b.state(now),
            })
            .collect();
        all.sort_by(|a, b| (&a.token, a.endpoint, &a.zone).cmp(&(&b.token, b.endpoint, &b.zone)));
        all
    }
}

/// Permission for one call. Settle it with the outcome; dropping it unsettled counts as "no verdict".
#[derive(Debug)]
pub struct BreakerPermit {
    breakers: Arc<CircuitBreakers>,
    key: BreakerKey,
    pass: Pass,
    settled: bool,
}

impl BreakerPermit {
    pub fn success(mut self) {
        self.settled = true;
        self.breakers.with(&self.key, Breaker::on_success);
    }

    pub fn failure(mut self) {
        self.settled = true;
        self.breakers
            .with(&self.key, |b| b.on_failure(Instant::now()));
    }

    pub fn is_probe(&self) -> bool {
        self.pass == Pass::Probe
    }
}

impl Drop for BreakerPermit {
    fn drop(&mut self) {
        if !self.settled && self.pass == Pass::Probe {
            self.breakers.with(&self.key, Breaker::on_probe_abandoned);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            failure_threshold: 3,
            open_for: Duration::from_secs(10),
        }
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let mut b = Breaker::new(config());
        let now = Instant::now();
        b.on_failure(now);
        b.on_failure(now);
        b.on_success();
        b.on_failure(now);
        b.on_failure(now);
        assert_eq!(
            b.state(now),
            BreakerState::Closed,
            "a success in between resets the count"
        );
        b.on_failure(now);
        assert_eq!(b.state(now), BreakerState::Open);
        assert_eq!(
            b.try_pass(now + Duration::from_secs(4)),
            Err(Duration::from_secs(6))
        );
    }

    #[test]
    fn half_open_lets_exactly_one_probe_through() {
        let mut b = Breaker::new(config());
        let now = Instant::now();
        (0..3).for_each(|_| b.on_failure(now));
        let later = now + Duration::from_secs(10);
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        assert_eq!(b.try_pass(later), Ok(Pass::Probe));
        assert!(
            b.try_pass(later).is_err(),
            "a second caller must wait for the probe"
        );
        b.on_success();
        assert_eq!(b.state(later), BreakerState::Closed);
        assert_eq!(b.try_pass(later), Ok(Pass::Normal));
    }

    #[test]
    fn failed_probe_reopens_for_a_full_period() {
        let mut b = Breaker::new(config());
        let now = Instant::now();
        (0..3).for_each(|_| b.on_failure(now));
        let later = now + Duration::from_secs(11);
        assert_eq!(b.try_pass(later), Ok(Pass::Probe));
        b.on_failure(later);
        assert_eq!(b.state(later + Duration::from_secs(9)), BreakerState::Open);
        assert_eq!(
            b.state(later + Duration::from_secs(10)),
            BreakerState::HalfOpen
        );
    }

    #[test]
    fn abandoned_probe_frees_the_slot() {
        let breakers = CircuitBreakers::new(BreakerConfig {
            failure_threshold: 1,
            open_for: Duration::ZERO,
        });
        let key = (
            crate::token::ApiToken::new("t").id().clone(),
            Endpoint::Zone,
            None,
        );
        breakers.acquire(key.clone()).unwrap().failure();
        let probe = breakers.acquire(key.clone()).unwrap();
        assert!(probe.is_probe());
        drop(probe);
        let again = breakers.acquire(key.clone()).unwrap();
        assert!(
            again.is_probe(),
            "the next caller may probe after an abandoned probe"
        );
        again.success();
        assert_eq!(breakers.state(&key), BreakerState::Closed);
        let snapshot = breakers.snapshot();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot[0].state, BreakerState::Closed);
        assert_eq!(snapshot[0].endpoint, Endpoint::Zone);
    }

    #[test]
    fn breakers_are_per_token_endpoint_and_zone() {
        let breakers = CircuitBreakers::new(BreakerConfig {
            failure_threshold: 1,
            open_for: Duration::from_secs(60),
        });
        let a = crate::token::ApiToken::new("a").id().clone();
        let b = crate::token::ApiToken::new("b").id().clone();
        breakers
            .acquire((a.clone(), Endpoint::Graphql, None))
            .unwrap()
            .failure();
        assert!(
            breakers
                .acquire((a.clone(), Endpoint::Graphql, None))
                .is_err()
        );
        assert!(breakers.acquire((a.clone(), Endpoint::Zone, None)).is_ok());
        assert!(breakers.acquire((b, Endpoint::Graphql, None)).is_ok());
        let zone = |z: &str| (a.clone(), Endpoint::LogpullReceived, Some(z.to_owned()));
        breakers.acquire(zone("z1")).unwrap().failure();
        assert!(breakers.acquire(zone("z1")).is_err());
        assert!(
            breakers.acquire(zone("z2")).is_ok(),
            "another zone of the same token keeps its own breaker"
        );
    }
}
