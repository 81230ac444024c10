//! The sequencer's node state: the in-memory [`RollupState`], the ordered mempool and its pending
//! nullifiers, sealed-but-unproven batch witnesses, and the redb [`Store`] behind them.
//!
//! One mutex guards validation, the durable write and the in-memory update of a submission, so
//! two concurrent submissions spending the same note cannot both be accepted. Methods here block
//! (hashing, signature checks, fsync); async callers run them in `spawn_blocking`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ark_bn254::Fr;
use ark_ff::Zero;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use veil_circuits::batch::{build_batch, BatchError, BatchShape, BuiltBatch};
use veil_circuits::field;
use veil_circuits::note::NOTE_CIPHERTEXT_LEN;
use veil_circuits::tree::MerklePath;
use veil_circuits::{RollupState, StateSummary, Transfer, TransferError};

use crate::store::{BatchRecord, NoteEntry, SealWrite, Store, StoreError, TransferState};

/// Hex SHA-256 of a transfer's public data.
pub type TransferId = String;

/// The id of a transfer: hex SHA-256 over its nine public field elements, each 32 bytes
/// big-endian, in batch-hash order. Two submissions of the same transfer share it.
pub fn transfer_id(t: &Transfer) -> TransferId {
    let mut h = Sha256::new();
    for f in t.public.fields() {
        h.update(field::to_bytes_be(&f));
    }
    hex::encode(h.finalize())
}

/// Where a transfer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Accepted, waiting in the mempool.
    Pending,
    /// Sealed in batch `n`, not yet proven.
    Batched(u64),
    /// Batch `n` is proven.
    Proven(u64),
    /// Dropped at sealing.
    Rejected(String),
}

/// Why a submission was refused. Nothing is stored or changed when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The same transfer (same public data) was already accepted.
    #[error("transfer {0} was already submitted")]
    Duplicate(TransferId),
    /// `public_in > 0` outside the operator's deposit endpoint.
    #[error("deposits (public_in > 0) are accepted only from the operator")]
    DepositNotAllowed,
    /// The operator's deposit endpoint got a transfer without `public_in`.
    #[error("not a deposit: public_in is 0")]
    NotADeposit,
    /// A ciphertext of the wrong length.
    #[error("ciphertext {index} is {len} bytes, expected {NOTE_CIPHERTEXT_LEN}")]
    BadCiphertext {
        /// Output index.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// A rule of DESIGN §6 fails.
    #[error(transparent)]
    Invalid(#[from] TransferError),
    /// Storage failed; the transfer was not accepted.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node stopped accepting after an internal failure (restart it).
    #[error("node unavailable after an internal failure")]
    Unavailable,
}

/// The API code of a transfer rule violation.
pub fn transfer_error_code(e: &TransferError) -> &'static str {
    match e {
        TransferError::NotOwner { .. } => "not_owner",
        TransferError::UnknownNote { .. } => "unknown_note",
        TransferError::WrongNullifier { .. } => "wrong_nullifier",
        TransferError::AlreadySpent { .. } => "already_spent",
        TransferError::DuplicateNullifier => "duplicate_nullifier",
        TransferError::WrongOutputRho { .. } => "wrong_output_rho",
        TransferError::WrongCommitment { .. } => "wrong_commitment",
        TransferError::Unbalanced { .. } => "unbalanced",
        TransferError::BadSignature => "bad_signature",
        TransferError::DepositReference => "deposit_reference",
        TransferError::WithdrawalDestination => "withdrawal_destination",
    }
}

impl SubmitError {
    /// The API error code.
    pub fn code(&self) -> &'static str {
        match self {
            SubmitError::Duplicate(_) => "duplicate_transfer",
            SubmitError::DepositNotAllowed => "deposit_not_allowed",
            SubmitError::NotADeposit => "not_a_deposit",
            SubmitError::BadCiphertext { .. } => "bad_ciphertext",
            SubmitError::Invalid(e) => transfer_error_code(e),
            SubmitError::Store(_) => "storage_error",
            SubmitError::Unavailable => "unavailable",
        }
    }
}

/// Node-level failures (opening, replay, sealing, proving bookkeeping).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Storage.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Replaying or sealing a batch failed.
    #[error("batch: {0}")]
    Batch(#[from] BatchError),
    /// Replayed history does not reproduce the stored batch.
    #[error("replay of batch {0} does not match the stored batch")]
    ReplayMismatch(u64),
    /// The node is poisoned after a failed write.
    #[error("node unavailable after an internal failure")]
    Unavailable,
    /// Invalid configuration.
    #[error("config: {0}")]
    Config(String),
    /// The HTTP server could not bind.
    #[error("bind: {0}")]
    Bind(String),
    /// A background task panicked or was cancelled.
    #[error("task: {0}")]
    Task(String),
}

