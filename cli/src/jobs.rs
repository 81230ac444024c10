//! `veil jobs status`: the proving job queue at a glance, read from PostgreSQL: per shape, how
//! many jobs are queued, running, proven (waiting for the node's check), done and failed; each
//! running job with its worker, attempt and age; each failed job with its last error; and what
//! each worker proved. `--json` for machines.

use anyhow::Result;
use veil_jobs::{JobQueue, JobState};

/// `veil jobs ...`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Queue depth per shape, running jobs with their worker and age, failed jobs.
    Status(StatusArgs),
}

/// Arguments of `veil jobs status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// The job queue (or VEIL_DATABASE_URL).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a `veil jobs` command.
pub fn run(cmd: Command) -> Result<std::process::ExitCode> {
    let Command::Status(args) = cmd;
    let url = crate::util::database_url(args.database_url)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let status = runtime.block_on(async {
        let q = JobQueue::connect(&url, &[]).await?;
        q.status().await
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if status.shapes.is_empty() {
        println!("no proving jobs");
        return Ok(std::process::ExitCode::SUCCESS);
    }
    println!(
        "{:<10} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "shape", "queued", "running", "proven", "done", "failed"
    );
    for s in &status.shapes {
        println!(
            "{:<10} {:>7} {:>7} {:>7} {:>7} {:>7}",
            format!("B{}-D{}", s.batch_size, s.depth),
            s.queued,
            s.running,
            s.proven,
            s.done,
            s.failed
        );
    }
    if status.total(JobState::Queued) > 0 {
        println!("oldest queued job: {:.1} s", status.oldest_queued_s);
    }
    if status.latency_count > 0 {
        println!(
            "mean queue-to-proof latency: {:.2} s over {} jobs",
            status.latency_ms_sum / 1e3 / status.latency_count as f64,
            status.latency_count
        );
    }
    for r in &status.running {
        println!(
            "running: batch {} (B{}-D{}) on {}, attempt {}, for {:.1} s, last heartbeat {:.1} s ago",
            r.batch, r.batch_size, r.depth, r.worker, r.attempt, r.age_s, r.heartbeat_age_s
        );
    }
    for f in &status.failed {
        println!(
            "failed: batch {} (B{}-D{}) after {} attempts: {}",
            f.batch, f.batch_size, f.depth, f.attempts, f.error
        );
    }
    for w in &status.workers {
        println!(
            "worker {}: {} jobs, {:.1} s proving ({:.2} s/job)",
            w.worker,
            w.jobs,
            w.prove_ms as f64 / 1e3,
            w.prove_ms as f64 / 1e3 / w.jobs.max(1) as f64
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}
