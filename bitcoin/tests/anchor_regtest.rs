//! Anchoring against a real regtest Bitcoin Core (`support/bitcoind.rs`): a chain of anchors
//! funded from a coinbase, each checked by `testmempoolaccept`, broadcast, mined and read back
//! from the chain; an RBF fee bump; and an anchor surviving a reorg. Skipped, with a notice,
//! only when no `bitcoind` is found (`VEIL_BITCOIND=/path/to/bitcoind` makes it run).

mod support;

use ark_bn254::Fr;
use bitcoin::{Amount, BlockHash, FeeRate, Network, OutPoint, Transaction, Txid};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use support::bitcoind::Bitcoind;
use veil_bitcoin::rpc::BitcoinRpc;
use veil_bitcoin::tx::CHANGE_VOUT;
use veil_bitcoin::{
    build_anchor_tx, AnchorPayload, AnchorTx, FeePolicy, KeyKind, OperatorKey, PrevOut, RpcError,
};

fn rate(sat_vb: u64) -> FeeRate {
    FeeRate::from_sat_per_vb(sat_vb).unwrap()
}

/// A payload over random proof bytes and field elements: Bitcoin treats it as opaque data.
fn random_payload(rng: &mut ChaCha20Rng, n: u64) -> (AnchorPayload, Vec<u8>, Fr) {
    let mut proof = vec![0u8; 128];
    rng.fill_bytes(&mut proof);
    let root = Fr::from(rng.next_u64());
    let batch_hash = Fr::from(rng.next_u64());
    let payload = AnchorPayload::new(n, root, &proof, &batch_hash).unwrap();
    (payload, proof, batch_hash)
}

/// Mines 101 blocks to the operator (coinbase of block 1 becomes spendable) and returns that
/// coinbase output as the genesis outpoint of the anchor chain.
async fn fund_operator(rpc: &BitcoinRpc, key: &OperatorKey, kind: KeyKind) -> PrevOut {
    let addr = key.address(kind, Network::Regtest);
    let hashes = rpc.generate_to_address(101, &addr).await.unwrap();
    assert_eq!(hashes.len(), 101);
    assert_eq!(rpc.get_block_count().await.unwrap(), 101);
    let block = rpc.get_block(&hashes[0]).await.unwrap();
    let coinbase = &block.txdata[0];
    assert!(coinbase.is_coinbase());
    let outpoint = OutPoint::new(coinbase.compute_txid(), 0);
    let utxo = rpc.get_tx_out(&outpoint, true).await.unwrap().unwrap();
    assert!(utxo.coinbase);
    assert_eq!(utxo.confirmations, 101);
    assert_eq!(utxo.script_pubkey, key.script_pubkey(kind));
    assert_eq!(utxo.value, Amount::from_btc(50.0).unwrap());
    PrevOut {
        outpoint,
        txout: coinbase.output[0].clone(),
    }
}

/// `testmempoolaccept` must agree with our vsize and fee before `sendrawtransaction`.
async fn accept_and_send(rpc: &BitcoinRpc, anchor: &AnchorTx) -> Txid {
    let accept = rpc.ensure_mempool_accepts(&anchor.tx).await.unwrap();
    assert_eq!(accept.txid, anchor.txid());
    assert_eq!(accept.vsize, Some(anchor.vsize()));
    assert_eq!(accept.fee, Some(anchor.fee));
    let txid = rpc.send_raw_transaction(&anchor.tx).await.unwrap();
    assert_eq!(txid, anchor.txid());
    txid
}

/// Mines one block to an address that is not the operator's and returns its hash.
async fn mine_one(rpc: &BitcoinRpc, miner: &OperatorKey) -> BlockHash {
    let addr = miner.address(KeyKind::P2tr, Network::Regtest);
    rpc.generate_to_address(1, &addr).await.unwrap()[0]
}

/// The fee of a confirmed transaction from chain data alone: inputs (looked up) minus outputs.
async fn fee_on_chain(rpc: &BitcoinRpc, tx: &Transaction) -> Amount {
    let mut inputs = Amount::ZERO;
    for input in &tx.input {
        let prev = rpc
            .get_raw_transaction(&input.previous_output.txid)
            .await
            .unwrap()
            .expect("txindex knows the spent transaction");
        inputs += prev.tx.output[input.previous_output.vout as usize].value;
    }
    inputs - tx.output.iter().map(|o| o.value).sum::<Amount>()
}

