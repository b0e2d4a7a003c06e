//! One attack per test against the standard zone in a directory store. Each must end in exit 1 with the
//! reason that names the attack.

use std::collections::BTreeSet;

use rainlogs_integrity::tiles::{encode_entry_bundle, tiles_for_growth};
use rainlogs_integrity::{
    Chain, CollectionMethod, Entry, EntryBody, Sampling, SealedEntry, TileId, Window,
};
use rainlogs_verify::Reason;

use crate::support::*;

fn bundle_key(zone: &DirZone, index: u64, width: u16) -> String {
    let id = TileId::new(rainlogs_integrity::tiles::TileKind::Entries, index, width).unwrap();
    format!("{}{}", zone.b().tlog_prefix(), id.path())
}

/// The bundle holding the newest entries (the partial one of the signed size).
fn newest_bundle(zone: &DirZone) -> String {
    let size = zone.b().size();
    bundle_key(zone, size / 256, u16::try_from(size % 256).unwrap())
}

#[tokio::test]
async fn a_changed_byte_in_an_archive_is_caught_in_both_modes() {
    let zone = DirZone::new().await;
    let victim = zone.zone.live_archives()[3].clone();
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

    let mut deep = zone.options();
    deep.deep = true;
    let report = zone.verify_with(deep).await;
    assert_verdict(&report, 1, &[Reason::StoredSha256Mismatch]);
}

#[tokio::test]
async fn a_deleted_archive_is_missing() {
    let zone = DirZone::new().await;
    let victim = zone.zone.live_archives()[5].clone();
    tamper::remove(zone.root(), &victim.key);
    let report = zone.verify().await;
    assert_verdict(&report, 1, &[Reason::ArchiveMissing]);
    assert_eq!(tamper_reasons(&report), [Reason::ArchiveMissing]);
}

#[tokio::test]
async fn truncating_the_tail_and_rolling_back_the_checkpoint_is_caught_by_state_and_by_staleness() {
    let zone = DirZone::new().await;
    let b = zone.b();
    let state_dir = tempfile::tempdir().unwrap();
    let state = temp_path(&state_dir, "state.json");
    let mut remembering = zone.options();
    remembering.state_file = Some(state.clone());
    remembering.max_staleness = None;
    assert_verdict(
        &zone.verify_with(remembering.clone()).await,
        0,
        &[Reason::StateRecorded],
    );

    // The attacker cuts the log back to a checkpoint from more than two hours ago and removes every trace
    // of what came after: newer history, the tiles of newer sizes, the archives of the cut entries.
    let cutoff = now_ns() - 2 * HOUR_NS - 10 * MINUTE_NS;
    let (old_size, _, old_note) = b
        .published
        .iter()
        .rev()
        .find(|(size, _, _)| {
            b.entries[..*size as usize]
                .iter()
                .all(|e| e.entry.sealed_at_ns < cutoff)
        })
        .cloned()
        .unwrap();
    assert!(old_size < b.size());
    tamper::write(zone.root(), &b.checkpoint_key(), old_note.as_bytes());
    let kept_sizes: BTreeSet<u64> = b
        .published
        .iter()
        .map(|p| p.0)
        .filter(|s| *s <= old_size)
        .collect();
    let mut kept_tiles = BTreeSet::new();
    let mut previous = 0;
    for size in &kept_sizes {
        kept_tiles.extend(
            tiles_for_growth(previous, *size)
                .unwrap()
                .iter()
                .map(TileId::path),
        );
        previous = *size;
    }
    for (size, _, _) in &b.published {
        if *size > old_size {
            tamper::remove(zone.root(), &b.history_key(*size));
        }
    }
    for key in tamper::keys_under(zone.root(), &format!("{}tile/", b.tlog_prefix())) {
        if !kept_tiles.contains(key.strip_prefix(&b.tlog_prefix()).unwrap()) {
            tamper::remove(zone.root(), &key);
        }
    }
    for archive in &b.archives {
        if archive.index >= old_size && tamper::exists(zone.root(), &archive.key) {
            tamper::remove(zone.root(), &archive.key);
        }
    }

    let with_state = zone.verify_with(remembering).await;
    assert_verdict(
        &with_state,
        1,
        &[Reason::StateRollback, Reason::StateNotUpdated],
    );
    let with_staleness = zone.verify().await;
    assert_verdict(&with_staleness, 1, &[Reason::CheckpointStale]);
    assert!(!with_staleness.has(Reason::StateRollback));
}

