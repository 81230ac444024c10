//! Negative tests pinning every guard of the batch circuit's nullifier logic (issue 13, item 6),
//! plus the zeroing of a padding slot's public data, padding slots as no-ops (DESIGN §7) and the
//! `public_in` range check.
//!
//! Each attack is a witness a cheating prover could complete ([`replay::complete`]: the circuit's
//! dataflow replayed natively) that is consistent everywhere except the one rule under test. The
//! tests assert that the circuit is unsatisfied and that *every* violated constraint lies in the
//! guard's namespace ([`namespaces::violated`]), so the witness satisfies the system exactly when
//! that guard is deleted. `replay_of_honest_batches_is_the_builders_witness` checks the replay
//! against `build_batch`.

mod namespaces;
mod replay;

use ark_bn254::Fr;
use ark_ff::{One, UniformRand, Zero};
use rand::{CryptoRng, Rng, RngCore};
use veil_circuits::batch::{
    build_batch_unchecked, BatchShape, BatchWitness, InputWitness, InsertionWitness,
    LowLeafLocation, OutputWitness, SlotSpec, SlotWitness,
};
use veil_circuits::transfer::SpentNote;
use veil_circuits::tree::{MerklePath, NullifierLeaf, SparseMerkleTree, SubtreePath};
use veil_circuits::{BatchCircuit, SpendingKey, Transfer};
use veil_fixtures::Scenario;

use namespaces::violated;
use replay::{complete, honest, spec_of, Deviation, Pick, Progress};

const B2: BatchShape = BatchShape {
    batch_size: 2,
    depth: 8,
};

const B4: BatchShape = BatchShape {
    batch_size: 4,
    depth: 8,
};

/// A rollup where Alice (1000 + 500) and Bob (300) were funded and Alice then paid Bob from her
/// 1000 note, whose nullifier `y` is now in the tree.
struct Spent {
    sc: Scenario,
    alice: SpendingKey,
    bob: SpendingKey,
    note: SpentNote,
    y: Fr,
}

impl Spent {
    fn new(shape: BatchShape) -> Self {
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
        let note = sc.unspent(&alice)[0];
        assert_eq!(note.note.value, 1_000);
        let pay = sc.spend(&alice, &[note], &bob, 100, 0, 0);
        let y = pay.public.nullifiers[0];
        sc.apply(&[pay]).unwrap();
        assert!(sc.state.nullifiers.contains(y));
        Spent {
            sc,
            alice,
            bob,
            note,
            y,
        }
    }

    /// Alice spends her spent note again (a dummy second input): its first nullifier is `y`.
    fn respend(&mut self) -> Transfer {
        let t = self
            .sc
            .spend(&self.alice, &[self.note], &self.bob, 10, 0, 0);
        assert_eq!(t.public.nullifiers[0], self.y);
        t
    }

    /// Bob pays Alice from one note and a fresh dummy input, drawn until `want` holds of its
    /// two nullifiers.
    fn bob_pays_where(&mut self, want: impl Fn([Fr; 2]) -> bool) -> Transfer {
        let note = self.sc.unspent(&self.bob)[0];
        (0..1_000)
            .map(|_| self.sc.spend(&self.bob, &[note], &self.alice, 1, 0, 0))
            .find(|t| want(t.public.nullifiers))
            .expect("a dummy input with the wanted nullifier order")
    }
}

/// The (enabled) slot witnesses of `transfers` at the scenario's state, in order.
fn slots_of(sc: &Scenario, transfers: &[Transfer]) -> Vec<SlotWitness> {
    let specs: Vec<SlotSpec> = transfers.iter().map(SlotSpec::from).collect();
    let mut state = sc.state.clone();
    let built = build_batch_unchecked(&mut state, sc.shape, sc.batch_number, &specs).unwrap();
    built.witness.slots[..transfers.len()].to_vec()
}

