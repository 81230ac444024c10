//! The native Poseidon permutation with sparse partial rounds (the Poseidon paper's appendix B):
//! the same function as the textbook rounds of [`super::PoseidonConstants`], with a partial
//! round costing `2t + 2` multiplications instead of `t^2 + 3`.
//!
//! Two rewrites, both exact:
//! 1. **Constants forward.** In a partial round only element 0 goes through the S-box, so the
//!    round constants of the other elements commute with it and pass through the MDS matrix
//!    into the next round's constants: every partial round keeps one scalar constant, and what
//!    is left over joins the first full round after them.
//! 2. **Matrices backward.** Each partial round's matrix `N` factors as `N = B A` with
//!    `A = diag(1, N̂)` (`N̂` its lower-right block) and `B = [[n00, n0r N̂⁻¹], [nc0, I]]`, which
//!    is sparse. `A` leaves element 0 alone, so it commutes with the partial round's S-box and
//!    constant and moves into the previous round's matrix (`A M`), which is factored in turn;
//!    the last `A` lands in the final full round before the partial rounds.
//!
//! Native tree hashing (sealing a batch rehashes about a thousand nodes) spends most of its time
//! here: widths 3 and 5 run about 1.7x and 2.1x faster than the textbook rounds. The same rounds
//! also give the gadget's witness ([`SparsePermutation::permute_traced`]): the S-box values are
//! the textbook rounds'.

use ark_bn254::Fr;
use ark_ff::{Field, One, Zero};

use super::PoseidonConstants;

/// A width's permutation in the sparse form (see the module doc).
#[derive(Debug)]
pub(crate) struct SparsePermutation {
    width: usize,
    /// Constants of the first half of the full rounds, `width` per round.
    first_constants: Vec<Fr>,
    /// One scalar constant (for element 0) per partial round.
    partial_constants: Vec<Fr>,
    /// Constants of the second half of the full rounds (the first one absorbs the leftovers).
    last_constants: Vec<Fr>,
    /// The MDS matrix, row-major.
    mds: Vec<Fr>,
    /// The matrix of the last full round before the partial rounds, `A_0 M`, row-major.
    pre_partial: Vec<Fr>,
    /// Per partial round `[n00, v_1..v_{t-1}, w_1..w_{t-1}]` of its sparse matrix.
    sparse: Vec<Fr>,
}

/// Row-major `t x t` product `a b`.
fn mat_mul(a: &[Fr], b: &[Fr], t: usize) -> Vec<Fr> {
    let mut out = vec![Fr::zero(); t * t];
    for i in 0..t {
        for k in 0..t {
            let aik = a[i * t + k];
            for j in 0..t {
                out[i * t + j] += aik * b[k * t + j];
            }
        }
    }
    out
}

/// The inverse of the row-major `n x n` matrix `m` by Gauss-Jordan elimination, `None` if
/// singular.
fn invert(m: &[Fr], n: usize) -> Option<Vec<Fr>> {
    let mut a = m.to_vec();
    let mut inv = vec![Fr::zero(); n * n];
    for i in 0..n {
        inv[i * n + i] = Fr::one();
    }
    for col in 0..n {
        let pivot = (col..n).find(|&r| !a[r * n + col].is_zero())?;
        for j in 0..n {
            a.swap(col * n + j, pivot * n + j);
            inv.swap(col * n + j, pivot * n + j);
        }
        let scale = a[col * n + col].inverse()?;
        for j in 0..n {
            a[col * n + j] *= scale;
            inv[col * n + j] *= scale;
        }
        for r in 0..n {
            let f = a[r * n + col];
            if r == col || f.is_zero() {
                continue;
            }
            for j in 0..n {
                let (ac, ic) = (a[col * n + j], inv[col * n + j]);
                a[r * n + j] -= f * ac;
                inv[r * n + j] -= f * ic;
            }
        }
    }
    Some(inv)
}

