//! Proof regression against the committed fixtures in `fixtures/data` (regenerate deliberately
//! with `make fixtures`): the committed proofs verify against the committed vk; the dev-seed
//! setup reproduces that vk and the seeded prover those proofs byte for byte; the committed
//! batches are what the fixture history builds today; constraint counts and shape hashes equal
//! the snapshot; and every mutated proof, public input and batch datum is rejected.

use std::path::{Path, PathBuf};

use ark_bn254::Fr;
use ark_ff::One;
use veil_circuits::batch::file::{BatchFile, BatchFileError};
use veil_circuits::batch::BatchShape;
use veil_prover::keys::{self, KeyKind};
use veil_prover::proof::{proof_from_bytes, proof_to_bytes, ProofFile};
use veil_prover::Prover;

const DEV_SEED: u64 = 1;
const HISTORY_SEED: u64 = 7;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/data")
}

fn shape() -> BatchShape {
    BatchShape::new(2, 8).unwrap()
}

fn vk_path() -> PathBuf {
    data_dir().join(keys::key_file_name(KeyKind::Verifying, shape()))
}

/// Every committed `(batch file, proof file)` pair, in batch order.
fn committed() -> Vec<(BatchFile, ProofFile)> {
    let mut out = Vec::new();
    for n in 0.. {
        let batch = data_dir().join(format!("batch-{n}.json"));
        if !batch.exists() {
            break;
        }
        let batch = BatchFile::from_json(&std::fs::read_to_string(batch).unwrap()).unwrap();
        let proof = std::fs::read_to_string(data_dir().join(format!("proof-{n}.json"))).unwrap();
        out.push((batch, ProofFile::from_json(&proof).unwrap()));
    }
    assert!(out.len() >= 3, "fixtures/data holds the whole history");
    out
}

fn snapshot() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(data_dir().join("snapshot.json")).unwrap())
        .unwrap()
}

#[test]
fn committed_proofs_verify() {
    // The committed vk is for this build's circuit.
    let vk = keys::read_verifying_key(&vk_path(), shape(), &keys::shape_hash(shape())).unwrap();
    let loaded = keys::load_verifying_key(&vk_path(), shape()).unwrap();
    assert_eq!(loaded.vk, vk);
    let pvk = veil_verifier::prepare(&vk);
    for (n, (batch, proof_file)) in committed().into_iter().enumerate() {
        let public = batch.public_batch().unwrap();
        assert_eq!(public.batch_number, n as u64);
        assert_eq!(public.shape, shape());
        assert_eq!(proof_file.vk_sha256, loaded.sha256);
        assert_eq!(
            proof_file.public_inputs,
            public.public_inputs.into(),
            "proof {n} is for its batch"
        );
        let proof = proof_file.proof().unwrap();
        assert!(
            veil_verifier::verify(&pvk, &public.public_inputs, &proof).unwrap(),
            "committed proof {n} verifies"
        );
    }
}

#[test]
fn committed_batches_are_todays_history() {
    let (_, built) = veil_fixtures::mixed_history(shape(), HISTORY_SEED);
    let files = committed();
    assert_eq!(built.len(), files.len());
    for (b, (file, _)) in built.iter().zip(&files) {
        assert_eq!(&BatchFile::from_built(b, true).unwrap(), file);
        assert_eq!(file.witness().unwrap(), b.witness);
    }
}

#[test]
fn dev_setup_reproduces_vk_and_proofs() {
    let (pk, vk) = veil_prover::setup(shape(), &mut veil_prover::dev_rng(DEV_SEED)).unwrap();
    let hash = keys::shape_hash(shape());
    let bytes = keys::key_file_bytes(keys::header(KeyKind::Verifying, shape(), hash), &vk);
    assert!(
        bytes == std::fs::read(vk_path()).unwrap(),
        "dev-seed setup no longer reproduces fixtures/data/vk-B2-D8.bin (run `make fixtures` if the circuit changed on purpose)"
    );
    let prover = Prover::new(shape(), pk).unwrap();
    for (batch, proof_file) in committed() {
        let n = batch.batch_number;
        let proof = prover
            .prove(batch.circuit().unwrap(), &mut veil_prover::dev_rng(n))
            .unwrap();
        assert_eq!(
            veil_prover::proof::proof_to_hex(&proof),
            proof_file.proof,
            "proof {n} reproduces byte for byte"
        );
    }
}

