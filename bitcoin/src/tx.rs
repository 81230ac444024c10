//! Building and signing anchor transactions (DESIGN §11): one input spending the previous anchor's
//! change, `[OP_RETURN payload, change]` outputs, an RBF-signalling sequence, the fee from a fee
//! rate, standardness checks (weight, `OP_RETURN` size, dust), and fee bumps that rebuild the same
//! anchor at a higher rate under the BIP 125 replacement rules.

use bitcoin::absolute::LockTime;
use bitcoin::ecdsa;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::Message;
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::transaction::Version;
use bitcoin::{
    taproot, Amount, FeeRate, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    Weight, Witness,
};

use super::operator::{KeyKind, OperatorKey};
use super::payload::{AnchorPayload, SCRIPT_LEN};

/// Lowest fee rate accepted: Bitcoin Core's default minimum relay fee, 1 sat/vB.
pub const MIN_FEE_RATE: FeeRate = FeeRate::BROADCAST_MIN;
/// Highest fee rate accepted: Bitcoin Core's default `maxfeerate` for `sendrawtransaction`,
/// 0.1 BTC/kvB = 10,000 sat/vB.
pub const MAX_FEE_RATE: FeeRate = FeeRate::from_sat_per_vb_u32(10_000);
/// BIP 125 rule 4: a replacement pays at least this rate on its own size on top of the fee it
/// replaces (Core's default `incrementalrelayfee`, 1 sat/vB).
pub const INCREMENTAL_RELAY_FEE: FeeRate = FeeRate::BROADCAST_MIN;
/// Core policy: largest standard transaction weight.
pub const MAX_STANDARD_TX_WEIGHT: Weight = Weight::from_wu(400_000);
/// Core policy (since v25): smallest standard non-witness serialisation.
pub const MIN_STANDARD_TX_NONWITNESS_SIZE: usize = 65;
/// Core policy: at most 80 bytes of data after `OP_RETURN` (an 83-byte script).
pub const MAX_OP_RETURN_DATA: usize = 80;
/// Core policy: largest stack item, other than the script and control block, of a tapscript
/// spend.
pub const MAX_STANDARD_TAPSCRIPT_STACK_ITEM_SIZE: usize = 80;
/// First byte of a Taproot annex (BIP 341), which Core does not relay.
pub const TAPROOT_ANNEX_PREFIX: u8 = 0x50;
/// Output index of the change, which the next anchor spends.
pub const CHANGE_VOUT: u32 = 1;

/// Largest witness a signature of each kind produces, used to size the fee before signing:
/// P2TR key path `[64-byte Schnorr sig]` (`SIGHASH_DEFAULT`, exact); P2WPKH `[sig, pubkey]` with
/// a low-R DER signature of at most 70 bytes plus the sighash byte, and a 33-byte key.
pub(crate) fn max_witness(kind: KeyKind) -> Witness {
    match kind {
        KeyKind::P2tr => Witness::from_slice(&[[0u8; 64].as_slice()]),
        KeyKind::P2wpkh => Witness::from_slice(&[[0u8; 71].as_slice(), [0u8; 33].as_slice()]),
    }
}

/// The output an anchor spends: the previous anchor's change, or the genesis outpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrevOut {
    /// Where it is.
    pub outpoint: OutPoint,
    /// Its value and script (one of the operator's, see [`OperatorKey::kind_of`]).
    pub txout: TxOut,
}

