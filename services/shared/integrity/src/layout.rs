//! Bucket layout (docs/FORMAT.md §2):
//!
//! ```text
//! <prefix>/<tenant>/<zone>/<dataset>/YYYY/MM/DD/HH/<window>-<id>.ndjson.zst   archives
//! <prefix>/<tenant>/<zone>/<dataset>/YYYY/MM/DD/HH/<window>-<id>.index         their indexes
//! <prefix>/<tenant>/<zone>/tlog/checkpoint                                     latest checkpoint
//! <prefix>/<tenant>/<zone>/tlog/checkpoints/<size, 20 digits>                 every checkpoint
//! <prefix>/<tenant>/<zone>/tlog/tile/...                                      tiles, entry bundles
//! ```

use std::fmt;

use time::OffsetDateTime;

use crate::hash::Sha256Hash;
use crate::names::{Dataset, NameError, Origin, Window};

/// Directory of a zone's integrity log, below the zone prefix.
pub const TLOG_DIR: &str = "tlog";
/// File name suffix of archive objects.
pub const ARCHIVE_SUFFIX: &str = ".ndjson.zst";
/// File name suffix of index objects, in place of the archive suffix.
pub const INDEX_SUFFIX: &str = ".index";
/// Domain-separation prefix of the object id hash.
pub const OBJECT_ID_PREFIX: &[u8] = b"rainlogs object id v1\n";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "invalid bucket prefix {0:?}: want '/'-separated segments of [A-Za-z0-9._-], no '.'/'..'"
    )]
    BadPrefix(String),
    #[error("window time {0} ns is outside the supported calendar range")]
    BadTime(u64),
    #[error(transparent)]
    Name(#[from] NameError),
}

/// The part of every key before the tenant; may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct BucketPrefix(String);

impl BucketPrefix {
    pub fn new(prefix: &str) -> Result<Self, LayoutError> {
        if prefix.is_empty() {
            return Ok(Self::default());
        }
        let segment_ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        };
        if prefix.len() > 256 || !prefix.split('/').all(segment_ok) {
            return Err(LayoutError::BadPrefix(prefix.to_owned()));
        }
        Ok(Self(prefix.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `<prefix>/<tenant>/<zone>/` (no leading slash when the prefix is empty).
    pub fn zone_prefix(&self, origin: &Origin) -> String {
        let mut out = String::new();
        if !self.0.is_empty() {
            out.push_str(&self.0);
            out.push('/');
        }
        out.push_str(&format!("{}/{}/", origin.tenant(), origin.zone()));
        out
    }

    /// `<prefix>/<tenant>/<zone>/tlog/`: prepend to tile paths and `checkpoint`.
    pub fn tlog_prefix(&self, origin: &Origin) -> String {
        format!("{}{TLOG_DIR}/", self.zone_prefix(origin))
    }

    /// Key of the latest checkpoint (the only key that is ever replaced).
    pub fn checkpoint_key(&self, origin: &Origin) -> String {
        format!("{}checkpoint", self.tlog_prefix(origin))
    }

    /// Key under which the checkpoint of `size` is kept for good (first one signed at a size).
    pub fn checkpoint_history_key(&self, origin: &Origin, size: u64) -> String {
        format!("{}checkpoints/{size:020}", self.tlog_prefix(origin))
    }

    /// Key of the archive object of one window.
    pub fn archive_key(
        &self,
        origin: &Origin,
        dataset: &Dataset,
        window: &Window,
        content_sha256: &Sha256Hash,
    ) -> Result<String, LayoutError> {
        self.window_object_key(origin, dataset, window, "-", content_sha256)
    }

    /// Key of a late object of a window (records that arrived after its entry was sealed):
    /// `<window>.late-<id>` where an archive has `<window>-<id>`, so listing a window's archive
    /// (`<window>-`) never finds its late objects.
    pub fn late_key(
        &self,
        origin: &Origin,
        dataset: &Dataset,
        window: &Window,
        content_sha256: &Sha256Hash,
    ) -> Result<String, LayoutError> {
        self.window_object_key(origin, dataset, window, ".late-", content_sha256)
    }

    fn window_object_key(
        &self,
        origin: &Origin,
        dataset: &Dataset,
        window: &Window,
        separator: &str,
        content_sha256: &Sha256Hash,
    ) -> Result<String, LayoutError> {
        let start = utc(window.start_ns())?;
        Ok(format!(
            "{}{dataset}/{:04}/{:02}/{:02}/{:02}/{}{separator}{}{ARCHIVE_SUFFIX}",
            self.zone_prefix(origin),
            start.year(),
            u8::from(start.month()),
            start.day(),
            start.hour(),
            window_label(window)?,
            object_id(origin, dataset, window, content_sha256),
        ))
    }
}

impl fmt::Display for BucketPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key of the index object of the archive or late object at `object_key`: the same key with
/// `.index` in place of `.ndjson.zst`. `None` for a key that is not an archive object's.
pub fn index_key(object_key: &str) -> Option<String> {
    object_key
        .strip_suffix(ARCHIVE_SUFFIX)
        .filter(|stem| !stem.is_empty())
        .map(|stem| format!("{stem}{INDEX_SUFFIX}"))
}

/// `<start>_<end>` in UTC ISO 8601 basic format, `YYYYMMDDTHHMMSSZ`, with a 9-digit fraction
/// `.fffffffff` before the `Z` only when the time is not a whole second.
pub fn window_label(window: &Window) -> Result<String, LayoutError> {
    Ok(format!(
        "{}_{}",
        compact_time(window.start_ns())?,
        compact_time(window.end_ns())?
    ))
}

/// First 8 bytes (16 hex digits) of
/// SHA-256("rainlogs object id v1\n" ∥ origin ∥ 0x0A ∥ dataset ∥ 0x0A ∥ start u64be ∥ end u64be ∥ content SHA-256).
/// The same window with the same content always gets the same key; different content never
/// overwrites it.
pub fn object_id(
    origin: &Origin,
    dataset: &Dataset,
    window: &Window,
    content_sha256: &Sha256Hash,
) -> String {
    let digest = Sha256Hash::digest_parts(&[
        OBJECT_ID_PREFIX,
        origin.as_str().as_bytes(),
        b"\n",
        dataset.as_str().as_bytes(),
        b"\n",
        &window.start_ns().to_be_bytes(),
        &window.end_ns().to_be_bytes(),
        &content_sha256.0,
    ]);
    hex::encode(&digest.0[..8])
}

fn utc(unix_ns: u64) -> Result<OffsetDateTime, LayoutError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ns))
        .map_err(|_| LayoutError::BadTime(unix_ns))
}