/// Counters exported at `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Transfers accepted.
    pub accepted: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    proving_micros: AtomicU64,
}

impl Metrics {
    /// Counts a refused submission under its error code.
    pub fn record_rejection(&self, code: &'static str) {
        *self
            .rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(code)
            .or_default() += 1;
    }

    /// Refusals by code.
    pub fn rejections(&self) -> BTreeMap<&'static str, u64> {
        self.rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Adds proving time.
    pub fn add_proving_time(&self, d: Duration) {
        self.proving_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Total proving time in seconds.
    pub fn proving_seconds(&self) -> f64 {
        self.proving_micros.load(Ordering::Relaxed) as f64 / 1e6
    }
}

/// A snapshot of the node for `GET /v1/state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateView {
    /// Roots and counts.
    pub summary: StateSummary,
    /// `state_root` of the summary.
    pub state_root: Fr,
    /// Sealed batches.
    pub batch_height: u64,
    /// Proven batches.
    pub proven_height: u64,
    /// Transfers waiting.
    pub mempool_size: usize,
}

/// A sealed batch as served at `GET /v1/batches/{n}`.
#[derive(Debug, Clone)]
pub struct BatchView {
    /// The record.
    pub record: BatchRecord,
    /// Its compressed proof, once proven.
    pub proof: Option<Vec<u8>>,
}

struct PendingTransfer {
    seq: u64,
    id: TransferId,
    transfer: Transfer,
    arrived: Instant,
}

struct Inner {
    state: RollupState,
    /// In arrival order.
    mempool: Vec<PendingTransfer>,
    pending_ids: HashSet<TransferId>,
    pending_nullifiers: HashSet<Fr>,
    next_seq: u64,
    batch_height: u64,
    proven_height: u64,
    /// Witnesses of sealed, unproven batches, kept for the prover.
    unproven: BTreeMap<u64, BuiltBatch>,
    failed: bool,
}

/// The sequencer node.
pub struct Node {
    shape: BatchShape,
    store: Store,
    inner: Mutex<Inner>,
    /// Counters.
    pub metrics: Metrics,
    /// Woken when a transfer arrives (the sealer decides whether to seal).
    pub seal_wanted: Notify,
    /// Woken when a batch is sealed (the prover picks it up).
    pub prove_wanted: Notify,
}

impl Node {
    /// Opens the store in `dir` and rebuilds the in-memory state by replaying every sealed batch
    /// (see `store.rs` on the cost), then reloads the mempool.
    pub fn open(dir: &Path, shape: BatchShape) -> Result<Node, NodeError> {
        let store = Store::open(dir, shape)?;
        let meta = store.meta()?;
        let mut state = RollupState::genesis(shape.depth);
        let mut unproven = BTreeMap::new();
        for n in 0..meta.batch_height {
            let rec = store
                .batch(n)?
                .ok_or_else(|| StoreError::Corrupt(format!("batch {n} missing")))?;
            let mut transfers = Vec::with_capacity(rec.transfer_ids.len());
            for id in &rec.transfer_ids {
                let t = store
                    .transfer(id)?
                    .ok_or_else(|| StoreError::Corrupt(format!("transfer {id} missing")))?;
                transfers.push(t.transfer.to_transfer()?);
            }
            let built = build_batch(&mut state, shape, n, &transfers)?;
            if built.public_inputs != rec.public_inputs || built.new_state != rec.new_state {
                return Err(NodeError::ReplayMismatch(n));
            }
            if n >= meta.proven_height {
                unproven.insert(n, built);
            }
        }
        if let Some(summary) = store.state_summary()? {
            if summary != state.summary() {
                return Err(NodeError::ReplayMismatch(meta.batch_height));
            }
        }
        let mut inner = Inner {
            state,
            mempool: Vec::new(),
            pending_ids: HashSet::new(),
            pending_nullifiers: HashSet::new(),
            next_seq: meta.next_seq,
            batch_height: meta.batch_height,
            proven_height: meta.proven_height,
            unproven,
            failed: false,
        };
        let now = Instant::now();
        for (seq, id, transfer) in store.mempool()? {
            let pending = &inner.pending_nullifiers;
            if let Err(e) = transfer.validate(&inner.state, |nf| pending.contains(nf)) {
                // Cannot happen for transfers validated on submission; kept safe regardless.
                tracing::warn!(%id, error = %e, "dropping mempool transfer that no longer applies");
                store.reject(seq, &id, transfer_error_code(&e))?;
                continue;
            }
            inner.pending_nullifiers.extend(transfer.public.nullifiers);
            inner.pending_ids.insert(id.clone());
            inner.mempool.push(PendingTransfer {
                seq,
                id,
                transfer,
                arrived: now,
            });
        }
        tracing::info!(
            batch_height = inner.batch_height,
            proven_height = inner.proven_height,
            mempool = inner.mempool.len(),
            "node state rebuilt"
        );
        Ok(Node {
            shape,
            store,
            inner: Mutex::new(inner),
            metrics: Metrics::default(),
            seal_wanted: Notify::new(),
            prove_wanted: Notify::new(),
        })
    }

