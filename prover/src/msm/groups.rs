//! MSMs whose scalars repeat: `Σ s_i·P_i = Σ_v v·(Σ_{s_i = v} P_i)`.
//!
//! A circuit's witness repeats many values (the batch circuit at B = 16, D = 32: 653,210
//! non-zero values, only 422,544 distinct: padding, empty-subtree hashes, constants). Summing the
//! bases that share a scalar first costs one batch-affine addition per repeat
//! ([`BatchAdder`], pairwise within each group, all groups' additions in one batch), where the
//! Pippenger MSM pays one bucket addition per repeat in *every* window (16 at 2^20 points); and
//! the busiest values otherwise crowd a few buckets of every window. [`ScalarGroups`] sorts one
//! scalar vector once, then serves every MSM over it (Groth16's A, B in G1 and G2 share theirs).
//! Zero scalars are dropped.

use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ff::{BigInteger, PrimeField};
use rayon::prelude::*;

use super::affine::BatchAdder;
use super::BigIntOf;
use crate::field::FieldPath;

/// Groups per parallel task of [`ScalarGroups::msm`]'s summation.
const GROUPS_PER_TASK: usize = 1 << 13;
/// Additions per inversion in the summation.
const SUM_BATCH: usize = 2048;

/// The distinct non-zero values of a scalar vector, each with the indices that hold it.
#[derive(Clone, Debug)]
pub struct ScalarGroups<B> {
    /// The distinct non-zero scalars, ascending.
    values: Vec<B>,
    /// The indices holding `values[g]`: `members[starts[g]..starts[g + 1]]`, ascending.
    members: Vec<u32>,
    starts: Vec<u32>,
}

impl<B: BigInteger> ScalarGroups<B> {
    /// Groups `scalars` by value.
    ///
    /// # Panics
    /// With more than `u32::MAX` scalars.
    pub fn new(scalars: &[B]) -> Self {
        assert!(scalars.len() <= u32::MAX as usize, "more than 2^32 scalars");
        let mut pairs: Vec<(B, u32)> = scalars
            .par_iter()
            .enumerate()
            .filter(|(_, s)| !s.is_zero())
            .map(|(i, s)| (*s, i as u32))
            .collect();
        pairs.par_sort_unstable();
        let mut values = Vec::new();
        let mut starts = Vec::new();
        for (k, (v, _)) in pairs.iter().enumerate() {
            if values.last() != Some(v) {
                values.push(*v);
                starts.push(k as u32);
            }
        }
        starts.push(pairs.len() as u32);
        let members = pairs.into_iter().map(|(_, i)| i).collect();
        Self {
            values,
            members,
            starts,
        }
    }

    /// The grouping of `scalars[from..]`, derived from this one (of `scalars`) without sorting
    /// again.
    pub fn suffix(&self, from: usize) -> Self {
        let from = u32::try_from(from).unwrap_or(u32::MAX);
        let mut out = Self {
            values: Vec::new(),
            members: Vec::new(),
            starts: vec![0],
        };
        for (g, v) in self.values.iter().enumerate() {
            let members = &self.members[self.starts[g] as usize..self.starts[g + 1] as usize];
            let kept = &members[members.partition_point(|&i| i < from)..];
            if !kept.is_empty() {
                out.values.push(*v);
                out.members.extend(kept.iter().map(|&i| i - from));
                out.starts.push(out.members.len() as u32);
            }
        }
        out
    }

    /// How many distinct non-zero scalars (the size of the MSM that [`Self::msm`] runs).
    pub fn distinct(&self) -> usize {
        self.values.len()
    }

    /// How many non-zero scalars.
    pub fn non_zero(&self) -> usize {
        self.members.len()
    }

    /// `Σ scalars[i]·bases[i]` for the scalars grouped here; like [`super::msm`], over the first
    /// `min(bases.len(), scalars.len())` pairs.
    pub fn msm<P>(&self, bases: &[Affine<P>]) -> Projective<P>
    where
        P: SWCurveConfig,
        P::ScalarField: PrimeField<BigInt = B>,
    {
        self.msm_on(FieldPath::current(), bases)
    }

    /// [`Self::msm`] with the field products on `path`.
    ///
    /// # Panics
    /// If `path` is not available on this CPU.
    pub fn msm_on<P>(&self, path: FieldPath, bases: &[Affine<P>]) -> Projective<P>
    where
        P: SWCurveConfig,
        P::ScalarField: PrimeField<BigInt = B>,
    {
        let sums = match path {
            FieldPath::Portable => self.sums::<P, false>(bases),
            FieldPath::Adx => {
                assert!(path.available(), "this CPU lacks BMI2/ADX");
                self.sums::<P, true>(bases)
            }
        };
        let values: &[BigIntOf<P>] = &self.values;
        super::msm_on(path, &sums, values, super::window_bits(values.len()))
    }

    /// For each group, the sum of its members' bases (members past `bases` count as identity).
    fn sums<P: SWCurveConfig, const ADX: bool>(&self, bases: &[Affine<P>]) -> Vec<Affine<P>> {
        let groups = self.values.len();
        let tasks: Vec<usize> = (0..groups).step_by(GROUPS_PER_TASK).collect();
        tasks
            .into_par_iter()
            .flat_map_iter(|first| {
                let last = (first + GROUPS_PER_TASK).min(groups);
                self.sum_range::<P, ADX>(bases, first, last)
            })
            .collect()
    }

