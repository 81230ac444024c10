//! EdDSA-Poseidon verification (see [`super`]) as an R1CS gadget.
//!
//! [`enforce_signature`] checks `S G + 4A == (h (8A) + 4A) + R` when `enabled`, with:
//! - `h` decomposed into its canonical 254 bits: booleans, one packing constraint and a
//!   comparison with `p - 1` costing about one constraint per run of equal bits of the constant
//!   (130; `S < l` is the same comparison, 151);
//! - `h (8A)` by signed 2-bit windows: digits `2v - 3` in `{±1, ±3}` times `4A` (table
//!   `{4A, 12A}`; negation is free on Edwards), Horner from the top window starting at `4A`, which
//!   yields `h (8A) + 4A`. A window costs 2 doublings, 4 lookup constraints and an addition: 20
//!   constraints for 2 bits, against 26 for binary double-and-add;
//! - `S G` by fixed-base 3-bit windows: each window's eight multiples of `8^i G` interpolated as
//!   a multilinear polynomial in its bits (4 products), then added (6 constraints).
//!
//! Every group operation uses arkworks' complete twisted Edwards formulas, so identity or
//! small-order points (dummy witnesses of disabled slots) never divide by zero. Points must be on
//! the curve: [`SignatureVar`] enforces it for `R`, the caller for the public key.
//!
//! Cost: 4,517 constraints with the allocation of the key (3), `R` (3), `S` (251 + 151) and
//! `enabled` (1); of the 4,108 of [`enforce_signature`] itself, the variable-base multiplication
//! takes 2,541, the fixed-base one 831, the bits of `h` 385, Poseidon 321.

use std::borrow::Borrow;
use std::sync::OnceLock;

use ark_bn254::Fr;
use ark_ec::CurveGroup;
use ark_ed_on_bn254::{constraints::EdwardsVar, EdwardsProjective, Fr as JubjubScalar};
use ark_ff::{AdditiveGroup, BigInteger, Field, One, PrimeField, Zero};
use ark_r1cs_std::{
    fields::fp::{AllocatedFp, FpVar},
    prelude::*,
};
use ark_relations::r1cs::{
    ConstraintSystemRef, LinearCombination, Namespace, SynthesisError, Variable,
};

use super::{generator, Signature, SCALAR_BITS};
use crate::poseidon::gadget::poseidon_var;

/// An allocated signature: `R` (on-curve checked) and the 251 little-endian bits of `S`, with
/// `S < l` enforced.
#[derive(Clone, Debug)]
pub struct SignatureVar {
    /// The nonce point `R`; its subgroup membership follows from the verification equation.
    pub r: EdwardsVar,
    /// `S`, little-endian, `SCALAR_BITS` long.
    pub s_bits: Vec<Boolean<Fr>>,
}

impl AllocVar<Signature, Fr> for SignatureVar {
    fn new_variable<T: Borrow<Signature>>(
        cs: impl Into<Namespace<Fr>>,
        f: impl FnOnce() -> Result<T, SynthesisError>,
        mode: AllocationMode,
    ) -> Result<Self, SynthesisError> {
        let ns = cs.into();
        let cs = ns.cs();
        let sig = f().map(|s| *s.borrow());
        let r = EdwardsVar::new_variable_omit_prime_order_check(
            ark_relations::ns!(cs, "R"),
            || sig.map(|s| s.r.into()),
            mode,
        )?;
        let s_bits = alloc_scalar_bits(
            &cs,
            sig.map(|s| le_bits(&s.s.into_bigint(), SCALAR_BITS)),
            mode,
        )?;
        Ok(SignatureVar { r, s_bits })
    }
}

