//! `veil prover-worker`: a stateless prover for the node's PostgreSQL job queue, to run on as
//! many machines as proving needs. It loads the proving key once (a long-lived [`Prover`] with
//! its cached matrices), then loops: claim the lowest queued batch of its shape and key
//! (`FOR UPDATE SKIP LOCKED`: workers never share a job), prove it on every core (or
//! `--threads`) while a heartbeat tells the queue it is alive, write the proof back, and claim
//! again; idle, it waits for the queue's `NOTIFY` (or polls every second). It keeps no state:
//! killed, its job goes back to the queue after the node's heartbeat timeout. A database that
//! goes away is retried with backoff; a finished proof is written back once it returns (unless
//! its job was taken back meanwhile). `--listen` serves `/metrics` (jobs, proving seconds, the
//! queue's own overhead per claim, heartbeat and write-back) and `/healthz`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ark_bn254::Bn254;
use ark_groth16::Proof;
use ark_serialize::CanonicalSerialize;
use veil_circuits::batch::file::BatchFile;
use veil_circuits::batch::BatchShape;
use veil_jobs::{Backoff, ClaimedJob, JobQueue, Lease, CHANNEL_JOBS};
use veil_prover::Prover;
use veil_sequencer::prometheus::{label_value, write_family};

use crate::util;

/// Arguments of `veil prover-worker`.
#[derive(clap::Args)]
pub struct Args {
    /// The node's job queue (or VEIL_DATABASE_URL).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Directory of `pk-B{B}-D{D}.bin` (the node's key).
    #[arg(long, default_value = "keys")]
    keys_dir: PathBuf,
    /// Transfers per batch of the jobs to prove.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Tree depth of the jobs to prove.
    #[arg(long, default_value_t = 32)]
    depth: usize,
    /// Proving threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// This worker's name in the queue (default: host name and process id).
    #[arg(long)]
    name: Option<String>,
    /// Serve `/metrics` and `/healthz` on this address.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Heartbeat interval while proving, ms (keep it well under the node's
    /// `proving.heartbeat_timeout_ms`, default 30000).
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    heartbeat_ms: u64,
    /// Generate a missing proving key with this insecure dev seed (as `veil node --dev-keys`).
    #[arg(long, value_name = "SEED")]
    dev_keys: Option<u64>,
    /// Exit after proving this many jobs.
    #[arg(long)]
    max_jobs: Option<u64>,
    /// Test hook: write back proofs that do not verify (the node must catch them).
    #[arg(long, hide = true)]
    corrupt_proofs: bool,
    /// Test hook: a slow machine: wait this long (heartbeating) before proving each job.
    #[arg(long, hide = true, value_name = "MS")]
    hold_ms: Option<u64>,
}

/// Counters behind `/metrics`.
#[derive(Default)]
struct WorkerMetrics {
    proven: AtomicU64,
    failed: AtomicU64,
    lost: AtomicU64,
    prove_us: AtomicU64,
    claims: AtomicU64,
    claim_us: AtomicU64,
    heartbeats: AtomicU64,
    heartbeat_us: AtomicU64,
    completes: AtomicU64,
    complete_us: AtomicU64,
    db_up: AtomicBool,
    /// The batch being proven, -1 when idle.
    current: AtomicI64,
}

