//! The bridge end to end (issue 15, `docs/bridge.md`): a real regtest Bitcoin Core, the real
//! `veil node` crediting peg-ins itself (attested deposits off) and the real `veil` wallets. The
//! Bitcoin user's wallet is the test's own key (`BtcUser`: the prebuilt Bitcoin Core has no
//! wallet), spending its coinbase with a BIP 341 key-path signature.
//!
//! The Bitcoin user sends BTC to Alice's deposit address. The block holding it is
//! reorged out before its confirmations: nothing is credited. Mined again, the node (armed to
//! abort right after crediting, before persisting) credits it after `k` blocks and dies; the
//! restarted node credits nothing more. Alice pays Bob privately; Bob withdraws to another
//! address of the Bitcoin user (what Bitcoin would not relay or pay for is refused first). After
//! the anchor confirms, Bitcoin Core's UTXO set (`scantxoutset`) holds exactly the withdrawal at
//! that address,
//! `veil wallet status` names the anchor that paid it, and `verify-chain --from-bitcoin`
//! (without `--allow-attested`) exits 0 reporting reserves = supply + the operator's float,
//! figures `GET /v1/bridge` shows too. Finally a reorg takes out the deposit's block and every
//! anchor after it: the credited deposit is reported (`reorged_after_credit`, a WARN line, a
//! metric) and the withdrawal's payment is gone with its anchor; mined again, the same anchors
//! pay the withdrawal exactly once and the audit is unchanged.
//!
//! Skipped, with a notice, only when no `bitcoind` is found (`VEIL_BITCOIND=/path/to/bitcoind`).

mod support;

use bitcoin::{Address, Network};
use serde_json::{json, Value};
use support::{free_port, get_json, ok_json, text, veil, BtcUser, Chain, NodeProc, TOKEN};
use veil_bitcoin::{KeyKind, OperatorKey};

/// Confirmations before a peg-in is credited.
const K: u64 = 3;

/// Runs `veil args`, expects a non-zero exit and one stderr line containing `code`.
fn run_refused(args: &[&str], code: &str) {
    let out = veil(args);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "veil {args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(code), "veil {args:?}: {err}");
}

