//! The second half of `make bench-anchor`: how long `veil verify-chain --from-bitcoin` takes per
//! 1,000 transfers. A real history at the production shape (B = 16, D = 32, dev keys cached
//! under the bench directory): half deposits, half private payments (one real input and a
//! dummy, as a wallet's payments mostly are), every batch proven, anchored in range anchors of
//! `per_anchor` transfers on regtest Bitcoin Core, one block each. Then the same library calls
//! the command makes: [`walk_anchor_chain`] (every block from the genesis to the tip over RPC)
//! and [`replay`] (decode, rebuild both trees, recompute every public input, one multi-pairing
//! per anchor), each timed.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use ark_serialize::CanonicalSerialize;
use bitcoin::{Address, FeeRate, OutPoint, TxOut};
use sha2::{Digest, Sha256};
use veil_bitcoin::chain::{replay, walk_anchor_chain};
use veil_bitcoin::package::build_anchor_package;
use veil_bitcoin::payload::AnchorPayloadV2;
use veil_bitcoin::{proof_commitment, BitcoinRpc, KeyKind, OperatorKey, PrevOut};
use veil_circuits::batch::{BatchShape, BuiltBatch};
use veil_fixtures::Scenario;
use veil_prover::Prover;
use veil_verifier::da::{AnchorData, BatchData, TransferData, PROOF_LEN};

/// What one run measured.
pub struct VerifyRow {
    /// The shape proven.
    pub shape: BatchShape,
    /// Transfers on the chain.
    pub transfers: usize,
    /// Batches.
    pub batches: usize,
    /// Anchors.
    pub anchors: usize,
    /// Blocks the walk read.
    pub blocks: u64,
    /// Seconds to walk the chain.
    pub walk_s: f64,
    /// Seconds to replay it.
    pub replay_s: f64,
}

impl VerifyRow {
    /// Walk and replay, per 1,000 transfers.
    pub fn per_1000_s(&self) -> f64 {
        (self.walk_s + self.replay_s) * 1000.0 / self.transfers as f64
    }

    /// The markdown section.
    pub fn markdown(&self) -> String {
        let mut s = String::from("\n## verify-chain --from-bitcoin\n\n");
        s += &format!(
            "A real history at {} (dev keys): {} transfers (half deposits, half private \
             payments) in {} proven batches, {} range anchors mined one per block; the walk \
             reads every block from the genesis to the tip ({} blocks). Same calls as the \
             command; one run.\n\n",
            self.shape, self.transfers, self.batches, self.anchors, self.blocks
        );
        s += "| transfers | batches | anchors | walk s | replay s | total s | s per 1,000 transfers |\n";
        s += "|---:|---:|---:|---:|---:|---:|---:|\n";
        s += &format!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            self.transfers,
            self.batches,
            self.anchors,
            self.walk_s,
            self.replay_s,
            self.walk_s + self.replay_s,
            self.per_1000_s()
        );
        s
    }
}

/// A history of `transfers` transfers (a multiple of 32) in batches of `shape`: half deposits
/// to Alice, then as many payments to Bob, each spending one deposit.
fn history(
    shape: BatchShape,
    transfers: usize,
) -> Result<(Vec<BuiltBatch>, Vec<Vec<TransferData>>)> {
    let b = shape.batch_size;
    let mut sc = Scenario::new(shape, 1014);
    let alice = sc.new_key();
    let bob = sc.new_key();
    let mut built = Vec::new();
    let mut data = Vec::new();
    let mut push = |sc: &mut Scenario, chunk: Vec<veil_circuits::Transfer>| -> Result<()> {
        built.push(sc.apply(&chunk)?);
        data.push(
            chunk
                .into_iter()
                .map(|t| TransferData {
                    public: t.public,
                    ciphertexts: t.ciphertexts,
                })
                .collect(),
        );
        Ok(())
    };
    let half = transfers / 2;
    for start in (0..half).step_by(b) {
        let chunk = (start..half.min(start + b))
            .map(|i| sc.deposit(&alice, 1_000 + i as u64))
            .collect();
        push(&mut sc, chunk)?;
    }
    let notes = sc.unspent(&alice);
    ensure!(notes.len() >= half, "one deposit per payment");
    for start in (0..half).step_by(b) {
        let chunk = (start..half.min(start + b))
            .map(|i| sc.spend(&alice, &[notes[i]], &bob, 100 + i as u64, 0, 0))
            .collect();
        push(&mut sc, chunk)?;
    }
    Ok((built, data))
}

