//! Seed inputs: valid encodings of every fuzzed format, made by the code itself (a seeded
//! [`Scenario`], the committed `fixtures/data` files, dev-seed and toy Groth16 keys, signed
//! anchor transactions), and [`write_corpus`], which lays them out as `cargo fuzz` corpora.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ark_bn254::{Bn254, Fr};
use ark_groth16::{Groth16, ProvingKey, VerifyingKey};
use ark_relations::lc;
use ark_relations::r1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};
use ark_snark::CircuitSpecificSetupSNARK;
use bitcoin::consensus::encode::{serialize, serialize_hex};
use bitcoin::hashes::Hash;
use bitcoin::{Amount, FeeRate, OutPoint, TxOut, Txid};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use veil_bitcoin::envelope::leaf_script;
use veil_bitcoin::payload::AnchorPayloadV2;
use veil_bitcoin::{build_anchor_tx, AnchorPayload, OperatorKey, PrevOut};
use veil_circuits::batch::file::BatchFile;
use veil_circuits::batch::BatchShape;
use veil_circuits::field;
use veil_circuits::transfer::Transfer;
use veil_fixtures::Scenario;
use veil_prover::keys::{self, KeyKind};
use veil_prover::proof::{proof_to_bytes, ProofFile};
use veil_verifier::da::{AnchorData, BatchData, TransferData};
use veil_wire::transfer_id;
use veil_wire::TransferRequest;

use super::decoders::key_context;
use super::Target;

/// `fixtures/data`: the committed batch, proof and verifying-key files.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/data")
}

/// Where generated keys are cached between runs (`target/fuzz-seeds`).
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-seeds")
}

/// Seed transfers of a B2-D8 scenario: deposits (the last one never applied) and private
/// transfers (a payment with a fee, a withdrawal with memos), with the public batch files of the
/// batches that applied them.
struct History {
    deposits: Vec<Transfer>,
    transfers: Vec<Transfer>,
    batch_files: Vec<String>,
}

fn history() -> &'static History {
    static HISTORY: OnceLock<History> = OnceLock::new();
    HISTORY.get_or_init(|| {
        let shape = BatchShape::new(2, 8).expect("B2-D8 is a shape");
        let mut sc = Scenario::new(shape, 11);
        let alice = sc.new_key();
        let bob = sc.new_key();
        let d1 = sc.deposit(&alice, 1_000);
        let d2 = sc.deposit(&bob, 300);
        let b0 = sc.apply(&[d1.clone(), d2.clone()]).expect("deposits apply");
        let t1 = sc.pay(&alice, &bob, 250, 0, 3);
        let bob_note = sc.unspent(&bob)[0];
        // With memos, so the seeds hold both note ciphertext lengths (89 and 121 bytes).
        sc.set_memos(Some([[0x4d; 32], [0u8; 32]]));
        let t2 = sc.spend(&bob, &[bob_note], &alice, 100, 150, 10);
        sc.set_memos(None);
        let b1 = sc
            .apply(&[t1.clone(), t2.clone()])
            .expect("transfers apply");
        let d3 = sc.deposit(&bob, u64::MAX);
        let batch_files = [&b0, &b1]
            .iter()
            .map(|b| {
                BatchFile::from_built(b, false)
                    .expect("a built batch has a file")
                    .to_json()
            })
            .collect();
        History {
            deposits: vec![d1, d2, d3],
            transfers: vec![t1, t2],
            batch_files,
        }
    })
}

/// The deposit the API harness's node holds in its mempool.
pub fn api_deposit() -> Transfer {
    history().deposits[2].clone()
}

fn request_json(t: &Transfer, pretty: bool) -> Vec<u8> {
    let req = TransferRequest::from(t);
    if pretty {
        serde_json::to_vec_pretty(&req).expect("requests serialise")
    } else {
        serde_json::to_vec(&req).expect("requests serialise")
    }
}

fn read_fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The committed proof files, in batch order.
fn proof_files() -> Vec<(Vec<u8>, ProofFile)> {
    (0..)
        .map(|n| fixtures_dir().join(format!("proof-{n}.json")))
        .take_while(|p| p.exists())
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("a committed proof file reads");
            let file = ProofFile::from_json(&text).expect("a committed proof file parses");
            (text.into_bytes(), file)
        })
        .collect()
}

/// A proof of the committed files, decoded, as its 128 bytes.
fn proof_bytes_of(file: &ProofFile) -> [u8; 128] {
    proof_to_bytes(&file.proof().expect("a committed proof decodes"))
}

