//! `veil-bench peer` (`make bench-peer`): Veil's prover against iden3's rapidsnark on the same
//! R1CS and the same witness. One full batch (B real private transfers) is written as a batch
//! file; `veil export r1cs` / `veil export wtns` turn the circuit and that batch's witness into
//! iden3 files; the peer kit's `zkey` makes a (benchmark-only) `.zkey` for them, cached per
//! circuit build. Then, alternating the order every round, `veil prove` proves the batch file
//! and rapidsnark's `prover` the `.wtns`, each as a child process on every core, timed from
//! spawn to exit with its peak RSS (`wait4`). Every proof is checked: Veil's with `veil verify`
//! (stock arkworks verification), rapidsnark's with `snarkjs groth16 verify` when snarkjs is
//! installed (`make snarkjs`). Medians and the ratio go to `target/bench/peer.md` and `.json`.
//!
//! Without the peer kit (`../shared/peers/rapidsnark` or `--rapidsnark-dir`), it says so and
//! measures Veil alone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use serde::Serialize;
use veil_circuits::batch::file::BatchFile;
use veil_circuits::batch::BatchShape;
use veil_prover::keys::{self, KeyKind};

use crate::machine::Machine;
use crate::measure::build_full_batch;

/// Seed of the (insecure) dev setup, shared with `prover-ab` (keys under `target/bench/keys`).
const SETUP_SEED: u64 = 0xab;

/// Arguments of `veil-bench peer`.
#[derive(clap::Args)]
pub struct Args {
    /// Shape `BxD` (default 16x32; with --quick 2x8).
    #[arg(long, value_parser = crate::parse_shape)]
    shape: Option<BatchShape>,
    /// Rounds; each proves once with each prover.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// A small shape (2x8), seconds: checks the benchmark works.
    #[arg(long)]
    quick: bool,
    /// The rapidsnark peer kit (`prover`, `zkey`); default `$VEIL_RAPIDSNARK_DIR`, else
    /// `../shared/peers/rapidsnark` beside the workspace.
    #[arg(long)]
    rapidsnark_dir: Option<PathBuf>,
    /// The `veil` binary (default: beside this executable).
    #[arg(long)]
    veil: Option<PathBuf>,
    /// Output directory (default: `$CARGO_TARGET_DIR/bench`, else the workspace's `target/bench`).
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

/// One child process's run.
#[derive(Serialize, Clone, Copy)]
struct Run {
    seconds: f64,
    peak_rss_bytes: u64,
}

#[derive(Serialize)]
struct Report<'a> {
    machine: &'a Machine,
    batch_size: usize,
    depth: usize,
    constraints: usize,
    wires: usize,
    r1cs_nonzeros: usize,
    veil: Vec<Run>,
    veil_proving_s: Vec<f64>,
    rapidsnark: Vec<Run>,
    median_veil_s: f64,
    median_veil_proving_s: f64,
    median_rapidsnark_s: Option<f64>,
    ratio: Option<f64>,
    veil_peak_rss_bytes: u64,
    rapidsnark_peak_rss_bytes: Option<u64>,
    rapidsnark_verified_by_snarkjs: Option<bool>,
}

/// Runs `cmd` to completion: wall time from spawn to exit and its peak RSS. The command runs
/// under this executable's small `rss-exec` (a child's `ru_maxrss` starts at its parent's RSS
/// when it was forked, so the benchmark's own memory must not be that parent).
fn measured(cmd: &mut Command) -> Result<(Run, std::process::Output)> {
    let report = tempfile::NamedTempFile::new()?;
    let mut wrapper = Command::new(std::env::current_exe()?);
    wrapper
        .arg("rss-exec")
        .arg(report.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapper.env(k, v),
            None => wrapper.env_remove(k),
        };
    }
    let output = wrapper
        .output()
        .with_context(|| format!("starting {cmd:?}"))?;
    if !output.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = std::fs::read_to_string(report.path())?;
    let (seconds, rss) = text.trim().split_once(' ').context("rss-exec's report")?;
    let run = Run {
        seconds: seconds.parse()?,
        peak_rss_bytes: rss.parse()?,
    };
    Ok((run, output))
}

