//! Where a window's archive goes: the names, checked, and the keys they give (docs/FORMAT.md §2).

use rainlogs_integrity::layout::ARCHIVE_SUFFIX;
use rainlogs_integrity::{BucketPrefix, Dataset, Name, Origin, Sha256Hash, Window};
use rainlogs_schemas::events;

/// Length of `<16 hex id>.ndjson.zst`, the part of an archive key that depends on the content.
const CONTENT_PART_LEN: usize = 16 + ARCHIVE_SUFFIX.len();

/// A window of one dataset of one zone, with every name validated for use in keys and entries.
#[derive(Debug, Clone)]
pub struct ArchiveTarget {
    prefix: BucketPrefix,
    origin: Origin,
    dataset: Dataset,
    window: Window,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{what} {value:?} cannot be used in an object key: {reason}")]
    BadName {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("window [{start}, {end}) is not a valid window of Unix seconds")]
    BadWindow { start: i64, end: i64 },
}

impl ArchiveTarget {
    pub fn new(
        prefix: &BucketPrefix,
        tenant: &str,
        zone: &str,
        dataset: &str,
        window: &events::Window,
    ) -> Result<Self, TargetError> {
        let bad = |what, value: &str, reason: String| TargetError::BadName {
            what,
            value: value.to_owned(),
            reason,
        };
        let tenant = Name::new(tenant).map_err(|e| bad("tenant", tenant, e.to_string()))?;
        let zone = Name::new(zone).map_err(|e| bad("zone", zone, e.to_string()))?;
        let dataset = Dataset::new(dataset).map_err(|e| bad("dataset", dataset, e.to_string()))?;
        Ok(Self {
            prefix: prefix.clone(),
            origin: Origin::new(&tenant, &zone),
            dataset,
            window: window_ns(window)?,
        })
    }

    /// The archive key for this content.
    pub fn object_key(&self, content_sha256: &Sha256Hash) -> Result<String, TargetError> {
        self.prefix
            .archive_key(&self.origin, &self.dataset, &self.window, content_sha256)
            .map_err(|e| TargetError::BadName {
                what: "window",
                value: format!("{:?}", self.window),
                reason: e.to_string(),
            })
    }

    /// The key of a late object of this window with this content.
    pub fn late_key(&self, content_sha256: &Sha256Hash) -> Result<String, TargetError> {
        self.prefix
            .late_key(&self.origin, &self.dataset, &self.window, content_sha256)
            .map_err(|e| TargetError::BadName {
                what: "window",
                value: format!("{:?}", self.window),
                reason: e.to_string(),
            })
    }

    /// The key prefix every archive of this window has, whatever its content:
    /// `<zone prefix><dataset>/YYYY/MM/DD/HH/<window label>-`.
    pub fn window_key_prefix(&self) -> Result<String, TargetError> {
        let mut key = self.object_key(&Sha256Hash::ZERO)?;
        key.truncate(key.len() - CONTENT_PART_LEN);
        Ok(key)
    }
}

/// Converts a window of Unix seconds to the entry format's nanoseconds.
pub fn window_ns(window: &events::Window) -> Result<Window, TargetError> {
    let bad = || TargetError::BadWindow {
        start: window.start,
        end: window.end,
    };
    let to_ns = |secs: i64| {
        u64::try_from(secs)
            .ok()
            .and_then(|s| s.checked_mul(1_000_000_000))
    };
    let (start, end) = (
        to_ns(window.start).ok_or_else(bad)?,
        to_ns(window.end).ok_or_else(bad)?,
    );
    Window::new(start, end).map_err(|_| bad())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn window_prefix_is_the_key_without_its_content_part() {
        let prefix = BucketPrefix::new("eu").unwrap();
        let window = events::Window {
            start: 1_768_485_600,
            end: 1_768_485_660,
        };
        let target =
            ArchiveTarget::new(&prefix, "acme", "0123abcd", "http_requests", &window).unwrap();
        let key = target.object_key(&Sha256Hash::digest(b"x")).unwrap();
        let window_prefix = target.window_key_prefix().unwrap();
        assert_eq!(
            window_prefix,
            "eu/acme/0123abcd/http_requests/2026/01/15/14/20260115T140000Z_20260115T140100Z-"
        );
        assert!(
            key.starts_with(&window_prefix) && key.ends_with(".ndjson.zst"),
            "{key}"
        );
    }

    #[test]
    fn names_that_could_carry_pii_or_escape_the_layout_are_refused() {
        let prefix = BucketPrefix::default();
        let window = events::Window { start: 0, end: 60 };
        for (tenant, zone, dataset) in [
            ("Acme", "z", "d"),
            ("acme", "../z", "d"),
            ("acme", "z", "tlog"),
            ("acme", "z", "a@b.example"),
        ] {
            assert!(ArchiveTarget::new(&prefix, tenant, zone, dataset, &window).is_err());
        }
        let backwards = events::Window { start: 60, end: 60 };
        assert!(ArchiveTarget::new(&prefix, "acme", "z", "d", &backwards).is_err());
        let negative = events::Window { start: -60, end: 0 };
        assert!(ArchiveTarget::new(&prefix, "acme", "z", "d", &negative).is_err());
    }
}
