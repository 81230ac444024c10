//! `veil verify`: checks a proof file against a verifying key and a batch file.
//!
//! The public inputs are the batch file's `old_state_root` and `new_state_root` and the
//! `batch_hash` recomputed from its transfers (a file whose stated `batch_hash` differs is
//! refused). Exit status: 0 valid, 1 the proof does not verify, 2 bad input (a missing or corrupt
//! file, bad JSON, files of different shapes or batches, a `batch_hash` mismatch, a proof made
//! for another vk or other public inputs, undecodable proof bytes). Every outcome is one line, or
//! with `--json` one JSON object: `{"valid": bool, ...}` or `{"error": {"kind", "message"}}`.
//!
//! `veil verify --all` checks a node's whole history instead of files: every batch's proof
//! against public inputs recomputed from its published transfers, the state roots chained from
//! genesis, and the published notes ([`crate::verify_chain::audit_node`] without Bitcoin; the
//! anchors are `veil verify-chain`'s). Exit 0 when everything holds, 1 with one line per problem
//! (`batch N: ...`), 2 when the node cannot be queried or the key not read.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use serde::Serialize;
use veil_circuits::batch::file::{BatchFile, BatchFileError, PublicBatch};
use veil_circuits::batch::BatchPublicInputs;
use veil_circuits::field::to_hex;
use veil_prover::keys;
use veil_prover::proof::{ProofFile, PROOF_FILE_VERSION};

use crate::util;

/// Arguments of `veil verify`.
#[derive(clap::Args)]
pub struct Args {
    /// Verifying key (`vk-B{B}-D{D}.bin`); with --all also a directory holding the node's
    /// shape's (default `keys`).
    #[arg(long, required_unless_present = "all")]
    vk: Option<PathBuf>,
    /// Batch file (its public part is enough).
    #[arg(long, required_unless_present = "all")]
    batch: Option<PathBuf>,
    /// Proof file.
    #[arg(long, required_unless_present = "all")]
    proof: Option<PathBuf>,
    /// Instead of files, every batch of a node: each proof against public inputs recomputed
    /// from its published transfers, the roots chained from genesis, the published notes.
    #[arg(long, conflicts_with_all = ["batch", "proof"])]
    all: bool,
    /// With --all: the node (default: $VEIL_NODE, else http://127.0.0.1:8080).
    #[arg(long, requires = "all")]
    node: Option<String>,
    /// Print one JSON object instead of a line.
    #[arg(long)]
    json: bool,
}

/// Why the inputs could not be checked (exit 2).
struct BadInput {
    kind: &'static str,
    error: anyhow::Error,
}

fn bad(kind: &'static str) -> impl FnOnce(anyhow::Error) -> BadInput {
    move |error| BadInput { kind, error }
}

#[derive(Serialize)]
struct Verdict {
    valid: bool,
    batch_number: u64,
    batch_size: usize,
    depth: usize,
    #[serde(with = "veil_circuits::field::serde_hex")]
    old_state_root: veil_circuits::Fr,
    #[serde(with = "veil_circuits::field::serde_hex")]
    new_state_root: veil_circuits::Fr,
    #[serde(with = "veil_circuits::field::serde_hex")]
    batch_hash: veil_circuits::Fr,
    vk_sha256: String,
}

#[derive(Serialize)]
struct ErrorReport<'a> {
    kind: &'a str,
    message: String,
}

/// The three files of one verification.
struct Files {
    vk: PathBuf,
    batch: PathBuf,
    proof: PathBuf,
}

