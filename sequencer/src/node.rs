//! The sequencer's node state: the in-memory [`RollupState`], the ordered mempool and its pending
//! nullifiers, sealed-but-unproven batch witnesses, and the redb [`Store`] behind them.
//!
//! Two locks: the node's mutex guards the mempool, the reservations and an [`AdmissionView`] of
//! the state (note leaves, spent nullifiers, summary), everything admission reads; the trees
//! (the full [`RollupState`]) have their own mutex, held by the sealer while it builds a batch
//! witness and writes it, and briefly by Merkle-path reads. Sealing therefore never blocks
//! admission: it takes its transfers under the node's mutex, builds and stores the batch under
//! the trees' mutex only, then swaps the new view in (lock order: trees, then node).
//!
//! Admission of a transfer has three steps:
//! 1. [`Node::precheck`], without the lock and concurrently with other submissions: everything
//!    that does not depend on the state (ciphertext lengths, who may deposit, ownership, the
//!    nullifier formula, output rhos and commitments, balance, policy, the EdDSA signature);
//! 2. [`Node::admit`], under the node's mutex: the state rules (notes present at their
//!    positions, nullifiers unspent in the state and in the mempool, duplicates). It reserves
//!    the id and nullifiers, gives the transfer its arrival sequence number and queues it;
//! 3. group commit: one writer thread drains every queued transfer, stores them in ONE redb write
//!    transaction (one fsync), moves them into the mempool in sequence order and only then
//!    acknowledges each. If the transaction fails the reservations are released and every
//!    waiter gets the error; nothing is half-applied.
//!
//! Because step 2 is serialised, two concurrent submissions spending the same note cannot both
//! be accepted; the rules are checked in exactly `Transfer::validate`'s order, so the error of an
//! invalid transfer is the one `validate` reports. Sealing sees only the mempool, that is only
//! committed transfers, in sequence order. Methods here block (hashing, signature checks, fsync);
//! async callers use [`Node::submit_async`] or run them in `spawn_blocking`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ark_bn254::Fr;
use ark_ff::Zero;
use tokio::sync::{oneshot, Notify};
use veil_circuits::batch::{
    apply_published, build_batch_admitted, BatchError, BatchPublicInputs, BatchShape, BuiltBatch,
};
use veil_circuits::field;
use veil_circuits::keys::owner_tag;
use veil_circuits::note::{
    is_note_ciphertext_len, nullifier, NOTE_CIPHERTEXT_LEN_COMPACT, NOTE_CIPHERTEXT_LEN_MEMO,
};
use veil_circuits::tree::MerklePath;
use veil_circuits::{RollupState, StateSummary, Transfer, TransferError};

use veil_verifier::da::{AnchorData, BatchData, TransferData, PROOF_LEN};

use crate::store::{
    AnchorRecord, AnchorStatus, BatchRecord, NoteEntry, ProofTiming, SealWrite, Store, StoreError,
    TransferState,
};

pub use veil_wire::{public_transfer_id, transfer_id, TransferId};

/// Where a transfer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Accepted, waiting in the mempool.
    Pending,
    /// Sealed in batch `n`, not yet proven.
    Batched(u64),
    /// Batch `n` is proven.
    Proven(u64),
    /// Batch `n` is anchored on Bitcoin (the required confirmations) by this transaction id.
    Anchored(u64, String),
    /// Dropped at sealing.
    Rejected(String),
}

/// Why a submission was refused. Nothing is stored or changed when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The same transfer (same public data) was already accepted.
    #[error("transfer {0} was already submitted")]
    Duplicate(TransferId),
    /// Another transfer already credits this `deposit_ref` (pending, sealed or proven): a Bitcoin
    /// outpoint is credited at most once.
    #[error("deposit_ref {deposit_ref} is already credited by transfer {existing}")]
    DuplicateDeposit {
        /// The reference (hex).
        deposit_ref: String,
        /// The transfer that credits it.
        existing: TransferId,
    },
    /// `public_in > 0` outside the operator's deposit endpoint.
    #[error("deposits (public_in > 0) are accepted only from the operator")]
    DepositNotAllowed,
    /// The operator's deposit endpoint got a transfer without `public_in`.
    #[error("not a deposit: public_in is 0")]
    NotADeposit,
    /// A ciphertext of neither note ciphertext length.
    #[error(
        "ciphertext {index} is {len} bytes, expected {NOTE_CIPHERTEXT_LEN_COMPACT} (no memo) or \
         {NOTE_CIPHERTEXT_LEN_MEMO} (with a memo)"
    )]
    BadCiphertext {
        /// Output index.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// The two ciphertexts differ in length (only one output carries a memo).
    #[error(
        "ciphertexts are {0} and {1} bytes: both outputs must carry a memo ({NOTE_CIPHERTEXT_LEN_MEMO} \
         bytes each) or neither ({NOTE_CIPHERTEXT_LEN_COMPACT} bytes each)"
    )]
    MixedCiphertextLengths(usize, usize),
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
        TransferError::CiphertextMismatch => "ciphertext_mismatch",
        TransferError::DepositReference => "deposit_reference",
        TransferError::WithdrawalDestination => "withdrawal_destination",
    }
}

