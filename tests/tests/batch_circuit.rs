//! Batch circuit soundness: valid mixed batches satisfy the constraint system for B in {1, 2, 4}
//! and D in {8, 16}; every rule of DESIGN §6 (and the batch-level rules of §7) violated in turn
//! leaves it unsatisfied. Malicious witnesses are built the way a cheating prover would: through
//! `build_batch_unchecked`, re-signing whatever it changed with the keys it holds, so each test
//! fails on the rule it targets rather than on an incidental inconsistency (the control tests show
//! the same pipeline is satisfiable when the change is legal).

use ark_bn254::Fr;
use ark_ec::{AffineRepr, CurveGroup};
use ark_ed_on_bn254::{EdwardsAffine, Fr as JubjubScalar};
use ark_ff::{One, UniformRand, Zero};
use ark_relations::r1cs::{ConstraintSynthesizer, ConstraintSystem, SynthesisMode};
use veil_circuits::batch::{
    build_batch_unchecked, BatchShape, BuiltBatch, InputSpec, LowLeafLocation, OutputWitness,
    SlotSpec,
};
use veil_circuits::eddsa::Signature;
use veil_circuits::transfer::TransferError;
use veil_circuits::{BatchCircuit, SpendingKey, Transfer};
use veil_fixtures::{mixed_history, Scenario};

const SHAPE: BatchShape = BatchShape {
    batch_size: 2,
    depth: 8,
};

fn satisfied(circuit: BatchCircuit) -> bool {
    let cs = ConstraintSystem::<Fr>::new_ref();
    circuit.generate_constraints(cs.clone()).unwrap();
    cs.is_satisfied().unwrap()
}

fn unchecked(sc: &Scenario, specs: &[SlotSpec]) -> BuiltBatch {
    let mut state = sc.state.clone();
    build_batch_unchecked(&mut state, sc.shape, sc.batch_number, specs).unwrap()
}

fn resign(spec: &mut SlotSpec, sk: &SpendingKey) {
    spec.signature = sk.sign(spec.sighash());
}

/// Alice with two deposited notes (1000 and 500), Bob with 300.
fn funded() -> (Scenario, SpendingKey, SpendingKey) {
    funded_in(SHAPE)
}

/// [`funded`] in a circuit of `shape`.
fn funded_in(shape: BatchShape) -> (Scenario, SpendingKey, SpendingKey) {
    let mut sc = Scenario::new(shape, 42);
    let alice = sc.new_key();
    let bob = sc.new_key();
    let d1 = sc.deposit(&alice, 1_000);
    let d2 = sc.deposit(&alice, 500);
    for batch in [d1, d2].chunks(shape.batch_size) {
        sc.apply(batch).unwrap();
    }
    let d3 = sc.deposit(&bob, 300);
    sc.apply(&[d3]).unwrap();
    (sc, alice, bob)
}

#[test]
fn valid_mixed_batches_satisfy_every_shape() {
    for batch_size in [1, 2, 4] {
        for depth in [8, 16] {
            let shape = BatchShape::new(batch_size, depth).unwrap();
            let (_, batches) = mixed_history(shape, 7);
            assert!(batches.len() >= 3);
            for (i, b) in batches.iter().enumerate() {
                assert!(satisfied(b.circuit()), "B={batch_size} D={depth} batch {i}");
                if i > 0 {
                    assert_eq!(
                        b.public_inputs.old_state_root,
                        batches[i - 1].public_inputs.new_state_root
                    );
                }
            }
        }
    }
}

/// The assignment of `circuit` synthesised in `mode` (instance then witness) and its
/// constraint count.
fn assignment(circuit: BatchCircuit, mode: SynthesisMode) -> (Vec<Fr>, usize) {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_mode(mode);
    circuit.generate_constraints(cs.clone()).unwrap();
    let cs = cs.borrow().unwrap();
    let z = [
        cs.instance_assignment.as_slice(),
        cs.witness_assignment.as_slice(),
    ]
    .concat();
    (z, cs.num_constraints)
}

/// The prover synthesises only the assignment (the gadgets' witness-only paths skip building
/// linear combinations); it must be exactly the full synthesis's, on every kind of batch.
#[test]
fn witness_only_synthesis_equals_full_synthesis() {
    for (batch_size, depth) in [(1, 8), (2, 16), (4, 8)] {
        let shape = BatchShape::new(batch_size, depth).unwrap();
        let (_, batches) = mixed_history(shape, 11);
        for (i, b) in batches.iter().enumerate() {
            let full = assignment(
                b.circuit(),
                SynthesisMode::Prove {
                    construct_matrices: true,
                },
            );
            let witness = assignment(
                b.circuit(),
                SynthesisMode::Prove {
                    construct_matrices: false,
                },
            );
            assert!(full == witness, "{shape} batch {i}");
        }
    }
}

