//! Deposit transfers (DESIGN §6): the transfer that credits a peg-in, with two dummy inputs of
//! a one-time signer, the deposit note and a zero note to the recipient. The node builds one for
//! each confirmed peg-in output ([`build_deposit_idempotent`] keyed by a node secret, so a
//! crash between building and storing rebuilds the very same transfer); the operator-token
//! endpoint of nodes without Bitcoin takes the same transfers.

use rand_core::{CryptoRng, RngCore};
use veil_circuits::keys::PaymentAddress;
use veil_circuits::transfer::{OutputSpec, PublicAmounts, Transfer};
use veil_circuits::SpendingKey;

/// A deposit transfer cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepositError {
    /// A deposit of nothing.
    #[error("a deposit must be of at least 1 sat")]
    ZeroAmount,
}

/// A deposit that is the same transfer every time it is built for the same `(to, amount,
/// outpoint)` under the same operator `secret` (its token): a retry after a lost response
/// re-posts the identical transfer, which the node acknowledges instead of crediting twice. The
/// randomness (the one-time signer, note randomness, ephemeral keys) comes from
/// HKDF-SHA256(salt = secret, outpoint || addr || pk_enc || amount), so nobody without the
/// secret can recompute a note's opening from the public outpoint and a guessed address.
pub fn build_deposit_idempotent(
    secret: &[u8],
    to: &PaymentAddress,
    amount: u64,
    outpoint: &bitcoin::OutPoint,
) -> Result<Transfer, DepositError> {
    use rand_chacha::rand_core::SeedableRng;
    let mut ikm = bitcoin::consensus::encode::serialize(outpoint);
    ikm.extend_from_slice(&veil_circuits::field::to_bytes_be(&to.addr));
    ikm.extend_from_slice(&to.pk_enc);
    ikm.extend_from_slice(&amount.to_be_bytes());
    let mut seed = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(secret), &ikm)
        .expand(DEPOSIT_SEED_INFO, &mut seed)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    build_deposit(
        to,
        amount,
        outpoint,
        &mut rand_chacha::ChaCha20Rng::from_seed(seed),
    )
}

const DEPOSIT_SEED_INFO: &[u8] = b"veil/deposit-seed";

/// An operator deposit of `amount` to `to`, funded by the Bitcoin `outpoint`: two dummy inputs
/// of a fresh one-time signer (DESIGN §6), the deposit note and a zero note to `to`.
pub fn build_deposit<R: RngCore + CryptoRng>(
    to: &PaymentAddress,
    amount: u64,
    outpoint: &bitcoin::OutPoint,
    rng: &mut R,
) -> Result<Transfer, DepositError> {
    if amount == 0 {
        return Err(DepositError::ZeroAmount);
    }
    let signer = SpendingKey::random(rng);
    let inputs = [
        Transfer::dummy_input(&signer, rng),
        Transfer::dummy_input(&signer, rng),
    ];
    Ok(Transfer::create(
        &signer,
        inputs,
        [
            OutputSpec {
                to: *to,
                value: amount,
            },
            OutputSpec { to: *to, value: 0 },
        ],
        PublicAmounts {
            public_in: amount,
            deposit_ref: crate::refs::deposit_ref(outpoint),
            ..Default::default()
        },
        rng,
    ))
}

#[cfg(test)]
mod tests {
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use veil_circuits::note::decrypt_note;

    use super::*;

    #[test]
    fn deposit_is_valid_for_its_recipient() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let alice = SpendingKey::random(&mut rng);
        let op = crate::refs::parse_outpoint(
            "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b:0",
        )
        .unwrap();
        let t = build_deposit(&alice.payment_address(), 1000, &op, &mut rng).unwrap();
        let state = veil_circuits::RollupState::genesis(8);
        t.validate(&state, |_| false).unwrap();
        assert_eq!(t.public.public_in, 1000);
        assert_eq!(t.public.deposit_ref, crate::refs::deposit_ref(&op));
        let rho = veil_circuits::note::output_rho(t.public.nullifiers[0], 1);
        let (note, memo) =
            decrypt_note(&alice, &t.ciphertexts[0], rho, t.public.commitments[0]).unwrap();
        assert_eq!(memo, None);
        assert_eq!(note.value, 1000);
        assert!(matches!(
            build_deposit(&alice.payment_address(), 0, &op, &mut rng),
            Err(DepositError::ZeroAmount)
        ));
    }

    #[test]
    fn idempotent_deposits_repeat_only_for_the_same_secret_and_outpoint() {
        let alice = SpendingKey::from_bytes([7; 32]).unwrap().payment_address();
        let op = crate::refs::parse_outpoint(
            "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b:1",
        )
        .unwrap();
        let a = build_deposit_idempotent(b"secret", &alice, 500, &op).unwrap();
        assert_eq!(
            build_deposit_idempotent(b"secret", &alice, 500, &op).unwrap(),
            a
        );
        assert_ne!(
            build_deposit_idempotent(b"other", &alice, 500, &op).unwrap(),
            a
        );
        let mut op2 = op;
        op2.vout = 2;
        assert_ne!(
            build_deposit_idempotent(b"secret", &alice, 500, &op2).unwrap(),
            a
        );
    }
}
