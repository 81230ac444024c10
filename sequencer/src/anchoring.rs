//! Bitcoin anchoring in the node (DESIGN §11, docs/data-on-bitcoin.md): the background anchorer
//! that puts every proven batch's data and proof on Bitcoin and commits to the new state root,
//! using `veil_bitcoin` (payloads, envelope packages, signing, fee bumps, the Bitcoin Core
//! JSON-RPC client).
//!
//! One anchor covers every batch proven since the previous anchor (a range `a..=b`, as many as
//! one envelope carries: [`MAX_ENVELOPE_DATA`] bytes of anchor data, about 1,290 transfers). It
//! is a package of two transactions: the commit, spending the previous anchor's change into a
//! Taproot envelope output, and the anchor, revealing the range's data from that output and
//! carrying the version 2 payload (`OP_RETURN`) and the new change. The record keeps both; the
//! anchor transaction is what is tracked, bumped and spent next.
//!
//! Each pass of [`Anchorer::pass`]:
//! 1. checks Bitcoin Core runs the configured chain and has `-txindex`;
//! 2. checks, at any depth, that the newest anchor in a block (the one the chain of anchors
//!    continues from) is still in the best chain (`getblockheader` of its block: confirmations
//!    -1 means a reorg took the block out). Each anchor spends the one before it, so while the
//!    newest is in the best chain every older one is too. When it is not, the anchorer walks
//!    back through the older anchors, however deep they were buried, to the newest one still in
//!    the best chain: every anchor after it was taken out by the reorg, and is re-checked below
//!    even if it was buried past the watch. The reorg is reported ([`reorg`]): a WARN line
//!    naming the batches, the depth (blocks of the chain last seen that left the best chain) and
//!    the fork height, `reorgs` in `POST /v1/anchor`, and `veil_anchor_deep_reorgs_total` when
//!    an anchor buried past the watch was taken out;
//! 3. refreshes, in batch order, every anchor not yet buried `confirmations + REORG_WATCH` deep
//!    and every anchor a reorg took out: found in a block of the best chain -> `confirmed`
//!    (`anchored` at the required confirmations); only in the mempool -> `unconfirmed` (an
//!    anchor that was confirmed and is no longer is counted in `veil_anchor_reorgs_total`);
//!    unknown to the node -> the stored transaction is re-broadcast, byte for byte, after
//!    `testmempoolaccept` (status `signed` while it was never confirmed: never broadcast, or
//!    dropped from the mempool; `reorged` when it was confirmed and a reorg took it out of the
//!    chain and the mempool: it is re-broadcast in batch order, so each re-broadcast anchor's
//!    input is back before it). A re-broadcast refused because the output it spends is gone
//!    (the new chain spent it otherwise) fails the pass with [`AnchorError::InputGone`], which
//!    says so; it is retried like any failure, but needs the operator. A reorg that lands
//!    between step 2 and this step is seen here only: it is reported as in step 2, from the
//!    records as they were before this step;
//! 4. fee-bumps (RBF) the newest anchor when it is still unconfirmed `bump_after_blocks` blocks
//!    after its broadcast: only the anchor transaction is re-signed (the envelope it reveals
//!    and the commit stay valid); while the commit is unconfirmed too, the new anchor pays the
//!    new rate for both (child pays for parent). The replacement is persisted before it is
//!    broadcast, and every version is looked for on Bitcoin, so whichever one confirms is the
//!    one the chain continues from;
//! 5. follows the bridge's peg-in outputs and credits those with their confirmations
//!    ([`peg_in`]; run first, so that a pass failing on an anchor still follows them);
//! 6. anchors every batch proven since the previous anchor once that anchor is in the best
//!    chain: the new package's commit spends the previous anchor's change (the first: the
//!    configured genesis outpoint); the package is persisted in redb as `signed` BEFORE it is
//!    broadcast, each transaction passes `testmempoolaccept`, then is sent, commit first. A node
//!    killed between the two re-broadcasts the same transactions (same txids) on restart, so a
//!    batch is never anchored twice and the chain of spends never forks.
//!
//! Anchors are made strictly in batch order and only on top of a confirmed predecessor, so the
//! version of an anchor that the next one spends never changes once it is spent (fee bumps only
//! ever touch the newest anchor, which nothing spends yet). That makes at most one anchor per
//! Bitcoin block, but each covers every batch proven meanwhile, so anchoring does not limit
//! throughput: a block's anchor carries up to about 1,290 transfers. A pass that fails (Bitcoin
//! Core down, a refusal) is retried with exponential backoff; the API and proving never wait on
//! it.
//!
//! Test hook: with `VEIL_ANCHOR_FAILPOINT=abort-after-persist` the process aborts right after a
//! new anchor is persisted and before it is broadcast (`abort-after-bump-persist`: the same after
//! persisting a fee bump).