impl SubmitError {
    /// The API error code.
    pub fn code(&self) -> &'static str {
        match self {
            SubmitError::Duplicate(_) => "duplicate_transfer",
            SubmitError::DuplicateDeposit { .. } => "duplicate_deposit",
            SubmitError::DepositNotAllowed => "deposit_not_allowed",
            SubmitError::NotADeposit => "not_a_deposit",
            SubmitError::BadCiphertext { .. } | SubmitError::MixedCiphertextLengths(..) => {
                "bad_ciphertext"
            }
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
    /// Anchor data was asked for a batch that is not sealed and proven.
    #[error("batch {0} is not proven: it has no anchor data yet")]
    NotProven(u64),
    /// The batches' data does not encode (a stored record is inconsistent).
    #[error("anchor data: {0}")]
    AnchorData(#[from] veil_verifier::da::DaError),
}

/// Counters exported at `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Transfers accepted.
    pub accepted: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    proving_micros: AtomicU64,
    /// Batches anchored with the required confirmations, counted from batch 0 without gaps.
    pub anchored_height: AtomicU64,
    /// Batches with a signed (persisted) anchor.
    pub anchor_signed_height: AtomicU64,
    /// Anchor transactions broadcast (first broadcasts, re-broadcasts and fee bumps).
    pub anchor_broadcasts: AtomicU64,
    /// RBF fee bumps.
    pub anchor_fee_bumps: AtomicU64,
    /// Anchors seen leaving the best chain.
    pub anchor_reorgs: AtomicU64,
    /// Anchoring passes that failed (Bitcoin Core unreachable, refusals).
    pub anchor_errors: AtomicU64,
    /// Peg-in outputs credited by the bridge watcher.
    pub bridge_credited: AtomicU64,
    /// Credited peg-ins a reorg took out of the best chain.
    pub bridge_reorged_after_credit: AtomicU64,
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
    /// Its Bitcoin anchor, once signed.
    pub anchor: Option<AnchorRecord>,
    /// When its proof was stored and how long proving took, when recorded.
    pub proof_timing: Option<ProofTiming>,
}

struct PendingTransfer {
    seq: u64,
    id: TransferId,
    transfer: Transfer,
    arrived: Instant,
}

/// A transfer whose state-independent rules were checked by [`Node::precheck`], with what the
/// state checks of [`Node::admit`] need.
pub struct Prechecked {
    id: TransferId,
    transfer: Transfer,
    /// Rule 1 per input.
    owner_ok: [bool; 2],
    /// Each input note's commitment (for rule 2).
    input_commitments: [Fr; 2],
    /// Rule 3's formula per input.
    nullifier_ok: [bool; 2],
    /// The first failing rule among those `Transfer::validate` checks after its input loop.
    rest: Result<(), TransferError>,
}

impl Prechecked {
    /// The transfer's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The acknowledgement of an admitted transfer: resolves once its group commit is durable.
pub struct Admission {
    id: TransferId,
    done: oneshot::Receiver<Result<(), SubmitError>>,
}

impl Admission {
    /// The transfer's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits (async) for the commit.
    pub async fn committed(self) -> Result<(TransferId, Status), SubmitError> {
        match self.done.await {
            Ok(Ok(())) => Ok((self.id, Status::Pending)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SubmitError::Unavailable),
        }
    }

    /// Waits (blocking; not from an async task) for the commit.
    pub fn wait(self) -> Result<(TransferId, Status), SubmitError> {
        match self.done.blocking_recv() {
            Ok(Ok(())) => Ok((self.id, Status::Pending)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SubmitError::Unavailable),
        }
    }
}

/// An admitted transfer waiting for the group commit.
struct Queued {
    pending: PendingTransfer,
    done: oneshot::Sender<Result<(), SubmitError>>,
}

/// What admission needs of the state, kept apart from the trees so that sealing (which rewrites
/// the trees) never blocks it: the note leaves by position, the spent nullifiers, the summary.
pub struct AdmissionView {
    leaves: Vec<Fr>,
    spent: HashSet<Fr>,
    summary: StateSummary,
}

impl AdmissionView {
    /// The view of `state`.
    pub fn of(state: &RollupState) -> Self {
        let mut view = AdmissionView {
            leaves: Vec::new(),
            spent: HashSet::new(),
            summary: state.summary(),
        };
        view.extend(
            state,
            (1..state.nullifiers.count()).filter_map(|i| state.nullifiers.leaf(i).map(|l| l.value)),
        );
        view
    }

    /// Catches up with `state` after a batch that inserted `nullifiers`.
    fn extend(&mut self, state: &RollupState, nullifiers: impl IntoIterator<Item = Fr>) {
        let from = self.leaves.len() as u64;
        self.leaves
            .extend((from..state.notes.count()).map(|p| state.notes.leaf(p)));
        self.spent
            .extend(nullifiers.into_iter().filter(|nf| !nf.is_zero()));
        self.summary = state.summary();
    }

    /// The note commitment at `pos`, if below the note count.
    fn leaf(&self, pos: u64) -> Option<Fr> {
        usize::try_from(pos)
            .ok()
            .and_then(|p| self.leaves.get(p))
            .copied()
    }

