//! Proving by `veil prover-worker`s through the PostgreSQL job queue (`[proving]
//! database_url`). The node stays the single sequencer: it queues each sealed batch (its batch
//! file with the witness, its shape and the verifying key's identity), returns jobs whose
//! worker stopped heartbeating to the queue, and takes the proofs workers write back. It never
//! trusts a worker: each proof is decoded and verified against the node's verifying key and
//! the batch's public inputs (the node's own, never the job row's) before it is stored; a wrong
//! proof is logged and its job queued again. Proofs are stored as they come (batches proven out
//! of order wait for the ones before them); anchoring follows the proven height, in order.
//!
//! A database that goes away only pauses this loop: every pass that fails is retried with a
//! backoff, and sealing, the API and anchoring carry on meanwhile.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ark_bn254::{Bn254, Fr};
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, VerifyingKey};
use ark_serialize::CanonicalDeserialize;
use tokio::sync::watch;
use veil_circuits::batch::file::BatchFile;
use veil_jobs::{
    Backoff, JobQueue, JobState, NewJob, QueueError, QueueStatus, WorkerStats, CHANNEL_PROOFS,
};

use crate::config::ProvingConfig;
use crate::node::{Node, NodeError};
use crate::prometheus::{label_value, write_family, write_metric};

/// How often the node looks at the queue when no notification wakes it.
const POLL: Duration = Duration::from_secs(1);
/// How often the queue's status (for `/metrics`) is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(3);

/// What the node's `/metrics` shows of the queue.
#[derive(Default)]
pub struct QueueMetrics {
    connected: AtomicBool,
    accepted: AtomicU64,
    rejected: AtomicU64,
    reaped: AtomicU64,
    status: Mutex<Option<QueueStatus>>,
}

impl QueueMetrics {
    /// Appends the queue's metrics in Prometheus' text format.
    pub fn render(&self, s: &mut String) {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        write_metric(
            s,
            "veil_proving_queue_up",
            "gauge",
            "1 when the node's last pass over the job queue reached PostgreSQL.",
            self.connected.load(Ordering::Relaxed) as u8,
        );
        write_metric(
            s,
            "veil_proving_proofs_accepted_total",
            "counter",
            "Worker proofs the node verified and stored.",
            n(&self.accepted),
        );
        write_metric(
            s,
            "veil_proving_proofs_rejected_total",
            "counter",
            "Worker proofs that failed the node's verification (their jobs were queued again).",
            n(&self.rejected),
        );
        write_metric(
            s,
            "veil_proving_jobs_reaped_total",
            "counter",
            "Jobs returned to the queue because their worker stopped heartbeating.",
            n(&self.reaped),
        );
        let status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let Some(status) = status.as_ref() else {
            return;
        };
        write_family(
            s,
            "veil_proving_queue_jobs",
            "gauge",
            "Proving jobs by shape and state.",
            status.shapes.iter().flat_map(|c| {
                [
                    (JobState::Queued, c.queued),
                    (JobState::Running, c.running),
                    (JobState::Proven, c.proven),
                    (JobState::Done, c.done),
                    (JobState::Failed, c.failed),
                ]
                .map(|(state, count)| {
                    let shape = format!("B{}-D{}", c.batch_size, c.depth);
                    (
                        format!("shape=\"{shape}\",state=\"{}\"", state.as_str()),
                        count,
                    )
                })
            }),
        );
        write_metric(
            s,
            "veil_proving_queue_depth",
            "gauge",
            "Jobs waiting for a worker.",
            status.total(JobState::Queued),
        );
        write_metric(
            s,
            "veil_proving_queue_oldest_seconds",
            "gauge",
            "Age of the oldest queued job.",
            format!("{:.3}", status.oldest_queued_s),
        );
        // A summary's series carry suffixes, not labels.
        let _ = writeln!(
            s,
            "# HELP veil_proving_job_latency_seconds From a batch's job queued to its proof \
             written back.\n# TYPE veil_proving_job_latency_seconds summary\n\
             veil_proving_job_latency_seconds_sum {:.3}\n\
             veil_proving_job_latency_seconds_count {}",
            status.latency_ms_sum / 1e3,
            status.latency_count
        );
        let worker = |w: &WorkerStats| format!("worker=\"{}\"", label_value(&w.worker));
        write_family(
            s,
            "veil_proving_worker_jobs_total",
            "counter",
            "Jobs proven, per worker.",
            status
                .workers
                .iter()
                .map(|w| (worker(w), w.jobs.to_string())),
        );
        write_family(
            s,
            "veil_proving_worker_seconds_total",
            "counter",
            "Proving seconds, per worker.",
            status
                .workers
                .iter()
                .map(|w| (worker(w), format!("{:.3}", w.prove_ms as f64 / 1e3))),
        );
    }
}