fn compact_time(unix_ns: u64) -> Result<String, LayoutError> {
    let t = utc(unix_ns)?;
    let mut out = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if t.nanosecond() != 0 {
        out.push_str(&format!(".{:09}", t.nanosecond()));
    }
    out.push('Z');
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::names::Name;

    fn origin() -> Origin {
        Origin::new(&Name::new("acme").unwrap(), &Name::new("zone1").unwrap())
    }

    #[test]
    fn archive_key_has_the_documented_shape() {
        let prefix = BucketPrefix::new("eu-archive/v1").unwrap();
        let dataset = Dataset::new("http_requests").unwrap();
        // 2026-01-15T14:00:00Z .. +60 s
        let window = Window::new(1_768_485_600_000_000_000, 1_768_485_660_000_000_000).unwrap();
        let key = prefix
            .archive_key(&origin(), &dataset, &window, &Sha256Hash::ZERO)
            .unwrap();
        let id = object_id(&origin(), &dataset, &window, &Sha256Hash::ZERO);
        assert_eq!(
            key,
            format!(
                "eu-archive/v1/acme/zone1/http_requests/2026/01/15/14/20260115T140000Z_20260115T140100Z-{id}.ndjson.zst"
            )
        );
        let other = object_id(&origin(), &dataset, &window, &Sha256Hash::digest(b"x"));
        assert_ne!(id, other, "different content must give a different key");
        let late = prefix
            .late_key(&origin(), &dataset, &window, &Sha256Hash::ZERO)
            .unwrap();
        assert_eq!(
            late,
            format!(
                "eu-archive/v1/acme/zone1/http_requests/2026/01/15/14/20260115T140000Z_20260115T140100Z.late-{id}.ndjson.zst"
            )
        );
    }

    #[test]
    fn sub_second_windows_show_the_fraction() {
        let window = Window::new(1_500_000_000, 2_000_000_000).unwrap();
        assert_eq!(
            window_label(&window).unwrap(),
            "19700101T000001.500000000Z_19700101T000002Z"
        );
    }

    #[test]
    fn prefixes_are_validated_and_joined_without_double_slashes() {
        assert_eq!(
            BucketPrefix::new("").unwrap().tlog_prefix(&origin()),
            "acme/zone1/tlog/"
        );
        assert_eq!(
            BucketPrefix::new("a")
                .unwrap()
                .checkpoint_history_key(&origin(), 42),
            "a/acme/zone1/tlog/checkpoints/00000000000000000042"
        );
        for bad in ["/a", "a/", "a//b", "a/../b", "a b", "."] {
            assert!(BucketPrefix::new(bad).is_err(), "{bad}");
        }
    }
}
