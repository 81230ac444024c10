//! Helpers of `protocol_vectors.rs`: hex forms, circomlib's Baby Jubjub form (`a = 168700`,
//! `d = 168696`) and its group law, the byte-level primitives the spec names (HKDF, X25519,
//! SHA-512, Blake2b, ChaCha20-Poly1305), the JSON diff that names differing fields, and the
//! anchor-payload vector built from the committed fixture history.

use std::path::Path;
use std::str::FromStr;

use ark_bn254::{Fq, Fr, G1Affine, G2Affine};
use ark_ed_on_bn254::{EdwardsAffine, Fr as Scalar};
use ark_ff::{AdditiveGroup, BigInteger, Field, One, PrimeField};
use serde_json::{json, Value};
use sha2::Digest;
use veil_circuits::batch::file::BatchFile;
use veil_circuits::batch::BatchShape;
use veil_circuits::field;
use veil_verifier::da::{AnchorData, BatchData, TransferData};

/// circomlib's Baby Jubjub `a`.
pub const CIRCOM_A: u64 = 168700;
/// circomlib's Baby Jubjub `d`.
pub const CIRCOM_D: u64 = 168696;
/// The identity `(0, 1)`.
pub const CIRCOM_IDENTITY: [Fr; 2] = [Fr::ZERO, Fr::ONE];

/// A field element as `0x` + 64 hex digits.
pub fn hx(x: &Fr) -> String {
    field::to_hex(x)
}

/// A list of field elements in hex.
pub fn hexes(xs: &[Fr]) -> Vec<String> {
    xs.iter().map(hx).collect()
}

/// A Baby Jubjub scalar as `0x` + 64 hex digits (big-endian integer).
pub fn scalar_hex(s: &Scalar) -> String {
    scalar_hex_big(&s.into_bigint())
}

/// A 256-bit integer as `0x` + 64 hex digits.
pub fn scalar_hex_big(b: &impl BigInteger) -> String {
    format!("0x{}", hex::encode(b.to_bytes_be()))
}

fn fq_hex(x: &Fq) -> String {
    format!("0x{}", hex::encode(x.into_bigint().to_bytes_be()))
}

/// An arkworks-form point.
pub fn point(p: &EdwardsAffine) -> Value {
    json!({"x": hx(&p.x), "y": hx(&p.y)})
}

/// A circomlib-form point.
pub fn point_c(p: [Fr; 2]) -> Value {
    json!({"x": hx(&p[0]), "y": hx(&p[1])})
}

/// The square root of 168700 below r / 2 (the map's fixed choice).
pub fn sqrt_a() -> Fr {
    let s = Fr::from(CIRCOM_A).sqrt().expect("168700 is a square mod r");
    if s.into_bigint() <= (-s).into_bigint() {
        s
    } else {
        -s
    }
}

/// arkworks form (`a = 1`) to circomlib form: `x / sqrt(a)`.
pub fn to_circom(p: &EdwardsAffine) -> [Fr; 2] {
    [p.x * sqrt_a().inverse().unwrap(), p.y]
}

/// circomlib form to arkworks form: `x * sqrt(a)`.
pub fn from_circom(p: [Fr; 2]) -> EdwardsAffine {
    let q = EdwardsAffine::new_unchecked(p[0] * sqrt_a(), p[1]);
    assert!(q.is_on_curve());
    q
}

/// `a x^2 + y^2 == 1 + d x^2 y^2` with circomlib's `a`, `d`.
pub fn on_circom_curve(p: [Fr; 2]) -> bool {
    let (x2, y2) = (p[0].square(), p[1].square());
    Fr::from(CIRCOM_A) * x2 + y2 == Fr::one() + Fr::from(CIRCOM_D) * x2 * y2
}

/// Twisted Edwards addition in circomlib form (circomlib's `babyjub.addPoint`).
pub fn circom_add(p: [Fr; 2], q: [Fr; 2]) -> [Fr; 2] {
    let (a, d) = (Fr::from(CIRCOM_A), Fr::from(CIRCOM_D));
    let t = d * p[0] * q[0] * p[1] * q[1];
    let x = (p[0] * q[1] + p[1] * q[0]) * (Fr::one() + t).inverse().unwrap();
    let y = (p[1] * q[1] - a * p[0] * q[0]) * (Fr::one() - t).inverse().unwrap();
    [x, y]
}

/// Negation `(-x, y)`.
pub fn circom_neg(p: [Fr; 2]) -> [Fr; 2] {
    [-p[0], p[1]]
}

