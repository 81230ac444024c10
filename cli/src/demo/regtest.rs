//! The demo's throwaway regtest Bitcoin Core and its Bitcoin user. [`find_bitcoind`] looks for
//! the binary as the regtest tests do (`$VEIL_BITCOIND`, then `bitcoind` on `PATH`, then the
//! `make bitcoind` cache). [`Bitcoind::start`] runs it as a child process in its own process
//! group (a terminal's Ctrl-C reaches only the demo, which then stops it) with a datadir in the
//! demo's temporary directory, on a free loopback port, with a random RPC password; the child
//! is kept in the demo's [`Cleanup`] so that any end of the demo stops it. [`BtcUser`] is a
//! Bitcoin user with one key-path P2TR coin (a matured coinbase), so builds of Bitcoin Core
//! without a wallet are enough.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bitcoin::key::Keypair;
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{
    Address, Amount, CompressedPublicKey, Network, OutPoint, ScriptBuf, Transaction, TxOut, Txid,
};
use rand::RngCore;
use serde_json::Value;
use veil_bitcoin::spend::pay_from_coin;
use veil_bitcoin::{BitcoinRpc, RpcAuth, RpcConfig, RpcError};

use super::Cleanup;

/// The RPC user of the throwaway node.
pub const RPC_USER: &str = "veil-demo";

