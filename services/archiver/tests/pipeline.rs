//! Archiver and sealer together, as in production: from collector batches to sealed, signed
//! entries, on the local store and on SeaweedFS with Object Lock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use rainlogs_archiver::DEFAULT_RETENTION;
use rainlogs_integrity::{Chain, EntryBody, EntryKind, Name, Origin, Sha256Hash, open_checkpoint};
use rainlogs_schemas::Event;
use rainlogs_schemas::events::{GapReason, Method, WindowOutcome};
use rainlogs_store::{LockMode, ObjectKey};
use uuid::Uuid;

fn origin() -> Origin {
    Origin::new(&Name::new(TENANT).unwrap(), &Name::new(ZONE).unwrap())
}

/// Feeds four windows the way a collector with retries and a crash would, and checks that each
/// ends as exactly one entry whose archive is in the bucket as described.
async fn four_windows_end_as_four_entries(h: &Harness) {
    let stop = h.shutdown.clone();
    h.start_archiver(&stop).await;
    h.start_sealer(&stop).await;

    // Window 0: complete, every batch delivered twice, closed twice.
    let attempt = Uuid::now_v7();
    let w0 = batches(0, 3, 500);
    for (seq, lines) in w0.iter().enumerate() {
        h.batch(window(0), attempt, seq as u32, lines).await;
        h.batch(window(0), attempt, seq as u32, lines).await;
    }
    h.close(window(0), attempt, complete(&w0)).await;
    h.close(window(0), attempt, complete(&w0)).await;
    // Window 1: a collector crash abandoned the first attempt; the second completed.
    h.batch(window(1), Uuid::now_v7(), 0, &batches(9_000, 1, 50)[0])
        .await;
    let w1 = batches(10_000, 2, 40);
    h.complete_window(window(1), Uuid::now_v7(), &w1).await;
    // Window 2: empty. Window 3: fell out of Cloudflare's retention.
    h.close(
        window(2),
        Uuid::now_v7(),
        WindowOutcome::Empty {
            method: Method::Logpull,
        },
    )
    .await;
    h.close(
        window(3),
        Uuid::now_v7(),
        WindowOutcome::Gap {
            reason: GapReason::RetentionExpired,
            detail: "older than 7 days".into(),
        },
    )
    .await;

    let prefix = h.store.prefix.clone();
    let checkpoint_key = ObjectKey::new(prefix.checkpoint_key(&origin())).unwrap();
    h.wait_for("a checkpoint covering six entries", || async {
        match h.store.store.get_bytes(&checkpoint_key).await {
            Ok(note) => {
                open_checkpoint(&note, &origin(), &[key().verifier_key()])
                    .unwrap()
                    .checkpoint
                    .size
                    == 6
            }
            Err(_) => false,
        }
    })
    .await;

    let chain = h.chain_events().await;
    assert_eq!(
        chain.len(),
        6,
        "one entry per window, and an index after each archive"
    );
    let mut verifier = Chain::new(origin());
    let entries: Vec<_> = chain
        .iter()
        .map(|e| match &e.event {
            Event::EntrySealed(sealed) => verifier.verify_next(&sealed.entry).unwrap().entry,
            other => panic!("{} on the chain", other.type_name()),
        })
        .collect();
    let kinds: Vec<EntryKind> = entries.iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        [
            EntryKind::Archive,
            EntryKind::Index,
            EntryKind::Archive,
            EntryKind::Index,
            EntryKind::Empty,
            EntryKind::Gap
        ]
    );
    // Each index entry follows its archive's and names it.
    for pair in entries[..4].chunks(2) {
        let (EntryBody::Archive(archive), EntryBody::Index(index)) = (&pair[0].body, &pair[1].body)
        else {
            panic!("not an archive and its index")
        };
        assert_eq!(index.target_index, pair[0].index);
        assert_eq!(
            Some(index.object.key.clone()),
            rainlogs_integrity::layout::index_key(&archive.object.key)
        );
        let bytes = h.object(&index.object.key).await;
        assert_eq!(index.stored_sha256, Sha256Hash::digest(&bytes));
        assert_eq!(index.retain_until_ns, archive.retain_until_ns);
    }
    let entries: Vec<_> = entries
        .into_iter()
        .filter(|e| e.kind() != EntryKind::Index)
        .collect();

    let archives = h.archive_events().await;
    assert_eq!(archives.len(), 4, "one archive event per window");
    for (entry, lines) in entries.iter().zip([w0.concat(), w1.concat()]) {
        let EntryBody::Archive(record) = &entry.body else {
            panic!("not an archive entry")
        };
        let bytes = h.object(&record.object.key).await;
        assert_eq!(
            archive_lines(&bytes),
            lines,
            "the archive holds exactly the attempt's lines"
        );
        assert_eq!(record.stored_sha256, Sha256Hash::digest(&bytes));
        assert_eq!(record.stored_size, bytes.len() as u64);
        assert_eq!(record.content_sha256, Sha256Hash::digest(&lines.concat()));
        assert_eq!(record.record_count, lines.len() as u64);
        let window_end_s = record.window.end_ns() / 1_000_000_000;
        assert_eq!(
            record.retain_until_ns,
            (window_end_s + DEFAULT_RETENTION.as_secs()) * 1_000_000_000
        );
    }
    // Only the two archives and their indexes below the zone prefix besides the integrity log.
    let zone_prefix = prefix.zone_prefix(&origin());
    let objects: Vec<String> = h
        .keys(&zone_prefix)
        .await
        .into_iter()
        .filter(|k| !k.starts_with(&prefix.tlog_prefix(&origin())))
        .collect();
    assert_eq!(objects.len(), 4, "{objects:?}");
    for event in &archives {
        if let Event::ArchiveStored(stored) = &event.event {
            h.assert_indexed(stored).await;
        }
    }

    // What an auditor concludes from the bucket alone with the pinned key.
    let mut options =
        rainlogs_verify::VerifyOptions::new(TENANT, ZONE, vec![key().verifier_key()]).unwrap();
    options.prefix = prefix.clone();
    let report = rainlogs_verify::verify(&h.store.store, &options).await;
    assert_eq!(report.exit_code(), 0, "{}", report.to_human());
    assert_eq!(report.summary.indexes_checked, 2, "{}", report.to_human());
    options.deep = true;
    let report = rainlogs_verify::verify(&h.store.store, &options).await;
    assert_eq!(report.exit_code(), 0, "{}", report.to_human());
}

