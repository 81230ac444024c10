//! `veil-bench load`: API acceptance throughput of the sequencer. A node runs in a child process
//! (the hidden `load-node`, so its peak RSS is its own) on a fresh data directory; the parent
//! funds notes with operator deposits, waits until they are sealed, pre-signs one private
//! transfer per note (no two spend the same note), then `C` concurrent keep-alive HTTP clients
//! submit them. Reports accepted transfers/s, latency percentiles, the node's peak RSS and the
//! refusals, once with proving paused (`prove = false`) and once with proving on.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use ark_bn254::Fr;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;
use veil_circuits::batch::BatchShape;
use veil_circuits::field;
use veil_circuits::transfer::{OutputSpec, PublicAmounts, SpentNote};
use veil_circuits::{SpendingKey, Transfer};
use veil_sequencer::Config;
use veil_wire::TransferRequest;

use crate::machine::Machine;

/// Bearer token of the benchmark node's operator endpoints.
pub(crate) const TOKEN: &str = "veil-bench-operator";
/// Value of every funded note.
const NOTE_VALUE: u64 = 1_000;

/// Arguments of `veil-bench load`.
#[derive(clap::Args)]
pub struct Args {
    /// Concurrent clients (one keep-alive connection each).
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Private transfers submitted in the measured phase (as many notes are funded first).
    #[arg(long, default_value_t = 4000)]
    transfers: usize,
    /// Circuit shape `BxD` of the node.
    #[arg(long, default_value = "16x32", value_parser = crate::parse_shape)]
    shape: BatchShape,
    /// The node's `max_wait_ms` (a partial batch is sealed after this long).
    #[arg(long, default_value_t = 200)]
    max_wait_ms: u64,
    /// Also run once with proving on (dev keys for the shape are generated once and cached
    /// under `<out-dir>/keys`; the first run of a large shape spends minutes on the setup).
    #[arg(long, action = clap::ArgAction::Set, default_value_t = true)]
    prove_run: bool,
    /// Output directory (default: `$CARGO_TARGET_DIR/bench`, else the workspace's `target/bench`).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Seed of the generated keys and notes.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// Arguments of the hidden `load-node` (the node under test, started by `load`).
#[derive(clap::Args)]
pub struct NodeArgs {
    /// Fresh data directory.
    #[arg(long)]
    data_dir: PathBuf,
    /// Shape `BxD`.
    #[arg(long, value_parser = crate::parse_shape)]
    shape: BatchShape,
    /// `max_wait_ms`.
    #[arg(long)]
    max_wait_ms: u64,
    /// Prove in the background with dev keys cached in this directory (else `prove = false`).
    #[arg(long)]
    prove_keys_dir: Option<PathBuf>,
}

/// Runs the node until stdin closes, printing `listening <addr>` once it serves.
pub fn run_node(args: NodeArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        // As `veil node` loads it: the key, and the R1CS from its cache beside the key.
        let prover = match &args.prove_keys_dir {
            Some(dir) => {
                let dir = dir.clone();
                let shape = args.shape;
                let prover = tokio::task::spawn_blocking(move || -> Result<_> {
                    let (pk, _vk) = veil_prover::load_or_setup_dev_keys(&dir, shape, 1)?;
                    let r1cs = veil_prover::r1cs::R1cs::cached(&dir.join("dev-seed-1"), shape);
                    veil_prover::r1cs::release_freed_memory();
                    Ok(veil_prover::Prover::with_r1cs(shape, pk, r1cs)?)
                })
                .await??;
                Some(prover)
            }
            None => None,
        };
        let config = Config {
            listen: "127.0.0.1:0".parse()?,
            data_dir: args.data_dir.clone(),
            batch_size: args.shape.batch_size,
            depth: args.shape.depth,
            max_wait_ms: args.max_wait_ms,
            operator_token: Some(TOKEN.to_owned()),
            prove: prover.is_some(),
            ..Config::default()
        };
        let running = veil_sequencer::start_with(
            &config,
            prover.map(|p| veil_sequencer::ProverSetup::Loaded(Box::new(p))),
        )
        .await?;
        println!("listening {}", running.addr);
        std::io::stdout().flush()?;
        // The parent closes stdin when it is done; no graceful stop (a proof may be running).
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await?;
        std::process::exit(0)
    })
}

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// `prove = false` or `prove = true`.
    pub proving: bool,
    /// `BxD`.
    pub shape: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Transfers submitted.
    pub submitted: usize,
    /// 202 responses.
    pub accepted: usize,
    /// Other responses (and transport errors), by code.
    pub rejected: BTreeMap<String, usize>,
    /// Wall time of the measured phase.
    pub seconds: f64,
    /// `accepted / seconds`.
    pub accepted_per_second: f64,
    /// Latency percentiles of all submissions, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// `VmHWM` of the node process (whole run, preparation included).
    pub node_peak_rss_bytes: Option<u64>,
    /// Batches sealed / proven when the run ended.
    pub batch_height: u64,
    /// Proven batches when the run ended.
    pub proven_height: u64,
    /// 1-minute load average when the measured phase started.
    pub load_average: String,
}