/// A padding slot whose first nullifier satisfies `want` (its nullifier key drawn until it
/// does; a padding slot's witness is free).
fn padding_where(depth: usize, want: impl Fn(Fr) -> bool) -> SlotWitness {
    (1u64..10_000)
        .map(|nk| SlotWitness {
            nk: Fr::from(nk),
            ..SlotWitness::padding(depth)
        })
        .find(|p| want(spec_of(p).public_fields()[0]))
        .expect("a padding nullifier key with the wanted nullifier")
}

/// The circuit of the batch of `slots` over the scenario's state, completed by the replay.
fn completed(
    sc: &Scenario,
    slots: Vec<SlotWitness>,
    pick: &mut Pick<'_>,
    deviation: &Deviation,
) -> BatchCircuit {
    let mut w = BatchWitness {
        shape: sc.shape,
        batch_number: sc.batch_number,
        old: sc.state.summary(),
        slots,
        note_subtree_start: 0,
        note_subtree_path: SubtreePath::default(),
        nullifier_subtree_start: 0,
        nullifier_subtree_path: SubtreePath::default(),
    };
    let public_inputs = complete(&sc.state, &mut w, pick, deviation);
    BatchCircuit::new(w, public_inputs)
}

/// `Some((Pending(j), leaf))` for insertion `i` of slot `s`, where `leaf` is derived from pending
/// leaf `j` as the circuit holds it then.
fn pin_pending(
    at: (usize, usize),
    j: usize,
    leaf: impl Fn(NullifierLeaf) -> NullifierLeaf,
) -> impl FnMut(usize, usize, Fr, &Progress) -> Option<(LowLeafLocation, NullifierLeaf)> {
    move |s: usize, i: usize, _: Fr, progress: &Progress| {
        ((s, i) == at).then(|| (LowLeafLocation::Pending(j), leaf(progress.pending(j))))
    }
}

/// Replaying `build_batch`'s own batches, with their low-leaf witnesses and subtree paths
/// erased, gives back exactly its witness and public inputs (tree and pending low leaves, padding
/// slots, B = 2 and B = 4): the attacks below are completed by the builder's own rules.
#[test]
fn replay_of_honest_batches_is_the_builders_witness() {
    let mut pending_low_leaves = 0;
    for shape in [B2, B4] {
        let mut sc = Scenario::new(shape, 5);
        let alice = sc.new_key();
        for round in 0..4 {
            // full batches, then one with padding
            let n = if round == 3 { 1 } else { shape.batch_size };
            let deposits: Vec<Transfer> = (0..n).map(|_| sc.deposit(&alice, 10)).collect();
            let before = sc.state.clone();
            let built = sc.apply(&deposits).unwrap();
            let mut w = built.witness.clone();
            for slot in &mut w.slots {
                slot.insertions = SlotWitness::padding(shape.depth).insertions;
            }
            w.note_subtree_path = SubtreePath::default();
            w.nullifier_subtree_path = SubtreePath::default();
            let public_inputs = complete(&before, &mut w, &mut honest, &Deviation::default());
            assert_eq!(w, built.witness, "{shape} round {round}");
            assert_eq!(public_inputs, built.public_inputs, "{shape} round {round}");
            pending_low_leaves += w
                .slots
                .iter()
                .flat_map(|s| &s.insertions)
                .filter(|ins| matches!(ins.location, LowLeafLocation::Pending(_)))
                .count();
        }
    }
    assert!(pending_low_leaves > 0, "the replay met pending low leaves");
}

/// Guard `(s & !p.present) == false`: a padding slot's new leaf `(x, 0, 0)`, never written,
/// taken as the low leaf of a nullifier already in the set (`x < y`, `next_value = 0`).
#[test]
fn padding_slots_new_leaf_is_no_low_leaf() {
    let mut s = Spent::new(B2);
    let y = s.y;
    let respend = s.respend();
    let padding = padding_where(B2.depth, |x| x < y);
    let slots = vec![padding, slots_of(&s.sc, &[respend]).remove(0)];
    let mut pick = |slot: usize, i: usize, _: Fr, p: &Progress| {
        ((slot, i) == (1, 0)).then(|| {
            let (low, present) = p.pending[0];
            assert!(!present && low.value < y && low.next_value.is_zero());
            (LowLeafLocation::Pending(0), low)
        })
    };
    let circuit = completed(&s.sc, slots, &mut pick, &Deviation::default());
    assert_eq!(violated(circuit), ["pending_low_leaf_present"]);
}

