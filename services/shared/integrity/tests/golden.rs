//! Golden files freeze every encoding; docs/FORMAT.md quotes them verbatim.
//!
//! A change to any encoding fails `golden_files_match_the_code`. If the change is intended (it
//! needs a new format version), regenerate with `RAINLOGS_UPDATE_GOLDEN=1 cargo test -p
//! rainlogs-integrity --test golden` and update the quotes in docs/FORMAT.md, which
//! `format_doc_quotes_every_golden_file` checks.
#![allow(clippy::unwrap_used)]

mod common;

use std::fmt::Write as _;
use std::path::PathBuf;

use common::*;
use rainlogs_integrity::chain::GENESIS_PREFIX;
use rainlogs_integrity::entry::annotate;
use rainlogs_integrity::layout::{object_id, window_label};
use rainlogs_integrity::tiles::tiles_for_growth;
use rainlogs_integrity::*;

fn wrap_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
        .as_bytes()
        .chunks(64)
        .map(|c| format!("  {}\n", std::str::from_utf8(c).unwrap()))
        .collect()
}

fn keys() -> String {
    let key = test_key();
    let seed = Sha256Hash::digest(b"rainlogs test key v1");
    format!(
        "key name:     {}\nseed:         {} (SHA-256 of \"rainlogs test key v1\")\npublic key:   {}\nkey id:       {:08x}\nverifier key: {}\nsigner key:   {}\n",
        key.name(),
        seed.to_hex(),
        hex::encode(key.verifier_key().public_key()),
        key.key_id(),
        key.verifier_key(),
        key.to_private_text().as_str(),
    )
}

fn entries() -> String {
    let mut out = String::new();
    for sealed in sample_log() {
        writeln!(
            out,
            "entry {} ({}), {} bytes\nentry id: {}\n{}",
            sealed.entry.index,
            sealed.entry.kind().as_str(),
            sealed.bytes.len(),
            sealed.id,
            wrap_hex(&sealed.bytes)
        )
        .unwrap();
    }
    out
}

/// An erasure entry sealed after the sample log (it is not part of it, so the sample's tree and
/// checkpoint stay as they are).
fn erasure_entry() -> String {
    let log = sample_log();
    let last = log.last().unwrap();
    let mut chain = Chain::after(last);
    let sealed = chain
        .seal(EntryBody::Erasure, last.entry.sealed_at_ns + 60_000_000_000)
        .unwrap();
    format!(
        "entry {} ({}), {} bytes\nentry id: {}\nprev_chain_hash: {}\n{}",
        sealed.entry.index,
        sealed.entry.kind().as_str(),
        sealed.bytes.len(),
        sealed.id,
        sealed.entry.prev_chain_hash,
        wrap_hex(&sealed.bytes)
    )
}

/// A late entry sealed after the sample log: records of window 1 (entry 2, sealed `empty`) that arrived
/// after that window was sealed. Its chain link uses the stored SHA-256, as an archive entry's does.
fn late_entry() -> String {
    linked_entry(&late_after_sample_log(), "stored_sha256")
}

/// One entry sealed after the sample log, with its link of the chain; `object` names the middle
/// term of the chain formula (FORMAT.md §5).
fn linked_entry(sealed: &SealedEntry, object: &str) -> String {
    format!(
        "entry {} ({}), {} bytes\nentry id: {}\nprev_chain_hash: {}\nchain hash: {} = SHA-256(prev_chain_hash ∥ {object} ∥ entry id)\n{}",
        sealed.entry.index,
        sealed.entry.kind().as_str(),
        sealed.bytes.len(),
        sealed.id,
        sealed.entry.prev_chain_hash,
        sealed.chain_hash,
        wrap_hex(&sealed.bytes)
    )
}

fn annotated_late() -> String {
    annotate(&late_after_sample_log().entry).unwrap()
}

/// A shortfall entry sealed after the late entry: the source counted 40 records for window 1, which the
/// log holds 2 of (the late entry's). It holds no object, so its chain link uses 32 zero bytes.
fn shortfall_entry() -> String {
    linked_entry(&shortfall_after_late(), "32 zero bytes")
}

fn annotated_shortfall() -> String {
    annotate(&shortfall_after_late().entry).unwrap()
}

/// An archive with client addresses sealed after the shortfall (entry 8), and its index entry (entry 9):
/// the chain link of an index entry uses the index object's SHA-256.
fn indexed_entries() -> String {
    format!(
        "{}\n{}",
        linked_entry(&indexed_archive(), "stored_sha256"),
        linked_entry(
            &index_after_archive(),
            "stored_sha256 (of the index object)"
        )
    )
}

fn annotated_index_entry() -> String {
    annotate(&index_after_archive().entry).unwrap()
}

