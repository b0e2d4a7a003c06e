//! What a search looks for: one Ray ID, or client addresses in a block, optionally in a time range.

use rainlogs_index::{FrameKeys, IpBlock, IpBlockError, RayId, RayIdError, record_keys};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Ray(RayId),
    /// An address (a block of one) or a CIDR block.
    Client(IpBlock),
}

/// Why the values given for a key name none.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("give exactly one of ray_id, client_ip and cidr")]
    NotOne,
    #[error("ray_id: {0}")]
    Ray(RayIdError),
    #[error("client_ip: {0}")]
    Client(IpBlockError),
    #[error("client_ip is one address; give a block as cidr")]
    ClientIsBlock,
    #[error("cidr: {0}")]
    Cidr(IpBlockError),
    #[error("cidr needs a prefix length, as in 203.0.113.0/24")]
    CidrWithoutPrefix,
}

impl Key {
    /// The key from the one of a Ray ID, a client address and a CIDR block that is given.
    pub fn one_of(
        ray_id: Option<&str>,
        client_ip: Option<&str>,
        cidr: Option<&str>,
    ) -> Result<Self, KeyError> {
        match (ray_id, client_ip, cidr) {
            (Some(ray), None, None) => RayId::parse(ray).map(Key::Ray).map_err(KeyError::Ray),
            (None, Some(ip), None) if !ip.contains('/') => IpBlock::parse(ip)
                .map(Key::Client)
                .map_err(KeyError::Client),
            (None, Some(_), None) => Err(KeyError::ClientIsBlock),
            (None, None, Some(block)) if block.contains('/') => IpBlock::parse(block)
                .map(Key::Client)
                .map_err(KeyError::Cidr),
            (None, None, Some(_)) => Err(KeyError::CidrWithoutPrefix),
            _ => Err(KeyError::NotOne),
        }
    }
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