#[tokio::test]
async fn windows_end_as_one_sealed_entry_each_on_the_local_store() {
    four_windows_end_as_four_entries(&Harness::local().await).await;
}

#[tokio::test]
async fn windows_end_as_one_sealed_entry_each_on_seaweedfs_with_object_lock() {
    let h = Harness::seaweedfs().await;
    four_windows_end_as_four_entries(&h).await;
    // Archives carry COMPLIANCE retention until window end + retention.
    for event in h.archive_events().await {
        if let Event::ArchiveStored(stored) = &event.event {
            let head = h
                .store
                .store
                .head(&ObjectKey::new(&stored.object_key).unwrap())
                .await
                .unwrap()
                .expect("archive exists");
            let lock = head.lock.expect("archive is locked");
            assert_eq!(lock.mode, LockMode::Compliance);
            assert_eq!(lock.retain_until.unix_timestamp(), stored.retain_until);
            assert_eq!(head.version_id, stored.object_version, "version recorded");
            // The index is kept exactly as long.
            let index = stored.index.as_ref().expect("indexed");
            let head = h
                .store
                .store
                .head(&ObjectKey::new(&index.object_key).unwrap())
                .await
                .unwrap()
                .expect("index exists");
            let lock = head.lock.expect("index is locked");
            assert_eq!(lock.mode, LockMode::Compliance);
            assert_eq!(lock.retain_until.unix_timestamp(), stored.retain_until);
            assert_eq!(head.version_id, index.object_version, "version recorded");
        }
    }
}
