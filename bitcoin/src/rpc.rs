//! An async Bitcoin Core JSON-RPC client for anchoring: user/password or cookie-file auth,
//! request timeouts, retries with exponential backoff for transient failures (node down, busy or
//! warming up), and typed errors for an unreachable node, the wrong chain and rejected
//! transactions. Only the calls anchoring and its tests need are here.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::{
    Address, Amount, Block, BlockHash, FeeRate, Network, OutPoint, ScriptBuf, Transaction, Txid,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

/// Core's `RPC_INVALID_ADDRESS_OR_KEY`: unknown transaction or block.
const RPC_INVALID_ADDRESS_OR_KEY: i64 = -5;
/// Core's `RPC_IN_WARMUP`: the node is starting; retried.
const RPC_IN_WARMUP: i64 = -28;
/// Core's `RPC_VERIFY_ERROR`, `RPC_VERIFY_REJECTED`, `RPC_VERIFY_ALREADY_IN_CHAIN`.
const RPC_VERIFY_CODES: [i64; 3] = [-25, -26, -27];

/// How to authenticate to the node.
#[derive(Clone)]
pub enum RpcAuth {
    /// `-rpcuser` / `-rpcpassword` (or an `-rpcauth` entry).
    UserPass {
        /// User name.
        user: String,
        /// Password (never logged).
        password: String,
    },
    /// The node's `.cookie` file (`user:password`), re-read on every request because the node
    /// writes a new one each time it starts.
    CookieFile(PathBuf),
}

impl std::fmt::Debug for RpcAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcAuth::UserPass { user, .. } => write!(f, "UserPass({user}, <redacted>)"),
            RpcAuth::CookieFile(p) => write!(f, "CookieFile({})", p.display()),
        }
    }
}

/// Where the node is and how patiently to talk to it.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// `http://host:port` (with a `/wallet/...` path if ever needed).
    pub url: String,
    /// Credentials.
    pub auth: RpcAuth,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Retries after the first attempt for transient failures.
    pub retries: u32,
    /// Wait before the first retry; doubles on each further retry.
    pub backoff: Duration,
}

impl RpcConfig {
    /// Defaults: 30 s per request, 3 retries, 250 ms initial backoff.
    pub fn new(url: impl Into<String>, auth: RpcAuth) -> Self {
        Self {
            url: url.into(),
            auth,
            timeout: Duration::from_secs(30),
            retries: 3,
            backoff: Duration::from_millis(250),
        }
    }
}

