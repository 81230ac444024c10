//! Groth16 proofs on the wire (DESIGN §8): the 128-byte arkworks compressed encoding (`A` in G1,
//! 32 bytes; `B` in G2, 64 bytes; `C` in G1, 32 bytes) as 256 lowercase hex digits, and the JSON
//! proof file that carries one with its batch's shape, number, public inputs and the identity of
//! the verifying key it was made for (`docs/batch-file.md`).

use ark_bn254::{Bn254, Fr, G1Affine, G2Affine};
use ark_groth16::Proof;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use serde::{Deserialize, Serialize};
use veil_circuits::batch::{BatchPublicInputs, BatchShape};
use veil_circuits::field;

/// Length of a compressed proof.
pub const PROOF_BYTES: usize = 128;
/// The proof-file format version this build reads and writes.
pub const PROOF_FILE_VERSION: u32 = 1;

/// A proof could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofCodecError {
    /// Not hexadecimal.
    #[error("proof is not hex ({0})")]
    Hex(String),
    /// Not 128 bytes.
    #[error("proof is {found} bytes, a compressed Groth16 proof is {PROOF_BYTES}")]
    Length {
        /// Bytes found.
        found: usize,
    },
    /// An element is not a canonical compressed point of its prime-order group.
    #[error("proof element {element} is not a valid compressed {group} point")]
    InvalidPoint {
        /// `A`, `B` or `C`.
        element: &'static str,
        /// `G1` or `G2`.
        group: &'static str,
    },
}

/// The 128-byte compressed encoding.
pub fn proof_to_bytes(proof: &Proof<Bn254>) -> [u8; PROOF_BYTES] {
    let mut out = Vec::with_capacity(PROOF_BYTES);
    proof
        .serialize_compressed(&mut out)
        .expect("serialising into a Vec cannot fail");
    out.try_into()
        .expect("a compressed BN254 proof is 128 bytes")
}

/// Decodes [`proof_to_bytes`], checking each point is on its curve, in its prime-order
/// subgroup, and canonically encoded (one proof, one encoding: the anchor commits to the bytes).
pub fn proof_from_bytes(bytes: &[u8]) -> Result<Proof<Bn254>, ProofCodecError> {
    if bytes.len() != PROOF_BYTES {
        return Err(ProofCodecError::Length { found: bytes.len() });
    }
    Ok(Proof {
        a: decode_point::<G1Affine>(&bytes[..32], "A", "G1")?,
        b: decode_point::<G2Affine>(&bytes[32..96], "B", "G2")?,
        c: decode_point::<G1Affine>(&bytes[96..], "C", "G1")?,
    })
}

/// One compressed point. arkworks reads any x under the infinity flag as the identity, so the
/// point must also re-encode to exactly `bytes`.
fn decode_point<G: CanonicalDeserialize + CanonicalSerialize>(
    bytes: &[u8],
    element: &'static str,
    group: &'static str,
) -> Result<G, ProofCodecError> {
    let invalid = || ProofCodecError::InvalidPoint { element, group };
    let point = G::deserialize_compressed(bytes).map_err(|_| invalid())?;
    let mut again = Vec::with_capacity(bytes.len());
    point
        .serialize_compressed(&mut again)
        .expect("serialising into a Vec cannot fail");
    if again != bytes {
        return Err(invalid());
    }
    Ok(point)
}

/// 256 lowercase hex digits, no prefix.
pub fn proof_to_hex(proof: &Proof<Bn254>) -> String {
    hex::encode(proof_to_bytes(proof))
}

/// Parses [`proof_to_hex`] (an optional `0x` prefix is accepted).
pub fn proof_from_hex(s: &str) -> Result<Proof<Bn254>, ProofCodecError> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    let bytes = hex::decode(digits).map_err(|e| ProofCodecError::Hex(e.to_string()))?;
    proof_from_bytes(&bytes)
}

