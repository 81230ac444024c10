//! `veil prove`: proves a batch file that carries its witness with a proving key and writes a
//! proof file (`docs/batch-file.md`). The key must be for the batch's shape and this build's
//! circuit; the batch's stated `batch_hash` must be the hash of its transfers, and the witness
//! must publish exactly those transfers and satisfy the circuit.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use rand::{CryptoRng, RngCore};
use veil_circuits::batch::file::BatchFile;
use veil_prover::proof::ProofFile;
use veil_prover::{Prover, SynthesizedWitness};

use crate::util;

/// Arguments of `veil prove`.
#[derive(clap::Args)]
pub struct Args {
    /// Batch file with a `witness` object.
    #[arg(long)]
    batch: PathBuf,
    /// Proving key (`pk-B{B}-D{D}.bin`).
    #[arg(long)]
    pk: PathBuf,
    /// Where to write the proof file.
    #[arg(long)]
    out: PathBuf,
    /// Deterministic proof randomness from this seed (reproducible fixtures). INSECURE: the
    /// proof is then not zero-knowledge.
    #[arg(long)]
    dev_seed: Option<u64>,
}

/// Reads and checks a batch file for proving.
pub fn read_batch(path: &std::path::Path) -> Result<BatchFile> {
    let text = util::read_text(path)?;
    let file = BatchFile::from_json(&text).with_context(|| path.display().to_string())?;
    file.public_batch()
        .with_context(|| path.display().to_string())?;
    Ok(file)
}

/// Proves `batch` with `prover` and returns its proof file.
pub fn prove_batch<R: RngCore + CryptoRng>(
    prover: &Prover,
    batch: &BatchFile,
    rng: &mut R,
) -> Result<ProofFile> {
    let witness = prover.synthesize(batch.circuit()?)?;
    proof_file(prover, batch, witness, rng)
}

/// Proves a witness of `batch` synthesised for `prover` and returns its proof file.
fn proof_file<R: RngCore + CryptoRng>(
    prover: &Prover,
    batch: &BatchFile,
    witness: SynthesizedWitness,
    rng: &mut R,
) -> Result<ProofFile> {
    let public = batch.public_batch()?;
    let (proof, _) = prover.prove_synthesized(witness, rng)?;
    Ok(ProofFile::new(
        public.shape,
        public.batch_number,
        &proof,
        public.public_inputs,
        prover.vk_sha256(),
    ))
}

/// Runs the command.
pub fn run(args: Args) -> Result<std::process::ExitCode> {
    let batch = read_batch(&args.batch)?;
    let shape = batch.shape()?;
    // Decode and check the witness before the (slow, for big shapes) key load.
    let circuit = batch
        .circuit()
        .with_context(|| args.batch.display().to_string())?;
    let start = Instant::now();
    let pb = util::spinner(format!(
        "loading {} while synthesising the {shape} witness",
        args.pk.display()
    ));
    let (prover, witness) = match Prover::load_and_synthesize(&args.pk, shape, circuit) {
        Ok(loaded) => loaded,
        Err(e) => {
            pb.finish_and_clear();
            return Err(anyhow::Error::new(e).context(format!("proving {}", args.batch.display())));
        }
    };
    let loaded = start.elapsed();
    pb.set_message(format!("proving batch {} ({shape})", batch.batch_number));
    let proof = match args.dev_seed {
        Some(seed) => {
            pb.suspend(|| {
                eprintln!(
                    "WARNING: deterministic proof randomness (--dev-seed {seed}): the proof is not zero-knowledge"
                )
            });
            proof_file(&prover, &batch, witness, &mut veil_prover::dev_rng(seed))
        }
        None => proof_file(&prover, &batch, witness, &mut rand::rngs::OsRng),
    };
    pb.finish_and_clear();
    let proof = proof.with_context(|| format!("proving {}", args.batch.display()))?;
    util::write_atomic(&args.out, proof.to_json().as_bytes())?;
    let total = start.elapsed();
    println!(
        "proved batch {} ({shape}) in {:.2} s (loading the key and circuit while synthesising the witness {:.2} s, proving {:.2} s): {}",
        proof.batch_number,
        total.as_secs_f64(),
        loaded.as_secs_f64(),
        (total - loaded).as_secs_f64(),
        args.out.display()
    );
    println!("  vk sha256  {}", proof.vk_sha256);
    Ok(std::process::ExitCode::SUCCESS)
}
