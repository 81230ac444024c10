//! The demo's summary: what the story did (transfers, batches, proving time, anchors, Bitcoin
//! fees, satoshis in and out through Bitcoin, balances, the audit), as a table for a terminal
//! or as one JSON object (`veil demo --json`).

use std::path::PathBuf;

use serde_json::{json, Value};
use veil_circuits::transfer::TransferPublic;

/// Transfers by kind, as the batches publish them.
#[derive(Debug, Default, Clone, Copy)]
pub struct Transfers {
    /// `public_in > 0`.
    pub deposits: u64,
    /// Neither in nor out.
    pub payments: u64,
    /// `public_out > 0`.
    pub withdrawals: u64,
}

impl Transfers {
    /// Counts one published transfer.
    pub fn count(&mut self, t: &TransferPublic) {
        if t.public_in > 0 {
            self.deposits += 1;
        } else if t.public_out > 0 {
            self.withdrawals += 1;
        } else {
            self.payments += 1;
        }
    }

    /// All of them.
    pub fn total(&self) -> u64 {
        self.deposits + self.payments + self.withdrawals
    }
}

/// One anchor: a range of batches on Bitcoin.
#[derive(Debug, Clone)]
pub struct AnchorLine {
    /// The anchor transaction.
    pub txid: String,
    /// First batch covered.
    pub first_batch: u64,
    /// Last batch covered.
    pub last_batch: u64,
    /// Fee of the whole package (commit, reveals, anchor), sat.
    pub fee_sat: u64,
    /// Its size, vB.
    pub vsize: u64,
    /// The block holding it.
    pub block_height: Option<u64>,
}

/// Satoshis through Bitcoin (all zero without Bitcoin).
#[derive(Debug, Default, Clone)]
pub struct BitcoinFlows {
    /// The peg-in's value.
    pub sats_in: u64,
    /// What the anchor paid the withdrawal's address.
    pub sats_out: u64,
    /// The peg-in outpoint.
    pub peg_in: Option<String>,
    /// The Bitcoin user's fee for the peg-in transaction.
    pub peg_in_fee: u64,
    /// The anchor that paid the withdrawal.
    pub withdrawal_txid: Option<String>,
    /// The operator's genesis outpoint.
    pub genesis: Option<String>,
}

/// What `verify-chain --from-bitcoin` found (all good, or the demo fails).
#[derive(Debug, Clone)]
pub struct FromBitcoin {
    /// Batches rebuilt from Bitcoin.
    pub batches: u64,
    /// Anchors followed.
    pub anchors: usize,
    /// The reserve (the last anchor's change), sat.
    pub reserves_sat: u64,
    /// The shielded supply, sat.
    pub supply_sat: i64,
    /// Peg-ins credited.
    pub peg_ins: u64,
    /// Peg-outs paid.
    pub peg_outs: u64,
}

/// What `verify-chain` found (all good, or the demo fails).
#[derive(Debug, Clone)]
pub struct Verified {
    /// Batches verified.
    pub batches: usize,
    /// Anchors checked against Bitcoin.
    pub anchors: u64,
    /// `--from-bitcoin`, with Bitcoin.
    pub from_bitcoin: Option<FromBitcoin>,
}

/// The demo's outcome.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Ran with Bitcoin.
    pub bitcoin: bool,
    /// `B`.
    pub batch_size: usize,
    /// `D`.
    pub depth: usize,
    /// Transfers in the batches.
    pub transfers: Transfers,
    /// Sealed batches.
    pub batches: u64,
    /// Proven batches.
    pub proven: u64,
    /// The node's proving time.
    pub proving_seconds_total: f64,
    /// Per batch, in order.
    pub proving_seconds_per_batch: Vec<f64>,
    /// The anchors, in order.
    pub anchors: Vec<AnchorLine>,
    /// Satoshis through Bitcoin.
    pub flows: BitcoinFlows,
    /// The withdrawal's fee (it covers its payout output's Bitcoin fee).
    pub withdrawal_fee: u64,
    /// The payment's fee.
    pub payment_fee: u64,
    /// Alice's balance at the end.
    pub alice: u64,
    /// Bob's balance at the end.
    pub bob: u64,
    /// The audit.
    pub verify: Verified,
    /// Wall-clock seconds of the story.
    pub seconds: f64,
    /// The throwaway directory, when kept.
    pub kept: Option<PathBuf>,
}

impl Summary {
    fn anchor_fees(&self) -> u64 {
        self.anchors.iter().map(|a| a.fee_sat).sum()
    }

    fn proving_mean(&self) -> f64 {
        if self.proven == 0 {
            0.0
        } else {
            self.proving_seconds_total / self.proven as f64
        }
    }

