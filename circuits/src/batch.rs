//! Batches: the shape `(B, D)`, the circuit's witness, its three public inputs, and the native
//! witness builder `(old state, transfers) -> (circuit, new state, public inputs)` (DESIGN §7).
//!
//! Slot order is the order in which tree updates chain. A batch always occupies `2B` note
//! positions and `2B` nullifier-leaf indices, starting at the current count rounded up to a
//! multiple of `2B` (so each batch's new leaves form one aligned subtree; padding slots leave
//! zero leaves). Inside a batch a nullifier's low leaf is either a leaf already in the tree or
//! one of this batch's earlier new leaves ("pending"), which the circuit tracks in-circuit.

pub mod circuit;
pub mod file;
pub mod published;

use ark_bn254::Fr;
use ark_ed_on_bn254::EdwardsAffine;
use ark_ff::Zero;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

use crate::constants::{domain, DOM_BATCH};
use crate::eddsa::Signature;
use crate::field;
use crate::poseidon::poseidon;
use crate::state::{RollupState, StateSummary};
use crate::transfer::{sighash, SlotFields, Transfer, TransferError, TransferPublic};
use crate::tree::{MerklePath, NullifierLeaf, SubtreePath, TreeError};

pub use circuit::BatchCircuit;
pub use published::{apply_published, AppliedBatch};

/// The circuit shape: batch size `B` (a power of two) and tree depth `D`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BatchShape {
    /// Transfer slots per batch.
    pub batch_size: usize,
    /// Depth of both trees: `log2` of their capacity (even; `D / 2` 4-ary levels).
    pub depth: usize,
}

impl BatchShape {
    /// A validated shape.
    pub fn new(batch_size: usize, depth: usize) -> Result<Self, BatchError> {
        let shape = BatchShape { batch_size, depth };
        if batch_size == 0 || !batch_size.is_power_of_two() || batch_size > 1 << 10 {
            return Err(BatchError::Shape(format!(
                "batch size must be a power of two in 1..=1024, got {batch_size}"
            )));
        }
        if !depth.is_multiple_of(2) {
            return Err(BatchError::OddDepth { depth });
        }
        if depth > crate::constants::MAX_DEPTH || depth < shape.subtree_height() + 1 {
            return Err(BatchError::Shape(format!(
                "depth must be in {}..={}, got {depth}",
                shape.subtree_height() + 1,
                crate::constants::MAX_DEPTH
            )));
        }
        Ok(shape)
    }

    /// New leaves per batch in each tree: `2B`.
    pub fn leaves_per_batch(&self) -> usize {
        2 * self.batch_size
    }

    /// `log2(2B)`: height of a batch's subtree.
    pub fn subtree_height(&self) -> usize {
        self.leaves_per_batch().trailing_zeros() as usize
    }

    /// The aligned start of the next batch's subtree given a tree's count.
    pub fn subtree_start(&self, count: u64) -> u64 {
        let n = self.leaves_per_batch() as u64;
        count.div_ceil(n) * n
    }
}

impl std::fmt::Display for BatchShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "B{}-D{}", self.batch_size, self.depth)
    }
}

/// The three public inputs of a batch proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchPublicInputs {
    /// State root before the batch.
    #[serde(with = "field::serde_hex")]
    pub old_state_root: Fr,
    /// State root after the batch.
    #[serde(with = "field::serde_hex")]
    pub new_state_root: Fr,
    /// Poseidon chain over the batch number and every slot's public data.
    #[serde(with = "field::serde_hex")]
    pub batch_hash: Fr,
}

impl BatchPublicInputs {
    /// In the order the circuit allocates them.
    pub fn to_vec(&self) -> Vec<Fr> {
        vec![self.old_state_root, self.new_state_root, self.batch_hash]
    }
}

/// `batch_hash`: `h_0 = H(DOM_BATCH, n)`, `h_{s+1} = H(h_s, sighash(slot_s))`, over all `B` slots
/// (padding slots are all-zero public data). A verifier recomputes it from published data alone.
pub fn batch_hash(batch_number: u64, batch_size: usize, slots: &[TransferPublic]) -> Fr {
    let fields: Vec<SlotFields> = slots.iter().map(|p| p.fields()).collect();
    batch_hash_fields(batch_number, batch_size, &fields)
}

