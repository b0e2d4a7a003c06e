//! The archiver against a real NATS server and a real store: what ends up in the bucket and on
//! `rl.archive.<zone>` for complete, re-delivered, abandoned, empty, gap and inconsistent windows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use rainlogs_archiver::{DEFAULT_RETENTION, window_outcome_id};
use rainlogs_integrity::Sha256Hash;
use rainlogs_integrity::framing::digest_archive;
use rainlogs_schemas::Event;
use rainlogs_schemas::events::{ArchiveStored, GapReason, Method, WindowOutcome};
use uuid::Uuid;

fn stored(event: &Event) -> &ArchiveStored {
    match event {
        Event::ArchiveStored(stored) => stored,
        other => panic!("expected archive.stored, got {}", other.type_name()),
    }
}

#[tokio::test]
async fn a_complete_window_becomes_one_archive_with_exactly_its_lines() {
    let h = Harness::local().await;
    let stop = h.shutdown.clone();
    h.start_archiver(&stop).await;
    // Enough content for several 1 MiB frames.
    let batches = batches(0, 6, 4_000);
    let sent: Vec<Vec<u8>> = batches.concat();
    h.complete_window(window(0), Uuid::now_v7(), &batches).await;

    h.wait_for("archive.stored", || async {
        !h.archive_events().await.is_empty()
    })
    .await;
    let events = h.archive_events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id, window_outcome_id(ZONE, DATASET, &window(0)));
    let event = stored(&events[0].event);

    let bytes = h.object(&event.object_key).await;
    assert_eq!(
        archive_lines(&bytes),
        sent,
        "lines byte-exact and in batch order"
    );
    assert_eq!(event.stored_size, bytes.len() as u64);
    assert_eq!(event.stored_sha256, Sha256Hash::digest(&bytes).0.to_vec());
    assert_eq!(
        event.content_sha256,
        Sha256Hash::digest(&sent.concat()).0.to_vec()
    );
    assert_eq!(event.records, sent.len() as u64);
    assert_eq!(event.records, 24_000);
    let digest = digest_archive(&bytes[..]).unwrap();
    assert_eq!(digest.record_count, event.records);
    assert!(
        event.object_key.starts_with(&format!(
            "{TENANT}/{ZONE}/{DATASET}/2026/01/15/14/20260115T140000Z_20260115T140100Z-"
        )),
        "{}",
        event.object_key
    );
    assert_eq!(event.event_time_min_ns, Some(1_768_485_600_000_000_000));
    assert_eq!(
        event.event_time_max_ns,
        Some(1_768_485_600_000_000_000 + 23_999 * 1_000_003)
    );
    let retention = i64::try_from(DEFAULT_RETENTION.as_secs()).unwrap();
    assert_eq!(event.retain_until, window(0).end + retention);
    assert_eq!(event.method, Method::Logpull);
    h.assert_indexed(event).await;
    let index_key = event.index.as_ref().unwrap().object_key.clone();
    assert_eq!(
        h.keys(&format!("{TENANT}/{ZONE}/")).await,
        vec![index_key, event.object_key.clone()]
    );
}

#[tokio::test]
async fn redelivered_batches_and_repeated_closes_give_one_archive() {
    let h = Harness::local().await;
    let stop = h.shutdown.clone();
    h.start_archiver(&stop).await;
    let attempt = Uuid::now_v7();
    let batches = batches(0, 3, 10);
    // Every batch twice (the collector retried after its publish ack was lost), seq 1 before
    // seq 0 (a redelivery overtaking), and the close three times.
    h.batch(window(0), attempt, 1, &batches[1]).await;
    for (seq, lines) in batches.iter().enumerate() {
        h.batch(window(0), attempt, seq as u32, lines).await;
        h.batch(window(0), attempt, seq as u32, lines).await;
    }
    for _ in 0..3 {
        h.close(window(0), attempt, complete(&batches)).await;
    }
    h.wait_for("archive.stored", || async {
        !h.archive_events().await.is_empty()
    })
    .await;
    // A later window in the same lane is closed after the first one is done.
    h.complete_window(window(1), Uuid::now_v7(), &common::batches(100, 1, 5))
        .await;
    h.wait_for("the second window", || async {
        h.archive_events().await.len() >= 2
    })
    .await;

    let events = h.archive_events().await;
    assert_eq!(events.len(), 2, "one event per window");
    let first = stored(&events[0].event);
    assert_eq!(first.window, window(0));
    assert_eq!(
        archive_lines(&h.object(&first.object_key).await),
        batches.concat()
    );
    let window_prefix = &first.object_key[..first.object_key.len() - 27];
    assert_eq!(
        h.keys(window_prefix).await.len(),
        2,
        "one archive and its index for the window"
    );
    h.assert_indexed(first).await;
}

