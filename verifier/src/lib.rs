//! Verification of Veil batch proofs against a prepared Groth16 verifying key: one proof at a
//! time, many at once with a single multi-pairing ([`verify_batch`]), or straight from published
//! batch data ([`verify_published`]), so a verifier trusts only the data, the proof and the key.
//! [`da`] is the binary encoding of the batches' public data that goes on Bitcoin, and
//! [`rebuild`] replays it from genesis. The Bitcoin side (RPC, transactions) is `veil-bitcoin`:
//! this crate stays free of networking and async runtimes.

pub mod batch;
pub mod da;
pub mod published;
pub mod rebuild;

use ark_bn254::Bn254;
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, VerifyingKey};
use ark_snark::SNARK;
use veil_circuits::batch::BatchPublicInputs;

pub use batch::verify_batch;
pub use published::{
    batch_hash_from_fields, batch_hash_from_published, genesis_state_root,
    public_inputs_from_published, transfer_public_from_fields, verify_published,
};

/// Verification could not be carried out (as opposed to a proof that is simply invalid).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Malformed key or inputs (e.g. a key for a different number of public inputs).
    #[error("groth16: {0}")]
    Snark(#[from] ark_relations::r1cs::SynthesisError),
    /// More published slots than the batch has.
    #[error("{got} published slots do not fit in a batch of {batch_size}")]
    TooManySlots {
        /// Slots given.
        got: usize,
        /// Batch size `B`.
        batch_size: usize,
    },
    /// A published amount field is not a `u64`.
    #[error("published {field} does not fit in a u64")]
    AmountOutOfRange {
        /// Which amount (`public_in`, `public_out` or `fee`).
        field: &'static str,
    },
    /// A tree depth no rollup can have (the 4-ary trees need an even depth).
    #[error("tree depth must be even and in 2..={max}, got {depth}")]
    Depth {
        /// Depth given.
        depth: usize,
        /// Largest supported depth.
        max: usize,
    },
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

/// A tiny circuit with the batch circuit's three public inputs, for fast unit tests of the
/// Groth16 plumbing: `old_state_root * new_state_root = batch_hash`.
#[cfg(test)]
pub(crate) mod toy {
    use ark_bn254::{Bn254, Fr};
    use ark_ff::PrimeField;
    use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, ProvingKey};
    use ark_relations::lc;
    use ark_relations::r1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};
    use ark_snark::{CircuitSpecificSetupSNARK, SNARK};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use veil_circuits::batch::BatchPublicInputs;

    #[derive(Clone, Copy)]
    struct Product {
        a: Fr,
        b: Fr,
    }

    impl ConstraintSynthesizer<Fr> for Product {
        fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
            let a = cs.new_input_variable(|| Ok(self.a))?;
            let b = cs.new_input_variable(|| Ok(self.b))?;
            let c = cs.new_input_variable(|| Ok(self.a * self.b))?;
            cs.enforce_constraint(lc!() + a, lc!() + b, lc!() + c)
        }
    }

    /// Seeded keys for the toy circuit.
    pub fn setup() -> (ProvingKey<Bn254>, PreparedVerifyingKey<Bn254>) {
        let blank = Product {
            a: Fr::from(0u64),
            b: Fr::from(0u64),
        };
        let (pk, vk) = Groth16::<Bn254>::setup(blank, &mut ChaCha20Rng::seed_from_u64(7)).unwrap();
        (pk, super::prepare(&vk))
    }

    /// A proof for public inputs `(a, b, a * b)`.
    pub fn prove(pk: &ProvingKey<Bn254>, a: Fr, b: Fr) -> (BatchPublicInputs, Proof<Bn254>) {
        let inputs = BatchPublicInputs {
            old_state_root: a,
            new_state_root: b,
            batch_hash: a * b,
        };
        let mut rng = ChaCha20Rng::seed_from_u64(a.into_bigint().0[0]);
        (
            inputs,
            Groth16::<Bn254>::prove(pk, Product { a, b }, &mut rng).unwrap(),
        )
    }

    /// A prepared key and `n` valid proofs with distinct inputs.
    pub fn proofs(
        n: u64,
    ) -> (
        PreparedVerifyingKey<Bn254>,
        Vec<(BatchPublicInputs, Proof<Bn254>)>,
    ) {
        let (pk, pvk) = setup();
        let items = (0..n)
            .map(|i| prove(&pk, Fr::from(i + 2), Fr::from(3 * i + 5)))
            .collect();
        (pvk, items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::Fr;

    #[test]
    fn verify_accepts_valid_and_rejects_wrong_inputs() {
        let (pvk, items) = toy::proofs(2);
        for (x, proof) in &items {
            assert!(verify(&pvk, x, proof).unwrap());
        }
        let mut bad = items[0].0;
        bad.batch_hash += Fr::from(1u64);
        assert!(!verify(&pvk, &bad, &items[0].1).unwrap());
        assert!(!verify(&pvk, &items[1].0, &items[0].1).unwrap());
    }
}
