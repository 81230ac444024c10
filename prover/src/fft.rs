//! Radix-2 number-theoretic transforms over the BN254 scalar field for the witness map
//! ([`crate::qap`]): the same transforms as ark-poly's `Radix2EvaluationDomain` (same root of
//! unity, exact field arithmetic, so identical results), organised for the memory hierarchy.
//!
//! - Depth-first recursion: after the first few levels a sub-transform fits in cache and all
//!   its remaining levels run there; the top levels split across threads (rayon). The last
//!   256 points run every level in one loop ([`leaf`]), the level of twiddle 1 without products.
//! - Twiddles in one table per level, read sequentially (`w_s^j` for `j < s/2` at offset
//!   `s/2 - 1`), computed per transform in parallel.
//! - Decimation in frequency ([`dif`], natural order in, bit-reversed out) and in time ([`dit`],
//!   bit-reversed in, natural out), so that a transform whose output is consumed pointwise needs
//!   no permutation: the witness map permutes 3 times where calling ark-poly permutes 7 times.
//! - Products, sums and differences on the field path chosen at run time ([`crate::field`]:
//!   the ADX assembly and branch-free sums where the CPU has it).

use ark_bn254::Fr;
use ark_ff::{Field, One};
use rayon::prelude::*;

use crate::field::{add, mul, sub, FieldPath};

/// Whether this process's products run on the ADX assembly.
fn adx() -> bool {
    FieldPath::current() == FieldPath::Adx
}

/// Sub-transforms at least this long split their halves across threads.
const PARALLEL_LEN: usize = 1 << 14;
/// Butterflies per parallel task at the top levels.
const CHUNK: usize = 1 << 12;
/// Sub-transforms at most this long run iteratively ([`leaf`]).
const LEAF: usize = 1 << 8;

/// Per-level twiddle tables of a transform of length `n` with root `w` (of order `n`): level
/// `s = 2m` (half length `m`) holds `w^(j·n/s)` for `j < m` at `[m - 1, 2m - 1)`.
pub struct Twiddles {
    table: Vec<Fr>,
}

impl Twiddles {
    /// The tables for length `n` (a power of two) and the root `w` of order `n`.
    pub fn new(n: usize, w: Fr) -> Self {
        assert!(
            n.is_power_of_two(),
            "transform length {n} is not a power of two"
        );
        let mut table = vec![Fr::one(); n.saturating_sub(1)];
        if n < 2 {
            return Twiddles { table };
        }
        let half = n / 2;
        // The top level: w^j for j < n/2, in parallel runs of powers.
        table[half - 1..]
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, out)| {
                let mut p = w.pow([(c * CHUNK) as u64]);
                for x in out {
                    *x = p;
                    p *= w;
                }
            });
        // Each lower level takes every other twiddle of the one above.
        let mut m = half / 2;
        while m >= 1 {
            let (lower, upper) = table.split_at_mut(2 * m - 1);
            let dst = &mut lower[m - 1..];
            let src = &upper[..2 * m];
            dst.par_iter_mut()
                .enumerate()
                .for_each(|(j, x)| *x = src[2 * j]);
            m /= 2;
        }
        Twiddles { table }
    }

    /// The twiddles of the level with half length `m`.
    #[inline]
    fn level(&self, m: usize) -> &[Fr] {
        &self.table[m - 1..2 * m - 1]
    }

    /// The transform length these tables serve.
    fn len(&self) -> usize {
        self.table.len() + 1
    }
}

/// In place: the DFT (root of `tw`) of `x` in natural order, left in bit-reversed order.
pub fn dif(x: &mut [Fr], tw: &Twiddles) {
    assert_eq!(x.len(), tw.len(), "transform length and twiddles differ");
    transform(x, tw, Decimation::Frequency);
}

/// In place: the DFT (root of `tw`) of `x` given in bit-reversed order, left in natural order.
pub fn dit(x: &mut [Fr], tw: &Twiddles) {
    assert_eq!(x.len(), tw.len(), "transform length and twiddles differ");
    transform(x, tw, Decimation::Time);
}

