//! A cheating prover's witness completion: the batch circuit's dataflow replayed natively.
//!
//! [`complete`] takes a batch witness whose slots (keys, notes, amounts, signatures, `enabled`
//! bits) are fixed and fills in everything the circuit derives from them, exactly as the circuit
//! computes it and without checking any rule: each insertion's low-leaf witness (an honest choice,
//! or one the test pins through a [`Pick`]), the nullifier tree after every tree-mode low-leaf
//! rewrite, the pending leaves with their pointer rewrites and `present` flags, both subtree paths,
//! and the public inputs the result proves. A witness completed this way satisfies every
//! constraint the pinned choices do not break; a [`Deviation`] replays what the circuit would
//! compute with one of its dataflow gates removed.

use ark_bn254::Fr;
use ark_ff::Zero;
use veil_circuits::batch::{
    batch_hash_fields, BatchPublicInputs, BatchWitness, InsertionWitness, LowLeafLocation,
    SlotSpec, SlotWitness,
};
use veil_circuits::tree::{subtree_roots, MerklePath, NullifierLeaf, NullifierTree, SubtreePath};
use veil_circuits::{RollupState, StateSummary};

/// The nullifier logic's state part-way through a batch, as the circuit tracks it.
pub struct Progress {
    /// The nullifier tree with every tree-mode low-leaf rewrite so far.
    pub tree: NullifierTree,
    /// This batch's new leaves so far with their `present` flags (the slot's `enabled`), after
    /// every pointer rewrite so far.
    pub pending: Vec<(NullifierLeaf, bool)>,
}

impl Progress {
    /// Pending leaf `j` as the circuit holds it now.
    pub fn pending(&self, j: usize) -> NullifierLeaf {
        self.pending[j].0
    }

    /// The low leaf an honest prover picks for `x`: among the tree's leaves and the present
    /// pending leaves, the one with the largest value whose range holds `x` (`v < x` and
    /// `x < nv` or `nv == 0`), a tree leaf on a tie. In an honest batch that is the only one, so
    /// this is `build_batch`'s choice.
    fn honest_low_leaf(&self, x: Fr) -> (LowLeafLocation, NullifierLeaf) {
        let tree = (0..self.tree.count())
            .filter_map(|i| self.tree.leaf(i).map(|l| (LowLeafLocation::Tree(i), *l)));
        let pending = self
            .pending
            .iter()
            .enumerate()
            .filter(|(_, (_, present))| *present)
            .map(|(j, (l, _))| (LowLeafLocation::Pending(j), *l));
        tree.chain(pending)
            .filter(|(_, l)| l.is_low_leaf_of(x))
            .max_by(|a, b| {
                let tree_first = |loc: &LowLeafLocation| matches!(loc, LowLeafLocation::Tree(_));
                a.1.value
                    .cmp(&b.1.value)
                    .then(tree_first(&a.0).cmp(&tree_first(&b.0)))
            })
            .unwrap_or_else(|| panic!("no leaf of this batch's list is a low leaf of {x}"))
    }
}

/// Chooses the low-leaf location and values of insertion `i` of slot `s`, inserting `x`, given
/// the progress so far; `None` keeps the default (an honest choice in an enabled slot, the
/// padding witness's own in a padding slot).
pub type Pick<'a> =
    dyn FnMut(usize, usize, Fr, &Progress) -> Option<(LowLeafLocation, NullifierLeaf)> + 'a;

/// No pinned choice.
pub fn honest(_: usize, _: usize, _: Fr, _: &Progress) -> Option<(LowLeafLocation, NullifierLeaf)> {
    None
}

/// What the circuit would compute if one of its dataflow gates were gone.
#[derive(Debug, Clone, Default)]
pub struct Deviation {
    /// The nullifier subtree is written over this path instead of the one at the current root.
    pub nullifier_subtree_path: Option<SubtreePath>,
    /// Padding slots publish their own fields (and append their output notes) instead of zeros.
    pub padding_publishes: bool,
    /// Padding slots' new nullifier leaves are written instead of empty leaves.
    pub padding_writes_leaves: bool,
}

/// The transfer a slot's witness amounts to, as the circuit reads it: inputs owned by the
/// slot's own `(ak, nk)`.
pub fn spec_of(slot: &SlotWitness) -> SlotSpec {
    SlotSpec::from(slot)
}