/// The node's sealing path (no re-validation, published fields) builds exactly what the
/// validating builder builds, and still refuses what the state decides: a spent or repeated
/// nullifier and an unknown note, leaving the state untouched.
#[test]
fn admitted_build_equals_validated_build_and_refuses_state_violations() {
    use veil_circuits::batch::{build_batch, build_batch_admitted, BatchError};
    let (mut sc, alice, bob) = funded();
    let t1 = sc.pay(&alice, &bob, 100, 0, 5);
    let t2 = sc.pay(&bob, &alice, 50, 0, 0);
    let mut a = sc.state.clone();
    let mut b = sc.state.clone();
    let validated = build_batch(&mut a, SHAPE, sc.batch_number, &[t1.clone(), t2.clone()]).unwrap();
    let admitted = build_batch_admitted(&mut b, SHAPE, sc.batch_number, &[t1.clone(), t2]).unwrap();
    assert_eq!(validated.public_inputs, admitted.public_inputs);
    assert_eq!(validated.public_fields, admitted.public_fields);
    assert_eq!(a.state_root(), b.state_root());
    assert!(satisfied(admitted.circuit()));

    let twice = |t: &Transfer| {
        let mut st = sc.state.clone();
        let root = st.state_root();
        let r = build_batch_admitted(&mut st, SHAPE, sc.batch_number, &[t.clone(), t.clone()]);
        assert_eq!(st.state_root(), root, "state changed by a refused batch");
        r
    };
    assert!(matches!(
        twice(&t1),
        Err(BatchError::Transfer {
            index: 1,
            error: TransferError::AlreadySpent { input: 0 }
        })
    ));
    let mut unknown = t1.clone();
    unknown.inputs[0].position += 1;
    let mut st = sc.state.clone();
    assert!(matches!(
        build_batch_admitted(&mut st, SHAPE, sc.batch_number, &[unknown]),
        Err(BatchError::Transfer {
            index: 0,
            error: TransferError::UnknownNote { input: 0 }
        })
    ));
    sc.apply(std::slice::from_ref(&t1)).unwrap();
    let mut st = sc.state.clone();
    assert!(matches!(
        build_batch_admitted(&mut st, SHAPE, sc.batch_number, &[t1]),
        Err(BatchError::Transfer {
            index: 0,
            error: TransferError::AlreadySpent { input: 0 }
        })
    ));
}

#[test]
fn control_resigned_legal_change_is_satisfied() {
    let (mut sc, alice, bob) = funded();
    let t = sc.pay(&alice, &bob, 100, 0, 0);
    let mut spec = SlotSpec::from(&t);
    // Move one unit from the change to the payment: still balanced and in range.
    spec.outputs[0].value += Fr::one();
    spec.outputs[1].value -= Fr::one();
    resign(&mut spec, &alice);
    assert!(satisfied(unchecked(&sc, &[spec]).circuit()));
}

#[test]
fn double_spend_within_a_batch_is_unsatisfied() {
    let (mut sc, alice, bob) = funded();
    let note = sc.unspent(&alice)[0];
    let t1 = sc.spend(&alice, &[note], &bob, 10, 0, 0);
    let t2 = sc.spend(&alice, &[note], &bob, 20, 0, 0);
    assert!(matches!(
        sc.apply(&[t1.clone(), t2.clone()]),
        Err(veil_circuits::batch::BatchError::Transfer { index: 1, .. })
    ));
    let built = unchecked(&sc, &[SlotSpec::from(&t1), SlotSpec::from(&t2)]);
    assert!(!satisfied(built.circuit()));
}

#[test]
fn spending_a_nullifier_already_in_the_set_is_unsatisfied() {
    let (mut sc, alice, bob) = funded();
    let note = sc.unspent(&alice)[0];
    let t1 = sc.spend(&alice, &[note], &bob, 10, 0, 0);
    sc.apply(&[t1]).unwrap();
    let t2 = sc.spend(&alice, &[note], &bob, 20, 0, 0);
    assert_eq!(
        t2.validate(&sc.state, |_| false),
        Err(TransferError::AlreadySpent { input: 0 })
    );
    assert!(!satisfied(unchecked(&sc, &[SlotSpec::from(&t2)]).circuit()));
}

