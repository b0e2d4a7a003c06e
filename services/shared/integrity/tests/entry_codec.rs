//! Entry encoding: round trips, and every way a stored entry can be malformed is rejected.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use rainlogs_integrity::entry::{ENTRY_VERSION, MAX_ENTRY_LEN};
use rainlogs_integrity::*;

fn bytes_of(kind: EntryKind) -> Vec<u8> {
    sample_log()
        .into_iter()
        .find(|s| s.entry.kind() == kind)
        .unwrap()
        .bytes
}

/// The entry's bytes with one fixed-width number field set to `value` (in its last byte).
fn with_field(sealed: &SealedEntry, field: &str, value: u8) -> Vec<u8> {
    let at = field_offset(&sealed.entry, field);
    let width = match field {
        "method" | "gap_reason" => 1,
        "sampling" => 4,
        _ => 8,
    };
    let mut bytes = sealed.bytes.clone();
    bytes[at..at + width].fill(0);
    bytes[at + width - 1] = value;
    bytes
}

/// Offset of a field in an encoded entry, from the annotated dump (offset, name, ...).
fn field_offset(entry: &Entry, field: &str) -> usize {
    let dump = rainlogs_integrity::entry::annotate(entry).unwrap();
    let line = dump
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(field))
        .unwrap();
    usize::from_str_radix(line.split_whitespace().next().unwrap(), 16).unwrap()
}

#[test]
fn every_kind_round_trips_byte_exactly() {
    let log = sample_log();
    let kinds: Vec<_> = log.iter().map(|s| s.entry.kind()).collect();
    for kind in [
        EntryKind::Archive,
        EntryKind::Empty,
        EntryKind::Gap,
        EntryKind::Prune,
        EntryKind::Key,
    ] {
        assert!(kinds.contains(&kind), "sample log lacks {kind:?}");
    }
    for sealed in &log {
        let decoded = Entry::decode(&sealed.bytes).unwrap();
        assert_eq!(decoded, sealed.entry);
        assert_eq!(decoded.encode().unwrap(), sealed.bytes);
        assert_eq!(entry_id(&sealed.bytes), sealed.id);
    }
}

#[test]
fn an_erasure_entry_round_trips_and_holds_nothing_but_its_place_and_time() {
    let log = sample_log();
    let sealed = Chain::after(log.last().unwrap())
        .seal(EntryBody::Erasure, T0 + DAY)
        .unwrap();
    let decoded = Entry::decode(&sealed.bytes).unwrap();
    assert_eq!(decoded.kind(), EntryKind::Erasure);
    assert_eq!(decoded.encode().unwrap(), sealed.bytes);
    // Any field set on an erasure entry is refused.
    let mut with_dataset = bytes_of(EntryKind::Key);
    let kind_at = field_offset(&log[0].entry, "kind");
    with_dataset[kind_at] = EntryKind::Erasure.code();
    assert!(
        matches!(
            Entry::decode(&with_dataset),
            Err(EntryError::NotApplicable { field: "key", .. })
        ),
        "{:?}",
        Entry::decode(&with_dataset)
    );
}

