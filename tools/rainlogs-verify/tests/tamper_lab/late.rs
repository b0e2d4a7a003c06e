//! Late entries (FORMAT.md §4.2, kind 7): records of a window that arrived after the window's entry was
//! sealed, archived as their own object under a `.late-` key. A zone with late entries verifies clean; a late
//! entry must name exactly a window an earlier archive or empty entry accounts for; its object is checked,
//! pruned and inventoried exactly like an archive's.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use rainlogs_integrity::{CollectionMethod, EntryBody, EntryKind, Sampling, Window};
use rainlogs_store::{ObjectKey, PutOptions};
use rainlogs_verify::{Reason, Status};

use crate::support::*;

const EVERY_CHECK_PASSED: &[Reason] = &[
    Reason::CheckpointVerified,
    Reason::HistoryVerified,
    Reason::LogVerified,
    Reason::CoverageContiguous,
    Reason::ArchivesVerified,
    Reason::ArchivePruned,
    Reason::InventoryClean,
    Reason::TlogFilesVerified,
    Reason::Fresh,
    Reason::KeyAnnounced,
    Reason::PostureNotApplicable,
];

/// The `n`-th window of `dataset` that an entry of `kind` accounts for.
fn window_of(b: &ZoneBuilder, dataset: &str, kind: EntryKind, n: usize) -> Window {
    b.entries
        .iter()
        .filter(|e| e.entry.kind() == kind)
        .filter(|e| e.entry.body.dataset().map(|d| d.as_str()) == Some(dataset))
        .filter_map(|e| e.entry.body.window())
        .nth(n)
        .unwrap_or_else(|| panic!("no {kind:?} window {n} of {dataset}"))
}

/// The window of a live (not pruned) firewall_events archive.
fn live_archive_window(zone: &StandardZone) -> Window {
    zone.live_archives()
        .into_iter()
        .find(|a| a.dataset == "firewall_events")
        .unwrap()
        .window
}

/// Seals a late entry of `records` http_requests records for `window`, a second after the newest entry, kept
/// until tomorrow without Object Lock (a directory store has none).
async fn late_http(b: &mut ZoneBuilder, window: Window, records: usize) -> u64 {
    let at = b.newest_sealed_ns() + SECOND_NS;
    b.late(
        "http_requests",
        window,
        CollectionMethod::Logpush,
        Sampling::UNSAMPLED,
        &ndjson("http_requests", &window, records),
        now_ns() + DAY_NS,
        false,
        at,
    )
    .await
}

/// The standard zone plus three late entries: two (3 and 5 records) for an empty http_requests window, one
/// (4 records) for a firewall_events archive window.
async fn zone_with_late_entries() -> DirZone {
    let mut zone = DirZone::new().await;
    let empty = window_of(zone.b(), "http_requests", EntryKind::Empty, 7);
    let archived = live_archive_window(&zone.zone);
    let b = zone.builder();
    late_http(b, empty, 3).await;
    late_http(b, empty, 5).await;
    let at = b.newest_sealed_ns() + SECOND_NS;
    b.late(
        "firewall_events",
        archived,
        CollectionMethod::Logpush,
        Sampling::PerRecord,
        &ndjson("firewall_events", &archived, 4),
        now_ns() + DAY_NS,
        false,
        at,
    )
    .await;
    b.finish().await;
    zone
}