/// Anchor data of the seed history: its transfers, two per batch, with the committed proofs.
fn anchor_data() -> Vec<AnchorData> {
    let h = history();
    let proofs: Vec<[u8; 128]> = proof_files()
        .iter()
        .map(|(_, f)| proof_bytes_of(f))
        .collect();
    let transfers: Vec<&Transfer> = h.deposits.iter().chain(&h.transfers).collect();
    let batches: Vec<BatchData> = transfers
        .chunks(2)
        .zip(proofs.iter().cycle())
        .map(|(ts, proof)| BatchData {
            proof: *proof,
            transfers: ts
                .iter()
                .map(|t| TransferData {
                    public: t.public,
                    ciphertexts: t.ciphertexts.clone(),
                })
                .collect(),
        })
        .collect();
    vec![
        AnchorData {
            batch_size: 2,
            first_batch: 0,
            batches: batches.clone(),
        },
        AnchorData {
            batch_size: 2,
            first_batch: 7,
            batches: batches[..1].to_vec(),
        },
    ]
}

/// Version 2 payloads over the seed anchor data.
fn range_payloads() -> Vec<AnchorPayloadV2> {
    anchor_data()
        .iter()
        .map(|d| {
            let hash = d.data_hash().expect("seed data encodes");
            let pcs = vec![[3u8; 32]; d.batches.len()];
            AnchorPayloadV2::new(d.first_batch, Fr::from(5u64), &hash, &pcs)
                .expect("a seed payload")
        })
        .collect()
}

/// The committed history's anchor payloads.
fn payloads() -> Vec<AnchorPayload> {
    proof_files()
        .iter()
        .map(|(_, f)| {
            let inputs = f.public_inputs;
            AnchorPayload::new(
                f.batch_number,
                inputs.new_state_root,
                &proof_bytes_of(f),
                &inputs.batch_hash,
            )
            .expect("a committed proof is 128 bytes")
        })
        .collect()
}

/// Signed anchors of the committed history, alternating P2TR and P2WPKH, each spending the
/// previous one's change.
fn anchor_txs() -> Vec<bitcoin::Transaction> {
    let key = OperatorKey::generate(&mut ChaCha20Rng::seed_from_u64(5));
    let mut prev = PrevOut {
        outpoint: OutPoint::new(Txid::from_byte_array([7u8; 32]), 0),
        txout: TxOut {
            value: Amount::from_sat(100_000),
            script_pubkey: key.script_pubkey(veil_bitcoin::KeyKind::P2tr),
        },
    };
    let rate = FeeRate::from_sat_per_vb(2).expect("a fee rate");
    payloads()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let kind = if i % 2 == 0 {
                veil_bitcoin::KeyKind::P2wpkh
            } else {
                veil_bitcoin::KeyKind::P2tr
            };
            let a = build_anchor_tx(&key, &prev, p, kind, rate).expect("an anchor builds");
            prev = a.change();
            a.tx
        })
        .collect()
}

/// `a * b = c` with one public input: the smallest Groth16 keys, for fast key-decoder seeds.
#[derive(Clone, Copy)]
struct Product;

impl ConstraintSynthesizer<Fr> for Product {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let a = cs.new_input_variable(|| Ok(Fr::from(2u64)))?;
        let b = cs.new_witness_variable(|| Ok(Fr::from(3u64)))?;
        let c = cs.new_witness_variable(|| Ok(Fr::from(6u64)))?;
        cs.enforce_constraint(lc!() + a, lc!() + b, lc!() + c)
    }
}

fn toy_keys() -> (ProvingKey<Bn254>, VerifyingKey<Bn254>) {
    Groth16::<Bn254>::setup(Product, &mut ChaCha20Rng::seed_from_u64(3)).expect("toy setup")
}

/// A B1-D8 proving-key file (this build's header) holding the toy circuit's key: a few hundred
/// bytes through the same decoder as the real key.
pub fn toy_proving_key_file() -> Vec<u8> {
    let ctx = key_context();
    keys::key_file_bytes(
        keys::header(KeyKind::Proving, ctx.pk_shape, ctx.pk_hash),
        &toy_keys().0,
    )
}

/// The B1-D8 dev-seed proving-key file (about 10 MB), generated once into [`cache_dir`].
fn dev_proving_key_file() -> Vec<u8> {
    // Tests of one binary run in parallel: generate and read the key once, under one lock,
    // so no test reads the file while another is still writing it.
    static FILE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    FILE.get_or_init(read_dev_proving_key_file).clone()
}