/// Proves a history of `transfers` transfers, anchors it from `genesis` (a mature output of
/// `key`) `per_anchor` transfers at a time, mines each anchor with `miner`, then times the walk
/// and the replay.
#[allow(clippy::too_many_arguments)]
pub fn measure(
    runtime: &tokio::runtime::Runtime,
    rpc: &BitcoinRpc,
    key: &OperatorKey,
    genesis: PrevOut,
    miner: &Address,
    keys_dir: &Path,
    transfers: usize,
    per_anchor: usize,
) -> Result<VerifyRow> {
    let shape = BatchShape::new(16, 32)?;
    let b = shape.batch_size;
    ensure!(
        transfers >= 2 * b && transfers.is_multiple_of(2 * b),
        "--verify-transfers must be a positive multiple of {}",
        2 * b
    );
    ensure!(
        per_anchor >= b && per_anchor.is_multiple_of(b),
        "--verify-per-anchor must be a positive multiple of {b}"
    );
    eprintln!(
        "[anchor] verify: {shape} dev keys (cached under {})",
        keys_dir.display()
    );
    let (pk, vk) = veil_prover::load_or_setup_dev_keys(keys_dir, shape, 1).context("dev keys")?;
    let prover = Prover::new(shape, pk)?;
    let (built, data) = history(shape, transfers)?;
    let mut proofs = Vec::with_capacity(built.len());
    for (i, batch) in built.iter().enumerate() {
        eprintln!(
            "[anchor] verify: proving batch {} of {}",
            i + 1,
            built.len()
        );
        let proof = prover.prove_built(batch, &mut rand::rngs::OsRng)?;
        let mut bytes = Vec::with_capacity(PROOF_LEN);
        proof.serialize_compressed(&mut bytes)?;
        let proof: [u8; PROOF_LEN] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("proof size"))?;
        proofs.push(proof);
    }
    let rate = FeeRate::from_sat_per_vb(1).context("1 sat/vB")?;
    let batches_per_anchor = per_anchor / b;
    let mut prev = genesis.clone();
    let mut anchors = 0;
    for first in (0..built.len()).step_by(batches_per_anchor) {
        let last = built.len().min(first + batches_per_anchor);
        let range = AnchorData {
            batch_size: b as u64,
            first_batch: first as u64,
            batches: (first..last)
                .map(|i| BatchData {
                    proof: proofs[i],
                    transfers: data[i].clone(),
                })
                .collect(),
        };
        let bytes = range.encode()?;
        let data_hash: [u8; 32] = Sha256::digest(&bytes).into();
        let commitments = (first..last)
            .map(|i| proof_commitment(&proofs[i], &built[i].public_inputs.batch_hash))
            .collect::<Result<Vec<_>, _>>()?;
        let root = built[last - 1].public_inputs.new_state_root;
        let payload = AnchorPayloadV2::new(first as u64, root, &data_hash, &commitments)?;
        let package = build_anchor_package(key, &prev, &payload, &bytes, KeyKind::P2tr, rate)?;
        for tx in package.transactions() {
            runtime.block_on(rpc.send_raw_transaction(tx))?;
        }
        runtime.block_on(rpc.generate_to_address(1, miner))?;
        prev = package.change();
        anchors += 1;
    }

    let pvk = veil_verifier::prepare(&vk);
    let started = Instant::now();
    let walk = runtime.block_on(walk_anchor_chain(rpc, genesis.outpoint, |_, _| {}))?;
    let walk_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let replayed = replay(&walk, shape, &pvk, &mut rand::rngs::OsRng);
    let replay_s = started.elapsed().as_secs_f64();
    if let Some(p) = replayed.problems.first() {
        bail!(
            "the benchmark's own chain does not verify: batch {}: {}",
            p.batch,
            p.message
        );
    }
    ensure!(
        replayed.rebuilder.next_batch() == built.len() as u64,
        "the replay rebuilt {} of {} batches",
        replayed.rebuilder.next_batch(),
        built.len()
    );
    let start_height = runtime
        .block_on(rpc.get_raw_transaction(&genesis.outpoint.txid))?
        .map_or(0, |rt| walk.tip_height + 1 - rt.confirmations);
    Ok(VerifyRow {
        shape,
        transfers,
        batches: built.len(),
        anchors,
        blocks: walk.tip_height + 1 - start_height,
        walk_s,
        replay_s,
    })
}

/// The output `vout` of the coinbase of block `hash`, as a previous output.
pub fn coinbase_prevout(
    runtime: &tokio::runtime::Runtime,
    rpc: &BitcoinRpc,
    hash: &bitcoin::BlockHash,
) -> Result<PrevOut> {
    let block = runtime.block_on(rpc.get_block(hash))?;
    let coinbase = &block.txdata[0];
    Ok(PrevOut {
        outpoint: OutPoint::new(coinbase.compute_txid(), 0),
        txout: TxOut {
            value: coinbase.output[0].value,
            script_pubkey: coinbase.output[0].script_pubkey.clone(),
        },
    })
}
