//! The rollup read from Bitcoin alone (issue 14, docs/data-on-bitcoin.md): [`walk_anchor_chain`]
//! follows the chain of spends from the genesis outpoint through Bitcoin Core's RPC (each
//! anchor's change is spent by the next commit, whose envelope outputs are spent by the reveals
//! and the next anchor), and [`replay`] reads every package, decodes its anchor data, rebuilds
//! both trees from genesis, recomputes every batch's public inputs, checks the anchor's range
//! commitment and root, and verifies the proofs with one multi-pairing per anchor.
//!
//! Only blocks of the best chain count: a commit whose envelope is not revealed in a block (yet)
//! ends the walk and is reported.

use ark_bn254::Bn254;
use ark_groth16::{PreparedVerifyingKey, Proof};
use ark_serialize::CanonicalDeserialize;
use bitcoin::{BlockHash, OutPoint, Transaction, TxOut, Txid};
use rand_core::{CryptoRng, RngCore};
use veil_circuits::batch::BatchShape;
use veil_verifier::da::AnchorData;
use veil_verifier::rebuild::{Rebuilder, RebuiltBatch};

use crate::package::{read_package, PackageContents};
use crate::payload::proof_commitment;
use crate::rpc::{BitcoinRpc, RpcError};
use crate::tx::CHANGE_VOUT;

/// The walk could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// Bitcoin Core.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The genesis transaction is unknown to Bitcoin Core, or not in a block.
    #[error(
        "genesis transaction {0} is not in a block of the best chain (is Bitcoin Core running \
         with -txindex=1?)"
    )]
    Genesis(Txid),
    /// The genesis transaction has no such output.
    #[error("genesis transaction {} has no output {}", .0.txid, .0.vout)]
    GenesisOutput(OutPoint),
}

/// One anchor's transactions as found on Bitcoin.
#[derive(Debug, Clone)]
pub struct ChainPackage {
    /// The commit (spends the previous anchor's change, or the genesis outpoint).
    pub commit: Transaction,
    /// The reveals, in commit output order.
    pub reveals: Vec<Transaction>,
    /// The anchor (spends the commit's last output).
    pub anchor: Transaction,
    /// What the commit's inputs after the first spend (swept peg-ins), in input order: `None`
    /// for an output Bitcoin Core does not know.
    pub swept: Vec<Option<TxOut>>,
    /// The block holding the anchor.
    pub block_hash: BlockHash,
    /// Its height.
    pub block_height: u64,
}

/// A commit in the best chain whose envelopes are not all revealed there.
#[derive(Debug, Clone)]
pub struct Unrevealed {
    /// The commit.
    pub commit: Transaction,
    /// Its outputs no transaction in the best chain spends.
    pub missing: Vec<u32>,
}

/// What [`walk_anchor_chain`] found.
#[derive(Debug, Clone)]
pub struct ChainWalk {
    /// The genesis output (what the first commit spends).
    pub genesis_output: TxOut,
    /// Every complete package, in chain order.
    pub packages: Vec<ChainPackage>,
    /// A commit at the end of the chain whose reveals are missing.
    pub unrevealed: Option<Unrevealed>,
    /// Height of the best block when the walk ended.
    pub tip_height: u64,
}

struct PendingCommit {
    commit: Transaction,
    spenders: Vec<Option<Transaction>>,
}