impl SparsePermutation {
    /// Precomputes the sparse form of `c`'s permutation.
    pub(crate) fn new(c: &PoseidonConstants) -> Self {
        let t = c.width;
        let half = c.full_rounds / 2;
        let rp = c.partial_rounds;
        let mds: Vec<Fr> = c.mds.iter().flatten().copied().collect();
        let round = |r: usize| &c.round_constants[r * t..(r + 1) * t];

        // 1. Constants forward through the partial rounds.
        let mut partial_constants = Vec::with_capacity(rp);
        let mut carry = vec![Fr::zero(); t];
        for j in 0..rp {
            let k: Vec<Fr> = round(half + j)
                .iter()
                .zip(&carry)
                .map(|(a, b)| *a + b)
                .collect();
            partial_constants.push(k[0]);
            // carry = M (0, k_1..k_{t-1})
            carry = (0..t)
                .map(|i| (1..t).map(|l| mds[i * t + l] * k[l]).sum())
                .collect();
        }
        let mut last_constants: Vec<Fr> = c.round_constants[(half + rp) * t..].to_vec();
        for (x, k) in last_constants.iter_mut().zip(&carry) {
            *x += k;
        }

        // 2. Matrices backward: N = B A, A moves into the previous round's matrix.
        let n = t - 1;
        let mut sparse = vec![Fr::zero(); rp * (2 * t - 1)];
        let mut matrix = mds.clone();
        for j in (0..rp).rev() {
            let hat: Vec<Fr> = (1..t)
                .flat_map(|i| (1..t).map(move |l| (i, l)))
                .map(|(i, l)| matrix[i * t + l])
                .collect();
            let hat_inv = invert(&hat, n).expect("Poseidon MDS submatrices are invertible");
            let row = &mut sparse[j * (2 * t - 1)..(j + 1) * (2 * t - 1)];
            row[0] = matrix[0];
            for l in 0..n {
                // v = n0r N̂⁻¹
                row[1 + l] = (0..n).map(|k| matrix[1 + k] * hat_inv[k * n + l]).sum();
                // w = nc0
                row[t + l] = matrix[(1 + l) * t];
            }
            let mut a = vec![Fr::zero(); t * t];
            a[0] = Fr::one();
            for i in 0..n {
                for l in 0..n {
                    a[(1 + i) * t + 1 + l] = hat[i * n + l];
                }
            }
            matrix = mat_mul(&a, &mds, t);
        }
        SparsePermutation {
            width: t,
            first_constants: c.round_constants[..half * t].to_vec(),
            partial_constants,
            last_constants,
            mds,
            pre_partial: matrix,
            sparse,
        }
    }

    /// The permutation of `state` (`T` must be this width), reporting `[x^2, x^4, x^5]` of every S-box input `x` to `trace`, in
    /// the gadget's order: round by round, element by element in full rounds, element 0 in
    /// partial rounds. Element 0 is never transformed by the factored matrices and the
    /// constants pushed forward account exactly for the textbook ones, so these are the
    /// textbook rounds' S-box values (tested), i.e. the gadget's witness.
    #[inline]
    pub(crate) fn permute_traced<const T: usize>(
        &self,
        state: &mut [Fr; T],
        trace: &mut impl FnMut([Fr; 3]),
    ) {
        assert_eq!(T, self.width, "state of the wrong width");
        let half = self.first_constants.len() / T;
        for (r, k) in self.first_constants.chunks_exact(T).enumerate() {
            let m = if r + 1 == half {
                &self.pre_partial
            } else {
                &self.mds
            };
            full_round(state, k, m, trace);
        }
        for (k, row) in self
            .partial_constants
            .iter()
            .zip(self.sparse.chunks_exact(2 * T - 1))
        {
            let s0 = sbox_traced(state[0] + k, trace);
            let mut out0 = row[0] * s0;
            for l in 1..T {
                out0 += row[l] * state[l];
            }
            for l in 1..T {
                state[l] += row[T + l - 1] * s0;
            }
            state[0] = out0;
        }
        for k in self.last_constants.chunks_exact(T) {
            full_round(state, k, &self.mds, trace);
        }
    }
}