#[test]
fn a_late_entry_round_trips_and_is_held_to_the_archive_rules() {
    let sealed = late_after_sample_log();
    let decoded = Entry::decode(&sealed.bytes).unwrap();
    assert_eq!(decoded.kind(), EntryKind::Late);
    assert_eq!(EntryKind::from_code(7).unwrap().as_str(), "late");
    assert_eq!(decoded, sealed.entry);
    assert_eq!(decoded.encode().unwrap(), sealed.bytes);
    // It adds to a window another entry accounts for, and it carries an object like an archive entry.
    assert!(!EntryKind::Late.covers_window());
    assert_eq!(decoded.body.window(), None);
    let record = decoded.body.archive().unwrap();
    assert_eq!(decoded.body.dataset(), Some(&record.dataset));
    assert_eq!(decoded.body.chain_object_sha256(), record.stored_sha256);

    // Only the kind byte tells a late entry from an archive entry: the layout is the same.
    let log = sample_log();
    let kind_at = field_offset(&log[1].entry, "kind");
    let mut relabelled = log[1].bytes.clone();
    relabelled[kind_at] = EntryKind::Late.code();
    let as_late = Entry::decode(&relabelled).unwrap();
    assert_eq!(as_late.kind(), EntryKind::Late);
    assert_eq!(as_late.body.archive(), log[1].entry.body.archive());

    // Every rule of an archive entry holds for a late one (FORMAT.md §4.2).
    for (field, value) in [
        ("stored_size", 0u8),
        ("record_count", 0),
        ("retain_until_ns", 0),
        ("sampling", 0),
        ("method", 0),
        ("method", 5),
        ("gap_reason", 1),
    ] {
        assert!(
            Entry::decode(&with_field(&sealed, field, value)).is_err(),
            "{field} = {value} accepted"
        );
    }
    // A late entry without an object (an empty entry relabelled) is refused.
    let mut objectless = bytes_of(EntryKind::Empty);
    objectless[kind_at] = EntryKind::Late.code();
    assert!(Entry::decode(&objectless).is_err());
    // A late entry relabelled as a shortfall is refused: a shortfall holds no object.
    let mut as_shortfall = sealed.bytes.clone();
    as_shortfall[kind_at] = EntryKind::Shortfall.code();
    assert!(Entry::decode(&as_shortfall).is_err());
    // Kinds after 9 are unknown.
    let mut unknown = sealed.bytes.clone();
    unknown[kind_at] = 10;
    assert_eq!(Entry::decode(&unknown), Err(EntryError::UnknownKind(10)));
}

#[test]
fn an_index_entry_round_trips_and_names_its_archive_entry() {
    let sealed = index_after_archive();
    let archive = indexed_archive();
    let decoded = Entry::decode(&sealed.bytes).unwrap();
    assert_eq!(decoded.kind(), EntryKind::Index);
    assert_eq!(EntryKind::from_code(9).unwrap().as_str(), "index");
    assert_eq!(decoded, sealed.entry);
    assert_eq!(decoded.encode().unwrap(), sealed.bytes);
    // It accounts for no window and holds no archive, but it is listed under its archive's window.
    assert!(!EntryKind::Index.covers_window());
    assert_eq!(decoded.body.window(), None);
    assert_eq!(decoded.body.archive(), None);
    assert_eq!(decoded.body.named_window(), Some(window(3)));
    let EntryBody::Index(record) = &decoded.body else {
        panic!("not an index entry")
    };
    assert_eq!(
        (record.target_index, record.target_entry_id),
        (archive.entry.index, archive.id)
    );
    // The chain commits the index object's bytes, as it commits an archive's.
    assert_eq!(decoded.body.chain_object_sha256(), record.stored_sha256);
    assert_eq!(record.stored_sha256, Sha256Hash::digest(&index_object()));
    assert!(record.object.key.ends_with(".index"));

    // What an index entry must hold and leave zero (FORMAT.md §4.2).
    for (field, value) in [
        ("stored_size", 0u8),
        ("retain_until_ns", 0),
        ("method", 1),
        ("sampling", 1),
        ("content_sha256", 1),
        ("record_count", 1),
        ("gap_reason", 1),
        ("pruned_at_ns", 1),
    ] {
        assert!(
            Entry::decode(&with_field(&sealed, field, value)).is_err(),
            "{field} = {value} accepted"
        );
    }
    // It must name an earlier entry, by index and id.
    let id_at = field_offset(&sealed.entry, "prune_target_entry_id");
    let mut idless = sealed.bytes.clone();
    idless[id_at..id_at + 32].fill(0);
    assert!(Entry::decode(&idless).is_err());
    let index_at = field_offset(&sealed.entry, "prune_target_index");
    let mut forward = sealed.bytes.clone();
    forward[index_at..index_at + 8].copy_from_slice(&sealed.entry.index.to_be_bytes());
    assert!(Entry::decode(&forward).is_err());
    // An archive entry relabelled as an index is refused (it has a method and records).
    let kind_at = field_offset(&archive.entry, "kind");
    let mut relabelled = archive.bytes.clone();
    relabelled[kind_at] = EntryKind::Index.code();
    assert!(Entry::decode(&relabelled).is_err());
}