impl WorkerMetrics {
    fn add(count: &AtomicU64, sum_us: &AtomicU64, t: Instant) {
        count.fetch_add(1, Ordering::Relaxed);
        sum_us.fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, worker: &str) -> String {
        let mut s = String::new();
        let l = format!("worker=\"{}\"", label_value(worker));
        let secs = |a: &AtomicU64| format!("{:.6}", a.load(Ordering::Relaxed) as f64 / 1e6);
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
        let mut m = |name: &str, kind: &str, help: &str, v: String| {
            write_family(&mut s, name, kind, help, [(&l, v)]);
        };
        m(
            "veil_worker_jobs_proven_total",
            "counter",
            "Proofs written back.",
            n(&self.proven),
        );
        m(
            "veil_worker_jobs_failed_total",
            "counter",
            "Jobs whose proving failed.",
            n(&self.failed),
        );
        m(
            "veil_worker_jobs_lost_total",
            "counter",
            "Jobs taken back by the queue before the proof was written.",
            n(&self.lost),
        );
        m(
            "veil_worker_prove_seconds_total",
            "counter",
            "Seconds spent proving.",
            secs(&self.prove_us),
        );
        for (op, count, sum) in [
            ("claim", &self.claims, &self.claim_us),
            ("heartbeat", &self.heartbeats, &self.heartbeat_us),
            ("complete", &self.completes, &self.complete_us),
        ] {
            m(
                &format!("veil_worker_queue_{op}_total"),
                "counter",
                &format!("Successful {op} statements."),
                n(count),
            );
            m(
                &format!("veil_worker_queue_{op}_seconds_total"),
                "counter",
                &format!("Seconds spent in {op} statements (the queue's overhead)."),
                secs(sum),
            );
        }
        m(
            "veil_worker_database_up",
            "gauge",
            "1 when the last statement reached PostgreSQL.",
            (self.db_up.load(Ordering::Relaxed) as u8).to_string(),
        );
        m(
            "veil_worker_current_batch",
            "gauge",
            "The batch being proven (-1: idle).",
            self.current.load(Ordering::Relaxed).to_string(),
        );
        s
    }
}

/// Everything a job needs.
struct Worker {
    name: String,
    shape: BatchShape,
    vk_id: String,
    prover: Arc<Prover>,
    queue: Arc<JobQueue>,
    metrics: Arc<WorkerMetrics>,
    heartbeat: Duration,
    hold: Option<Duration>,
    corrupt: bool,
    /// The job being proven.
    lease: std::sync::Mutex<Option<Lease>>,
}

/// Runs the worker until Ctrl-C (or `--max-jobs`).
pub fn run(args: Args) -> Result<std::process::ExitCode> {
    let url = util::database_url(args.database_url.clone())?;
    let shape = util::shape(args.batch_size, args.depth)?;
    if args.heartbeat_ms == 0 {
        anyhow::bail!("--heartbeat-ms must be at least 1");
    }
    if let Some(t) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t.max(1))
            .build_global()
            .context("building the proving thread pool")?;
    }
    let name = args.name.clone().unwrap_or_else(default_name);
    let pk_path = util::ensure_keys(&args.keys_dir, shape, args.dev_keys)?;
    let bar = util::spinner(format!("loading {}", pk_path.display()));
    let prover = Prover::load(&pk_path, shape).context("loading the proving key")?;
    bar.finish_and_clear();
    let vk_id = prover.vk_sha256();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let queue = Arc::new(JobQueue::new(&url, &[CHANNEL_JOBS])?);
    eprintln!(
        "veil prover-worker {name}: {shape}, {} proving threads, queue {}",
        rayon::current_num_threads(),
        queue.url()
    );
    let worker = Worker {
        name,
        shape,
        vk_id,
        prover: Arc::new(prover),
        queue,
        metrics: Arc::new(WorkerMetrics {
            current: AtomicI64::new(-1),
            ..Default::default()
        }),
        heartbeat: Duration::from_millis(args.heartbeat_ms),
        hold: args.hold_ms.map(Duration::from_millis),
        corrupt: args.corrupt_proofs,
        lease: std::sync::Mutex::new(None),
    };
    runtime.block_on(async move {
        if let Some(addr) = args.listen {
            serve(addr, worker.metrics.clone(), worker.name.clone()).await?;
        }
        let result = tokio::select! {
            r = worker.run(args.max_jobs) => r,
            _ = shutdown_signal() => {
                tracing::info!("stopping");
                Ok(())
            }
        };
        // Give a job in progress back untried rather than let it wait for the heartbeat
        // timeout.
        let current = worker
            .lease
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(lease) = current {
            match tokio::time::timeout(Duration::from_secs(3), worker.queue.release(lease)).await {
                Ok(Ok(true)) => tracing::info!(job = lease.id, "job given back to the queue"),
                _ => tracing::warn!(
                    job = lease.id,
                    "could not give the job back; it returns after the heartbeat timeout"
                ),
            }
        }
        result
    })?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}", std::process::id())
}

