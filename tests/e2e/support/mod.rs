//! Shared helpers of the real-binary end-to-end tests (`wallet_e2e`, `node_crash`): running
//! `veil` and checking its exit, cached dev keys from `veil setup`, and a `veil node` child
//! process on a free loopback port that is killed when dropped.
#![allow(dead_code)]

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The operator token the nodes of these tests run with.
pub const TOKEN: &str = "e2e-operator-token";

/// Runs `veil` with a clean environment (no `RUST_LOG`, wallet or token variables).
pub fn veil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("VEIL_WALLET")
        .env_remove("VEIL_OPERATOR_TOKEN")
        .output()
        .expect("run veil")
}

/// Runs `veil`, expects success, returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = veil(args);
    assert!(
        out.status.success(),
        "veil {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `veil ... --json`, expects success, returns the JSON.
pub fn ok_json(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let text = ok(&a);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("veil {args:?}: {e}: {text}"))
}

/// Runs `veil`, expects failure with exit 2 and exactly one `error:` line; returns it.
pub fn fails(args: &[&str]) -> String {
    let out = veil(args);
    assert_eq!(out.status.code(), Some(2), "veil {args:?}: {out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

/// The node process, killed (SIGKILL) when dropped, also when the test panics.
pub struct NodeGuard {
    pub child: Child,
    pub log: PathBuf,
}

impl NodeGuard {
    /// What the node wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics, with the node's log, if it exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("veil node exited with {status}:\n{}", self.log());
        }
    }

    /// `kill -9`: no shutdown, no flush.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL the node");
        self.child.wait().unwrap();
    }
}

impl Drop for NodeGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a cached key file was made for this build's circuit (`veil keys info`).
fn key_is_current(path: &Path) -> bool {
    path.exists() && {
        let out = veil(&["keys", "info", "--json", path.to_str().unwrap()]);
        out.status.success()
            && serde_json::from_slice::<Value>(&out.stdout)
                .is_ok_and(|v| v["shape_hash_matches_build"] == true)
    }
}

/// Dev keys for B = 2, D = 8 (seed 1), made by `veil setup` and cached under the target dir
/// in `name`; made again when the circuit changed.
pub fn dev_keys(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let pk = dir.join("pk-B2-D8.bin");
    let vk = dir.join("vk-B2-D8.bin");
    if !(key_is_current(&pk) && key_is_current(&vk)) {
        let d = dir.to_str().unwrap();
        ok(&[
            "setup",
            "-b",
            "2",
            "-d",
            "8",
            "--dev-seed",
            "1",
            "--out-dir",
            d,
            "--force",
        ]);
    }
    dir
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `veil node` (B = 2, D = 8, `max_wait` 200 ms, operator token [`TOKEN`]) on a free
/// port with `data` as its data dir, its stderr appended to `data.log`; waits until it listens.
/// Returns the guard and `http://127.0.0.1:PORT`.
pub fn start_node(keys: &Path, data: &Path) -> (NodeGuard, String) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let log = data.with_extension("log");
    let stderr = File::options()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args([
            "node",
            "--listen",
            &listen,
            "--data-dir",
            data.to_str().unwrap(),
            "--keys-dir",
            keys.to_str().unwrap(),
            "--batch-size",
            "2",
            "--depth",
            "8",
            "--max-wait-ms",
            "200",
        ])
        .env("VEIL_OPERATOR_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start veil node");
    let mut guard = NodeGuard { child, log };
    let start = Instant::now();
    while TcpStream::connect(&listen).is_err() {
        guard.assert_running();
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "node did not listen on {listen}:\n{}",
            guard.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (guard, format!("http://{listen}"))
}
