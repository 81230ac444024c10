//! Bitcoin anchoring in the node (DESIGN §11): the background anchorer that commits each proven
//! batch's new state root to Bitcoin in a chained `OP_RETURN` transaction, using the library in
//! `veil_verifier::anchor` (payload, transaction building and signing, fee bumps, the Bitcoin
//! Core JSON-RPC client).
//!
//! Each pass of [`Anchorer::pass`]:
//! 1. checks Bitcoin Core runs the configured chain and has `-txindex`;
//! 2. refreshes every anchor not yet buried `confirmations + REORG_WATCH` deep: found in a block
//!    of the best chain -> `confirmed` (`anchored` at the required confirmations); only in the
//!    mempool -> `unconfirmed` (an anchor that was confirmed and is no longer is counted as a
//!    reorg); unknown to the node (never broadcast, dropped, or reorged out and evicted) -> the
//!    stored transaction is re-broadcast, byte for byte, after `testmempoolaccept`;
//! 3. fee-bumps (RBF) the newest anchor when it is still unconfirmed `bump_after_blocks` blocks
//!    after its broadcast: the replacement is persisted before it is broadcast, and every
//!    version is looked for on Bitcoin, so whichever one confirms is the one the chain
//!    continues from;
//! 4. anchors the next proven batch once the previous anchor is in the best chain: the new
//!    anchor spends the previous anchor's change (batch 0: the configured genesis outpoint), is
//!    persisted in redb as `signed` BEFORE it is broadcast, passes `testmempoolaccept`, then is
//!    sent. A node killed between the two re-broadcasts the same transaction (same txid) on
//!    restart, so a batch is never anchored twice and the chain of spends never forks.
//!
//! Anchors are made strictly in batch order and only on top of a confirmed predecessor, so the
//! version of an anchor that the next one spends never changes once it is spent (fee bumps only
//! ever touch the newest anchor, which nothing spends yet). That costs at most one anchor per
//! Bitcoin block; batches proven faster than that wait their turn. A pass that fails (Bitcoin
//! Core down, a refusal) is retried with exponential backoff; the API and proving never wait on
//! it.
//!
//! Test hook: with `VEIL_ANCHOR_FAILPOINT=abort-after-persist` the process aborts right after a
//! new anchor is persisted and before it is broadcast (`abort-after-bump-persist`: the same after
//! persisting a fee bump).

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::{Amount, FeeRate, Network, OutPoint, ScriptBuf, Transaction, TxOut, Txid};
use serde_json::{json, Value};
use tokio::sync::watch;
use veil_verifier::anchor::rpc::BlockchainInfo;
use veil_verifier::anchor::{
    build_anchor_tx, AnchorPayload, AnchorTx, AnchorTxError, BitcoinRpc, FeePolicy, KeyKind,
    OperatorKey, OperatorKeyError, PayloadError, PrevOut, RpcAuth, RpcConfig, RpcError,
};

use crate::config::AnchorConfig;
use crate::node::{txid_hex, Node, NodeError};
use crate::store::{AnchorRecord, AnchorStatus, AnchorVersion};

/// Anchors buried this many blocks beyond the required confirmations are no longer re-checked.
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
    /// The node's storage.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// Bitcoin Core runs without `-txindex`.
    #[error("bitcoin node has no transaction index: restart Bitcoin Core with -txindex=1")]
    NoTxindex,
    /// The genesis outpoint cannot be spent.
    #[error("genesis outpoint {0} is unknown or already spent")]
    Genesis(OutPoint),
    /// A stored anchor record does not decode.
    #[error("stored anchor of batch {batch}: {message}")]
    Corrupt {
        /// Batch.
        batch: u64,
        /// Problem.
        message: String,
    },
}

