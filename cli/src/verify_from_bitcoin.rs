//! `veil verify-chain --from-bitcoin`: audits the rollup with nothing but Bitcoin Core's RPC, the
//! genesis outpoint and the verifying key (issue 14): follows the chain of anchors from the
//! genesis outpoint, reads every envelope, rebuilds both trees from genesis, recomputes every
//! batch's public inputs, checks each anchor's range commitment and state root, and verifies
//! the proofs with one multi-pairing per anchor (`veil_bitcoin::chain`), and audits the bridge's
//! reserves (`veil_bitcoin::bridge::audit`: every deposit swept once at its amount, every
//! withdrawal paid exactly, reserves >= supply). Exit 0 when everything holds, 1 with one
//! `batch N: ...` line per problem, 2 when it cannot run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use bitcoin::OutPoint;
use serde_json::json;
use veil_bitcoin::bridge::audit::audit_reserves;
use veil_bitcoin::chain::{replay, walk_anchor_chain, ChainWalk, Problem, Replay};
use veil_bitcoin::BitcoinRpc;
use veil_circuits::batch::BatchShape;
use veil_circuits::field::to_hex;
use veil_prover::keys::{self, KeyKind};

use crate::util;

/// The verifying key file: `vk` itself, or the only `vk-B*-D*.bin` in the directory `vk`.
fn find_vk(vk: &Path) -> Result<PathBuf> {
    if !vk.is_dir() {
        return Ok(vk.to_owned());
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(vk).with_context(|| format!("reading {}", vk.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("vk-B") && name.ends_with(".bin") {
            found.push(path);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "no verifying key (vk-B*-D*.bin) in {}: pass the key file to --vk",
            vk.display()
        ),
        _ => bail!(
            "{} holds verifying keys of several shapes: pass the key file to --vk",
            vk.display()
        ),
    }
}

/// The chain of anchors read from Bitcoin and replayed: what `verify-chain --from-bitcoin`
/// reports on and `veil restore --from-bitcoin` writes.
pub struct ChainRead {
    /// The walk.
    pub walk: ChainWalk,
    /// Its replay.
    pub replay: Replay,
    /// The circuit shape the verifying key is for.
    pub shape: BatchShape,
    /// SHA-256 of the verifying key file.
    pub vk_sha256: String,
}

/// Walks the chain of anchors from `genesis` (a progress bar on stderr unless `quiet`) and
/// replays it against the verifying key `vk` (a file, or a directory holding one).
pub fn read_chain(
    rpc: &BitcoinRpc,
    genesis: OutPoint,
    vk: &Path,
    quiet: bool,
) -> Result<ChainRead> {
    let vk_path = find_vk(vk)?;
    let header = keys::read_header(&vk_path)?;
    if header.kind != KeyKind::Verifying {
        bail!("{} is not a verifying key", vk_path.display());
    }
    let shape = util::shape(header.batch_size as usize, header.depth as usize)?;
    let vk = keys::load_verifying_key(&vk_path, shape)?;
    let pvk = veil_verifier::prepare(&vk.vk);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = util::steps(0);
        bar.set_message("reading blocks");
        bar
    };
    let walk = runtime
        .block_on(walk_anchor_chain(rpc, genesis, |h, tip| {
            bar.set_length(tip + 1);
            bar.set_position(h + 1);
        }))
        .context("following the chain of anchors on Bitcoin")?;
    bar.finish_and_clear();
    let replay = replay(&walk, shape, &pvk, &mut rand::rngs::OsRng);
    Ok(ChainRead {
        walk,
        replay,
        shape,
        vk_sha256: vk.sha256,
    })
}

/// Runs `verify-chain --from-bitcoin`.
pub fn run(
    rpc: BitcoinRpc,
    genesis: OutPoint,
    vk: &Path,
    min_confirmations: u64,
    allow_attested: bool,
    json_out: bool,
) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let ChainRead {
        walk,
        replay,
        vk_sha256,
        ..
    } = read_chain(&rpc, genesis, vk, json_out)?;
    let mut problems = replay.problems.clone();
    for a in &replay.anchors {
        let confirmations = (walk.tip_height + 1).saturating_sub(a.block.1);
        if confirmations < min_confirmations {
            problems.push(Problem {
                batch: a.data.first_batch,
                message: format!(
                    "anchor {} has {confirmations} confirmations, fewer than {min_confirmations}",
                    a.txid
                ),
            });
        }
    }
    let audit = audit_reserves(&walk, &replay, allow_attested);
    problems.extend(audit.problems.iter().cloned());
    problems.sort_by_key(|p| p.batch);
    let batches = replay.rebuilder.next_batch();
    let transfers: usize = replay
        .anchors
        .iter()
        .flat_map(|a| &a.batches)
        .map(|b| b.transfers.len())
        .sum();
    let root = replay.rebuilder.state().state_root();
    let last = replay.anchors.last();
    let ok = problems.is_empty();
    if json_out {
        println!(
            "{}",
            json!({
                "ok": ok,
                "batches": batches,
                "transfers": transfers,
                "anchors": replay.anchors.len(),
                "genesis": genesis.to_string(),
                "final_state_root": to_hex(&root),
                "last_anchor": last.map(|a| a.txid.to_string()),
                "bitcoin_height": walk.tip_height,
                "vk_sha256": vk_sha256,
                "bridge": {
                    "reserves_sat": audit.reserves_sat,
                    "supply_sat": i64::try_from(audit.supply_sat()).ok(),
                    "surplus_sat": i64::try_from(audit.surplus_sat()).ok(),
                    "deposits_sat": audit.deposits_sat,
                    "withdrawals_sat": audit.withdrawals_sat,
                    "l2_fees_sat": audit.l2_fees_sat,
                    "peg_ins": audit.peg_ins,
                    "peg_outs": audit.peg_outs,
                    "attested_deposits": audit.attested,
                },
                "seconds": started.elapsed().as_secs_f64(),
                "problems": problems
                    .iter()
                    .map(|p| json!({"batch": p.batch, "problem": p.message}))
                    .collect::<Vec<_>>(),
            })
        );
    } else if ok {
        println!(
            "ok: {batches} batches ({transfers} transfers) in {} anchors rebuilt from Bitcoin \
             and verified (one multi-pairing per anchor); final root {}{}; chain from {genesis}",
            replay.anchors.len(),
            to_hex(&root),
            last.map_or_else(String::new, |a| format!(
                " anchored by {} at height {}",
                a.txid, a.block.1
            )),
        );
    } else {
        for p in &problems {
            println!("batch {}: {}", p.batch, p.message);
        }
    }
    if ok && !json_out {
        println!(
            "bridge: reserves {} sat, shielded supply {} sat, surplus (operator float) {} sat; {} peg-ins, {} peg-outs{}",
            audit.reserves_sat,
            audit.supply_sat(),
            audit.surplus_sat(),
            audit.peg_ins,
            audit.peg_outs,
            if audit.attested > 0 {
                format!(", {} attested deposits", audit.attested)
            } else {
                String::new()
            }
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