/// A full round: constants, every element's S-box, then `matrix` (row-major).
#[inline(always)]
fn full_round<const T: usize>(
    s: &mut [Fr; T],
    constants: &[Fr],
    matrix: &[Fr],
    trace: &mut impl FnMut([Fr; 3]),
) {
    for (x, k) in s.iter_mut().zip(constants) {
        *x = sbox_traced(*x + k, trace);
    }
    let mut out = [Fr::zero(); T];
    for (o, row) in out.iter_mut().zip(matrix.chunks_exact(T)) {
        let mut acc = row[0] * s[0];
        for l in 1..T {
            acc += row[l] * s[l];
        }
        *o = acc;
    }
    *s = out;
}

#[inline(always)]
fn sbox_traced(x: Fr, trace: &mut impl FnMut([Fr; 3])) -> Fr {
    let x2 = x.square();
    let x4 = x2.square();
    let x5 = x4 * x;
    trace([x2, x4, x5]);
    x5
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poseidon::constants;
    use rand::{Rng, SeedableRng};

    /// `x^5`, recording `[x^2, x^4, x^5]`.
    fn sbox(x: Fr, trace: &mut Vec<[Fr; 3]>) -> Fr {
        let x2 = x.square();
        let x4 = x2.square();
        trace.push([x2, x4, x4 * x]);
        x4 * x
    }

    /// The textbook rounds: constants, S-boxes, the dense MDS matrix; the S-box values in
    /// `trace`.
    fn textbook(c: &PoseidonConstants, state: &mut [Fr], trace: &mut Vec<[Fr; 3]>) {
        let t = c.width;
        for round in 0..c.rounds() {
            for (i, s) in state.iter_mut().enumerate() {
                *s += c.round_constant(round, i);
            }
            if c.is_full_round(round) {
                state.iter_mut().for_each(|s| *s = sbox(*s, trace));
            } else {
                state[0] = sbox(state[0], trace);
            }
            let next: Vec<Fr> = (0..t)
                .map(|i| (0..t).map(|j| c.mds[i][j] * state[j]).sum())
                .collect();
            state.copy_from_slice(&next);
        }
    }

    fn check<const T: usize>(rng: &mut impl Rng) {
        let c = constants(T - 1);
        let p = SparsePermutation::new(c);
        for _ in 0..20 {
            let mut a: [Fr; T] = std::array::from_fn(|_| rng.gen());
            let mut b = a;
            let (mut sparse_trace, mut textbook_trace) = (Vec::new(), Vec::new());
            p.permute_traced(&mut a, &mut |x| sparse_trace.push(x));
            textbook(c, &mut b, &mut textbook_trace);
            assert_eq!(a, b, "width {T}");
            assert_eq!(sparse_trace, textbook_trace, "S-box values, width {T}");
            assert_eq!(sparse_trace.len(), c.full_rounds * T + c.partial_rounds);
        }
    }

    /// Every element of the output state (not just the hash), and every S-box value, equals the
    /// textbook permutation's.
    #[test]
    fn sparse_rounds_equal_textbook_rounds_for_every_width() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        check::<2>(&mut rng);
        check::<3>(&mut rng);
        check::<4>(&mut rng);
        check::<5>(&mut rng);
        check::<6>(&mut rng);
        check::<7>(&mut rng);
        check::<8>(&mut rng);
        check::<9>(&mut rng);
    }

    #[test]
    fn inverse_is_an_inverse_and_singular_is_refused() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        let m: Vec<Fr> = (0..16).map(|_| rng.gen()).collect();
        let inv = invert(&m, 4).unwrap();
        let id = mat_mul(&m, &inv, 4);
        for i in 0..4 {
            for j in 0..4 {
                assert_eq!(id[i * 4 + j], Fr::from((i == j) as u64));
            }
        }
        let mut singular = m.clone();
        for j in 0..4 {
            singular[4 + j] = singular[j] + singular[j];
        }
        assert!(invert(&singular, 4).is_none());
    }
}
