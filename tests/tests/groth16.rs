//! Groth16 round trip on a small batch: dev-seeded setup, prove, verify; a tampered public input
//! or another batch's inputs are rejected.

use ark_bn254::Fr;
use ark_ff::One;
use veil_circuits::batch::BatchShape;
use veil_fixtures::mixed_history;

#[test]
fn groth16_round_trip_and_tampered_inputs() {
    let shape = BatchShape::new(2, 8).unwrap();
    let (_, batches) = mixed_history(shape, 11);
    let mut rng = veil_prover::dev_rng(1);
    let (pk, vk) = veil_prover::setup(shape, &mut rng).unwrap();
    assert_eq!(vk.gamma_abc_g1.len(), 1 + 3, "exactly three public inputs");
    let pvk = veil_verifier::prepare(&vk);
    let proof = veil_prover::prove(&pk, batches[1].circuit(), &mut rng).unwrap();
    assert!(veil_verifier::verify(&pvk, &batches[1].public_inputs, &proof).unwrap());
    for which in 0..3 {
        let mut bad = batches[1].public_inputs;
        match which {
            0 => bad.old_state_root += Fr::one(),
            1 => bad.new_state_root += Fr::one(),
            _ => bad.batch_hash += Fr::one(),
        }
        assert!(!veil_verifier::verify(&pvk, &bad, &proof).unwrap());
    }
    assert!(!veil_verifier::verify(&pvk, &batches[0].public_inputs, &proof).unwrap());
}
