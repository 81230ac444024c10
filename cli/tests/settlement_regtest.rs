//! Settlement on Bitcoin end to end (issue 14): a real regtest Bitcoin Core, the real `veil node`
//! with anchoring (B = 2, D = 8, dev-seed keys) and the real `veil verify-chain`, in both modes.
//!
//! - Nine batches are proven while no block is mined: the first is anchored at once, the other
//!   eight wait for it to confirm and then go into ONE anchor, whose envelope carries their data.
//!   `verify-chain` against the node and `verify-chain --from-bitcoin` (Bitcoin, the genesis
//!   outpoint and the verifying key only) both exit 0.
//! - Then, with the node stopped, the operator key signs what an operator gone bad could put on
//!   Bitcoin: an anchor whose envelope carries batch 9's real data while its payload commits to
//!   other data, then a commit whose envelope is never revealed. `--from-bitcoin` exits 1 with one
//!   precise line for each.
//!
//! Skipped, with a notice, only when no `bitcoind` is found (`VEIL_BITCOIND=/path/to/bitcoind`).

mod support;

use bitcoin::OutPoint;
use support::{check_anchor_chain, free_port, shape, Chain, NodeProc};
use veil_bitcoin::package::build_anchor_package;
use veil_bitcoin::payload::AnchorPayloadV2;
use veil_bitcoin::tx::CHANGE_VOUT;
use veil_bitcoin::{proof_commitment, KeyKind, PrevOut};
use veil_fixtures::Scenario;
use veil_verifier::da::{AnchorData, BatchData, TransferData};
use veil_wallet::NodeClient;

/// Batch `n`'s data as the node publishes it, encoded as it goes on Bitcoin, with its proof
/// commitment and new state root.
fn node_batch_data(client: &NodeClient, n: u64) -> (BatchData, [u8; 32], veil_circuits::Fr) {
    let b = client.batch(n).unwrap();
    let start = b.note_start.unwrap();
    let notes = client.notes(start, 2 * b.public_data.len()).unwrap().notes;
    let transfers = b
        .public_data
        .iter()
        .enumerate()
        .map(|(s, public)| TransferData {
            public: *public,
            ciphertexts: [
                hex::decode(&notes[2 * s].ciphertext).unwrap(),
                hex::decode(&notes[2 * s + 1].ciphertext).unwrap(),
            ],
        })
        .collect();
    let proof = hex::decode(b.proof.unwrap()).unwrap();
    let pc = proof_commitment(&proof, &b.public_inputs.batch_hash).unwrap();
    (
        BatchData {
            proof: proof.try_into().unwrap(),
            transfers,
        },
        pc,
        b.public_inputs.new_state_root,
    )
}

