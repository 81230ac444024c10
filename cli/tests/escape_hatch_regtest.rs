//! The escape hatch end to end (issue 14): a real regtest Bitcoin Core, the real `veil node` with
//! anchoring (B = 2, D = 8, dev-seed keys) and the real wallets.
//!
//! Alice and Bob get deposits, Alice pays Bob, every batch is anchored. The node is killed and
//! its data directory deleted. `veil restore --from-bitcoin` (Bitcoin Core, the genesis outpoint
//! and the verifying key only) writes a new one; the node started on it serves the same state,
//! notes, paths and batches as before, the same `/v1/state` once its anchorer has looked at
//! Bitcoin. Bob, who never synced before, syncs from the restored node, finds both his notes and
//! spends one; the new batch is proven and anchored on the same chain of spends, and both
//! `verify-chain` modes exit 0. Restoring into a directory that is not empty is refused. On the
//! way, each wallet's peg-in address (`veil wallet deposit-address`) is checked against the bridge
//! key the node serves and the operator key.
//!
//! Skipped, with a notice, only when no `bitcoind` is found (`VEIL_BITCOIND=/path/to/bitcoind`).

mod support;

use std::path::Path;

use serde_json::Value;
use support::{check_anchor_chain, free_port, get_json, ok_json, text, Chain, NodeProc, TOKEN};
use veil_bitcoin::KeyKind;

/// Everything the read API serves about the history: state, every note, a path, every batch.
fn read_api(node: &NodeProc) -> (Value, Value, Vec<Value>, Vec<Value>) {
    let state = get_json(&format!("{}/v1/state", node.url));
    let notes = get_json(&format!("{}/v1/notes?from=0&limit=1000", node.url));
    let count = state["note_count"].as_u64().unwrap();
    let paths = (0..count)
        .step_by(3)
        .map(|p| get_json(&format!("{}/v1/notes/{p}/path", node.url)))
        .collect();
    let batches = (0..state["batch_height"].as_u64().unwrap())
        .map(|n| {
            let mut b = get_json(&format!("{}/v1/batches/{n}", node.url));
            // All but the confirmations, which grow as blocks are mined.
            b["anchor"]["confirmations"] = Value::Null;
            b
        })
        .collect();
    (state, notes, paths, batches)
}

fn restore(chain: &Chain, data: &Path) -> std::process::Output {
    chain.veil_from_bitcoin(&[
        "restore",
        "--from-bitcoin",
        "--data-dir",
        data.to_str().unwrap(),
        "--json",
    ])
}

fn wait_status(node: &mut NodeProc, wallet: &str, id: &str, want: &str) {
    node.wait(
        &format!("transfer {id} {want}"),
        || {},
        |_| ok_json(&["wallet", "--wallet", wallet, "status", id, "--json"])["status"] == want,
    );
}

