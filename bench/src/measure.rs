//! `veil-bench prover-one`: one measurement of one shape at one thread count, in its own process
//! (the parent sets `RAYON_NUM_THREADS`). Builds a full batch of real transfers, times the
//! witness builder, setup (or loads the keys the setup run wrote), proving and verification, and
//! prints a [`Measurement`] as one line of JSON with the process's peak RSS.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use ark_bn254::{Bn254, Fr};
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, ProvingKey, VerifyingKey};
use ark_relations::r1cs::{ConstraintSystem, SynthesisMode};
use ark_serialize::CanonicalSerialize;
use serde::{Deserialize, Serialize};
use veil_circuits::batch::{BatchCircuit, BatchPublicInputs, BatchShape, BuiltBatch};
use veil_fixtures::Scenario;
use veil_prover::keys::{self, KeyKind};

/// Seed of the (insecure) dev setup.
const SETUP_SEED: u64 = 0xbe4c;
/// Seed of the scenario that produces the batch.
const SCENARIO_SEED: u64 = 1;
/// Seed of the prover's blinding randomness.
const PROVE_SEED: u64 = 0x9407e;
/// Seed of the proof rerandomisations.
const RERANDOMISE_SEED: u64 = 0x4e4a;
/// Single verifications whose median is reported.
const VERIFY_RUNS: usize = 20;

/// Arguments of the hidden `prover-one` subcommand.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Transfer slots per batch.
    #[arg(long)]
    pub batch_size: usize,
    /// Tree depth.
    #[arg(long)]
    pub depth: usize,
    /// Threads the parent put in `RAYON_NUM_THREADS` (checked against rayon's pool).
    #[arg(long)]
    pub threads: usize,
    /// Where the setup run writes the keys and later runs read them.
    #[arg(long)]
    pub key_dir: PathBuf,
    /// Run the setup (timed), count constraints and write the keys to `--key-dir`; without it,
    /// read the keys from there and measure proving only.
    #[arg(long)]
    pub setup: bool,
    /// Distinct proofs of the batch (rerandomisations) to verify one by one; 0 skips.
    #[arg(long, default_value_t = 0)]
    pub verify_batch: usize,
}

/// What one child process measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    /// Batch size `B`.
    pub batch_size: usize,
    /// Tree depth `D`.
    pub depth: usize,
    /// Size of rayon's global pool in this process.
    pub threads: usize,
    /// Real transfers in the proven batch (all `B` slots).
    pub transfers: usize,
    /// Constraints of the circuit (setup-mode synthesis); only in the setup run.
    pub constraints: Option<usize>,
    /// Native witness builder (`build_batch`) for the full batch, seconds.
    pub witness_s: f64,
    /// Constraint synthesis and Groth16 setup, seconds; only in the setup run.
    pub setup_s: Option<f64>,
    /// Writing (setup run, including the shape hash) or reading the key files, seconds.
    pub key_io_s: f64,
    /// Proving with `veil_prover::Prover` (witness synthesis, MSMs, self-check), seconds.
    pub prove_s: f64,
    /// Preparing the verifying key once, milliseconds.
    pub prepare_vk_ms: f64,
    /// Median of single verifications with the prepared key, milliseconds.
    pub verify_ms: f64,
    /// Distinct proofs verified one by one for `verify_each_ms_per_proof` (0: not run).
    pub verify_batch_proofs: usize,
    /// One-by-one verification of `verify_batch_proofs` rerandomised proofs, ms per proof.
    pub verify_each_ms_per_proof: Option<f64>,
    /// Batch verification of the same proofs, ms per proof: `null` until `veil_verifier`
    /// offers batch verification and `verify_proofs` below measures it.
    pub batch_verify_ms_per_proof: Option<f64>,
    /// Compressed size of the proving key, bytes.
    pub pk_bytes: usize,
    /// Peak resident set size of this process (`VmHWM`), bytes.
    pub peak_rss_bytes: u64,
}

/// Runs one measurement and prints it as JSON on stdout (progress goes to stderr).
pub fn run(args: Args) -> Result<()> {
    let m = measure(&args)?;
    println!("{}", serde_json::to_string(&m)?);
    Ok(())
}