/// Looks for `bitcoind`: `$VEIL_BITCOIND` (an error if it names no executable), then `PATH`,
/// then `${XDG_CACHE_HOME:-$HOME/.cache}/veil/bitcoind/bitcoind` (`make bitcoind`).
pub fn find_bitcoind() -> Result<Option<PathBuf>> {
    if let Some(v) = std::env::var_os("VEIL_BITCOIND").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        if !is_executable(&p) {
            bail!("VEIL_BITCOIND={} is not an executable file", p.display());
        }
        return Ok(Some(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(p) = std::env::split_paths(&path)
            .map(|d| d.join("bitcoind"))
            .find(|p| is_executable(p))
        {
            return Ok(Some(p));
        }
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    Ok(cache
        .map(|c| c.join("veil").join("bitcoind").join("bitcoind"))
        .filter(|p| is_executable(p)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs in the forked child before `exec`: the kernel sends it SIGTERM when the thread that
/// started it (the demo's main thread) ends, so even a demo killed with SIGKILL, which runs no
/// cleanup, leaves no bitcoind behind.
fn die_with_parent() -> std::io::Result<()> {
    // SAFETY: `prctl(PR_SET_PDEATHSIG, ...)` is async-signal-safe and touches no memory of the
    // forked process; it only sets an attribute of the calling (child) process.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("finding a free loopback port")?
        .port())
}

/// The throwaway regtest node (its process is in the demo's [`Cleanup`]).
pub struct Bitcoind {
    /// RPC client.
    pub rpc: BitcoinRpc,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The RPC password (random; the node is on loopback and gone at the end).
    pub password: String,
    /// `getnetworkinfo`'s `subversion`, e.g. `/Satoshi:28.1.0/`.
    pub version: String,
    /// Where the regtest coins of mined blocks go.
    pub miner: Address,
}

impl Bitcoind {
    /// Starts `exe` in regtest mode with its datadir under `dir` and waits until RPC answers
    /// (three tries on fresh ports: a free port can be taken before bitcoind binds it).
    pub async fn start(exe: &Path, dir: &Path, cleanup: &Arc<Mutex<Cleanup>>) -> Result<Self> {
        let mut last_error = String::new();
        for attempt in 0..3 {
            let datadir = dir.join(format!("bitcoind-{attempt}"));
            std::fs::create_dir_all(&datadir)
                .with_context(|| format!("creating {}", datadir.display()))?;
            let port = free_port()?;
            let mut secret = [0u8; 16];
            rand::rngs::OsRng.fill_bytes(&mut secret);
            let password = hex::encode(secret);
            let mut cmd = Command::new(exe);
            cmd.arg("-regtest")
                .arg(format!("-datadir={}", datadir.display()))
                .args(["-server", "-listen=0", "-rpcbind=127.0.0.1"])
                .args(["-rpcallowip=127.0.0.1", "-txindex=1", "-printtoconsole=0"])
                .args(["-fallbackfee=0.0001", "-rpcthreads=8"])
                .arg(format!("-rpcport={port}"))
                .arg(format!("-rpcuser={RPC_USER}"))
                .arg(format!("-rpcpassword={password}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0);
            // SAFETY: `die_with_parent` only makes one async-signal-safe system call.
            unsafe { cmd.pre_exec(die_with_parent) };
            let child = cmd
                .spawn()
                .with_context(|| format!("starting {}", exe.display()))?;
            lock(cleanup).bitcoind = Some(child);
            let url = format!("http://127.0.0.1:{port}");
            let mut config = RpcConfig::new(
                url.clone(),
                RpcAuth::UserPass {
                    user: RPC_USER.into(),
                    password: password.clone(),
                },
            );
            config.backoff = Duration::from_millis(100);
            // The start-up probe does not retry (each retry logs a warning while bitcoind is
            // still starting, which is expected); the client of the story does.
            config.retries = 0;
            let probe = BitcoinRpc::new(config.clone())?;
            config.retries = 2;
            let rpc = BitcoinRpc::new(config)?;
            match wait_for_rpc(&probe, cleanup, &datadir).await {
                Ok(()) => {
                    let info: Value = rpc.call("getnetworkinfo", vec![]).await?;
                    let miner = veil_bitcoin::OperatorKey::generate(&mut rand::rngs::OsRng)
                        .address(veil_bitcoin::KeyKind::P2wpkh, Network::Regtest);
                    return Ok(Bitcoind {
                        rpc,
                        url,
                        password,
                        version: info["subversion"].as_str().unwrap_or("?").to_owned(),
                        miner,
                    });
                }
                Err(e) => {
                    last_error = format!("{e:#}");
                    lock(cleanup).kill_bitcoind();
                }
            }
        }
        bail!("bitcoind did not start: {last_error}")
    }

    /// Mines `n` blocks (with whatever the mempool holds) to the miner's address.
    pub async fn mine(&self, n: u64) -> Result<()> {
        self.rpc
            .generate_to_address(n, &self.miner)
            .await
            .context("mining")?;
        Ok(())
    }

    /// Number of transactions in the mempool.
    pub async fn mempool_len(&self) -> Result<usize> {
        Ok(self.rpc.get_raw_mempool().await?.len())
    }

    /// Stops the node by RPC and waits (up to 20 s) for its process to exit; kills it if not.
    pub async fn stop(&self, cleanup: &Arc<Mutex<Cleanup>>) {
        let _ = self.rpc.stop().await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let exited = match lock(cleanup).bitcoind.as_mut() {
                Some(c) => c.try_wait().ok().flatten().is_some(),
                None => true,
            };
            if exited {
                lock(cleanup).bitcoind = None;
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        lock(cleanup).kill_bitcoind();
    }
}

/// The cleanup registry, whatever a panicking holder left in it.
pub fn lock(cleanup: &Mutex<Cleanup>) -> std::sync::MutexGuard<'_, Cleanup> {
    cleanup.lock().unwrap_or_else(|e| e.into_inner())
}

async fn wait_for_rpc(
    rpc: &BitcoinRpc,
    cleanup: &Arc<Mutex<Cleanup>>,
    datadir: &Path,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let exited = lock(cleanup)
            .bitcoind
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        if let Some(status) = exited {
            let log = std::fs::read_to_string(datadir.join("regtest").join("debug.log"))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(3).collect();
            bail!(
                "bitcoind exited with {status}: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            );
        }
        match rpc.get_blockchain_info().await {
            Ok(_) => return Ok(()),
            Err(e @ RpcError::Unauthorized { .. }) => return Err(e.into()),
            Err(e) if Instant::now() > deadline => {
                bail!("bitcoind's RPC did not answer within 60 s: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A Bitcoin user: one P2TR key, one coin; each payment spends the last change.
pub struct BtcUser {
    keypair: Keypair,
    /// The key's P2TR address (where its coinbase and change go).
    pub address: Address,
    coin: Option<(OutPoint, TxOut)>,
}

impl BtcUser {
    /// A user with a fresh key.
    pub fn new() -> Self {
        let secp = Secp256k1::new();
        let keypair = loop {
            let mut secret = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut secret);
            if let Ok(k) = Keypair::from_seckey_slice(&secp, &secret) {
                break k;
            }
        };
        let address = Address::p2tr(&secp, keypair.x_only_public_key().0, None, Network::Regtest);
        BtcUser {
            keypair,
            address,
            coin: None,
        }
    }

    /// A P2WPKH address of the same key (where the demo's withdrawal goes).
    pub fn p2wpkh(&self) -> Address {
        Address::p2wpkh(
            &CompressedPublicKey(self.keypair.public_key()),
            Network::Regtest,
        )
    }

    /// Takes the coinbase output of the block `hash` (mined to [`BtcUser::address`]) as the
    /// coin to spend (it must mature before [`BtcUser::pay`]).
    pub async fn take_coinbase(
        &mut self,
        rpc: &BitcoinRpc,
        hash: &bitcoin::BlockHash,
    ) -> Result<()> {
        let block = rpc.get_block(hash).await?;
        let cb = block.txdata.first().context("a block without coinbase")?;
        self.coin = Some((OutPoint::new(cb.compute_txid(), 0), cb.output[0].clone()));
        Ok(())
    }

    /// Pays `value` to `script` with `fee`, change back to the user; signs (BIP 341 key path)
    /// and broadcasts. Returns the transaction; the payment is its output 0.
    pub async fn pay(
        &mut self,
        rpc: &BitcoinRpc,
        script: ScriptBuf,
        value: u64,
        fee: u64,
    ) -> Result<Transaction> {
        let (prev, prev_out) = self.coin.as_ref().context("the Bitcoin user has no coin")?;
        let payment = TxOut {
            value: Amount::from_sat(value),
            script_pubkey: script,
        };
        let tx = pay_from_coin(
            &self.keypair,
            (*prev, prev_out),
            vec![payment],
            Amount::from_sat(fee),
        )
        .context("paying from the Bitcoin user's coin")?;
        let txid: Txid = rpc
            .send_raw_transaction(&tx)
            .await
            .context("broadcasting the peg-in")?;
        self.coin = Some((OutPoint::new(txid, 1), tx.output[1].clone()));
        Ok(tx)
    }
}
