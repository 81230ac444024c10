//! `veil-bench scale` (`make bench-scale`): proving spread over prover workers. A throwaway
//! PostgreSQL (`scripts/postgres.sh`), then for each worker count (1, then 2) a fresh `veil
//! node` with `--database-url` and that many `veil prover-worker --threads 1` processes, all the
//! real release binary. A steady stream of operator deposits (`--rate` transfers/s, more than
//! the workers can prove, so they never idle) fills full batches; after each worker's first
//! proof (warm-up: key loading), the rate of proofs written back is measured over
//! `--seconds`. Reports transfers proven per second, the 2-worker/1-worker ratio, each job's
//! proving time, the queue's own overhead per job (claim + heartbeats + write-back, from the
//! workers' `/metrics`), peak RSS, and an extrapolation to B = 16, D = 32: per-job time scaled
//! by the constraint ratio, plus the measured overhead, gives the workers needed for 10, 100
//! and 1,000 transfers/s. Writes `scale.md` and `scale.json` under the output directory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde::Serialize;
use veil_circuits::batch::BatchShape;
use veil_circuits::SpendingKey;

use crate::load::{deposit_body, rng_for, TOKEN};
use crate::machine::Machine;

/// Arguments of `veil-bench scale`.
#[derive(clap::Args)]
pub struct Args {
    /// Shape `BxD` of the node and workers.
    #[arg(long, default_value = "4x32", value_parser = crate::parse_shape)]
    shape: BatchShape,
    /// Worker counts to measure, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    workers: Vec<usize>,
    /// Transfers submitted per second (keep it above what the workers prove).
    #[arg(long, default_value_t = 3.0)]
    rate: f64,
    /// Measured window after warm-up, seconds.
    #[arg(long, default_value_t = 90)]
    seconds: u64,
    /// Workers' heartbeat interval, ms.
    #[arg(long, default_value_t = 2000)]
    heartbeat_ms: u64,
    /// The `veil` binary (default: beside this executable).
    #[arg(long)]
    veil: Option<PathBuf>,
    /// Output directory (default: `target/bench`).
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

/// One worker count's measurement.
#[derive(Serialize)]
struct Run {
    workers: usize,
    jobs_in_window: usize,
    window_s: f64,
    jobs_per_s: f64,
    transfers_per_s: f64,
    prove_s_per_job: f64,
    claim_ms: f64,
    heartbeat_ms: f64,
    heartbeats_per_job: f64,
    complete_ms: f64,
    overhead_ms_per_job: f64,
    node_peak_rss_mib: f64,
    worker_peak_rss_mib: f64,
    witness_kib_per_job: f64,
}

#[derive(Serialize)]
struct Report<'a> {
    machine: &'a Machine,
    shape: String,
    rate: f64,
    runs: &'a [Run],
    constraints: usize,
    constraints_b16_d32: usize,
    extrapolation: &'a [Extrapolated],
}

#[derive(Serialize)]
struct Extrapolated {
    transfers_per_s: u64,
    workers: u64,
    machines_2_core: u64,
}

/// A child process, killed when dropped.
struct Proc(Child);

impl Proc {
    /// Starts `cmd` quietly (warnings only; stderr kept for [`Proc::check_running`]).
    fn spawn(cmd: &mut Process, what: &str) -> Result<Proc> {
        let child = cmd
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        Ok(Proc(child))
    }

