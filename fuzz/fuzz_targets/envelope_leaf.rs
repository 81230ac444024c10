//! `cargo fuzz` target `envelope_leaf`: Taproot envelope leaf scripts as revealed in a witness. The property is
//! `veil_tests::fuzz::Decoders::check` (shared with `tests/tests/fuzz_decoders.rs`).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veil_tests::fuzz::{Decoders, Target};

static DECODERS: OnceLock<Decoders> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    DECODERS
        .get_or_init(Decoders::new)
        .check(Target::EnvelopeLeaf, data);
});
