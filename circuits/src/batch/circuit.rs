//! `BatchCircuit`: the R1CS of one batch's state transition (DESIGN §7).
//!
//! Public inputs, exactly three: `old_state_root`, `new_state_root`, `batch_hash`. Per slot it
//! enforces every rule of DESIGN §6 (gated by the slot's `enabled` bit so padding slots are
//! no-ops), chains nullifier insertions through the slots in order (low leaves in the tree or
//! among this batch's pending new leaves), and finally writes the batch's output commitments and
//! new nullifier leaves as one aligned `2B`-leaf subtree per tree.
//!
//! The guards of the nullifier logic, the `public_in` range check and the two final public-input
//! bindings run inside named namespaces (`ns!`: a tracing span, no constraint), so that
//! adversarial tests can tell which constraint a malicious witness breaks
//! (`tests/tests/nullifier_guards`).

use std::collections::BTreeMap;

use ark_bn254::Fr;
use ark_ed_on_bn254::constraints::EdwardsVar;
use ark_r1cs_std::{
    alloc::{AllocVar, AllocationMode},
    boolean::Boolean,
    eq::EqGadget,
    fields::{fp::FpVar, FieldVar},
    groups::CurveVar,
};
use ark_relations::ns;
use ark_relations::r1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};
use serde::Serialize;

use super::{BatchPublicInputs, BatchWitness, InsertionWitness, LowLeafLocation};
use crate::constants::{domain, DOM_BATCH, DOM_LEAF, DOM_SIG, DOM_STATE, VALUE_BITS};
use crate::eddsa::gadget::{enforce_signature, SignatureVar};
use crate::gadgets::comparison::{canonical_bits, enforce_range_bits, is_less_than_bits};
use crate::note::gadget::{commitment_var, nullifier_var, output_rho_var, owner_tag_var};
use crate::poseidon::gadget::{hash_many_var, poseidon_var};
use crate::tree::gadget::{root_from_path_var, roots_from_path_var, subtree_update_var};
use crate::tree::SubtreePath;

/// The batch circuit: a witness and the public inputs it must reproduce.
#[derive(Debug, Clone)]
pub struct BatchCircuit {
    /// Private witness.
    pub witness: BatchWitness,
    /// Claimed public inputs.
    pub public_inputs: BatchPublicInputs,
}

/// Constraints per sub-circuit, as `veil circuit-info` reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConstraintBreakdown {
    /// Total constraints.
    pub total: usize,
    /// Constraints per named sub-circuit.
    pub sections: BTreeMap<&'static str, usize>,
}

/// Sub-circuit names.
pub mod section {
    /// EdDSA verification (with key and signature allocation).
    pub const SIGNATURE: &str = "signature";
    /// Note membership of the two inputs.
    pub const MEMBERSHIP: &str = "membership";
    /// Low-leaf checks and updates of the two nullifier insertions.
    pub const NULLIFIER_INSERTION: &str = "nullifier_insertion";
    /// Output-commitment and nullifier-leaf subtree appends (whole batch).
    pub const APPENDS: &str = "appends";
    /// 64-bit range checks.
    pub const RANGES: &str = "ranges";
    /// Owner tag, commitments, nullifiers, rho, sighash, batch hash, state roots, balance.
    pub const HASHING: &str = "hashing_and_balance";
}

struct Meter {
    cs: ConstraintSystemRef<Fr>,
    sections: BTreeMap<&'static str, usize>,
}

impl Meter {
    fn run<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce() -> Result<T, SynthesisError>,
    ) -> Result<T, SynthesisError> {
        let before = self.cs.num_constraints();
        let out = f()?;
        *self.sections.entry(name).or_default() += self.cs.num_constraints() - before;
        Ok(out)
    }
}

/// One of this batch's new nullifier leaves, tracked in-circuit until the subtree is written.
struct PendingLeafVar {
    value: FpVar<Fr>,
    next_index: FpVar<Fr>,
    next_value: FpVar<Fr>,
    present: Boolean<Fr>,
}

fn witness_fr(cs: &ConstraintSystemRef<Fr>, v: Fr) -> Result<FpVar<Fr>, SynthesisError> {
    FpVar::new_witness(cs.clone(), || Ok(v))
}

