//! Index entries and index objects (FORMAT.md §4.2 kind 9, §12): a zone whose archives are indexed
//! verifies clean in fast and deep mode; an edited, deleted, swapped or planted index object, an index
//! entry that names the wrong entry, and an index a writer got wrong are each caught with their reason.

use rainlogs_integrity::{EntryBody, IndexRecord, ObjectRef};
use rainlogs_verify::{Reason, Status};

use crate::support::*;

const EVERY_CHECK_PASSED: &[Reason] = &[
    Reason::CheckpointVerified,
    Reason::LogVerified,
    Reason::CoverageContiguous,
    Reason::ArchivesVerified,
    Reason::InventoryClean,
    Reason::TlogFilesVerified,
    Reason::Fresh,
];

/// The standard zone with an index entry for every live archive, sealed after its newest entry (as
/// `rainlogs index rebuild` does for archives sealed before indexes).
async fn indexed_zone() -> DirZone {
    let mut zone = DirZone::new().await;
    let live: Vec<StoredArchive> = zone.zone.live_archives().into_iter().cloned().collect();
    let b = zone.builder();
    for archive in &live {
        let at = b.newest_sealed_ns() + 1_000_000;
        b.index(archive, at).await;
    }
    b.finish().await;
    zone
}

fn deep(zone: &DirZone) -> rainlogs_verify::VerifyOptions {
    let mut options = zone.options();
    options.deep = true;
    options
}

fn index_key_of(archive: &StoredArchive) -> String {
    rainlogs_integrity::layout::index_key(&archive.key).unwrap()
}

fn first_live(zone: &DirZone) -> StoredArchive {
    zone.zone.live_archives()[0].clone()
}

#[tokio::test]
async fn an_indexed_zone_verifies_clean_fast_and_deep() {
    let zone = indexed_zone().await;
    let live = zone.zone.live_archives().len() as u64;
    for options in [zone.options(), deep(&zone)] {
        let report = zone.verify_with(options).await;
        assert_verdict(&report, 0, EVERY_CHECK_PASSED);
        for status in [Status::Tamper, Status::Incomplete, Status::Warning] {
            assert_eq!(report.count(status), 0, "{}", report.to_human());
        }
        assert!(
            !report.has(Reason::ArchivesUnindexed),
            "{}",
            report.to_human()
        );
        assert_eq!(report.summary.archives_checked, live);
        assert_eq!(report.summary.indexes_checked, live);
    }
    // The standard zone without indexes says so, and still verifies.
    let plain = DirZone::new().await;
    let report = plain.verify().await;
    assert_verdict(&report, 0, &[Reason::ArchivesUnindexed]);
}

#[tokio::test]
async fn an_edited_or_deleted_index_object_is_caught() {
    let zone = indexed_zone().await;
    let key = index_key_of(&first_live(&zone));
    tamper::flip_byte(zone.root(), &key, 80);
    let report = zone.verify().await;
    assert_verdict(&report, 1, &[Reason::StoredSha256Mismatch]);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.path.ends_with(".index") && f.reason == Reason::StoredSha256Mismatch)
    );

    tamper::remove(zone.root(), &key);
    let report = zone.verify().await;
    assert_verdict(&report, 1, &[Reason::ArchiveMissing]);
}

#[tokio::test]
async fn a_planted_index_object_is_unreferenced() {
    let zone = DirZone::new().await;
    let archive = first_live(&zone);
    let stored = tamper::read(zone.root(), &archive.key);
    let (_, index) = rainlogs_index::index_archive(&stored[..]).unwrap();
    tamper::write(zone.root(), &index_key_of(&archive), &index.encode());
    let report = zone.verify().await;
    assert_verdict(&report, 1, &[Reason::ObjectUnreferenced]);
}

