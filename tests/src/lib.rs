//! Workspace-level integration tests live in `tests/tests/`. This library holds what is shared
//! with code outside that directory: the decoder-fuzzing harness ([`fuzz`]), used by
//! `tests/fuzz_decoders.rs` (proptest byte mutation, in CI) and by the `cargo fuzz` targets in
//! the top-level `fuzz/` directory.

pub mod fuzz;