/// Where an insertion's low leaf lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LowLeafLocation {
    /// A leaf of the nullifier tree, at this index.
    Tree(u64),
    /// This batch's `j`-th new leaf (an earlier insertion).
    Pending(usize),
}

/// Witness of one nullifier insertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertionWitness {
    /// Where the low leaf is.
    pub location: LowLeafLocation,
    /// The low leaf before the update.
    pub low_leaf: NullifierLeaf,
    /// Its path at the current nullifier root (zeros for a pending low leaf).
    pub path: MerklePath,
}

/// Witness of one input note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputWitness {
    /// Value (a field element so tests can try out-of-range values).
    pub value: Fr,
    /// `rho`.
    pub rho: Fr,
    /// `r`.
    pub r: Fr,
    /// Leaf position.
    pub position: u64,
    /// Path at the batch's old note root.
    pub path: MerklePath,
}

/// Witness of one output note (`rho` is derived in-circuit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputWitness {
    /// Recipient owner tag.
    pub addr: Fr,
    /// Value.
    pub value: Fr,
    /// `r`.
    pub r: Fr,
}

/// Everything the circuit needs about one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotWitness {
    /// False for a padding (no-op) slot.
    pub enabled: bool,
    /// Spend-authorisation key `A`.
    pub ak: EdwardsAffine,
    /// Nullifier key.
    pub nk: Fr,
    /// Inputs.
    pub inputs: [InputWitness; 2],
    /// Outputs.
    pub outputs: [OutputWitness; 2],
    /// Deposit.
    pub public_in: Fr,
    /// Withdrawal.
    pub public_out: Fr,
    /// Fee.
    pub fee: Fr,
    /// Withdrawal destination hash.
    pub dest: Fr,
    /// Deposit reference.
    pub deposit_ref: Fr,
    /// Hash of the two note ciphertexts (signed, never opened in-circuit).
    pub ciphertext_hash: Fr,
    /// Signature over the sighash.
    pub signature: Signature,
    /// Nullifier insertions of the two inputs.
    pub insertions: [InsertionWitness; 2],
}

impl SlotWitness {
    /// A padding slot for depth `depth`: changes nothing, all-zero public data.
    pub fn padding(depth: usize) -> Self {
        let zero_path = MerklePath {
            siblings: vec![[Fr::zero(); 3]; depth / 2],
        };
        let input = InputWitness {
            value: Fr::zero(),
            rho: Fr::zero(),
            r: Fr::zero(),
            position: 0,
            path: zero_path.clone(),
        };
        let output = OutputWitness {
            addr: Fr::zero(),
            value: Fr::zero(),
            r: Fr::zero(),
        };
        let insertion = InsertionWitness {
            location: LowLeafLocation::Tree(0),
            low_leaf: NullifierLeaf::default(),
            path: zero_path,
        };
        SlotWitness {
            enabled: false,
            ak: EdwardsAffine::zero(),
            nk: Fr::zero(),
            inputs: [input.clone(), input],
            outputs: [output, output],
            public_in: Fr::zero(),
            public_out: Fr::zero(),
            fee: Fr::zero(),
            dest: Fr::zero(),
            deposit_ref: Fr::zero(),
            ciphertext_hash: Fr::zero(),
            signature: Signature {
                r: EdwardsAffine::zero(),
                s: Default::default(),
            },
            insertions: [insertion.clone(), insertion],
        }
    }
}

/// The whole private witness of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchWitness {
    /// Shape.
    pub shape: BatchShape,
    /// Batch number (bound into `batch_hash`).
    pub batch_number: u64,
    /// State before the batch.
    pub old: StateSummary,
    /// `B` slots.
    pub slots: Vec<SlotWitness>,
    /// Start of the note subtree (aligned).
    pub note_subtree_start: u64,
    /// The path above the note subtree (`⌊(D - log2(2B)) / 2⌋` levels, a pair if `log2(2B)` is
    /// odd).
    pub note_subtree_path: SubtreePath,
    /// Start of the nullifier subtree (aligned).
    pub nullifier_subtree_start: u64,
    /// The path above the nullifier subtree, after all low-leaf updates.
    pub nullifier_subtree_path: SubtreePath,
}

