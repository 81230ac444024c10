//! Batch-affine bucket accumulation for one Pippenger window (or one chunk of a window).
//!
//! Buckets are kept in affine coordinates. Adding a point to a non-empty bucket needs the
//! inverse of `x₂ - x₁` (or `2y` for a doubling); those inverses are computed for a whole batch
//! of pending additions at once with Montgomery's trick (one field inversion and three
//! multiplications per element), so an addition costs about 5M + 1S instead of the 7M + 4S of
//! a mixed Jacobian addition. A bucket takes at most one pending addition per batch: a second
//! point for a busy bucket goes to a small deferred queue that is retried after the next flush;
//! only when that queue is full does the point fall back to a projective side bucket (mixed
//! addition), which keeps skewed inputs (e.g. many equal scalars) linear-time.
//!
//! Special cases are resolved when a point is queued (the bucket's value is final then, since
//! it has no pending addition): identity base → skipped; empty bucket → the point is stored;
//! `P == Q` → a doubling (denominator `2y`); `P == -Q` → the bucket becomes empty. This module
//! owns the bucket set; its final reduction `Σ (j+1)·bucket[j]` is [`super::reduce`]'s (the side
//! buckets, if any, are first made affine and added into their slots).
//! Its field products go through [`crate::field`]: the assembly when `ADX`, else arkworks.

use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ec::CurveGroup;

use super::affine::{chord, denominator, tangent, BatchAdder, Denominators};
use super::reduce::weighted_sum;

/// Pending additions per batch (one inversion each). Measured on BN254 G1 at 2^16 points
/// (c = 12, 13): 128 and 256 are 5–10% slower, 1024 within noise of 512.
pub(crate) const BATCH: usize = 512;

/// Deferred queue capacity (points whose bucket was busy); past that, projective fallback.
const DEFERRED: usize = 256;
const _: () = assert!(DEFERRED < BATCH);

/// One queued affine addition `bucket[bucket] += ±bases[base]` (or a doubling of the bucket).
#[derive(Clone, Copy)]
struct Pending {
    bucket: u32,
    base: u32,
    neg: bool,
    double: bool,
}

/// The buckets of one window: `bucket[j]` collects the bases whose digit is `±(j+1)`.
///
/// Each bucket may have several copies (slots `j·copies .. (j+1)·copies`), filled round-robin:
/// a window with few distinct digits (the top window) then still spreads its points over many
/// slots, so that they do not all collide in the same few busy buckets.
pub(crate) struct BucketSet<'a, P: SWCurveConfig, const ADX: bool> {
    /// The MSM's bases; points are referred to by index (and sign) until they are added.
    bases: &'a [Affine<P>],
    buckets: Vec<Affine<P>>,
    copies: usize,
    /// Round-robin copy for the next point.
    next_copy: usize,
    busy: Vec<bool>,
    pending: Vec<Pending>,
    /// Denominators of `pending`, in order.
    dens: Denominators<P::BaseField, ADX>,
    /// `(slot, base, neg)` of points whose slot was busy.
    deferred: Vec<(u32, u32, bool)>,
    /// Scratch for [`Self::flush`] (swapped with `deferred`).
    retry: Vec<(u32, u32, bool)>,
    /// Projective side buckets for points that found their bucket busy twice (lazily sized).
    overflow: Vec<Projective<P>>,
}

impl<'a, P: SWCurveConfig, const ADX: bool> BucketSet<'a, P, ADX> {
    /// `n` empty buckets with `copies` slots each (both at least 1), for points of `bases`
    /// (at most `u32::MAX + 1` of them).
    pub(crate) fn new(bases: &'a [Affine<P>], n: usize, copies: usize) -> Self {
        let slots = n * copies;
        Self {
            bases,
            buckets: vec![Affine::identity(); slots],
            copies,
            next_copy: 0,
            busy: vec![false; slots],
            pending: Vec::with_capacity(BATCH),
            dens: Denominators::new(BATCH),
            deferred: Vec::with_capacity(DEFERRED),
            retry: Vec::with_capacity(DEFERRED),
            overflow: Vec::new(),
        }
    }

