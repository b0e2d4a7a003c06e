//! One logical call = breaker check → rate limiter → attempt → record outcome → retry decision, repeated.
//! Each layer lives in `policy::*`; this module only wires them in that order.

use crate::error::{CfError, RateLimitScope};
use crate::policy::breaker::{BreakerKey, CircuitBreakers};
use crate::policy::limiter::{LimitKey, RateLimiter};
use crate::policy::retry::{RetryDecision, RetryPolicy};
use crate::route::Endpoint;
use crate::token::TokenId;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What a call is, for the purpose of limits and breakers.
#[derive(Debug, Clone)]
pub(crate) struct CallSpec {
    pub endpoint: Endpoint,
    pub token: TokenId,
    pub zone: Option<String>,
}

impl CallSpec {
    pub(crate) fn new(endpoint: Endpoint, token: &TokenId, zone: Option<&str>) -> Self {
        Self {
            endpoint,
            token: token.clone(),
            zone: zone.map(str::to_owned),
        }
    }

    pub(crate) fn breaker_key(&self) -> BreakerKey {
        (self.token.clone(), self.endpoint, self.zone.clone())
    }

    /// Every budget this request spends.
    pub(crate) fn limit_keys(&self) -> Vec<LimitKey> {
        let mut keys = Vec::with_capacity(3);
        if self.endpoint.counts_against_api_limit() {
            keys.push(LimitKey::Token(self.token.clone()));
        }
        if self.endpoint.is_logpull() {
            keys.push(LimitKey::LogpullToken(self.token.clone()));
            if let Some(zone) = &self.zone {
                keys.push(LimitKey::LogpullZone(zone.clone()));
            }
        }
        if self.endpoint == Endpoint::Graphql {
            keys.push(LimitKey::GraphqlToken(self.token.clone()));
        }
        // The session socket is not an API call; everything else counts against the address.
        if self.endpoint != Endpoint::InstantLogsSocket {
            keys.push(LimitKey::Process);
        }
        keys
    }

