//! The data an anchor's envelope carries is enough (issue 14): a proven history encoded as
//! anchor data, decoded and replayed from genesis with nothing else, gives every batch's public
//! inputs (each proof verifies against them), the builder's final state, and ciphertexts the
//! recipient can decrypt. Tampered data no longer verifies.

use ark_ff::One;
use veil_circuits::batch::BatchShape;
use veil_circuits::note::{decrypt_note, output_rho};
use veil_circuits::Transfer;
use veil_fixtures::Scenario;
use veil_verifier::da::{AnchorData, BatchData, TransferData};
use veil_verifier::rebuild::{RebuildError, Rebuilder};

const SHAPE: BatchShape = BatchShape {
    batch_size: 2,
    depth: 8,
};

fn data_of(t: &Transfer) -> TransferData {
    TransferData {
        public: t.public,
        ciphertexts: t.ciphertexts.clone(),
    }
}

#[test]
fn a_history_rebuilt_from_its_anchor_data_verifies() {
    let mut sc = Scenario::new(SHAPE, 77);
    let alice = sc.new_key();
    let bob = sc.new_key();
    let mut rng = veil_prover::dev_rng(1);
    // Dev keys cached under the target dir (shared with the other B = 2, D = 8 tests).
    let (pk, vk) = veil_prover::load_or_setup_dev_keys(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")),
        SHAPE,
        1,
    )
    .unwrap();
    let pvk = veil_verifier::prepare(&vk);

    let mut history: Vec<Vec<Transfer>> = Vec::new();
    let mut proofs = Vec::new();
    let mut built_inputs = Vec::new();
    let mut run = |sc: &mut Scenario, ts: Vec<Transfer>| {
        let built = sc.apply(&ts).unwrap();
        let proof = veil_prover::prove(&pk, built.circuit(), &mut rng).unwrap();
        proofs.push(veil_prover::proof::proof_to_bytes(&proof));
        built_inputs.push(built.public_inputs);
        history.push(ts);
    };
    let d1 = sc.deposit(&alice, 1000);
    let d2 = sc.deposit(&alice, 500);
    run(&mut sc, vec![d1, d2]);
    let pay = sc.pay(&alice, &bob, 300, 0, 7);
    run(&mut sc, vec![pay.clone()]);
    run(&mut sc, vec![]);
    let memo = *b"refund for order 17, less fees..";
    sc.set_memos(Some([memo, [0u8; 32]]));
    let back = sc.pay(&bob, &alice, 100, 50, 3);
    sc.set_memos(None);
    run(&mut sc, vec![back]);

    // Two anchors: batches 0..=1 and 2..=3.
    let anchor = |range: std::ops::Range<usize>| AnchorData {
        batch_size: 2,
        first_batch: range.start as u64,
        batches: range
            .map(|n| BatchData {
                proof: proofs[n],
                transfers: history[n].iter().map(data_of).collect(),
            })
            .collect(),
    };
    let encoded = [
        anchor(0..2).encode().unwrap(),
        anchor(2..4).encode().unwrap(),
    ];

    let mut rebuilt = Rebuilder::genesis(SHAPE);
    let mut items = Vec::new();
    for bytes in &encoded {
        let data = AnchorData::decode(bytes).unwrap();
        for b in rebuilt.apply(&data).unwrap() {
            assert_eq!(b.public_inputs, built_inputs[b.number as usize]);
            let proof = veil_prover::proof::proof_from_bytes(&b.proof).unwrap();
            items.push((b.public_inputs, proof));
        }
    }
    assert!(veil_verifier::verify_batch(&pvk, &items, &mut rand::thread_rng()).unwrap());
    assert_eq!(rebuilt.state().state_root(), sc.state.state_root());
    assert_eq!(rebuilt.next_batch(), 4);

    // Bob finds his payment in the data: batch 1, slot 0, output 0.
    let data = AnchorData::decode(&encoded[0]).unwrap();
    let t = &data.batches[1].transfers[0];
    let rho = output_rho(t.public.nullifiers[0], 1);
    let (note, none) = decrypt_note(&bob, &t.ciphertexts[0], rho, t.public.commitments[0]).unwrap();
    assert_eq!(none, None);
    assert_eq!(note.value, 300);
    // And Alice her refund with its memo: batch 3, slot 0, output 0 (121-byte ciphertexts).
    let data2 = AnchorData::decode(&encoded[1]).unwrap();
    let t = &data2.batches[1].transfers[0];
    assert_eq!(t.ciphertexts.clone().map(|c| c.len()), [121, 121]);
    let rho = output_rho(t.public.nullifiers[0], 1);
    let (note, m) = decrypt_note(&alice, &t.ciphertexts[0], rho, t.public.commitments[0]).unwrap();
    assert_eq!((note.value, m), (100, Some(memo)));

    // Applying out of order, or twice, is refused and changes nothing.
    let root = rebuilt.state().state_root();
    assert!(matches!(
        rebuilt.apply(&data),
        Err(RebuildError::OutOfOrder {
            expected: 4,
            found: 0
        })
    ));
    assert_eq!(rebuilt.state().state_root(), root);

    // A tampered commitment decodes, but its batch's proof no longer verifies.
    let mut tampered = anchor(0..2);
    tampered.batches[1].transfers[0].public.commitments[1] += ark_bn254::Fr::one();
    let mut fresh = Rebuilder::genesis(SHAPE);
    let bad = fresh
        .apply(&AnchorData::decode(&tampered.encode().unwrap()).unwrap())
        .unwrap();
    let proof = veil_prover::proof::proof_from_bytes(&bad[1].proof).unwrap();
    assert!(!veil_verifier::verify(&pvk, &bad[1].public_inputs, &proof).unwrap());
}