/// Guard `(low_pending & !enabled) == false` (B = 4): Bob's payment leaves a pending leaf
/// `a < y`; a padding slot takes it as its low leaf, which re-points it at the padding slot's
/// nullifier `x > y` (ordering is not checked in a padding slot); a later slot then inserts the
/// spent `y` between `a` and `x`.
#[test]
fn padding_slot_cannot_repoint_a_pending_leaf() {
    let mut s = Spent::new(B4);
    let y = s.y;
    let bob_pays = s.bob_pays_where(|nfs| nfs.iter().any(|nf| *nf < y));
    let j = (0..2).find(|&j| bob_pays.public.nullifiers[j] < y).unwrap();
    let respend = s.respend();
    let mut slots = slots_of(&s.sc, &[bob_pays, respend]);
    slots.insert(1, padding_where(B4.depth, |x| x > y));
    slots.push(SlotWitness::padding(B4.depth));
    let mut pick = |slot: usize, i: usize, _: Fr, p: &Progress| match (slot, i) {
        (1, 0) => {
            assert!(p.pending[j].1, "a present pending leaf");
            Some((LowLeafLocation::Pending(j), p.pending(j)))
        }
        (2, 0) => {
            let low = p.pending(j);
            assert!(low.value < y && y < low.next_value, "repointed past y");
            Some((LowLeafLocation::Pending(j), low))
        }
        _ => None,
    };
    let circuit = completed(&s.sc, slots, &mut pick, &Deviation::default());
    assert_eq!(violated(circuit), ["pending_low_leaf_in_enabled_slot"]);
}

/// Guard `sel_sum == low_pending`: a double spend claiming a pending low leaf but selecting
/// none, so the low leaf is the all-zero `(0, 0, 0)` (`0 < y`, `next_value = 0`) and nothing is
/// rewritten.
#[test]
fn pending_low_leaf_needs_a_selected_leaf() {
    let mut s = Spent::new(B2);
    let respend = s.respend();
    let slots = vec![
        slots_of(&s.sc, &[respend]).remove(0),
        SlotWitness::padding(B2.depth),
    ];
    let mut pick = |slot: usize, i: usize, _: Fr, p: &Progress| {
        ((slot, i) == (0, 0)).then(|| {
            // no earlier insertion: `Pending(0)` selects nothing
            assert!(p.pending.is_empty());
            (LowLeafLocation::Pending(0), NullifierLeaf::default())
        })
    };
    let circuit = completed(&s.sc, slots, &mut pick, &Deviation::default());
    assert_eq!(violated(circuit), ["low_leaf_selector_sum"]);
}

/// Guard `v == chosen.value` in pending mode: a double spend whose low leaf is Bob's pending leaf
/// `(a, ni, nv)` with `a > y` but claimed with value 0, so `0 < y < nv`.
#[test]
fn pending_low_leaf_value_is_the_pending_leafs() {
    let mut s = Spent::new(B2);
    let y = s.y;
    let bob_pays = s.bob_pays_where(|nfs| nfs.iter().any(|nf| *nf > y));
    let j = (0..2).find(|&j| bob_pays.public.nullifiers[j] > y).unwrap();
    let respend = s.respend();
    let slots = slots_of(&s.sc, &[bob_pays, respend]);
    let mut pick = pin_pending((1, 0), j, |leaf| {
        assert!(leaf.value > y && (leaf.next_value > y || leaf.next_value.is_zero()));
        NullifierLeaf {
            value: Fr::zero(),
            ..leaf
        }
    });
    let circuit = completed(&s.sc, slots, &mut pick, &Deviation::default());
    assert_eq!(violated(circuit), ["pending_low_leaf_value_matches"]);
}

