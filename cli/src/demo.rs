//! `veil demo`: Veil's whole story, end to end, on a throwaway node, with one progress line per
//! step on stderr and a summary at the end (a table on stdout, or `--json`). Two wallets, alice
//! and bob; a deposit to alice; a private payment alice -> bob; bob's withdrawal; then
//! `verify-chain` over every batch.
//!
//! Without Bitcoin (`--no-bitcoin`, or no `bitcoind` found) the deposit is the operator's
//! attestation (the operator token path) and the withdrawal ends at `proven`. With a `bitcoind`
//! (`$VEIL_BITCOIND`, then `PATH`, then the `make bitcoind` cache: [`regtest::find_bitcoind`])
//! the demo runs its own throwaway regtest Bitcoin Core with anchoring on: a real peg-in through
//! the bridge (a Bitcoin user pays alice's deposit address, the demo mines its confirmations,
//! the node credits it), the payment, a peg-out paid on Bitcoin by the anchor of its batch
//! (mining as needed), then `verify-chain` against Bitcoin and `verify-chain --from-bitcoin`.
//!
//! The node runs in this process ([`veil_sequencer::start_with`]) on a free loopback port, with
//! the keys of `--keys-dir` (`keys`, as `make run`; generated once with the insecure dev seed 1
//! when missing). Everything else lives in a temporary directory that is removed at the end
//! (`--keep` keeps it) however the demo ends: success, an error (one `error: ...` line, exit
//! 2), Ctrl-C or SIGTERM (the bitcoind child is stopped first; exit 130).

mod chain;
mod progress;
mod regtest;
mod summary;

use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use bitcoin::{Network as BtcNetwork, OutPoint, Txid};
use rand::RngCore;
use tokio::runtime::Runtime;
use veil_bitcoin::{KeyKind, OperatorKey};
use veil_circuits::{Network, PaymentAddress};
use veil_prover::keys::{self, KeyKind as KeyFileKind};
use veil_sequencer::config::{AnchorConfig, Config};
use veil_sequencer::RunningNode;
use veil_wallet::client::TransferStatus;
use veil_wallet::wait::Until;
use veil_wallet::{build_deposit_idempotent, NodeClient, Wallet};
use veil_wire::TransferRequest;

use progress::{Progress, Step};
use regtest::{lock, Bitcoind, BtcUser};
use summary::{BitcoinFlows, Summary};

/// Satoshis deposited to alice.
const DEPOSIT: u64 = 100_000;
/// Alice pays bob this much...
const PAYMENT: u64 = 60_000;
/// ...with this fee.
const PAYMENT_FEE: u64 = 100;
/// Bob withdraws this much...
const WITHDRAWAL: u64 = 40_000;
/// ...with this fee (it covers the payout output at the bridge's default 10 sat/vB).
const WITHDRAWAL_FEE: u64 = 500;
/// The Bitcoin user's fee for the peg-in transaction (about 154 vB).
const PEG_IN_FEE: u64 = 1_000;
/// Confirmations before the node credits the peg-in.
const DEPOSIT_CONFIRMATIONS: u64 = 3;
/// The dev seed of missing keys (the one `make run` uses).
const DEV_SEED: u64 = 1;
/// Longest wait for any one step.
const STEP_LIMIT: Duration = Duration::from_secs(600);
/// Poll interval of the waits.
const POLL: Duration = Duration::from_millis(150);

/// Arguments of `veil demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory of the Groth16 keys `pk-B{B}-D{D}.bin` and `vk-B{B}-D{D}.bin`; missing ones are
    /// generated with the INSECURE dev seed 1 (what `make run` does).
    #[arg(long, default_value = "keys")]
    keys_dir: PathBuf,
    /// Transfers per batch.
    #[arg(long, default_value_t = 2)]
    batch_size: usize,
    /// Tree depth.
    #[arg(long, default_value_t = 8)]
    depth: usize,
    /// Run without Bitcoin even when a bitcoind is found (attested deposit, no anchors).
    #[arg(long)]
    no_bitcoin: bool,
    /// Keep the throwaway directory (node data, wallets, bitcoind's datadir) and print its path.
    #[arg(long)]
    keep: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

