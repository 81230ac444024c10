//! `veil-bench synth`: witness synthesis alone (the first phase of every proof), repeated, for
//! profiling and for the per-lever table of the prover issue. Prints seconds per synthesis.

use std::time::Instant;

use anyhow::{ensure, Result};
use ark_bn254::Fr;
use ark_relations::r1cs::{
    ConstraintSynthesizer, ConstraintSystem, OptimizationGoal, SynthesisMode,
};
use veil_circuits::batch::BatchShape;

use crate::measure::build_full_batch;

/// Arguments of `veil-bench synth`.
#[derive(clap::Args)]
pub struct Args {
    /// Shape `BxD`.
    #[arg(long, value_parser = crate::parse_shape, default_value = "16x32")]
    shape: BatchShape,
    /// Repetitions.
    #[arg(long, default_value_t = 3)]
    reps: usize,
}

/// Synthesises the shape's full witness `reps` times, as the prover does (no matrices).
pub fn run(args: Args) -> Result<()> {
    ensure!(args.reps > 0, "--reps must be at least 1");
    let (built, _) = build_full_batch(args.shape)?;
    for rep in 0..args.reps {
        let t = Instant::now();
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Prove {
            construct_matrices: false,
        });
        built.circuit().generate_constraints(cs.clone())?;
        cs.finalize();
        let n = cs.num_witness_variables();
        println!(
            "{}: rep {rep}: {:.3} s, {} constraints, {n} witness variables",
            args.shape,
            t.elapsed().as_secs_f64(),
            cs.num_constraints()
        );
    }
    Ok(())
}
