//! End to end with the real `veil` binary: dev keys (B = 2, D = 8) from `veil setup`, a
//! `veil node` on a free loopback port, and then only the CLI: an operator deposit to Alice,
//! Alice pays Bob, Bob pays part back, Bob withdraws to a regtest Bitcoin address; every batch is
//! proven, both balances are exact after a sync, and every batch downloaded with
//! `veil fetch-batch` verifies with `veil verify`. The node is killed on exit, panics included.

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const TOKEN: &str = "e2e-operator-token";
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
/// A BIP-173 regtest P2WPKH address.
const BTC_ADDRESS: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

fn veil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("VEIL_WALLET")
        .env_remove("VEIL_OPERATOR_TOKEN")
        .output()
        .expect("run veil")
}

/// Runs `veil`, expects success, returns stdout.
fn ok(args: &[&str]) -> String {
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
fn ok_json(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let text = ok(&a);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("veil {args:?}: {e}: {text}"))
}

/// Runs `veil`, expects failure with exit 2 and exactly one `error:` line; returns it.
fn fails(args: &[&str]) -> String {
    let out = veil(args);
    assert_eq!(out.status.code(), Some(2), "veil {args:?}: {out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

/// The node process, killed when dropped (also when the test panics).
struct NodeGuard {
    child: Child,
    log: PathBuf,
}

impl NodeGuard {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("veil node exited with {status}:\n{}", self.log());
        }
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

/// Dev keys for B = 2, D = 8 (seed 1), made by `veil setup` and cached under the target dir;
/// made again when the circuit changed.
fn dev_keys() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wallet-e2e-keys-seed1");
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_node(keys: &Path, data: &Path) -> (NodeGuard, String) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let log = data.with_extension("log");
    let stderr = File::create(&log).unwrap();
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

/// Polls `veil wallet status` until the transfer is in one of `want`; returns the status JSON.
fn wait_status(node: &mut NodeGuard, wallet: &str, id: &str, want: &[&str]) -> Value {
    let start = Instant::now();
    loop {
        node.assert_running();
        let v = ok_json(&["wallet", "--wallet", wallet, "status", id]);
        assert_ne!(v["status"], "rejected", "transfer {id} rejected: {v}");
        if want.iter().any(|w| v["status"] == *w) {
            return v;
        }
        assert!(
            start.elapsed() < STEP_TIMEOUT,
            "transfer {id} still {v} after {STEP_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn balance(wallet: &str) -> Value {
    ok_json(&["wallet", "--wallet", wallet, "balance"])
}

fn sync(wallet: &str) -> Value {
    ok_json(&["wallet", "--wallet", wallet, "sync"])
}

#[test]
fn deposit_pay_pay_back_withdraw_prove_and_verify() {
    let t0 = Instant::now();
    let keys = dev_keys();
    let vk = keys.join("vk-B2-D8.bin");
    let t_keys = t0.elapsed();
    let tmp = tempfile::tempdir().unwrap();
    let (mut node, url) = start_node(&keys, &tmp.path().join("data"));
    let alice_dir = tmp.path().join("alice");
    let bob_dir = tmp.path().join("bob");
    let (alice, bob) = (alice_dir.to_str().unwrap(), bob_dir.to_str().unwrap());

    let a = ok_json(&["wallet", "--wallet", alice, "--node", &url, "new"]);
    let b = ok_json(&["wallet", "--wallet", bob, "--node", &url, "new"]);
    let alice_addr = a["address"].as_str().unwrap().to_owned();
    let bob_addr = b["address"].as_str().unwrap().to_owned();
    assert!(alice_addr.starts_with("veilrt1"), "{alice_addr}");
    assert_eq!(
        ok(&["wallet", "--wallet", alice, "address"]).trim(),
        alice_addr
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(alice_dir.join("key.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A second `new` in the same directory refuses to replace the key.
    let err = fails(&["wallet", "--wallet", alice, "new"]);
    assert!(err.contains("already exists"), "{err}");
    let none = tmp.path().join("nobody");
    let err = fails(&["wallet", "--wallet", none.to_str().unwrap(), "balance"]);
    assert!(err.contains("veil wallet new"), "{err}");

    // Operator deposit; a wrong token is refused with the node's error.
    let outpoint = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b:0";
    let err = fails(&[
        "deposit",
        "--node",
        &url,
        "--token",
        "wrong",
        "--to",
        &alice_addr,
        "--amount",
        "100000",
        "--outpoint",
        outpoint,
    ]);
    assert!(err.contains("401"), "{err}");
    let d = ok_json(&[
        "deposit",
        "--node",
        &url,
        "--token",
        TOKEN,
        "--to",
        &alice_addr,
        "--amount",
        "100000",
        "--outpoint",
        outpoint,
    ]);
    let dep_id = d["id"].as_str().unwrap().to_owned();
    wait_status(&mut node, alice, &dep_id, &["batched", "proven"]);

    let s = sync(alice);
    assert_eq!(s["sync"]["found"], serde_json::json!([[0, 100000]]), "{s}");
    assert_eq!(balance(alice)["spendable"], 100000);
    assert_eq!(balance(bob)["spendable"], 0);

    // Alice pays Bob 30 000 with a fee of 100.
    let pay = ok_json(&[
        "wallet", "--wallet", alice, "send", "--to", &bob_addr, "--amount", "30000", "--fee", "100",
    ]);
    let pay_id = pay["id"].as_str().unwrap().to_owned();
    assert_eq!(pay["change"], 69900);
    let bal = balance(alice);
    assert_eq!(
        (&bal["spendable"], &bal["outgoing"], &bal["incoming_change"]),
        (&0.into(), &100000.into(), &69900.into()),
        "{bal}"
    );
    // The only note is being spent: nothing left to pay with.
    let err = fails(&[
        "wallet", "--wallet", alice, "send", "--to", &bob_addr, "--amount", "1",
    ]);
    assert!(err.contains("insufficient funds"), "{err}");
    wait_status(&mut node, alice, &pay_id, &["batched", "proven"]);
    sync(alice);
    sync(bob);
    assert_eq!(balance(alice)["spendable"], 69900);
    assert_eq!(balance(bob)["spendable"], 30000);

    // Bob pays 10 000 back (fee 50), then withdraws 5 000 (fee 25) from his change.
    let back = ok_json(&[
        "wallet",
        "--wallet",
        bob,
        "send",
        "--to",
        &alice_addr,
        "--amount",
        "10000",
        "--fee",
        "50",
    ]);
    let back_id = back["id"].as_str().unwrap().to_owned();
    wait_status(&mut node, bob, &back_id, &["batched", "proven"]);
    sync(bob);
    assert_eq!(balance(bob)["spendable"], 19950);
    let err = fails(&[
        "wallet",
        "--wallet",
        bob,
        "withdraw",
        "--to",
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
        "--amount",
        "5000",
    ]);
    assert!(err.contains("regtest"), "{err}");
    let wd = ok_json(&[
        "wallet",
        "--wallet",
        bob,
        "withdraw",
        "--to",
        BTC_ADDRESS,
        "--amount",
        "5000",
        "--fee",
        "25",
    ]);
    let wd_id = wd["id"].as_str().unwrap().to_owned();
    assert_eq!(wd["change"], 14925);

    // Every transfer gets proven.
    let mut batches = Vec::new();
    for (wallet, id) in [
        (alice, &dep_id),
        (alice, &pay_id),
        (bob, &back_id),
        (bob, &wd_id),
    ] {
        let v = wait_status(&mut node, wallet, id, &["proven"]);
        batches.push(v["batch"].as_u64().unwrap());
    }
    let t_proven = t0.elapsed();
    // Four transfers that each waited for the previous one: four batches, in order.
    assert_eq!(batches, vec![0, 1, 2, 3]);

    let s = sync(alice);
    assert_eq!(s["balance"]["spendable"], 79900, "{s}");
    assert_eq!(s["balance"]["notes"], 2, "{s}");
    let s = sync(bob);
    assert_eq!(s["balance"]["spendable"], 14925, "{s}");
    let bal = balance(bob);
    assert_eq!(
        (&bal["outgoing"], &bal["incoming_change"]),
        (&0.into(), &0.into())
    );
    // The wallets recorded their transfers as proven.
    let st: Value =
        serde_json::from_str(&std::fs::read_to_string(bob_dir.join("wallet.json")).unwrap())
            .unwrap();
    let kinds: Vec<_> = st["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["kind"].as_str().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, vec![("send", "proven"), ("withdraw", "proven")]);

    // Download every batch and verify its proof with the verifier CLI.
    let files = tmp.path().join("batches");
    let files_s = files.to_str().unwrap();
    let vk_s = vk.to_str().unwrap();
    for n in 0..4u64 {
        let n_s = n.to_string();
        ok(&[
            "fetch-batch",
            "--node",
            &url,
            "--number",
            &n_s,
            "--vk",
            vk_s,
            "--out-dir",
            files_s,
        ]);
        let batch = files.join(format!("batch-{n}.json"));
        let proof = files.join(format!("proof-{n}.json"));
        let out = ok(&[
            "verify",
            "--vk",
            vk_s,
            "--batch",
            batch.to_str().unwrap(),
            "--proof",
            proof.to_str().unwrap(),
        ]);
        assert!(
            out.starts_with(&format!("valid: batch {n}, B=2, D=8")),
            "{out}"
        );
    }
    // The withdrawal is public: batch 3 pays 5 000 out with a non-zero destination.
    let b3: Value =
        serde_json::from_str(&std::fs::read_to_string(files.join("batch-3.json")).unwrap())
            .unwrap();
    assert_eq!(b3["transfers"][0]["public_out"], 5000);
    assert_eq!(b3["transfers"][0]["fee"], 25);
    assert_ne!(
        b3["transfers"][0]["dest"],
        "0x0000000000000000000000000000000000000000000000000000000000000000"
    );
    // A proof checked against another batch is refused (exit 2), not accepted.
    fails(&[
        "verify",
        "--vk",
        vk_s,
        "--batch",
        files.join("batch-2.json").to_str().unwrap(),
        "--proof",
        files.join("proof-3.json").to_str().unwrap(),
    ]);
    let err = fails(&[
        "fetch-batch",
        "--node",
        &url,
        "--number",
        "9",
        "--vk",
        vk_s,
        "--out-dir",
        files_s,
    ]);
    assert!(err.contains("batch_not_found"), "{err}");

    node.assert_running();
    drop(node);
    // With the node gone, the wallet fails with one line naming it.
    let err = fails(&["wallet", "--wallet", alice, "sync"]);
    assert!(
        err.contains("cannot reach the node at http://127.0.0.1:"),
        "{err}"
    );
    eprintln!(
        "wallet e2e: keys {:.1} s, four batches proven after {:.1} s, total {:.1} s",
        t_keys.as_secs_f64(),
        t_proven.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