    /// The circuit shape.
    pub fn shape(&self) -> BatchShape {
        self.shape
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves `failed` as the guard of consistency.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Validates `t` against the state and the mempool, stores it durably, then adds it to the
    /// mempool. `operator` allows (and requires) a deposit.
    pub fn submit(&self, t: Transfer, operator: bool) -> Result<(TransferId, Status), SubmitError> {
        for (index, ct) in t.ciphertexts.iter().enumerate() {
            if ct.len() != NOTE_CIPHERTEXT_LEN {
                return Err(SubmitError::BadCiphertext {
                    index,
                    len: ct.len(),
                });
            }
        }
        let is_deposit = t.public.public_in > 0;
        if is_deposit && !operator {
            return Err(SubmitError::DepositNotAllowed);
        }
        if operator && !is_deposit {
            return Err(SubmitError::NotADeposit);
        }
        let id = transfer_id(&t);
        let mut inner = self.lock();
        if inner.failed {
            return Err(SubmitError::Unavailable);
        }
        if inner.pending_ids.contains(&id) || self.store.contains_transfer(&id)? {
            return Err(SubmitError::Duplicate(id));
        }
        {
            let pending = &inner.pending_nullifiers;
            t.validate(&inner.state, |nf| pending.contains(nf))?;
        }
        let seq = inner.next_seq;
        match self.store.insert_pending(&id, seq, &t) {
            Ok(()) => {}
            Err(StoreError::Duplicate(id)) => return Err(SubmitError::Duplicate(id)),
            Err(e) => return Err(e.into()),
        }
        inner.next_seq += 1;
        inner.pending_nullifiers.extend(t.public.nullifiers);
        inner.pending_ids.insert(id.clone());
        inner.mempool.push(PendingTransfer {
            seq,
            id: id.clone(),
            transfer: t,
            arrived: Instant::now(),
        });
        drop(inner);
        self.metrics.accepted.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%id, seq, "transfer accepted");
        self.seal_wanted.notify_one();
        Ok((id, Status::Pending))
    }