/// An anchor transaction could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorTxError {
    /// The previous output is not locked to the operator key (P2TR or P2WPKH).
    #[error("previous output {outpoint} is not locked to the operator key (P2TR or P2WPKH)")]
    ForeignPrevOut {
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// Fee rate below the relay minimum.
    #[error("fee rate {sat_per_kwu} sat/kwu is below the minimum relay fee of 1 sat/vB")]
    FeeRateTooLow {
        /// The rate given.
        sat_per_kwu: u64,
    },
    /// Fee rate above Core's default `maxfeerate`.
    #[error("fee rate {sat_per_kwu} sat/kwu is above the 10,000 sat/vB safety cap")]
    FeeRateTooHigh {
        /// The rate given.
        sat_per_kwu: u64,
    },
    /// The previous output cannot pay the fee and leave non-dust change.
    #[error(
        "previous output holds {available}; a fee of {fee} would leave change {change} \
         below the dust limit {dust_limit}: fund the operator key"
    )]
    DustChange {
        /// Value of the previous output.
        available: Amount,
        /// Fee needed.
        fee: Amount,
        /// What would be left (zero if the fee exceeds the value).
        change: Amount,
        /// Smallest non-dust change for the change script.
        dust_limit: Amount,
    },
    /// The signed transaction breaks a standardness rule (this is a bug if it happens).
    #[error("anchor transaction is non-standard: {0}")]
    NonStandard(String),
    /// Computing the signature hash failed.
    #[error("signature hash: {0}")]
    Sighash(String),
}

/// A signed anchor transaction with what it was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorTx {
    /// The signed transaction.
    pub tx: Transaction,
    /// The output it spends.
    pub prev: PrevOut,
    /// The payload in its first output.
    pub payload: AnchorPayload,
    /// How the change is locked.
    pub change_kind: KeyKind,
    /// The absolute fee paid.
    pub fee: Amount,
    /// The fee rate asked for (the actual rate is at least this, see [`Self::fee_rate`]).
    pub target_fee_rate: FeeRate,
}

impl AnchorTx {
    /// The transaction id.
    pub fn txid(&self) -> Txid {
        self.tx.compute_txid()
    }

    /// Virtual size in vbytes.
    pub fn vsize(&self) -> u64 {
        self.tx.vsize() as u64
    }

    /// Weight.
    pub fn weight(&self) -> Weight {
        self.tx.weight()
    }

    /// The actual fee rate, fee / weight.
    pub fn fee_rate(&self) -> FeeRate {
        self.fee / self.tx.weight()
    }

    /// The actual fee rate in sat/vB (fee / vsize), for reports.
    pub fn sat_per_vb(&self) -> f64 {
        self.fee.to_sat() as f64 / self.vsize() as f64
    }

    /// The change output, which the next anchor spends.
    pub fn change(&self) -> PrevOut {
        PrevOut {
            outpoint: OutPoint::new(self.txid(), CHANGE_VOUT),
            txout: self.tx.output[CHANGE_VOUT as usize].clone(),
        }
    }

    /// The raw transaction as lowercase hex, for `sendrawtransaction`.
    pub fn to_hex(&self) -> String {
        bitcoin::consensus::encode::serialize_hex(&self.tx)
    }

    /// The same anchor (same input, payload and change script) at a higher fee rate, as a BIP 125
    /// replacement: its fee is the larger of `new_rate` on its size and this fee plus the
    /// incremental relay fee (1 sat/vB) on its size, so Core accepts it as a replacement.
    pub fn bump_fee(
        &self,
        key: &OperatorKey,
        new_rate: FeeRate,
    ) -> Result<AnchorTx, AnchorTxError> {
        build(
            key,
            &self.prev,
            &self.payload,
            self.change_kind,
            new_rate,
            Some(self.fee),
        )
    }
}

/// Builds and signs the anchor carrying `payload`, spending `prev` (locked to `key`, P2TR or
/// P2WPKH) with change to `key` as `change_kind`, paying `fee_rate` on the signed size (rounded
/// up to whole satoshis).
pub fn build_anchor_tx(
    key: &OperatorKey,
    prev: &PrevOut,
    payload: &AnchorPayload,
    change_kind: KeyKind,
    fee_rate: FeeRate,
) -> Result<AnchorTx, AnchorTxError> {
    build(key, prev, payload, change_kind, fee_rate, None)
}

