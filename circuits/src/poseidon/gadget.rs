//! circomlib Poseidon as an R1CS gadget, using the constants of [`super::constants`].
//!
//! The permutation is synthesised directly as linear combinations of concrete variables: each
//! S-box costs three constraints (`x^2`, `x^4`, `x^5`) and the linear layers are free. No symbolic
//! linear combination references another, so constraint-system finalisation never has to inline a
//! chain of dense combinations. S-boxes of constants (the capacity element in the first round)
//! are folded natively, as circomlib does: 2 inputs cost 240 constraints, as in circomlib.

use ark_bn254::Fr;
use ark_ff::{Field, Zero};
use ark_r1cs_std::{
    fields::fp::{AllocatedFp, FpVar},
    R1CSVar,
};
use ark_relations::r1cs::{ConstraintSystemRef, LinearCombination, SynthesisError, Variable};

use super::constants;
use crate::constants::POSEIDON_MAX_INPUTS;

/// One state element: a linear combination of concrete variables and its value (absent during
/// setup).
#[derive(Clone)]
struct Cell {
    lc: LinearCombination<Fr>,
    value: Option<Fr>,
}

impl Cell {
    fn constant(c: Fr) -> Self {
        let lc = if c.is_zero() {
            LinearCombination::zero()
        } else {
            LinearCombination::from((c, Variable::One))
        };
        Cell { lc, value: Some(c) }
    }

    fn from_var(v: &FpVar<Fr>) -> Self {
        match v {
            FpVar::Constant(c) => Cell::constant(*c),
            FpVar::Var(a) => Cell {
                lc: LinearCombination::from(a.variable),
                value: a.value().ok(),
            },
        }
    }

    fn is_constant(&self) -> bool {
        self.lc.0.iter().all(|(_, v)| *v == Variable::One)
    }

    fn add_constant(&mut self, c: Fr) {
        self.lc = std::mem::take(&mut self.lc) + (c, Variable::One);
        self.value = self.value.map(|v| v + c);
    }
}

/// Sums `coeff * cell` over a row, merging equal variables (terms stay sorted by variable).
fn combine(row: &[Fr], cells: &[Cell]) -> Cell {
    let mut terms: Vec<(Variable, Fr)> =
        Vec::with_capacity(cells.iter().map(|c| c.lc.0.len()).sum());
    let mut value = Some(Fr::zero());
    for (m, cell) in row.iter().zip(cells) {
        for (coeff, var) in cell.lc.0.iter() {
            terms.push((*var, *coeff * m));
        }
        value = value.zip(cell.value).map(|(acc, v)| acc + v * m);
    }
    terms.sort_unstable_by_key(|a| a.0);
    let mut merged: Vec<(Fr, Variable)> = Vec::with_capacity(terms.len());
    for (var, coeff) in terms {
        match merged.last_mut() {
            Some((c, v)) if *v == var => *c += coeff,
            _ => merged.push((coeff, var)),
        }
    }
    merged.retain(|(c, _)| !c.is_zero());
    Cell {
        lc: LinearCombination(merged),
        value,
    }
}

/// `x^5` with three constraints; constants are folded without constraints.
fn sbox(cs: &ConstraintSystemRef<Fr>, x: Cell) -> Result<Cell, SynthesisError> {
    if x.is_constant() {
        let v = x.value.expect("constant cells carry their value");
        return Ok(Cell::constant(v.square().square() * v));
    }
    let x2v = x.value.map(|v| v.square());
    let x4v = x2v.map(|v| v.square());
    let x5v = x4v.zip(x.value).map(|(a, b)| a * b);
    let x2 = cs.new_witness_variable(|| x2v.ok_or(SynthesisError::AssignmentMissing))?;
    cs.enforce_constraint(x.lc.clone(), x.lc.clone(), LinearCombination::from(x2))?;
    let x4 = cs.new_witness_variable(|| x4v.ok_or(SynthesisError::AssignmentMissing))?;
    cs.enforce_constraint(
        LinearCombination::from(x2),
        LinearCombination::from(x2),
        LinearCombination::from(x4),
    )?;
    let x5 = cs.new_witness_variable(|| x5v.ok_or(SynthesisError::AssignmentMissing))?;
    cs.enforce_constraint(
        LinearCombination::from(x4),
        x.lc,
        LinearCombination::from(x5),
    )?;
    Ok(Cell {
        lc: LinearCombination::from(x5),
        value: x5v,
    })
}