/// Allocates `SCALAR_BITS` bits and enforces that they encode a value `<= l - 1`.
fn alloc_scalar_bits(
    cs: &ConstraintSystemRef<Fr>,
    bits: Result<Vec<bool>, SynthesisError>,
    mode: AllocationMode,
) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    if let Ok(b) = &bits {
        assert_eq!(b.len(), SCALAR_BITS);
    }
    let vars = (0..SCALAR_BITS)
        .map(|i| {
            Boolean::new_variable(
                ark_relations::ns!(cs, "S bit"),
                || bits.as_ref().map(|b| b[i]).map_err(|e| *e),
                mode,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let l_minus_one = le_bits(&(-JubjubScalar::one()).into_bigint(), SCALAR_BITS);
    enforce_le_const(&vars, &l_minus_one)?;
    Ok(vars)
}

/// Enforces, when `enabled`, that `sig` is a valid signature on `msg` by `pk` (cofactored, as
/// [`super::PublicKey::verify`]); enforces nothing otherwise. `pk` must be on the curve (allocate
/// it with `new_variable_omit_prime_order_check`); it need not be in the prime-order subgroup.
pub fn enforce_signature(
    pk: &EdwardsVar,
    msg: &FpVar<Fr>,
    sig: &SignatureVar,
    enabled: &Boolean<Fr>,
) -> Result<(), SynthesisError> {
    assert_eq!(
        sig.s_bits.len(),
        SCALAR_BITS,
        "S must have {SCALAR_BITS} bits"
    );
    let a4 = pk.double()?.double()?;
    let a8 = a4.double()?;
    // 8A lies in the prime-order subgroup, where x = 0 only at the identity: a non-zero x
    // rejects every small-order key (identity, (0, -1), the order-4 and order-8 points).
    enforce_nonzero_if(&a8.x, enabled)?;

    let h = poseidon_var(&[
        sig.r.x.clone(),
        sig.r.y.clone(),
        pk.x.clone(),
        pk.y.clone(),
        msg.clone(),
    ])?;
    let h_bits = canonical_bits_le(&h)?;

    // right = h (8A) + 4A + R, left = S G + 4A.
    let right = mul_signed_windows(&a4, &a8, &h_bits)? + &sig.r;
    let left = mul_generator_var(&sig.s_bits)? + &a4;
    // S G and h (8A) lie in the prime-order subgroup, so equality also forces R into it: no
    // separate subgroup check on R is needed.
    left.conditional_enforce_equal(&right, enabled)
}

/// `S G` for little-endian scalar bits (at most `SCALAR_BITS`), by fixed-base 3-bit windows.
pub fn mul_generator_var(bits: &[Boolean<Fr>]) -> Result<EdwardsVar, SynthesisError> {
    let tables = generator_windows();
    let mut acc: Option<EdwardsVar> = None;
    for (chunk, table) in bits.chunks(3).zip(tables) {
        assert!(chunk.len() <= table.bits);
        // monomials[mask] = product of the chunk bits selected by mask
        let n = 1usize << chunk.len();
        let mut monomials: Vec<Boolean<Fr>> = Vec::with_capacity(n);
        monomials.push(Boolean::TRUE);
        for mask in 1..n {
            let low = mask.trailing_zeros() as usize;
            let rest = mask & (mask - 1);
            monomials.push(if rest == 0 {
                chunk[low].clone()
            } else {
                &monomials[rest] & &chunk[low]
            });
        }
        let x = bits_lc(table.x[0], (1..n).map(|m| (table.x[m], &monomials[m])))?;
        let y = bits_lc(table.y[0], (1..n).map(|m| (table.y[m], &monomials[m])))?;
        let point = EdwardsVar::new(x, y);
        acc = Some(match acc {
            None => point,
            Some(a) => a + point,
        });
    }
    Ok(acc.unwrap_or_else(EdwardsVar::zero))
}

/// Multilinear coefficients of one window's table `k 8^i G`, `k < 2^bits`: the table entry for
/// bits `b` is `Σ_mask coeff[mask] Π_{j in mask} b_j`.
struct GeneratorWindow {
    bits: usize,
    x: Vec<Fr>,
    y: Vec<Fr>,
}

fn generator_windows() -> &'static [GeneratorWindow] {
    static TABLES: OnceLock<Vec<GeneratorWindow>> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut base = EdwardsProjective::from(generator());
        let mut windows = Vec::new();
        let mut remaining = SCALAR_BITS;
        while remaining > 0 {
            let bits = remaining.min(3);
            let multiples: Vec<EdwardsProjective> = (0..1u64 << bits)
                .map(|k| base * JubjubScalar::from(k))
                .collect();
            let affine = EdwardsProjective::normalize_batch(&multiples);
            let mut x: Vec<Fr> = affine.iter().map(|p| p.x).collect();
            let mut y: Vec<Fr> = affine.iter().map(|p| p.y).collect();
            mobius(&mut x);
            mobius(&mut y);
            windows.push(GeneratorWindow { bits, x, y });
            for _ in 0..bits {
                base.double_in_place();
            }
            remaining -= bits;
        }
        windows
    })
}

