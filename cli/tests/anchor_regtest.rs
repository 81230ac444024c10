//! Bitcoin anchoring end to end: a real regtest Bitcoin Core (the verifier's harness,
//! `bitcoin/tests/support/bitcoind.rs`), the real `veil node` binary with anchoring configured
//! (B = 2, D = 8, dev-seed keys cached under the target dir), and the real `veil anchor status`
//! and `veil verify-chain` (the shared helpers are in `support/`; reorgs deeper than the watch
//! are in `anchor_deep_reorg.rs`).
//!
//! - every batch is anchored with the right payload, anchors spend each other in order from the
//!   genesis outpoint, transfers report `anchored`, and `veil verify-chain` exits 0; a tampered
//!   batch and a wrong anchor payload make it exit 1 naming the batch;
//! - Bitcoin Core down while batches are proven: the API and proving carry on, anchoring resumes
//!   when it returns, no batch is skipped or anchored twice; then a reorg (`invalidateblock`)
//!   that drops two anchors is noticed, reported as a reorg inside the watch (not deep), and both
//!   re-confirm without breaking the chain of spends;
//! - the node killed right after persisting a signed anchor (the `abort-after-persist`
//!   failpoint) broadcasts the same txid on restart; then a stuck anchor is fee-bumped (RBF) and
//!   the next anchor spends the replacement.
//!
//! Skipped, with a notice, only when no `bitcoind` is found (`VEIL_BITCOIND=/path/to/bitcoind`).

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Output;
use std::str::FromStr;
use std::time::{Duration, Instant};

use bitcoin::{Amount, OutPoint, Txid};
use serde_json::{json, Value};
use support::{check_anchor_chain, free_port, shape, text, veil, Chain, NodeProc, TIMEOUT};
use veil_bitcoin::payload::{AnchorPayloadAny, AnchorPayloadV2};
use veil_bitcoin::{build_anchor_tx, AnchorPayload, KeyKind, PrevOut};
use veil_fixtures::Scenario;