/// A call to the node failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// No connection could be made (after retrying).
    #[error("bitcoin node at {url} is unreachable after {attempts} attempts: {message}")]
    NodeDown {
        /// The node's URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last transport error.
        message: String,
    },
    /// The node did not answer in time (after retrying).
    #[error(
        "bitcoin node at {url} did not answer {method} within {timeout:?} ({attempts} attempts)"
    )]
    Timeout {
        /// The node's URL.
        url: String,
        /// The call.
        method: String,
        /// Per-request timeout.
        timeout: Duration,
        /// Attempts made.
        attempts: u32,
    },
    /// HTTP 401/403: wrong user, password or cookie.
    #[error("bitcoin node at {url} rejected the RPC credentials")]
    Unauthorized {
        /// The node's URL.
        url: String,
    },
    /// The cookie file could not be read or is malformed.
    #[error("RPC cookie file {path}: {message}")]
    Cookie {
        /// The cookie file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The node runs another chain than the one configured.
    #[error("bitcoin node is on chain {found:?}, expected {expected:?}")]
    WrongChain {
        /// Core's name of the configured chain (`main`, `test`, `testnet4`, `signet`, `regtest`).
        expected: String,
        /// The node's chain.
        found: String,
    },
    /// The node refused a transaction (`sendrawtransaction` error, or `testmempoolaccept` not
    /// allowed).
    #[error("transaction {txid} rejected by the node: {reason}")]
    Rejected {
        /// The transaction.
        txid: Txid,
        /// Core's reason, e.g. `insufficient fee` or `bad-txns-inputs-missingorspent`.
        reason: String,
    },
    /// Any other JSON-RPC error.
    #[error("RPC {method} failed (code {code}): {message}")]
    Rpc {
        /// The call.
        method: String,
        /// Core's error code.
        code: i64,
        /// Core's message.
        message: String,
    },
    /// A non-JSON HTTP error.
    #[error("RPC {method}: HTTP {status}: {body}")]
    Http {
        /// The call.
        method: String,
        /// HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// The result did not have the expected shape.
    #[error("RPC {method}: unexpected response: {detail}")]
    BadResponse {
        /// The call.
        method: String,
        /// What did not parse.
        detail: String,
    },
}

/// `getblockchaininfo` (the fields anchoring uses).
#[derive(Debug, Clone, Deserialize)]
pub struct BlockchainInfo {
    /// `main`, `test`, `testnet4`, `signet` or `regtest`.
    pub chain: String,
    /// Height of the best validated block.
    pub blocks: u64,
    /// Height of the best known header.
    pub headers: u64,
    /// Tip.
    pub bestblockhash: BlockHash,
    /// Whether the node is still syncing.
    pub initialblockdownload: bool,
}

/// A transaction found by `getrawtransaction` (verbose).
#[derive(Debug, Clone)]
pub struct RawTransaction {
    /// The decoded transaction.
    pub tx: Transaction,
    /// The block holding it (None while in the mempool).
    pub blockhash: Option<BlockHash>,
    /// Confirmations (0 while in the mempool).
    pub confirmations: u64,
}

/// A block header as `getblockheader` reports it (the fields reorg detection uses).
#[derive(Debug, Clone, Deserialize)]
pub struct BlockHeaderInfo {
    /// The block.
    pub hash: BlockHash,
    /// Its height.
    pub height: u64,
    /// Confirmations in the best chain; -1 when the block is not in the best chain (a reorg
    /// took it out, or it was invalidated).
    pub confirmations: i64,
    /// Its parent (absent only for the genesis block).
    #[serde(rename = "previousblockhash")]
    pub previous: Option<BlockHash>,
}

impl BlockHeaderInfo {
    /// Whether the block is in the node's best chain.
    pub fn in_best_chain(&self) -> bool {
        self.confirmations >= 1
    }
}

/// One `testmempoolaccept` result.
#[derive(Debug, Clone)]
pub struct MempoolAccept {
    /// The transaction.
    pub txid: Txid,
    /// Whether the mempool would take it.
    pub allowed: bool,
    /// Why not, if not.
    pub reject_reason: Option<String>,
    /// Its virtual size, if allowed.
    pub vsize: Option<u64>,
    /// Its fee, if allowed.
    pub fee: Option<Amount>,
}

/// An unspent output found by `gettxout`.
#[derive(Debug, Clone)]
pub struct TxOutInfo {
    /// Tip at the time of the call.
    pub bestblock: BlockHash,
    /// Confirmations (0 if only in the mempool).
    pub confirmations: u64,
    /// Value.
    pub value: Amount,
    /// Locking script.
    pub script_pubkey: ScriptBuf,
    /// Whether it is a coinbase output.
    pub coinbase: bool,
}

/// A Bitcoin Core JSON-RPC client.
#[derive(Debug)]
pub struct BitcoinRpc {
    config: RpcConfig,
    http: reqwest::Client,
    next_id: AtomicU64,
}

enum Attempt {
    Done(Value),
    Retry(RpcError),
}

impl BitcoinRpc {
    /// A client for `config` (no request is made yet).
    pub fn new(config: RpcConfig) -> Result<Self, RpcError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| RpcError::NodeDown {
                url: config.url.clone(),
                attempts: 0,
                message: format!("HTTP client: {e}"),
            })?;
        Ok(Self {
            config,
            http,
            next_id: AtomicU64::new(1),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RpcConfig {
        &self.config
    }

    fn credentials(&self) -> Result<(String, String), RpcError> {
        match &self.config.auth {
            RpcAuth::UserPass { user, password } => Ok((user.clone(), password.clone())),
            RpcAuth::CookieFile(path) => {
                let cookie = |message: String| RpcError::Cookie {
                    path: path.clone(),
                    message,
                };
                let text = std::fs::read_to_string(path).map_err(|e| cookie(e.to_string()))?;
                let (user, password) = text
                    .trim()
                    .split_once(':')
                    .ok_or_else(|| cookie("not of the form user:password".into()))?;
                Ok((user.to_owned(), password.to_owned()))
            }
        }
    }

    /// Calls `method` with `params` and decodes its result, retrying transient failures.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Vec<Value>,
    ) -> Result<T, RpcError> {
        let value = self.call_value(method, &params).await?;
        serde_json::from_value(value).map_err(|e| RpcError::BadResponse {
            method: method.to_owned(),
            detail: e.to_string(),
        })
    }

    async fn call_value(&self, method: &str, params: &[Value]) -> Result<Value, RpcError> {
        let attempts = self.config.retries + 1;
        let mut delay = self.config.backoff;
        let mut attempt = 1;
        loop {
            match self.attempt(method, params, attempts).await? {
                Attempt::Done(v) => return Ok(v),
                Attempt::Retry(err) if attempt < attempts => {
                    tracing::warn!(method, attempt, ?delay, error = %err, "bitcoin RPC failed, retrying");
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
                Attempt::Retry(err) => return Err(err),
            }
        }
    }

    /// A transport failure (send or body read) as the retryable error it stands for.
    fn transport_error(&self, method: &str, attempts: u32, e: &reqwest::Error) -> RpcError {
        if e.is_timeout() {
            RpcError::Timeout {
                url: self.config.url.clone(),
                method: method.to_owned(),
                timeout: self.config.timeout,
                attempts,
            }
        } else {
            RpcError::NodeDown {
                url: self.config.url.clone(),
                attempts,
                message: error_chain(e),
            }
        }
    }

    async fn attempt(
        &self,
        method: &str,
        params: &[Value],
        attempts: u32,
    ) -> Result<Attempt, RpcError> {
        let (user, password) = self.credentials()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "1.0", "id": id, "method": method, "params": params});
        tracing::debug!(method, id, "bitcoin RPC");
        let response = match self
            .http
            .post(&self.config.url)
            .basic_auth(user, Some(password))
            .json(&body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Ok(Attempt::Retry(self.transport_error(method, attempts, &e))),
        };
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(RpcError::Unauthorized {
                url: self.config.url.clone(),
            });
        }
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => return Ok(Attempt::Retry(self.transport_error(method, attempts, &e))),
        };
        let Ok(reply) = serde_json::from_str::<Value>(&text) else {
            let err = RpcError::Http {
                method: method.to_owned(),
                status: status.as_u16(),
                body: text.chars().take(200).collect(),
            };
            // 503: the node's RPC work queue is full.
            return if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                Ok(Attempt::Retry(err))
            } else {
                Err(err)
            };
        };
        match reply.get("error") {
            Some(e) if !e.is_null() => {
                let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
                let message = e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let err = RpcError::Rpc {
                    method: method.to_owned(),
                    code,
                    message,
                };
                if code == RPC_IN_WARMUP {
                    Ok(Attempt::Retry(err))
                } else {
                    Err(err)
                }
            }
            _ => Ok(Attempt::Done(
                reply.get("result").cloned().unwrap_or(Value::Null),
            )),
        }
    }

    /// `getblockchaininfo`.
    pub async fn get_blockchain_info(&self) -> Result<BlockchainInfo, RpcError> {
        self.call("getblockchaininfo", vec![]).await
    }

    /// Checks the node runs `network`'s chain, returning its chain info.
    pub async fn check_chain(&self, network: Network) -> Result<BlockchainInfo, RpcError> {
        let info = self.get_blockchain_info().await?;
        if info.chain != network.to_core_arg() {
            return Err(RpcError::WrongChain {
                expected: network.to_core_arg().to_owned(),
                found: info.chain,
            });
        }
        Ok(info)
    }

    /// `getblockcount`.
    pub async fn get_block_count(&self) -> Result<u64, RpcError> {
        self.call("getblockcount", vec![]).await
    }

    /// `getblockhash height`.
    pub async fn get_block_hash(&self, height: u64) -> Result<BlockHash, RpcError> {
        self.call("getblockhash", vec![json!(height)]).await
    }

    /// `getblock hash 0`, decoded.
    pub async fn get_block(&self, hash: &BlockHash) -> Result<Block, RpcError> {
        let hex: String = self
            .call("getblock", vec![json!(hash.to_string()), json!(0)])
            .await?;
        deserialize_hex(&hex).map_err(|e| RpcError::BadResponse {
            method: "getblock".into(),
            detail: e.to_string(),
        })
    }

    /// `getblockheader hash true`; `None` if the node knows no such block.
    pub async fn get_block_header(
        &self,
        hash: &BlockHash,
    ) -> Result<Option<BlockHeaderInfo>, RpcError> {
        match self
            .call("getblockheader", vec![json!(hash.to_string()), json!(true)])
            .await
        {
            Err(RpcError::Rpc { code, .. }) if code == RPC_INVALID_ADDRESS_OR_KEY => Ok(None),
            other => other.map(Some),
        }
    }

    /// `getrawtransaction txid true`; `None` if the node knows no such transaction (mempool, or
    /// chain with `-txindex`).
    pub async fn get_raw_transaction(
        &self,
        txid: &Txid,
    ) -> Result<Option<RawTransaction>, RpcError> {
        #[derive(Deserialize)]
        struct Verbose {
            hex: String,
            blockhash: Option<BlockHash>,
            confirmations: Option<u64>,
        }
        let v: Verbose = match self
            .call(
                "getrawtransaction",
                vec![json!(txid.to_string()), json!(true)],
            )
            .await
        {
            Err(RpcError::Rpc { code, .. }) if code == RPC_INVALID_ADDRESS_OR_KEY => {
                return Ok(None)
            }
            other => other?,
        };
        let tx = deserialize_hex(&v.hex).map_err(|e| RpcError::BadResponse {
            method: "getrawtransaction".into(),
            detail: e.to_string(),
        })?;
        Ok(Some(RawTransaction {
            tx,
            blockhash: v.blockhash,
            confirmations: v.confirmations.unwrap_or(0),
        }))
    }

    /// `getrawmempool`.
    pub async fn get_raw_mempool(&self) -> Result<Vec<Txid>, RpcError> {
        self.call("getrawmempool", vec![]).await
    }

    /// `testmempoolaccept [tx]`.
    pub async fn test_mempool_accept(&self, tx: &Transaction) -> Result<MempoolAccept, RpcError> {
        #[derive(Deserialize)]
        struct Fees {
            #[serde(with = "bitcoin::amount::serde::as_btc")]
            base: Amount,
        }
        #[derive(Deserialize)]
        struct Entry {
            txid: Txid,
            allowed: Option<bool>,
            vsize: Option<u64>,
            fees: Option<Fees>,
            #[serde(rename = "reject-reason")]
            reject_reason: Option<String>,
        }
        let mut entries: Vec<Entry> = self
            .call("testmempoolaccept", vec![json!([serialize_hex(tx)])])
            .await?;
        if entries.len() != 1 {
            return Err(RpcError::BadResponse {
                method: "testmempoolaccept".into(),
                detail: format!("{} results for one transaction", entries.len()),
            });
        }
        let e = entries.remove(0);
        Ok(MempoolAccept {
            txid: e.txid,
            allowed: e.allowed.unwrap_or(false),
            reject_reason: e.reject_reason,
            vsize: e.vsize,
            fee: e.fees.map(|f| f.base),
        })
    }

    /// `testmempoolaccept`, turning "not allowed" into [`RpcError::Rejected`].
    pub async fn ensure_mempool_accepts(
        &self,
        tx: &Transaction,
    ) -> Result<MempoolAccept, RpcError> {
        let result = self.test_mempool_accept(tx).await?;
        if !result.allowed {
            return Err(RpcError::Rejected {
                txid: result.txid,
                reason: result
                    .reject_reason
                    .unwrap_or_else(|| "not allowed (no reason given)".into()),
            });
        }
        Ok(result)
    }

    /// `sendrawtransaction tx`; a refusal is [`RpcError::Rejected`].
    pub async fn send_raw_transaction(&self, tx: &Transaction) -> Result<Txid, RpcError> {
        match self
            .call("sendrawtransaction", vec![json!(serialize_hex(tx))])
            .await
        {
            Err(RpcError::Rpc { code, message, .. }) if RPC_VERIFY_CODES.contains(&code) => {
                Err(RpcError::Rejected {
                    txid: tx.compute_txid(),
                    reason: message,
                })
            }
            other => other,
        }
    }

    /// `gettxout txid vout include_mempool`; `None` if spent or unknown.
    pub async fn get_tx_out(
        &self,
        outpoint: &OutPoint,
        include_mempool: bool,
    ) -> Result<Option<TxOutInfo>, RpcError> {
        #[derive(Deserialize)]
        struct Spk {
            hex: String,
        }
        #[derive(Deserialize)]
        struct Out {
            bestblock: BlockHash,
            confirmations: u64,
            #[serde(with = "bitcoin::amount::serde::as_btc")]
            value: Amount,
            #[serde(rename = "scriptPubKey")]
            script_pubkey: Spk,
            coinbase: bool,
        }
        let out: Option<Out> = self
            .call(
                "gettxout",
                vec![
                    json!(outpoint.txid.to_string()),
                    json!(outpoint.vout),
                    json!(include_mempool),
                ],
            )
            .await?;
        out.map(|o| {
            let script_pubkey =
                ScriptBuf::from_hex(&o.script_pubkey.hex).map_err(|e| RpcError::BadResponse {
                    method: "gettxout".into(),
                    detail: e.to_string(),
                })?;
            Ok(TxOutInfo {
                bestblock: o.bestblock,
                confirmations: o.confirmations,
                value: o.value,
                script_pubkey,
                coinbase: o.coinbase,
            })
        })
        .transpose()
    }

    /// `estimatesmartfee conf_target`; `None` when the node has no estimate yet (always on a
    /// fresh regtest chain).
    pub async fn estimate_smart_fee(&self, conf_target: u16) -> Result<Option<FeeRate>, RpcError> {
        #[derive(Deserialize)]
        struct Estimate {
            feerate: Option<f64>,
        }
        let e: Estimate = self
            .call("estimatesmartfee", vec![json!(conf_target)])
            .await?;
        Ok(e.feerate.map(btc_per_kvb_to_fee_rate))
    }

    /// `generatetoaddress n address` (regtest).
    pub async fn generate_to_address(
        &self,
        blocks: u64,
        address: &Address,
    ) -> Result<Vec<BlockHash>, RpcError> {
        self.call(
            "generatetoaddress",
            vec![json!(blocks), json!(address.to_string())],
        )
        .await
    }

    /// `generateblock address [txids]` (regtest): one block holding exactly these mempool
    /// transactions, in this order.
    pub async fn generate_block(
        &self,
        address: &Address,
        txids: &[Txid],
    ) -> Result<BlockHash, RpcError> {
        #[derive(Deserialize)]
        struct Generated {
            hash: BlockHash,
        }
        let txids: Vec<String> = txids.iter().map(Txid::to_string).collect();
        let g: Generated = self
            .call(
                "generateblock",
                vec![json!(address.to_string()), json!(txids)],
            )
            .await?;
        Ok(g.hash)
    }

    /// `invalidateblock hash`.
    pub async fn invalidate_block(&self, hash: &BlockHash) -> Result<(), RpcError> {
        self.call::<Value>("invalidateblock", vec![json!(hash.to_string())])
            .await
            .map(drop)
    }

    /// `reconsiderblock hash`.
    pub async fn reconsider_block(&self, hash: &BlockHash) -> Result<(), RpcError> {
        self.call::<Value>("reconsiderblock", vec![json!(hash.to_string())])
            .await
            .map(drop)
    }

    /// `stop`.
    pub async fn stop(&self) -> Result<(), RpcError> {
        self.call::<Value>("stop", vec![]).await.map(drop)
    }
}

