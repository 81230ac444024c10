//! `veil node`: runs the sequencer (HTTP API, redb storage, batching, background proving) on
//! 127.0.0.1 by default. Configuration comes from a TOML file, then `VEIL_*` environment
//! variables, then flags. With `--dev-keys` a missing proving key is generated with an insecure
//! dev seed (what `make run` does for newcomers).

use std::path::PathBuf;

use anyhow::{Context, Result};
use veil_prover::keys::{self, KeyKind};
use veil_sequencer::config::Config;

use crate::util;

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
    /// Pause background proving (config `prove = false`): batches are sealed, not proven, and no
    /// proving key is needed or loaded.
    #[arg(long)]
    no_prove: bool,
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
    let pk_path = config
        .keys_dir
        .join(keys::key_file_name(KeyKind::Proving, shape));
    if !pk_path.exists() {
        let seed = args.dev_keys.with_context(|| {
            format!(
                "{} is missing: run `veil setup --batch-size {} --depth {}` (or pass --dev-keys SEED for insecure dev keys)",
                pk_path.display(),
                shape.batch_size,
                shape.depth
            )
        })?;
        util::warn_dev_keys(seed);
        let bar = util::spinner(format!("generating dev keys for {shape} (one time)"));
        let (pk, vk) = veil_prover::setup(shape, &mut veil_prover::dev_rng(seed))?;
        let hash = keys::shape_hash(shape);
        keys::write_key_file(&pk_path, keys::header(KeyKind::Proving, shape, hash), &pk)?;
        let vk_path = config
            .keys_dir
            .join(keys::key_file_name(KeyKind::Verifying, shape));
        keys::write_key_file(&vk_path, keys::header(KeyKind::Verifying, shape, hash), &vk)?;
        bar.finish_with_message(format!("dev keys written to {}", config.keys_dir.display()));
    }
    let bar = util::spinner(format!("loading {}", pk_path.display()));
    let pk = keys::read_proving_key(&pk_path, shape, &keys::shape_hash(shape))?;
    bar.finish_and_clear();
    eprintln!(
        "veil node: {shape}, listening on http://{}, data in {}",
        config.listen,
        config.data_dir.display()
    );
    runtime.block_on(veil_sequencer::run(config, Some(pk), async {
        let _ = tokio::signal::ctrl_c().await;
    }))?;
    Ok(std::process::ExitCode::SUCCESS)
}