impl RunResult {
    fn rejected_total(&self) -> usize {
        self.rejected.values().sum()
    }
}

#[derive(Serialize)]
struct Report<'a> {
    machine: &'a Machine,
    runs: &'a [RunResult],
}

/// The node child: killed (and its stdin closed) on drop.
struct NodeProcess {
    child: Child,
    addr: String,
}

impl NodeProcess {
    fn start(
        exe: &Path,
        data_dir: &Path,
        args: &Args,
        prove_keys_dir: Option<&Path>,
    ) -> Result<Self> {
        let mut cmd = Process::new(exe);
        cmd.arg("load-node")
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--shape",
                &format!("{}x{}", args.shape.batch_size, args.shape.depth),
            ])
            .args(["--max-wait-ms", &args.max_wait_ms.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(dir) = prove_keys_dir {
            cmd.arg("--prove-keys-dir").arg(dir);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading the node's address")?;
        let Some(addr) = line.trim().strip_prefix("listening ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the node did not start (printed {line:?})");
        };
        Ok(NodeProcess {
            addr: addr.to_owned(),
            child,
        })
    }

    /// Peak resident set size so far (`VmHWM`).
    fn peak_rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the benchmark and writes `load.md` and `load.json`.
pub fn run(args: Args) -> Result<()> {
    ensure!(args.clients > 0, "--clients must be positive");
    ensure!(args.transfers > 0, "--transfers must be positive");
    let out_dir = args.out_dir.clone().unwrap_or_else(crate::default_out_dir);
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let out_dir = out_dir.canonicalize().unwrap_or(out_dir);
    let exe = std::env::current_exe().context("locating this executable")?;
    let machine = Machine::collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;

    let mut runs = Vec::new();
    let keys_dir = out_dir.join("keys");
    let modes: &[bool] = if args.prove_run {
        &[false, true]
    } else {
        &[false]
    };
    for &proving in modes {
        let data = tempfile::Builder::new()
            .prefix("veil-load-")
            .tempdir()
            .context("creating a data directory")?;
        eprintln!(
            "load: {} transfers, {} clients, shape {}, proving {}",
            args.transfers,
            args.clients,
            args.shape,
            if proving { "on" } else { "paused" }
        );
        if proving {
            eprintln!(
                "load: loading (or, the first time, generating) dev keys under {}",
                keys_dir.display()
            );
        }
        let node = NodeProcess::start(&exe, data.path(), &args, proving.then_some(&*keys_dir))?;
        let result = runtime.block_on(measure(&args, &node, proving))?;
        eprintln!(
            "load: {:.0} accepted/s, p99 {:.1} ms, {} rejected",
            result.accepted_per_second,
            result.p99_ms,
            result.rejected_total()
        );
        runs.push(result);
        drop(node);
    }

    let mut doc = format!(
        "# Veil sequencer load benchmark\n\n{}\n",
        machine.markdown()
    );
    doc += &markdown(&runs);
    print!("{doc}");
    let md_path = out_dir.join("load.md");
    std::fs::write(&md_path, &doc).with_context(|| format!("writing {}", md_path.display()))?;
    let json_path = out_dir.join("load.json");
    let report = Report {
        machine: &machine,
        runs: &runs,
    };
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    eprintln!("wrote {} and {}", md_path.display(), json_path.display());
    let bad: usize = runs.iter().map(RunResult::rejected_total).sum();
    ensure!(bad == 0, "{bad} submissions were refused (expected 0)");
    Ok(())
}

fn markdown(runs: &[RunResult]) -> String {
    let mut s = String::from(
        "| proving | B x D | clients | transfers | accepted | rejected | accepted/s | p50 ms | p95 ms | p99 ms | max ms | node peak RSS MB | batches sealed | batches proven | load avg (1 min) |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in runs {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} |\n",
            if r.proving { "on" } else { "paused (`prove = false`)" },
            r.shape,
            r.clients,
            r.submitted,
            r.accepted,
            r.rejected_total(),
            r.accepted_per_second,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.max_ms,
            r.node_peak_rss_bytes
                .map_or_else(|| "–".into(), |b| format!("{:.0}", b as f64 / 1e6)),
            r.batch_height,
            r.proven_height,
            r.load_average,
        );
    }
    for r in runs.iter().filter(|r| r.rejected_total() > 0) {
        s += &format!("\nRefusals (proving {}): {:?}\n", r.proving, r.rejected);
    }
    s +=
        "\nAccepted/s = 202 responses / wall time of the submission phase. Latency = request sent \
          to response read, per submission, on a keep-alive connection over loopback. The clients \
          run in the benchmark process on the same cores as the node, and the machine may be \
          shared (see the load average): numbers are noisy. Peak RSS = the node process's VmHWM \
          over the whole run (funding included). Target: >= 1000 accepted/s with p99 < 50 ms.\n";
    s
}

