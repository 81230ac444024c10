//! Small R1CS gadgets shared by the circuits: bit decompositions, range checks and integer
//! comparison of field elements ([`comparison`]), and linear-combination helpers.

pub mod comparison;

use ark_bn254::Fr;
use ark_r1cs_std::fields::fp::FpVar;
use ark_relations::r1cs::{LinearCombination, Variable};

/// The linear combination of an `FpVar`.
pub(crate) fn lc_of(v: &FpVar<Fr>) -> LinearCombination<Fr> {
    match v {
        FpVar::Constant(c) => LinearCombination::from((*c, Variable::One)),
        FpVar::Var(a) => LinearCombination::from(a.variable),
    }
}
