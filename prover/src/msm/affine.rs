//! Affine point addition with a precomputed inverse, and a batch of independent affine
//! additions sharing one inversion (Montgomery's trick): the arithmetic under both the bucket
//! accumulation ([`super::bucket`]) and the bucket reduction ([`super::reduce`]).
//!
//! Given the inverse of the chord's (or tangent's) denominator, an addition costs 2M + 1S and a
//! doubling 2M + 2S; the trick adds 3M per element to the batch's one inversion. The field
//! arithmetic goes through [`crate::field`]: assembly products and branch-free sums and
//! differences when `ADX`, else arkworks.

use ark_ec::short_weierstrass::{Affine, SWCurveConfig};
use ark_ff::{AdditiveGroup, Field, Zero};

use crate::field::{add, double, mul, square, sub};

/// `a + (x, ±y)` for `a.x ≠ x`, given `inv = 1/(x − a.x)`. With `neg` the point added is
/// `(x, −y)`: λ = −(y + a.y)/(x − a.x), and the sign folds into `x₃ − a.x`.
#[inline(always)]
pub(crate) fn chord<P: SWCurveConfig, const ADX: bool>(
    a: &Affine<P>,
    x: &P::BaseField,
    y: &P::BaseField,
    neg: bool,
    inv: &P::BaseField,
) -> Affine<P> {
    let rise = if neg {
        add::<_, ADX>(y, &a.y)
    } else {
        sub::<_, ADX>(y, &a.y)
    };
    let lambda = mul::<_, ADX>(&rise, inv);
    let x3 = sub::<_, ADX>(&sub::<_, ADX>(&square::<_, ADX>(&lambda), &a.x), x);
    let run = if neg {
        sub::<_, ADX>(&x3, &a.x)
    } else {
        sub::<_, ADX>(&a.x, &x3)
    };
    let y3 = sub::<_, ADX>(&mul::<_, ADX>(&lambda, &run), &a.y);
    Affine::new_unchecked(x3, y3)
}

/// `2a` for `a.y ≠ 0`, given `inv = 1/(2·a.y)`.
#[inline(always)]
pub(crate) fn tangent<P: SWCurveConfig, const ADX: bool>(
    a: &Affine<P>,
    inv: &P::BaseField,
) -> Affine<P> {
    let x2 = square::<_, ADX>(&a.x);
    let slope = add::<_, ADX>(&add::<_, ADX>(&double::<_, ADX>(&x2), &x2), &P::COEFF_A);
    let lambda = mul::<_, ADX>(&slope, inv);
    let x3 = sub::<_, ADX>(&square::<_, ADX>(&lambda), &double::<_, ADX>(&a.x));
    let y3 = sub::<_, ADX>(&mul::<_, ADX>(&lambda, &sub::<_, ADX>(&a.x, &x3)), &a.y);
    Affine::new_unchecked(x3, y3)
}

/// What adding `±p` to `a` needs: `None` when it was resolved in place (`p` the identity, `a`
/// the identity, `p = −a`, or doubling a point of order 2), else `(doubling, denominator)`, the
/// denominator being `x_p − x_a` or, for `p = a`, `2·y_a`.
#[inline(always)]
pub(crate) fn denominator<P: SWCurveConfig, const ADX: bool>(
    a: &mut Affine<P>,
    p: &Affine<P>,
    neg: bool,
) -> Option<(bool, P::BaseField)> {
    if p.infinity {
        return None;
    }
    if a.infinity {
        *a = if neg { -*p } else { *p };
        return None;
    }
    if a.x != p.x {
        return Some((false, sub::<_, ADX>(&p.x, &a.x)));
    }
    let py = if neg { -p.y } else { p.y };
    if a.y != py || py.is_zero() {
        *a = Affine::identity();
        return None;
    }
    Some((true, a.y.double()))
}

/// The denominators of one batch and their prefix products (Montgomery's trick).
pub(crate) struct Denominators<F: Field, const ADX: bool> {
    dens: Vec<F>,
    /// `prefix[k] = dens[0]·…·dens[k]`.
    prefix: Vec<F>,
}