/// Why a pass stopped.
enum PassError {
    /// The database: retried with backoff.
    Queue(QueueError),
    /// The node itself (its store): fatal.
    Node(NodeError),
}

impl From<QueueError> for PassError {
    fn from(e: QueueError) -> Self {
        PassError::Queue(e)
    }
}

impl From<NodeError> for PassError {
    fn from(e: NodeError) -> Self {
        PassError::Node(e)
    }
}

/// The node's side of the queue.
struct QueueProver {
    node: Arc<Node>,
    queue: JobQueue,
    pvk: Arc<PreparedVerifyingKey<Bn254>>,
    vk_id: String,
    config: ProvingConfig,
    metrics: Arc<QueueMetrics>,
    /// Batches this process queued (each once per run; a restart queues them all again).
    queued: BTreeSet<u64>,
    /// When the status was last refreshed.
    status_at: Option<std::time::Instant>,
}

/// Runs the node's side of the job queue until `shutdown` turns true.
pub async fn run_queue_prover(
    node: Arc<Node>,
    vk: VerifyingKey<Bn254>,
    vk_id: String,
    config: ProvingConfig,
    metrics: Arc<QueueMetrics>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), NodeError> {
    let url = config
        .database_url
        .clone()
        .ok_or_else(|| NodeError::Config("proving.database_url is not set".into()))?;
    let queue = JobQueue::new(&url, &[CHANNEL_PROOFS])
        .map_err(|e| NodeError::Config(format!("proving.database_url: {e}")))?;
    tracing::info!(url = %queue.url(), %vk_id, "proving through the job queue");
    let mut p = QueueProver {
        node,
        queue,
        pvk: Arc::new(veil_verifier::prepare(&vk)),
        vk_id,
        config,
        metrics,
        queued: BTreeSet::new(),
        status_at: None,
    };
    let mut backoff = Backoff::default();
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let wait = match p.pass().await {
            Ok(()) => {
                backoff.reset();
                p.metrics.connected.store(true, Ordering::Relaxed);
                POLL
            }
            Err(PassError::Node(e)) => return Err(e),
            Err(PassError::Queue(e)) => {
                p.metrics.connected.store(false, Ordering::Relaxed);
                // The database may come back empty (a new cluster): queue everything again
                // (queueing is idempotent).
                p.queued.clear();
                let delay = backoff.next_delay();
                tracing::warn!(
                    error = %e,
                    retry_ms = delay.as_millis() as u64,
                    "job queue unavailable; retrying"
                );
                delay
            }
        };
        tokio::select! {
            _ = p.node.prove_wanted.notified() => {}
            _ = p.queue.wait(wait) => {}
            r = shutdown.changed() => if r.is_err() { return Ok(()) },
        }
    }
}

