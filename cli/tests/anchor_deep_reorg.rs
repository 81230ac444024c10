//! Reorgs deeper than the anchorer's watch (`confirmations + REORG_WATCH` blocks), end to end
//! with a real regtest Bitcoin Core and the real `veil node` (helpers in `support/`).
//!
//! Bitcoin Core puts back into its mempool only the transactions of the 10 newest blocks an
//! `invalidateblock` disconnects, so invalidating a block buried under 10 or more blocks takes
//! the anchors in it out of both the best chain and the mempool, deterministically. The node
//! must notice (its newest anchor is watched at any depth), walk back to the anchors the reorg
//! took out, re-broadcast them in batch order, report the deep reorg, and anchor the next batch
//! on top of them; when the new chain spent an anchor's input otherwise, the re-broadcast is
//! refused and the node says why.
//!
//! A second test takes out only the block of a package's reveal (the anchor), not its commit:
//! `verify-chain --from-bitcoin` reports the commit left unrevealed, and the node, back up,
//! re-broadcasts the reveal alone.
//!
//! Skipped, with a notice, only when no `bitcoind` is found (`VEIL_BITCOIND=/path/to/bitcoind`).

mod support;

use std::str::FromStr;

use bitcoin::{FeeRate, OutPoint};
use serde_json::Value;
use support::{check_anchor_chain, free_port, shape, Chain, NodeProc};
use veil_bitcoin::{build_anchor_tx, AnchorPayload, KeyKind, PrevOut};
use veil_fixtures::Scenario;
use veil_sequencer::anchoring::REORG_WATCH;

/// Confirmations the node requires for `anchored`.
const CONFIRMATIONS: u64 = 1;
/// Blocks mined on top of the newest anchor before the reorg: its block is then the 12th that
/// `invalidateblock` disconnects, past the 10 whose transactions return to the mempool, and
/// buried past the watch (`CONFIRMATIONS + REORG_WATCH`).
const BURY: u64 = 11;

