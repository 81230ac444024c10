//! `veil wallet`: a wallet in a directory (`key.json` 0600, `wallet.json`) talking to a node:
//! `new`, `address`, `sync`, `balance`, `send`, `withdraw`, `status`. Transfers are built and
//! signed here; the spending key never leaves the machine. `--json` prints one JSON object.
//! `send --wait` and `withdraw --wait` wait until the transfer is final (`veil_wallet::wait`):
//! proven, or for a withdrawal on a node with Bitcoin, paid by an anchor.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use veil_circuits::Network;
use veil_wallet::client::TransferStatus;
use veil_wallet::state::SubmittedTransfer;
use veil_wallet::{Until, Wallet};

/// Default node URL (`make run`'s node).
pub const DEFAULT_NODE: &str = "http://127.0.0.1:8080";
/// The environment variable naming the node when no `--node` is given.
pub const NODE_ENV: &str = "VEIL_NODE";

/// The node URL: `flag`, else `$VEIL_NODE`, else [`DEFAULT_NODE`].
pub fn node_url(flag: Option<String>) -> String {
    flag.or_else(|| {
        std::env::var(NODE_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty())
    })
    .unwrap_or_else(|| DEFAULT_NODE.to_owned())
}

/// `--wait`'s default limit for a proof (a Bitcoin anchor, which takes confirmations, is waited
/// for without one unless `--timeout` is given).
pub const PROOF_WAIT_SECS: u64 = 600;

/// `--timeout SECS` of a wait for `until`: the flag, else [`PROOF_WAIT_SECS`] for a proof and no
/// limit for an anchor; 0 means no limit.
pub fn wait_timeout(flag: Option<u64>, until: Until) -> Option<Duration> {
    match (flag, until) {
        (Some(0), _) | (None, Until::Anchored) => None,
        (Some(s), _) => Some(Duration::from_secs(s)),
        (None, Until::Proven) => Some(Duration::from_secs(PROOF_WAIT_SECS)),
    }
}

/// A spinner on stderr (when it is a terminal) showing the status a wait sees.
pub fn wait_spinner(what: &str) -> (Option<ProgressBar>, impl FnMut(&TransferStatus) + '_) {
    let spinner = std::io::stderr()
        .is_terminal()
        .then(|| crate::util::spinner(format!("{what}: waiting")));
    let bar = spinner.clone();
    let show = move |s: &TransferStatus| {
        if let Some(pb) = &bar {
            pb.set_message(format!("{what}: {}", s.status));
        }
    };
    (spinner, show)
}

/// Arguments of `veil wallet`.
#[derive(clap::Args)]
pub struct Args {
    /// Wallet directory (default: $VEIL_WALLET, else ~/.veil/wallet).
    #[arg(long, global = true)]
    wallet: Option<PathBuf>,
    /// Node URL (stored by `new`, default $VEIL_NODE, else http://127.0.0.1:8080; given, or
    /// from $VEIL_NODE, it replaces the stored one).
    #[arg(long, global = true)]
    node: Option<String>,
    /// Print one JSON object.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// Address network.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum NetworkArg {
    /// `veilrt1...` addresses, Bitcoin regtest withdrawals.
    Regtest,
    /// `veil1...` addresses, Bitcoin mainnet withdrawals.
    Mainnet,
}

impl From<NetworkArg> for Network {
    fn from(n: NetworkArg) -> Network {
        match n {
            NetworkArg::Regtest => Network::Regtest,
            NetworkArg::Mainnet => Network::Mainnet,
        }
    }
}

