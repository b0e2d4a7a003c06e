//! Validated identifiers that appear in entries, object keys and checkpoints.
//!
//! They are kept to a small ASCII alphabet so that a key never carries PII, never needs
//! escaping in S3 or a filesystem, and compares byte-for-byte the same everywhere.

use std::fmt;
use std::str::FromStr;

/// Longest tenant, zone, dataset or policy name.
pub const MAX_NAME_LEN: usize = 64;

/// The first segment of every origin.
pub const ORIGIN_NAMESPACE: &str = "rainlogs";

/// Dataset names that would collide with the integrity log directory of a zone.
const RESERVED_DATASETS: &[&str] = &["tlog"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("invalid name {0:?}: want 1-64 chars of [a-z0-9_-], starting with [a-z0-9]")]
    InvalidName(String),
    #[error("dataset name {0:?} is reserved")]
    ReservedDataset(String),
    #[error("invalid origin {0:?}: want rainlogs/<tenant>/<zone>")]
    InvalidOrigin(String),
    #[error("invalid window [{start_ns}, {end_ns}): start must be before end")]
    InvalidWindow { start_ns: u64, end_ns: u64 },
}

/// A tenant, zone, dataset or policy identifier: 1-64 chars of `[a-z0-9_-]`, first `[a-z0-9]`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(String);

impl Name {
    pub fn new(text: &str) -> Result<Self, NameError> {
        let bytes = text.as_bytes();
        let allowed =
            |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-';
        let first_ok = bytes
            .first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !first_ok || bytes.len() > MAX_NAME_LEN || !bytes.iter().all(allowed) {
            return Err(NameError::InvalidName(text.to_owned()));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// A dataset (Cloudflare log type) name, e.g. `http_requests`; a [`Name`] that is not reserved.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dataset(Name);

impl Dataset {
    pub fn new(text: &str) -> Result<Self, NameError> {
        let name = Name::new(text)?;
        if RESERVED_DATASETS.contains(&text) {
            return Err(NameError::ReservedDataset(text.to_owned()));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl FromStr for Dataset {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// The identity of one zone's log: `rainlogs/<tenant>/<zone>`. It is the checkpoint origin line,
/// part of the chain genesis, and a field of every entry, so a log cannot be passed off as another.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    text: String,
    tenant: Name,
    zone: Name,
}

impl Origin {
    pub fn new(tenant: &Name, zone: &Name) -> Self {
        Self {
            text: format!("{ORIGIN_NAMESPACE}/{tenant}/{zone}"),
            tenant: tenant.clone(),
            zone: zone.clone(),
        }
    }

    pub fn parse(text: &str) -> Result<Self, NameError> {
        let invalid = || NameError::InvalidOrigin(text.to_owned());
        let mut parts = text.split('/');
        let (Some(ORIGIN_NAMESPACE), Some(tenant), Some(zone), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let tenant = Name::new(tenant).map_err(|_| invalid())?;
        let zone = Name::new(zone).map_err(|_| invalid())?;
        Ok(Self::new(&tenant, &zone))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn tenant(&self) -> &Name {
        &self.tenant
    }

    pub fn zone(&self) -> &Name {
        &self.zone
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl FromStr for Origin {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A half-open time window `[start, end)` in unix nanoseconds (UTC, no leap seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    start_ns: u64,
    end_ns: u64,
}

impl Window {
    pub fn new(start_ns: u64, end_ns: u64) -> Result<Self, NameError> {
        if start_ns >= end_ns {
            return Err(NameError::InvalidWindow { start_ns, end_ns });
        }
        Ok(Self { start_ns, end_ns })
    }

    pub fn start_ns(&self) -> u64 {
        self.start_ns
    }

    pub fn end_ns(&self) -> u64 {
        self.end_ns
    }

    /// Whether `next` starts exactly where this window ends (no gap, no overlap).
    pub fn is_followed_by(&self, next: &Window) -> bool {
        self.end_ns == next.start_ns
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_the_documented_alphabet_only() {
        for good in ["a", "0", "http_requests", "acme-corp", &"z".repeat(64)] {
            assert!(Name::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "_a",
            "A",
            "a.b",
            "a/b",
            "a b",
            "é",
            &"z".repeat(65),
        ] {
            assert!(Name::new(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Dataset::new("tlog"),
            Err(NameError::ReservedDataset("tlog".into()))
        );
    }

    #[test]
    fn origin_parses_only_the_canonical_three_segment_form() {
        let origin = Origin::parse("rainlogs/acme/0123abcd").unwrap();
        assert_eq!(origin.tenant().as_str(), "acme");
        assert_eq!(origin.zone().as_str(), "0123abcd");
        for bad in [
            "rainlogs/acme",
            "rainlogs/acme/zone/x",
            "other/acme/zone",
            "rainlogs/Acme/zone",
            "rainlogs//zone",
            "rainlogs/acme/zone/",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn window_must_be_non_empty() {
        assert!(Window::new(5, 5).is_err());
        assert!(Window::new(6, 5).is_err());
        let w = Window::new(0, 60).unwrap();
        assert!(w.is_followed_by(&Window::new(60, 120).unwrap()));
        assert!(!w.is_followed_by(&Window::new(61, 120).unwrap()));
    }
}
