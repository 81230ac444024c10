//! Veil's multi-scalar multiplication (MSM) for short-Weierstrass curves (BN254 G1 and G2 in
//! the Groth16 prover): `Σ scalars[i]·bases[i]`, equal to arkworks'
//! `<Projective<P> as VariableBaseMSM>::msm_bigint`, and faster.
//!
//! Pippenger's bucket method with
//! - signed digits ([`digits`]): windows of `c` bits recoded to digits in `[-2^(c-1), 2^(c-1)]`,
//!   so `2^(c-1)` buckets per window; a negative digit adds the negated base (free);
//! - batch-affine bucket accumulation ([`bucket`]): affine buckets, one shared inversion per
//!   batch of additions;
//! - the top window, whose digits take only a few values, spreads its points over copies of
//!   its buckets (otherwise they would all collide in a few busy buckets);
//! - zero digits (hence zero scalars, and all but the lowest window of scalar 1) skipped;
//!   identity bases skipped; a scalar 1 thus costs one batch-affine addition, cheaper than a
//!   separate plain (mixed-addition) sum would;
//! - each window's bucket reduction `Σ (j+1)·bucket[j]` in batch-affine arithmetic too, as
//!   segmented running sums side by side ([`reduce`]) instead of one projective running sum;
//! - for scalar vectors with repeated values (a circuit's witness), [`ScalarGroups`]: the bases
//!   sharing a scalar are summed first (batch-affine), and the MSM runs over the distinct values;
//! - field products in x86-64 assembly (MULX/ADCX/ADOX) where the CPU has BMI2 and ADX
//!   ([`crate::field`], chosen at run time; arkworks' portable code otherwise);
//! - rayon parallelism over (window, chunk of points) tasks, each with its own bucket set that
//!   is reduced to a projective window sum before the task ends, so memory is one bucket set
//!   per running thread plus the digit table (4 bytes per scalar and window).
//!
//! `make bench-msm` measures it against arkworks (ratio about 0.6 at 2^20 points on 2 cores).
//! This file owns the public entry points, the window-size choice and the task split.

mod affine;
mod bucket;
mod digits;
mod groups;
mod reduce;
#[cfg(test)]
mod tests;

use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ff::{AdditiveGroup, BigInteger, PrimeField};
use rayon::prelude::*;

use bucket::BucketSet;
pub use groups::ScalarGroups;

use crate::field::FieldPath;

/// How many points ahead the accumulation prefetches a bucket.
const PREFETCH_AHEAD: usize = 16;

/// The scalar representation the MSM takes (`Fr::into_bigint()`).
pub type BigIntOf<P> = <<P as ark_ec::CurveConfig>::ScalarField as PrimeField>::BigInt;

/// `Σ scalars[i]·bases[i]`; equal to `<Projective<P> as VariableBaseMSM>::msm_bigint(bases,
/// scalars)`.
///
/// Like arkworks' `msm_bigint`, a length mismatch is not an error: the sum runs over the first
/// `min(bases.len(), scalars.len())` pairs. Scalars are integers (any value of the big-integer
/// type is summed exactly, so canonical `into_bigint()` outputs give the field result).
/// Identity bases and zero scalars contribute nothing and cost (almost) nothing.
pub fn msm<P: SWCurveConfig>(bases: &[Affine<P>], scalars: &[BigIntOf<P>]) -> Projective<P> {
    let n = bases.len().min(scalars.len());
    msm_with_window(bases, scalars, window_bits(n))
}

/// [`msm`] for field-element scalars (converted with `into_bigint`, in parallel).
pub fn msm_fr<P: SWCurveConfig>(bases: &[Affine<P>], scalars: &[P::ScalarField]) -> Projective<P> {
    let n = bases.len().min(scalars.len());
    let bigints: Vec<_> = scalars[..n].par_iter().map(|s| s.into_bigint()).collect();
    msm(&bases[..n], &bigints)
}

/// The window size [`msm`] uses for `n` points (tuned on BN254 G1/G2, 2 cores).
pub fn window_bits(n: usize) -> usize {
    if n < 32 {
        return 3;
    }
    // Cost per window ≈ n batch-affine additions (~6M) + 2^(c-1) buckets to reduce (two
    // batch-affine additions each, ~12M). Windows run in parallel, one per thread at a time, so
    // the wall-clock cost is that of the busiest thread: minimise
    // ⌈w(c) / threads⌉·(6n + 12·2^(c-1)), the smaller c on ties (17 windows on 2 threads
    // cost 9 windows' time, 16 windows 8).
    let bits = 255;
    let threads = rayon::current_num_threads().max(1) as u64;
    (4..=20)
        .min_by_key(|&c| {
            let w = digits::window_count(bits, c) as u64;
            w.div_ceil(threads) * (6 * n as u64 + 12 * (1u64 << (c - 1)))
        })
        .unwrap_or(16)
}

/// How many windows [`msm`] runs with window size `c` for canonical scalars of `P`'s scalar
/// field (each point costs one bucket addition per window whose digit is non-zero).
pub fn window_count<P: SWCurveConfig>(c: usize) -> usize {
    digits::window_count(P::ScalarField::MODULUS_BIT_SIZE as usize, c)
}

