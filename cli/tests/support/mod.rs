//! Shared helpers of the regtest anchoring suites (`anchor_regtest.rs`, `anchor_deep_reorg.rs`,
//! `settlement_regtest.rs`):
//! a throwaway regtest Bitcoin Core with a funded operator key ([`Chain`], on the verifier's
//! harness `bitcoin/tests/support/bitcoind.rs`), the real `veil node` process with anchoring
//! configured ([`NodeProc`], B = 2, D = 8, dev-seed keys cached under the target dir), the `veil`
//! binary, and the check that every batch is anchored in one chain of spends.

#![allow(dead_code)]

#[path = "../../../bitcoin/tests/support/bitcoind.rs"]
pub mod bitcoind;
#[path = "../node_process/mod.rs"]
pub mod node_process;
#[path = "../veil_bin/mod.rs"]
pub mod veil_bin;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bitcoin::key::Keypair;
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{Address, Amount, Network, OutPoint, ScriptBuf, Transaction, TxOut, Txid};
use bitcoind::{Bitcoind, RPC_PASSWORD, RPC_USER};
// Not every suite that includes this module starts a node.
#[allow(unused_imports)]
pub use node_process::{free_port, NodeProcess};
use serde_json::Value;
#[allow(unused_imports)]
pub use veil_bin::{text, veil};
use veil_bitcoin::package::read_package;
use veil_bitcoin::payload::AnchorPayloadV2;
use veil_bitcoin::spend::pay_from_coin;
use veil_bitcoin::{KeyKind, OperatorKey};
use veil_circuits::batch::BatchShape;
use veil_fixtures::Scenario;
use veil_wallet::client::BatchInfo;
use veil_wallet::NodeClient;
use veil_wire::TransferRequest;

/// The node's operator token.
pub const TOKEN: &str = "anchor-test-token";
/// Generous: a loaded 2-core machine takes minutes to load even a B = 2 proving key.
pub const TIMEOUT: Duration = Duration::from_secs(400);

/// B = 2, D = 8.
pub fn shape() -> BatchShape {
    BatchShape::new(2, 8).unwrap()
}

/// Dev keys (seed 1) for B = 2, D = 8 under the target dir; returns their directory.
pub fn keys_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        veil_prover::load_or_setup_dev_keys(tmp, shape(), 1).expect("dev keys");
        tmp.join("dev-seed-1")
    })
}

