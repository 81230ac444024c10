//! `veil dev-batches`: writes the batches of the deterministic demo history
//! (`veil_fixtures::mixed_history`: deposits, a private payment, a withdrawal with fee, a
//! two-input merge) as batch files with witnesses, `batch-{n}.json` (mode 0600: witnesses hold
//! nullifier keys and note openings), for demos and fixtures.

use std::path::{Path, PathBuf};

use anyhow::Result;
use veil_circuits::batch::file::BatchFile;
use veil_circuits::batch::BatchShape;

use crate::util;

/// Arguments of `veil dev-batches`.
#[derive(clap::Args)]
pub struct Args {
    /// Transfer slots per batch (a power of two).
    #[arg(long, short = 'b')]
    batch_size: usize,
    /// Depth of the note and nullifier trees.
    #[arg(long, short = 'd')]
    depth: usize,
    /// Directory to write `batch-N.json` into.
    #[arg(long)]
    out_dir: PathBuf,
    /// Seed of the history (keys, note randomness).
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// Builds the history of `shape` and `seed` and writes its batch files into `dir`; returns the
/// paths in batch order.
pub fn write_batches(shape: BatchShape, seed: u64, dir: &Path) -> Result<Vec<PathBuf>> {
    let (_, batches) = veil_fixtures::mixed_history(shape, seed);
    let mut paths = Vec::with_capacity(batches.len());
    for built in &batches {
        let file = BatchFile::from_built(built, true)?;
        let path = dir.join(format!("batch-{}.json", file.batch_number));
        // The witness holds nullifier keys and note openings: owner-only.
        util::write_private(&path, file.to_json().as_bytes())?;
        paths.push(path);
    }
    Ok(paths)
}

/// Runs the command.
pub fn run(args: Args) -> Result<std::process::ExitCode> {
    let shape = util::shape(args.batch_size, args.depth)?;
    let pb = util::spinner(format!(
        "building the demo history ({shape}, seed {})",
        args.seed
    ));
    let paths = write_batches(shape, args.seed, &args.out_dir);
    pb.finish_and_clear();
    for p in paths? {
        println!("{}", p.display());
    }
    Ok(std::process::ExitCode::SUCCESS)
}