mod figures;
mod flows;
mod peg_in;
pub mod reorg;
mod settings;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::{Amount, FeeRate, OutPoint, ScriptBuf, Transaction, TxOut, Txid};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use veil_bitcoin::bridge::flows::Sweep;
use veil_bitcoin::envelope::MAX_ENVELOPE_DATA;
use veil_bitcoin::package::{build_bridge_package, AnchorPackage, BumpScope, PackageError};
use veil_bitcoin::payload::AnchorPayloadV2;
use veil_bitcoin::rpc::BlockchainInfo;
use veil_bitcoin::tx::CHANGE_VOUT;
use veil_bitcoin::{
    proof_commitment, AnchorTxError, BitcoinRpc, OperatorKey, OperatorKeyError, PayloadError,
    PrevOut, RpcError,
};
use veil_circuits::batch::BatchPublicInputs;
use veil_verifier::da::AnchorData;

use crate::config::AnchorConfig;
use crate::node::{txid_hex, Node, NodeError};
use crate::store::{AnchorRecord, AnchorStatus, AnchorVersion};
pub use figures::BridgeFigures;
use reorg::ReorgLog;
pub use settings::{load_settings, parse_network, rpc_client, AnchorSettings};

/// Anchors buried this many blocks beyond the required confirmations are no longer re-checked
/// one by one: only the newest anchor in a block is, at any depth, and the older ones when a
/// reorg took it out (see the module doc).
pub const REORG_WATCH: u64 = 6;
/// Environment variable of the crash test hook (see the module doc).
pub const FAILPOINT_VAR: &str = "VEIL_ANCHOR_FAILPOINT";

/// Anchoring failed (this pass; the anchorer retries).
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// The `[anchor]` configuration is invalid.
    #[error("anchor config: {0}")]
    Config(String),
    /// The operator key file.
    #[error(transparent)]
    Key(#[from] OperatorKeyError),
    /// Bitcoin Core.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// Building a transaction.
    #[error(transparent)]
    Tx(#[from] AnchorTxError),
    /// A payload.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// Building or reading an envelope package.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The node's storage.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// Bitcoin Core runs without `-txindex`.
    #[error("bitcoin node has no transaction index: restart Bitcoin Core with -txindex=1")]
    NoTxindex,
    /// The genesis outpoint cannot be spent.
    #[error("genesis outpoint {0} is unknown or already spent")]
    Genesis(OutPoint),
    /// The output an anchor spends is missing or already spent, so Bitcoin Core refuses the
    /// anchor: after a reorg, the new chain spent (or never had) what the anchor spends.
    #[error(
        "transaction {txid} of the anchor of batch {batch} cannot be {action}: the output it \
         spends, {input}, \
         is missing or already spent on Bitcoin ({reason}){}",
        reorg_note(.after_reorg)
    )]
    InputGone {
        /// Batch.
        batch: u64,
        /// The refused transaction.
        txid: Txid,
        /// `broadcast` or `re-broadcast`.
        action: &'static str,
        /// The outpoint it spends.
        input: OutPoint,
        /// Bitcoin Core's reason.
        reason: String,
        /// The anchor was confirmed before and a reorg took it out.
        after_reorg: bool,
    },
    /// A stored anchor record does not decode.
    #[error("stored anchor of batch {batch}: {message}")]
    Corrupt {
        /// Batch.
        batch: u64,
        /// Problem.
        message: String,
    },
}

fn reorg_note(after_reorg: &bool) -> &'static str {
    if *after_reorg {
        "; it was in the best chain and a reorg took it out, and the new chain does not have \
         that output: anchoring cannot continue from this anchor without the operator"
    } else {
        ""
    }
}

/// What the anchorer last saw, for `POST /v1/anchor`.
#[derive(Debug, Default, Clone)]
struct PassState {
    last_error: Option<String>,
    bitcoin_height: Option<u64>,
    passes: u64,
    reorgs: ReorgLog,
}

/// The background anchorer of one node.
pub struct Anchorer {
    node: Arc<Node>,
    rpc: BitcoinRpc,
    key: OperatorKey,
    settings: AnchorSettings,
    txindex_checked: AtomicBool,
    state: Mutex<PassState>,
    failpoint: Option<String>,
    sums: Mutex<std::collections::HashMap<(u64, u64), figures::RangeSums>>,
}

impl Anchorer {
    /// The bridge's key (the operator key's x-only internal key, which peg-in addresses tweak,
    /// `docs/bridge.md`) and the Bitcoin network.
    pub fn bridge_key(&self) -> (bitcoin::key::UntweakedPublicKey, bitcoin::Network) {
        (self.key.internal_key(), self.settings.network)
    }
}

impl std::fmt::Debug for Anchorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anchorer")
            .field("settings", &self.settings)
            .field("operator", &self.key.public_key())
            .finish_non_exhaustive()
    }
}

/// Runs a blocking node call off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Result<T, AnchorError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NodeError::Task(e.to_string()))?
        .map_err(AnchorError::from)
}

