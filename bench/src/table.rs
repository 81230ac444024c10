//! The prover benchmark's result per shape (its child measurements and the derived row) and its
//! Markdown rendering.

use anyhow::{Context, Result};
use serde::Serialize;

use crate::measure::Measurement;

/// Bytes per MB in the table (decimal megabytes).
const MB: f64 = 1e6;

/// One table row, derived from a shape's measurements.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `B`.
    pub batch_size: usize,
    /// `D`.
    pub depth: usize,
    /// Threads of the all-cores run.
    pub threads: usize,
    /// Constraints.
    pub constraints: usize,
    /// Constraints per transfer slot.
    pub constraints_per_transfer: f64,
    /// Synthesis and setup, seconds.
    pub setup_s: f64,
    /// Witness builder, seconds (all cores).
    pub witness_s: f64,
    /// Proving with all cores, seconds.
    pub prove_s: f64,
    /// Proving with one thread, seconds.
    pub prove_1t_s: Option<f64>,
    /// `prove_1t_s / prove_s`.
    pub speedup: Option<f64>,
    /// Constraints proven per second, all cores.
    pub constraints_per_s: f64,
    /// Constraints proven per second, one thread.
    pub constraints_per_s_1t: Option<f64>,
    /// Median single verification, ms.
    pub verify_ms: f64,
    /// Batch verification, ms per proof (when measured).
    pub batch_verify_ms_per_proof: Option<f64>,
    /// Compressed proving key, MB.
    pub pk_mb: f64,
    /// Largest peak RSS of the shape's child processes, MB.
    pub peak_rss_mb: f64,
    /// `B / prove_s`.
    pub transfers_per_s: f64,
}

/// Everything measured for one shape.
#[derive(Debug, Clone, Serialize)]
pub struct ShapeResult {
    /// The derived row.
    pub row: Row,
    /// The all-cores run (with setup).
    pub all_cores: Measurement,
    /// The one-thread run (keys reused), if run.
    pub one_thread: Option<Measurement>,
}

impl ShapeResult {
    /// Derives the row from the runs.
    pub fn new(all_cores: Measurement, one_thread: Option<Measurement>) -> Result<Self> {
        let a = &all_cores;
        let constraints = a
            .constraints
            .context("the all-cores run reports no constraint count")?;
        let setup_s = a
            .setup_s
            .context("the all-cores run reports no setup time")?;
        let prove_1t_s = one_thread.as_ref().map(|m| m.prove_s);
        let peak = one_thread
            .iter()
            .map(|m| m.peak_rss_bytes)
            .fold(a.peak_rss_bytes, u64::max);
        let row = Row {
            batch_size: a.batch_size,
            depth: a.depth,
            threads: a.threads,
            constraints,
            constraints_per_transfer: constraints as f64 / a.batch_size as f64,
            setup_s,
            witness_s: a.witness_s,
            prove_s: a.prove_s,
            prove_1t_s,
            speedup: prove_1t_s.map(|t| t / a.prove_s),
            constraints_per_s: constraints as f64 / a.prove_s,
            constraints_per_s_1t: prove_1t_s.map(|t| constraints as f64 / t),
            verify_ms: a.verify_ms,
            batch_verify_ms_per_proof: a.batch_verify_ms_per_proof,
            pk_mb: a.pk_bytes as f64 / MB,
            peak_rss_mb: peak as f64 / MB,
            transfers_per_s: a.transfers as f64 / a.prove_s,
        };
        Ok(ShapeResult {
            row,
            all_cores,
            one_thread,
        })
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "–".into(), f)
}

/// The results as a Markdown table, with notes on how to read it.
pub fn markdown(results: &[ShapeResult], verify_batch: usize) -> String {
    let header = [
        "B",
        "D",
        "constraints",
        "constraints/transfer",
        "setup s",
        "witness s",
        "prove s (all cores)",
        "prove s (1 thread)",
        "speedup",
        "constraints/s (all cores)",
        "constraints/s (1 thread)",
        "verify ms",
        "batch-verify ms/proof",
        "pk MB",
        "peak RSS MB",
        "transfers proven/s",
    ];
    let mut out = format!("| {} |\n", header.join(" | "));
    out += &format!("|{}\n", header.iter().map(|_| "---:|").collect::<String>());
    for r in results.iter().map(|s| &s.row) {
        let cells = [
            r.batch_size.to_string(),
            r.depth.to_string(),
            r.constraints.to_string(),
            format!("{:.0}", r.constraints_per_transfer),
            format!("{:.2}", r.setup_s),
            format!("{:.3}", r.witness_s),
            format!("{:.2}", r.prove_s),
            opt(r.prove_1t_s, |t| format!("{t:.2}")),
            opt(r.speedup, |x| format!("{x:.2}x")),
            format!("{:.0}", r.constraints_per_s),
            opt(r.constraints_per_s_1t, |x| format!("{x:.0}")),
            format!("{:.2}", r.verify_ms),
            opt(r.batch_verify_ms_per_proof, |x| format!("{x:.2}")),
            format!("{:.1}", r.pk_mb),
            format!("{:.0}", r.peak_rss_mb),
            format!("{:.2}", r.transfers_per_s),
        ];
        out += &format!("| {} |\n", cells.join(" | "));
    }
    let threads = results.first().map_or(0, |s| s.row.threads);
    out += &format!(
        "\nAll cores = {threads} rayon threads. Each configuration runs in its own process; peak RSS \
         is proving's (from a long-lived prover's state, the key and the cached R1CS, through the \
         proof and its verification; not the one-off setup), the larger of a shape's two processes \
         (setup + prove, then prove only with the keys reloaded). Setup uses an insecure dev seed. Verify: prepared key, median of 20. \
         batch-verify: {verify_batch} rerandomised proofs of the batch, \"–\" where not measured. \
         MB = 10^6 bytes; pk = proving key as stored (uncompressed points).\n"
    );
    out
}
