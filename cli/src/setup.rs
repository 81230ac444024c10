//! `veil setup`: the circuit-specific Groth16 setup of one shape (DESIGN §8), from OS randomness,
//! or with `--dev-seed N` deterministic and INSECURE (anyone can recompute the toxic waste and
//! forge proofs). Writes `pk-B{B}-D{D}.bin` (mode 0600) and `vk-B{B}-D{D}.bin` and prints the vk
//! SHA-256, the verifying key's identity.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rand::{CryptoRng, RngCore};
use veil_prover::keys::{self, KeyKind};

use crate::util;

/// Arguments of `veil setup`.
#[derive(clap::Args)]
pub struct Args {
    /// Transfer slots per batch (a power of two).
    #[arg(long, short = 'b')]
    batch_size: usize,
    /// Depth of the note and nullifier trees.
    #[arg(long, short = 'd')]
    depth: usize,
    /// Deterministic INSECURE keys from this seed, for tests and demos only.
    #[arg(long)]
    dev_seed: Option<u64>,
    /// Directory to write the keys into.
    #[arg(long, default_value = "keys")]
    out_dir: PathBuf,
    /// Overwrite existing key files.
    #[arg(long)]
    force: bool,
}

/// Runs the command.
pub fn run(args: Args) -> Result<std::process::ExitCode> {
    let shape = util::shape(args.batch_size, args.depth)?;
    let pk_path = args
        .out_dir
        .join(keys::key_file_name(KeyKind::Proving, shape));
    let vk_path = args
        .out_dir
        .join(keys::key_file_name(KeyKind::Verifying, shape));
    if !args.force {
        for p in [&pk_path, &vk_path] {
            if p.exists() {
                bail!("{} exists; pass --force to overwrite it", p.display());
            }
        }
    }
    let start = Instant::now();
    let vk_sha256 = match args.dev_seed {
        Some(seed) => {
            util::warn_dev_keys(seed);
            write_keys(shape, &mut veil_prover::dev_rng(seed), &pk_path, &vk_path)?
        }
        None => write_keys(shape, &mut rand::rngs::OsRng, &pk_path, &vk_path)?,
    };
    println!(
        "setup {shape} done in {:.1} s{}",
        start.elapsed().as_secs_f64(),
        if args.dev_seed.is_some() {
            " (INSECURE dev keys)"
        } else {
            ""
        }
    );
    println!("  proving key    {}", pk_path.display());
    println!("  verifying key  {}", vk_path.display());
    println!("  vk sha256      {vk_sha256}");
    Ok(std::process::ExitCode::SUCCESS)
}

/// Synthesises `shape`, runs the setup with `rng` and writes both keys; returns the vk SHA-256.
fn write_keys<R: RngCore + CryptoRng>(
    shape: veil_circuits::BatchShape,
    rng: &mut R,
    pk_path: &std::path::Path,
    vk_path: &std::path::Path,
) -> Result<String> {
    let pb = util::spinner(format!("synthesising the {shape} circuit"));
    // Also writes the R1CS cache beside the keys, which spares the node and workers the synthesis.
    let keys_dir = pk_path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(keys_dir)
        .with_context(|| format!("creating {}", keys_dir.display()))?;
    let shape_hash = keys::shape_hash_cached(keys_dir, shape);
    pb.set_message(format!("Groth16 setup of {shape}"));
    let (pk, vk) = veil_prover::setup(shape, rng).context("setup")?;
    pb.set_message("writing keys");
    keys::write_key_file(
        pk_path,
        keys::header(KeyKind::Proving, shape, shape_hash),
        &pk,
    )?;
    keys::write_key_file(
        vk_path,
        keys::header(KeyKind::Verifying, shape, shape_hash),
        &vk,
    )?;
    pb.finish_and_clear();
    let bytes = std::fs::read(vk_path).with_context(|| format!("reading {}", vk_path.display()))?;
    Ok(keys::vk_sha256(&bytes))
}
