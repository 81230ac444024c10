//! The background proving worker: proves sealed batches in order with keys loaded once, runs the
//! CPU-heavy Groth16 prover on tokio's blocking pool, checks each proof against the key's own
//! verifying key, and stores the 128-byte compressed proof. Started on a reopened node it
//! resumes with the lowest unproven batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ark_bn254::Bn254;
use ark_groth16::{Groth16, ProvingKey};
use ark_serialize::CanonicalSerialize;
use tokio::sync::watch;

use crate::node::{Node, NodeError};

/// Proves batch witnesses until `shutdown` turns true. A proof already running when shutdown is
/// requested finishes on its blocking thread and is discarded; the batch is proven again after
/// a restart.
pub async fn run_prover(
    node: Arc<Node>,
    pk: Arc<ProvingKey<Bn254>>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), NodeError> {
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
        let pk2 = pk.clone();
        let start = Instant::now();
        let job = tokio::task::spawn_blocking(move || prove_batch(&pk2, &built));
        let bytes = tokio::select! {
            r = job => r.map_err(|e| NodeError::Task(e.to_string()))??,
            _ = shutdown.changed() => return Ok(()),
        };
        let took = start.elapsed();
        let node2 = node.clone();
        tokio::task::spawn_blocking(move || node2.record_proof(n, &bytes, took))
            .await
            .map_err(|e| NodeError::Task(e.to_string()))??;
    }
}

/// Proves one built batch and returns the compressed proof after checking it verifies.
pub fn prove_batch(
    pk: &ProvingKey<Bn254>,
    built: &veil_circuits::BuiltBatch,
) -> Result<Vec<u8>, NodeError> {
    let span = tracing::info_span!("prove_batch", batch = built.witness.batch_number);
    let _g = span.enter();
    let proof = veil_prover::prove(pk, built.circuit(), &mut rand::thread_rng())
        .map_err(|e| NodeError::Task(format!("proving failed: {e}")))?;
    let ok = Groth16::<Bn254>::verify_proof(
        &ark_groth16::prepare_verifying_key(&pk.vk),
        &proof,
        &built.public_inputs.to_vec(),
    )
    .map_err(|e| NodeError::Task(format!("verifying failed: {e}")))?;
    if !ok {
        return Err(NodeError::Task(format!(
            "proof of batch {} does not verify",
            built.witness.batch_number
        )));
    }
    let mut bytes = Vec::with_capacity(128);
    proof
        .serialize_compressed(&mut bytes)
        .expect("serializing into a Vec cannot fail");
    Ok(bytes)
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
