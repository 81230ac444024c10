//! The rollup state rebuilt from published data alone ([`crate::da`]): batches are applied in
//! order from genesis, and each yields the public inputs its proof must verify against. What a
//! verifier reading Bitcoin, or a node restored from Bitcoin, runs; it trusts nothing but the
//! data, and the proofs (checked by the caller) say whether the data is a valid history.

use veil_circuits::batch::{apply_published, BatchError, BatchPublicInputs, BatchShape};
use veil_circuits::transfer::TransferPublic;
use veil_circuits::{RollupState, StateSummary};

use crate::da::{AnchorData, PROOF_LEN};

/// Data that does not continue the rebuilt history.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The data is for another batch size than the circuit's.
    #[error("data is for batch size {data}, the circuit's is {circuit}")]
    BatchSize {
        /// `B` the data names.
        data: u64,
        /// `B` of the circuit.
        circuit: usize,
    },
    /// The range does not start where the history stops.
    #[error("data starts at batch {found}, the history continues with batch {expected}")]
    OutOfOrder {
        /// The next batch number.
        expected: u64,
        /// The range's first batch.
        found: u64,
    },
    /// A batch that cannot be applied (too many transfers, a full tree).
    #[error("batch {number}: {source}")]
    Batch {
        /// Batch number.
        number: u64,
        /// Why.
        source: BatchError,
    },
}

/// One applied batch: what its proof must verify against, and where its notes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuiltBatch {
    /// Batch number.
    pub number: u64,
    /// `(old_state_root, new_state_root, batch_hash)` recomputed from the data.
    pub public_inputs: BatchPublicInputs,
    /// The state before it.
    pub old_state: StateSummary,
    /// The state after it.
    pub new_state: StateSummary,
    /// Position of the batch's first note.
    pub note_start: u64,
    /// The batch's compressed proof, as published.
    pub proof: [u8; PROOF_LEN],
    /// The real transfers' public data, in slot order.
    pub transfers: Vec<TransferPublic>,
}

/// The state rebuilt so far.
pub struct Rebuilder {
    shape: BatchShape,
    state: RollupState,
    next_batch: u64,
}

impl Rebuilder {
    /// An empty history for `shape`.
    pub fn genesis(shape: BatchShape) -> Rebuilder {
        Rebuilder {
            shape,
            state: RollupState::genesis(shape.depth),
            next_batch: 0,
        }
    }

    /// The state after the batches applied so far.
    pub fn state(&self) -> &RollupState {
        &self.state
    }

    /// The number of the next batch.
    pub fn next_batch(&self) -> u64 {
        self.next_batch
    }

    /// Applies every batch of `data`, which must continue the history. On error nothing of
    /// `data` is applied.
    pub fn apply(&mut self, data: &AnchorData) -> Result<Vec<RebuiltBatch>, RebuildError> {
        if data.batch_size != self.shape.batch_size as u64 {
            return Err(RebuildError::BatchSize {
                data: data.batch_size,
                circuit: self.shape.batch_size,
            });
        }
        if data.first_batch != self.next_batch {
            return Err(RebuildError::OutOfOrder {
                expected: self.next_batch,
                found: data.first_batch,
            });
        }
        let mut state = self.state.clone();
        let mut out = Vec::with_capacity(data.batches.len());
        for (i, b) in data.batches.iter().enumerate() {
            let number = data.first_batch + i as u64;
            let transfers: Vec<TransferPublic> = b.transfers.iter().map(|t| t.public).collect();
            let applied = apply_published(&mut state, self.shape, number, &transfers)
                .map_err(|source| RebuildError::Batch { number, source })?;
            out.push(RebuiltBatch {
                number,
                public_inputs: applied.public_inputs,
                old_state: applied.old_state,
                new_state: applied.new_state,
                note_start: applied.note_start,
                proof: b.proof,
                transfers,
            });
        }
        self.state = state;
        self.next_batch += data.batches.len() as u64;
        Ok(out)
    }
}