/// In-circuit `Poseidon(inputs)` for 1..=8 inputs; equals [`super::poseidon`] on the values.
pub fn poseidon_var(inputs: &[FpVar<Fr>]) -> Result<FpVar<Fr>, SynthesisError> {
    let cs = inputs.cs();
    if cs.is_none() {
        let values: Vec<Fr> = inputs.iter().map(|v| v.value()).collect::<Result<_, _>>()?;
        return Ok(FpVar::Constant(super::poseidon(&values)));
    }
    if !cs.is_in_setup_mode() && !cs.should_construct_matrices() {
        return poseidon_witness(&cs, inputs);
    }
    let c = constants(inputs.len());
    let t = c.width;
    let mut state: Vec<Cell> = Vec::with_capacity(t);
    state.push(Cell::constant(Fr::zero()));
    state.extend(inputs.iter().map(Cell::from_var));
    let last = c.rounds() - 1;
    for round in 0..c.rounds() {
        for (i, cell) in state.iter_mut().enumerate() {
            cell.add_constant(c.round_constant(round, i));
        }
        if c.is_full_round(round) {
            let mut out = Vec::with_capacity(t);
            for cell in state.drain(..) {
                out.push(sbox(&cs, cell)?);
            }
            state = out;
        } else {
            let first = std::mem::replace(&mut state[0], Cell::constant(Fr::zero()));
            state[0] = sbox(&cs, first)?;
        }
        if round == last {
            // only the first output element is the hash
            state = vec![combine(&c.mds[0], &state)];
        } else {
            state = (0..t).map(|i| combine(&c.mds[i], &state)).collect();
        }
    }
    let out = state.pop().expect("one output");
    let var = cs.new_lc(out.lc)?;
    Ok(FpVar::Var(AllocatedFp::new(out.value, var, cs)))
}

/// [`poseidon_var`] when only the assignment is wanted (proving without matrices): the same
/// witness variables in the same order, each S-box's `x^2, x^4, x^5` from the native sparse-round
/// permutation, and as many (empty) constraints, without building the linear combinations that
/// dominate the full synthesis. The output is the textbook path's combination of the last
/// round's `x^5` variables. Equal assignments in both modes are tested here and on the whole
/// batch circuit.
fn poseidon_witness(
    cs: &ConstraintSystemRef<Fr>,
    inputs: &[FpVar<Fr>],
) -> Result<FpVar<Fr>, SynthesisError> {
    let values: Vec<Fr> = inputs.iter().map(|v| v.value()).collect::<Result<_, _>>()?;
    let c = constants(inputs.len());
    let t = c.width;
    let sboxes = c.full_rounds * t + c.partial_rounds;
    // The first round's S-boxes of constants (the capacity element, constant inputs) are folded.
    let folded = |i: usize| i < t && (i == 0 || matches!(inputs[i - 1], FpVar::Constant(_)));
    let mut k = 0;
    let mut last = Vec::with_capacity(t);
    let mut result = Ok(());
    let out = super::poseidon_traced(&values, &mut |powers| {
        let i = k;
        k += 1;
        if folded(i) || result.is_err() {
            return;
        }
        let alloc = || -> Result<Variable, SynthesisError> {
            let mut var = Variable::Zero;
            for p in powers {
                var = cs.new_witness_variable(|| Ok(p))?;
                cs.enforce_constraint(
                    LinearCombination::zero(),
                    LinearCombination::zero(),
                    LinearCombination::zero(),
                )?;
            }
            Ok(var)
        };
        match alloc() {
            Ok(x5) if i >= sboxes - t => last.push(x5),
            Ok(_) => {}
            Err(e) => result = Err(e),
        }
    });
    result?;
    debug_assert_eq!(last.len(), t);
    let lc = LinearCombination(c.mds[0].iter().copied().zip(last).collect());
    let var = cs.new_lc(lc)?;
    Ok(FpVar::Var(AllocatedFp::new(Some(out), var, cs.clone())))
}

/// In-circuit `H(a, b)`.
pub fn hash2_var(a: &FpVar<Fr>, b: &FpVar<Fr>) -> Result<FpVar<Fr>, SynthesisError> {
    poseidon_var(&[a.clone(), b.clone()])
}