/// Guard `nv == chosen.next_value` in pending mode: a double spend whose low leaf is Bob's
/// pending leaf `(a, ni, nv)` with `a < y` (so `nv <= y`) claimed with `next_value = 0`.
#[test]
fn pending_low_leaf_next_value_is_the_pending_leafs() {
    let mut s = Spent::new(B2);
    let y = s.y;
    let bob_pays = s.bob_pays_where(|nfs| nfs.iter().any(|nf| *nf < y));
    let j = (0..2).find(|&j| bob_pays.public.nullifiers[j] < y).unwrap();
    let respend = s.respend();
    let slots = slots_of(&s.sc, &[bob_pays, respend]);
    let mut pick = pin_pending((1, 0), j, |leaf| {
        assert!(leaf.value < y && !leaf.next_value.is_zero() && leaf.next_value <= y);
        NullifierLeaf {
            next_value: Fr::zero(),
            ..leaf
        }
    });
    let circuit = completed(&s.sc, slots, &mut pick, &Deviation::default());
    assert_eq!(violated(circuit), ["pending_low_leaf_next_value_matches"]);
}

/// Guard `ni == chosen.next_index` in pending mode. The ordering reads values only, so a wrong
/// `next_index` is no double spend; it is a new leaf whose pointer is not its low leaf's, a
/// proven state root whose linked list no honest node reproduces. An honest batch where Bob's
/// second nullifier has his first as its low leaf, claimed with `next_index + 1`.
#[test]
fn pending_low_leaf_next_index_is_the_pending_leafs() {
    let mut s = Spent::new(B2);
    let mut draws = 0..10_000;
    let bob_pays = loop {
        draws
            .next()
            .expect("a dummy nullifier just above Bob's note's");
        let t = s.bob_pays_where(|_| true);
        let slot = slots_of(&s.sc, std::slice::from_ref(&t)).remove(0);
        if slot.insertions[1].location == LowLeafLocation::Pending(0) {
            break t;
        }
    };
    let slots = vec![
        slots_of(&s.sc, &[bob_pays]).remove(0),
        SlotWitness::padding(B2.depth),
    ];
    // control: honestly completed, the batch is valid
    let control = completed(&s.sc, slots.clone(), &mut honest, &Deviation::default());
    assert!(violated(control).is_empty());
    let mut pick = pin_pending((0, 1), 0, |leaf| NullifierLeaf {
        next_index: leaf.next_index + 1,
        ..leaf
    });
    let circuit = completed(&s.sc, slots, &mut pick, &Deviation::default());
    assert_eq!(violated(circuit), ["pending_low_leaf_next_index_matches"]);
}

/// Guard `old_root == nf_root` in tree mode: a double spend opening leaf 0 as the genesis leaf
/// `(0, 0, 0)` (`0 < y`, `next_value = 0`) with its current siblings, i.e. against a root that
/// is not the current one; the rewritten leaf then chains on as the new root.
#[test]
fn tree_low_leaf_opens_at_the_current_root() {
    let mut s = Spent::new(B2);
    let respend = s.respend();
    let slots = vec![
        slots_of(&s.sc, &[respend]).remove(0),
        SlotWitness::padding(B2.depth),
    ];
    let mut pick = |slot: usize, i: usize, _: Fr, p: &Progress| {
        ((slot, i) == (0, 0)).then(|| {
            assert_ne!(p.tree.leaf(0), Some(&NullifierLeaf::default()));
            (LowLeafLocation::Tree(0), NullifierLeaf::default())
        })
    };
    let circuit = completed(&s.sc, slots, &mut pick, &Deviation::default());
    assert_eq!(violated(circuit), ["tree_low_leaf_at_current_root"]);
}