#[test]
fn inflation_is_unsatisfied() {
    let (mut sc, alice, bob) = funded();
    let t = sc.pay(&alice, &bob, 100, 0, 0);
    let mut spec = SlotSpec::from(&t);
    spec.outputs[0].value += Fr::from(1_000_000u64);
    resign(&mut spec, &alice);
    assert!(!satisfied(unchecked(&sc, &[spec]).circuit()));
}

#[test]
fn amounts_of_2_pow_64_or_wrapping_the_field_are_unsatisfied() {
    let (mut sc, alice, bob) = funded();
    let t = sc.pay(&alice, &bob, 100, 0, 0);
    let two64 = Fr::from(u64::MAX) + Fr::one();
    let base = SlotSpec::from(&t);
    let mut cases: Vec<(&str, SlotSpec)> = Vec::new();
    // Field wrap-around: one output of -1 (p - 1) pays for one extra unit elsewhere.
    let mut s = base.clone();
    s.outputs[1].value = -Fr::one();
    s.outputs[0].value = base.outputs[0].value + base.outputs[1].value + Fr::one();
    cases.push(("output = p - 1", s));
    // An output of exactly 2^64, balanced by a fee of -2^64.
    let mut s = base.clone();
    s.outputs[0].value += two64;
    s.fee = -two64;
    cases.push(("output = 2^64", s));
    // A fee of 2^64 balanced by a wrapped change output.
    let mut s = base.clone();
    s.fee = two64;
    s.outputs[1].value -= two64;
    cases.push(("fee = 2^64", s));
    // A withdrawal of 2^64 + 5, balanced by a wrapped output.
    let mut s = base.clone();
    s.public_out = two64 + Fr::from(5u64);
    s.dest = Fr::from(77u64);
    s.outputs[0].value -= two64 + Fr::from(5u64);
    cases.push(("public_out >= 2^64", s));
    for (name, mut spec) in cases {
        let lhs = spec.inputs[0].value + spec.inputs[1].value + spec.public_in;
        let rhs = spec.outputs[0].value + spec.outputs[1].value + spec.public_out + spec.fee;
        assert_eq!(lhs, rhs, "{name}: balanced in the field");
        resign(&mut spec, &alice);
        assert!(!satisfied(unchecked(&sc, &[spec]).circuit()), "{name}");
    }
}

#[test]
fn forged_signature_is_unsatisfied() {
    let (mut sc, alice, bob) = funded();
    let t = sc.pay(&alice, &bob, 100, 0, 0);
    let mut spec = SlotSpec::from(&t);
    spec.signature.s = JubjubScalar::rand(sc.rng());
    assert!(!satisfied(unchecked(&sc, &[spec]).circuit()));
}

#[test]
fn signature_over_a_different_sighash_is_unsatisfied() {
    let (mut sc, alice, bob) = funded();
    let t = sc.pay(&alice, &bob, 100, 0, 0);
    let mut spec = SlotSpec::from(&t);
    spec.signature = alice.sign(spec.sighash() + Fr::one());
    assert!(!satisfied(unchecked(&sc, &[spec]).circuit()));
    // and the operator cannot re-point the withdrawal destination after signing
    let t = sc.pay(&alice, &bob, 100, 50, 0);
    let mut spec = SlotSpec::from(&t);
    spec.dest = Fr::from(666u64);
    assert!(!satisfied(unchecked(&sc, &[spec]).circuit()));
}

#[test]
fn ciphertexts_other_than_the_signed_ones_are_unsatisfied() {
    let (mut sc, alice, bob) = funded();
    let t = sc.pay(&alice, &bob, 100, 0, 0);
    let mut spec = SlotSpec::from(&t);
    // Whoever relays the transfer swaps the ciphertexts (here: zeroed, so the recipient never
    // finds the note); the slot's ciphertext hash changes, the spender's signature does not.
    let zeroed = [vec![0u8; 32], vec![0u8; 32]];
    spec.ciphertext_hash = veil_circuits::note::ciphertext_hash(&zeroed);
    assert_ne!(spec.ciphertext_hash, SlotSpec::from(&t).ciphertext_hash);
    assert!(!satisfied(
        unchecked(&sc, std::slice::from_ref(&spec)).circuit()
    ));
    // Control: the same change signed by the spender is a legal transfer.
    resign(&mut spec, &alice);
    assert!(satisfied(unchecked(&sc, &[spec]).circuit()));
}

