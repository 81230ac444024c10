//! The escape hatch (issue 14, docs/data-on-bitcoin.md): a node data directory written from
//! Bitcoin alone. The caller walks the chain of anchors and replays it
//! ([`veil_bitcoin::chain`]: every envelope decoded, both trees rebuilt, every proof verified);
//! [`restore_data_dir`] turns that replay into a store a `veil node` opens like any other:
//!
//! - every batch, proven, with its public data, proof, state summaries and notes (commitment,
//!   public `rho`, ciphertext), so the node serves the same `/v1/state`, notes, paths,
//!   nullifiers and batches as the node that made them; a restored batch has no transfer
//!   records (Bitcoin does not carry the private parts) but its transfers' ids still resolve;
//! - every anchor as a record (commit and reveals, the anchor as its only version, its block),
//!   so a node given the operator key continues the same chain of spends: its next commit
//!   spends the last anchor's change.
//!
//! The directory is written under a temporary name beside the target, opened as a node to check
//! that the node rebuilds the replayed state root, and only then renamed into place: an
//! interrupted restore leaves no half-written data directory behind.

use std::path::{Path, PathBuf};

use bitcoin::consensus::encode::serialize;
use bitcoin::hashes::Hash;
use bitcoin::{Amount, Transaction, TxOut, Txid};
use veil_bitcoin::chain::{ChainPackage, ChainWalk, Replay, ReplayedAnchor};
use veil_bitcoin::tx::CHANGE_VOUT;
use veil_circuits::batch::BatchShape;
use veil_circuits::field::to_hex;
use veil_circuits::Fr;

use crate::node::{public_transfer_id, Node, NodeError};
use crate::store::{
    AnchorRecord, AnchorStatus, AnchorVersion, BatchRecord, NoteEntry, Store, StoreError,
    SweptOutput, DB_FILE,
};

/// Why a data directory could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The target already holds something.
    #[error("{0} is not empty: restore into a new directory")]
    NotEmpty(PathBuf),
    /// The replay found problems: the chain is not a valid history to continue from.
    #[error("the chain of anchors has {0} problem(s); nothing was restored")]
    Problems(usize),
    /// The walk and the replay do not belong together.
    #[error("the replay covers {replayed} anchors, the walk found {walked}")]
    Inconsistent {
        /// Anchors replayed.
        replayed: usize,
        /// Packages walked.
        walked: usize,
    },
    /// An anchor transaction without the change output the next commit spends.
    #[error("anchor {0} has no change output")]
    NoChange(Txid),
    /// The restored store does not reopen to the replayed state.
    #[error("the restored node rebuilds state root {node}, the chain's is {chain}")]
    Mismatch {
        /// What the node rebuilt.
        node: String,
        /// What the replay rebuilt.
        chain: String,
    },
    /// Storage.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Opening the restored store as a node.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The file system.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// What [`restore_data_dir`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Batches restored (all proven).
    pub batches: u64,
    /// Transfers in them.
    pub transfers: u64,
    /// Notes published.
    pub notes: u64,
    /// Anchor records.
    pub anchors: u64,
    /// The state root after the last batch.
    pub state_root: Fr,
    /// The last anchor, whose change the node's next commit spends.
    pub last_anchor: Option<Txid>,
}