/// The index object of entry 8's archive (FORMAT.md §12), as hex and field by field.
fn index_object_golden() -> String {
    let bytes = index_object();
    let index = rainlogs_index::ArchiveIndex::decode(&bytes).unwrap();
    let frame = &index.frames[0];
    let mut out = format!(
        "index object of {}, {} bytes, SHA-256 {}\n{}\n",
        index_after_archive()
            .entry
            .body
            .named_window()
            .map(|w| format!("[{}, {})", w.start_ns(), w.end_ns()))
            .unwrap(),
        bytes.len(),
        Sha256Hash::digest(&bytes),
        wrap_hex(&bytes)
    );
    let networks = &frame.keys.networks;
    out.push_str(&format!(
        "frame 0: stored [{}, +{}), content [{}, +{}), first record {}, {} records\n\
         content sha256: {}\ntime: {:?}\n\
         ray ids: {} in {} bytes: {}\n\
         ipv4 /24 networks: {:x?} in {} bytes\nipv6 /48 networks: {:x?} in {} bytes\n",
        frame.location.stored_offset,
        frame.location.stored_len,
        frame.location.content_offset,
        frame.location.content_len,
        frame.location.first_record,
        frame.keys.records,
        Sha256Hash(frame.content_sha256),
        frame.keys.time.unwrap(),
        frame.keys.rays,
        frame.keys.ray_set.len(),
        hex::encode(&frame.keys.ray_set),
        networks.v4,
        rainlogs_index::ip::encode_sorted(&networks.v4).len(),
        networks.v6,
        rainlogs_index::ip::encode_sorted(&networks.v6).len(),
    ));
    let fingerprints: Vec<String> = ["8f0a1b2c3d4e5f80", "8f0a1b2c3d4e5f81", "8f0a1b2c3d4e5f82"]
        .iter()
        .map(|ray| {
            let id = rainlogs_index::RayId::parse(ray).unwrap();
            format!("{ray} → {}", id.fingerprint(u64::from(frame.keys.rays)))
        })
        .collect();
    out.push_str(&format!(
        "fingerprints (of {} in [0, {} × 1533)): {}\n",
        frame.keys.rays,
        frame.keys.rays,
        fingerprints.join(", ")
    ));
    out
}

/// The key of the late object of [`late_entry`] (FORMAT.md §2).
fn late_object_key() -> String {
    let content_sha256 = Sha256Hash::digest(LATE_CONTENT);
    format!(
        "prefix:         {}\norigin:         {}\ndataset:        {}\nwindow:         [{}, {}) ns\ncontent sha256: {}\nwindow label:   {}\nobject id:      {}\nlate key:       {}\n",
        prefix(),
        origin(),
        dataset(),
        window(1).start_ns(),
        window(1).end_ns(),
        content_sha256,
        window_label(&window(1)).unwrap(),
        object_id(&origin(), &dataset(), &window(1), &content_sha256),
        late_key(&dataset(), &window(1), &content_sha256),
    )
}

fn annotated_archive() -> String {
    annotate(&sample_log()[1].entry).unwrap()
}

fn chain() -> String {
    let mut out = format!(
        "origin:  {}\ngenesis: {} = SHA-256({:?} ∥ origin)\n\n",
        origin(),
        genesis(&origin()),
        std::str::from_utf8(GENESIS_PREFIX).unwrap()
    );
    for sealed in sample_log() {
        writeln!(
            out,
            "entry {} ({})\n  prev:       {}\n  object:     {}\n  entry id:   {}\n  chain hash: {}",
            sealed.entry.index,
            sealed.entry.kind().as_str(),
            sealed.entry.prev_chain_hash,
            sealed.entry.body.chain_object_sha256(),
            sealed.id,
            sealed.chain_hash
        )
        .unwrap();
    }
    out
}

fn sample_tree() -> MemoryTree {
    let mut tree = MemoryTree::new();
    for sealed in sample_log() {
        tree.push(&sealed.bytes).unwrap();
    }
    tree
}

fn merkle() -> String {
    let tree = sample_tree();
    let mut out = String::from("leaf hashes (SHA-256(0x00 ∥ entry bytes)):\n");
    for i in 0..tree.size() {
        writeln!(out, "  leaf {i}: {}", tree.leaf(i).unwrap()).unwrap();
    }
    out.push_str("roots:\n");
    for size in 0..=tree.size() {
        writeln!(out, "  size {size}: {}", tree.root_at(size).unwrap()).unwrap();
    }
    out.push_str("inclusion proof of leaf 2 in size 6:\n");
    for h in tree.inclusion_proof(2, 6).unwrap() {
        writeln!(out, "  {h}").unwrap();
    }
    out.push_str("consistency proof from size 3 to size 6:\n");
    for h in tree.consistency_proof(3, 6).unwrap() {
        writeln!(out, "  {h}").unwrap();
    }
    out
}

fn checkpoint() -> String {
    let tree = sample_tree();
    let cp = Checkpoint::new(origin(), tree.size(), tree.root().unwrap());
    sign_checkpoint(&cp, &test_key()).unwrap()
}