#[test]
fn a_shortfall_entry_round_trips_and_carries_only_a_window_and_the_sources_count() {
    let sealed = shortfall_after_late();
    let decoded = Entry::decode(&sealed.bytes).unwrap();
    assert_eq!(decoded.kind(), EntryKind::Shortfall);
    assert_eq!(EntryKind::from_code(8).unwrap().as_str(), "shortfall");
    assert_eq!(decoded, sealed.entry);
    assert_eq!(decoded.encode().unwrap(), sealed.bytes);
    // It names a window another entry accounts for, and it holds no object.
    assert!(!EntryKind::Shortfall.covers_window());
    assert_eq!(decoded.body.window(), None);
    assert_eq!(decoded.body.archive(), None);
    assert_eq!(decoded.body.chain_object_sha256(), Sha256Hash::ZERO);
    let EntryBody::Shortfall(record) = &decoded.body else {
        panic!("not a shortfall")
    };
    assert_eq!((record.window, record.source_count), (window(1), 40));

    // The source's count is at least one record; sampling, a gap reason, method 0 and object fields
    // are refused (FORMAT.md §4.2).
    for (field, value) in [
        ("record_count", 0u8),
        ("sampling", 1),
        ("stored_size", 1),
        ("retain_until_ns", 1),
        ("method", 0),
        ("gap_reason", 1),
        ("pruned_at_ns", 1),
    ] {
        assert!(
            Entry::decode(&with_field(&sealed, field, value)).is_err(),
            "{field} = {value} accepted"
        );
    }
    // An empty entry relabelled as a shortfall has no count, and is refused.
    let log = sample_log();
    let kind_at = field_offset(&log[2].entry, "kind");
    let mut countless = bytes_of(EntryKind::Empty);
    countless[kind_at] = EntryKind::Shortfall.code();
    assert!(Entry::decode(&countless).is_err());
}

#[test]
fn truncated_entries_are_rejected_at_every_length() {
    for sealed in sample_log() {
        for len in 0..sealed.bytes.len() {
            let err = Entry::decode(&sealed.bytes[..len]).unwrap_err();
            assert!(
                matches!(err, EntryError::Truncated { .. } | EntryError::BadMagic),
                "len {len}: {err:?}"
            );
        }
    }
}

#[test]
fn trailing_garbage_is_rejected() {
    let mut bytes = bytes_of(EntryKind::Archive);
    bytes.push(0);
    assert_eq!(Entry::decode(&bytes), Err(EntryError::TrailingBytes(1)));
}

#[test]
fn wrong_magic_version_and_kind_are_rejected() {
    let bytes = bytes_of(EntryKind::Empty);
    let mut magic = bytes.clone();
    magic[0] = b'X';
    assert_eq!(Entry::decode(&magic), Err(EntryError::BadMagic));
    for version in [0u8, 2, 255] {
        let mut v = bytes.clone();
        v[4] = version;
        assert_eq!(
            Entry::decode(&v),
            Err(EntryError::UnsupportedVersion(version))
        );
    }
    assert_eq!(bytes[4], ENTRY_VERSION);
    let mut kind = bytes.clone();
    kind[5] = 10;
    assert_eq!(Entry::decode(&kind), Err(EntryError::UnknownKind(10)));
}

#[test]
fn a_field_a_kind_does_not_use_must_be_zero() {
    let log = sample_log();
    let empty = log
        .iter()
        .find(|s| s.entry.kind() == EntryKind::Empty)
        .unwrap();
    const FIELDS: [&str; 4] = [
        "stored_size",
        "record_count",
        "retain_until_ns",
        "pruned_at_ns",
    ];
    for field in FIELDS {
        let mut bytes = empty.bytes.clone();
        bytes[field_offset(&empty.entry, field) + 7] = 1;
        assert_eq!(
            Entry::decode(&bytes),
            Err(EntryError::NotApplicable {
                field: FIELDS.iter().find(|f| **f == field).unwrap(),
                kind: "empty"
            }),
            "{field}"
        );
    }
    let mut bytes = empty.bytes.clone();
    bytes[field_offset(&empty.entry, "content_sha256")] = 1;
    assert!(matches!(
        Entry::decode(&bytes),
        Err(EntryError::NotApplicable {
            field: "content_sha256",
            ..
        })
    ));
    let gap = log
        .iter()
        .find(|s| s.entry.kind() == EntryKind::Gap)
        .unwrap();
    let mut bytes = gap.bytes.clone();
    bytes[field_offset(&gap.entry, "sampling") + 3] = 1;
    assert!(matches!(
        Entry::decode(&bytes),
        Err(EntryError::NotApplicable {
            field: "sampling",
            ..
        })
    ));
}

