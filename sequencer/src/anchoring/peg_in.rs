//! The bridge's peg-in watcher (`docs/bridge.md`): follows Bitcoin block by block for outputs
//! paying a watched deposit address, and credits each one, once, after
//! `deposit_confirmations` blocks.
//!
//! Each anchoring pass, before anchoring:
//! 1. every deposit found in a block is re-checked: a block that left the best chain takes its
//!    deposit with it. A deposit not yet credited is forgotten (found again if its transaction
//!    confirms in the new chain); a credited one stays credited, is marked
//!    `reorged_after_credit`, logged at WARN and counted in
//!    `veil_bridge_deposits_reorged_after_credit_total` (and `verify-chain` reports the
//!    shortfall) until its output confirms again;
//! 2. the scan cursor (last block scanned) is walked back while its block is not in the best
//!    chain, then every block up to the tip is scanned for watched scripts;
//! 3. every deposit with enough confirmations is credited: its status becomes `crediting` (with
//!    its transfer's id) durably, then its deposit transfer — rebuilt identically from the
//!    operator's deposit secret and the outpoint every time — is submitted, then `credited` is
//!    stored. A node killed in between re-submits the same transfer, which the node refuses as
//!    a duplicate (same id, same `deposit_ref`): an outpoint is credited at most once.
//!
//! Test hook: `VEIL_ANCHOR_FAILPOINT=abort-after-credit` aborts right after a deposit transfer
//! is accepted and before `credited` is stored.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, OutPoint, Txid};
use veil_bitcoin::bridge::deposit::build_deposit_idempotent;
use veil_bitcoin::refs::deposit_ref;
use veil_circuits::field::{from_bytes_be, to_bytes_be};
use veil_circuits::keys::PaymentAddress;

use super::{AnchorError, Anchorer};
use crate::node::{NodeError, SubmitError};
use crate::store::bridge::{DepositRecord, DepositStatus, ScanCursor, WatchedAddress};
use veil_wire::public_transfer_id;

/// Blocks scanned per pass at most (a node far behind catches up over several passes).
const MAX_BLOCKS_PER_PASS: u64 = 200;

fn store_err(e: crate::store::StoreError) -> AnchorError {
    AnchorError::Node(NodeError::from(e))
}

fn outpoint(d: &DepositRecord) -> OutPoint {
    OutPoint::new(Txid::from_byte_array(d.txid), d.vout)
}

fn ref_bytes(d: &DepositRecord) -> [u8; 32] {
    to_bytes_be(&deposit_ref(&outpoint(d)))
}

