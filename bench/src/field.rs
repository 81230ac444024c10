//! Field-arithmetic micro-benchmark behind `make bench-msm`'s "floor" table: nanoseconds per
//! BN254 base-field (`Fq`) multiplication, squaring and inversion and per `Fq2` multiplication,
//! on one thread, for comparing the MSM's cost per bucket addition with what its field
//! operations alone cost.
//!
//! Multiplications run as `LANES` independent dependency chains (the throughput a batch of
//! independent bucket additions can reach), and as one chain (latency). Where the CPU has BMI2
//! and ADX, the `Fq` and `Fq2` products are also timed on Veil's assembly path
//! (`veil_prover::field`), which the MSM and the FFT use there.

use std::hint::black_box;
use std::time::Instant;

use ark_bn254::{Fq, Fq2};
use ark_ff::{Field, UniformRand};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use veil_prover::field::{mul_on, FieldPath};

/// Independent chains for the throughput figure.
const LANES: usize = 8;

/// Nanoseconds per operation of the field operations the MSM's additions are made of.
#[derive(Clone, Copy, Debug)]
pub struct FieldCosts {
    /// `Fq` multiplication, independent operations (throughput).
    pub mul_ns: f64,
    /// `Fq` multiplication, one dependency chain (latency).
    pub mul_latency_ns: f64,
    /// `Fq` squaring, independent operations.
    pub square_ns: f64,
    /// `Fq` inversion.
    pub inverse_ns: f64,
    /// `Fq2` multiplication, independent operations.
    pub fq2_mul_ns: f64,
    /// `Fq` and `Fq2` multiplications on the ADX assembly path, where the CPU has it.
    pub adx: Option<AdxCosts>,
}

/// Nanoseconds per `Fq` / `Fq2` product on the ADX assembly path (independent operations).
#[derive(Clone, Copy, Debug)]
pub struct AdxCosts {
    /// `Fq` multiplication.
    pub mul_ns: f64,
    /// `Fq2` multiplication.
    pub fq2_mul_ns: f64,
}

impl FieldCosts {
    /// `(Fq mul, Fq square, Fq2 mul)` in ns on the path the MSM runs on this machine.
    pub fn msm_path(&self) -> (f64, f64, f64) {
        match (FieldPath::current(), self.adx) {
            (FieldPath::Adx, Some(a)) => (a.mul_ns, a.mul_ns, a.fq2_mul_ns),
            _ => (self.mul_ns, self.square_ns, self.fq2_mul_ns),
        }
    }
}

/// Best of `reps` timings of `f`, in nanoseconds per operation (`f` runs `ops` operations).
fn best_ns(reps: usize, ops: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e9 / ops as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// Measures [`FieldCosts`] on the calling thread (`iters` operations per lane and timing).
pub fn measure(iters: usize) -> FieldCosts {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let m: [Fq; LANES] = std::array::from_fn(|_| Fq::rand(&mut rng));
    let m2: [Fq2; LANES] = std::array::from_fn(|_| Fq2::rand(&mut rng));
    let reps = 5;

    let mul_ns = best_ns(reps, iters * LANES, || {
        let mut acc = black_box(m);
        for _ in 0..iters {
            for (a, b) in acc.iter_mut().zip(&m) {
                *a *= b;
            }
        }
        black_box(acc);
    });
    let mul_latency_ns = best_ns(reps, iters, || {
        let mut acc = black_box(m[0]);
        for _ in 0..iters {
            acc *= &m[1];
        }
        black_box(acc);
    });
    let square_ns = best_ns(reps, iters * LANES, || {
        let mut acc = black_box(m);
        for _ in 0..iters {
            for a in acc.iter_mut() {
                a.square_in_place();
            }
        }
        black_box(acc);
    });
    let inv_iters = (iters / 64).max(1);
    let inverse_ns = best_ns(reps, inv_iters, || {
        let mut acc = black_box(m[0]);
        for _ in 0..inv_iters {
            acc = acc.inverse().unwrap_or(acc) + m[1];
        }
        black_box(acc);
    });
    let fq2_mul_ns = best_ns(reps, iters * LANES, || {
        let mut acc = black_box(m2);
        for _ in 0..iters {
            for (a, b) in acc.iter_mut().zip(&m2) {
                *a *= b;
            }
        }
        black_box(acc);
    });
    let adx = FieldPath::Adx.available().then(|| AdxCosts {
        mul_ns: best_ns(reps, iters * LANES, || {
            let mut acc = black_box(m);
            for _ in 0..iters {
                for (a, b) in acc.iter_mut().zip(&m) {
                    *a = mul_on(FieldPath::Adx, a, b);
                }
            }
            black_box(acc);
        }),
        fq2_mul_ns: best_ns(reps, iters * LANES, || {
            let mut acc = black_box(m2);
            for _ in 0..iters {
                for (a, b) in acc.iter_mut().zip(&m2) {
                    *a = mul_on(FieldPath::Adx, a, b);
                }
            }
            black_box(acc);
        }),
    });
    FieldCosts {
        mul_ns,
        mul_latency_ns,
        square_ns,
        inverse_ns,
        fq2_mul_ns,
        adx,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_costs_are_positive_and_finite() {
        let c = measure(1_000);
        for v in [
            c.mul_ns,
            c.mul_latency_ns,
            c.square_ns,
            c.inverse_ns,
            c.fq2_mul_ns,
        ]
        .into_iter()
        .chain(c.adx.iter().flat_map(|a| [a.mul_ns, a.fq2_mul_ns]))
        {
            assert!(v.is_finite() && v > 0.0, "{c:?}");
        }
        // An inversion costs many multiplications on any machine.
        assert!(c.inverse_ns > 5.0 * c.mul_ns, "{c:?}");
    }
}
