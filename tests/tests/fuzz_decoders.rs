//! Byte-mutation fuzzing of every decoder a stranger can reach (issue 13), bounded for CI: one
//! test per decoder ([`Target`]) mutates the decoder's seeds (valid encodings made by the code
//! itself, `veil_tests::fuzz::seeds`) with `fuzz_mutations` and checks that the decoder
//! returns `Ok` or its typed error, never panics, and that an accepted input re-encodes to
//! itself ([`Decoders::check`], the same property the `cargo fuzz` targets in `fuzz/` check).
//!
//! Cases per decoder: [`DEFAULT_CASES`] (fewer for the 10 MB proving key), raised with
//! `VEIL_FUZZ_CASES=N`. The RNG seed is fixed so CI is reproducible; `VEIL_FUZZ_SEED=N` explores
//! other inputs. A failure prints the shrunk input's bytes.

mod fuzz_mutations;

use fuzz_mutations::{inputs, Bytes};
use proptest::test_runner::{Config, RngSeed, TestRunner};
use std::path::Path;

use veil_prover::keys::{self, KeyFileError, HEADER_LEN};
use veil_prover::proof::{proof_from_bytes, ProofCodecError, ProofFile};
use veil_tests::fuzz::{key_context, seeds, Decoders, Target};

/// Cases per decoder in CI.
const DEFAULT_CASES: u32 = 1000;