/// Writes a node data directory at `dir` (which must not exist, or be empty) holding the
/// history `replay` rebuilt from `walk`, for a circuit of `shape`. Anchors with fewer than
/// `confirmations` confirmations are stored `confirmed`, the others `anchored`; a node with
/// anchoring re-checks them on its first pass. Refuses a replay that found problems.
pub fn restore_data_dir(
    dir: &Path,
    shape: BatchShape,
    walk: &ChainWalk,
    replay: &Replay,
    confirmations: u64,
) -> Result<Restored, RestoreError> {
    let io = |p: &Path| {
        let p = p.to_owned();
        move |e| RestoreError::Io(p, e)
    };
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(io(dir))?;
        if entries.next().is_some() {
            return Err(RestoreError::NotEmpty(dir.to_owned()));
        }
    }
    if !replay.problems.is_empty() {
        return Err(RestoreError::Problems(replay.problems.len()));
    }
    if replay.anchors.len() != walk.packages.len() {
        return Err(RestoreError::Inconsistent {
            replayed: replay.anchors.len(),
            walked: walk.packages.len(),
        });
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    let tmp = dir.with_file_name(format!(".{name}.restoring"));
    if tmp.exists() {
        // What an interrupted restore left.
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    let written = write_store(&tmp, shape, walk, replay, confirmations);
    let written = written.and_then(|w| {
        let node = Node::open(&tmp, shape)?;
        let root = node.state_view().state_root;
        drop(node);
        if root != w.state_root {
            return Err(RestoreError::Mismatch {
                node: to_hex(&root),
                chain: to_hex(&w.state_root),
            });
        }
        Ok(w)
    });
    let restored = match written {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if dir.exists() {
        std::fs::remove_dir(dir).map_err(io(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io(dir))?;
    debug_assert!(dir.join(DB_FILE).exists());
    Ok(restored)
}

fn write_store(
    dir: &Path,
    shape: BatchShape,
    walk: &ChainWalk,
    replay: &Replay,
    confirmations: u64,
) -> Result<Restored, RestoreError> {
    let store = Store::open(dir, shape)?;
    let mut out = Restored {
        batches: 0,
        transfers: 0,
        notes: 0,
        anchors: 0,
        state_root: replay.rebuilder.state().state_root(),
        last_anchor: None,
    };
    let mut prev_output = walk.genesis_output.clone();
    for (package, anchor) in walk.packages.iter().zip(&replay.anchors) {
        for (batch, data) in anchor.batches.iter().zip(&anchor.data.batches) {
            let record = BatchRecord {
                number: batch.number,
                transfer_ids: batch.transfers.iter().map(public_transfer_id).collect(),
                public: batch.transfers.clone(),
                public_inputs: batch.public_inputs,
                old_state: batch.old_state,
                new_state: batch.new_state,
                note_start: batch.note_start,
            };
            let notes = NoteEntry::of_batch(
                batch.note_start,
                data.transfers.iter().map(|t| (&t.public, &t.ciphertexts)),
            );
            store.append_restored(&record, &notes, &batch.proof)?;
            out.batches += 1;
            out.transfers += batch.transfers.len() as u64;
            out.notes += notes.len() as u64;
        }
        let record = anchor_record(
            package,
            anchor,
            &prev_output,
            walk.tip_height,
            confirmations,
        );
        store.insert_anchor(&record)?;
        out.anchors += 1;
        out.last_anchor = Some(anchor.txid);
        prev_output = package
            .anchor
            .output
            .get(CHANGE_VOUT as usize)
            .cloned()
            .ok_or(RestoreError::NoChange(anchor.txid))?;
    }
    Ok(out)
}

/// The record the anchorer would have kept for `package`, confirmed in its block.
fn anchor_record(
    package: &ChainPackage,
    anchor: &ReplayedAnchor,
    prev_output: &TxOut,
    tip_height: u64,
    confirmations: u64,
) -> AnchorRecord {
    let fee = anchor_fee(&package.commit, &package.anchor);
    let weight = package.anchor.weight().to_wu().max(1);
    let depth = (tip_height + 1).saturating_sub(package.block_height);
    AnchorRecord {
        batch: anchor.data.first_batch,
        count: anchor.batches.len() as u64,
        prev_value_sat: prev_output.value.to_sat(),
        prev_script: prev_output.script_pubkey.to_bytes(),
        sweeps: package
            .commit
            .input
            .iter()
            .skip(1)
            .zip(&package.swept)
            .map(|(input, out)| SweptOutput {
                txid: input.previous_output.txid.to_byte_array(),
                vout: input.previous_output.vout,
                value: out.as_ref().map_or(0, |o| o.value.to_sat()),
                script: out
                    .as_ref()
                    .map_or_else(Vec::new, |o| o.script_pubkey.to_bytes()),
                owner: None,
            })
            .collect(),
        prelude: std::iter::once(&package.commit)
            .chain(&package.reveals)
            .map(serialize)
            .collect(),
        versions: vec![AnchorVersion {
            txid: anchor.txid.to_byte_array(),
            raw_tx: serialize(&package.anchor),
            fee_sat: fee.to_sat(),
            target_sat_per_kwu: fee.to_sat() * 1000 / weight,
        }],
        status: if depth >= confirmations {
            AnchorStatus::Anchored
        } else {
            AnchorStatus::Confirmed
        },
        confirmed: Some(0),
        block_hash: Some(package.block_hash.to_byte_array()),
        block_height: Some(package.block_height),
        confirmations: depth,
        broadcast_height: None,
    }
}

/// The anchor transaction's own fee: what it spends of the commit minus what it pays out.
fn anchor_fee(commit: &Transaction, anchor: &Transaction) -> Amount {
    let commit_txid = commit.compute_txid();
    let spent: Amount = anchor
        .input
        .iter()
        .filter(|i| i.previous_output.txid == commit_txid)
        .filter_map(|i| commit.output.get(i.previous_output.vout as usize))
        .map(|o| o.value)
        .sum();
    let paid: Amount = anchor.output.iter().map(|o| o.value).sum();
    spent.checked_sub(paid).unwrap_or(Amount::ZERO)
}
