//! RFC 6962 roots and proofs cross-checked against ct-merkle (an independent implementation),
//! and tile-based state/proofs cross-checked against the in-memory tree.
#![allow(clippy::unwrap_used)]

mod common;

use common::synthetic_leaves;
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use rainlogs_integrity::merkle::{EMPTY_ROOT, node_hash};
use rainlogs_integrity::tiles::tiles_for_growth;
use rainlogs_integrity::*;
use sha2_next::Sha256 as CtSha256;

type CtTree = MemoryBackedTree<CtSha256, Vec<u8>>;

fn ct_root(tree: &CtTree) -> Sha256Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(tree.root().as_bytes());
    Sha256Hash(out)
}

fn flat(proof: &[Sha256Hash]) -> Vec<u8> {
    proof.iter().flat_map(|h| h.0).collect()
}

fn ct_root_hash(root: &Sha256Hash, size: u64) -> RootHash<CtSha256> {
    RootHash::new(root.0.into(), size)
}

/// Sizes around every power of two up to 2^9, plus a few larger ones.
fn sizes() -> Vec<u64> {
    let mut sizes: Vec<u64> = (1..=70).collect();
    for p in 7..=9 {
        let b = 1u64 << p;
        sizes.extend([b - 1, b, b + 1]);
    }
    sizes.extend([300, 511, 600, 1000, 1100]);
    sizes
}

#[test]
fn roots_and_proofs_match_ct_merkle() {
    let leaves = synthetic_leaves(1100);
    let mut ours = MemoryTree::new();
    let mut theirs = CtTree::new();
    let mut sizes = sizes();
    sizes.sort();
    let mut built = 0u64;
    assert_eq!(ours.root().unwrap(), EMPTY_ROOT);
    for &size in &sizes {
        while built < size {
            ours.push(&leaves[built as usize]).unwrap();
            theirs.push(leaves[built as usize].clone());
            built += 1;
        }
        let root = ours.root().unwrap();
        assert_eq!(root, ct_root(&theirs), "root at size {size}");
        let ct_root = ct_root_hash(&root, size);

        let indexes: Vec<u64> = if size <= 70 {
            (0..size).collect()
        } else {
            vec![0, 1, size / 3, size / 2, size - 2, size - 1]
        };
        for index in indexes {
            let proof = ours.inclusion_proof(index, size).unwrap();
            let reference = theirs.prove_inclusion(index as usize);
            assert_eq!(
                flat(&proof),
                reference.as_bytes(),
                "inclusion {index}/{size}"
            );
            let leaf = &leaves[index as usize];
            verify_inclusion(&leaf_hash(leaf), index, size, &root, &proof).unwrap();
            ct_root
                .verify_inclusion(leaf, index, &InclusionProof::from_bytes(flat(&proof)))
                .unwrap();
        }

        let olds: Vec<u64> = if size <= 70 {
            (1..size).collect()
        } else {
            vec![1, 2, size / 2, size - 1]
        };
        for old in olds {
            let proof = ours.consistency_proof(old, size).unwrap();
            let reference = theirs.prove_consistency((size - old) as usize);
            assert_eq!(
                flat(&proof),
                reference.as_bytes(),
                "consistency {old}->{size}"
            );
            let old_root = ours.root_at(old).unwrap();
            verify_consistency(old, &old_root, size, &root, &proof).unwrap();
            ct_root
                .verify_consistency(
                    &ct_root_hash(&old_root, old),
                    &ConsistencyProof::try_from_bytes(flat(&proof)).unwrap(),
                )
                .unwrap();
        }
    }
}