/// Guard `old == current` of the appends: an honest payment whose nullifier subtree is written
/// over the siblings of an empty tree, so the new nullifier root holds this batch's leaves only
/// (every earlier nullifier, the genesis leaf included, wiped).
#[test]
fn nullifier_append_extends_the_current_root() {
    let mut s = Spent::new(B2);
    let pay = s.sc.pay(&s.alice, &s.bob, 10, 0, 0);
    let slots = vec![
        slots_of(&s.sc, &[pay]).remove(0),
        SlotWitness::padding(B2.depth),
    ];
    let control = completed(&s.sc, slots.clone(), &mut honest, &Deviation::default());
    assert!(violated(control).is_empty());
    let start = B2.subtree_start(s.sc.state.nullifiers.count());
    let empty = SparseMerkleTree::new(B2.depth)
        .subtree_path(start, B2.subtree_height())
        .unwrap();
    let wipe = Deviation {
        nullifier_subtree_path: Some(empty),
        ..Deviation::default()
    };
    let circuit = completed(&s.sc, slots, &mut honest, &wipe);
    assert_eq!(violated(circuit), ["append_over_current_root"]);
}

/// A padding slot's nine public fields are `select_or_zero`ed: a padding slot that publishes a
/// withdrawal and appends two notes of a million to Alice, with no input, balance or signature
/// (all gated off in a padding slot). The gadget computes the zeroed fields itself, so the
/// mismatch can only surface where they meet the public inputs: the new state root (its notes)
/// and the batch hash; nothing else is violated.
#[test]
fn padding_slot_publishes_zeros() {
    let mut s = Spent::new(B2);
    let pay = s.sc.pay(&s.alice, &s.bob, 10, 0, 0);
    let mint = OutputWitness {
        addr: s.alice.owner_tag(),
        value: Fr::from(1_000_000u64),
        r: Fr::from(7u64),
    };
    let padding = SlotWitness {
        outputs: [mint, mint],
        public_out: Fr::from(5_000u64),
        dest: Fr::from(0xbad_u64),
        ..SlotWitness::padding(B2.depth)
    };
    let slots = vec![slots_of(&s.sc, &[pay]).remove(0), padding];
    let publish = Deviation {
        padding_publishes: true,
        ..Deviation::default()
    };
    let circuit = completed(&s.sc, slots, &mut honest, &publish);
    assert_eq!(
        violated(circuit),
        ["new_state_root_matches", "batch_hash_matches"]
    );
}

/// A padding slot with a random witness (keys, notes, amounts below 2^64, a signature over
/// something else, a random tree low leaf and path).
fn garbage_padding<R: RngCore + CryptoRng>(rng: &mut R, depth: usize) -> SlotWitness {
    let key = SpendingKey::random(rng);
    let path = |rng: &mut R| MerklePath {
        siblings: (0..depth / 2)
            .map(|_| [(); 3].map(|_| Fr::rand(rng)))
            .collect(),
    };
    let input = |rng: &mut R| InputWitness {
        value: Fr::from(rng.gen::<u64>()),
        rho: Fr::rand(rng),
        r: Fr::rand(rng),
        position: rng.gen_range(0..1u64 << depth),
        path: path(rng),
    };
    let output = |rng: &mut R| OutputWitness {
        addr: Fr::rand(rng),
        value: Fr::from(rng.gen::<u64>()),
        r: Fr::rand(rng),
    };
    let insertion = |rng: &mut R| InsertionWitness {
        location: LowLeafLocation::Tree(rng.gen_range(0..1u64 << depth)),
        low_leaf: NullifierLeaf {
            value: Fr::rand(rng),
            next_index: rng.gen(),
            next_value: Fr::rand(rng),
        },
        path: path(rng),
    };
    SlotWitness {
        enabled: false,
        ak: key.proof_generation_key().ak.0,
        nk: Fr::rand(rng),
        inputs: [input(rng), input(rng)],
        outputs: [output(rng), output(rng)],
        public_in: Fr::from(rng.gen::<u64>()),
        public_out: Fr::from(rng.gen::<u64>()),
        fee: Fr::from(rng.gen::<u64>()),
        dest: Fr::rand(rng),
        deposit_ref: Fr::rand(rng),
        ciphertext_hash: Fr::rand(rng),
        signature: key.sign(Fr::rand(rng)),
        insertions: [insertion(rng), insertion(rng)],
    }
}