/// Follows the chain of anchors from `genesis` to the tip of Bitcoin Core's best chain, block
/// by block (the genesis transaction must be in a block: with `-txindex`, or any transaction
/// Bitcoin Core still knows). `progress(height, tip)` is called once per block.
pub async fn walk_anchor_chain(
    rpc: &BitcoinRpc,
    genesis: OutPoint,
    mut progress: impl FnMut(u64, u64),
) -> Result<ChainWalk, ChainError> {
    let raw = rpc
        .get_raw_transaction(&genesis.txid)
        .await?
        .filter(|rt| rt.confirmations > 0)
        .ok_or(ChainError::Genesis(genesis.txid))?;
    let located = raw.blockhash.ok_or(ChainError::Genesis(genesis.txid))?;
    let genesis_output = raw
        .tx
        .output
        .get(genesis.vout as usize)
        .cloned()
        .ok_or(ChainError::GenesisOutput(genesis))?;
    let start = rpc
        .get_block_header(&located)
        .await?
        .filter(|h| h.in_best_chain())
        .ok_or(ChainError::Genesis(genesis.txid))?
        .height;
    let tip = rpc.get_block_count().await?;
    let mut watched = genesis;
    let mut pending: Option<PendingCommit> = None;
    let mut packages: Vec<ChainPackage> = Vec::new();
    for height in start..=tip {
        progress(height, tip);
        let hash = rpc.get_block_hash(height).await?;
        let block = rpc.get_block(&hash).await?;
        for tx in block.txdata {
            match &mut pending {
                None => {
                    if tx.input.iter().any(|i| i.previous_output == watched) {
                        let outputs = tx.output.len();
                        pending = Some(PendingCommit {
                            commit: tx,
                            spenders: vec![None; outputs],
                        });
                    }
                }
                Some(p) => {
                    let commit_txid = p.commit.compute_txid();
                    let spent = tx
                        .input
                        .iter()
                        .find(|i| i.previous_output.txid == commit_txid)
                        .map(|i| i.previous_output.vout as usize);
                    if let Some(vout) = spent.filter(|v| *v < p.spenders.len()) {
                        if p.spenders[vout].is_none() {
                            p.spenders[vout] = Some(tx);
                        }
                    }
                    if p.spenders.iter().all(Option::is_some) {
                        let p = pending.take().expect("pending");
                        let mut spenders: Vec<Transaction> =
                            p.spenders.into_iter().map(|t| t.expect("all")).collect();
                        let anchor = spenders.pop().expect("a commit has outputs");
                        watched = OutPoint::new(anchor.compute_txid(), CHANGE_VOUT);
                        packages.push(ChainPackage {
                            commit: p.commit,
                            reveals: spenders,
                            anchor,
                            swept: Vec::new(),
                            block_hash: hash,
                            block_height: height,
                        });
                    }
                }
            }
        }
    }
    for package in &mut packages {
        for input in package.commit.input.iter().skip(1) {
            let op = input.previous_output;
            let out = rpc
                .get_raw_transaction(&op.txid)
                .await?
                .and_then(|rt| rt.tx.output.get(op.vout as usize).cloned());
            package.swept.push(out);
        }
    }
    let unrevealed = pending.map(|p| Unrevealed {
        missing: p
            .spenders
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_none())
            .map(|(i, _)| i as u32)
            .collect(),
        commit: p.commit,
    });
    Ok(ChainWalk {
        genesis_output,
        packages,
        unrevealed,
        tip_height: tip,
    })
}

/// A problem found on the chain, attributed to a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The batch.
    pub batch: u64,
    /// What is wrong.
    pub message: String,
}

/// One anchor replayed.
#[derive(Debug, Clone)]
pub struct ReplayedAnchor {
    /// The anchor transaction's id.
    pub txid: Txid,
    /// The block holding it and its height.
    pub block: (BlockHash, u64),
    /// What the package carried.
    pub contents: PackageContents,
    /// The decoded anchor data.
    pub data: AnchorData,
    /// Its batches, rebuilt.
    pub batches: Vec<RebuiltBatch>,
}

/// What [`replay`] found.
pub struct Replay {
    /// The state rebuilt from every anchor replayed.
    pub rebuilder: Rebuilder,
    /// The anchors replayed, in order.
    pub anchors: Vec<ReplayedAnchor>,
    /// Every problem, in chain order. The replay stops at the first package whose data cannot
    /// be applied (nothing after it can be rebuilt).
    pub problems: Vec<Problem>,
}

