//! Batch verification of many Groth16 batch proofs with one multi-pairing.
//!
//! Proof `i` is valid when `e(A_i, B_i) = e(alpha, beta) · e(IC_i, gamma) · e(C_i, delta)` with
//! `IC_i = gamma_abc[0] + Σ_j x_ij · gamma_abc[j+1]`. For random non-zero 128-bit `r_i` (the
//! first fixed to 1) all `n` equations hold, except with probability about `n / 2^128` over the
//! `r_i`, exactly when
//!
//! `Π_i e(r_i A_i, B_i) · e(-Σ r_i IC_i, gamma) · e(-Σ r_i C_i, delta) · e(-(Σ r_i) alpha, beta) = 1`,
//!
//! one multi-pairing of `n + 3` pairs. `Σ r_i IC_i` is a single MSM over `gamma_abc` with the
//! combined coefficients `(Σ r_i, Σ r_i x_i1, ...)`, and `Σ r_i C_i` another MSM. The `r_i` must be
//! unpredictable to whoever made the proofs, hence the [`CryptoRng`] bound. Like
//! [`crate::verify`], this assumes the proof points are in their prime-order subgroups, which
//! arkworks' validating deserialization guarantees.

use ark_bn254::{Bn254, Fr, G1Affine, G1Projective};
use ark_ec::pairing::Pairing;
use ark_ec::{AffineRepr, CurveGroup, VariableBaseMSM};
use ark_ff::{One, Zero};
use ark_groth16::{PreparedVerifyingKey, Proof};
use ark_relations::r1cs::SynthesisError;
use rand_core::{CryptoRng, RngCore};
use rayon::prelude::*;
use veil_circuits::batch::BatchPublicInputs;

use crate::VerifyError;

/// Public inputs per batch proof.
const PUBLIC_INPUTS: usize = 3;

/// Whether every proof in `items` proves its batch transition, checked with one multi-pairing.
/// `Ok(true)` for an empty slice. A `false` says only that at least one proof is invalid; verify
/// them one by one with [`crate::verify`] to find which.
pub fn verify_batch<R: RngCore + CryptoRng>(
    pvk: &PreparedVerifyingKey<Bn254>,
    items: &[(BatchPublicInputs, Proof<Bn254>)],
    rng: &mut R,
) -> Result<bool, VerifyError> {
    let vk = &pvk.vk;
    if vk.gamma_abc_g1.len() != PUBLIC_INPUTS + 1 {
        return Err(SynthesisError::MalformedVerifyingKey.into());
    }
    if items.is_empty() {
        return Ok(true);
    }
    let rs: Vec<Fr> = (0..items.len())
        .map(|i| if i == 0 { Fr::one() } else { nonzero_u128(rng) })
        .collect();

    // Combined coefficients of gamma_abc: (Σ r_i, Σ r_i x_i1, Σ r_i x_i2, Σ r_i x_i3).
    let mut coeffs = [Fr::zero(); PUBLIC_INPUTS + 1];
    for ((x, _), r) in items.iter().zip(&rs) {
        coeffs[0] += r;
        for (c, x) in coeffs[1..].iter_mut().zip(x.to_vec()) {
            *c += *r * x;
        }
    }
    let r_sum = coeffs[0];
    let ic_sum = G1Projective::msm_unchecked(&vk.gamma_abc_g1, &coeffs);
    let cs: Vec<G1Affine> = items.iter().map(|(_, p)| p.c).collect();
    let c_sum = G1Projective::msm_unchecked(&cs, &rs);

    let mut g1: Vec<G1Projective> = items
        .par_iter()
        .zip(&rs)
        .map(|((_, p), r)| p.a * r)
        .collect();
    g1.push(ic_sum);
    g1.push(c_sum);
    g1.push(vk.alpha_g1.into_group() * -r_sum);
    let g1 = G1Projective::normalize_batch(&g1);

    let mut g2: Vec<<Bn254 as Pairing>::G2Prepared> =
        items.par_iter().map(|(_, p)| p.b.into()).collect();
    g2.push(pvk.gamma_g2_neg_pc.clone());
    g2.push(pvk.delta_g2_neg_pc.clone());
    g2.push(vk.beta_g2.into());

    Ok(Bn254::multi_pairing(g1, g2).is_zero())
}

/// A uniformly random non-zero 128-bit scalar.
fn nonzero_u128<R: RngCore>(rng: &mut R) -> Fr {
    loop {
        let r = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        if r != 0 {
            return Fr::from(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toy;
    use ark_groth16::VerifyingKey;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(99)
    }

    #[test]
    fn empty_batch_is_valid() {
        let (pvk, _) = toy::proofs(0);
        assert!(verify_batch(&pvk, &[], &mut rng()).unwrap());
    }

    #[test]
    fn valid_batches_of_every_size_are_accepted() {
        let (pvk, items) = toy::proofs(8);
        for n in 1..=items.len() {
            assert!(
                verify_batch(&pvk, &items[..n], &mut rng()).unwrap(),
                "n = {n}"
            );
        }
    }

    #[test]
    fn any_single_bad_proof_is_rejected() {
        let (pvk, items) = toy::proofs(8);
        for bad in 0..items.len() {
            let mut negated_c = items.clone();
            negated_c[bad].1.c = -negated_c[bad].1.c;
            assert!(!verify_batch(&pvk, &negated_c, &mut rng()).unwrap());

            let mut wrong_input = items.clone();
            wrong_input[bad].0.new_state_root += Fr::one();
            assert!(!verify_batch(&pvk, &wrong_input, &mut rng()).unwrap());
        }
    }

    #[test]
    fn swapped_inputs_and_swapped_proof_parts_are_rejected() {
        let (pvk, items) = toy::proofs(8);
        let mut swapped = items.clone();
        let (x2, x5) = (swapped[2].0, swapped[5].0);
        swapped[2].0 = x5;
        swapped[5].0 = x2;
        assert!(!verify_batch(&pvk, &swapped, &mut rng()).unwrap());

        let mut swapped_a = items.clone();
        let (a0, a3) = (swapped_a[0].1.a, swapped_a[3].1.a);
        swapped_a[0].1.a = a3;
        swapped_a[3].1.a = a0;
        assert!(!verify_batch(&pvk, &swapped_a, &mut rng()).unwrap());
    }

    #[test]
    fn proofs_that_cancel_without_randomness_are_rejected() {
        // Two bad proofs whose errors cancel in an unweighted product: shift C_0 by +P and
        // C_1 by -P. With r_i = 1 for all i the check would pass; random weights catch it.
        let (pvk, items) = toy::proofs(2);
        let p = G1Affine::generator();
        let mut bad = items.clone();
        bad[0].1.c = (bad[0].1.c + p).into_affine();
        bad[1].1.c = (bad[1].1.c.into_group() - p).into_affine();
        assert!(!verify_batch(&pvk, &bad, &mut rng()).unwrap());
    }

    #[test]
    fn key_with_wrong_input_count_is_an_error() {
        let (pvk, items) = toy::proofs(1);
        let mut vk: VerifyingKey<Bn254> = pvk.vk.clone();
        vk.gamma_abc_g1.pop();
        let err = verify_batch(&crate::prepare(&vk), &items, &mut rng()).unwrap_err();
        assert!(matches!(
            err,
            VerifyError::Snark(SynthesisError::MalformedVerifyingKey)
        ));
    }
}