/// What must go when the demo ends, however it ends: the bitcoind child, then the throwaway
/// directory (unless kept).
pub struct Cleanup {
    bitcoind: Option<Child>,
    dir: PathBuf,
    keep: bool,
    done: bool,
}

impl Cleanup {
    /// Kills the bitcoind child, if any, and reaps it.
    fn kill_bitcoind(&mut self) {
        if let Some(mut child) = self.bitcoind.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills bitcoind and removes the directory (once).
    fn finish(&mut self) {
        self.kill_bitcoind();
        if !self.done && !self.keep {
            // On Ctrl-C the node still runs and may be writing: a few tries.
            for _ in 0..5 {
                match std::fs::remove_dir_all(&self.dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        std::thread::sleep(Duration::from_millis(100))
                    }
                    _ => break,
                }
            }
        }
        self.done = true;
    }
}

/// A panic unwinding out of [`run`] drops the runtime, the signal task and then this: bitcoind
/// and the directory go then too.
impl Drop for Cleanup {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Runs the demo.
pub fn run(args: Args) -> Result<ExitCode> {
    let shape = crate::util::shape(args.batch_size, args.depth)?;
    let bitcoind_exe = if args.no_bitcoin {
        None
    } else {
        regtest::find_bitcoind()?
    };
    let dir = tempfile::Builder::new()
        .prefix("veil-demo-")
        .tempdir()
        .context("creating the throwaway directory")?
        .keep();
    let cleanup = Arc::new(Mutex::new(Cleanup {
        bitcoind: None,
        dir: dir.clone(),
        keep: args.keep,
        done: false,
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.spawn(stop_on_signal(cleanup.clone()));
    let progress = Progress::new();
    progress.note(&format!(
        "veil demo: {shape}, {}; throwaway directory {}",
        match &bitcoind_exe {
            Some(exe) => format!("with Bitcoin ({})", exe.display()),
            None if args.no_bitcoin => "without Bitcoin (--no-bitcoin)".to_owned(),
            None =>
                "without Bitcoin (no bitcoind: VEIL_BITCOIND, PATH, `make bitcoind`)".to_owned(),
        },
        dir.display()
    ));
    let mut demo = Demo {
        rt: &rt,
        args: &args,
        dir: &dir,
        cleanup: &cleanup,
        progress,
        node: None,
        btc: None,
        proof_seconds: Vec::new(),
        proving_seen: 0.0,
    };
    let result = demo.story(bitcoind_exe.as_deref(), shape);
    // Stop the node, then bitcoind, then remove the directory, on success and on error alike.
    if let Some(node) = demo.node.take() {
        let _ = rt.block_on(node.running.stop());
    }
    if let Some(btc) = demo.btc.take() {
        rt.block_on(btc.bitcoind.stop(&cleanup));
    }
    lock(&cleanup).finish();
    let summary = result?;
    if args.keep {
        eprintln!("kept {}", dir.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary.to_json())?);
    } else {
        print!("{}", summary.table());
    }
    Ok(ExitCode::SUCCESS)
}

/// On Ctrl-C or SIGTERM: stop bitcoind, remove the throwaway directory, exit 130.
async fn stop_on_signal(cleanup: Arc<Mutex<Cleanup>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let kept = {
        let mut c = lock(&cleanup);
        c.finish();
        c.keep.then(|| c.dir.clone())
    };
    match kept {
        Some(dir) => eprintln!("\nerror: interrupted (kept {})", dir.display()),
        None => eprintln!("\nerror: interrupted; the throwaway node and data are gone"),
    }
    std::process::exit(130);
}

/// The in-process node.
struct NodeSide {
    running: RunningNode,
    client: NodeClient,
    url: String,
    token: String,
}

/// The Bitcoin side: the throwaway regtest node, the Bitcoin user, the genesis outpoint.
struct BtcSide {
    bitcoind: Bitcoind,
    user: BtcUser,
    genesis: OutPoint,
}

struct Demo<'a> {
    rt: &'a Runtime,
    args: &'a Args,
    dir: &'a Path,
    cleanup: &'a Arc<Mutex<Cleanup>>,
    progress: Progress,
    node: Option<NodeSide>,
    btc: Option<BtcSide>,
    /// Seconds each batch took to prove, in order.
    proof_seconds: Vec<f64>,
    proving_seen: f64,
}

impl Demo<'_> {
    fn node(&self) -> &NodeSide {
        self.node.as_ref().expect("the node is started first")
    }

    fn story(
        &mut self,
        bitcoind_exe: Option<&Path>,
        shape: veil_circuits::batch::BatchShape,
    ) -> Result<Summary> {
        let started = Instant::now();
        // Keys: the node's proving key, generated once with the dev seed when missing.
        let step = self.progress.step(
            "keys",
            format!("{shape} in {}", self.args.keys_dir.display()),
        );
        let pk_path = crate::util::ensure_keys(&self.args.keys_dir, shape, Some(DEV_SEED))?;
        step.set(format!("loading {}", pk_path.display()));
        let prover = veil_prover::Prover::load(&pk_path, shape)?;
        let vk_path = self
            .args
            .keys_dir
            .join(keys::key_file_name(KeyFileKind::Verifying, shape));
        step.done(&self.progress, format!("{}", pk_path.display()));

        let anchor = match bitcoind_exe {
            Some(exe) => Some(self.start_bitcoin(exe)?),
            None => None,
        };
        self.start_node(shape, prover, anchor)?;

        let step = self.progress.step("wallets", "creating alice and bob");
        let url = self.node().url.clone();
        let mut alice = Wallet::create(
            &self.dir.join("alice"),
            Network::Regtest,
            &url,
            &mut rand::rngs::OsRng,
        )?;
        let mut bob = Wallet::create(
            &self.dir.join("bob"),
            Network::Regtest,
            &url,
            &mut rand::rngs::OsRng,
        )?;
        step.done(
            &self.progress,
            format!(
                "alice {}..., bob {}...",
                &alice.address()[..16],
                &bob.address()[..16]
            ),
        );

        let mut flows = BitcoinFlows::default();
        // 1. The deposit.
        let deposit_id = if self.btc.is_some() {
            self.peg_in(&alice, &mut flows)?
        } else {
            self.attested_deposit(&alice)?
        };
        let step = self.progress.step("deposit", "proving");
        let s = self.wait_transfer(&step, &deposit_id, Until::Proven)?;
        self.record_proof()?;
        sync(&mut alice)?;
        ensure!(
            alice.balance().spendable == DEPOSIT,
            "alice's balance after the deposit is {} sat, not {DEPOSIT}",
            alice.balance().spendable
        );
        step.done(
            &self.progress,
            format!(
                "{DEPOSIT} sat to alice, {} in batch {}",
                s.status,
                s.batch.unwrap_or(0)
            ),
        );

        // 2. The private payment.
        let step = self
            .progress
            .step("payment", format!("alice pays bob {PAYMENT} sat"));
        let t = alice.send(&bob.address(), PAYMENT, PAYMENT_FEE, &mut rand::rngs::OsRng)?;
        let s = self.wait_transfer(&step, &t.id, Until::Proven)?;
        self.record_proof()?;
        sync(&mut bob)?;
        ensure!(
            bob.balance().spendable == PAYMENT,
            "bob's balance after the payment is {} sat, not {PAYMENT}",
            bob.balance().spendable
        );
        step.done(
            &self.progress,
            format!(
                "alice -> bob {PAYMENT} sat (fee {PAYMENT_FEE}), private, {} in batch {}",
                s.status,
                s.batch.unwrap_or(0)
            ),
        );

        // 3. The withdrawal.
        let dest = match &self.btc {
            Some(b) => b.user.p2wpkh(),
            None => OperatorKey::generate(&mut rand::rngs::OsRng)
                .address(KeyKind::P2wpkh, BtcNetwork::Regtest),
        };
        let step = self
            .progress
            .step("withdrawal", format!("bob withdraws {WITHDRAWAL} sat"));
        let t = bob.withdraw(
            &dest.to_string(),
            WITHDRAWAL,
            WITHDRAWAL_FEE,
            &mut rand::rngs::OsRng,
        )?;
        let line = if self.btc.is_some() {
            let s = self.wait_transfer(&step, &t.id, Until::Anchored)?;
            self.record_proof()?;
            let txid = s.txid.context("an anchored withdrawal without its txid")?;
            let paid = self.paid_to(&txid, &dest)?;
            ensure!(
                paid == WITHDRAWAL,
                "anchor {txid} pays {paid} sat to {dest}, not the {WITHDRAWAL} sat withdrawn"
            );
            flows.sats_out = paid;
            flows.withdrawal_txid = Some(txid.clone());
            format!("{WITHDRAWAL} sat to {dest}, paid on Bitcoin by anchor {txid}")
        } else {
            let s = self.wait_transfer(&step, &t.id, Until::Proven)?;
            self.record_proof()?;
            format!(
                "{WITHDRAWAL} sat to {dest}, proven in batch {} (no Bitcoin: no payout)",
                s.batch.unwrap_or(0)
            )
        };
        step.done(&self.progress, line);

        // Every batch anchored, with Bitcoin.
        let anchors = if self.btc.is_some() {
            self.wait_all_anchored()?
        } else {
            Vec::new()
        };

        let step = self.progress.step("balances", "syncing alice and bob");
        sync(&mut alice)?;
        sync(&mut bob)?;
        let (a, b) = (alice.balance().spendable, bob.balance().spendable);
        let want = (
            DEPOSIT - PAYMENT - PAYMENT_FEE,
            PAYMENT - WITHDRAWAL - WITHDRAWAL_FEE,
        );
        ensure!(
            (a, b) == want,
            "balances are alice {a} and bob {b} sat, not {} and {}",
            want.0,
            want.1
        );
        step.done(&self.progress, format!("alice {a} sat, bob {b} sat"));

        let verify = self.verify(&vk_path)?;
        let client = &self.node().client;
        let state = client.state()?;
        let mut transfers = summary::Transfers::default();
        for n in 0..state.batch_height {
            for t in client.batch(n)?.public_data {
                transfers.count(&t);
            }
        }
        Ok(Summary {
            bitcoin: self.btc.is_some(),
            batch_size: shape.batch_size,
            depth: shape.depth,
            transfers,
            batches: state.batch_height,
            proven: state.proven_height,
            proving_seconds_total: self.node().running.node.metrics.proving_seconds(),
            proving_seconds_per_batch: self.proof_seconds.clone(),
            anchors,
            flows: BitcoinFlows {
                genesis: self.btc.as_ref().map(|b| b.genesis.to_string()),
                ..flows
            },
            withdrawal_fee: WITHDRAWAL_FEE,
            payment_fee: PAYMENT_FEE,
            alice: a,
            bob: b,
            verify,
            seconds: started.elapsed().as_secs_f64(),
            kept: self.args.keep.then(|| self.dir.to_owned()),
        })
    }

    fn start_node(
        &mut self,
        shape: veil_circuits::batch::BatchShape,
        prover: veil_prover::Prover,
        anchor: Option<AnchorConfig>,
    ) -> Result<()> {
        let step = self.progress.step("node", "starting");
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let token = hex::encode(secret);
        let config = Config {
            listen: ([127, 0, 0, 1], 0).into(),
            data_dir: self.dir.join("node"),
            batch_size: shape.batch_size,
            depth: shape.depth,
            keys_dir: self.args.keys_dir.clone(),
            max_wait_ms: 100,
            operator_token: Some(token.clone()),
            anchor,
            ..Config::default()
        };
        let running = self.rt.block_on(veil_sequencer::start_with(
            &config,
            Some(veil_sequencer::ProverSetup::Loaded(Box::new(prover))),
        ))?;
        let url = format!("http://{}", running.addr);
        let client = NodeClient::new(&url)?;
        step.done(
            &self.progress,
            format!(
                "{url}{}",
                if config.anchor.is_some() {
                    ", anchoring on, bridge on"
                } else {
                    ", no Bitcoin"
                }
            ),
        );
        self.node = Some(NodeSide {
            running,
            client,
            url,
            token,
        });
        Ok(())
    }

    /// The operator's attested deposit to alice (a node without Bitcoin).
    fn attested_deposit(&self, alice: &Wallet) -> Result<String> {
        let step = self.progress.step("attest", "the operator credits alice");
        let mut txid = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut txid);
        let outpoint = OutPoint::new(Txid::from_str(&hex::encode(txid))?, 0);
        let to = PaymentAddress::decode(&alice.address(), Network::Regtest)?;
        let node = self.node();
        let t = build_deposit_idempotent(node.token.as_bytes(), &to, DEPOSIT, &outpoint)?;
        let (id, _) = node
            .client
            .deposit(&TransferRequest::from(&t), &node.token)?;
        step.done(
            &self.progress,
            format!("{DEPOSIT} sat attested by the operator (no Bitcoin), transfer {id}"),
        );
        Ok(id)
    }