#[test]
fn tampered_proofs_and_leaves_fail() {
    let leaves = synthetic_leaves(37);
    let mut tree = MemoryTree::new();
    for leaf in &leaves {
        tree.push(leaf).unwrap();
    }
    let root = tree.root().unwrap();
    let proof = tree.inclusion_proof(10, 37).unwrap();
    let leaf = leaf_hash(&leaves[10]);
    assert!(verify_inclusion(&leaf_hash(&leaves[11]), 10, 37, &root, &proof).is_err());
    assert!(verify_inclusion(&leaf, 11, 37, &root, &proof).is_err());
    // (The same path can also fit another size with the same shape, e.g. 36; the size comes
    // from the signed checkpoint, never from the proof.)
    assert!(verify_inclusion(&leaf, 10, 20, &root, &proof).is_err());
    assert!(verify_inclusion(&leaf, 37, 37, &root, &proof).is_err());
    let mut bad = proof.clone();
    bad[0].0[0] ^= 1;
    assert!(verify_inclusion(&leaf, 10, 37, &root, &bad).is_err());
    assert!(verify_inclusion(&leaf, 10, 37, &root, &proof[..proof.len() - 1]).is_err());

    let old_root = tree.root_at(20).unwrap();
    let cproof = tree.consistency_proof(20, 37).unwrap();
    verify_consistency(20, &old_root, 37, &root, &cproof).unwrap();
    assert!(verify_consistency(20, &root, 37, &root, &cproof).is_err());
    assert!(verify_consistency(21, &old_root, 37, &root, &cproof).is_err());
    assert!(verify_consistency(37, &old_root, 20, &root, &cproof).is_err());
    assert!(matches!(
        verify_consistency(37, &root, 37, &old_root, &[]),
        Err(MerkleError::RootMismatch { size: 37 })
    ));
    // A rewritten history (one leaf changed) is not consistent with the old root.
    let mut forked = MemoryTree::new();
    for (i, leaf) in leaves.iter().enumerate() {
        if i == 5 {
            forked.push(b"forged").unwrap();
        } else {
            forked.push(leaf).unwrap();
        }
    }
    let fork_proof = forked.consistency_proof(20, 37).unwrap();
    assert!(verify_consistency(20, &old_root, 37, &forked.root().unwrap(), &fork_proof).is_err());
}

#[test]
fn tile_writer_matches_the_memory_tree_at_every_size() {
    let leaves = synthetic_leaves(1300);
    let mut tree = MemoryTree::new();
    let mut writer = TileWriter::new();
    let mut stored = TileSet::new();
    let mut paths = std::collections::BTreeSet::new();
    for (i, leaf) in leaves.iter().enumerate() {
        tree.push(leaf).unwrap();
        assert_eq!(writer.append(leaf).unwrap(), leaf_hash(leaf));
        assert_eq!(
            writer.root(),
            tree.root().unwrap(),
            "root at size {}",
            i + 1
        );
        // Publish at irregular intervals, as a sealer batching windows would.
        if i % 7 == 3 || i % 251 == 0 {
            let size = writer.size();
            for file in writer.take_tiles().unwrap() {
                assert!(
                    paths.insert(file.path()),
                    "path written twice: {}",
                    file.path()
                );
                stored.insert(file.id, &file.data).unwrap();
            }
            let expected: std::collections::BTreeSet<_> = tiles_for_growth(0, size)
                .unwrap()
                .iter()
                .map(TileId::path)
                .collect();
            assert!(expected.is_subset(&paths), "missing tiles at size {size}");
            // A writer resumed from storage continues with the same state.
            let resumed = TileWriter::resume(size, &writer.root(), &stored).unwrap();
            assert_eq!(resumed.root(), writer.root());
        }
    }
    // Full tiles hold exactly the RFC 6962 subtree hashes.
    let size = writer.size();
    let mut level1 = Vec::new();
    for n in 0..(size / 256) {
        let id = TileId::new(TileKind::Hashes { level: 0 }, n, 256).unwrap();
        let data = stored.hash_tile(&id).unwrap();
        for (j, chunk) in data.chunks(32).enumerate() {
            assert_eq!(chunk, tree.leaf(n * 256 + j as u64).unwrap().0);
        }
        let mut sub = MemoryTree::new();
        for j in 0..256 {
            sub.push_leaf_hash(tree.leaf(n * 256 + j).unwrap()).unwrap();
        }
        level1.push(sub.root().unwrap());
    }
    let id = TileId::new(TileKind::Hashes { level: 1 }, 0, (size / 256) as u16).unwrap();
    let data = stored.hash_tile(&id).unwrap();
    assert_eq!(data, level1.iter().flat_map(|h| h.0).collect::<Vec<_>>());
    let bundle = TileId::new(TileKind::Entries, 2, 256).unwrap();
    assert_eq!(stored.entries(&bundle).unwrap(), &leaves[512..768]);
}

