//! A long-lived [`Prover`] for one shape: the proving key is loaded once, the circuit's R1CS
//! matrices are synthesised once, or read from their cache beside the key ([`R1cs::cached`]),
//! in the compact form of [`crate::r1cs`] (their hash is the shape hash the key file must
//! carry), and each proof then synthesises only the witness assignment. Before the expensive FFTs and MSMs the
//! assignment is checked against the matrices (in the same pass that evaluates the constraints
//! for the witness map, [`crate::qap::evaluate`]), and every proof is checked against the key's
//! own verifying key before it is returned, so a `Prover` never hands out a proof that does not
//! verify.

use std::path::Path;
use std::time::{Duration, Instant};

use ark_bn254::{Bn254, Fr};
use ark_ff::UniformRand;
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, ProvingKey, VerifyingKey};
use ark_relations::r1cs::{
    ConstraintSynthesizer, ConstraintSystem, OptimizationGoal, SynthesisMode,
};
use ark_snark::SNARK;
use rand::{CryptoRng, RngCore};
use veil_circuits::batch::{BatchCircuit, BatchShape, BuiltBatch};

use crate::groth16::{self, ProofTimings, Schedule};
use crate::keys::{self, KeyKind};
use crate::qap;
use crate::r1cs::R1cs;
use crate::ProverError;

/// How long each step of one [`Prover::prove_timed`] took.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct ProveReport {
    /// Witness synthesis (the circuit's gadgets computing every variable; one thread).
    pub synthesis: Duration,
    /// The constraints evaluated on the assignment and checked (the witness map's first step).
    pub check: Duration,
    /// The Groth16 phases.
    pub proof: ProofTimings,
    /// The new proof checked against the verifying key.
    pub self_check: Duration,
}

impl ProveReport {
    /// Everything.
    pub fn total(&self) -> Duration {
        self.synthesis + self.check + self.proof.total() + self.self_check
    }
}

/// A batch's full assignment, synthesised and checked against the circuit by
/// [`Prover::synthesize`]: what [`Prover::prove_synthesized`] turns into a proof.
pub struct SynthesizedWitness {
    assignment: Vec<Fr>,
    evaluations: qap::ConstraintEvaluations,
    public_inputs: Vec<Fr>,
    synthesis: Duration,
    check: Duration,
}

impl std::fmt::Debug for SynthesizedWitness {
    /// Sizes only: the assignment holds the batch's note openings.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SynthesizedWitness")
            .field("variables", &self.assignment.len())
            .finish_non_exhaustive()
    }
}

/// Proves batches of one shape with one proving key.
pub struct Prover {
    shape: BatchShape,
    shape_hash: [u8; 32],
    pk: ProvingKey<Bn254>,
    pvk: PreparedVerifyingKey<Bn254>,
    r1cs: R1cs,
    schedule: Schedule,
}

impl std::fmt::Debug for Prover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prover")
            .field("shape", &self.shape)
            .field("shape_hash", &hex::encode(self.shape_hash))
            .field("constraints", &self.r1cs.num_constraints())
            .finish_non_exhaustive()
    }
}

impl Prover {
    /// Loads the proving key at `path` for `shape`. The header's kind and `(B, D)` are checked
    /// first; then the circuit's R1CS is read from its cache beside the key (or synthesised once
    /// and cached there) and the key is refused unless it was made for exactly this constraint
    /// system.
    pub fn load(path: &Path, shape: BatchShape) -> Result<Self, ProverError> {
        let header = keys::expect_header(path, KeyKind::Proving, shape)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        // The matrices and the key's points are independent until the key's circuit hash (its
        // header's) is compared with the matrices' own: read both at once. Without a current
        // cache the matrices are synthesised (gigabytes at B = 16), and the key waits.
        let matrices = || {
            let t = Instant::now();
            let r1cs = R1cs::cached(dir, shape);
            tracing::debug!(elapsed = ?t.elapsed(), "the circuit's matrices");
            r1cs
        };
        let key = || {
            let t = Instant::now();
            let pk = keys::read_proving_key(path, shape, &header.shape_hash);
            tracing::debug!(elapsed = ?t.elapsed(), "read the proving key");
            pk
        };
        let (r1cs, pk) = if R1cs::has_current_cache(dir, shape) {
            rayon::join(matrices, key)
        } else {
            let r1cs = matrices();
            (r1cs, key())
        };
        let shape_hash = r1cs.hash();
        if header.shape_hash != shape_hash {
            return Err(keys::KeyFileError::WrongCircuit {
                path: path.to_path_buf(),
                found: hex::encode(header.shape_hash),
                expected: hex::encode(shape_hash),
            }
            .into());
        }
        Self::assemble(shape, shape_hash, pk?, r1cs)
    }

    /// A prover for a proving key already in memory (e.g. fresh from [`crate::setup`]). The key's
    /// dimensions must fit `shape`'s circuit, synthesised here.
    pub fn new(shape: BatchShape, pk: ProvingKey<Bn254>) -> Result<Self, ProverError> {
        Self::with_r1cs(shape, pk, R1cs::synthesize(shape))
    }

