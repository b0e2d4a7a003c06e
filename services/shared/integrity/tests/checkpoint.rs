//! Checkpoints: signing, opening with pinned keys, and every rejection an auditor relies on.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use rainlogs_integrity::*;

fn sample_tree() -> (MemoryTree, Vec<SealedEntry>) {
    let log = sample_log();
    let mut tree = MemoryTree::new();
    for sealed in &log {
        tree.push(&sealed.bytes).unwrap();
    }
    (tree, log)
}

fn checkpoint_at(tree: &MemoryTree, size: u64) -> Checkpoint {
    Checkpoint::new(origin(), size, tree.root_at(size).unwrap())
}

#[test]
fn a_signed_checkpoint_opens_with_the_pinned_key() {
    let (tree, _) = sample_tree();
    let cp = checkpoint_at(&tree, 6);
    let note = sign_checkpoint(&cp, &test_key()).unwrap();
    let opened = open_checkpoint(note.as_bytes(), &origin(), &[test_key().verifier_key()]).unwrap();
    assert_eq!(opened.checkpoint, cp);
    assert_eq!(opened.signed_by, vec![test_key().verifier_key()]);
    assert!(opened.unknown_signers.is_empty());
    assert!(note.starts_with(&format!(
        "{}\n6\n{}\n\n— {} ",
        origin(),
        cp.root.to_base64(),
        TEST_KEY_NAME
    )));
}

#[test]
fn go_note_vector_verifies_through_the_same_note_code() {
    // Note and key published with Go's golang.org/x/mod/sumdb/note: an independent signer.
    let vkey = NoteVerifierKey::parse(
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    )
    .unwrap();
    let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    let sig = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=";
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(sig)
        .unwrap();
    assert_eq!(
        u32::from_be_bytes(raw[..4].try_into().unwrap()),
        vkey.key_id()
    );
    assert!(vkey.verify(text.as_bytes(), &raw[4..]));
    let signer = NoteSigningKey::parse(
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
    )
    .unwrap();
    assert_eq!(signer.sign(text.as_bytes()).as_slice(), &raw[4..]);
}

#[test]
fn a_checkpoint_signed_by_an_unknown_key_is_rejected() {
    let (tree, _) = sample_tree();
    let note = sign_checkpoint(&checkpoint_at(&tree, 6), &other_key()).unwrap();
    assert_eq!(
        open_checkpoint(note.as_bytes(), &origin(), &[test_key().verifier_key()]),
        Err(CheckpointError::UnknownKey)
    );
    assert_eq!(
        open_checkpoint(note.as_bytes(), &origin(), &[]),
        Err(CheckpointError::UnknownKey)
    );
}

#[test]
fn an_edited_checkpoint_fails_its_signature() {
    let (tree, _) = sample_tree();
    let note = sign_checkpoint(&checkpoint_at(&tree, 6), &test_key()).unwrap();
    // Roll the size back (tail truncation) while keeping the signature.
    let forged = note.replacen("\n6\n", "\n5\n", 1);
    assert!(matches!(
        open_checkpoint(forged.as_bytes(), &origin(), &[test_key().verifier_key()]),
        Err(CheckpointError::BadSignature { .. })
    ));
    // Flip one bit of the signature.
    let sig_start = note.rfind(' ').unwrap() + 1;
    let mut bytes = note.clone().into_bytes();
    bytes[sig_start + 10] = if bytes[sig_start + 10] == b'A' {
        b'B'
    } else {
        b'A'
    };
    assert!(matches!(
        open_checkpoint(&bytes, &origin(), &[test_key().verifier_key()]),
        Err(CheckpointError::BadSignature { .. })
    ));
}

#[test]
fn a_checkpoint_of_another_zone_is_rejected() {
    let other_origin = Origin::parse("rainlogs/acme/ffffffffffffffffffffffffffffffff").unwrap();
    let (tree, _) = sample_tree();
    let cp = Checkpoint::new(other_origin, 6, tree.root().unwrap());
    let note = sign_checkpoint(&cp, &test_key()).unwrap();
    assert!(matches!(
        open_checkpoint(note.as_bytes(), &origin(), &[test_key().verifier_key()]),
        Err(CheckpointError::WrongOrigin { .. })
    ));
}