    /// `veil demo --json`.
    pub fn to_json(&self) -> Value {
        let f = &self.flows;
        json!({
            "ok": true,
            "bitcoin": self.bitcoin,
            "shape": {"batch_size": self.batch_size, "depth": self.depth},
            "transfers": {
                "total": self.transfers.total(),
                "deposits": self.transfers.deposits,
                "payments": self.transfers.payments,
                "withdrawals": self.transfers.withdrawals,
            },
            "batches": self.batches,
            "proven": self.proven,
            "proving_seconds": {
                "total": self.proving_seconds_total,
                "per_batch": self.proving_seconds_per_batch,
                "mean": self.proving_mean(),
            },
            "anchors": {
                "count": self.anchors.len(),
                "txids": self.anchors.iter().map(|a| a.txid.clone()).collect::<Vec<_>>(),
                "list": self.anchors.iter().map(|a| json!({
                    "txid": a.txid,
                    "first_batch": a.first_batch,
                    "last_batch": a.last_batch,
                    "fee_sat": a.fee_sat,
                    "vsize": a.vsize,
                    "block_height": a.block_height,
                })).collect::<Vec<_>>(),
            },
            "fees_sat": {
                "anchors": self.anchor_fees(),
                "withdrawal": self.withdrawal_fee,
                "peg_in": f.peg_in_fee,
                "payment": self.payment_fee,
            },
            "sats_in": f.sats_in,
            "sats_out": f.sats_out,
            "peg_in": f.peg_in,
            "withdrawal_txid": f.withdrawal_txid,
            "genesis": f.genesis,
            "balances": {"alice": self.alice, "bob": self.bob},
            "verify_chain": {
                "ok": true,
                "batches": self.verify.batches,
                "anchors": self.verify.anchors,
                "from_bitcoin": self.verify.from_bitcoin.as_ref().map(|v| json!({
                    "ok": true,
                    "batches": v.batches,
                    "anchors": v.anchors,
                    "reserves_sat": v.reserves_sat,
                    "supply_sat": v.supply_sat,
                    "peg_ins": v.peg_ins,
                    "peg_outs": v.peg_outs,
                })),
            },
            "seconds": self.seconds,
            "kept": self.kept,
        })
    }

    /// The summary table.
    pub fn table(&self) -> String {
        let mut rows: Vec<(&str, String)> = Vec::new();
        let t = &self.transfers;
        rows.push((
            "transfers",
            format!(
                "{}: {} deposit, {} private payment, {} withdrawal",
                t.total(),
                t.deposits,
                t.payments,
                t.withdrawals
            ),
        ));
        rows.push((
            "batches",
            format!(
                "{} sealed, {} proven (B = {}, D = {})",
                self.batches, self.proven, self.batch_size, self.depth
            ),
        ));
        let per: Vec<String> = self
            .proving_seconds_per_batch
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect();
        rows.push((
            "proving",
            format!(
                "{:.2} s in total, {:.2} s per batch (batches: {} s)",
                self.proving_seconds_total,
                self.proving_mean(),
                per.join(", ")
            ),
        ));
        if self.anchors.is_empty() {
            rows.push(("anchors", "none (no Bitcoin)".to_owned()));
        } else {
            rows.push(("anchors", format!("{}", self.anchors.len())));
            for a in &self.anchors {
                let range = if a.first_batch == a.last_batch {
                    format!("batch {}", a.first_batch)
                } else {
                    format!("batches {}-{}", a.first_batch, a.last_batch)
                };
                rows.push((
                    "",
                    format!(
                        "{range}: {} ({} sat, {} vB{})",
                        a.txid,
                        a.fee_sat,
                        a.vsize,
                        a.block_height
                            .map(|h| format!(", block {h}"))
                            .unwrap_or_default()
                    ),
                ));
            }
        }
        let f = &self.flows;
        if self.bitcoin {
            rows.push((
                "bitcoin fees",
                format!(
                    "anchors {} sat; withdrawal fee {} sat (pays its output in the anchor); peg-in transaction {} sat",
                    self.anchor_fees(),
                    self.withdrawal_fee,
                    f.peg_in_fee
                ),
            ));
            rows.push((
                "bitcoin in",
                format!(
                    "{} sat (peg-in {})",
                    f.sats_in,
                    f.peg_in.as_deref().unwrap_or("-")
                ),
            ));
            rows.push((
                "bitcoin out",
                format!(
                    "{} sat (paid by anchor {})",
                    f.sats_out,
                    f.withdrawal_txid.as_deref().unwrap_or("-")
                ),
            ));
        } else {
            rows.push((
                "bitcoin",
                format!(
                    "none: the deposit is the operator's word, the withdrawal (fee {} sat) ends at proven",
                    self.withdrawal_fee
                ),
            ));
        }
        rows.push((
            "balances",
            format!("alice {} sat, bob {} sat", self.alice, self.bob),
        ));
        let v = &self.verify;
        let mut audit = format!("ok: {} batches", v.batches);
        if self.bitcoin {
            audit.push_str(&format!(", {} anchors", v.anchors));
        }
        if let Some(b) = &v.from_bitcoin {
            audit.push_str(&format!(
                "; --from-bitcoin ok: {} batches rebuilt, reserves {} sat, supply {} sat",
                b.batches, b.reserves_sat, b.supply_sat
            ));
        }
        rows.push(("verify-chain", audit));
        let mut out = format!(
            "\nveil demo: done in {:.1} s ({})\n\n",
            self.seconds,
            if self.bitcoin {
                "with a throwaway regtest Bitcoin Core"
            } else {
                "without Bitcoin"
            }
        );
        for (k, v) in rows {
            out.push_str(&format!("  {k:<14} {v}\n"));
        }
        if let Some(dir) = &self.kept {
            out.push_str(&format!("\n  kept in {}\n", dir.display()));
        }
        out
    }
}
