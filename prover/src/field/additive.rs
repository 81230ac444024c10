//! Branch-free addition, subtraction, doubling and negation in BN254's 4-limb fields (`Fq`,
//! `Fr`) and in `Fq2`, for the hot loops that use [`super::mul`]: the MSM's batch-affine
//! additions ([`crate::msm`]) and the FFT's butterflies ([`crate::fft`]).
//!
//! arkworks reduces a sum by comparing it with the modulus limb by limb and branching on the
//! outcome (and a difference by comparing the operands first). On field elements that look
//! random the branch goes either way about half the time, and its mispredictions cost more
//! than the arithmetic. Here the reduction is a mask instead: the sum and the sum minus `p` are
//! both computed and the borrow picks one; a difference adds `p` masked by its borrow. Results
//! are canonical, bit-identical to arkworks'.
//!
//! Both moduli are below `2^254`, so the sum of two canonical elements fits in four limbs.

use ark_bn254::{Fq, Fq2, Fr};
use ark_ff::fields::{Fp256, MontBackend, MontConfig};
use ark_ff::Field;

use super::{is, same, FQ_MODULUS, FR_MODULUS};

/// `a + b` over four limbs, and the carry out.
#[inline(always)]
fn add_limbs(a: &[u64; 4], b: &[u64; 4]) -> ([u64; 4], bool) {
    let mut s = [0u64; 4];
    let mut carry = false;
    for i in 0..4 {
        let (x, c1) = a[i].overflowing_add(b[i]);
        let (x, c2) = x.overflowing_add(u64::from(carry));
        s[i] = x;
        carry = c1 | c2;
    }
    (s, carry)
}

/// `a - b` over four limbs, and the borrow out.
#[inline(always)]
fn sub_limbs(a: &[u64; 4], b: &[u64; 4]) -> ([u64; 4], bool) {
    let mut d = [0u64; 4];
    let mut borrow = false;
    for i in 0..4 {
        let (x, b1) = a[i].overflowing_sub(b[i]);
        let (x, b2) = x.overflowing_sub(u64::from(borrow));
        d[i] = x;
        borrow = b1 | b2;
    }
    (d, borrow)
}

/// All ones when `bit`, else zero.
#[inline(always)]
fn mask(bit: bool) -> u64 {
    u64::from(bit).wrapping_neg()
}

/// `t - p` if `t ≥ p`, else `t` (for `t < 2p`): the last step of a sum and of a Montgomery
/// product ([`super::Modulus::reduce_once`]), without a branch (LLVM compiles an `if` on the
/// borrow to a jump, mispredicted about half the time).
#[inline(always)]
pub(super) fn reduce_once(t: [u64; 4], p: &[u64; 4]) -> [u64; 4] {
    let (d, borrow) = sub_limbs(&t, p);
    // A borrow means t < p: keep t.
    std::hint::select_unpredictable(borrow, t, d)
}

/// `a + b mod p` for `a, b < p < 2^255`.
#[inline(always)]
fn add_mod(a: &[u64; 4], b: &[u64; 4], p: &[u64; 4]) -> [u64; 4] {
    reduce_once(add_limbs(a, b).0, p)
}

/// `a - b mod p` for `a, b < p`.
#[inline(always)]
fn sub_mod(a: &[u64; 4], b: &[u64; 4], p: &[u64; 4]) -> [u64; 4] {
    let (d, borrow) = sub_limbs(a, b);
    let m = mask(borrow);
    add_limbs(&d, &p.map(|l| l & m)).0
}

/// `-a mod p` for `a < p` (zero stays zero).
#[inline(always)]
fn neg_mod(a: &[u64; 4], p: &[u64; 4]) -> [u64; 4] {
    let m = mask((a[0] | a[1] | a[2] | a[3]) != 0);
    sub_limbs(p, a).0.map(|l| l & m)
}

/// The modulus limbs of a 4-limb field (`F` is `Fq` or `Fr`).
#[inline(always)]
fn limbs_of<C: MontConfig<4>>(x: &Fp256<MontBackend<C, 4>>) -> &[u64; 4] {
    &x.0 .0
}

/// `f` applied to `Fq` or `Fr` limbs with the field's modulus, as `F`; `None` for any other
/// field.
#[inline(always)]
fn on_prime<F: Field>(
    a: &F,
    b: &F,
    f: impl Fn(&[u64; 4], &[u64; 4], &[u64; 4]) -> [u64; 4],
) -> Option<F> {
    // SAFETY: each cast is between identical types (TypeId equal).
    unsafe {
        if is::<F, Fq>() {
            let (a, b) = (same::<F, Fq>(a), same::<F, Fq>(b));
            let mut r = *a;
            r.0 .0 = f(limbs_of(a), limbs_of(b), first_four(&FQ_MODULUS.0));
            return Some(*same::<Fq, F>(&r));
        }
        if is::<F, Fr>() {
            let (a, b) = (same::<F, Fr>(a), same::<F, Fr>(b));
            let mut r = *a;
            r.0 .0 = f(limbs_of(a), limbs_of(b), first_four(&FR_MODULUS.0));
            return Some(*same::<Fr, F>(&r));
        }
    }
    None
}

