//! snarkjs's JSON forms of a Groth16 verifying key, proof and public inputs, so that
//! `snarkjs groth16 verify verification_key.json public.json proof.json` checks Veil's proofs:
//! BN254 (snarkjs's "bn128") points as decimal strings in affine coordinates with a third,
//! projective coordinate (`"1"`; the identity is `["0", "1", "0"]`), G2 coordinates as
//! `[c0, c1]` pairs, public inputs as decimal strings. Veil's (arkworks') verification equation
//! is snarkjs's, `e(A, B) = e(α, β) · e(Σ x_i · IC_i, γ) · e(C, δ)`, so the key and proof carry
//! over point for point. `vk_alphabeta_12`, which snarkjs's verifier does not read, is left out.

use ark_bn254::{Bn254, Fq, Fr, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_ff::PrimeField;
use ark_groth16::{Proof, VerifyingKey};
use serde_json::{json, Value};

/// A base-field element in decimal.
fn fq(x: Fq) -> String {
    x.into_bigint().to_string()
}

/// A scalar in decimal (how snarkjs writes public inputs).
pub fn scalar(x: &Fr) -> String {
    x.into_bigint().to_string()
}

fn g1(p: &G1Affine) -> Value {
    match p.xy() {
        Some((x, y)) => json!([fq(x), fq(y), "1"]),
        None => json!(["0", "1", "0"]),
    }
}

fn g2(p: &G2Affine) -> Value {
    match p.xy() {
        Some((x, y)) => json!([[fq(x.c0), fq(x.c1)], [fq(y.c0), fq(y.c1)], ["1", "0"]]),
        None => json!([["0", "0"], ["1", "0"], ["0", "0"]]),
    }
}

/// `verification_key.json`.
pub fn verifying_key(vk: &VerifyingKey<Bn254>) -> Value {
    json!({
        "protocol": "groth16",
        "curve": "bn128",
        "nPublic": vk.gamma_abc_g1.len().saturating_sub(1),
        "vk_alpha_1": g1(&vk.alpha_g1),
        "vk_beta_2": g2(&vk.beta_g2),
        "vk_gamma_2": g2(&vk.gamma_g2),
        "vk_delta_2": g2(&vk.delta_g2),
        "IC": vk.gamma_abc_g1.iter().map(g1).collect::<Vec<_>>(),
    })
}

/// `proof.json`.
pub fn proof(proof: &Proof<Bn254>) -> Value {
    json!({
        "pi_a": g1(&proof.a),
        "pi_b": g2(&proof.b),
        "pi_c": g1(&proof.c),
        "protocol": "groth16",
        "curve": "bn128",
    })
}

/// `public.json`.
pub fn public_inputs(inputs: &[Fr]) -> Value {
    Value::Array(inputs.iter().map(|x| Value::String(scalar(x))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::CurveGroup;

    #[test]
    fn numbers_are_decimal_and_the_identity_is_projective() {
        assert_eq!(scalar(&Fr::from(12345u64)), "12345");
        assert_eq!(
            scalar(&-Fr::from(1u64)),
            "21888242871839275222246405745257275088548364400416034343698204186575808495616"
        );
        assert_eq!(g1(&G1Affine::identity()), json!(["0", "1", "0"]));
        assert_eq!(
            g2(&G2Affine::identity()),
            json!([["0", "0"], ["1", "0"], ["0", "0"]])
        );
        // The generator of G1 is (1, 2).
        assert_eq!(g1(&G1Affine::generator()), json!(["1", "2", "1"]));
        let two = (G1Affine::generator() + G1Affine::generator()).into_affine();
        assert_eq!(g1(&two)[2], "1");
    }
}
