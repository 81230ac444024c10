//! The bridge's reserve audit (`veil verify-chain --from-bitcoin`, `docs/bridge.md`): from the
//! chain of anchors as Bitcoin holds it and the replayed public data, checks that
//!
//! 1. every deposit (`public_in > 0`) names, by `deposit_ref`, an output that the commit of the
//!    anchor covering its batch sweeps into the reserve, of exactly `public_in`, and that no
//!    output is credited twice or swept without being credited;
//! 2. every withdrawal (`public_out > 0`) is paid by the anchor covering its batch: the anchor's
//!    outputs after the change are the range's withdrawals in order, each of exactly
//!    `public_out` to a script whose `dest` hash is the withdrawal's;
//! 3. the reserve (the last anchor's change, which every package carries forward) is at least
//!    the shielded supply (deposits - withdrawals - L2 fees).
//!
//! It reports the figures: reserves, supply, and the operator's float (their difference: the
//! genesis output plus the L2 fees collected, minus the Bitcoin fees paid).

use std::collections::HashMap;

use ark_bn254::Fr;
use bitcoin::{OutPoint, TxOut};
use veil_circuits::field;

use crate::chain::{ChainWalk, Problem, Replay};
use crate::refs::{deposit_ref, withdrawal_dest};

/// What [`audit_reserves`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveAudit {
    /// Sum of `public_in` credited.
    pub deposits_sat: u64,
    /// Sum of `public_out` withdrawn.
    pub withdrawals_sat: u64,
    /// Sum of the transfers' fees (they leave the shielded supply for the operator).
    pub l2_fees_sat: u64,
    /// The value of the chain's change output (the genesis output before any anchor).
    pub reserves_sat: u64,
    /// Number of deposits credited from swept peg-ins.
    pub peg_ins: u64,
    /// Number of withdrawals paid.
    pub peg_outs: u64,
    /// Deposits whose `deposit_ref` names no swept output, allowed by `allow_attested` (the
    /// operator's word, as on a node without the bridge).
    pub attested: u64,
    /// Every violation, attributed to a batch.
    pub problems: Vec<Problem>,
}

impl ReserveAudit {
    /// The shielded supply: deposits - withdrawals - L2 fees (never negative on a valid chain:
    /// every transfer conserves value).
    pub fn supply_sat(&self) -> i128 {
        i128::from(self.deposits_sat)
            - i128::from(self.withdrawals_sat)
            - i128::from(self.l2_fees_sat)
    }

    /// Reserves - supply: the operator's float (negative: a shortfall).
    pub fn surplus_sat(&self) -> i128 {
        i128::from(self.reserves_sat) - self.supply_sat()
    }
}

