//! `veil fixtures`: regenerates the committed proof-regression fixtures deterministically
//! (`make fixtures`). For shape B = 2, D = 8: the dev-seed-1 verifying key `vk-B2-D8.bin`, the
//! batch files of `mixed_history(shape, 7)` as `batch-{n}.json` (with witnesses), their proofs
//! `proof-{n}.json` made with proof randomness `dev_rng(n)` (so they reproduce byte for byte),
//! and `snapshot.json` with constraint counts and shape hashes of a few shapes and the vk
//! SHA-256 of (2, 8). INSECURE by design: everything here is for tests.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use veil_circuits::batch::BatchShape;
use veil_prover::keys::{self, KeyKind};
use veil_prover::Prover;

use crate::util;

/// The fixtures' proving shape.
pub const SHAPE: (usize, usize) = (2, 8);
/// Dev seed of the fixtures' setup.
pub const DEV_SEED: u64 = 1;
/// Seed of the fixtures' history.
pub const HISTORY_SEED: u64 = 7;
/// Shapes whose constraint counts are snapshotted.
pub const SNAPSHOT_SHAPES: [(usize, usize); 4] = [(1, 8), (2, 8), (4, 8), (2, 16)];

/// Arguments of `veil fixtures`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory to (re)write.
    #[arg(long, default_value = "fixtures/data")]
    out_dir: PathBuf,
}

/// `snapshot.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Dev seed of the (2, 8) keys.
    pub dev_seed: u64,
    /// Seed of the history.
    pub history_seed: u64,
    /// One entry per snapshotted shape.
    pub shapes: Vec<ShapeSnapshot>,
}

/// One shape in `snapshot.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapeSnapshot {
    /// `B`.
    pub batch_size: usize,
    /// `D`.
    pub depth: usize,
    /// Constraints (setup-mode synthesis).
    pub constraints: usize,
    /// Public inputs.
    pub public_inputs: usize,
    /// SHA-256 of the constraint system.
    pub shape_hash: String,
    /// The dev-seed vk's SHA-256, for the proving shape only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vk_sha256: Option<String>,
}

/// Runs the command.
pub fn run(args: Args) -> Result<std::process::ExitCode> {
    let shape = BatchShape::new(SHAPE.0, SHAPE.1)?;
    let dir = &args.out_dir;
    util::warn_dev_keys(DEV_SEED);
    remove_stale(dir)?;
    let (_, history) = veil_fixtures::mixed_history(shape, HISTORY_SEED);
    let pb = util::steps(3 + history.len() as u64 + SNAPSHOT_SHAPES.len() as u64);

    pb.set_message(format!("Groth16 setup of {shape}"));
    let shape_hash = keys::shape_hash(shape);
    let (pk, vk) = veil_prover::setup(shape, &mut veil_prover::dev_rng(DEV_SEED))?;
    let vk_path = dir.join(keys::key_file_name(KeyKind::Verifying, shape));
    keys::write_key_file(
        &vk_path,
        keys::header(KeyKind::Verifying, shape, shape_hash),
        &vk,
    )?;
    let vk_sha256 = keys::vk_sha256(&std::fs::read(&vk_path)?);
    pb.inc(1);

    pb.set_message("writing batch files");
    let batch_paths = crate::dev_batches::write_batches(shape, HISTORY_SEED, dir)?;
    pb.inc(1);

    pb.set_message("loading the prover");
    let prover = Prover::new(shape, pk)?;
    anyhow::ensure!(prover.vk_sha256() == vk_sha256, "vk identity mismatch");
    pb.inc(1);
    for path in &batch_paths {
        let batch = crate::prove::read_batch(path)?;
        let n = batch.batch_number;
        pb.set_message(format!("proving batch {n}"));
        let proof = crate::prove::prove_batch(&prover, &batch, &mut veil_prover::dev_rng(n))
            .with_context(|| format!("proving {}", path.display()))?;
        util::write_atomic(
            &dir.join(format!("proof-{n}.json")),
            proof.to_json().as_bytes(),
        )?;
        pb.inc(1);
    }

    let mut shapes = Vec::new();
    for (b, d) in SNAPSHOT_SHAPES {
        let s = BatchShape::new(b, d)?;
        pb.set_message(format!("synthesising {s}"));
        let m = keys::constraint_matrices(s);
        shapes.push(ShapeSnapshot {
            batch_size: b,
            depth: d,
            constraints: m.num_constraints,
            public_inputs: m.num_instance_variables - 1,
            shape_hash: hex::encode(keys::matrices_hash(&m)),
            vk_sha256: (s == shape).then(|| vk_sha256.clone()),
        });
        pb.inc(1);
    }
    let snapshot = Snapshot {
        dev_seed: DEV_SEED,
        history_seed: HISTORY_SEED,
        shapes,
    };
    let mut json = serde_json::to_string_pretty(&snapshot)?;
    json.push('\n');
    util::write_atomic(&dir.join("snapshot.json"), json.as_bytes())?;
    pb.finish_and_clear();
    println!(
        "fixtures for {shape} in {}: {} batches and proofs, vk sha256 {vk_sha256}",
        dir.display(),
        batch_paths.len()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// Removes `batch-*.json` and `proof-*.json` left from an earlier (perhaps longer) history.
fn remove_stale(dir: &std::path::Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if (name.starts_with("batch-") || name.starts_with("proof-")) && name.ends_with(".json") {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}