    fn peak_rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    }

    fn check_running(&mut self, what: &str) -> Result<()> {
        if let Some(s) = self.0.try_wait()? {
            let mut err = String::new();
            if let Some(e) = self.0.stderr.as_mut() {
                let _ = e.read_to_string(&mut err);
            }
            bail!("{what} exited with {s}: {err}");
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh")
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Runs the benchmark.
pub fn run(args: Args) -> Result<()> {
    ensure!(args.rate > 0.0, "--rate must be positive");
    let out_dir = crate::out_dir(args.out_dir.as_ref())?;
    let veil = crate::veil_binary(args.veil.as_ref())?;
    let machine = Machine::collect();
    eprintln!(
        "scale: dev keys for {} under {}/keys",
        args.shape,
        out_dir.display()
    );
    veil_prover::load_or_setup_dev_keys(&out_dir.join("keys"), args.shape, 1)?;
    let keys = out_dir.join("keys/dev-seed-1");

    let pg_dir = tempfile::Builder::new()
        .prefix("veil-bench-pg-")
        .tempdir_in(std::env::temp_dir())?;
    let out = Process::new("bash")
        .arg(script())
        .args(["start", pg_dir.path().to_str().context("temp path")?])
        .output()?;
    ensure!(
        out.status.success(),
        "starting PostgreSQL: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base_url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let _pg = scopeguard(pg_dir.path().to_path_buf());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let mut runs = Vec::new();
    for &n in &args.workers {
        ensure!(n > 0, "--workers must be positive");
        let db = format!("scale_{n}");
        let url = format!("{}/{db}", base_url.rsplit_once('/').context("url")?.0);
        runtime.block_on(create_database(&base_url, &db))?;
        let run = runtime.block_on(measure(&args, &veil, &keys, &url, n))?;
        eprintln!(
            "scale: {n} worker(s): {:.3} transfers/s ({:.2} s/job, queue overhead {:.1} ms/job)",
            run.transfers_per_s, run.prove_s_per_job, run.overhead_ms_per_job
        );
        runs.push(run);
    }

    eprintln!("scale: counting constraints of {} and 16x32", args.shape);
    let constraints = crate::measure::count_constraints(args.shape)?;
    let big = BatchShape::new(16, 32)?;
    let constraints_big = crate::measure::count_constraints(big)?;
    let base = runs.iter().find(|r| r.workers == 1).unwrap_or(&runs[0]);
    let job_big_s = base.prove_s_per_job * constraints_big as f64 / constraints as f64
        + base.overhead_ms_per_job / 1e3;
    let per_worker = 16.0 / job_big_s;
    let extrapolation: Vec<Extrapolated> = [10u64, 100, 1000]
        .iter()
        .map(|&tps| {
            let workers = (tps as f64 / per_worker).ceil() as u64;
            Extrapolated {
                transfers_per_s: tps,
                workers,
                machines_2_core: workers.div_ceil(2),
            }
        })
        .collect();

    let mut doc = format!(
        "# Veil proving on many machines\n\n{}\n",
        machine.markdown()
    );
    doc += &format!(
        "One `veil node` with `--database-url` and N `veil prover-worker --threads 1` on this \
         machine, shape {} ({constraints} constraints), deposits submitted at {} transfers/s; \
         rate of proofs written back over {} s after each worker's first proof.\n\n",
        args.shape, args.rate, args.seconds
    );
    doc += "| workers | jobs in window | transfers proven/s | s per job (1 thread) | claim ms | heartbeat ms (per beat) | beats/job | write-back ms | queue overhead ms/job | job witness KiB | node peak RSS MiB | worker peak RSS MiB |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for r in &runs {
        doc += &format!(
            "| {} | {} | {:.3} | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} | {:.1} | {:.0} | {:.0} | {:.0} |\n",
            r.workers,
            r.jobs_in_window,
            r.transfers_per_s,
            r.prove_s_per_job,
            r.claim_ms,
            r.heartbeat_ms,
            r.heartbeats_per_job,
            r.complete_ms,
            r.overhead_ms_per_job,
            r.witness_kib_per_job,
            r.node_peak_rss_mib,
            r.worker_peak_rss_mib
        );
    }
    if let (Some(one), Some(two)) = (
        runs.iter().find(|r| r.workers == 1),
        runs.iter().find(|r| r.workers == 2),
    ) {
        doc += &format!(
            "\n2 workers / 1 worker throughput: **{:.2}x**\n",
            two.transfers_per_s / one.transfers_per_s
        );
    }
    doc += &format!(
        "\n## Extrapolation to B = 16, D = 32 ({constraints_big} constraints)\n\n\
         Per-job time of a 1-thread worker scaled by the constraint ratio ({:.2}x): {:.1} s, \
         plus {:.1} ms of queue overhead: {:.3} transfers/s per worker. Workers prove \
         independent batches, so throughput adds up until the sequencer (see `make \
         bench-load`) or PostgreSQL (a claim, a heartbeat every {} ms and a write-back per \
         job) limits it.\n\n| transfers/s | 1-thread workers | 2-core machines |\n|---:|---:|---:|\n",
        constraints_big as f64 / constraints as f64,
        job_big_s - base.overhead_ms_per_job / 1e3,
        base.overhead_ms_per_job,
        per_worker,
        args.heartbeat_ms
    );
    for e in &extrapolation {
        doc += &format!(
            "| {} | {} | {} |\n",
            e.transfers_per_s, e.workers, e.machines_2_core
        );
    }
    print!("{doc}");
    let md = out_dir.join("scale.md");
    std::fs::write(&md, &doc)?;
    let json = out_dir.join("scale.json");
    let report = Report {
        machine: &machine,
        shape: args.shape.to_string(),
        rate: args.rate,
        runs: &runs,
        constraints,
        constraints_b16_d32: constraints_big,
        extrapolation: &extrapolation,
    };
    std::fs::write(&json, serde_json::to_string_pretty(&report)? + "\n")?;
    eprintln!("wrote {} and {}", md.display(), json.display());
    Ok(())
}

/// Stops the cluster in `dir` when dropped.
struct PgGuard(PathBuf);

fn scopeguard(dir: PathBuf) -> PgGuard {
    PgGuard(dir)
}

impl Drop for PgGuard {
    fn drop(&mut self) {
        let _ = Process::new("bash")
            .arg(script())
            .args(["kill", &self.0.display().to_string()])
            .output();
    }
}

async fn create_database(base_url: &str, name: &str) -> Result<()> {
    let admin = format!("{}/postgres", base_url.rsplit_once('/').context("url")?.0);
    let (c, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    // One statement each: DROP/CREATE DATABASE refuse an (implicit) transaction block.
    c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .await?;
    c.batch_execute(&format!("CREATE DATABASE {name}")).await?;
    Ok(())
}

/// Mean size of a job's witness (the batch file), KiB.
async fn witness_kib(url: &str) -> Result<f64> {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let r = c
        .query_one(
            // Done jobs have dropped theirs.
            "SELECT COALESCE(avg(octet_length(witness)), 0)::float8 FROM veil_proving_jobs
             WHERE state <> 'done'",
            &[],
        )
        .await?;
    Ok(r.get::<_, f64>(0) / 1024.0)
}

async fn completions(url: &str) -> Result<Vec<f64>> {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(c.query(
        "SELECT EXTRACT(EPOCH FROM finished_at)::float8 FROM veil_proving_jobs
             WHERE state IN ('proven', 'done') ORDER BY finished_at",
        &[],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

/// Sums `name{...} value` lines of a Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn measure(args: &Args, veil: &Path, keys: &Path, url: &str, n: usize) -> Result<Run> {
    let data = tempfile::Builder::new().prefix("veil-scale-").tempdir()?;
    let port = free_port()?;
    let shape = args.shape;
    let mut node = Proc::spawn(
        Process::new(veil)
            .args(["node", "--data-dir"])
            .arg(data.path().join("data"))
            .arg("--keys-dir")
            .arg(keys)
            .args([
                "--batch-size",
                &shape.batch_size.to_string(),
                "--depth",
                &shape.depth.to_string(),
                "--max-wait-ms",
                "30000",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                url,
            ])
            .env("VEIL_OPERATOR_TOKEN", TOKEN),
        "veil node",
    )?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let start = Instant::now();
    while client.get(format!("{base}/v1/state")).send().await.is_err() {
        node.check_running("veil node")?;
        ensure!(
            start.elapsed() < Duration::from_secs(300),
            "node not listening"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut workers = Vec::new();
    let mut ports = Vec::new();
    for i in 0..n {
        let wport = free_port()?;
        ports.push(wport);
        workers.push(Proc::spawn(
            Process::new(veil)
                .args(["prover-worker", "--database-url", url, "--keys-dir"])
                .arg(keys)
                .args([
                    "--batch-size",
                    &shape.batch_size.to_string(),
                    "--depth",
                    &shape.depth.to_string(),
                    "--threads",
                    "1",
                    "--name",
                    &format!("w{i}"),
                    "--heartbeat-ms",
                    &args.heartbeat_ms.to_string(),
                    "--listen",
                    &format!("127.0.0.1:{wport}"),
                ]),
            "veil prover-worker",
        )?);
    }
    // The submission load: one deposit every 1/rate s, pre-built.
    let total = (args.rate * (args.seconds as f64 + 240.0)).ceil() as u64;
    let to = SpendingKey::random(&mut rng_for(11, 0));
    let bodies: Vec<Vec<u8>> = (0..total)
        .map(|i| deposit_body(&to, &mut rng_for(12, i)))
        .collect::<Result<_>>()?;
    let submit = {
        let (client, base, rate) = (client.clone(), base.clone(), args.rate);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            for b in bodies {
                tick.tick().await;
                let _ = client
                    .post(format!("{base}/v1/deposits"))
                    .bearer_auth(TOKEN)
                    .header("content-type", "application/json")
                    .body(b)
                    .send()
                    .await;
            }
        })
    };
    // Warm-up: every worker has written back a proof.
    let warm = Instant::now();
    loop {
        node.check_running("veil node")?;
        for w in &mut workers {
            w.check_running("veil prover-worker")?;
        }
        // The node creates the table once it has loaded its key: until then, nothing is done.
        let done = completions(url).await.map(|c| c.len()).unwrap_or(0);
        if done >= n {
            break;
        }
        ensure!(
            warm.elapsed() < Duration::from_secs(600),
            "no proofs after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = completions(url).await?;
    let mut worker_metrics_before = Vec::new();
    for p in &ports {
        worker_metrics_before.push(get_text(&client, *p).await?);
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let after = completions(url).await?;
    let mut worker_metrics = Vec::new();
    for p in &ports {
        worker_metrics.push(get_text(&client, *p).await?);
    }
    submit.abort();
    let witness_kib_per_job = witness_kib(url).await?;
    // Completions inside the window, counted from the last one before it.
    let t0 = *before.last().context("no completion")?;
    let window: Vec<f64> = after.iter().copied().filter(|t| *t > t0).collect();
    ensure!(
        !window.is_empty(),
        "no proof finished in the {} s window",
        args.seconds
    );
    let span = window.last().unwrap() - t0;
    let jobs_per_s = window.len() as f64 / span;
    let delta = |name: &str| -> f64 {
        worker_metrics.iter().map(|m| metric(m, name)).sum::<f64>()
            - worker_metrics_before
                .iter()
                .map(|m| metric(m, name))
                .sum::<f64>()
    };
    let jobs = delta("veil_worker_jobs_proven_total").max(1.0);
    let per = |count: &str, secs: &str| delta(secs) * 1e3 / delta(count).max(1.0);
    let claim_ms = per(
        "veil_worker_queue_claim_total",
        "veil_worker_queue_claim_seconds_total",
    );
    let heartbeat_ms = per(
        "veil_worker_queue_heartbeat_total",
        "veil_worker_queue_heartbeat_seconds_total",
    );
    let complete_ms = per(
        "veil_worker_queue_complete_total",
        "veil_worker_queue_complete_seconds_total",
    );
    let heartbeats_per_job = delta("veil_worker_queue_heartbeat_total") / jobs;
    let overhead = (delta("veil_worker_queue_claim_seconds_total")
        + delta("veil_worker_queue_heartbeat_seconds_total")
        + delta("veil_worker_queue_complete_seconds_total"))
        * 1e3
        / jobs;
    Ok(Run {
        workers: n,
        jobs_in_window: window.len(),
        window_s: span,
        jobs_per_s,
        transfers_per_s: jobs_per_s * shape.batch_size as f64,
        prove_s_per_job: delta("veil_worker_prove_seconds_total") / jobs,
        claim_ms,
        heartbeat_ms,
        heartbeats_per_job,
        complete_ms,
        overhead_ms_per_job: overhead,
        node_peak_rss_mib: node.peak_rss_mib(),
        worker_peak_rss_mib: workers.iter().map(Proc::peak_rss_mib).fold(0.0, f64::max),
        witness_kib_per_job,
    })
}

async fn get_text(client: &reqwest::Client, port: u16) -> Result<String> {
    Ok(client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await?
        .text()
        .await?)
}