/// [`msm`] with an explicit window size `c` (`1..=24`); for tuning and benchmarks.
///
/// # Panics
/// If `c` is out of range.
pub fn msm_with_window<P: SWCurveConfig>(
    bases: &[Affine<P>],
    scalars: &[BigIntOf<P>],
    c: usize,
) -> Projective<P> {
    msm_on(FieldPath::current(), bases, scalars, c)
}

/// [`msm_with_window`] with the field products on `path`; for tests and A/B benchmarks.
///
/// # Panics
/// If `c` is out of range, or `path` is not available on this CPU.
pub fn msm_on<P: SWCurveConfig>(
    path: FieldPath,
    bases: &[Affine<P>],
    scalars: &[BigIntOf<P>],
    c: usize,
) -> Projective<P> {
    assert!((1..=24).contains(&c), "window size {c} out of range 1..=24");
    assert!(
        path.available(),
        "field path {path:?} is not available on this CPU"
    );
    let n = bases.len().min(scalars.len());
    let threads = rayon::current_num_threads().max(1);
    // Blocks of points for the digit table: enough for the threads, small enough for caches.
    let block = n.div_ceil(4 * threads).clamp(1, 1 << 14);
    let w = digits::window_count(P::ScalarField::MODULUS_BIT_SIZE as usize, c);
    // Split windows into parts of the point range only when there are too few windows to keep
    // all threads busy (each part costs one extra bucket reduction).
    let parts = (2 * threads).div_ceil(w);
    match path {
        FieldPath::Portable => msm_inner::<P, false>(bases, scalars, c, parts, block),
        FieldPath::Adx => msm_inner::<P, true>(bases, scalars, c, parts, block),
    }
}

/// The MSM with window `c`, each window split into `parts` ranges of digit-table blocks of
/// `block` points (both at least 1).
fn msm_inner<P: SWCurveConfig, const ADX: bool>(
    bases: &[Affine<P>],
    scalars: &[BigIntOf<P>],
    c: usize,
    parts: usize,
    block: usize,
) -> Projective<P> {
    let n = bases.len().min(scalars.len());
    let (bases, scalars) = (&bases[..n], &scalars[..n]);
    if n == 0 {
        return Projective::ZERO;
    }
    // Bucket sets refer to bases by u32 index.
    assert!(n - 1 <= u32::MAX as usize, "MSM of more than 2^32 points");
    // Canonical scalars have at most MODULUS_BIT_SIZE bits; anything larger is summed exactly.
    let modulus_bits = P::ScalarField::MODULUS_BIT_SIZE as usize;
    let bits = if scalars
        .par_iter()
        .any(|s| s.num_bits() as usize > modulus_bits)
    {
        BigIntOf::<P>::NUM_LIMBS * 64
    } else {
        modulus_bits
    };
    let w = digits::window_count(bits, c);

    // Digit table in blocks of points; each block is window-major so that a window task reads
    // its digits sequentially.
    let tables: Vec<Vec<u32>> = scalars
        .par_chunks(block)
        .map(|chunk| {
            let len = chunk.len();
            let mut t = vec![digits::ZERO; w * len];
            for (i, s) in chunk.iter().enumerate() {
                digits::recode(s.as_ref(), c, w, |j, code| t[j * len + i] = code);
            }
            t
        })
        .collect();

    // Tasks: every window × `parts` ranges of blocks.
    let parts = parts.clamp(1, tables.len());
    let per_part = tables.len().div_ceil(parts);
    let tasks: Vec<(usize, usize)> = (0..w)
        .flat_map(|j| (0..parts).map(move |p| (j, p)))
        .collect();
    let buckets = 1usize << (c - 1);
    // The top window's digits are at most 2^top_bits (its scalar bits plus the carry): fewer
    // buckets, each with copies so that the window has as many slots as the others.
    let top_bits = bits - (w - 1) * c;
    let top_buckets = if top_bits < c - 1 {
        1usize << top_bits
    } else {
        buckets
    };
    let partial: Vec<Projective<P>> = tasks
        .into_par_iter()
        .map(|(j, p)| {
            let mut set = if j + 1 == w {
                BucketSet::<P, ADX>::new(bases, top_buckets, buckets / top_buckets)
            } else {
                BucketSet::<P, ADX>::new(bases, buckets, 1)
            };
            let first = p * per_part;
            for (b, t) in tables.iter().enumerate().skip(first).take(per_part) {
                let len = t.len() / w;
                let codes = &t[j * len..(j + 1) * len];
                for (x, code) in codes.iter().enumerate() {
                    // The buckets are random accesses into a set larger than L2: fetch the one
                    // a few points ahead will need while this one is added.
                    if let Some(&ahead) = codes.get(x + PREFETCH_AHEAD) {
                        if ahead != digits::ZERO {
                            set.prefetch(digits::decode(ahead).0);
                        }
                    }
                    if *code != digits::ZERO {
                        let (k, neg) = digits::decode(*code);
                        set.add(k, b * block + x, neg);
                    }
                }
            }
            set.finish()
        })
        .collect();

    // Window sums, then Horner from the top window down.
    let mut acc = Projective::<P>::ZERO;
    for j in (0..w).rev() {
        for _ in 0..c {
            acc.double_in_place();
        }
        for p in &partial[j * parts..(j + 1) * parts] {
            acc += p;
        }
    }
    acc
}
