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
//! owns the bucket set and its final reduction `Σ (j+1)·bucket[j]` (running sum, projective).

use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ff::{AdditiveGroup, Field, Zero};

/// Pending additions per batch (one inversion each). Tuned on BN254 G1/G2 (see `msm.rs`).
pub(crate) const BATCH: usize = 512;

/// Deferred queue capacity (points whose bucket was busy); past that, projective fallback.
const DEFERRED: usize = 256;
const _: () = assert!(DEFERRED < BATCH);

/// One queued affine addition `bucket[bucket] += point` (or a doubling when `double`).
#[derive(Clone, Copy)]
struct Pending<P: SWCurveConfig> {
    bucket: u32,
    double: bool,
    point: Affine<P>,
}

/// The buckets of one window: `bucket[j]` collects the bases whose digit is `±(j+1)`.
pub(crate) struct BucketSet<P: SWCurveConfig> {
    buckets: Vec<Affine<P>>,
    busy: Vec<bool>,
    pending: Vec<Pending<P>>,
    /// Denominators of `pending`, in order.
    dens: Vec<P::BaseField>,
    /// Prefix products of `dens` (Montgomery's trick).
    prefix: Vec<P::BaseField>,
    deferred: Vec<(u32, Affine<P>)>,
    /// Scratch for [`Self::flush`] (swapped with `deferred`).
    retry: Vec<(u32, Affine<P>)>,
    /// Projective side buckets for points that found their bucket busy twice (lazily sized).
    overflow: Vec<Projective<P>>,
}

impl<P: SWCurveConfig> BucketSet<P> {
    /// `n` empty buckets.
    pub(crate) fn new(n: usize) -> Self {
        Self {
            buckets: vec![Affine::identity(); n],
            busy: vec![false; n],
            pending: Vec::with_capacity(BATCH),
            dens: Vec::with_capacity(BATCH),
            prefix: Vec::with_capacity(BATCH),
            deferred: Vec::with_capacity(DEFERRED),
            retry: Vec::with_capacity(DEFERRED),
            overflow: Vec::new(),
        }
    }

    /// `bucket[j] += point` (or `-= point` when `neg`).
    #[inline]
    pub(crate) fn add(&mut self, j: usize, point: &Affine<P>, neg: bool) {
        if point.infinity {
            return;
        }
        let mut p = *point;
        if neg {
            p.y = -p.y;
        }
        if self.busy[j] {
            if self.deferred.len() < DEFERRED {
                self.deferred.push((j as u32, p));
            } else {
                self.add_overflow(j, &p);
            }
            return;
        }
        self.queue(j, p);
        if self.pending.len() == BATCH {
            self.flush();
        }
    }

    /// Mixed projective addition into the side bucket `j`.
    #[cold]
    fn add_overflow(&mut self, j: usize, p: &Affine<P>) {
        if self.overflow.is_empty() {
            self.overflow = vec![Projective::default(); self.buckets.len()];
        }
        self.overflow[j] += p;
    }

    /// Resolves `bucket[j] += p` for a non-busy bucket: directly, or as a pending addition.
    #[inline]
    fn queue(&mut self, j: usize, p: Affine<P>) {
        debug_assert!(!self.busy[j]);
        let b = &mut self.buckets[j];
        if b.infinity {
            *b = p;
            return;
        }
        let (double, den) = if b.x == p.x {
            if b.y != p.y || p.y.is_zero() {
                // P + (-P), or doubling a point of order 2: the bucket becomes empty.
                *b = Affine::identity();
                return;
            }
            (true, p.y.double())
        } else {
            (false, p.x - b.x)
        };
        self.busy[j] = true;
        let acc = match self.prefix.last() {
            Some(last) => *last * den,
            None => den,
        };
        self.prefix.push(acc);
        self.dens.push(den);
        self.pending.push(Pending {
            bucket: j as u32,
            double,
            point: p,
        });
    }

    /// Applies all pending additions with one inversion, then retries the deferred points once;
    /// those whose bucket is busy again stay deferred.
    fn flush(&mut self) {
        self.apply_pending();
        std::mem::swap(&mut self.deferred, &mut self.retry);
        for k in 0..self.retry.len() {
            let (j, p) = self.retry[k];
            if self.busy[j as usize] {
                self.deferred.push((j, p));
            } else {
                // Cannot fill the batch: DEFERRED < BATCH and the batch was just emptied.
                self.queue(j as usize, p);
            }
        }
        self.retry.clear();
    }

    /// The batch: Montgomery's trick backwards, computing each sum as its inverse appears.
    fn apply_pending(&mut self) {
        let Some(&total) = self.prefix.last() else {
            return;
        };
        // Non-zero: every denominator is a non-zero x-difference or 2y with y ≠ 0.
        let mut inv = total
            .inverse()
            .expect("batch-affine denominators are non-zero");
        for i in (0..self.pending.len()).rev() {
            let inv_i = if i > 0 { inv * self.prefix[i - 1] } else { inv };
            inv *= self.dens[i];
            let Pending {
                bucket,
                double,
                point,
            } = self.pending[i];
            let j = bucket as usize;
            let b = self.buckets[j];
            let lambda = if double {
                let x2 = b.x.square();
                let num = x2.double() + x2 + P::COEFF_A;
                num * inv_i
            } else {
                (point.y - b.y) * inv_i
            };
            let x3 = lambda.square() - b.x - point.x;
            let y3 = lambda * (b.x - x3) - b.y;
            self.buckets[j] = Affine::new_unchecked(x3, y3);
            self.busy[j] = false;
        }
        self.pending.clear();
        self.dens.clear();
        self.prefix.clear();
    }

    /// Flushes everything and returns `Σ_j (j+1)·bucket[j]`.
    pub(crate) fn finish(mut self) -> Projective<P> {
        while !self.pending.is_empty() || !self.deferred.is_empty() {
            self.flush();
        }
        let mut running = Projective::<P>::default();
        let mut sum = Projective::<P>::default();
        for j in (0..self.buckets.len()).rev() {
            running += &self.buckets[j];
            if let Some(o) = self.overflow.get(j) {
                running += o;
            }
            sum += &running;
        }
        sum
    }
}
