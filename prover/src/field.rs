//! Montgomery multiplication for BN254's 4-limb fields (`Fq`, `Fr`) in x86-64 assembly with
//! MULX / ADCX / ADOX (BMI2 + ADX: two independent carry chains), chosen at run time
//! ([`FieldPath::detect`]); arkworks' portable code is the fallback on other CPUs.
//!
//! arkworks has such assembly too, but its derive macro checks for an `asm` feature of the
//! crate that *derives* the field (`ark-bn254`, which has none), so BN254 never uses it: its
//! multiplication is the portable CIOS loop. This module owns the assembly, the run-time
//! choice, and the generic entry points ([`mul`], [`square`]) that the MSM's bucket
//! accumulation and the FFT use, for `Fq`, `Fq2` (each coordinate a sum of two products with
//! one reduction) and `Fr`; any other field goes to arkworks.
//!
//! Sums, differences and negations on the same path are branch-free ([`additive`]).
//!
//! The product is CIOS with the "no-carry" bound (the modulus' top limb is below `2^62`, so
//! every intermediate fits in five limbs and the result of each round is below `2p`), then one
//! conditional subtraction: outputs are canonical, bit-identical to arkworks'.

// Off x86-64 only the portable path exists; the moduli, the type test and their imports go
// unused.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_imports))]

use std::any::TypeId;

mod additive;

pub(crate) use additive::{add, double, neg, sub};

use ark_bn254::{Fq, Fq2, Fr};
use ark_ff::fields::{Fp256, MontBackend, MontConfig};
use ark_ff::{Field, PrimeField};

/// Which field multiplication the prover's hot loops use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldPath {
    /// arkworks' portable code.
    Portable,
    /// The MULX / ADCX / ADOX assembly (x86-64 with BMI2 and ADX).
    Adx,
}

impl FieldPath {
    /// The fastest path this CPU runs: [`FieldPath::Adx`] where BMI2 and ADX are present.
    /// `VEIL_FIELD_PATH=portable` forces the fallback (for benchmarks and A/B runs).
    pub fn detect() -> Self {
        if std::env::var("VEIL_FIELD_PATH").is_ok_and(|v| v == "portable") {
            return Self::Portable;
        }
        if Self::Adx.available() {
            Self::Adx
        } else {
            Self::Portable
        }
    }

    /// [`FieldPath::detect`], once per process.
    pub fn current() -> Self {
        static PATH: std::sync::OnceLock<FieldPath> = std::sync::OnceLock::new();
        *PATH.get_or_init(Self::detect)
    }

    /// Whether this CPU can run the path.
    pub fn available(self) -> bool {
        match self {
            Self::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Self::Adx => {
                std::arch::is_x86_feature_detected!("adx")
                    && std::arch::is_x86_feature_detected!("bmi2")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Self::Adx => false,
        }
    }

    /// The name used in benchmark tables and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            Self::Adx => "adx",
        }
    }
}

/// A 4-limb modulus `p` (little-endian) followed by `-p⁻¹ mod 2⁶⁴`, as the assembly reads it.
#[repr(C)]
struct Modulus([u64; 5]);

impl Modulus {
    const fn of(p: [u64; 4]) -> Self {
        // -p⁻¹ mod 2⁶⁴ by Newton iteration (p is odd): each step doubles the correct bits.
        let mut inv = 1u64;
        let mut i = 0;
        while i < 6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(p[0].wrapping_mul(inv)));
            i += 1;
        }
        Self([p[0], p[1], p[2], p[3], inv.wrapping_neg()])
    }

    /// `t - p` if `t ≥ p`, else `t` (branch-free).
    #[inline(always)]
    fn reduce_once(&self, t: [u64; 4]) -> [u64; 4] {
        additive::reduce_once(t, additive::first_four(&self.0))
    }
}

static FQ_MODULUS: Modulus = Modulus::of(<Fq as PrimeField>::MODULUS.0);
static FR_MODULUS: Modulus = Modulus::of(<Fr as PrimeField>::MODULUS.0);