    /// Hints the CPU to load bucket `j` (its first copy) into cache; no effect on the result.
    #[inline(always)]
    pub(crate) fn prefetch(&self, j: usize) {
        #[cfg(target_arch = "x86_64")]
        if let Some(b) = self.buckets.get(j * self.copies) {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let p = b as *const Affine<P> as *const i8;
            // Every cache line the bucket touches (2 for G1, 3 for G2).
            for offset in (0..std::mem::size_of::<Affine<P>>()).step_by(64) {
                // SAFETY: prefetching is only a hint and never faults; the address lies within
                // the bucket, which is in bounds.
                unsafe { _mm_prefetch(p.wrapping_add(offset), _MM_HINT_T0) };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = j;
    }

    /// `bucket[j] += bases[i]` (or `-= bases[i]` when `neg`).
    #[inline]
    pub(crate) fn add(&mut self, j: usize, i: usize, neg: bool) {
        if self.bases[i].infinity {
            return;
        }
        let j = if self.copies > 1 {
            self.next_copy = (self.next_copy + 1) % self.copies;
            j * self.copies + self.next_copy
        } else {
            j
        };
        if self.busy[j] {
            if self.deferred.len() < DEFERRED {
                self.deferred.push((j as u32, i as u32, neg));
            } else {
                self.add_overflow(j, i, neg);
            }
            return;
        }
        self.queue(j, i, neg);
        if self.pending.len() == BATCH {
            self.flush();
        }
    }

    /// Mixed projective addition into the side bucket `j`.
    #[cold]
    fn add_overflow(&mut self, j: usize, i: usize, neg: bool) {
        if self.overflow.is_empty() {
            self.overflow = vec![Projective::default(); self.buckets.len()];
        }
        if neg {
            self.overflow[j] -= &self.bases[i];
        } else {
            self.overflow[j] += &self.bases[i];
        }
    }

    /// Resolves `bucket[j] += ±bases[i]` for a non-busy bucket: directly, or as a pending
    /// addition.
    #[inline]
    fn queue(&mut self, j: usize, i: usize, neg: bool) {
        debug_assert!(!self.busy[j]);
        let Some((double, den)) = denominator::<P, ADX>(&mut self.buckets[j], &self.bases[i], neg)
        else {
            return;
        };
        self.busy[j] = true;
        self.dens.push(den);
        self.pending.push(Pending {
            bucket: j as u32,
            base: i as u32,
            neg,
            double,
        });
    }

    /// Applies all pending additions with one inversion, then retries the deferred points once;
    /// those whose bucket is busy again stay deferred.
    fn flush(&mut self) {
        self.apply_pending();
        std::mem::swap(&mut self.deferred, &mut self.retry);
        for k in 0..self.retry.len() {
            let (j, i, neg) = self.retry[k];
            if self.busy[j as usize] {
                self.deferred.push((j, i, neg));
            } else {
                // Cannot fill the batch: DEFERRED < BATCH and the batch was just emptied.
                self.queue(j as usize, i as usize, neg);
            }
        }
        self.retry.clear();
    }

    /// The batch: Montgomery's trick backwards, computing each sum as its inverse appears.
    fn apply_pending(&mut self) {
        let (pending, buckets, busy, bases) =
            (&self.pending, &mut self.buckets, &mut self.busy, self.bases);
        self.dens.invert_each(|i, inv_i| {
            let Pending {
                bucket,
                base,
                neg,
                double,
            } = pending[i];
            let j = bucket as usize;
            let b = &buckets[j];
            buckets[j] = if double {
                tangent::<P, ADX>(b, &inv_i)
            } else {
                let p = &bases[base as usize];
                chord::<P, ADX>(b, &p.x, &p.y, neg, &inv_i)
            };
            busy[j] = false;
        });
        self.pending.clear();
    }

    /// Flushes everything and returns `Σ_j (j+1)·bucket[j]` (summing each bucket's copies).
    pub(crate) fn finish(mut self) -> Projective<P> {
        while !self.pending.is_empty() || !self.deferred.is_empty() {
            self.flush();
        }
        if !self.overflow.is_empty() {
            // Skewed input spilled into projective side buckets: back to affine (one shared
            // inversion), then into their slots as one batch.
            let spilled = Projective::normalize_batch(&self.overflow);
            let mut adder = BatchAdder::<P, ADX>::new(BATCH);
            adder.add_assign(
                &mut self.buckets,
                spilled.into_iter().enumerate().filter(|(_, p)| !p.infinity),
            );
        }
        weighted_sum::<P, ADX>(&self.buckets, self.copies)
    }
}
