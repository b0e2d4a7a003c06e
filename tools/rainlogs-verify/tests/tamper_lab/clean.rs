//! An untouched zone verifies, in every mode, and the live-system states that are not tampering (an archive
//! waiting for its entry, tiles written just before a checkpoint) are reported but not alarmed.

use rainlogs_integrity::{CollectionMethod, Sampling, Window};
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

#[tokio::test]
async fn the_untouched_zone_verifies_with_every_check_passing() {
    let zone = DirZone::new().await;
    let report = zone.verify().await;
    assert_verdict(&report, 0, EVERY_CHECK_PASSED);
    for status in [Status::Tamper, Status::Incomplete, Status::Warning] {
        assert_eq!(report.count(status), 0, "{}", report.to_human());
    }
    let live = zone.zone.live_archives().len() as u64;
    assert_eq!(report.summary.archives_checked, live);
    assert_eq!(report.summary.archives_pruned, 1);
    assert_eq!(report.summary.entries, zone.b().size());
    assert!(zone.b().size() > 256, "the fixture spans a full tile");
    assert_eq!(
        report.summary.archive_bytes_read,
        zone.zone
            .live_archives()
            .iter()
            .map(|a| a.digest.stored_size)
            .sum::<u64>()
    );
    // The fixture's gaps: http_requests fails now and then, firewall_events had one collector outage.
    let coverage = &report.summary.coverage;
    let http = &coverage.datasets["http_requests"];
    assert_eq!(
        (http.windows.archive, http.windows.empty, http.windows.gap),
        (15, 131, 4)
    );
    assert_eq!(http.gaps.by_reason["source_error"].count, 4);
    let firewall = &coverage.datasets["firewall_events"];
    assert_eq!(firewall.gaps.by_reason["collector_outage"].count, 1);
    assert_eq!(coverage.gaps.count, 5);
    assert_eq!(coverage.gaps.duration_ns, 5 * WINDOW_NS);
    assert_eq!(
        coverage.records,
        zone.b()
            .archives
            .iter()
            .map(|a| a.digest.record_count)
            .sum::<u64>()
    );
    assert!(
        !report.to_human().contains("without gap"),
        "{}",
        report.to_human()
    );
}

#[tokio::test]
async fn deep_mode_decompresses_every_archive_and_agrees() {
    let zone = DirZone::new().await;
    let mut options = zone.options();
    options.deep = true;
    let report = zone.verify_with(options).await;
    assert_verdict(&report, 0, EVERY_CHECK_PASSED);
    assert!(report.to_human().contains("content and record counts"));
}

#[tokio::test]
async fn remembered_state_is_recorded_then_confirmed() {
    let zone = DirZone::new().await;
    let state_dir = tempfile::tempdir().unwrap();
    let state = temp_path(&state_dir, "state.json");
    let mut options = zone.options();
    options.state_file = Some(state.clone());
    let first = zone.verify_with(options.clone()).await;
    assert_verdict(&first, 0, &[Reason::StateRecorded]);
    let saved = std::fs::read_to_string(&state).unwrap();
    assert!(
        saved.contains(&format!("\"size\": {}", zone.b().size())),
        "{saved}"
    );
    let second = zone.verify_with(options).await;
    assert_verdict(
        &second,
        0,
        &[Reason::StateConsistent, Reason::StateRecorded],
    );
}

#[tokio::test]
async fn an_archive_awaiting_its_entry_is_pending_not_planted() {
    let mut zone = DirZone::new().await;
    // The archiver stored the next window's object; the sealer has not logged it yet.
    let b = zone.builder();
    let last = b
        .entries
        .iter()
        .rev()
        .find_map(|e| e.entry.body.window())
        .unwrap();
    let next = Window::new(last.end_ns(), last.end_ns() + WINDOW_NS).unwrap();
    let mut unsealed = ZoneBuilder::new(b.store.clone(), PREFIX, TENANT, ZONE, now_ns());
    unsealed
        .archive(
            "http_requests",
            next,
            CollectionMethod::Logpull,
            Sampling::UNSAMPLED,
            &ndjson("http_requests", &next, 20),
            now_ns() + DAY_NS,
            false,
            now_ns(),
        )
        .await;
    let report = zone.verify().await;
    assert_verdict(&report, 0, &[Reason::ObjectPending, Reason::InventoryClean]);
}

