//! `veil export`: Veil's circuit and witnesses in the circom ecosystem's formats, so snarkjs
//! (`snarkjs wtns check`) and rapidsnark can check and prove the identical R1CS
//! ([`veil_prover::iden3`]). `veil export r1cs` writes a shape's constraint system (iden3 r1cs
//! v1), `veil export wtns` a batch file's full assignment (iden3 wtns v2, mode 0600: it holds the
//! batch's note openings), checked against the circuit first.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
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