/// `k P` by double-and-add over little-endian bits (circomlib's `babyjub.mulPointEscalar`).
pub fn circom_mul(p: [Fr; 2], bits_le: &[bool]) -> [Fr; 2] {
    let mut acc = CIRCOM_IDENTITY;
    for &b in bits_le.iter().rev() {
        acc = circom_add(acc, acc);
        if b {
            acc = circom_add(acc, p);
        }
    }
    acc
}

/// A scalar's little-endian bits.
pub fn bits(s: &Scalar) -> Vec<bool> {
    s.into_bigint().to_bits_le()
}

/// A scalar (`< l < r`) embedded as a field element.
pub fn scalar_as_fr(s: &Scalar) -> Fr {
    Fr::from_le_bytes_mod_order(&s.into_bigint().to_bytes_le())
}

/// circomlib's `babyjub.Base8`.
pub fn circomlib_base8() -> [Fr; 2] {
    [
        Fr::from_str(
            "5299619240641551281634865583518297030282874472190772894086521144482721001553",
        )
        .unwrap(),
        Fr::from_str(
            "16950150798460657717958625567821834550301663161624707787222815936182638968203",
        )
        .unwrap(),
    ]
}

/// HKDF-SHA256 to 32 bytes.
pub fn hkdf32(salt: Option<&[u8]>, ikm: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(salt, ikm)
        .expand(info, &mut out)
        .unwrap();
    out
}

/// X25519 public key of a (clamped on use) secret.
pub fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret)).to_bytes()
}

/// X25519 shared secret.
pub fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::StaticSecret::from(*secret)
        .diffie_hellman(&x25519_dalek::PublicKey::from(*public))
        .to_bytes()
}