impl<F: Field, const ADX: bool> Denominators<F, ADX> {
    /// Empty, with room for `capacity`.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            dens: Vec::with_capacity(capacity),
            prefix: Vec::with_capacity(capacity),
        }
    }

    /// Appends a (non-zero) denominator.
    #[inline(always)]
    pub(crate) fn push(&mut self, den: F) {
        let run = match self.prefix.last() {
            Some(last) => mul::<_, ADX>(last, &den),
            None => den,
        };
        self.prefix.push(run);
        self.dens.push(den);
    }

    /// `f(k, 1/dens[k])` for every `k` from the last to the first, with one inversion; then
    /// empty. Nothing when empty.
    ///
    /// # Panics
    /// If a denominator is zero (batch-affine denominators are non-zero x-differences or `2y`
    /// with `y ≠ 0`).
    #[inline(always)]
    pub(crate) fn invert_each(&mut self, mut f: impl FnMut(usize, F)) {
        if let Some(total) = self.prefix.last() {
            let mut inv = total
                .inverse()
                .expect("batch-affine denominators are non-zero");
            for k in (0..self.dens.len()).rev() {
                let inv_k = if k > 0 {
                    mul::<_, ADX>(&inv, &self.prefix[k - 1])
                } else {
                    inv
                };
                inv = mul::<_, ADX>(&inv, &self.dens[k]);
                f(k, inv_k);
            }
        }
        self.dens.clear();
        self.prefix.clear();
    }
}

/// Scratch space for [`BatchAdder::add_assign`]; reused across batches.
pub(crate) struct BatchAdder<P: SWCurveConfig, const ADX: bool> {
    /// `(accumulator index, doubling)` of each addition that needs an inverse.
    todo: Vec<(u32, bool)>,
    /// The point added by each entry of `todo`.
    srcs: Vec<Affine<P>>,
    /// Their denominators.
    dens: Denominators<P::BaseField, ADX>,
}

impl<P: SWCurveConfig, const ADX: bool> BatchAdder<P, ADX> {
    /// Empty scratch for batches of about `capacity` additions.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            todo: Vec::with_capacity(capacity),
            srcs: Vec::with_capacity(capacity),
            dens: Denominators::new(capacity),
        }
    }

    /// `acc[i] += p` for every `(i, p)` of `adds`, with one field inversion for them all. The
    /// indices must be distinct (the additions independent of one another); the points may be
    /// anything: identities, equal and opposite pairs are resolved on the way.
    pub(crate) fn add_assign(
        &mut self,
        acc: &mut [Affine<P>],
        adds: impl IntoIterator<Item = (usize, Affine<P>)>,
    ) {
        debug_assert!(acc.len() <= u32::MAX as usize);
        self.todo.clear();
        self.srcs.clear();
        for (i, p) in adds {
            if let Some((double, den)) = denominator::<P, ADX>(&mut acc[i], &p, false) {
                self.dens.push(den);
                self.todo.push((i as u32, double));
                self.srcs.push(p);
            }
        }
        let (todo, srcs) = (&self.todo, &self.srcs);
        self.dens.invert_each(|k, inv_k| {
            let (i, double) = todo[k];
            let a = &mut acc[i as usize];
            *a = if double {
                tangent::<P, ADX>(a, &inv_k)
            } else {
                let p = &srcs[k];
                chord::<P, ADX>(a, &p.x, &p.y, false, &inv_k)
            };
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::{g1, g2};
    use ark_ec::{AffineRepr, CurveGroup};
    use ark_ff::UniformRand;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    use crate::field::FieldPath;

    /// Accumulators and sources mixing fresh points, identities, equal and opposite pairs.
    fn cases<P: SWCurveConfig>(seed: u64, n: usize) -> (Vec<Affine<P>>, Vec<Affine<P>>) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let g = |rng: &mut ChaCha20Rng| Affine::<P>::rand(rng);
        let (mut acc, mut src) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let a = g(&mut rng);
            let (a, p) = match rng.gen_range(0..6) {
                0 => (a, Affine::identity()),
                1 => (Affine::identity(), a),
                2 => (a, a),
                3 => (a, -a),
                4 => (Affine::identity(), Affine::identity()),
                _ => (a, g(&mut rng)),
            };
            acc.push(a);
            src.push(p);
        }
        (acc, src)
    }

    fn check<P: SWCurveConfig>(path: FieldPath) {
        for (seed, n) in [(1u64, 0usize), (2, 1), (3, 7), (4, 64), (5, 300)] {
            let (mut acc, src) = cases::<P>(seed, n);
            let want: Vec<Affine<P>> = acc
                .iter()
                .zip(&src)
                .map(|(a, p)| (a.into_group() + p).into_affine())
                .collect();
            let mut adder = BatchAdder::<P, false>::new(n);
            let mut adx = BatchAdder::<P, true>::new(n);
            match path {
                FieldPath::Portable => adder.add_assign(&mut acc, src.iter().copied().enumerate()),
                FieldPath::Adx => adx.add_assign(&mut acc, src.iter().copied().enumerate()),
            }
            assert_eq!(acc, want, "{path:?}, n = {n}");
        }
    }

    #[test]
    fn batch_add_matches_projective_on_every_path() {
        super::super::tests::each_path(|path| {
            check::<g1::Config>(path);
            check::<g2::Config>(path);
        });
    }
}