fn version_of(p: &AnchorPackage) -> AnchorVersion {
    AnchorVersion {
        txid: p.anchor_txid().to_byte_array(),
        raw_tx: serialize(&p.anchor),
        fee_sat: p.anchor_fee.to_sat(),
        target_sat_per_kwu: p.fee_rate.to_sat_per_kwu(),
    }
}

/// The commit and reveal transactions of an anchor record.
pub fn prelude_txs(rec: &AnchorRecord) -> Result<Vec<Transaction>, AnchorError> {
    rec.prelude
        .iter()
        .map(|raw| {
            deserialize(raw).map_err(|e| AnchorError::Corrupt {
                batch: rec.batch,
                message: format!("stored data transaction: {e}"),
            })
        })
        .collect()
}

/// The transaction of an anchor version.
pub fn version_tx(batch: u64, v: &AnchorVersion) -> Result<Transaction, AnchorError> {
    deserialize(&v.raw_tx).map_err(|e| AnchorError::Corrupt {
        batch,
        message: e.to_string(),
    })
}

/// `{txid, first_batch, last_batch, commit_txid, reveal_txids, status, confirmations,
/// block_hash, block_height, fee_sat, vsize, versions}` of an anchor record, as served in
/// `GET /v1/batches/{n}`: `txid` is the anchor transaction's; `fee_sat` and `vsize` are the
/// whole package's (commit, reveals and anchor).
pub fn anchor_json(rec: &AnchorRecord) -> Value {
    let cur = rec.current();
    let anchor = version_tx(rec.batch, cur).ok();
    let prelude = prelude_txs(rec).unwrap_or_default();
    let vsize = anchor
        .as_ref()
        .map(|t| t.vsize() + prelude.iter().map(Transaction::vsize).sum::<usize>());
    // Everything the package spent (the previous change and the swept deposits) that is not
    // the new change or a withdrawal went to fees.
    let fee_sat = anchor.as_ref().map(|t| {
        let out: u64 = t
            .output
            .iter()
            .skip(CHANGE_VOUT as usize)
            .map(|o| o.value.to_sat())
            .sum();
        (rec.prev_value_sat + rec.swept_sat()).saturating_sub(out)
    });
    let txid = |t: &Transaction| t.compute_txid().to_string();
    json!({
        "txid": txid_hex(&cur.txid),
        "first_batch": rec.batch,
        "last_batch": rec.last_batch(),
        "commit_txid": prelude.first().map(txid),
        "reveal_txids": prelude.iter().skip(1).map(txid).collect::<Vec<_>>(),
        "status": rec.status.as_str(),
        "confirmations": rec.confirmations,
        "block_hash": rec.block_hash.as_ref().map(txid_hex),
        "block_height": rec.block_height,
        "fee_sat": fee_sat,
        "vsize": vsize,
        "versions": rec.versions.iter().map(|v| txid_hex(&v.txid)).collect::<Vec<_>>(),
    })
}

/// What a broadcast sends, for the refusal it may get.
#[derive(Debug, Clone, Copy)]
enum BroadcastKind {
    /// A transaction just signed (a new anchor or a fee bump).
    New,
    /// A stored transaction the Bitcoin node does not know (any more).
    Stored {
        /// It was confirmed before: a reorg took it out.
        after_reorg: bool,
    },
}

/// Where an anchor's versions are on Bitcoin.
enum Located {
    /// Version `i` is in a block of the best chain with this many confirmations.
    Block(usize, bitcoin::BlockHash, u64),
    /// Version `i` is in the mempool.
    Mempool(usize),
    /// No version is known to the node.
    Unknown,
}

impl Anchorer {
    /// An anchorer for `node` (nothing is sent to Bitcoin Core yet).
    pub fn new(
        node: Arc<Node>,
        config: &AnchorConfig,
        data_dir: &Path,
    ) -> Result<Anchorer, AnchorError> {
        let (key, settings) = load_settings(config, data_dir)?;
        let rpc = rpc_client(config)?;
        let failpoint = std::env::var(FAILPOINT_VAR).ok().filter(|v| !v.is_empty());
        if let Some(f) = &failpoint {
            tracing::warn!(failpoint = %f, "anchoring test failpoint armed");
        }
        let anchorer = Anchorer {
            node,
            rpc,
            key,
            settings,
            txindex_checked: AtomicBool::new(false),
            state: Mutex::new(PassState::default()),
            failpoint,
            sums: Mutex::default(),
        };
        let records = anchorer.node.anchors_from(0)?;
        anchorer.update_heights(&records);
        tracing::info!(
            network = %anchorer.settings.network,
            operator = %anchorer.key.address(anchorer.settings.kind, anchorer.settings.network),
            genesis = %anchorer.settings.genesis,
            confirmations = anchorer.settings.confirmations,
            anchors = records.len(),
            "anchoring enabled"
        );
        Ok(anchorer)
    }