/// Values on the boolean cube (indexed by mask) to multilinear coefficients.
fn mobius(v: &mut [Fr]) {
    let n = v.len();
    let mut bit = 1;
    while bit < n {
        for mask in 0..n {
            if mask & bit != 0 {
                v[mask] -= v[mask ^ bit];
            }
        }
        bit <<= 1;
    }
}

/// `h (2Q) + Q` for `h` given by an even number of little-endian bits and `q2 = 2Q`.
///
/// Window `i` holds `v_i = b_{2i} + 2 b_{2i+1}`; its signed digit `d_i = 2 v_i - 3` is in
/// `{-3, -1, 1, 3}`, so `Σ d_i 4^i = 2h - (4^n - 1)`. Horner from the top window starting at `Q`
/// gives `4^n Q + (2h - 4^n + 1) Q = h (2Q) + Q`.
fn mul_signed_windows(
    q: &EdwardsVar,
    q2: &EdwardsVar,
    bits: &[Boolean<Fr>],
) -> Result<EdwardsVar, SynthesisError> {
    assert!(!bits.is_empty() && bits.chunks_exact(2).remainder().is_empty());
    let q3 = q + q2;
    let mut acc: Option<EdwardsVar> = None;
    for window in bits.chunks(2).rev() {
        let quadrupled = match acc {
            // 4 Q = 2 (2Q)
            None => q2.double()?,
            Some(a) => a.double()?.double()?,
        };
        acc = Some(quadrupled + signed_digit(q, &q3, &window[0], &window[1])?);
    }
    Ok(acc.expect("at least one window"))
}

/// `(2 (b0 + 2 b1) - 3) Q`, from `Q` and `3Q`: magnitude 3 iff `b0 == b1`, positive iff `b1`.
/// Four constraints.
fn signed_digit(
    q: &EdwardsVar,
    q3: &EdwardsVar,
    b0: &Boolean<Fr>,
    b1: &Boolean<Fr>,
) -> Result<EdwardsVar, SynthesisError> {
    let three = FpVar::from(!(b0 ^ b1));
    let y = &q.y + &three * (&q3.y - &q.y);
    let x_abs = &q.x + &three * (&q3.x - &q.x);
    let sign = FpVar::from(b1.clone()).double()? - Fr::one();
    Ok(EdwardsVar::new(sign * x_abs, y))
}

/// The canonical little-endian bits of `x` (`MODULUS_BIT_SIZE` of them, value `<= p - 1`).
pub(crate) fn canonical_bits_le(x: &FpVar<Fr>) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    let n = Fr::MODULUS_BIT_SIZE as usize;
    if let FpVar::Constant(c) = x {
        return Ok(le_bits(&c.into_bigint(), n)
            .into_iter()
            .map(Boolean::constant)
            .collect());
    }
    let value = x.value().ok().map(|v| le_bits(&v.into_bigint(), n));
    decompose_le(x, value)
}