#[tokio::test]
async fn an_unlogged_object_under_the_zone_is_planted() {
    let zone = DirZone::new().await;
    let b = zone.b();
    // A convincing archive for a past window that the log records as empty.
    let empty_window = b
        .entries
        .iter()
        .find_map(|e| match &e.entry.body {
            EntryBody::Empty(r) if r.dataset.as_str() == "http_requests" => Some(r.window),
            _ => None,
        })
        .unwrap();
    let mut planter = ZoneBuilder::new(b.store.clone(), PREFIX, TENANT, ZONE, now_ns());
    planter
        .archive(
            "http_requests",
            empty_window,
            CollectionMethod::Logpull,
            Sampling::UNSAMPLED,
            &ndjson("http_requests", &empty_window, 30),
            now_ns() + DAY_NS,
            false,
            now_ns(),
        )
        .await;
    let planted = planter.archives[0].key.clone();
    let report = zone.verify().await;
    assert_verdict(&report, 1, &[Reason::ObjectUnreferenced]);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.reason == Reason::ObjectUnreferenced && f.path == planted)
    );
    assert_eq!(tamper_reasons(&report), [Reason::ObjectUnreferenced]);
}

#[tokio::test]
async fn a_file_planted_in_the_integrity_log_directory_is_unexpected() {
    let zone = DirZone::new().await;
    let b = zone.b();
    tamper::write(
        zone.root(),
        &format!("{}notes.txt", b.tlog_prefix()),
        b"trust me",
    );
    tamper::write(
        zone.root(),
        &format!("{}tile/0/999", b.tlog_prefix()),
        &[0u8; 8192],
    );
    let report = zone.verify().await;
    assert_verdict(&report, 1, &[Reason::TlogUnexpectedObject]);
}

#[tokio::test]
async fn swapped_entries_break_order_and_root() {
    let zone = DirZone::new().await;
    let bundle = newest_bundle(&zone);
    tamper::edit_bundle(zone.root(), &zone.b().tlog_prefix(), &bundle, |entries| {
        entries.swap(3, 4)
    });
    let report = zone.verify().await;
    assert_verdict(
        &report,
        1,
        &[
            Reason::EntryWrongIndex,
            Reason::RootMismatch,
            Reason::ChainBroken,
        ],
    );
}

fn with_one_more_record(bytes: &[u8]) -> Entry {
    let mut entry = Entry::decode(bytes).unwrap();
    let EntryBody::Archive(archive) = &mut entry.body else {
        panic!("not an archive entry");
    };
    archive.record_count += 1;
    entry
}

#[tokio::test]
async fn an_edited_entry_field_breaks_the_chain_and_the_root() {
    let zone = DirZone::new().await;
    let target = zone.zone.live_archives()[2].index;
    assert!(target < 256);
    let key = bundle_key(&zone, 0, 256);
    tamper::edit_bundle(zone.root(), &zone.b().tlog_prefix(), &key, |entries| {
        let edited = with_one_more_record(&entries[target as usize]);
        entries[target as usize] = edited.encode().unwrap();
    });
    let report = zone.verify().await;
    assert_verdict(
        &report,
        1,
        &[
            Reason::RootMismatch,
            Reason::ChainBroken,
            Reason::TileMismatch,
        ],
    );
}

#[tokio::test]
async fn an_edited_entry_with_a_recomputed_chain_still_fails_the_signed_root() {
    let zone = DirZone::new().await;
    let b = zone.b();
    let target = zone.zone.live_archives()[2].index as usize;
    // Without the signing key the attacker can rebuild everything except the signature: re-chain every
    // entry after the edit so each link is internally consistent again.
    let mut chain = Chain::after(&b.entries[target - 1]);
    let mut rewritten: Vec<Vec<u8>> = b.entries[..target]
        .iter()
        .map(|e| e.bytes.clone())
        .collect();
    for (i, original) in b.entries[target..].iter().enumerate() {
        let body = if i == 0 {
            with_one_more_record(&original.bytes).body
        } else {
            original.entry.body.clone()
        };
        let sealed: SealedEntry = chain.seal(body, original.entry.sealed_at_ns).unwrap();
        rewritten.push(sealed.bytes);
    }
    let size = b.size() as usize;
    tamper::write(
        zone.root(),
        &bundle_key(&zone, 0, 256),
        &encode_entry_bundle(&rewritten[..256]).unwrap(),
    );
    tamper::write(
        zone.root(),
        &newest_bundle(&zone),
        &encode_entry_bundle(&rewritten[256..size]).unwrap(),
    );
    let report = zone.verify().await;
    assert_verdict(&report, 1, &[Reason::RootMismatch]);
    assert!(!report.has(Reason::ChainBroken), "{}", report.to_human());
}

