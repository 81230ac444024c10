//! Signed-digit recoding of MSM scalars: each scalar `k` becomes `w` digits `d_j` of `c` bits
//! with `k = Σ d_j · 2^(j·c)`, `d_j ∈ [-2^(c-1), 2^(c-1))` for the lower windows and
//! `d_{w-1} ∈ [0, 2^(c-1)]` for the top one, so a window needs only `2^(c-1)` buckets (the sign
//! is applied to the base, which is free on short-Weierstrass curves). This module owns the
//! window count and the compact digit code stored in the digit table.

/// Windows of `c` bits needed for scalars below `2^bits` with signed digits.
///
/// The top window must hold at most `c - 1` bits of the scalar so that its digit plus the carry
/// from below stays within `2^(c-1)`: `w·c ≥ bits + 1`.
pub(crate) fn window_count(bits: usize, c: usize) -> usize {
    debug_assert!((1..=31).contains(&c));
    (bits + 1).div_ceil(c).max(1)
}

/// Code of a zero digit (nothing to add in that window).
pub(crate) const ZERO: u32 = 0;

/// The code of digit `d ≠ 0`: `|d| << 1 | (d < 0)`. `|d| ≤ 2^(c-1)`, so `c ≤ 30` fits.
#[inline]
fn encode(d: i64) -> u32 {
    ((d.unsigned_abs() as u32) << 1) | (d < 0) as u32
}

/// The bucket index (`|d| - 1`) and sign (`true` = negative) of a non-zero code.
#[inline]
pub(crate) fn decode(code: u32) -> (usize, bool) {
    debug_assert_ne!(code, ZERO);
    (((code >> 1) - 1) as usize, code & 1 == 1)
}

/// `c` bits of `limbs` (little-endian u64 limbs) starting at bit `offset`; bits past the end are 0.
#[inline]
fn bits_at(limbs: &[u64], offset: usize, c: usize) -> u64 {
    let (idx, shift) = (offset / 64, offset % 64);
    if idx >= limbs.len() {
        return 0;
    }
    let mut v = limbs[idx] >> shift;
    if shift + c > 64 && idx + 1 < limbs.len() {
        v |= limbs[idx + 1] << (64 - shift);
    }
    v & ((1u64 << c) - 1)
}

/// Writes the `w` digit codes of the scalar `limbs` to `out(j, code)` for `j` in `0..w`.
///
/// The caller guarantees the scalar is below `2^(w·c - 1)` (see [`window_count`]); higher bits
/// would be ignored.
#[inline]
pub(crate) fn recode(limbs: &[u64], c: usize, w: usize, mut out: impl FnMut(usize, u32)) {
    let half = 1i64 << (c - 1);
    let full = 1i64 << c;
    let mut carry = 0i64;
    for j in 0..w {
        let coef = bits_at(limbs, j * c, c) as i64 + carry;
        let d = if j + 1 < w && coef >= half {
            carry = 1;
            coef - full
        } else {
            carry = 0;
            coef
        };
        debug_assert!(d.abs() <= half);
        out(j, if d == 0 { ZERO } else { encode(d) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    /// Re-evaluates the recoded digits as a signed integer (i128 is enough for 2 limbs).
    fn eval(limbs: &[u64], c: usize, w: usize) -> i128 {
        let mut digits = vec![0i128; w];
        recode(limbs, c, w, |j, code| {
            digits[j] = if code == ZERO {
                0
            } else {
                let (b, neg) = decode(code);
                let m = b as i128 + 1;
                assert!(m <= 1 << (c - 1), "digit magnitude out of range");
                if neg {
                    -m
                } else {
                    m
                }
            };
        });
        digits.iter().rev().fold(0i128, |acc, &d| (acc << c) + d)
    }

    proptest! {
        #![proptest_config(Config {
            cases: 512,
            rng_seed: RngSeed::Fixed(0xd1617),
            failure_persistence: None,
            ..Config::default()
        })]
        #[test]
        fn msm_digits_recompose(lo in any::<u64>(), hi in 0u64..(1 << 61), c in 1usize..=20) {
            // 125-bit scalars; 2 limbs.
            let limbs = [lo, hi];
            let bits = 125;
            let w = window_count(bits, c);
            let v = (hi as i128) << 64 | lo as i128;
            prop_assert_eq!(eval(&limbs, c, w), v);
        }
    }

    #[test]
    fn msm_digits_extremes() {
        for c in 1..=20 {
            let w = window_count(125, c);
            let max = [u64::MAX, (1 << 61) - 1];
            assert_eq!(eval(&max, c, w), (1i128 << 125) - 1, "c = {c}");
            assert_eq!(eval(&[0, 0], c, w), 0);
            assert_eq!(eval(&[1, 0], c, w), 1);
        }
    }
}