/// The late object a zone stored most recently.
fn newest_late(zone: &DirZone) -> StoredArchive {
    zone.b()
        .archives
        .iter()
        .rev()
        .find(|a| a.late)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_zone_with_late_entries_verifies_clean_and_counts_them() {
    let zone = zone_with_late_entries().await;
    let report = zone.verify().await;
    assert_verdict(&report, 0, EVERY_CHECK_PASSED);
    for status in [Status::Tamper, Status::Incomplete, Status::Warning] {
        assert_eq!(report.count(status), 0, "{}", report.to_human());
    }
    // Every late object is read like an archive.
    let live = zone.zone.live_archives();
    assert_eq!(live.iter().filter(|a| a.late).count(), 3);
    let live = live.len() as u64;
    assert_eq!(report.summary.archives_checked, live);

    // Late entries are counted beside the windows, which stay as they were.
    let coverage = &report.summary.coverage;
    let http = &coverage.datasets["http_requests"];
    assert_eq!(
        (http.windows.archive, http.windows.empty, http.windows.gap),
        (15, 131, 4)
    );
    assert_eq!((http.late, http.late_records), (2, 8));
    let firewall = &coverage.datasets["firewall_events"];
    assert_eq!((firewall.late, firewall.late_records), (1, 4));
    assert_eq!((coverage.late, coverage.late_records), (3, 12));
    let human = report.to_human();
    let line = human
        .lines()
        .find(|l| l.starts_with("coverage\thttp_requests\tOK: coverage_contiguous: "))
        .unwrap();
    assert!(
        line.ends_with(" records; 2 late entries with 8 records"),
        "{line}"
    );
    let summary = human.lines().last().unwrap();
    assert!(
        summary.contains(" records; 3 late entries with 12 records; "),
        "{summary}"
    );

    let mut deep = zone.options();
    deep.deep = true;
    let report = zone.verify_with(deep).await;
    assert_verdict(&report, 0, EVERY_CHECK_PASSED);
    assert!(report.to_human().contains("content and record counts"));
    assert_eq!(report.summary.archives_checked, live);

    // The binary an auditor runs agrees, in JSON and deep mode.
    let mut args = zone_args(&dir_arg(zone.root()));
    args.extend([
        "--prefix".into(),
        PREFIX.into(),
        "--json".into(),
        "--deep".into(),
    ]);
    let (code, stdout) = run_binary(&as_strs(&args), &[]);
    assert_eq!(code, 0, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["verdict"], "VERIFIED");
    let coverage = &json["summary"]["coverage"];
    assert_eq!(coverage["late"], 3);
    assert_eq!(coverage["late_records"], 12);
    assert_eq!(coverage["datasets"]["http_requests"]["late"], 2);
    assert_eq!(coverage["datasets"]["http_requests"]["late_records"], 8);
}

#[tokio::test]
async fn a_zone_without_late_entries_reports_no_late_counts() {
    let zone = DirZone::new().await;
    let report = zone.verify().await;
    assert_verdict(&report, 0, EVERY_CHECK_PASSED);
    assert!(!report.to_human().contains("late"), "{}", report.to_human());
    let json = report.to_json();
    let coverage = &json["summary"]["coverage"];
    assert!(coverage.get("late").is_none(), "{coverage}");
    assert!(
        coverage["datasets"]["http_requests"]
            .get("late_records")
            .is_none()
    );
}

#[tokio::test]
async fn a_late_entry_naming_a_window_no_earlier_entry_accounts_for_is_caught() {
    let mut zone = DirZone::new().await;
    let first_empty = window_of(zone.b(), "http_requests", EntryKind::Empty, 0);
    let newest = zone
        .b()
        .entries
        .iter()
        .rev()
        .find_map(|e| match &e.entry.body {
            EntryBody::Empty(r) if r.dataset.as_str() == "http_requests" => Some(r.window),
            _ => None,
        })
        .unwrap();
    let next = Window::new(newest.end_ns(), newest.end_ns() + WINDOW_NS).unwrap();
    let half = Window::new(
        first_empty.start_ns(),
        first_empty.start_ns() + WINDOW_NS / 2,
    )
    .unwrap();
    let b = zone.builder();
    // Late records for a window that is sealed only afterwards: the late entry came first.
    let before = late_http(b, next, 3).await;
    let at = b.newest_sealed_ns() + SECOND_NS;
    b.empty("http_requests", next, CollectionMethod::Logpull, at);
    // Late records for half of a sealed window.
    let partial = late_http(b, half, 2).await;
    b.finish().await;

    let report = zone.verify().await;
    assert_verdict(
        &report,
        1,
        &[Reason::LateWithoutWindow, Reason::LogVerified],
    );
    assert_eq!(tamper_reasons(&report), [Reason::LateWithoutWindow]);
    let found: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.reason == Reason::LateWithoutWindow)
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(found.len(), 2, "{}", report.to_human());
    assert!(
        found[0].starts_with(&format!("late entry {before} ")),
        "{}",
        found[0]
    );
    assert!(
        found[1].starts_with(&format!("late entry {partial} ")),
        "{}",
        found[1]
    );
    assert!(
        found
            .iter()
            .all(|m| m.contains("no earlier archive or empty entry"))
    );
    // The late objects themselves are fine, and so is coverage.
    assert!(report.has(Reason::ArchivesVerified) && report.has(Reason::CoverageContiguous));
}