impl BatchWitness {
    /// Checks that every length and index fits the witness's shape: `B` slots, `D / 2`-level
    /// paths, subtree paths of `⌊(D - log2(2B)) / 2⌋` levels with a pair exactly when
    /// `log2(2B)` is odd, positions and leaf indices below `2^D`, aligned
    /// subtree starts, pending low leaves among earlier insertions. The circuit's synthesis
    /// assumes these (a wrong length would change the constraint system or panic); whether the
    /// values satisfy the circuit is a separate question.
    pub fn check_dimensions(&self) -> Result<(), BatchError> {
        let shape = BatchShape::new(self.shape.batch_size, self.shape.depth)?;
        let bad = |msg: String| Err(BatchError::Witness(msg));
        let depth = shape.depth;
        let capacity = 1u128 << depth;
        if self.slots.len() != shape.batch_size {
            return bad(format!(
                "{} slots, the shape has {}",
                self.slots.len(),
                shape.batch_size
            ));
        }
        let levels = depth / 2;
        let m = shape.subtree_height();
        let above = (depth - m) / 2;
        let n = shape.leaves_per_batch() as u128;
        for (name, start, path) in [
            ("note", self.note_subtree_start, &self.note_subtree_path),
            (
                "nullifier",
                self.nullifier_subtree_start,
                &self.nullifier_subtree_path,
            ),
        ] {
            if path.path.len() != above {
                return bad(format!(
                    "{name} subtree path has {} levels, expected {above}",
                    path.path.len()
                ));
            }
            if path.pair.is_some() != (m % 2 == 1) {
                return bad(format!(
                    "{name} subtree path {} a pair, a subtree of 2^{m} leaves {} one",
                    if path.pair.is_some() { "has" } else { "lacks" },
                    if m % 2 == 1 { "needs" } else { "has none" }
                ));
            }
            if start as u128 + n > capacity || shape.subtree_start(start) != start {
                return bad(format!(
                    "{name} subtree start {start} is not an aligned start of {n} leaves below 2^{depth}"
                ));
            }
        }
        for (s, slot) in self.slots.iter().enumerate() {
            for (i, input) in slot.inputs.iter().enumerate() {
                if input.path.len() != levels {
                    return bad(format!(
                        "slot {s} input {i}: path has {} levels, expected {levels}",
                        input.path.len()
                    ));
                }
                if input.position as u128 >= capacity {
                    return bad(format!(
                        "slot {s} input {i}: position {} is not below 2^{depth}",
                        input.position
                    ));
                }
            }
            for (i, ins) in slot.insertions.iter().enumerate() {
                if ins.path.len() != levels {
                    return bad(format!(
                        "slot {s} insertion {i}: path has {} levels, expected {levels}",
                        ins.path.len()
                    ));
                }
                match ins.location {
                    LowLeafLocation::Tree(index) if index as u128 >= capacity => {
                        return bad(format!(
                            "slot {s} insertion {i}: low-leaf index {index} is not below 2^{depth}"
                        ));
                    }
                    LowLeafLocation::Pending(j) if j >= 2 * s + i => {
                        return bad(format!(
                            "slot {s} insertion {i}: pending low leaf {j} is not an earlier insertion"
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// The prover's field-valued view of one transfer. [`build_batch`] derives it from a validated
/// [`Transfer`]; adversarial tests build it directly (out-of-range values, foreign notes, forged
/// signatures) and feed [`build_batch_unchecked`], to show the circuit refuses what native
/// validation would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSpec {
    /// Spend-authorisation key `A`.
    pub ak: EdwardsAffine,
    /// Nullifier key.
    pub nk: Fr,
    /// Inputs: the note's real owner tag, value, rho, r and position.
    pub inputs: [InputSpec; 2],
    /// Outputs: owner tag, value, r (rho is derived).
    pub outputs: [OutputWitness; 2],
    /// Deposit, withdrawal, fee.
    pub public_in: Fr,
    /// Withdrawal.
    pub public_out: Fr,
    /// Fee.
    pub fee: Fr,
    /// Withdrawal destination hash.
    pub dest: Fr,
    /// Deposit reference.
    pub deposit_ref: Fr,
    /// Hash of the note ciphertexts.
    pub ciphertext_hash: Fr,
    /// Signature over [`SlotSpec::sighash`].
    pub signature: Signature,
}

/// The transfer a slot's witness amounts to, as the circuit reads it: inputs owned by the
/// slot's own `(ak, nk)`.
impl From<&SlotWitness> for SlotSpec {
    fn from(slot: &SlotWitness) -> SlotSpec {
        let addr = crate::keys::owner_tag(&crate::eddsa::PublicKey(slot.ak), slot.nk);
        SlotSpec {
            ak: slot.ak,
            nk: slot.nk,
            inputs: [0, 1].map(|i| {
                let input = &slot.inputs[i];
                InputSpec {
                    addr,
                    value: input.value,
                    rho: input.rho,
                    r: input.r,
                    position: input.position,
                }
            }),
            outputs: slot.outputs,
            public_in: slot.public_in,
            public_out: slot.public_out,
            fee: slot.fee,
            dest: slot.dest,
            deposit_ref: slot.deposit_ref,
            ciphertext_hash: slot.ciphertext_hash,
            signature: slot.signature,
        }
    }
}

/// One input of a [`SlotSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSpec {
    /// Owner tag the note really commits to.
    pub addr: Fr,
    /// Value.
    pub value: Fr,
    /// `rho`.
    pub rho: Fr,
    /// `r`.
    pub r: Fr,
    /// Position.
    pub position: u64,
}

impl SlotSpec {
    /// The public fields this slot publishes, derived natively from the witness.
    pub fn public_fields(&self) -> SlotFields {
        let nfs = self.inputs.map(|i| {
            crate::note::nullifier(
                self.nk,
                crate::note::commitment(i.addr, i.value, i.rho, i.r),
                i.position,
            )
        });
        let cms = [0, 1].map(|j| {
            let o = &self.outputs[j];
            crate::note::commitment(
                o.addr,
                o.value,
                crate::note::output_rho(nfs[0], j as u64 + 1),
                o.r,
            )
        });
        [
            nfs[0],
            nfs[1],
            cms[0],
            cms[1],
            self.public_in,
            self.public_out,
            self.fee,
            self.dest,
            self.deposit_ref,
            self.ciphertext_hash,
        ]
    }

    /// The message the spender signs.
    pub fn sighash(&self) -> Fr {
        sighash(&self.public_fields())
    }
}

impl From<&Transfer> for SlotSpec {
    fn from(t: &Transfer) -> Self {
        SlotSpec {
            ak: t.pgk.ak.0,
            nk: t.pgk.nk,
            inputs: t.inputs.map(|i| InputSpec {
                addr: i.note.addr,
                value: Fr::from(i.note.value),
                rho: i.note.rho,
                r: i.note.r,
                position: i.position,
            }),
            outputs: t.outputs.map(|o| OutputWitness {
                addr: o.addr,
                value: Fr::from(o.value),
                r: o.r,
            }),
            public_in: Fr::from(t.public.public_in),
            public_out: Fr::from(t.public.public_out),
            fee: Fr::from(t.public.fee),
            dest: t.public.dest,
            deposit_ref: t.public.deposit_ref,
            ciphertext_hash: t.public.ciphertext_hash,
            signature: t.signature,
        }
    }
}

/// A built batch: what the prover proves and what is published.
#[derive(Debug, Clone)]
pub struct BuiltBatch {
    /// The circuit's witness.
    pub witness: BatchWitness,
    /// The three public inputs.
    pub public_inputs: BatchPublicInputs,
    /// Public fields of the real (non-padding) slots, in slot order.
    pub public_fields: Vec<SlotFields>,
    /// The state after the batch.
    pub new_state: StateSummary,
}

impl BuiltBatch {
    /// The circuit to prove.
    pub fn circuit(&self) -> BatchCircuit {
        BatchCircuit::new(self.witness.clone(), self.public_inputs)
    }
}

/// Why a batch cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Invalid shape.
    #[error("invalid batch shape: {0}")]
    Shape(String),
    /// An odd depth: the 4-ary trees have `D / 2` levels.
    #[error(
        "invalid batch shape: depth {depth} is odd (the 4-ary state trees need an even depth)"
    )]
    OddDepth {
        /// The depth given.
        depth: usize,
    },
    /// More transfers than slots.
    #[error("{got} transfers do not fit in a batch of {max}")]
    TooManyTransfers {
        /// Transfers given.
        got: usize,
        /// Batch size.
        max: usize,
    },
    /// The state's depth is not the shape's.
    #[error("state depth {state} does not match circuit depth {circuit}")]
    DepthMismatch {
        /// State depth.
        state: usize,
        /// Shape depth.
        circuit: usize,
    },
    /// A transfer breaks a rule.
    #[error("transfer {index}: {error}")]
    Transfer {
        /// Slot.
        index: usize,
        /// Rule broken.
        error: TransferError,
    },
    /// A tree is full or a position is out of range.
    #[error("tree error: {0}")]
    Tree(#[from] TreeError),
    /// A witness whose lengths or indices do not fit its shape.
    #[error("malformed batch witness: {0}")]
    Witness(String),
}

/// `batch_hash` over explicit slot fields (padding slots are zeros).
pub fn batch_hash_fields(batch_number: u64, batch_size: usize, slots: &[SlotFields]) -> Fr {
    assert!(slots.len() <= batch_size);
    let mut h = poseidon(&[domain(DOM_BATCH), Fr::from(batch_number)]);
    for s in 0..batch_size {
        let fields = slots
            .get(s)
            .copied()
            .unwrap_or([Fr::zero(); crate::constants::SLOT_PUBLIC_FIELDS]);
        h = poseidon(&[h, sighash(&fields)]);
    }
    h
}

/// Applies `transfers` to `state` as batch `batch_number` and returns the circuit witness and
/// public inputs. Every transfer is validated first (in parallel) against the state and against
/// the earlier transfers of the batch; on any error `state` is left untouched.
pub fn build_batch(
    state: &mut RollupState,
    shape: BatchShape,
    batch_number: u64,
    transfers: &[Transfer],
) -> Result<BuiltBatch, BatchError> {
    check_shape(state, shape, transfers.len())?;
    {
        let st: &RollupState = state;
        transfers
            .par_iter()
            .enumerate()
            .try_for_each(|(index, t)| {
                t.validate(st, |_| false)
                    .map_err(|error| BatchError::Transfer { index, error })
            })?;
        let mut seen = HashSet::new();
        for (index, t) in transfers.iter().enumerate() {
            for (input, nf) in t.public.nullifiers.iter().enumerate() {
                if !seen.insert(*nf) {
                    return Err(BatchError::Transfer {
                        index,
                        error: TransferError::AlreadySpent { input },
                    });
                }
            }
        }
    }
    let specs: Vec<SlotSpec> = transfers.iter().map(SlotSpec::from).collect();
    build_batch_unchecked(state, shape, batch_number, &specs)
}

/// [`build_batch`] for transfers a node admitted: each passed `Transfer::validate` against this
/// state and the earlier admitted transfers, so the signature, balance, output commitments and
/// nullifier formulas are not checked again and the public fields are the transfers' own. Only
/// what the state decides is re-checked (cheaply, from the published nullifiers): the inputs
/// are in the note tree, no nullifier is spent or repeated. A transfer that slipped through
/// admission wrongly makes an unprovable witness, which the prover's witness check refuses.
pub fn build_batch_admitted(
    state: &mut RollupState,
    shape: BatchShape,
    batch_number: u64,
    transfers: &[Transfer],
) -> Result<BuiltBatch, BatchError> {
    check_shape(state, shape, transfers.len())?;
    let mut seen = HashSet::new();
    for (index, t) in transfers.iter().enumerate() {
        for (input, (nf, i)) in t.public.nullifiers.iter().zip(&t.inputs).enumerate() {
            let present = i.position < state.notes.count()
                && state.notes.leaf(i.position) == i.note.commitment();
            let error = if !i.is_dummy() && !present {
                Some(TransferError::UnknownNote { input })
            } else if state.nullifiers.contains(*nf) || !seen.insert(*nf) {
                Some(TransferError::AlreadySpent { input })
            } else {
                None
            };
            if let Some(error) = error {
                return Err(BatchError::Transfer { index, error });
            }
        }
    }
    let specs: Vec<SlotSpec> = transfers.iter().map(SlotSpec::from).collect();
    let fields = transfers.iter().map(|t| t.public.fields()).collect();
    build_with_fields(state, shape, batch_number, &specs, fields)
}

fn check_shape(state: &RollupState, shape: BatchShape, n: usize) -> Result<(), BatchError> {
    if n > shape.batch_size {
        return Err(BatchError::TooManyTransfers {
            got: n,
            max: shape.batch_size,
        });
    }
    if state.depth() != shape.depth {
        return Err(BatchError::DepthMismatch {
            state: state.depth(),
            circuit: shape.depth,
        });
    }
    let leaves = shape.leaves_per_batch() as u64;
    let capacity = 1u64 << shape.depth;
    if shape.subtree_start(state.notes.count()) + leaves > capacity
        || shape.subtree_start(state.nullifiers.count()) + leaves > capacity
    {
        return Err(BatchError::Tree(TreeError::TreeFull { depth: shape.depth }));
    }
    Ok(())
}

/// Builds the witness for `specs` *without* validating them: what a (possibly malicious) prover
/// would do. The circuit, not this function, decides whether the result is provable. Fails only
/// on shape errors and out-of-range positions.
pub fn build_batch_unchecked(
    state: &mut RollupState,
    shape: BatchShape,
    batch_number: u64,
    specs: &[SlotSpec],
) -> Result<BuiltBatch, BatchError> {
    let fields = specs.par_iter().map(SlotSpec::public_fields).collect();
    build_with_fields(state, shape, batch_number, specs, fields)
}

/// [`build_batch_unchecked`] with each slot's public fields given (`fields[s]` for `specs[s]`).
pub(crate) fn build_with_fields(
    state: &mut RollupState,
    shape: BatchShape,
    batch_number: u64,
    specs: &[SlotSpec],
    fields: Vec<SlotFields>,
) -> Result<BuiltBatch, BatchError> {
    check_shape(state, shape, specs.len())?;
    let depth = shape.depth;
    let zero_path = || MerklePath {
        siblings: vec![[Fr::zero(); 3]; depth / 2],
    };
    for spec in specs {
        for i in &spec.inputs {
            if i.position >> depth != 0 {
                return Err(BatchError::Tree(TreeError::PositionOutOfRange {
                    position: i.position,
                    capacity: 1u64 << depth,
                }));
            }
        }
    }
    let old = state.summary();

    let mut slots: Vec<SlotWitness> = Vec::with_capacity(shape.batch_size);
    for spec in specs {
        let inputs = spec.inputs.map(|i| InputWitness {
            value: i.value,
            rho: i.rho,
            r: i.r,
            position: i.position,
            path: if i.value.is_zero() {
                zero_path()
            } else {
                state
                    .notes
                    .path(i.position)
                    .expect("position checked above")
            },
        });
        slots.push(SlotWitness {
            enabled: true,
            ak: spec.ak,
            nk: spec.nk,
            inputs,
            outputs: spec.outputs,
            public_in: spec.public_in,
            public_out: spec.public_out,
            fee: spec.fee,
            dest: spec.dest,
            deposit_ref: spec.deposit_ref,
            ciphertext_hash: spec.ciphertext_hash,
            signature: spec.signature,
            insertions: SlotWitness::padding(depth).insertions,
        });
    }
    while slots.len() < shape.batch_size {
        slots.push(SlotWitness::padding(depth));
    }

    // Nullifier insertions, chained in slot order.
    let nf_start = shape.subtree_start(state.nullifiers.count());
    let mut pending: Vec<Option<NullifierLeaf>> = vec![None; shape.leaves_per_batch()];
    for (s, f) in fields.iter().enumerate() {
        for (i, &x) in f[..2].iter().enumerate() {
            let k = 2 * s + i;
            let new_index = nf_start + k as u64;
            // The predecessor among tree leaves; for a value already present (a double spend
            // a malicious prover attempts) the leaf holding it, which the circuit rejects.
            let (tree_index, tree_low) = match state.nullifiers.low_leaf(x) {
                Ok(found) => found,
                Err(_) => state
                    .nullifiers
                    .index_of(x)
                    .map(|idx| (idx, state.nullifiers.leaf(idx).copied().unwrap_or_default()))
                    .unwrap_or((0, NullifierLeaf::default())),
            };
            let pending_low = pending
                .iter()
                .enumerate()
                .filter_map(|(j, l)| l.map(|l| (j, l)))
                .filter(|(_, l)| l.value < x)
                .max_by(|a, b| a.1.value.cmp(&b.1.value));
            let witness = match pending_low {
                Some((j, low)) if low.value > tree_low.value => {
                    pending[j] = Some(NullifierLeaf {
                        value: low.value,
                        next_index: new_index,
                        next_value: x,
                    });
                    pending[k] = Some(NullifierLeaf {
                        value: x,
                        next_index: low.next_index,
                        next_value: low.next_value,
                    });
                    InsertionWitness {
                        location: LowLeafLocation::Pending(j),
                        low_leaf: low,
                        path: zero_path(),
                    }
                }
                _ => {
                    let path = state.nullifiers.path(tree_index)?;
                    state.nullifiers.update_leaf(
                        tree_index,
                        NullifierLeaf {
                            value: tree_low.value,
                            next_index: new_index,
                            next_value: x,
                        },
                    )?;
                    pending[k] = Some(NullifierLeaf {
                        value: x,
                        next_index: tree_low.next_index,
                        next_value: tree_low.next_value,
                    });
                    InsertionWitness {
                        location: LowLeafLocation::Tree(tree_index),
                        low_leaf: tree_low,
                        path,
                    }
                }
            };
            slots[s].insertions[i] = witness;
        }
    }
    let k = shape.subtree_height();
    let nullifier_subtree_path = state.nullifiers.tree().subtree_path(nf_start, k)?;
    state
        .nullifiers
        .write_subtree_unchecked(nf_start, &pending)?;

    // Output commitments: one aligned subtree of 2B leaves.
    let mut leaves = vec![Fr::zero(); shape.leaves_per_batch()];
    for (s, f) in fields.iter().enumerate() {
        leaves[2 * s] = f[2];
        leaves[2 * s + 1] = f[3];
    }
    let note_start = shape.subtree_start(state.notes.count());
    let note_subtree_path = state.notes.subtree_path(note_start, k)?;
    state.notes.append_subtree(&leaves)?;

    let new_state = state.summary();
    let public_inputs = BatchPublicInputs {
        old_state_root: old.state_root(),
        new_state_root: new_state.state_root(),
        batch_hash: batch_hash_fields(batch_number, shape.batch_size, &fields),
    };
    Ok(BuiltBatch {
        witness: BatchWitness {
            shape,
            batch_number,
            old,
            slots,
            note_subtree_start: note_start,
            note_subtree_path,
            nullifier_subtree_start: nf_start,
            nullifier_subtree_path,
        },
        public_inputs,
        public_fields: fields,
        new_state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_need_an_even_depth_above_the_subtree() {
        assert_eq!(
            BatchShape::new(2, 9),
            Err(BatchError::OddDepth { depth: 9 })
        );
        assert_eq!(
            BatchShape::new(16, 33),
            Err(BatchError::OddDepth { depth: 33 })
        );
        assert!(BatchShape::new(16, 32).is_ok());
        // 2B = 32 leaves need a level above the subtree: D >= 6
        assert!(BatchShape::new(16, 6).is_ok());
        assert!(matches!(BatchShape::new(16, 4), Err(BatchError::Shape(_))));
        assert!(matches!(BatchShape::new(3, 8), Err(BatchError::Shape(_))));
        assert!(matches!(
            BatchShape::new(1, crate::constants::MAX_DEPTH + 2),
            Err(BatchError::Shape(_))
        ));
    }

    #[test]
    fn witness_paths_have_half_depth_levels() {
        for (b, d) in [(1, 8), (2, 8), (4, 10)] {
            let shape = BatchShape::new(b, d).unwrap();
            let mut state = RollupState::genesis(d);
            let built = build_batch(&mut state, shape, 0, &[]).unwrap();
            let w = &built.witness;
            w.check_dimensions().unwrap();
            assert_eq!(w.slots[0].inputs[0].path.len(), d / 2);
            let m = shape.subtree_height();
            assert_eq!(w.note_subtree_path.pair.is_some(), m % 2 == 1);
            assert_eq!(w.note_subtree_path.path.len(), (d - m) / 2);
            let mut bad = w.clone();
            bad.slots[0].insertions[1].path.siblings.pop();
            assert!(matches!(
                bad.check_dimensions(),
                Err(BatchError::Witness(_))
            ));
            let mut bad = w.clone();
            bad.nullifier_subtree_path.pair = match w.nullifier_subtree_path.pair {
                Some(_) => None,
                None => Some([Fr::zero(); 2]),
            };
            assert!(matches!(
                bad.check_dimensions(),
                Err(BatchError::Witness(_))
            ));
        }
    }
}
