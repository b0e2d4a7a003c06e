//! Chain: sealing, verification from genesis, and detection of reordering, removal, insertion,
//! edits and cross-log substitution.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use rainlogs_integrity::*;

fn verify_all(origin: &Origin, entries: &[Vec<u8>]) -> Result<Sha256Hash, ChainError> {
    let mut chain = Chain::new(origin.clone());
    for bytes in entries {
        chain.verify_next(bytes)?;
    }
    Ok(chain.head())
}

fn bytes(log: &[SealedEntry]) -> Vec<Vec<u8>> {
    log.iter().map(|s| s.bytes.clone()).collect()
}

#[test]
fn a_sealed_log_verifies_from_genesis_to_the_same_head() {
    let log = sample_log();
    let head = verify_all(&origin(), &bytes(&log)).unwrap();
    assert_eq!(head, log.last().unwrap().chain_hash);
    assert_eq!(log[0].entry.prev_chain_hash, genesis(&origin()));
    for pair in log.windows(2) {
        assert_eq!(pair[1].entry.prev_chain_hash, pair[0].chain_hash);
    }
    for sealed in &log {
        let expected = chain_hash(
            &sealed.entry.prev_chain_hash,
            &sealed.entry.body.chain_object_sha256(),
            &sealed.id,
        );
        assert_eq!(sealed.chain_hash, expected);
        assert_eq!(SealedEntry::from_bytes(&sealed.bytes).unwrap(), *sealed);
    }
}

#[test]
fn reordering_is_detected() {
    let mut entries = bytes(&sample_log());
    entries.swap(2, 3);
    assert!(matches!(
        verify_all(&origin(), &entries),
        Err(ChainError::WrongIndex {
            expected: 2,
            found: 3
        })
    ));
}

#[test]
fn removal_is_detected() {
    let mut entries = bytes(&sample_log());
    entries.remove(2);
    assert!(matches!(
        verify_all(&origin(), &entries),
        Err(ChainError::WrongIndex {
            expected: 2,
            found: 3
        })
    ));
}

#[test]
fn a_re_sealed_replacement_entry_breaks_the_link() {
    // An attacker rewrites entry 2 and fixes up its index, but cannot fix entry 3's link
    // without rewriting all later entries (which the Merkle root then exposes).
    let log = sample_log();
    let mut chain = Chain::after(&log[1]);
    let forged = chain.seal(gap_body(), log[2].entry.sealed_at_ns).unwrap();
    let mut entries = bytes(&log);
    entries[2] = forged.bytes;
    assert!(matches!(
        verify_all(&origin(), &entries),
        Err(ChainError::BrokenLink { index: 3, .. })
    ));
}

#[test]
fn entries_of_another_zone_are_rejected() {
    let other = Origin::parse("rainlogs/acme/ffffffffffffffffffffffffffffffff").unwrap();
    assert!(matches!(
        verify_all(&other, &bytes(&sample_log())),
        Err(ChainError::WrongOrigin { index: 0, .. })
    ));
}

#[test]
fn chain_resumes_after_the_last_entry() {
    let log = sample_log();
    let mut resumed = Chain::after(&SealedEntry::from_bytes(&log[3].bytes).unwrap());
    assert_eq!(resumed.next_index(), 4);
    let next = resumed.seal(empty_body(), T0 + DAY).unwrap();
    let mut entries = bytes(&log[..4]);
    entries.push(next.bytes);
    assert_eq!(verify_all(&origin(), &entries).unwrap(), next.chain_hash);
}
