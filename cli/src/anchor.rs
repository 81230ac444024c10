//! `veil anchor status`: each batch's Bitcoin anchor as the node reports it (txid, status,
//! confirmations, block), read from the public `GET /v1/state` and `GET /v1/batches/{n}`.
//! Use `veil verify-chain` to check the anchors against Bitcoin itself.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;
use veil_wallet::NodeClient;

/// `veil anchor ...`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Per batch: anchor txid, status (signed, unconfirmed, confirmed, anchored), confirmations.
    Status(StatusArgs),
}

/// Arguments of `veil anchor status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// Node URL.
    #[arg(long, default_value = crate::wallet::DEFAULT_NODE)]
    node: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Status(args) => status(args),
    }
}

fn status(args: StatusArgs) -> Result<ExitCode> {
    let client = NodeClient::new(&args.node)?;
    let state = client.state()?;
    let mut rows = Vec::new();
    for n in 0..state.batch_height {
        let b = client.batch(n)?;
        rows.push((n, b.status, b.anchor));
    }
    if args.json {
        let batches: Vec<_> = rows
            .iter()
            .map(
                |(n, status, anchor)| json!({"batch": n, "batch_status": status, "anchor": anchor}),
            )
            .collect();
        println!(
            "{}",
            json!({
                "batch_height": state.batch_height,
                "proven_height": state.proven_height,
                "anchored_height": state.anchored_height,
                "batches": batches,
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} batches, {} proven, {} anchored",
        state.batch_height,
        state.proven_height,
        state
            .anchored_height
            .map_or_else(|| "?".to_owned(), |h| h.to_string())
    );
    for (n, status, anchor) in rows {
        match anchor {
            Some(a) => {
                let block = a
                    .block_height
                    .map(|h| format!(", block {h}"))
                    .unwrap_or_default();
                let bumps = match a.versions.len() {
                    0 | 1 => String::new(),
                    v => format!(", {} fee bumps", v - 1),
                };
                println!(
                    "batch {n}: {} {} ({} confirmations{block}{bumps})",
                    a.txid, a.status, a.confirmations
                );
            }
            None => println!("batch {n}: not anchored ({status})"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