#[tokio::test]
async fn batches_of_an_abandoned_attempt_are_ignored() {
    let h = Harness::local().await;
    let stop = h.shutdown.clone();
    h.start_archiver(&stop).await;
    let (abandoned, retried) = (Uuid::now_v7(), Uuid::now_v7());
    let stale = batches(0, 2, 10);
    let fresh = batches(1_000, 2, 7);
    h.batch(window(0), abandoned, 0, &stale[0]).await;
    h.batch(window(0), abandoned, 1, &stale[1]).await;
    h.complete_window(window(0), retried, &fresh).await;
    // A late batch of the abandoned attempt after the close.
    h.batch(window(0), abandoned, 2, &stale[0]).await;

    h.wait_for("archive.stored", || async {
        !h.archive_events().await.is_empty()
    })
    .await;
    let events = h.archive_events().await;
    let event = stored(&events[0].event);
    assert_eq!(event.attempt, retried);
    assert_eq!(event.records, 14);
    assert_eq!(
        archive_lines(&h.object(&event.object_key).await),
        fresh.concat()
    );

    // Nothing stays pending: the abandoned attempt's batches were acknowledged with the window.
    let consumer = h
        .bus
        .js
        .get_stream("RL_BATCH")
        .await
        .unwrap()
        .get_consumer::<rainlogs_bus::async_nats::jetstream::consumer::pull::Config>("archiver")
        .await
        .unwrap();
    h.wait_for("all batch messages acknowledged", || async {
        let info = consumer.get_info().await.unwrap();
        info.num_ack_pending == 0 && info.num_pending == 0
    })
    .await;
}

#[tokio::test]
async fn empty_and_gap_windows_are_announced_as_such() {
    let h = Harness::local().await;
    let stop = h.shutdown.clone();
    h.start_archiver(&stop).await;
    h.close(
        window(0),
        Uuid::now_v7(),
        WindowOutcome::Empty {
            method: Method::Logpull,
        },
    )
    .await;
    h.close(
        window(1),
        Uuid::now_v7(),
        WindowOutcome::Gap {
            reason: GapReason::RetentionExpired,
            detail: "older than 7 days".into(),
        },
    )
    .await;
    h.wait_for("two events", || async {
        h.archive_events().await.len() >= 2
    })
    .await;
    let events = h.archive_events().await;
    assert!(matches!(&events[0].event, Event::WindowEmpty(e) if e.window == window(0)));
    assert!(matches!(&events[1].event,
        Event::WindowGap(e) if e.window == window(1) && e.reason == GapReason::RetentionExpired));
    assert!(
        h.keys(&format!("{TENANT}/")).await.is_empty(),
        "no objects for empty or gap windows"
    );
}