fn rpc(chain: &Chain, method: &str, params: Vec<Value>) -> Value {
    chain
        .rt
        .block_on(chain.btc.rpc.call::<Value>(method, params))
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

fn sat(btc: &Value) -> u64 {
    (btc.as_f64().unwrap() * 1e8).round() as u64
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn spendable(wallet: &str) -> u64 {
    ok_json(&["wallet", "--wallet", wallet, "sync", "--json"]);
    ok_json(&["wallet", "--wallet", wallet, "balance", "--json"])["spendable"]
        .as_u64()
        .unwrap()
}

fn peg_ins(wallet: &str) -> Vec<Value> {
    ok_json(&["wallet", "--wallet", wallet, "status", "--json"])["deposits"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn btc_deposited_to_a_peg_in_address_is_paid_privately_and_withdrawn_to_bitcoin() {
    let test = "btc_deposited_to_a_peg_in_address_is_paid_privately_and_withdrawn_to_bitcoin";
    let Some(chain) = Chain::start(test, KeyKind::P2tr) else {
        return;
    };
    // The Bitcoin user, with a mature coin.
    let mut user = BtcUser::funded(&chain, 0x33);

    let data = chain.tmp.path().join("node");
    let port = free_port();
    let config = chain.config(
        &data,
        port,
        &format!(
            "fee_rate = 1\nbump_after_blocks = 100\nattested_deposits = false\n\
             deposit_confirmations = {K}\nwithdrawal_fee_rate = 2\n"
        ),
    );
    let genesis = chain.genesis.to_string();
    let node_args = [
        "--anchor-genesis",
        genesis.as_str(),
        "--anchor-confirmations",
        "1",
    ];
    let failpoint = [("VEIL_ANCHOR_FAILPOINT", "abort-after-credit")];
    let mut node = NodeProc::start(&config, port, &node_args, &failpoint);
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

    // The operator's word no longer credits anything on a node with the bridge.
    run_refused(
        &[
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
            "1111111111111111111111111111111111111111111111111111111111111111:0",
        ],
        "attested_deposits_disabled",
    );
    let bridge = get_json(&format!("{url}/v1/bridge"));
    assert_eq!(bridge["deposits"], "peg-in", "{bridge}");
    assert_eq!(bridge["deposit_confirmations"], K, "{bridge}");

    // Peg-in: the Bitcoin user pays Alice's deposit address.
    let peg_in = ok_json(&["wallet", "--wallet", alice, "deposit-address", "--json"])
        ["deposit_address"]
        .as_str()
        .unwrap()
        .to_owned();
    let peg_in: Address = peg_in.parse::<Address<_>>().unwrap().assume_checked();
    let deposit_txid = user.pay(&chain, &[(peg_in.script_pubkey(), 100_000)]);
    let first = chain.mine_only(&[deposit_txid]);
    let deposit_txid = deposit_txid.to_string();
    node.wait(
        "the peg-in seen",
        || {},
        |_| {
            peg_ins(alice)
                .first()
                .is_some_and(|d| d["status"] == "seen" && d["confirmations"] == 1)
        },
    );
    let out = veil(&["wallet", "--wallet", alice, "status"]);
    assert!(
        text(&out.stdout).contains(&format!("1/{K} confirmations")),
        "{}",
        text(&out.stdout)
    );

    // Reorged out before its confirmations: forgotten, not credited, while it is not mined.
    chain.invalidate(&first);
    for _ in 0..K + 1 {
        chain.mine_only(&[]);
    }
    let tip = chain.tip();
    node.wait_for_pass_at(tip);
    assert!(peg_ins(alice).is_empty(), "{:?}", peg_ins(alice));
    assert!(node
        .log()
        .contains("left the best chain before its confirmations"));

    // Mined again: credited after K blocks, by a node that aborts right after crediting.
    let first_credited_block = chain.mine_only(&[deposit_txid.parse().unwrap()]);
    chain.mine(K - 1);
    let status = node.child().wait().unwrap();
    assert!(!status.success(), "the failpoint aborts the node");
    assert!(node.log().contains("peg-in credited"), "{}", node.log());
    let mut node = NodeProc::start(&config, port, &node_args, &[]);
    node.wait("alice's deposit spendable", || {}, |_| spendable(alice) > 0);
    assert_eq!(spendable(alice), 100_000);
    let d = &peg_ins(alice)[0];
    assert_eq!(d["status"], "credited", "{d}");
    assert_eq!(
        d["outpoint"].as_str().unwrap().split(':').next(),
        Some(deposit_txid.as_str())
    );
    assert!(
        node.log().contains("peg-in was already credited"),
        "{}",
        node.log()
    );

    // Alice pays Bob privately.
    let pay = ok_json(&[
        "wallet", "--wallet", alice, "send", "--to", &bob_addr, "--amount", "60000", "--fee",
        "100", "--json",
    ]);
    let pay = pay["id"].as_str().unwrap().to_owned();
    node.wait(
        "the payment proven",
        || {},
        |_| {
            ok_json(&["wallet", "--wallet", alice, "status", &pay, "--json"])["status"] == "proven"
                || ok_json(&["wallet", "--wallet", alice, "status", &pay, "--json"])["status"]
                    == "anchored"
        },
    );
    node.wait("bob's note", || {}, |_| spendable(bob) == 60_000);

    // Peg-out: Bob withdraws to another address of the Bitcoin user (P2WPKH). What Bitcoin
    // would not relay, or a fee that does not pay the output, is refused first.
    let out_addr = OperatorKey::from_secret_bytes(&[0x44; 32])
        .unwrap()
        .address(KeyKind::P2wpkh, Network::Regtest)
        .to_string();
    let withdraw = |amount: &str, fee: &str| {
        vec![
            "wallet", "--wallet", bob, "withdraw", "--to", &out_addr, "--amount", amount, "--fee",
            fee, "--json",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    let dust = withdraw("100", "500");
    run_refused(&args(&dust), "withdrawal_dust");
    let cheap = withdraw("40000", "10");
    run_refused(&args(&cheap), "withdrawal_fee");
    // `withdraw --wait` returns once the anchor paying it is in a block, with its txid.
    let mut w = withdraw("40000", "500");
    w.push("--wait".into());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(&w)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    node.wait(
        "withdraw --wait to return",
        || chain.mine(1),
        |_| child.try_wait().unwrap().is_some(),
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["status"], "anchored", "{done}");
    let w_id = done["id"].as_str().unwrap().to_owned();
    let paid_by = done["txid"].as_str().unwrap().to_owned();
    let utxos = rpc(
        &chain,
        "scantxoutset",
        vec![json!("start"), json!([format!("addr({out_addr})")])],
    );
    assert_eq!(sat(&utxos["total_amount"]), 40_000, "{utxos}");
    assert_eq!(utxos["unspents"][0]["txid"], paid_by, "{utxos}");
    let anchor = chain.tx(&paid_by);
    assert!(anchor.confirmations >= 1);
    // The batch's public data names the script the withdrawal's dest is the hash of.
    let n = ok_json(&["wallet", "--wallet", bob, "status", &w_id, "--json"])["batch"]
        .as_u64()
        .unwrap();
    let batch = get_json(&format!("{url}/v1/batches/{n}"));
    let script: Address = out_addr.parse::<Address<_>>().unwrap().assume_checked();
    assert_eq!(
        batch["withdrawal_scripts"],
        json!([hex::encode(script.script_pubkey().as_bytes())]),
        "{batch}"
    );
    let out = veil(&["wallet", "--wallet", bob, "status", &w_id]);
    assert!(
        text(&out.stdout).contains(&paid_by),
        "{}",
        text(&out.stdout)
    );

    // Every batch anchored, then the audit from Bitcoin alone, without --allow-attested.
    let proven = node.client.state().unwrap().proven_height;
    node.wait(
        "every batch anchored",
        || chain.mine(1),
        |n| n.anchored(proven - 1),
    );
    let (code, out) = chain.verify_from_bitcoin_with(&[]);
    assert_eq!(code, Some(0), "{out}");
    let supply = 100_000 - 40_000 - 100 - 500;
    // The float: the genesis coinbase, less every package's Bitcoin fee, plus the L2 fees.
    let mut btc_fees = 0;
    let mut last_anchor = None;
    for n in 0..proven {
        let b = get_json(&format!("{url}/v1/batches/{n}"));
        let a = &b["anchor"];
        if a["first_batch"] == n {
            btc_fees += a["fee_sat"].as_u64().unwrap();
        }
        last_anchor = Some(a["txid"].as_str().unwrap().to_owned());
    }
    let float = 5_000_000_000 - btc_fees + 600;
    let reserves = supply + float;
    assert!(
        out.contains(&format!(
            "bridge: reserves {reserves} sat, shielded supply {supply} sat, surplus (operator \
             float) {float} sat; 1 peg-ins, 1 peg-outs"
        )),
        "{out}"
    );
    // The reserve is the last anchor's change, on Bitcoin.
    let last = chain.tx(&last_anchor.unwrap());
    assert_eq!(last.tx.output[1].value.to_sat(), reserves);
    let bridge = get_json(&format!("{url}/v1/bridge"));
    assert_eq!(bridge["reserves_sat"], reserves, "{bridge}");
    assert_eq!(bridge["supply_sat"], supply, "{bridge}");
    assert_eq!(bridge["swept_sat"], 100_000, "{bridge}");
    assert_eq!(bridge["paid_sat"], 40_000, "{bridge}");
    let metrics = node.metrics();
    assert!(
        metrics.contains(&format!("veil_bridge_reserves_sat {reserves}")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("veil_bridge_supply_sat {supply}")),
        "{metrics}"
    );

    // A reorg takes out the deposit's block and every block after it: the credited deposit and
    // every anchor, the one that paid the withdrawal too. While the new chain has none of them,
    // the credit is reported, not silently kept, and the payment is gone with its anchor.
    let paid = |chain: &Chain| {
        let u = rpc(
            chain,
            "scantxoutset",
            vec![json!("start"), json!([format!("addr({out_addr})")])],
        );
        (
            sat(&u["total_amount"]),
            u["unspents"].as_array().unwrap().len(),
        )
    };
    chain.invalidate(&first_credited_block);
    for _ in 0..3 {
        chain.mine_only(&[]);
    }
    let tip = chain.tip();
    node.wait_for_pass_at(tip);
    node.wait(
        "the reorged credit reported",
        || {},
        |_| peg_ins(alice)[0]["status"] == "reorged_after_credit",
    );
    assert!(node.log().contains("credited peg-in left the best chain"));
    assert!(node
        .metrics()
        .contains("veil_bridge_deposits_reorged_after_credit_total 1"));
    assert_eq!(paid(&chain), (0, 0));
    // The Bitcoin user's wallet re-broadcasts its deposit (Bitcoin Core does not put back what
    // `invalidateblock` disconnects); the node re-broadcasts its anchors.
    user.rebroadcast(&chain);
    // Mined again: the same deposit and the same anchors (same txids) confirm; the withdrawal
    // is paid exactly once, and the audit is what it was.
    node.wait(
        "the withdrawal paid again",
        || chain.mine(1),
        |_| paid(&chain).0 > 0,
    );
    node.wait(
        "every batch anchored again",
        || chain.mine(1),
        |n| n.anchored(proven - 1),
    );
    node.wait(
        "the deposit credited again",
        || {},
        |_| peg_ins(alice)[0]["status"] == "credited",
    );
    assert_eq!(paid(&chain), (40_000, 1));
    assert!(chain.tx(&paid_by).confirmations >= 1);
    let (code, again) = chain.verify_from_bitcoin_with(&[]);
    assert_eq!(code, Some(0), "{again}");
    assert_eq!(again.lines().nth(1), out.lines().nth(1), "{again}");
    assert_eq!(spendable(alice), 100_000 - 60_000 - 100);
}