/// Runs `veil args`, asserts exit 0 and returns its stdout as JSON.
pub fn ok_json(args: &[&str]) -> Value {
    let out = veil(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "veil {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("veil {args:?}: {e}: {}", text(&out.stdout)))
}

/// `GET url` as JSON.
pub fn get_json(url: &str) -> Value {
    reqwest::blocking::get(url).unwrap().json().unwrap()
}

/// A regtest node with a funded operator key: the coinbase of block 1 (mined to the operator,
/// matured by 100 more blocks) is the genesis outpoint.
pub struct Chain {
    pub rt: tokio::runtime::Runtime,
    pub btc: Bitcoind,
    pub tmp: tempfile::TempDir,
    pub key: OperatorKey,
    pub key_file: PathBuf,
    pub genesis: OutPoint,
    pub miner: Address,
}

impl Chain {
    pub fn start(test: &str, kind: KeyKind) -> Option<Chain> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let btc = rt.block_on(Bitcoind::start_or_skip(test))?;
        let tmp = tempfile::tempdir().unwrap();
        let key = OperatorKey::from_secret_bytes(&[0x11; 32]).unwrap();
        let key_file = tmp.path().join("operator.key");
        key.save(&key_file, Network::Regtest).unwrap();
        let miner = OperatorKey::from_secret_bytes(&[0x22; 32])
            .unwrap()
            .address(KeyKind::P2wpkh, Network::Regtest);
        let addr = key.address(kind, Network::Regtest);
        let hashes = rt
            .block_on(btc.rpc.generate_to_address(101, &addr))
            .unwrap();
        let block = rt.block_on(btc.rpc.get_block(&hashes[0])).unwrap();
        let genesis = OutPoint::new(block.txdata[0].compute_txid(), 0);
        Some(Chain {
            rt,
            btc,
            tmp,
            key,
            key_file,
            genesis,
            miner,
        })
    }

    pub fn mine(&self, n: u64) {
        self.rt
            .block_on(self.btc.rpc.generate_to_address(n, &self.miner))
            .unwrap();
    }

    /// Mines one block holding exactly `txids` (from the mempool); returns its hash.
    pub fn mine_only(&self, txids: &[Txid]) -> String {
        self.rt
            .block_on(self.btc.rpc.generate_block(&self.miner, txids))
            .unwrap()
            .to_string()
    }

    /// Height of the best chain.
    pub fn tip(&self) -> u64 {
        self.rt.block_on(self.btc.rpc.get_block_count()).unwrap()
    }

    /// `invalidateblock` of the block with this hash (hex): it and every block after it leave
    /// the best chain.
    pub fn invalidate(&self, block_hash: &str) {
        let hash = bitcoin::BlockHash::from_str(block_hash).unwrap();
        self.rt
            .block_on(self.btc.rpc.invalidate_block(&hash))
            .unwrap();
    }

    /// Runs `veil verify-chain` against `node` and asserts it exits 0.
    pub fn assert_chain_verifies(&self, node: &str) {
        let out = self.verify_chain(node, Some(&self.genesis.to_string()));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    pub fn mempool(&self) -> Vec<Txid> {
        self.rt.block_on(self.btc.rpc.get_raw_mempool()).unwrap()
    }

    pub fn tx(&self, txid: &str) -> veil_bitcoin::rpc::RawTransaction {
        let txid = Txid::from_str(txid).unwrap();
        self.rt
            .block_on(self.btc.rpc.get_raw_transaction(&txid))
            .unwrap()
            .unwrap_or_else(|| panic!("{txid} unknown to bitcoind"))
    }

    /// The node's TOML config (anchoring on, polling fast; the operator's attested deposits
    /// on unless `extra` sets `attested_deposits`).
    pub fn config(&self, data: &Path, port: u16, extra: &str) -> PathBuf {
        let path = data.with_extension("toml");
        let attested = if extra.contains("attested_deposits") {
            ""
        } else {
            "attested_deposits = true\n"
        };
        let toml = format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\nbatch_size = 2\ndepth = 8\n\
             keys_dir = {keys:?}\nmax_wait_ms = 100\noperator_token = \"{TOKEN}\"\n\n\
             [anchor]\nrpc_url = \"{url}\"\nrpc_user = \"{RPC_USER}\"\nrpc_password = \"{RPC_PASSWORD}\"\n\
             network = \"regtest\"\nkey_file = {key:?}\npoll_ms = 150\nretry_max_ms = 1000\n{attested}{extra}",
            keys = keys_dir(),
            url = self.btc.url,
            key = self.key_file,
        );
        std::fs::write(&path, toml).unwrap();
        path
    }

    /// Runs `veil <command> --genesis G --vk KEYS --bitcoin-rpc URL --rpc-user U --rpc-password P`:
    /// a command that reads this chain from Bitcoin alone (`verify-chain --from-bitcoin`,
    /// `restore --from-bitcoin`).
    pub fn veil_from_bitcoin(&self, command: &[&str]) -> Output {
        let keys = keys_dir().to_str().unwrap().to_owned();
        let genesis = self.genesis.to_string();
        let mut args = command.to_vec();
        args.extend([
            "--genesis",
            &genesis,
            "--vk",
            &keys,
            "--bitcoin-rpc",
            &self.btc.url,
            "--rpc-user",
            RPC_USER,
            "--rpc-password",
            RPC_PASSWORD,
        ]);
        veil(&args)
    }

    /// `veil verify-chain --from-bitcoin --allow-attested` of this chain (its deposits are the
    /// operator's word): its exit code and its output (stdout, then stderr).
    pub fn verify_from_bitcoin(&self) -> (Option<i32>, String) {
        self.verify_from_bitcoin_with(&["--allow-attested"])
    }

    /// `veil verify-chain --from-bitcoin` with `extra` arguments.
    pub fn verify_from_bitcoin_with(&self, extra: &[&str]) -> (Option<i32>, String) {
        let mut args = vec!["verify-chain", "--from-bitcoin"];
        args.extend_from_slice(extra);
        let out = self.veil_from_bitcoin(&args);
        (
            out.status.code(),
            format!("{}{}", text(&out.stdout), text(&out.stderr)),
        )
    }

    pub fn verify_chain(&self, node: &str, genesis: Option<&str>) -> Output {
        let keys = keys_dir().to_str().unwrap().to_owned();
        let mut args = vec![
            "verify-chain",
            "--node",
            node,
            "--bitcoin-rpc",
            &self.btc.url,
            "--rpc-user",
            RPC_USER,
            "--rpc-password",
            RPC_PASSWORD,
            "--vk",
            &keys,
        ];
        if let Some(g) = genesis {
            args.extend(["--genesis", g]);
        }
        veil(&args)
    }
}