#[test]
fn input_owned_by_another_key_is_unsatisfied() {
    let (mut sc, alice, bob) = funded();
    let bobs = sc.unspent(&bob)[0];
    let t = sc.pay(&alice, &bob, 100, 0, 0);
    let mut spec = SlotSpec::from(&t);
    let value_delta = Fr::from(bobs.note.value);
    spec.inputs[1] = InputSpec {
        addr: bobs.note.addr,
        value: value_delta,
        rho: bobs.note.rho,
        r: bobs.note.r,
        position: bobs.position,
    };
    spec.outputs[1].value += value_delta;
    resign(&mut spec, &alice);
    assert!(!satisfied(unchecked(&sc, &[spec]).circuit()));
}

#[test]
fn wrong_membership_path_or_position_is_unsatisfied() {
    let (mut sc, alice, bob) = funded();
    let t = sc.pay(&alice, &bob, 100, 0, 0);
    let good = unchecked(&sc, &[SlotSpec::from(&t)]);
    assert!(satisfied(good.circuit()));
    let mut bad = good.clone();
    bad.witness.slots[0].inputs[0].path.siblings[1][2] += Fr::one();
    assert!(!satisfied(bad.circuit()));
    // the right siblings in the wrong order
    let mut bad = good.clone();
    bad.witness.slots[0].inputs[0].path.siblings[0].swap(0, 2);
    assert!(!satisfied(bad.circuit()));
    // A wrong position, re-signed so the nullifier is consistent with it.
    let mut spec = SlotSpec::from(&t);
    spec.inputs[0].position ^= 1;
    resign(&mut spec, &alice);
    assert!(!satisfied(unchecked(&sc, &[spec]).circuit()));
}

#[test]
fn wrong_low_leaf_is_unsatisfied() {
    let (mut sc, alice, bob) = funded();
    // Fill the nullifier set a little so leaf 0 is not everyone's low leaf.
    let t = sc.pay(&bob, &alice, 50, 0, 0);
    sc.apply(&[t]).unwrap();
    for _ in 0..3 {
        let t = sc.pay(&alice, &bob, 1, 0, 0);
        let good = unchecked(&sc, &[SlotSpec::from(&t)]);
        assert!(satisfied(good.circuit()));
        let x = good.public_fields[0][0];
        let true_low = sc.state.nullifiers.low_leaf(x).unwrap().0;
        // claim another existing leaf, with its genuine path, as the low leaf
        let other = if true_low == 0 { 1 } else { 0 };
        let mut bad = good.clone();
        let ins = &mut bad.witness.slots[0].insertions[0];
        ins.location = LowLeafLocation::Tree(other);
        ins.low_leaf = *sc.state.nullifiers.leaf(other).unwrap();
        ins.path = sc.state.nullifiers.path(other).unwrap();
        assert!(!satisfied(bad.circuit()));
        // claim the low leaf is pending when it is not
        let mut bad = good.clone();
        bad.witness.slots[0].insertions[1].location = LowLeafLocation::Pending(0);
        assert!(!satisfied(bad.circuit()));
        sc.apply(&[t]).unwrap();
    }
}