/// Audits the bridge over the anchors `replay` replayed (`walk.packages[i]` is
/// `replay.anchors[i]`); `allow_attested` lets deposits without a swept output pass (counted in
/// [`ReserveAudit::attested`] and in the supply).
pub fn audit_reserves(walk: &ChainWalk, replay: &Replay, allow_attested: bool) -> ReserveAudit {
    let mut audit = ReserveAudit {
        deposits_sat: 0,
        withdrawals_sat: 0,
        l2_fees_sat: 0,
        reserves_sat: walk.genesis_output.value.to_sat(),
        peg_ins: 0,
        peg_outs: 0,
        attested: 0,
        problems: Vec::new(),
    };
    // deposit_ref -> (outpoint, batch first credited in).
    let mut credited: HashMap<Fr, (OutPoint, u64)> = HashMap::new();
    for (anchor, package) in replay.anchors.iter().zip(&walk.packages) {
        let txid = anchor.txid;
        let first = anchor.data.first_batch;
        let mut problem = |batch: u64, message: String| {
            audit.problems.push(Problem { batch, message });
        };
        // The outputs the commit swept, by the deposit_ref that names each.
        let mut swept: HashMap<Fr, (OutPoint, Option<&TxOut>, bool)> = HashMap::new();
        for (i, op) in anchor.contents.swept.iter().enumerate() {
            let out = package.swept.get(i).and_then(Option::as_ref);
            swept.insert(deposit_ref(op), (*op, out, false));
        }
        let mut payouts = anchor.contents.payouts.iter().enumerate();
        for batch in &anchor.batches {
            let n = batch.number;
            for t in &batch.transfers {
                audit.deposits_sat += t.public_in;
                audit.withdrawals_sat += t.public_out;
                audit.l2_fees_sat += t.fee;
                'deposit: {
                    if t.public_in == 0 {
                        break 'deposit;
                    }
                    let r = t.deposit_ref;
                    let name = field::to_hex(&r);
                    if let Some((op, earlier)) = credited.get(&r) {
                        problem(
                            n,
                            format!(
                                "deposit_ref {name} (output {op}) is credited again; it was \
                                 credited in batch {earlier}"
                            ),
                        );
                        break 'deposit;
                    }
                    match swept.get_mut(&r) {
                        None if allow_attested => audit.attested += 1,
                        None => problem(
                            n,
                            format!(
                                "deposit of {} sat (deposit_ref {name}) names no output that \
                                 anchor {txid}'s commit sweeps into the reserve",
                                t.public_in
                            ),
                        ),
                        Some((op, out, used)) => {
                            *used = true;
                            credited.insert(r, (*op, n));
                            match out {
                                Some(out) if out.value.to_sat() == t.public_in => {
                                    audit.peg_ins += 1
                                }
                                Some(out) => problem(
                                    n,
                                    format!(
                                        "deposit credits {} sat for output {op}, which holds \
                                         {} sat",
                                        t.public_in,
                                        out.value.to_sat()
                                    ),
                                ),
                                None => {
                                    problem(n, format!("swept output {op} is not found on Bitcoin"))
                                }
                            }
                        }
                    }
                }
                if t.public_out > 0 {
                    match payouts.next() {
                        None => problem(
                            n,
                            format!(
                                "withdrawal of {} sat (dest {}) is not paid by anchor {txid}",
                                t.public_out,
                                field::to_hex(&t.dest)
                            ),
                        ),
                        Some((i, out)) => {
                            let vout = i + 2;
                            if withdrawal_dest(&out.script_pubkey) != t.dest {
                                problem(
                                    n,
                                    format!(
                                        "withdrawal of {} sat (dest {}) is paid by output {vout} \
                                         of anchor {txid} to a script of another hash",
                                        t.public_out,
                                        field::to_hex(&t.dest)
                                    ),
                                );
                            } else if out.value.to_sat() != t.public_out {
                                problem(
                                    n,
                                    format!(
                                        "withdrawal of {} sat is paid {} sat by output {vout} of \
                                         anchor {txid}",
                                        t.public_out,
                                        out.value.to_sat()
                                    ),
                                );
                            } else {
                                audit.peg_outs += 1;
                            }
                        }
                    }
                }
            }
        }
        for (i, out) in payouts {
            problem(
                first,
                format!(
                    "anchor {txid} pays {} sat by output {} that no withdrawal of its batches \
                     asks for",
                    out.value.to_sat(),
                    i + 2
                ),
            );
        }
        let mut unused: Vec<_> = swept.values().filter(|(_, _, used)| !used).collect();
        unused.sort_by_key(|(op, _, _)| *op);
        for (op, _, _) in unused {
            problem(
                first,
                format!(
                    "anchor {txid}'s commit sweeps output {op}, which no deposit of its batches \
                     credits"
                ),
            );
        }
        audit.reserves_sat = anchor.contents.change.txout.value.to_sat();
    }
    if audit.surplus_sat() < 0 {
        let last = replay.rebuilder.next_batch().saturating_sub(1);
        audit.problems.push(Problem {
            batch: last,
            message: format!(
                "reserves of {} sat are below the shielded supply of {} sat: a shortfall of {} sat",
                audit.reserves_sat,
                audit.supply_sat(),
                -audit.surplus_sat()
            ),
        });
    }
    audit
}
