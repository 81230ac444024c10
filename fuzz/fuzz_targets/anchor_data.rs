//! `cargo fuzz` target `anchor_data`: the anchor data an envelope carries (`veil_verifier::da`). The property is
//! `veil_tests::fuzz::Decoders::check` (shared with `tests/tests/fuzz_decoders.rs`).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veil_tests::fuzz::{Decoders, Target};

static DECODERS: OnceLock<Decoders> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    DECODERS
        .get_or_init(Decoders::new)
        .check(Target::AnchorData, data);
});
