//! The long-lived `Prover`: several batches proved back to back with one loaded key all verify;
//! proofs equal those of the one-off `prove` for the same RNG; keys and circuits of the wrong
//! shape, malformed witnesses and unsatisfied witnesses are refused with errors, not panics;
//! loading the key while synthesising the witness changes nothing but the time.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ark_bn254::{Bn254, Fr};
use ark_ff::One;
use ark_groth16::ProvingKey;
use veil_circuits::batch::BatchShape;
use veil_fixtures::mixed_history;
use veil_prover::groth16::Schedule;
use veil_prover::{dev_rng, keys, Prover, ProverError};

/// The (2, 8) dev keys, made once per test binary (tests run in parallel) and cached under
/// the target directory across runs; returns their directory and the proving key.
fn dev_keys(shape: BatchShape) -> (PathBuf, &'static ProvingKey<Bn254>) {
    static PK: OnceLock<ProvingKey<Bn254>> = OnceLock::new();
    assert_eq!(shape, BatchShape::new(2, 8).unwrap());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let pk = PK.get_or_init(|| {
        veil_prover::load_or_setup_dev_keys(dir, shape, 1)
            .unwrap()
            .0
    });
    (dir.join("dev-seed-1"), pk)
}

#[test]
fn one_prover_many_batches() {
    let shape = BatchShape::new(2, 8).unwrap();
    let (dir, pk) = dev_keys(shape);
    let prover = Prover::load(
        &dir.join(keys::key_file_name(keys::KeyKind::Proving, shape)),
        shape,
    )
    .unwrap();
    assert_eq!(prover.shape(), shape);
    assert_eq!(prover.shape_hash(), keys::shape_hash(shape));
    let vk_file =
        std::fs::read(dir.join(keys::key_file_name(keys::KeyKind::Verifying, shape))).unwrap();
    assert_eq!(prover.vk_sha256(), keys::vk_sha256(&vk_file));
    let pvk = veil_verifier::prepare(prover.verifying_key());

    let (_, batches) = mixed_history(shape, 5);
    assert_eq!(batches.len(), 4);
    let mut rng = dev_rng(9);
    // Three batches back to back: a deposit, a payment with a withdrawal, a two-input merge.
    for built in &batches[1..] {
        let proof = prover.prove_built(built, &mut rng).unwrap();
        assert!(veil_verifier::verify(&pvk, &built.public_inputs, &proof).unwrap());
        let mut other = built.public_inputs;
        other.new_state_root += Fr::one();
        assert!(!veil_verifier::verify(&pvk, &other, &proof).unwrap());
    }

    // Same RNG state, same proof as arkworks' own Groth16::prove.
    let a = prover.prove_built(&batches[2], &mut dev_rng(3)).unwrap();
    let b = veil_prover::prove(pk, batches[2].circuit(), &mut dev_rng(3)).unwrap();
    assert_eq!(a, b);
    // The phases one after another (the benchmark's breakdown): the same proof, and phase times
    // that add up to no more than the whole.
    let mut phased = Prover::new(shape, pk.clone()).unwrap();
    phased.set_schedule(Schedule::Phased);
    let (c, report) = phased
        .prove_timed(batches[2].circuit(), &mut dev_rng(3))
        .unwrap();
    assert_eq!(a, c);
    let t = report.proof;
    assert!(t.witness_map + t.scalars + t.msm_total() <= t.wall);

    // A wrong claim is refused before any proof is made.
    let mut circuit = batches[1].circuit();
    circuit.public_inputs.batch_hash += Fr::one();
    assert!(matches!(
        prover.prove(circuit, &mut rng),
        Err(ProverError::Unsatisfied { .. })
    ));
    let mut circuit = batches[1].circuit();
    circuit.witness.slots[0].fee += Fr::one();
    assert!(matches!(
        prover.prove(circuit, &mut rng),
        Err(ProverError::Unsatisfied { .. })
    ));
    // A malformed witness is refused instead of panicking in synthesis.
    let mut circuit = batches[1].circuit();
    circuit.witness.slots[1].inputs[0].path.siblings.pop();
    assert!(matches!(
        prover.prove(circuit, &mut rng),
        Err(ProverError::Witness(_))
    ));
    // A circuit of another shape.
    let small = BatchShape::new(1, 8).unwrap();
    let (_, small_batches) = mixed_history(small, 5);
    assert!(matches!(
        prover.prove_built(&small_batches[0], &mut rng),
        Err(ProverError::ShapeMismatch { .. })
    ));
    // A proving key in memory that does not fit the shape's circuit.
    assert!(matches!(
        Prover::new(BatchShape::new(2, 10).unwrap(), pk.clone()),
        Err(ProverError::KeyMismatch(_))
    ));
}

