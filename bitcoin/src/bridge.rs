//! Peg-in addresses of the bridge (issue 15, `docs/bridge.md`): a Bitcoin address per Veil payment
//! address, whose output key commits to that address (pay-to-contract, as Liquid's peg-in
//! addresses commit to their claim script), so a deposit's Veil destination is fixed by the
//! Bitcoin output itself and the operator cannot credit it to anyone else.
//!
//! With the bridge's (operator's) x-only key `B` and a Veil payment address `A` (owner tag `addr`
//! and encryption key `pk_enc`):
//!
//! ```text
//! t = TaggedHash("veil/deposit-v1", B || addr (32 bytes big-endian) || pk_enc (32 bytes))
//! P = B + t·G                     (the deposit's internal key, x-only)
//! Q = P + H_TapTweak(P)·G         (BIP 341 key-path output key, no script tree)
//! scriptPubKey = OP_1 <Q>         (P2TR)
//! ```
//!
//! Only the holder of `B`'s secret key `b` can spend it (with `b + t`, BIP 341-tweaked), and
//! anyone who knows `B` and `A` recomputes the output: the wallet derives its deposit address
//! itself, and a verifier checks that a credited deposit paid the address of the note's owner.

use bitcoin::hashes::{sha256t_hash_newtype, Hash, HashEngine};
use bitcoin::key::{Keypair, TapTweak, TweakedKeypair, UntweakedPublicKey};
use bitcoin::secp256k1::{Scalar, Secp256k1, Verification};
use bitcoin::{Address, Network, ScriptBuf};
use veil_circuits::field;
use veil_circuits::keys::PaymentAddress;

use crate::operator::OperatorKey;

pub mod audit;
pub mod deposit;
pub mod flows;

/// The tag of the deposit tweak's BIP 340 tagged hash (what `GET /v1/bridge` names).
pub const DEPOSIT_TAG: &str = "veil/deposit-v1";

sha256t_hash_newtype! {
    /// The tag of peg-in commitments.
    pub struct DepositTag = hash_str("veil/deposit-v1");

    /// `t`, the pay-to-contract tweak of a deposit address.
    #[hash_newtype(forward)]
    pub struct DepositTweakHash(_);
}

/// A deposit address cannot be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeKeyError {
    /// The tweak is not a valid scalar or gives the point at infinity (probability ~2^-128).
    #[error("the deposit tweak for this address is unusable; use another Veil address")]
    Tweak,
}

/// `t` for `bridge` and `to` (see the module doc).
pub fn deposit_tweak(bridge: &UntweakedPublicKey, to: &PaymentAddress) -> DepositTweakHash {
    let mut engine = DepositTweakHash::engine();
    engine.input(&bridge.serialize());
    engine.input(&field::to_bytes_be(&to.addr));
    engine.input(&to.pk_enc);
    DepositTweakHash::from_engine(engine)
}

fn tweak_scalar(
    bridge: &UntweakedPublicKey,
    to: &PaymentAddress,
) -> Result<Scalar, BridgeKeyError> {
    Scalar::from_be_bytes(deposit_tweak(bridge, to).to_byte_array())
        .map_err(|_| BridgeKeyError::Tweak)
}

/// `P = B + t·G`, the internal key of `to`'s deposit output.
pub fn deposit_internal_key<C: Verification>(
    secp: &Secp256k1<C>,
    bridge: &UntweakedPublicKey,
    to: &PaymentAddress,
) -> Result<UntweakedPublicKey, BridgeKeyError> {
    let t = tweak_scalar(bridge, to)?;
    bridge
        .add_tweak(secp, &t)
        .map(|(key, _parity)| key)
        .map_err(|_| BridgeKeyError::Tweak)
}

/// The P2TR script of `to`'s deposit output.
pub fn deposit_script_pubkey<C: Verification>(
    secp: &Secp256k1<C>,
    bridge: &UntweakedPublicKey,
    to: &PaymentAddress,
) -> Result<ScriptBuf, BridgeKeyError> {
    let internal = deposit_internal_key(secp, bridge, to)?;
    Ok(ScriptBuf::new_p2tr(secp, internal, None))
}

/// `to`'s deposit address on `network`.
pub fn deposit_address(
    bridge: &UntweakedPublicKey,
    to: &PaymentAddress,
    network: Network,
) -> Result<Address, BridgeKeyError> {
    let secp = Secp256k1::verification_only();
    let internal = deposit_internal_key(&secp, bridge, to)?;
    Ok(Address::p2tr(&secp, internal, None, network))
}

