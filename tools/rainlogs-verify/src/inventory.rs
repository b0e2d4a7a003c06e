//! Inventory: every object below the zone prefix outside `tlog/` must be an archive some entry references.
//!
//! The archiver stores an object before the sealer logs it, so a live zone briefly holds archives no entry
//! names yet. Such an object is tolerated as *pending* only if its key is a canonical archive key of this
//! zone for a window after everything sealed for its dataset, and that window ended less than the grace
//! period (`--max-staleness`) ago. Anything else unreferenced is planted.

use std::collections::HashSet;

use rainlogs_integrity::layout::{ARCHIVE_SUFFIX, window_label};
use rainlogs_integrity::{Dataset, EntryBody, Window};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::coverage::Coverage;
use crate::finding::{Finding, Kind, Reason};
use crate::log::LoggedEntry;
use crate::options::{VerifyOptions, format_ns};
use crate::source::Listing;

/// Reads the dataset and window out of an archive key of this zone; `None` unless the key is exactly in the
/// FORMAT.md §2 shape (the object id, which depends on the content, is only checked for its form).
pub(crate) fn parse_archive_key(zone_prefix: &str, key: &str) -> Option<(Dataset, Window)> {
    let relative = key.strip_prefix(zone_prefix)?;
    let mut parts = relative.split('/');
    let dataset = Dataset::new(parts.next()?).ok()?;
    let date_dirs: Vec<&str> = parts.by_ref().take(4).collect();
    let file = parts.next()?;
    if parts.next().is_some() || date_dirs.len() != 4 {
        return None;
    }
    let stem = file.strip_suffix(ARCHIVE_SUFFIX)?;
    let (label, id) = stem.rsplit_once('-')?;
    let id_ok = id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let (start, end) = label.split_once('_')?;
    let window = Window::new(parse_compact_time(start)?, parse_compact_time(end)?).ok()?;
    let start_time =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(window.start_ns())).ok()?;
    let expected_dirs = format!(
        "{:04}/{:02}/{:02}/{:02}",
        start_time.year(),
        u8::from(start_time.month()),
        start_time.day(),
        start_time.hour()
    );
    let canonical =
        id_ok && date_dirs.join("/") == expected_dirs && window_label(&window).ok()? == label;
    canonical.then_some((dataset, window))
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
            EntryBody::Archive(archive) => {
                Some(options.stored_key(&archive.object.key).into_owned())
            }
            _ => None,
        })
        .collect();
    let now_ns = options.now_ns();
    let grace_ns = u64::try_from(options.pending_grace().as_nanos()).unwrap_or(u64::MAX);
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
        let pending = parse_archive_key(&zone, key).filter(|(dataset, window)| {
            let after_sealed = coverage
                .covered_until
                .get(dataset.as_str())
                .is_none_or(|end| *end <= window.start_ns());
            after_sealed && now_ns.saturating_sub(window.end_ns()) <= grace_ns
        });
        findings.push(match pending {
            Some((dataset, window)) => Finding::new(
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
                "{} objects listed: {archives} referenced archives, the rest under tlog/ (checked separately)",
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
        let (dataset, window) = parse_archive_key(ZONE, KEY).unwrap();
        assert_eq!(dataset.as_str(), "http_requests");
        assert_eq!(window.start_ns(), 1_768_485_600_000_000_000);
        assert_eq!(window.end_ns(), 1_768_485_660_000_000_000);
        let fraction = "z/t/ds/1970/01/01/00/19700101T000001.500000000Z_19700101T000002Z-0123456789abcdef.ndjson.zst";
        assert_eq!(
            parse_archive_key("z/t/", fraction).unwrap().1.start_ns(),
            1_500_000_000
        );
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
            assert_eq!(parse_archive_key(ZONE, &bad), None, "{bad}");
        }
    }
}