/// Runs the command; the exit status carries the verdict.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (Some(vk), Some(batch), Some(proof)) = (args.vk.clone(), args.batch, args.proof) else {
        return run_all(args.node, args.vk, args.json);
    };
    match check(&Files { vk, batch, proof }) {
        Ok(v) => {
            if args.json {
                println!("{}", serde_json::to_string(&v)?);
            } else if v.valid {
                println!(
                    "valid: batch {}, B={}, D={}, new root {}",
                    v.batch_number,
                    v.batch_size,
                    v.depth,
                    to_hex(&v.new_state_root)
                );
            } else {
                println!(
                    "invalid: batch {}, B={}, D={}: the proof does not verify for this batch and key",
                    v.batch_number, v.batch_size, v.depth
                );
            }
            Ok(if v.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err(BadInput { kind, error }) if args.json => {
            let report = serde_json::json!({
                "error": ErrorReport { kind, message: util::one_line(&error) }
            });
            println!("{report}");
            Ok(ExitCode::from(2))
        }
        Err(BadInput { error, .. }) => Err(error),
    }
}

fn check(args: &Files) -> Result<Verdict, BadInput> {
    let batch = read_batch(args)?;
    let shape = batch.shape;

    let text = util::read_text(&args.proof).map_err(bad("proof_file"))?;
    let proof_file = ProofFile::from_json(&text)
        .map_err(|e| anyhow!("{}: invalid proof file: {e}", args.proof.display()))
        .map_err(bad("proof_file"))?;
    if proof_file.version != PROOF_FILE_VERSION {
        return Err(bad("proof_file")(anyhow!(
            "{}: proof file version {}, this build reads version {PROOF_FILE_VERSION}",
            args.proof.display(),
            proof_file.version
        )));
    }
    if (proof_file.batch_size, proof_file.depth) != (shape.batch_size, shape.depth) {
        return Err(bad("shape_mismatch")(anyhow!(
            "the proof is for B = {}, D = {} but the batch is B = {}, D = {}",
            proof_file.batch_size,
            proof_file.depth,
            shape.batch_size,
            shape.depth
        )));
    }
    if proof_file.batch_number != batch.batch_number {
        return Err(bad("batch_mismatch")(anyhow!(
            "the proof is for batch {} but the batch file is batch {}",
            proof_file.batch_number,
            batch.batch_number
        )));
    }
    let proof = proof_file
        .proof()
        .map_err(|e| anyhow!("{}: {e}", args.proof.display()))
        .map_err(bad("proof_encoding"))?;

    let vk = keys::load_verifying_key(&args.vk, shape)
        .map_err(anyhow::Error::from)
        .map_err(bad("verifying_key"))?;
    if proof_file.vk_sha256 != vk.sha256 {
        return Err(bad("vk_mismatch")(anyhow!(
            "the proof was made for the vk with sha256 {}, but {} has sha256 {}",
            proof_file.vk_sha256,
            args.vk.display(),
            vk.sha256
        )));
    }
    let stated = BatchPublicInputs::from(proof_file.public_inputs);
    if stated != batch.public_inputs {
        let which = [
            (
                "old_state_root",
                stated.old_state_root != batch.public_inputs.old_state_root,
            ),
            (
                "new_state_root",
                stated.new_state_root != batch.public_inputs.new_state_root,
            ),
            (
                "batch_hash",
                stated.batch_hash != batch.public_inputs.batch_hash,
            ),
        ]
        .iter()
        .filter(|(_, differs)| *differs)
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ");
        return Err(bad("public_inputs_mismatch")(anyhow!(
            "the proof file's public inputs differ from the batch's ({which}): not a proof of this batch"
        )));
    }

    let pvk = veil_verifier::prepare(&vk.vk);
    let valid = veil_verifier::verify(&pvk, &batch.public_inputs, &proof)
        .map_err(anyhow::Error::from)
        .map_err(bad("verification"))?;
    Ok(Verdict {
        valid,
        batch_number: batch.batch_number,
        batch_size: shape.batch_size,
        depth: shape.depth,
        old_state_root: batch.public_inputs.old_state_root,
        new_state_root: batch.public_inputs.new_state_root,
        batch_hash: batch.public_inputs.batch_hash,
        vk_sha256: vk.sha256,
    })
}

fn read_batch(args: &Files) -> Result<PublicBatch, BadInput> {
    let path = args.batch.display();
    let text = util::read_text(&args.batch).map_err(bad("batch_file"))?;
    let file = BatchFile::from_json(&text)
        .map_err(|e| anyhow!("{path}: {e}"))
        .map_err(bad("batch_file"))?;
    file.public_batch().map_err(|e| {
        let kind = match e {
            BatchFileError::BatchHashMismatch { .. } => "batch_hash_mismatch",
            _ => "batch_file",
        };
        bad(kind)(anyhow!("{path}: {e}"))
    })
}

/// `veil verify --all`: the node's whole history, without Bitcoin.
fn run_all(node: Option<String>, vk: Option<PathBuf>, as_json: bool) -> anyhow::Result<ExitCode> {
    let client = veil_wallet::NodeClient::new(&crate::wallet::node_url(node))?;
    let vk = vk.unwrap_or_else(|| PathBuf::from("keys"));
    let audit = crate::verify_chain::audit_node(&client, &vk, None, None, 0)?;
    let valid = audit.problems.is_empty();
    if as_json {
        let problems: Vec<_> = audit
            .problems
            .iter()
            .map(|(b, m)| serde_json::json!({"batch": b, "problem": m}))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "valid": valid,
                "batches": audit.batches,
                "final_root": audit.final_root.map(|r| to_hex(&r)),
                "vk_sha256": audit.vk_sha256,
                "problems": problems,
            })
        );
    } else if valid {
        println!(
            "valid: {} batches of {} verified (one multi-pairing), roots chain from genesis{}",
            audit.batches,
            client.url(),
            audit
                .final_root
                .map(|r| format!(" to {}", to_hex(&r)))
                .unwrap_or_default()
        );
    } else {
        for (b, m) in &audit.problems {
            println!("batch {b}: {m}");
        }
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