/// Replays `walk` from genesis for a circuit of `shape` (see the module doc).
pub fn replay<R: RngCore + CryptoRng>(
    walk: &ChainWalk,
    shape: BatchShape,
    pvk: &PreparedVerifyingKey<Bn254>,
    rng: &mut R,
) -> Replay {
    let mut rebuilder = Rebuilder::genesis(shape);
    let mut anchors = Vec::new();
    let mut problems = Vec::new();
    for package in &walk.packages {
        let next = rebuilder.next_batch();
        let txid = package.anchor.compute_txid();
        let mut problem = |batch: u64, message: String| problems.push(Problem { batch, message });
        let contents = match read_package(&package.commit, &package.reveals, &package.anchor) {
            Ok(c) => c,
            Err(e) => {
                problem(
                    next,
                    format!("anchor {txid}: its package does not read: {e}"),
                );
                return Replay {
                    rebuilder,
                    anchors,
                    problems,
                };
            }
        };
        let payload = contents.payload;
        let range = format!("{}..={}", payload.first_batch, payload.last_batch());
        let fail = |message: String| Problem {
            batch: next,
            message,
        };
        let data = match AnchorData::decode(&contents.data) {
            Ok(d) => d,
            Err(e) => {
                problems.push(fail(format!(
                    "anchor {txid} (batches {range}): its envelope data does not decode: {e}"
                )));
                break;
            }
        };
        if payload.first_batch != next
            || data.first_batch != payload.first_batch
            || data.batches.len() != usize::from(payload.count)
        {
            problems.push(fail(format!(
                "anchor {txid} commits to batches {range} and its envelope carries {} batches \
                 from {}, where the chain continues with batch {next}",
                data.batches.len(),
                data.first_batch
            )));
            break;
        }
        let batches = match rebuilder.apply(&data) {
            Ok(b) => b,
            Err(e) => {
                problems.push(fail(format!(
                    "anchor {txid}: its data does not apply to the rebuilt state: {e}"
                )));
                break;
            }
        };
        let commitments: Vec<[u8; 32]> = batches
            .iter()
            .map(|b| proof_commitment(&b.proof, &b.public_inputs.batch_hash).expect("128 bytes"))
            .collect();
        if !payload.commits_to(&contents.data_hash(), &commitments) {
            problems.push(fail(format!(
                "anchor {txid}: its envelope data (sha256 {}) does not match the anchor's \
                 range commitment",
                hex::encode(contents.data_hash())
            )));
        }
        let last = batches.last().expect("count >= 1");
        if last.public_inputs.new_state_root != payload.new_state_root {
            problems.push(Problem {
                batch: last.number,
                message: format!(
                    "anchor {txid} commits to root {}, the rebuilt state root is {}",
                    veil_circuits::field::to_hex(&payload.new_state_root),
                    veil_circuits::field::to_hex(&last.public_inputs.new_state_root)
                ),
            });
        }
        problems.extend(verify_proofs(&batches, pvk, rng));
        anchors.push(ReplayedAnchor {
            txid,
            block: (package.block_hash, package.block_height),
            contents,
            data,
            batches,
        });
    }
    if let Some(u) = &walk.unrevealed {
        problems.push(Problem {
            batch: rebuilder.next_batch(),
            message: format!(
                "commit {} spends the chain of anchors but its envelope output(s) {:?} are not \
                 revealed in the best chain",
                u.commit.compute_txid(),
                u.missing
            ),
        });
    }
    Replay {
        rebuilder,
        anchors,
        problems,
    }
}

/// One multi-pairing for every proof of an anchor; on failure, one check per proof to name
/// the bad ones.
fn verify_proofs<R: RngCore + CryptoRng>(
    batches: &[RebuiltBatch],
    pvk: &PreparedVerifyingKey<Bn254>,
    rng: &mut R,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut items = Vec::with_capacity(batches.len());
    for b in batches {
        match Proof::<Bn254>::deserialize_compressed(&b.proof[..]) {
            Ok(p) => items.push((b.public_inputs, p)),
            Err(e) => problems.push(Problem {
                batch: b.number,
                message: format!("proof does not decode: {e}"),
            }),
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    if matches!(veil_verifier::verify_batch(pvk, &items, rng), Ok(true)) {
        return problems;
    }
    for (b, (pi, proof)) in batches.iter().zip(&items) {
        if !matches!(veil_verifier::verify(pvk, pi, proof), Ok(true)) {
            problems.push(Problem {
                batch: b.number,
                message: "proof does not verify against the rebuilt public inputs".into(),
            });
        }
    }
    problems
}