/// A proof file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofFile {
    /// Format version ([`PROOF_FILE_VERSION`]).
    pub version: u32,
    /// `B`.
    pub batch_size: usize,
    /// `D`.
    pub depth: usize,
    /// Batch number.
    pub batch_number: u64,
    /// [`proof_to_hex`].
    pub proof: String,
    /// The public inputs the proof was made for.
    pub public_inputs: PublicInputsJson,
    /// Identity of the verifying key ([`crate::keys::vk_sha256`]).
    pub vk_sha256: String,
}

/// [`BatchPublicInputs`] in a proof file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicInputsJson {
    /// State root before the batch.
    #[serde(with = "field::serde_hex")]
    pub old_state_root: Fr,
    /// State root after the batch.
    #[serde(with = "field::serde_hex")]
    pub new_state_root: Fr,
    /// The batch hash.
    #[serde(with = "field::serde_hex")]
    pub batch_hash: Fr,
}

impl From<BatchPublicInputs> for PublicInputsJson {
    fn from(p: BatchPublicInputs) -> Self {
        PublicInputsJson {
            old_state_root: p.old_state_root,
            new_state_root: p.new_state_root,
            batch_hash: p.batch_hash,
        }
    }
}

impl From<PublicInputsJson> for BatchPublicInputs {
    fn from(p: PublicInputsJson) -> Self {
        BatchPublicInputs {
            old_state_root: p.old_state_root,
            new_state_root: p.new_state_root,
            batch_hash: p.batch_hash,
        }
    }
}

impl ProofFile {
    /// The file of `proof` for batch `batch_number` of `shape`.
    pub fn new(
        shape: BatchShape,
        batch_number: u64,
        proof: &Proof<Bn254>,
        public_inputs: BatchPublicInputs,
        vk_sha256: String,
    ) -> Self {
        ProofFile {
            version: PROOF_FILE_VERSION,
            batch_size: shape.batch_size,
            depth: shape.depth,
            batch_number,
            proof: proof_to_hex(proof),
            public_inputs: public_inputs.into(),
            vk_sha256,
        }
    }

    /// Parses a proof file (syntax and encodings; the proof bytes are decoded by
    /// [`Self::proof`]).
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("proof files serialise");
        s.push('\n');
        s
    }

    /// The decoded proof.
    pub fn proof(&self) -> Result<Proof<Bn254>, ProofCodecError> {
        proof_from_hex(&self.proof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::{AffineRepr, CurveGroup};

    fn sample() -> Proof<Bn254> {
        let g1 = G1Affine::generator();
        let g2 = G2Affine::generator();
        Proof {
            a: (g1 * Fr::from(3u64)).into_affine(),
            b: (g2 * Fr::from(5u64)).into_affine(),
            c: (g1 * Fr::from(7u64)).into_affine(),
        }
    }

    #[test]
    fn hex_round_trip() {
        let p = sample();
        let h = proof_to_hex(&p);
        assert_eq!(h.len(), 2 * PROOF_BYTES);
        assert_eq!(proof_from_hex(&h).unwrap(), p);
        assert_eq!(proof_from_hex(&format!("0x{h}")).unwrap(), p);
    }

    #[test]
    fn bad_encodings_are_named() {
        let h = proof_to_hex(&sample());
        assert!(matches!(
            proof_from_hex(&h[..254]),
            Err(ProofCodecError::Length { found: 127 })
        ));
        assert!(matches!(
            proof_from_hex(&format!("{}zz", &h[..254])),
            Err(ProofCodecError::Hex(_))
        ));
        assert!(matches!(
            proof_from_hex(&h[..255]),
            Err(ProofCodecError::Hex(_))
        ));
        // An x coordinate >= p (all ones below the flag bits) is no point at all.
        let mut bytes = proof_to_bytes(&sample());
        for (start, element) in [(0, "A"), (32, "B"), (96, "C")] {
            let mut bad = bytes;
            bad[start..start + 31].fill(0xff);
            bad[start + 31] = 0x3f;
            match proof_from_bytes(&bad) {
                Err(ProofCodecError::InvalidPoint { element: e, .. }) => assert_eq!(e, element),
                other => panic!("{element}: {other:?}"),
            }
        }
        bytes[0] ^= 1;
        // Flipping a bit of A's x gives either no point or another point, never a panic.
        let _ = proof_from_bytes(&bytes);
    }
}
