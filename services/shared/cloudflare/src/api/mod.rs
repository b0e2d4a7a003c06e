//! Endpoint methods on `TokenClient`, one module per Cloudflare product area.

pub mod account;
pub mod graphql;
pub mod instant_logs;
pub mod logpull;
pub mod logpush;
pub mod zones;