/// `veil-bench rss-exec REPORT PROGRAM ARGS...`: runs the program (stdio inherited), writes
/// "seconds peak_rss_bytes" to REPORT, and exits with its status.
pub fn rss_exec(args: Vec<std::ffi::OsString>) -> Result<i32> {
    let [report, program, rest @ ..] = args.as_slice() else {
        bail!("usage: rss-exec REPORT PROGRAM [ARGS...]");
    };
    let start = Instant::now();
    let child = Command::new(program)
        .args(rest)
        .spawn()
        .with_context(|| format!("starting {}", program.to_string_lossy()))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet reaped (its `Child` is never waited on); the
    // pointers are to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = start.elapsed().as_secs_f64();
    ensure!(r == pid, "wait4: {}", std::io::Error::last_os_error());
    drop(child);
    std::fs::write(
        report,
        format!("{seconds} {}\n", usage.ru_maxrss as u64 * 1024),
    )?;
    let status: std::process::ExitStatus = std::os::unix::process::ExitStatusExt::from_raw(status);
    Ok(status.code().unwrap_or(1))
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The smallest power of two domain for `constraints` and `inputs` (the `zkey` tool's POWER).
fn power_for(constraints: usize, inputs: usize) -> u32 {
    (constraints + inputs).next_power_of_two().trailing_zeros()
}

/// The proving seconds `veil prove` reports (`..., proving X s): ...`).
fn veil_proving_seconds(stdout: &str) -> Result<f64> {
    let (_, rest) = stdout
        .split_once("proving ")
        .context("no proving time in `veil prove`'s output")?;
    let (secs, _) = rest.split_once(" s").context("proving time")?;
    Ok(secs.parse()?)
}

fn snarkjs() -> Option<PathBuf> {
    let path = std::env::var_os("VEIL_SNARKJS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/npm/node_modules/.bin/snarkjs")
        });
    path.exists().then_some(path)
}

