//! `veil wallet`: a wallet in a directory (`key.json` 0600, `wallet.json`) talking to a node:
//! `new`, `address`, `sync`, `balance`, `send`, `withdraw`, `status`. Transfers are built and
//! signed here; the spending key never leaves the machine. `--json` prints one JSON object.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use veil_circuits::Network;
use veil_wallet::state::SubmittedTransfer;
use veil_wallet::Wallet;

/// Default node URL.
pub const DEFAULT_NODE: &str = "http://127.0.0.1:8080";

/// Arguments of `veil wallet`.
#[derive(clap::Args)]
pub struct Args {
    /// Wallet directory (default: $VEIL_WALLET, else ~/.veil/wallet).
    #[arg(long, global = true)]
    wallet: Option<PathBuf>,
    /// Node URL (stored by `new`; overrides the stored one).
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
        /// Wait until the anchor that pays the withdrawal is in a block, and report its txid.
        #[arg(long)]
        wait: bool,
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
    let node = args.node.as_deref();
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
        Command::Send { to, amount, fee } => {
            let t = w.send(&to, amount, fee, &mut rand::rngs::OsRng)?;
            print_submitted(&t, args.json)?;
        }
        Command::Withdraw {
            to,
            amount,
            fee,
            wait,
        } => {
            let t = w.withdraw(&to, amount, fee, &mut rand::rngs::OsRng)?;
            if !wait {
                print_submitted(&t, args.json)?;
                return Ok(ExitCode::SUCCESS);
            }
            let spinner = std::io::stderr()
                .is_terminal()
                .then(|| ProgressBar::new_spinner().with_message("waiting for the anchor"));
            let paid = loop {
                let s = w.status(&t.id)?;
                if let Some(pb) = &spinner {
                    pb.set_message(format!("{}: waiting for the anchor", s.status));
                    pb.tick();
                }
                match (s.status.as_str(), &s.txid) {
                    ("anchored", Some(txid)) => break txid.clone(),
                    ("rejected", _) => anyhow::bail!(
                        "withdrawal {} rejected: {}",
                        t.id,
                        s.reason.unwrap_or_default()
                    ),
                    _ => std::thread::sleep(std::time::Duration::from_secs(1)),
                }
            };
            if let Some(pb) = spinner {
                pb.finish_and_clear();
            }
            if args.json {
                let mut v = serde_json::to_value(&t)?;
                v["status"] = json!("anchored");
                v["txid"] = json!(paid);
                println!("{v}");
            } else {
                println!(
                    "withdrawal {}: {amount} sat to {to} paid by bitcoin tx {paid}",
                    t.id
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
