//! Workspace-level integration tests live in `tests/tests/`. This library holds what is shared
//! with code outside that directory: the decoder-fuzzing harness ([`fuzz`]), used by
//! `tests/fuzz_decoders.rs` (proptest byte mutation, in CI) and by the `cargo fuzz` targets in
//! the top-level `fuzz/` directory.

// warp's filter types for the whole API nest deeper than the default limit.
#![recursion_limit = "256"]

pub mod fuzz;