/// SHA-512 of the concatenation.
pub fn sha512(parts: &[&[u8]]) -> [u8; 64] {
    let mut h = sha2::Sha512::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Blake2b-512 of the concatenation.
pub fn blake2b512(parts: &[&[u8]]) -> [u8; 64] {
    use blake2::Digest as _;
    let mut h = blake2::Blake2b512::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// ChaCha20-Poly1305 with a zero nonce and no associated data: ciphertext || tag.
pub fn chacha20poly1305_seal(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    use chacha20poly1305::{aead::Aead, ChaCha20Poly1305, KeyInit, Nonce};
    ChaCha20Poly1305::new(key.into())
        .encrypt(Nonce::from_slice(&[0u8; 12]), plaintext)
        .unwrap()
}

/// Appends one line per field where `committed` and `computed` differ, by JSON path.
pub fn json_diff(path: &str, committed: &Value, computed: &Value, out: &mut Vec<String>) {
    match (committed, computed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                match b.get(k) {
                    Some(vb) => json_diff(&format!("{path}.{k}"), va, vb, out),
                    None => out.push(format!("  {path}.{k}: in the file, not computed")),
                }
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("  {path}.{k}: computed, missing from the file"));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                json_diff(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if committed == computed => {}
        _ => out.push(format!(
            "  {path}: file has {}, the code computes {}",
            short(committed),
            short(computed)
        )),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 140 {
        format!("{}... ({} chars)", &s[..140], s.len())
    } else {
        s
    }
}

/// A compressed G1 point by the spec's rule: `x` little-endian, bit 7 of byte 31 set iff
/// `y > (q - 1) / 2`.
fn g1_json(p: &G1Affine, compressed: &[u8]) -> Value {
    let mut expected = p.x.into_bigint().to_bytes_le();
    if p.y > -p.y {
        expected[31] |= 0x80;
    }
    assert_eq!(expected, compressed);
    json!({"x": fq_hex(&p.x), "y": fq_hex(&p.y), "compressed": hex::encode(compressed)})
}

/// A compressed G2 point: `x.c0 || x.c1` little-endian, bit 7 of byte 63 set iff `y > -y`
/// comparing `c1` first, then `c0`.
fn g2_json(p: &G2Affine, compressed: &[u8]) -> Value {
    let mut expected = p.x.c0.into_bigint().to_bytes_le();
    expected.extend(p.x.c1.into_bigint().to_bytes_le());
    let neg = -p.y;
    if (p.y.c1, p.y.c0) > (neg.c1, neg.c0) {
        expected[63] |= 0x80;
    }
    assert_eq!(expected, compressed);
    json!({
        "x": [fq_hex(&p.x.c0), fq_hex(&p.x.c1)], "y": [fq_hex(&p.y.c0), fq_hex(&p.y.c1)],
        "compressed": hex::encode(compressed)
    })
}

/// Batch 0 of `veil_fixtures::mixed_history(B = 2, D = 8, seed 7)` (the committed
/// `fixtures/data/batch-0.json`, two deposits) with its committed proof: the proof's points and
/// encoding, the anchor data, and the version 1 and 2 payloads and scripts.
pub fn anchor_vector() -> Value {
    let shape = BatchShape::new(2, 8).unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/data");
    let read = |name: &str| std::fs::read_to_string(data.join(name)).unwrap();
    let batch_file = BatchFile::from_json(&read("batch-0.json")).unwrap();
    let proof_file = veil_prover::proof::ProofFile::from_json(&read("proof-0.json")).unwrap();
    // mixed_history draws two keys, then deposits 1,000 and 500 to the first: batch 0.
    let mut sc = veil_fixtures::Scenario::new(shape, 7);
    let alice = sc.new_key();
    let _bob = sc.new_key();
    let transfers = [sc.deposit(&alice, 1_000), sc.deposit(&alice, 500)];
    let built = sc.apply(&transfers).unwrap();
    let pi = built.public_inputs;
    assert_eq!(
        pi,
        batch_file.public_batch().unwrap().public_inputs,
        "fixtures/data/batch-0.json is no longer batch 0 of mixed_history(B2-D8, 7)"
    );

    let proof = proof_file.proof().unwrap();
    let proof_bytes: [u8; 128] = hex::decode(&proof_file.proof).unwrap().try_into().unwrap();
    assert_eq!(
        veil_bitcoin::payload::compressed_proof_bytes(&proof),
        proof_bytes
    );
    let anchor_data = AnchorData {
        batch_size: shape.batch_size as u64,
        first_batch: 0,
        batches: vec![BatchData {
            proof: proof_bytes,
            transfers: transfers
                .iter()
                .map(|t| TransferData {
                    public: t.public,
                    ciphertexts: t.ciphertexts.clone(),
                })
                .collect(),
        }],
    };
    let encoded = anchor_data.encode().unwrap();
    assert_eq!(AnchorData::decode(&encoded).unwrap(), anchor_data);
    let data_hash: [u8; 32] = sha2::Sha256::digest(&encoded).into();
    assert_eq!(anchor_data.data_hash().unwrap(), data_hash);

    let root = field::to_bytes_be(&pi.new_state_root);
    let pc: [u8; 32] =
        sha2::Sha256::digest([&proof_bytes[..], &field::to_bytes_be(&pi.batch_hash)].concat())
            .into();
    assert_eq!(
        veil_bitcoin::proof_commitment(&proof_bytes, &pi.batch_hash).unwrap(),
        pc
    );
    let v1 = veil_bitcoin::AnchorPayload::new(0, pi.new_state_root, &proof_bytes, &pi.batch_hash)
        .unwrap();
    let v1_expected = [&b"VEIL\x01"[..], &0u64.to_be_bytes(), &root, &pc].concat();
    assert_eq!(v1.to_bytes().to_vec(), v1_expected);
    let commitment: [u8; 32] =
        sha2::Sha256::digest([&b"veil/anchor-v2"[..], &data_hash, &pc].concat()).into();
    let v2 = veil_bitcoin::AnchorPayloadV2::new(0, pi.new_state_root, &data_hash, &[pc]).unwrap();
    let v2_expected = [
        &b"VEIL\x02"[..],
        &0u64.to_be_bytes(),
        &1u16.to_be_bytes(),
        &root,
        &commitment,
    ]
    .concat();
    assert_eq!(v2.to_bytes().to_vec(), v2_expected);
    let script_v2 = v2.script_pubkey();
    assert_eq!(script_v2.as_bytes()[..3], [0x6a, 0x4c, 79]);

    json!({
        "source": "fixtures/data/batch-0.json and proof-0.json (B = 2, D = 8, batch 0)",
        "batch_number": 0,
        "old_state_root": hx(&pi.old_state_root),
        "new_state_root": hx(&pi.new_state_root),
        "batch_hash": hx(&pi.batch_hash),
        "proof": {
            "compressed": hex::encode(proof_bytes),
            "A": g1_json(&proof.a, &proof_bytes[..32]),
            "B": g2_json(&proof.b, &proof_bytes[32..96]),
            "C": g1_json(&proof.c, &proof_bytes[96..])
        },
        "v1": {
            "proof_commitment": hex::encode(pc),
            "payload": hex::encode(v1.to_bytes()),
            "script_pubkey": hex::encode(v1.script_pubkey().as_bytes())
        },
        "v2": {
            "anchor_data": hex::encode(&encoded),
            "data_hash": hex::encode(data_hash),
            "commitment": hex::encode(commitment),
            "payload": hex::encode(v2.to_bytes()),
            "script_pubkey": hex::encode(script_v2.as_bytes())
        }
    })
}
