//! `veil restore --from-bitcoin`: the escape hatch (issue 14). Reads the chain of anchors from
//! Bitcoin Core exactly as `verify-chain --from-bitcoin` does (every envelope decoded, both
//! trees rebuilt, every proof verified) and writes a node data directory from it
//! (`veil_sequencer::restore`). A `veil node` started on that directory serves the same state,
//! notes, paths, nullifiers and batches as the node that made them, and, given the operator key
//! and the same genesis outpoint, continues the chain of anchors. Exit 0 restored, 1 the chain
//! has problems (one `batch N: ...` line each; nothing written), 2 errors.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{Context, Result};
use bitcoin::OutPoint;
use serde_json::json;
use veil_circuits::field::to_hex;
use veil_sequencer::restore::restore_data_dir;

use crate::util;
use crate::verify_from_bitcoin::{read_chain, ChainRead};

/// Arguments of `veil restore`.
#[derive(clap::Args)]
pub struct Args {
    /// Read everything from Bitcoin (the only source there is, for now; required so the
    /// command says what it trusts).
    #[arg(long, required = true)]
    from_bitcoin: bool,
    /// The genesis outpoint (TXID:VOUT) the chain of anchors starts from.
    #[arg(long)]
    genesis: String,
    /// Verifying key file, or a directory holding the only `vk-B*-D*.bin`.
    #[arg(long, default_value = "keys")]
    vk: PathBuf,
    /// The data directory to write; must not exist or be empty.
    #[arg(long)]
    data_dir: PathBuf,
    /// Confirmations under which an anchor is stored `confirmed` rather than `anchored`.
    #[arg(long, default_value_t = 1)]
    confirmations: u64,
    /// Bitcoin Core.
    #[command(flatten)]
    bitcoin: util::BitcoinArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(args: Args) -> Result<ExitCode> {
    let genesis = OutPoint::from_str(&args.genesis)
        .with_context(|| format!("--genesis {:?} is not TXID:VOUT", args.genesis))?;
    let rpc = args.bitcoin.rpc()?;
    let ChainRead {
        walk,
        replay,
        shape,
        vk_sha256,
    } = read_chain(&rpc, genesis, &args.vk, args.json)?;
    if !replay.problems.is_empty() {
        let mut problems = replay.problems.clone();
        problems.sort_by_key(|p| p.batch);
        if args.json {
            println!(
                "{}",
                json!({
                    "ok": false,
                    "problems": problems
                        .iter()
                        .map(|p| json!({"batch": p.batch, "problem": p.message}))
                        .collect::<Vec<_>>(),
                })
            );
        } else {
            for p in &problems {
                println!("batch {}: {}", p.batch, p.message);
            }
        }
        return Ok(ExitCode::from(1));
    }
    let restored = restore_data_dir(&args.data_dir, shape, &walk, &replay, args.confirmations)
        .with_context(|| format!("restoring {}", args.data_dir.display()))?;
    let last = restored.last_anchor.map(|t| t.to_string());
    if args.json {
        println!(
            "{}",
            json!({
                "ok": true,
                "data_dir": args.data_dir.display().to_string(),
                "batches": restored.batches,
                "transfers": restored.transfers,
                "notes": restored.notes,
                "anchors": restored.anchors,
                "state_root": to_hex(&restored.state_root),
                "last_anchor": last,
                "genesis": genesis.to_string(),
                "batch_size": shape.batch_size,
                "depth": shape.depth,
                "vk_sha256": vk_sha256,
                "bitcoin_height": walk.tip_height,
            })
        );
    } else {
        println!(
            "restored {} batches ({} transfers, {} notes) from {} anchors into {}; state root {}{}",
            restored.batches,
            restored.transfers,
            restored.notes,
            restored.anchors,
            args.data_dir.display(),
            to_hex(&restored.state_root),
            last.map_or_else(String::new, |t| format!(
                "; the next anchor spends {t}:{}",
                veil_bitcoin::tx::CHANGE_VOUT
            )),
        );
    }
    Ok(ExitCode::SUCCESS)
}