fn tiles() -> String {
    let mut writer = TileWriter::new();
    for sealed in sample_log() {
        writer.append(&sealed.bytes).unwrap();
    }
    let mut out =
        String::from("files for the 6-entry sample log (path, size, SHA-256 of contents):\n");
    for file in writer.take_tiles().unwrap() {
        writeln!(
            out,
            "  {} {} {}",
            file.path(),
            file.data.len(),
            Sha256Hash::digest(&file.data)
        )
        .unwrap();
    }
    out.push_str("new files when a log grows from 69990 to 70000 entries:\n");
    for id in tiles_for_growth(69_990, 70_000).unwrap() {
        writeln!(out, "  {id}").unwrap();
    }
    out.push_str("partial tiles needed to resume a log of 70000 entries:\n");
    for id in TileWriter::resume_tiles(70_000) {
        writeln!(out, "  {id}").unwrap();
    }
    out
}

fn object_key() -> String {
    let content_sha256 = Sha256Hash::digest(SAMPLE_CONTENT);
    format!(
        "prefix:         {}\norigin:         {}\ndataset:        {}\nwindow:         [{}, {}) ns\ncontent sha256: {}\nwindow label:   {}\nobject id:      {}\nobject key:     {}\ntlog prefix:    {}\ncheckpoint:     {}\nhistory:        {}\n",
        prefix(),
        origin(),
        dataset(),
        window(0).start_ns(),
        window(0).end_ns(),
        content_sha256,
        window_label(&window(0)).unwrap(),
        object_id(&origin(), &dataset(), &window(0), &content_sha256),
        prefix()
            .archive_key(&origin(), &dataset(), &window(0), &content_sha256)
            .unwrap(),
        prefix().tlog_prefix(&origin()),
        prefix().checkpoint_key(&origin()),
        prefix().checkpoint_history_key(&origin(), 6),
    )
}

fn goldens() -> Vec<(&'static str, String)> {
    vec![
        ("keys.txt", keys()),
        ("entries.txt", entries()),
        ("entry-erasure.txt", erasure_entry()),
        ("entry-archive-annotated.txt", annotated_archive()),
        ("chain.txt", chain()),
        ("merkle.txt", merkle()),
        ("checkpoint.txt", checkpoint()),
        ("tiles.txt", tiles()),
        ("object-key.txt", object_key()),
        ("entry-late.txt", late_entry()),
        ("entry-late-annotated.txt", annotated_late()),
        ("object-key-late.txt", late_object_key()),
        ("entry-shortfall.txt", shortfall_entry()),
        ("entry-shortfall-annotated.txt", annotated_shortfall()),
        ("entries-indexed.txt", indexed_entries()),
        ("entry-index-annotated.txt", annotated_index_entry()),
        ("index-object.txt", index_object_golden()),
    ]
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn golden_files_match_the_code() {
    let update = std::env::var_os("RAINLOGS_UPDATE_GOLDEN").is_some();
    let mut changed = Vec::new();
    for (name, rendered) in goldens() {
        let path = golden_dir().join(name);
        if update {
            std::fs::write(&path, &rendered).unwrap();
            continue;
        }
        let stored =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if stored != rendered {
            changed.push(format!(
                "--- {name} (golden)\n{stored}\n+++ {name} (code)\n{rendered}"
            ));
        }
    }
    assert!(
        changed.is_empty(),
        "encodings changed (a format change needs a new version):\n{}",
        changed.join("\n")
    );
}

#[test]
fn golden_checkpoint_opens_and_golden_entries_verify() {
    let note = std::fs::read(golden_dir().join("checkpoint.txt")).unwrap();
    let opened = open_checkpoint(&note, &origin(), &[test_key().verifier_key()]).unwrap();
    assert_eq!(opened.checkpoint.size, 6);
    assert_eq!(opened.checkpoint.root, sample_tree().root().unwrap());
}

#[test]
fn format_doc_quotes_every_golden_file() {
    let doc_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../docs/FORMAT.md");
    let doc = std::fs::read_to_string(&doc_path)
        .unwrap_or_else(|e| panic!("{}: {e}", doc_path.display()));
    let mut missing = Vec::new();
    for (name, _) in goldens() {
        let golden = std::fs::read_to_string(golden_dir().join(name)).unwrap();
        if !doc.contains(golden.trim_end()) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/FORMAT.md does not quote these golden files verbatim: {missing:?}"
    );
}

#[test]
fn an_independent_python_verifier_rederives_the_golden_values() {
    // tests/independent/verify_golden.py re-implements docs/FORMAT.md with Python's standard
    // library only; agreement shows the document is enough to build a verifier.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let output = std::process::Command::new("python3")
        .arg(dir.join("tests/independent/verify_golden.py"))
        .arg(golden_dir())
        .output()
        .expect("python3 is required for this test (apt-get install python3)");
    assert!(
        output.status.success(),
        "independent verifier disagrees:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