    /// Whether `nf` is in the nullifier tree.
    fn is_spent(&self, nf: &Fr) -> bool {
        self.spent.contains(nf)
    }
}

struct Inner {
    view: AdmissionView,
    /// Committed transfers, in arrival order.
    mempool: Vec<PendingTransfer>,
    /// Admitted, not yet committed, in arrival order (the writer's queue).
    queue: Vec<Queued>,
    /// Ids of the mempool and of admitted transfers.
    pending_ids: HashSet<TransferId>,
    /// Nullifiers of the mempool and of admitted transfers.
    pending_nullifiers: HashSet<Fr>,
    /// Every `deposit_ref` credited by a sealed, pending or admitted transfer, with its id:
    /// rebuilt from the store at open, so an outpoint is credited once across the whole history.
    deposit_refs: HashMap<Fr, TransferId>,
    next_seq: u64,
    batch_height: u64,
    proven_height: u64,
    /// Witnesses of sealed, unproven batches, kept for the prover.
    unproven: BTreeMap<u64, BuiltBatch>,
    failed: bool,
    /// Set on drop: the writer commits what is queued and exits.
    closing: bool,
}

impl Inner {
    /// Releases an admitted transfer's mempool reservations (id and nullifiers), once it is
    /// sealed or when it is dropped (then also with [`Inner::forget_deposit`]).
    fn release(&mut self, p: &PendingTransfer) {
        self.pending_ids.remove(&p.id);
        for nf in &p.transfer.public.nullifiers {
            self.pending_nullifiers.remove(nf);
        }
    }

    /// Frees the `deposit_ref` of a transfer that will never be in the history (its commit
    /// failed, or it was rejected at sealing).
    fn forget_deposit(&mut self, p: &PendingTransfer) {
        let r = p.transfer.public.deposit_ref;
        if self.deposit_refs.get(&r) == Some(&p.id) {
            self.deposit_refs.remove(&r);
        }
    }

    /// Records that transfer `id` credits `t`'s `deposit_ref`, if it has one.
    fn note_deposit(&mut self, id: &TransferId, t: &Transfer) {
        if !t.public.deposit_ref.is_zero() {
            self.deposit_refs.insert(t.public.deposit_ref, id.clone());
        }
    }
}

/// What the node and its writer thread share.
struct Shared {
    store: Store,
    inner: Mutex<Inner>,
    /// The trees; see the module doc on the lock order.
    trees: Mutex<RollupState>,
    /// Signalled when the queue gets work or the node closes.
    writer_wake: Condvar,
    metrics: Arc<Metrics>,
    seal_wanted: Arc<Notify>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves `failed` as the guard of consistency.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn trees(&self) -> MutexGuard<'_, RollupState> {
        self.trees.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Most transfers stored by one group commit (bounds a transaction's size and its latency).
pub const MAX_GROUP: usize = 4096;

/// The group-commit writer: drains the queue, stores each group in one write transaction,
/// moves the committed transfers into the mempool, then acknowledges them.
fn run_writer(shared: Arc<Shared>) {
    loop {
        let group: Vec<Queued> = {
            let mut inner = shared.lock();
            while inner.queue.is_empty() && !inner.closing {
                inner = shared
                    .writer_wake
                    .wait(inner)
                    .unwrap_or_else(|e| e.into_inner());
            }
            if inner.queue.is_empty() {
                return; // closing, nothing left
            }
            let take = inner.queue.len().min(MAX_GROUP);
            inner.queue.drain(..take).collect()
        };
        let rows: Vec<(&str, u64, &Transfer)> = group
            .iter()
            .map(|q| (q.pending.id.as_str(), q.pending.seq, &q.pending.transfer))
            .collect();
        let result = shared.store.insert_pending_group(&rows);
        drop(rows);
        let mut acks = Vec::with_capacity(group.len());
        let mut committed = 0u64;
        {
            let mut inner = shared.lock();
            match result {
                Ok(stored) => {
                    for (q, stored) in group.into_iter().zip(stored) {
                        if stored {
                            committed += 1;
                            inner.mempool.push(q.pending);
                            acks.push((q.done, Ok(())));
                        } else {
                            inner.release(&q.pending);
                            inner.forget_deposit(&q.pending);
                            let id = q.pending.id.clone();
                            acks.push((q.done, Err(SubmitError::Duplicate(id))));
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, transfers = group.len(), "group commit failed");
                    let e = Arc::new(e);
                    for q in group {
                        inner.release(&q.pending);
                        inner.forget_deposit(&q.pending);
                        let err = SubmitError::Store(StoreError::Group(e.clone()));
                        acks.push((q.done, Err(err)));
                    }
                }
            }
        }
        if committed > 0 {
            shared
                .metrics
                .accepted
                .fetch_add(committed, Ordering::Relaxed);
            tracing::debug!(transfers = committed, "group committed");
            shared.seal_wanted.notify_one();
        }
        for (done, r) in acks {
            // The submitter may have gone away; the transfer stays accepted.
            let _ = done.send(r);
        }
    }
}

/// The sequencer node.
pub struct Node {
    shape: BatchShape,
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Woken when transfers are committed (the sealer decides whether to seal).
    pub seal_wanted: Arc<Notify>,
    /// Woken when a batch is sealed (the prover picks it up).
    pub prove_wanted: Notify,
    /// Woken when a batch is proven or an anchoring pass is asked for (the anchorer runs).
    pub anchor_wanted: Notify,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.writer_wake.notify_all();
        if let Some(w) = self.writer.take() {
            if w.join().is_err() {
                tracing::error!("the group-commit writer panicked");
            }
        }
    }
}

impl Node {
    /// Opens the store in `dir` and rebuilds the in-memory state by replaying every sealed batch
    /// (proven ones from their public data, the others from their transfers, which their
    /// witnesses need; see `store.rs` on the cost), then reloads the mempool and starts the
    /// group-commit writer.
    pub fn open(dir: &Path, shape: BatchShape) -> Result<Node, NodeError> {
        let store = Store::open(dir, shape)?;
        let meta = store.meta()?;
        let mut state = RollupState::genesis(shape.depth);
        let mut unproven = BTreeMap::new();
        let mut deposit_refs = HashMap::new();
        for n in 0..meta.batch_height {
            let rec = store
                .batch(n)?
                .ok_or_else(|| StoreError::Corrupt(format!("batch {n} missing")))?;
            if n < meta.proven_height {
                // Proven: its public data is all the trees need (and all a batch restored
                // from Bitcoin has), and its proof vouched for it.
                for public in &rec.public {
                    if !public.deposit_ref.is_zero() {
                        deposit_refs.insert(public.deposit_ref, public_transfer_id(public));
                    }
                }
                let applied = apply_published(&mut state, shape, n, &rec.public)?;
                if applied.public_inputs != rec.public_inputs || applied.new_state != rec.new_state
                {
                    return Err(NodeError::ReplayMismatch(n));
                }
                continue;
            }
            let mut transfers = Vec::with_capacity(rec.transfer_ids.len());
            for id in &rec.transfer_ids {
                let t = store
                    .transfer(id)?
                    .ok_or_else(|| StoreError::Corrupt(format!("transfer {id} missing")))?;
                let t = t.transfer.to_transfer()?;
                if !t.public.deposit_ref.is_zero() {
                    deposit_refs.insert(t.public.deposit_ref, id.clone());
                }
                transfers.push(t);
            }
            // Validated when admitted; the stored public inputs check the replay.
            let built = build_batch_admitted(&mut state, shape, n, &transfers)?;
            if built.public_inputs != rec.public_inputs || built.new_state != rec.new_state {
                return Err(NodeError::ReplayMismatch(n));
            }
            // Proven out of order (by a prover worker) while an earlier batch was not.
            if store.proof(n)?.is_none() {
                unproven.insert(n, built);
            }
        }
        if let Some(summary) = store.state_summary()? {
            if summary != state.summary() {
                return Err(NodeError::ReplayMismatch(meta.batch_height));
            }
        }
        let mut inner = Inner {
            view: AdmissionView::of(&state),
            mempool: Vec::new(),
            queue: Vec::new(),
            pending_ids: HashSet::new(),
            pending_nullifiers: HashSet::new(),
            deposit_refs,
            next_seq: meta.next_seq,
            batch_height: meta.batch_height,
            proven_height: meta.proven_height,
            unproven,
            failed: false,
            closing: false,
        };
        let now = Instant::now();
        for (seq, id, transfer) in store.mempool()? {
            let pending = &inner.pending_nullifiers;
            if let Err(e) = transfer.validate(&state, |nf| pending.contains(nf)) {
                // Cannot happen for transfers validated on submission; kept safe regardless.
                tracing::warn!(%id, error = %e, "dropping mempool transfer that no longer applies");
                store.reject(seq, &id, transfer_error_code(&e))?;
                continue;
            }
            inner.pending_nullifiers.extend(transfer.public.nullifiers);
            inner.pending_ids.insert(id.clone());
            inner.note_deposit(&id, &transfer);
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
        let metrics = Arc::new(Metrics::default());
        let seal_wanted = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            store,
            inner: Mutex::new(inner),
            trees: Mutex::new(state),
            writer_wake: Condvar::new(),
            metrics: metrics.clone(),
            seal_wanted: seal_wanted.clone(),
        });
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("veil-group-commit".into())
                .spawn(move || run_writer(shared))
                .map_err(|e| NodeError::Task(format!("starting the writer thread: {e}")))?
        };
        Ok(Node {
            shape,
            shared,
            writer: Some(writer),
            metrics,
            seal_wanted,
            prove_wanted: Notify::new(),
            anchor_wanted: Notify::new(),
        })
    }

