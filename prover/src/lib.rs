//! Groth16 (BN254) setup and proving for [`BatchCircuit`]s: circuit-specific setup from OS
//! randomness or a deterministic, clearly insecure dev seed, proving (one-off [`prove`] with
//! stock ark-groth16, or a long-lived [`Prover`] holding its key, with Veil's witness map
//! ([`qap`], [`fft`]) and MSMs ([`msm`]) and proofs bit-identical to ark-groth16's), key files
//! ([`keys`]), the circuit's compact R1CS and its cache ([`r1cs`]), the proof encodings
//! ([`proof`]), the circom ecosystem's `.r1cs` / `.wtns` files ([`iden3`]) and snarkjs's JSON
//! keys and proofs ([`snarkjs`]), and a Solidity verifier contract with its call arguments
//! ([`solidity`]).

pub mod fft;
pub mod field;
pub mod groth16;
pub mod iden3;
pub mod keys;
pub mod msm;
pub mod proof;
mod prover;
pub mod qap;
pub mod r1cs;
pub mod snarkjs;
pub mod solidity;

pub use prover::{assignment, ProveReport, Prover, SynthesizedWitness};

use ark_bn254::Bn254;
use ark_groth16::{Groth16, Proof, ProvingKey, VerifyingKey};
use ark_snark::{CircuitSpecificSetupSNARK, SNARK};
use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_circuits::batch::{BatchCircuit, BatchShape};

/// Prover errors.
#[derive(Debug, thiserror::Error)]
pub enum ProverError {
    /// A key file could not be read or written.
    #[error(transparent)]
    KeyFile(#[from] keys::KeyFileError),
    /// Constraint synthesis or the SNARK failed.
    #[error("groth16: {0}")]
    Snark(#[from] ark_relations::r1cs::SynthesisError),
    /// The circuit is of another shape than the prover's key.
    #[error("the batch is {circuit} but the proving key is for {key}")]
    ShapeMismatch {
        /// Shape of the circuit.
        circuit: BatchShape,
        /// Shape of the key.
        key: BatchShape,
    },
    /// The witness's lengths or indices do not fit its shape.
    #[error(transparent)]
    Witness(#[from] veil_circuits::batch::BatchError),
    /// The witness does not satisfy the circuit for the claimed public inputs.
    #[error("the witness does not satisfy the batch circuit (constraint {constraint} fails): the batch or its public inputs are wrong")]
    Unsatisfied {
        /// Index of the first failing constraint.
        constraint: usize,
    },
    /// The proving key does not fit the circuit.
    #[error("proving key does not fit the circuit: {0}")]
    KeyMismatch(String),
    /// A proof failed the check against the proving key's own verifying key (a corrupt key).
    #[error("the new proof does not verify against the proving key's own verifying key (corrupt proving key?)")]
    SelfCheck,
}

/// A deterministic RNG for `--dev-seed N` setups. INSECURE: anyone can recompute the toxic waste.
pub fn dev_rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Circuit-specific Groth16 setup for `shape`.
pub fn setup<R: RngCore + CryptoRng>(
    shape: BatchShape,
    rng: &mut R,
) -> Result<(ProvingKey<Bn254>, VerifyingKey<Bn254>), ProverError> {
    let span = tracing::info_span!("setup", %shape);
    let _g = span.enter();
    Ok(Groth16::<Bn254>::setup(BatchCircuit::blank(shape), rng)?)
}

/// Proves one batch.
pub fn prove<R: RngCore + CryptoRng>(
    pk: &ProvingKey<Bn254>,
    circuit: BatchCircuit,
    rng: &mut R,
) -> Result<Proof<Bn254>, ProverError> {
    let span = tracing::info_span!("prove", shape = %circuit.witness.shape);
    let _g = span.enter();
    Ok(Groth16::<Bn254>::prove(pk, circuit, rng)?)
}

/// Dev keys of `shape` for `seed`, cached in `dir` (e.g. under `target/`): loaded when present
/// and matching this build's circuit, else generated with [`dev_rng`] and written. INSECURE.
pub fn load_or_setup_dev_keys(
    dir: &std::path::Path,
    shape: BatchShape,
    seed: u64,
) -> Result<(ProvingKey<Bn254>, VerifyingKey<Bn254>), ProverError> {
    use keys::{key_file_name, KeyKind};
    let dir = dir.join(format!("dev-seed-{seed}"));
    let pk_path = dir.join(key_file_name(KeyKind::Proving, shape));
    let vk_path = dir.join(key_file_name(KeyKind::Verifying, shape));
    let hash = keys::shape_hash_cached(&dir, shape);
    if let (Ok(pk), Ok(vk)) = (
        keys::read_proving_key(&pk_path, shape, &hash),
        keys::read_verifying_key(&vk_path, shape, &hash),
    ) {
        return Ok((pk, vk));
    }
    let (pk, vk) = setup(shape, &mut dev_rng(seed))?;
    keys::write_key_file(&pk_path, keys::header(KeyKind::Proving, shape, hash), &pk)?;
    keys::write_key_file(&vk_path, keys::header(KeyKind::Verifying, shape, hash), &vk)?;
    Ok((pk, vk))
}
