//! Shared helpers of the verifier's integration tests.

pub mod bitcoind;