#[test]
fn batches_proven_within_a_block_share_one_anchor_and_bitcoin_alone_verifies_them() {
    let Some(chain) = Chain::start(
        "batches_proven_within_a_block_share_one_anchor_and_bitcoin_alone_verifies_them",
        KeyKind::P2tr,
    ) else {
        return;
    };
    let data = chain.tmp.path().join("node");
    let port = free_port();
    let config = chain.config(&data, port, "fee_rate = 1\nbump_after_blocks = 100\n");
    let genesis = chain.genesis.to_string();
    let mut node = NodeProc::start(
        &config,
        port,
        &["--anchor-genesis", &genesis, "--anchor-confirmations", "1"],
        &[],
    );
    let mut sc = Scenario::new(shape(), 71);
    let alice = sc.new_key();
    node.deposit(&mut sc, &alice, 1000);
    node.wait(
        "batch 0's anchor in the mempool",
        || {},
        |n| {
            n.client
                .batch(0)
                .ok()
                .and_then(|b| b.anchor)
                .is_some_and(|a| a.status == "unconfirmed")
        },
    );
    // Eight more batches (two deposits each) while no block is mined.
    let start_tip = chain.tip();
    for i in 0..16u64 {
        node.deposit(&mut sc, &alice, 10 + i);
    }
    node.wait(
        "every deposit in a proven batch",
        || {},
        |n| {
            let s = n.client.state().unwrap();
            s.mempool_size == 0 && s.proven_height == s.batch_height && s.proven_height >= 9
        },
    );
    assert_eq!(chain.tip(), start_tip, "no block was mined while proving");
    let proven = node.client.state().unwrap().proven_height;
    // One block confirms batch 0's anchor; the next pass anchors every batch since in one.
    chain.mine(1);
    node.wait(
        "one anchor for batches 1 and on",
        || {},
        |n| n.batch(proven - 1).anchor.is_some(),
    );
    chain.mine(1);
    node.wait("the range anchored", || {}, |n| n.anchored(proven - 1));
    let a1 = node.batch(1).anchor.unwrap();
    assert_eq!(a1.first_batch, Some(1));
    assert_eq!(a1.last_batch, Some(proven - 1));
    assert!(
        proven > 8,
        "{proven} batches proven: eight or more share the second anchor"
    );
    let txids = check_anchor_chain(&chain, &node, proven);
    assert!(txids[1..].iter().all(|t| *t == txids[1]));
    assert_ne!(txids[0], txids[1]);
    let status = node.post_anchor();
    assert_eq!(status["anchors"].as_array().unwrap().len(), 2);
    assert_eq!(status["anchored_height"], proven);

    chain.assert_chain_verifies(&node.url);
    let (code, out) = chain.verify_from_bitcoin();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with(&format!("ok: {proven} batches (")), "{out}");
    assert!(out.contains("in 2 anchors"), "{out}");

    // Batch `proven` is proven by the node restarted without anchoring: what follows is signed
    // by the test with the operator key.
    drop(node);
    let toml = std::fs::read_to_string(&config).unwrap();
    let plain = data.with_extension("plain.toml");
    std::fs::write(&plain, &toml[..toml.find("[anchor]").unwrap()]).unwrap();
    let mut node = NodeProc::start(&plain, port, &[], &[]);
    node.deposit(&mut sc, &alice, 5);
    node.deposit(&mut sc, &alice, 6);
    node.wait(
        "one more proven batch",
        || {},
        |n| {
            let s = n.client.state().unwrap();
            s.mempool_size == 0 && s.proven_height == s.batch_height && s.proven_height > proven
        },
    );
    let next = proven;
    let (batch, pc, root) = node_batch_data(&node.client, next);
    let last_anchor = chain.tx(&txids[txids.len() - 1].to_string());
    drop(node);
    let honest = AnchorData {
        batch_size: shape().batch_size as u64,
        first_batch: next,
        batches: vec![batch],
    };
    let carried = honest.encode().unwrap();
    // The payload commits to other data than the envelope carries.
    let mut other_hash = honest.data_hash().unwrap();
    other_hash[31] ^= 1;
    let payload = AnchorPayloadV2::new(next, root, &other_hash, &[pc]).unwrap();
    let prev = PrevOut {
        outpoint: OutPoint::new(last_anchor.tx.compute_txid(), CHANGE_VOUT),
        txout: last_anchor.tx.output[CHANGE_VOUT as usize].clone(),
    };
    let rate = bitcoin::FeeRate::from_sat_per_vb(2).unwrap();
    let forged =
        build_anchor_package(&chain.key, &prev, &payload, &carried, KeyKind::P2tr, rate).unwrap();
    for tx in forged.transactions() {
        chain
            .rt
            .block_on(chain.btc.rpc.send_raw_transaction(tx))
            .unwrap();
    }
    chain.mine(1);
    let (code, out) = chain.verify_from_bitcoin();
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with(&format!("batch {next}: anchor {}", forged.anchor_txid())),
        "{out}"
    );
    assert!(
        out.contains("does not match the anchor's range commitment"),
        "{out}"
    );

    // A commit that spends the forged anchor's change, whose envelope is never revealed.
    let payload = AnchorPayloadV2::new(next + 1, root, &other_hash, &[pc]).unwrap();
    let dangling = build_anchor_package(
        &chain.key,
        &forged.change(),
        &payload,
        &carried,
        KeyKind::P2tr,
        rate,
    )
    .unwrap();
    chain
        .rt
        .block_on(chain.btc.rpc.send_raw_transaction(&dangling.commit))
        .unwrap();
    chain.mine(1);
    let (code, out) = chain.verify_from_bitcoin();
    assert_eq!(code, Some(1), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[1].starts_with(&format!(
            "batch {}: commit {} spends the chain of anchors but its envelope output(s) [0] are not revealed",
            next + 1,
            dangling.commit.compute_txid()
        )),
        "{out}"
    );
}
