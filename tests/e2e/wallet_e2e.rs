//! End to end with the real `veil` binary: dev keys (B = 2, D = 8) from `veil setup`, a
//! `veil node` on a free loopback port, and then only the CLI: an operator deposit to Alice,
//! Alice pays Bob, Bob pays part back, Bob withdraws to a regtest Bitcoin address; every batch is
//! proven, both balances are exact after a sync, and every batch downloaded with
//! `veil fetch-batch` verifies with `veil verify`. The node is killed on exit, panics included.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{dev_keys, fails, ok, ok_json, start_node, NodeGuard, TOKEN};

const STEP_TIMEOUT: Duration = Duration::from_secs(120);
/// A BIP-173 regtest P2WPKH address.
const BTC_ADDRESS: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

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
    let keys = dev_keys("e2e-keys-seed1");
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
    // This node is not on Bitcoin: no peg-in address, and the wallet says why.
    let err = fails(&["wallet", "--wallet", alice, "deposit-address"]);
    assert!(err.contains("not on Bitcoin"), "{err}");
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
    // A retry (say, after a lost response) is the same transfer: same id, credited once.
    let deposit_args = |amount: &'static str| {
        [
            "deposit",
            "--node",
            &url,
            "--token",
            TOKEN,
            "--to",
            &alice_addr,
            "--amount",
            amount,
            "--outpoint",
            outpoint,
        ]
    };
    let retry = ok_json(&deposit_args("100000"));
    assert_eq!(retry["id"], d["id"], "{retry}");
    // Another deposit claiming the same outpoint is refused.
    let err = fails(&deposit_args("200000"));
    assert!(err.contains("duplicate_deposit"), "{err}");

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