/// Runs the benchmark.
pub fn run(args: Args) -> Result<()> {
    let shape = match (args.shape, args.quick) {
        (Some(s), _) => s,
        (None, true) => BatchShape::new(2, 8)?,
        (None, false) => BatchShape::new(16, 32)?,
    };
    ensure!(args.rounds > 0, "--rounds must be at least 1");
    let out_dir = crate::out_dir(args.out_dir.as_ref())?;
    let veil = crate::veil_binary(args.veil.as_ref())?;
    let kit = args
        .rapidsnark_dir
        .clone()
        .or_else(|| std::env::var_os("VEIL_RAPIDSNARK_DIR").map(PathBuf::from))
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/rapidsnark")
        });
    let kit = (kit.join("prover").exists() && kit.join("zkey").exists()).then_some(kit);
    if kit.is_none() {
        eprintln!(
            "peer: no rapidsnark peer kit (`prover` and `zkey`; --rapidsnark-dir or VEIL_RAPIDSNARK_DIR): measuring Veil alone"
        );
    }
    let machine = Machine::collect();
    let work = out_dir.join("peer");
    std::fs::create_dir_all(&work)?;

    // Veil's keys (and, beside them, the circuit's R1CS cache).
    eprintln!(
        "peer: {shape}: dev keys under {}/keys (minutes the first time)",
        out_dir.display()
    );
    let keys_dir = out_dir.join("keys").join(format!("dev-seed-{SETUP_SEED}"));
    veil_prover::load_or_setup_dev_keys(&out_dir.join("keys"), shape, SETUP_SEED)?;
    let pk = keys_dir.join(keys::key_file_name(KeyKind::Proving, shape));
    let vk = keys_dir.join(keys::key_file_name(KeyKind::Verifying, shape));
    let r1cs = veil_prover::r1cs::R1cs::cached(&keys_dir, shape);

    // The batch, as a batch file and as a witness file.
    let (built, _) = build_full_batch(shape)?;
    let batch = work.join(format!("batch-{shape}.json"));
    std::fs::write(&batch, BatchFile::from_built(&built, true)?.to_json())?;
    let wtns = work.join(format!("batch-{shape}.wtns"));
    let veil_cmd = |args: &[&std::ffi::OsStr]| {
        let mut c = Command::new(&veil);
        c.args(args).env_remove("RUST_LOG");
        c
    };
    measured(&mut veil_cmd(&[
        "export".as_ref(),
        "wtns".as_ref(),
        "--keys-dir".as_ref(),
        keys_dir.as_os_str(),
        "--batch".as_ref(),
        batch.as_os_str(),
        wtns.as_os_str(),
    ]))?;

    // rapidsnark's key, cached per circuit build.
    let zkey = kit
        .as_ref()
        .map(|kit| -> Result<PathBuf> {
            let tag = &veil_circuits::SOURCE_SHA256[..16];
            let zkey = work.join(format!("{shape}-{tag}.zkey"));
            if zkey.exists() {
                return Ok(zkey);
            }
            let r1cs_path = work.join(format!("{shape}.r1cs"));
            eprintln!("peer: exporting {}", r1cs_path.display());
            measured(&mut veil_cmd(&[
                "export".as_ref(),
                "r1cs".as_ref(),
                "--keys-dir".as_ref(),
                keys_dir.as_os_str(),
                "-b".as_ref(),
                shape.batch_size.to_string().as_ref(),
                "-d".as_ref(),
                shape.depth.to_string().as_ref(),
                r1cs_path.as_os_str(),
            ]))?;
            let power = power_for(r1cs.num_constraints(), r1cs.num_instance_variables());
            eprintln!("peer: rapidsnark key (power {power}; minutes at 16x32)");
            let tmp = zkey.with_extension("zkey.tmp");
            measured(
                Command::new(kit.join("zkey"))
                    .arg(&r1cs_path)
                    .arg(power.to_string())
                    .arg(&tmp),
            )?;
            std::fs::rename(&tmp, &zkey)?;
            let _ = std::fs::remove_file(&r1cs_path);
            Ok(zkey)
        })
        .transpose()?;

    let snarkjs = snarkjs();
    let mut veil_runs = Vec::new();
    let mut veil_proving = Vec::new();
    let mut peer_runs = Vec::new();
    let mut peer_verified = None;
    for round in 0..args.rounds {
        let veil_first = round % 2 == 0;
        for side in 0..2 {
            if (side == 0) == veil_first {
                let proof = work.join("veil-proof.json");
                let (run, out) = measured(&mut veil_cmd(&[
                    "prove".as_ref(),
                    "--batch".as_ref(),
                    batch.as_os_str(),
                    "--pk".as_ref(),
                    pk.as_os_str(),
                    "--out".as_ref(),
                    proof.as_os_str(),
                ]))?;
                let stdout = String::from_utf8_lossy(&out.stdout);
                veil_proving.push(veil_proving_seconds(&stdout)?);
                measured(&mut veil_cmd(&[
                    "verify".as_ref(),
                    "--vk".as_ref(),
                    vk.as_os_str(),
                    "--batch".as_ref(),
                    batch.as_os_str(),
                    "--proof".as_ref(),
                    proof.as_os_str(),
                ]))
                .context("Veil's proof does not verify")?;
                eprintln!(
                    "peer: round {round}: veil {:.2} s ({:.0} MiB)",
                    run.seconds,
                    mib(run.peak_rss_bytes)
                );
                veil_runs.push(run);
            } else if let (Some(kit), Some(zkey)) = (&kit, &zkey) {
                let (proof, public) = (work.join("rs-proof.json"), work.join("rs-public.json"));
                let (run, _) = measured(
                    Command::new(kit.join("prover"))
                        .arg(zkey)
                        .arg(&wtns)
                        .arg(&proof)
                        .arg(&public),
                )?;
                if let (Some(snarkjs), None) = (&snarkjs, peer_verified) {
                    let vk_json = work.join("rs-vk.json");
                    measured(
                        Command::new(snarkjs)
                            .args(["zkey", "export", "verificationkey"])
                            .arg(zkey)
                            .arg(&vk_json),
                    )?;
                    let ok = measured(
                        Command::new(snarkjs)
                            .args(["groth16", "verify"])
                            .arg(&vk_json)
                            .arg(&public)
                            .arg(&proof),
                    )
                    .is_ok();
                    ensure!(ok, "rapidsnark's proof does not verify with snarkjs");
                    peer_verified = Some(true);
                }
                eprintln!(
                    "peer: round {round}: rapidsnark {:.2} s ({:.0} MiB)",
                    run.seconds,
                    mib(run.peak_rss_bytes)
                );
                peer_runs.push(run);
            }
        }
    }

    let secs = |runs: &[Run]| runs.iter().map(|r| r.seconds).collect::<Vec<_>>();
    let peak = |runs: &[Run]| runs.iter().map(|r| r.peak_rss_bytes).max().unwrap_or(0);
    let median_veil = median(&secs(&veil_runs));
    let median_peer = (!peer_runs.is_empty()).then(|| median(&secs(&peer_runs)));
    let report = Report {
        machine: &machine,
        batch_size: shape.batch_size,
        depth: shape.depth,
        constraints: r1cs.num_constraints(),
        wires: r1cs.num_variables(),
        r1cs_nonzeros: r1cs.num_nonzeros(),
        median_veil_s: median_veil,
        median_veil_proving_s: median(&veil_proving),
        median_rapidsnark_s: median_peer,
        ratio: median_peer.map(|p| median_veil / p),
        veil_peak_rss_bytes: peak(&veil_runs),
        rapidsnark_peak_rss_bytes: (!peer_runs.is_empty()).then(|| peak(&peer_runs)),
        rapidsnark_verified_by_snarkjs: peer_verified,
        veil: veil_runs,
        veil_proving_s: veil_proving,
        rapidsnark: peer_runs,
    };
    let md = markdown(&report, shape);
    print!("{md}");
    std::fs::write(out_dir.join("peer.md"), &md)?;
    std::fs::write(
        out_dir.join("peer.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    eprintln!("peer: wrote {}", out_dir.join("peer.md").display());
    Ok(())
}

fn markdown(r: &Report, shape: BatchShape) -> String {
    let mut md = format!("# Veil against rapidsnark\n\n{}\n", r.machine.markdown());
    md += &format!(
        "{shape}: {} constraints, {} wires, {} non-zero R1CS entries; one full batch ({} real \
         private transfers); {} rounds, alternating; each prover a child process on every core, \
         timed from spawn to exit (key, circuit and witness loading included), peak RSS from \
         `wait4`.\n\n",
        r.constraints,
        r.wires,
        r.r1cs_nonzeros,
        shape.batch_size,
        r.veil.len()
    );
    md += "| prover | median s | runs (s) | peak RSS MiB |\n|---|---:|---|---:|\n";
    let runs = |v: &[Run]| {
        v.iter()
            .map(|x| format!("{:.2}", x.seconds))
            .collect::<Vec<_>>()
            .join(", ")
    };
    md += &format!(
        "| Veil (`veil prove`) | {:.2} | {} | {:.0} |\n",
        r.median_veil_s,
        runs(&r.veil),
        mib(r.veil_peak_rss_bytes)
    );
    md += &format!(
        "| Veil, proving only (witness check, witness map, MSMs, self-check; synthesis overlaps the key load) | {:.2} | {} | |\n",
        r.median_veil_proving_s,
        r.veil_proving_s
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    match (r.median_rapidsnark_s, r.rapidsnark_peak_rss_bytes) {
        (Some(s), Some(peak)) => {
            md += &format!(
                "| rapidsnark (`prover`) | {s:.2} | {} | {:.0} |\n\n",
                runs(&r.rapidsnark),
                mib(peak)
            );
            md += &format!(
                "**Veil / rapidsnark: {:.2}x** in time (whole process), {:.2}x in peak RSS. \
                 Veil's proofs verified with `veil verify`; rapidsnark's {}.\n",
                r.ratio.unwrap_or(f64::NAN),
                mib(r.veil_peak_rss_bytes) / mib(peak),
                match r.rapidsnark_verified_by_snarkjs {
                    Some(true) => "with `snarkjs groth16 verify`",
                    _ => "not checked (no snarkjs: `make snarkjs`)",
                }
            );
        }
        _ => md += "\nrapidsnark: not measured (no peer kit).\n",
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_and_proving_time_parse() {
        assert_eq!(power_for(710_626, 4), 20);
        assert_eq!(power_for(47_026, 4), 16);
        assert_eq!(power_for(65_532, 4), 16);
        assert_eq!(power_for(65_533, 4), 17);
        let line = "proved batch 1 (B2-D8) in 1.52 s (loading the key and circuit while synthesising the witness 0.31 s, proving 1.21 s): x.json\n";
        assert_eq!(veil_proving_seconds(line).unwrap(), 1.21);
        assert!(veil_proving_seconds("proved").is_err());
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