#[test]
fn a_node_restored_from_bitcoin_alone_serves_the_same_state_and_continues_the_chain() {
    let Some(chain) = Chain::start(
        "a_node_restored_from_bitcoin_alone_serves_the_same_state_and_continues_the_chain",
        KeyKind::P2tr,
    ) else {
        return;
    };
    let data = chain.tmp.path().join("node");
    let port = free_port();
    let config = chain.config(&data, port, "fee_rate = 1\nbump_after_blocks = 100\n");
    let genesis = chain.genesis.to_string();
    let node_args = [
        "--anchor-genesis",
        genesis.as_str(),
        "--anchor-confirmations",
        "1",
    ];
    let mut node = NodeProc::start(&config, port, &node_args, &[]);
    let url = node.url.clone();
    let alice_dir = chain.tmp.path().join("alice");
    let bob_dir = chain.tmp.path().join("bob");
    let (alice, bob) = (alice_dir.to_str().unwrap(), bob_dir.to_str().unwrap());
    let alice_addr = ok_json(&["wallet", "--wallet", alice, "--node", &url, "new", "--json"])
        ["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_addr = ok_json(&["wallet", "--wallet", bob, "--node", &url, "new", "--json"])
        ["address"]
        .as_str()
        .unwrap()
        .to_owned();
    // The peg-in address: derived by the wallet from the bridge key the node serves, it is the
    // operator key tweaked by a commitment to Alice's payment address (docs/bridge.md).
    let bridge = get_json(&format!("{url}/v1/bridge"));
    assert_eq!(bridge["bitcoin"], true, "{bridge}");
    assert_eq!(bridge["network"], "regtest", "{bridge}");
    let bridge_key = chain.key.internal_key();
    assert_eq!(
        bridge["bridge_key"],
        hex::encode(bridge_key.serialize()),
        "{bridge}"
    );
    let peg_in = ok_json(&["wallet", "--wallet", alice, "deposit-address", "--json"]);
    let alice_pa = veil_circuits::keys::PaymentAddress::decode(
        &alice_addr,
        veil_circuits::keys::Network::Regtest,
    )
    .unwrap();
    let want =
        veil_bitcoin::bridge::deposit_address(&bridge_key, &alice_pa, bitcoin::Network::Regtest)
            .unwrap();
    assert_eq!(peg_in["deposit_address"], want.to_string(), "{peg_in}");
    let bob_peg_in = ok_json(&["wallet", "--wallet", bob, "deposit-address", "--json"]);
    assert_ne!(bob_peg_in["deposit_address"], peg_in["deposit_address"]);
    let deposit = |to: &str, amount: &str, outpoint: &str| {
        ok_json(&[
            "deposit",
            "--node",
            &url,
            "--token",
            TOKEN,
            "--to",
            to,
            "--amount",
            amount,
            "--outpoint",
            outpoint,
            "--json",
        ])["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let d1 = deposit(
        &alice_addr,
        "100000",
        "1111111111111111111111111111111111111111111111111111111111111111:0",
    );
    let d2 = deposit(
        &bob_addr,
        "50000",
        "2222222222222222222222222222222222222222222222222222222222222222:1",
    );
    wait_status(&mut node, alice, &d1, "proven");
    wait_status(&mut node, bob, &d2, "proven");
    ok_json(&["wallet", "--wallet", alice, "sync", "--json"]);
    let pay = ok_json(&[
        "wallet", "--wallet", alice, "send", "--to", &bob_addr, "--amount", "30000", "--fee",
        "100", "--json",
    ])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_status(&mut node, alice, &pay, "proven");
    let proven = node.client.state().unwrap().proven_height;
    node.wait(
        "every batch anchored",
        || chain.mine(1),
        |n| n.anchored(proven - 1),
    );
    node.wait(
        "anchored height",
        || {},
        |n| n.client.state().unwrap().anchored_height == Some(proven),
    );
    let before = read_api(&node);
    let pay_status = ok_json(&["wallet", "--wallet", alice, "status", &pay, "--json"]);

    // The operator vanishes, and its data with it.
    drop(node);
    std::fs::remove_dir_all(&data).unwrap();

    // Restoring refuses a directory that holds something, and writes nothing there.
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("keep"), b"x").unwrap();
    let out = restore(&chain, &data);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is not empty"), "{err}");
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 1);
    std::fs::remove_dir_all(&data).unwrap();

    let out = restore(&chain, &data);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["batches"], proven, "{r}");
    assert_eq!(
        r["anchors"],
        before
            .3
            .iter()
            .filter(|b| b["anchor"]["first_batch"] == b["number"])
            .count(),
        "{r}"
    );
    assert_eq!(r["state_root"], before.0["state_root"], "{r}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    // The node on the restored directory, with the operator key, as before.
    let mut node = NodeProc::start(&config, port, &node_args, &[]);
    node.wait(
        "the restored anchors checked on Bitcoin",
        || {},
        |n| n.client.state().unwrap().anchored_height == Some(proven),
    );
    let after = read_api(&node);
    assert_eq!(after.0, before.0, "/v1/state");
    assert_eq!(after.1, before.1, "/v1/notes");
    assert_eq!(after.2, before.2, "paths");
    for (a, b) in after.3.iter().zip(&before.3) {
        // Transfer ids are recomputed from the public data: the same ids.
        assert_eq!(a["transfers"], b["transfers"]);
        assert_eq!(a, b, "batch");
    }
    // A transfer of a restored batch is still known by its id.
    let status = ok_json(&["wallet", "--wallet", alice, "status", &pay, "--json"]);
    assert_eq!(status["status"], pay_status["status"], "{status}");

    // Bob never synced: everything he owns is found through the restored node.
    let s = ok_json(&["wallet", "--wallet", bob, "sync", "--json"]);
    let found: Vec<u64> = s["sync"]["found"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f[1].as_u64().unwrap())
        .collect();
    assert_eq!(found.len(), 2, "{s}");
    assert_eq!(found.iter().sum::<u64>(), 80000, "{s}");
    let back = ok_json(&[
        "wallet",
        "--wallet",
        bob,
        "send",
        "--to",
        &alice_addr,
        "--amount",
        "60000",
        "--fee",
        "50",
        "--json",
    ])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_status(&mut node, bob, &back, "proven");
    let now = node.client.state().unwrap().proven_height;
    assert_eq!(now, proven + 1);
    node.wait(
        "the new batch anchored",
        || chain.mine(1),
        |n| n.anchored(now - 1),
    );
    // One chain of spends from the genesis outpoint through the restored anchors to the new one.
    check_anchor_chain(&chain, &node, now);
    ok_json(&["wallet", "--wallet", alice, "sync", "--json"]);
    let bal = ok_json(&["wallet", "--wallet", alice, "balance", "--json"]);
    assert_eq!(bal["spendable"], 100000 - 30000 - 100 + 60000, "{bal}");
    chain.assert_chain_verifies(&node.url);
    let (code, stdout) = chain.verify_from_bitcoin();
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.starts_with(&format!("ok: {now} batches (")),
        "{stdout}"
    );
}