#[tokio::test]
async fn a_window_cut_short_is_archived_from_batches_that_name_the_planned_window() {
    let h = Harness::local().await;
    let stop = h.shutdown.clone();
    h.start_archiver(&stop).await;
    // An Instant Logs session dropped 25 s into the window: its records were already published
    // under the planned window, the close ends the window at the drop, and the rest is a gap.
    let planned = window(0);
    let cut = rainlogs_schemas::events::Window {
        start: planned.start,
        end: planned.start + 25,
    };
    let (tail, reconnect) = (Uuid::now_v7(), Uuid::now_v7());
    let sent = batches(0, 3, 10);
    for (seq, lines) in sent.iter().enumerate() {
        h.batch(planned, tail, seq as u32, lines).await;
    }
    h.close(cut, tail, complete(&sent)).await;
    let disconnected = rainlogs_schemas::events::Window {
        start: cut.end,
        end: window(1).end,
    };
    h.close(
        disconnected,
        reconnect,
        WindowOutcome::Gap {
            reason: GapReason::Disconnected,
            detail: "no Instant Logs session was connected".into(),
        },
    )
    .await;
    h.wait_for("two events", || async {
        h.archive_events().await.len() >= 2
    })
    .await;
    let events = h.archive_events().await;
    let archived = stored(&events[0].event);
    assert_eq!(
        archived.window, cut,
        "the archive covers the close's window"
    );
    assert_eq!(archived.records, 30);
    assert_eq!(
        archive_lines(&h.object(&archived.object_key).await),
        sent.concat()
    );
    assert!(
        archived
            .object_key
            .contains("20260115T140000Z_20260115T140025Z-"),
        "{}",
        archived.object_key
    );
    assert!(matches!(&events[1].event,
        Event::WindowGap(e) if e.window == disconnected && e.reason == GapReason::Disconnected));
}

#[tokio::test]
async fn a_window_whose_record_counts_disagree_is_not_archived() {
    let h = Harness::local().await;
    let stop = h.shutdown.clone();
    h.start_archiver(&stop).await;
    let attempt = Uuid::now_v7();
    let lines = batches(0, 1, 5);
    h.batch(window(0), attempt, 0, &lines[0]).await;
    // The collector claims 6 records for 5 lines.
    let mut outcome = complete(&lines);
    if let WindowOutcome::Complete { records, .. } = &mut outcome {
        *records = 6;
    }
    h.close(window(0), attempt, outcome).await;
    // The next window of the lane is closed only after the first one was handled.
    h.complete_window(window(1), Uuid::now_v7(), &batches(10, 1, 3))
        .await;
    h.wait_for("the second window", || async {
        !h.archive_events().await.is_empty()
    })
    .await;
    let events = h.archive_events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(stored(&events[0].event).window, window(1));
    let objects = h.archive_keys(&format!("{TENANT}/")).await;
    assert_eq!(objects.len(), 1, "{objects:?}");
    h.assert_indexed(stored(&events[0].event)).await;
}

#[tokio::test]
async fn a_reordered_refetch_after_a_restart_reuses_the_stored_archive() {
    let h = Harness::local().await;
    let first_run = tokio_util_token();
    h.start_archiver(&first_run).await;
    let original = batches(0, 2, 20);
    h.complete_window(window(0), Uuid::now_v7(), &original)
        .await;
    h.wait_for("archive.stored", || async {
        !h.archive_events().await.is_empty()
    })
    .await;
    let first = stored(&h.archive_events().await[0].event).clone();
    first_run.cancel();

    // A new archiver (nothing remembered) sees the window fetched again: same records, other order.
    let second_run = h.shutdown.clone();
    h.start_archiver(&second_run).await;
    let mut reordered: Vec<Vec<u8>> = original.concat();
    reordered.reverse();
    h.complete_window(window(0), Uuid::now_v7(), &[reordered])
        .await;
    h.complete_window(window(1), Uuid::now_v7(), &batches(500, 1, 3))
        .await;
    h.wait_for("the next window", || async {
        h.archive_events()
            .await
            .iter()
            .any(|e| matches!(&e.event, Event::ArchiveStored(s) if s.window == window(1)))
    })
    .await;

    for event in h.archive_events().await {
        if let Event::ArchiveStored(s) = &event.event
            && s.window == window(0)
        {
            assert_eq!(s.object_key, first.object_key, "the stored archive stands");
            assert_eq!(s.stored_sha256, first.stored_sha256);
        }
    }
    let window_prefix = &first.object_key[..first.object_key.len() - 27];
    assert_eq!(
        h.archive_keys(window_prefix).await,
        vec![first.object_key.clone()]
    );
    h.assert_indexed(&first).await;
}

fn tokio_util_token() -> rainlogs_bus::CancellationToken {
    rainlogs_bus::CancellationToken::new()
}

