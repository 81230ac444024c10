//! `veil deposit`: the operator credits a Bitcoin deposit to a payment address (DESIGN §6): a
//! transfer with `public_in = amount` and `deposit_ref` = the hash of the funding outpoint
//! (`veil_wallet::btc`), from a one-time signer, posted to `POST /v1/deposits` with the
//! operator's bearer token (`--token`, else `$VEIL_OPERATOR_TOKEN`, else the token file of a dev
//! node on this machine, `--data-dir`/`operator-token`: [`crate::dev_token`]). The transfer is derived
//! deterministically from the token and the deposit (`build_deposit_idempotent`), so running the
//! same command again is a safe retry: it never credits twice.
//!
//! On a node without Bitcoin (`make run`'s) there is no real funding output, so `--outpoint`
//! may be left out: a fresh random outpoint names the deposit (every run is then a new deposit).
//! `--wait` returns once the deposit is in a proven batch, so the recipient's `sync` finds it.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use rand::RngCore;
use serde_json::json;
use veil_circuits::PaymentAddress;
use veil_wallet::client::BridgeInfo;
use veil_wallet::{btc, build_deposit_idempotent, NodeClient, Until};
use veil_wire::TransferRequest;

use crate::wallet::NetworkArg;

/// Arguments of `veil deposit`.
#[derive(clap::Args)]
pub struct Args {
    /// Node URL (default: $VEIL_NODE, else http://127.0.0.1:8080).
    #[arg(long)]
    node: Option<String>,
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
    /// Bitcoin outpoint funding the deposit, TXID:VOUT. Optional on a node without Bitcoin,
    /// where a deposit is the operator's word: a fresh random one is used.
    #[arg(long)]
    outpoint: Option<String>,
    /// Wait until the deposit is in a proven batch.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds (default 600; 0: no limit).
    #[arg(long, requires = "wait")]
    timeout: Option<u64>,
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
    let client = NodeClient::new(&crate::wallet::node_url(args.node))?;
    let outpoint = match &args.outpoint {
        Some(o) => btc::parse_outpoint(o)?,
        None => made_up_outpoint(&client.bridge()?, &mut rand::rngs::OsRng)?,
    };
    // Deterministic under the token: a retry re-posts the same transfer (the node answers with
    // its status), and another deposit for the same outpoint is refused (`duplicate_deposit`).
    let transfer = build_deposit_idempotent(token.as_bytes(), &to, args.amount, &outpoint)?;
    let (id, mut status) = client.deposit(&TransferRequest::from(&transfer), &token)?;
    let mut batch = None;
    if args.wait {
        let until = Until::Proven;
        let (spinner, mut show) = crate::wallet::wait_spinner("deposit");
        let result = veil_wallet::wait::wait_at_node(
            &client,
            &id,
            until,
            crate::wallet::wait_timeout(args.timeout, until),
            &mut show,
        );
        if let Some(pb) = spinner {
            pb.finish_and_clear();
        }
        let s = result?;
        (status, batch) = (s.status, s.batch);
    }
    if args.json {
        println!(
            "{}",
            json!({"id": id, "status": status, "batch": batch, "amount": args.amount,
                "outpoint": outpoint.to_string()})
        );
    } else {
        let batch = batch.map(|n| format!(" in batch {n}")).unwrap_or_default();
        println!(
            "deposit {id}: {} sat to {} from {outpoint}, {status}{batch}",
            args.amount,
            args.to.trim()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The outpoint naming a deposit given without one: random, and only on a node without
/// Bitcoin (there a real deposit must name the output that funds it).
fn made_up_outpoint(bridge: &BridgeInfo, rng: &mut impl RngCore) -> Result<OutPoint> {
    if bridge.bitcoin {
        bail!(
            "the node is on Bitcoin: --outpoint TXID:VOUT must name the output funding the deposit"
        );
    }
    let mut txid = [0u8; 32];
    rng.fill_bytes(&mut txid);
    Ok(OutPoint::new(Txid::from_byte_array(txid), 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridge(bitcoin: bool) -> BridgeInfo {
        serde_json::from_value(json!({"bitcoin": bitcoin, "deposits": "attested"})).unwrap()
    }

    #[test]
    fn an_outpoint_is_made_up_only_without_bitcoin_and_fresh_each_time() {
        let mut rng = rand::rngs::OsRng;
        let a = made_up_outpoint(&bridge(false), &mut rng).unwrap();
        let b = made_up_outpoint(&bridge(false), &mut rng).unwrap();
        assert_ne!(a, b);
        assert_eq!(btc::parse_outpoint(&a.to_string()).unwrap(), a);
        let err = made_up_outpoint(&bridge(true), &mut rng).unwrap_err();
        assert!(err.to_string().contains("--outpoint"), "{err}");
    }
}
