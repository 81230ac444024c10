//! What an anchor package moves for the bridge (`docs/bridge.md`): the peg-in outputs its commit
//! sweeps into the reserve ([`Sweep`], signed with the deposit address's tweaked key) and the
//! withdrawals its anchor pays (one output per withdrawal, after the change), and the relay
//! rules a withdrawal's script and amount must meet to be payable at all.
//!
//! ```text
//! commit inputs:  [previous change, sweep_1, ..., sweep_m]
//! anchor outputs: [OP_RETURN payload v2, change, payout_1, ..., payout_w]
//! ```
//!
//! Payouts are in the order of the withdrawals in the range's batches (batch order, then slot
//! order), so a verifier pairs them with the published transfers one to one.

use bitcoin::{Amount, FeeRate, OutPoint, Script, TxOut};
use veil_circuits::keys::PaymentAddress;

use crate::tx::PrevOut;

/// A peg-in output the commit spends into the reserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sweep {
    /// The deposit output.
    pub prev: PrevOut,
    /// The Veil address its key commits to (which tweak signs it).
    pub owner: PaymentAddress,
}

/// The bridge's part of one package: sweeps and payouts (both empty for an anchor of batches
/// without deposits or withdrawals).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeFlows {
    /// Peg-ins swept by the commit, after its first input.
    pub sweeps: Vec<Sweep>,
    /// Withdrawals paid by the anchor, after its change.
    pub payouts: Vec<TxOut>,
}

impl BridgeFlows {
    /// Sum of the swept outputs.
    pub fn swept(&self) -> Amount {
        self.sweeps.iter().map(|s| s.prev.txout.value).sum()
    }

    /// Sum of the payouts.
    pub fn paid(&self) -> Amount {
        self.payouts.iter().map(|o| o.value).sum()
    }

    /// The outpoints swept.
    pub fn swept_outpoints(&self) -> Vec<OutPoint> {
        self.sweeps.iter().map(|s| s.prev.outpoint).collect()
    }
}

/// A withdrawal Bitcoin would not relay or that the bridge does not pay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WithdrawalError {
    /// Not one of the standard output types a withdrawal may pay.
    #[error(
        "withdrawal script {script} is not a standard output (P2PKH, P2SH, P2WPKH, P2WSH or P2TR)"
    )]
    NonStandardScript {
        /// Hex of the script.
        script: String,
    },
    /// Below the script's dust limit: Bitcoin Core would not relay the anchor paying it.
    #[error("withdrawal of {value} sat is below the dust limit of {limit} sat for its script")]
    Dust {
        /// The amount.
        value: u64,
        /// The script's dust limit.
        limit: u64,
    },
    /// The transfer's fee does not pay the output's Bitcoin fee.
    #[error(
        "fee {fee} sat does not cover the withdrawal output's Bitcoin fee: {vbytes} vB at \
         {rate_sat_vb} sat/vB is {needed} sat"
    )]
    FeeTooLow {
        /// The transfer's fee.
        fee: u64,
        /// The output's virtual size.
        vbytes: u64,
        /// The bridge's withdrawal fee rate.
        rate_sat_vb: u64,
        /// What it must be at least.
        needed: u64,
    },
}

impl WithdrawalError {
    /// The API error code.
    pub fn code(&self) -> &'static str {
        match self {
            WithdrawalError::NonStandardScript { .. } => "withdrawal_script",
            WithdrawalError::Dust { .. } => "withdrawal_dust",
            WithdrawalError::FeeTooLow { .. } => "withdrawal_fee",
        }
    }
}

/// Virtual bytes a payout of `script` adds to the anchor: 8 (value) + the script's length
/// prefix + the script.
pub fn payout_vbytes(script: &Script) -> u64 {
    let len = script.len() as u64;
    let prefix = match len {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        _ => 5,
    };
    8 + prefix + len
}

/// The Bitcoin fee of a payout of `script` at `rate`, rounded up.
pub fn payout_fee(script: &Script, rate: FeeRate) -> u64 {
    (payout_vbytes(script) * rate.to_sat_per_kwu() * 4).div_ceil(1000)
}

/// Checks that a withdrawal of `value` to `script` with transfer fee `fee` is payable: a
/// standard script, `value` at or above its dust limit, and `fee` at least the output's Bitcoin
/// fee at `rate` (who pays it: `docs/bridge.md`).
pub fn check_withdrawal(
    script: &Script,
    value: u64,
    fee: u64,
    rate: FeeRate,
) -> Result<(), WithdrawalError> {
    let standard = script.is_p2pkh()
        || script.is_p2sh()
        || script.is_p2wpkh()
        || script.is_p2wsh()
        || script.is_p2tr();
    if !standard {
        return Err(WithdrawalError::NonStandardScript {
            script: hex::encode(script.as_bytes()),
        });
    }
    let limit = script.minimal_non_dust().to_sat();
    if value < limit {
        return Err(WithdrawalError::Dust { value, limit });
    }
    let needed = payout_fee(script, rate);
    if fee < needed {
        return Err(WithdrawalError::FeeTooLow {
            fee,
            vbytes: payout_vbytes(script),
            rate_sat_vb: rate.to_sat_per_vb_ceil(),
            needed,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bitcoin::consensus::encode::serialize;
    use bitcoin::ScriptBuf;

    use super::*;

    fn p2wpkh() -> ScriptBuf {
        ScriptBuf::from_hex("0014751e76e8199196d454941c45d1b3a323f1433bd6").unwrap()
    }

    #[test]
    fn payout_size_is_the_serialized_output() {
        for script in [
            p2wpkh(),
            ScriptBuf::from_hex(&format!("5120{}", "ab".repeat(32))).unwrap(),
        ] {
            let out = TxOut {
                value: Amount::from_sat(1),
                script_pubkey: script.clone(),
            };
            assert_eq!(payout_vbytes(&script), serialize(&out).len() as u64);
        }
        // 31 vB at 10 sat/vB.
        assert_eq!(payout_fee(&p2wpkh(), FeeRate::from_sat_per_vb_u32(10)), 310);
    }

    #[test]
    fn withdrawals_must_be_relayable_and_pay_their_output() {
        let rate = FeeRate::from_sat_per_vb_u32(10);
        assert_eq!(check_withdrawal(&p2wpkh(), 294, 310, rate), Ok(()));
        assert_eq!(
            check_withdrawal(&p2wpkh(), 293, 310, rate),
            Err(WithdrawalError::Dust {
                value: 293,
                limit: 294
            })
        );
        assert!(matches!(
            check_withdrawal(&p2wpkh(), 1000, 309, rate),
            Err(WithdrawalError::FeeTooLow { needed: 310, .. })
        ));
        let bare = ScriptBuf::from_hex("51").unwrap(); // OP_TRUE
        assert!(matches!(
            check_withdrawal(&bare, 100_000, 10_000, rate),
            Err(WithdrawalError::NonStandardScript { .. })
        ));
        let op_return = ScriptBuf::new_op_return([1u8; 4]);
        assert!(matches!(
            check_withdrawal(&op_return, 100_000, 10_000, rate),
            Err(WithdrawalError::NonStandardScript { .. })
        ));
    }
}
