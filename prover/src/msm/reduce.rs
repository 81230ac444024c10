//! The bucket reduction of one Pippenger window: `Σ_j (j+1)·bucket[j]` over affine buckets, in
//! batch-affine arithmetic.
//!
//! The textbook reduction is one running sum from the top bucket down (`running += bucket[j];
//! sum += running`): two projective additions per bucket, about 27 field products, and strictly
//! sequential. Here the buckets are cut into `k` segments of `m` consecutive buckets, reduced side
//! by side: at each of the `m` steps every segment adds its next bucket into its running sum, then
//! its running sum into its weighted sum, as two batches of `k` independent affine additions
//! ([`BatchAdder`], one inversion each, about 6 products per addition). With `R_s` and `S_s` the
//! running and weighted sums of segment `s` (buckets `s·m .. (s+1)·m`, weights `1..=m` from its
//! bottom),
//!
//! `Σ_j (j+1)·bucket[j] = Σ_s S_s + m·Σ_s s·R_s`,
//!
//! and the last sum is one short projective running sum over the segments times `m`. Copies of a bucket (the top window's, see [`super::bucket::BucketSet`]) are first
//! folded together by a tree of batch additions.

use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ff::AdditiveGroup;

use super::affine::BatchAdder;

/// Segments reduced side by side: the size of each batch of affine additions.
pub(crate) const SEGMENTS: usize = 512;

/// `Σ_j (j+1)·B_j` where `B_j = Σ_k slots[j·copies + k]` (`copies ≥ 1` divides `slots.len()`).
pub(crate) fn weighted_sum<P: SWCurveConfig, const ADX: bool>(
    slots: &[Affine<P>],
    copies: usize,
) -> Projective<P> {
    weighted_sum_in::<P, ADX>(slots, copies, SEGMENTS)
}

/// [`weighted_sum`] with at most `segments` segments (at least 1).
pub(crate) fn weighted_sum_in<P: SWCurveConfig, const ADX: bool>(
    slots: &[Affine<P>],
    copies: usize,
    segments: usize,
) -> Projective<P> {
    assert!(copies >= 1 && slots.len().is_multiple_of(copies) && segments >= 1);
    let mut adder = BatchAdder::<P, ADX>::new(segments);
    let folded;
    let buckets = if copies > 1 {
        folded = fold_copies(&mut adder, slots, copies, segments);
        &folded[..]
    } else {
        slots
    };
    let n = buckets.len();
    if n == 0 {
        return Projective::ZERO;
    }
    let k = segments.min(n);
    let m = n.div_ceil(k);
    let bucket = |j: usize| buckets.get(j).copied().unwrap_or_else(Affine::identity);
    let mut running = vec![Affine::<P>::identity(); k];
    let mut weighted = vec![Affine::<P>::identity(); k];
    for t in (0..m).rev() {
        if t > 0 {
            prefetch(buckets, (0..k).map(|s| s * m + t - 1));
        }
        adder.add_assign(&mut running, (0..k).map(|s| (s, bucket(s * m + t))));
        adder.add_assign(&mut weighted, running.iter().copied().enumerate());
    }
    // Σ_s S_s + m·Σ_s s·R_s.
    let mut total = Projective::<P>::ZERO;
    for w in &weighted {
        total += w;
    }
    let mut run = Projective::<P>::ZERO;
    let mut by_segment = Projective::<P>::ZERO;
    for r in running.iter().skip(1).rev() {
        run += r;
        by_segment += &run;
    }
    total + times(by_segment, m)
}

/// `p·m` by double-and-add.
fn times<P: SWCurveConfig>(p: Projective<P>, m: usize) -> Projective<P> {
    let mut acc = Projective::<P>::ZERO;
    for bit in (0..usize::BITS - m.leading_zeros()).rev() {
        acc.double_in_place();
        if (m >> bit) & 1 == 1 {
            acc += &p;
        }
    }
    acc
}