// The no-carry bound: both moduli leave the top two bits of the top limb clear.
const _: () = assert!(<Fq as PrimeField>::MODULUS.0[3] >> 62 == 0);
const _: () = assert!(<Fr as PrimeField>::MODULUS.0[3] >> 62 == 0);

/// `T += a·b[j]` for `T` in `t0..t3` and a fresh top limb `t4` (`a` at byte `$a` of `{a}`,
/// `b[j]` at byte `$b` of `{b}`): the low halves of the four products on the OF chain, the high
/// halves on the CF chain.
#[cfg(target_arch = "x86_64")]
#[rustfmt::skip]
macro_rules! product {
    ($a:literal, $b:literal, $t0:literal, $t1:literal, $t2:literal, $t3:literal, $t4:literal) => {
        concat!(
            "mov rdx, [{b} + ", $b, "]\n",
            "xor {z:e}, {z:e}\n",
            "mulx rcx, rax, [{a} + ", $a, "]\n",
            "adox ", $t0, ", rax\n",
            "adcx ", $t1, ", rcx\n",
            "mulx rcx, rax, [{a} + ", $a, " + 8]\n",
            "adox ", $t1, ", rax\n",
            "adcx ", $t2, ", rcx\n",
            "mulx rcx, rax, [{a} + ", $a, " + 16]\n",
            "adox ", $t2, ", rax\n",
            "adcx ", $t3, ", rcx\n",
            "mulx ", $t4, ", rax, [{a} + ", $a, " + 24]\n",
            "adox ", $t3, ", rax\n",
            "adcx ", $t4, ", {z}\n",
            "adox ", $t4, ", {z}\n",
        )
    };
}

/// `T += a·b[j]` as [`product!`], for `T` in `t0..t4` (the top limb already holds a value; no
/// carry leaves it, because the callers keep `T < 2³²⁰`).
#[cfg(target_arch = "x86_64")]
#[rustfmt::skip]
macro_rules! accumulate {
    ($a:literal, $b:literal, $t0:literal, $t1:literal, $t2:literal, $t3:literal, $t4:literal) => {
        concat!(
            "mov rdx, [{b} + ", $b, "]\n",
            "xor {z:e}, {z:e}\n",
            "mulx rcx, rax, [{a} + ", $a, "]\n",
            "adox ", $t0, ", rax\n",
            "adcx ", $t1, ", rcx\n",
            "mulx rcx, rax, [{a} + ", $a, " + 8]\n",
            "adox ", $t1, ", rax\n",
            "adcx ", $t2, ", rcx\n",
            "mulx rcx, rax, [{a} + ", $a, " + 16]\n",
            "adox ", $t2, ", rax\n",
            "adcx ", $t3, ", rcx\n",
            "mulx rcx, rax, [{a} + ", $a, " + 24]\n",
            "adox ", $t3, ", rax\n",
            "adcx ", $t4, ", rcx\n",
            "adox ", $t4, ", {z}\n",
        )
    };
}

/// The first product `T = a·b[0]` into `r8..r12` (one carry chain: nothing to add to).
#[cfg(target_arch = "x86_64")]
#[rustfmt::skip]
macro_rules! first_product {
    ($a:literal) => {
        concat!(
            "mov rdx, [{b}]\n",
            "xor {z:e}, {z:e}\n",
            "mulx r9, r8, [{a} + ", $a, "]\n",
            "mulx r10, rax, [{a} + ", $a, " + 8]\n",
            "adcx r9, rax\n",
            "mulx r11, rax, [{a} + ", $a, " + 16]\n",
            "adcx r10, rax\n",
            "mulx r12, rax, [{a} + ", $a, " + 24]\n",
            "adcx r11, rax\n",
            "adcx r12, {z}\n",
        )
    };
}

