//! `make run`'s operator token: `veil node --dev-token` on a node without Bitcoin generates a
//! random token once into `DATA_DIR/operator-token` (0600), says where it is and what to run next
//! without printing it, and keeps it across restarts; `veil deposit` on the same machine finds
//! it there (`--data-dir`), so a newcomer's first deposit needs no configuration. A configured
//! token wins, Bitcoin and `--dev-token` do not mix, and a deposit without any token says where
//! one comes from, in one line.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod node_process;
mod veil_bin;
use node_process::NodeProcess;
use veil_bin::{command, text};

/// `veil args` without a token in the environment.
fn veil(args: &[&str]) -> Output {
    command(args)
        .env_remove("VEIL_OPERATOR_TOKEN")
        .output()
        .expect("run veil")
}

/// `veil node --dev-token --no-prove` (B = 1, D = 8) on `data`, without a token in the
/// environment.
fn dev_node(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_veil"));
    cmd.args(["node", "--dev-token", "--no-prove", "--batch-size", "1"])
        .args(["--depth", "8", "--data-dir"])
        .arg(data)
        .env_remove("VEIL_OPERATOR_TOKEN");
    cmd
}

struct Node(NodeProcess);

impl Node {
    /// [`dev_node`] on `data`, listening when returned.
    fn start(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> (Node, String) {
        let mut cmd = dev_node(data);
        cmd.args(extra)
            .env("RUST_LOG", "warn,veil_sequencer=info")
            .stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        // One log per start: a restarted node on the same data writes a fresh one.
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = data.with_extension(format!("{n}.log"));
        let process = NodeProcess::spawn(cmd, log, Duration::from_secs(120));
        let url = process.url();
        (Node(process), url)
    }

    fn log(&self) -> String {
        self.0.log()
    }
}

fn address(wallet: &Path, node: &str) -> String {
    let w = wallet.to_str().unwrap();
    let out = veil(&["wallet", "--wallet", w, "--node", node, "new"]);
    assert!(out.status.success(), "{out:?}");
    let out = veil(&["wallet", "--wallet", w, "address"]);
    assert!(out.status.success(), "{out:?}");
    text(&out.stdout).trim().to_owned()
}

fn deposit(node: &str, data: &Path, to: &str, outpoint_byte: u8) -> Output {
    let outpoint = format!("{}:0", hex_byte(outpoint_byte).repeat(32));
    veil(&[
        "deposit",
        "--node",
        node,
        "--data-dir",
        data.to_str().unwrap(),
        "--to",
        to,
        "--amount",
        "100000",
        "--outpoint",
        &outpoint,
    ])
}

fn hex_byte(b: u8) -> String {
    format!("{b:02x}")
}

#[test]
fn a_dev_node_generates_its_token_once_and_deposit_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (node, url) = Node::start(&data, &[], &[]);
    let token_path = data.join("operator-token");
    let token = std::fs::read_to_string(&token_path)
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(token.len(), 64, "32 random bytes, hex");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let log = node.log();
    assert!(log.contains("operator-token"), "{log}");
    assert!(log.contains("deposit"), "the next command: {log}");
    assert!(!log.contains(&token), "the token is never printed: {log}");

    let alice = address(&dir.path().join("alice"), &url);
    let out = deposit(&url, &data, &alice, 1);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).starts_with("deposit "), "{out:?}");
    assert!(!text(&out.stdout).contains(&token));

    // Restarted: the same token, still accepted.
    drop(node);
    let (node, url) = Node::start(&data, &[], &[]);
    assert_eq!(std::fs::read_to_string(&token_path).unwrap().trim(), token);
    let out = deposit(&url, &data, &alice, 2);
    assert!(out.status.success(), "{out:?}");

    // Without a token anywhere: one line saying where one comes from.
    let out = deposit(&url, &dir.path().join("nowhere"), &alice, 3);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--dev-token") && err.contains("VEIL_OPERATOR_TOKEN"),
        "{err}"
    );
    drop(node);

    // A configured token wins: no file is written, and the dev file's token is refused.
    let configured = dir.path().join("configured");
    let (_node, url) = Node::start(
        &configured,
        &[],
        &[("VEIL_OPERATOR_TOKEN", "configured-token-0123456789")],
    );
    assert!(!configured.join("operator-token").exists());
    let out = deposit(&url, &data, &alice, 4);
    assert!(
        !out.status.success(),
        "the dev token is not this node's: {out:?}"
    );
}

#[test]
fn dev_token_refuses_a_node_with_bitcoin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dev_node(&dir.path().join("data"))
        .args(["--bitcoin-rpc", "http://127.0.0.1:1"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--dev-token"), "{err}");
    assert!(!dir.path().join("data/operator-token").exists());
}