/// `rate` on `vsize` vbytes, rounded up.
pub(crate) fn fee_for_vsize(rate: FeeRate, vsize: u64) -> Amount {
    Amount::from_sat((rate.to_sat_per_kwu() * 4 * vsize).div_ceil(1000))
}

fn build(
    key: &OperatorKey,
    prev: &PrevOut,
    payload: &AnchorPayload,
    change_kind: KeyKind,
    fee_rate: FeeRate,
    replaces_fee: Option<Amount>,
) -> Result<AnchorTx, AnchorTxError> {
    check_fee_rate(fee_rate)?;
    let input_kind = input_kind(key, prev)?;
    let change_script = key.script_pubkey(change_kind);

    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: prev.outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: max_witness(input_kind),
        }],
        output: vec![
            TxOut {
                value: Amount::ZERO,
                script_pubkey: payload.script_pubkey(),
            },
            TxOut {
                value: Amount::ZERO,
                script_pubkey: change_script.clone(),
            },
        ],
    };
    // The change value does not change the size, so the fee is fixed before signing.
    let max_vsize = tx.vsize() as u64;
    let mut fee = fee_for_vsize(fee_rate, max_vsize);
    if let Some(old) = replaces_fee {
        fee = fee.max(old + fee_for_vsize(INCREMENTAL_RELAY_FEE, max_vsize));
    }
    let dust_limit = change_script.minimal_non_dust();
    let change = prev.txout.value.checked_sub(fee).unwrap_or(Amount::ZERO);
    if change < dust_limit {
        return Err(AnchorTxError::DustChange {
            available: prev.txout.value,
            fee,
            change,
            dust_limit,
        });
    }
    tx.output[CHANGE_VOUT as usize].value = change;

    sign_input(key, &mut tx, prev, input_kind)?;
    check_standard(&tx, prev, fee)?;
    Ok(AnchorTx {
        tx,
        prev: prev.clone(),
        payload: *payload,
        change_kind,
        fee,
        target_fee_rate: fee_rate,
    })
}

/// How `prev` is locked to `key`; [`AnchorTxError::ForeignPrevOut`] if it is not the operator's.
pub(crate) fn input_kind(key: &OperatorKey, prev: &PrevOut) -> Result<KeyKind, AnchorTxError> {
    key.kind_of(&prev.txout.script_pubkey)
        .ok_or(AnchorTxError::ForeignPrevOut {
            outpoint: prev.outpoint,
        })
}

/// Refuses fee rates below the relay minimum or above the `maxfeerate` safety cap.
pub(crate) fn check_fee_rate(fee_rate: FeeRate) -> Result<(), AnchorTxError> {
    if fee_rate < MIN_FEE_RATE {
        return Err(AnchorTxError::FeeRateTooLow {
            sat_per_kwu: fee_rate.to_sat_per_kwu(),
        });
    }
    if fee_rate > MAX_FEE_RATE {
        return Err(AnchorTxError::FeeRateTooHigh {
            sat_per_kwu: fee_rate.to_sat_per_kwu(),
        });
    }
    Ok(())
}

/// Signs input 0 of `tx`, the only input, spending `prev` (one of `key`'s outputs of `kind`) by
/// P2TR key path or P2WPKH.
pub(crate) fn sign_input(
    key: &OperatorKey,
    tx: &mut Transaction,
    prev: &PrevOut,
    kind: KeyKind,
) -> Result<(), AnchorTxError> {
    sign_input_at(key, tx, 0, std::slice::from_ref(&prev.txout), kind)
}