/// Which half of the Cooley-Tukey recursion the butterflies run in.
#[derive(Clone, Copy)]
enum Decimation {
    /// Butterflies `(u + v, (u − v)·w)` before the halves' transforms (natural → bit-reversed).
    Frequency,
    /// Butterflies `(u + w·v, u − w·v)` after the halves' transforms (bit-reversed → natural).
    Time,
}

fn transform(x: &mut [Fr], tw: &Twiddles, d: Decimation) {
    let n = x.len();
    if n <= LEAF {
        if adx() {
            leaf::<true>(x, tw, d);
        } else {
            leaf::<false>(x, tw, d);
        }
        return;
    }
    let m = n / 2;
    let w = tw.level(m);
    let (lo, hi) = x.split_at_mut(m);
    let parallel = n >= PARALLEL_LEN;
    if let Decimation::Frequency = d {
        butterflies(lo, hi, w, d, parallel);
    }
    if parallel {
        rayon::join(|| transform(lo, tw, d), || transform(hi, tw, d));
    } else {
        transform(lo, tw, d);
        transform(hi, tw, d);
    }
    if let Decimation::Time = d {
        butterflies(lo, hi, w, d, parallel);
    }
}

/// A short sub-transform (at most [`LEAF`] long, in cache): every level in one loop, without
/// recursion, and the level of half length 1 (twiddle 1) without products.
fn leaf<const ADX: bool>(x: &mut [Fr], tw: &Twiddles, d: Decimation) {
    let n = x.len();
    let level = |x: &mut [Fr], m: usize| {
        for block in x.chunks_exact_mut(2 * m) {
            let (lo, hi) = block.split_at_mut(m);
            if m == 1 {
                // Both decimations: (u + v, u − v).
                let (u, v) = (lo[0], hi[0]);
                lo[0] = add::<_, ADX>(&u, &v);
                hi[0] = sub::<_, ADX>(&u, &v);
            } else {
                pass::<ADX>(lo, hi, tw.level(m), d);
            }
        }
    };
    let mut m = match d {
        Decimation::Frequency => n / 2,
        Decimation::Time => 1,
    };
    while m >= 1 && m < n {
        level(x, m);
        m = match d {
            Decimation::Frequency => m / 2,
            Decimation::Time => m * 2,
        };
    }
}

/// The butterflies between the halves `lo` and `hi` with twiddles `w`, on one thread.
fn pass<const ADX: bool>(lo: &mut [Fr], hi: &mut [Fr], w: &[Fr], d: Decimation) {
    let pairs = lo.iter_mut().zip(hi.iter_mut()).zip(w);
    match d {
        Decimation::Frequency => {
            for ((a, b), w) in pairs {
                let (u, v) = (*a, *b);
                *a = add::<_, ADX>(&u, &v);
                *b = mul::<_, ADX>(&sub::<_, ADX>(&u, &v), w);
            }
        }
        Decimation::Time => {
            for ((a, b), w) in pairs {
                let t = mul::<_, ADX>(b, w);
                *b = sub::<_, ADX>(a, &t);
                *a = add::<_, ADX>(a, &t);
            }
        }
    }
}

/// One level's butterflies between the halves `lo` and `hi` with twiddles `w`.
fn butterflies(lo: &mut [Fr], hi: &mut [Fr], w: &[Fr], d: Decimation, parallel: bool) {
    let adx = adx();
    let run = |lo: &mut [Fr], hi: &mut [Fr], w: &[Fr]| {
        if adx {
            pass::<true>(lo, hi, w, d)
        } else {
            pass::<false>(lo, hi, w, d)
        }
    };
    if parallel {
        lo.par_chunks_mut(CHUNK)
            .zip(hi.par_chunks_mut(CHUNK))
            .zip(w.par_chunks(CHUNK))
            .for_each(|((lo, hi), w)| run(lo, hi, w));
    } else {
        run(lo, hi, w);
    }
}

/// `x` permuted by bit-reversing indices (its own inverse).
pub fn bit_reversed(x: &[Fr]) -> Vec<Fr> {
    bit_reversed_scaled(x, Fr::one(), Fr::one())
}