    /// The circuit shape.
    pub fn shape(&self) -> BatchShape {
        self.shape
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.lock()
    }

    /// The node's store (the bridge's records live next to the chain's).
    pub(crate) fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Validates `t` against the state and the mempool, stores it durably (group commit), then
    /// returns once it is in the mempool. `operator` allows (and requires) a deposit. Blocks:
    /// call it from a thread, not an async task (see [`Node::submit_async`]).
    pub fn submit(&self, t: Transfer, operator: bool) -> Result<(TransferId, Status), SubmitError> {
        let checked = self.precheck(t, operator)?;
        self.admit(checked)?.wait()
    }

    /// [`Node::submit`] for async callers: the checks run on tokio's blocking pool, the commit
    /// is awaited without holding a thread.
    pub async fn submit_async(
        self: Arc<Self>,
        t: Transfer,
        operator: bool,
    ) -> Result<(TransferId, Status), SubmitError> {
        let admission = tokio::task::spawn_blocking(move || {
            let checked = self.precheck(t, operator)?;
            self.admit(checked)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "admission task failed");
            SubmitError::Unavailable
        })??;
        admission.committed().await
    }

    /// Step 1 of admission: every rule that does not depend on the state, without the lock.
    /// Rules that fail here are reported by [`Node::admit`] in `Transfer::validate`'s order.
    pub fn precheck(&self, t: Transfer, operator: bool) -> Result<Prechecked, SubmitError> {
        for (index, ct) in t.ciphertexts.iter().enumerate() {
            if !is_note_ciphertext_len(ct.len()) {
                return Err(SubmitError::BadCiphertext {
                    index,
                    len: ct.len(),
                });
            }
        }
        let [len1, len2] = [t.ciphertexts[0].len(), t.ciphertexts[1].len()];
        if len1 != len2 {
            return Err(SubmitError::MixedCiphertextLengths(len1, len2));
        }
        let is_deposit = t.public.public_in > 0;
        if is_deposit && !operator {
            return Err(SubmitError::DepositNotAllowed);
        }
        if operator && !is_deposit {
            return Err(SubmitError::NotADeposit);
        }
        let id = transfer_id(&t);
        // Sealed or committed earlier (admitted and mempool ids are checked under the lock).
        if self.store().contains_transfer(&id)? {
            return Err(SubmitError::Duplicate(id));
        }
        Ok(stateless_checks(id, t))
    }