/// Signs input `index` of `tx` (`spent[i]` is what input `i` spends; input `index` spends one
/// of `key`'s outputs of `kind`) by P2TR key path (`SIGHASH_DEFAULT`, over every spent output)
/// or P2WPKH.
pub(crate) fn sign_input_at(
    key: &OperatorKey,
    tx: &mut Transaction,
    index: usize,
    spent: &[TxOut],
    kind: KeyKind,
) -> Result<(), AnchorTxError> {
    let witness = match kind {
        KeyKind::P2tr => key_path_witness(key, &key.tweaked_keypair(), tx, index, spent)?,
        KeyKind::P2wpkh => {
            let prev = &spent[index];
            let sighash = SighashCache::new(&*tx)
                .p2wpkh_signature_hash(
                    index,
                    &prev.script_pubkey,
                    prev.value,
                    EcdsaSighashType::All,
                )
                .map_err(|e| AnchorTxError::Sighash(e.to_string()))?;
            let msg = Message::from_digest(sighash.to_byte_array());
            let signature = key
                .secp()
                .sign_ecdsa_low_r(&msg, &key.keypair().secret_key());
            Witness::p2wpkh(
                &ecdsa::Signature {
                    signature,
                    sighash_type: EcdsaSighashType::All,
                },
                &key.public_key().0,
            )
        }
    };
    tx.input[index].witness = witness;
    Ok(())
}

/// The BIP 341 key-path witness of input `index` of `tx` under `keypair` (`SIGHASH_DEFAULT`,
/// over every spent output).
pub(crate) fn key_path_witness(
    key: &OperatorKey,
    keypair: &bitcoin::key::TweakedKeypair,
    tx: &Transaction,
    index: usize,
    spent: &[TxOut],
) -> Result<Witness, AnchorTxError> {
    let sighash = SighashCache::new(tx)
        .taproot_key_spend_signature_hash(index, &Prevouts::All(spent), TapSighashType::Default)
        .map_err(|e| AnchorTxError::Sighash(e.to_string()))?;
    let msg = Message::from_digest(sighash.to_byte_array());
    let signature = key
        .secp()
        .sign_schnorr_no_aux_rand(&msg, &keypair.to_keypair());
    Ok(Witness::p2tr_key_spend(&taproot::Signature {
        signature,
        sighash_type: TapSighashType::Default,
    }))
}

/// Core's relay policy as it applies to an anchor: [`check_relay_policy`], plus the anchor's
/// shape: one input, outputs `[OP_RETURN payload (0 sat), change]`, and `fee` is its fee.
pub fn check_standard(tx: &Transaction, prev: &PrevOut, fee: Amount) -> Result<(), AnchorTxError> {
    let bad = |m: String| Err(AnchorTxError::NonStandard(m));
    if tx.output.len() != 2 || tx.input.len() != 1 {
        return bad("an anchor has one input and two outputs".into());
    }
    let paid = check_relay_policy(tx, std::slice::from_ref(&prev.txout))?;
    let op_return = &tx.output[0];
    if !op_return.script_pubkey.is_op_return() {
        return bad("first output is not an OP_RETURN".into());
    }
    if op_return.script_pubkey.len() != SCRIPT_LEN {
        return bad(format!(
            "OP_RETURN script is {} bytes",
            op_return.script_pubkey.len()
        ));
    }
    if tx.output[1].script_pubkey.is_op_return() {
        return bad("change output is an OP_RETURN".into());
    }
    if paid != fee {
        return bad("inputs minus outputs is not the fee".into());
    }
    Ok(())
}

