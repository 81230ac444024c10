//! A throwaway regtest `bitcoind` for integration tests: finds the binary (`$VEIL_BITCOIND`, then
//! `PATH`, then the `make bitcoind` cache), starts it on a free loopback port with a temporary
//! datadir, waits for RPC, and stops it by PID when dropped. [`Bitcoind::stop`] and
//! [`Bitcoind::restart`] take it down and bring it back on the same port and datadir (tests of
//! a Bitcoin node that goes away).
//!
//! Other test crates can include this file with
//! `#[path = "../../bitcoin/tests/support/bitcoind.rs"] mod bitcoind;` (it needs `tempfile` and
//! `tokio` as dev-dependencies and `veil-verifier`).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use veil_bitcoin::{BitcoinRpc, RpcAuth, RpcConfig, RpcError};

/// RPC credentials of the test node.
pub const RPC_USER: &str = "rpc";
/// RPC password of the test node (a throwaway loopback node).
pub const RPC_PASSWORD: &str = "regtest";

/// Where `make bitcoind` installs the binary: `${XDG_CACHE_HOME:-$HOME/.cache}/veil/bitcoind`.
pub fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|c| c.join("veil").join("bitcoind"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// How the binary was looked for.
#[derive(Debug)]
pub enum Lookup {
    /// Found.
    Found(PathBuf),
    /// `$VEIL_BITCOIND` is set but does not name an executable: an error, never a skip.
    BadEnv(String),
    /// Nowhere to be found: tests skip with this notice.
    NotFound(String),
}

/// Looks for `bitcoind`: `$VEIL_BITCOIND`, then `PATH`, then the `make bitcoind` cache.
pub fn find_bitcoind() -> Lookup {
    if let Some(v) = std::env::var_os("VEIL_BITCOIND").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(&v);
        return if is_executable(&p) {
            Lookup::Found(p)
        } else {
            Lookup::BadEnv(format!(
                "VEIL_BITCOIND={} is not an executable file",
                p.display()
            ))
        };
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("bitcoind");
            if is_executable(&p) {
                return Lookup::Found(p);
            }
        }
    }
    if let Some(p) = cache_dir().map(|d| d.join("bitcoind")) {
        if is_executable(&p) {
            return Lookup::Found(p);
        }
    }
    Lookup::NotFound(
        "no bitcoind found: set VEIL_BITCOIND=/path/to/bitcoind, put bitcoind on PATH, or run \
         `make bitcoind` (builds Bitcoin Core into ${XDG_CACHE_HOME:-$HOME/.cache}/veil/bitcoind)"
            .into(),
    )
}

/// A running regtest node, stopped when dropped.
pub struct Bitcoind {
    /// RPC client (user/password auth).
    pub rpc: BitcoinRpc,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// RPC port.
    pub port: u16,
    pid: u32,
    exe: PathBuf,
    datadir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

impl Bitcoind {
    /// Starts a node if a binary is found; `None` (after printing why) if none is, so a test can
    /// skip. Panics if `$VEIL_BITCOIND` is set but wrong, or if the node fails to start.
    pub async fn start_or_skip(test: &str) -> Option<Self> {
        match find_bitcoind() {
            Lookup::Found(exe) => Some(
                Self::start(&exe)
                    .await
                    .unwrap_or_else(|e| panic!("{test}: starting {}: {e}", exe.display())),
            ),
            Lookup::BadEnv(msg) => panic!("{test}: {msg}"),
            Lookup::NotFound(msg) => {
                eprintln!("SKIPPED {test}: {msg}");
                None
            }
        }
    }

