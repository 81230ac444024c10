//! `veil export`: Veil's circuit and witnesses in the circom ecosystem's formats, so snarkjs
//! (`snarkjs wtns check`) and rapidsnark can check and prove the identical R1CS
//! ([`veil_prover::iden3`]). `veil export r1cs` writes a shape's constraint system (iden3 r1cs
//! v1), `veil export wtns` a batch file's full assignment (iden3 wtns v2, mode 0600: it holds the
//! batch's note openings), checked against the circuit first. `veil export snarkjs` writes a
//! verifying key and a proof with its public inputs in snarkjs's JSON
//! ([`veil_prover::snarkjs`]), so the most widely used independent Groth16 verifier checks
//! Veil's proofs. `veil export solidity` writes a Solidity verifier contract for a verifying key
//! and `veil export solidity-calldata` a proof's arguments to it ([`veil_prover::solidity`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ark_bn254::Bn254;
use ark_groth16::Proof;
use veil_circuits::batch::BatchShape;
use veil_prover::r1cs::R1cs;

use crate::{prove, util};

/// `veil export ...`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// The batch circuit of one shape as an iden3 `.r1cs` (v1): wire 0 the constant one, then
    /// the 3 public inputs, then the witness variables in Veil's order.
    R1cs(R1csArgs),
    /// A batch file's full assignment as an iden3 `.wtns` (v2), in the `.r1cs`'s wire order.
    Wtns(WtnsArgs),
    /// A verifying key, and a proof file with its public inputs, in snarkjs's JSON, for
    /// `snarkjs groth16 verify verification_key.json public.json proof.json`.
    Snarkjs(SnarkjsArgs),
    /// A Solidity contract `VeilVerifier` verifying proofs for a verifying key on an EVM
    /// (`verifyProof(a, b, c, input)`, the EIP-196/197 precompiles).
    Solidity(SolidityArgs),
    /// A proof file's arguments to the Solidity verifier's `verifyProof`, as JSON on stdout:
    /// `a`, `b`, `c`, `input` (`0x` words) and `calldata` (the ABI-encoded call).
    SolidityCalldata(SolidityCalldataArgs),
}

/// Arguments of `veil export solidity`.
#[derive(clap::Args)]
pub struct SolidityArgs {
    /// Verifying key (`vk-B{B}-D{D}.bin`).
    #[arg(long)]
    vk: PathBuf,
    /// Where to write the contract (`.sol`).
    out: PathBuf,
}

/// Arguments of `veil export solidity-calldata`.
#[derive(clap::Args)]
pub struct SolidityCalldataArgs {
    /// A proof file (`proof-N.json`).
    #[arg(long)]
    proof: PathBuf,
    /// The verifying key the contract was made from: refuse a proof for another key.
    #[arg(long)]
    vk: Option<PathBuf>,
}

/// Arguments of `veil export snarkjs`.
#[derive(clap::Args)]
pub struct SnarkjsArgs {
    /// Verifying key (`vk-B{B}-D{D}.bin`).
    #[arg(long)]
    vk: PathBuf,
    /// A proof file (`proof-N.json`, for this verifying key) to write as `proof.json` and
    /// `public.json`.
    #[arg(long)]
    proof: Option<PathBuf>,
    /// Directory to write `verification_key.json` (and `proof.json`, `public.json`) into.
    #[arg(long)]
    out_dir: PathBuf,
}

/// Arguments of `veil export r1cs`.
#[derive(clap::Args)]
pub struct R1csArgs {
    /// Transfer slots per batch (a power of two).
    #[arg(short = 'b', long)]
    batch_size: usize,
    /// Depth of the note and nullifier trees.
    #[arg(short = 'd', long)]
    depth: usize,
    /// Read (or write) the circuit's R1CS cache in this directory (e.g. the keys directory)
    /// instead of synthesising the circuit.
    #[arg(long)]
    keys_dir: Option<PathBuf>,
    /// Where to write the `.r1cs`.
    out: PathBuf,
}

/// Arguments of `veil export wtns`.
#[derive(clap::Args)]
pub struct WtnsArgs {
    /// Batch file with a `witness` object.
    #[arg(long)]
    batch: PathBuf,
    /// As for `veil export r1cs`.
    #[arg(long)]
    keys_dir: Option<PathBuf>,
    /// Where to write the `.wtns` (mode 0600).
    out: PathBuf,
}

/// Runs the command.
pub fn run(cmd: Command) -> Result<std::process::ExitCode> {
    match cmd {
        Command::R1cs(args) => r1cs(args),
        Command::Wtns(args) => wtns(args),
        Command::Snarkjs(args) => snarkjs(args),
        Command::Solidity(args) => solidity(args),
        Command::SolidityCalldata(args) => solidity_calldata(args),
    }
}

fn circuit_r1cs(shape: BatchShape, keys_dir: Option<&Path>) -> R1cs {
    let pb = util::spinner(format!("synthesising the {shape} circuit"));
    let r1cs = match keys_dir {
        Some(dir) => R1cs::cached(dir, shape),
        None => R1cs::synthesize(shape),
    };
    pb.finish_and_clear();
    r1cs
}