    /// A prover for a proving key in memory and `shape`'s R1CS (e.g. from [`R1cs::cached`]).
    pub fn with_r1cs(
        shape: BatchShape,
        pk: ProvingKey<Bn254>,
        r1cs: R1cs,
    ) -> Result<Self, ProverError> {
        let shape_hash = r1cs.hash();
        Self::assemble(shape, shape_hash, pk, r1cs)
    }

    fn assemble(
        shape: BatchShape,
        shape_hash: [u8; 32],
        pk: ProvingKey<Bn254>,
        r1cs: R1cs,
    ) -> Result<Self, ProverError> {
        let vars = r1cs.num_variables();
        if pk.a_query.len() != vars || pk.vk.gamma_abc_g1.len() != r1cs.num_instance_variables() {
            return Err(ProverError::KeyMismatch(format!(
                "the proving key has {} variables and {} public inputs, the {shape} circuit {vars} and {}",
                pk.a_query.len(),
                pk.vk.gamma_abc_g1.len().saturating_sub(1),
                r1cs.num_instance_variables() - 1,
            )));
        }
        let pvk = ark_groth16::prepare_verifying_key(&pk.vk);
        Ok(Prover {
            shape,
            shape_hash,
            pk,
            pvk,
            r1cs,
            schedule: Schedule::default(),
        })
    }

    /// Orders the Groth16 phases of the proofs this prover makes ([`Schedule::Overlapped`] unless
    /// set; [`Schedule::Phased`] times each phase alone, for benchmarks). The proofs are the same.
    pub fn set_schedule(&mut self, schedule: Schedule) {
        self.schedule = schedule;
    }

    /// The shape this prover proves.
    pub fn shape(&self) -> BatchShape {
        self.shape
    }

    /// SHA-256 of the circuit's constraint system ([`keys::shape_hash`]).
    pub fn shape_hash(&self) -> [u8; 32] {
        self.shape_hash
    }

    /// Constraints of the circuit.
    pub fn num_constraints(&self) -> usize {
        self.r1cs.num_constraints()
    }

    /// The proving key.
    pub fn proving_key(&self) -> &ProvingKey<Bn254> {
        &self.pk
    }

    /// The circuit's R1CS.
    pub fn r1cs(&self) -> &R1cs {
        &self.r1cs
    }

    /// The verifying key inside the proving key.
    pub fn verifying_key(&self) -> &VerifyingKey<Bn254> {
        &self.pk.vk
    }

    /// The identity ([`keys::vk_sha256`]) of the verifying key matching this proving key.
    pub fn vk_sha256(&self) -> String {
        keys::vk_sha256_of(&self.pk.vk, self.shape, self.shape_hash)
    }

    /// Proves `circuit`. Draws `r` then `s` from `rng` exactly as arkworks' `Groth16::prove`
    /// does, so the same RNG state gives the same proof. Refuses a circuit of another shape or
    /// with malformed dimensions, and a witness that does not satisfy the circuit (reported with
    /// the first failing constraint, before any MSM).
    pub fn prove<R: RngCore + CryptoRng>(
        &self,
        circuit: BatchCircuit,
        rng: &mut R,
    ) -> Result<Proof<Bn254>, ProverError> {
        self.prove_timed(circuit, rng).map(|(proof, _)| proof)
    }

    /// [`Prover::prove`], also returning how long each phase took.
    pub fn prove_timed<R: RngCore + CryptoRng>(
        &self,
        circuit: BatchCircuit,
        rng: &mut R,
    ) -> Result<(Proof<Bn254>, ProveReport), ProverError> {
        let witness = self.synthesize(circuit)?;
        self.prove_synthesized(witness, rng)
    }

    /// The first half of a proof: synthesises `circuit`'s full assignment (one thread) and
    /// checks it against the circuit's matrices. Refuses what [`Prover::prove`] refuses. A node
    /// synthesises the next batch this way while the current one is in its MSMs.
    pub fn synthesize(&self, circuit: BatchCircuit) -> Result<SynthesizedWitness, ProverError> {
        let span = tracing::info_span!("synthesize", shape = %self.shape);
        let _g = span.enter();
        let assignment = UncheckedAssignment::synthesize(circuit, self.shape)?;
        self.check(assignment)
    }

    /// [`Prover::load`] and [`Prover::synthesize`] at once: the key and the circuit's matrices
    /// are read while another thread synthesises `circuit`'s assignment (which needs neither),
    /// so a one-off `veil prove` pays for the shorter of the two only once.
    pub fn load_and_synthesize(
        path: &Path,
        shape: BatchShape,
        circuit: BatchCircuit,
    ) -> Result<(Self, SynthesizedWitness), ProverError> {
        let (prover, assignment) = std::thread::scope(|scope| {
            let synthesis = scope.spawn(move || UncheckedAssignment::synthesize(circuit, shape));
            let prover = Self::load(path, shape);
            let assignment = synthesis
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (prover, assignment)
        });
        let prover = prover?;
        let witness = prover.check(assignment?)?;
        Ok((prover, witness))
    }

