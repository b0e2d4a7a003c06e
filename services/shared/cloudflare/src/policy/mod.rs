//! Resilience layers, each small and tested alone: backoff, retry decisions, rate limiting, circuit breaking.
//! `crate::exec` composes them around one request.

pub mod backoff;
pub mod breaker;
pub mod limiter;
pub mod retry;