#[tokio::test]
async fn a_checkpoint_signed_by_another_key_is_not_trusted() {
    let zone = DirZone::new().await;
    let b = zone.b();
    let (size, root, _) = b.published.last().cloned().unwrap();
    let forged = b.sign_with(&rogue_signer(), size, root);
    tamper::write(zone.root(), &b.checkpoint_key(), forged.as_bytes());
    let report = zone.verify().await;
    assert_verdict(&report, 1, &[Reason::UntrustedKey]);

    // An edited body under the real signature is a bad signature.
    let (_, _, genuine) = b.published.last().cloned().unwrap();
    let edited = genuine.replacen(&format!("\n{size}\n"), &format!("\n{}\n", size + 1), 1);
    tamper::write(zone.root(), &b.checkpoint_key(), edited.as_bytes());
    let report = zone.verify().await;
    assert_verdict(&report, 1, &[Reason::BadSignature]);
}

/// Decision: history is never deleted by RainLogs, and the tiles of every published size remain, so a
/// missing `checkpoints/<size>` is evidence someone deleted it (exit 1, `history_missing`, naming the size),
/// even though the entries still verify whole against the newest checkpoint; the message says so.
#[tokio::test]
async fn a_checkpoint_removed_from_the_middle_of_history_is_named() {
    let zone = DirZone::new().await;
    let b = zone.b();
    let (middle, _, _) = b.published[b.published.len() / 2].clone();
    let key = b.history_key(middle);
    tamper::remove(zone.root(), &key);
    let report = zone.verify().await;
    assert_verdict(&report, 1, &[Reason::HistoryMissing, Reason::LogVerified]);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.reason == Reason::HistoryMissing && f.path == key)
    );
    assert_eq!(
        tamper_reasons(&report),
        [Reason::HistoryMissing],
        "{}",
        report.to_human()
    );
}

#[tokio::test]
async fn pruning_before_retain_until_is_early_deletion() {
    let mut zone = DirZone::new().await;
    let victim = zone.zone.live_archives()[1].clone();
    assert!(victim.retain_until_ns > now_ns());
    let b = zone.builder();
    // A compromised reaper deletes the archive now and gets the deletion logged as retention.
    let now = now_ns();
    b.prune(victim.index, now, now, true).await;
    b.finish().await;
    let report = zone.verify().await;
    assert_verdict(
        &report,
        1,
        &[Reason::PruneBeforeRetainUntil, Reason::ArchiveMissing],
    );
}

#[tokio::test]
async fn another_zones_checkpoint_or_entries_are_substitution() {
    let zone = DirZone::new().await;
    let other = standard_zone(
        fs_store(zone.root()).await,
        PREFIX,
        TENANT,
        "fedcba9876543210fedcba9876543210",
        now_ns(),
        false,
    )
    .await;
    let theirs = &other.builder;
    let ours = zone.b();
    // Same signing key for every zone: only the origin tells the logs apart.
    tamper::write(
        zone.root(),
        &ours.checkpoint_key(),
        &tamper::read(zone.root(), &theirs.checkpoint_key()),
    );
    let report = zone.verify().await;
    assert_verdict(&report, 1, &[Reason::CheckpointWrongOrigin]);
    tamper::write(
        zone.root(),
        &ours.checkpoint_key(),
        ours.published.last().unwrap().2.as_bytes(),
    );

    let their_bundle = format!("{}tile/entries/000", theirs.tlog_prefix());
    tamper::write(
        zone.root(),
        &bundle_key(&zone, 0, 256),
        &tamper::read(zone.root(), &their_bundle),
    );
    let report = zone.verify().await;
    assert_verdict(
        &report,
        1,
        &[Reason::EntryWrongOrigin, Reason::RootMismatch],
    );
}

#[tokio::test]
async fn a_sealer_that_skips_a_window_leaves_a_coverage_gap() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ns();
    let mut b = ZoneBuilder::new(fs_store(dir.path()).await, PREFIX, TENANT, ZONE, now);
    let start = now - 20 * WINDOW_NS;
    b.key_entry(start);
    for k in 0..10u64 {
        if k == 6 {
            continue;
        }
        let window = Window::new(start + k * WINDOW_NS, start + (k + 1) * WINDOW_NS).unwrap();
        b.empty(
            "http_requests",
            window,
            CollectionMethod::Logpull,
            now - (10 - k) * MINUTE_NS,
        );
    }
    b.finish().await;
    let report = rainlogs_verify::verify(&fs_store(dir.path()).await, &options()).await;
    assert_verdict(&report, 1, &[Reason::CoverageGap, Reason::LogVerified]);
}
