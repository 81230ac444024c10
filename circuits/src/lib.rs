//! Veil's circuits crate: cryptographic primitives natively and as R1CS gadgets, the state trees,
//! transfers with their native validation, and the batch state-transition circuit (DESIGN §2–§7).

pub mod constants;
pub mod eddsa;
pub mod poseidon;
