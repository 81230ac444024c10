//! `veil node`: runs the sequencer (HTTP API, redb storage, batching, background proving) on
//! 127.0.0.1 by default. Configuration comes from a TOML file, then `VEIL_*` environment
//! variables, then flags. With `--dev-keys` a missing proving key is generated with an insecure
//! dev seed (what `make run` does for newcomers). `--bitcoin-rpc` (or an `[anchor]` table, or
//! `VEIL_BITCOIN_RPC_URL`) turns on Bitcoin anchoring; the other `--anchor-*`/`--rpc-*` flags
//! override that table's keys. The `--http-*` flags override the `[http]` table (timeouts and
//! limits of the HTTP edge).

use std::path::PathBuf;

use anyhow::{Context, Result};
use veil_prover::keys::{self, KeyKind};
use veil_sequencer::config::Config;

use crate::{dev_token, util};

/// Arguments of `veil node`.
#[derive(clap::Args)]
pub struct Args {
    /// TOML configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Listen address (default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Data directory (embedded redb).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Transfers per batch.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Tree depth.
    #[arg(long)]
    depth: Option<usize>,
    /// Directory of `pk-B{B}-D{D}.bin`.
    #[arg(long)]
    keys_dir: Option<PathBuf>,
    /// Seal a partial batch after this many milliseconds.
    #[arg(long)]
    max_wait_ms: Option<u64>,
    /// Generate missing keys with this insecure dev seed instead of failing.
    #[arg(long, value_name = "SEED")]
    dev_keys: Option<u64>,
    /// A dev node without Bitcoin (`make run`): with no operator token configured, use the one
    /// in DATA_DIR/operator-token, generated (random, 0600) the first time; `veil deposit` on
    /// this machine reads it from there.
    #[arg(long)]
    dev_token: bool,
    /// Pause background proving (config `prove = false`): batches are sealed, not proven, and no
    /// proving key is needed or loaded.
    #[arg(long)]
    no_prove: bool,
    /// PostgreSQL job queue: prover workers (`veil prover-worker`) prove, the node only verifies
    /// (config `proving.database_url`, or VEIL_DATABASE_URL).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Bitcoin Core JSON-RPC URL: turns on anchoring (config `anchor.rpc_url`).
    #[arg(long)]
    bitcoin_rpc: Option<String>,
    /// Bitcoin Core's `.cookie` file (`anchor.rpc_cookie`).
    #[arg(long)]
    rpc_cookie: Option<PathBuf>,
    /// Bitcoin RPC user (`anchor.rpc_user`).
    #[arg(long)]
    rpc_user: Option<String>,
    /// Bitcoin RPC password (`anchor.rpc_password`; prefer the config file or
    /// VEIL_BITCOIN_RPC_PASSWORD, flags are visible to other users).
    #[arg(long)]
    rpc_password: Option<String>,
    /// Bitcoin network: regtest, signet, testnet, testnet4, mainnet (`anchor.network`).
    #[arg(long)]
    bitcoin_network: Option<String>,
    /// Operator key file, created 0600 if missing (`anchor.key_file`).
    #[arg(long)]
    operator_key: Option<PathBuf>,
    /// p2tr or p2wpkh (`anchor.key_kind`).
    #[arg(long)]
    anchor_key_kind: Option<String>,
    /// Fixed anchor fee rate in sat/vB (`anchor.fee_rate`; default: estimatesmartfee).
    #[arg(long)]
    anchor_fee_rate: Option<u64>,
    /// Confirmations for a batch to count as anchored (`anchor.confirmations`).
    #[arg(long)]
    anchor_confirmations: Option<u64>,
    /// TXID:VOUT that batch 0's anchor spends (`anchor.genesis`).
    #[arg(long)]
    anchor_genesis: Option<String>,
    /// Time for a request head to arrive, ms; idle keep-alive connections close after as long
    /// (`http.header_timeout_ms`, default 10000).
    #[arg(long, value_name = "MS")]
    http_header_timeout_ms: Option<u64>,
    /// Time for a request body to arrive, ms (`http.body_timeout_ms`, default 30000).
    #[arg(long, value_name = "MS")]
    http_body_timeout_ms: Option<u64>,
    /// Connections served at once; more are answered 503 (`http.max_connections`, default 256).
    #[arg(long, value_name = "N")]
    http_max_connections: Option<usize>,
    /// Largest request head in bytes, 1024..=65536 (`http.max_head_bytes`, default 16384).
    #[arg(long, value_name = "BYTES")]
    http_max_head_bytes: Option<usize>,
}

fn apply_http_flags(config: &mut Config, args: &Args) {
    let h = &mut config.http;
    if let Some(v) = args.http_header_timeout_ms {
        h.header_timeout_ms = v;
    }
    if let Some(v) = args.http_body_timeout_ms {
        h.body_timeout_ms = v;
    }
    if let Some(v) = args.http_max_connections {
        h.max_connections = v;
    }
    if let Some(v) = args.http_max_head_bytes {
        h.max_head_bytes = v;
    }
}