    /// Seals up to `B` mempool transfers, in arrival order, as the next batch and stores it in
    /// one transaction. Returns its number, or `None` when the mempool is empty. A transfer that
    /// no longer applies is marked rejected and skipped.
    pub fn seal(&self) -> Result<Option<u64>, NodeError> {
        let mut inner = self.lock();
        if inner.failed {
            return Err(NodeError::Unavailable);
        }
        loop {
            if inner.mempool.is_empty() {
                return Ok(None);
            }
            let take = inner.mempool.len().min(self.shape.batch_size);
            let transfers: Vec<Transfer> = inner.mempool[..take]
                .iter()
                .map(|p| p.transfer.clone())
                .collect();
            let n = inner.batch_height;
            let old_state = inner.state.summary();
            let built = match build_batch(&mut inner.state, self.shape, n, &transfers) {
                Ok(b) => b,
                Err(BatchError::Transfer { index, error }) => {
                    let p = inner.mempool.remove(index);
                    tracing::warn!(id = %p.id, %error, "rejecting transfer at sealing");
                    self.store
                        .reject(p.seq, &p.id, transfer_error_code(&error))?;
                    inner.pending_ids.remove(&p.id);
                    for nf in &p.transfer.public.nullifiers {
                        inner.pending_nullifiers.remove(nf);
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let note_start = built.witness.note_subtree_start;
            let batch = &inner.mempool[..take];
            let record = BatchRecord {
                number: n,
                transfer_ids: batch.iter().map(|p| p.id.clone()).collect(),
                public: transfers.iter().map(|t| t.public).collect(),
                public_inputs: built.public_inputs,
                old_state,
                new_state: built.new_state,
                note_start,
            };
            let seqs: Vec<u64> = batch.iter().map(|p| p.seq).collect();
            let notes: Vec<(u64, NoteEntry)> = transfers
                .iter()
                .enumerate()
                .flat_map(|(s, t)| {
                    (0..2).map(move |j| {
                        (
                            note_start + (2 * s + j) as u64,
                            NoteEntry {
                                commitment: field::to_bytes_be(&t.public.commitments[j]),
                                ciphertext: t.ciphertexts[j].clone(),
                            },
                        )
                    })
                })
                .collect();
            if let Err(e) = self.store.seal(SealWrite {
                batch: &record,
                seqs: &seqs,
                notes: &notes,
            }) {
                // Memory is ahead of disk now; refuse service until a restart replays the store.
                inner.failed = true;
                tracing::error!(error = %e, batch = n, "sealing write failed; node stopped");
                return Err(e.into());
            }
            let sealed: Vec<PendingTransfer> = inner.mempool.drain(..take).collect();
            for p in &sealed {
                inner.pending_ids.remove(&p.id);
                for nf in &p.transfer.public.nullifiers {
                    inner.pending_nullifiers.remove(nf);
                }
            }
            inner.batch_height = n + 1;
            inner.unproven.insert(n, built);
            drop(inner);
            tracing::info!(batch = n, transfers = take, "batch sealed");
            self.prove_wanted.notify_one();
            return Ok(Some(n));
        }
    }

    /// Mempool size and how long its oldest transfer has waited.
    pub fn mempool_wait(&self) -> (usize, Option<Duration>) {
        let inner = self.lock();
        (
            inner.mempool.len(),
            inner.mempool.first().map(|p| p.arrived.elapsed()),
        )
    }

    /// The lowest sealed, unproven batch and its witness.
    pub fn next_unproven(&self) -> Option<(u64, BuiltBatch)> {
        let inner = self.lock();
        inner
            .unproven
            .first_key_value()
            .map(|(n, b)| (*n, b.clone()))
    }

    /// Records batch `n`'s compressed proof (durably) and advances the proven height.
    pub fn record_proof(&self, n: u64, proof: &[u8], took: Duration) -> Result<(), NodeError> {
        let mut inner = self.lock();
        self.store.store_proof(n, proof)?;
        inner.unproven.remove(&n);
        inner.proven_height = n + 1;
        drop(inner);
        self.metrics.add_proving_time(took);
        tracing::info!(batch = n, seconds = took.as_secs_f64(), "batch proven");
        Ok(())
    }

    /// Roots, counts and heights.
    pub fn state_view(&self) -> StateView {
        let inner = self.lock();
        let summary = inner.state.summary();
        StateView {
            summary,
            state_root: summary.state_root(),
            batch_height: inner.batch_height,
            proven_height: inner.proven_height,
            mempool_size: inner.mempool.len(),
        }
    }

    /// A transfer's status, `None` if never accepted.
    pub fn status(&self, id: &str) -> Result<Option<Status>, NodeError> {
        let Some(rec) = self.store.transfer(id)? else {
            return Ok(None);
        };
        let proven_height = self.lock().proven_height;
        Ok(Some(match rec.state {
            TransferState::Pending { .. } => Status::Pending,
            TransferState::Batched(n) if n < proven_height => Status::Proven(n),
            TransferState::Batched(n) => Status::Batched(n),
            TransferState::Rejected(reason) => Status::Rejected(reason),
        }))
    }

    /// Whether `nf` is spent (in the nullifier tree) and whether a mempool transfer spends it.
    pub fn nullifier_status(&self, nf: Fr) -> (bool, bool) {
        let inner = self.lock();
        // 0 is the genesis leaf's value, never a nullifier.
        let spent = !nf.is_zero() && inner.state.nullifiers.contains(nf);
        (spent, inner.pending_nullifiers.contains(&nf))
    }

    /// The note-tree leaf at `pos` with its path at the current root, if `pos` is below the
    /// note count.
    pub fn note_path(&self, pos: u64) -> Option<(Fr, MerklePath, Fr)> {
        let inner = self.lock();
        let notes = &inner.state.notes;
        if pos >= notes.count() {
            return None;
        }
        let path = notes.path(pos).ok()?;
        Some((notes.leaf(pos), path, notes.root()))
    }

    /// Published notes from `from`.
    pub fn notes(&self, from: u64, limit: usize) -> Result<Vec<(u64, NoteEntry)>, NodeError> {
        Ok(self.store.notes(from, limit)?)
    }

    /// A sealed batch with its proof.
    pub fn batch(&self, n: u64) -> Result<Option<BatchView>, NodeError> {
        let Some(record) = self.store.batch(n)? else {
            return Ok(None);
        };
        let proof = self.store.proof(n)?;
        Ok(Some(BatchView { record, proof }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_fixtures::Scenario;

    fn shape() -> BatchShape {
        BatchShape::new(2, 8).unwrap()
    }

    #[test]
    fn submit_validate_seal_and_replay() {
        let dir = tempfile::tempdir().unwrap();
        let mut sc = Scenario::new(shape(), 11);
        let alice = sc.new_key();
        let bob = sc.new_key();
        let d = sc.deposit(&alice, 100);
        let node = Node::open(dir.path(), shape()).unwrap();
        // Deposits only from the operator.
        assert!(matches!(
            node.submit(d.clone(), false),
            Err(SubmitError::DepositNotAllowed)
        ));
        let (id, status) = node.submit(d.clone(), true).unwrap();
        assert_eq!(status, Status::Pending);
        assert_eq!(id, transfer_id(&d));
        assert!(matches!(
            node.submit(d.clone(), true),
            Err(SubmitError::Duplicate(_))
        ));
        // Mirror in the scenario to learn Alice's note position.
        sc.apply(std::slice::from_ref(&d)).unwrap();
        assert_eq!(node.seal().unwrap(), Some(0));
        assert_eq!(node.seal().unwrap(), None);
        assert_eq!(node.state_view().state_root, sc.state.state_root());
        assert_eq!(node.status(&id).unwrap(), Some(Status::Batched(0)));
        let pay = sc.pay(&alice, &bob, 60, 0, 0);
        // Operator endpoint refuses a non-deposit.
        assert!(matches!(
            node.submit(pay.clone(), true),
            Err(SubmitError::NotADeposit)
        ));
        node.submit(pay.clone(), false).unwrap();
        let (spent, pending) = node.nullifier_status(pay.public.nullifiers[0]);
        assert!(!spent && pending);
        // A second spend of the same note, pending in the mempool, is refused.
        let again = sc.pay(&alice, &bob, 10, 0, 0);
        assert!(matches!(
            node.submit(again, false),
            Err(SubmitError::Invalid(TransferError::AlreadySpent {
                input: 0
            }))
        ));
        drop(node);
        // Reopen: the mempool and the state come back.
        let node = Node::open(dir.path(), shape()).unwrap();
        let view = node.state_view();
        assert_eq!(view.mempool_size, 1);
        assert_eq!(view.batch_height, 1);
        assert_eq!(node.next_unproven().unwrap().0, 0);
        assert_eq!(node.seal().unwrap(), Some(1));
        sc.apply(std::slice::from_ref(&pay)).unwrap();
        assert_eq!(node.state_view().state_root, sc.state.state_root());
        let (spent, pending) = node.nullifier_status(pay.public.nullifiers[0]);
        assert!(spent && !pending);
        assert_eq!(node.nullifier_status(Fr::zero()), (false, false));
        // Notes are published at their positions.
        let notes = node.notes(0, 100).unwrap();
        assert_eq!(notes.len(), 4);
        assert_eq!(notes[0].0, 0);
        assert_eq!(
            notes[0].1.commitment,
            field::to_bytes_be(&d.public.commitments[0])
        );
        assert_eq!(
            notes[2].0, 4,
            "second batch starts at the next aligned subtree"
        );
        let (leaf, path, root) = node.note_path(4).unwrap();
        assert_eq!(leaf, pay.public.commitments[0]);
        assert_eq!(path.root(leaf, 4), root);
        assert!(node.note_path(8).is_none());
    }

    #[test]
    fn seal_takes_at_most_b_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut sc = Scenario::new(shape(), 12);
        let alice = sc.new_key();
        let node = Node::open(dir.path(), shape()).unwrap();
        let ds: Vec<Transfer> = (0..3).map(|i| sc.deposit(&alice, 10 + i)).collect();
        let ids: Vec<TransferId> = ds
            .iter()
            .map(|d| node.submit(d.clone(), true).unwrap().0)
            .collect();
        assert_eq!(node.seal().unwrap(), Some(0));
        assert_eq!(node.mempool_wait().0, 1);
        let b0 = node.batch(0).unwrap().unwrap();
        assert_eq!(b0.record.transfer_ids, ids[..2].to_vec());
        assert!(b0.proof.is_none());
        assert_eq!(node.status(&ids[2]).unwrap(), Some(Status::Pending));
        assert_eq!(node.seal().unwrap(), Some(1));
        node.record_proof(0, &[0u8; 128], Duration::from_millis(5))
            .unwrap();
        assert_eq!(node.status(&ids[0]).unwrap(), Some(Status::Proven(0)));
        assert_eq!(node.status(&ids[2]).unwrap(), Some(Status::Batched(1)));
        assert_eq!(node.next_unproven().unwrap().0, 1);
        assert_eq!(node.status("00").unwrap(), None);
    }
}
