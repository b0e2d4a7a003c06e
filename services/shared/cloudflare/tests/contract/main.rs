//! Contract tests: the client against the in-process Cloudflare simulator (`cf-sim`), for every endpoint and every
//! fault the simulator can inject. Each test starts its own simulator with a frozen clock.

#![allow(clippy::unwrap_used)]

mod support;

mod graphql;
mod graphql_groups;
mod instant_logs;
mod logpull;
mod logpull_faults;
mod resilience;
mod zones_tokens;
