//! `veil-bench`: prover benchmarks of the Veil batch circuit. `veil-bench prover` measures each
//! shape in child processes (the hidden `prover-one`, one per thread count, with
//! `RAYON_NUM_THREADS` set) so that peak RSS and the thread pool are per configuration, prints a
//! Markdown table and writes it, with the raw JSON, under `target/bench/`. `veil-bench load`
//! measures the sequencer's API acceptance rate (see `load.rs`); `veil-bench msm` compares
//! Veil's MSM with arkworks' (see `msm.rs`); the hidden `veil-bench synth` repeats witness
//! synthesis alone, for profiling (see `synth.rs`).

mod anchor;
mod anchor_verify;
mod compare;
mod field;
mod load;
mod machine;
mod measure;
mod msm;
mod peer;
mod scale;
mod synth;
mod table;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Parser, Subcommand};
use serde::Serialize;
use veil_circuits::batch::BatchShape;

use machine::Machine;
use measure::Measurement;
use table::ShapeResult;

/// Prover benchmarks of the Veil batch circuit.
#[derive(Parser)]
#[command(name = "veil-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Setup, witness, prove and verify times, key size and peak memory per batch shape.
    Prover(ProverArgs),
    /// One measurement in this process (started by `prover`).
    #[command(hide = true)]
    ProverOne(measure::Args),
    /// Stock ark-groth16 against Veil's prover on one witness, A/B (`make bench-prover`).
    ProverAb(compare::Args),
    /// Sequencer API throughput: accepted transfers/s, latency, peak RSS (`make bench-load`).
    Load(load::Args),
    /// The node under test of `load`, in this process (started by `load`).
    #[command(hide = true)]
    LoadNode(load::NodeArgs),
    /// Veil's MSM against arkworks' on BN254 G1 and G2 (`make bench-msm`).
    Msm(msm::Args),
    /// Anchor packages on regtest Bitcoin Core: vbytes and sats per transfer (`make bench-anchor`).
    Anchor(anchor::Args),
    /// Proving on many machines: transfers proven per second with 1 and 2 prover workers
    /// through the PostgreSQL job queue, the queue's overhead, and an extrapolation.
    Scale(scale::Args),
    /// Witness synthesis alone, repeated (profiling).
    #[command(hide = true)]
    Synth(synth::Args),
    /// Veil's prover against iden3's rapidsnark on the same R1CS and witness (`make bench-peer`).
    Peer(peer::Args),
    /// Runs a command and reports its time and peak RSS (started by `peer`).
    #[command(hide = true)]
    RssExec {
        /// The report file, then the program and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<std::ffi::OsString>,
    },
}

/// Arguments of `veil-bench prover`.
#[derive(clap::Args)]
struct ProverArgs {
    /// Small shapes (1x8, 2x8, 4x8): seconds in total.
    #[arg(long)]
    quick: bool,
    /// Shapes `BxD`, comma-separated (default 1x32,4x32,16x32,32x32,64x32; with --quick
    /// 1x8,2x8,4x8).
    #[arg(long, value_delimiter = ',', value_parser = parse_shape)]
    shapes: Option<Vec<BatchShape>>,
    /// Also prove each shape with one thread (keys reused) for the speedup columns.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value_t = true,
          default_missing_value = "true")]
    threads_compare: bool,
    /// Distinct proofs (rerandomisations) for the verification-of-many measurement; 0 skips.
    #[arg(long, default_value_t = 64)]
    verify_batch: usize,
    /// Output directory (default: `$CARGO_TARGET_DIR/bench`, else the workspace's `target/bench`).
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

pub(crate) fn parse_shape(s: &str) -> Result<BatchShape, String> {
    let (b, d) = s
        .split_once('x')
        .ok_or_else(|| format!("expected BxD (e.g. 4x32), got {s:?}"))?;
    let b = b.trim().parse().map_err(|e| format!("B in {s:?}: {e}"))?;
    let d = d.trim().parse().map_err(|e| format!("D in {s:?}: {e}"))?;
    BatchShape::new(b, d).map_err(|e| e.to_string())
}

/// The raw results written to `prover.json`.
#[derive(Serialize)]
struct Report<'a> {
    machine: &'a Machine,
    verify_batch: usize,
    shapes: &'a [ShapeResult],
}

/// Removes a key directory when the shape is done (or failed).
struct KeyDir(PathBuf);

impl Drop for KeyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `flag`, else [`default_out_dir`], created and canonicalised.
pub(crate) fn out_dir(flag: Option<&PathBuf>) -> Result<PathBuf> {
    let out_dir = flag.cloned().unwrap_or_else(default_out_dir);
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    Ok(out_dir.canonicalize().unwrap_or(out_dir))
}

