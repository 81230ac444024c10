//! veil-verifier