/// The parsed `[anchor]` configuration.
#[derive(Debug, Clone)]
pub struct AnchorSettings {
    /// Bitcoin network.
    pub network: Network,
    /// How anchors are signed and change is locked.
    pub kind: KeyKind,
    /// Fee rate source.
    pub fee: FeePolicy,
    /// Fee bumps stop at this rate.
    pub max_fee_rate: FeeRate,
    /// Bump after this many blocks unconfirmed.
    pub bump_after_blocks: u64,
    /// Confirmations for `anchored`.
    pub confirmations: u64,
    /// What batch 0's anchor spends.
    pub genesis: OutPoint,
    /// Poll interval.
    pub poll: Duration,
    /// Longest retry backoff.
    pub retry_max: Duration,
}

/// `regtest`, `signet`, `testnet`, `testnet4`, `mainnet` (or `bitcoin`).
pub fn parse_network(s: &str) -> Result<Network, AnchorError> {
    match s {
        "mainnet" | "bitcoin" | "main" => Ok(Network::Bitcoin),
        "testnet" | "testnet3" | "test" => Ok(Network::Testnet),
        "testnet4" => Ok(Network::Testnet4),
        "signet" => Ok(Network::Signet),
        "regtest" => Ok(Network::Regtest),
        other => Err(AnchorError::Config(format!(
            "unknown bitcoin network {other:?} (regtest, signet, testnet, testnet4 or mainnet)"
        ))),
    }
}

fn sat_vb(v: u64, what: &str) -> Result<FeeRate, AnchorError> {
    FeeRate::from_sat_per_vb(v)
        .filter(|r| *r >= veil_verifier::anchor::tx::MIN_FEE_RATE)
        .ok_or_else(|| AnchorError::Config(format!("{what} = {v} sat/vB is out of range")))
}

/// The operator key of `config` (created 0600 if missing) and the settings.
pub fn load_settings(
    config: &AnchorConfig,
    data_dir: &Path,
) -> Result<(OperatorKey, AnchorSettings), AnchorError> {
    let network = parse_network(&config.network)?;
    let kind = KeyKind::from_str(&config.key_kind)?;
    let key_file = config
        .key_file
        .clone()
        .unwrap_or_else(|| data_dir.join("operator.key"));
    if let Some(dir) = key_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| OperatorKeyError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    let key = OperatorKey::load_or_generate(&key_file, network, &mut rand::rngs::OsRng)?;
    let fee = match config.fee_rate {
        Some(r) => FeePolicy::Fixed(sat_vb(r, "fee_rate")?),
        None => FeePolicy::Estimate {
            conf_target: config.fee_conf_target.max(1),
            fallback: sat_vb(config.fallback_fee_rate, "fallback_fee_rate")?,
        },
    };
    let Some(genesis) = config.genesis.as_deref() else {
        return Err(AnchorError::Config(format!(
            "anchor.genesis (VEIL_ANCHOR_GENESIS) is not set: send bitcoin to the operator \
             address {} and set genesis = \"TXID:VOUT\" of that output",
            key.address(kind, network)
        )));
    };
    let genesis = OutPoint::from_str(genesis)
        .map_err(|e| AnchorError::Config(format!("genesis {genesis:?} is not TXID:VOUT: {e}")))?;
    if config.rpc_cookie.is_none() && config.rpc_user.is_none() {
        return Err(AnchorError::Config(
            "set rpc_cookie (Bitcoin Core's .cookie file) or rpc_user and rpc_password".into(),
        ));
    }
    if config.confirmations == 0 {
        return Err(AnchorError::Config(
            "confirmations must be at least 1".into(),
        ));
    }
    Ok((
        key,
        AnchorSettings {
            network,
            kind,
            fee,
            max_fee_rate: sat_vb(config.max_fee_rate, "max_fee_rate")?,
            bump_after_blocks: config.bump_after_blocks.max(1),
            confirmations: config.confirmations,
            genesis,
            poll: Duration::from_millis(config.poll_ms.max(10)),
            retry_max: Duration::from_millis(config.retry_max_ms.max(10)),
        },
    ))
}

