//! `veil deposit`: the operator credits a Bitcoin deposit to a payment address (DESIGN §6): a
//! transfer with `public_in = amount` and `deposit_ref` = the hash of the funding outpoint
//! (`veil_wallet::btc`), from a one-time signer, posted to `POST /v1/deposits` with the
//! operator's bearer token (`--token`, else `$VEIL_OPERATOR_TOKEN`, else the token file of a dev
//! node on this machine, `--data-dir`/`operator-token`: [`crate::dev_token`]). The transfer is derived
//! deterministically from the token and the deposit (`build_deposit_idempotent`), so running the
//! same command again is a safe retry: it never credits twice.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use veil_circuits::PaymentAddress;
use veil_wallet::{btc, build_deposit_idempotent, NodeClient};
use veil_wire::TransferRequest;

use crate::wallet::NetworkArg;

/// Arguments of `veil deposit`.
#[derive(clap::Args)]
pub struct Args {
    /// Node URL.
    #[arg(long, default_value = crate::wallet::DEFAULT_NODE)]
    node: String,
    /// Operator bearer token (default: $VEIL_OPERATOR_TOKEN, else the dev node's token file in
    /// --data-dir).
    #[arg(long)]
    token: Option<String>,
    /// Data directory of a dev node on this machine (`veil node --dev-token`, as `make run`
    /// starts it): its `operator-token` is used when neither --token nor $VEIL_OPERATOR_TOKEN is
    /// given.
    #[arg(long, default_value = "data")]
    data_dir: std::path::PathBuf,
    /// Recipient payment address.
    #[arg(long)]
    to: String,
    /// Amount in satoshis.
    #[arg(long)]
    amount: u64,
    /// Bitcoin outpoint funding the deposit, TXID:VOUT.
    #[arg(long)]
    outpoint: String,
    /// Address network.
    #[arg(long, value_enum, default_value = "regtest")]
    network: NetworkArg,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(args: Args) -> Result<ExitCode> {
    let token = match (args.token, std::env::var("VEIL_OPERATOR_TOKEN")) {
        (Some(t), _) | (None, Ok(t)) => t,
        (None, Err(_)) => {
            let path = crate::dev_token::path(&args.data_dir);
            crate::dev_token::read(&path).with_context(|| {
                format!(
                    "no --token given, VEIL_OPERATOR_TOKEN is not set, and no dev node token at {} (a node started with --dev-token, as `make run` does, writes it)",
                    path.display()
                )
            })?
        }
    };
    let to = PaymentAddress::decode(args.to.trim(), args.network.into())
        .with_context(|| format!("recipient {:?}", args.to))?;
    let outpoint = btc::parse_outpoint(&args.outpoint)?;
    let client = NodeClient::new(&args.node)?;
    // Deterministic under the token: a retry re-posts the same transfer (the node answers with
    // its status), and another deposit for the same outpoint is refused (`duplicate_deposit`).
    let transfer = build_deposit_idempotent(token.as_bytes(), &to, args.amount, &outpoint)?;
    let (id, status) = client.deposit(&TransferRequest::from(&transfer), &token)?;
    if args.json {
        println!(
            "{}",
            json!({"id": id, "status": status, "amount": args.amount, "outpoint": outpoint.to_string()})
        );
    } else {
        println!(
            "deposit {id}: {} sat to {} from {outpoint}, {status}",
            args.amount,
            args.to.trim()
        );
    }
    Ok(ExitCode::SUCCESS)
}