async fn measure(args: &Args, node: &NodeProcess, proving: bool) -> Result<RunResult> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let base = format!("http://{}", node.addr);
    let mut rng = ChaCha20Rng::seed_from_u64(args.seed);
    let alice = SpendingKey::random(&mut rng);
    let bob = SpendingKey::random(&mut rng);

    // Funding: each deposit pays two notes of NOTE_VALUE to Alice.
    let deposits = args.transfers.div_ceil(2);
    let t0 = Instant::now();
    let funding: Vec<Transfer> = (0..deposits)
        .into_par_iter()
        .map(|i| deposit(&alice, &mut rng_for(args.seed, i as u64)))
        .collect();
    let bodies: Vec<Vec<u8>> = funding.iter().map(body).collect::<Result<_>>()?;
    let (statuses, _) = submit_all(&client, &base, "/v1/deposits", bodies, args.clients).await;
    let refused = statuses.iter().filter(|(s, _)| s != "202").count();
    ensure!(
        refused == 0,
        "{refused} deposits refused: {:?}",
        statuses.first()
    );
    let want_notes = 2 * deposits as u64;
    let state = wait_for(&client, &base, Duration::from_secs(600), |st| {
        st["mempool_size"] == 0 && st["note_count"].as_u64().unwrap_or(0) >= want_notes
    })
    .await?;
    eprintln!(
        "load: funded {} notes in {} batches ({:.1} s)",
        want_notes,
        state["batch_height"],
        t0.elapsed().as_secs_f64()
    );

    // Positions of Alice's notes.
    let positions = note_positions(&client, &base).await?;
    let mut spendable = Vec::with_capacity(2 * deposits);
    for d in &funding {
        for (j, note) in d.outputs.iter().enumerate() {
            let cm = format!(
                "0x{}",
                hex::encode(field::to_bytes_be(&d.public.commitments[j]))
            );
            let position = *positions
                .get(&cm)
                .with_context(|| format!("deposited note {cm} is not published"))?;
            spendable.push(SpentNote {
                note: *note,
                position,
            });
        }
    }
    spendable.truncate(args.transfers);
    let t1 = Instant::now();
    let transfers: Vec<Vec<u8>> = spendable
        .par_iter()
        .enumerate()
        .map(|(i, input)| {
            let mut rng = rng_for(args.seed ^ 0x5eed, i as u64);
            let t = Transfer::create(
                &alice,
                [*input, Transfer::dummy_input(&alice, &mut rng)],
                [
                    OutputSpec {
                        to: bob.payment_address(),
                        value: NOTE_VALUE - 1,
                    },
                    OutputSpec {
                        to: alice.payment_address(),
                        value: 1,
                    },
                ],
                PublicAmounts::default(),
                &mut rng,
            );
            body(&t)
        })
        .collect::<Result<_>>()?;
    eprintln!(
        "load: signed {} transfers ({:.1} s); submitting with {} clients",
        transfers.len(),
        t1.elapsed().as_secs_f64(),
        args.clients
    );

    // The measured phase.
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    let submitted = transfers.len();
    let start = Instant::now();
    let (statuses, mut latencies) =
        submit_all(&client, &base, "/v1/transfers", transfers, args.clients).await;
    let seconds = start.elapsed().as_secs_f64();
    let accepted = statuses.iter().filter(|(s, _)| s == "202").count();
    let mut rejected = BTreeMap::new();
    for (s, code) in statuses.iter().filter(|(s, _)| s != "202") {
        *rejected.entry(format!("{s} {code}")).or_insert(0) += 1;
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| -> f64 {
        let i = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
        latencies[i.clamp(1, latencies.len()) - 1]
    };
    // Let the tail seal (at most max_wait) so the batch count is final.
    let end_state = wait_for(&client, &base, Duration::from_secs(60), |st| {
        st["mempool_size"] == 0
    })
    .await?;
    Ok(RunResult {
        proving,
        shape: format!("{} x {}", args.shape.batch_size, args.shape.depth),
        clients: args.clients,
        submitted,
        accepted,
        rejected,
        seconds,
        accepted_per_second: accepted as f64 / seconds,
        p50_ms: pct(50.0),
        p95_ms: pct(95.0),
        p99_ms: pct(99.0),
        max_ms: *latencies.last().unwrap_or(&0.0),
        node_peak_rss_bytes: node.peak_rss_bytes(),
        batch_height: end_state["batch_height"].as_u64().unwrap_or(0),
        proven_height: end_state["proven_height"].as_u64().unwrap_or(0),
        load_average,
    })
}

