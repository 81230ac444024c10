//! `cargo fuzz` target `field_hex`: hex and 32-byte big-endian field elements (`/v1/nullifiers/{nf}`, every JSON field). The property is
//! `veil_tests::fuzz::Decoders::check` (shared with `tests/tests/fuzz_decoders.rs`).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veil_tests::fuzz::{Decoders, Target};

static DECODERS: OnceLock<Decoders> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    DECODERS
        .get_or_init(Decoders::new)
        .check(Target::FieldHex, data);
});
