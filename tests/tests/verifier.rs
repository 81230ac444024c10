//! The verifier on real batch proofs (B = 2, D = 8): batch verification with one multi-pairing
//! against one-by-one verification and tampered proofs or inputs, and verification from published
//! data alone (batch hashes recomputed from the slots, state roots chained from genesis).

use std::sync::OnceLock;
use std::time::Instant;

use ark_bn254::{Bn254, Fr};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::One;
use ark_groth16::{PreparedVerifyingKey, Proof};
use veil_circuits::batch::{BatchPublicInputs, BatchShape};
use veil_circuits::TransferPublic;
use veil_fixtures::mixed_history;
use veil_verifier::{
    batch_hash_from_fields, batch_hash_from_published, genesis_state_root,
    public_inputs_from_published, transfer_public_from_fields, verify, verify_batch,
    verify_published, VerifyError,
};

const BATCH_SIZE: usize = 2;
const DEPTH: usize = 8;
/// Histories proved: each `mixed_history` has four batches at B = 2, so 16 proofs in all.
const SEEDS: [u64; 4] = [11, 12, 13, 14];

/// One proved batch of one history.
struct Proved {
    /// Index of its history in [`SEEDS`].
    history: usize,
    batch_number: u64,
    public_inputs: BatchPublicInputs,
    public_fields: Vec<veil_circuits::transfer::SlotFields>,
    proof: Proof<Bn254>,
}

struct Fixture {
    pvk: PreparedVerifyingKey<Bn254>,
    proved: Vec<Proved>,
}

/// Keys and every batch's proof, made once per test binary.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let shape = BatchShape::new(BATCH_SIZE, DEPTH).unwrap();
        let mut rng = veil_prover::dev_rng(1);
        let (pk, vk) = veil_prover::setup(shape, &mut rng).unwrap();
        let mut proved = Vec::new();
        for (history, &seed) in SEEDS.iter().enumerate() {
            let (_, batches) = mixed_history(shape, seed);
            for built in batches {
                let proof = veil_prover::prove(&pk, built.circuit(), &mut rng).unwrap();
                proved.push(Proved {
                    history,
                    batch_number: built.witness.batch_number,
                    public_inputs: built.public_inputs,
                    public_fields: built.public_fields,
                    proof,
                });
            }
        }
        assert_eq!(proved.len(), 16);
        Fixture {
            pvk: veil_verifier::prepare(&vk),
            proved,
        }
    })
}

fn items(proved: &[Proved]) -> Vec<(BatchPublicInputs, Proof<Bn254>)> {
    proved
        .iter()
        .map(|p| (p.public_inputs, p.proof.clone()))
        .collect()
}

fn slots(p: &Proved) -> Vec<TransferPublic> {
    p.public_fields
        .iter()
        .map(|f| transfer_public_from_fields(f).unwrap())
        .collect()
}

fn rng() -> rand_chacha::ChaCha20Rng {
    veil_prover::dev_rng(42)
}

#[test]
fn batch_verify_accepts_all_and_agrees_with_one_by_one() {
    let f = fixture();
    let all = items(&f.proved);
    for (x, proof) in &all {
        assert!(verify(&f.pvk, x, proof).unwrap());
    }
    assert!(verify_batch(&f.pvk, &all, &mut rng()).unwrap());
    for n in [0, 1, 2, 8] {
        assert!(
            verify_batch(&f.pvk, &all[..n], &mut rng()).unwrap(),
            "n = {n}"
        );
    }
}

#[test]
fn one_bad_proof_among_eight_is_rejected() {
    let f = fixture();
    let good = items(&f.proved[..8]);
    for bad in [0, 3, 7] {
        let mut negated_c = good.clone();
        negated_c[bad].1.c = -negated_c[bad].1.c;
        assert!(!verify(&f.pvk, &negated_c[bad].0, &negated_c[bad].1).unwrap());
        assert!(!verify_batch(&f.pvk, &negated_c, &mut rng()).unwrap());

        let mut shifted_a = good.clone();
        shifted_a[bad].1.a = (shifted_a[bad].1.a + ark_bn254::G1Affine::generator()).into_affine();
        assert!(!verify_batch(&f.pvk, &shifted_a, &mut rng()).unwrap());

        for which in 0..3 {
            let mut tampered = good.clone();
            let x = &mut tampered[bad].0;
            match which {
                0 => x.old_state_root += Fr::one(),
                1 => x.new_state_root += Fr::one(),
                _ => x.batch_hash += Fr::one(),
            }
            assert!(!verify_batch(&f.pvk, &tampered, &mut rng()).unwrap());
        }
    }
}

#[test]
fn swapped_inputs_or_proof_parts_between_two_proofs_are_rejected() {
    let f = fixture();
    let good = items(&f.proved[..8]);
    let mut reordered = good.clone();
    reordered.swap(1, 6);
    assert!(verify_batch(&f.pvk, &reordered, &mut rng()).unwrap());
    let mut swapped_inputs = good.clone();
    let (x1, x6) = (swapped_inputs[1].0, swapped_inputs[6].0);
    swapped_inputs[1].0 = x6;
    swapped_inputs[6].0 = x1;
    assert!(!verify_batch(&f.pvk, &swapped_inputs, &mut rng()).unwrap());

    let mut swapped_a = good.clone();
    let (a2, a5) = (swapped_a[2].1.a, swapped_a[5].1.a);
    swapped_a[2].1.a = a5;
    swapped_a[5].1.a = a2;
    assert!(!verify_batch(&f.pvk, &swapped_a, &mut rng()).unwrap());
}

