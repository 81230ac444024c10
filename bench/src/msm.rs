//! `veil-bench msm` (`make bench-msm`): arkworks' `VariableBaseMSM::msm_bigint` against
//! `veil_prover::msm::msm` on BN254 G1 and G2 with full random scalars, in this process (the
//! global rayon pool: `RAYON_NUM_THREADS` sets the threads). Runs alternate arkworks / Veil so
//! that drift on a shared machine hits both; the table shows medians and the ratio Veil /
//! arkworks, and is written to `target/bench/msm.md`. Every Veil result is checked against the
//! arkworks result of the same run.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use ark_bn254::{g1, g2, Fr};
use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ec::{CurveGroup, PrimeGroup, VariableBaseMSM};
use ark_ff::{PrimeField, UniformRand};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use veil_prover::msm::{self, BigIntOf};

use crate::machine::Machine;

/// Arguments of `veil-bench msm`.
#[derive(clap::Args)]
pub struct Args {
    /// Small sizes (2^12, 2^14): seconds in total.
    #[arg(long)]
    quick: bool,
    /// log2 of the sizes, comma-separated (default 16,18,20; with --quick 12,14).
    #[arg(long, value_delimiter = ',')]
    log_sizes: Option<Vec<u32>>,
    /// Runs of each implementation per size and curve (alternating).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Window size for Veil's MSM (default: its own choice per size); for tuning.
    #[arg(long)]
    window: Option<usize>,
    /// Only G1 (skip G2); for tuning.
    #[arg(long)]
    g1_only: bool,
    /// Run only one implementation (`ark`, `veil` or `none`; no cross-check); for profiling.
    #[arg(long, hide = true)]
    only: Option<String>,
    /// Output directory (default: `$CARGO_TARGET_DIR/bench`, else the workspace's `target/bench`).
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

/// Medians of one size and curve.
struct Timing {
    ark_s: f64,
    veil_s: f64,
}

impl Timing {
    /// Veil's time over arkworks', as a table cell ("–" when `--only` ran just one of them).
    fn ratio(&self) -> String {
        if self.ark_s > 0.0 && self.veil_s > 0.0 {
            format!("{:.2}", self.veil_s / self.ark_s)
        } else {
            "–".to_string()
        }
    }
}

/// `n` distinct pseudo-random points (parallel random walks from random starts; cheap).
fn random_bases<P: SWCurveConfig>(n: usize, seed: u64) -> Vec<Affine<P>> {
    const CHUNK: usize = 1 << 14;
    (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .flat_map_iter(|k| {
            let mut rng = ChaCha20Rng::seed_from_u64(seed ^ (k as u64) << 32);
            let step = Projective::<P>::generator() * P::ScalarField::rand(&mut rng);
            let mut cur = Projective::<P>::generator() * P::ScalarField::rand(&mut rng);
            let len = CHUNK.min(n - k * CHUNK);
            let walk: Vec<_> = (0..len)
                .map(|_| {
                    let p = cur;
                    cur += step;
                    p
                })
                .collect();
            Projective::normalize_batch(&walk)
        })
        .collect()
}

fn random_scalars(n: usize, seed: u64) -> Vec<BigIntOf<g1::Config>> {
    const CHUNK: usize = 1 << 14;
    (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .flat_map_iter(|k| {
            let mut rng = ChaCha20Rng::seed_from_u64(seed ^ (k as u64) << 32 ^ 0xf1);
            let len = CHUNK.min(n - k * CHUNK);
            (0..len)
                .map(|_| Fr::rand(&mut rng).into_bigint())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Alternates arkworks and Veil `reps` times on the first `n` pairs.
fn time_curve<P>(
    name: &str,
    bases: &[Affine<P>],
    scalars: &[BigIntOf<P>],
    reps: usize,
    window: Option<usize>,
    only: Option<&str>,
) -> Result<Timing>
where
    P: SWCurveConfig,
{
    let (mut ark, mut veil) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        let start = Instant::now();
        let want = if only.is_none() || only == Some("ark") {
            <Projective<P> as VariableBaseMSM>::msm_bigint(bases, scalars)
        } else {
            Projective::default()
        };
        ark.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let got = match (only, window) {
            (Some("ark" | "none"), _) => want,
            (_, Some(c)) => msm::msm_with_window(bases, scalars, c),
            (_, None) => msm::msm(bases, scalars),
        };
        veil.push(start.elapsed().as_secs_f64());
        ensure!(
            only.is_some() || got == want,
            "{name}, n = {}: Veil's MSM differs from arkworks'",
            bases.len()
        );
        eprintln!(
            "  {name} n = 2^{} run {}: arkworks {:.3} s, veil {:.3} s",
            bases.len().trailing_zeros(),
            rep + 1,
            ark[rep],
            veil[rep]
        );
    }
    Ok(Timing {
        ark_s: median(ark),
        veil_s: median(veil),
    })
}

/// Runs the benchmark and writes `msm.md`.
pub fn run(args: Args) -> Result<()> {
    let logs = match (&args.log_sizes, args.quick) {
        (Some(l), _) => l.clone(),
        (None, true) => vec![12, 14],
        (None, false) => vec![16, 18, 20],
    };
    ensure!(args.reps >= 1, "--reps must be at least 1");
    ensure!(
        logs.iter().all(|&l| l <= 24),
        "sizes above 2^24 are not supported"
    );
    let out_dir = args.out_dir.clone().unwrap_or_else(crate::default_out_dir);
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let machine = Machine::collect();
    let threads = rayon::current_num_threads();
    let mut doc = format!(
        "# Veil MSM benchmark (BN254, full random scalars)\n\n{}- rayon threads: {threads}\n- runs per cell: {} (alternating arkworks / Veil), medians\n- window: {}\n\n",
        machine.markdown(),
        args.reps,
        args.window.map_or_else(|| "Veil's default per n".to_string(), |c| c.to_string()),
    );
    print!("{doc}");
    std::io::stdout().flush()?;

    let max = 1usize << logs.iter().copied().max().unwrap_or(0);
    eprintln!(
        "generating {max} random G1 points, scalars{} ...",
        if args.g1_only { "" } else { ", G2 points" }
    );
    let scalars = random_scalars(max, 1);
    let g1_bases = random_bases::<g1::Config>(max, 2);
    let g2_bases = if args.g1_only {
        Vec::new()
    } else {
        random_bases::<g2::Config>(max, 3)
    };

    eprintln!("field micro-benchmark (one thread) ...");
    let field = crate::field::measure(200_000);
    let (adx_mul, adx_fq2) = field.adx.map_or(("–".into(), "–".into()), |a| {
        (format!("{:.1}", a.mul_ns), format!("{:.1}", a.fq2_mul_ns))
    });
    let floor = format!(
        "## Field operations (one thread)\n\narkworks' code, and Veil's ADX assembly (`veil_prover::field`, \"–\" where the CPU lacks BMI2/ADX). The MSM and the FFT run on the `{}` path here.\n\n| Fq mul ns | Fq mul latency ns | Fq square ns | Fq inverse ns | Fq2 mul ns | Fq mul ADX ns | Fq2 mul ADX ns |\n|---:|---:|---:|---:|---:|---:|---:|\n| {:.1} | {:.1} | {:.1} | {:.0} | {:.1} | {adx_mul} | {adx_fq2} |\n\n",
        veil_prover::field::FieldPath::current().name(),
        field.mul_ns, field.mul_latency_ns, field.square_ns, field.inverse_ns, field.fq2_mul_ns
    );
    print!("{floor}");
    doc += &floor;
    // A batch-affine addition is 5 multiplications and 1 squaring (plus its share of one
    // inversion per batch): its floor in core-nanoseconds, on the path the MSM runs.
    let (mul_ns, square_ns, fq2_mul_ns) = field.msm_path();
    let floor_g1 = 5.0 * mul_ns + square_ns;
    let floor_g2 = 6.0 * fq2_mul_ns;
    let mut costs = String::from(
        "## Veil's MSM per bucket addition\n\nCore-nanoseconds per point and window (the whole MSM's time × threads / (n × windows), so it includes the digit table, the bucket reductions and the final sum), against the floor of one batch-affine addition's field operations (5 mul + 1 square; G2 in Fq2).\n\n| n | window c | windows | G1 ns | G1 floor ns | G1 / floor | G2 ns | G2 floor ns | G2 / floor |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );

    let mut table = String::from(
        "| n | G1 arkworks s | G1 Veil s | G1 ratio | G2 arkworks s | G2 Veil s | G2 ratio |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for &l in &logs {
        let n = 1usize << l;
        let t1 = time_curve(
            "G1",
            &g1_bases[..n],
            &scalars[..n],
            args.reps,
            args.window,
            args.only.as_deref(),
        )?;
        let mut g2_veil_s = None;
        let g2_cells = if args.g1_only {
            "– | – | –".to_string()
        } else {
            let t2 = time_curve(
                "G2",
                &g2_bases[..n],
                &scalars[..n],
                args.reps,
                args.window,
                args.only.as_deref(),
            )?;
            g2_veil_s = Some(t2.veil_s);
            format!("{:.3} | {:.3} | {}", t2.ark_s, t2.veil_s, t2.ratio())
        };
        let c = args.window.unwrap_or_else(|| msm::window_bits(n));
        let w = msm::window_count::<g1::Config>(c);
        let per = |secs: f64| secs * threads as f64 * 1e9 / (n * w) as f64;
        let g2_cost = match g2_veil_s {
            Some(s) => format!("{:.0} | {floor_g2:.0} | {:.2}", per(s), per(s) / floor_g2),
            None => "– | – | –".to_string(),
        };
        costs += &format!(
            "| 2^{l} | {c} | {w} | {:.0} | {floor_g1:.0} | {:.2} | {g2_cost} |\n",
            per(t1.veil_s),
            per(t1.veil_s) / floor_g1
        );
        table += &format!(
            "| 2^{l} | {:.3} | {:.3} | {} | {g2_cells} |\n",
            t1.ark_s,
            t1.veil_s,
            t1.ratio()
        );
    }
    print!("{table}");
    doc += &table;
    costs.push('\n');
    print!("\n{costs}");
    doc += "\n";
    doc += &costs;
    let md_path = out_dir.join("msm.md");
    std::fs::write(&md_path, &doc).with_context(|| format!("writing {}", md_path.display()))?;
    eprintln!("wrote {}", md_path.display());
    Ok(())
}
