//! The declarative stream and consumer definitions from `nats/`.

use async_nats::jetstream::{consumer, stream};

/// (file name, JSON) of every stream, in dependency-free order.
const STREAM_FILES: [(&str, &str); 9] = [
    (
        "RL_CONTROL.json",
        include_str!("../../../../nats/streams/RL_CONTROL.json"),
    ),
    (
        "RL_BATCH.json",
        include_str!("../../../../nats/streams/RL_BATCH.json"),
    ),
    (
        "RL_PUSH.json",
        include_str!("../../../../nats/streams/RL_PUSH.json"),
    ),
    (
        "RL_ARCHIVE.json",
        include_str!("../../../../nats/streams/RL_ARCHIVE.json"),
    ),
    (
        "RL_CHAIN.json",
        include_str!("../../../../nats/streams/RL_CHAIN.json"),
    ),
    (
        "RL_AUDIT.json",
        include_str!("../../../../nats/streams/RL_AUDIT.json"),
    ),
    // Key-value buckets are streams too; declaring them here gives them `nats.replicas` and
    // drift checks like every other stream.
    (
        "KV_RL_COLLECTOR_LEASES.json",
        include_str!("../../../../nats/streams/KV_RL_COLLECTOR_LEASES.json"),
    ),
    (
        "KV_RL_COLLECTOR_CURSORS.json",
        include_str!("../../../../nats/streams/KV_RL_COLLECTOR_CURSORS.json"),
    ),
    (
        "KV_RL_STORE_STATUS.json",
        include_str!("../../../../nats/streams/KV_RL_STORE_STATUS.json"),
    ),
];

/// (stream, file name, JSON) of every durable consumer.
const CONSUMER_FILES: [(&str, &str, &str); 2] = [
    (
        "RL_BATCH",
        "RL_BATCH.archiver.json",
        include_str!("../../../../nats/consumers/RL_BATCH.archiver.json"),
    ),
    (
        "RL_ARCHIVE",
        "RL_ARCHIVE.sealer.json",
        include_str!("../../../../nats/consumers/RL_ARCHIVE.sealer.json"),
    ),
];

pub const CONTROL: &str = "RL_CONTROL";
pub const BATCH: &str = "RL_BATCH";
pub const PUSH: &str = "RL_PUSH";
pub const ARCHIVE: &str = "RL_ARCHIVE";
pub const CHAIN: &str = "RL_CHAIN";
pub const AUDIT: &str = "RL_AUDIT";
/// Key-value buckets (their streams are `KV_<bucket>`).
pub const COLLECTOR_LEASES: &str = "RL_COLLECTOR_LEASES";
pub const COLLECTOR_CURSORS: &str = "RL_COLLECTOR_CURSORS";
/// Each process's storage status: provider answers and repair backlog (see `store_status`).
pub const STORE_STATUS: &str = "RL_STORE_STATUS";

#[derive(Debug, thiserror::Error)]
#[error("nats/{file} is not a valid definition: {source}")]
pub struct DefinitionError {
    pub file: String,
    source: serde_json::Error,
}

/// Every stream definition with `replicas` applied.
pub fn streams(replicas: usize) -> Result<Vec<stream::Config>, DefinitionError> {
    STREAM_FILES
        .iter()
        .map(|(file, json)| {
            let mut config: stream::Config =
                serde_json::from_str(json).map_err(|source| DefinitionError {
                    file: format!("streams/{file}"),
                    source,
                })?;
            config.num_replicas = replicas;
            Ok(config)
        })
        .collect()
}

/// A durable consumer definition: the stream it reads and its config.
pub struct ConsumerDefinition {
    pub stream: &'static str,
    pub config: consumer::Config,
}

pub fn consumers() -> Result<Vec<ConsumerDefinition>, DefinitionError> {
    CONSUMER_FILES
        .iter()
        .map(|(stream, file, json)| {
            let config = serde_json::from_str(json).map_err(|source| DefinitionError {
                file: format!("consumers/{file}"),
                source,
            })?;
            Ok(ConsumerDefinition { stream, config })
        })
        .collect()
}

/// The definition of one durable consumer by name.
pub fn consumer(name: &str) -> Result<Option<ConsumerDefinition>, DefinitionError> {
    Ok(consumers()?
        .into_iter()
        .find(|c| c.config.durable_name.as_deref() == Some(name)))
}