/// `T = (T + m·p) / 2⁶⁴` for `T` in `t0..t4`, `m = t0·(-p⁻¹) mod 2⁶⁴`: `t0` becomes 0 and the
/// result is in `t1..t4` (no carry out of `t4`: `T + m·p < 2³²⁰`).
#[cfg(target_arch = "x86_64")]
#[rustfmt::skip]
macro_rules! reduce {
    ($t0:literal, $t1:literal, $t2:literal, $t3:literal, $t4:literal) => {
        concat!(
            "mov rdx, ", $t0, "\n",
            "imul rdx, [{p} + 32]\n",
            "xor {z:e}, {z:e}\n",
            "mulx rcx, rax, [{p}]\n",
            "adcx ", $t0, ", rax\n",
            "adox ", $t1, ", rcx\n",
            "mulx rcx, rax, [{p} + 8]\n",
            "adcx ", $t1, ", rax\n",
            "adox ", $t2, ", rcx\n",
            "mulx rcx, rax, [{p} + 16]\n",
            "adcx ", $t2, ", rax\n",
            "adox ", $t3, ", rcx\n",
            "mulx rcx, rax, [{p} + 24]\n",
            "adcx ", $t3, ", rax\n",
            "adox ", $t4, ", rcx\n",
            "adcx ", $t4, ", {z}\n",
        )
    };
}

/// Runs the assembly `templates` of a Montgomery product with the operands every product
/// shares: `{a}`, `{b}` and `{p}` point at the factors' limbs and at `m` (limbs, then
/// `-p⁻¹`), `{z}` is a scratch register, and the last round leaves the result, below 2p, in
/// `r12, r8, r9, r10` (low limb first). Evaluates to the canonical result (one conditional
/// subtraction). Must be expanded inside `unsafe`, on a CPU with BMI2 and ADX.
#[cfg(target_arch = "x86_64")]
macro_rules! montgomery {
    ($a:expr, $b:expr, $m:expr; $($template:expr),+ $(,)?) => {{
        let (r0, r1, r2, r3): (u64, u64, u64, u64);
        core::arch::asm!(
            $($template),+,
            a = in(reg) $a.as_ptr(),
            b = in(reg) $b.as_ptr(),
            p = in(reg) $m.0.as_ptr(),
            z = out(reg) _,
            out("rax") _, out("rcx") _, out("rdx") _, out("r11") _,
            out("r12") r0, out("r8") r1, out("r9") r2, out("r10") r3,
            options(pure, readonly, nostack),
        );
        $m.reduce_once([r0, r1, r2, r3])
    }};
}

/// `a·b·2⁻²⁵⁶ mod p` for Montgomery-form `a, b < p`, canonical.
///
/// # Safety
/// The CPU must have BMI2 and ADX ([`FieldPath::Adx`] available).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn mont_mul(a: &[u64; 4], b: &[u64; 4], m: &Modulus) -> [u64; 4] {
    // SAFETY (the caller's): MULX/ADCX/ADOX exist on this CPU. The block reads 32 bytes at `a`
    // and `b` and 40 at `p`, all valid, and writes only its declared registers.
    unsafe {
        montgomery!(
            a, b, m;
            // Round 0: T = a·b[0] into r8..r12, then reduce.
            first_product!("0"),
            reduce!("r8", "r9", "r10", "r11", "r12"),
            // T in r9..r12; each round rotates the registers by one.
            product!("0", "8", "r9", "r10", "r11", "r12", "r8"),
            reduce!("r9", "r10", "r11", "r12", "r8"),
            product!("0", "16", "r10", "r11", "r12", "r8", "r9"),
            reduce!("r10", "r11", "r12", "r8", "r9"),
            product!("0", "24", "r11", "r12", "r8", "r9", "r10"),
            reduce!("r11", "r12", "r8", "r9", "r10"),
        )
    }
}