    /// Starts `exe` in regtest mode on a free loopback port and waits until RPC answers.
    pub async fn start(exe: &Path) -> Result<Self, String> {
        let mut last_error = String::new();
        // A port found free can be taken by another process before bitcoind binds it: retry.
        for _ in 0..3 {
            let datadir = tempfile::Builder::new()
                .prefix("veil-bitcoind-")
                .tempdir()
                .map_err(|e| format!("temporary datadir: {e}"))?;
            let port = free_port();
            let pid = match launch(exe, datadir.path(), port)? {
                Ok(pid) => pid,
                Err(e) => {
                    last_error = e;
                    continue;
                }
            };
            let url = format!("http://127.0.0.1:{port}");
            let mut config = RpcConfig::new(
                url.clone(),
                RpcAuth::UserPass {
                    user: RPC_USER.into(),
                    password: RPC_PASSWORD.into(),
                },
            );
            config.timeout = Duration::from_secs(30);
            config.retries = 3;
            config.backoff = Duration::from_millis(100);
            let rpc = BitcoinRpc::new(config).map_err(|e| e.to_string())?;
            let node = Self {
                rpc,
                url,
                port,
                pid,
                exe: exe.to_owned(),
                datadir,
            };
            node.wait_for_rpc(Duration::from_secs(60)).await?;
            return Ok(node);
        }
        Err(last_error)
    }

    /// Stops the node (RPC `stop`, then waits for the process to exit); the datadir stays.
    pub async fn stop(&self) {
        let _ = self.rpc.stop().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.alive() {
            assert!(
                Instant::now() < deadline,
                "bitcoind {} did not stop",
                self.pid
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts the stopped node again on the same port with the same datadir (its chain and
    /// mempool, which Core saves on shutdown, come back) and waits for RPC.
    pub async fn restart(&mut self) {
        assert!(!self.alive(), "restart of a running bitcoind");
        let pid = launch(&self.exe, self.datadir.path(), self.port)
            .and_then(|r| r)
            .unwrap_or_else(|e| panic!("restarting bitcoind: {e}"));
        self.pid = pid;
        self.wait_for_rpc(Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("restarted bitcoind: {e}"));
    }

    async fn wait_for_rpc(&self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            match self.rpc.get_blockchain_info().await {
                Ok(_) => return Ok(()),
                Err(e @ RpcError::Unauthorized { .. }) => return Err(e.to_string()),
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("RPC not ready after {limit:?}: {e}"))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// The node's datadir.
    pub fn datadir(&self) -> &Path {
        self.datadir.path()
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
            && !std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true)
    }
}

/// Runs `exe` as a regtest daemon in `dir` on `port` and returns its pid; the inner `Err` is a
/// failed start worth retrying on another port, the outer one a setup failure.
fn launch(exe: &Path, dir: &Path, port: u16) -> Result<Result<u32, String>, String> {
    let pid_file = dir.join("bitcoind.pid");
    let output = Command::new(exe)
        .arg("-regtest")
        .arg(format!("-datadir={}", dir.display()))
        .args([
            "-daemonwait",
            "-server",
            "-listen=0",
            "-rpcbind=127.0.0.1",
            "-rpcallowip=127.0.0.1",
        ])
        .arg(format!("-rpcport={port}"))
        .arg(format!("-rpcuser={RPC_USER}"))
        .arg(format!("-rpcpassword={RPC_PASSWORD}"))
        .args(["-txindex=1", "-fallbackfee=0.0001", "-printtoconsole=0"])
        .arg(format!("-pid={}", pid_file.display()))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", exe.display()))?;
    if !output.status.success() {
        let log =
            std::fs::read_to_string(dir.join("regtest").join("debug.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        return Ok(Err(format!(
            "bitcoind exited with {}: {} {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )));
    }
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .map_err(|e| format!("reading {}: {e}", pid_file.display()))?
        .trim()
        .parse()
        .map_err(|e| format!("pid file {}: {e}", pid_file.display()))?;
    Ok(Ok(pid))
}

impl Drop for Bitcoind {
    fn drop(&mut self) {
        let signal = |sig: &str| {
            let _ = Command::new("kill")
                .args([sig, &self.pid.to_string()])
                .stderr(Stdio::null())
                .status();
        };
        signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if self.alive() {
            signal("-KILL");
        }
    }
}