    /// Polls `check` until it gives a value; with Bitcoin, mines a block whenever the mempool
    /// holds something (the anchors).
    fn wait_for<T>(&self, what: &str, mut check: impl FnMut() -> Result<Option<T>>) -> Result<T> {
        let begun = Instant::now();
        loop {
            if let Some(v) = check()? {
                return Ok(v);
            }
            self.mine_if_needed()?;
            ensure!(
                begun.elapsed() < STEP_LIMIT,
                "timed out after {} s waiting for {what}",
                STEP_LIMIT.as_secs()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits until transfer `id` is proven or anchored (`until`; an error if it is rejected),
    /// mining as needed with Bitcoin.
    fn wait_transfer(&self, step: &Step, id: &str, until: Until) -> Result<TransferStatus> {
        let client = &self.node().client;
        veil_wallet::wait::wait_for(
            id,
            until,
            Some(STEP_LIMIT),
            POLL,
            || -> Result<TransferStatus> {
                self.mine_if_needed()?;
                Ok(client.transfer_status(id)?)
            },
            &mut |s| {
                step.set(match s.batch {
                    Some(n) => format!("{} in batch {n}", s.status),
                    None => s.status.clone(),
                })
            },
        )
    }

    /// With Bitcoin: mines a block when the mempool holds something (the anchors).
    fn mine_if_needed(&self) -> Result<()> {
        if let Some(b) = &self.btc {
            if self.rt.block_on(b.bitcoind.mempool_len())? > 0 {
                self.rt.block_on(b.bitcoind.mine(1))?;
            }
        }
        Ok(())
    }

    /// Records the proving time of the batch just proven (the node's proving clock advances
    /// right after its proven height does).
    fn record_proof(&mut self) -> Result<()> {
        let metrics = self.node().running.node.metrics.clone();
        let seen = self.proving_seen;
        let now = self.wait_for("the proving time", || {
            let now = metrics.proving_seconds();
            Ok((now > seen).then_some(now))
        })?;
        self.proof_seconds.push(now - seen);
        self.proving_seen = now;
        Ok(())
    }
}

/// Syncs a wallet (no progress).
fn sync(w: &mut Wallet) -> Result<()> {
    w.sync(&mut |_, _| {})?;
    Ok(())
}