/// The `veil` binary: `flag`, else the one beside this executable; it must exist.
pub(crate) fn veil_binary(flag: Option<&PathBuf>) -> Result<PathBuf> {
    let veil = match flag {
        Some(v) => v.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this executable's directory")?
            .join("veil"),
    };
    anyhow::ensure!(
        veil.exists(),
        "{} is missing: build it first (`cargo build --release --bin veil`)",
        veil.display()
    );
    Ok(veil)
}

pub(crate) fn default_out_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("bench")
}

fn run_prover(args: ProverArgs) -> Result<()> {
    let shapes = match (&args.shapes, args.quick) {
        (Some(s), _) => s.clone(),
        (None, true) => vec![shape(1, 8), shape(2, 8), shape(4, 8)],
        (None, false) => vec![
            shape(1, 32),
            shape(4, 32),
            shape(16, 32),
            shape(32, 32),
            shape(64, 32),
        ],
    };
    let out_dir = args.out_dir.clone().unwrap_or_else(default_out_dir);
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let out_dir = out_dir.canonicalize().unwrap_or(out_dir);
    let exe = std::env::current_exe().context("locating this executable")?;
    let machine = Machine::collect();
    let all = machine.nproc;

    let mut doc = format!("# Veil prover benchmark\n\n{}\n", machine.markdown());
    print!("{doc}");
    std::io::stdout().flush()?;

    let mut results = Vec::with_capacity(shapes.len());
    for shape in shapes {
        eprintln!("{shape}:");
        let key_dir = KeyDir(
            out_dir
                .join("keys")
                .join(format!("run-{}-{shape}", std::process::id())),
        );
        let all_cores = run_child(&exe, shape, all, &key_dir.0, true, args.verify_batch)?;
        let one_thread = if args.threads_compare {
            Some(run_child(&exe, shape, 1, &key_dir.0, false, 0)?)
        } else {
            None
        };
        results.push(ShapeResult::new(all_cores, one_thread)?);
    }
    // Only removes the directory if no other run is using it.
    let _ = std::fs::remove_dir(out_dir.join("keys"));

    let table = table::markdown(&results, args.verify_batch);
    print!("{table}");
    doc += &table;
    let md_path = out_dir.join("prover.md");
    std::fs::write(&md_path, &doc).with_context(|| format!("writing {}", md_path.display()))?;
    let json_path = out_dir.join("prover.json");
    let report = Report {
        machine: &machine,
        verify_batch: args.verify_batch,
        shapes: &results,
    };
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    eprintln!("wrote {} and {}", md_path.display(), json_path.display());
    Ok(())
}

fn shape(b: usize, d: usize) -> BatchShape {
    BatchShape::new(b, d).expect("built-in shapes are valid")
}

/// Runs `prover-one` in a child process with `RAYON_NUM_THREADS=threads` and parses its JSON.
fn run_child(
    exe: &Path,
    shape: BatchShape,
    threads: usize,
    key_dir: &Path,
    setup: bool,
    verify_batch: usize,
) -> Result<Measurement> {
    let mut cmd = Process::new(exe);
    cmd.arg("prover-one")
        .args(["--batch-size", &shape.batch_size.to_string()])
        .args(["--depth", &shape.depth.to_string()])
        .args(["--threads", &threads.to_string()])
        .arg("--key-dir")
        .arg(key_dir)
        .args(["--verify-batch", &verify_batch.to_string()])
        .env("RAYON_NUM_THREADS", threads.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if setup {
        cmd.arg("--setup");
    }
    let out = cmd
        .output()
        .with_context(|| format!("starting {}", exe.display()))?;
    if !out.status.success() {
        bail!(
            "measurement of {shape} with {threads} thread(s) failed: {}",
            out.status
        );
    }
    let stdout = String::from_utf8(out.stdout).context("child output is not UTF-8")?;
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .context("child printed no result")?;
    serde_json::from_str(line).with_context(|| format!("parsing child result {line:?}"))
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::RssExec { args } => peer::rss_exec(args).map(|code| std::process::exit(code)),
        Command::Prover(args) => run_prover(args),
        Command::ProverOne(args) => measure::run(args),
        Command::ProverAb(args) => compare::run(args),
        Command::Load(args) => load::run(args),
        Command::LoadNode(args) => load::run_node(args),
        Command::Msm(args) => msm::run(args),
        Command::Anchor(args) => anchor::run(args),
        Command::Scale(args) => scale::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Peer(args) => peer::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}