/// A Bitcoin user's wallet: one P2TR key (secret `[seed; 32]`), funded by a mature coinbase;
/// each payment spends the last change (the prebuilt Bitcoin Core has no wallet).
pub struct BtcUser {
    keypair: Keypair,
    pub address: Address,
    coin: (OutPoint, TxOut),
    sent: Vec<Transaction>,
}

impl BtcUser {
    pub fn funded(chain: &Chain, seed: u8) -> BtcUser {
        let secp = Secp256k1::new();
        let keypair = Keypair::from_seckey_slice(&secp, &[seed; 32]).unwrap();
        let address = Address::p2tr(&secp, keypair.x_only_public_key().0, None, Network::Regtest);
        let hashes = chain
            .rt
            .block_on(chain.btc.rpc.generate_to_address(101, &address))
            .unwrap();
        let block = chain
            .rt
            .block_on(chain.btc.rpc.get_block(&hashes[0]))
            .unwrap();
        let cb = &block.txdata[0];
        let coin = (OutPoint::new(cb.compute_txid(), 0), cb.output[0].clone());
        BtcUser {
            keypair,
            address,
            coin,
            sent: Vec::new(),
        }
    }

    /// Pays `outputs` (script, sat) from the last coin, change last (2,000 sat fee), signs
    /// with a BIP 341 key-path signature and broadcasts. Output `i` is `outputs[i]`.
    pub fn pay(&mut self, chain: &Chain, outputs: &[(ScriptBuf, u64)]) -> Txid {
        let (prev, prev_out) = &self.coin;
        let output = outputs
            .iter()
            .map(|(script, v)| TxOut {
                value: Amount::from_sat(*v),
                script_pubkey: script.clone(),
            })
            .collect();
        let tx = pay_from_coin(
            &self.keypair,
            (*prev, prev_out),
            output,
            Amount::from_sat(2_000),
        )
        .unwrap();
        let txid = chain
            .rt
            .block_on(chain.btc.rpc.send_raw_transaction(&tx))
            .unwrap();
        let last = tx.output.len() - 1;
        self.coin = (OutPoint::new(txid, last as u32), tx.output[last].clone());
        self.sent.push(tx);
        txid
    }

    /// Re-broadcasts every payment not in a block of the best chain, as a wallet does after a
    /// reorg.
    pub fn rebroadcast(&self, chain: &Chain) {
        for tx in &self.sent {
            let held = chain
                .rt
                .block_on(chain.btc.rpc.get_raw_transaction(&tx.compute_txid()))
                .unwrap()
                .is_some_and(|rt| rt.blockhash.is_none() || rt.confirmations > 0);
            if !held {
                chain
                    .rt
                    .block_on(chain.btc.rpc.send_raw_transaction(tx))
                    .unwrap();
            }
        }
    }
}

/// The `veil node` process, killed when dropped.
pub struct NodeProc {
    pub process: NodeProcess,
    pub url: String,
    pub client: NodeClient,
}

impl NodeProc {
    pub fn start(config: &Path, port: u16, extra_args: &[&str], env: &[(&str, &str)]) -> NodeProc {
        let log = config.with_extension(format!("{port}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_veil"));
        cmd.arg("node")
            .arg("--config")
            .arg(config)
            .args(extra_args)
            // Not plain `info`: ark-relations would Debug-format whole constraint systems.
            .env("RUST_LOG", "warn,veil_sequencer=info,veil_bitcoin=info")
            .env_remove("VEIL_OPERATOR_TOKEN")
            .stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let process = NodeProcess::spawn_on(cmd, port, log, TIMEOUT);
        let url = format!("http://127.0.0.1:{port}");
        NodeProc {
            process,
            client: NodeClient::new(&url).unwrap(),
            url,
        }
    }

    /// The node's log so far, without terminal colour codes.
    pub fn log(&self) -> String {
        self.process.log()
    }

