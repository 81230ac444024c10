//! Tests of [`super::msm`] against arkworks' `VariableBaseMSM::msm_bigint` on BN254 G1 and G2:
//! property tests over sizes, scalar kinds (0, 1, r−1, bits, small, full random), base kinds
//! (fresh, repeated, negated, identity), window sizes and task splits, plus unit tests of the
//! batch-affine special cases, each on every field path this CPU runs (the portable fallback
//! always, the ADX assembly where present). Seeds are fixed, so runs are reproducible.

use super::*;
use ark_bn254::{g1, g2, Fr};
use ark_ec::{AffineRepr, CurveGroup, PrimeGroup, VariableBaseMSM};
use ark_ff::{BigInt, Field, UniformRand, Zero};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

type BigFr = <Fr as PrimeField>::BigInt;

/// The field paths this CPU runs.
pub(super) fn paths() -> Vec<FieldPath> {
    [FieldPath::Portable, FieldPath::Adx]
        .into_iter()
        .filter(|p| p.available())
        .collect()
}

/// `f` on every field path this CPU runs.
pub(super) fn each_path(f: impl Fn(FieldPath)) {
    paths().into_iter().for_each(f);
}

/// [`msm_inner`] on `path`.
fn inner_on<P>(
    path: FieldPath,
    b: &[Affine<P>],
    s: &[BigFr],
    c: usize,
    parts: usize,
    block: usize,
) -> Projective<P>
where
    P: SWCurveConfig + ark_ec::CurveConfig<ScalarField = Fr>,
{
    match path {
        FieldPath::Portable => msm_inner::<P, false>(b, s, c, parts, block),
        FieldPath::Adx => msm_inner::<P, true>(b, s, c, parts, block),
    }
}

/// [`msm`] on every path: all results, to compare with the reference.
fn on_every_path<P>(b: &[Affine<P>], s: &[BigFr], c: usize) -> Vec<(FieldPath, Projective<P>)>
where
    P: SWCurveConfig + ark_ec::CurveConfig<ScalarField = Fr>,
{
    paths()
        .into_iter()
        .map(|p| (p, msm_on(p, b, s, c)))
        .collect()
}

fn reference<P>(bases: &[Affine<P>], scalars: &[BigFr]) -> Projective<P>
where
    P: SWCurveConfig + ark_ec::CurveConfig<ScalarField = Fr>,
{
    <Projective<P> as VariableBaseMSM>::msm_bigint(bases, scalars)
}

/// `n` bases from `seed`: fresh points (a random walk, cheap), with repeats, negations of
/// earlier bases and identities mixed in according to `mix` (0 = all fresh).
fn bases<P: SWCurveConfig>(seed: u64, n: usize, mix: u8) -> Vec<Affine<P>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let step = Projective::<P>::generator() * P::ScalarField::rand(&mut rng);
    let mut cur = Projective::<P>::generator() * P::ScalarField::rand(&mut rng);
    let mut fresh = Vec::with_capacity(n);
    for _ in 0..n {
        fresh.push(cur);
        cur += step;
    }
    let mut out = Projective::normalize_batch(&fresh);
    if mix > 0 {
        for i in 0..n {
            match rng.gen_range(0..8u8) {
                0 if i > 0 && mix >= 1 => out[i] = out[rng.gen_range(0..i)],
                1 if i > 0 && mix >= 2 => out[i] = -out[rng.gen_range(0..i)],
                2 if mix >= 3 => out[i] = Affine::identity(),
                _ => {}
            }
        }
    }
    out
}