fn metric(node: &NodeProc, name: &str) -> u64 {
    let text = node.metrics();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn anchors_taken_out_by_a_reorg_past_the_watch_are_rebroadcast_and_the_chain_continues() {
    let Some(chain) = Chain::start(
        "anchors_taken_out_by_a_reorg_past_the_watch_are_rebroadcast_and_the_chain_continues",
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
            "fee_rate = 1\nconfirmations = {CONFIRMATIONS}\nbump_after_blocks = 100\n\
             genesis = \"{}\"\n",
            chain.genesis
        ),
    );
    let mut node = NodeProc::start(&config, port, &[], &[]);
    let mut sc = Scenario::new(shape(), 64);
    let alice = sc.new_key();
    let mine_if_waiting = || {
        if !chain.mempool().is_empty() {
            chain.mine(1)
        }
    };
    // Three batches, each anchor in its own block.
    for i in 0..3u64 {
        node.deposit(&mut sc, &alice, 100 + i);
        node.wait(&format!("batch {i} anchored"), mine_if_waiting, |n| {
            n.anchored(i)
        });
    }
    let txids = check_anchor_chain(&chain, &node, 3);
    let anchor = |n: &NodeProc, i: u64| n.batch(i).anchor.unwrap();
    let block0 = anchor(&node, 0).block_hash.unwrap();
    let stale = anchor(&node, 1).block_hash.unwrap();
    let h1 = anchor(&node, 1).block_height.unwrap();
    let h2 = anchor(&node, 2).block_height.unwrap();
    assert!(h1 < h2);

    // Bury them past the watch, and let the node see it.
    chain.mine(BURY);
    let tip = chain.tip();
    node.wait(
        "batch 2 buried past the watch",
        || {},
        |n| anchor(n, 2).confirmations >= CONFIRMATIONS + REORG_WATCH,
    );
    node.wait_for_pass_at(tip);
    assert_eq!(node.post_anchor()["reorgs"]["seen"], 0);
    // A commit and an anchor per package.
    assert_eq!(metric(&node, "veil_anchor_broadcasts_total"), 6);

    // The reorg: anchor 1's block and everything after it leave the best chain; anchors 1 and 2
    // are in neither the chain nor the mempool.
    chain.invalidate(&stale);
    assert_eq!(chain.tip(), h1 - 1);
    node.wait(
        "the deep reorg reported",
        || {},
        |n| {
            let r = &n.post_anchor()["reorgs"];
            r["deep"] == 1 && r["last"]["first_batch"] == 1
        },
    );
    let reorgs = node.post_anchor()["reorgs"].clone();
    assert_eq!(reorgs["seen"], 1, "{reorgs}");
    let last = &reorgs["last"];
    assert_eq!(last["deep"], true, "{reorgs}");
    assert_eq!(last["first_batch"], 1, "{reorgs}");
    assert_eq!(last["last_batch"], 2, "{reorgs}");
    let fork = h1 - 1;
    assert_eq!(last["fork_height"], fork, "{reorgs}");
    // Every block from anchor 1's to the tip the node saw before the reorg left the best chain
    // (polls while `invalidateblock` disconnects blocks one by one see a shorter chain; the
    // depth still counts from the tip before).
    let depth = tip - fork;
    assert_eq!(last["depth"], depth, "anchor 2 at {h2}: {reorgs}");
    assert_eq!(last["stale_block"], stale.as_str(), "{reorgs}");
    let log = node.log();
    // The last report (a pass during `invalidateblock` may have seen only anchor 2 gone first;
    // the report then grows to the same reorg going deeper).
    let warn = log
        .lines()
        .rfind(|l| l.contains("deep reorg"))
        .unwrap_or_else(|| panic!("no deep reorg warning:\n{log}"));
    assert!(
        warn.contains("WARN") && warn.contains("batches=1..=2"),
        "{warn}"
    );
    assert!(warn.contains(&format!("depth=Some({depth})")), "{warn}");
    assert_eq!(metric(&node, "veil_anchor_deep_reorgs_total"), 1);

    // Re-broadcast, byte for byte and in order: the same txids are back in the mempool, and
    // anchor 0 (still in the best chain) is left alone.
    node.wait(
        "anchors 1 and 2 re-broadcast",
        || {},
        |_| {
            // Both packages, commit and anchor each (under load a poll can land while a
            // re-broadcast made during `invalidateblock` is still being evicted).
            let pool = chain.mempool();
            pool.contains(&txids[1]) && pool.contains(&txids[2]) && pool.len() == 4
        },
    );
    // Four re-broadcasts at least (more if a pass during `invalidateblock` re-broadcast
    // package 2 while package 1 was still in a block).
    assert!(metric(&node, "veil_anchor_broadcasts_total") >= 10);
    assert_eq!(metric(&node, "veil_anchor_reorgs_total"), 2);
    assert!(node.anchored(0));
    assert_eq!(anchor(&node, 0).block_hash.unwrap(), block0);
    let log = node.log();
    for b in [1, 2] {
        assert!(
            log.lines().any(|l| l.contains("re-broadcasting")
                && l.contains(&format!("batch={b}"))
                && l.contains("after_reorg=true")),
            "batch {b} not re-broadcast after the reorg:\n{log}"
        );
    }
    chain.mine(1);
    node.wait(
        "anchors 1 and 2 confirmed again",
        || {},
        |n| n.anchored(1) && n.anchored(2),
    );
    assert_eq!(check_anchor_chain(&chain, &node, 3), txids);
    assert_ne!(anchor(&node, 1).block_hash.unwrap(), stale);

    // The next batch is anchored on top of the re-broadcast anchor 2.
    node.deposit(&mut sc, &alice, 200);
    node.wait("batch 3 anchored", mine_if_waiting, |n| n.anchored(3));
    let txids = check_anchor_chain(&chain, &node, 4);
    assert_eq!(node.post_anchor()["last_error"], Value::Null);
    chain.assert_chain_verifies(&node.url);

    // A second deep reorg, after which the output anchor 3 spends is gone: the new chain spends
    // anchor 2's change in another transaction (the operator key used elsewhere), at a fee that
    // also replaces anchor 3 if the node has re-broadcast it already.
    chain.mine(BURY);
    let tip = chain.tip();
    node.wait(
        "batch 3 buried past the watch",
        || {},
        |n| anchor(n, 3).confirmations == tip + 1 - anchor(n, 3).block_height.unwrap(),
    );
    let stale3 = anchor(&node, 3).block_hash.unwrap();
    chain.invalidate(&stale3);
    let b3 = node.batch(3);
    let proof3 = hex::decode(b3.proof.as_deref().unwrap()).unwrap();
    let other = AnchorPayload::new(
        3,
        b3.public_inputs.new_state_root + veil_circuits::Fr::from(1u64),
        &proof3,
        &b3.public_inputs.batch_hash,
    )
    .unwrap();
    let change2 = OutPoint::new(txids[2], 1);
    let prev = PrevOut {
        outpoint: change2,
        txout: chain.tx(&txids[2].to_string()).tx.output[1].clone(),
    };
    let rate = FeeRate::from_sat_per_vb(50).unwrap();
    let conflict = build_anchor_tx(&chain.key, &prev, &other, KeyKind::P2tr, rate).unwrap();
    chain
        .rt
        .block_on(chain.btc.rpc.send_raw_transaction(&conflict.tx))
        .unwrap();
    chain.mine(1);
    node.wait(
        "the refused re-broadcast reported",
        || {},
        |n| {
            n.post_anchor()["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("cannot be re-broadcast"))
        },
    );
    let status = node.post_anchor();
    let error = status["last_error"].as_str().unwrap();
    assert!(error.contains("anchor of batch 3"), "{error}");
    // The package's commit is what spends the reorged-away output.
    let commit3 = anchor(&node, 3).commit_txid.unwrap();
    assert!(error.contains(&commit3), "{error}");
    assert!(error.contains(&change2.to_string()), "{error}");
    assert!(error.contains("a reorg took it out"), "{error}");
    assert_eq!(anchor(&node, 3).status, "reorged");
    assert!(!node.anchored(3));
    let reorgs = &status["reorgs"];
    assert_eq!(reorgs["seen"], 2, "{reorgs}");
    assert_eq!(reorgs["deep"], 2, "{reorgs}");
    assert_eq!(reorgs["last"]["first_batch"], 3, "{reorgs}");
    assert_eq!(reorgs["last"]["last_batch"], 3, "{reorgs}");
    assert_eq!(reorgs["last"]["stale_block"], stale3.as_str(), "{reorgs}");
    assert_eq!(metric(&node, "veil_anchor_deep_reorgs_total"), 2);
    // Batches 0 to 2 are still anchored: the chain up to the refusal holds.
    assert!((0..3).all(|i| node.anchored(i)));
}

#[test]
fn a_reorg_that_drops_the_reveal_but_not_the_commit_is_reported_and_the_node_reveals_again() {
    let Some(chain) = Chain::start(
        "a_reorg_that_drops_the_reveal_but_not_the_commit_is_reported_and_the_node_reveals_again",
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
            "fee_rate = 1\nconfirmations = {CONFIRMATIONS}\nbump_after_blocks = 100\n\
             genesis = \"{}\"\n",
            chain.genesis
        ),
    );
    let mut node = NodeProc::start(&config, port, &[], &[]);
    let mut sc = Scenario::new(shape(), 65);
    let alice = sc.new_key();
    node.deposit(&mut sc, &alice, 100);
    node.wait(
        "batch 0's package in the mempool",
        || {},
        |n| {
            n.client
                .batch(0)
                .ok()
                .and_then(|b| b.anchor)
                .is_some_and(|a| a.status == "unconfirmed")
        },
    );
    let a = node.batch(0).anchor.unwrap();
    let commit = bitcoin::Txid::from_str(a.commit_txid.as_deref().unwrap()).unwrap();
    let reveal = bitcoin::Txid::from_str(&a.txid).unwrap();
    // The commit in one block, the anchor (its reveal) in the next.
    let commit_block = chain.mine_only(&[commit]);
    assert_eq!(chain.mempool(), vec![reveal]);
    chain.mine(1);
    node.wait("batch 0 anchored", || {}, |n| n.anchored(0));
    let reveal_block = node.batch(0).anchor.unwrap().block_hash.unwrap();
    assert_ne!(reveal_block, commit_block);
    assert_eq!(chain.verify_from_bitcoin().0, Some(0));

    // The node is down while a deep reorg takes out the reveal's block, not the commit's: the
    // reveal is in neither the best chain nor the mempool.
    drop(node);
    chain.mine(BURY);
    chain.invalidate(&reveal_block);
    assert!(chain.mempool().is_empty());
    assert_eq!(
        chain.tx(&commit.to_string()).blockhash.unwrap().to_string(),
        commit_block
    );
    let (code, out) = chain.verify_from_bitcoin();
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(
        out.trim(),
        format!(
            "batch 0: commit {commit} spends the chain of anchors but its envelope output(s) [0] \
             are not revealed in the best chain"
        )
    );

    // Back up, the node finds its anchor gone and re-broadcasts the reveal alone (the commit is
    // still confirmed); mined, the chain verifies again.
    let mut node = NodeProc::start(&config, port, &[], &[]);
    node.wait(
        "the reveal re-broadcast",
        || {},
        |_| chain.mempool() == vec![reveal],
    );
    // To another address: the same coinbase, parent and transactions within the same second
    // would make the very block `invalidateblock` marked invalid.
    let other = chain
        .key
        .address(KeyKind::P2wpkh, bitcoin::Network::Regtest);
    chain
        .rt
        .block_on(chain.btc.rpc.generate_to_address(1, &other))
        .unwrap();
    node.wait("batch 0 anchored again", || {}, |n| n.anchored(0));
    assert_ne!(
        node.batch(0).anchor.unwrap().block_hash.unwrap(),
        reveal_block
    );
    assert_eq!(check_anchor_chain(&chain, &node, 1), vec![reveal]);
    let (code, out) = chain.verify_from_bitcoin();
    assert_eq!(code, Some(0), "{out}");
}
