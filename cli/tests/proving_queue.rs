//! Proving on many machines, with a real PostgreSQL (a throwaway cluster from
//! `scripts/postgres.sh`) and the real binaries: a `veil node` with `[proving] database_url`
//! and `veil prover-worker` processes (B = 2, D = 8, dev keys).
//!
//! - Two workers race over a stream of batches: every batch ends proven, stored once and
//!   verified (`veil fetch-batch` + `veil verify`), and some batch is proven before a lower
//!   one (the slow worker holds the lower batch).
//! - A worker writing back corrupted proofs is caught by the node's verification, and its job
//!   is queued again; a worker killed (-9) in the middle of a job loses it to another worker
//!   after the heartbeat timeout; PostgreSQL killed and restarted during the run: node and
//!   workers reconnect and carry on. Nothing lost, nothing stored twice.

mod support;

#[path = "../../jobs/tests/support/postgres.rs"]
mod postgres;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use postgres::Postgres;
use serde_json::Value;
use support::{free_port, keys_dir, ok_json, shape, text, veil, NodeProc, TOKEN};
use veil_fixtures::Scenario;

/// A `veil prover-worker` process, killed (-9) when dropped.
struct WorkerProc {
    child: Child,
    log: std::path::PathBuf,
    port: u16,
}

impl WorkerProc {
    fn start(dir: &Path, name: &str, url: &str, extra: &[&str]) -> WorkerProc {
        let port = free_port();
        let log = dir.join(format!("worker-{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_veil"))
            .args([
                "prover-worker",
                "--database-url",
                url,
                "--keys-dir",
                keys_dir().to_str().unwrap(),
                "--batch-size",
                "2",
                "--depth",
                "8",
                "--threads",
                "1",
                "--name",
                name,
                "--heartbeat-ms",
                "300",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(extra)
            .env("RUST_LOG", "warn,veil=info,veil_jobs=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start veil prover-worker");
        WorkerProc { child, log, port }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        let r = reqwest::blocking::get(format!("http://127.0.0.1:{}{path}", self.port)).ok()?;
        Some((r.status().as_u16(), r.text().ok()?))
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn node_config(dir: &Path, url: &str, port: u16) -> std::path::PathBuf {
    let config = dir.join("node.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\n\
             data_dir = \"{}\"\n\
             keys_dir = \"{}\"\n\
             batch_size = 2\n\
             depth = 8\n\
             max_wait_ms = 300\n\
             operator_token = \"{TOKEN}\"\n\
             [proving]\n\
             database_url = \"{url}\"\n\
             heartbeat_timeout_ms = 2500\n\
             max_attempts = 5\n",
            dir.join("data").display(),
            keys_dir().display()
        ),
    )
    .unwrap();
    config
}

fn proven_height(node: &NodeProc) -> u64 {
    node.client.state().unwrap().proven_height
}

fn jobs_status(url: &str) -> Value {
    ok_json(&["jobs", "status", "--database-url", url, "--json"])
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Batches `0..height` downloaded and verified with the verifying key, each once.
fn verify_batches(node: &NodeProc, dir: &Path, height: u64) {
    let vk = keys_dir().join("vk-B2-D8.bin");
    let files = dir.join("fetched");
    for n in 0..height {
        let n_s = n.to_string();
        let out = veil(&[
            "fetch-batch",
            "--node",
            &node.url,
            "--number",
            &n_s,
            "--vk",
            vk.to_str().unwrap(),
            "--out-dir",
            files.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let out = veil(&[
            "verify",
            "--vk",
            vk.to_str().unwrap(),
            "--batch",
            files.join(format!("batch-{n}.json")).to_str().unwrap(),
            "--proof",
            files.join(format!("proof-{n}.json")).to_str().unwrap(),
        ]);
        assert!(
            text(&out.stdout).starts_with(&format!("valid: batch {n},")),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    // Stored once: one "batch proven" line per batch.
    let log = node.log();
    for n in 0..height {
        let lines = log
            .lines()
            .filter(|l| l.contains("batch proven") && l.contains(&format!("batch={n} ")))
            .count();
        assert_eq!(lines, 1, "batch {n} stored {lines} times:\n{log}");
    }
}

/// `(batch, worker)` in the order their proofs were written back.
fn completion_order(url: &str) -> Vec<(u64, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c.query(
            "SELECT batch, worker FROM veil_proving_jobs WHERE state = 'done' ORDER BY finished_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
        .collect()
    })
}

fn wait_until(
    what: &str,
    node: &mut NodeProc,
    timeout: Duration,
    mut cond: impl FnMut(&NodeProc) -> bool,
) {
    let start = Instant::now();
    loop {
        node.assert_running();
        if cond(node) {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out waiting for {what}:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_workers_race_over_a_stream_of_batches() {
    let Some(pg) = Postgres::start_or_skip("two_workers_race_over_a_stream_of_batches") else {
        return;
    };
    let url = pg.database("race");
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = node_config(tmp.path(), &url, port);
    let mut node = NodeProc::start(&config, port, &[], &[]);
    // The slow worker takes a lower batch and holds it; the fast one proves the next ones.
    let slow = WorkerProc::start(tmp.path(), "slow", &url, &["--hold-ms", "2500"]);
    let fast = WorkerProc::start(tmp.path(), "fast", &url, &[]);

    let mut sc = Scenario::new(shape(), 71);
    let alice = sc.new_key();
    let batches = 6u64;
    for i in 0..batches {
        node.deposit(&mut sc, &alice, 1_000 + i);
        node.deposit(&mut sc, &alice, 2_000 + i);
        std::thread::sleep(Duration::from_millis(150));
    }
    wait_until("every batch proven", &mut node, support::TIMEOUT, |n| {
        proven_height(n) == batches
    });
    verify_batches(&node, tmp.path(), batches);

    let order = completion_order(&url);
    assert_eq!(order.len() as u64, batches, "{order:?}");
    let out_of_order = order.windows(2).any(|w| w[1].0 < w[0].0);
    assert!(
        out_of_order,
        "no batch was proven before a lower one: {order:?}"
    );
    let workers: std::collections::BTreeSet<_> = order.iter().map(|o| o.1.as_str()).collect();
    assert_eq!(workers.len(), 2, "both workers proved: {order:?}");

    let status = jobs_status(&url);
    assert_eq!(status["shapes"][0]["done"], batches, "{status}");
    assert_eq!(status["shapes"][0]["queued"], 0, "{status}");
    let table = veil(&["jobs", "status", "--database-url", &url]);
    let table = text(&table.stdout);
    assert!(
        table.contains("B2-D8") && table.contains("worker fast:"),
        "{table}"
    );

    // The queue's status in /metrics is refreshed every few seconds.
    wait_until(
        "the queue's metrics caught up",
        &mut node,
        support::TIMEOUT,
        |n| {
            let m = n.metrics();
            metric(&m, "veil_proving_queue_depth") == Some(0.0)
                && metric(&m, "veil_proving_job_latency_seconds_count") == Some(batches as f64)
        },
    );
    let m = node.metrics();
    assert_eq!(metric(&m, "veil_proving_queue_up"), Some(1.0), "{m}");
    assert_eq!(
        metric(&m, "veil_proving_proofs_accepted_total"),
        Some(batches as f64)
    );
    assert!(
        m.contains("veil_proving_worker_jobs_total{worker=\"fast\"}"),
        "{m}"
    );

    for w in [&slow, &fast] {
        let (code, body) = w.get("/healthz").expect("worker /healthz");
        assert_eq!(code, 200, "{body}");
        let (_, wm) = w.get("/metrics").expect("worker /metrics");
        assert!(
            metric(&wm, "veil_worker_jobs_proven_total").unwrap() >= 1.0,
            "{wm}"
        );
        assert!(
            metric(&wm, "veil_worker_queue_claim_total").unwrap() >= 1.0,
            "{wm}"
        );
    }
    let _ = (slow.log(), fast.log());
}

#[test]
fn corrupt_proofs_killed_workers_and_a_postgres_restart_lose_nothing() {
    let Some(pg) = Postgres::start_or_skip("corrupt_proofs_killed_workers_and_a_postgres_restart")
    else {
        return;
    };
    let url = pg.database("faults");
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = node_config(tmp.path(), &url, port);
    let mut node = NodeProc::start(&config, port, &[], &[]);
    let mut sc = Scenario::new(shape(), 72);
    let alice = sc.new_key();

    // 1. A worker that writes back a wrong proof: the node's verification refuses it.
    node.deposit(&mut sc, &alice, 500);
    node.deposit(&mut sc, &alice, 600);
    let mut corrupt = WorkerProc::start(
        tmp.path(),
        "corrupt",
        &url,
        &["--corrupt-proofs", "--max-jobs", "1"],
    );
    wait_until(
        "the corrupt proof refused",
        &mut node,
        support::TIMEOUT,
        |n| metric(&n.metrics(), "veil_proving_proofs_rejected_total") == Some(1.0),
    );
    assert!(
        node.log().contains("worker proof failed verification"),
        "{}",
        node.log()
    );
    assert_eq!(proven_height(&node), 0);
    let _ = corrupt.child.wait();
    let status = jobs_status(&url);
    assert_eq!(status["shapes"][0]["queued"], 1, "{status}");

    // 2. A worker killed -9 in the middle of its job (a slow machine: it holds the job).
    let mut doomed = WorkerProc::start(tmp.path(), "doomed", &url, &["--hold-ms", "600000"]);
    wait_until(
        "the doomed worker running batch 0",
        &mut node,
        support::TIMEOUT,
        |_| {
            jobs_status(&url)["running"]
                .as_array()
                .is_some_and(|r| r.iter().any(|j| j["worker"] == "doomed"))
        },
    );
    doomed.kill9();
    let killed_at = Instant::now();
    let _healthy = WorkerProc::start(tmp.path(), "healthy", &url, &[]);
    wait_until(
        "batch 0 proven by the healthy worker",
        &mut node,
        support::TIMEOUT,
        |n| proven_height(n) == 1,
    );
    assert!(
        killed_at.elapsed() >= Duration::from_millis(2000),
        "re-queued before the heartbeat timeout"
    );
    assert!(
        node.log().contains("stopped heartbeating"),
        "{}",
        node.log()
    );
    assert_eq!(
        metric(&node.metrics(), "veil_proving_jobs_reaped_total"),
        Some(1.0)
    );
    assert_eq!(completion_order(&url), vec![(0, "healthy".to_string())]);

    // 3. PostgreSQL killed while batches keep coming; restarted, everyone reconnects.
    pg.kill();
    node.deposit(&mut sc, &alice, 700);
    node.deposit(&mut sc, &alice, 800);
    wait_until(
        "the node noticing the database is gone",
        &mut node,
        support::TIMEOUT,
        |n| metric(&n.metrics(), "veil_proving_queue_up") == Some(0.0),
    );
    std::thread::sleep(Duration::from_secs(1));
    pg.restart();
    node.deposit(&mut sc, &alice, 900);
    node.deposit(&mut sc, &alice, 1000);
    wait_until(
        "batches after the restart proven",
        &mut node,
        support::TIMEOUT,
        |n| proven_height(n) >= 3,
    );
    let height = node.client.state().unwrap().batch_height;
    wait_until("every batch proven", &mut node, support::TIMEOUT, |n| {
        proven_height(n) == height
    });
    assert!(
        node.log().contains("job queue unavailable"),
        "{}",
        node.log()
    );

    // 4. A worker stopped politely (SIGTERM) in the middle of a job gives it back at once: it
    // is not left for the heartbeat timeout (nothing more is reaped).
    let mut polite = WorkerProc::start(tmp.path(), "polite", &url, &["--hold-ms", "600000"]);
    // The healthy worker may take the next batch first; keep submitting until polite holds one.
    let mut value = 1100;
    wait_until(
        "the polite worker running a job",
        &mut node,
        support::TIMEOUT,
        |n| {
            let running = jobs_status(&url)["running"]
                .as_array()
                .is_some_and(|r| r.iter().any(|j| j["worker"] == "polite"));
            if !running && n.client.state().unwrap().mempool_size == 0 {
                n.deposit(&mut sc, &alice, value);
                value += 1;
            }
            running
        },
    );
    let term = Command::new("kill")
        .args(["-TERM", &polite.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let exited = polite.child.wait().unwrap();
    assert!(exited.success(), "{exited}: {}", polite.log());
    assert!(polite.log().contains("job given back"), "{}", polite.log());
    let height = node.client.state().unwrap().batch_height;
    wait_until("every batch proven", &mut node, support::TIMEOUT, |n| {
        proven_height(n) == height
    });
    assert_eq!(
        metric(&node.metrics(), "veil_proving_jobs_reaped_total"),
        Some(1.0)
    );
    verify_batches(&node, tmp.path(), height);
    let status = jobs_status(&url);
    assert_eq!(status["shapes"][0]["done"], height, "{status}");
    assert_eq!(status["shapes"][0]["failed"], 0, "{status}");
}
