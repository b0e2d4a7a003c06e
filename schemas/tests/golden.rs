//! Freezes the wire encoding of every event type. A failing test here means a change would make
//! events already stored in JetStream (or read by outside subscribers) undecodable or different.
//! Regenerate only for a NEW type: `UPDATE_GOLDEN=1 cargo test -p rainlogs-schemas --test golden`.

use std::path::PathBuf;

use rainlogs_schemas::events::*;
use rainlogs_schemas::{Actor, DecodeError, ENVELOPE_VERSION, Envelope, Event};
use uuid::Uuid;

const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const WINDOW: Window = Window {
    start: 1_767_225_600,
    end: 1_767_225_660,
};

fn id(n: u8) -> Uuid {
    Uuid::from_bytes([0x01, 0x8f, 0, 0, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, n])
}

fn envelope(n: u8, zone: Option<&str>, event: Event) -> Envelope {
    Envelope {
        v: ENVELOPE_VERSION,
        id: id(n),
        schema: 1,
        tenant: "acme".into(),
        zone: zone.map(str::to_owned),
        occurred_at_ns: 1_767_225_720_123_456_789,
        causation: Some(id(200)),
        correlation: Some(id(201)),
        actor: Actor::service("collector"),
        event,
    }
}

/// One example of every event type, fixed forever.
fn samples() -> Vec<Envelope> {
    let sha = |b: u8| vec![b; 32];
    vec![
        envelope(
            1,
            None,
            Event::TenantCreated(TenantCreated {
                name: "Acme GmbH".into(),
                email: "security@acme.example".into(),
                retention_days: 395,
            }),
        ),
        envelope(
            2,
            None,
            Event::TenantDeleted(TenantDeleted {
                reason: "GDPR Art. 17 request".into(),
            }),
        ),
        envelope(
            3,
            Some(ZONE),
            Event::ZoneAdded(ZoneAdded {
                zone_id: ZONE.into(),
                name: "acme.example".into(),
                plan: "enterprise".into(),
                method: Method::Logpull,
                fields: "default".into(),
                sealed_token: vec![0xaa; 24],
                token_key_id: "k1".into(),
            }),
        ),
        envelope(
            4,
            Some(ZONE),
            Event::ZoneChanged(ZoneChanged {
                zone_id: ZONE.into(),
                paused: Some(true),
                method: None,
                fields: Some("all".into()),
                sealed_token: None,
                token_key_id: None,
            }),
        ),
        envelope(
            5,
            Some(ZONE),
            Event::ZoneRemoved(ZoneRemoved {
                zone_id: ZONE.into(),
            }),
        ),
        envelope(
            6,
            Some(ZONE),
            Event::ZoneHealth(ZoneHealth {
                zone_id: ZONE.into(),
                status: "degraded".into(),
                reason: "Logpull unavailable: account metadata boundary is EU-only".into(),
                plan: Some("enterprise".into()),
                method: Some(Method::Graphql),
            }),
        ),
        envelope(
            7,
            None,
            Event::ApiKeyCreated(ApiKeyCreated {
                key_id: "k_01J0000000".into(),
                name: "ci".into(),
                role: Role::Operator,
                digest: sha(0x11),
                expires_at_ns: Some(1_798_761_600_000_000_000),
            }),
        ),
        envelope(
            8,
            None,
            Event::ApiKeyRevoked(ApiKeyRevoked {
                key_id: "k_01J0000000".into(),
            }),
        ),
        envelope(
            9,
            Some(ZONE),
            Event::PullRequested(PullRequested {
                zone_id: ZONE.into(),
                window: WINDOW,
            }),
        ),
        envelope(
            10,
            Some(ZONE),
            Event::BatchCollected(BatchCollected {
                dataset: "http_requests".into(),
                window: WINDOW,
                attempt: id(100),
                seq: 0,
                records: 2,
                received_until: None,
                late: false,
                content_lz4: BatchCollected::compress(
                    b"{\"RayID\":\"7d3f1b2a9c8e4f01\"}\n{\"RayID\":\"7d3f1b2a9c8e4f02\"}\n",
                ),
            }),
        ),
        envelope(
            11,
            Some(ZONE),
            Event::WindowClosed(WindowClosed {
                dataset: "http_requests".into(),
                window: WINDOW,
                attempt: id(100),
                outcome: WindowOutcome::Complete {
                    batches: 1,
                    records: 2,
                    method: Method::Logpull,
                    sample_interval: 1,
                    fields: "ClientIP,RayID".into(),
                },
                pushed_through: None,
                late: false,
            }),
        ),
        envelope(
            12,
            Some(ZONE),
            Event::ArchiveStored(ArchiveStored {
                dataset: "http_requests".into(),
                window: WINDOW,
                attempt: id(100),
                object_key: format!(
                    "rainlogs/acme/{ZONE}/http_requests/2026/01/01/00/1767225600-1767225660-0123abcd.ndjson.zst"
                ),
                object_version: None,
                stored_size: 123,
                stored_sha256: sha(0x22),
                content_sha256: sha(0x33),
                records: 2,
                event_time_min_ns: Some(1_767_225_590_000_000_000),
                event_time_max_ns: Some(1_767_225_659_999_999_999),
                method: Method::Logpull,
                sample_interval: 1,
                fields: "ClientIP,RayID".into(),
                retain_until: 1_801_353_600,
                late: false,
                index: None,
            }),
        ),
        envelope(
            13,
            Some(ZONE),
            Event::WindowEmpty(WindowEmpty {
                dataset: "http_requests".into(),
                window: WINDOW,
                attempt: id(101),
                method: Method::Logpull,
            }),
        ),
        envelope(
            14,
            Some(ZONE),
            Event::WindowGap(WindowGap {
                dataset: "http_requests".into(),
                window: WINDOW,
                attempt: id(102),
                reason: GapReason::RetentionExpired,
                detail: "start older than 168h".into(),
            }),
        ),
        envelope(
            15,
            Some(ZONE),
            Event::EntrySealed(EntrySealed {
                index: 41,
                entry: vec![0x01, 0x02, 0x03],
                chain_hash: sha(0x44),
            }),
        ),
        envelope(
            16,
            None,
            Event::AuditRecorded(AuditRecorded {
                action: "archive.download".into(),
                target: "job/41".into(),
                outcome: "ok".into(),
                client_ip: Some("192.0.2.10".into()),
                request_id: Some("req_01".into()),
                detail: None,
            }),
        ),
        envelope(
            17,
            None,
            Event::LegalHoldSet(LegalHoldSet {
                hold_id: "hold-2026-17".into(),
                zone_id: Some(ZONE.into()),
                reason: "BSI incident 2026-0042".into(),
            }),
        ),
        envelope(
            18,
            None,
            Event::LegalHoldReleased(LegalHoldReleased {
                hold_id: "hold-2026-17".into(),
            }),
        ),
        envelope(
            19,
            Some(ZONE),
            Event::ArchivePruned(ArchivePruned {
                target_index: 41,
                target_entry: vec![0x01, 0x02, 0x03],
                policy: "retention-395d".into(),
                pruned_at_ns: 1_801_353_600_000_000_000,
            }),
        ),
        envelope(
            28,
            Some(ZONE),
            Event::IndexRebuilt(IndexRebuilt {
                target_index: 41,
                target_entry: vec![0x01, 0x02, 0x03],
                index: IndexStored {
                    object_key: "t/z/http_requests/2026/01/15/14/w-0123456789abcdef.index".into(),
                    object_version: None,
                    stored_size: 213,
                    stored_sha256: vec![0x7d; 32],
                },
            }),
        ),
        envelope(
            20,
            None,
            Event::RetentionSet(RetentionSet {
                zone_id: Some(ZONE.into()),
                days: Some(730),
            }),
        ),
        envelope(
            22,
            None,
            Event::UserCreated(UserCreated {
                user_id: "u0190a5c3".into(),
                email: "soc@example.eu".into(),
                role: Role::Admin,
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
            }),
        ),
        envelope(
            21,
            Some(ZONE),
            Event::ErasureRequested(ErasureRequested {
                reason: "GDPR Art. 17 request".into(),
            }),
        ),
        envelope(
            24,
            Some(ZONE),
            Event::PushEndpointSet(PushEndpointSet {
                zone_id: ZONE.into(),
                secret_sha256: sha(0x5e),
                dataset: None,
            }),
        ),
        envelope(
            25,
            Some(ZONE),
            Event::PushReceived(PushReceived {
                dataset: "http_requests".into(),
                records: 2,
                content_sha256: sha(0xc5),
                content_lz4: BatchCollected::compress(b"{\"RayID\":\"a\"}\n{\"RayID\":\"b\"}\n"),
            }),
        ),
        envelope(
            26,
            Some(ZONE),
            Event::PushSourceSet(PushSourceSet {
                zone_id: ZONE.into(),
                sealed_source: vec![0x5e; 40],
                key_id: "tk-2026-01".into(),
            }),
        ),
        envelope(
            27,
            Some(ZONE),
            Event::WindowShort(WindowShort {
                dataset: "http_requests".into(),
                window: WINDOW,
                method: Method::LogpushHttp,
                source_records: 1000,
                archived_records: 900,
            }),
        ),
    ]
}