impl QueueProver {
    /// Queues new batches, reaps silent workers' jobs, checks and stores returned proofs, and
    /// refreshes the metrics.
    async fn pass(&mut self) -> Result<(), PassError> {
        let shape = self.node.shape();
        for n in self.node.unproven_numbers() {
            if self.queued.contains(&n) {
                continue;
            }
            let Some(built) = self.node.unproven_batch(n) else {
                continue;
            };
            let file = BatchFile::from_built(&built, true)
                .map_err(|e| NodeError::Task(format!("batch {n}'s witness file: {e}")))?;
            let witness = file.to_json();
            let state = self
                .queue
                .enqueue(&NewJob {
                    vk_id: &self.vk_id,
                    batch: n,
                    batch_size: shape.batch_size as u32,
                    depth: shape.depth as u32,
                    witness: witness.as_bytes(),
                    max_attempts: self.config.max_attempts,
                })
                .await?;
            tracing::info!(
                batch = n,
                state = state.as_str(),
                bytes = witness.len(),
                "batch queued for proving"
            );
            self.queued.insert(n);
        }
        for r in self
            .queue
            .reap_stale(self.config.heartbeat_timeout())
            .await?
        {
            self.metrics.reaped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                batch = r.batch,
                worker = %r.worker,
                state = r.state.as_str(),
                "prover worker stopped heartbeating; its job was taken back"
            );
        }
        for job in self.queue.proven(&self.vk_id).await? {
            let n = job.batch;
            let Some(inputs) = self.node.unproven_public_inputs(n) else {
                // Stored already (a restart between storing and accepting), or not ours.
                self.queue.accept(job.lease).await?;
                continue;
            };
            let pvk = self.pvk.clone();
            let proof_bytes = job.proof.clone();
            let checked =
                tokio::task::spawn_blocking(move || check_proof(&pvk, &inputs, &proof_bytes))
                    .await
                    .map_err(|e| NodeError::Task(e.to_string()))?;
            match checked {
                Ok(()) => {
                    let node = self.node.clone();
                    let took = Duration::from_millis(job.prove_ms.max(0) as u64);
                    let proof = job.proof;
                    tokio::task::spawn_blocking(move || node.record_proof(n, &proof, took))
                        .await
                        .map_err(|e| NodeError::Task(e.to_string()))??;
                    self.queue.accept(job.lease).await?;
                    self.metrics.accepted.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        batch = n,
                        worker = %job.worker,
                        prove_ms = job.prove_ms,
                        latency_ms = job.latency_ms,
                        "worker proof verified and stored"
                    );
                }
                Err(why) => {
                    self.metrics.rejected.fetch_add(1, Ordering::Relaxed);
                    let error = format!("proof from {} rejected by the node: {why}", job.worker);
                    let state = self.queue.reject(job.lease, &error).await?;
                    tracing::warn!(
                        batch = n,
                        worker = %job.worker,
                        error = %why,
                        state = state.map(|s| s.as_str()).unwrap_or("gone"),
                        "worker proof failed verification; job queued again"
                    );
                }
            }
        }
        // Forget queued batches that are proven now.
        let proven = self.node.state_view().proven_height;
        self.queued = self.queued.split_off(&proven);
        // The status aggregates the whole table: every few seconds is enough for /metrics.
        if self.status_at.is_none_or(|t| t.elapsed() >= STATUS_EVERY) {
            let status = self.queue.status().await?;
            *self
                .metrics
                .status
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(status);
            self.status_at = Some(std::time::Instant::now());
        }
        Ok(())
    }
}

/// Decodes (with subgroup checks) and verifies a compressed proof for `inputs`.
fn check_proof(
    pvk: &PreparedVerifyingKey<Bn254>,
    inputs: &[Fr],
    bytes: &[u8],
) -> Result<(), String> {
    let proof = Proof::<Bn254>::deserialize_compressed(bytes)
        .map_err(|e| format!("undecodable proof ({} bytes): {e}", bytes.len()))?;
    match Groth16::<Bn254>::verify_proof(pvk, &proof, inputs) {
        Ok(true) => Ok(()),
        Ok(false) => Err("the proof does not verify for the batch's public inputs".into()),
        Err(e) => Err(format!("verification error: {e}")),
    }
}
