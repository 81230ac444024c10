//! The anchor payload of the committed fixture proofs (`fixtures/data/proof-*.json`): the proof
//! bytes the node stores are exactly the compressed encoding the payload hashes, and the
//! commitment is SHA-256 over those 128 bytes followed by the batch hash's 32 big-endian bytes
//! as written in the JSON (`0x` hex), computed here independently of the library.

use std::path::Path;

use ark_bn254::Bn254;
use ark_groth16::Proof;
use ark_serialize::CanonicalDeserialize;
use bitcoin::hex::FromHex;
use sha2::{Digest, Sha256};
use veil_bitcoin::payload::compressed_proof_bytes;
use veil_bitcoin::AnchorPayload;
use veil_circuits::field;

fn hex_bytes(s: &str) -> Vec<u8> {
    Vec::<u8>::from_hex(s.strip_prefix("0x").unwrap_or(s)).unwrap()
}

#[test]
fn fixture_proofs_anchor_payloads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/data");
    let mut checked = 0;
    for n in 0.. {
        let path = dir.join(format!("proof-{n}.json"));
        if !path.exists() {
            break;
        }
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let batch_number = file["batch_number"].as_u64().unwrap();
        assert_eq!(batch_number, n);
        let proof_bytes = hex_bytes(file["proof"].as_str().unwrap());
        assert_eq!(proof_bytes.len(), 128);
        let inputs = &file["public_inputs"];
        let root_hex = inputs["new_state_root"].as_str().unwrap();
        let batch_hash_hex = inputs["batch_hash"].as_str().unwrap();

        // The stored bytes are the canonical compressed encoding of a valid proof.
        let proof = Proof::<Bn254>::deserialize_compressed(proof_bytes.as_slice()).unwrap();
        assert_eq!(compressed_proof_bytes(&proof).as_slice(), proof_bytes);

        let root = field::from_hex(root_hex).unwrap();
        let batch_hash = field::from_hex(batch_hash_hex).unwrap();
        let payload = AnchorPayload::new(batch_number, root, &proof_bytes, &batch_hash).unwrap();
        assert_eq!(
            payload,
            AnchorPayload::from_proof(batch_number, root, &proof, &batch_hash)
        );

        let mut message = proof_bytes.clone();
        message.extend_from_slice(&hex_bytes(batch_hash_hex));
        assert_eq!(message.len(), 160);
        let bytes = payload.to_bytes();
        assert_eq!(&bytes[..5], b"VEIL\x01");
        assert_eq!(&bytes[5..13], &batch_number.to_be_bytes());
        assert_eq!(&bytes[13..45], hex_bytes(root_hex).as_slice());
        assert_eq!(&bytes[45..], Sha256::digest(&message).as_slice());
        assert_eq!(
            AnchorPayload::from_script(&payload.script_pubkey()).unwrap(),
            payload
        );
        assert!(payload.commits_to(&proof_bytes, &batch_hash));
        checked += 1;
    }
    assert!(checked >= 2, "fixtures/data holds proofs");
}