    /// The Bitcoin height the last pass saw.
    pub fn bitcoin_height(&self) -> Option<u64> {
        self.read_state(|s| s.bitcoin_height)
    }

    /// The settings.
    pub fn settings(&self) -> &AnchorSettings {
        &self.settings
    }

    /// The operator's address for the configured key kind.
    pub fn operator_address(&self) -> bitcoin::Address {
        self.key.address(self.settings.kind, self.settings.network)
    }

    fn hit_failpoint(&self, name: &str) {
        if self.failpoint.as_deref() == Some(name) {
            tracing::error!(failpoint = name, "test failpoint: aborting the process");
            std::process::abort();
        }
    }

    /// Runs passes until `shutdown`: every `poll` (or when a batch is proven or a pass is asked
    /// for), backing off exponentially up to `retry_max` while passes fail.
    pub async fn run(
        self: Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), NodeError> {
        let mut failures: u32 = 0;
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let result = tokio::select! {
                r = self.pass() => r,
                _ = shutdown.changed() => return Ok(()),
            };
            let delay = match result {
                Ok(()) => {
                    failures = 0;
                    self.set_state(|s| s.last_error = None);
                    self.settings.poll
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    self.node
                        .metrics
                        .anchor_errors
                        .fetch_add(1, Ordering::Relaxed);
                    let delay = Duration::from_millis(250)
                        .saturating_mul(1u32 << failures.min(16))
                        .min(self.settings.retry_max);
                    tracing::warn!(error = %e, retry_in = ?delay, "anchoring pass failed");
                    let msg = e.to_string();
                    self.set_state(|s| s.last_error = Some(msg));
                    delay
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.node.anchor_wanted.notified() => {}
                r = shutdown.changed() => if r.is_err() { return Ok(()) },
            }
        }
    }