fn apply_anchor_flags(config: &mut Config, args: &Args) -> Result<()> {
    if let Some(url) = &args.bitcoin_rpc {
        config.anchor.get_or_insert_with(Default::default).rpc_url = url.clone();
    }
    let any = args.rpc_cookie.is_some()
        || args.rpc_user.is_some()
        || args.rpc_password.is_some()
        || args.bitcoin_network.is_some()
        || args.operator_key.is_some()
        || args.anchor_key_kind.is_some()
        || args.anchor_fee_rate.is_some()
        || args.anchor_confirmations.is_some()
        || args.anchor_genesis.is_some();
    let Some(a) = config.anchor.as_mut() else {
        if any {
            anyhow::bail!("anchoring flags need --bitcoin-rpc (or an [anchor] config table)");
        }
        return Ok(());
    };
    if let Some(v) = &args.rpc_cookie {
        a.rpc_cookie = Some(v.clone());
    }
    if let Some(v) = &args.rpc_user {
        a.rpc_user = Some(v.clone());
    }
    if let Some(v) = &args.rpc_password {
        a.rpc_password = Some(v.clone());
    }
    if let Some(v) = &args.bitcoin_network {
        a.network = v.clone();
    }
    if let Some(v) = &args.operator_key {
        a.key_file = Some(v.clone());
    }
    if let Some(v) = &args.anchor_key_kind {
        a.key_kind = v.clone();
    }
    if let Some(v) = args.anchor_fee_rate {
        a.fee_rate = Some(v);
    }
    if let Some(v) = args.anchor_confirmations {
        a.confirmations = v;
    }
    if let Some(v) = &args.anchor_genesis {
        a.genesis = Some(v.clone());
    }
    Ok(())
}

/// Runs the node until Ctrl-C.
pub fn run(args: Args) -> Result<std::process::ExitCode> {
    let mut config = match &args.config {
        Some(path) => Config::load(path).with_context(|| format!("reading {}", path.display()))?,
        None => Config::default(),
    };
    config
        .apply_env(|k| std::env::var(k).ok())
        .context("environment overrides")?;
    apply_anchor_flags(&mut config, &args)?;
    apply_http_flags(&mut config, &args);
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = args.data_dir {
        config.data_dir = v;
    }
    if let Some(v) = args.batch_size {
        config.batch_size = v;
    }
    if let Some(v) = args.depth {
        config.depth = v;
    }
    if let Some(v) = args.keys_dir {
        config.keys_dir = v;
    }
    if let Some(v) = args.max_wait_ms {
        config.max_wait_ms = v;
    }
    if args.no_prove {
        config.prove = false;
    }
    if let Some(v) = &args.database_url {
        config.proving.database_url = Some(v.clone());
    }
    if args.dev_token && config.operator_token.is_none() {
        anyhow::ensure!(
            config.anchor.is_none(),
            "--dev-token is for nodes without Bitcoin: set operator_token (config) or VEIL_OPERATOR_TOKEN"
        );
        let (token, created) = dev_token::load_or_create(&config.data_dir)?;
        config.operator_token = Some(token);
        let path = dev_token::path(&config.data_dir);
        let exe = std::env::args().next().unwrap_or_else(|| "veil".into());
        // The wallet's and deposit's default node is http://127.0.0.1:8080.
        let node = if config.listen.to_string() == "127.0.0.1:8080" {
            String::new()
        } else {
            format!(" --node http://{}", config.listen)
        };
        eprintln!(
            "veil node: operator token {} {} (0600; never printed). On this machine `veil deposit` reads it from there:\n  \
             {exe} wallet --wallet alice new{node} && {exe} deposit{node} --data-dir {} --to \"$({exe} wallet --wallet alice address)\" --amount 100000 --outpoint {}:0",
            if created { "generated in" } else { "in" },
            path.display(),
            config.data_dir.display(),
            "11".repeat(32),
        );
    }
    config.validate().context("invalid configuration")?;
    let shape = util::shape(config.batch_size, config.depth)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if !config.prove {
        eprintln!(
            "veil node: {shape}, proving paused, listening on http://{}, data in {}",
            config.listen,
            config.data_dir.display()
        );
        runtime.block_on(veil_sequencer::run(config, None, async {
            let _ = tokio::signal::ctrl_c().await;
        }))?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let pk_path = util::ensure_keys(&config.keys_dir, shape, args.dev_keys)?;
    if let Some(url) = &config.proving.database_url {
        let vk_path = config
            .keys_dir
            .join(keys::key_file_name(KeyKind::Verifying, shape));
        let shape_hash = keys::shape_hash_cached(&config.keys_dir, shape);
        let vk = keys::read_verifying_key(&vk_path, shape, &shape_hash)?;
        let vk_id = keys::vk_sha256_of(&vk, shape, shape_hash);
        eprintln!(
            "veil node: {shape}, proving by workers through {}, listening on http://{}, data in {}",
            veil_jobs::redact_url(url),
            config.listen,
            config.data_dir.display()
        );
        runtime.block_on(veil_sequencer::run_with(
            config,
            Some(veil_sequencer::ProverSetup::Queue {
                vk: Box::new(vk),
                vk_id,
            }),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        ))?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let bar = util::spinner(format!("loading {}", pk_path.display()));
    let prover = veil_prover::Prover::load(&pk_path, shape)?;
    bar.finish_and_clear();
    eprintln!(
        "veil node: {shape}, listening on http://{}, data in {}",
        config.listen,
        config.data_dir.display()
    );
    runtime.block_on(veil_sequencer::run_with(
        config,
        Some(veil_sequencer::ProverSetup::Loaded(Box::new(prover))),
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    ))?;
    Ok(std::process::ExitCode::SUCCESS)
}