fn witness_bits(
    cs: &ConstraintSystemRef<Fr>,
    value: u64,
    n: usize,
) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    (0..n)
        .map(|i| Boolean::new_witness(cs.clone(), || Ok(i < 64 && (value >> i) & 1 == 1)))
        .collect()
}

fn witness_levels(
    cs: &ConstraintSystemRef<Fr>,
    levels: &[[Fr; 3]],
) -> Result<Vec<[FpVar<Fr>; 3]>, SynthesisError> {
    levels
        .iter()
        .map(|l| {
            Ok([
                witness_fr(cs, l[0])?,
                witness_fr(cs, l[1])?,
                witness_fr(cs, l[2])?,
            ])
        })
        .collect()
}

fn leaf_hash_var(
    value: &FpVar<Fr>,
    next_index: &FpVar<Fr>,
    next_value: &FpVar<Fr>,
) -> Result<FpVar<Fr>, SynthesisError> {
    poseidon_var(&[
        FpVar::Constant(domain(DOM_LEAF)),
        value.clone(),
        next_index.clone(),
        next_value.clone(),
    ])
}

fn select_or_zero(e: &Boolean<Fr>, x: &FpVar<Fr>) -> Result<FpVar<Fr>, SynthesisError> {
    e.select(x, &FpVar::zero())
}

impl BatchCircuit {
    /// A circuit proving `witness` against `public_inputs`.
    pub fn new(witness: BatchWitness, public_inputs: BatchPublicInputs) -> Self {
        BatchCircuit {
            witness,
            public_inputs,
        }
    }

    /// An all-padding circuit of `shape`, for setup and constraint counting.
    pub fn blank(shape: super::BatchShape) -> Self {
        let mut state = crate::state::RollupState::genesis(shape.depth);
        let built = super::build_batch(&mut state, shape, 0, &[])
            .expect("an empty batch over genesis always builds");
        BatchCircuit::new(built.witness, built.public_inputs)
    }

