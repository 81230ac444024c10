//! The rollup state: note tree and nullifier tree, and the state root that commits to both
//! (DESIGN §5): `state_root = H(DOM_STATE, note_root, note_count, nullifier_root, nullifier_count)`.

use ark_bn254::Fr;
use serde::{Deserialize, Serialize};

use crate::constants::{domain, DOM_STATE};
use crate::field;
use crate::poseidon::poseidon;
use crate::tree::{NoteTree, NullifierTree};

/// The four values a state root commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSummary {
    /// Note tree root.
    #[serde(with = "field::serde_hex")]
    pub note_root: Fr,
    /// Next free note position.
    pub note_count: u64,
    /// Nullifier tree root.
    #[serde(with = "field::serde_hex")]
    pub nullifier_root: Fr,
    /// Next free nullifier-leaf index.
    pub nullifier_count: u64,
}

impl StateSummary {
    /// `H(DOM_STATE, note_root, note_count, nullifier_root, nullifier_count)`.
    pub fn state_root(&self) -> Fr {
        poseidon(&[
            domain(DOM_STATE),
            self.note_root,
            Fr::from(self.note_count),
            self.nullifier_root,
            Fr::from(self.nullifier_count),
        ])
    }
}

/// The full native state a sequencer or prover holds.
#[derive(Debug, Clone)]
pub struct RollupState {
    /// Append-only note commitment tree.
    pub notes: NoteTree,
    /// Indexed nullifier tree.
    pub nullifiers: NullifierTree,
}

impl RollupState {
    /// The genesis state for tree depth `depth`.
    pub fn genesis(depth: usize) -> Self {
        RollupState {
            notes: NoteTree::new(depth),
            nullifiers: NullifierTree::new(depth),
        }
    }

    /// Tree depth.
    pub fn depth(&self) -> usize {
        self.notes.depth()
    }

    /// Roots and counts.
    pub fn summary(&self) -> StateSummary {
        StateSummary {
            note_root: self.notes.root(),
            note_count: self.notes.count(),
            nullifier_root: self.nullifiers.root(),
            nullifier_count: self.nullifiers.count(),
        }
    }

    /// The state root.
    pub fn state_root(&self) -> Fr {
        self.summary().state_root()
    }
}