#[tokio::test]
async fn a_late_entry_naming_a_gap_window_is_caught() {
    let mut zone = DirZone::new().await;
    let gap = window_of(zone.b(), "http_requests", EntryKind::Gap, 1);
    let index = late_http(zone.builder(), gap, 3).await;
    zone.builder().finish().await;
    let report = zone.verify().await;
    assert_verdict(&report, 1, &[Reason::LateWithoutWindow]);
    assert_eq!(tamper_reasons(&report), [Reason::LateWithoutWindow]);
    let finding = report
        .findings
        .iter()
        .find(|f| f.reason == Reason::LateWithoutWindow)
        .unwrap();
    assert_eq!(finding.path, "http_requests");
    assert!(
        finding.message.starts_with(&format!("late entry {index} "))
            && finding.message.contains("as a gap window"),
        "{}",
        finding.message
    );
}

#[tokio::test]
async fn a_changed_byte_in_a_late_object_is_caught_like_an_archive() {
    let zone = zone_with_late_entries().await;
    let victim = newest_late(&zone);
    tamper::flip_byte(
        zone.root(),
        &victim.key,
        victim.digest.stored_size as usize / 2,
    );
    let report = zone.verify().await;
    assert_verdict(&report, 1, &[Reason::StoredSha256Mismatch]);
    assert_eq!(tamper_reasons(&report), [Reason::StoredSha256Mismatch]);
    let mismatch = report
        .findings
        .iter()
        .find(|f| f.reason == Reason::StoredSha256Mismatch)
        .unwrap();
    assert_eq!(mismatch.path, victim.key);
    assert!(mismatch.path.contains(".late-"), "{}", mismatch.path);

    let mut deep = zone.options();
    deep.deep = true;
    let report = zone.verify_with(deep).await;
    assert_verdict(&report, 1, &[Reason::StoredSha256Mismatch]);
    assert_eq!(tamper_reasons(&report), [Reason::StoredSha256Mismatch]);
}

#[tokio::test]
async fn a_deleted_late_object_is_missing() {
    let zone = zone_with_late_entries().await;
    let victim = newest_late(&zone);
    tamper::remove(zone.root(), &victim.key);
    let report = zone.verify().await;
    assert_verdict(&report, 1, &[Reason::ArchiveMissing]);
    assert_eq!(tamper_reasons(&report), [Reason::ArchiveMissing]);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.reason == Reason::ArchiveMissing && f.path == victim.key)
    );
}

#[tokio::test]
async fn a_late_object_moved_to_the_archive_key_is_missing_and_planted() {
    let zone = zone_with_late_entries().await;
    let victim = newest_late(&zone);
    // The object moved to the key an archive of the same window and content would have: the late entry
    // still names the late key, so the object is missing there and planted here.
    let archive_key = victim.key.replace(".late-", "-");
    let bytes = tamper::read(zone.root(), &victim.key);
    tamper::remove(zone.root(), &victim.key);
    tamper::write(zone.root(), &archive_key, &bytes);
    let report = zone.verify().await;
    assert_verdict(
        &report,
        1,
        &[Reason::ArchiveMissing, Reason::ObjectUnreferenced],
    );
}

