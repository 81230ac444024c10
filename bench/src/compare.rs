//! `veil-bench prover-ab` (`make bench-prover`): stock ark-groth16 against Veil's prover on the
//! same `BatchCircuit` witness, in one process, alternating A/B (the order flips every round so
//! drift on a shared machine hits both), with the same blinding randomness per round so the two
//! proofs must be identical. Prints the median ratio (Veil / stock), a per-phase breakdown of
//! both and the peak RSS of each side, and writes `target/bench/prover-ab.md` and `.json`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use ark_bn254::{Bn254, Fr};
use ark_groth16::Groth16;
use ark_relations::r1cs::{ConstraintSynthesizer, ConstraintSystem, OptimizationGoal};
use ark_snark::SNARK;
use serde::Serialize;
use veil_circuits::batch::BatchShape;
use veil_prover::groth16::{self, Backend, ProofTimings, Schedule};
use veil_prover::{ProveReport, Prover};

use crate::machine::Machine;
use crate::measure::{build_full_batch, peak_rss_bytes, reset_peak_rss};

/// Seed of the (insecure) dev setup whose keys are cached under `target/bench/keys`.
const SETUP_SEED: u64 = 0xab;
/// Base seed of the per-round blinding randomness.
const PROVE_SEED: u64 = 0xab00;

/// Arguments of `veil-bench prover-ab`.
#[derive(clap::Args)]
pub struct Args {
    /// Shape `BxD` (default 16x32; with --quick 2x8).
    #[arg(long, value_parser = crate::parse_shape)]
    shape: Option<BatchShape>,
    /// A/B rounds (each proves once with each prover); the median is robust to one or two
    /// rounds disturbed by other load on a shared machine.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// A small shape (2x8), seconds: checks the benchmark works.
    #[arg(long)]
    quick: bool,
    /// Output directory (default: `$CARGO_TARGET_DIR/bench`, else the workspace's `target/bench`).
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

/// Stock's phases, timed by running ark-groth16's own steps one by one (the same work as
/// `Groth16::prove`, whose total is measured separately).
#[derive(Serialize, Default, Clone, Copy)]
struct StockPhases {
    synthesis: Duration,
    inlining: Duration,
    matrices: Duration,
    proof: ProofTimings,
}

#[derive(Serialize)]
struct Report<'a> {
    machine: &'a Machine,
    batch_size: usize,
    depth: usize,
    constraints: usize,
    constraints_per_transfer: usize,
    threads: usize,
    stock_s: Vec<f64>,
    veil_s: Vec<f64>,
    ratios: Vec<f64>,
    median_stock_s: f64,
    median_veil_s: f64,
    median_ratio: f64,
    stock_peak_rss_bytes: u64,
    veil_peak_rss_bytes: u64,
    stock_phases: StockPhases,
    veil_phases: ProveReport,
}