    /// Synthesises the circuit and reports constraints per sub-circuit.
    pub fn synthesize_metered(
        self,
        cs: ConstraintSystemRef<Fr>,
    ) -> Result<ConstraintBreakdown, SynthesisError> {
        let w = self.witness;
        let pi = self.public_inputs;
        let shape = w.shape;
        let depth = shape.depth;
        let k = shape.subtree_height();
        let n = shape.leaves_per_batch();
        let mut m = Meter {
            cs: cs.clone(),
            sections: BTreeMap::new(),
        };

        let old_root_pub = FpVar::new_input(cs.clone(), || Ok(pi.old_state_root))?;
        let new_root_pub = FpVar::new_input(cs.clone(), || Ok(pi.new_state_root))?;
        let batch_hash_pub = FpVar::new_input(cs.clone(), || Ok(pi.batch_hash))?;

        // Old state: its four values must hash to the public old root.
        let old_note_root = witness_fr(&cs, w.old.note_root)?;
        let old_note_count = witness_fr(&cs, Fr::from(w.old.note_count))?;
        let old_nf_root = witness_fr(&cs, w.old.nullifier_root)?;
        let old_nf_count = witness_fr(&cs, Fr::from(w.old.nullifier_count))?;
        m.run(section::HASHING, || {
            poseidon_var(&[
                FpVar::Constant(domain(DOM_STATE)),
                old_note_root.clone(),
                old_note_count.clone(),
                old_nf_root.clone(),
                old_nf_count.clone(),
            ])?
            .enforce_equal(&old_root_pub)
        })?;

        // Aligned subtree starts: start = idx * 2B with 0 <= start - count < 2B.
        let subtree_start = |m: &mut Meter,
                             start: u64,
                             count: &FpVar<Fr>|
         -> Result<(Vec<Boolean<Fr>>, FpVar<Fr>), SynthesisError> {
            m.run(section::APPENDS, || {
                let bits = witness_bits(&cs, start / n as u64, depth - k)?;
                let start = Boolean::le_bits_to_fp(&bits)? * Fr::from(n as u64);
                enforce_range_bits(&(&start - count), k)?;
                Ok((bits, start))
            })
        };
        let (note_idx_bits, note_start) =
            subtree_start(&mut m, w.note_subtree_start, &old_note_count)?;
        let (nf_idx_bits, nf_start) =
            subtree_start(&mut m, w.nullifier_subtree_start, &old_nf_count)?;

        let batch_number = witness_fr(&cs, Fr::from(w.batch_number))?;
        let mut chain = m.run(section::HASHING, || {
            poseidon_var(&[FpVar::Constant(domain(DOM_BATCH)), batch_number.clone()])
        })?;
        let mut nf_root = old_nf_root.clone();
        let mut pending: Vec<PendingLeafVar> = Vec::with_capacity(n);
        let mut note_leaves: Vec<FpVar<Fr>> = Vec::with_capacity(n);

        for (s, slot) in w.slots.iter().enumerate() {
            let e = Boolean::new_witness(cs.clone(), || Ok(slot.enabled))?;
            let ak = m.run(section::SIGNATURE, || {
                EdwardsVar::new_variable_omit_prime_order_check(
                    cs.clone(),
                    || Ok(slot.ak.into()),
                    AllocationMode::Witness,
                )
            })?;
            let nk = witness_fr(&cs, slot.nk)?;
            let addr = m.run(section::HASHING, || owner_tag_var(&ak.x, &ak.y, &nk))?;

            // Inputs: commitment, membership (skipped for dummies), nullifier.
            let mut nfs = Vec::with_capacity(2);
            let mut in_values = Vec::with_capacity(2);
            for input in &slot.inputs {
                let value = witness_fr(&cs, input.value)?;
                m.run(section::RANGES, || enforce_range_bits(&value, VALUE_BITS))?;
                let rho = witness_fr(&cs, input.rho)?;
                let r = witness_fr(&cs, input.r)?;
                let cm = m.run(section::HASHING, || commitment_var(&addr, &value, &rho, &r))?;
                let pos_bits = m.run(section::MEMBERSHIP, || {
                    witness_bits(&cs, input.position, depth)
                })?;
                let pos = Boolean::le_bits_to_fp(&pos_bits)?;
                let nf = m.run(section::HASHING, || nullifier_var(&nk, &cm, &pos))?;
                m.run(section::MEMBERSHIP, || {
                    let is_real = &e & &!value.is_zero()?;
                    let siblings = witness_levels(&cs, &input.path.siblings)?;
                    let root = root_from_path_var(&cm, &pos_bits, &siblings)?;
                    root.conditional_enforce_equal(&old_note_root, &is_real)
                })?;
                nfs.push(nf);
                in_values.push(value);
            }

            // Outputs: rho_j = H(nf_1, j), commitments.
            let mut cms = Vec::with_capacity(2);
            let mut out_values = Vec::with_capacity(2);
            for (j, output) in slot.outputs.iter().enumerate() {
                let addr_j = witness_fr(&cs, output.addr)?;
                let value = witness_fr(&cs, output.value)?;
                m.run(section::RANGES, || enforce_range_bits(&value, VALUE_BITS))?;
                let r = witness_fr(&cs, output.r)?;
                let cm = m.run(section::HASHING, || {
                    let rho = output_rho_var(&nfs[0], j as u64 + 1)?;
                    commitment_var(&addr_j, &value, &rho, &r)
                })?;
                cms.push(cm);
                out_values.push(value);
            }

            // Public amounts, balance.
            let public_in = witness_fr(&cs, slot.public_in)?;
            let public_out = witness_fr(&cs, slot.public_out)?;
            let fee = witness_fr(&cs, slot.fee)?;
            let dest = witness_fr(&cs, slot.dest)?;
            let deposit_ref = witness_fr(&cs, slot.deposit_ref)?;
            // Signed and chained, never opened here: verifiers hash the published ciphertexts.
            let ciphertext_hash = witness_fr(&cs, slot.ciphertext_hash)?;
            m.run(section::RANGES, || {
                {
                    let _ns = ns!(cs, "public_in_range");
                    enforce_range_bits(&public_in, VALUE_BITS)?;
                }
                for x in [&public_out, &fee] {
                    enforce_range_bits(x, VALUE_BITS)?;
                }
                Ok(())
            })?;
            let fields = m.run(section::HASHING, || {
                let lhs = &in_values[0] + &in_values[1] + &public_in;
                let rhs = &out_values[0] + &out_values[1] + &public_out + &fee;
                lhs.conditional_enforce_equal(&rhs, &e)?;
                // A padding slot publishes all-zero data.
                [
                    &nfs[0],
                    &nfs[1],
                    &cms[0],
                    &cms[1],
                    &public_in,
                    &public_out,
                    &fee,
                    &dest,
                    &deposit_ref,
                    &ciphertext_hash,
                ]
                .into_iter()
                .map(|x| select_or_zero(&e, x))
                .collect::<Result<Vec<_>, _>>()
            })?;
            let sighash = m.run(section::HASHING, || {
                let mut xs = vec![FpVar::Constant(domain(DOM_SIG))];
                xs.extend(fields.iter().cloned());
                let h = hash_many_var(&xs)?;
                chain = poseidon_var(&[chain.clone(), h.clone()])?;
                Ok(h)
            })?;

            // Signature by A over the sighash.
            m.run(section::SIGNATURE, || {
                let sig = SignatureVar::new_witness(cs.clone(), || Ok(slot.signature))?;
                enforce_signature(&ak, &sighash, &sig, &e)
            })?;

            // Nullifier insertions, chained.
            m.run(section::NULLIFIER_INSERTION, || {
                for (i, ins) in slot.insertions.iter().enumerate() {
                    let index = 2 * s + i;
                    let new_index = &nf_start + FpVar::Constant(Fr::from(index as u64));
                    insert_nullifier(
                        &cs,
                        &nfs[i],
                        &new_index,
                        &e,
                        ins,
                        depth,
                        &mut nf_root,
                        &mut pending,
                    )?;
                }
                Ok(())
            })?;
            note_leaves.push(fields[2].clone());
            note_leaves.push(fields[3].clone());
        }

        // Appends: both subtrees were empty at their aligned start; write them with the same
        // siblings.
        let append = |path: &SubtreePath,
                      leaves: &[FpVar<Fr>],
                      idx_bits: &[Boolean<Fr>],
                      current: &FpVar<Fr>|
         -> Result<FpVar<Fr>, SynthesisError> {
            let pair = match path.pair {
                Some([x0, x1]) => Some([witness_fr(&cs, x0)?, witness_fr(&cs, x1)?]),
                None => None,
            };
            let siblings = witness_levels(&cs, &path.path.siblings)?;
            let (old, new) = subtree_update_var(leaves, idx_bits, pair.as_ref(), &siblings)?;
            let _ns = ns!(cs, "append_over_current_root");
            old.enforce_equal(current)?;
            Ok(new)
        };
        let new_note_root = m.run(section::APPENDS, || {
            append(
                &w.note_subtree_path,
                &note_leaves,
                &note_idx_bits,
                &old_note_root,
            )
        })?;
        let new_nf_root = m.run(section::APPENDS, || {
            let leaves = pending
                .iter()
                .map(|p| {
                    let h = leaf_hash_var(&p.value, &p.next_index, &p.next_value)?;
                    select_or_zero(&p.present, &h)
                })
                .collect::<Result<Vec<_>, _>>()?;
            append(&w.nullifier_subtree_path, &leaves, &nf_idx_bits, &nf_root)
        })?;

        m.run(section::HASHING, || {
            let n_fp = FpVar::Constant(Fr::from(n as u64));
            let new_root = poseidon_var(&[
                FpVar::Constant(domain(DOM_STATE)),
                new_note_root,
                &note_start + &n_fp,
                new_nf_root,
                &nf_start + &n_fp,
            ])?;
            {
                let _ns = ns!(cs, "new_state_root_matches");
                new_root.enforce_equal(&new_root_pub)?;
            }
            let _ns = ns!(cs, "batch_hash_matches");
            chain.enforce_equal(&batch_hash_pub)
        })?;

        Ok(ConstraintBreakdown {
            total: cs.num_constraints(),
            sections: m.sections,
        })
    }
}

