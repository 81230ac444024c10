//! The background proving worker: proves sealed batches in order with one long-lived
//! [`Prover`] (key and R1CS matrices loaded once), on tokio's blocking pool, and stores each
//! 128-byte compressed proof (checked against the key's own verifying key first). Proving is
//! pipelined: while batch `n` is in its MSMs, batch `n + 1`'s witness (one-thread synthesis) is
//! built beside it, so the second core is not idle during synthesis; at most one synthesised
//! witness waits, so memory grows by one assignment and its constraint evaluations (about
//! 120 MB at B = 16, D = 32), not by a second proof. Started on a
//! reopened node it resumes with the lowest unproven batch.
//!
//! With a job queue configured, [`queue`] replaces the in-process prover: prover workers on
//! other machines prove, the node checks and stores.

pub mod queue;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ark_serialize::CanonicalSerialize;
use tokio::sync::watch;
use veil_circuits::BuiltBatch;
use veil_prover::{Prover, SynthesizedWitness};

use crate::node::{Node, NodeError};

/// Proves batch witnesses until `shutdown` turns true. A proof already running when shutdown is
/// requested finishes on its blocking thread and is discarded; the batch is proven again after
/// a restart.
pub async fn run_prover(
    node: Arc<Node>,
    load: impl FnOnce() -> Result<Prover, veil_prover::ProverError> + Send + 'static,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), NodeError> {
    let prover = tokio::task::spawn_blocking(load)
        .await
        .map_err(|e| NodeError::Task(e.to_string()))?
        .map_err(|e| NodeError::Task(format!("loading the prover: {e}")))?;
    if prover.shape() != node.shape() {
        return Err(NodeError::Task(format!(
            "the prover is for {}, the node for {}",
            prover.shape(),
            node.shape()
        )));
    }
    let prover = Arc::new(prover);
    // The next batch's witness, synthesised while the previous batch was proven.
    let mut ready: Option<ReadyWitness> = None;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let Some((n, built)) = node.next_unproven() else {
            tokio::select! {
                _ = node.prove_wanted.notified() => {}
                r = shutdown.changed() => if r.is_err() { return Ok(()) },
            }
            continue;
        };
        let witness = ready.take().filter(|(m, _)| *m == n).map(|(_, w)| w);
        let next = node.unproven_after(n);
        let prover2 = prover.clone();
        let start = Instant::now();
        let job =
            tokio::task::spawn_blocking(move || prove_pipelined(&prover2, &built, witness, next));
        let (bytes, next_witness) = tokio::select! {
            r = job => r.map_err(|e| NodeError::Task(e.to_string()))??,
            _ = shutdown.changed() => return Ok(()),
        };
        let took = start.elapsed();
        ready = next_witness;
        let node2 = node.clone();
        tokio::task::spawn_blocking(move || node2.record_proof(n, &bytes, took))
            .await
            .map_err(|e| NodeError::Task(e.to_string()))??;
    }
}

/// A batch number and its synthesised witness, waiting for its turn.
type ReadyWitness = (u64, SynthesizedWitness);

/// Proves `built` (from `witness` when it was synthesised already) and, on the other core at
/// the same time, synthesises `next`'s witness. A failure to synthesise `next` is only logged:
/// that batch is synthesised again, and its error reported, when its turn comes.
fn prove_pipelined(
    prover: &Prover,
    built: &BuiltBatch,
    witness: Option<SynthesizedWitness>,
    next: Option<(u64, BuiltBatch)>,
) -> Result<(Vec<u8>, Option<ReadyWitness>), NodeError> {
    let n = built.witness.batch_number;
    let span = tracing::info_span!("prove_batch", batch = n);
    let _g = span.enter();
    let failed = |e: veil_prover::ProverError| NodeError::Task(format!("proving batch {n}: {e}"));
    let witness = match witness {
        Some(w) => w,
        None => prover.synthesize(built.circuit()).map_err(failed)?,
    };
    let (proof, next) = rayon::join(
        || prover.prove_synthesized(witness, &mut rand::rngs::OsRng),
        || {
            let (m, b) = next?;
            match prover.synthesize(b.circuit()) {
                Ok(w) => Some((m, w)),
                Err(e) => {
                    tracing::warn!(batch = m, error = %e, "synthesising the next batch failed");
                    None
                }
            }
        },
    );
    let (proof, report) = proof.map_err(failed)?;
    tracing::debug!(
        synthesis_s = report.synthesis.as_secs_f64(),
        proof_s = report.proof.total().as_secs_f64(),
        "proved"
    );
    let mut bytes = Vec::with_capacity(128);
    proof
        .serialize_compressed(&mut bytes)
        .expect("serializing into a Vec cannot fail");
    Ok((bytes, next))
}

/// The sealing policy: seal when `B` transfers wait, or when the oldest has waited `max_wait`.
pub async fn run_sealer(
    node: Arc<Node>,
    max_wait: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), NodeError> {
    let b = node.shape().batch_size;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let (len, oldest) = node.mempool_wait();
        let due = len >= b || oldest.is_some_and(|age| age >= max_wait);
        if due {
            let node2 = node.clone();
            match tokio::task::spawn_blocking(move || node2.seal())
                .await
                .map_err(|e| NodeError::Task(e.to_string()))?
            {
                Ok(_) => {}
                Err(NodeError::Unavailable) => return Err(NodeError::Unavailable),
                Err(e) => {
                    // E.g. a full tree: keep serving reads, retry later.
                    tracing::error!(error = %e, "sealing failed");
                    tokio::select! {
                        _ = tokio::time::sleep(max_wait.max(Duration::from_secs(1))) => {}
                        r = shutdown.changed() => if r.is_err() { return Ok(()) },
                    }
                }
            }
            continue;
        }
        let sleep = match oldest {
            Some(age) => max_wait - age,
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = node.seal_wanted.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            r = shutdown.changed() => if r.is_err() { return Ok(()) },
        }
    }
}