#[tokio::test]
async fn anchor_chain_is_accepted_mined_and_readable() {
    let Some(node) = Bitcoind::start_or_skip("anchor_chain_is_accepted_mined_and_readable").await
    else {
        return;
    };
    let rpc = &node.rpc;
    rpc.check_chain(Network::Regtest).await.unwrap();
    assert!(matches!(
        rpc.check_chain(Network::Signet).await,
        Err(RpcError::WrongChain { .. })
    ));
    // A fresh regtest chain has no fee estimate: the policy falls back, clamped to >= 1 sat/vB.
    assert_eq!(rpc.estimate_smart_fee(6).await.unwrap(), None);
    let policy = FeePolicy::Estimate {
        conf_target: 6,
        fallback: rate(3),
    };
    assert_eq!(policy.fee_rate(rpc).await.unwrap(), rate(3));
    let too_low = FeePolicy::Fixed(FeeRate::from_sat_per_kwu(100));
    assert_eq!(too_low.fee_rate(rpc).await.unwrap(), rate(1));

    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let key = OperatorKey::generate(&mut rng);
    let miner = OperatorKey::generate(&mut rng);
    let genesis = fund_operator(rpc, &key, KeyKind::P2tr).await;

    // Three anchors; the change kinds exercise both signers in Core: P2TR -> P2WPKH -> P2TR.
    let plan = [
        (KeyKind::P2wpkh, 1u64),
        (KeyKind::P2tr, 10),
        (KeyKind::P2tr, 1),
    ];
    let mut prev = genesis.clone();
    let mut sent = Vec::new();
    for (i, (change_kind, sat_vb)) in plan.into_iter().enumerate() {
        let n = i as u64 + 1;
        let (payload, proof, batch_hash) = random_payload(&mut rng, n);
        let anchor = build_anchor_tx(&key, &prev, &payload, change_kind, rate(sat_vb)).unwrap();
        let txid = accept_and_send(rpc, &anchor).await;
        assert!(rpc.get_raw_mempool().await.unwrap().contains(&txid));
        let block_hash = mine_one(rpc, &miner).await;
        println!(
            "anchor {n}: input {} change {change_kind} at {sat_vb} sat/vB: vsize {} vB, fee {} sat \
             ({:.2} sat/vB; {:.2} sat per transfer at B = 16), txid {txid}",
            key.kind_of(&prev.txout.script_pubkey).unwrap(),
            anchor.vsize(),
            anchor.fee.to_sat(),
            anchor.sat_per_vb(),
            anchor.fee.to_sat() as f64 / 16.0
        );

        // Read it back from the chain.
        let block = rpc.get_block(&block_hash).await.unwrap();
        assert!(block.txdata.iter().any(|t| t.compute_txid() == txid));
        let on_chain = rpc.get_raw_transaction(&txid).await.unwrap().unwrap();
        assert_eq!(on_chain.blockhash, Some(block_hash));
        assert_eq!(on_chain.confirmations, 1);
        let decoded = AnchorPayload::from_tx(&on_chain.tx).unwrap();
        assert_eq!(decoded, payload);
        assert_eq!(on_chain.tx.output[0].script_pubkey, payload.script_pubkey());
        assert!(decoded.commits_to(&proof, &batch_hash));
        assert_eq!(on_chain.tx.input.len(), 1);
        assert_eq!(on_chain.tx.input[0].previous_output, prev.outpoint);
        assert_eq!(fee_on_chain(rpc, &on_chain.tx).await, anchor.fee);
        // The spent output is gone, the change is the new tip of the anchor chain.
        assert!(rpc
            .get_tx_out(&prev.outpoint, true)
            .await
            .unwrap()
            .is_none());
        let change = OutPoint::new(txid, CHANGE_VOUT);
        let utxo = rpc.get_tx_out(&change, true).await.unwrap().unwrap();
        assert_eq!(utxo.value, prev.txout.value - anchor.fee);
        assert_eq!(utxo.script_pubkey, key.script_pubkey(change_kind));
        prev = anchor.change();
        sent.push(on_chain.tx);
    }

    // Walk the chain back from the last anchor to the genesis outpoint using chain data only.
    let mut cursor = sent.last().unwrap().clone();
    let mut seen = vec![AnchorPayload::from_tx(&cursor).unwrap().batch_number];
    loop {
        let spent = cursor.input[0].previous_output;
        if spent == genesis.outpoint {
            break;
        }
        assert_eq!(spent.vout, CHANGE_VOUT);
        cursor = rpc
            .get_raw_transaction(&spent.txid)
            .await
            .unwrap()
            .unwrap()
            .tx;
        seen.push(AnchorPayload::from_tx(&cursor).unwrap().batch_number);
    }
    assert_eq!(seen, vec![3, 2, 1]);

    // A double spend of an already-spent change is refused with a typed error.
    let (payload, _, _) = random_payload(&mut rng, 3);
    let stale = PrevOut {
        outpoint: OutPoint::new(sent[1].compute_txid(), CHANGE_VOUT),
        txout: sent[1].output[CHANGE_VOUT as usize].clone(),
    };
    let fork = build_anchor_tx(&key, &stale, &payload, KeyKind::P2tr, rate(1)).unwrap();
    let accept = rpc.test_mempool_accept(&fork.tx).await.unwrap();
    assert!(!accept.allowed);
    assert!(matches!(
        rpc.send_raw_transaction(&fork.tx).await,
        Err(RpcError::Rejected { .. })
    ));

    // RBF: anchor 4 at 1 sat/vB, then the same anchor bumped to 5 sat/vB replaces it.
    let (payload, _, _) = random_payload(&mut rng, 4);
    let slow = build_anchor_tx(&key, &prev, &payload, KeyKind::P2tr, rate(1)).unwrap();
    accept_and_send(rpc, &slow).await;
    // Re-broadcasting the same transaction is harmless.
    assert_eq!(
        rpc.send_raw_transaction(&slow.tx).await.unwrap(),
        slow.txid()
    );
    let fast = slow.bump_fee(&key, rate(5)).unwrap();
    let txid = rpc.send_raw_transaction(&fast.tx).await.unwrap();
    let mempool = rpc.get_raw_mempool().await.unwrap();
    assert!(mempool.contains(&txid));
    assert!(!mempool.contains(&slow.txid()));
    println!(
        "bump: {} sat ({} vB) -> {} sat ({} vB)",
        slow.fee.to_sat(),
        slow.vsize(),
        fast.fee.to_sat(),
        fast.vsize()
    );
    let block_hash = mine_one(rpc, &miner).await;
    let on_chain = rpc.get_raw_transaction(&txid).await.unwrap().unwrap();
    assert_eq!(on_chain.blockhash, Some(block_hash));
    assert_eq!(AnchorPayload::from_tx(&on_chain.tx).unwrap(), payload);
    assert!(rpc
        .get_raw_transaction(&slow.txid())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn anchor_survives_a_reorg() {
    let Some(node) = Bitcoind::start_or_skip("anchor_survives_a_reorg").await else {
        return;
    };
    let rpc = &node.rpc;
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let key = OperatorKey::generate(&mut rng);
    let miner = OperatorKey::generate(&mut rng);
    let genesis = fund_operator(rpc, &key, KeyKind::P2wpkh).await;
    let (payload, _, _) = random_payload(&mut rng, 1);
    let anchor = build_anchor_tx(&key, &genesis, &payload, KeyKind::P2tr, rate(2)).unwrap();
    let txid = accept_and_send(rpc, &anchor).await;
    let first = mine_one(rpc, &miner).await;
    assert_eq!(
        rpc.get_raw_transaction(&txid)
            .await
            .unwrap()
            .unwrap()
            .blockhash,
        Some(first)
    );

    // Disconnect the block: the anchor goes back to the mempool, unconfirmed.
    rpc.invalidate_block(&first).await.unwrap();
    assert_eq!(rpc.get_block_count().await.unwrap(), 101);
    let back = rpc.get_raw_transaction(&txid).await.unwrap().unwrap();
    assert_eq!(back.blockhash, None);
    assert_eq!(back.confirmations, 0);
    assert!(rpc.get_raw_mempool().await.unwrap().contains(&txid));
    let change = anchor.change().outpoint;
    assert_eq!(
        rpc.get_tx_out(&change, true)
            .await
            .unwrap()
            .unwrap()
            .confirmations,
        0
    );
    assert!(rpc.get_tx_out(&change, false).await.unwrap().is_none());

    // Reconnect it: confirmed again in the same block.
    rpc.reconsider_block(&first).await.unwrap();
    let again = rpc.get_raw_transaction(&txid).await.unwrap().unwrap();
    assert_eq!(again.blockhash, Some(first));
    assert_eq!(again.confirmations, 1);
    assert!(!rpc.get_raw_mempool().await.unwrap().contains(&txid));

    // Disconnect again and mine a different block instead: the anchor confirms there.
    rpc.invalidate_block(&first).await.unwrap();
    assert!(rpc.get_raw_mempool().await.unwrap().contains(&txid));
    // (Mined to another address so the block cannot be byte-identical to the invalid one.)
    let other = miner.address(KeyKind::P2wpkh, Network::Regtest);
    let replacement = rpc.generate_to_address(1, &other).await.unwrap()[0];
    assert_ne!(replacement, first);
    let moved = rpc.get_raw_transaction(&txid).await.unwrap().unwrap();
    assert_eq!(moved.blockhash, Some(replacement));
    assert_eq!(AnchorPayload::from_tx(&moved.tx).unwrap(), payload);
    assert_eq!(rpc.get_block_hash(102).await.unwrap(), replacement);

    // Two anchors in flight: the next anchor may spend the unconfirmed change, and one block
    // confirms both in order.
    let (p2, _, _) = random_payload(&mut rng, 2);
    let a2 = build_anchor_tx(&key, &anchor.change(), &p2, KeyKind::P2tr, rate(1)).unwrap();
    let (p3, _, _) = random_payload(&mut rng, 3);
    let a3 = build_anchor_tx(&key, &a2.change(), &p3, KeyKind::P2wpkh, rate(1)).unwrap();
    accept_and_send(rpc, &a2).await;
    accept_and_send(rpc, &a3).await;
    let block = rpc.get_block(&mine_one(rpc, &miner).await).await.unwrap();
    let order: Vec<Txid> = block.txdata.iter().map(|t| t.compute_txid()).collect();
    assert_eq!(order[1..], [a2.txid(), a3.txid()]);

    // A stopped node is a typed error, not a hang.
    rpc.stop().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match rpc.get_block_count().await {
            Err(RpcError::NodeDown { .. }) => break,
            other if std::time::Instant::now() > deadline => {
                panic!("expected NodeDown after stop, got {other:?}")
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}