/// Core's relay policy as it applies to every transaction Veil builds, returning the fee:
/// weight at most 400,000, non-witness size at least 65 bytes, at most one `OP_RETURN` output,
/// worth 0 and at most 83 bytes long, every other output above its dust limit, every input
/// signalling RBF, outputs covered by the spent values (`spent[i]` is what input `i` spends),
/// a fee of at least the minimum relay fee on the virtual size, and Taproot script-path spends
/// without an annex whose stack items (all but the script and control block) are at most 80
/// bytes.
pub fn check_relay_policy(tx: &Transaction, spent: &[TxOut]) -> Result<Amount, AnchorTxError> {
    let bad = |m: String| Err(AnchorTxError::NonStandard(m));
    if tx.weight() > MAX_STANDARD_TX_WEIGHT {
        return bad(format!(
            "weight {} exceeds {}",
            tx.weight(),
            MAX_STANDARD_TX_WEIGHT
        ));
    }
    if tx.base_size() < MIN_STANDARD_TX_NONWITNESS_SIZE {
        return bad(format!("non-witness size {} is below 65", tx.base_size()));
    }
    if tx.input.len() != spent.len() {
        return bad(format!(
            "{} inputs but {} spent outputs given",
            tx.input.len(),
            spent.len()
        ));
    }
    let mut op_returns = 0;
    for (i, out) in tx.output.iter().enumerate() {
        if out.script_pubkey.is_op_return() {
            op_returns += 1;
            if out.value != Amount::ZERO {
                return bad(format!("OP_RETURN output {i} is not zero-value"));
            }
            if out.script_pubkey.len() > MAX_OP_RETURN_DATA + 3 {
                return bad(format!(
                    "OP_RETURN output {i} is {} bytes",
                    out.script_pubkey.len()
                ));
            }
        } else if out.value < out.script_pubkey.minimal_non_dust() {
            return bad(format!("output {i} of {} is dust", out.value));
        }
    }
    if op_returns > 1 {
        return bad(format!("{op_returns} OP_RETURN outputs"));
    }
    for (i, (input, prev)) in tx.input.iter().zip(spent).enumerate() {
        if !input.sequence.is_rbf() {
            return bad(format!("input {i} does not signal RBF"));
        }
        if prev.script_pubkey.is_p2tr() {
            check_taproot_witness(&input.witness)
                .map_err(|m| AnchorTxError::NonStandard(format!("input {i}: {m}")))?;
        }
    }
    let (Some(value_in), Some(value_out)) = (total_value(spent), total_value(&tx.output)) else {
        return bad("values exceed 21 million BTC".into());
    };
    let Some(fee) = value_in.checked_sub(value_out) else {
        return bad(format!("outputs {value_out} exceed inputs {value_in}"));
    };
    if fee < fee_for_vsize(MIN_FEE_RATE, tx.vsize() as u64) {
        return bad(format!("fee {fee} is below the minimum relay fee"));
    }
    Ok(fee)
}

/// The sum of the outputs' values, if it is at most 21 million BTC.
fn total_value(outputs: &[TxOut]) -> Option<Amount> {
    outputs
        .iter()
        .try_fold(Amount::ZERO, |sum, o| sum.checked_add(o.value))
        .filter(|sum| *sum <= Amount::MAX_MONEY)
}

