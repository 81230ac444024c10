//! Public inputs recomputed from published batch data, so that a verifier trusts only the data,
//! the proof and the verifying key.
//!
//! A batch publishes its number, every real slot's [`TransferPublic`] (padding slots are implied)
//! and its proof. The state roots are chained by the caller: batch `n`'s old root is batch
//! `n - 1`'s new root, and batch 0 starts from [`genesis_state_root`]. The new root itself is
//! taken from the publisher; the proof is what binds it to the old root and the slot data.

use ark_bn254::{Bn254, Fr};
use ark_groth16::{PreparedVerifyingKey, Proof};
use veil_circuits::batch::{batch_hash, batch_hash_fields, BatchPublicInputs};
use veil_circuits::constants::MAX_DEPTH;
use veil_circuits::transfer::SlotFields;
use veil_circuits::{RollupState, TransferPublic};

use crate::VerifyError;

/// The state root of an empty rollup whose trees have depth `depth`.
pub fn genesis_state_root(depth: usize) -> Result<Fr, VerifyError> {
    if veil_circuits::tree::levels_of(depth).is_err() {
        return Err(VerifyError::Depth {
            depth,
            max: MAX_DEPTH,
        });
    }
    Ok(RollupState::genesis(depth).state_root())
}

/// `batch_hash` of batch `batch_number` from its published slots (at most `batch_size`; the
/// remaining slots are padding).
pub fn batch_hash_from_published(
    batch_number: u64,
    batch_size: usize,
    slots: &[TransferPublic],
) -> Result<Fr, VerifyError> {
    check_slot_count(slots.len(), batch_size)?;
    Ok(batch_hash(batch_number, batch_size, slots))
}

/// `batch_hash` from each slot's nine public field elements (see [`TransferPublic::fields`]).
pub fn batch_hash_from_fields(
    batch_number: u64,
    batch_size: usize,
    slots: &[SlotFields],
) -> Result<Fr, VerifyError> {
    check_slot_count(slots.len(), batch_size)?;
    Ok(batch_hash_fields(batch_number, batch_size, slots))
}

/// The [`TransferPublic`] whose [`TransferPublic::fields`] are `fields`; an error if an amount
/// (`public_in`, `public_out`, `fee`) is not a `u64`, which no valid transfer publishes.
pub fn transfer_public_from_fields(fields: &SlotFields) -> Result<TransferPublic, VerifyError> {
    TransferPublic::from_fields(fields).map_err(|field| VerifyError::AmountOutOfRange { field })
}

/// The three public inputs of a published batch.
pub fn public_inputs_from_published(
    old_state_root: Fr,
    new_state_root: Fr,
    batch_number: u64,
    batch_size: usize,
    slots: &[TransferPublic],
) -> Result<BatchPublicInputs, VerifyError> {
    Ok(BatchPublicInputs {
        old_state_root,
        new_state_root,
        batch_hash: batch_hash_from_published(batch_number, batch_size, slots)?,
    })
}

/// Whether `proof` proves that batch `batch_number` with these published slots takes the state
/// from `old_state_root` to `new_state_root`.
pub fn verify_published(
    pvk: &PreparedVerifyingKey<Bn254>,
    old_state_root: Fr,
    new_state_root: Fr,
    batch_number: u64,
    batch_size: usize,
    slots: &[TransferPublic],
    proof: &Proof<Bn254>,
) -> Result<bool, VerifyError> {
    let inputs = public_inputs_from_published(
        old_state_root,
        new_state_root,
        batch_number,
        batch_size,
        slots,
    )?;
    crate::verify(pvk, &inputs, proof)
}

