//! Veil's sequencer (DESIGN §9, §10): accepts transfers over HTTP, validates them against the
//! rollup state and the mempool, stores them durably in redb, seals batches, proves them in the
//! background, anchors proven batches on Bitcoin (when configured) and serves state, notes,
//! paths, nullifiers, batches, proofs and anchors.
//!
//! [`start`] binds the API (port 0 allowed: [`RunningNode::addr`] is the bound address) behind
//! the HTTP edge ([`http_edge`]: JSON errors for the HTTP layer's own refusals, read timeouts,
//! a connection cap) and spawns the sealer, given a proving key the prover, and with an `[anchor]` config the
//! anchorer; [`run`] does the same until a shutdown future resolves.

pub mod anchoring;
pub mod api;
pub mod config;
pub mod http_edge;
pub mod node;
pub mod prometheus;
pub mod proving;
pub mod restore;
pub mod store;
/// The HTTP wire types (their own crate, `veil-wire`, so clients need not depend on the node).
pub use veil_wire as wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use ark_bn254::Bn254;
use ark_groth16::{ProvingKey, VerifyingKey};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::Config;
pub use node::{Node, NodeError, Status, SubmitError, TransferId};
pub use wire::{TransferRequest, WireError};

/// A node serving its API, with its background tasks.
pub struct RunningNode {
    /// The bound API address.
    pub addr: SocketAddr,
    /// The node.
    pub node: Arc<Node>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<(), NodeError>>>,
}

impl RunningNode {
    /// Graceful stop: the server drains, the sealer and prover stop (a proof in progress is
    /// abandoned; it is redone on restart).
    pub async fn stop(self) -> Result<(), NodeError> {
        let _ = self.shutdown.send(true);
        let mut result = Ok(());
        for t in self.tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(e) => result = Err(NodeError::Task(e.to_string())),
            }
        }
        result
    }

    /// Abrupt stop, as a crash would: every task is aborted where it is, nothing is flushed or
    /// drained. Only what the store committed survives.
    pub async fn kill(self) {
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
        // Connection tasks the server spawned, and blocking work already running, may hold the
        // node (and so the database file's lock) a moment longer; a crashed process would let
        // go at once, and a restart in the same process must be able to reopen the store.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&self.node) > 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// How the node gets its batches proven.
pub enum ProverSetup {
    /// In this process, with this proving key.
    Local(Box<ProvingKey<Bn254>>),
    /// In this process, with a prover already loaded (its key and the circuit's R1CS, e.g. by
    /// `Prover::load`, which reads the R1CS from its cache beside the key).
    Loaded(Box<veil_prover::Prover>),
    /// By prover workers through the `[proving]` job queue; the node verifies their proofs
    /// with this verifying key, whose identity (`keys::vk_sha256_of`) names the jobs.
    Queue {
        /// The verifying key.
        vk: Box<VerifyingKey<Bn254>>,
        /// Its identity, computed where the key was read (that needs the circuit's shape hash).
        vk_id: String,
    },
}

/// Opens the node in `config.data_dir`, binds the API on `config.listen` and spawns the sealer
/// and (with `proving_key`, unless `config.prove` is false) the prover. Without a key, or with
/// proving paused, batches are sealed but not proven.
pub async fn start(
    config: &Config,
    proving_key: Option<ProvingKey<Bn254>>,
) -> Result<RunningNode, NodeError> {
    start_with(
        config,
        proving_key.map(|pk| ProverSetup::Local(Box::new(pk))),
    )
    .await
}

/// [`start`] with either prover: in-process, or the job queue of `config.proving`.
pub async fn start_with(
    config: &Config,
    prover: Option<ProverSetup>,
) -> Result<RunningNode, NodeError> {
    config
        .validate()
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let shape = config
        .shape()
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let dir = config.data_dir.clone();
    let node = tokio::task::spawn_blocking(move || Node::open(&dir, shape))
        .await
        .map_err(|e| NodeError::Task(e.to_string()))??;
    let node = Arc::new(node);
    let anchorer = match &config.anchor {
        Some(a) => {
            let (node2, a, dir) = (node.clone(), a.clone(), config.data_dir.clone());
            let anchorer =
                tokio::task::spawn_blocking(move || anchoring::Anchorer::new(node2, &a, &dir))
                    .await
                    .map_err(|e| NodeError::Task(e.to_string()))?
                    .map_err(|e| NodeError::Config(e.to_string()))?;
            Some(Arc::new(anchorer))
        }
        None => None,
    };
    let (tx, rx) = watch::channel(false);
    let ctx = Arc::new(api::ApiContext {
        node: node.clone(),
        operator_token: config.operator_token.clone(),
        anchorer: anchorer.clone(),
        proving_queue: match &prover {
            Some(ProverSetup::Queue { .. }) if config.prove => Some(Default::default()),
            _ => None,
        },
        verifying_key: prover
            .as_ref()
            .map(|p| Arc::new(api::explorer::ServedVk::of(p, shape, &config.keys_dir))),
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| NodeError::Bind(format!("{}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| NodeError::Bind(e.to_string()))?;
    let limits = http_edge::EdgeLimits::new(&config.http, api::MAX_BODY_BYTES);
    let queue_metrics = ctx.proving_queue.clone();
    let server = http_edge::serve(listener, api::routes(ctx), limits, rx.clone());
    let mut tasks = vec![tokio::spawn(async move {
        server.await;
        Ok::<(), NodeError>(())
    })];
    tasks.push(tokio::spawn(proving::run_sealer(
        node.clone(),
        config.max_wait(),
        rx.clone(),
    )));
    if let Some(a) = anchorer {
        tasks.push(tokio::spawn(a.run(rx.clone())));
    }
    match prover {
        Some(_) if !config.prove => {
            tracing::warn!("proving paused (prove = false): batches are sealed but not proven")
        }
        Some(ProverSetup::Local(pk)) => {
            let shape = node.shape();
            tasks.push(tokio::spawn(proving::run_prover(
                node.clone(),
                move || veil_prover::Prover::new(shape, *pk),
                rx,
            )))
        }
        Some(ProverSetup::Loaded(prover)) => tasks.push(tokio::spawn(proving::run_prover(
            node.clone(),
            move || Ok(*prover),
            rx,
        ))),
        Some(ProverSetup::Queue { vk, vk_id }) => {
            tasks.push(tokio::spawn(proving::queue::run_queue_prover(
                node.clone(),
                *vk,
                vk_id,
                config.proving.clone(),
                queue_metrics.unwrap_or_default(),
                rx,
            )))
        }
        None => tracing::warn!("no proving key: batches are sealed but not proven"),
    }
    tracing::info!(%addr, %shape, "sequencer listening");
    Ok(RunningNode {
        addr,
        node,
        shutdown: tx,
        tasks,
    })
}

/// Runs the node until `shutdown` resolves, then stops it gracefully.
pub async fn run(
    config: Config,
    proving_key: Option<ProvingKey<Bn254>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    run_with(
        config,
        proving_key.map(|pk| ProverSetup::Local(Box::new(pk))),
        shutdown,
    )
    .await
}

/// [`run`] with either prover.
pub async fn run_with(
    config: Config,
    prover: Option<ProverSetup>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let running = start_with(&config, prover).await?;
    shutdown.await;
    running.stop().await
}