/// `y[i] = c · g^i · x[rev(i)]`: [`bit_reversed`] and [`scale_by_powers`] in one pass.
pub fn bit_reversed_scaled(x: &[Fr], g: Fr, c: Fr) -> Vec<Fr> {
    let n = x.len();
    assert!(n.is_power_of_two(), "length {n} is not a power of two");
    fn fill<const ADX: bool>(chunk: &mut [Fr], start: usize, x: &[Fr], g: Fr, c: Fr) {
        let n = x.len();
        let rev = |i: usize| match n {
            1 => 0,
            _ => i.reverse_bits() >> (usize::BITS - n.trailing_zeros()),
        };
        let mut p = c * g.pow([start as u64]);
        for (i, v) in (start..).zip(chunk) {
            *v = mul::<_, ADX>(&x[rev(i)], &p);
            p = mul::<_, ADX>(&p, &g);
        }
    }
    let adx = adx();
    let mut y = vec![Fr::one(); n];
    y.par_chunks_mut(CHUNK).enumerate().for_each(|(k, chunk)| {
        if adx {
            fill::<true>(chunk, k * CHUNK, x, g, c)
        } else {
            fill::<false>(chunk, k * CHUNK, x, g, c)
        }
    });
    y
}

/// In place: `x[i] *= c · g^i`.
pub fn scale_by_powers(x: &mut [Fr], g: Fr, c: Fr) {
    fn scale<const ADX: bool>(chunk: &mut [Fr], start: usize, g: Fr, c: Fr) {
        let mut p = c * g.pow([start as u64]);
        for v in chunk {
            *v = mul::<_, ADX>(v, &p);
            p = mul::<_, ADX>(&p, &g);
        }
    }
    let adx = adx();
    x.par_chunks_mut(CHUNK).enumerate().for_each(|(k, chunk)| {
        if adx {
            scale::<true>(chunk, k * CHUNK, g, c)
        } else {
            scale::<false>(chunk, k * CHUNK, g, c)
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::UniformRand;
    use ark_poly::{EvaluationDomain, Radix2EvaluationDomain};
    use rand::SeedableRng;

    #[test]
    fn transforms_equal_ark_poly_for_every_length() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for log in 0..=17 {
            let n = 1usize << log;
            let domain = Radix2EvaluationDomain::<Fr>::new(n).unwrap();
            let x: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            let expected = domain.fft(&x);
            let tw = Twiddles::new(n, domain.group_gen());

            let mut y = x.clone();
            dif(&mut y, &tw);
            assert_eq!(bit_reversed(&y), expected, "DIF, n = 2^{log}");

            let mut z = bit_reversed(&x);
            dit(&mut z, &tw);
            assert_eq!(z, expected, "DIT, n = 2^{log}");

            // Inverse: the root's inverse, then 1/n.
            let tw_inv = Twiddles::new(n, domain.group_gen_inv());
            let mut back = bit_reversed(&expected);
            dit(&mut back, &tw_inv);
            scale_by_powers(&mut back, Fr::one(), domain.size_inv());
            assert_eq!(back, x, "inverse, n = 2^{log}");
        }
    }

    #[test]
    fn powers_scale_and_bit_reversal_is_an_involution() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(10);
        let n = 3 * CHUNK + 5;
        let x: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
        let (g, c) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
        let mut y = x.clone();
        scale_by_powers(&mut y, g, c);
        for (i, (a, b)) in x.iter().zip(&y).enumerate() {
            assert_eq!(*b, *a * c * g.pow([i as u64]));
        }
        let p: Vec<Fr> = (0..1 << 13).map(|_| Fr::rand(&mut rng)).collect();
        assert_eq!(bit_reversed(&bit_reversed(&p)), p);
        assert_ne!(bit_reversed(&p), p);
        let mut q = bit_reversed(&p);
        scale_by_powers(&mut q, g, c);
        assert_eq!(bit_reversed_scaled(&p, g, c), q);
    }
}
