//! Spending one key-path P2TR coin: what a plain Bitcoin user does to pay a peg-in address or a
//! withdrawal destination. [`pay_from_coin`] builds a version 2 transaction with one input (the
//! coin, RBF-signalling), the requested outputs in order and the change last, back to the key's
//! own P2TR output, and signs the input with a BIP 341 key-path signature (`SIGHASH_DEFAULT`,
//! untweaked internal key, no script tree). The demo's Bitcoin user and the regtest suites use it.

use bitcoin::hashes::Hash;
use bitcoin::key::{Keypair, TapTweak};
use bitcoin::secp256k1::{Message, Secp256k1};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::{
    absolute, taproot, transaction, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn,
    TxOut, Witness,
};

/// Why [`pay_from_coin`] refused.
#[derive(Debug, thiserror::Error)]
pub enum SpendError {
    /// The outputs and the fee need more than the coin holds.
    #[error("the coin holds {have} sat, the outputs and fee need {need} sat")]
    Insufficient {
        /// The coin's value.
        have: u64,
        /// Outputs plus fee (saturated at `u64::MAX`).
        need: u64,
    },
    /// The signature hash could not be computed.
    #[error("signature hash: {0}")]
    Sighash(String),
}

/// The key-path P2TR script of `keypair`'s x-only key (no script tree).
pub fn p2tr_script(keypair: &Keypair) -> ScriptBuf {
    let secp = Secp256k1::verification_only();
    ScriptBuf::new_p2tr(&secp, keypair.x_only_public_key().0, None)
}

/// Spends `coin` (an outpoint of `keypair`'s [`p2tr_script`] and its output) to `outputs`,
/// paying `fee`; the change goes back to the same script as the last output. Returns the signed
/// transaction (not broadcast).
pub fn pay_from_coin(
    keypair: &Keypair,
    coin: (OutPoint, &TxOut),
    outputs: Vec<TxOut>,
    fee: Amount,
) -> Result<Transaction, SpendError> {
    let (prev, prev_out) = coin;
    let need = outputs
        .iter()
        .try_fold(fee, |sum, o| sum.checked_add(o.value));
    let change = need.and_then(|need| prev_out.value.checked_sub(need));
    let Some(change) = change else {
        return Err(SpendError::Insufficient {
            have: prev_out.value.to_sat(),
            need: need.map_or(u64::MAX, Amount::to_sat),
        });
    };
    let mut output = outputs;
    output.push(TxOut {
        value: change,
        script_pubkey: p2tr_script(keypair),
    });
    let mut tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: prev,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        }],
        output,
    };
    let sighash = SighashCache::new(&tx)
        .taproot_key_spend_signature_hash(
            0,
            &Prevouts::All(std::slice::from_ref(prev_out)),
            TapSighashType::Default,
        )
        .map_err(|e| SpendError::Sighash(e.to_string()))?;
    let secp = Secp256k1::new();
    let tweaked = keypair.tap_tweak(&secp, None);
    let signature = secp.sign_schnorr_no_aux_rand(
        &Message::from_digest(sighash.to_byte_array()),
        &tweaked.to_keypair(),
    );
    tx.input[0].witness = Witness::p2tr_key_spend(&taproot::Signature {
        signature,
        sighash_type: TapSighashType::Default,
    });
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::Txid;

    fn keypair(seed: u8) -> Keypair {
        Keypair::from_seckey_slice(&Secp256k1::new(), &[seed; 32]).unwrap()
    }

    fn coin(key: &Keypair, sat: u64) -> (OutPoint, TxOut) {
        (
            OutPoint::new(Txid::from_byte_array([9; 32]), 3),
            TxOut {
                value: Amount::from_sat(sat),
                script_pubkey: p2tr_script(key),
            },
        )
    }

    fn to(sat: u64) -> TxOut {
        TxOut {
            value: Amount::from_sat(sat),
            script_pubkey: ScriptBuf::new_op_return([1u8; 4]),
        }
    }

    #[test]
    fn outputs_in_order_then_change_and_a_valid_key_path_signature() {
        let key = keypair(5);
        let (prev, prev_out) = coin(&key, 100_000);
        let tx = pay_from_coin(
            &key,
            (prev, &prev_out),
            vec![to(30_000), to(20_000)],
            Amount::from_sat(1_000),
        )
        .unwrap();
        assert_eq!(tx.input.len(), 1);
        assert_eq!(tx.input[0].previous_output, prev);
        let values: Vec<u64> = tx.output.iter().map(|o| o.value.to_sat()).collect();
        assert_eq!(values, [30_000, 20_000, 49_000]);
        assert_eq!(tx.output[2].script_pubkey, prev_out.script_pubkey);
        assert!(tx.is_explicitly_rbf());

        // The witness is one 64-byte Schnorr signature valid for the output key.
        let witness: Vec<&[u8]> = tx.input[0].witness.iter().collect();
        assert_eq!(witness.len(), 1);
        let sig = bitcoin::secp256k1::schnorr::Signature::from_slice(witness[0]).unwrap();
        let sighash = SighashCache::new(&tx)
            .taproot_key_spend_signature_hash(
                0,
                &Prevouts::All(std::slice::from_ref(&prev_out)),
                TapSighashType::Default,
            )
            .unwrap();
        let secp = Secp256k1::new();
        let output_key = key
            .tap_tweak(&secp, None)
            .to_keypair()
            .x_only_public_key()
            .0;
        let msg = Message::from_digest(sighash.to_byte_array());
        secp.verify_schnorr(&sig, &msg, &output_key).unwrap();
        // Not valid under the untweaked key: the spend is a real BIP 341 key-path spend.
        assert!(secp
            .verify_schnorr(&sig, &msg, &key.x_only_public_key().0)
            .is_err());
    }

    #[test]
    fn a_coin_too_small_is_refused() {
        let key = keypair(6);
        let (prev, prev_out) = coin(&key, 10_000);
        let err = pay_from_coin(
            &key,
            (prev, &prev_out),
            vec![to(9_500)],
            Amount::from_sat(501),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                SpendError::Insufficient {
                    have: 10_000,
                    need: 10_001
                }
            ),
            "{err}"
        );
        // Exactly enough leaves a zero change output.
        let tx = pay_from_coin(
            &key,
            (prev, &prev_out),
            vec![to(9_500)],
            Amount::from_sat(500),
        )
        .unwrap();
        assert_eq!(tx.output[1].value, Amount::ZERO);
        // Overflowing sums are refused, not wrapped.
        let err = pay_from_coin(
            &key,
            (prev, &prev_out),
            vec![to(u64::MAX), to(1)],
            Amount::ZERO,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            SpendError::Insufficient { need: u64::MAX, .. }
        ));
    }
}
