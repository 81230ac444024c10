//! veil-prover