/// In-circuit [`super::hash_many`].
pub fn hash_many_var(inputs: &[FpVar<Fr>]) -> Result<FpVar<Fr>, SynthesisError> {
    assert!(!inputs.is_empty(), "hash_many takes at least one input");
    if inputs.len() <= POSEIDON_MAX_INPUTS {
        return poseidon_var(inputs);
    }
    let mut outer = inputs[..POSEIDON_MAX_INPUTS - 1].to_vec();
    outer.push(hash_many_var(&inputs[POSEIDON_MAX_INPUTS - 1..])?);
    poseidon_var(&outer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poseidon::{hash_many, poseidon};
    use ark_r1cs_std::{alloc::AllocVar, eq::EqGadget, fields::FieldVar};
    use ark_relations::r1cs::{ConstraintSystem, SynthesisMode};
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    fn alloc(cs: &ConstraintSystemRef<Fr>, xs: &[Fr]) -> Vec<FpVar<Fr>> {
        xs.iter()
            .map(|x| FpVar::new_witness(cs.clone(), || Ok(*x)).unwrap())
            .collect()
    }

    #[test]
    fn two_inputs_cost_240_constraints() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let xs = alloc(&cs, &[Fr::from(1u64), Fr::from(2u64)]);
        let before = cs.num_constraints();
        let h = poseidon_var(&xs).unwrap();
        assert_eq!(cs.num_constraints() - before, 8 * 3 * 3 + 57 * 3 - 3);
        assert_eq!(
            h.value().unwrap(),
            poseidon(&[Fr::from(1u64), Fr::from(2u64)])
        );
        assert!(cs.is_satisfied().unwrap());
    }

    #[test]
    fn wrong_output_is_unsatisfied() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let xs = alloc(&cs, &[Fr::from(1u64), Fr::from(2u64)]);
        let h = poseidon_var(&xs).unwrap();
        let claimed = FpVar::new_input(cs.clone(), || Ok(Fr::from(7u64))).unwrap();
        h.enforce_equal(&claimed).unwrap();
        assert!(!cs.is_satisfied().unwrap());
    }

    #[test]
    fn constants_only_need_no_constraints() {
        let xs = [Fr::from(3u64), Fr::from(4u64), Fr::from(5u64)];
        let vars: Vec<FpVar<Fr>> = xs.iter().map(|x| FpVar::Constant(*x)).collect();
        assert_eq!(poseidon_var(&vars).unwrap().value().unwrap(), poseidon(&xs));
    }

    /// Synthesises `hash_many_var` of `xs` (even positions constants when `mix_constants`) in
    /// `mode`: the witness assignment, the constraint count and the hash.
    fn synthesise(xs: &[Fr], mix_constants: bool, mode: SynthesisMode) -> (Vec<Fr>, usize, Fr) {
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_mode(mode);
        let vars: Vec<FpVar<Fr>> = xs
            .iter()
            .enumerate()
            .map(|(i, x)| {
                if mix_constants && i % 2 == 0 {
                    FpVar::Constant(*x)
                } else {
                    FpVar::new_witness(cs.clone(), || Ok(*x)).unwrap()
                }
            })
            .collect();
        let h = hash_many_var(&vars).unwrap();
        // Something downstream of the hash, so that its variable is used.
        let sq = h.square().unwrap();
        assert_eq!(sq.value().unwrap(), h.value().unwrap().square());
        let inner = cs.borrow().unwrap();
        (
            inner.witness_assignment.clone(),
            inner.num_constraints,
            h.value().unwrap(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// The witness-only path allocates exactly what the full synthesis allocates.
        #[test]
        fn witness_only_synthesis_equals_full_synthesis(
            seed in any::<u64>(), n in 1usize..=20, mix_constants in any::<bool>()
        ) {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let xs: Vec<Fr> = (0..n).map(|_| rng.gen()).collect();
            let full = synthesise(&xs, mix_constants, SynthesisMode::Prove { construct_matrices: true });
            let witness = synthesise(&xs, mix_constants, SynthesisMode::Prove { construct_matrices: false });
            prop_assert_eq!(full.2, hash_many(&xs));
            prop_assert_eq!(full, witness);
        }

        #[test]
        fn gadget_agrees_with_native(seed in any::<u64>(), n in 1usize..=20, mix_constants in any::<bool>()) {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let xs: Vec<Fr> = (0..n).map(|_| rng.gen()).collect();
            let cs = ConstraintSystem::<Fr>::new_ref();
            let vars: Vec<FpVar<Fr>> = xs.iter().enumerate().map(|(i, x)| {
                if mix_constants && i % 2 == 0 { FpVar::Constant(*x) }
                else { FpVar::new_witness(cs.clone(), || Ok(*x)).unwrap() }
            }).collect();
            let h = hash_many_var(&vars).unwrap();
            prop_assert_eq!(h.value().unwrap(), hash_many(&xs));
            prop_assert!(cs.is_satisfied().unwrap());
        }
    }
}
