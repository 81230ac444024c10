//! Helpers shared by the export suites (`export.rs`, `export_solidity.rs`): the `veil` binary,
//! the workspace and its committed fixtures, and hex-to-decimal for snarkjs's JSON.

#![allow(dead_code)]

#[path = "../veil_bin/mod.rs"]
mod veil_bin;

use std::path::{Path, PathBuf};

#[allow(unused_imports)]
pub use veil_bin::{text, veil};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The path of a committed fixture in `fixtures/data`.
pub fn fixture(name: &str) -> String {
    workspace()
        .join("fixtures/data")
        .join(name)
        .display()
        .to_string()
}

/// A (`0x`-prefixed or bare) big-endian hex number in decimal, as snarkjs writes field elements.
pub fn decimal(hex: &str) -> String {
    let mut digits = vec![0u8]; // little-endian base-10 digits
    for c in hex.trim_start_matches("0x").chars() {
        let mut carry = c.to_digit(16).unwrap();
        for d in digits.iter_mut() {
            let v = u32::from(*d) * 16 + carry;
            *d = (v % 10) as u8;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push((carry % 10) as u8);
            carry /= 10;
        }
    }
    while digits.len() > 1 && digits.last() == Some(&0) {
        digits.pop();
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}