#[test]
fn invalid_codes_names_and_text_are_rejected() {
    let log = sample_log();
    let archive = &log[1];
    let at = |f| field_offset(&archive.entry, f);

    let mut method = archive.bytes.clone();
    method[at("method")] = 0;
    assert!(matches!(
        Entry::decode(&method),
        Err(EntryError::InvalidField {
            field: "method",
            ..
        })
    ));

    let mut sampling = archive.bytes.clone();
    sampling[at("sampling") + 3] = 0;
    assert!(matches!(
        Entry::decode(&sampling),
        Err(EntryError::InvalidField {
            field: "sampling",
            ..
        })
    ));

    // Upper-case letter in the origin: same length, not canonical.
    let mut origin = archive.bytes.clone();
    origin[at("origin") + 2] = b'R';
    assert!(matches!(Entry::decode(&origin), Err(EntryError::Name(_))));

    // A space in the object key.
    let mut key = archive.bytes.clone();
    key[at("object_key") + 2] = b' ';
    assert!(matches!(
        Entry::decode(&key),
        Err(EntryError::InvalidField {
            field: "object_key",
            ..
        })
    ));

    // Invalid UTF-8 in the dataset.
    let mut dataset = archive.bytes.clone();
    dataset[at("dataset") + 2] = 0xff;
    assert!(matches!(
        Entry::decode(&dataset),
        Err(EntryError::InvalidField {
            field: "dataset",
            ..
        })
    ));

    // Window end before start.
    let mut window = archive.bytes.clone();
    window[at("window_end_ns")..at("window_end_ns") + 8].copy_from_slice(&1u64.to_be_bytes());
    assert!(matches!(Entry::decode(&window), Err(EntryError::Name(_))));

    let gap = &log[3];
    let mut reason = gap.bytes.clone();
    reason[field_offset(&gap.entry, "gap_reason")] = 200;
    assert!(matches!(
        Entry::decode(&reason),
        Err(EntryError::InvalidField {
            field: "gap_reason",
            ..
        })
    ));

    let key_entry = &log[0];
    let mut vkey = key_entry.bytes.clone();
    let last = vkey.len() - 41 - 1; // last byte of the key text (before prev hash and sealed_at)
    vkey[last] = if vkey[last] == b'A' { b'B' } else { b'A' };
    assert!(matches!(
        Entry::decode(&vkey),
        Err(EntryError::InvalidField { field: "key", .. })
    ));
}

#[test]
fn a_prune_must_point_backwards() {
    let log = sample_log();
    let prune = log.last().unwrap();
    let mut entry = prune.entry.clone();
    if let EntryBody::Prune(p) = &mut entry.body {
        p.target_index = entry.index;
    }
    assert!(matches!(
        entry.encode(),
        Err(EntryError::InvalidField {
            field: "prune_target_index",
            ..
        })
    ));
}

#[test]
fn encoder_refuses_values_the_decoder_would_refuse() {
    let base = sample_log()[1].entry.clone();
    let with = |change: &dyn Fn(&mut ArchiveRecord)| {
        let mut entry = base.clone();
        let EntryBody::Archive(a) = &mut entry.body else {
            unreachable!()
        };
        change(a);
        entry.encode()
    };
    assert!(
        with(&|a| a.record_count = 0).is_err(),
        "archive with zero records"
    );
    assert!(with(&|a| a.stored_size = 0).is_err(), "empty stored object");
    assert!(
        with(&|a| a.sampling = Sampling::OneIn(0)).is_err(),
        "sampling interval 0"
    );
    assert!(
        with(&|a| a.sampling = Sampling::OneIn(u32::MAX)).is_err(),
        "sampling interval colliding with per-record"
    );
    assert!(
        with(&|a| a.object.key = "x".repeat(1025)).is_err(),
        "object key too long"
    );
    assert!(
        with(&|a| a.object.key = String::new()).is_err(),
        "object key empty"
    );
    assert!(with(&|a| a.sampling = Sampling::OneIn(100)).unwrap().len() < MAX_ENTRY_LEN);
    let mut unsealed = base.clone();
    unsealed.sealed_at_ns = 0;
    assert!(unsealed.encode().is_err(), "sealed_at 0");
}
