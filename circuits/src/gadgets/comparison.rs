//! Integer comparison and range checks of field elements in R1CS.
//!
//! [`is_less_than_bits`] compares two little-endian bit strings as integers by subtracting limb by
//! limb with a borrow: for limbs of `n <= 127` bits, `d = b_i - a_i - borrow + 2^n` lies in
//! `[0, 2^(n+1))`, so it is decomposed into `n + 1` bits (unique, far below the modulus) whose top
//! bit is "no borrow". The first borrow is 1, so the final "no borrow" says `b - a - 1 >= 0`, that
//! is `a < b`. Packing the input bits into limbs is free; two canonical 254-bit values cost
//! 2 x (128 + 1) = 258 constraints on top of their decompositions ([`canonical_bits`], ~385 each).

use ark_bn254::Fr;
use ark_ff::{AdditiveGroup, BigInteger, Field, PrimeField, Zero};
use ark_r1cs_std::{alloc::AllocVar, boolean::Boolean, fields::fp::FpVar, R1CSVar};
use ark_relations::r1cs::{ConstraintSystemRef, LinearCombination, SynthesisError, Variable};

use super::lc_of;

/// Width of the limbs compared at once: `2^(LIMB_BITS + 1)` stays far below the modulus.
pub const LIMB_BITS: usize = 127;

/// The canonical little-endian bits of `x` (254 of them, as an integer below the modulus): 254
/// booleans plus a run-length comparison with `p - 1`, about 385 constraints (ark-r1cs-std's
/// `to_bits_le` costs 640).
pub fn canonical_bits(x: &FpVar<Fr>) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    crate::eddsa::gadget::canonical_bits_le(x)
}

/// `sum bits[i] * 2^i` as a linear combination, and its value when known.
fn pack(bits: &[Boolean<Fr>]) -> (LinearCombination<Fr>, Option<Fr>) {
    let mut lc = LinearCombination::zero();
    let mut value = Some(Fr::zero());
    let mut power = Fr::ONE;
    for bit in bits {
        lc = lc + bit.lc() * power;
        value = value
            .zip(bit.value().ok())
            .map(|(v, b)| if b { v + power } else { v });
        power.double_in_place();
    }
    (lc, value)
}

fn cs_of(bits: &[Boolean<Fr>]) -> ConstraintSystemRef<Fr> {
    bits.iter()
        .fold(ConstraintSystemRef::None, |cs, b| cs.or(b.cs()))
}

