//! What a search looks for: one Ray ID, or client addresses in a block, optionally in a time range.

use rainlogs_index::{FrameKeys, IpBlock, RayId, record_keys};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Ray(RayId),
    /// An address (a block of one) or a CIDR block.
    Client(IpBlock),
}

/// A search: its key and, optionally, the half-open time range `[start_ns, end_ns)` the records'
/// times (docs/FORMAT.md §12.2) must fall in. With a range, records without a time never match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub key: Key,
    pub time: Option<(u64, u64)>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("the time range ends ({end_ns}) before it starts ({start_ns})")]
    EmptyRange { start_ns: u64, end_ns: u64 },
}

impl Query {
    pub fn new(key: Key, time: Option<(u64, u64)>) -> Result<Self, QueryError> {
        if let Some((start_ns, end_ns)) = time
            && end_ns <= start_ns
        {
            return Err(QueryError::EmptyRange { start_ns, end_ns });
        }
        Ok(Self { key, time })
    }

    /// Whether one archived record (a line without its `\n`) is a hit.
    pub fn matches(&self, line: &[u8]) -> bool {
        let keys = record_keys(line);
        let key = match self.key {
            Key::Ray(ray) => keys.ray == Some(ray),
            Key::Client(block) => keys
                .client_ip
                .is_some_and(|ip| block.holds(rainlogs_index::ip::number(ip))),
        };
        key && self
            .time
            .is_none_or(|(start, end)| keys.time_ns.is_some_and(|t| (start..end).contains(&t)))
    }

    /// Whether a frame with these keys may hold a hit (never `false` for one that does).
    pub fn frame_may_match(&self, keys: &FrameKeys) -> bool {
        let key = match &self.key {
            // A set that does not decode is not trusted to rule the frame out.
            Key::Ray(ray) => keys.may_hold_ray(ray).unwrap_or(true),
            Key::Client(block) => keys.may_hold_client_in(block),
        };
        key && self
            .time
            .is_none_or(|(start, end)| keys.may_hold_time_in(start, end))
    }
}
