//! Inventory: every object below the zone prefix outside `tlog/` must be an archive or late object some
//! entry references.
//!
//! The archiver stores an object before the sealer logs it, so a live zone briefly holds archives no entry
//! names yet. Such an object is tolerated as *pending* only if its key is a canonical archive key of this
//! zone for a window after everything sealed for its dataset, and that window ended less than the grace
//! period (`--max-staleness`) ago. A late object belongs to a window that ended earlier, however long ago,
//! so its window says nothing about its age: it is pending only if its key is a canonical late key and the
//! store lists it as written less than the grace period ago, after its window ended (records cannot be
//! late for a window still open). Its window may be sealed or not: the sealer logs a late entry only after
//! the window's own entry, which may itself still be on its way. An index object (FORMAT.md §12) is sealed
//! right after its archive's entry: unreferenced, it is pending only when its archive is pending itself, or
//! is logged by an entry without an index entry sealed less than the grace period before the log's newest
//! entry (signed times, not the store's). Anything else unreferenced is planted.

use std::collections::HashSet;

use rainlogs_integrity::layout::{ARCHIVE_SUFFIX, INDEX_SUFFIX, window_label};
use rainlogs_integrity::{
    ArchiveRecord, BucketPrefix, Dataset, EntryBody, EntryKind, LayoutError, Origin, Window,
};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::coverage::Coverage;
use crate::finding::{Finding, Kind, Reason};
use crate::log::LoggedEntry;
use crate::options::{VerifyOptions, format_ns};
use crate::source::Listing;

/// What a late object's key has between `<window>` and `-<id>` (FORMAT.md §2); an archive key has nothing.
const LATE_MARK: &str = ".late";

/// An object key of the zone's layout, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedKey {
    pub dataset: Dataset,
    pub window: Window,
    /// A late object's key (`<window>.late-<id>`), not an archive object's (`<window>-<id>`).
    pub late: bool,
    /// The key of an index object (`.index`), not of the archive or late object itself.
    pub index: bool,
}

/// The key FORMAT.md §2 derives for the object of an `archive` or `late` entry under `prefix`.
pub(crate) fn object_key(
    prefix: &BucketPrefix,
    origin: &Origin,
    kind: EntryKind,
    record: &ArchiveRecord,
) -> Result<String, LayoutError> {
    let derive = if kind == EntryKind::Late {
        BucketPrefix::late_key
    } else {
        BucketPrefix::archive_key
    };
    derive(
        prefix,
        origin,
        &record.dataset,
        &record.window,
        &record.content_sha256,
    )
}

/// `YYYY/MM/DD/HH` of a window start, UTC.
fn hour_dirs(start_ns: u64) -> Option<String> {
    let start = OffsetDateTime::from_unix_timestamp_nanos(i128::from(start_ns)).ok()?;
    Some(format!(
        "{:04}/{:02}/{:02}/{:02}",
        start.year(),
        u8::from(start.month()),
        start.day(),
        start.hour()
    ))
}

/// Reads the dataset and window out of an archive or late object key of this zone; `None` unless the key
/// is exactly in the FORMAT.md §2 shape (the object id, which depends on the content, is only checked for
/// its form).
pub(crate) fn parse_object_key(zone_prefix: &str, key: &str) -> Option<ParsedKey> {
    let relative = key.strip_prefix(zone_prefix)?;
    let mut parts = relative.split('/');
    let dataset = Dataset::new(parts.next()?).ok()?;
    let date_dirs: Vec<&str> = parts.by_ref().take(4).collect();
    let file = parts.next()?;
    if parts.next().is_some() || date_dirs.len() != 4 {
        return None;
    }
    let (stem, index) = match file.strip_suffix(INDEX_SUFFIX) {
        Some(stem) => (stem, true),
        None => (file.strip_suffix(ARCHIVE_SUFFIX)?, false),
    };
    let (label, id) = stem.rsplit_once('-')?;
    let (label, late) = match label.strip_suffix(LATE_MARK) {
        Some(label) => (label, true),
        None => (label, false),
    };
    let id_ok = id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let (start, end) = label.split_once('_')?;
    let window = Window::new(parse_compact_time(start)?, parse_compact_time(end)?).ok()?;
    let canonical = id_ok
        && date_dirs.join("/") == hour_dirs(window.start_ns())?
        && window_label(&window).ok()? == label;
    canonical.then_some(ParsedKey {
        dataset,
        window,
        late,
        index,
    })
}

