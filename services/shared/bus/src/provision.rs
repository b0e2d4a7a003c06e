//! Creates or updates the streams and consumers declared in `nats/`, and reports drift.

use std::fmt;

use async_nats::jetstream::{self, consumer};
use serde::Serialize;
use serde_json::Value;

use crate::Bus;
use crate::definitions::{self, DefinitionError};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    #[error("{what}: {reason}")]
    Server { what: String, reason: String },
}

/// One field whose value on the server differs from its definition in `nats/`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Drift {
    pub field: String,
    pub expected: Value,
    pub actual: Value,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, found {}",
            self.field, self.expected, self.actual
        )
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StreamStatus {
    Created,
    UpToDate,
    /// Drift found and corrected.
    Updated {
        drift: Vec<Drift>,
    },
    /// Drift found and left in place (check mode, or the server refused the change).
    Drifted {
        drift: Vec<Drift>,
        note: String,
    },
    Missing,
}

/// What provisioning found or did for one stream or consumer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamReport {
    /// `RL_BATCH` or `RL_BATCH/archiver`.
    pub name: String,
    #[serde(flatten)]
    pub status: StreamStatus,
}

impl StreamReport {
    /// Missing, or drift that is still in place.
    pub fn needs_attention(&self) -> bool {
        matches!(
            self.status,
            StreamStatus::Missing | StreamStatus::Drifted { .. }
        )
    }
}

/// Creates what is missing and corrects drift. Idempotent.
pub async fn provision(bus: &Bus, replicas: usize) -> Result<Vec<StreamReport>, ProvisionError> {
    run(bus, replicas, Mode::Apply).await
}

/// Reports missing streams/consumers and drift without changing anything (every service at start).
pub async fn check(bus: &Bus, replicas: usize) -> Result<Vec<StreamReport>, ProvisionError> {
    run(bus, replicas, Mode::Check).await
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Apply,
    Check,
}

async fn run(bus: &Bus, replicas: usize, mode: Mode) -> Result<Vec<StreamReport>, ProvisionError> {
    let mut reports = Vec::new();
    for desired in definitions::streams(replicas)? {
        reports.push(stream(bus, desired, mode).await?);
    }
    for definition in definitions::consumers()? {
        reports.push(consumer_report(bus, definition, mode).await?);
    }
    Ok(reports)
}

fn server_err(what: &str, err: impl fmt::Display) -> ProvisionError {
    ProvisionError::Server {
        what: what.to_owned(),
        reason: err.to_string(),
    }
}

async fn stream(
    bus: &Bus,
    desired: jetstream::stream::Config,
    mode: Mode,
) -> Result<StreamReport, ProvisionError> {
    let name = desired.name.clone();
    let report = |status| StreamReport {
        name: name.clone(),
        status,
    };
    let mut existing = match bus.js.get_stream(&name).await {
        Ok(stream) => stream,
        Err(e) if is_stream_not_found(&e) => {
            if mode == Mode::Check {
                return Ok(report(StreamStatus::Missing));
            }
            bus.js
                .create_stream(desired)
                .await
                .map_err(|e| server_err(&format!("creating stream {name}"), e))?;
            return Ok(report(StreamStatus::Created));
        }
        Err(e) => return Err(server_err(&format!("reading stream {name}"), e)),
    };
    let actual = existing
        .info()
        .await
        .map_err(|e| server_err(&format!("reading stream {name}"), e))?
        .config
        .clone();
    let drift = compare(&desired, &actual);
    if drift.is_empty() {
        return Ok(report(StreamStatus::UpToDate));
    }
    if mode == Mode::Check {
        return Ok(report(StreamStatus::Drifted {
            drift,
            note: "run `rainlogs provision` to correct it".into(),
        }));
    }
    match bus.js.update_stream(desired).await {
        Ok(_) => Ok(report(StreamStatus::Updated { drift })),
        Err(e) => Ok(report(StreamStatus::Drifted {
            drift,
            note: format!("the server refused the update ({e}); fix it by hand"),
        })),
    }
}

async fn consumer_report(
    bus: &Bus,
    definition: definitions::ConsumerDefinition,
    mode: Mode,
) -> Result<StreamReport, ProvisionError> {
    let durable = definition.config.durable_name.clone().unwrap_or_default();
    let name = format!("{}/{durable}", definition.stream);
    let report = |status| StreamReport {
        name: name.clone(),
        status,
    };
    let stream = match bus.js.get_stream(definition.stream).await {
        Ok(stream) => stream,
        Err(_) if mode == Mode::Check => return Ok(report(StreamStatus::Missing)),
        Err(e) => return Err(server_err(&format!("reading stream of {name}"), e)),
    };
    let actual = match stream.consumer_info(&durable).await {
        Ok(info) => info.config,
        Err(_) if mode == Mode::Check => return Ok(report(StreamStatus::Missing)),
        Err(_) => {
            stream
                .create_consumer(definition.config)
                .await
                .map_err(|e| server_err(&format!("creating consumer {name}"), e))?;
            return Ok(report(StreamStatus::Created));
        }
    };
    let drift = compare(&definition.config, &actual);
    if drift.is_empty() {
        return Ok(report(StreamStatus::UpToDate));
    }
    if mode == Mode::Check {
        return Ok(report(StreamStatus::Drifted {
            drift,
            note: "run `rainlogs provision` to correct it".into(),
        }));
    }
    match stream
        .update_consumer::<consumer::Config>(definition.config)
        .await
    {
        Ok(_) => Ok(report(StreamStatus::Updated { drift })),
        Err(e) => Ok(report(StreamStatus::Drifted {
            drift,
            note: format!("the server refused the update ({e}); fix it by hand"),
        })),
    }
}

fn is_stream_not_found(err: &jetstream::context::GetStreamError) -> bool {
    matches!(
        err.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(e)
            if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

/// Compares the fields the definition sets; fields the server adds on its own are not drift.
/// A flag the definition leaves off is left out of its JSON, so a flag the server has on is
/// compared too (a stream that still denies deletes after the definition stopped asking).
fn compare<T: Serialize>(desired: &T, actual: &T) -> Vec<Drift> {
    let (Ok(Value::Object(mut desired)), Ok(Value::Object(actual))) =
        (serde_json::to_value(desired), serde_json::to_value(actual))
    else {
        return Vec::new();
    };
    for (field, value) in &actual {
        if *value == Value::Bool(true) && !desired.contains_key(field) {
            desired.insert(field.clone(), Value::Bool(false));
        }
    }
    desired
        .into_iter()
        .filter_map(|(field, expected)| {
            let found = actual.get(&field).cloned().unwrap_or(Value::Null);
            (found != expected).then_some(Drift {
                field,
                expected,
                actual: found,
            })
        })
        .collect()
}