    /// Step 2 of admission, under the lock: the state rules, then the reservation of the id and
    /// nullifiers and a place in the writer's queue. The returned [`Admission`] resolves once
    /// the transfer is durable and in the mempool.
    pub fn admit(&self, p: Prechecked) -> Result<Admission, SubmitError> {
        let mut inner = self.lock();
        if inner.failed {
            return Err(SubmitError::Unavailable);
        }
        if inner.closing {
            return Err(SubmitError::Unavailable);
        }
        if inner.pending_ids.contains(&p.id) {
            return Err(SubmitError::Duplicate(p.id));
        }
        let deposit_ref = p.transfer.public.deposit_ref;
        if let Some(existing) = inner.deposit_refs.get(&deposit_ref) {
            return Err(if *existing == p.id {
                SubmitError::Duplicate(p.id)
            } else {
                SubmitError::DuplicateDeposit {
                    deposit_ref: field::to_hex(&deposit_ref),
                    existing: existing.clone(),
                }
            });
        }
        check_state_rules(&p, &inner.view, &inner.pending_nullifiers)?;
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner
            .pending_nullifiers
            .extend(p.transfer.public.nullifiers);
        inner.pending_ids.insert(p.id.clone());
        inner.note_deposit(&p.id, &p.transfer);
        let (tx, rx) = oneshot::channel();
        inner.queue.push(Queued {
            pending: PendingTransfer {
                seq,
                id: p.id.clone(),
                transfer: p.transfer,
                arrived: Instant::now(),
            },
            done: tx,
        });
        drop(inner);
        self.shared.writer_wake.notify_one();
        tracing::debug!(id = %p.id, seq, "transfer admitted");
        Ok(Admission { id: p.id, done: rx })
    }