#[test]
fn malformed_notes_are_rejected() {
    let (tree, _) = sample_tree();
    let note = sign_checkpoint(&checkpoint_at(&tree, 6), &test_key()).unwrap();
    let keys = [test_key().verifier_key()];
    let cases: Vec<(String, &str)> = vec![
        (note.replace("\n\n", "\n"), "no blank line"),
        (note.trim_end().to_owned(), "no final newline"),
        (note.replace('—', "-"), "ascii dash"),
        (format!("{note}garbage\n"), "garbage signature line"),
        (note.replace("\n6\n", "\n06\n"), "leading zero size"),
        (note.replacen('\n', "\r\n", 1), "control character"),
        (String::new(), "empty"),
    ];
    for (text, what) in cases {
        let err = open_checkpoint(text.as_bytes(), &origin(), &keys).unwrap_err();
        assert!(
            matches!(
                err,
                CheckpointError::MalformedNote
                    | CheckpointError::MalformedBody
                    | CheckpointError::BadSignature { .. }
            ),
            "{what}: {err:?}"
        );
    }
}

#[test]
fn extra_signatures_from_unknown_keys_are_ignored() {
    let (tree, _) = sample_tree();
    let cp = checkpoint_at(&tree, 6);
    let ours = sign_checkpoint(&cp, &test_key()).unwrap();
    let witness = NoteSigningKey::from_seed("witness.example/w1", &[9; 32]).unwrap();
    let theirs = sign_checkpoint(&cp, &witness).unwrap();
    let witness_line = theirs.rsplit_once("\n\n").unwrap().1;
    let cosigned = format!("{ours}{witness_line}");
    let opened =
        open_checkpoint(cosigned.as_bytes(), &origin(), &[test_key().verifier_key()]).unwrap();
    assert_eq!(
        opened.unknown_signers,
        vec![format!("witness.example/w1+{:08x}", witness.key_id())]
    );
}

#[test]
fn the_sealer_refuses_to_sign_an_inconsistent_checkpoint() {
    let (tree, log) = sample_tree();
    let old = checkpoint_at(&tree, 3);
    let new = checkpoint_at(&tree, 6);
    let proof = tree.consistency_proof(3, 6).unwrap();
    sign_consistent_checkpoint(Some(&old), &new, &proof, &test_key()).unwrap();
    sign_consistent_checkpoint(None, &new, &[], &test_key()).unwrap();

    // History rewritten: entry 1 replaced, tree regrown to size 6.
    let mut forked = MemoryTree::new();
    for (i, sealed) in log.iter().enumerate() {
        forked
            .push(if i == 1 {
                b"forged".as_slice()
            } else {
                &sealed.bytes
            })
            .unwrap();
    }
    let fork_cp = Checkpoint::new(origin(), 6, forked.root().unwrap());
    let fork_proof = forked.consistency_proof(3, 6).unwrap();
    assert!(matches!(
        sign_consistent_checkpoint(Some(&old), &fork_cp, &fork_proof, &test_key()),
        Err(CheckpointError::Inconsistent(_))
    ));
    // Rolling back is never consistent.
    assert!(matches!(
        sign_consistent_checkpoint(Some(&new), &old, &[], &test_key()),
        Err(CheckpointError::Inconsistent(
            MerkleError::SizeDecreased { .. }
        ))
    ));
    let other_origin = Origin::parse("rainlogs/other/zone").unwrap();
    let moved = Checkpoint::new(other_origin, 6, new.root);
    assert!(matches!(
        check_consistent(&old, &moved, &proof),
        Err(CheckpointError::OriginChanged { .. })
    ));
}

#[test]
fn checkpoint_bodies_parse_strictly() {
    let (tree, _) = sample_tree();
    let mut cp = checkpoint_at(&tree, 6);
    cp.extensions = vec!["ext one".into()];
    let body = cp.to_body().unwrap();
    assert_eq!(Checkpoint::parse_body(body.as_bytes()).unwrap(), cp);
    assert!(Checkpoint::parse_body(b"rainlogs/acme/z\n1\nAAAA\n").is_err());
    assert!(
        Checkpoint::parse_body(format!("example.com/log\n6\n{}\n", cp.root.to_base64()).as_bytes())
            .is_err()
    );
    cp.extensions = vec![String::new()];
    assert!(cp.to_body().is_err());
}