impl OperatorKey {
    /// The key-path signing key of `to`'s deposit output (`b + t`, BIP 341-tweaked), for
    /// sweeping it into the reserve.
    pub fn deposit_keypair(&self, to: &PaymentAddress) -> Result<TweakedKeypair, BridgeKeyError> {
        let t = tweak_scalar(&self.internal_key(), to)?;
        let keypair: Keypair = self
            .keypair()
            .add_xonly_tweak(self.secp(), &t)
            .map_err(|_| BridgeKeyError::Tweak)?;
        Ok(keypair.tap_tweak(self.secp(), None))
    }

    /// The secret a node derives its deposit transfers' randomness from
    /// ([`deposit::build_deposit_idempotent`]): SHA-256 of a domain tag and the operator's
    /// secret key, so a node rebuilding a deposit after a crash gets the very same transfer and
    /// nobody else can recompute its note openings.
    pub fn deposit_secret(&self) -> [u8; 32] {
        use bitcoin::hashes::sha256;
        let mut engine = sha256::Hash::engine();
        engine.input(DEPOSIT_SECRET_TAG);
        engine.input(&self.keypair().secret_bytes());
        sha256::Hash::from_engine(engine).to_byte_array()
    }
}

const DEPOSIT_SECRET_TAG: &[u8] = b"veil/deposit-secret-v1";

#[cfg(test)]
mod tests {
    use bitcoin::hashes::sha256;
    use bitcoin::key::TweakedPublicKey;
    use bitcoin::secp256k1::Message;
    use veil_circuits::SpendingKey;

    use super::*;

    fn address(seed: u8) -> PaymentAddress {
        SpendingKey::from_bytes([seed; 32])
            .unwrap()
            .payment_address()
    }

    #[test]
    fn the_tweak_is_a_bip340_tagged_hash_of_the_key_and_the_address() {
        let bridge = OperatorKey::from_secret_bytes(&[5; 32])
            .unwrap()
            .internal_key();
        let to = address(1);
        assert_eq!(DEPOSIT_TAG, "veil/deposit-v1");
        let tag = sha256::Hash::hash(DEPOSIT_TAG.as_bytes());
        let mut msg = Vec::new();
        msg.extend_from_slice(tag.as_byte_array());
        msg.extend_from_slice(tag.as_byte_array());
        msg.extend_from_slice(&bridge.serialize());
        msg.extend_from_slice(&field::to_bytes_be(&to.addr));
        msg.extend_from_slice(&to.pk_enc);
        assert_eq!(
            deposit_tweak(&bridge, &to).to_byte_array(),
            sha256::Hash::hash(&msg).to_byte_array()
        );
    }

    #[test]
    fn each_address_gets_its_own_output_and_only_the_bridge_key_spends_it() {
        let secp = Secp256k1::new();
        let operator = OperatorKey::from_secret_bytes(&[5; 32]).unwrap();
        let bridge = operator.internal_key();
        let (a, b) = (address(1), address(2));
        let spk_a = deposit_script_pubkey(&secp, &bridge, &a).unwrap();
        let spk_b = deposit_script_pubkey(&secp, &bridge, &b).unwrap();
        assert!(spk_a.is_p2tr());
        assert_ne!(spk_a, spk_b);
        // Another bridge key gives another output for the same Veil address.
        let other = OperatorKey::from_secret_bytes(&[6; 32])
            .unwrap()
            .internal_key();
        assert_ne!(deposit_script_pubkey(&secp, &other, &a).unwrap(), spk_a);
        assert_eq!(
            deposit_address(&bridge, &a, Network::Regtest)
                .unwrap()
                .script_pubkey(),
            spk_a
        );
        // The sweeping key is the output key, and a signature with it verifies against it.
        let keypair = operator.deposit_keypair(&a).unwrap();
        let output_key: TweakedPublicKey = keypair.public_parts().0;
        assert_eq!(ScriptBuf::new_p2tr_tweaked(output_key), spk_a);
        let msg = Message::from_digest([7; 32]);
        let sig = secp.sign_schnorr_no_aux_rand(&msg, &keypair.to_keypair());
        secp.verify_schnorr(&sig, &msg, &output_key.to_x_only_public_key())
            .unwrap();
        // Address b's key does not spend a's output.
        let wrong = operator.deposit_keypair(&b).unwrap();
        let sig = secp.sign_schnorr_no_aux_rand(&msg, &wrong.to_keypair());
        assert!(secp
            .verify_schnorr(&sig, &msg, &output_key.to_x_only_public_key())
            .is_err());
    }
}
