//! In-circuit note commitments, nullifiers, output `rho` and owner tags; the same formulas as
//! [`super`] and [`crate::keys`], over [`FpVar`]s.

use ark_bn254::Fr;
use ark_r1cs_std::fields::fp::FpVar;
use ark_relations::r1cs::SynthesisError;

use crate::constants::{domain, DOM_ADDR, DOM_CM, DOM_NF};
use crate::poseidon::gadget::poseidon_var;

/// `cm = H(DOM_CM, addr, value, rho, r)`.
pub fn commitment_var(
    addr: &FpVar<Fr>,
    value: &FpVar<Fr>,
    rho: &FpVar<Fr>,
    r: &FpVar<Fr>,
) -> Result<FpVar<Fr>, SynthesisError> {
    poseidon_var(&[
        FpVar::Constant(domain(DOM_CM)),
        addr.clone(),
        value.clone(),
        rho.clone(),
        r.clone(),
    ])
}

/// `nf = H(DOM_NF, nk, cm, pos)`.
pub fn nullifier_var(
    nk: &FpVar<Fr>,
    cm: &FpVar<Fr>,
    position: &FpVar<Fr>,
) -> Result<FpVar<Fr>, SynthesisError> {
    poseidon_var(&[
        FpVar::Constant(domain(DOM_NF)),
        nk.clone(),
        cm.clone(),
        position.clone(),
    ])
}

/// `rho_j = H(nf_1, j)`.
pub fn output_rho_var(nf_1: &FpVar<Fr>, j: u64) -> Result<FpVar<Fr>, SynthesisError> {
    poseidon_var(&[nf_1.clone(), FpVar::Constant(Fr::from(j))])
}

/// `addr = H(DOM_ADDR, A.x, A.y, nk)`.
pub fn owner_tag_var(
    ak_x: &FpVar<Fr>,
    ak_y: &FpVar<Fr>,
    nk: &FpVar<Fr>,
) -> Result<FpVar<Fr>, SynthesisError> {
    poseidon_var(&[
        FpVar::Constant(domain(DOM_ADDR)),
        ak_x.clone(),
        ak_y.clone(),
        nk.clone(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SpendingKey;
    use crate::note::{commitment, nullifier, output_rho};
    use ark_r1cs_std::{alloc::AllocVar, R1CSVar};
    use ark_relations::r1cs::ConstraintSystem;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn gadgets_agree_with_native(seed in any::<u64>()) {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
            let sk = SpendingKey::random(&mut rng);
            let pgk = sk.proof_generation_key();
            let (value, rho, r): (u64, Fr, Fr) = (rng.gen(), rng.gen(), rng.gen());
            let pos: u64 = rng.gen::<u32>() as u64;
            let cs = ConstraintSystem::<Fr>::new_ref();
            let w = |x: Fr| FpVar::new_witness(cs.clone(), || Ok(x)).unwrap();
            let addr = owner_tag_var(&w(pgk.ak.x()), &w(pgk.ak.y()), &w(pgk.nk)).unwrap();
            prop_assert_eq!(addr.value().unwrap(), sk.owner_tag());
            let cm = commitment_var(&addr, &w(Fr::from(value)), &w(rho), &w(r)).unwrap();
            let cm_native = commitment(sk.owner_tag(), Fr::from(value), rho, r);
            prop_assert_eq!(cm.value().unwrap(), cm_native);
            let nf = nullifier_var(&w(pgk.nk), &cm, &w(Fr::from(pos))).unwrap();
            prop_assert_eq!(nf.value().unwrap(), nullifier(pgk.nk, cm_native, pos));
            let rho2 = output_rho_var(&nf, 2).unwrap();
            prop_assert_eq!(rho2.value().unwrap(), output_rho(nullifier(pgk.nk, cm_native, pos), 2));
            prop_assert!(cs.is_satisfied().unwrap());
        }
    }
}