impl Anchorer {
    /// One round of the peg-in watcher (see the module doc).
    pub(super) async fn follow_peg_ins(&self, tip: u64) -> Result<(), AnchorError> {
        let node = self.node.clone();
        let store = node.store();
        let watched: HashMap<Vec<u8>, WatchedAddress> =
            store.watched().map_err(store_err)?.into_iter().collect();

        // 1. Deposits whose block left the best chain.
        for mut d in store.deposits().map_err(store_err)? {
            let Some(hash) = d.block_hash else { continue };
            let in_chain = self
                .rpc
                .get_block_header(&BlockHash::from_byte_array(hash))
                .await?
                .is_some_and(|h| h.in_best_chain());
            if in_chain {
                continue;
            }
            match d.status {
                DepositStatus::Seen => {
                    tracing::warn!(
                        outpoint = %outpoint(&d),
                        value = d.value,
                        "peg-in left the best chain before its confirmations: not credited"
                    );
                    store
                        .remove_deposit(&d, &ref_bytes(&d))
                        .map_err(store_err)?;
                }
                DepositStatus::Crediting if !self.transfer_known(&d)? => {
                    // Never submitted (a crash right after `crediting` was stored).
                    store
                        .remove_deposit(&d, &ref_bytes(&d))
                        .map_err(store_err)?;
                }
                DepositStatus::Crediting
                | DepositStatus::Credited
                | DepositStatus::ReorgedAfterCredit => {
                    tracing::warn!(
                        outpoint = %outpoint(&d),
                        value = d.value,
                        "credited peg-in left the best chain: the reserve is short by it until \
                         it confirms again"
                    );
                    d.status = DepositStatus::ReorgedAfterCredit;
                    d.block_hash = None;
                    d.block_height = None;
                    store.put_deposit(&d, &ref_bytes(&d)).map_err(store_err)?;
                    self.node
                        .metrics
                        .bridge_reorged_after_credit
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }

        // 2. Scan from the cursor (walked back to the best chain) to the tip.
        let mut cursor = match store.scan_cursor().map_err(store_err)? {
            Some(c) => c,
            None => {
                // A fresh node watches from the tip on: addresses are handed out from now.
                let hash = self.rpc.get_block_hash(tip).await?;
                let c = ScanCursor {
                    height: tip,
                    hash: hash.to_byte_array(),
                };
                store.set_scan_cursor(&c).map_err(store_err)?;
                c
            }
        };
        loop {
            let header = self
                .rpc
                .get_block_header(&BlockHash::from_byte_array(cursor.hash))
                .await?;
            match header {
                Some(h) if h.in_best_chain() => break,
                Some(h) => {
                    let prev = h.previous.ok_or_else(|| {
                        AnchorError::Config("scan cursor walked back past genesis".into())
                    })?;
                    cursor = ScanCursor {
                        height: h.height.saturating_sub(1),
                        hash: prev.to_byte_array(),
                    };
                }
                None => {
                    return Err(AnchorError::Config(format!(
                        "the bitcoin node does not know block {} the peg-in scan stopped at",
                        BlockHash::from_byte_array(cursor.hash)
                    )))
                }
            }
        }
        let end = tip.min(cursor.height + MAX_BLOCKS_PER_PASS);
        for height in cursor.height + 1..=end {
            let hash = self.rpc.get_block_hash(height).await?;
            if !watched.is_empty() {
                let block = self.rpc.get_block(&hash).await?;
                for tx in &block.txdata {
                    let txid = tx.compute_txid();
                    for (vout, out) in tx.output.iter().enumerate() {
                        let Some(owner) = watched.get(out.script_pubkey.as_bytes()) else {
                            continue;
                        };
                        self.found_deposit(txid, vout as u32, out, owner, hash, height)?;
                    }
                }
            }
            cursor = ScanCursor {
                height,
                hash: hash.to_byte_array(),
            };
            store.set_scan_cursor(&cursor).map_err(store_err)?;
        }

        // 3. Credit what has its confirmations.
        let k = self.settings.deposit_confirmations.max(1);
        for d in store.deposits().map_err(store_err)? {
            let confirmed = d.block_height.is_some_and(|h| tip + 1 >= h + k);
            match d.status {
                DepositStatus::Seen if confirmed => self.credit(d).await?,
                // Interrupted between persisting `crediting` and `credited`.
                DepositStatus::Crediting => self.credit(d).await?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether the node holds the deposit transfer `d` was being credited with.
    fn transfer_known(&self, d: &DepositRecord) -> Result<bool, AnchorError> {
        match &d.transfer_id {
            Some(id) => Ok(self.node.status(id)?.is_some()),
            None => Ok(false),
        }
    }

    fn found_deposit(
        &self,
        txid: Txid,
        vout: u32,
        out: &bitcoin::TxOut,
        owner: &WatchedAddress,
        block: BlockHash,
        height: u64,
    ) -> Result<(), AnchorError> {
        let store = self.node.store();
        let op = OutPoint::new(txid, vout);
        let r = to_bytes_be(&deposit_ref(&op));
        let mut d = match store.deposit_by_ref(&r).map_err(store_err)? {
            Some(d) => d,
            None => {
                tracing::info!(outpoint = %op, value = out.value.to_sat(), height, "peg-in seen");
                DepositRecord {
                    txid: txid.to_byte_array(),
                    vout,
                    value: out.value.to_sat(),
                    script: out.script_pubkey.to_bytes(),
                    owner: *owner,
                    block_hash: None,
                    block_height: None,
                    status: DepositStatus::Seen,
                    transfer_id: None,
                }
            }
        };
        if d.status == DepositStatus::ReorgedAfterCredit {
            tracing::info!(outpoint = %op, height, "credited peg-in confirmed again");
            d.status = DepositStatus::Credited;
        }
        d.block_hash = Some(block.to_byte_array());
        d.block_height = Some(height);
        store.put_deposit(&d, &r).map_err(store_err)
    }

    async fn credit(&self, mut d: DepositRecord) -> Result<(), AnchorError> {
        let op = outpoint(&d);
        let to = PaymentAddress {
            addr: from_bytes_be(&d.owner.addr).map_err(|e| AnchorError::Corrupt {
                batch: 0,
                message: format!("deposit {op} owner: {e}"),
            })?,
            pk_enc: d.owner.pk_enc,
        };
        let transfer = build_deposit_idempotent(&self.key.deposit_secret(), &to, d.value, &op)
            .map_err(|e| AnchorError::Config(format!("deposit {op}: {e}")))?;
        let id = public_transfer_id(&transfer.public);
        if d.status != DepositStatus::Crediting {
            d.status = DepositStatus::Crediting;
            d.transfer_id = Some(id.clone());
            self.node
                .store()
                .put_deposit(&d, &ref_bytes(&d))
                .map_err(store_err)?;
        }
        match self.node.clone().submit_async(transfer, true).await {
            Ok(_) => {
                tracing::info!(outpoint = %op, value = d.value, transfer = %id, "peg-in credited");
                self.node
                    .metrics
                    .bridge_credited
                    .fetch_add(1, Ordering::Relaxed);
                self.hit_failpoint("abort-after-credit");
            }
            // Credited before a crash: the same transfer, or the same outpoint.
            Err(SubmitError::Duplicate(_)) | Err(SubmitError::DuplicateDeposit { .. }) => {
                tracing::info!(outpoint = %op, transfer = %id, "peg-in was already credited");
            }
            Err(e) => {
                return Err(AnchorError::Config(format!(
                    "crediting peg-in {op} failed: {e}"
                )))
            }
        }
        d.status = DepositStatus::Credited;
        self.node
            .store()
            .put_deposit(&d, &ref_bytes(&d))
            .map_err(store_err)
    }
}