/// Core's policy on a P2TR spend's witness: no annex; on the script path, every stack item
/// below the script and control block at most 80 bytes.
fn check_taproot_witness(witness: &Witness) -> Result<(), String> {
    let n = witness.len();
    if n == 0 {
        return Err("empty witness".into());
    }
    if n >= 2 && witness[n - 1].first() == Some(&TAPROOT_ANNEX_PREFIX) {
        return Err("witness has an annex".into());
    }
    if n >= 2 {
        for item in witness.iter().take(n - 2) {
            if item.len() > MAX_STANDARD_TAPSCRIPT_STACK_ITEM_SIZE {
                return Err(format!("tapscript stack item of {} bytes", item.len()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::Fr;
    use bitcoin::key::XOnlyPublicKey;
    use bitcoin::secp256k1::schnorr;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn key(seed: u64) -> OperatorKey {
        OperatorKey::generate(&mut ChaCha20Rng::seed_from_u64(seed))
    }

    fn payload(n: u64) -> AnchorPayload {
        AnchorPayload::new(n, Fr::from(1000 + n), &[n as u8; 128], &Fr::from(n)).unwrap()
    }

    fn genesis(key: &OperatorKey, kind: KeyKind, sats: u64) -> PrevOut {
        PrevOut {
            outpoint: OutPoint::new(Txid::from_byte_array([7u8; 32]), 0),
            txout: TxOut {
                value: Amount::from_sat(sats),
                script_pubkey: key.script_pubkey(kind),
            },
        }
    }

    fn rate(sat_vb: u64) -> FeeRate {
        FeeRate::from_sat_per_vb(sat_vb).unwrap()
    }

    /// Bitcoin Core's script interpreter (libbitcoinconsensus, all soft forks up to segwit).
    fn consensus_verify(anchor: &AnchorTx) -> Result<(), String> {
        let prev = anchor.prev.clone();
        anchor
            .tx
            .verify(|op| (*op == prev.outpoint).then(|| prev.txout.clone()))
            .map_err(|e| e.to_string())
    }

    /// BIP 341 key-path check (libbitcoinconsensus 0.105 = Core 25 predates taproot support, so
    /// P2TR is checked here and by Core itself in the regtest test).
    fn taproot_verify(anchor: &AnchorTx) -> Result<(), String> {
        let spk = &anchor.prev.txout.script_pubkey;
        assert!(spk.is_p2tr());
        let output_key = XOnlyPublicKey::from_slice(&spk.as_bytes()[2..]).unwrap();
        let w = &anchor.tx.input[0].witness;
        if w.len() != 1 {
            return Err("key path witness has one element".into());
        }
        let sig = schnorr::Signature::from_slice(&w[0]).map_err(|e| e.to_string())?;
        let sighash = SighashCache::new(&anchor.tx)
            .taproot_key_spend_signature_hash(
                0,
                &Prevouts::All(&[&anchor.prev.txout]),
                TapSighashType::Default,
            )
            .unwrap();
        bitcoin::secp256k1::Secp256k1::verification_only()
            .verify_schnorr(
                &sig,
                &Message::from_digest(sighash.to_byte_array()),
                &output_key,
            )
            .map_err(|e| e.to_string())
    }

    #[test]
    fn p2wpkh_anchor_passes_core_script_interpreter() {
        let k = key(1);
        let prev = genesis(&k, KeyKind::P2wpkh, 50_000);
        let anchor = build_anchor_tx(&k, &prev, &payload(1), KeyKind::P2wpkh, rate(2)).unwrap();
        consensus_verify(&anchor).unwrap();
        assert_eq!(AnchorPayload::from_tx(&anchor.tx).unwrap(), payload(1));
        assert!(anchor.tx.input[0].sequence.is_rbf());
        assert_eq!(anchor.tx.output[1].value + anchor.fee, prev.txout.value);

        // A tampered signature fails.
        let mut bad = anchor.clone();
        let mut items: Vec<Vec<u8>> = bad.tx.input[0].witness.iter().map(<[u8]>::to_vec).collect();
        items[0][10] ^= 1;
        bad.tx.input[0].witness = Witness::from_slice(&items);
        assert!(consensus_verify(&bad).is_err());
        // So does a signature over another payload (the OP_RETURN is signed).
        let mut bad = anchor.clone();
        bad.tx.output[0].script_pubkey = payload(2).script_pubkey();
        assert!(consensus_verify(&bad).is_err());
        // And another key's signature.
        let other = key(2);
        let forged = build_anchor_tx(
            &other,
            &genesis(&other, KeyKind::P2wpkh, 50_000),
            &payload(1),
            KeyKind::P2wpkh,
            rate(2),
        )
        .unwrap();
        let mut bad = anchor.clone();
        bad.tx.input[0].witness = forged.tx.input[0].witness.clone();
        assert!(consensus_verify(&bad).is_err());
    }

    #[test]
    fn p2tr_anchor_key_path_signature_verifies() {
        let k = key(3);
        let prev = genesis(&k, KeyKind::P2tr, 50_000);
        let anchor = build_anchor_tx(&k, &prev, &payload(1), KeyKind::P2tr, rate(1)).unwrap();
        taproot_verify(&anchor).unwrap();
        let mut bad = anchor.clone();
        let mut sig = bad.tx.input[0].witness[0].to_vec();
        sig[5] ^= 1;
        bad.tx.input[0].witness = Witness::from_slice(&[sig]);
        assert!(taproot_verify(&bad).is_err());
        let mut bad = anchor.clone();
        bad.tx.output[1].value -= Amount::from_sat(1);
        assert!(taproot_verify(&bad).is_err());
    }

    #[test]
    fn chain_of_anchors_spends_each_change() {
        let k = key(4);
        let mut prev = genesis(&k, KeyKind::P2wpkh, 100_000);
        for n in 1..=3 {
            let a = build_anchor_tx(&k, &prev, &payload(n), KeyKind::P2wpkh, rate(5)).unwrap();
            consensus_verify(&a).unwrap();
            assert_eq!(a.tx.input[0].previous_output, prev.outpoint);
            prev = a.change();
            assert_eq!(prev.outpoint.txid, a.txid());
        }
        // Switching kinds: a P2WPKH change can fund a P2TR chain.
        let a = build_anchor_tx(&k, &prev, &payload(4), KeyKind::P2tr, rate(5)).unwrap();
        consensus_verify(&a).unwrap();
        assert_eq!(
            a.change().txout.script_pubkey,
            k.script_pubkey(KeyKind::P2tr)
        );
    }

    #[test]
    fn fee_and_vsize_at_1_and_10_sat_per_vb() {
        let k = key(5);
        println!(
            "| input | change | sat/vB | vsize | weight | fee (sat) | fee / transfer at B = 16 |"
        );
        for (input, change) in [
            (KeyKind::P2tr, KeyKind::P2tr),
            (KeyKind::P2wpkh, KeyKind::P2wpkh),
        ] {
            for r in [1u64, 10] {
                let prev = genesis(&k, input, 1_000_000);
                let a = build_anchor_tx(&k, &prev, &payload(9), change, rate(r)).unwrap();
                // Fee is the rate on the (pre-signing, maximal) size, rounded up; the signed
                // transaction is at most that size, so the actual rate is at least the target.
                assert!(a.fee >= fee_for_vsize(rate(r), a.vsize()));
                assert!(a.fee.to_sat() <= r * (a.vsize() + 1));
                assert!(a.fee_rate() >= rate(r));
                println!(
                    "| {input} | {change} | {r} | {} | {} | {} | {:.2} |",
                    a.vsize(),
                    a.weight().to_wu(),
                    a.fee.to_sat(),
                    a.fee.to_sat() as f64 / 16.0
                );
            }
        }
        // P2TR key path is fixed-size: 183 non-witness bytes + 68 witness bytes = 200 vB.
        let a = build_anchor_tx(
            &k,
            &genesis(&k, KeyKind::P2tr, 1_000_000),
            &payload(9),
            KeyKind::P2tr,
            rate(10),
        )
        .unwrap();
        assert_eq!(a.tx.base_size(), 183);
        assert_eq!(a.vsize(), 200);
        assert_eq!(a.fee, Amount::from_sat(2000));
    }

    #[test]
    fn bump_fee_rebuilds_the_same_anchor() {
        let k = key(6);
        for kind in [KeyKind::P2tr, KeyKind::P2wpkh] {
            let prev = genesis(&k, kind, 100_000);
            let a = build_anchor_tx(&k, &prev, &payload(3), kind, rate(2)).unwrap();
            let b = a.bump_fee(&k, rate(20)).unwrap();
            assert_eq!(b.tx.input[0].previous_output, a.tx.input[0].previous_output);
            assert_eq!(b.tx.output[0], a.tx.output[0]);
            assert_eq!(b.tx.output[1].script_pubkey, a.tx.output[1].script_pubkey);
            assert_ne!(b.txid(), a.txid());
            assert!(b.fee >= fee_for_vsize(rate(20), b.vsize()));
            // A "bump" to a lower rate still satisfies BIP 125 rule 4.
            let c = b.bump_fee(&k, rate(1)).unwrap();
            assert!(c.fee >= b.fee + fee_for_vsize(INCREMENTAL_RELAY_FEE, c.vsize()));
            assert!(c.fee_rate() > b.fee_rate());
            if kind == KeyKind::P2wpkh {
                consensus_verify(&b).unwrap();
                consensus_verify(&c).unwrap();
            } else {
                taproot_verify(&b).unwrap();
                taproot_verify(&c).unwrap();
            }
        }
    }

    #[test]
    fn rejects_dust_change_foreign_inputs_and_bad_rates() {
        let k = key(7);
        // 200 vB at 1 sat/vB leaves 129 sat < 330 sat P2TR dust limit.
        let prev = genesis(&k, KeyKind::P2tr, 329);
        match build_anchor_tx(&k, &prev, &payload(1), KeyKind::P2tr, rate(1)) {
            Err(AnchorTxError::DustChange {
                fee,
                change,
                dust_limit,
                ..
            }) => {
                assert_eq!(fee, Amount::from_sat(200));
                assert_eq!(change, Amount::from_sat(129));
                assert_eq!(dust_limit, Amount::from_sat(330));
            }
            other => panic!("expected DustChange, got {other:?}"),
        }
        let prev = genesis(&k, KeyKind::P2tr, 100);
        assert!(matches!(
            build_anchor_tx(&k, &prev, &payload(1), KeyKind::P2tr, rate(1)),
            Err(AnchorTxError::DustChange {
                change: Amount::ZERO,
                ..
            })
        ));
        // Exactly dust + fee is enough.
        let prev = genesis(&k, KeyKind::P2tr, 530);
        let a = build_anchor_tx(&k, &prev, &payload(1), KeyKind::P2tr, rate(1)).unwrap();
        assert_eq!(a.tx.output[1].value, Amount::from_sat(330));

        let foreign = genesis(&key(8), KeyKind::P2tr, 100_000);
        assert!(matches!(
            build_anchor_tx(&k, &foreign, &payload(1), KeyKind::P2tr, rate(1)),
            Err(AnchorTxError::ForeignPrevOut { .. })
        ));
        let prev = genesis(&k, KeyKind::P2tr, 100_000);
        assert!(matches!(
            build_anchor_tx(
                &k,
                &prev,
                &payload(1),
                KeyKind::P2tr,
                FeeRate::from_sat_per_kwu(249)
            ),
            Err(AnchorTxError::FeeRateTooLow { sat_per_kwu: 249 })
        ));
        assert!(matches!(
            build_anchor_tx(&k, &prev, &payload(1), KeyKind::P2tr, rate(10_001)),
            Err(AnchorTxError::FeeRateTooHigh { .. })
        ));
    }

    #[test]
    fn check_standard_catches_policy_violations() {
        let k = key(9);
        let prev = genesis(&k, KeyKind::P2tr, 100_000);
        let a = build_anchor_tx(&k, &prev, &payload(1), KeyKind::P2tr, rate(1)).unwrap();
        check_standard(&a.tx, &prev, a.fee).unwrap();
        let mut t = a.tx.clone();
        t.input[0].sequence = Sequence::MAX;
        assert!(check_standard(&t, &prev, a.fee).is_err());
        let mut t = a.tx.clone();
        t.output[1].value = Amount::from_sat(100);
        assert!(check_standard(&t, &prev, prev.txout.value - Amount::from_sat(100)).is_err());
        let mut t = a.tx.clone();
        t.output[0].value = Amount::from_sat(1);
        assert!(check_standard(&t, &prev, a.fee).is_err());
        assert!(check_standard(&a.tx, &prev, a.fee + Amount::from_sat(1)).is_err());
    }
}