#[test]
fn constraint_counts_match_snapshot() {
    let snap = snapshot();
    assert_eq!(snap["dev_seed"], DEV_SEED);
    assert_eq!(snap["history_seed"], HISTORY_SEED);
    let shapes = snap["shapes"].as_array().unwrap();
    let listed: Vec<(u64, u64)> = shapes
        .iter()
        .map(|s| {
            (
                s["batch_size"].as_u64().unwrap(),
                s["depth"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [(1, 8), (2, 8), (4, 8), (2, 16)]);
    for s in shapes {
        let shape = BatchShape::new(
            s["batch_size"].as_u64().unwrap() as usize,
            s["depth"].as_u64().unwrap() as usize,
        )
        .unwrap();
        let m = keys::constraint_matrices(shape);
        assert_eq!(s["constraints"], m.num_constraints, "{shape} constraints");
        assert_eq!(s["public_inputs"], 3);
        assert_eq!(m.num_instance_variables, 1 + 3);
        assert_eq!(
            s["shape_hash"],
            hex::encode(keys::matrices_hash(&m)),
            "{shape} shape hash"
        );
        if shape == self::shape() {
            let vk = std::fs::read(vk_path()).unwrap();
            assert_eq!(s["vk_sha256"], keys::vk_sha256(&vk));
        } else {
            assert!(s.get("vk_sha256").is_none());
        }
    }
}

#[test]
fn mutations_are_rejected() {
    let vk = keys::load_verifying_key(&vk_path(), shape()).unwrap().vk;
    let pvk = veil_verifier::prepare(&vk);
    let files = committed();
    let (batch, proof_file) = &files[2];
    let public = batch.public_batch().unwrap();
    let proof = proof_file.proof().unwrap();
    assert!(veil_verifier::verify(&pvk, &public.public_inputs, &proof).unwrap());

    // One flipped byte in each of A (bytes 0..32), B (32..96) and C (96..128): the proof either
    // no longer decodes or no longer verifies.
    let bytes = proof_to_bytes(&proof);
    let mut decode_errors = 0;
    for (element, range) in [("A", 0..32), ("B", 32..96), ("C", 96..128)] {
        for i in [range.start, range.start + 7, range.end - 2] {
            let mut bad = bytes;
            bad[i] ^= 0x04;
            match proof_from_bytes(&bad) {
                Err(_) => decode_errors += 1,
                Ok(p) => assert!(
                    !veil_verifier::verify(&pvk, &public.public_inputs, &p).unwrap(),
                    "flipped byte {i} of {element} still verifies"
                ),
            }
        }
    }
    assert!(
        decode_errors < 9,
        "some mutations decode and are rejected by the pairing check"
    );

    // Each public input.
    for which in 0..3 {
        let mut bad = public.public_inputs;
        match which {
            0 => bad.old_state_root += Fr::one(),
            1 => bad.new_state_root += Fr::one(),
            _ => bad.batch_hash += Fr::one(),
        }
        assert!(!veil_verifier::verify(&pvk, &bad, &proof).unwrap());
    }

    // Batch data: a nullifier, a commitment, an amount. The stated batch_hash no longer matches
    // (the file is refused), and with the recomputed hash the proof does not verify.
    type Mutation = (&'static str, fn(&mut BatchFile));
    let mutations: [Mutation; 4] = [
        ("nullifier", |b| b.transfers[0].nullifiers[1] += Fr::one()),
        ("commitment", |b| b.transfers[1].commitments[0] += Fr::one()),
        ("fee", |b| b.transfers[1].fee += 1),
        ("public_out", |b| b.transfers[1].public_out -= 1),
    ];
    assert!(
        batch.transfers[1].public_out > 0,
        "batch 2 has a withdrawal"
    );
    for (name, mutate) in mutations {
        let mut bad = batch.clone();
        mutate(&mut bad);
        assert!(
            matches!(
                bad.public_batch(),
                Err(BatchFileError::BatchHashMismatch { .. })
            ),
            "{name}"
        );
        let hash =
            veil_circuits::batch::batch_hash(bad.batch_number, bad.batch_size, &bad.transfers());
        bad.batch_hash = hash;
        let inputs = bad.public_batch().unwrap().public_inputs;
        assert!(
            !veil_verifier::verify(&pvk, &inputs, &proof).unwrap(),
            "{name}"
        );
        // And the witness no longer publishes the listed transfers.
        assert!(
            matches!(bad.witness(), Err(BatchFileError::WitnessMismatch(_))),
            "{name}"
        );
    }
}