#[derive(clap::Subcommand)]
enum Command {
    /// Create a wallet: a new spending key from OS randomness.
    New {
        /// Address network.
        #[arg(long, value_enum, default_value = "regtest")]
        network: NetworkArg,
    },
    /// Print the payment address.
    Address,
    /// Scan the node's notes for this wallet's, and refresh spends and submitted transfers.
    Sync,
    /// Spendable and pending balances (from the last sync).
    Balance,
    /// Pay to a Veil payment address.
    Send {
        /// Recipient payment address.
        #[arg(long)]
        to: String,
        /// Amount in satoshis.
        #[arg(long)]
        amount: u64,
        /// Fee in satoshis.
        #[arg(long, default_value_t = 0)]
        fee: u64,
        /// Wait until the payment is in a proven batch (then the recipient's `sync` finds it).
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds (default 600; 0: no limit).
        #[arg(long, requires = "wait")]
        timeout: Option<u64>,
    },
    /// Withdraw to a Bitcoin address.
    Withdraw {
        /// Bitcoin address of the wallet's network.
        #[arg(long)]
        to: String,
        /// Amount in satoshis.
        #[arg(long)]
        amount: u64,
        /// Fee in satoshis: at least the withdrawal output's Bitcoin fee at the node's
        /// `withdrawal_fee_rate` (`GET /v1/bridge`; 310 sat for P2WPKH at 10 sat/vB).
        #[arg(long, default_value_t = 0)]
        fee: u64,
        /// Wait until the withdrawal is final: paid by an anchor with the required
        /// confirmations (its txid is reported), or on a node without Bitcoin, proven.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds (default: no limit for an anchor, 600
        /// for a proof; 0: no limit).
        #[arg(long, requires = "wait")]
        timeout: Option<u64>,
    },
    /// This wallet's Bitcoin peg-in address: a P2TR output committing to its payment address,
    /// derived here from the node's bridge key (and checked against the address the node says
    /// it follows). BTC sent to it is credited to this wallet after the node's
    /// `deposit_confirmations` blocks (docs/bridge.md).
    DepositAddress,
    /// A transfer's status at the node (anchored: the Bitcoin transaction that anchored it and,
    /// for a withdrawal, paid it); without an id, this wallet's peg-ins and their confirmations.
    Status {
        /// Transfer id.
        id: Option<String>,
    },
}

fn wallet_dir(arg: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(d) = arg {
        return Ok(d);
    }
    if let Some(d) = std::env::var_os("VEIL_WALLET") {
        return Ok(PathBuf::from(d));
    }
    let home = std::env::var_os("HOME").context("no --wallet given and HOME is not set")?;
    Ok(PathBuf::from(home).join(".veil").join("wallet"))
}

fn print_submitted(t: &SubmittedTransfer, as_json: bool) -> Result<()> {
    if as_json {
        println!("{}", serde_json::to_string(t)?);
    } else {
        println!(
            "submitted {}: {} {} sat to {} (fee {}, change {}), status {}",
            t.id,
            match t.kind {
                veil_wallet::state::TransferKind::Send => "send",
                veil_wallet::state::TransferKind::Withdraw => "withdraw",
            },
            t.amount,
            t.to,
            t.fee,
            t.change,
            t.status
        );
    }
    Ok(())
}