/// Loading the key while the witness is synthesised gives the same proof as doing one after the
/// other; key errors and witness errors still come out as errors.
#[test]
fn load_and_synthesize_matches_load_then_synthesize() {
    let shape = BatchShape::new(2, 8).unwrap();
    let (dir, _) = dev_keys(shape);
    let pk_path = dir.join(keys::key_file_name(keys::KeyKind::Proving, shape));
    let (_, batches) = mixed_history(shape, 5);
    let built = &batches[2];

    let (prover, witness) = Prover::load_and_synthesize(&pk_path, shape, built.circuit()).unwrap();
    let (overlapped, _) = prover.prove_synthesized(witness, &mut dev_rng(4)).unwrap();
    let sequential = Prover::load(&pk_path, shape)
        .unwrap()
        .prove_built(built, &mut dev_rng(4))
        .unwrap();
    assert_eq!(overlapped, sequential);

    // A key for another shape: the key's error, whatever the witness.
    let small = BatchShape::new(1, 8).unwrap();
    let err = Prover::load_and_synthesize(&pk_path, small, built.circuit()).unwrap_err();
    assert!(
        matches!(
            err,
            ProverError::KeyFile(keys::KeyFileError::WrongShape { .. })
        ),
        "{err}"
    );
    // A good key and an unsatisfied witness: refused by the check after both.
    let mut circuit = built.circuit();
    circuit.public_inputs.batch_hash += Fr::one();
    assert!(matches!(
        Prover::load_and_synthesize(&pk_path, shape, circuit),
        Err(ProverError::Unsatisfied { .. })
    ));
    // A malformed witness: refused by synthesis, not a panic in the other thread.
    let mut circuit = built.circuit();
    circuit.witness.slots[1].inputs[0].path.siblings.pop();
    assert!(matches!(
        Prover::load_and_synthesize(&pk_path, shape, circuit),
        Err(ProverError::Witness(_))
    ));
}

#[test]
fn wrong_shape_key_is_refused() {
    let shape = BatchShape::new(2, 8).unwrap();
    let (dir, _) = dev_keys(shape);
    let pk_path = dir.join(keys::key_file_name(keys::KeyKind::Proving, shape));
    let vk_path = dir.join(keys::key_file_name(keys::KeyKind::Verifying, shape));
    let other = BatchShape::new(1, 8).unwrap();
    let err = Prover::load(&pk_path, other).unwrap_err();
    assert!(
        matches!(
            err,
            ProverError::KeyFile(keys::KeyFileError::WrongShape {
                found_b: 2,
                b: 1,
                ..
            })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("B = 2"), "{err}");
    let err = Prover::load(&vk_path, shape).unwrap_err();
    assert!(
        matches!(
            err,
            ProverError::KeyFile(keys::KeyFileError::WrongKind { .. })
        ),
        "{err}"
    );
    // A key for another build of the circuit (its header's circuit hash differs from the
    // matrices'), beside this build's matrices: refused, naming both hashes.
    let other_build = tempfile::tempdir().unwrap();
    let r1cs_cache = veil_prover::r1cs::cache_path(&dir, shape);
    if r1cs_cache.exists() {
        std::fs::copy(
            &r1cs_cache,
            veil_prover::r1cs::cache_path(other_build.path(), shape),
        )
        .unwrap();
    }
    let mut bytes = std::fs::read(&pk_path).unwrap();
    bytes[19] ^= 1;
    let foreign = other_build.path().join(pk_path.file_name().unwrap());
    std::fs::write(&foreign, &bytes).unwrap();
    let err = Prover::load(&foreign, shape).unwrap_err();
    let expected = hex::encode(keys::shape_hash(shape));
    assert!(
        matches!(
            &err,
            ProverError::KeyFile(keys::KeyFileError::WrongCircuit { expected: e, found, .. })
                if *e == expected && *found != expected
        ),
        "{err}"
    );
    let err = Prover::load(&dir.join("missing.bin"), shape).unwrap_err();
    assert!(matches!(
        err,
        ProverError::KeyFile(keys::KeyFileError::Io { .. })
    ));
}

/// The parallel proving-key decoder reads exactly what arkworks writes, and refuses truncated
/// keys and trailing bytes.
#[test]
fn parallel_proving_key_decoder_matches_arkworks() {
    use ark_serialize::{CanonicalSerialize, Compress};
    let (_, pk) = dev_keys(BatchShape::new(2, 8).unwrap());
    for compress in [Compress::Yes, Compress::No] {
        let decode = |b: &[u8]| keys::decode_proving_key(b, compress);
        let mut bytes = Vec::new();
        pk.serialize_with_mode(&mut bytes, compress).unwrap();
        let decoded = decode(&bytes).expect("decodes");
        assert!(decoded == *pk, "decoded key differs from the original");

        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        // A length prefix larger than the data is refused, not allocated.
        let mut huge = bytes.clone();
        let at = pk.vk.serialized_size(compress) + pk.beta_g1.serialized_size(compress) * 2;
        huge[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
        // A point in the middle of a vector that is not one (its x coordinate is all ones, not
        // below the modulus) is refused, whichever thread decodes it.
        let mut bad = bytes.clone();
        let point = pk.h_query[0].serialized_size(compress);
        let h_start = pk.vk.serialized_size(compress)
            + pk.beta_g1.serialized_size(compress) * 2
            + pk.a_query.serialized_size(compress)
            + pk.b_g1_query.serialized_size(compress)
            + pk.b_g2_query.serialized_size(compress)
            + 8;
        let mid = h_start + point * (pk.h_query.len() / 2);
        bad[mid..mid + 32].fill(0xff);
        assert!(decode(&bad).is_err());
        assert!(decode(&bytes).is_ok());
    }
}
