//! Veil's circuits crate: cryptographic primitives natively and as R1CS gadgets, the state trees,
//! transfers with their native validation, and the batch state-transition circuit (DESIGN §2–§7).
//!
//! Native code and its gadget live side by side (`poseidon.rs` / `poseidon/gadget.rs`), sharing
//! the constants of [`constants`] and [`poseidon::constants`].

pub mod batch;
pub mod constants;
pub mod eddsa;
pub mod field;
pub mod gadgets;
pub mod keys;
pub mod note;
pub mod poseidon;
pub mod state;
pub mod transfer;
pub mod tree;

/// SHA-256 of this build's circuit sources and `Cargo.lock` (see `build.rs`): caches of the
/// synthesised constraint system are keyed by it.
pub const SOURCE_SHA256: &str = env!("VEIL_CIRCUIT_SOURCE_SHA256");

pub use ark_bn254::Fr;
pub use batch::{
    build_batch, build_batch_unchecked, BatchCircuit, BatchPublicInputs, BatchShape, BuiltBatch,
};
pub use keys::{Network, PaymentAddress, SpendingKey};
pub use note::Note;
pub use state::{RollupState, StateSummary};
pub use transfer::{Transfer, TransferError, TransferPublic};