#[tokio::test]
async fn a_prune_of_a_late_entry_is_judged_like_the_prune_of_an_archive() {
    let mut zone = zone_with_late_entries().await;
    let window = window_of(zone.b(), "http_requests", EntryKind::Empty, 20);
    let b = zone.builder();
    let at = b.newest_sealed_ns() + SECOND_NS;
    // Retained for two seconds only, then deleted under a prune entry after its retain-until.
    let expiring = b
        .late(
            "http_requests",
            window,
            CollectionMethod::Logpush,
            Sampling::UNSAMPLED,
            &ndjson("http_requests", &window, 6),
            at + 2 * SECOND_NS,
            false,
            at,
        )
        .await;
    b.prune(expiring, at + 3 * SECOND_NS, at + 4 * SECOND_NS, true)
        .await;
    b.finish().await;
    let report = zone.verify().await;
    assert_verdict(
        &report,
        0,
        &[Reason::ArchivePruned, Reason::ArchivesVerified],
    );
    assert_eq!(report.summary.archives_pruned, 2, "{}", report.to_human());
    assert_eq!(report.count(Status::Tamper), 0, "{}", report.to_human());

    // A late object deleted before its retain-until is early deletion, as for an archive.
    let victim = newest_late_live(&zone);
    let b = zone.builder();
    let now = b.newest_sealed_ns() + SECOND_NS;
    b.prune(victim.index, now, now, true).await;
    b.finish().await;
    let report = zone.verify().await;
    assert_verdict(
        &report,
        1,
        &[Reason::PruneBeforeRetainUntil, Reason::ArchiveMissing],
    );
}