/// `n` scalars from `seed`; `kind` 0 = all full random, otherwise a mix of 0, 1, r−1, bits,
/// small values, powers of two and full random values, and (kind 2) runs of equal scalars.
fn scalars(seed: u64, n: usize, kind: u8) -> Vec<BigFr> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5ca1a4);
    let minus_one = (-Fr::ONE).into_bigint();
    let mut out: Vec<BigFr> = Vec::with_capacity(n);
    for i in 0..n {
        let s = match (kind, rng.gen_range(0..10u8)) {
            (0, _) | (_, 0..=2) => Fr::rand(&mut rng).into_bigint(),
            (_, 3) => BigInt::zero(),
            (_, 4) => BigInt::one(),
            (_, 5) => minus_one,
            (_, 6) => BigInt::from(rng.gen_range(0..2u64)),
            (_, 7) => BigInt::from(rng.gen_range(0..1u64 << 20)),
            (_, 8) => {
                let mut b: BigFr = BigInt::one();
                b <<= rng.gen_range(0..254u32);
                b
            }
            _ if kind == 2 && i > 0 => out[i - 1],
            _ => Fr::rand(&mut rng).into_bigint(),
        };
        out.push(s);
    }
    out
}

fn config(cases: u32, seed: u64) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Sizes: the edge cases, small, non-powers of two, and a few thousand.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..=3,
        4 => 4usize..=70,
        2 => 71usize..=700,
        1 => prop::sample::select(vec![1023usize, 1024, 2049, 3001, 4500]),
    ]
}

proptest! {
    #![proptest_config(config(96, 0x6_1))]
    #[test]
    fn msm_g1_matches_arkworks(seed in any::<u64>(), n in size(), mix in 0u8..=3, kind in 0u8..=2) {
        let b = bases::<g1::Config>(seed, n, mix);
        let s = scalars(seed, n, kind);
        let want = reference(&b, &s);
        prop_assert_eq!(msm(&b, &s), want);
        for (path, got) in on_every_path(&b, &s, window_bits(n)) {
            prop_assert_eq!(got, want, "{:?}", path);
        }
    }
}

proptest! {
    #![proptest_config(config(48, 0x6_2))]
    #[test]
    fn msm_g2_matches_arkworks(seed in any::<u64>(), n in size(), mix in 0u8..=3, kind in 0u8..=2) {
        let b = bases::<g2::Config>(seed, n, mix);
        let s = scalars(seed, n, kind);
        let want = reference(&b, &s);
        prop_assert_eq!(msm(&b, &s), want);
        for (path, got) in on_every_path(&b, &s, window_bits(n)) {
            prop_assert_eq!(got, want, "{:?}", path);
        }
    }
}

proptest! {
    #![proptest_config(config(64, 0x6_3))]
    /// Every window size and task split (parts of the point range, block sizes) on G1.
    #[test]
    fn msm_g1_any_window_and_split(
        seed in any::<u64>(), n in 0usize..400, c in 1usize..=12,
        parts in 1usize..=5, block in 1usize..=97, mix in 0u8..=3, kind in 0u8..=2,
    ) {
        let b = bases::<g1::Config>(seed, n, mix);
        let s = scalars(seed, n, kind);
        let want = reference(&b, &s);
        for path in paths() {
            prop_assert_eq!(inner_on(path, &b, &s, c, parts, block), want, "{:?}", path);
        }
    }
}

proptest! {
    #![proptest_config(config(24, 0x6_4))]
    #[test]
    fn msm_g2_any_window_and_split(
        seed in any::<u64>(), n in 0usize..200, c in 1usize..=12,
        parts in 1usize..=5, block in 1usize..=97, mix in 0u8..=3, kind in 0u8..=2,
    ) {
        let b = bases::<g2::Config>(seed, n, mix);
        let s = scalars(seed, n, kind);
        let want = reference(&b, &s);
        for path in paths() {
            prop_assert_eq!(inner_on(path, &b, &s, c, parts, block), want, "{:?}", path);
        }
    }
}

proptest! {
    #![proptest_config(config(32, 0x6_5))]
    /// Field-element entry point and length mismatch (the shorter length wins, like arkworks).
    #[test]
    fn msm_fr_and_length_mismatch(seed in any::<u64>(), nb in 0usize..80, ns in 0usize..80) {
        let b = bases::<g1::Config>(seed, nb, 3);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let f: Vec<Fr> = (0..ns).map(|_| Fr::rand(&mut rng)).collect();
        let s: Vec<BigFr> = f.iter().map(|x| x.into_bigint()).collect();
        let want = reference(&b, &s);
        prop_assert_eq!(msm(&b, &s), want);
        prop_assert_eq!(msm_fr(&b, &f), want);
    }
}