/// `/metrics` and `/healthz` (503 while PostgreSQL is unreachable).
async fn serve(addr: SocketAddr, metrics: Arc<WorkerMetrics>, name: String) -> Result<()> {
    use warp::Filter;
    let m = metrics.clone();
    let metrics_route = warp::path!("metrics").and(warp::get()).map(move || {
        warp::reply::with_header(m.render(&name), "content-type", "text/plain; version=0.0.4")
    });
    let health = warp::path!("healthz").and(warp::get()).map(move || {
        let up = metrics.db_up.load(Ordering::Relaxed);
        let current = metrics.current.load(Ordering::Relaxed);
        let body = serde_json::json!({
            "status": if up { "ok" } else { "database_unreachable" },
            "database": up,
            "proving_batch": (current >= 0).then_some(current),
            "jobs_proven": metrics.proven.load(Ordering::Relaxed),
        });
        let code = if up {
            warp::http::StatusCode::OK
        } else {
            warp::http::StatusCode::SERVICE_UNAVAILABLE
        };
        warp::reply::with_status(warp::reply::json(&body), code)
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let incoming = tokio_stream_of(listener);
    tokio::spawn(warp::serve(metrics_route.or(health)).run_incoming(incoming));
    Ok(())
}

/// A listener as the stream of connections warp serves.
fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(listener, |l| async move {
        let r = l.accept().await.map(|(s, _)| s);
        Some((r, l))
    })
}

impl Worker {
    async fn run(&self, max_jobs: Option<u64>) -> Result<()> {
        let mut backoff = Backoff::default();
        let mut done = 0u64;
        loop {
            if max_jobs.is_some_and(|m| done >= m) {
                return Ok(());
            }
            let t = Instant::now();
            let claimed = self
                .queue
                .claim(
                    &self.name,
                    self.shape.batch_size as u32,
                    self.shape.depth as u32,
                    &self.vk_id,
                )
                .await;
            match claimed {
                Err(e) => {
                    self.metrics.db_up.store(false, Ordering::Relaxed);
                    let d = backoff.next_delay();
                    tracing::warn!(error = %e, retry_ms = d.as_millis() as u64, "job queue unavailable");
                    tokio::time::sleep(d).await;
                }
                Ok(None) => {
                    self.metrics.db_up.store(true, Ordering::Relaxed);
                    backoff.reset();
                    self.queue.wait(Duration::from_secs(1)).await;
                }
                Ok(Some(job)) => {
                    self.metrics.db_up.store(true, Ordering::Relaxed);
                    backoff.reset();
                    WorkerMetrics::add(&self.metrics.claims, &self.metrics.claim_us, t);
                    self.job(job).await;
                    done += 1;
                }
            }
        }
    }

    /// Proves one claimed job and writes its outcome back.
    async fn job(&self, job: ClaimedJob) {
        let (lease, n) = (job.lease, job.batch);
        tracing::info!(batch = n, attempt = job.attempt, "claimed");
        self.metrics.current.store(n as i64, Ordering::Relaxed);
        *self.lease.lock().unwrap_or_else(|e| e.into_inner()) = Some(lease);
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = tokio::spawn(heartbeat(
            self.queue.clone(),
            lease,
            self.heartbeat,
            lost.clone(),
            self.metrics.clone(),
        ));
        let prover = self.prover.clone();
        let (shape, corrupt) = (self.shape, self.corrupt);
        let witness = job.witness;
        if let Some(hold) = self.hold {
            tokio::time::sleep(hold).await;
        }
        let t = Instant::now();
        let proved = tokio::task::spawn_blocking(move || prove(&prover, shape, &witness, corrupt))
            .await
            .unwrap_or_else(|e| Err(format!("the proving task failed: {e}")));
        let prove_time = t.elapsed();
        let outcome = match &proved {
            Ok(proof) => {
                self.write_back(lease, &lost, |q| async move {
                    let t = Instant::now();
                    let r = q
                        .complete(lease, proof, prove_time.as_millis() as i64)
                        .await;
                    (r, t)
                })
                .await
            }
            Err(e) => {
                tracing::warn!(batch = n, error = %e, "proving failed");
                self.metrics.failed.fetch_add(1, Ordering::Relaxed);
                self.write_back(lease, &lost, |q| async move {
                    let t = Instant::now();
                    (q.fail(lease, e).await.map(|s| s.is_some()), t)
                })
                .await
            }
        };
        heartbeat.abort();
        *self.lease.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.metrics.current.store(-1, Ordering::Relaxed);
        if outcome && proved.is_ok() {
            self.metrics.proven.fetch_add(1, Ordering::Relaxed);
            self.metrics
                .prove_us
                .fetch_add(prove_time.as_micros() as u64, Ordering::Relaxed);
            tracing::info!(
                batch = n,
                seconds = prove_time.as_secs_f64(),
                "proof written back"
            );
        } else if !outcome {
            self.metrics.lost.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                batch = n,
                "the job was taken back (heartbeat timeout) before its outcome was written; dropped"
            );
        }
    }

    /// Runs `write` until the database answers: `true` if it took the outcome, `false` if the
    /// lease was lost.
    async fn write_back<'a, F, Fut>(&'a self, lease: Lease, lost: &AtomicBool, write: F) -> bool
    where
        F: Fn(&'a JobQueue) -> Fut,
        Fut: std::future::Future<Output = (Result<bool, veil_jobs::QueueError>, Instant)>,
    {
        let mut backoff = Backoff::default();
        loop {
            if lost.load(Ordering::Relaxed) {
                return false;
            }
            match write(&self.queue).await {
                (Ok(took), t) => {
                    self.metrics.db_up.store(true, Ordering::Relaxed);
                    WorkerMetrics::add(&self.metrics.completes, &self.metrics.complete_us, t);
                    return took;
                }
                (Err(e), _) => {
                    self.metrics.db_up.store(false, Ordering::Relaxed);
                    let d = backoff.next_delay();
                    tracing::warn!(job = lease.id, error = %e, retry_ms = d.as_millis() as u64,
                        "writing the outcome back failed; retrying");
                    tokio::time::sleep(d).await;
                }
            }
        }
    }
}

