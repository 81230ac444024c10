//! Helpers shared by the subcommands: shapes from flags, JSON files in and out (written
//! atomically), one-line error messages, and indicatif spinners and step bars on stderr (drawn
//! only when stderr is a terminal).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use veil_circuits::batch::BatchShape;

/// How to reach Bitcoin Core (`verify-chain`, `restore`).
#[derive(clap::Args)]
pub struct BitcoinArgs {
    /// Bitcoin Core JSON-RPC URL (e.g. http://127.0.0.1:8332).
    #[arg(long)]
    pub bitcoin_rpc: String,
    /// Bitcoin Core's `.cookie` file.
    #[arg(long, conflicts_with_all = ["rpc_user", "rpc_password"])]
    pub rpc_cookie: Option<PathBuf>,
    /// RPC user (with --rpc-password).
    #[arg(long, requires = "rpc_password")]
    pub rpc_user: Option<String>,
    /// RPC password (with --rpc-user).
    #[arg(long, requires = "rpc_user")]
    pub rpc_password: Option<String>,
}

impl BitcoinArgs {
    /// The RPC client.
    pub fn rpc(&self) -> Result<veil_bitcoin::BitcoinRpc> {
        use veil_bitcoin::RpcAuth;
        let auth = match (&self.rpc_cookie, &self.rpc_user, &self.rpc_password) {
            (Some(c), _, _) => RpcAuth::CookieFile(c.clone()),
            (None, Some(u), Some(p)) => RpcAuth::UserPass {
                user: u.clone(),
                password: p.clone(),
            },
            _ => bail!(
                "give Bitcoin Core's credentials: --rpc-cookie FILE or --rpc-user U --rpc-password P"
            ),
        };
        Ok(veil_bitcoin::BitcoinRpc::new(
            veil_bitcoin::RpcConfig::new(self.bitcoin_rpc.clone(), auth),
        )?)
    }
}

/// A validated shape from `--batch-size` and `--depth`.
pub fn shape(batch_size: usize, depth: usize) -> Result<BatchShape> {
    BatchShape::new(batch_size, depth).context("bad shape")
}

/// Reads a whole text file, naming it in the error.
pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes `contents` to `path` atomically (a temp file in the same directory, then rename),
/// creating the directory.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    write_file(path, contents, false)
}

/// [`write_atomic`] with mode 0600, for files holding private data (batch witnesses).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    write_file(path, contents, true)
}

fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<()> {
    write_streamed(path, private, |w| std::io::Write::write_all(w, contents))
}

/// [`write_atomic`] (or [`write_private`]) of what `write` writes into a buffered writer: for
/// files too large to hold in memory first. A failed write leaves no file behind.
pub fn write_streamed(
    path: &Path,
    private: bool,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let written = || -> std::io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(if private { 0o600 } else { 0o644 });
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut f = std::io::BufWriter::with_capacity(1 << 20, opts.open(&tmp)?);
        write(&mut f)?;
        f.flush()?;
        f.get_ref().sync_all()?;
        std::fs::rename(&tmp, path)
    };
    let result = written();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// An error as one line: its chain joined by `: `, newlines flattened.
pub fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

/// A spinner with a message, ticking until finished.
pub fn spinner(msg: impl Into<String>) -> ProgressBar {
    let pb = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("a valid template"),
    );
    pb.set_message(msg.into());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// A bar of `n` steps with a message per step.
pub fn steps(n: u64) -> ProgressBar {
    let pb = ProgressBar::new(n).with_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg} [{elapsed}]")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// The loud warning printed whenever dev (deterministic) setup randomness is used.
pub fn warn_dev_keys(seed: u64) {
    eprintln!("WARNING: INSECURE dev keys (--dev-seed {seed}): anyone can forge proofs");
}

/// The proving key's path for `shape` under `keys_dir`. A missing key is generated (with its
/// verifying key) from the insecure dev seed `dev_keys` when given, else refused with the
/// command that makes one.
pub fn ensure_keys(keys_dir: &Path, shape: BatchShape, dev_keys: Option<u64>) -> Result<PathBuf> {
    use veil_prover::keys::{self, KeyKind};
    let pk_path = keys_dir.join(keys::key_file_name(KeyKind::Proving, shape));
    if pk_path.exists() {
        return Ok(pk_path);
    }
    let seed = dev_keys.with_context(|| {
        format!(
            "{} is missing: run `veil setup --batch-size {} --depth {}` (or pass --dev-keys SEED for insecure dev keys)",
            pk_path.display(),
            shape.batch_size,
            shape.depth
        )
    })?;
    warn_dev_keys(seed);
    let bar = spinner(format!("generating dev keys for {shape} (one time)"));
    let (pk, vk) = veil_prover::setup(shape, &mut veil_prover::dev_rng(seed))?;
    let hash = keys::shape_hash_cached(keys_dir, shape);
    keys::write_key_file(&pk_path, keys::header(KeyKind::Proving, shape, hash), &pk)?;
    let vk_path = keys_dir.join(keys::key_file_name(KeyKind::Verifying, shape));
    keys::write_key_file(&vk_path, keys::header(KeyKind::Verifying, shape, hash), &vk)?;
    bar.finish_with_message(format!("dev keys written to {}", keys_dir.display()));
    Ok(pk_path)
}

/// The job queue's URL: `flag`, else `VEIL_DATABASE_URL`.
pub fn database_url(flag: Option<String>) -> Result<String> {
    match flag {
        Some(url) => Ok(url),
        None => std::env::var("VEIL_DATABASE_URL")
            .context("no --database-url given and VEIL_DATABASE_URL is not set"),
    }
}
