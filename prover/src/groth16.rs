//! Veil's Groth16 proving step: from the circuit's cached R1CS matrices and a full assignment to
//! a proof. It computes exactly what ark-groth16's `create_proof_with_reduction_and_matrices`
//! computes for the same `r` and `s` (the libsnark R1CS-to-QAP reduction, then the A, B (G1 and
//! G2), L and H multi-scalar multiplications), so its proofs are bit-for-bit arkworks proofs and
//! verify with stock `Groth16::verify`; the witness map ([`crate::qap`]) and the MSMs
//! ([`crate::msm`]) are Veil's. Each phase is timed ([`ProofTimings`]) for the benchmark's
//! breakdown.
//!
//! Veil's phases run one after another ([`Schedule::Phased`]) or in two streams side by side
//! ([`Schedule::Overlapped`], what [`crate::Prover`] does): the witness map and the H MSM need the
//! constraint evaluations, while the L, A and B MSMs need only the assignment, so neither waits
//! for the other and no core idles at the end of a phase.

use std::time::{Duration, Instant};

use ark_bn254::{Bn254, Fr, G1Projective, G2Projective};
use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{BigInteger256, PrimeField};
use ark_groth16::r1cs_to_qap::{LibsnarkReduction, R1CSToQAP};
use ark_groth16::{Proof, ProvingKey};
use ark_poly::GeneralEvaluationDomain;
use ark_relations::r1cs::{ConstraintMatrices, SynthesisError};
use rayon::prelude::*;

use crate::msm::ScalarGroups;
use crate::qap;

/// Wall-clock time of each proving phase, and of the whole step.
///
/// With [`Schedule::Overlapped`] each phase's time is its own while it shared the cores with the
/// other stream, so the phases add up to more than [`ProofTimings::wall`].
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct ProofTimings {
    /// The whole proving step (all the phases and the proof's assembly).
    pub wall: Duration,
    /// The R1CS-to-QAP witness map: seven FFTs of the domain's size (and, except in
    /// [`create_proof_from_evaluations`], evaluating the constraints first).
    pub witness_map: Duration,
    /// Scalars to their integer representation, and Veil's grouping of the assignment's values
    /// (overlapped: the assignment's only; H's conversion then counts in `msm_h`).
    pub scalars: Duration,
    /// `Σ h_i · H_i` over the domain (G1).
    pub msm_h: Duration,
    /// `Σ w_i · L_i` over the witness variables (G1).
    pub msm_l: Duration,
    /// `Σ z_i · A_i` (G1).
    pub msm_a: Duration,
    /// `Σ z_i · B_i` in G1.
    pub msm_b_g1: Duration,
    /// `Σ z_i · B_i` in G2.
    pub msm_b_g2: Duration,
}

impl ProofTimings {
    /// The whole proving step's wall-clock time.
    pub fn total(&self) -> Duration {
        self.wall
    }

    /// The five MSMs together.
    pub fn msm_total(&self) -> Duration {
        self.msm_h + self.msm_l + self.msm_a + self.msm_b_g1 + self.msm_b_g2
    }
}

type Domain = GeneralEvaluationDomain<Fr>;

/// Whose witness map and multi-scalar multiplication compute the proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Backend {
    /// Veil's ([`crate::qap`], [`crate::msm`]); what [`crate::Prover`] uses.
    Veil,
    /// ark-groth16's `LibsnarkReduction` and arkworks' `VariableBaseMSM::msm_bigint`, as stock
    /// ark-groth16 proves: the reference the benchmark compares against.
    Arkworks,
}

/// The Groth16 proof for `assignment` (the constant one, the public inputs, then the witness, as
/// the constraint system orders them) under `pk`, with blinding factors `r` and `s`.
///
/// The assignment is trusted to satisfy `matrices` (the [`crate::Prover`] checks that first):
/// with [`Backend::Arkworks`] an unsatisfying one gives a proof that does not verify, with
/// [`Backend::Veil`] it is refused (`SynthesisError::Unsatisfiable`).
pub fn create_proof(
    pk: &ProvingKey<Bn254>,
    matrices: &ConstraintMatrices<Fr>,
    assignment: &[Fr],
    r: Fr,
    s: Fr,
    backend: Backend,
) -> Result<(Proof<Bn254>, ProofTimings), SynthesisError> {
    let num_inputs = matrices.num_instance_variables;
    let start = Instant::now();
    let h = match backend {
        Backend::Arkworks => LibsnarkReduction::witness_map_from_matrices::<Fr, Domain>(
            matrices,
            num_inputs,
            matrices.num_constraints,
            assignment,
        )?,
        Backend::Veil => {
            let r1cs = crate::r1cs::R1cs::from_matrices(matrices)
                .map_err(|_| SynthesisError::PolynomialDegreeTooLarge)?;
            let evaluations = qap::evaluate(&r1cs, assignment).map_err(|e| match e {
                qap::EvaluationError::TooLarge(_) => SynthesisError::PolynomialDegreeTooLarge,
                _ => SynthesisError::Unsatisfiable,
            })?;
            qap::witness_map(evaluations)?
        }
    };
    let timings = ProofTimings {
        witness_map: start.elapsed(),
        ..ProofTimings::default()
    };
    Ok(prove_with_h(
        pk, h, assignment, num_inputs, r, s, backend, start, timings,
    ))
}