/// A writer that seals another archive's (valid) index for an archive: the bytes are the logged ones, so
/// only deep mode, which rebuilds the index from the archive, catches it.
#[tokio::test]
async fn a_wrong_index_sealed_by_the_writer_is_caught_by_deep_mode() {
    let mut zone = DirZone::new().await;
    let live: Vec<StoredArchive> = zone.zone.live_archives().into_iter().cloned().collect();
    let other = tamper::read(zone.root(), &live[1].key);
    let (_, wrong) = rainlogs_index::index_archive(&other[..]).unwrap();
    let b = zone.builder();
    let at = b.newest_sealed_ns() + 1_000_000;
    b.index_with(&live[0], wrong.encode(), at).await;
    b.finish().await;
    let report = zone.verify().await;
    assert_eq!(report.count(Status::Tamper), 0, "{}", report.to_human());
    let report = zone.verify_with(deep(&zone)).await;
    assert_verdict(&report, 1, &[Reason::IndexMismatch]);
    let mismatches: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.reason == Reason::IndexMismatch)
        .map(|f| f.path.as_str())
        .collect();
    // The index names other archive bytes, and the archive rebuilds to another index.
    assert_eq!(mismatches.len(), 2, "{}", report.to_human());

    // Bytes that are no index at all.
    let mut zone = DirZone::new().await;
    let archive = first_live(&zone);
    let b = zone.builder();
    let at = b.newest_sealed_ns() + 1_000_000;
    b.index_with(&archive, b"RLIX\x01 not an index".to_vec(), at)
        .await;
    b.finish().await;
    let report = zone.verify_with(deep(&zone)).await;
    assert_verdict(&report, 1, &[Reason::IndexCorrupt, Reason::IndexMismatch]);
}

#[tokio::test]
async fn an_index_entry_must_name_an_archive_entry_exactly_once() {
    let mut zone = DirZone::new().await;
    let archive = first_live(&zone);
    let b = zone.builder();
    let at = b.newest_sealed_ns() + 1_000_000;
    b.index(&archive, at).await;
    // A second index entry for the same archive.
    b.index(&archive, at + 1).await;
    // One naming an empty window's entry.
    let empty = b
        .entries
        .iter()
        .find(|e| matches!(e.entry.body, EntryBody::Empty(_)))
        .unwrap()
        .clone();
    let EntryBody::Empty(window) = &empty.entry.body else {
        unreachable!()
    };
    let body = EntryBody::Index(IndexRecord {
        dataset: window.dataset.clone(),
        window: window.window,
        object: ObjectRef {
            key: index_key_of(&archive),
            version: String::new(),
        },
        stored_size: 1,
        stored_sha256: rainlogs_integrity::Sha256Hash::digest(b"x"),
        target_index: empty.entry.index,
        target_entry_id: empty.id,
        retain_until_ns: archive.retain_until_ns,
    });
    b.seal(body, at + 2);
    b.finish().await;
    let report = zone.verify().await;
    assert_verdict(&report, 1, &[Reason::IndexBadTarget]);
    let bad: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.reason == Reason::IndexBadTarget)
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad.iter().any(|m| m.contains("already indexes it")),
        "{bad:?}"
    );
    assert!(
        bad.iter()
            .any(|m| m.contains("not an archive or late entry")),
        "{bad:?}"
    );
}

#[tokio::test]
async fn a_pruned_archive_takes_its_index_with_it() {
    let mut zone = DirZone::new().await;
    // The standard zone's pruned archive had an index: its object must be gone with the archive.
    let pruned = zone.zone.pruned.clone();
    let stand_in = tamper::read(zone.root(), &first_live(&zone).key);
    let (_, index) = rainlogs_index::index_archive(&stand_in[..]).unwrap();
    let b = zone.builder();
    let at = b.newest_sealed_ns() + 1_000_000;
    b.index_with(&pruned, index.encode(), at).await;
    b.finish().await;
    let report = zone.verify().await;
    assert_verdict(&report, 0, &[Reason::PrunePending]);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.reason == Reason::PrunePending && f.path.ends_with(".index")),
        "{}",
        report.to_human()
    );
    tamper::remove(zone.root(), &index_key_of(&pruned));
    let report = zone.verify().await;
    assert!(!report.has(Reason::PrunePending), "{}", report.to_human());
    assert_eq!(report.count(Status::Tamper), 0, "{}", report.to_human());
}