fn r1cs(args: R1csArgs) -> Result<std::process::ExitCode> {
    let shape = util::shape(args.batch_size, args.depth)?;
    let r1cs = circuit_r1cs(shape, args.keys_dir.as_deref());
    let pb = util::spinner(format!("writing {}", args.out.display()));
    let written = util::write_streamed(&args.out, false, |w| {
        veil_prover::iden3::write_r1cs(w, &r1cs)
    });
    pb.finish_and_clear();
    written?;
    println!(
        "{shape}: {} constraints, {} wires ({} public inputs), {} non-zero entries: {}",
        r1cs.num_constraints(),
        r1cs.num_variables(),
        r1cs.num_instance_variables() - 1,
        r1cs.num_nonzeros(),
        args.out.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

fn wtns(args: WtnsArgs) -> Result<std::process::ExitCode> {
    let batch = prove::read_batch(&args.batch)?;
    let shape = batch.shape()?;
    let circuit = batch
        .circuit()
        .with_context(|| args.batch.display().to_string())?;
    let (assignment, _) = veil_prover::assignment(circuit).context("synthesising the witness")?;
    let r1cs = circuit_r1cs(shape, args.keys_dir.as_deref());
    veil_prover::qap::evaluate(&r1cs, &assignment).with_context(|| {
        format!(
            "{}: the witness does not fit the circuit",
            args.batch.display()
        )
    })?;
    util::write_streamed(&args.out, true, |w| {
        veil_prover::iden3::write_wtns(w, &assignment)
    })?;
    println!(
        "batch {} ({shape}): {} wires: {}",
        batch.batch_number,
        assignment.len(),
        args.out.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// A verifying key file, its shape read from its header.
fn load_vk(path: &Path) -> Result<(veil_prover::keys::LoadedVerifyingKey, BatchShape)> {
    use veil_prover::keys;
    let header = keys::read_header(path)?;
    let shape = util::shape(header.batch_size as usize, header.depth as usize)
        .with_context(|| format!("{}: header", path.display()))?;
    Ok((keys::load_verifying_key(path, shape)?, shape))
}

/// A proof file's proof and public inputs; with `vk` (its path and SHA-256), refused unless the
/// proof is for that key.
fn read_proof(
    path: &Path,
    vk: Option<(&Path, &str)>,
) -> Result<(Proof<Bn254>, Vec<ark_bn254::Fr>)> {
    let file = veil_prover::proof::ProofFile::from_json(&util::read_text(path)?)
        .with_context(|| path.display().to_string())?;
    if let Some((vk_path, vk_sha256)) = vk {
        anyhow::ensure!(
            file.vk_sha256 == vk_sha256,
            "{}: the proof is for verifying key {}, {} is {}",
            path.display(),
            file.vk_sha256,
            vk_path.display(),
            vk_sha256
        );
    }
    let proof = file
        .proof()
        .with_context(|| format!("{}: proof", path.display()))?;
    let inputs = veil_circuits::BatchPublicInputs::from(file.public_inputs).to_vec();
    Ok((proof, inputs))
}

fn snarkjs(args: SnarkjsArgs) -> Result<std::process::ExitCode> {
    use veil_prover::snarkjs;
    let (vk, _) = load_vk(&args.vk)?;
    let proof = match &args.proof {
        Some(path) => Some(read_proof(path, Some((&args.vk, &vk.sha256)))?),
        None => None,
    };
    let json = |v: serde_json::Value| {
        let mut s = serde_json::to_string_pretty(&v).expect("JSON values serialise");
        s.push('\n');
        s
    };
    let vk_path = args.out_dir.join("verification_key.json");
    util::write_atomic(&vk_path, json(snarkjs::verifying_key(&vk.vk)).as_bytes())?;
    println!("{}", vk_path.display());
    if let Some((proof, inputs)) = proof {
        for (name, value) in [
            ("proof.json", snarkjs::proof(&proof)),
            ("public.json", snarkjs::public_inputs(&inputs)),
        ] {
            let path = args.out_dir.join(name);
            util::write_atomic(&path, json(value).as_bytes())?;
            println!("{}", path.display());
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn solidity(args: SolidityArgs) -> Result<std::process::ExitCode> {
    use veil_prover::solidity;
    let (vk, shape) = load_vk(&args.vk)?;
    let provenance = format!("Verifying key: {} (vk sha256 {}).", shape, vk.sha256);
    let contract = solidity::verifier_contract(&vk.vk, &provenance)
        .with_context(|| args.vk.display().to_string())?;
    util::write_atomic(&args.out, contract.as_bytes())?;
    println!(
        "{shape}: contract {} (vk sha256 {}): {}",
        solidity::CONTRACT_NAME,
        vk.sha256,
        args.out.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

fn solidity_calldata(args: SolidityCalldataArgs) -> Result<std::process::ExitCode> {
    let vk = match &args.vk {
        Some(path) => Some((path.as_path(), load_vk(path)?.0.sha256)),
        None => None,
    };
    let (proof, inputs) = read_proof(&args.proof, vk.as_ref().map(|(p, h)| (*p, h.as_str())))?;
    let value = veil_prover::solidity::calldata(&proof, &inputs)
        .with_context(|| args.proof.display().to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&value).expect("JSON values serialise")
    );
    Ok(std::process::ExitCode::SUCCESS)
}