/// How [`create_proof_from_evaluations`] orders its phases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Schedule {
    /// Two streams side by side on the thread pool: the witness map then the H MSM, and the
    /// assignment's scalars and groups then the L, A and B MSMs. What [`crate::Prover`] does.
    #[default]
    Overlapped,
    /// One phase after another, each timed alone: the benchmark's phase breakdown.
    Phased,
}

/// [`create_proof`] with Veil's backend from constraint evaluations already made (and checked)
/// by [`qap::evaluate`] on the same assignment; `num_inputs` counts the instance variables with
/// the constant one. Both schedules give the same proof.
pub fn create_proof_from_evaluations(
    pk: &ProvingKey<Bn254>,
    evaluations: qap::ConstraintEvaluations,
    assignment: &[Fr],
    num_inputs: usize,
    r: Fr,
    s: Fr,
    schedule: Schedule,
) -> Result<(Proof<Bn254>, ProofTimings), SynthesisError> {
    let start = Instant::now();
    if schedule == Schedule::Overlapped {
        return prove_overlapped(pk, evaluations, assignment, num_inputs, r, s, start);
    }
    let h = qap::witness_map(evaluations)?;
    let timings = ProofTimings {
        witness_map: start.elapsed(),
        ..ProofTimings::default()
    };
    Ok(prove_with_h(
        pk,
        h,
        assignment,
        num_inputs,
        r,
        s,
        Backend::Veil,
        start,
        timings,
    ))
}

/// [`Schedule::Overlapped`]: the witness map and the H MSM in one stream, the L, A and B MSMs
/// over the grouped assignment in the other, joined on the thread pool.
fn prove_overlapped(
    pk: &ProvingKey<Bn254>,
    evaluations: qap::ConstraintEvaluations,
    assignment: &[Fr],
    num_inputs: usize,
    r: Fr,
    s: Fr,
    start: Instant,
) -> Result<(Proof<Bn254>, ProofTimings), SynthesisError> {
    let (h_stream, z_stream) = rayon::join(
        || -> Result<_, SynthesisError> {
            let mut t = ProofTimings::default();
            let h = timed(&mut t.witness_map, || qap::witness_map(evaluations))?;
            let h_acc = timed(&mut t.msm_h, move || {
                // The field elements go as soon as their integers exist (32 MB at 2^20 points).
                let scalars = to_integers(&h);
                drop(h);
                msm(Backend::Veil, &pk.h_query, &scalars)
            });
            Ok((h_acc, t))
        },
        || {
            let mut t = ProofTimings::default();
            let (z_groups, aux_groups) = timed(&mut t.scalars, || {
                group_assignment(&to_integers(&assignment[1..]), num_inputs)
            });
            let (z, aux) = (Scalars::Grouped(&z_groups), Scalars::Grouped(&aux_groups));
            let sums = assignment_msms(pk, Backend::Veil, &z, &aux, &mut t);
            (sums, t)
        },
    );
    let (h_acc, h_times) = h_stream?;
    let (sums, z_times) = z_stream;
    let proof = assemble(pk, h_acc, sums, r, s);
    let timings = ProofTimings {
        wall: start.elapsed(),
        witness_map: h_times.witness_map,
        msm_h: h_times.msm_h,
        ..z_times
    };
    Ok((proof, timings))
}

/// Field elements in their integer representation (the MSMs' scalars), in parallel.
fn to_integers(values: &[Fr]) -> Vec<BigInteger256> {
    values.par_iter().map(|x| x.into_bigint()).collect()
}

/// The assignment's scalars grouped by value (`msm::ScalarGroups`): all of them without the
/// constant one (`z`, for A and B), and the witness part (for L), derived from the first.
fn group_assignment(
    z: &[BigInteger256],
    num_inputs: usize,
) -> (ScalarGroups<BigInteger256>, ScalarGroups<BigInteger256>) {
    let z_groups = ScalarGroups::new(z);
    let aux_groups = z_groups.suffix(num_inputs - 1);
    (z_groups, aux_groups)
}

/// The results of the MSMs over the assignment (A and B with their constant-one bases).
struct AssignmentSums {
    l: G1Projective,
    a: G1Projective,
    b_g1: G1Projective,
    b_g2: G2Projective,
}