/// Heartbeats `lease` every `every` until aborted; sets `lost` when the queue says the job is
/// no longer this lease's.
async fn heartbeat(
    queue: Arc<JobQueue>,
    lease: Lease,
    every: Duration,
    lost: Arc<AtomicBool>,
    metrics: Arc<WorkerMetrics>,
) {
    loop {
        tokio::time::sleep(every).await;
        let t = Instant::now();
        match queue.heartbeat(lease).await {
            Ok(true) => {
                metrics.db_up.store(true, Ordering::Relaxed);
                WorkerMetrics::add(&metrics.heartbeats, &metrics.heartbeat_us, t);
            }
            Ok(false) => {
                lost.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                metrics.db_up.store(false, Ordering::Relaxed);
                tracing::warn!(job = lease.id, error = %e, "heartbeat failed");
            }
        }
    }
}

/// Proves a job's batch file; the compressed proof.
fn prove(
    prover: &Prover,
    shape: BatchShape,
    witness: &[u8],
    corrupt: bool,
) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(witness).map_err(|e| format!("witness is not UTF-8: {e}"))?;
    let file = BatchFile::from_json(text).map_err(|e| e.to_string())?;
    let public = file.public_batch().map_err(|e| e.to_string())?;
    if public.shape != shape {
        return Err(format!(
            "the job is a {} batch, this worker proves {shape}",
            public.shape
        ));
    }
    let circuit = file.circuit().map_err(|e| e.to_string())?;
    let mut proof: Proof<Bn254> = prover
        .prove(circuit, &mut rand::rngs::OsRng)
        .map_err(|e| e.to_string())?;
    if corrupt {
        // Still a well-formed proof, just not one for this statement.
        proof.a = -proof.a;
    }
    let mut bytes = Vec::with_capacity(128);
    proof
        .serialize_compressed(&mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}