    fn set_state(&self, f: impl FnOnce(&mut PassState)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn read_state<T>(&self, f: impl FnOnce(&PassState) -> T) -> T {
        f(&self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Asks for a pass now.
    pub fn trigger(&self) {
        self.node.anchor_wanted.notify_one();
    }

    /// The anchoring status (`POST /v1/anchor`): heights, the last error, the operator address
    /// and every anchor.
    pub fn status_json(&self) -> Result<Value, NodeError> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let records = self.node.anchors_from(0)?;
        let m = &self.node.metrics;
        Ok(json!({
            "enabled": true,
            "network": self.settings.network.to_core_arg(),
            "operator_address": self.operator_address().to_string(),
            "genesis": self.settings.genesis.to_string(),
            "required_confirmations": self.settings.confirmations,
            "proven_height": self.node.state_view().proven_height,
            "signed_height": m.anchor_signed_height.load(Ordering::Relaxed),
            "anchored_height": m.anchored_height.load(Ordering::Relaxed),
            "bitcoin_height": state.bitcoin_height,
            "passes": state.passes,
            "last_error": state.last_error,
            "reorgs": state.reorgs.json(m.anchor_reorgs.load(Ordering::Relaxed)),
            "anchors": records.iter().map(|r| {
                let mut v = anchor_json(r);
                v["batch"] = json!(r.batch);
                v
            }).collect::<Vec<_>>(),
        }))
    }

    fn update_heights(&self, records: &[AnchorRecord]) {
        let anchored = records
            .iter()
            .take_while(|r| r.status == AnchorStatus::Anchored)
            .last()
            .map_or(0, AnchorRecord::end);
        let m = &self.node.metrics;
        m.anchored_height.store(anchored, Ordering::Relaxed);
        m.anchor_signed_height.store(
            records.last().map_or(0, AnchorRecord::end),
            Ordering::Relaxed,
        );
    }

    async fn check_node(&self) -> Result<BlockchainInfo, AnchorError> {
        let info = self.rpc.check_chain(self.settings.network).await?;
        if !self.txindex_checked.load(Ordering::Relaxed) {
            let indexes: Value = self.rpc.call("getindexinfo", vec![]).await?;
            if indexes.get("txindex").is_none() {
                return Err(AnchorError::NoTxindex);
            }
            self.txindex_checked.store(true, Ordering::Relaxed);
        }
        Ok(info)
    }

    /// One anchoring pass (see the module doc).
    pub async fn pass(&self) -> Result<(), AnchorError> {
        let info = self.check_node().await?;
        let tip = info.blocks;
        self.set_state(|s| {
            s.bitcoin_height = Some(tip);
            s.passes += 1;
        });
        // 5 (first: independent of the anchors, so a stuck anchor does not stop it). Follow
        // the bridge's peg-ins, crediting those with their confirmations; its failure fails the
        // pass after the anchoring steps.
        let peg_ins = self.follow_peg_ins(tip).await;

        let node = self.node.clone();
        let mut records = blocking(move || node.anchors_from(0)).await?;

        // 2. Is the newest anchor in a block still in the best chain? If not, which anchors did
        // the reorg take out, at any depth?
        let reorged = self.find_reorged(&mut records, tip).await?;

        // 3. Follow every anchor that could still move, and those a reorg took out, in batch
        // order (a re-broadcast anchor's input is re-broadcast before it).
        let mut left_during_pass = Vec::new();
        for (i, rec) in records.iter_mut().enumerate() {
            if self.buried(rec) && !reorged.contains(&i) {
                continue;
            }
            if let Some(before) = self.refresh(rec, tip).await? {
                if !reorged.contains(&i) {
                    left_during_pass.push((i, before));
                }
            }
        }
        // A reorg between steps 2 and 3 is seen only here: report it from the records as they
        // were before step 3 (the next pass would no longer find these anchors in a block).
        if !left_during_pass.is_empty() {
            let mut view = reorg::view_before_refresh(&records, left_during_pass);
            self.find_reorged(&mut view, tip).await?;
        }
        self.update_heights(&records);

        // 4. Fee-bump the newest anchor if it is stuck.
        if let Some(last) = records.last_mut() {
            self.maybe_bump(last, tip).await?;
        }

        // 6. Anchor every batch proven since, once the previous anchor is in the best chain.
        let next = records.last().map_or(0, AnchorRecord::end);
        let proven = self.node.state_view().proven_height;
        let ready = match records.last() {
            None => true,
            Some(prev) => matches!(
                prev.status,
                AnchorStatus::Confirmed | AnchorStatus::Anchored
            ),
        };
        if next < proven && ready {
            let rec = self
                .anchor_range(next, proven - 1, records.last(), tip)
                .await?;
            records.push(rec);
            self.update_heights(&records);
        }
        peg_ins
    }

    /// Anchored and buried `confirmations + REORG_WATCH` deep: no longer refreshed every pass.
    fn buried(&self, rec: &AnchorRecord) -> bool {
        rec.status == AnchorStatus::Anchored
            && rec.confirmations >= self.settings.confirmations + REORG_WATCH
    }

    async fn store(&self, rec: &AnchorRecord) -> Result<(), AnchorError> {
        let node = self.node.clone();
        let rec = rec.clone();
        blocking(move || node.update_anchor(&rec)).await
    }

    async fn locate(&self, rec: &AnchorRecord) -> Result<Located, AnchorError> {
        // The pinned (once confirmed) version first, then newest to oldest.
        let mut order: Vec<usize> = rec.confirmed.into_iter().collect();
        order.extend(
            (0..rec.versions.len())
                .rev()
                .filter(|i| Some(*i) != rec.confirmed),
        );
        for i in order {
            let txid = Txid::from_byte_array(rec.versions[i].txid);
            match self.rpc.get_raw_transaction(&txid).await? {
                Some(rt) => match rt.blockhash {
                    Some(hash) if rt.confirmations > 0 => {
                        return Ok(Located::Block(i, hash, rt.confirmations))
                    }
                    // In a block that left the best chain (txindex keeps it): not located.
                    Some(_) => continue,
                    None => return Ok(Located::Mempool(i)),
                },
                None => continue,
            }
        }
        Ok(Located::Unknown)
    }

    /// Follows `rec` on the Bitcoin node, storing what changed. Returns the record as it was
    /// before when a confirmed anchor was found out of the best chain.
    async fn refresh(
        &self,
        rec: &mut AnchorRecord,
        tip: u64,
    ) -> Result<Option<AnchorRecord>, AnchorError> {
        let before = rec.clone();
        let was_confirmed = matches!(rec.status, AnchorStatus::Confirmed | AnchorStatus::Anchored);
        let left_chain = |rec: &AnchorRecord| {
            tracing::warn!(
                batch = rec.batch,
                txid = %txid_hex(&rec.current().txid),
                "anchor left the best chain (reorg); following it until it confirms again"
            );
            self.node
                .metrics
                .anchor_reorgs
                .fetch_add(1, Ordering::Relaxed);
        };
        match self.locate(rec).await? {
            Located::Block(i, hash, confs) => {
                if let Some(pinned) = rec.confirmed.filter(|p| *p != i) {
                    tracing::error!(
                        batch = rec.batch,
                        pinned,
                        confirmed = i,
                        "another version of an already confirmed anchor confirmed"
                    );
                }
                // Height and confirmations from the block's header, in one call: `tip + 1 -
                // confirmations` would be off when a block arrives during the pass.
                let (height, confs) = match self.rpc.get_block_header(&hash).await? {
                    Some(h) if h.in_best_chain() => {
                        (h.height, u64::try_from(h.confirmations).unwrap_or(confs))
                    }
                    _ => ((tip + 1).saturating_sub(confs), confs),
                };
                rec.confirmed = Some(i);
                rec.block_hash = Some(hash.to_byte_array());
                rec.block_height = Some(height);
                rec.confirmations = confs;
                rec.status = if confs >= self.settings.confirmations {
                    AnchorStatus::Anchored
                } else {
                    AnchorStatus::Confirmed
                };
                if before.status != rec.status || before.confirmed != rec.confirmed {
                    tracing::info!(
                        batch = rec.batch,
                        txid = %txid_hex(&rec.current().txid),
                        confirmations = confs,
                        status = rec.status.as_str(),
                        "anchor confirmed"
                    );
                }
            }
            Located::Mempool(i) => {
                if was_confirmed {
                    left_chain(rec);
                }
                if rec.confirmed.is_none() && i != rec.versions.len() - 1 {
                    // An older version is what the mempool holds: the newest was never
                    // accepted; keep following what is there.
                    tracing::warn!(
                        batch = rec.batch,
                        version = i,
                        "mempool holds an older version"
                    );
                }
                rec.status = AnchorStatus::Unconfirmed;
                rec.block_hash = None;
                rec.block_height = None;
                rec.confirmations = 0;
                if rec.broadcast_height.is_none() {
                    rec.broadcast_height = Some(tip);
                }
            }
            Located::Unknown => {
                if was_confirmed {
                    left_chain(rec);
                }
                let v = rec.current().clone();
                let tx = version_tx(rec.batch, &v)?;
                // Once confirmed, the pinned version is the one the next anchor spends: only a
                // reorg takes it out of both the chain and the mempool.
                let after_reorg = rec.confirmed.is_some();
                let status = if after_reorg {
                    AnchorStatus::Reorged
                } else {
                    AnchorStatus::Signed
                };
                if rec.status != status {
                    tracing::warn!(
                        batch = rec.batch,
                        txid = %tx.compute_txid(),
                        after_reorg,
                        "anchor unknown to the bitcoin node; re-broadcasting"
                    );
                }
                rec.status = status;
                rec.block_hash = None;
                rec.block_height = None;
                rec.confirmations = 0;
                if *rec != before {
                    self.store(rec).await?;
                }
                let kind = BroadcastKind::Stored { after_reorg };
                self.broadcast_prelude(rec, kind).await?;
                self.broadcast(rec.batch, &tx, kind).await?;
                rec.status = AnchorStatus::Unconfirmed;
                rec.broadcast_height = Some(tip);
            }
        }
        if *rec != before {
            self.store(rec).await?;
        }
        let confirmed = matches!(rec.status, AnchorStatus::Confirmed | AnchorStatus::Anchored);
        Ok((was_confirmed && !confirmed).then_some(before))
    }

    /// `testmempoolaccept`, then `sendrawtransaction`; a transaction the mempool already holds
    /// counts as sent. A refusal whose cause is that the spent output is gone is
    /// [`AnchorError::InputGone`].
    async fn broadcast(
        &self,
        batch: u64,
        tx: &Transaction,
        kind: BroadcastKind,
    ) -> Result<(), AnchorError> {
        let txid = tx.compute_txid();
        let known = |reason: &str| reason.contains("already");
        let accept = self.rpc.test_mempool_accept(tx).await?;
        if !accept.allowed {
            let reason = accept.reject_reason.unwrap_or_default();
            if !known(&reason) {
                return Err(self.refusal(batch, tx, reason, kind).await);
            }
        } else {
            match self.rpc.send_raw_transaction(tx).await {
                Ok(_) => {}
                Err(RpcError::Rejected { reason, .. }) if known(&reason) => {}
                Err(RpcError::Rejected { reason, .. }) => {
                    return Err(self.refusal(batch, tx, reason, kind).await)
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.node
            .metrics
            .anchor_broadcasts
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(batch, %txid, vsize = tx.vsize(), "anchor broadcast");
        Ok(())
    }

    /// Why Bitcoin Core refused `tx`: [`AnchorError::InputGone`] when the output it spends is
    /// neither unspent in the chain nor in the mempool, else the refusal as it came.
    async fn refusal(
        &self,
        batch: u64,
        tx: &Transaction,
        reason: String,
        kind: BroadcastKind,
    ) -> AnchorError {
        let txid = tx.compute_txid();
        let Some(input) = tx.input.first().map(|i| i.previous_output) else {
            return RpcError::Rejected { txid, reason }.into();
        };
        match self.rpc.get_tx_out(&input, true).await {
            Ok(None) => {
                let (action, after_reorg) = match kind {
                    BroadcastKind::New => ("broadcast", false),
                    BroadcastKind::Stored { after_reorg } => ("re-broadcast", after_reorg),
                };
                AnchorError::InputGone {
                    batch,
                    txid,
                    action,
                    input,
                    reason,
                    after_reorg,
                }
            }
            // The output is there: refused for another reason.
            Ok(Some(_)) => RpcError::Rejected { txid, reason }.into(),
            Err(e) => e.into(),
        }
    }

    /// Re-broadcasts, in order, the commit and reveals of `rec` that the Bitcoin node has
    /// neither in its mempool nor in a block of the best chain (a reorg, or a node that lost its
    /// mempool), so the anchor that spends them can follow.
    async fn broadcast_prelude(
        &self,
        rec: &AnchorRecord,
        kind: BroadcastKind,
    ) -> Result<(), AnchorError> {
        for tx in prelude_txs(rec)? {
            let held = match self.rpc.get_raw_transaction(&tx.compute_txid()).await? {
                Some(rt) => rt.blockhash.is_none() || rt.confirmations > 0,
                None => false,
            };
            if !held {
                self.broadcast(rec.batch, &tx, kind).await?;
            }
        }
        Ok(())
    }

    /// Version `i` of `rec` as a package (for fee bumps).
    fn package(&self, rec: &AnchorRecord, i: usize) -> Result<AnchorPackage, AnchorError> {
        let v = &rec.versions[i];
        let anchor = version_tx(rec.batch, v)?;
        let mut prelude = prelude_txs(rec)?.into_iter();
        let commit = prelude.next().ok_or_else(|| AnchorError::Corrupt {
            batch: rec.batch,
            message: "no commit transaction".into(),
        })?;
        let prev = PrevOut {
            outpoint: commit
                .input
                .first()
                .map(|i| i.previous_output)
                .unwrap_or_default(),
            txout: TxOut {
                value: Amount::from_sat(rec.prev_value_sat),
                script_pubkey: ScriptBuf::from_bytes(rec.prev_script.clone()),
            },
        };
        let sweeps = rec
            .sweeps
            .iter()
            .map(|s| {
                let owner = s.owner.ok_or_else(|| AnchorError::Corrupt {
                    batch: rec.batch,
                    message: "a swept deposit without its owner (restored from Bitcoin)".into(),
                })?;
                let addr = veil_circuits::field::from_bytes_be(&owner.addr).map_err(|e| {
                    AnchorError::Corrupt {
                        batch: rec.batch,
                        message: format!("swept deposit owner: {e}"),
                    }
                })?;
                Ok(Sweep {
                    prev: PrevOut {
                        outpoint: OutPoint::new(Txid::from_byte_array(s.txid), s.vout),
                        txout: TxOut {
                            value: Amount::from_sat(s.value),
                            script_pubkey: ScriptBuf::from_bytes(s.script.clone()),
                        },
                    },
                    owner: veil_circuits::keys::PaymentAddress {
                        addr,
                        pk_enc: owner.pk_enc,
                    },
                })
            })
            .collect::<Result<Vec<_>, AnchorError>>()?;
        Ok(AnchorPackage::from_transactions(
            &self.key,
            prev,
            sweeps,
            commit,
            prelude.collect(),
            anchor,
            FeeRate::from_sat_per_kwu(v.target_sat_per_kwu),
        )?)
    }

    async fn maybe_bump(&self, rec: &mut AnchorRecord, tip: u64) -> Result<(), AnchorError> {
        let Some(since) = rec.broadcast_height else {
            return Ok(());
        };
        if rec.status != AnchorStatus::Unconfirmed
            || rec.confirmed.is_some()
            || tip < since + self.settings.bump_after_blocks
        {
            return Ok(());
        }
        let last = self.package(rec, rec.versions.len() - 1)?;
        if last.fee_rate >= self.settings.max_fee_rate {
            tracing::warn!(batch = rec.batch, "anchor stuck at the maximum fee rate");
            return Ok(());
        }
        let policy = self.settings.fee.fee_rate(&self.rpc).await?;
        let doubled = FeeRate::from_sat_per_kwu(last.fee_rate.to_sat_per_kwu() * 2);
        let rate = policy.max(doubled).min(self.settings.max_fee_rate);
        // While the commit waits too, the new anchor pays for both (child pays for parent).
        let commit_in_block = self
            .rpc
            .get_raw_transaction(&last.commit.compute_txid())
            .await?
            .is_some_and(|rt| rt.confirmations > 0);
        let scope = if commit_in_block {
            BumpScope::Anchor
        } else {
            BumpScope::AnchorAndCommit
        };
        let bumped = last.bump_anchor(&self.key, rate, scope)?;
        tracing::info!(
            batch = rec.batch,
            old = %last.anchor_txid(),
            new = %bumped.anchor_txid(),
            old_fee = last.anchor_fee.to_sat(),
            new_fee = bumped.anchor_fee.to_sat(),
            "fee-bumping a stuck anchor (RBF)"
        );
        rec.versions.push(version_of(&bumped));
        rec.status = AnchorStatus::Signed;
        rec.broadcast_height = Some(tip);
        // Persisted before it is broadcast.
        self.store(rec).await?;
        self.node
            .metrics
            .anchor_fee_bumps
            .fetch_add(1, Ordering::Relaxed);
        self.hit_failpoint("abort-after-bump-persist");
        self.broadcast(rec.batch, &bumped.anchor, BroadcastKind::New)
            .await?;
        rec.status = AnchorStatus::Unconfirmed;
        self.store(rec).await
    }

    async fn genesis_prevout(&self) -> Result<PrevOut, AnchorError> {
        let g = self.settings.genesis;
        let out = self
            .rpc
            .get_tx_out(&g, true)
            .await?
            .ok_or(AnchorError::Genesis(g))?;
        Ok(PrevOut {
            outpoint: g,
            txout: TxOut {
                value: out.value,
                script_pubkey: out.script_pubkey,
            },
        })
    }

    /// The anchor data of `first..=last`, cut to what one envelope carries (and a payload
    /// counts): every batch when they fit, else the longest prefix that does (at least one);
    /// with the kept batches' public inputs.
    async fn range_data(
        &self,
        first: u64,
        last: u64,
    ) -> Result<(AnchorData, Vec<u8>, Vec<BatchPublicInputs>), AnchorError> {
        let last = last.min(first + u64::from(u16::MAX) - 1);
        let node = self.node.clone();
        let (mut data, mut public_inputs) = blocking(move || node.anchor_data(first, last)).await?;
        loop {
            let bytes = data
                .encode()
                .map_err(|e| AnchorError::Node(NodeError::AnchorData(e)))?;
            if bytes.len() <= MAX_ENVELOPE_DATA || data.batches.len() == 1 {
                return Ok((data, bytes, public_inputs));
            }
            let keep = data.batches.len() / 2;
            data.batches.truncate(keep);
            public_inputs.truncate(keep);
        }
    }

    async fn anchor_range(
        &self,
        first: u64,
        last: u64,
        prev_rec: Option<&AnchorRecord>,
        tip: u64,
    ) -> Result<AnchorRecord, AnchorError> {
        let prev = match prev_rec {
            None => self.genesis_prevout().await?,
            Some(p) => {
                let i = p.confirmed.unwrap_or(p.versions.len() - 1);
                let tx = version_tx(p.batch, &p.versions[i])?;
                let change = tx
                    .output
                    .get(CHANGE_VOUT as usize)
                    .cloned()
                    .ok_or_else(|| AnchorError::Corrupt {
                        batch: p.batch,
                        message: "anchor without a change output".into(),
                    })?;
                PrevOut {
                    outpoint: OutPoint::new(tx.compute_txid(), CHANGE_VOUT),
                    txout: change,
                }
            }
        };
        let (data, bytes, records) = self.range_data(first, last).await?;
        let last = data.last_batch();
        let count = last - first + 1;
        // Each batch's `(proof, batch_hash)` and the last new state root.
        let commitments = data
            .batches
            .iter()
            .zip(&records)
            .map(|(b, pi)| proof_commitment(&b.proof, &pi.batch_hash))
            .collect::<Result<Vec<_>, _>>()?;
        let root = records.last().expect("at least one batch").new_state_root;
        let data_hash: [u8; 32] = Sha256::digest(&bytes).into();
        let payload = AnchorPayloadV2::new(first, root, &data_hash, &commitments)?;
        let rate = self.settings.fee.fee_rate(&self.rpc).await?;
        let (flows, sweeps) = self.bridge_flows(&data).await?;
        let package = build_bridge_package(
            &self.key,
            &prev,
            &payload,
            &bytes,
            self.settings.kind,
            rate,
            &flows,
        )?;
        let mut rec = AnchorRecord {
            batch: first,
            count,
            prev_value_sat: prev.txout.value.to_sat(),
            prev_script: prev.txout.script_pubkey.to_bytes(),
            sweeps,
            prelude: std::iter::once(&package.commit)
                .chain(&package.reveals)
                .map(serialize)
                .collect(),
            versions: vec![version_of(&package)],
            status: AnchorStatus::Signed,
            confirmed: None,
            block_hash: None,
            block_height: None,
            confirmations: 0,
            broadcast_height: None,
        };
        // Durable before broadcast: a crash from here on re-broadcasts these very transactions.
        let node = self.node.clone();
        let r = rec.clone();
        blocking(move || node.insert_anchor(&r)).await?;
        tracing::info!(
            batches = %format!("{first}..={last}"),
            txid = %package.anchor_txid(),
            commit = %package.commit.compute_txid(),
            spends = %prev.outpoint,
            data_bytes = bytes.len(),
            swept = package.flows.sweeps.len(),
            payouts = package.flows.payouts.len(),
            fee = package.total_fee().to_sat(),
            vsize = package.total_vsize(),
            "anchor signed and stored"
        );
        self.hit_failpoint("abort-after-persist");
        self.broadcast_prelude(&rec, BroadcastKind::New).await?;
        self.broadcast(first, &package.anchor, BroadcastKind::New)
            .await?;
        rec.status = AnchorStatus::Unconfirmed;
        rec.broadcast_height = Some(tip);
        self.store(&rec).await?;
        Ok(rec)
    }
}