/// DESIGN §7: an unused slot changes nothing. Whatever a padding slot's witness holds, the batch
/// proves the same public inputs as with a clean padding slot, after a real slot or before one;
/// and a padding slot whose new nullifier leaves are written (the `present` gate of the nullifier
/// append) changes the new state root, which is refused.
#[test]
fn unused_slot_changes_nothing() {
    let mut s = Spent::new(B2);
    let pay = s.sc.pay(&s.alice, &s.bob, 10, 0, 0);
    let paying = slots_of(&s.sc, std::slice::from_ref(&pay)).remove(0);
    let garbage = garbage_padding(s.sc.rng(), B2.depth);

    // After the real slot: the builder's own public inputs.
    let mut state = s.sc.state.clone();
    let built =
        build_batch_unchecked(&mut state, B2, s.sc.batch_number, &[SlotSpec::from(&pay)]).unwrap();
    assert!(violated(built.circuit()).is_empty());
    let mut w = built.witness.clone();
    w.slots[1] = garbage.clone();
    assert!(violated(BatchCircuit::new(w, built.public_inputs)).is_empty());

    // Before the real slot: the same public inputs as a clean padding slot there.
    let clean = completed(
        &s.sc,
        vec![SlotWitness::padding(B2.depth), paying.clone()],
        &mut honest,
        &Deviation::default(),
    );
    let dirty = completed(
        &s.sc,
        vec![garbage.clone(), paying.clone()],
        &mut honest,
        &Deviation::default(),
    );
    assert_eq!(dirty.public_inputs, clean.public_inputs);
    assert!(violated(clean).is_empty());
    assert!(violated(dirty).is_empty());

    // A padding slot that writes its new leaves.
    for slots in [vec![paying.clone(), garbage.clone()], vec![garbage, paying]] {
        let write = Deviation {
            padding_writes_leaves: true,
            ..Deviation::default()
        };
        let circuit = completed(&s.sc, slots, &mut honest, &write);
        assert_eq!(violated(circuit), ["new_state_root_matches"]);
    }
}

/// `public_in < 2^64`: a payment with a deposit of `2^64 + 7` (its outputs absorb it while
/// staying below 2^64 each: `2^64` minted) or of `p - 1` (a negative deposit), balanced in the
/// field and re-signed.
#[test]
fn public_in_is_below_2_pow_64() {
    let mut s = Spent::new(B2);
    let pay = s.sc.pay(&s.alice, &s.bob, 100, 0, 0);
    let two64 = Fr::from(u64::MAX) + Fr::one();
    for (name, public_in) in [("2^64 + 7", two64 + Fr::from(7u64)), ("p - 1", -Fr::one())] {
        let mut spec = SlotSpec::from(&pay);
        let total = spec.inputs[0].value + spec.inputs[1].value + public_in;
        spec.public_in = public_in;
        spec.outputs[0].value = if public_in == -Fr::one() {
            Fr::from(100u64)
        } else {
            Fr::from(u64::MAX)
        };
        spec.outputs[1].value = total - spec.outputs[0].value;
        assert!(spec.outputs[1].value < two64, "{name}: outputs in range");
        spec.signature = s.alice.sign(spec.sighash());
        let mut state = s.sc.state.clone();
        let built = build_batch_unchecked(&mut state, B2, s.sc.batch_number, &[spec]).unwrap();
        assert_eq!(violated(built.circuit()), ["public_in_range"], "{name}");
    }
}