fn golden_path(type_name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(format!("{type_name}.v1.cbor"))
}

#[test]
fn every_event_type_matches_its_golden_file() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for sample in samples() {
        let name = sample.event.type_name();
        let encoded = sample.to_cbor().expect("encode");
        let path = golden_path(name);
        if update && !path.exists() {
            std::fs::write(&path, &encoded).expect("write golden");
        }
        let golden = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("missing golden file {}: {e}", path.display()));
        assert_eq!(
            hex::encode(&encoded),
            hex::encode(&golden),
            "encoding of {name} changed"
        );
        let decoded = Envelope::from_cbor(&golden).expect("golden decodes");
        assert_eq!(
            decoded, sample,
            "golden {name} decodes to a different event"
        );
    }
}

#[test]
fn golden_directory_holds_exactly_the_known_types() {
    let mut on_disk: Vec<String> =
        std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden"))
            .expect("golden dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
    on_disk.sort();
    let mut known: Vec<String> = samples()
        .iter()
        .map(|s| format!("{}.v1.cbor", s.event.type_name()))
        .collect();
    known.sort();
    assert_eq!(on_disk, known);
}

#[test]
fn batch_content_round_trips() {
    let lines = b"{\"a\":1}\n{\"b\":2}\n";
    let batch = BatchCollected {
        dataset: "http_requests".into(),
        window: WINDOW,
        attempt: id(1),
        seq: 0,
        records: 2,
        received_until: None,
        late: false,
        content_lz4: BatchCollected::compress(lines),
    };
    assert_eq!(batch.content().expect("content"), lines);
}

/// `received_until` is optional: the golden batch (a pull, without it) keeps its bytes, and a
/// live tail's batch carries it through a round trip.
#[test]
fn received_until_is_absent_unless_set_and_round_trips() {
    let golden = std::fs::read(golden_path("batch.collected")).expect("golden batch");
    let Event::BatchCollected(batch) = Envelope::from_cbor(&golden).expect("decodes").event else {
        panic!("not a batch");
    };
    assert_eq!(batch.received_until, None);
    let mut envelope = envelope(1, Some("z"), Event::BatchCollected(batch.clone()));
    envelope.event = Event::BatchCollected(BatchCollected {
        received_until: Some(1_767_225_600),
        ..batch
    });
    let decoded = Envelope::from_cbor(&envelope.to_cbor().expect("encodes")).expect("decodes");
    let Event::BatchCollected(decoded) = decoded.event else {
        panic!("not a batch");
    };
    assert_eq!(decoded.received_until, Some(1_767_225_600));
}

/// `pushed_through` and `late` are optional: the golden close and archive event keep their bytes,
/// and a pushed window's late close carries both through a round trip.
#[test]
fn push_marks_are_absent_unless_set_and_round_trip() {
    let golden = std::fs::read(golden_path("batch.window_closed")).expect("golden close");
    let Event::WindowClosed(closed) = Envelope::from_cbor(&golden).expect("decodes").event else {
        panic!("not a close");
    };
    assert_eq!((closed.pushed_through, closed.late), (None, false));
    let late = WindowClosed {
        pushed_through: Some(4_242),
        late: true,
        ..closed
    };
    let envelope = envelope(1, Some("z"), Event::WindowClosed(late.clone()));
    let decoded = Envelope::from_cbor(&envelope.to_cbor().expect("encodes")).expect("decodes");
    assert_eq!(decoded.event, Event::WindowClosed(late));
    let stored = std::fs::read(golden_path("archive.stored")).expect("golden archive");
    let Event::ArchiveStored(stored) = Envelope::from_cbor(&stored).expect("decodes").event else {
        panic!("not an archive");
    };
    assert!(!stored.late);
}

/// A push endpoint's `dataset` is optional: the golden event (of a job pushing
/// `http_requests`, written before jobs had a dataset each) keeps its bytes and means
/// `http_requests`; a `firewall_events` job's secret carries its dataset through a round trip.
#[test]
fn push_endpoint_dataset_is_absent_for_http_requests_and_round_trips() {
    let golden = std::fs::read(golden_path("ctl.push_endpoint_set")).expect("golden endpoint");
    let Event::PushEndpointSet(set) = Envelope::from_cbor(&golden).expect("decodes").event else {
        panic!("not a push endpoint");
    };
    assert_eq!(
        (set.dataset.as_deref(), set.dataset()),
        (None, "http_requests")
    );
    let firewall = PushEndpointSet {
        dataset: Some("firewall_events".into()),
        ..set
    };
    let envelope = envelope(1, Some("z"), Event::PushEndpointSet(firewall.clone()));
    let decoded = Envelope::from_cbor(&envelope.to_cbor().expect("encodes")).expect("decodes");
    assert_eq!(decoded.event, Event::PushEndpointSet(firewall));
}

/// An archive's `index` is optional: the golden `archive.stored` (written before indexes) keeps
/// its bytes and has none; one with an index carries it through a round trip.
#[test]
fn archive_index_is_absent_unless_set_and_round_trips() {
    let golden = std::fs::read(golden_path("archive.stored")).expect("golden archive");
    let Event::ArchiveStored(stored) = Envelope::from_cbor(&golden).expect("decodes").event else {
        panic!("not an archive");
    };
    assert_eq!(stored.index, None);
    let indexed = ArchiveStored {
        index: Some(IndexStored {
            object_key: "k.index".into(),
            object_version: Some("v1".into()),
            stored_size: 9,
            stored_sha256: vec![1; 32],
        }),
        ..stored
    };
    let envelope = envelope(1, Some("z"), Event::ArchiveStored(indexed.clone()));
    let decoded = Envelope::from_cbor(&envelope.to_cbor().expect("encodes")).expect("decodes");
    assert_eq!(decoded.event, Event::ArchiveStored(indexed));
}

#[test]
fn hostile_batch_size_prefix_is_refused_before_allocating() {
    let mut content_lz4 = u32::MAX.to_le_bytes().to_vec();
    content_lz4.extend_from_slice(&[0u8; 8]);
    let batch = BatchCollected {
        dataset: "http_requests".into(),
        window: WINDOW,
        attempt: id(1),
        seq: 0,
        records: 0,
        received_until: None,
        late: false,
        content_lz4,
    };
    assert!(matches!(batch.content(), Err(DecodeError::Payload(msg)) if msg.contains("exceeds")));
}

#[test]
fn garbage_is_a_malformed_envelope() {
    assert!(matches!(
        Envelope::from_cbor(b"\xff\x00not cbor"),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        Envelope::from_cbor(b""),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn newer_versions_are_refused_with_a_clear_error() {
    let mut newer_envelope = samples().remove(0);
    newer_envelope.v = ENVELOPE_VERSION + 1;
    let bytes = newer_envelope.to_cbor().expect("encode");
    assert!(
        matches!(Envelope::from_cbor(&bytes), Err(DecodeError::UnsupportedEnvelope { found }) if found == ENVELOPE_VERSION + 1)
    );

    let mut newer_schema = samples().remove(0);
    newer_schema.schema = 2;
    let bytes = newer_schema.to_cbor().expect("encode");
    let err = Envelope::from_cbor(&bytes).expect_err("must refuse");
    assert!(err.to_string().contains("ctl.tenant_created"), "{err}");
}

#[test]
fn unknown_event_type_is_refused() {
    // Same envelope with a type this build has never heard of.
    let mut value: ciborium::Value =
        ciborium::from_reader(&samples()[0].to_cbor().expect("encode")[..]).expect("value");
    if let ciborium::Value::Map(entries) = &mut value {
        for (k, v) in entries.iter_mut() {
            if k.as_text() == Some("type") {
                *v = ciborium::Value::Text("ctl.something_new".into());
            }
        }
    }
    let mut bytes = Vec::new();
    ciborium::into_writer(&value, &mut bytes).expect("encode");
    assert!(matches!(
        Envelope::from_cbor(&bytes),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn causation_links_to_the_cause() {
    let cause = samples().remove(0);
    let effect = Envelope::new(
        "acme",
        None,
        Actor::service("archiver"),
        cause.event.clone(),
    )
    .caused_by(&cause);
    assert_eq!(effect.causation, Some(cause.id));
    assert_eq!(effect.correlation, cause.correlation);
    assert_ne!(effect.id, cause.id);
}