    /// The sums of groups `first..last`: their bases gathered, then halved round by round (the
    /// upper half of each group added into its lower half) until one point per group is left.
    fn sum_range<P: SWCurveConfig, const ADX: bool>(
        &self,
        bases: &[Affine<P>],
        first: usize,
        last: usize,
    ) -> Vec<Affine<P>> {
        let base = self.starts[first] as usize;
        let span = &self.members[base..self.starts[last] as usize];
        let mut points: Vec<Affine<P>> = span
            .iter()
            .map(|&i| {
                bases
                    .get(i as usize)
                    .copied()
                    .unwrap_or_else(Affine::identity)
            })
            .collect();
        // (offset in `points`, current length) of every group still holding several points.
        let mut active: Vec<(usize, usize)> = (first..last)
            .map(|g| {
                let start = self.starts[g] as usize - base;
                (start, self.starts[g + 1] as usize - base - start)
            })
            .filter(|&(_, len)| len > 1)
            .collect();
        let mut adder = BatchAdder::<P, ADX>::new(SUM_BATCH);
        let mut adds: Vec<(usize, Affine<P>)> = Vec::with_capacity(SUM_BATCH);
        while !active.is_empty() {
            for group in &mut active {
                let (start, len) = *group;
                let keep = len.div_ceil(2);
                for k in 0..len - keep {
                    adds.push((start + k, points[start + keep + k]));
                    if adds.len() == SUM_BATCH {
                        adder.add_assign(&mut points, adds.drain(..));
                    }
                }
                group.1 = keep;
            }
            adder.add_assign(&mut points, adds.drain(..));
            active.retain(|&(_, len)| len > 1);
        }
        (first..last)
            .map(|g| points[self.starts[g] as usize - base])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::{g1, g2, Fr};
    use ark_ec::VariableBaseMSM;
    use ark_ff::UniformRand;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    type BigFr = <Fr as PrimeField>::BigInt;

    /// Scalars drawn from a small pool (so values repeat, some thousands of times), with zeros;
    /// bases with identities and repeats (so group sums meet equal and opposite points).
    fn inputs<P: SWCurveConfig>(seed: u64, n: usize, pool: usize) -> (Vec<Affine<P>>, Vec<BigFr>) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let values: Vec<BigFr> = (0..pool)
            .map(|_| Fr::rand(&mut rng).into_bigint())
            .collect();
        let p = Affine::<P>::rand(&mut rng);
        let bases = (0..n)
            .map(|_| match rng.gen_range(0..8) {
                0 => Affine::identity(),
                1 => p,
                2 => -p,
                _ => Affine::rand(&mut rng),
            })
            .collect();
        let scalars = (0..n)
            .map(|_| match rng.gen_range(0..10) {
                0 => BigFr::from(0u64),
                1 => BigFr::from(1u64),
                2..=5 => values[0],
                _ => values[rng.gen_range(0..pool)],
            })
            .collect();
        (bases, scalars)
    }

    fn check<P>(path: FieldPath)
    where
        P: SWCurveConfig + ark_ec::CurveConfig<ScalarField = Fr>,
    {
        for (seed, n, pool, cut) in [
            (1u64, 0usize, 1usize, 0usize),
            (2, 1, 1, 0),
            (3, 50, 3, 0),
            (4, 3000, 40, 0),
            (5, 20_000, 2000, 0),
            (6, 500, 20, 120),
        ] {
            let (bases, scalars) = inputs::<P>(seed, n, pool);
            let groups = ScalarGroups::new(&scalars);
            let bases = &bases[..n - cut];
            let want = <Projective<P> as VariableBaseMSM>::msm_bigint(bases, &scalars);
            assert_eq!(
                groups.msm_on(path, bases),
                want,
                "{path:?} n = {n} cut = {cut}"
            );
        }
    }

    #[test]
    fn grouped_msm_matches_arkworks_on_every_path() {
        super::super::tests::each_path(|path| {
            check::<g1::Config>(path);
            check::<g2::Config>(path);
        });
    }

    #[test]
    fn groups_are_the_distinct_non_zero_values() {
        let s: Vec<BigFr> = [0u64, 5, 7, 5, 0, 1, 5, 7]
            .iter()
            .map(|&v| BigFr::from(v))
            .collect();
        let g = ScalarGroups::new(&s);
        assert_eq!(g.distinct(), 3);
        assert_eq!(g.non_zero(), 6);
        assert_eq!(g.values, [1u64, 5, 7].map(BigFr::from));
        assert_eq!(g.members, [5, 1, 3, 6, 2, 7]);
        assert_eq!(g.starts, [0, 1, 4, 6]);
        for from in 0..=s.len() + 1 {
            let want = ScalarGroups::new(&s[from.min(s.len())..]);
            let got = g.suffix(from);
            assert_eq!(
                (got.values, got.members, got.starts),
                (want.values, want.members, want.starts),
                "from {from}"
            );
        }
    }
}