/// `(a₀·b₀ + a₁·b₁)·2⁻²⁵⁶ mod p`, canonical, with one Montgomery reduction for both products
/// (`a = [a₀, a₁]`, `b = [b₀, b₁]`, each element below p, limbs little-endian).
///
/// Each round adds two products and reduces once: `T` stays below `3p + 1 < 2²⁵⁶`, and below
/// `2³²⁰` before the reduction. The last round multiplies by the top limbs of `b₀, b₁`, which
/// are below `0.19·2⁶⁴` (p < 2²⁵⁴), so the result is below `1.38p + 2¹⁹²` < 2p: one
/// conditional subtraction.
///
/// # Safety
/// As [`mont_mul`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn mont_sum_of_two(a: &[u64; 8], b: &[u64; 8], m: &Modulus) -> [u64; 4] {
    // SAFETY (the caller's): as in `mont_mul`; the block reads 64 bytes at `a` and `b`.
    unsafe {
        montgomery!(
            a, b, m;
            first_product!("0"),
            accumulate!("32", "32", "r8", "r9", "r10", "r11", "r12"),
            reduce!("r8", "r9", "r10", "r11", "r12"),
            product!("0", "8", "r9", "r10", "r11", "r12", "r8"),
            accumulate!("32", "40", "r9", "r10", "r11", "r12", "r8"),
            reduce!("r9", "r10", "r11", "r12", "r8"),
            product!("0", "16", "r10", "r11", "r12", "r8", "r9"),
            accumulate!("32", "48", "r10", "r11", "r12", "r8", "r9"),
            reduce!("r10", "r11", "r12", "r8", "r9"),
            product!("0", "24", "r11", "r12", "r8", "r9", "r10"),
            accumulate!("32", "56", "r11", "r12", "r8", "r9", "r10"),
            reduce!("r11", "r12", "r8", "r9", "r10"),
        )
    }
}

/// `a·b` in a 4-limb prime field (`Fq` or `Fr`) whose modulus and `-p⁻¹` are `m`.
///
/// # Safety
/// As [`mont_mul`]; `m` must be `F`'s modulus.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn fp_mul<C: MontConfig<4>>(
    a: &Fp256<MontBackend<C, 4>>,
    b: &Fp256<MontBackend<C, 4>>,
    m: &Modulus,
) -> Fp256<MontBackend<C, 4>> {
    let mut r = *a;
    // SAFETY: as the caller's; the limbs are the Montgomery form, below p.
    r.0 .0 = unsafe { mont_mul(&a.0 .0, &b.0 .0, m) };
    r
}

/// `a·b` in `Fq2 = Fq[u]/(u² + 1)`: `c₀ = a₀b₀ + (-a₁)b₁` and `c₁ = a₀b₁ + a₁b₀`, each a
/// sum of two products with one reduction.
///
/// # Safety
/// As [`mont_mul`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn fq2_mul(a: &Fq2, b: &Fq2) -> Fq2 {
    let limbs = |x: &Fq, y: &Fq| {
        let mut l = [0u64; 8];
        l[..4].copy_from_slice(&x.0 .0);
        l[4..].copy_from_slice(&y.0 .0);
        l
    };
    let (mut c0, mut c1) = (a.c0, a.c1);
    // SAFETY: as the caller's.
    unsafe {
        let minus_a1 = neg::<Fq, true>(&a.c1);
        c0.0 .0 = mont_sum_of_two(&limbs(&a.c0, &minus_a1), &limbs(&b.c0, &b.c1), &FQ_MODULUS);
        c1.0 .0 = mont_sum_of_two(&limbs(&a.c0, &a.c1), &limbs(&b.c1, &b.c0), &FQ_MODULUS);
    }
    Fq2::new(c0, c1)
}

/// `a²` in `Fq2` with two assembly products: `(c0 + c1)(c0 - c1) + 2·c0·c1·u`.
///
/// # Safety
/// As [`mont_mul`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn fq2_square(a: &Fq2) -> Fq2 {
    // SAFETY: as the caller's.
    unsafe {
        let sum = add::<Fq, true>(&a.c0, &a.c1);
        let difference = sub::<Fq, true>(&a.c0, &a.c1);
        let c0 = fp_mul(&sum, &difference, &FQ_MODULUS);
        let c1 = fp_mul(&a.c0, &a.c1, &FQ_MODULUS);
        Fq2::new(c0, double::<Fq, true>(&c1))
    }
}

/// `F` is `T` (both `'static`; decided at compile time after monomorphisation).
#[inline(always)]
fn is<F: 'static, T: 'static>() -> bool {
    TypeId::of::<F>() == TypeId::of::<T>()
}

