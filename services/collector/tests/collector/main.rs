//! Collector against the in-process Cloudflare simulator and a private NATS server per test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bus_outages;
mod graphql;
mod instant_logs;
mod logpull;
mod logpull_faults;
mod logpush;
mod onboarding;
mod ownership;
mod support;