#[tokio::test]
async fn tiles_written_just_before_a_checkpoint_are_a_pending_tail() {
    let mut zone = DirZone::new().await;
    let b = zone.builder();
    let last = b
        .entries
        .iter()
        .rev()
        .find_map(|e| e.entry.body.window())
        .unwrap();
    let next = Window::new(last.end_ns(), last.end_ns() + WINDOW_NS).unwrap();
    b.empty("http_requests", next, CollectionMethod::Logpull, now_ns());
    // The sealer wrote the tiles of the new size and has not signed yet.
    b.write_tiles().await;
    let report = zone.verify().await;
    assert_verdict(&report, 0, &[Reason::PendingTail, Reason::LogVerified]);
}

#[tokio::test]
async fn since_limits_archive_reads_but_not_the_log() {
    let zone = DirZone::new().await;
    let oldest_live = zone.zone.live_archives()[0].clone();
    tamper::flip_byte(zone.root(), &oldest_live.key, 10);
    let mut options = zone.options();
    options.since_ns = Some(oldest_live.window.end_ns());
    let report = zone.verify_with(options).await;
    assert_verdict(&report, 0, &[Reason::ArchivesSkipped, Reason::LogVerified]);
    let whole = zone.verify().await;
    assert_verdict(&whole, 1, &[Reason::StoredSha256Mismatch]);
}

/// Verifies the zone a month after its newest entry, with a two-hour staleness limit.
async fn verify_a_month_later(zone: &DirZone) -> rainlogs_verify::Report {
    let mut options = zone.options();
    options.max_staleness = Some(std::time::Duration::from_secs(2 * 3600));
    options.now = time_of(zone.b().newest_sealed_ns() + 30 * 24 * 3600 * SECOND_NS);
    zone.verify_with(options).await
}

#[tokio::test]
async fn an_erased_tenants_log_stops_without_being_stale() {
    let mut zone = DirZone::new().await;
    let stopped = verify_a_month_later(&zone).await;
    assert_verdict(&stopped, 1, &[Reason::CheckpointStale]);

    let at = zone.b().newest_sealed_ns() + SECOND_NS;
    zone.builder().erasure(at);
    zone.builder().finish().await;
    let erased = verify_a_month_later(&zone).await;
    assert_verdict(
        &erased,
        0,
        &[
            Reason::TenantErased,
            Reason::ErasedNotStale,
            Reason::LogVerified,
        ],
    );
    assert!(
        !erased.has(Reason::CheckpointStale),
        "{}",
        erased.to_human()
    );
}

#[tokio::test]
async fn a_window_after_the_erasure_is_reported() {
    let mut zone = DirZone::new().await;
    let at = zone.b().newest_sealed_ns() + SECOND_NS;
    zone.builder().erasure(at);
    // Collected before the erasure, sealed after it: allowed.
    let before = Window::new(at - 120 * SECOND_NS, at - 60 * SECOND_NS).unwrap();
    zone.builder().empty(
        "dns_logs",
        before,
        CollectionMethod::Logpull,
        at + SECOND_NS,
    );
    let clean = {
        zone.builder().finish().await;
        zone.verify().await
    };
    assert!(
        !clean.has(Reason::WindowAfterErasure),
        "{}",
        clean.to_human()
    );
    // Collected after it: the erasure did not stop collection.
    let after = Window::new(at - 60 * SECOND_NS, at + 60 * SECOND_NS).unwrap();
    zone.builder().empty(
        "dns_logs",
        after,
        CollectionMethod::Logpull,
        at + 180 * SECOND_NS,
    );
    zone.builder().finish().await;
    let report = zone.verify().await;
    assert!(
        report.has(Reason::WindowAfterErasure),
        "{}",
        report.to_human()
    );
    assert_eq!(report.count(Status::Tamper), 0, "{}", report.to_human());
}