/// Folds each bucket's `copies` slots into one (a power-of-two `copies` takes `log₂ copies`
/// rounds of batch additions; any other count folds one slot at a time).
fn fold_copies<P: SWCurveConfig, const ADX: bool>(
    adder: &mut BatchAdder<P, ADX>,
    slots: &[Affine<P>],
    copies: usize,
    batch: usize,
) -> Vec<Affine<P>> {
    let n = slots.len() / copies;
    let mut cur = slots.to_vec();
    let mut width = copies;
    while width > 1 {
        // Slot k of each bucket takes slot k + keep (when there is one).
        let keep = width.div_ceil(2);
        let mut next: Vec<Affine<P>> = (0..n * keep)
            .map(|i| cur[(i / keep) * width + i % keep])
            .collect();
        for (c, chunk) in next.chunks_mut(batch.max(1)).enumerate() {
            let first = c * batch.max(1);
            let adds = (0..chunk.len()).filter_map(|i| {
                let g = first + i;
                let k = g % keep + keep;
                (k < width).then(|| (i, cur[(g / keep) * width + k]))
            });
            adder.add_assign(chunk, adds);
        }
        cur = next;
        width = keep;
    }
    cur
}

/// Hints the CPU to load the buckets the next step reads (one random line each).
#[inline(always)]
fn prefetch<P: SWCurveConfig>(buckets: &[Affine<P>], next: impl Iterator<Item = usize>) {
    #[cfg(target_arch = "x86_64")]
    for j in next {
        if let Some(b) = buckets.get(j) {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            // SAFETY: prefetching is only a hint and never faults; the address is in bounds.
            unsafe { _mm_prefetch((b as *const Affine<P>).cast::<i8>(), _MM_HINT_T0) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (buckets, next);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::{g1, g2};
    use ark_ec::CurveGroup;
    use ark_ff::UniformRand;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    use crate::field::FieldPath;

    /// The textbook running sum, projective.
    fn naive<P: SWCurveConfig>(slots: &[Affine<P>], copies: usize) -> Projective<P> {
        let (mut running, mut sum) = (Projective::<P>::ZERO, Projective::<P>::ZERO);
        for bucket in slots.chunks(copies).rev() {
            for s in bucket {
                running += s;
            }
            sum += &running;
        }
        sum
    }

    /// Buckets with identities, repeats and opposites (so that running sums meet equal and
    /// opposite points too).
    fn slots<P: SWCurveConfig>(seed: u64, n: usize) -> Vec<Affine<P>> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let base = Affine::<P>::rand(&mut rng);
        (0..n)
            .map(|_| match rng.gen_range(0..5) {
                0 => Affine::identity(),
                1 => base,
                2 => -base,
                _ => Affine::rand(&mut rng),
            })
            .collect()
    }

    fn check<P: SWCurveConfig>(path: FieldPath) {
        for (seed, n, copies, segments) in [
            (1u64, 0usize, 1usize, 4usize),
            (2, 1, 1, 4),
            (3, 5, 1, 1),
            (4, 37, 1, 4),
            (5, 64, 1, 8),
            (6, 100, 1, 512),
            (7, 64, 4, 4),
            (8, 48, 3, 5),
            (9, 96, 8, 2),
        ] {
            let s = slots::<P>(seed, n);
            let got = match path {
                FieldPath::Portable => weighted_sum_in::<P, false>(&s, copies, segments),
                FieldPath::Adx => weighted_sum_in::<P, true>(&s, copies, segments),
            };
            assert_eq!(
                got.into_affine(),
                naive(&s, copies).into_affine(),
                "{path:?} n = {n} copies = {copies} segments = {segments}"
            );
        }
        // Every bucket the same point: running sums double and meet their own negatives.
        let p = Affine::<P>::rand(&mut ChaCha20Rng::seed_from_u64(10));
        for s in [vec![p; 64], [p, -p].repeat(32)] {
            assert_eq!(
                weighted_sum_in::<P, false>(&s, 1, 8).into_affine(),
                naive(&s, 1).into_affine()
            );
        }
    }

    #[test]
    fn segmented_reduction_matches_running_sum() {
        super::super::tests::each_path(|path| {
            check::<g1::Config>(path);
            check::<g2::Config>(path);
        });
    }

    #[test]
    fn times_is_scalar_multiplication() {
        let p = Projective::<g1::Config>::rand(&mut ChaCha20Rng::seed_from_u64(11));
        for m in [0usize, 1, 2, 3, 64, 1000] {
            assert_eq!(times(p, m), p * ark_bn254::Fr::from(m as u64));
        }
    }
}