fn cases(default: u32) -> u32 {
    std::env::var("VEIL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rng_seed() -> u64 {
    std::env::var("VEIL_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_f022)
}

/// Runs `cases` mutated inputs of `target` through [`Decoders::check`].
fn fuzz(target: Target, cases: u32) {
    let seeds = seeds::seeds(target);
    assert!(!seeds.is_empty(), "{}: no seeds", target.name());
    let decoders = Decoders::new();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(rng_seed()),
        max_shrink_iters: 4096,
        ..Config::default()
    });
    let result = runner.run(&inputs(seeds, target.is_json(), 4), |Bytes(data)| {
        decoders.check(target, &data);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{}: {e}", target.name());
    }
}

#[test]
fn transfer_json() {
    fuzz(Target::TransferJson, cases(DEFAULT_CASES));
}

#[test]
fn deposit_json() {
    fuzz(Target::DepositJson, cases(DEFAULT_CASES));
}

#[test]
fn api_request() {
    fuzz(Target::ApiRequest, cases(DEFAULT_CASES));
}

#[test]
fn field_hex() {
    fuzz(Target::FieldHex, cases(DEFAULT_CASES));
}

#[test]
fn batch_file() {
    fuzz(Target::BatchFile, cases(DEFAULT_CASES));
}

#[test]
fn proof_file() {
    fuzz(Target::ProofFile, cases(DEFAULT_CASES));
}

#[test]
fn proof_bytes() {
    fuzz(Target::ProofBytes, cases(DEFAULT_CASES));
}

#[test]
fn vk_file() {
    fuzz(Target::VkFile, cases(DEFAULT_CASES));
}

#[test]
fn pk_file() {
    // Half the seeds are a 10 MB key: each case decodes it (and re-encodes it when accepted).
    fuzz(Target::PkFile, cases(DEFAULT_CASES) / 10);
}

#[test]
fn anchor_payload() {
    fuzz(Target::AnchorPayload, cases(DEFAULT_CASES));
}

#[test]
fn anchor_tx() {
    fuzz(Target::AnchorTx, cases(DEFAULT_CASES));
}

#[test]
fn anchor_data() {
    fuzz(Target::AnchorData, cases(DEFAULT_CASES));
}

#[test]
fn envelope_leaf() {
    fuzz(Target::EnvelopeLeaf, cases(DEFAULT_CASES));
}

/// The seeds are valid: mutations start from inputs each decoder accepts whole.
#[test]
fn every_seed_is_accepted() {
    let decoders = Decoders::new();
    for target in Target::ALL {
        for (i, seed) in seeds::seeds(target).iter().enumerate() {
            assert!(
                decoders.accepts(target, seed),
                "{} seed {i} is refused: {:?}",
                target.name(),
                Bytes(seed.clone())
            );
        }
    }
}

/// Offset of `gamma_abc_g1`'s u64 point count in a key file: after the header, `alpha_g1` (G1)
/// and three G2 points, of `g1` and `g2` bytes (compressed 32 and 64, uncompressed 64 and 128).
fn vk_count_offset(g1: usize, g2: usize) -> usize {
    HEADER_LEN + g1 + 3 * g2
}

/// Regression (found by `vk_file` and `pk_file` on their first run): a key file whose
/// `gamma_abc_g1` count is corrupt made arkworks reserve that many points before reading any:
/// `capacity overflow` panics (u64::MAX, 2^63) or, for counts like 2^40, an allocation failure
/// that aborts the process. `keys::decode_verifying_key` now checks the count against the bytes
/// present; the file is `Corrupt`.
#[test]
fn a_corrupt_point_count_is_an_error_not_a_crash() {
    let ctx = key_context();
    let path = Path::new("corrupt.bin");
    let vk = std::fs::read(seeds::fixtures_dir().join("vk-B2-D8.bin")).unwrap();
    let pk = seeds::toy_proving_key_file();
    let decoders = Decoders::new();
    for (file, at, target) in [
        (&vk, vk_count_offset(32, 64), Target::VkFile),
        (&pk, vk_count_offset(64, 128), Target::PkFile),
    ] {
        let count = u64::from_le_bytes(file[at..at + 8].try_into().unwrap());
        // The committed vk has 3 public inputs, the toy key 1.
        assert!(
            count == 4 || count == 2,
            "offset {at} holds the point count"
        );
        for bad_count in [u64::MAX, 1 << 63, 1 << 40, 1 << 20, count + 1] {
            let mut bad = file.clone();
            bad[at..at + 8].copy_from_slice(&bad_count.to_le_bytes());
            let result = match target {
                Target::VkFile => keys::load_verifying_key_bytes(path, &bad, ctx.vk_shape)
                    .map(|_| ())
                    .and(
                        keys::verifying_key_from_bytes(path, &bad, ctx.vk_shape, &ctx.vk_hash)
                            .map(|_| ()),
                    ),
                _ => {
                    keys::proving_key_from_bytes(path, &bad, ctx.pk_shape, &ctx.pk_hash).map(|_| ())
                }
            };
            assert!(
                matches!(result, Err(KeyFileError::Corrupt { .. })),
                "{}: count {bad_count}: {result:?}",
                target.name()
            );
            decoders.check(target, &bad);
        }
    }
}

/// Regression (found by `vk_file` once the crash was fixed): bytes after a verifying key were
/// ignored, so one key had many files and so many identities (`vk_sha256`). They are refused.
#[test]
fn bytes_after_a_verifying_key_are_refused() {
    let ctx = key_context();
    let path = Path::new("trailing.bin");
    let mut vk = std::fs::read(seeds::fixtures_dir().join("vk-B2-D8.bin")).unwrap();
    assert!(keys::load_verifying_key_bytes(path, &vk, ctx.vk_shape).is_ok());
    vk.push(0);
    assert!(matches!(
        keys::load_verifying_key_bytes(path, &vk, ctx.vk_shape),
        Err(KeyFileError::Corrupt { .. })
    ));
    assert!(matches!(
        keys::verifying_key_from_bytes(path, &vk, ctx.vk_shape, &ctx.vk_hash),
        Err(KeyFileError::Corrupt { .. })
    ));
    Decoders::new().check(Target::VkFile, &vk);
}

/// Sets the infinity flag (bit 6 of the last byte) of the compressed point ending at `last`,
/// keeping its x: arkworks reads that as the identity whatever x is.
fn hide_under_infinity(bytes: &mut [u8], last: usize) {
    bytes[last] = (bytes[last] & 0x3f) | 0x40;
}

/// Regression (found by the `proof_bytes` and `proof_file` cargo fuzz targets within seconds):
/// a proof point whose infinity flag is set over a non-zero x decoded as the identity, so one
/// proof had many encodings (and an anchor commits to the bytes). `proof_from_bytes` now
/// requires each point's canonical encoding.
#[test]
fn an_infinity_flag_does_not_hide_a_proof_point() {
    let text = std::fs::read_to_string(seeds::fixtures_dir().join("proof-0.json")).unwrap();
    let file = ProofFile::from_json(&text).unwrap();
    let bytes = hex::decode(&file.proof).unwrap();
    assert!(proof_from_bytes(&bytes).is_ok());
    let decoders = Decoders::new();
    for (last, element) in [(31, "A"), (95, "B"), (127, "C")] {
        let mut bad = bytes.clone();
        hide_under_infinity(&mut bad, last);
        match proof_from_bytes(&bad) {
            Err(ProofCodecError::InvalidPoint { element: e, .. }) => assert_eq!(e, element),
            other => panic!("{element} under the infinity flag: {other:?}"),
        }
        let mut bad_file = file.clone();
        bad_file.proof = hex::encode(&bad);
        assert!(bad_file.proof().is_err());
        decoders.check(Target::ProofBytes, &bad);
        decoders.check(Target::ProofFile, bad_file.to_json().as_bytes());
    }
}

/// Regression (found by the `vk_file` cargo fuzz target within seconds): the same for the points
/// of a verifying key, whose file's SHA-256 is its identity. They are refused as `Corrupt`.
#[test]
fn an_infinity_flag_does_not_hide_a_verifying_key_point() {
    let ctx = key_context();
    let path = Path::new("infinity.bin");
    let vk = std::fs::read(seeds::fixtures_dir().join("vk-B2-D8.bin")).unwrap();
    let decoders = Decoders::new();
    // alpha_g1, beta_g2 (its c1's last byte carries the flags), gamma_abc_g1[0].
    for last in [
        HEADER_LEN + 31,
        HEADER_LEN + 32 + 63,
        vk_count_offset(32, 64) + 8 + 31,
    ] {
        let mut bad = vk.clone();
        hide_under_infinity(&mut bad, last);
        assert!(
            matches!(
                keys::load_verifying_key_bytes(path, &bad, ctx.vk_shape),
                Err(KeyFileError::Corrupt { .. })
            ),
            "byte {last}"
        );
        assert!(matches!(
            keys::verifying_key_from_bytes(path, &bad, ctx.vk_shape, &ctx.vk_hash),
            Err(KeyFileError::Corrupt { .. })
        ));
        decoders.check(Target::VkFile, &bad);
    }
}

/// Writes the seeds as `cargo fuzz` corpora (`make fuzz` runs this first):
/// `cargo test -p veil-tests --test fuzz_decoders -- --ignored write_cargo_fuzz_corpus`.
/// `VEIL_FUZZ_CORPUS_DIR` overrides the directory (default `fuzz/corpus`).
#[test]
#[ignore = "writes files; run by `make fuzz`"]
fn write_cargo_fuzz_corpus() {
    let dir = std::env::var_os("VEIL_FUZZ_CORPUS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus"));
    for (target, n) in seeds::write_corpus(&dir).expect("the corpus is written") {
        println!("{}: {n} seeds", target.name());
    }
}