/// The RPC client of `config`.
pub fn rpc_client(config: &AnchorConfig) -> Result<BitcoinRpc, AnchorError> {
    let auth = match (&config.rpc_cookie, &config.rpc_user) {
        (Some(cookie), _) => RpcAuth::CookieFile(cookie.clone()),
        (None, Some(user)) => RpcAuth::UserPass {
            user: user.clone(),
            password: config.rpc_password.clone().unwrap_or_default(),
        },
        (None, None) => {
            return Err(AnchorError::Config(
                "no RPC credentials (rpc_cookie or rpc_user)".into(),
            ))
        }
    };
    let mut rpc = RpcConfig::new(config.rpc_url.clone(), auth);
    rpc.retries = 2;
    rpc.backoff = Duration::from_millis(200);
    Ok(BitcoinRpc::new(rpc)?)
}

/// What the anchorer last saw, for `POST /v1/anchor`.
#[derive(Debug, Default, Clone)]
struct PassState {
    last_error: Option<String>,
    bitcoin_height: Option<u64>,
    passes: u64,
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

fn version_of(a: &AnchorTx) -> AnchorVersion {
    AnchorVersion {
        txid: a.txid().to_byte_array(),
        raw_tx: serialize(&a.tx),
        fee_sat: a.fee.to_sat(),
        target_sat_per_kwu: a.target_fee_rate.to_sat_per_kwu(),
    }
}

/// The transaction of an anchor version.
pub fn version_tx(batch: u64, v: &AnchorVersion) -> Result<Transaction, AnchorError> {
    deserialize(&v.raw_tx).map_err(|e| AnchorError::Corrupt {
        batch,
        message: e.to_string(),
    })
}

/// `{txid, status, confirmations, block_hash, block_height, fee_sat, vsize, versions}` of an
/// anchor record, as served in `GET /v1/batches/{n}`.
pub fn anchor_json(rec: &AnchorRecord) -> Value {
    let cur = rec.current();
    let vsize = version_tx(rec.batch, cur).map(|t| t.vsize()).ok();
    json!({
        "txid": txid_hex(&cur.txid),
        "status": rec.status.as_str(),
        "confirmations": rec.confirmations,
        "block_hash": rec.block_hash.as_ref().map(txid_hex),
        "block_height": rec.block_height,
        "fee_sat": cur.fee_sat,
        "vsize": vsize,
        "versions": rec.versions.iter().map(|v| txid_hex(&v.txid)).collect::<Vec<_>>(),
    })
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
            .count() as u64;
        let m = &self.node.metrics;
        m.anchored_height.store(anchored, Ordering::Relaxed);
        m.anchor_signed_height
            .store(records.len() as u64, Ordering::Relaxed);
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
        let node = self.node.clone();
        let mut records = blocking(move || node.anchors_from(0)).await?;

        // 2. Follow every anchor that could still move.
        let k = self.settings.confirmations;
        for rec in records.iter_mut() {
            if rec.status == AnchorStatus::Anchored && rec.confirmations >= k + REORG_WATCH {
                continue;
            }
            self.refresh(rec, tip).await?;
        }
        self.update_heights(&records);

        // 3. Fee-bump the newest anchor if it is stuck.
        if let Some(last) = records.last_mut() {
            self.maybe_bump(last, tip).await?;
        }

        // 4. Anchor the next proven batch once the previous anchor is in the best chain.
        let next = records.len() as u64;
        let proven = self.node.state_view().proven_height;
        let ready = match records.last() {
            None => true,
            Some(prev) => matches!(
                prev.status,
                AnchorStatus::Confirmed | AnchorStatus::Anchored
            ),
        };
        if next < proven && ready {
            let rec = self.anchor_batch(next, records.last(), tip).await?;
            records.push(rec);
            self.update_heights(&records);
        }
        Ok(())
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

    async fn refresh(&self, rec: &mut AnchorRecord, tip: u64) -> Result<(), AnchorError> {
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
                rec.confirmed = Some(i);
                rec.block_hash = Some(hash.to_byte_array());
                rec.block_height = Some((tip + 1).saturating_sub(confs));
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
                if rec.status != AnchorStatus::Signed {
                    tracing::warn!(batch = rec.batch, txid = %tx.compute_txid(), "anchor unknown to the bitcoin node; re-broadcasting");
                }
                rec.status = AnchorStatus::Signed;
                rec.block_hash = None;
                rec.block_height = None;
                rec.confirmations = 0;
                if *rec != before {
                    self.store(rec).await?;
                }
                self.broadcast(rec.batch, &tx).await?;
                rec.status = AnchorStatus::Unconfirmed;
                rec.broadcast_height = Some(tip);
            }
        }
        if *rec != before {
            self.store(rec).await?;
        }
        Ok(())
    }

    /// `testmempoolaccept`, then `sendrawtransaction`; a transaction the mempool already holds
    /// counts as sent.
    async fn broadcast(&self, batch: u64, tx: &Transaction) -> Result<(), AnchorError> {
        let txid = tx.compute_txid();
        let known = |reason: &str| reason.contains("already");
        let accept = self.rpc.test_mempool_accept(tx).await?;
        if !accept.allowed {
            let reason = accept.reject_reason.unwrap_or_default();
            if !known(&reason) {
                return Err(RpcError::Rejected { txid, reason }.into());
            }
        } else {
            match self.rpc.send_raw_transaction(tx).await {
                Ok(_) => {}
                Err(RpcError::Rejected { reason, .. }) if known(&reason) => {}
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

    fn anchor_tx(&self, rec: &AnchorRecord, i: usize) -> Result<AnchorTx, AnchorError> {
        let v = &rec.versions[i];
        let tx = version_tx(rec.batch, v)?;
        let corrupt = |message: &str| AnchorError::Corrupt {
            batch: rec.batch,
            message: message.to_owned(),
        };
        if tx.input.len() != 1 || tx.output.len() != 2 {
            return Err(corrupt("not a one-input, two-output anchor"));
        }
        let change_kind = self
            .key
            .kind_of(&tx.output[1].script_pubkey)
            .ok_or_else(|| corrupt("change is not the operator's"))?;
        Ok(AnchorTx {
            prev: PrevOut {
                outpoint: tx.input[0].previous_output,
                txout: TxOut {
                    value: Amount::from_sat(rec.prev_value_sat),
                    script_pubkey: ScriptBuf::from_bytes(rec.prev_script.clone()),
                },
            },
            payload: AnchorPayload::from_tx(&tx)?,
            change_kind,
            fee: Amount::from_sat(v.fee_sat),
            target_fee_rate: FeeRate::from_sat_per_kwu(v.target_sat_per_kwu),
            tx,
        })
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
        let last = self.anchor_tx(rec, rec.versions.len() - 1)?;
        if last.target_fee_rate >= self.settings.max_fee_rate {
            tracing::warn!(batch = rec.batch, "anchor stuck at the maximum fee rate");
            return Ok(());
        }
        let policy = self.settings.fee.fee_rate(&self.rpc).await?;
        let doubled = FeeRate::from_sat_per_kwu(last.target_fee_rate.to_sat_per_kwu() * 2);
        let rate = policy.max(doubled).min(self.settings.max_fee_rate);
        let bumped = last.bump_fee(&self.key, rate)?;
        tracing::info!(
            batch = rec.batch,
            old = %last.txid(),
            new = %bumped.txid(),
            old_fee = last.fee.to_sat(),
            new_fee = bumped.fee.to_sat(),
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
        self.broadcast(rec.batch, &bumped.tx).await?;
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

    async fn anchor_batch(
        &self,
        n: u64,
        prev_rec: Option<&AnchorRecord>,
        tip: u64,
    ) -> Result<AnchorRecord, AnchorError> {
        let prev = match prev_rec {
            None => self.genesis_prevout().await?,
            Some(p) => {
                let i = p.confirmed.unwrap_or(p.versions.len() - 1);
                self.anchor_tx(p, i)?.change()
            }
        };
        let node = self.node.clone();
        let view = blocking(move || node.batch(n))
            .await?
            .ok_or_else(|| AnchorError::Corrupt {
                batch: n,
                message: "batch missing".into(),
            })?;
        let proof = view.proof.ok_or_else(|| AnchorError::Corrupt {
            batch: n,
            message: "proof missing".into(),
        })?;
        let pi = view.record.public_inputs;
        let payload = AnchorPayload::new(n, pi.new_state_root, &proof, &pi.batch_hash)?;
        let rate = self.settings.fee.fee_rate(&self.rpc).await?;
        let anchor = build_anchor_tx(&self.key, &prev, &payload, self.settings.kind, rate)?;
        let mut rec = AnchorRecord {
            batch: n,
            prev_value_sat: prev.txout.value.to_sat(),
            prev_script: prev.txout.script_pubkey.to_bytes(),
            versions: vec![version_of(&anchor)],
            status: AnchorStatus::Signed,
            confirmed: None,
            block_hash: None,
            block_height: None,
            confirmations: 0,
            broadcast_height: None,
        };
        // Durable before broadcast: a crash from here on re-broadcasts this very transaction.
        let node = self.node.clone();
        let r = rec.clone();
        blocking(move || node.insert_anchor(&r)).await?;
        tracing::info!(
            batch = n,
            txid = %anchor.txid(),
            spends = %prev.outpoint,
            fee = anchor.fee.to_sat(),
            vsize = anchor.vsize(),
            "anchor signed and stored"
        );
        self.hit_failpoint("abort-after-persist");
        self.broadcast(n, &anchor.tx).await?;
        rec.status = AnchorStatus::Unconfirmed;
        rec.broadcast_height = Some(tip);
        self.store(&rec).await?;
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_refuse_bad_config() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = AnchorConfig {
            rpc_user: Some("u".into()),
            rpc_password: Some("p".into()),
            confirmations: 2,
            ..AnchorConfig::default()
        };
        // No genesis: the error names the operator address to fund.
        match load_settings(&c, dir.path()) {
            Err(AnchorError::Config(m)) => assert!(m.contains("bcrt1p"), "{m}"),
            other => panic!("expected a config error, got {other:?}"),
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("operator.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let txid = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";
        c.genesis = Some(format!("{txid}:1"));
        let (key, s) = load_settings(&c, dir.path()).unwrap();
        assert_eq!(s.genesis.vout, 1);
        assert_eq!(s.confirmations, 2);
        assert_eq!(s.network, Network::Regtest);
        assert_eq!(s.kind, KeyKind::P2tr);
        // Same key on reload.
        let (again, _) = load_settings(&c, dir.path()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        for bad in [
            AnchorConfig {
                network: "moon".into(),
                ..c.clone()
            },
            AnchorConfig {
                key_kind: "p2sh".into(),
                ..c.clone()
            },
            AnchorConfig {
                genesis: Some("nope".into()),
                ..c.clone()
            },
            AnchorConfig {
                confirmations: 0,
                ..c.clone()
            },
            AnchorConfig {
                rpc_user: None,
                ..c.clone()
            },
            AnchorConfig {
                fee_rate: Some(0),
                ..c.clone()
            },
        ] {
            assert!(load_settings(&bad, dir.path()).is_err(), "{bad:?}");
        }
        // A mainnet node refuses a key file made for a test network.
        let main = AnchorConfig {
            network: "mainnet".into(),
            ..c.clone()
        };
        assert!(matches!(
            load_settings(&main, dir.path()),
            Err(AnchorError::Key(OperatorKeyError::WrongNetwork { .. }))
        ));
        assert!(parse_network("signet").is_ok() && parse_network("testnet4").is_ok());
    }
}
