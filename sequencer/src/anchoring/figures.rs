//! The bridge's figures as this node sees them (`GET /v1/bridge`, `/metrics`): the reserve (the
//! newest anchor's change), the shielded supply of the batches anchored (deposits -
//! withdrawals - L2 fees), the surplus between them (the operator's float), what the anchors
//! swept and paid, and the peg-ins by status. `veil verify-chain --from-bitcoin` computes the
//! same from Bitcoin alone (`veil_bitcoin::bridge::audit`).

use std::collections::HashMap;

use serde_json::{json, Value};
use veil_bitcoin::tx::CHANGE_VOUT;

use super::{version_tx, Anchorer};
use crate::node::NodeError;
use crate::store::bridge::DepositStatus;
use crate::store::AnchorRecord;

/// Per-anchor sums of its batches' public amounts, cached by `(first batch, count)`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct RangeSums {
    deposits: u64,
    withdrawals: u64,
    fees: u64,
}

/// The figures.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BridgeFigures {
    /// The newest anchor's change (what the next anchor spends); `None` before any anchor.
    pub reserves_sat: Option<u64>,
    /// `public_in` of the anchored batches.
    pub deposits_sat: u64,
    /// `public_out` of the anchored batches.
    pub withdrawals_sat: u64,
    /// Fees of the anchored batches' transfers.
    pub l2_fees_sat: u64,
    /// Peg-in outputs the anchors swept.
    pub swept_sat: u64,
    /// Withdrawal outputs the anchors paid.
    pub paid_sat: u64,
    /// Peg-ins by status.
    pub peg_ins: HashMap<&'static str, u64>,
}

impl BridgeFigures {
    /// deposits - withdrawals - L2 fees.
    pub fn supply_sat(&self) -> i128 {
        i128::from(self.deposits_sat)
            - i128::from(self.withdrawals_sat)
            - i128::from(self.l2_fees_sat)
    }

    /// reserves - supply.
    pub fn surplus_sat(&self) -> Option<i128> {
        self.reserves_sat.map(|r| i128::from(r) - self.supply_sat())
    }

    /// As JSON.
    pub fn json(&self) -> Value {
        json!({
            "reserves_sat": self.reserves_sat,
            "supply_sat": i64::try_from(self.supply_sat()).ok(),
            "surplus_sat": self.surplus_sat().and_then(|s| i64::try_from(s).ok()),
            "deposits_sat": self.deposits_sat,
            "withdrawals_sat": self.withdrawals_sat,
            "l2_fees_sat": self.l2_fees_sat,
            "swept_sat": self.swept_sat,
            "paid_sat": self.paid_sat,
            "peg_ins": self.peg_ins,
        })
    }
}

impl Anchorer {
    /// The figures over the anchors signed so far.
    pub fn bridge_figures(&self) -> Result<BridgeFigures, NodeError> {
        let records = self.node.anchors_from(0)?;
        let mut f = BridgeFigures::default();
        for rec in &records {
            let sums = self.range_sums(rec)?;
            f.deposits_sat += sums.deposits;
            f.withdrawals_sat += sums.withdrawals;
            f.l2_fees_sat += sums.fees;
            f.swept_sat += rec.swept_sat();
            if let Ok(tx) = version_tx(rec.batch, rec.current()) {
                f.paid_sat += tx
                    .output
                    .iter()
                    .skip(CHANGE_VOUT as usize + 1)
                    .map(|o| o.value.to_sat())
                    .sum::<u64>();
                if std::ptr::eq(rec, records.last().expect("non-empty")) {
                    f.reserves_sat = tx
                        .output
                        .get(CHANGE_VOUT as usize)
                        .map(|o| o.value.to_sat());
                }
            }
        }
        for d in self.node.store().deposits()? {
            *f.peg_ins.entry(d.status.as_str()).or_default() += 1;
        }
        for s in [
            DepositStatus::Seen,
            DepositStatus::Crediting,
            DepositStatus::Credited,
            DepositStatus::ReorgedAfterCredit,
        ] {
            f.peg_ins.entry(s.as_str()).or_default();
        }
        Ok(f)
    }

    fn range_sums(&self, rec: &AnchorRecord) -> Result<RangeSums, NodeError> {
        let key = (rec.batch, rec.count);
        if let Some(s) = self
            .sums
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(*s);
        }
        let (data, _) = self.node.anchor_data(rec.batch, rec.last_batch())?;
        let mut s = RangeSums::default();
        for t in data.batches.iter().flat_map(|b| &b.transfers) {
            s.deposits += t.public.public_in;
            s.withdrawals += t.public.public_out;
            s.fees += t.public.fee;
        }
        self.sums
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, s);
        Ok(s)
    }
}
