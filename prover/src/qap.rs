//! The R1CS-to-QAP witness map of ark-groth16's `LibsnarkReduction`, in two steps.
//!
//! 1. [`evaluate`]: every constraint's A, B and C rows on the assignment, in parallel over
//!    blocks of rows with each row summed sequentially (arkworks' `evaluate_constraint` runs a
//!    rayon fold per row, whose overhead exceeds the arithmetic on short rows), checking
//!    `<A_i, z> · <B_i, z> = <C_i, z>` on the way: the prover's satisfaction check costs no
//!    second pass over the matrices.
//! 2. [`witness_map`]: the seven FFTs over the evaluation domain (A, B, C to coefficients and
//!    onto the coset, `(A·B − C) / Z` there, back to coefficients) with Veil's transforms
//!    ([`crate::fft`]): the coefficients of `h`, equal to
//!    `LibsnarkReduction::witness_map_from_matrices` (tested).

use ark_bn254::Fr;
use ark_ff::{FftField, Field, Zero};
use ark_poly::{EvaluationDomain, GeneralEvaluationDomain, Radix2EvaluationDomain};
use ark_relations::r1cs::SynthesisError;
use rayon::prelude::*;

use crate::fft;
use crate::r1cs::{Matrix, R1cs};

type Domain = GeneralEvaluationDomain<Fr>;

/// Rows per parallel task of [`evaluate`].
const ROWS_PER_TASK: usize = 4096;

/// Why [`evaluate`] refused an assignment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EvaluationError {
    /// The assignment does not satisfy this constraint (the first that fails).
    #[error("constraint {0} is not satisfied")]
    Unsatisfied(usize),
    /// The assignment has fewer entries than the matrices' variables.
    #[error("the assignment has {got} values, the constraint system {expected} variables")]
    Length {
        /// Variables of the constraint system (instance, with the constant one, and witness).
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// The constraint system is too large for an FFT domain of the scalar field.
    #[error("{0} constraints and inputs exceed the scalar field's FFT domains")]
    TooLarge(usize),
}

/// The A, B and C rows of every constraint evaluated on one assignment, over the evaluation
/// domain (zero past the constraints, the public inputs appended to A as libsnark's reduction
/// does): the input of [`witness_map`].
pub struct ConstraintEvaluations {
    a: Vec<Fr>,
    b: Vec<Fr>,
    c: Vec<Fr>,
}

impl std::fmt::Debug for ConstraintEvaluations {
    /// The size only: the evaluations are a function of the (secret) witness.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConstraintEvaluations")
            .field("domain", &self.a.len())
            .finish_non_exhaustive()
    }
}

/// The evaluation domain of a constraint system: at least one point per constraint and per
/// instance variable.
fn domain_of(r1cs: &R1cs) -> Result<Domain, EvaluationError> {
    let n = r1cs.num_constraints() + r1cs.num_instance_variables();
    Domain::new(n).ok_or(EvaluationError::TooLarge(n))
}

/// Evaluates every constraint on `assignment` (the constant one, the instance, then the
/// witness) and checks it is satisfied; refuses the first constraint that is not.
pub fn evaluate(r1cs: &R1cs, assignment: &[Fr]) -> Result<ConstraintEvaluations, EvaluationError> {
    let expected = r1cs.num_variables();
    if assignment.len() < expected {
        return Err(EvaluationError::Length {
            expected,
            got: assignment.len(),
        });
    }
    let size = domain_of(r1cs)?.size();
    let m = r1cs.num_constraints();
    let mut a = vec![Fr::zero(); size];
    let mut b = vec![Fr::zero(); size];
    let mut c = vec![Fr::zero(); size];
    let first_failure = a[..m]
        .par_chunks_mut(ROWS_PER_TASK)
        .zip(b[..m].par_chunks_mut(ROWS_PER_TASK))
        .zip(c[..m].par_chunks_mut(ROWS_PER_TASK))
        .enumerate()
        .filter_map(|(task, ((a, b), c))| {
            let start = task * ROWS_PER_TASK;
            let mut failure = None;
            for (k, ((a, b), c)) in a.iter_mut().zip(b).zip(c).enumerate() {
                let i = start + k;
                *a = r1cs.row_value(Matrix::A, i, assignment);
                *b = r1cs.row_value(Matrix::B, i, assignment);
                *c = r1cs.row_value(Matrix::C, i, assignment);
                if failure.is_none() && *a * *b != *c {
                    failure = Some(i);
                }
            }
            failure
        })
        .min();
    if let Some(i) = first_failure {
        return Err(EvaluationError::Unsatisfied(i));
    }
    let inputs = r1cs.num_instance_variables();
    a[m..m + inputs].copy_from_slice(&assignment[..inputs]);
    Ok(ConstraintEvaluations { a, b, c })
}