/// `YYYYMMDDTHHMMSS[.fffffffff]Z` → unix ns.
fn parse_compact_time(text: &str) -> Option<u64> {
    let text = text.strip_suffix('Z')?;
    let (whole, nanos) = match text.split_once('.') {
        Some((whole, fraction)) if fraction.len() == 9 => (whole, digits(fraction)?),
        Some(_) => return None,
        None => (text, 0),
    };
    if whole.len() != 15 || whole.as_bytes().get(8) != Some(&b'T') {
        return None;
    }
    let year = i32::try_from(digits(&whole[0..4])?).ok()?;
    let month = Month::try_from(u8::try_from(digits(&whole[4..6])?).ok()?).ok()?;
    let day = u8::try_from(digits(&whole[6..8])?).ok()?;
    let hour = u8::try_from(digits(&whole[9..11])?).ok()?;
    let minute = u8::try_from(digits(&whole[11..13])?).ok()?;
    let second = u8::try_from(digits(&whole[13..15])?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms_nano(hour, minute, second, u32::try_from(nanos).ok()?).ok()?;
    u64::try_from(
        PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp_nanos(),
    )
    .ok()
}

fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Keys (as this store keeps them) of the archive and late objects whose entry has no index entry yet and
/// was sealed less than `grace_ns` before the log's newest entry: their index entry may be on its way.
fn awaiting_index(
    options: &VerifyOptions,
    entries: &[Option<LoggedEntry>],
    grace_ns: u64,
) -> HashSet<String> {
    let newest = entries
        .iter()
        .flatten()
        .map(|l| l.entry.sealed_at_ns)
        .max()
        .unwrap_or(0);
    let indexed: HashSet<u64> = entries
        .iter()
        .flatten()
        .filter_map(|l| match &l.entry.body {
            EntryBody::Index(index) => Some(index.target_index),
            _ => None,
        })
        .collect();
    entries
        .iter()
        .flatten()
        .filter(|l| {
            !indexed.contains(&l.entry.index)
                && newest.saturating_sub(l.entry.sealed_at_ns) <= grace_ns
        })
        .filter_map(|l| l.entry.body.archive())
        .map(|archive| options.stored_key(&archive.object.key).into_owned())
        .collect()
}

/// Judges every listed object outside `tlog/`.
pub(crate) fn check(
    options: &VerifyOptions,
    listing: &Listing,
    entries: &[Option<LoggedEntry>],
    coverage: &Coverage,
) -> Vec<Finding> {
    let zone = options.prefix.zone_prefix(&options.origin);
    let tlog = options.prefix.tlog_prefix(&options.origin);
    // Logged keys, as this store keeps them (a replica may keep the zone under another prefix, FORMAT.md §10.1).
    let referenced: HashSet<String> = entries
        .iter()
        .flatten()
        .filter_map(|logged| match &logged.entry.body {
            EntryBody::Index(index) => Some(&index.object),
            body => body.archive().map(|archive| &archive.object),
        })
        .map(|object| options.stored_key(&object.key).into_owned())
        .collect();
    let now_ns = options.now_ns();
    let grace_ns = u64::try_from(options.pending_grace().as_nanos()).unwrap_or(u64::MAX);
    let awaiting_index = awaiting_index(options, entries, grace_ns);
    let mut findings = Vec::new();
    let mut archives = 0u64;
    for (key, object) in listing {
        if key.starts_with(&tlog) {
            continue;
        }
        if referenced.contains(key.as_str()) {
            archives += 1;
            continue;
        }
        // No listed time is no evidence of youth.
        let written_ns = object
            .last_modified
            .and_then(|t| u64::try_from(t.unix_timestamp_nanos()).ok());
        let object_pending = |parsed: &ParsedKey, written_ns: Option<u64>| {
            if parsed.late {
                written_ns.is_some_and(|t| {
                    parsed.window.end_ns() <= t && now_ns.saturating_sub(t) <= grace_ns
                })
            } else {
                let after_sealed = coverage
                    .covered_until
                    .get(parsed.dataset.as_str())
                    .is_none_or(|end| *end <= parsed.window.start_ns());
                after_sealed && now_ns.saturating_sub(parsed.window.end_ns()) <= grace_ns
            }
        };
        let pending = parse_object_key(&zone, key).filter(|parsed| {
            if !parsed.index {
                return object_pending(parsed, written_ns);
            }
            let stem = key.strip_suffix(INDEX_SUFFIX).unwrap_or_default();
            let archive = format!("{stem}{ARCHIVE_SUFFIX}");
            if awaiting_index.contains(archive.as_str()) {
                return true;
            }
            let archive_written = listing.get(&archive).map(|o| {
                o.last_modified
                    .and_then(|t| u64::try_from(t.unix_timestamp_nanos()).ok())
            });
            !referenced.contains(archive.as_str())
                && archive_written.is_some_and(|written| {
                    object_pending(
                        &ParsedKey {
                            index: false,
                            ..parsed.clone()
                        },
                        written,
                    )
                })
        });
        findings.push(match pending {
            Some(parsed) if parsed.index => Finding::new(
                Kind::Object,
                key,
                Reason::ObjectPending,
                format!(
                    "the index of a {} object beside it, written {}; expect its entry soon",
                    parsed.dataset,
                    written_ns.map_or_else(String::new, format_ns)
                ),
            ),
            Some(parsed) if parsed.late => Finding::new(
                Kind::Object,
                key,
                Reason::ObjectPending,
                format!(
                    "late {} records for the window ending {}, written {}; expect their entry soon",
                    parsed.dataset,
                    format_ns(parsed.window.end_ns()),
                    written_ns.map_or_else(String::new, format_ns)
                ),
            ),
            Some(ParsedKey {
                dataset, window, ..
            }) => Finding::new(
                Kind::Object,
                key,
                Reason::ObjectPending,
                format!(
                    "{dataset} window ending {} is after the sealed ones; expect its entry soon",
                    format_ns(window.end_ns())
                ),
            ),
            None => Finding::new(
                Kind::Object,
                key,
                Reason::ObjectUnreferenced,
                format!("{} bytes that no entry of the log references", object.size),
            ),
        });
    }
    if findings
        .iter()
        .all(|f| f.reason != Reason::ObjectUnreferenced)
    {
        findings.push(Finding::new(
            Kind::Object,
            zone,
            Reason::InventoryClean,
            format!(
                "{} objects listed: {archives} referenced archives and indexes, the rest under tlog/ (checked separately)",
                listing.len()
            ),
        ));
    }
    findings
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KEY: &str = "eu-archive/acme/0123456789abcdef0123456789abcdef/http_requests/2026/01/15/14/20260115T140000Z_20260115T140100Z-3650368e76c7301f.ndjson.zst";
    const ZONE: &str = "eu-archive/acme/0123456789abcdef0123456789abcdef/";

    #[test]
    fn canonical_archive_keys_parse_back_to_their_window() {
        let parsed = parse_object_key(ZONE, KEY).unwrap();
        assert_eq!(parsed.dataset.as_str(), "http_requests");
        assert_eq!(parsed.window.start_ns(), 1_768_485_600_000_000_000);
        assert_eq!(parsed.window.end_ns(), 1_768_485_660_000_000_000);
        assert!(!parsed.late);
        let fraction = "z/t/ds/1970/01/01/00/19700101T000001.500000000Z_19700101T000002Z-0123456789abcdef.ndjson.zst";
        assert_eq!(
            parse_object_key("z/t/", fraction)
                .unwrap()
                .window
                .start_ns(),
            1_500_000_000
        );
    }

    const FORMAT: &str = include_str!("../../../docs/FORMAT.md");

    /// A `name: value` line of the text block that follows `intro` in FORMAT.md.
    fn documented(intro: &str, name: &str) -> String {
        let section = &FORMAT[FORMAT.find(intro).unwrap()..];
        let block = &section[section.find("```text\n").unwrap()..];
        let line = block
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap();
        line.split_once(':').unwrap().1.trim().to_owned()
    }

    #[test]
    fn the_late_key_of_format_doc_section_2_is_derived_and_parsed_back() {
        let intro = "The key of the late object of the `late` entry in §4.6";
        let origin = Origin::parse(&documented(intro, "origin")).unwrap();
        let prefix = BucketPrefix::new(&documented(intro, "prefix")).unwrap();
        let dataset = Dataset::new(&documented(intro, "dataset")).unwrap();
        let window_text = documented(intro, "window");
        let (start, end) = window_text
            .trim_start_matches('[')
            .trim_end_matches(") ns")
            .split_once(", ")
            .unwrap();
        let window = Window::new(start.parse().unwrap(), end.parse().unwrap()).unwrap();
        let content_sha256 = rainlogs_integrity::Sha256Hash(
            hex::decode(documented(intro, "content sha256"))
                .unwrap()
                .try_into()
                .unwrap(),
        );
        let record = ArchiveRecord {
            dataset: dataset.clone(),
            window,
            method: rainlogs_integrity::CollectionMethod::Logpush,
            sampling: rainlogs_integrity::Sampling::UNSAMPLED,
            object: rainlogs_integrity::ObjectRef {
                key: String::new(),
                version: String::new(),
            },
            stored_size: 1,
            stored_sha256: content_sha256,
            content_sha256,
            record_count: 1,
            retain_until_ns: 1,
        };
        let late = object_key(&prefix, &origin, EntryKind::Late, &record).unwrap();
        assert_eq!(late, documented(intro, "late key"));
        // The same window and content as an archive: `-<id>` where the late key has `.late-<id>`.
        let archive = object_key(&prefix, &origin, EntryKind::Archive, &record).unwrap();
        let id = documented(intro, "object id");
        assert_eq!(
            late,
            archive.replace(&format!("-{id}."), &format!(".late-{id}."))
        );
        let zone = prefix.zone_prefix(&origin);
        assert_eq!(
            parse_object_key(&zone, &late),
            Some(ParsedKey {
                dataset: dataset.clone(),
                window,
                late: true,
                index: false,
            })
        );
        assert_eq!(
            parse_object_key(&zone, &archive),
            Some(ParsedKey {
                dataset: dataset.clone(),
                window,
                late: false,
                index: false,
            })
        );
        let index = rainlogs_integrity::layout::index_key(&archive).unwrap();
        assert!(index.ends_with(&format!("-{id}.index")));
        assert_eq!(
            parse_object_key(&zone, &index),
            Some(ParsedKey {
                dataset,
                window,
                late: false,
                index: true,
            })
        );
        for bad in [
            late.replace(".late-", ".LATE-"),
            late.replace(".late-", "-late-"),
            late.replace(".late-", ".late."),
            late.replace(".late-", ".late.late-"),
            late.replace(".late-", "late-"),
        ] {
            assert_eq!(parse_object_key(&zone, &bad), None, "{bad}");
        }
    }

    #[test]
    fn anything_off_the_layout_is_not_an_archive_key() {
        for bad in [
            KEY.replace("/14/", "/15/"),
            KEY.replace("-3650368e76c7301f", "-3650368E76C7301F"),
            KEY.replace("-3650368e76c7301f", "-3650368e76c730"),
            KEY.replace(".ndjson.zst", ".ndjson"),
            KEY.replace("http_requests", "tlog"),
            KEY.replace("T140100Z", "T140100.000000000Z"),
            format!("{ZONE}notes.txt"),
        ] {
            assert_eq!(parse_object_key(ZONE, &bad), None, "{bad}");
        }
    }
}