/// `x` as `T`.
///
/// # Safety
/// `F` and `T` must be the same type (checked with [`is`]).
#[inline(always)]
unsafe fn same<F, T>(x: &F) -> &T {
    // SAFETY: the caller's: the cast is the identity.
    unsafe { &*(x as *const F).cast::<T>() }
}

/// `a·b`: with `ADX`, the assembly for `Fq`, `Fq2` and `Fr` (arkworks for any other field);
/// without, arkworks.
///
/// Callers pass `ADX = true` only once [`FieldPath::Adx`] was found available.
#[inline(always)]
pub(crate) fn mul<F: Field, const ADX: bool>(a: &F, b: &F) -> F {
    #[cfg(target_arch = "x86_64")]
    if ADX {
        // SAFETY: `F` is the type named (TypeId equal), so the casts are identities; ADX was
        // checked by the caller that chose `ADX = true`.
        unsafe {
            if is::<F, Fq>() {
                return *same::<Fq, F>(&fp_mul(same(a), same(b), &FQ_MODULUS));
            }
            if is::<F, Fq2>() {
                return *same::<Fq2, F>(&fq2_mul(same(a), same(b)));
            }
            if is::<F, Fr>() {
                return *same::<Fr, F>(&fp_mul(same(a), same(b), &FR_MODULUS));
            }
        }
    }
    *a * b
}

/// `a²`, dispatched as [`mul`].
#[inline(always)]
pub(crate) fn square<F: Field, const ADX: bool>(a: &F) -> F {
    #[cfg(target_arch = "x86_64")]
    if ADX && is::<F, Fq2>() {
        // SAFETY: as in `mul`.
        unsafe {
            return *same::<Fq2, F>(&fq2_square(same(a)));
        }
    }
    if ADX {
        mul::<F, ADX>(a, a)
    } else {
        a.square()
    }
}

/// `a·b` on the chosen path (for callers outside the hot loops, and tests).
///
/// # Panics
/// If `path` is not available on this CPU.
pub fn mul_on<F: Field>(path: FieldPath, a: &F, b: &F) -> F {
    match path {
        FieldPath::Portable => mul::<F, false>(a, b),
        FieldPath::Adx => {
            assert!(path.available(), "this CPU lacks BMI2/ADX");
            mul::<F, true>(a, b)
        }
    }
}