/// The L, A, B-G1 and B-G2 MSMs, one after another, each timed into `t`.
fn assignment_msms(
    pk: &ProvingKey<Bn254>,
    backend: Backend,
    z: &Scalars<'_>,
    aux: &Scalars<'_>,
    t: &mut ProofTimings,
) -> AssignmentSums {
    AssignmentSums {
        l: timed(&mut t.msm_l, || aux.msm(backend, &pk.l_query)),
        a: timed(&mut t.msm_a, || query_sum(backend, &pk.a_query, z)),
        b_g1: timed(&mut t.msm_b_g1, || query_sum(backend, &pk.b_g1_query, z)),
        b_g2: timed(&mut t.msm_b_g2, || query_sum(backend, &pk.b_g2_query, z)),
    }
}

/// The proof from the MSMs (`h` is H's):
/// A = α + Σ z_i A_i + r δ;  B = β + Σ z_i B_i + s δ;  C = s A + r B_1 − r s δ + Σ w_i L_i + H.
fn assemble(
    pk: &ProvingKey<Bn254>,
    h: G1Projective,
    sums: AssignmentSums,
    r: Fr,
    s: Fr,
) -> Proof<Bn254> {
    let g_a = sums.a + pk.vk.alpha_g1 + pk.delta_g1 * r;
    let g1_b = sums.b_g1 + pk.beta_g1 + pk.delta_g1 * s;
    let g2_b = sums.b_g2 + pk.vk.beta_g2 + pk.vk.delta_g2 * s;
    let g_c = g_a * s + g1_b * r - pk.delta_g1 * (r * s) + sums.l + h;
    Proof {
        a: g_a.into_affine(),
        b: g2_b.into_affine(),
        c: g_c.into_affine(),
    }
}

/// The MSMs and the proof's assembly, from `h`'s coefficients.
#[allow(clippy::too_many_arguments)]
fn prove_with_h(
    pk: &ProvingKey<Bn254>,
    h: Vec<Fr>,
    assignment: &[Fr],
    num_inputs: usize,
    r: Fr,
    s: Fr,
    backend: Backend,
    start: Instant,
    mut timings: ProofTimings,
) -> (Proof<Bn254>, ProofTimings) {
    let t = Instant::now();
    let h = to_integers(&h);
    // Without the constant one: arkworks' queries hold the one's base at index 0.
    let z = to_integers(&assignment[1..]);
    let aux = &z[num_inputs - 1..];
    // Veil groups equal scalars once for the MSMs that share them (see `msm::ScalarGroups`).
    let groups = (backend == Backend::Veil).then(|| group_assignment(&z, num_inputs));
    timings.scalars = t.elapsed();
    let (z_msm, aux_msm) = match &groups {
        Some((z_groups, aux_groups)) => (Scalars::Grouped(z_groups), Scalars::Grouped(aux_groups)),
        None => (Scalars::Plain(&z), Scalars::Plain(aux)),
    };

    let h_acc = timed(&mut timings.msm_h, || msm(backend, &pk.h_query, &h));
    drop(h);
    let sums = assignment_msms(pk, backend, &z_msm, &aux_msm, &mut timings);
    let proof = assemble(pk, h_acc, sums, r, s);
    timings.wall = start.elapsed();
    (proof, timings)
}

/// The scalars of MSMs over the assignment: as they are, or grouped by value (Veil).
enum Scalars<'a> {
    Plain(&'a [BigInteger256]),
    Grouped(&'a ScalarGroups<BigInteger256>),
}

impl Scalars<'_> {
    fn msm<P: SWCurveConfig>(&self, backend: Backend, bases: &[Affine<P>]) -> Projective<P>
    where
        P::ScalarField: PrimeField<BigInt = BigInteger256>,
    {
        match self {
            Scalars::Plain(z) => msm(backend, bases, z),
            Scalars::Grouped(groups) => groups.msm(bases),
        }
    }
}

/// `query[0] + Σ z_i · query[i + 1]`: the constant one's base plus the MSM over the rest.
fn query_sum<P: SWCurveConfig>(
    backend: Backend,
    query: &[Affine<P>],
    z: &Scalars<'_>,
) -> Projective<P>
where
    P::ScalarField: PrimeField<BigInt = BigInteger256>,
{
    z.msm(backend, &query[1..]) + query[0].into_group()
}

/// The multi-scalar multiplication behind every query; like arkworks', over the shorter of
/// `bases` and `scalars` (the H query has one base fewer than the domain has points).
fn msm<P: SWCurveConfig>(
    backend: Backend,
    bases: &[Affine<P>],
    scalars: &[BigInteger256],
) -> Projective<P>
where
    P::ScalarField: PrimeField<BigInt = BigInteger256>,
{
    match backend {
        Backend::Veil => crate::msm::msm(bases, scalars),
        Backend::Arkworks => <Projective<P> as ark_ec::VariableBaseMSM>::msm_bigint(bases, scalars),
    }
}

fn timed<T>(slot: &mut Duration, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    *slot = t.elapsed();
    out
}