#[test]
fn resume_rejects_tiles_that_do_not_match_the_checkpoint() {
    let leaves = synthetic_leaves(300);
    let mut writer = TileWriter::new();
    for leaf in &leaves {
        writer.append(leaf).unwrap();
    }
    let root = writer.root();
    let files = writer.take_tiles().unwrap();
    let mut good = TileSet::new();
    for f in &files {
        good.insert(f.id, &f.data).unwrap();
    }
    assert!(TileWriter::resume(300, &root, &good).is_ok());
    assert!(matches!(
        TileWriter::resume(300, &node_hash(&root, &root), &good),
        Err(TileError::Inconsistent)
    ));
    assert!(matches!(
        TileWriter::resume(300, &root, &TileSet::new()),
        Err(TileError::Missing { .. })
    ));
    // A bundle whose entries do not hash to the level-0 tile is caught.
    let mut bad = TileSet::new();
    for f in &files {
        if f.id.kind() == TileKind::Entries && f.id.is_partial() {
            let mut entries =
                rainlogs_integrity::tiles::decode_entry_bundle(&f.id, &f.data).unwrap();
            entries[0] = b"forged".to_vec();
            let data = rainlogs_integrity::tiles::encode_entry_bundle(&entries).unwrap();
            bad.insert(f.id, &data).unwrap();
        } else {
            bad.insert(f.id, &f.data).unwrap();
        }
    }
    assert!(matches!(
        TileWriter::resume(300, &root, &bad),
        Err(TileError::Inconsistent)
    ));
}

/// Runs the fetch loop of a proof-from-tiles call against a store of tile files.
fn fetch_loop(
    store: &std::collections::HashMap<String, Vec<u8>>,
    mut call: impl FnMut(&TileSet) -> Result<TileProof, TileError>,
) -> Result<Proof, TileError> {
    let mut set = TileSet::new();
    for _ in 0..3 {
        match call(&set)? {
            TileProof::Complete(proof) => return Ok(proof),
            TileProof::NeedTiles(ids) => {
                for id in ids {
                    let data = store
                        .get(&id.path())
                        .expect("tile requested that was never written");
                    set.insert(id, data)?;
                }
            }
        }
    }
    panic!("proof not complete after fetching the requested tiles")
}

#[test]
fn proofs_from_tiles_equal_proofs_from_memory() {
    let leaves = synthetic_leaves(1100);
    let mut tree = MemoryTree::new();
    let mut writer = TileWriter::new();
    let mut store = std::collections::HashMap::new();
    let mut checkpoints = Vec::new();
    for (i, leaf) in leaves.iter().enumerate() {
        tree.push(leaf).unwrap();
        writer.append(leaf).unwrap();
        if [0usize, 1, 2, 255, 256, 257, 600, 1023, 1024, 1099].contains(&i) {
            for f in writer.take_tiles().unwrap() {
                store.insert(f.path(), f.data);
            }
            checkpoints.push((writer.size(), writer.root()));
        }
    }
    for &(size, root) in &checkpoints {
        for index in [0, size / 2, size - 1] {
            let proof = fetch_loop(&store, |set| {
                rainlogs_integrity::tiles::inclusion_proof_from_tiles(index, size, &root, set)
            })
            .unwrap();
            assert_eq!(
                proof,
                tree.inclusion_proof(index, size).unwrap(),
                "{index}/{size}"
            );
        }
        for &(old, _) in &checkpoints {
            if old > size {
                continue;
            }
            let old_root = tree.root_at(old).unwrap();
            let proof = fetch_loop(&store, |set| {
                rainlogs_integrity::tiles::consistency_proof_from_tiles(
                    old, &old_root, size, &root, set,
                )
            })
            .unwrap();
            assert_eq!(
                proof,
                tree.consistency_proof(old, size).unwrap(),
                "{old}->{size}"
            );
        }
    }
    // A wrong trusted root makes the tiles fail authentication instead of yielding a proof.
    let (size, root) = checkpoints[5];
    let err = fetch_loop(&store, |set| {
        rainlogs_integrity::tiles::inclusion_proof_from_tiles(
            3,
            size,
            &node_hash(&root, &root),
            set,
        )
    })
    .unwrap_err();
    assert_eq!(err, TileError::Inconsistent);
}
