//! When to try again: only retryable errors, a bounded number of attempts, and never shorter than the server asked.

use super::backoff::Backoff;
use crate::error::CfError;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 disables retries).
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// A server asking for a longer wait than this is not waited for in-line: the error goes back to the caller,
    /// who can reschedule (Cloudflare's 5 min and 1 h blocks should not hold a task hostage).
    pub max_server_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            backoff: Backoff::default(),
            max_server_wait: Duration::from_secs(90),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    RetryAfter(Duration),
    GiveUp,
}

impl RetryPolicy {
    /// `attempts_made` counts the attempts already done (≥ 1); `jitter` is this retry's `Backoff::delay`.
    pub fn decide(&self, attempts_made: u32, error: &CfError, jitter: Duration) -> RetryDecision {
        if !error.is_retryable() || attempts_made >= self.max_attempts {
            return RetryDecision::GiveUp;
        }
        // An open breaker is the signal to stop calling; spinning on it would defeat it.
        if matches!(error, CfError::CircuitOpen { .. }) {
            return RetryDecision::GiveUp;
        }
        match error.retry_after() {
            Some(wait) if wait > self.max_server_wait => RetryDecision::GiveUp,
            Some(wait) => RetryDecision::RetryAfter(wait.max(jitter)),
            None => RetryDecision::RetryAfter(jitter),
        }
    }

    /// Convenience: decide with a fresh jitter for retry number `attempts_made - 1`.
    pub fn next_delay(&self, attempts_made: u32, error: &CfError) -> RetryDecision {
        let jitter = self
            .backoff
            .delay(attempts_made.saturating_sub(1), &mut rand::rng());
        self.decide(attempts_made, error, jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ApiMessages, RateLimitScope};
    use crate::route::Endpoint;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            backoff: Backoff::default(),
            max_server_wait: Duration::from_secs(60),
        }
    }

    fn server_error() -> CfError {
        CfError::Server {
            status: 502,
            detail: "bad gateway".into(),
        }
    }

    fn limited(after: u64) -> CfError {
        CfError::RateLimited {
            scope: RateLimitScope::LogpullZone,
            retry_after: Some(Duration::from_secs(after)),
            detail: String::new(),
        }
    }

    #[test]
    fn retryable_errors_retry_until_attempts_run_out() {
        let jitter = Duration::from_millis(10);
        assert_eq!(
            policy().decide(1, &server_error(), jitter),
            RetryDecision::RetryAfter(jitter)
        );
        assert_eq!(
            policy().decide(2, &server_error(), jitter),
            RetryDecision::RetryAfter(jitter)
        );
        assert_eq!(
            policy().decide(3, &server_error(), jitter),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn permanent_errors_never_retry() {
        let auth = CfError::Auth {
            status: 403,
            errors: ApiMessages::default(),
        };
        assert_eq!(
            policy().decide(1, &auth, Duration::ZERO),
            RetryDecision::GiveUp
        );
        let bad = CfError::BadQuery {
            status: 400,
            message: "bad query: ...".into(),
        };
        assert_eq!(
            policy().decide(1, &bad, Duration::ZERO),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn server_wait_is_a_floor_and_long_waits_go_back_to_the_caller() {
        assert_eq!(
            policy().decide(1, &limited(5), Duration::from_secs(1)),
            RetryDecision::RetryAfter(Duration::from_secs(5))
        );
        assert_eq!(
            policy().decide(1, &limited(5), Duration::from_secs(9)),
            RetryDecision::RetryAfter(Duration::from_secs(9))
        );
        assert_eq!(
            policy().decide(1, &limited(3600), Duration::ZERO),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn open_breaker_is_not_retried_inline() {
        let open = CfError::CircuitOpen {
            endpoint: Endpoint::Zone,
            retry_in: Duration::from_secs(1),
        };
        assert_eq!(
            policy().decide(1, &open, Duration::ZERO),
            RetryDecision::GiveUp
        );
    }
}