/// `a²` on the chosen path.
///
/// # Panics
/// If `path` is not available on this CPU.
pub fn square_on<F: Field>(path: FieldPath, a: &F) -> F {
    match path {
        FieldPath::Portable => square::<F, false>(a),
        FieldPath::Adx => {
            assert!(path.available(), "this CPU lacks BMI2/ADX");
            square::<F, true>(a)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::UniformRand;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// The paths this CPU runs (the fallback always; the assembly where present).
    fn paths() -> Vec<FieldPath> {
        [FieldPath::Portable, FieldPath::Adx]
            .into_iter()
            .filter(|p| p.available())
            .collect()
    }

    /// Edge cases of a prime field: 0, 1, 2, p - 1, p - 2, (p - 1)/2, (p + 1)/2 and 2^64 - 1.
    pub(super) fn edges<F: PrimeField>() -> Vec<F> {
        let half = F::from(2u64).inverse().expect("odd p");
        vec![
            F::zero(),
            F::one(),
            F::from(2u64),
            -F::one(),
            -F::from(2u64),
            half - F::one(),
            half,
            F::from(u64::MAX),
        ]
    }

    /// The proptest settings of the field tests: 2,048 cases from a fixed seed.
    pub(super) fn proptest_config(seed: u64) -> Config {
        Config {
            cases: 2048,
            rng_seed: RngSeed::Fixed(seed),
            failure_persistence: None,
            ..Config::default()
        }
    }

    #[test]
    fn the_inverse_of_each_modulus_is_right() {
        for m in [&FQ_MODULUS, &FR_MODULUS] {
            assert_eq!(m.0[0].wrapping_mul(m.0[4]), u64::MAX, "p₀·(-p⁻¹) = -1");
        }
        assert_eq!(FQ_MODULUS.0[4], <ark_bn254::FqConfig as MontConfig<4>>::INV);
        assert_eq!(FR_MODULUS.0[4], <ark_bn254::FrConfig as MontConfig<4>>::INV);
    }

    fn check_prime<F: PrimeField>(path: FieldPath, a: F, b: F) {
        let r = mul_on(path, &a, &b);
        // Equality compares the Montgomery limbs: a result at or above p would differ.
        assert_eq!(r, a * b, "{path:?}: {a} · {b}");
        assert_eq!(square_on(path, &a), a.square(), "{path:?}: {a}²");
    }

    #[test]
    fn edge_cases_match_arkworks_on_every_path() {
        for path in paths() {
            for a in edges::<Fq>() {
                for b in edges::<Fq>() {
                    check_prime(path, a, b);
                }
            }
            for a in edges::<Fr>() {
                for b in edges::<Fr>() {
                    check_prime(path, a, b);
                }
            }
            for (a0, a1) in edges::<Fq>()
                .into_iter()
                .zip(edges::<Fq>().into_iter().rev())
            {
                let a = Fq2::new(a0, a1);
                for (b0, b1) in edges::<Fq>().into_iter().zip(edges::<Fq>()) {
                    let b = Fq2::new(b0, b1);
                    assert_eq!(mul_on(path, &a, &b), a * b, "{path:?}");
                }
                assert_eq!(square_on(path, &a), a.square(), "{path:?}");
            }
            // Every coordinate p - 1: both sums of two products at their largest.
            let m = Fq2::new(-Fq::ONE, -Fq::ONE);
            assert_eq!(mul_on(path, &m, &m), m * m, "{path:?}");
        }
    }

    #[test]
    fn the_assembly_is_used_where_available() {
        // The detected path is the assembly on a CPU that has it, unless forced off.
        if FieldPath::Adx.available() && std::env::var("VEIL_FIELD_PATH").is_err() {
            assert_eq!(FieldPath::detect(), FieldPath::Adx);
        }
        assert!(FieldPath::Portable.available());
    }

    #[test]
    fn a_million_random_products_match_arkworks() {
        let mut rng = ChaCha20Rng::seed_from_u64(0xf1e1d);
        for path in paths() {
            for _ in 0..(1 << 17) {
                let (a, b) = (Fq::rand(&mut rng), Fq::rand(&mut rng));
                assert_eq!(mul_on(path, &a, &b), a * b);
                let (a, b) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
                assert_eq!(mul_on(path, &a, &b), a * b);
                let (a, b) = (Fq2::rand(&mut rng), Fq2::rand(&mut rng));
                assert_eq!(mul_on(path, &a, &b), a * b);
                assert_eq!(square_on(path, &a), a.square());
            }
        }
    }

    proptest! {
        #![proptest_config(proptest_config(0xadc5))]
        /// Products of values built from arbitrary limbs (reduced), including near-p ones.
        #[test]
        fn products_from_arbitrary_limbs_match(a in any::<[u64; 4]>(), b in any::<[u64; 4]>(), near in any::<bool>()) {
            for path in paths() {
                let x = Fq::from_le_bytes_mod_order(&limb_bytes(a));
                let y = if near { -Fq::from(b[0]) } else { Fq::from_le_bytes_mod_order(&limb_bytes(b)) };
                prop_assert_eq!(mul_on(path, &x, &y), x * y);
                let x = Fr::from_le_bytes_mod_order(&limb_bytes(a));
                let y = if near { -Fr::from(b[0]) } else { Fr::from_le_bytes_mod_order(&limb_bytes(b)) };
                prop_assert_eq!(mul_on(path, &x, &y), x * y);
            }
        }
    }

    /// Four limbs as little-endian bytes.
    pub(super) fn limb_bytes(l: [u64; 4]) -> Vec<u8> {
        l.iter().flat_map(|w| w.to_le_bytes()).collect()
    }
}