/// The tenant's and the zone's retention from the control stream fix each archive's
/// retain-until; a policy changed later applies to windows archived after it.
#[tokio::test]
async fn retain_until_follows_the_zone_and_tenant_policy_in_force() {
    use rainlogs_schemas::events::{RetentionSet, TenantCreated};
    use rainlogs_schemas::{Actor, Envelope, subjects};
    let h = Harness::local().await;
    let control = |event: Event| {
        let bus = h.bus.clone();
        async move {
            let envelope = Envelope::new(TENANT, None, Actor::operator(), event);
            bus.publish(&subjects::control(TENANT), &envelope)
                .await
                .unwrap();
        }
    };
    control(Event::TenantCreated(TenantCreated {
        name: "Acme".into(),
        email: "sec@acme.example".into(),
        retention_days: 30,
    }))
    .await;
    control(Event::RetentionSet(RetentionSet {
        zone_id: Some(ZONE.into()),
        days: Some(60),
    }))
    .await;
    let day = 86_400;

    let first_run = tokio_util_token();
    let archiver = h.start_archiver(&first_run).await;
    h.complete_window(window(0), Uuid::now_v7(), &batches(0, 1, 10))
        .await;
    h.wait_for("window 0", || async { h.archive_events().await.len() == 1 })
        .await;
    assert_eq!(
        stored(&h.archive_events().await[0].event).retain_until,
        window(0).end + 60 * day,
        "the zone's override"
    );
    first_run.cancel();
    archiver.await.unwrap();

    // The override is removed: the tenant's 30 days apply to windows archived from now on.
    control(Event::RetentionSet(RetentionSet {
        zone_id: Some(ZONE.into()),
        days: None,
    }))
    .await;
    h.start_archiver(&h.shutdown.clone()).await;
    h.complete_window(window(1), Uuid::now_v7(), &batches(10, 1, 10))
        .await;
    h.wait_for("window 1", || async { h.archive_events().await.len() == 2 })
        .await;
    let events = h.archive_events().await;
    assert_eq!(
        stored(&events[0].event).retain_until,
        window(0).end + 60 * day,
        "already sealed: unchanged"
    );
    assert_eq!(
        stored(&events[1].event).retain_until,
        window(1).end + 30 * day,
        "the tenant's policy"
    );
}

/// Records that came after their window was closed: each late close is an object of its own
/// next to the window's archive, announced `late` once, however often it is delivered.
#[tokio::test]
async fn a_late_close_adds_an_object_beside_the_window_archive_once() {
    let h = Harness::local().await;
    let stop = h.shutdown.clone();
    h.start_archiver(&stop).await;
    let first = batches(0, 1, 10);
    h.complete_window(window(0), Uuid::now_v7(), &first).await;
    h.wait_for("the window's archive", || async {
        h.archive_events().await.len() == 1
    })
    .await;

    let late = batches(100, 2, 5);
    let attempt = Uuid::now_v7();
    for (seq, lines) in late.iter().enumerate() {
        h.batch_of(window(0), attempt, u32::try_from(seq).unwrap(), lines, true)
            .await;
    }
    // Delivered twice: a repeated close (after a collector restart) changes nothing.
    h.close_of(window(0), attempt, complete(&late), true).await;
    h.close_of(window(0), attempt, complete(&late), true).await;
    h.wait_for("the late object", || async {
        h.archive_events().await.len() >= 2
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let events = h.archive_events().await;
    assert_eq!(events.len(), 2, "one announcement per close");
    let (main, extra) = (stored(&events[0].event), stored(&events[1].event));
    assert!(!main.late && extra.late);
    assert_eq!((main.window, extra.window), (window(0), window(0)));
    assert!(
        extra
            .object_key
            .contains("20260115T140000Z_20260115T140100Z.late-"),
        "{}",
        extra.object_key
    );
    assert_eq!(
        archive_lines(&h.object(&extra.object_key).await),
        late.concat()
    );
    assert_eq!(
        archive_lines(&h.object(&main.object_key).await),
        first.concat()
    );
    let mut keys = vec![main.object_key.clone(), extra.object_key.clone()];
    keys.sort();
    assert_eq!(h.archive_keys(&format!("{TENANT}/{ZONE}/")).await, keys);
    h.assert_indexed(main).await;
    h.assert_indexed(extra).await;
}
