//! `veil circuit-info`: synthesises the batch circuit of a shape in setup mode (no witness) and
//! reports constraints in total, per transfer and per sub-circuit, the number of public inputs,
//! and how long the native witness builder takes for a full batch of real transfers.

use std::time::Instant;

use anyhow::{Context, Result};
use ark_bn254::Fr;
use ark_relations::r1cs::{ConstraintSystem, SynthesisMode};
use serde::Serialize;
use veil_circuits::batch::{BatchCircuit, BatchShape};
use veil_fixtures::Scenario;

/// Arguments of `veil circuit-info`.
#[derive(clap::Args)]
pub struct Args {
    /// Transfer slots per batch (a power of two).
    #[arg(long, short = 'b', default_value_t = 16)]
    batch_size: usize,
    /// Depth of the note and nullifier trees.
    #[arg(long, short = 'd', default_value_t = 32)]
    depth: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Section {
    total: usize,
    per_transfer: usize,
}

#[derive(Serialize)]
struct Report {
    batch_size: usize,
    depth: usize,
    constraints: usize,
    per_transfer: usize,
    public_inputs: usize,
    witness_variables: usize,
    breakdown: std::collections::BTreeMap<&'static str, Section>,
    witness_build_ms: f64,
}

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    let shape = BatchShape::new(args.batch_size, args.depth).context("bad shape")?;
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_mode(SynthesisMode::Setup);
    let breakdown = BatchCircuit::blank(shape)
        .synthesize_metered(cs.clone())
        .context("synthesising the circuit")?;
    let b = shape.batch_size;
    let report = Report {
        batch_size: b,
        depth: shape.depth,
        constraints: breakdown.total,
        per_transfer: breakdown.total.div_ceil(b),
        public_inputs: cs.num_instance_variables() - 1,
        witness_variables: cs.num_witness_variables(),
        breakdown: breakdown
            .sections
            .iter()
            .map(|(k, v)| {
                (
                    *k,
                    Section {
                        total: *v,
                        per_transfer: v.div_ceil(b),
                    },
                )
            })
            .collect(),
        witness_build_ms: time_witness_builder(shape)?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "batch circuit B = {}, D = {}",
            report.batch_size, report.depth
        );
        println!("  constraints        {:>12}", report.constraints);
        println!("  per transfer       {:>12}", report.per_transfer);
        println!("  public inputs      {:>12}", report.public_inputs);
        println!("  witness variables  {:>12}", report.witness_variables);
        println!("  sub-circuit                 total  per transfer");
        for (name, s) in &report.breakdown {
            println!("    {name:<22} {:>10} {:>13}", s.total, s.per_transfer);
        }
        println!(
            "  witness builder, {} real transfers: {:.1} ms",
            b, report.witness_build_ms
        );
    }
    Ok(())
}

/// Builds a full batch of real transfers (after a batch of deposits) and times the builder.
fn time_witness_builder(shape: BatchShape) -> Result<f64> {
    let mut sc = Scenario::new(shape, 1);
    let keys: Vec<_> = (0..shape.batch_size).map(|_| sc.new_key()).collect();
    let deposits: Vec<_> = keys.iter().map(|k| sc.deposit(k, 1_000)).collect();
    sc.apply(&deposits).context("deposit batch")?;
    let transfers: Vec<_> = (0..shape.batch_size)
        .map(|i| {
            let to = keys[(i + 1) % keys.len()].clone();
            sc.pay(&keys[i], &to, 100, 10, 1)
        })
        .collect();
    let start = Instant::now();
    sc.apply(&transfers).context("transfer batch")?;
    Ok(start.elapsed().as_secs_f64() * 1e3)
}