/// One base many times in one bucket batch: doublings (P + P), cancellations (P + −P) and
/// re-filling of emptied buckets, in G1 and G2, with equal scalars (one bucket per window).
#[test]
fn msm_repeated_and_negated_points_one_bucket() {
    fn check<P: SWCurveConfig + ark_ec::CurveConfig<ScalarField = Fr>>() {
        let p = (Projective::<P>::generator() * Fr::from(7u64)).into_affine();
        let q = (Projective::<P>::generator() * Fr::from(11u64)).into_affine();
        let s = Fr::from(123_456_789u64).into_bigint();
        let patterns: Vec<Vec<Affine<P>>> = vec![
            vec![p, p],
            vec![p, -p],
            vec![p, -p, p],
            vec![p, p, -p, -p, p],
            vec![p, p, p, p, p, p, p, p],
            vec![p, -p, q, p, -p, -q, Affine::identity(), p, q],
            (0..1500).map(|i| if i % 3 == 0 { -p } else { p }).collect(),
            (0..1500).map(|i| if i % 2 == 0 { p } else { q }).collect(),
        ];
        for pat in patterns {
            for c in [1, 3, 9, 13] {
                let scalars = vec![s; pat.len()];
                let want = reference(&pat, &scalars);
                assert_eq!(msm_with_window(&pat, &scalars, c), want);
                for (path, got) in on_every_path(&pat, &scalars, c) {
                    assert_eq!(
                        got,
                        want,
                        "{path:?}: pattern of {} points, c = {c}",
                        pat.len()
                    );
                }
            }
        }
    }
    check::<g1::Config>();
    check::<g2::Config>();
}

/// Skewed inputs: thousands of points in one bucket (all scalars 1, or all equal), which
/// overflow the deferred queue into the projective side buckets.
#[test]
fn msm_skewed_scalars_overflow() {
    let b = bases::<g1::Config>(9, 5000, 0);
    for v in [1u64, 5, 1 << 15, (1 << 16) - 1] {
        let s = vec![BigInt::from(v); b.len()];
        let want = reference(&b, &s);
        for (path, got) in on_every_path(&b, &s, window_bits(b.len())) {
            assert_eq!(got, want, "{path:?}: all scalars {v}");
        }
    }
    let minus_one = (-Fr::ONE).into_bigint();
    let s = vec![minus_one; b.len()];
    assert_eq!(msm(&b, &s), reference(&b, &s), "all scalars r-1");
    let b2 = bases::<g2::Config>(9, 3000, 0);
    let s = vec![BigInt::one(); b2.len()];
    assert_eq!(msm(&b2, &s), reference(&b2, &s), "G2, all scalars 1");
}

/// Scalars r−1 and 1 on a base and its negation give zero; the identity everywhere gives zero.
#[test]
fn msm_cancellations_and_identity() {
    let g = g1::G1Affine::generator();
    let minus_one = (-Fr::ONE).into_bigint();
    assert!(msm(&[g, g], &[minus_one, BigInt::one()]).is_zero());
    assert!(msm(&[g, -g], &[BigInt::one(), BigInt::one()]).is_zero());
    let ids = vec![g1::G1Affine::identity(); 100];
    let s = scalars(1, 100, 1);
    assert!(msm(&ids, &s).is_zero());
    assert!(msm::<g1::Config>(&[], &[]).is_zero());
    assert_eq!(msm(&[g], &[BigInt::from(2u64)]), g.into_group().double());
}

/// Non-canonical big integers (≥ r, up to 2^256 − 1) are summed as integers.
#[test]
fn msm_noncanonical_bigints_sum_as_integers() {
    let b = bases::<g1::Config>(3, 50, 0);
    let big = BigInt::new([u64::MAX; 4]);
    let s = vec![big; b.len()];
    let r = Fr::from_le_bytes_mod_order(&[0xff; 32]);
    let want = b.iter().fold(Projective::ZERO, |acc, p| acc + *p * r);
    assert_eq!(msm(&b, &s), want);
}