/// One indexed-tree insertion of `x` at leaf index `new_index` (DESIGN §5), when `enabled`.
#[allow(clippy::too_many_arguments)]
fn insert_nullifier(
    cs: &ConstraintSystemRef<Fr>,
    x: &FpVar<Fr>,
    new_index: &FpVar<Fr>,
    enabled: &Boolean<Fr>,
    wit: &InsertionWitness,
    depth: usize,
    nf_root: &mut FpVar<Fr>,
    pending: &mut Vec<PendingLeafVar>,
) -> Result<(), SynthesisError> {
    let (pending_choice, tree_index) = match wit.location {
        LowLeafLocation::Pending(j) => (Some(j), 0),
        LowLeafLocation::Tree(i) => (None, i),
    };
    // Selector over earlier pending leaves: one-hot, summing to `low_pending`.
    let low_pending = Boolean::new_witness(cs.clone(), || Ok(pending_choice.is_some()))?;
    {
        let _ns = ns!(cs, "pending_low_leaf_in_enabled_slot");
        (&low_pending & &!enabled).enforce_equal(&Boolean::FALSE)?;
    }
    let sel = (0..pending.len())
        .map(|j| Boolean::new_witness(cs.clone(), || Ok(pending_choice == Some(j))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut sel_sum = FpVar::zero();
    for (s, p) in sel.iter().zip(pending.iter()) {
        let _ns = ns!(cs, "pending_low_leaf_present");
        (s & &!&p.present).enforce_equal(&Boolean::FALSE)?;
        sel_sum += FpVar::from(s.clone());
    }
    {
        let _ns = ns!(cs, "low_leaf_selector_sum");
        sel_sum.enforce_equal(&FpVar::from(low_pending.clone()))?;
    }

    let v = witness_fr(cs, wit.low_leaf.value)?;
    let ni = witness_fr(cs, Fr::from(wit.low_leaf.next_index))?;
    let nv = witness_fr(cs, wit.low_leaf.next_value)?;

    // Pending mode: the low leaf is the selected pending leaf.
    let mut chosen = [FpVar::zero(), FpVar::zero(), FpVar::zero()];
    for (s, p) in sel.iter().zip(pending.iter()) {
        let sf = FpVar::from(s.clone());
        chosen[0] += &sf * &p.value;
        chosen[1] += &sf * &p.next_index;
        chosen[2] += &sf * &p.next_value;
    }
    {
        let _ns = ns!(cs, "pending_low_leaf_value_matches");
        v.conditional_enforce_equal(&chosen[0], &low_pending)?;
    }
    {
        let _ns = ns!(cs, "pending_low_leaf_next_index_matches");
        ni.conditional_enforce_equal(&chosen[1], &low_pending)?;
    }
    {
        let _ns = ns!(cs, "pending_low_leaf_next_value_matches");
        nv.conditional_enforce_equal(&chosen[2], &low_pending)?;
    }

    // Ordering: v < x and (x < nv or nv == 0).
    let x_bits = canonical_bits(x)?;
    let v_bits = canonical_bits(&v)?;
    let nv_bits = canonical_bits(&nv)?;
    let above_low = is_less_than_bits(&v_bits, &x_bits)?;
    let below_next = is_less_than_bits(&x_bits, &nv_bits)? | nv.is_zero()?;
    (&above_low & &below_next).conditional_enforce_equal(&Boolean::TRUE, enabled)?;

    // Tree mode: verify the low leaf at the current root, rewrite it with the same siblings.
    let tree_mode = enabled & &!&low_pending;
    let index_bits = witness_bits(cs, tree_index, depth)?;
    let siblings = witness_levels(cs, &wit.path.siblings)?;
    let old_leaf = leaf_hash_var(&v, &ni, &nv)?;
    let new_leaf = leaf_hash_var(&v, new_index, x)?;
    let (old_root, updated) = roots_from_path_var(&old_leaf, &new_leaf, &index_bits, &siblings)?;
    {
        let _ns = ns!(cs, "tree_low_leaf_at_current_root");
        old_root.conditional_enforce_equal(nf_root, &tree_mode)?;
    }
    *nf_root = tree_mode.select(&updated, nf_root)?;

    // Pending mode: rewrite the selected pending leaf's pointer.
    for (s, p) in sel.iter().zip(pending.iter_mut()) {
        p.next_index = s.select(new_index, &p.next_index)?;
        p.next_value = s.select(x, &p.next_value)?;
    }
    pending.push(PendingLeafVar {
        value: x.clone(),
        next_index: ni,
        next_value: nv,
        present: enabled.clone(),
    });
    Ok(())
}

impl ConstraintSynthesizer<Fr> for BatchCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        self.synthesize_metered(cs).map(|_| ())
    }
}