fn measure(args: &Args) -> Result<Measurement> {
    let shape = BatchShape::new(args.batch_size, args.depth).context("bad shape")?;
    let threads = rayon::current_num_threads();
    ensure!(
        threads == args.threads,
        "rayon runs {threads} threads, expected {} (is RAYON_NUM_THREADS set?)",
        args.threads
    );
    let log = |what: &str, secs: f64| eprintln!("  [{shape} T={threads}] {what}: {secs:.2} s");

    let constraints = if args.setup {
        let n = count_constraints(shape)?;
        eprintln!("  [{shape} T={threads}] constraints: {n}");
        Some(n)
    } else {
        None
    };

    let (built, witness_s) = build_full_batch(shape)?;
    log("witness", witness_s);

    let pk_path = args
        .key_dir
        .join(keys::key_file_name(KeyKind::Proving, shape));
    let vk_path = args
        .key_dir
        .join(keys::key_file_name(KeyKind::Verifying, shape));
    let (pk, vk, setup_s, key_io_s) = if args.setup {
        let start = Instant::now();
        let (pk, vk) = veil_prover::setup(shape, &mut veil_prover::dev_rng(SETUP_SEED))?;
        let setup_s = start.elapsed().as_secs_f64();
        log("setup", setup_s);
        let start = Instant::now();
        write_keys(shape, &pk_path, &vk_path, &pk, &vk)?;
        (pk, vk, Some(setup_s), start.elapsed().as_secs_f64())
    } else {
        let start = Instant::now();
        let (pk, vk) = read_keys(shape, &pk_path, &vk_path)?;
        let io = start.elapsed().as_secs_f64();
        log("key load", io);
        (pk, vk, None, io)
    };
    let pk_bytes = pk.serialized_size(KeyKind::Proving.compression());

    // Veil's prover, as the node runs it: the R1CS from its cache beside the keys (written by
    // the setup run), not timed as proving. Peak RSS is measured from here: what a long-lived
    // prover holds (key, R1CS) and what proving adds, not the one-off setup.
    let r1cs = veil_prover::r1cs::R1cs::cached(&args.key_dir, shape);
    veil_prover::r1cs::release_freed_memory();
    reset_peak_rss();
    let prover = veil_prover::Prover::with_r1cs(shape, pk, r1cs)?;
    let start = Instant::now();
    let proof = prover.prove_built(&built, &mut veil_prover::dev_rng(PROVE_SEED))?;
    let prove_s = start.elapsed().as_secs_f64();
    log("prove", prove_s);
    drop(prover);

    let start = Instant::now();
    let pvk = veil_verifier::prepare(&vk);
    let prepare_vk_ms = start.elapsed().as_secs_f64() * 1e3;
    let verify_ms = median_verify_ms(&pvk, &built.public_inputs, &proof)?;

    let (verify_each_ms_per_proof, batch_verify_ms_per_proof) = if args.verify_batch > 0 {
        let items = proof_set(&vk, &built.public_inputs, &proof, args.verify_batch);
        let t = verify_proofs(&pvk, &items)?;
        (Some(t.each_ms_per_proof), t.batch_ms_per_proof)
    } else {
        (None, None)
    };

    Ok(Measurement {
        batch_size: shape.batch_size,
        depth: shape.depth,
        threads,
        transfers: shape.batch_size,
        constraints,
        witness_s,
        setup_s,
        key_io_s,
        prove_s,
        prepare_vk_ms,
        verify_ms,
        verify_batch_proofs: args.verify_batch,
        verify_each_ms_per_proof,
        batch_verify_ms_per_proof,
        pk_bytes,
        peak_rss_bytes: peak_rss_bytes()?,
    })
}

/// Constraints of `shape` from a setup-mode synthesis, as `veil circuit-info` counts them.
pub(crate) fn count_constraints(shape: BatchShape) -> Result<usize> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_mode(SynthesisMode::Setup);
    let breakdown = BatchCircuit::blank(shape)
        .synthesize_metered(cs)
        .context("synthesising the blank circuit")?;
    Ok(breakdown.total)
}

/// A batch of `B` deposits, then the timed batch of `B` real private transfers (each pays the
/// next key, withdraws 10 and pays a fee of 1), as `veil circuit-info` builds it.
pub(crate) fn build_full_batch(shape: BatchShape) -> Result<(BuiltBatch, f64)> {
    let b = shape.batch_size;
    let mut sc = Scenario::new(shape, SCENARIO_SEED);
    let keys: Vec<_> = (0..b).map(|_| sc.new_key()).collect();
    let deposits: Vec<_> = keys.iter().map(|k| sc.deposit(k, 1_000)).collect();
    sc.apply(&deposits).context("deposit batch")?;
    let transfers: Vec<_> = (0..b)
        .map(|i| {
            let to = keys[(i + 1) % b].clone();
            sc.pay(&keys[i], &to, 100, 10, 1)
        })
        .collect();
    let start = Instant::now();
    let built = sc.apply(&transfers).context("transfer batch")?;
    Ok((built, start.elapsed().as_secs_f64()))
}

fn write_keys(
    shape: BatchShape,
    pk_path: &Path,
    vk_path: &Path,
    pk: &ProvingKey<Bn254>,
    vk: &VerifyingKey<Bn254>,
) -> Result<()> {
    let hash = keys::shape_hash(shape);
    keys::write_key_file(pk_path, keys::header(KeyKind::Proving, shape, hash), pk)?;
    keys::write_key_file(vk_path, keys::header(KeyKind::Verifying, shape, hash), vk)?;
    Ok(())
}

