//! The storage status each process publishes in the KV bucket `RL_STORE_STATUS` (declared in
//! `nats/` like every stream, so it gets `nats.replicas` and drift checks).
//!
//! With two storage providers every `rainlogs run` process watches them and keeps its own repair
//! queue (objects written to one provider only). The queue lives in the process's data directory,
//! possibly on another machine than whoever wants to know about it, so each process writes its
//! view here once per pass: key `<process name>`, value a JSON [`StoreStatus`]. Every write
//! carries the writer's per-message TTL (`Nats-TTL`), so the entry of a process that stops
//! disappears on its own; readers sum what is left ([`read_all`]).

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::header::NATS_MESSAGE_TTL;
use bytes::Bytes;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::Bus;
use crate::definitions::STORE_STATUS;

/// One process's view of the store, as of its last pass.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStatus {
    /// Provider role (`primary`, `secondary`) → whether it answered.
    pub providers: BTreeMap<String, bool>,
    /// Objects in the process's repair queue: on one provider only, waiting to be copied.
    pub backlog: u64,
    /// `<tenant>/<zone>` → queued objects of that zone. Keys outside the archive layout count
    /// only in `backlog`.
    #[serde(default)]
    pub zones: BTreeMap<String, u64>,
    /// The writer's host name, for a person reading the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl StoreStatus {
    /// The roles reported as not answering.
    pub fn down(&self) -> impl Iterator<Item = &str> {
        self.providers
            .iter()
            .filter(|(_, answering)| !**answering)
            .map(|(role, _)| role.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{what} in KV bucket {STORE_STATUS}: {reason}")]
pub struct StoreStatusError {
    what: String,
    reason: String,
}

impl StoreStatusError {
    pub fn new(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

fn failed(what: impl Into<String>, reason: impl std::fmt::Display) -> StoreStatusError {
    StoreStatusError::new(what, reason)
}

/// Whether `key` may name an entry: KV keys allow `[-/_=.a-zA-Z0-9]`, and no empty token
/// between dots.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'=' | b'.'))
        && !key.starts_with('.')
        && !key.ends_with('.')
        && !key.contains("..")
}

/// Writes `status` under `key`; it disappears `ttl` after this write (whole seconds, at least
/// one: the server's granularity) unless written again.
pub async fn write(
    bus: &Bus,
    key: &str,
    status: &StoreStatus,
    ttl: Duration,
) -> Result<(), StoreStatusError> {
    let what = || format!("writing {key}");
    if !is_valid_key(key) {
        return Err(failed(what(), "not a valid key"));
    }
    let value = serde_json::to_vec(status).map_err(|e| failed(what(), e))?;
    let ttl_secs = ttl.as_secs_f64().ceil().max(1.0) as u64;
    let mut headers = HeaderMap::new();
    headers.insert(NATS_MESSAGE_TTL, ttl_secs.to_string().as_str());
    bus.js
        .publish_with_headers(
            format!("$KV.{STORE_STATUS}.{key}"),
            headers,
            Bytes::from(value),
        )
        .await
        .map_err(|e| failed(what(), e))?
        .await
        .map_err(|e| failed(what(), e))?;
    Ok(())
}

/// Every live entry: (key, status). An entry that does not parse (a newer writer's format) is
/// left out.
pub async fn read_all(bus: &Bus) -> Result<Vec<(String, StoreStatus)>, StoreStatusError> {
    let store = bus
        .js
        .get_key_value(STORE_STATUS)
        .await
        .map_err(|e| failed("opening", format!("{e}; run `rainlogs provision`")))?;
    let keys: Vec<String> = store
        .keys()
        .await
        .map_err(|e| failed("listing keys", e))?
        .try_collect()
        .await
        .map_err(|e| failed("listing keys", e))?;
    let mut statuses = Vec::with_capacity(keys.len());
    for key in keys {
        // Gone since it was listed: its TTL passed.
        let Some(value) = store
            .get(key.as_str())
            .await
            .map_err(|e| failed(format!("reading {key}"), e))?
        else {
            continue;
        };
        match serde_json::from_slice(&value) {
            Ok(status) => statuses.push((key, status)),
            Err(e) => {
                tracing::debug!(key, error = %e, "skipping a store status entry that does not parse")
            }
        }
    }
    Ok(statuses)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_what_kv_allows() {
        for good in ["2f1c", "a.b", "host-1_x=y/z"] {
            assert!(is_valid_key(good), "{good}");
        }
        for bad in ["", "a b", "a..b", ".a", "a.", "a*", "a>"] {
            assert!(!is_valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn the_value_is_plain_json_and_zones_may_be_absent() {
        let status = StoreStatus {
            providers: BTreeMap::from([("primary".into(), true), ("secondary".into(), false)]),
            backlog: 3,
            zones: BTreeMap::from([("t1/z1".into(), 2)]),
            host: None,
        };
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            serde_json::json!({
                "providers": {"primary": true, "secondary": false},
                "backlog": 3,
                "zones": {"t1/z1": 2}
            })
        );
        assert_eq!(status.down().collect::<Vec<_>>(), ["secondary"]);
        let bare: StoreStatus =
            serde_json::from_str(r#"{"providers":{},"backlog":0,"later":1}"#).unwrap();
        assert_eq!(bare, StoreStatus::default());
    }
}