/// The newest late object that no prune entry names.
fn newest_late_live(zone: &DirZone) -> StoredArchive {
    let pruned: Vec<u64> = zone
        .b()
        .entries
        .iter()
        .filter_map(|e| match &e.entry.body {
            EntryBody::Prune(p) => Some(p.target_index),
            _ => None,
        })
        .collect();
    zone.b()
        .archives
        .iter()
        .rev()
        .find(|a| a.late && !pruned.contains(&a.index))
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_late_entry_after_the_erasure_is_reported() {
    let mut zone = DirZone::new().await;
    let window = window_of(zone.b(), "http_requests", EntryKind::Empty, 9);
    let at = zone.b().newest_sealed_ns() + SECOND_NS;
    zone.builder().erasure(at);
    late_http(zone.builder(), window, 3).await;
    zone.builder().finish().await;
    let report = zone.verify().await;
    assert_verdict(
        &report,
        3,
        &[Reason::TenantErased, Reason::LateAfterErasure],
    );
    assert_eq!(report.count(Status::Tamper), 0, "{}", report.to_human());
    assert!(
        !report.has(Reason::WindowAfterErasure),
        "{}",
        report.to_human()
    );
}

#[tokio::test]
async fn a_late_object_awaiting_its_entry_is_pending_until_it_is_old() {
    let zone = DirZone::new().await;
    let b = zone.b();
    let sealed = window_of(b, "http_requests", EntryKind::Empty, 11);
    // The archiver stored late records of a sealed window; the sealer has not logged them yet.
    let mut archiver = ZoneBuilder::new(b.store.clone(), PREFIX, TENANT, ZONE, now_ns());
    late_http(&mut archiver, sealed, 4).await;
    let waiting = archiver.archives[0].key.clone();
    let report = zone.verify().await;
    assert_verdict(&report, 0, &[Reason::ObjectPending, Reason::InventoryClean]);
    let pending = report
        .findings
        .iter()
        .find(|f| f.reason == Reason::ObjectPending)
        .unwrap();
    assert_eq!(pending.path, waiting);
    assert!(
        pending.message.starts_with("late http_requests records"),
        "{}",
        pending.message
    );

    // Written longer ago than --max-staleness, it is planted, not pending.
    tamper::set_modified(
        zone.root(),
        &waiting,
        SystemTime::now() - Duration::from_secs(3 * 3600),
    );
    let report = zone.verify().await;
    assert_verdict(&report, 1, &[Reason::ObjectUnreferenced]);
    assert_eq!(tamper_reasons(&report), [Reason::ObjectUnreferenced]);

    // A fresh "late" object for a window that has not ended yet cannot hold late records: planted at once.
    let zone = DirZone::new().await;
    let newest = zone
        .b()
        .entries
        .iter()
        .rev()
        .find_map(|e| e.entry.body.window())
        .unwrap();
    let open = Window::new(newest.end_ns(), newest.end_ns() + WINDOW_NS).unwrap();
    assert!(open.end_ns() > now_ns());
    let mut archiver = ZoneBuilder::new(zone.b().store.clone(), PREFIX, TENANT, ZONE, now_ns());
    late_http(&mut archiver, open, 4).await;
    let report = zone.verify().await;
    assert_verdict(&report, 1, &[Reason::ObjectUnreferenced]);
}

#[tokio::test]
async fn late_objects_on_s3_are_checked_for_version_and_object_lock_like_archives() {
    let (bucket, writer) = lab_bucket(true).await;
    let prefix = unique_prefix("late");
    let mut zone = standard_zone(writer, &prefix, TENANT, ZONE, now_ns(), true).await;
    let window = window_of(&zone.builder, "http_requests", EntryKind::Empty, 5);
    let b = &mut zone.builder;
    let at = b.newest_sealed_ns() + SECOND_NS;
    let locked = b
        .late(
            "http_requests",
            window,
            CollectionMethod::Logpush,
            Sampling::UNSAMPLED,
            &ndjson("http_requests", &window, 7),
            now_ns() + DAY_NS,
            true,
            at,
        )
        .await;
    b.finish().await;
    let EntryBody::Late(record) = &b.entries[locked as usize].entry.body else {
        panic!("entry {locked} is not a late entry");
    };
    assert!(
        !record.object.version.is_empty(),
        "the provider's version is logged"
    );
    let store = auditor_store(&bucket);
    let report = rainlogs_verify::verify(&store, &options_for(&prefix)).await;
    assert_verdict(
        &report,
        0,
        &[Reason::PostureLocked, Reason::ArchivesVerified],
    );
    assert_eq!(
        report.summary.archives_checked,
        zone.live_archives().len() as u64
    );

    // Without Object Lock retention, a late object is weaker protection, as an archive is.
    let b = &mut zone.builder;
    let at = b.newest_sealed_ns() + SECOND_NS;
    b.late(
        "http_requests",
        window,
        CollectionMethod::Logpush,
        Sampling::UNSAMPLED,
        &ndjson("http_requests", &window, 9),
        now_ns() + DAY_NS,
        false,
        at,
    )
    .await;
    b.finish().await;
    let report = rainlogs_verify::verify(&store, &options_for(&prefix)).await;
    assert_verdict(&report, 3, &[Reason::NoObjectLock]);

    // Replaced by the very same bytes, the late object is a new version: overwritten.
    let replaced = b.archives.last().unwrap().clone();
    let key = ObjectKey::new(replaced.key.clone()).unwrap();
    let bytes: Bytes = b.store.get_bytes(&key).await.unwrap();
    b.store.delete(&key).await.unwrap();
    b.store
        .put_bytes(&key, bytes, &PutOptions::default())
        .await
        .unwrap();
    let report = rainlogs_verify::verify(&store, &options_for(&prefix)).await;
    assert_verdict(&report, 1, &[Reason::ArchiveVersionMismatch]);
    assert_eq!(tamper_reasons(&report), [Reason::ArchiveVersionMismatch]);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.reason == Reason::ArchiveVersionMismatch && f.path == replaced.key)
    );
}