pub(crate) fn rng_for(seed: u64, i: u64) -> ChaCha20Rng {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(i);
    rng
}

/// An operator deposit of two notes of [`NOTE_VALUE`] to `to` (fresh dummy signer).
fn deposit(to: &SpendingKey, rng: &mut ChaCha20Rng) -> Transfer {
    let signer = SpendingKey::random(rng);
    let inputs = [
        Transfer::dummy_input(&signer, rng),
        Transfer::dummy_input(&signer, rng),
    ];
    let out = OutputSpec {
        to: to.payment_address(),
        value: NOTE_VALUE,
    };
    Transfer::create(
        &signer,
        inputs,
        [out, out],
        PublicAmounts {
            public_in: 2 * NOTE_VALUE,
            deposit_ref: Fr::from(rng.gen::<u64>() | 1),
            ..Default::default()
        },
        rng,
    )
}

/// The request body of a fresh operator deposit to `to` (`veil-bench scale`'s load).
pub(crate) fn deposit_body(to: &SpendingKey, rng: &mut ChaCha20Rng) -> Result<Vec<u8>> {
    body(&deposit(to, rng))
}

fn body(t: &Transfer) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(&TransferRequest::from(t))?)
}

/// Submits every body with `clients` concurrent tasks; returns `(status, error code)` and the
/// latency in milliseconds of each submission.
async fn submit_all(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    bodies: Vec<Vec<u8>>,
    clients: usize,
) -> (Vec<(String, String)>, Vec<f64>) {
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("{base}{path}");
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (bodies, next, url, client) =
            (bodies.clone(), next.clone(), url.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(b) = bodies.get(i) else { break };
                let start = Instant::now();
                let resp = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .bearer_auth(TOKEN)
                    .body(b.clone())
                    .send()
                    .await;
                let outcome = match resp {
                    Ok(r) => {
                        let status = r.status().as_u16().to_string();
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        let code = v["error"]["code"].as_str().unwrap_or("").to_owned();
                        (status, code)
                    }
                    Err(e) => ("transport".to_owned(), e.to_string()),
                };
                out.push((outcome, start.elapsed().as_secs_f64() * 1e3));
            }
            out
        }));
    }
    let mut statuses = Vec::with_capacity(bodies.len());
    let mut latencies = Vec::with_capacity(bodies.len());
    for t in tasks {
        for (s, l) in t.await.expect("client task panicked") {
            statuses.push(s);
            latencies.push(l);
        }
    }
    (statuses, latencies)
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value> {
    let resp = client.get(url).send().await?;
    ensure!(resp.status().is_success(), "GET {url}: {}", resp.status());
    Ok(resp.json().await?)
}

/// Polls `/v1/state` until `done` holds; returns that state.
async fn wait_for(
    client: &reqwest::Client,
    base: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let start = Instant::now();
    loop {
        let st = get_json(client, &format!("{base}/v1/state")).await?;
        if done(&st) {
            return Ok(st);
        }
        ensure!(
            start.elapsed() < timeout,
            "node state still {st} after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every published note: commitment (`0x` hex) -> position.
async fn note_positions(client: &reqwest::Client, base: &str) -> Result<HashMap<String, u64>> {
    let mut out = HashMap::new();
    let mut from = 0u64;
    loop {
        let page = get_json(client, &format!("{base}/v1/notes?from={from}&limit=1000")).await?;
        let notes = page["notes"].as_array().context("notes page")?;
        if notes.is_empty() {
            return Ok(out);
        }
        for n in notes {
            let cm = n["commitment"].as_str().context("commitment")?.to_owned();
            out.insert(cm, n["position"].as_u64().context("position")?);
        }
        from = page["next"].as_u64().context("next")?;
    }
}