/// Reads the keys the setup run of this benchmark wrote a moment ago. The proving key's header
/// must name this shape, but its points are not re-validated (curve and subgroup checks
/// triple the load time, single-threaded: 43 s instead of 15 s for B = 4, D = 8 on a loaded
/// 2-core machine); the proof made with it is verified afterwards. The expected shape hash is
/// the proving key's own: recomputing it would add a synthesis to this process.
fn read_keys(
    shape: BatchShape,
    pk_path: &Path,
    vk_path: &Path,
) -> Result<(ProvingKey<Bn254>, VerifyingKey<Bn254>)> {
    let header = keys::read_header(pk_path)?;
    ensure!(
        header.kind == KeyKind::Proving
            && header.batch_size as usize == shape.batch_size
            && header.depth as usize == shape.depth,
        "{}: not a proving key for {shape}",
        pk_path.display()
    );
    let bytes = std::fs::read(pk_path).with_context(|| format!("reading {}", pk_path.display()))?;
    let pk = keys::decode_proving_key(&bytes[keys::HEADER_LEN..], KeyKind::Proving.compression())
        .with_context(|| format!("{}: corrupt proving key", pk_path.display()))?;
    let vk = keys::read_verifying_key(vk_path, shape, &header.shape_hash)?;
    Ok((pk, vk))
}

/// Median of [`VERIFY_RUNS`] single verifications, milliseconds; every one must accept.
fn median_verify_ms(
    pvk: &PreparedVerifyingKey<Bn254>,
    public_inputs: &BatchPublicInputs,
    proof: &Proof<Bn254>,
) -> Result<f64> {
    let mut times = Vec::with_capacity(VERIFY_RUNS);
    for _ in 0..VERIFY_RUNS {
        let start = Instant::now();
        let ok = veil_verifier::verify(pvk, public_inputs, proof)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        ensure!(ok, "the proof does not verify");
    }
    times.sort_by(f64::total_cmp);
    Ok(times[VERIFY_RUNS / 2])
}

/// `n` distinct valid proofs of the batch: rerandomisations of `proof` (statistically the same
/// as fresh proofs, at a fraction of the cost), paired with the public inputs, in the form
/// batch verification takes them.
fn proof_set(
    vk: &VerifyingKey<Bn254>,
    public_inputs: &BatchPublicInputs,
    proof: &Proof<Bn254>,
    n: usize,
) -> Vec<(BatchPublicInputs, Proof<Bn254>)> {
    let mut rng = veil_prover::dev_rng(RERANDOMISE_SEED);
    (0..n)
        .map(|_| {
            (
                *public_inputs,
                Groth16::<Bn254>::rerandomize_proof(vk, proof, &mut rng),
            )
        })
        .collect()
}

/// Verification timings over a set of proofs.
struct ProofSetTimings {
    /// Each proof verified on its own, ms per proof.
    each_ms_per_proof: f64,
    /// All proofs verified as one batch, ms per proof (when measured).
    batch_ms_per_proof: Option<f64>,
}

/// Times verifying `items`: one by one with [`veil_verifier::verify`], then all at once with
/// [`veil_verifier::verify_batch`] (one multi-pairing).
fn verify_proofs(
    pvk: &PreparedVerifyingKey<Bn254>,
    items: &[(BatchPublicInputs, Proof<Bn254>)],
) -> Result<ProofSetTimings> {
    let start = Instant::now();
    for (i, (public_inputs, proof)) in items.iter().enumerate() {
        if !veil_verifier::verify(pvk, public_inputs, proof)? {
            bail!("rerandomised proof {i} does not verify");
        }
    }
    let each_ms_per_proof = start.elapsed().as_secs_f64() * 1e3 / items.len() as f64;
    let start = Instant::now();
    if !veil_verifier::verify_batch(pvk, items, &mut veil_prover::dev_rng(0xba7c))? {
        bail!("batch verification rejected valid proofs");
    }
    let batch_ms_per_proof = Some(start.elapsed().as_secs_f64() * 1e3 / items.len() as f64);
    Ok(ProofSetTimings {
        each_ms_per_proof,
        batch_ms_per_proof,
    })
}

/// Resets this process's peak resident set size to its current one (Linux `clear_refs` 5), so
/// that [`peak_rss_bytes`] measures what follows; a no-op where that is not available.
pub(crate) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size of this process: `VmHWM` from `/proc/self/status`.
pub(crate) fn peak_rss_bytes() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    let kib: u64 = line
        .trim()
        .strip_suffix("kB")
        .context("VmHWM not in kB")?
        .trim()
        .parse()
        .context("parsing VmHWM")?;
    Ok(kib * 1024)
}