/// Runs the comparison and prints the tables.
pub fn run(args: Args) -> Result<()> {
    let shape = match (args.shape, args.quick) {
        (Some(s), _) => s,
        (None, true) => BatchShape::new(2, 8)?,
        (None, false) => BatchShape::new(16, 32)?,
    };
    ensure!(args.rounds > 0, "--rounds must be at least 1");
    let out_dir = args.out_dir.unwrap_or_else(crate::default_out_dir);
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let machine = Machine::collect();

    eprintln!(
        "[prover-ab] {shape}: dev keys (cached under {})",
        out_dir.display()
    );
    let (pk, _vk) = veil_prover::load_or_setup_dev_keys(&out_dir.join("keys"), shape, SETUP_SEED)
        .context("dev keys")?;
    let mut prover = Prover::new(shape, pk).context("prover")?;
    let constraints = prover.num_constraints();
    let pvk = ark_groth16::prepare_verifying_key(prover.verifying_key());
    let (built, _) = build_full_batch(shape)?;
    let public_inputs = built.public_inputs.to_vec();

    let mut stock_s = Vec::new();
    let mut veil_s = Vec::new();
    let mut stock_peak = 0u64;
    let mut veil_peak = 0u64;
    for round in 0..args.rounds {
        let seed = PROVE_SEED + round as u64;
        let mut stock = || -> Result<_> {
            reset_peak_rss();
            let t = Instant::now();
            let proof = Groth16::<Bn254>::prove(
                prover.proving_key(),
                built.circuit(),
                &mut veil_prover::dev_rng(seed),
            )?;
            let s = t.elapsed().as_secs_f64();
            stock_peak = stock_peak.max(peak_rss_bytes()?);
            Ok((proof, s))
        };
        let mut veil = || -> Result<_> {
            reset_peak_rss();
            let t = Instant::now();
            let proof = prover.prove(built.circuit(), &mut veil_prover::dev_rng(seed))?;
            let s = t.elapsed().as_secs_f64();
            veil_peak = veil_peak.max(peak_rss_bytes()?);
            Ok((proof, s))
        };
        let ((a, sa), (b, sb)) = if round % 2 == 0 {
            let a = stock()?;
            (a, veil()?)
        } else {
            let b = veil()?;
            (stock()?, b)
        };
        ensure!(a == b, "round {round}: the two provers' proofs differ");
        ensure!(
            Groth16::<Bn254>::verify_with_processed_vk(&pvk, &public_inputs, &b)?,
            "round {round}: stock ark-groth16 rejects the proof"
        );
        eprintln!(
            "[prover-ab] round {}: stock {sa:.2} s, veil {sb:.2} s, ratio {:.3}",
            round + 1,
            sb / sa
        );
        stock_s.push(sa);
        veil_s.push(sb);
    }
    let stock_phases = stock_phases(&prover, &built)?;
    // The timed rounds overlap Veil's phases (as a node does); the breakdown comes from one more
    // proof with each phase alone.
    prover.set_schedule(Schedule::Phased);
    let (_, veil_phases) =
        prover.prove_timed(built.circuit(), &mut veil_prover::dev_rng(PROVE_SEED))?;

    let ratios: Vec<f64> = stock_s.iter().zip(&veil_s).map(|(a, b)| b / a).collect();
    let report = Report {
        machine: &machine,
        batch_size: shape.batch_size,
        depth: shape.depth,
        constraints,
        constraints_per_transfer: constraints / shape.batch_size,
        threads: rayon::current_num_threads(),
        median_stock_s: median(&stock_s),
        median_veil_s: median(&veil_s),
        median_ratio: median(&ratios),
        stock_s,
        veil_s,
        ratios,
        stock_peak_rss_bytes: stock_peak,
        veil_peak_rss_bytes: veil_peak,
        stock_phases,
        veil_phases,
    };
    let table = render(&report);
    println!("{table}");
    std::fs::write(out_dir.join("prover-ab.md"), &table)?;
    std::fs::write(
        out_dir.join("prover-ab.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    eprintln!(
        "[prover-ab] wrote {}",
        out_dir.join("prover-ab.md").display()
    );
    Ok(())
}

/// Stock ark-groth16's steps, one by one, with arkworks' MSMs.
fn stock_phases(prover: &Prover, built: &veil_circuits::batch::BuiltBatch) -> Result<StockPhases> {
    let mut phases = StockPhases::default();
    let t = Instant::now();
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    built.circuit().generate_constraints(cs.clone())?;
    phases.synthesis = t.elapsed();
    let t = Instant::now();
    cs.finalize();
    phases.inlining = t.elapsed();
    let t = Instant::now();
    let matrices = cs.to_matrices().context("matrices")?;
    phases.matrices = t.elapsed();
    let cs = cs.borrow().context("constraint system")?;
    let z = [
        cs.instance_assignment.as_slice(),
        cs.witness_assignment.as_slice(),
    ]
    .concat();
    let mut rng = veil_prover::dev_rng(PROVE_SEED);
    let (r, s) = (
        <Fr as ark_ff::UniformRand>::rand(&mut rng),
        <Fr as ark_ff::UniformRand>::rand(&mut rng),
    );
    let (_, timings) =
        groth16::create_proof(prover.proving_key(), &matrices, &z, r, s, Backend::Arkworks)?;
    phases.proof = timings;
    Ok(phases)
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn render(r: &Report) -> String {
    let s = |d: Duration| format!("{:.2}", d.as_secs_f64());
    let mib = |b: u64| format!("{:.0}", b as f64 / (1024.0 * 1024.0));
    let mut out = String::new();
    out.push_str(&format!(
        "# Stock ark-groth16 vs Veil's prover, same witness ({} rounds, {} threads)\n\n{}\n",
        r.ratios.len(),
        r.threads,
        r.machine.markdown()
    ));
    out.push_str("| B | D | constraints | per transfer | stock prove s | Veil prove s | ratio (Veil / stock) | stock peak RSS MiB | Veil peak RSS MiB |\n");
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    out.push_str(&format!(
        "| {} | {} | {} | {} | {:.2} | {:.2} | {:.3} | {} | {} |\n\n",
        r.batch_size,
        r.depth,
        r.constraints,
        r.constraints_per_transfer,
        r.median_stock_s,
        r.median_veil_s,
        r.median_ratio,
        mib(r.stock_peak_rss_bytes),
        mib(r.veil_peak_rss_bytes),
    ));
    let ratios: Vec<String> = r.ratios.iter().map(|x| format!("{x:.3}")).collect();
    out.push_str(&format!(
        "Medians of {} alternating rounds; ratios per round: {}. Every round's two proofs are \
         identical and verify with stock `Groth16::verify`. Both provers run in this one process \
         (with the proving key and the matrices loaded once), so each peak RSS is the process's \
         high-water mark since a reset before that prover ran: it includes the key and the heap \
         the allocator kept from the other side. `make bench-peer` measures `veil prove` alone, \
         as its own process.\n\n",
        r.ratios.len(),
        ratios.join(", ")
    ));
    let (st, v) = (&r.stock_phases, &r.veil_phases);
    out.push_str(
        "Veil's prover overlaps its phases (the witness map and the H MSM beside the L, A and B \
         MSMs, which need only the assignment); the breakdown below is from one more proof with \
         `Schedule::Phased`, each phase alone.\n\n",
    );
    out.push_str("| phase | stock s | Veil s |\n|---|---:|---:|\n");
    let rows = [
        ("witness synthesis", st.synthesis, v.synthesis),
        ("LC inlining (finalize)", st.inlining, Duration::ZERO),
        ("matrices", st.matrices, Duration::ZERO),
        (
            "constraints evaluated (Veil: and checked)",
            Duration::ZERO,
            v.check,
        ),
        (
            "witness map (stock: with the evaluation; FFTs)",
            st.proof.witness_map,
            v.proof.witness_map,
        ),
        ("scalars to integers", st.proof.scalars, v.proof.scalars),
        ("MSM H (G1)", st.proof.msm_h, v.proof.msm_h),
        ("MSM L (G1)", st.proof.msm_l, v.proof.msm_l),
        ("MSM A (G1)", st.proof.msm_a, v.proof.msm_a),
        ("MSM B (G1)", st.proof.msm_b_g1, v.proof.msm_b_g1),
        ("MSM B (G2)", st.proof.msm_b_g2, v.proof.msm_b_g2),
        ("self-check (verify)", Duration::ZERO, v.self_check),
    ];
    for (name, a, b) in rows {
        out.push_str(&format!("| {name} | {} | {} |\n", s(a), s(b)));
    }
    out.push_str(&format!(
        "\nStock's phases are its own steps run one by one (synthesis with matrices, \
         `finalize`, `to_matrices`, then the libsnark witness map and arkworks' MSMs); \
         their sum is {} s against the {:.2} s of `Groth16::prove`.\n",
        s(st.synthesis + st.inlining + st.matrices + st.proof.total()),
        r.median_stock_s
    ));
    out
}