/// Witnesses `bits` (`MODULUS_BIT_SIZE` of them) and enforces that they are the canonical
/// decomposition of the variable `x`: they pack to `x` and their value is at most `p - 1`.
fn decompose_le(
    x: &FpVar<Fr>,
    bits: Option<Vec<bool>>,
) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    let n = Fr::MODULUS_BIT_SIZE as usize;
    let cs = x.cs();
    let vars = (0..n)
        .map(|i| {
            Boolean::new_witness(ark_relations::ns!(cs, "bit"), || {
                bits.as_ref()
                    .map(|v| v[i])
                    .ok_or(SynthesisError::AssignmentMissing)
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut power = Fr::one();
    let mut terms = Vec::with_capacity(n);
    for b in &vars {
        terms.push((power, b));
        power.double_in_place();
    }
    bits_lc(Fr::zero(), terms)?.enforce_equal(x)?;
    enforce_le_const(&vars, &le_bits(&(-Fr::one()).into_bigint(), n))?;
    Ok(vars)
}

/// Enforces `Σ 2^i bits[i] <= bound` for a constant `bound` given by as many little-endian bits.
///
/// Scanning from the top, `eq` is 1 while the bits so far equal the bound's. Below a run of zeros
/// of the bound, the bits must be zero while `eq` holds: one constraint `eq · Σ run = 0` (the
/// bits are boolean, so the sum vanishes only if each does). A run of ones updates `eq` to
/// `eq ∧ run` (one product for a single bit, else an equality test `eq + Σ run == len + 1`, two
/// constraints). The lowest run of ones needs nothing.
fn enforce_le_const(bits: &[Boolean<Fr>], bound: &[bool]) -> Result<(), SynthesisError> {
    assert_eq!(bits.len(), bound.len());
    let mut eq = FpVar::<Fr>::one();
    let mut hi = bits.len();
    while hi > 0 {
        let ones = bound[hi - 1];
        let mut lo = hi - 1;
        while lo > 0 && bound[lo - 1] == ones {
            lo -= 1;
        }
        let run = &bits[lo..hi];
        let sum = bits_lc(Fr::zero(), run.iter().map(|b| (Fr::one(), b)))?;
        if !ones {
            eq.mul_equals(&sum, &FpVar::zero())?;
        } else if lo > 0 {
            eq = match (&eq, run) {
                (FpVar::Constant(_), [b]) => &eq * FpVar::from(b.clone()),
                (FpVar::Constant(_), [b0, b1]) => FpVar::from(b0 & b1),
                (FpVar::Var(_), [b]) => &eq * FpVar::from(b.clone()),
                _ => FpVar::from(
                    (sum + &eq).is_eq(&FpVar::constant(Fr::from(run.len() as u64 + 1)))?,
                ),
            };
        }
        hi = lo;
    }
    Ok(())
}

/// Enforces `x != 0` when `cond`: `x · inv = cond` with a witnessed `inv` (zero when `!cond`).
fn enforce_nonzero_if(x: &FpVar<Fr>, cond: &Boolean<Fr>) -> Result<(), SynthesisError> {
    let cs = x.cs().or(cond.cs());
    if cs.is_none() {
        return if cond.value()? && x.value()?.is_zero() {
            Err(SynthesisError::Unsatisfiable)
        } else {
            Ok(())
        };
    }
    let inv = FpVar::new_witness(ark_relations::ns!(cs, "inverse"), || {
        let v = x.value()?;
        Ok(if cond.value()? {
            v.inverse().unwrap_or(Fr::zero())
        } else {
            Fr::zero()
        })
    })?;
    x.mul_equals(&inv, &FpVar::from(cond.clone()))
}

/// `constant + Σ coeff · bit` as a single symbolic variable (a constant if every bit is).
fn bits_lc<'a>(
    constant: Fr,
    terms: impl IntoIterator<Item = (Fr, &'a Boolean<Fr>)>,
) -> Result<FpVar<Fr>, SynthesisError> {
    let mut cs = ConstraintSystemRef::None;
    let mut lc = LinearCombination::zero();
    if !constant.is_zero() {
        lc += (constant, Variable::One);
    }
    let mut value = Some(constant);
    for (coeff, bit) in terms {
        cs = cs.or(bit.cs());
        lc = lc + (coeff, &bit.lc());
        value = value
            .zip(bit.value().ok())
            .map(|(v, b)| if b { v + coeff } else { v });
    }
    if cs.is_none() {
        return Ok(FpVar::Constant(value.expect("constant bits have values")));
    }
    let var = cs.new_lc(lc)?;
    Ok(FpVar::Var(AllocatedFp::new(value, var, cs)))
}

/// The low `n` bits of `x`, little-endian.
fn le_bits<B: BigInteger>(x: &B, n: usize) -> Vec<bool> {
    (0..n).map(|i| x.get_bit(i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eddsa::{challenge, mul_generator, PublicKey, SigningKey};
    use ark_ec::{AffineRepr, CurveGroup, PrimeGroup};
    use ark_ed_on_bn254::EdwardsAffine;
    use ark_ff::UniformRand;
    use ark_relations::r1cs::{ConstraintSystem, SynthesisMode};
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn order2() -> EdwardsAffine {
        EdwardsAffine::new_unchecked(Fr::zero(), -Fr::one())
    }

    /// Allocates everything and returns the constraint system after `enforce_signature`.
    fn circuit(
        pk: EdwardsAffine,
        msg: Fr,
        sig: &Signature,
        enabled: bool,
    ) -> ConstraintSystemRef<Fr> {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let pk = EdwardsVar::new_variable_omit_prime_order_check(
            cs.clone(),
            || Ok(pk.into()),
            AllocationMode::Witness,
        )
        .unwrap();
        let msg = FpVar::new_witness(cs.clone(), || Ok(msg)).unwrap();
        let sig = SignatureVar::new_witness(cs.clone(), || Ok(*sig)).unwrap();
        let enabled = Boolean::new_witness(cs.clone(), || Ok(enabled)).unwrap();
        enforce_signature(&pk, &msg, &sig, &enabled).unwrap();
        cs
    }

    fn accepts(pk: EdwardsAffine, msg: Fr, sig: &Signature) -> bool {
        circuit(pk, msg, sig, true).is_satisfied().unwrap()
    }

    fn setup(seed: u64) -> (ChaCha8Rng, SigningKey, Fr, Signature) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let sk = SigningKey::random(&mut rng);
        let msg: Fr = rng.gen();
        let sig = sk.sign(msg);
        (rng, sk, msg, sig)
    }

    #[test]
    fn constraint_count() {
        let (_, sk, msg, sig) = setup(1);
        let cs = circuit(sk.public_key().0, msg, &sig, true);
        assert!(cs.is_satisfied().unwrap());
        let n = cs.num_constraints();
        eprintln!("enforce_signature with pk and signature allocation: {n} constraints");
        assert!(n <= 4_550, "{n} constraints");
    }

    #[test]
    fn shape_does_not_depend_on_the_witness() {
        let (_, sk, msg, sig) = setup(2);
        let prove = circuit(sk.public_key().0, msg, &sig, true);
        let dummy = circuit(
            EdwardsAffine::zero(),
            Fr::zero(),
            &Signature {
                r: EdwardsAffine::zero(),
                s: JubjubScalar::zero(),
            },
            false,
        );
        let setup_cs = ConstraintSystem::<Fr>::new_ref();
        setup_cs.set_mode(SynthesisMode::Setup);
        let pk = EdwardsVar::new_variable_omit_prime_order_check(
            setup_cs.clone(),
            || Err(SynthesisError::AssignmentMissing),
            AllocationMode::Witness,
        )
        .unwrap();
        let m = FpVar::new_witness(setup_cs.clone(), || {
            Err::<Fr, _>(SynthesisError::AssignmentMissing)
        })
        .unwrap();
        let s = SignatureVar::new_witness(setup_cs.clone(), || {
            Err::<Signature, _>(SynthesisError::AssignmentMissing)
        })
        .unwrap();
        let e = Boolean::new_witness(setup_cs.clone(), || {
            Err::<bool, _>(SynthesisError::AssignmentMissing)
        })
        .unwrap();
        enforce_signature(&pk, &m, &s, &e).unwrap();
        assert_eq!(prove.num_constraints(), setup_cs.num_constraints());
        assert_eq!(dummy.num_constraints(), setup_cs.num_constraints());
        assert_eq!(
            prove.num_witness_variables(),
            setup_cs.num_witness_variables()
        );
    }

    #[test]
    fn cheaper_than_arkworks_scalar_mul() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let point = mul_generator(JubjubScalar::rand(&mut rng));
        let scalar: Fr = rng.gen();
        let bits_of = |cs: &ConstraintSystemRef<Fr>, n: usize, v: &[bool]| -> Vec<Boolean<Fr>> {
            (0..n)
                .map(|i| Boolean::new_witness(cs.clone(), || Ok(v[i])).unwrap())
                .collect()
        };
        let h_bits = le_bits(&scalar.into_bigint(), 254);
        let s = JubjubScalar::rand(&mut rng);
        let s_bits = le_bits(&s.into_bigint(), SCALAR_BITS);

        let count = |f: &dyn Fn(&ConstraintSystemRef<Fr>)| {
            let cs = ConstraintSystem::<Fr>::new_ref();
            f(&cs);
            assert!(cs.is_satisfied().unwrap());
            cs.num_constraints()
        };
        let alloc_point = |cs: &ConstraintSystemRef<Fr>| {
            EdwardsVar::new_variable_omit_prime_order_check(
                cs.clone(),
                || Ok(point.into()),
                AllocationMode::Witness,
            )
            .unwrap()
        };
        let ours_var = count(&|cs| {
            let p = alloc_point(cs);
            let bits = bits_of(cs, 254, &h_bits);
            let before = cs.num_constraints();
            let half = p.double().unwrap();
            let _ = mul_signed_windows(&half, &p, &bits).unwrap();
            let _ = before;
        });
        let ark_var = count(&|cs| {
            let p = alloc_point(cs);
            let bits = bits_of(cs, 254, &h_bits);
            let _ = p.scalar_mul_le(bits.iter()).unwrap();
        });
        let ours_fixed = count(&|cs| {
            let bits = bits_of(cs, SCALAR_BITS, &s_bits);
            let _ = mul_generator_var(&bits).unwrap();
        });
        let ark_fixed = count(&|cs| {
            let bits = bits_of(cs, SCALAR_BITS, &s_bits);
            let mut powers = Vec::with_capacity(SCALAR_BITS);
            let mut g = EdwardsProjective::from(generator());
            for _ in 0..SCALAR_BITS {
                powers.push(g);
                g.double_in_place();
            }
            let mut acc = EdwardsVar::zero();
            acc.precomputed_base_scalar_mul_le(bits.iter().zip(powers.iter()))
                .unwrap();
        });
        let ark_fixed_const = count(&|cs| {
            let bits = bits_of(cs, SCALAR_BITS, &s_bits);
            let _ = EdwardsVar::constant(generator().into())
                .scalar_mul_le(bits.iter())
                .unwrap();
        });
        eprintln!(
            "variable base, 254 bits: ours {ours_var} (incl. 254 bit allocations and one doubling), \
             arkworks scalar_mul_le {ark_var}; fixed base, 251 bits: ours {ours_fixed}, arkworks \
             precomputed_base_scalar_mul_le {ark_fixed}, constant G scalar_mul_le {ark_fixed_const}"
        );
        assert!(ours_var < ark_var);
        assert!(ours_fixed < ark_fixed && ours_fixed < ark_fixed_const);
    }

    #[test]
    fn windowed_muls_agree_with_native() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let points = [
            mul_generator(JubjubScalar::rand(&mut rng)),
            EdwardsAffine::zero(),
            order2(),
            // a point with a small-order component
            (mul_generator(JubjubScalar::rand(&mut rng)) + order2()).into_affine(),
        ];
        for point in points {
            for case in 0..4 {
                let bits: Vec<bool> = match case {
                    0 => vec![false; 254],
                    1 => vec![true; 254],
                    _ => (0..254).map(|_| rng.gen()).collect(),
                };
                let cs = ConstraintSystem::<Fr>::new_ref();
                let q = EdwardsVar::new_variable_omit_prime_order_check(
                    cs.clone(),
                    || Ok(point.into()),
                    AllocationMode::Witness,
                )
                .unwrap();
                let bit_vars: Vec<Boolean<Fr>> = bits
                    .iter()
                    .map(|b| Boolean::new_witness(cs.clone(), || Ok(*b)).unwrap())
                    .collect();
                let q2 = q.double().unwrap();
                let got = mul_signed_windows(&q, &q2, &bit_vars).unwrap();
                // (`AffineVar::value` asserts subgroup membership, so read the coordinates)
                let got =
                    EdwardsAffine::new_unchecked(got.x.value().unwrap(), got.y.value().unwrap());
                let mut limbs = [0u64; 4];
                for (i, b) in bits.iter().enumerate() {
                    limbs[i / 64] |= (*b as u64) << (i % 64);
                }
                let q2_native = EdwardsProjective::from(point).double();
                let expected = q2_native.mul_bigint(limbs) + point;
                assert_eq!(got, expected.into_affine());
                assert!(cs.is_satisfied().unwrap());
            }
        }
        for case in 0..6 {
            let s = match case {
                0 => JubjubScalar::zero(),
                1 => -JubjubScalar::one(),
                _ => JubjubScalar::rand(&mut rng),
            };
            let cs = ConstraintSystem::<Fr>::new_ref();
            let bits: Vec<Boolean<Fr>> = le_bits(&s.into_bigint(), SCALAR_BITS)
                .into_iter()
                .map(|b| Boolean::new_witness(cs.clone(), || Ok(b)).unwrap())
                .collect();
            let got = mul_generator_var(&bits).unwrap().value().unwrap();
            assert_eq!(got.into_affine(), mul_generator(s));
            assert!(cs.is_satisfied().unwrap());
        }
    }

    #[test]
    fn le_const_comparison_is_exact() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut bounds: Vec<u64> = vec![
            0,
            1,
            0b1010_1010,
            0b11_1111_1111,
            0b10_0000_0000,
            0b11_0001_1101,
        ];
        bounds.extend((0..4).map(|_| rng.gen_range(0..1024)));
        for bound in bounds {
            let bound_bits: Vec<bool> = (0..10).map(|i| bound >> i & 1 == 1).collect();
            for x in 0u64..1024 {
                let cs = ConstraintSystem::<Fr>::new_ref();
                let bits: Vec<Boolean<Fr>> = (0..10)
                    .map(|i| Boolean::new_witness(cs.clone(), || Ok(x >> i & 1 == 1)).unwrap())
                    .collect();
                enforce_le_const(&bits, &bound_bits).unwrap();
                assert_eq!(
                    cs.is_satisfied().unwrap(),
                    x <= bound,
                    "x = {x}, bound = {bound}"
                );
            }
        }
    }

    /// Whether `bits` are accepted as the decomposition of `x`.
    fn decomposition_ok(x: Fr, bits: Vec<bool>) -> bool {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let v = FpVar::new_witness(cs.clone(), || Ok(x)).unwrap();
        decompose_le(&v, Some(bits)).unwrap();
        cs.is_satisfied().unwrap()
    }

    #[test]
    fn h_bits_are_canonical() {
        let p = Fr::MODULUS;
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        // h + p packs to h as well when it fits in 254 bits: only the comparison rejects it
        let h = Fr::from(rng.gen::<u128>());
        let mut h_plus_p = h.into_bigint();
        assert!(!h_plus_p.add_with_carry(&p));
        assert!(decomposition_ok(h, le_bits(&h.into_bigint(), 254)));
        assert!(!decomposition_ok(h, le_bits(&h_plus_p, 254)));
        // boundaries: p - 1 is canonical; 0 written as p, and 2^254 - 1 are not
        let p_minus_1 = -Fr::one();
        assert!(decomposition_ok(
            p_minus_1,
            le_bits(&p_minus_1.into_bigint(), 254)
        ));
        assert!(!decomposition_ok(Fr::zero(), le_bits(&p, 254)));
        let mut all_ones = ark_ff::BigInt::<4>::zero();
        for i in 0..254 {
            all_ones.0[i / 64] |= 1 << (i % 64);
        }
        let wrapped = Fr::from_bigint({
            let mut v = all_ones;
            v.sub_with_borrow(&p);
            v
        })
        .unwrap();
        assert!(!decomposition_ok(wrapped, vec![true; 254]));
        // the honest decomposition
        let cs = ConstraintSystem::<Fr>::new_ref();
        let x: Fr = rng.gen();
        let v = FpVar::new_witness(cs.clone(), || Ok(x)).unwrap();
        let bits = canonical_bits_le(&v).unwrap();
        let got: Vec<bool> = bits.iter().map(|b| b.value().unwrap()).collect();
        assert_eq!(got, le_bits(&x.into_bigint(), 254));
        assert!(cs.is_satisfied().unwrap());
    }

    /// A circuit with the signature's `S` bits replaced by `s_bits` (unchecked values).
    fn circuit_with_s_bits(
        pk: EdwardsAffine,
        msg: Fr,
        r: EdwardsAffine,
        s_bits: Vec<bool>,
    ) -> ConstraintSystemRef<Fr> {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let pk = EdwardsVar::new_variable_omit_prime_order_check(
            cs.clone(),
            || Ok(pk.into()),
            AllocationMode::Witness,
        )
        .unwrap();
        let msg = FpVar::new_witness(cs.clone(), || Ok(msg)).unwrap();
        let r = EdwardsVar::new_variable_omit_prime_order_check(
            cs.clone(),
            || Ok(r.into()),
            AllocationMode::Witness,
        )
        .unwrap();
        let s_bits = alloc_scalar_bits(&cs, Ok(s_bits), AllocationMode::Witness).unwrap();
        enforce_signature(&pk, &msg, &SignatureVar { r, s_bits }, &Boolean::TRUE).unwrap();
        cs
    }

    #[test]
    fn s_at_least_l_is_rejected() {
        let l = JubjubScalar::MODULUS;
        // find a signature with S + l < 2^251, so that S + l is a valid 251-bit witness for the
        // same equation
        for seed in 100.. {
            let (_, sk, msg, sig) = setup(seed);
            let mut s_plus_l = sig.s.into_bigint();
            s_plus_l.add_with_carry(&l);
            if s_plus_l.num_bits() as usize > SCALAR_BITS {
                continue;
            }
            let pk = sk.public_key().0;
            let ok =
                circuit_with_s_bits(pk, msg, sig.r, le_bits(&sig.s.into_bigint(), SCALAR_BITS));
            assert!(ok.is_satisfied().unwrap());
            let bad = circuit_with_s_bits(pk, msg, sig.r, le_bits(&s_plus_l, SCALAR_BITS));
            assert!(!bad.is_satisfied().unwrap());
            break;
        }
        // l itself and 2^251 - 1
        let (_, sk, msg, sig) = setup(7);
        let pk = sk.public_key().0;
        for s in [le_bits(&l, SCALAR_BITS), vec![true; SCALAR_BITS]] {
            assert!(!circuit_with_s_bits(pk, msg, sig.r, s)
                .is_satisfied()
                .unwrap());
        }
    }

    #[test]
    fn forgeries_rejected() {
        let (mut rng, sk, msg, sig) = setup(8);
        let pk = sk.public_key().0;
        assert!(accepts(pk, msg, &sig));
        // random S
        let forged = Signature {
            s: JubjubScalar::rand(&mut rng),
            ..sig
        };
        assert!(!accepts(pk, msg, &forged));
        // a different message
        assert!(!accepts(pk, msg + Fr::one(), &sig));
        // another key
        let other = SigningKey::random(&mut rng).public_key().0;
        assert!(!accepts(other, msg, &sig));
        // R with a small-order component: the equation forces R into the subgroup
        let torsion_r = Signature {
            r: (sig.r + order2()).into_affine(),
            ..sig
        };
        assert!(!accepts(pk, msg, &torsion_r));
    }

    #[test]
    fn small_order_keys_rejected() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let msg: Fr = rng.gen();
        let s = JubjubScalar::rand(&mut rng);
        // R = S G satisfies S G = R + h (8A) when 8A = O
        let forged = Signature {
            r: mul_generator(s),
            s,
        };
        for a in [EdwardsAffine::zero(), order2()] {
            let h = challenge(&forged.r, &a, msg);
            assert_eq!(
                generator() * forged.s,
                a.mul_by_cofactor_to_group().mul_bigint(h.into_bigint()) + forged.r
            );
            assert!(!accepts(a, msg, &forged));
            // the same witness passes when disabled
            assert!(circuit(a, msg, &forged, false).is_satisfied().unwrap());
        }
    }

    #[test]
    fn disabled_accepts_garbage() {
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        let random_point = |rng: &mut ChaCha8Rng| mul_generator(JubjubScalar::rand(rng));
        let identity_sig = Signature {
            r: EdwardsAffine::zero(),
            s: JubjubScalar::zero(),
        };
        let cases = [
            (EdwardsAffine::zero(), Fr::zero(), identity_sig),
            (
                order2(),
                rng.gen(),
                Signature {
                    r: order2(),
                    s: JubjubScalar::rand(&mut rng),
                },
            ),
            (
                random_point(&mut rng),
                rng.gen(),
                Signature {
                    r: random_point(&mut rng),
                    s: JubjubScalar::rand(&mut rng),
                },
            ),
            (
                (random_point(&mut rng) + order2()).into_affine(),
                rng.gen(),
                Signature {
                    r: (random_point(&mut rng) + order2()).into_affine(),
                    s: -JubjubScalar::one(),
                },
            ),
        ];
        for (pk, msg, sig) in cases {
            assert!(circuit(pk, msg, &sig, false).is_satisfied().unwrap());
            assert!(!circuit(pk, msg, &sig, true).is_satisfied().unwrap());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn gadget_agrees_with_native(seed in any::<u64>(), tamper in 0u8..6) {
            let (mut rng, sk, mut msg, mut sig) = setup(seed);
            let mut pk = sk.public_key();
            match tamper {
                1 => msg += Fr::one(),
                2 => sig.s += JubjubScalar::one(),
                3 => sig.r = (sig.r + generator()).into_affine(),
                4 => pk = SigningKey::random(&mut rng).public_key(),
                5 => sig.r = (sig.r + order2()).into_affine(),
                _ => {}
            }
            let native = pk.verify(msg, &sig).is_ok();
            prop_assert_eq!(native, tamper == 0);
            prop_assert_eq!(accepts(pk.0, msg, &sig), native);
            prop_assert!(circuit(pk.0, msg, &sig, false).is_satisfied().unwrap());
        }
    }

    #[test]
    fn public_key_type_round_trip() {
        let (_, sk, _, _) = setup(11);
        let pk: PublicKey = sk.public_key();
        assert_eq!(pk.x(), pk.0.x);
        assert_eq!(pk.y(), pk.0.y);
    }
}