/// Allocates the `n` little-endian bits of `value` (known to be below `2^n`, `n <= 253`) and
/// enforces that they pack to `lc`: `n + 1` constraints.
fn decompose(
    cs: &ConstraintSystemRef<Fr>,
    lc: LinearCombination<Fr>,
    value: Option<Fr>,
    n: usize,
) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    let big = value.map(|v| v.into_bigint());
    let bits = (0..n)
        .map(|i| {
            Boolean::new_witness(cs.clone(), || {
                big.map(|b| b.get_bit(i))
                    .ok_or(SynthesisError::AssignmentMissing)
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (packed, _) = pack(&bits);
    cs.enforce_constraint(
        LinearCombination::from(Variable::One),
        packed - lc,
        LinearCombination::zero(),
    )?;
    Ok(bits)
}

/// Whether `a < b` as integers, for little-endian bit strings of any lengths (the shorter is
/// zero-extended). For 254 bits: 258 constraints; for `n <= 127` bits: `n + 2`.
pub fn is_less_than_bits(
    a_bits: &[Boolean<Fr>],
    b_bits: &[Boolean<Fr>],
) -> Result<Boolean<Fr>, SynthesisError> {
    let n = a_bits.len().max(b_bits.len());
    let pad = |bits: &[Boolean<Fr>]| {
        let mut v = bits.to_vec();
        v.resize(n, Boolean::FALSE);
        v
    };
    let (a, b) = (pad(a_bits), pad(b_bits));
    let cs = cs_of(&a).or(cs_of(&b));
    if cs.is_none() {
        // all constant: compare from the most significant bit
        for (x, y) in a.iter().zip(&b).rev() {
            let (x, y) = (x.value()?, y.value()?);
            if x != y {
                return Ok(Boolean::constant(y));
            }
        }
        return Ok(Boolean::FALSE);
    }
    // "no borrow" of the previous limb; the first limb subtracts one more, making the test strict
    let mut no_borrow = Boolean::FALSE;
    for (a_limb, b_limb) in a.chunks(LIMB_BITS).zip(b.chunks(LIMB_BITS)) {
        let width = a_limb.len();
        let (a_lc, a_v) = pack(a_limb);
        let (b_lc, b_v) = pack(b_limb);
        let offset = Fr::from(2u64).pow([width as u64]);
        // d = b - a - borrow + 2^width, borrow = 1 - no_borrow
        let d_lc = b_lc - a_lc + no_borrow.lc() + (offset - Fr::ONE, Variable::One);
        let nb_v = no_borrow.value().ok().map(Fr::from);
        let d_v = a_v
            .zip(b_v)
            .zip(nb_v)
            .map(|((a, b), nb)| b - a + nb + offset - Fr::ONE);
        let mut bits = decompose(&cs, d_lc, d_v, width + 1)?;
        no_borrow = bits.pop().expect("width + 1 bits");
    }
    Ok(no_borrow)
}

/// `a < b` for field elements compared as canonical integers: two decompositions and a
/// comparison, about 1540 constraints. Prefer [`is_less_than_bits`] when the bits are reused.
pub fn is_less_than(a: &FpVar<Fr>, b: &FpVar<Fr>) -> Result<Boolean<Fr>, SynthesisError> {
    is_less_than_bits(&canonical_bits(a)?, &canonical_bits(b)?)
}

/// Enforces `x < 2^bits` (`bits <= 253`) and returns the little-endian bits: `bits + 1`
/// constraints (65 for 64-bit amounts). A constant `x` out of range is `Unsatisfiable`.
pub fn enforce_range_bits(x: &FpVar<Fr>, bits: usize) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    assert!(
        bits < Fr::MODULUS_BIT_SIZE as usize,
        "2^{bits} must stay below the modulus"
    );
    match x {
        FpVar::Constant(c) => {
            let big = c.into_bigint();
            if big.num_bits() as usize > bits {
                return Err(SynthesisError::Unsatisfiable);
            }
            Ok((0..bits)
                .map(|i| Boolean::constant(big.get_bit(i)))
                .collect())
        }
        FpVar::Var(v) => decompose(&v.cs, lc_of(x), v.value().ok(), bits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_relations::r1cs::ConstraintSystem;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    fn pow2(k: u64) -> Fr {
        Fr::from(2u64).pow([k])
    }

    fn edge_values() -> Vec<Fr> {
        let m1 = -Fr::ONE;
        vec![
            Fr::zero(),
            Fr::ONE,
            Fr::from(2u64),
            m1,
            m1 - Fr::ONE,
            pow2(127) - Fr::ONE,
            pow2(127),
            pow2(127) + Fr::ONE,
            pow2(128),
            pow2(253) - Fr::ONE,
            pow2(253),
            pow2(253) + Fr::ONE,
            pow2(253) + pow2(127) - Fr::ONE,
            pow2(64) - Fr::ONE,
            pow2(64),
        ]
    }

    fn witness(cs: &ConstraintSystemRef<Fr>, x: Fr) -> FpVar<Fr> {
        FpVar::new_witness(cs.clone(), || Ok(x)).unwrap()
    }

    /// Checks the gadget on `(a, b)`; returns the comparison's own constraint count.
    fn check_lt(a: Fr, b: Fr) -> usize {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let a_bits = canonical_bits(&witness(&cs, a)).unwrap();
        let b_bits = canonical_bits(&witness(&cs, b)).unwrap();
        let before = cs.num_constraints();
        let lt = is_less_than_bits(&a_bits, &b_bits).unwrap();
        let cost = cs.num_constraints() - before;
        assert_eq!(lt.value().unwrap(), a < b, "{a} < {b}");
        assert!(cs.is_satisfied().unwrap());
        // a constant operand gives the same answer
        let cs = ConstraintSystem::<Fr>::new_ref();
        let lt = is_less_than(&FpVar::Constant(a), &witness(&cs, b)).unwrap();
        assert_eq!(lt.value().unwrap(), a < b);
        assert!(cs.is_satisfied().unwrap());
        // and all constants
        let lt = is_less_than(&FpVar::Constant(a), &FpVar::Constant(b)).unwrap();
        assert_eq!(lt, Boolean::constant(a < b));
        cost
    }

    #[test]
    fn edge_cases_pairwise() {
        let edges = edge_values();
        for a in &edges {
            for b in &edges {
                assert_eq!(check_lt(*a, *b), 258);
            }
        }
    }

    #[test]
    fn constraint_counts() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let x = witness(&cs, Fr::from(5u64));
        let bits = canonical_bits(&x).unwrap();
        let decomposition = cs.num_constraints();
        let y = witness(&cs, Fr::from(9u64));
        let y_bits = canonical_bits(&y).unwrap();
        let before = cs.num_constraints();
        assert!(is_less_than_bits(&bits, &y_bits).unwrap().value().unwrap());
        let cmp = cs.num_constraints() - before;
        let before = cs.num_constraints();
        enforce_range_bits(&x, 64).unwrap();
        let range = cs.num_constraints() - before;
        let before = cs.num_constraints();
        let small = is_less_than_bits(&bits[..64], &y_bits[..64]).unwrap();
        let cmp64 = cs.num_constraints() - before;
        assert!(small.value().unwrap());
        eprintln!(
            "canonical bits: {decomposition}, is_less_than_bits(254): {cmp}, \
             is_less_than_bits(64): {cmp64}, enforce_range_bits(64): {range}"
        );
        assert!(decomposition <= 700);
        assert_eq!(cmp, 258);
        assert_eq!(cmp64, 66);
        assert_eq!(range, 65);
        assert!(cs.is_satisfied().unwrap());
    }

    #[test]
    fn setup_mode_synthesises_without_values() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_mode(ark_relations::r1cs::SynthesisMode::Setup);
        let a = FpVar::new_witness(cs.clone(), || Ok(Fr::ONE)).unwrap();
        let b = FpVar::new_witness(cs.clone(), || Ok(Fr::ONE)).unwrap();
        let _ = is_less_than(&a, &b).unwrap();
        enforce_range_bits(&a, 64).unwrap();
        assert!(cs.num_constraints() > 258 + 65);
    }

    #[test]
    fn range_check() {
        let cases = [
            (Fr::zero(), true),
            (pow2(64) - Fr::ONE, true),
            (pow2(64), false),
            (-Fr::ONE, false),
            (pow2(63), true),
            (pow2(200), false),
        ];
        for (x, ok) in cases {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let bits = enforce_range_bits(&witness(&cs, x), 64).unwrap();
            assert_eq!(bits.len(), 64);
            assert_eq!(cs.is_satisfied().unwrap(), ok, "{x}");
            assert_eq!(enforce_range_bits(&FpVar::Constant(x), 64).is_ok(), ok);
        }
        let bits = enforce_range_bits(&FpVar::Constant(Fr::from(6u64)), 4).unwrap();
        assert_eq!(
            bits,
            [false, true, true, false].map(Boolean::constant).to_vec()
        );
    }

    #[test]
    fn honest_bits_cannot_be_swapped() {
        // forcing the result to the wrong answer leaves the system unsatisfied
        for (a, b) in [
            (Fr::from(3u64), Fr::from(4u64)),
            (-Fr::ONE, Fr::ONE),
            (pow2(127), pow2(127)),
        ] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let lt = is_less_than(&witness(&cs, a), &witness(&cs, b)).unwrap();
            use ark_r1cs_std::eq::EqGadget;
            lt.enforce_equal(&Boolean::constant(a >= b)).unwrap();
            assert!(!cs.is_satisfied().unwrap());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn agrees_with_integer_order(seed in any::<u64>(), mode in 0u8..5) {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let edges = edge_values();
            let a: Fr = if rng.gen_bool(0.3) { edges[rng.gen_range(0..edges.len())] } else { rng.gen() };
            let b = match mode {
                0 => rng.gen(),
                1 => a,
                // differing only in the low limb
                2 => a + Fr::from(rng.gen::<u64>()) - Fr::from(rng.gen::<u64>()),
                3 => a + Fr::from(rng.gen_range(0u64..3)) - Fr::ONE,
                // near 2^127 / 2^253 multiples
                _ => edges[rng.gen_range(0..edges.len())] + Fr::from(rng.gen_range(0u64..3)) - Fr::ONE,
            };
            prop_assert_eq!(check_lt(a, b), 258);
            prop_assert_eq!(check_lt(b, a), 258);
        }
    }
}