#[test]
fn batch_hash_recomputed_from_published_slots() {
    let f = fixture();
    for p in &f.proved {
        let slots = slots(p);
        assert_eq!(
            batch_hash_from_published(p.batch_number, BATCH_SIZE, &slots).unwrap(),
            p.public_inputs.batch_hash
        );
        assert_eq!(
            batch_hash_from_fields(p.batch_number, BATCH_SIZE, &p.public_fields).unwrap(),
            p.public_inputs.batch_hash
        );
    }
}

#[test]
fn published_history_verifies_from_genesis_with_chained_roots() {
    let f = fixture();
    let genesis = genesis_state_root(DEPTH).unwrap();
    for history in 0..SEEDS.len() {
        let mut old_root = genesis;
        let batches = f.proved.iter().filter(|p| p.history == history);
        for (number, p) in (0u64..).zip(batches) {
            assert_eq!(p.batch_number, number);
            let new_root = p.public_inputs.new_state_root;
            let inputs = public_inputs_from_published(
                old_root,
                new_root,
                p.batch_number,
                BATCH_SIZE,
                &slots(p),
            )
            .unwrap();
            assert_eq!(inputs, p.public_inputs);
            assert!(verify_published(
                &f.pvk,
                old_root,
                new_root,
                p.batch_number,
                BATCH_SIZE,
                &slots(p),
                &p.proof
            )
            .unwrap());
            // A root not chained from the previous batch, or the wrong batch number.
            assert!(!verify_published(
                &f.pvk,
                old_root + Fr::one(),
                new_root,
                p.batch_number,
                BATCH_SIZE,
                &slots(p),
                &p.proof
            )
            .unwrap());
            assert!(!verify_published(
                &f.pvk,
                old_root,
                new_root,
                p.batch_number + 1,
                BATCH_SIZE,
                &slots(p),
                &p.proof
            )
            .unwrap());
            old_root = new_root;
        }
    }
}

/// A change to one published slot.
type Edit = fn(&mut TransferPublic);

#[test]
fn modified_slot_data_changes_the_hash_and_fails_verification() {
    let f = fixture();
    // Every batch of one history: deposits (public_in, deposit_ref), a withdrawal (public_out,
    // dest, fee), private transfers.
    for p in f.proved.iter().filter(|p| p.history == 0) {
        let slots = slots(p);
        let old = p.public_inputs.old_state_root;
        let new = p.public_inputs.new_state_root;
        let edits: [(&str, Edit); 10] = [
            ("nullifier 0", |s| s.nullifiers[0] += Fr::one()),
            ("nullifier 1", |s| s.nullifiers[1] += Fr::one()),
            ("commitment 0", |s| s.commitments[0] += Fr::one()),
            ("commitment 1", |s| s.commitments[1] += Fr::one()),
            ("public_in", |s| s.public_in += 1),
            ("public_out", |s| s.public_out += 1),
            ("fee", |s| s.fee += 1),
            ("dest", |s| s.dest += Fr::one()),
            ("deposit_ref", |s| s.deposit_ref += Fr::one()),
            ("ciphertext_hash", |s| s.ciphertext_hash += Fr::one()),
        ];
        for slot in 0..slots.len() {
            for (name, edit) in edits {
                let mut modified = slots.clone();
                edit(&mut modified[slot]);
                let h = batch_hash_from_published(p.batch_number, BATCH_SIZE, &modified).unwrap();
                assert_ne!(h, p.public_inputs.batch_hash, "{name} of slot {slot}");
                assert!(
                    !verify_published(
                        &f.pvk,
                        old,
                        new,
                        p.batch_number,
                        BATCH_SIZE,
                        &modified,
                        &p.proof
                    )
                    .unwrap(),
                    "{name} of slot {slot}"
                );
            }
        }
        // Dropping the last real slot (it becomes padding) or reordering slots also fails.
        assert!(!verify_published(
            &f.pvk,
            old,
            new,
            p.batch_number,
            BATCH_SIZE,
            &slots[..slots.len() - 1],
            &p.proof
        )
        .unwrap());
        if slots.len() == 2 {
            let reordered = [slots[1], slots[0]];
            assert!(!verify_published(
                &f.pvk,
                old,
                new,
                p.batch_number,
                BATCH_SIZE,
                &reordered,
                &p.proof
            )
            .unwrap());
        }
    }
}

#[test]
fn more_slots_than_the_batch_size_is_an_error() {
    let f = fixture();
    let p = &f.proved[0];
    let mut too_many = slots(p);
    while too_many.len() <= BATCH_SIZE {
        too_many.push(too_many[0]);
    }
    let err = verify_published(
        &f.pvk,
        p.public_inputs.old_state_root,
        p.public_inputs.new_state_root,
        p.batch_number,
        BATCH_SIZE,
        &too_many,
        &p.proof,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        VerifyError::TooManySlots {
            got: 3,
            batch_size: BATCH_SIZE
        }
    ));
}

#[test]
fn timing_one_by_one_vs_batch() {
    let f = fixture();
    let all = items(&f.proved);
    let start = Instant::now();
    let mut ok = true;
    for (x, proof) in &all {
        ok &= verify(&f.pvk, x, proof).unwrap();
    }
    let single = start.elapsed();
    let start = Instant::now();
    let batched = verify_batch(&f.pvk, &all, &mut rng()).unwrap();
    let batch = start.elapsed();
    assert!(ok && batched);
    eprintln!(
        "verifying {} proofs: one by one {:.2?}, batch {:.2?} ({:.1}x)",
        all.len(),
        single,
        batch,
        single.as_secs_f64() / batch.as_secs_f64()
    );
}