    /// The budget a 429 refers to, which is then blocked for everyone sharing it.
    fn blocked_key(&self, scope: RateLimitScope) -> Option<LimitKey> {
        match scope {
            RateLimitScope::LogpullZone => self.zone.clone().map(LimitKey::LogpullZone),
            RateLimitScope::Token => Some(LimitKey::Token(self.token.clone())),
            RateLimitScope::Graphql => Some(LimitKey::GraphqlToken(self.token.clone())),
            RateLimitScope::Local => None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Policies {
    pub retry: RetryPolicy,
    pub limiter: RateLimiter,
    pub breakers: Arc<CircuitBreakers>,
    pub limiter_max_wait: Duration,
}

impl Policies {
    /// Runs `attempt` under all layers, retrying per the policy.
    pub(crate) async fn run<T, F, Fut>(&self, spec: &CallSpec, mut attempt: F) -> Result<T, CfError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CfError>>,
    {
        let mut attempts_made = 0;
        loop {
            let result = self.attempt_once(spec, &mut attempt).await;
            attempts_made += 1;
            let error = match result {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            match self.retry.next_delay(attempts_made, &error) {
                RetryDecision::GiveUp => return Err(error),
                RetryDecision::RetryAfter(delay) => {
                    tracing::debug!(endpoint = %spec.endpoint, token = %spec.token, attempts_made, ?delay, %error, "retrying Cloudflare call");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn attempt_once<T, F, Fut>(&self, spec: &CallSpec, attempt: &mut F) -> Result<T, CfError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CfError>>,
    {
        let permit = self
            .breakers
            .acquire(spec.breaker_key())
            .map_err(|retry_in| CfError::CircuitOpen {
                endpoint: spec.endpoint,
                retry_in,
            })?;
        self.limiter
            .acquire(&spec.limit_keys(), self.limiter_max_wait)
            .await
            .map_err(|wait| CfError::RateLimited {
                scope: RateLimitScope::Local,
                retry_after: Some(wait),
                detail: format!(
                    "client-side limit for {} would need a {wait:?} wait",
                    spec.endpoint
                ),
            })?;
        let result = attempt().await;
        match &result {
            Ok(_) => permit.success(),
            Err(error) if error.is_endpoint_failure() => permit.failure(),
            Err(CfError::RateLimited {
                scope, retry_after, ..
            }) => {
                if let (Some(key), Some(wait)) = (spec.blocked_key(*scope), retry_after) {
                    self.limiter.block(key, Instant::now() + *wait);
                }
                drop(permit);
            }
            // The endpoint answered, so it is healthy even though the request was refused.
            Err(error) if error.http_status().is_some() => permit.success(),
            Err(_) => drop(permit),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::backoff::Backoff;
    use crate::policy::breaker::{BreakerConfig, BreakerState};
    use crate::policy::limiter::RateLimits;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policies(max_attempts: u32, threshold: u32) -> Policies {
        Policies {
            retry: RetryPolicy {
                max_attempts,
                backoff: Backoff {
                    base: Duration::from_millis(1),
                    max: Duration::from_millis(5),
                },
                max_server_wait: Duration::from_secs(10),
            },
            limiter: RateLimiter::new(RateLimits::UNLIMITED),
            breakers: CircuitBreakers::new(BreakerConfig {
                failure_threshold: threshold,
                open_for: Duration::from_secs(60),
            }),
            limiter_max_wait: Duration::from_secs(1),
        }
    }

    fn spec() -> CallSpec {
        CallSpec::new(
            Endpoint::LogpullReceived,
            crate::token::ApiToken::new("t").id(),
            Some("zone-a"),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_failures_then_succeeds() {
        let p = policies(4, 10);
        let calls = AtomicU32::new(0);
        let result = p
            .run(&spec(), || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err(CfError::Server {
                        status: 503,
                        detail: String::new(),
                    }),
                    _ => Ok("ok"),
                }
            })
            .await;
        assert_eq!(result.unwrap(), "ok");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            p.breakers.state(&spec().breaker_key()),
            BreakerState::Closed
        );
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_returned_after_one_attempt() {
        let p = policies(4, 10);
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = p
            .run(&spec(), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(CfError::BadQuery {
                    status: 400,
                    message: "bad query: x".into(),
                })
            })
            .await;
        assert!(matches!(result, Err(CfError::BadQuery { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_and_stops_further_attempts() {
        let p = policies(10, 2);
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = p
            .run(&spec(), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(CfError::Server {
                    status: 500,
                    detail: String::new(),
                })
            })
            .await;
        assert!(
            matches!(
                result,
                Err(CfError::CircuitOpen {
                    endpoint: Endpoint::LogpullReceived,
                    ..
                })
            ),
            "{result:?}"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "the third attempt must be refused by the open breaker"
        );
        assert_eq!(p.breakers.state(&spec().breaker_key()), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_blocks_the_zone_for_later_callers() {
        let p = policies(1, 10);
        let result: Result<(), _> = p
            .run(&spec(), || async {
                Err(CfError::RateLimited {
                    scope: RateLimitScope::LogpullZone,
                    retry_after: Some(Duration::from_secs(30)),
                    detail: String::new(),
                })
            })
            .await;
        assert!(matches!(
            result,
            Err(CfError::RateLimited {
                scope: RateLimitScope::LogpullZone,
                ..
            })
        ));
        let refused: Result<(), _> = p.run(&spec(), || async { Ok(()) }).await;
        assert!(
            matches!(refused, Err(CfError::RateLimited { scope: RateLimitScope::Local, retry_after: Some(d), .. }) if d > Duration::from_secs(1)),
            "{refused:?}"
        );
        let other_zone = CallSpec::new(Endpoint::LogpullReceived, &spec().token, Some("zone-b"));
        assert!(
            p.run(&other_zone, || async { Ok(()) }).await.is_ok(),
            "other zones are not blocked"
        );
    }
}