/// Runs the command.
pub fn run(args: Args) -> Result<ExitCode> {
    let dir = wallet_dir(args.wallet)?;
    let node = args.node.or_else(|| {
        std::env::var(NODE_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty())
    });
    let node = node.as_deref();
    if let Command::New { network } = args.command {
        let w = Wallet::create(
            &dir,
            network.into(),
            node.unwrap_or(DEFAULT_NODE),
            &mut rand::rngs::OsRng,
        )?;
        if args.json {
            println!(
                "{}",
                json!({"address": w.address(), "wallet": dir, "node": w.state.node_url})
            );
        } else {
            println!("created wallet in {}", dir.display());
            println!("address: {}", w.address());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut w = Wallet::open(&dir, node)?;
    match args.command {
        Command::New { .. } => unreachable!("handled above"),
        Command::Address => {
            if args.json {
                println!("{}", json!({"address": w.address()}));
            } else {
                println!("{}", w.address());
            }
        }
        Command::Sync => {
            let bar = std::io::stderr().is_terminal().then(|| {
                let pb = ProgressBar::new(0).with_style(
                    ProgressStyle::with_template(
                        "{spinner} scanning notes {pos}/{len} [{elapsed}]",
                    )
                    .expect("a valid template"),
                );
                pb.enable_steady_tick(std::time::Duration::from_millis(120));
                pb
            });
            let report = w.sync(&mut |done, total| {
                if let Some(pb) = &bar {
                    pb.set_length(total);
                    pb.set_position(done);
                }
            });
            if let Some(pb) = bar {
                pb.finish_and_clear();
            }
            let report = report?;
            let balance = w.balance();
            if args.json {
                println!("{}", json!({"sync": report, "balance": balance}));
            } else {
                println!(
                    "synced to note {}: scanned {}, found {} new note(s), {} newly spent; spendable {} sat",
                    report.next_position,
                    report.scanned,
                    report.found.len(),
                    report.newly_spent,
                    balance.spendable
                );
            }
        }
        Command::Balance => {
            let b = w.balance();
            if args.json {
                println!("{}", serde_json::to_string(&b)?);
            } else {
                println!(
                    "spendable {} sat in {} note(s); pending: {} sat outgoing, {} sat change incoming",
                    b.spendable, b.notes, b.outgoing, b.incoming_change
                );
            }
        }
        Command::Send {
            to,
            amount,
            fee,
            wait,
            timeout,
        } => {
            let t = w.send(&to, amount, fee, &mut rand::rngs::OsRng)?;
            if !wait {
                print_submitted(&t, args.json)?;
                return Ok(ExitCode::SUCCESS);
            }
            let s = wait_for(&mut w, &t.id, Until::Proven, timeout, "payment")?;
            let batch = s.batch.unwrap_or_default();
            if args.json {
                let mut v = serde_json::to_value(&t)?;
                v["status"] = json!(s.status);
                v["batch"] = json!(batch);
                println!("{v}");
            } else {
                println!(
                    "payment {}: {amount} sat to {} (fee {fee}, change {}), {} in batch {batch}",
                    t.id, t.to, t.change, s.status
                );
            }
        }
        Command::Withdraw {
            to,
            amount,
            fee,
            wait,
            timeout,
        } => {
            // Asked first: a node that cannot say what is final gets no withdrawal to wait for.
            let until = if wait {
                Until::final_at(w.client())?
            } else {
                Until::Proven
            };
            let t = w.withdraw(&to, amount, fee, &mut rand::rngs::OsRng)?;
            if !wait {
                print_submitted(&t, args.json)?;
                return Ok(ExitCode::SUCCESS);
            }
            let s = wait_for(&mut w, &t.id, until, timeout, "withdrawal")?;
            if args.json {
                let mut v = serde_json::to_value(&t)?;
                v["status"] = json!(s.status);
                v["batch"] = json!(s.batch);
                v["txid"] = json!(s.txid);
                println!("{v}");
            } else if let (Until::Anchored, Some(paid)) = (until, &s.txid) {
                println!(
                    "withdrawal {}: {amount} sat to {to} paid by bitcoin tx {paid}",
                    t.id
                );
            } else {
                println!(
                    "withdrawal {}: {amount} sat to {to}, {} in batch {} (the node has no Bitcoin: no anchor pays it)",
                    t.id,
                    s.status,
                    s.batch.unwrap_or_default()
                );
            }
        }
        Command::DepositAddress => {
            let (address, key) = w.deposit_address()?;
            if args.json {
                println!("{}", json!({"deposit_address": address, "bridge_key": key}));
            } else {
                println!("{address}");
            }
        }
        Command::Status { id: Some(id) } => {
            let s = w.status(&id)?;
            if args.json {
                println!("{}", serde_json::to_string(&s)?);
            } else {
                match (&s.batch, &s.reason, &s.txid) {
                    (_, Some(r), _) => println!("{}: {} ({r})", s.id, s.status),
                    (Some(n), _, Some(txid)) => {
                        println!("{}: {} in batch {n}, bitcoin tx {txid}", s.id, s.status)
                    }
                    (Some(n), _, None) => println!("{}: {} in batch {n}", s.id, s.status),
                    _ => println!("{}: {}", s.id, s.status),
                }
            }
        }
        Command::Status { id: None } => {
            let peg_ins = w.peg_ins()?;
            if args.json {
                println!("{}", json!({ "deposits": peg_ins }));
            } else if peg_ins.is_empty() {
                println!("no deposits seen to this wallet's deposit address");
            } else {
                for d in peg_ins {
                    let state = match d.status.as_str() {
                        "seen" => format!(
                            "{}/{} confirmations, credited after {}",
                            d.confirmations.min(d.required),
                            d.required,
                            d.required.saturating_sub(d.confirmations)
                        ),
                        other => other.replace('_', " "),
                    };
                    println!("deposit {} of {} sat: {state}", d.outpoint, d.value);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// [`Wallet::wait`] for the wallet's transfer `id` with a spinner and `--timeout`.
fn wait_for(
    w: &mut Wallet,
    id: &str,
    until: Until,
    timeout: Option<u64>,
    what: &str,
) -> Result<TransferStatus> {
    let (spinner, mut show) = wait_spinner(what);
    let result = w.wait(id, until, wait_timeout(timeout, until), &mut show);
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
    Ok(result?)
}
