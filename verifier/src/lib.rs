//! Verification of Veil batch proofs against a prepared Groth16 verifying key and the batch's
//! three public inputs.

use ark_bn254::Bn254;
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, VerifyingKey};
use ark_snark::SNARK;
use veil_circuits::batch::BatchPublicInputs;

/// Verification could not be carried out (as opposed to a proof that is simply invalid).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Malformed key or inputs.
    #[error("groth16: {0}")]
    Snark(#[from] ark_relations::r1cs::SynthesisError),
}

/// Prepares a verifying key once (pairing precomputation) for many verifications.
pub fn prepare(vk: &VerifyingKey<Bn254>) -> PreparedVerifyingKey<Bn254> {
    ark_groth16::prepare_verifying_key(vk)
}

/// Whether `proof` proves the batch transition with these public inputs.
pub fn verify(
    pvk: &PreparedVerifyingKey<Bn254>,
    public_inputs: &BatchPublicInputs,
    proof: &Proof<Bn254>,
) -> Result<bool, VerifyError> {
    Ok(Groth16::<Bn254>::verify_with_processed_vk(
        pvk,
        &public_inputs.to_vec(),
        proof,
    )?)
}