/// The coefficients of `h = (A·B − C) / Z` from the constraint evaluations.
///
/// With `ω` the domain's root (ark-poly's) and `g` the coset offset (`Fr::GENERATOR`, as
/// ark-groth16): A, B and C go to coefficients (inverse DIF, one permutation), are scaled by
/// `g^i / n` and evaluated on the coset (DIF, left bit-reversed); the quotient is taken
/// pointwise in that order and brought back to coefficients by an inverse DIT (bit-reversed
/// in, natural out) and the scaling `g^-i / n`.
pub fn witness_map(evaluations: ConstraintEvaluations) -> Result<Vec<Fr>, SynthesisError> {
    let ConstraintEvaluations {
        mut a,
        mut b,
        mut c,
    } = evaluations;
    let domain = Radix2EvaluationDomain::<Fr>::new(a.len())
        .ok_or(SynthesisError::PolynomialDegreeTooLarge)?;
    let n = domain.size();
    debug_assert_eq!(n, a.len());
    let (tw, tw_inv) = rayon::join(
        || fft::Twiddles::new(n, domain.group_gen()),
        || fft::Twiddles::new(n, domain.group_gen_inv()),
    );
    let g = Fr::GENERATOR;
    let g_inv = g.inverse().ok_or(SynthesisError::UnexpectedIdentity)?;
    for v in [&mut a, &mut b, &mut c] {
        fft::dif(v, &tw_inv);
        *v = fft::bit_reversed_scaled(v, g, domain.size_inv());
        fft::dif(v, &tw);
    }
    // Z is constant on the coset: g^n − 1.
    let z_inv = domain
        .evaluate_vanishing_polynomial(g)
        .inverse()
        .ok_or(SynthesisError::UnexpectedIdentity)?;
    a.par_iter_mut()
        .zip(&b)
        .zip(&c)
        .for_each(|((a, b), c)| *a = (*a * b - c) * z_inv);
    drop((b, c));
    fft::dit(&mut a, &tw_inv);
    fft::scale_by_powers(&mut a, g_inv, domain.size_inv());
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::One;
    use ark_groth16::r1cs_to_qap::{LibsnarkReduction, R1CSToQAP};
    use ark_r1cs_std::{alloc::AllocVar, eq::EqGadget, fields::fp::FpVar, R1CSVar};
    use ark_relations::r1cs::ConstraintMatrices;
    use ark_relations::r1cs::{ConstraintSystem, OptimizationGoal};
    use ark_std::UniformRand;
    use rand::SeedableRng;

    /// A small circuit with public inputs, dense and sparse rows: `x^3 + x·y + 5 = out` over
    /// `n` chained rounds. The assignment and matrices.
    fn circuit(n: usize, seed: u64) -> (ConstraintMatrices<Fr>, Vec<Fr>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        let mut x = FpVar::new_input(cs.clone(), || Ok(Fr::rand(&mut rng))).unwrap();
        let y = FpVar::new_witness(cs.clone(), || Ok(Fr::rand(&mut rng))).unwrap();
        for _ in 0..n {
            x = &x * &x * &x + &x * &y + Fr::from(5u64);
        }
        let out = FpVar::new_input(cs.clone(), || x.value()).unwrap();
        x.enforce_equal(&out).unwrap();
        cs.finalize();
        let matrices = cs.to_matrices().unwrap();
        let cs = cs.borrow().unwrap();
        let z = [
            cs.instance_assignment.as_slice(),
            cs.witness_assignment.as_slice(),
        ]
        .concat();
        (matrices, z)
    }

    #[test]
    fn witness_map_equals_arkworks_libsnark_reduction() {
        for (n, seed) in [(1, 1), (7, 2), (300, 3), (5000, 4), (50_000, 6)] {
            let (m, z) = circuit(n, seed);
            let r1cs = R1cs::from_matrices(&m).unwrap();
            let ours = witness_map(evaluate(&r1cs, &z).unwrap()).unwrap();
            let stock = LibsnarkReduction::witness_map_from_matrices::<Fr, Domain>(
                &m,
                m.num_instance_variables,
                m.num_constraints,
                &z,
            )
            .unwrap();
            assert_eq!(ours, stock, "{n} rounds");
        }
    }

    #[test]
    fn the_first_unsatisfied_constraint_is_named() {
        let (m, z) = circuit(10_000, 5);
        let r1cs = R1cs::from_matrices(&m).unwrap();
        assert!(m.num_constraints > 2 * ROWS_PER_TASK);
        // Each witness value enters some constraint: corrupt two, the earlier failure wins.
        for var in [m.num_instance_variables + 3, z.len() - 1] {
            let mut bad = z.clone();
            bad[var] += Fr::one();
            let first = (0..m.num_constraints)
                .find(|&i| {
                    let row = |matrix| r1cs.row_value(matrix, i, &bad);
                    row(Matrix::A) * row(Matrix::B) != row(Matrix::C)
                })
                .expect("a corrupted variable breaks a constraint");
            assert_eq!(
                evaluate(&r1cs, &bad).unwrap_err(),
                EvaluationError::Unsatisfied(first)
            );
        }
        assert!(matches!(
            evaluate(&r1cs, &z[..z.len() - 1]),
            Err(EvaluationError::Length { .. })
        ));
    }
}