fn check_slot_count(got: usize, batch_size: usize) -> Result<(), VerifyError> {
    match got <= batch_size {
        true => Ok(()),
        false => Err(VerifyError::TooManySlots { got, batch_size }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::{One, Zero};
    use veil_circuits::constants::SLOT_PUBLIC_FIELDS;

    fn slot(seed: u64) -> TransferPublic {
        TransferPublic {
            nullifiers: [Fr::from(seed + 1), Fr::from(seed + 2)],
            commitments: [Fr::from(seed + 3), Fr::from(seed + 4)],
            public_in: seed + 5,
            public_out: 6,
            fee: u64::MAX,
            dest: Fr::from(seed + 8),
            deposit_ref: -Fr::one(),
            ciphertext_hash: Fr::from(seed + 9),
        }
    }

    #[test]
    fn genesis_root_matches_the_state_and_rejects_bad_depths() {
        for depth in [2, 8, 32] {
            assert_eq!(
                genesis_state_root(depth).unwrap(),
                RollupState::genesis(depth).state_root()
            );
        }
        assert_ne!(
            genesis_state_root(8).unwrap(),
            genesis_state_root(10).unwrap()
        );
        for depth in [0, 1, 9, MAX_DEPTH + 1] {
            assert!(matches!(
                genesis_state_root(depth),
                Err(VerifyError::Depth { .. })
            ));
        }
    }

    #[test]
    fn published_and_field_hashes_agree_and_pad_implicitly() {
        let slots = [slot(10), slot(20)];
        let fields: Vec<SlotFields> = slots.iter().map(|s| s.fields()).collect();
        let h = batch_hash_from_published(3, 4, &slots).unwrap();
        assert_eq!(h, batch_hash_from_fields(3, 4, &fields).unwrap());
        let mut padded = fields.clone();
        padded.extend([[Fr::zero(); SLOT_PUBLIC_FIELDS]; 2]);
        assert_eq!(h, batch_hash_from_fields(3, 4, &padded).unwrap());
        assert_ne!(h, batch_hash_from_published(4, 4, &slots).unwrap());
        assert_ne!(h, batch_hash_from_published(3, 8, &slots).unwrap());
        assert_ne!(h, batch_hash_from_published(3, 4, &slots[..1]).unwrap());
        assert_ne!(
            h,
            batch_hash_from_published(3, 4, &[slots[1], slots[0]]).unwrap()
        );
    }

    #[test]
    fn too_many_slots_is_an_error() {
        let slots = [slot(1), slot(2), slot(3)];
        let err = batch_hash_from_published(0, 2, &slots).unwrap_err();
        assert!(matches!(
            err,
            VerifyError::TooManySlots {
                got: 3,
                batch_size: 2
            }
        ));
        let fields: Vec<SlotFields> = slots.iter().map(|s| s.fields()).collect();
        assert!(matches!(
            batch_hash_from_fields(0, 2, &fields),
            Err(VerifyError::TooManySlots { .. })
        ));
        assert!(matches!(
            public_inputs_from_published(Fr::zero(), Fr::zero(), 0, 2, &slots),
            Err(VerifyError::TooManySlots { .. })
        ));
    }

    #[test]
    fn public_inputs_carry_the_roots_and_the_hash() {
        let slots = [slot(5)];
        let x = public_inputs_from_published(Fr::from(7u64), Fr::from(9u64), 2, 2, &slots).unwrap();
        assert_eq!(x.old_state_root, Fr::from(7u64));
        assert_eq!(x.new_state_root, Fr::from(9u64));
        assert_eq!(x.batch_hash, batch_hash(2, 2, &slots));
    }

    #[test]
    fn fields_round_trip_and_amounts_must_be_u64() {
        let s = slot(40);
        assert_eq!(transfer_public_from_fields(&s.fields()).unwrap(), s);
        for (i, name) in [(4, "public_in"), (5, "public_out"), (6, "fee")] {
            let mut f = s.fields();
            f[i] = Fr::from(u64::MAX) + Fr::one();
            match transfer_public_from_fields(&f) {
                Err(VerifyError::AmountOutOfRange { field }) => assert_eq!(field, name),
                other => panic!("expected AmountOutOfRange for {name}, got {other:?}"),
            }
            f[i] = -Fr::one();
            assert!(transfer_public_from_fields(&f).is_err());
        }
    }

    #[test]
    fn verify_published_checks_the_proof_against_recomputed_inputs() {
        // The toy circuit enforces old * new = hash; pick roots that satisfy it for this hash.
        use ark_ff::Field;
        let (pk, pvk) = crate::toy::setup();
        let slots = [slot(1)];
        let h = batch_hash(0, 2, &slots);
        let old = Fr::from(3u64);
        let new = h * old.inverse().unwrap();
        let (inputs, proof) = crate::toy::prove(&pk, old, new);
        assert_eq!(inputs.batch_hash, h);
        assert!(verify_published(&pvk, old, new, 0, 2, &slots, &proof).unwrap());
        assert!(!verify_published(&pvk, old, new, 1, 2, &slots, &proof).unwrap());
        assert!(!verify_published(&pvk, old, new, 0, 4, &slots, &proof).unwrap());
        assert!(!verify_published(&pvk, old, new, 0, 2, &[slot(2)], &proof).unwrap());
        assert!(!verify_published(&pvk, new, old, 0, 2, &slots, &proof).unwrap());
        assert!(matches!(
            verify_published(&pvk, old, new, 0, 0, &slots, &proof),
            Err(VerifyError::TooManySlots { .. })
        ));
    }
}