/// Serves fixed JSON bodies by path (a node that publishes doctored data).
fn serve_static(routes: HashMap<String, String>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let req = String::from_utf8_lossy(&buf);
            let path = req.split_whitespace().nth(1).unwrap_or("").to_owned();
            let (status, body) = match routes.get(&path) {
                Some(b) => ("200 OK", b.clone()),
                None => (
                    "404 Not Found",
                    json!({"error": {"code": "not_found", "message": "no such route"}}).to_string(),
                ),
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// The node's `/v1/state`, `/v1/batches/{n}` and first `/v1/notes` page bodies, by path.
fn snapshot(node: &NodeProc, n: u64) -> HashMap<String, Value> {
    let get = |p: &str| -> Value {
        reqwest::blocking::get(format!("{}{p}", node.url))
            .unwrap()
            .json()
            .unwrap()
    };
    let mut m = HashMap::new();
    m.insert("/v1/state".to_owned(), get("/v1/state"));
    for i in 0..n {
        let p = format!("/v1/batches/{i}");
        m.insert(p.clone(), get(&p));
    }
    let p = "/v1/notes?from=0&limit=1000";
    m.insert(p.to_owned(), get(p));
    m
}

fn render(m: &HashMap<String, Value>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
}

/// Asserts exit 1 and that every stdout line is `batch N: ...` with N in `batches`, each named.
fn assert_problems(out: &Output, batches: &[u64]) -> String {
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let mut named = Vec::new();
    for line in stdout.lines() {
        let n: u64 = line
            .strip_prefix("batch ")
            .and_then(|r| r.split(':').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a problem line: {line}"));
        assert!(batches.contains(&n), "unexpected problem: {line}");
        named.push(n);
    }
    for b in batches {
        assert!(named.contains(b), "batch {b} not named:\n{stdout}");
    }
    stdout
}

#[test]
fn every_batch_is_anchored_in_one_chain_and_verify_chain_checks_it() {
    let Some(chain) = Chain::start(
        "every_batch_is_anchored_in_one_chain_and_verify_chain_checks_it",
        KeyKind::P2tr,
    ) else {
        return;
    };
    let data = chain.tmp.path().join("node");
    let port = free_port();
    // Genesis and confirmations by flag, the rest from the file.
    let config = chain.config(&data, port, "fee_rate = 1\nbump_after_blocks = 100\n");
    let genesis = chain.genesis.to_string();
    let mut node = NodeProc::start(
        &config,
        port,
        &["--anchor-genesis", &genesis, "--anchor-confirmations", "1"],
        &[],
    );
    let mut sc = Scenario::new(shape(), 61);
    let alice = sc.new_key();
    let mut ids = Vec::new();
    for (i, v) in [500u64, 70, 9].into_iter().enumerate() {
        ids.push(node.deposit(&mut sc, &alice, v));
        // One batch per deposit; a block per poll confirms each anchor in turn.
        node.wait(
            &format!("batch {i} anchored"),
            || chain.mine(1),
            |n| n.anchored(i as u64),
        );
    }
    let txids = check_anchor_chain(&chain, &node, 3);
    for (i, id) in ids.iter().enumerate() {
        let s = node.client.transfer_status(id).unwrap();
        assert_eq!(s.status, "anchored", "{s:?}");
        assert_eq!(s.batch, Some(i as u64));
    }
    let v: Value = reqwest::blocking::get(format!("{}/v1/transfers/{}", node.url, ids[1]))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["txid"], txids[1].to_string());
    let metrics = node.metrics();
    assert!(metrics.contains("veil_anchored_height 3"), "{metrics}");
    assert!(metrics.contains("veil_anchor_signed_height 3"), "{metrics}");
    let status = node.post_anchor();
    assert_eq!(status["anchored_height"], 3);
    assert_eq!(status["anchors"].as_array().unwrap().len(), 3);
    assert_eq!(status["last_error"], Value::Null);
    // Every anchor paid about 1 sat/vB, as configured.
    for a in status["anchors"].as_array().unwrap() {
        assert_eq!(a["fee_sat"], a["vsize"], "{a}");
    }

    let out = veil(&["anchor", "status", "--node", &node.url]);
    assert!(out.status.success(), "{out:?}");
    let s = text(&out.stdout);
    assert!(s.starts_with("3 batches, 3 proven, 3 anchored"), "{s}");
    for (i, t) in txids.iter().enumerate() {
        assert!(s.contains(&format!("batch {i}: {t} anchored")), "{s}");
    }
    let out = veil(&["anchor", "status", "--node", &node.url, "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["batches"][2]["anchor"]["txid"], txids[2].to_string());

    let out = chain.verify_chain(&node.url, Some(&genesis));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let line = text(&out.stdout);
    assert!(line.starts_with("ok: 3 batches verified"), "{line}");
    assert!(line.contains(&genesis), "{line}");
    // Another genesis is a problem of batch 0.
    let other = OutPoint::new(chain.genesis.txid, 1).to_string();
    assert_problems(&chain.verify_chain(&node.url, Some(&other)), &[0]);

    // A node publishing batch 1 with batch 0's proof: its proof and anchor commitment fail.
    let honest = snapshot(&node, 3);
    let mut m = honest.clone();
    let proof0 = m["/v1/batches/0"]["proof"].clone();
    m.get_mut("/v1/batches/1").unwrap()["proof"] = proof0;
    let fake = serve_static(render(&m));
    let s = assert_problems(&chain.verify_chain(&fake, Some(&genesis)), &[1]);
    assert!(s.contains("does not verify"), "{s}");
    assert!(s.contains("proof commitment"), "{s}");
    // A doctored fee in batch 2's published data: its batch hash no longer matches.
    let mut m = honest.clone();
    m.get_mut("/v1/batches/2").unwrap()["public_data"][0]["fee"] = json!(1);
    let s = assert_problems(&chain.verify_chain(&serve_static(render(&m)), None), &[2]);
    assert!(s.contains("batch_hash"), "{s}");
    // Batch 1's first transfer published with its ciphertexts swapped: the spender signed others.
    let mut m = honest.clone();
    let start = m["/v1/batches/1"]["note_start"].as_u64().unwrap();
    let notes = m.get_mut("/v1/notes?from=0&limit=1000").unwrap()["notes"]
        .as_array_mut()
        .unwrap();
    let at = |p: u64| notes.iter().position(|n| n["position"] == p).unwrap();
    let (i, k) = (at(start), at(start + 1));
    let (a, b) = (
        notes[i]["ciphertext"].clone(),
        notes[k]["ciphertext"].clone(),
    );
    notes[i]["ciphertext"] = b;
    notes[k]["ciphertext"] = a;
    let s = assert_problems(&chain.verify_chain(&serve_static(render(&m)), None), &[1]);
    assert!(s.contains("not the ones its spender signed"), "{s}");
    // The same notes published with their rhos swapped: the recipients could not decrypt.
    let mut m = honest.clone();
    let notes = m.get_mut("/v1/notes?from=0&limit=1000").unwrap()["notes"]
        .as_array_mut()
        .unwrap();
    let at = |p: u64| notes.iter().position(|n| n["position"] == p).unwrap();
    let (i, k) = (at(start), at(start + 1));
    let (a, b) = (notes[i]["rho"].clone(), notes[k]["rho"].clone());
    notes[i]["rho"] = b;
    notes[k]["rho"] = a;
    let s = assert_problems(&chain.verify_chain(&serve_static(render(&m)), None), &[1]);
    assert!(s.contains("published rho is not H(nf_1, 1)"), "{s}");

    // A wrong anchor payload: a real transaction on Bitcoin, signed by the operator, committing
    // to another root for batch 2, which a node names as batch 2's anchor.
    let b2 = node.batch(2);
    let proof2 = hex::decode(b2.proof.as_deref().unwrap()).unwrap();
    let wrong = AnchorPayload::new(
        2,
        b2.public_inputs.new_state_root + veil_circuits::Fr::from(1u64),
        &proof2,
        &b2.public_inputs.batch_hash,
    )
    .unwrap();
    let last = chain.tx(&txids[2].to_string());
    let prev = PrevOut {
        outpoint: OutPoint::new(txids[2], 1),
        txout: last.tx.output[1].clone(),
    };
    let rate = bitcoin::FeeRate::from_sat_per_vb(2).unwrap();
    let forged = build_anchor_tx(&chain.key, &prev, &wrong, KeyKind::P2tr, rate).unwrap();
    node.assert_running();
    drop(node);
    chain
        .rt
        .block_on(chain.btc.rpc.send_raw_transaction(&forged.tx))
        .unwrap();
    chain.mine(1);
    let mut m = honest;
    let a2 = &mut m.get_mut("/v1/batches/2").unwrap()["anchor"];
    a2["txid"] = json!(forged.txid().to_string());
    a2["block_hash"] = Value::Null;
    let s = assert_problems(
        &chain.verify_chain(&serve_static(render(&m)), Some(&genesis)),
        &[2],
    );
    assert!(s.contains("commits to root"), "{s}");
    assert!(s.contains("chain of anchors is broken"), "{s}");
    assert!(forged.fee > Amount::ZERO);
}

#[test]
fn anchoring_resumes_after_bitcoind_outage_and_follows_a_reorg() {
    let Some(mut chain) = Chain::start(
        "anchoring_resumes_after_bitcoind_outage_and_follows_a_reorg",
        KeyKind::P2wpkh,
    ) else {
        return;
    };
    let data = chain.tmp.path().join("node");
    let port = free_port();
    let config = chain.config(
        &data,
        port,
        &format!(
            "key_kind = \"p2wpkh\"\nconfirmations = 1\nbump_after_blocks = 100\ngenesis = \"{}\"\n",
            chain.genesis
        ),
    );
    let mut node = NodeProc::start(&config, port, &[], &[]);
    let mut sc = Scenario::new(shape(), 62);
    let alice = sc.new_key();
    node.deposit(&mut sc, &alice, 100);
    node.wait("batch 0 anchored", || chain.mine(1), |n| n.anchored(0));

    // Bitcoin Core goes away; the node keeps accepting, sealing and proving.
    chain.rt.block_on(chain.btc.stop());
    node.deposit(&mut sc, &alice, 200);
    node.wait(
        "batch 1 proven",
        || {},
        |n| n.client.state().unwrap().proven_height >= 2,
    );
    node.deposit(&mut sc, &alice, 300);
    node.wait(
        "batch 2 proven",
        || {},
        |n| n.client.state().unwrap().proven_height == 3,
    );
    node.wait(
        "an anchoring error",
        || {},
        |n| n.post_anchor()["last_error"].is_string(),
    );
    let status = node.post_anchor();
    assert_eq!(status["signed_height"], 1, "{status}");
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{status}"
    );
    assert!(!node.metrics().contains("veil_anchor_errors_total 0\n"));
    assert!(node.batch(1).anchor.is_none());

    // It comes back: anchoring resumes, one anchor per batch, in order. A block is mined only
    // while a transaction waits in the mempool, so that the anchors stay inside the node's reorg
    // watch (`confirmations + REORG_WATCH` blocks) for the reorg below, however long the node
    // takes to retry and to prove.
    chain.rt.block_on(chain.btc.restart());
    for i in 1..3 {
        node.wait(
            &format!("batch {i} anchored"),
            || {
                if !chain.mempool().is_empty() {
                    chain.mine(1)
                }
            },
            |n| n.anchored(i),
        );
    }
    let txids = check_anchor_chain(&chain, &node, 3);
    for i in 0..3 {
        assert_eq!(node.batch(i).anchor.unwrap().versions.len(), 1);
    }
    // Bitcoin holds exactly one anchor per batch.
    let rpc = &chain.btc.rpc;
    let tip = chain.rt.block_on(rpc.get_block_count()).unwrap();
    let mut found: HashMap<u64, usize> = HashMap::new();
    for h in 102..=tip {
        let hash = chain.rt.block_on(rpc.get_block_hash(h)).unwrap();
        for tx in chain.rt.block_on(rpc.get_block(&hash)).unwrap().txdata {
            match AnchorPayloadAny::from_tx(&tx) {
                Ok(AnchorPayloadAny::V2(p)) => {
                    for b in p.first_batch..=p.last_batch() {
                        *found.entry(b).or_default() += 1;
                    }
                }
                Ok(AnchorPayloadAny::V1(p)) => *found.entry(p.batch_number).or_default() += 1,
                Err(_) => {}
            }
        }
    }
    assert_eq!(found, HashMap::from([(0, 1), (1, 1), (2, 1)]));

    // A reorg: the block holding anchor 1 (and every block after it) leaves the best chain.
    let anchor1 = chain.tx(&txids[1].to_string());
    assert!(
        anchor1.confirmations < 1 + veil_sequencer::anchoring::REORG_WATCH,
        "anchor 1 is buried past the reorg watch: {} confirmations",
        anchor1.confirmations
    );
    let stale = anchor1.blockhash.unwrap();
    chain.rt.block_on(rpc.invalidate_block(&stale)).unwrap();
    node.wait(
        "the reorg noticed",
        || {},
        |n| {
            let a1 = n.batch(1).anchor.unwrap();
            let a2 = n.batch(2).anchor.unwrap();
            // The report follows within the pass that saw them leave (also when the reorg
            // lands between that pass's check of the newest anchor and its refresh of each).
            a1.status == "unconfirmed"
                && a2.status == "unconfirmed"
                && n.post_anchor()["reorgs"]["seen"] == 1
        },
    );
    assert!(node.anchored(0));
    assert!(!node.metrics().contains("veil_anchor_reorgs_total 0\n"));
    assert!(node.metrics().contains("veil_anchor_deep_reorgs_total 0\n"));
    let reorgs = node.post_anchor()["reorgs"].clone();
    assert_eq!(reorgs["seen"], 1, "{reorgs}");
    assert_eq!(reorgs["deep"], 0, "{reorgs}");
    assert_eq!(reorgs["last"]["deep"], false, "{reorgs}");
    assert_eq!(reorgs["last"]["first_batch"], 1, "{reorgs}");
    assert_eq!(reorgs["last"]["last_batch"], 2, "{reorgs}");
    assert_eq!(reorgs["last"]["stale_block"], stale.to_string(), "{reorgs}");
    assert!(node.metrics().contains("veil_anchored_height 1\n"));
    let pool = chain.mempool();
    assert!(
        pool.contains(&txids[1]) && pool.contains(&txids[2]),
        "{pool:?}"
    );
    // A new branch confirms both again, same transactions, same chain of spends. (One package
    // covers both batches, so the same coinbase would rebuild the invalidated block itself.)
    let elsewhere = veil_bitcoin::OperatorKey::from_secret_bytes(&[0x33; 32])
        .unwrap()
        .address(KeyKind::P2wpkh, bitcoin::Network::Regtest);
    chain
        .rt
        .block_on(rpc.generate_to_address(1, &elsewhere))
        .unwrap();
    node.wait("re-confirmed", || {}, |n| n.anchored(1) && n.anchored(2));
    assert_eq!(check_anchor_chain(&chain, &node, 3), txids);
    assert_ne!(chain.tx(&txids[1].to_string()).blockhash.unwrap(), stale);
    let out = chain.verify_chain(&node.url, Some(&chain.genesis.to_string()));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn killed_after_signing_rebroadcasts_the_same_txid_and_stuck_anchors_are_bumped() {
    let Some(chain) = Chain::start(
        "killed_after_signing_rebroadcasts_the_same_txid_and_stuck_anchors_are_bumped",
        KeyKind::P2tr,
    ) else {
        return;
    };
    let data = chain.tmp.path().join("node");
    let port = free_port();
    let config = chain.config(
        &data,
        port,
        &format!(
            "fee_rate = 1\nconfirmations = 1\nbump_after_blocks = 1\ngenesis = \"{}\"\n",
            chain.genesis
        ),
    );
    // First life: dies right after persisting batch 0's signed anchor.
    let mut node = NodeProc::start(
        &config,
        port,
        &[],
        &[("VEIL_ANCHOR_FAILPOINT", "abort-after-persist")],
    );
    let mut sc = Scenario::new(shape(), 63);
    let alice = sc.new_key();
    node.deposit(&mut sc, &alice, 100);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = node.child().try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "node did not abort:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    assert!(node.log().contains("test failpoint"), "{}", node.log());
    drop(node);
    assert!(chain.mempool().is_empty(), "nothing was broadcast");
    let signed = {
        let store = veil_sequencer::store::Store::open(&data, shape()).unwrap();
        let rec = store.anchor(0).unwrap().expect("the anchor was persisted");
        assert_eq!(rec.status, veil_sequencer::store::AnchorStatus::Signed);
        assert_eq!(rec.versions.len(), 1);
        assert!(store.anchor(1).unwrap().is_none());
        veil_sequencer::node::txid_hex(&rec.versions[0].txid)
    };

    // Second life: the same transaction goes out.
    let mut node = NodeProc::start(&config, port, &[], &[]);
    let txid = Txid::from_str(&signed).unwrap();
    // The same package: its commit, then the anchor.
    node.wait(
        "re-broadcast",
        || {},
        |_| {
            let pool = chain.mempool();
            pool.len() == 2 && pool.contains(&txid)
        },
    );
    chain.mine(1);
    node.wait("batch 0 anchored", || {}, |n| n.anchored(0));
    let a0 = node.batch(0).anchor.unwrap();
    assert_eq!(a0.txid, signed);
    assert_eq!(a0.versions, vec![signed.clone()]);

    // A stuck anchor: blocks without it (generateblock with no transactions) until the node
    // bumps its fee; the replacement confirms and the next anchor spends it.
    node.deposit(&mut sc, &alice, 200);
    node.wait(
        "batch 1 broadcast",
        || {},
        |n| {
            n.client
                .batch(1)
                .ok()
                .and_then(|b| b.anchor)
                .is_some_and(|a| a.status == "unconfirmed")
        },
    );
    let a1 = node.batch(1).anchor.unwrap();
    let first = Txid::from_str(&a1.txid).unwrap();
    let commit1 = Txid::from_str(a1.commit_txid.as_deref().unwrap()).unwrap();
    let mut pool = chain.mempool();
    pool.sort();
    let mut want = vec![first, commit1];
    want.sort();
    assert_eq!(pool, want);
    let empty_block = || {
        let _: Value = chain
            .rt
            .block_on(chain.btc.rpc.call(
                "generateblock",
                vec![json!(chain.miner.to_string()), json!([])],
            ))
            .unwrap();
    };
    empty_block();
    node.wait(
        "fee bump",
        || {},
        |n| n.batch(1).anchor.unwrap().versions.len() == 2,
    );
    let a1 = node.batch(1).anchor.unwrap();
    let bumped = Txid::from_str(&a1.versions[1]).unwrap();
    assert_eq!(a1.versions[0], first.to_string());
    node.wait(
        "replacement in the mempool",
        || {},
        |_| {
            let pool = chain.mempool();
            pool.len() == 2 && pool.contains(&bumped) && pool.contains(&commit1)
        },
    );
    assert!(node.metrics().contains("veil_anchor_fee_bumps_total 1\n"));
    // The replaced version is gone; the replacement spends the same output.
    let gone = chain
        .rt
        .block_on(chain.btc.rpc.get_raw_transaction(&first))
        .unwrap();
    assert!(gone.is_none());
    // Only the anchor was re-signed: it reveals the same envelope of the same commit, which
    // spends batch 0's anchor change.
    let new = chain.tx(&bumped.to_string());
    let old_input = chain.tx(&commit1.to_string()).tx.input[0].previous_output;
    assert_eq!(old_input, OutPoint::new(txid, 1));
    assert_eq!(new.tx.input[0].previous_output.txid, commit1);
    assert_eq!(AnchorPayloadV2::from_tx(&new.tx).unwrap().first_batch, 1);
    chain.mine(1);
    node.wait("batch 1 anchored", || {}, |n| n.anchored(1));
    assert_eq!(node.batch(1).anchor.unwrap().txid, bumped.to_string());
    node.deposit(&mut sc, &alice, 300);
    node.wait("batch 2 anchored", || chain.mine(1), |n| n.anchored(2));
    let txids = check_anchor_chain(&chain, &node, 3);
    assert_eq!(txids, vec![txid, bumped, txids[2]]);
    let out = chain.verify_chain(&node.url, Some(&chain.genesis.to_string()));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}