/// Completes `w` over `state` (the state before the batch): sets its old state, subtree starts
/// and paths and every insertion witness, and returns the public inputs the completed witness
/// proves. Slots, their `enabled` bits and the batch number are the caller's.
pub fn complete(
    state: &RollupState,
    w: &mut BatchWitness,
    pick: &mut Pick<'_>,
    deviation: &Deviation,
) -> BatchPublicInputs {
    let shape = w.shape;
    let depth = shape.depth;
    let k = shape.subtree_height();
    let zero_path = || MerklePath {
        siblings: vec![[Fr::zero(); 3]; depth / 2],
    };
    w.old = state.summary();
    let nullifier_start = shape.subtree_start(state.nullifiers.count());
    let note_start = shape.subtree_start(state.notes.count());
    let mut progress = Progress {
        tree: state.nullifiers.clone(),
        pending: Vec::with_capacity(shape.leaves_per_batch()),
    };
    let mut published = Vec::with_capacity(shape.batch_size);
    for (s, slot) in w.slots.iter_mut().enumerate() {
        let own = spec_of(slot).public_fields();
        let fields = if slot.enabled || deviation.padding_publishes {
            own
        } else {
            own.map(|_| Fr::zero())
        };
        published.push(fields);
        // The circuit inserts the slot's own nullifiers, padding or not.
        for (i, &x) in own[..2].iter().enumerate() {
            let new_index = nullifier_start + (2 * s + i) as u64;
            let (location, low) = match pick(s, i, x, &progress) {
                Some(chosen) => chosen,
                None if slot.enabled => progress.honest_low_leaf(x),
                None => (slot.insertions[i].location, slot.insertions[i].low_leaf),
            };
            let mut path = zero_path();
            match location {
                LowLeafLocation::Tree(index) if slot.enabled => {
                    path = progress.tree.path(index).unwrap();
                    let rewritten = NullifierLeaf {
                        value: low.value,
                        next_index: new_index,
                        next_value: x,
                    };
                    progress
                        .tree
                        .update_leaf(index, rewritten)
                        .unwrap_or_else(|e| panic!("tree low leaf {index}: {e}"));
                }
                LowLeafLocation::Tree(_) => {
                    // A padding slot's tree-mode witness is never checked; keep its own path.
                    path = slot.insertions[i].path.clone();
                }
                LowLeafLocation::Pending(j) => {
                    // Every selected pending leaf is rewritten, whatever the slot.
                    if let Some((leaf, _)) = progress.pending.get_mut(j) {
                        leaf.next_index = new_index;
                        leaf.next_value = x;
                    }
                }
            }
            progress.pending.push((
                NullifierLeaf {
                    value: x,
                    next_index: low.next_index,
                    next_value: low.next_value,
                },
                slot.enabled,
            ));
            slot.insertions[i] = InsertionWitness {
                location,
                low_leaf: low,
                path,
            };
        }
    }

    let nullifier_leaves: Vec<Fr> = progress
        .pending
        .iter()
        .map(|(leaf, present)| {
            if *present || deviation.padding_writes_leaves {
                leaf.hash()
            } else {
                Fr::zero()
            }
        })
        .collect();
    let nullifier_path = match &deviation.nullifier_subtree_path {
        Some(path) => path.clone(),
        None => progress
            .tree
            .tree()
            .subtree_path(nullifier_start, k)
            .unwrap(),
    };
    let nullifier_root =
        nullifier_path.root(&subtree_roots(&nullifier_leaves), nullifier_start >> k);

    let note_leaves: Vec<Fr> = published.iter().flat_map(|f| [f[2], f[3]]).collect();
    let note_path = state.notes.subtree_path(note_start, k).unwrap();
    let note_root = note_path.root(&subtree_roots(&note_leaves), note_start >> k);

    w.note_subtree_start = note_start;
    w.note_subtree_path = note_path;
    w.nullifier_subtree_start = nullifier_start;
    w.nullifier_subtree_path = nullifier_path;
    let n = shape.leaves_per_batch() as u64;
    let new_state = StateSummary {
        note_root,
        note_count: note_start + n,
        nullifier_root,
        nullifier_count: nullifier_start + n,
    };
    BatchPublicInputs {
        old_state_root: w.old.state_root(),
        new_state_root: new_state.state_root(),
        batch_hash: batch_hash_fields(w.batch_number, shape.batch_size, &published),
    }
}