    /// A synthesised assignment checked against this prover's matrices.
    fn check(&self, unchecked: UncheckedAssignment) -> Result<SynthesizedWitness, ProverError> {
        let UncheckedAssignment {
            assignment,
            constraints,
            public_inputs,
            synthesis,
        } = unchecked;
        let m = &self.r1cs;
        if assignment.len() != m.num_variables() || constraints != m.num_constraints() {
            return Err(ProverError::KeyMismatch(format!(
                "the witness synthesised {constraints} constraints over {} variables, the key's circuit has {} over {}",
                assignment.len(),
                m.num_constraints(),
                m.num_variables(),
            )));
        }

        let t = Instant::now();
        let evaluations = qap::evaluate(&self.r1cs, &assignment).map_err(|e| match e {
            qap::EvaluationError::Unsatisfied(constraint) => {
                ProverError::Unsatisfied { constraint }
            }
            other => ProverError::KeyMismatch(other.to_string()),
        })?;
        let check = t.elapsed();
        tracing::debug!(elapsed = ?check, "checked the witness against the matrices");
        Ok(SynthesizedWitness {
            assignment,
            evaluations,
            public_inputs,
            synthesis,
            check,
        })
    }

    /// The second half of a proof: the Groth16 MSMs over a witness from
    /// [`Prover::synthesize`], and the new proof's check against the verifying key. Draws `r`
    /// then `s` from `rng`.
    pub fn prove_synthesized<R: RngCore + CryptoRng>(
        &self,
        witness: SynthesizedWitness,
        rng: &mut R,
    ) -> Result<(Proof<Bn254>, ProveReport), ProverError> {
        let span = tracing::info_span!("prove", shape = %self.shape);
        let _g = span.enter();
        let SynthesizedWitness {
            assignment,
            evaluations,
            public_inputs,
            synthesis,
            check,
        } = witness;
        let mut report = ProveReport {
            synthesis,
            check,
            ..ProveReport::default()
        };
        let r = Fr::rand(rng);
        let s = Fr::rand(rng);
        let (proof, timings) = groth16::create_proof_from_evaluations(
            &self.pk,
            evaluations,
            &assignment,
            self.r1cs.num_instance_variables(),
            r,
            s,
            self.schedule,
        )?;
        drop(assignment);
        report.proof = timings;
        tracing::debug!(
            elapsed = ?timings.total(),
            schedule = ?self.schedule,
            witness_map = ?timings.witness_map,
            msm_h = ?timings.msm_h,
            msm_l = ?timings.msm_l,
            msm_a = ?timings.msm_a,
            msm_b_g1 = ?timings.msm_b_g1,
            msm_b_g2 = ?timings.msm_b_g2,
            "proved"
        );

        let t = Instant::now();
        if !Groth16::<Bn254>::verify_with_processed_vk(&self.pvk, &public_inputs, &proof)? {
            return Err(ProverError::SelfCheck);
        }
        report.self_check = t.elapsed();
        Ok((proof, report))
    }

    /// Proves a built batch.
    pub fn prove_built<R: RngCore + CryptoRng>(
        &self,
        built: &BuiltBatch,
        rng: &mut R,
    ) -> Result<Proof<Bn254>, ProverError> {
        self.prove(built.circuit(), rng)
    }
}

/// A full assignment fresh from synthesis, not yet checked against the matrices.
struct UncheckedAssignment {
    assignment: Vec<Fr>,
    constraints: usize,
    public_inputs: Vec<Fr>,
    synthesis: Duration,
}

impl UncheckedAssignment {
    /// Synthesises `circuit`'s assignment ([`assignment`]) after checking that it has `shape`
    /// and well-formed dimensions.
    fn synthesize(circuit: BatchCircuit, shape: BatchShape) -> Result<Self, ProverError> {
        if circuit.witness.shape != shape {
            return Err(ProverError::ShapeMismatch {
                circuit: circuit.witness.shape,
                key: shape,
            });
        }
        circuit.witness.check_dimensions()?;
        let public_inputs = circuit.public_inputs.to_vec();
        let t = Instant::now();
        let (assignment, constraints) = assignment(circuit)?;
        let synthesis = t.elapsed();
        tracing::debug!(elapsed = ?synthesis, "synthesised the witness");
        Ok(Self {
            assignment,
            constraints,
            public_inputs,
            synthesis,
        })
    }
}

/// The full assignment of `circuit` (the constant one, the public inputs, then the witness, in
/// the constraint system's order), synthesised without building matrices, and its number of
/// constraints.
pub fn assignment(circuit: BatchCircuit) -> Result<(Vec<Fr>, usize), ProverError> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Prove {
        construct_matrices: false,
    });
    circuit.generate_constraints(cs.clone())?;
    cs.finalize();
    let cs = cs.borrow().expect("a constraint system, not `None`");
    let z = [
        cs.instance_assignment.as_slice(),
        cs.witness_assignment.as_slice(),
    ]
    .concat();
    Ok((z, cs.num_constraints))
}
