//! RainLogs' JetStream backbone.
//!
//! Streams and consumers are declared in `nats/` as JSON files in the format of the `nats` CLI
//! (`nats stream add --config nats/streams/RL_BATCH.json`) and compiled into this crate, so
//! `rainlogs provision` and the files can never disagree.

mod connect;
mod control;
pub mod definitions;
mod erase;
mod provision;
mod publish;
mod settle;
pub mod store_status;
mod trace_context;

pub use async_nats;
pub use connect::{Bus, ConnectError, MIN_SERVER_VERSION, connect, connect_any, server_addrs};
pub use control::{ControlFeed, StreamEnded, control_feed};
pub use erase::{EraseError, erase_control_events};
pub use provision::{Drift, ProvisionError, StreamReport, StreamStatus, check, provision};
pub use publish::{PublishError, Published};
pub use settle::{Disposition, settle};
pub use tokio_util::sync::CancellationToken;
pub use trace_context::continue_trace;