#[test]
fn output_appended_at_the_wrong_index_is_unsatisfied() {
    // 2B = 4 (one 4-ary node), 2B = 8 and 2B = 2 (two halves of a node); an extra empty batch
    // moves the starts to the other half of their parent
    let mut wrong_pairs = 0;
    for shape in [
        SHAPE,
        BatchShape::new(4, 8).unwrap(),
        BatchShape::new(1, 8).unwrap(),
    ] {
        for extra in 0..2 {
            let (mut sc, alice, bob) = funded_in(shape);
            for _ in 0..extra {
                sc.apply(&[]).unwrap();
            }
            let t = sc.pay(&alice, &bob, 100, 0, 0);
            let good = unchecked(&sc, &[SlotSpec::from(&t)]);
            assert!(satisfied(good.circuit()), "{shape}");
            let n = shape.leaves_per_batch() as u64;
            let k = shape.subtree_height();
            // The prover skips one aligned subtree and claims the matching state root.
            let mut bad = good.clone();
            let wrong = good.witness.note_subtree_start + n;
            bad.witness.note_subtree_start = wrong;
            bad.witness.note_subtree_path = sc.state.notes.subtree_path(wrong, k).unwrap();
            let mut notes = sc.state.notes.tree().clone();
            let leaves: Vec<Fr> = (0..n as usize)
                .map(|i| {
                    good.public_fields
                        .get(i / 2)
                        .map(|f| f[2 + i % 2])
                        .unwrap_or(Fr::zero())
                })
                .collect();
            notes.set_subtree(wrong, &leaves).unwrap();
            let mut summary = good.new_state;
            summary.note_root = notes.root();
            summary.note_count = wrong + n;
            bad.public_inputs.new_state_root = summary.state_root();
            assert!(!satisfied(bad.circuit()), "{shape}");

            // Halves that are children (2, 3) of their parent: a wrong pair (the parent's
            // other two children) is refused.
            for tree in 0..2 {
                let mut bad = good.clone();
                let (start, path) = match tree {
                    0 => (
                        good.witness.note_subtree_start,
                        &mut bad.witness.note_subtree_path,
                    ),
                    _ => (
                        good.witness.nullifier_subtree_start,
                        &mut bad.witness.nullifier_subtree_path,
                    ),
                };
                if k % 2 == 1 && (start >> k) & 1 == 1 {
                    path.pair.as_mut().unwrap()[1] += Fr::one();
                    assert!(!satisfied(bad.circuit()), "{shape}: tree {tree} pair");
                    wrong_pairs += 1;
                }
            }
        }
    }
    assert_eq!(wrong_pairs, 4, "both trees, both odd shapes");
}

#[test]
fn public_inputs_that_do_not_match_the_witness_are_unsatisfied() {
    let (mut sc, alice, bob) = funded();
    let t = sc.pay(&alice, &bob, 100, 0, 0);
    let good = unchecked(&sc, &[SlotSpec::from(&t)]);
    for which in 0..3 {
        let mut bad = good.clone();
        match which {
            0 => bad.public_inputs.old_state_root += Fr::one(),
            1 => bad.public_inputs.new_state_root += Fr::one(),
            _ => bad.public_inputs.batch_hash += Fr::one(),
        }
        assert!(!satisfied(bad.circuit()), "public input {which}");
    }
    let mut bad = good.clone();
    bad.witness.batch_number += 1;
    assert!(!satisfied(bad.circuit()), "batch number");
}

#[test]
fn small_order_spend_key_is_unsatisfied() {
    let (mut sc, _alice, bob) = funded();
    let g = EdwardsAffine::generator();
    let order2 = EdwardsAffine::new_unchecked(Fr::zero(), -Fr::one());
    for (name, ak) in [("identity", EdwardsAffine::zero()), ("order 2", order2)] {
        let nk = Fr::from(1234u64);
        let owner = veil_circuits::keys::owner_tag(&veil_circuits::eddsa::PublicKey(ak), nk);
        let dummy = |rho: u64| InputSpec {
            addr: owner,
            value: Fr::zero(),
            rho: Fr::from(rho),
            r: Fr::from(rho + 1),
            position: 0,
        };
        let mut spec = SlotSpec {
            ak,
            nk,
            inputs: [dummy(1), dummy(3)],
            outputs: [
                OutputWitness {
                    addr: bob.owner_tag(),
                    value: Fr::from(10u64),
                    r: Fr::from(5u64),
                },
                OutputWitness {
                    addr: bob.owner_tag(),
                    value: Fr::zero(),
                    r: Fr::from(6u64),
                },
            ],
            public_in: Fr::from(10u64),
            public_out: Fr::zero(),
            fee: Fr::zero(),
            dest: Fr::zero(),
            deposit_ref: Fr::from(99u64),
            ciphertext_hash: Fr::from(7u64),
            signature: Signature {
                r: EdwardsAffine::zero(),
                s: JubjubScalar::zero(),
            },
        };
        // Forgery: with 8A = 0 the equation S*G = R + 8h*A holds for R = S*G.
        let s = JubjubScalar::rand(sc.rng());
        spec.signature = Signature {
            r: (g * s).into_affine(),
            s,
        };
        assert!(!satisfied(unchecked(&sc, &[spec]).circuit()), "{name}");
    }
    // Control: the same deposit signed by a proper key is satisfied.
    let t: Transfer = sc.deposit(&bob, 10);
    assert!(satisfied(unchecked(&sc, &[SlotSpec::from(&t)]).circuit()));
}