/// Where an anchor's fee rate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeePolicy {
    /// A configured rate.
    Fixed(FeeRate),
    /// `estimatesmartfee conf_target`, or `fallback` while the node has no estimate.
    Estimate {
        /// Target confirmation within this many blocks.
        conf_target: u16,
        /// Rate used when the node cannot estimate (e.g. regtest).
        fallback: FeeRate,
    },
}

impl FeePolicy {
    /// The rate to use now, clamped to the range anchors accept
    /// ([`super::tx::MIN_FEE_RATE`]..=[`super::tx::MAX_FEE_RATE`]).
    pub async fn fee_rate(&self, rpc: &BitcoinRpc) -> Result<FeeRate, RpcError> {
        let rate = match *self {
            FeePolicy::Fixed(rate) => rate,
            FeePolicy::Estimate {
                conf_target,
                fallback,
            } => match rpc.estimate_smart_fee(conf_target).await? {
                Some(rate) => rate,
                None => {
                    tracing::info!(conf_target, fallback = %fallback.to_sat_per_vb_ceil(), "no fee estimate, using the fallback rate (sat/vB)");
                    fallback
                }
            },
        };
        Ok(rate.clamp(super::tx::MIN_FEE_RATE, super::tx::MAX_FEE_RATE))
    }
}

/// Core's BTC/kvB as a fee rate, rounded up to whole sat/kwu.
pub fn btc_per_kvb_to_fee_rate(btc_per_kvb: f64) -> FeeRate {
    let sat_per_kvb = (btc_per_kvb * 1e8).round().max(0.0) as u64;
    FeeRate::from_sat_per_kwu(sat_per_kvb.div_ceil(4))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests;