    pub fn assert_running(&mut self) {
        self.process.assert_running();
    }

    /// The node process (to wait for an exit the test expects).
    pub fn child(&mut self) -> &mut Child {
        self.process.child()
    }

    pub fn deposit(
        &self,
        sc: &mut Scenario,
        to: &veil_circuits::SpendingKey,
        value: u64,
    ) -> String {
        let t = sc.deposit(to, value);
        let id = self
            .client
            .deposit(&TransferRequest::from(&t), TOKEN)
            .unwrap()
            .0;
        sc.apply(std::slice::from_ref(&t)).unwrap();
        id
    }

    pub fn batch(&self, n: u64) -> BatchInfo {
        self.client.batch(n).unwrap()
    }

    pub fn metrics(&self) -> String {
        reqwest::blocking::get(format!("{}/metrics", self.url))
            .unwrap()
            .text()
            .unwrap()
    }

    pub fn post_anchor(&self) -> Value {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/v1/anchor", self.url))
            .bearer_auth(TOKEN)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        r.json().unwrap()
    }

    /// Polls `cond` (every 100 ms, running `step` first) until it holds.
    pub fn wait(
        &mut self,
        what: &str,
        mut step: impl FnMut(),
        mut cond: impl FnMut(&Self) -> bool,
    ) {
        let start = Instant::now();
        loop {
            self.assert_running();
            step();
            if cond(self) {
                return;
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "timed out waiting for {what}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until an anchoring pass that saw Bitcoin at height `tip` has finished (passes
    /// run one at a time; `POST /v1/anchor` asks for one).
    pub fn wait_for_pass_at(&mut self, tip: u64) {
        let mut seen_at: Option<u64> = None;
        self.wait(
            &format!("an anchoring pass at bitcoin height {tip}"),
            || {},
            |n| {
                let s = n.post_anchor();
                let passes = s["passes"].as_u64().unwrap();
                match seen_at {
                    Some(p) => passes > p,
                    None => {
                        if s["bitcoin_height"] == tip {
                            seen_at = Some(passes);
                        }
                        false
                    }
                }
            },
        );
    }

    pub fn anchored(&self, n: u64) -> bool {
        self.client
            .batch(n)
            .ok()
            .and_then(|b| b.anchor)
            .is_some_and(|a| a.status == "anchored")
    }
}

/// Checks batches `0..n` are anchored on the chain with the right payloads (version 2: a
/// range of batches, its last root, its data in the envelope the anchor reveals), each
/// package's commit spending the previous anchor's change (the first, the genesis outpoint).
/// Returns each batch's anchor txid.
pub fn check_anchor_chain(chain: &Chain, node: &NodeProc, n: u64) -> Vec<Txid> {
    let mut txids = Vec::new();
    let mut spends = chain.genesis;
    let mut i = 0;
    while i < n {
        let b = node.batch(i);
        let a = b
            .anchor
            .clone()
            .unwrap_or_else(|| panic!("batch {i} has no anchor"));
        let rt = chain.tx(&a.txid);
        assert!(rt.confirmations >= 1, "anchor of batch {i} unconfirmed");
        assert_eq!(
            rt.blockhash.map(|h| h.to_string()),
            a.block_hash,
            "batch {i}"
        );
        let p = AnchorPayloadV2::from_tx(&rt.tx).unwrap();
        assert_eq!(p.first_batch, i);
        let last = node.batch(p.last_batch());
        assert_eq!(p.new_state_root, last.public_inputs.new_state_root);
        assert_eq!(rt.tx.input.len(), 1);
        assert!(rt.tx.input[0].sequence.is_rbf());
        let commit = chain.tx(&rt.tx.input[0].previous_output.txid.to_string());
        assert_eq!(commit.tx.input[0].previous_output, spends, "batch {i}");
        let contents = read_package(&commit.tx, &[], &rt.tx).unwrap();
        assert_eq!(contents.payload, p);
        let txid = rt.tx.compute_txid();
        assert_eq!(txid.to_string(), a.txid);
        for m in i..=p.last_batch() {
            let named = node.batch(m).anchor.map(|a| a.txid);
            assert_eq!(named, Some(a.txid.clone()), "batch {m}");
            txids.push(txid);
        }
        spends = OutPoint::new(txid, 1);
        i = p.last_batch() + 1;
    }
    txids
}
