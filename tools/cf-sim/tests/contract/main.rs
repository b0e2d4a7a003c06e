//! Contract tests: the simulator's documented Cloudflare behaviours, asserted through real HTTP/WebSocket.

mod api;
mod common;
mod faults;
mod graphql;
mod graphql_groups;
mod instant_logs;
mod logpull;
mod logpush;
mod logpush_s3;
