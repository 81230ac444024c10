//! `veil fetch-batch`: downloads a proven batch from a node (`GET /v1/batches/{n}`) and writes
//! it as the files `veil verify` reads: `batch-{n}.json` (public part only) and `proof-{n}.json`.
//! The shape comes from the verifying key's header, and the proof file names that key's SHA-256,
//! so `veil verify --vk` with the same key checks the node's proof against public inputs
//! recomputed from the published transfers (a node stating a wrong `batch_hash` is caught there).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::json;
use veil_circuits::batch::file::{BatchFile, BATCH_FILE_VERSION};
use veil_prover::keys::{self, KeyKind};
use veil_prover::proof::{proof_from_hex, ProofFile};
use veil_wallet::NodeClient;

use crate::util;

/// Arguments of `veil fetch-batch`.
#[derive(clap::Args)]
pub struct Args {
    /// Node URL (default: $VEIL_NODE, else http://127.0.0.1:8080).
    #[arg(long)]
    node: Option<String>,
    /// Batch number.
    #[arg(long)]
    number: u64,
    /// Verifying key of the node's shape (`vk-B{B}-D{D}.bin`).
    #[arg(long)]
    vk: PathBuf,
    /// Directory to write `batch-N.json` and `proof-N.json` into.
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(args: Args) -> Result<ExitCode> {
    let header = keys::read_header(&args.vk)?;
    if header.kind != KeyKind::Verifying {
        bail!("{} is not a verifying key", args.vk.display());
    }
    let shape = util::shape(header.batch_size as usize, header.depth as usize)?;
    let vk_bytes =
        std::fs::read(&args.vk).with_context(|| format!("cannot read {}", args.vk.display()))?;
    let vk_sha256 = keys::vk_sha256(&vk_bytes);

    let client = NodeClient::new(&crate::wallet::node_url(args.node))?;
    let b = client.batch(args.number)?;
    if b.number != args.number {
        bail!(
            "asked for batch {} but the node sent batch {}",
            args.number,
            b.number
        );
    }
    let Some(proof_hex) = b.proof.as_deref() else {
        bail!("batch {} is {}, not proven yet", args.number, b.status);
    };
    if b.public_data.len() > shape.batch_size {
        bail!(
            "batch {} has {} transfers but the key is for B = {}",
            args.number,
            b.public_data.len(),
            shape.batch_size
        );
    }
    let proof = proof_from_hex(proof_hex)
        .with_context(|| format!("node's proof of batch {}", args.number))?;
    let batch_file = BatchFile {
        version: BATCH_FILE_VERSION,
        batch_size: shape.batch_size,
        depth: shape.depth,
        batch_number: b.number,
        old_state_root: b.public_inputs.old_state_root,
        new_state_root: b.public_inputs.new_state_root,
        batch_hash: b.public_inputs.batch_hash,
        transfers: b.public_data,
        witness: None,
    };
    let proof_file = ProofFile::new(shape, b.number, &proof, b.public_inputs, vk_sha256);
    let batch_path = args.out_dir.join(format!("batch-{}.json", b.number));
    let proof_path = args.out_dir.join(format!("proof-{}.json", b.number));
    util::write_atomic(&batch_path, batch_file.to_json().as_bytes())?;
    util::write_atomic(&proof_path, proof_file.to_json().as_bytes())?;
    if args.json {
        println!(
            "{}",
            json!({"batch": batch_path, "proof": proof_path, "number": b.number,
                "transfers": batch_file.transfers.len()})
        );
    } else {
        println!(
            "batch {} ({} transfers): wrote {} and {}",
            b.number,
            batch_file.transfers.len(),
            batch_path.display(),
            proof_path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
