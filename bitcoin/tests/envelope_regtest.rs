//! Envelope packages against a real regtest Bitcoin Core (`support/bitcoind.rs`): a one-envelope
//! package checked by `testmempoolaccept` as a package, sent and mined; a three-envelope package
//! of about 900 kB, whose commit must confirm before the reveals fit in the mempool; both read
//! back from the chain; the anchor bumped by RBF (paying for its commit); and the whole package
//! replaced. Skipped, with a notice, only when no `bitcoind` is found
//! (`VEIL_BITCOIND=/path/to/bitcoind` makes it run).

mod support;

use std::collections::HashMap;

use ark_bn254::Fr;
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{Amount, BlockHash, FeeRate, Network, OutPoint, Transaction, Txid};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::bitcoind::Bitcoind;
use veil_bitcoin::package::read_package_by_spends;
use veil_bitcoin::rpc::BitcoinRpc;
use veil_bitcoin::{
    build_anchor_package, extract_data, proof_commitment, read_package, AnchorPackage,
    AnchorPayloadAny, AnchorPayloadV2, BumpScope, KeyKind, OperatorKey, PrevOut,
};

fn rate(sat_vb: u64) -> FeeRate {
    FeeRate::from_sat_per_vb(sat_vb).unwrap()
}

fn random(rng: &mut ChaCha20Rng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

/// A payload for `count` batches over random proofs, committing to `data`.
fn payload(rng: &mut ChaCha20Rng, data: &[u8], first_batch: u64, count: usize) -> AnchorPayloadV2 {
    let pcs: Vec<[u8; 32]> = (0..count)
        .map(|_| proof_commitment(&random(rng, 128), &Fr::from(rng.next_u64())).unwrap())
        .collect();
    let data_hash: [u8; 32] = Sha256::digest(data).into();
    AnchorPayloadV2::new(first_batch, Fr::from(rng.next_u64()), &data_hash, &pcs).unwrap()
}

/// Mines 101 blocks to the operator and returns block 1's coinbase output.
async fn fund_operator(rpc: &BitcoinRpc, key: &OperatorKey, kind: KeyKind) -> PrevOut {
    let hashes = rpc
        .generate_to_address(101, &key.address(kind, Network::Regtest))
        .await
        .unwrap();
    let coinbase = rpc.get_block(&hashes[0]).await.unwrap().txdata[0].clone();
    PrevOut {
        outpoint: OutPoint::new(coinbase.compute_txid(), 0),
        txout: coinbase.output[0].clone(),
    }
}

async fn mine_one(rpc: &BitcoinRpc, miner: &OperatorKey) -> BlockHash {
    let addr = miner.address(KeyKind::P2tr, Network::Regtest);
    rpc.generate_to_address(1, &addr).await.unwrap()[0]
}

/// `testmempoolaccept` over `txs` as one package; panics unless every one is allowed, and checks
/// Core's vsize and fee of each against ours.
async fn accept_package(rpc: &BitcoinRpc, txs: &[&Transaction], fees: &[Amount]) {
    let hex: Vec<String> = txs.iter().map(|t| serialize_hex(*t)).collect();
    let results: Vec<Value> = rpc
        .call("testmempoolaccept", vec![json!(hex)])
        .await
        .unwrap();
    assert_eq!(results.len(), txs.len());
    for ((r, tx), fee) in results.iter().zip(txs).zip(fees) {
        assert_eq!(r["allowed"], json!(true), "{r}");
        assert_eq!(r["txid"], json!(tx.compute_txid().to_string()));
        assert_eq!(r["vsize"], json!(tx.vsize()));
        let base = Amount::from_btc(r["fees"]["base"].as_f64().unwrap()).unwrap();
        assert_eq!(base, *fee);
    }
}

async fn send(rpc: &BitcoinRpc, tx: &Transaction) -> Txid {
    let txid = rpc.send_raw_transaction(tx).await.unwrap();
    assert_eq!(txid, tx.compute_txid());
    txid
}

/// Fetches the package's transactions from the chain and checks they are all in `block`.
async fn fetch_confirmed(
    rpc: &BitcoinRpc,
    p: &AnchorPackage,
    block: BlockHash,
) -> (Transaction, Vec<Transaction>, Transaction) {
    let mut txs = Vec::new();
    for txid in p.txids() {
        let raw = rpc.get_raw_transaction(&txid).await.unwrap().unwrap();
        assert_eq!(raw.blockhash, Some(block), "{txid}");
        txs.push(raw.tx);
    }
    let anchor = txs.pop().unwrap();
    let commit = txs.remove(0);
    (commit, txs, anchor)
}

fn report(label: &str, p: &AnchorPackage) {
    println!(
        "{label}: {} bytes in {} envelope(s): commit {} vB, reveals {:?} vB, anchor {} vB, \
         total {} vB, fee {} sat",
        p.data().len(),
        p.envelope_count(),
        p.commit.vsize(),
        p.reveals.iter().map(Transaction::vsize).collect::<Vec<_>>(),
        p.anchor.vsize(),
        p.total_vsize(),
        p.total_fee().to_sat()
    );
}

#[tokio::test]
async fn envelope_packages_are_accepted_mined_and_read_back() {
    let Some(node) =
        Bitcoind::start_or_skip("envelope_packages_are_accepted_mined_and_read_back").await
    else {
        return;
    };
    let rpc = &node.rpc;
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let key = OperatorKey::generate(&mut rng);
    let miner = OperatorKey::generate(&mut rng);
    let genesis = fund_operator(rpc, &key, KeyKind::P2tr).await;

    // One envelope: commit (P2TR key path) and anchor are accepted together and mine together.
    let data = random(&mut rng, 5_000);
    let p1 = payload(&mut rng, &data, 1, 2);
    let one = build_anchor_package(&key, &genesis, &p1, &data, KeyKind::P2wpkh, rate(2)).unwrap();
    assert_eq!(one.envelope_count(), 1);
    assert!(one.fits_mempool_at_once());
    report("k = 1", &one);
    accept_package(
        rpc,
        &[&one.commit, &one.anchor],
        &[one.commit_fee, one.anchor_fee],
    )
    .await;
    send(rpc, &one.commit).await;
    send(rpc, &one.anchor).await;
    let block = mine_one(rpc, &miner).await;
    let (commit, reveals, anchor) = fetch_confirmed(rpc, &one, block).await;
    assert!(reveals.is_empty());
    assert_eq!(extract_data(&commit, &reveals, &anchor).unwrap(), data);
    let contents = read_package(&commit, &reveals, &anchor).unwrap();
    assert_eq!(contents.payload, p1);
    assert_eq!(contents.operator, key.internal_key());
    assert_eq!(
        AnchorPayloadAny::from_tx(&anchor).unwrap(),
        AnchorPayloadAny::V2(p1)
    );
    let change = rpc
        .get_tx_out(&contents.change.outpoint, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.value, genesis.txout.value - one.total_fee());

    // Three envelopes, ~900 kB, spending the P2WPKH change. The commit and all of its
    // descendants exceed Core's 101 kvB limit on related unconfirmed transactions: the first
    // reveal still fits beside the commit, the second does not.
    let data = random(&mut rng, 900_000);
    let p2 = payload(&mut rng, &data, 3, 16);
    let big =
        build_anchor_package(&key, &one.change(), &p2, &data, KeyKind::P2tr, rate(1)).unwrap();
    assert_eq!(big.envelope_count(), 3);
    assert!(!big.fits_mempool_at_once());
    report("k = 3", &big);
    accept_package(rpc, &[&big.commit], &[big.commit_fee]).await;
    send(rpc, &big.commit).await;
    accept_package(rpc, &[&big.reveals[0]], &[big.reveal_fees[0]]).await;
    send(rpc, &big.reveals[0]).await;
    let refused = rpc.test_mempool_accept(&big.reveals[1]).await.unwrap();
    assert!(!refused.allowed);
    let reason = refused.reject_reason.unwrap_or_default();
    println!("second reveal beside an unconfirmed commit: {reason}");
    assert!(
        reason.contains("cluster") || reason.contains("too-long-mempool-chain"),
        "{reason}"
    );
    let first_block = mine_one(rpc, &miner).await;
    // Once the commit is confirmed, the rest are unrelated in the mempool and all go in.
    for (tx, fee) in [
        (&big.reveals[1], big.reveal_fees[1]),
        (&big.anchor, big.anchor_fee),
    ] {
        accept_package(rpc, &[tx], &[fee]).await;
        send(rpc, tx).await;
    }
    let second_block = mine_one(rpc, &miner).await;
    let blocks = [
        rpc.get_block(&first_block).await.unwrap(),
        rpc.get_block(&second_block).await.unwrap(),
    ];
    // A reader with only the blocks: index spends, follow them from the commit.
    let mut spends: HashMap<OutPoint, Transaction> = HashMap::new();
    let mut commit = None;
    for tx in blocks.iter().flat_map(|b| b.txdata.iter()) {
        for input in &tx.input {
            spends.insert(input.previous_output, tx.clone());
        }
        if tx.compute_txid() == big.commit.compute_txid() {
            commit = Some(tx.clone());
        }
    }
    let commit = commit.expect("commit in the first block");
    assert_eq!(
        spends[&one.change().outpoint].compute_txid(),
        commit.compute_txid()
    );
    let (contents, reveals, anchor) =
        read_package_by_spends(&commit, |o| spends.get(&o).cloned()).unwrap();
    assert_eq!(contents.data, data);
    assert_eq!(contents.payload, p2);
    assert_eq!(reveals, big.reveals);
    assert_eq!(anchor, big.anchor);
    for txid in big.txids() {
        let raw = rpc.get_raw_transaction(&txid).await.unwrap().unwrap();
        assert!(raw.blockhash == Some(first_block) || raw.blockhash == Some(second_block));
        assert_eq!(
            raw.tx.vsize(),
            big.transactions()
                .iter()
                .find(|t| t.compute_txid() == txid)
                .unwrap()
                .vsize()
        );
    }

    // Fee bump: a package at 1 sat/vB, then its anchor re-signed at 5 sat/vB for both anchor and
    // commit. Core replaces the anchor; the commit and the new anchor mine together.
    let data = random(&mut rng, 3_000);
    let p3 = payload(&mut rng, &data, 19, 1);
    let slow =
        build_anchor_package(&key, &big.change(), &p3, &data, KeyKind::P2tr, rate(1)).unwrap();
    send(rpc, &slow.commit).await;
    send(rpc, &slow.anchor).await;
    let fast = slow
        .bump_anchor(&key, rate(5), BumpScope::AnchorAndCommit)
        .unwrap();
    accept_package(rpc, &[&fast.anchor], &[fast.anchor_fee]).await;
    let fast_txid = send(rpc, &fast.anchor).await;
    let mempool = rpc.get_raw_mempool().await.unwrap();
    assert!(mempool.contains(&fast_txid));
    assert!(!mempool.contains(&slow.anchor_txid()));
    assert!(mempool.contains(&slow.commit.compute_txid()));
    println!(
        "bump: anchor {} sat -> {} sat ({} vB anchor + {} vB commit at 5 sat/vB)",
        slow.anchor_fee.to_sat(),
        fast.anchor_fee.to_sat(),
        fast.anchor.vsize(),
        fast.commit.vsize()
    );
    let block = mine_one(rpc, &miner).await;
    let (commit, reveals, anchor) = fetch_confirmed(rpc, &fast, block).await;
    assert_eq!(extract_data(&commit, &reveals, &anchor).unwrap(), data);
    assert!(rpc
        .get_raw_transaction(&slow.anchor_txid())
        .await
        .unwrap()
        .is_none());

    // Replacing the whole package: the new commit pays for everything it evicts.
    let data = random(&mut rng, 4_000);
    let p4 = payload(&mut rng, &data, 20, 1);
    let old =
        build_anchor_package(&key, &fast.change(), &p4, &data, KeyKind::P2tr, rate(1)).unwrap();
    send(rpc, &old.commit).await;
    send(rpc, &old.anchor).await;
    let new = old.rebuild(&key, rate(3), old.total_fee()).unwrap();
    accept_package(rpc, &[&new.commit], &[new.commit_fee]).await;
    send(rpc, &new.commit).await;
    send(rpc, &new.anchor).await;
    let mempool = rpc.get_raw_mempool().await.unwrap();
    assert!(!mempool.contains(&old.commit.compute_txid()));
    assert!(!mempool.contains(&old.anchor_txid()));
    let block = mine_one(rpc, &miner).await;
    let (commit, reveals, anchor) = fetch_confirmed(rpc, &new, block).await;
    assert_eq!(extract_data(&commit, &reveals, &anchor).unwrap(), data);
    println!(
        "replacement: old package {} sat, new commit {} sat, new package {} sat",
        old.total_fee().to_sat(),
        new.commit_fee.to_sat(),
        new.total_fee().to_sat()
    );
}