    /// Seals up to `B` mempool transfers, in arrival order, as the next batch and stores it in
    /// one transaction. Returns its number, or `None` when the mempool is empty. A transfer that
    /// no longer applies is marked rejected and skipped. Admission goes on meanwhile: the
    /// witness is built and stored under the trees' lock only (see the module doc).
    pub fn seal(&self) -> Result<Option<u64>, NodeError> {
        let mut trees = self.shared.trees();
        loop {
            // Only this function removes from the mempool's front, and it holds the trees'
            // lock, so the first `take` transfers stay the same until they are drained below.
            let (n, batch) = {
                let inner = self.lock();
                if inner.failed {
                    return Err(NodeError::Unavailable);
                }
                if inner.mempool.is_empty() {
                    return Ok(None);
                }
                let take = inner.mempool.len().min(self.shape.batch_size);
                let batch: Vec<(u64, TransferId, Transfer)> = inner.mempool[..take]
                    .iter()
                    .map(|p| (p.seq, p.id.clone(), p.transfer.clone()))
                    .collect();
                (inner.batch_height, batch)
            };
            let transfers: Vec<Transfer> = batch.iter().map(|(_, _, t)| t.clone()).collect();
            let old_state = trees.summary();
            let built = match build_batch_admitted(&mut trees, self.shape, n, &transfers) {
                Ok(b) => b,
                Err(BatchError::Transfer { index, error }) => {
                    let mut inner = self.lock();
                    let p = inner.mempool.remove(index);
                    tracing::warn!(id = %p.id, %error, "rejecting transfer at sealing");
                    self.store()
                        .reject(p.seq, &p.id, transfer_error_code(&error))?;
                    inner.release(&p);
                    inner.forget_deposit(&p);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let note_start = built.witness.note_subtree_start;
            let record = BatchRecord {
                number: n,
                transfer_ids: batch.iter().map(|(_, id, _)| id.clone()).collect(),
                public: transfers.iter().map(|t| t.public).collect(),
                public_inputs: built.public_inputs,
                old_state,
                new_state: built.new_state,
                note_start,
            };
            let seqs: Vec<u64> = batch.iter().map(|(seq, _, _)| *seq).collect();
            let notes = NoteEntry::of_batch(
                note_start,
                transfers.iter().map(|t| (&t.public, &t.ciphertexts)),
            );
            if let Err(e) = self.store().seal(SealWrite {
                batch: &record,
                seqs: &seqs,
                notes: &notes,
            }) {
                // Memory is ahead of disk now; refuse service until a restart replays the store.
                self.lock().failed = true;
                tracing::error!(error = %e, batch = n, "sealing write failed; node stopped");
                return Err(e.into());
            }
            let mut view_nullifiers = Vec::with_capacity(2 * transfers.len());
            for t in &transfers {
                view_nullifiers.extend(t.public.nullifiers);
            }
            let mut inner = self.lock();
            let sealed: Vec<PendingTransfer> = inner.mempool.drain(..batch.len()).collect();
            debug_assert!(sealed.iter().zip(&batch).all(|(p, (_, id, _))| &p.id == id));
            for p in &sealed {
                inner.release(p);
            }
            inner.view.extend(&trees, view_nullifiers);
            inner.batch_height = n + 1;
            inner.unproven.insert(n, built);
            drop(inner);
            drop(trees);
            tracing::info!(batch = n, transfers = batch.len(), "batch sealed");
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

    /// The lowest sealed, unproven batch after `n`, and its witness.
    pub fn unproven_after(&self, n: u64) -> Option<(u64, BuiltBatch)> {
        let inner = self.lock();
        inner
            .unproven
            .range(n + 1..)
            .next()
            .map(|(m, b)| (*m, b.clone()))
    }

    /// Records batch `n`'s compressed proof (durably) and advances the proven height over every
    /// consecutive proven batch (proofs from prover workers may come out of order; anchoring
    /// still follows the proven height, in batch order). Returns `false`, storing nothing, when
    /// batch `n` is proven already.
    pub fn record_proof(&self, n: u64, proof: &[u8], took: Duration) -> Result<bool, NodeError> {
        let mut inner = self.lock();
        let timing = ProofTiming {
            proven_at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            proving_ms: took.as_millis() as u64,
        };
        let Some(height) = self.store().store_proof(n, proof, timing)? else {
            return Ok(false);
        };
        inner.unproven.remove(&n);
        inner.proven_height = height;
        drop(inner);
        self.metrics.add_proving_time(took);
        tracing::info!(
            batch = n,
            seconds = took.as_secs_f64(),
            proven_height = height,
            "batch proven"
        );
        self.anchor_wanted.notify_one();
        Ok(true)
    }

    /// Numbers of the sealed batches without a proof, lowest first.
    pub fn unproven_numbers(&self) -> Vec<u64> {
        self.lock().unproven.keys().copied().collect()
    }

    /// Sealed batch `n`'s witness, if it still waits for its proof.
    pub fn unproven_batch(&self, n: u64) -> Option<BuiltBatch> {
        self.lock().unproven.get(&n).cloned()
    }

    /// Public inputs of sealed batch `n` if it still waits for its proof.
    pub fn unproven_public_inputs(&self, n: u64) -> Option<Vec<Fr>> {
        let inner = self.lock();
        inner.unproven.get(&n).map(|b| b.public_inputs.to_vec())
    }

    /// Roots, counts and heights.
    pub fn state_view(&self) -> StateView {
        let inner = self.lock();
        let summary = inner.view.summary;
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
        let state = match self.store().transfer(id)? {
            Some(rec) => rec.state,
            // A transfer of a batch restored from Bitcoin has no record of its own; its batch is
            // proven.
            None => match self.store().restored_batch_of(id)? {
                Some(n) => TransferState::Batched(n),
                None => return Ok(None),
            },
        };
        let proven_height = self.lock().proven_height;
        if let TransferState::Batched(n) = state {
            if let Some(a) = self.store().anchor(n)? {
                if a.status == AnchorStatus::Anchored {
                    return Ok(Some(Status::Anchored(n, txid_hex(&a.current().txid))));
                }
            }
        }
        Ok(Some(match state {
            TransferState::Pending { .. } => Status::Pending,
            TransferState::Batched(n) if n < proven_height || self.store().proof(n)?.is_some() => {
                Status::Proven(n)
            }
            TransferState::Batched(n) => Status::Batched(n),
            TransferState::Rejected(reason) => Status::Rejected(reason),
        }))
    }

    /// Whether `nf` is spent (in the nullifier tree) and whether a mempool transfer spends it.
    pub fn nullifier_status(&self, nf: Fr) -> (bool, bool) {
        let inner = self.lock();
        // 0 is the genesis leaf's value, never a nullifier.
        let spent = !nf.is_zero() && inner.view.is_spent(&nf);
        (spent, inner.pending_nullifiers.contains(&nf))
    }

    /// The note-tree leaf at `pos` with its path at the current root, if `pos` is below the
    /// note count.
    pub fn note_path(&self, pos: u64) -> Option<(Fr, MerklePath, Fr)> {
        let trees = self.shared.trees();
        let notes = &trees.notes;
        if pos >= notes.count() {
            return None;
        }
        let path = notes.path(pos).ok()?;
        Some((notes.leaf(pos), path, notes.root()))
    }

    /// Published notes from `from`.
    pub fn notes(&self, from: u64, limit: usize) -> Result<Vec<(u64, NoteEntry)>, NodeError> {
        Ok(self.store().notes(from, limit)?)
    }

    /// A sealed batch with its proof.
    pub fn batch(&self, n: u64) -> Result<Option<BatchView>, NodeError> {
        let Some(record) = self.store().batch(n)? else {
            return Ok(None);
        };
        let proof = self.store().proof(n)?;
        let anchor = self.store().anchor(n)?;
        let proof_timing = self.store().proof_timing(n)?;
        Ok(Some(BatchView {
            record,
            proof,
            anchor,
            proof_timing,
        }))
    }

    /// The public data of proven batches `first..=last` as it goes on Bitcoin (DESIGN §11,
    /// docs/data-on-bitcoin.md): each batch's proof and, per real transfer, its public fields and
    /// the two note ciphertexts (the notes at `note_start + 2i` and `note_start + 2i + 1`).
    /// Also returns each batch's public inputs, which the anchor's payload commits to.
    pub fn anchor_data(
        &self,
        first: u64,
        last: u64,
    ) -> Result<(AnchorData, Vec<BatchPublicInputs>), NodeError> {
        let store = self.store();
        let mut batches = Vec::new();
        let mut public_inputs = Vec::new();
        for n in first..=last {
            let record = store.batch(n)?.ok_or(NodeError::NotProven(n))?;
            let proof = store.proof(n)?.ok_or(NodeError::NotProven(n))?;
            let proof: [u8; PROOF_LEN] = proof.as_slice().try_into().map_err(|_| {
                StoreError::Corrupt(format!("batch {n}: proof is {} bytes", proof.len()))
            })?;
            public_inputs.push(record.public_inputs);
            let count = record.public.len();
            let notes = store.notes(record.note_start, 2 * count)?;
            let mut transfers = Vec::with_capacity(count);
            for (i, public) in record.public.into_iter().enumerate() {
                let ct = |j: usize| -> Result<Vec<u8>, StoreError> {
                    let want = record.note_start + 2 * i as u64 + j as u64;
                    match notes.get(2 * i + j) {
                        Some((pos, entry)) if *pos == want => Ok(entry.ciphertext.clone()),
                        _ => Err(StoreError::Corrupt(format!(
                            "batch {n}: note {want} is missing"
                        ))),
                    }
                };
                transfers.push(TransferData {
                    public,
                    ciphertexts: [ct(0)?, ct(1)?],
                });
            }
            batches.push(BatchData { proof, transfers });
        }
        let data = AnchorData {
            batch_size: self.shape.batch_size as u64,
            first_batch: first,
            batches,
        };
        Ok((data, public_inputs))
    }

    /// Batch `n`'s anchor record.
    pub fn anchor(&self, n: u64) -> Result<Option<AnchorRecord>, NodeError> {
        Ok(self.store().anchor(n)?)
    }

    /// Every anchor record from batch `from` on.
    pub fn anchors_from(&self, from: u64) -> Result<Vec<AnchorRecord>, NodeError> {
        Ok(self.store().anchors_from(from)?)
    }

    /// Number of batches with a (signed, persisted) anchor.
    pub fn anchor_count(&self) -> Result<u64, NodeError> {
        Ok(self.store().anchor_count()?)
    }

    /// Durably stores the anchor of the next batch (see [`Store::insert_anchor`]).
    pub fn insert_anchor(&self, rec: &AnchorRecord) -> Result<(), NodeError> {
        Ok(self.store().insert_anchor(rec)?)
    }

    /// Durably replaces an anchor record (see [`Store::update_anchor`]).
    pub fn update_anchor(&self, rec: &AnchorRecord) -> Result<(), NodeError> {
        Ok(self.store().update_anchor(rec)?)
    }
}

/// A txid (internal byte order) as Bitcoin displays it (reversed hex).
pub fn txid_hex(txid: &[u8; 32]) -> String {
    let mut b = *txid;
    b.reverse();
    hex::encode(b)
}

/// Runs every state-independent rule of `t` (see [`Prechecked`]).
fn stateless_checks(id: TransferId, t: Transfer) -> Prechecked {
    let addr = owner_tag(&t.pgk.ak, t.pgk.nk);
    let owner_ok = [0, 1].map(|i| t.inputs[i].note.addr == addr);
    let input_commitments = [0, 1].map(|i| t.inputs[i].note.commitment());
    let nullifier_ok = [0, 1].map(|i| {
        nullifier(t.pgk.nk, input_commitments[i], t.inputs[i].position) == t.public.nullifiers[i]
    });
    let rest = t.validate_state_free();
    Prechecked {
        id,
        transfer: t,
        owner_ok,
        input_commitments,
        nullifier_ok,
        rest,
    }
}

/// `Transfer::validate`'s per-input loop with the state-independent results precomputed, then
/// the first stateless failure: the same error `validate` reports, for a fraction of the work.
fn check_state_rules(
    p: &Prechecked,
    state: &AdmissionView,
    pending: &HashSet<Fr>,
) -> Result<(), TransferError> {
    for (i, input) in p.transfer.inputs.iter().enumerate() {
        if !p.owner_ok[i] {
            return Err(TransferError::NotOwner { input: i });
        }
        if !input.is_dummy() {
            let present = state.leaf(input.position) == Some(p.input_commitments[i]);
            if !present {
                return Err(TransferError::UnknownNote { input: i });
            }
        }
        if !p.nullifier_ok[i] {
            return Err(TransferError::WrongNullifier { input: i });
        }
        // The published nullifier is the computed one here.
        let nf = p.transfer.public.nullifiers[i];
        if state.is_spent(&nf) || pending.contains(&nf) {
            return Err(TransferError::AlreadySpent { input: i });
        }
    }
    p.rest.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_circuits::note::output_rho;
    use veil_circuits::SpendingKey;
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
        // Each carries its rho, H(nf_1, j), which its recipient needs to decrypt it.
        for (k, t) in [(0, &d), (1, &d), (2, &pay), (3, &pay)] {
            let rho = output_rho(t.public.nullifiers[0], k as u64 % 2 + 1);
            assert_eq!(notes[k].1.rho, field::to_bytes_be(&rho));
            assert_eq!(rho, t.outputs[k % 2].rho);
            assert_eq!(notes[k].1.ciphertext, t.ciphertexts[k % 2]);
        }
        let (leaf, path, root) = node.note_path(4).unwrap();
        assert_eq!(leaf, pay.public.commitments[0]);
        assert_eq!(path.root(leaf, 4), root);
        assert!(node.note_path(8).is_none());
    }

    #[test]
    fn ciphertexts_of_one_length_89_or_121_are_required() {
        let dir = tempfile::tempdir().unwrap();
        let mut sc = Scenario::new(shape(), 14);
        let alice = sc.new_key();
        let node = Node::open(dir.path(), shape()).unwrap();
        let plain = sc.deposit(&alice, 10);
        sc.set_memos(Some([[1u8; 32], [2u8; 32]]));
        let memo = sc.deposit(&alice, 20);
        // The old 152-byte format, and any other length, is refused before anything else.
        for len in [0, 88, 90, 120, 152] {
            let mut t = plain.clone();
            t.ciphertexts[1] = vec![0u8; len];
            match node.submit(t, true) {
                Err(e @ SubmitError::BadCiphertext { index: 1, .. }) => {
                    assert_eq!(e.code(), "bad_ciphertext");
                    assert!(e.to_string().contains(&format!("{len} bytes")), "{e}");
                }
                other => panic!("{len}: {other:?}"),
            }
        }
        // A memo on one output only would show which output carries one.
        let mut mixed = plain.clone();
        mixed.ciphertexts[0] = memo.ciphertexts[0].clone();
        let e = node.submit(mixed, true).unwrap_err();
        assert!(
            matches!(e, SubmitError::MixedCiphertextLengths(121, 89)),
            "{e:?}"
        );
        assert_eq!(e.code(), "bad_ciphertext");
        assert!(e.to_string().contains("121 and 89 bytes"), "{e}");
        // Both compact, or both with memos: accepted and published as given.
        node.submit(plain.clone(), true).unwrap();
        node.submit(memo.clone(), true).unwrap();
        assert_eq!(node.seal().unwrap(), Some(0));
        let notes = node.notes(0, 10).unwrap();
        let lens: Vec<usize> = notes.iter().map(|(_, n)| n.ciphertext.len()).collect();
        assert_eq!(lens, [89, 89, 121, 121]);
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

    /// The split checks (stateless without the lock, state rules under it) report exactly what
    /// `Transfer::validate` reports, for valid transfers and for every single and paired
    /// corruption of one.
    #[test]
    fn split_checks_agree_with_validate() {
        let mut sc = Scenario::new(shape(), 13);
        let alice = sc.new_key();
        let bob = sc.new_key();
        let d1 = sc.deposit(&alice, 100);
        let d2 = sc.deposit(&alice, 50);
        sc.apply(&[d1.clone(), d2.clone()]).unwrap();
        let notes = sc.unspent(&alice);
        let pay = sc.spend(&alice, &notes, &bob, 30, 0, 2);
        let withdraw = sc.spend(&alice, &notes[..1], &bob, 10, 5, 1);
        let fresh_deposit = sc.deposit(&bob, 7);
        let spent_elsewhere = sc.spend(&alice, &notes[1..], &bob, 1, 0, 0);
        let mut pending = HashSet::new();
        pending.insert(spent_elsewhere.public.nullifiers[0]);

        type Mutation = fn(&mut Transfer);
        let mutations: Vec<(&str, Mutation)> = vec![
            ("none", |_| {}),
            ("owner", |t| t.inputs[1].note.addr += Fr::from(1u64)),
            ("position", |t| t.inputs[0].position += 1),
            ("nullifier", |t| t.public.nullifiers[1] += Fr::from(1u64)),
            ("same input twice", |t| {
                t.inputs[1] = t.inputs[0];
                t.public.nullifiers[1] = t.public.nullifiers[0];
            }),
            ("rho", |t| t.outputs[1].rho += Fr::from(1u64)),
            ("commitment", |t| t.public.commitments[0] += Fr::from(1u64)),
            ("value", |t| t.outputs[0].value += 1),
            ("fee", |t| t.public.fee += 1),
            ("deposit ref", |t| t.public.deposit_ref = Fr::from(0u64)),
            ("stray deposit ref", |t| {
                t.public.deposit_ref = Fr::from(3u64)
            }),
            ("dest", |t| t.public.dest = Fr::from(9u64)),
            ("signature", |t| {
                t.signature = SpendingKey::from_bytes([7u8; 32])
                    .unwrap()
                    .sign(t.public.sighash())
            }),
            ("dummy input", |t| t.inputs[0].note.value = 0),
        ];
        let mut compared = 0;
        let mut codes = HashSet::new();
        for base in [&d1, &pay, &withdraw, &fresh_deposit, &spent_elsewhere] {
            for (i, (a, fa)) in mutations.iter().enumerate() {
                for (b, fb) in &mutations[i..] {
                    let mut t = base.clone();
                    fa(&mut t);
                    fb(&mut t);
                    let expected = t.validate(&sc.state, |nf| pending.contains(nf));
                    let checked = stateless_checks(transfer_id(&t), t);
                    let got = check_state_rules(&checked, &AdmissionView::of(&sc.state), &pending);
                    assert_eq!(got, expected, "mutations {a} + {b}");
                    codes.insert(got.map_or_else(|e| transfer_error_code(&e), |()| "ok"));
                    compared += 1;
                }
            }
        }
        assert_eq!(compared, 5 * 14 * 15 / 2);
        // Valid ones and every rule's failure are among them.
        assert_eq!(codes.len(), 12, "{codes:?}");
    }
}