fn read_dev_proving_key_file() -> Vec<u8> {
    let shape = key_context().pk_shape;
    let dir = cache_dir();
    veil_prover::load_or_setup_dev_keys(&dir, shape, 1).expect("B1-D8 dev keys");
    let path = dir
        .join("dev-seed-1")
        .join(keys::key_file_name(KeyKind::Proving, shape));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Valid inputs of `target`'s decoder. [`Target::PkFile`] includes the B1-D8 dev proving key
/// (generated on first use, then cached).
pub fn seeds(target: Target) -> Vec<Vec<u8>> {
    let h = history();
    match target {
        Target::TransferJson => h
            .transfers
            .iter()
            .enumerate()
            .map(|(i, t)| request_json(t, i % 2 == 1))
            .collect(),
        Target::DepositJson => h
            .deposits
            .iter()
            .enumerate()
            .map(|(i, t)| request_json(t, i % 2 == 1))
            .collect(),
        Target::ApiRequest => api_requests(),
        Target::FieldHex => field_hexes(),
        Target::BatchFile => (0..)
            .map(|n| fixtures_dir().join(format!("batch-{n}.json")))
            .take_while(|p| p.exists())
            .map(|p| std::fs::read(p).expect("a committed batch file reads"))
            .chain(h.batch_files.iter().map(|s| s.clone().into_bytes()))
            .collect(),
        Target::ProofFile => proof_files().into_iter().map(|(text, _)| text).collect(),
        Target::ProofBytes => proof_files()
            .iter()
            .flat_map(|(_, f)| {
                let bytes = proof_bytes_of(f);
                [
                    bytes.to_vec(),
                    hex::encode(bytes).into_bytes(),
                    format!("0x{}", hex::encode_upper(bytes)).into_bytes(),
                ]
            })
            .collect(),
        Target::VkFile => {
            let ctx = key_context();
            let toy = keys::key_file_bytes(
                keys::header(KeyKind::Verifying, ctx.vk_shape, ctx.vk_hash),
                &toy_keys().1,
            );
            vec![read_fixture("vk-B2-D8.bin"), toy]
        }
        Target::PkFile => vec![toy_proving_key_file(), dev_proving_key_file()],
        Target::AnchorPayload => payloads()
            .iter()
            .flat_map(|p| [p.to_bytes().to_vec(), p.script_pubkey().into_bytes()])
            .chain(
                range_payloads()
                    .iter()
                    .flat_map(|p| [p.to_bytes().to_vec(), p.script_pubkey().into_bytes()]),
            )
            .collect(),
        Target::AnchorData => anchor_data()
            .iter()
            .map(|d| d.encode().expect("seed data encodes"))
            .collect(),
        Target::EnvelopeLeaf => {
            let key = OperatorKey::generate(&mut ChaCha20Rng::seed_from_u64(6)).internal_key();
            let data = anchor_data()[0].encode().expect("seed data encodes");
            [&data[..], &data[..1], &data[..521], &[][..]]
                .iter()
                .map(|d| leaf_script(key, d).into_bytes())
                .collect()
        }
        Target::AnchorTx => {
            let txs = anchor_txs();
            let mut out: Vec<Vec<u8>> = txs.iter().map(serialize).collect();
            out.push(serialize_hex(&txs[0]).into_bytes());
            out
        }
    }
}

fn field_hexes() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = vec![
        b"0x0".to_vec(),
        b"1".to_vec(),
        // r - 1, the largest canonical element.
        b"0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000000".to_vec(),
    ];
    for (_, f) in proof_files().iter().take(2) {
        let root = f.public_inputs.new_state_root;
        out.push(field::to_hex(&root).into_bytes());
        out.push(field::to_hex(&root)[2..].to_ascii_uppercase().into_bytes());
        out.push(field::to_bytes_be(&root).to_vec());
    }
    out
}

fn api_requests() -> Vec<Vec<u8>> {
    let deposit = api_deposit();
    let nf = field::to_hex(&deposit.public.nullifiers[0]);
    let id = transfer_id(&deposit);
    let lines = [
        "GET /v1/state".to_owned(),
        "GET /v1/notes?from=0&limit=10".to_owned(),
        "GET /v1/notes/0/path".to_owned(),
        format!("GET /v1/nullifiers/{nf}"),
        format!("GET /v1/transfers/{id}"),
        "GET /v1/batches/0".to_owned(),
        "GET /healthz".to_owned(),
        "POST /v1/anchor auth".to_owned(),
    ];
    let mut out: Vec<Vec<u8>> = lines
        .iter()
        .map(|l| format!("{l}\n").into_bytes())
        .collect();
    let h = history();
    for (line, t) in [
        ("POST /v1/transfers", &h.transfers[0]),
        ("POST /v1/deposits auth", &h.deposits[0]),
        ("POST /v1/deposits auth", &deposit),
    ] {
        let mut request = format!("{line}\n").into_bytes();
        request.extend(request_json(t, false));
        out.push(request);
    }
    out
}

/// Writes every target's seeds as `dir/<target name>/seed-<i>` (the `cargo fuzz` corpus
/// layout); returns how many seeds each target got.
pub fn write_corpus(dir: &Path) -> std::io::Result<Vec<(Target, usize)>> {
    let mut counts = Vec::new();
    for target in Target::ALL {
        let target_dir = dir.join(target.name());
        std::fs::create_dir_all(&target_dir)?;
        let seeds = seeds(target);
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(target_dir.join(format!("seed-{i}")), seed)?;
        }
        counts.push((target, seeds.len()));
    }
    Ok(counts)
}