/// The modulus' limbs (without the Montgomery constant that follows them).
#[inline(always)]
pub(super) fn first_four(m: &[u64; 5]) -> &[u64; 4] {
    m[..4].try_into().expect("four limbs")
}

/// `f` on both coordinates of `Fq2` values, as `F`; `None` for any other field.
#[inline(always)]
fn on_fq2<F: Field>(a: &F, b: &F, f: impl Fn(&Fq, &Fq) -> Fq) -> Option<F> {
    if is::<F, Fq2>() {
        // SAFETY: the casts are between identical types (TypeId equal).
        unsafe {
            let (a, b) = (same::<F, Fq2>(a), same::<F, Fq2>(b));
            let r = Fq2::new(f(&a.c0, &b.c0), f(&a.c1, &b.c1));
            return Some(*same::<Fq2, F>(&r));
        }
    }
    None
}

/// `a + b`: branch-free for `Fq`, `Fr` and `Fq2` when `FAST`, else (and for any other field)
/// arkworks'.
#[inline(always)]
pub(crate) fn add<F: Field, const FAST: bool>(a: &F, b: &F) -> F {
    if FAST {
        if let Some(r) = on_prime(a, b, add_mod) {
            return r;
        }
        if let Some(r) = on_fq2(a, b, add::<Fq, true>) {
            return r;
        }
    }
    *a + b
}

/// `a - b`, dispatched as [`add`].
#[inline(always)]
pub(crate) fn sub<F: Field, const FAST: bool>(a: &F, b: &F) -> F {
    if FAST {
        if let Some(r) = on_prime(a, b, sub_mod) {
            return r;
        }
        if let Some(r) = on_fq2(a, b, sub::<Fq, true>) {
            return r;
        }
    }
    *a - b
}

/// `2a`, dispatched as [`add`].
#[inline(always)]
pub(crate) fn double<F: Field, const FAST: bool>(a: &F) -> F {
    if FAST {
        add::<F, FAST>(a, a)
    } else {
        a.double()
    }
}

/// `-a`, dispatched as [`add`].
#[inline(always)]
pub(crate) fn neg<F: Field, const FAST: bool>(a: &F) -> F {
    if FAST {
        if let Some(r) = on_prime(a, a, |a, _, p| neg_mod(a, p)) {
            return r;
        }
        if let Some(r) = on_fq2(a, a, |a, _| neg::<Fq, true>(a)) {
            return r;
        }
    }
    -*a
}

#[cfg(test)]
mod tests {
    use super::super::tests::{edges, limb_bytes, proptest_config};
    use super::*;
    use ark_ff::{AdditiveGroup, PrimeField, UniformRand};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn check<F: Field>(a: F, b: F) {
        // Equality compares the Montgomery limbs: an unreduced result would differ.
        assert_eq!(add::<F, true>(&a, &b), a + b, "{a} + {b}");
        assert_eq!(sub::<F, true>(&a, &b), a - b, "{a} - {b}");
        assert_eq!(double::<F, true>(&a), a.double(), "2·{a}");
        assert_eq!(neg::<F, true>(&a), -a, "-{a}");
        // The fallback is arkworks itself.
        assert_eq!(add::<F, false>(&a, &b), a + b);
        assert_eq!(sub::<F, false>(&a, &b), a - b);
    }

    #[test]
    fn edge_cases_match_arkworks() {
        for a in edges::<Fq>() {
            for b in edges::<Fq>() {
                check(a, b);
                check(Fq2::new(a, b), Fq2::new(b, a));
            }
        }
        for a in edges::<Fr>() {
            for b in edges::<Fr>() {
                check(a, b);
            }
        }
        assert_eq!(neg::<Fq, true>(&Fq::ZERO), Fq::ZERO);
    }

    #[test]
    fn random_values_match_arkworks() {
        let mut rng = ChaCha20Rng::seed_from_u64(0xadd);
        for _ in 0..(1 << 16) {
            check(Fq::rand(&mut rng), Fq::rand(&mut rng));
            check(Fr::rand(&mut rng), Fr::rand(&mut rng));
            check(Fq2::rand(&mut rng), Fq2::rand(&mut rng));
        }
    }

    proptest! {
        #![proptest_config(proptest_config(0xadd5))]
        /// Values from arbitrary limbs (reduced), and values just below p.
        #[test]
        fn arbitrary_values_match(a in any::<[u64; 4]>(), b in any::<[u64; 4]>(), near in any::<bool>()) {
            let x = Fq::from_le_bytes_mod_order(&limb_bytes(a));
            let y = if near { -Fq::from(b[0]) } else { Fq::from_le_bytes_mod_order(&limb_bytes(b)) };
            check(x, y);
            check(y, x);
            let x = Fr::from_le_bytes_mod_order(&limb_bytes(a));
            let y = if near { -Fr::from(b[0]) } else { Fr::from_le_bytes_mod_order(&limb_bytes(b)) };
            check(x, y);
            check(y, x);
        }
    }
}
