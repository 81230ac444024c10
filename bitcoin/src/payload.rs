//! The 77-byte anchor payload (DESIGN §11; layout in the [crate root] module doc): encoding,
//! decoding with typed errors, the proof commitment, and the `OP_RETURN` script that carries it.

use ark_bn254::{Bn254, Fr};
use ark_groth16::Proof;
use ark_serialize::CanonicalSerialize;
use bitcoin::opcodes::all::{OP_PUSHDATA1, OP_RETURN};
use bitcoin::script::{PushBytes, Script, ScriptBuf};
use bitcoin::Transaction;
use sha2::{Digest, Sha256};
use veil_circuits::field;

/// Magic prefix of every payload.
pub const MAGIC: [u8; 4] = *b"VEIL";
/// The payload version this build writes and reads.
pub const PAYLOAD_VERSION: u8 = 1;
/// Length of an encoded payload.
pub const PAYLOAD_LEN: usize = 77;
/// Length of a compressed Groth16 proof over BN254 (the `proof` in the commitment).
pub const PROOF_BYTES: usize = 128;
/// Length of the `OP_RETURN` script: `OP_RETURN OP_PUSHDATA1 77 <77 bytes>`.
pub const SCRIPT_LEN: usize = PAYLOAD_LEN + 3;

/// A payload (or the script or transaction carrying it) could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not 77 bytes.
    #[error("anchor payload is {found} bytes, expected {PAYLOAD_LEN}")]
    Length {
        /// Bytes found.
        found: usize,
    },
    /// Does not start with `VEIL`.
    #[error("anchor payload magic is {found:02x?}, expected \"VEIL\"")]
    Magic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A version this build does not know.
    #[error(
        "anchor payload version {found} is not supported (this build reads {PAYLOAD_VERSION})"
    )]
    Version {
        /// Version byte found.
        found: u8,
    },
    /// The state root is not a canonical field element.
    #[error("anchor payload state root is not a canonical BN254 field element")]
    NonCanonicalRoot,
    /// The script is not `OP_RETURN OP_PUSHDATA1 77 <payload>`.
    #[error("script is not an anchor OP_RETURN (OP_RETURN OP_PUSHDATA1 77 <payload>)")]
    NotAnchorScript,
    /// The proof given for the commitment is not 128 bytes.
    #[error("proof is {found} bytes, a compressed Groth16 proof is {PROOF_BYTES}")]
    ProofLength {
        /// Bytes found.
        found: usize,
    },
    /// The transaction has no outputs.
    #[error("transaction has no outputs")]
    NoOutputs,
}

/// What an anchor commits to for batch `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchorPayload {
    /// Batch number `n`.
    pub batch_number: u64,
    /// The state root after batch `n`.
    pub new_state_root: Fr,
    /// `SHA-256(proof || batch_hash)`, see [`proof_commitment`].
    pub proof_commitment: [u8; 32],
}

/// `SHA-256(proof || batch_hash)` over the 128-byte compressed proof and the 32-byte big-endian
/// batch hash.
pub fn proof_commitment(proof: &[u8], batch_hash: &Fr) -> Result<[u8; 32], PayloadError> {
    if proof.len() != PROOF_BYTES {
        return Err(PayloadError::ProofLength { found: proof.len() });
    }
    let mut hasher = Sha256::new();
    hasher.update(proof);
    hasher.update(field::to_bytes_be(batch_hash));
    Ok(hasher.finalize().into())
}

/// The 128-byte compressed encoding of a proof (the same bytes as
/// `veil_prover::proof::proof_to_bytes`).
pub fn compressed_proof_bytes(proof: &Proof<Bn254>) -> [u8; PROOF_BYTES] {
    let mut out = Vec::with_capacity(PROOF_BYTES);
    proof
        .serialize_compressed(&mut out)
        .expect("serialising into a Vec cannot fail");
    out.try_into()
        .expect("a compressed BN254 Groth16 proof is 128 bytes")
}

impl AnchorPayload {
    /// The payload of batch `n` from its proof bytes (128, compressed) and public inputs.
    pub fn new(
        batch_number: u64,
        new_state_root: Fr,
        proof: &[u8],
        batch_hash: &Fr,
    ) -> Result<Self, PayloadError> {
        Ok(Self {
            batch_number,
            new_state_root,
            proof_commitment: proof_commitment(proof, batch_hash)?,
        })
    }

    /// The payload of batch `n` from a proof object.
    pub fn from_proof(
        batch_number: u64,
        new_state_root: Fr,
        proof: &Proof<Bn254>,
        batch_hash: &Fr,
    ) -> Self {
        Self::new(
            batch_number,
            new_state_root,
            &compressed_proof_bytes(proof),
            batch_hash,
        )
        .expect("compressed proofs are 128 bytes")
    }

    /// Whether this payload commits to `proof` (128 compressed bytes) and `batch_hash`.
    pub fn commits_to(&self, proof: &[u8], batch_hash: &Fr) -> bool {
        proof_commitment(proof, batch_hash).is_ok_and(|c| c == self.proof_commitment)
    }

    /// The 77-byte encoding.
    pub fn to_bytes(&self) -> [u8; PAYLOAD_LEN] {
        let mut out = [0u8; PAYLOAD_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4] = PAYLOAD_VERSION;
        out[5..13].copy_from_slice(&self.batch_number.to_be_bytes());
        out[13..45].copy_from_slice(&field::to_bytes_be(&self.new_state_root));
        out[45..].copy_from_slice(&self.proof_commitment);
        out
    }

    /// Decodes [`Self::to_bytes`], checking length, magic, version and the root's canonicity.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PayloadError> {
        if bytes.len() != PAYLOAD_LEN {
            return Err(PayloadError::Length { found: bytes.len() });
        }
        let magic: [u8; 4] = bytes[..4].try_into().expect("4 bytes");
        if magic != MAGIC {
            return Err(PayloadError::Magic { found: magic });
        }
        if bytes[4] != PAYLOAD_VERSION {
            return Err(PayloadError::Version { found: bytes[4] });
        }
        let batch_number = u64::from_be_bytes(bytes[5..13].try_into().expect("8 bytes"));
        let root: [u8; 32] = bytes[13..45].try_into().expect("32 bytes");
        let new_state_root =
            field::from_bytes_be(&root).map_err(|_| PayloadError::NonCanonicalRoot)?;
        let proof_commitment = bytes[45..].try_into().expect("32 bytes");
        Ok(Self {
            batch_number,
            new_state_root,
            proof_commitment,
        })
    }

    /// The `OP_RETURN` output script (80 bytes).
    pub fn script_pubkey(&self) -> ScriptBuf {
        let bytes = self.to_bytes();
        let push: &PushBytes = bytes
            .as_slice()
            .try_into()
            .expect("77 bytes fit in one push");
        ScriptBuf::new_op_return(push)
    }

    /// Decodes the payload from an anchor `OP_RETURN` script.
    pub fn from_script(script: &Script) -> Result<Self, PayloadError> {
        let b = script.as_bytes();
        if b.len() < 3
            || b[0] != OP_RETURN.to_u8()
            || b[1] != OP_PUSHDATA1.to_u8()
            || usize::from(b[2]) != b.len() - 3
        {
            return Err(PayloadError::NotAnchorScript);
        }
        Self::from_bytes(&b[3..])
    }

    /// Decodes the payload from the first output of an anchor transaction.
    pub fn from_tx(tx: &Transaction) -> Result<Self, PayloadError> {
        let first = tx.output.first().ok_or(PayloadError::NoOutputs)?;
        Self::from_script(&first.script_pubkey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::{BigInteger, PrimeField};

    fn sample() -> AnchorPayload {
        let proof: Vec<u8> = (0..128u8).collect();
        AnchorPayload::new(
            0x0102_0304_0506_0708,
            Fr::from(123_456_789u64),
            &proof,
            &Fr::from(42u64),
        )
        .unwrap()
    }

    #[test]
    fn layout_and_round_trip() {
        let p = sample();
        let bytes = p.to_bytes();
        assert_eq!(&bytes[..4], b"VEIL");
        assert_eq!(bytes[4], 1);
        assert_eq!(&bytes[5..13], &[1, 2, 3, 4, 5, 6, 7, 8]);
        let mut root = [0u8; 32];
        root[28..].copy_from_slice(&123_456_789u32.to_be_bytes());
        assert_eq!(&bytes[13..45], &root);
        // The commitment is SHA-256 over the 160-byte message proof || batch_hash (BE).
        let mut msg: Vec<u8> = (0..128u8).collect();
        let mut bh = [0u8; 32];
        bh[31] = 42;
        msg.extend_from_slice(&bh);
        assert_eq!(&bytes[45..], Sha256::digest(&msg).as_slice());
        assert_eq!(AnchorPayload::from_bytes(&bytes).unwrap(), p);

        let script = p.script_pubkey();
        assert_eq!(script.len(), SCRIPT_LEN);
        assert!(script.is_op_return());
        assert_eq!(AnchorPayload::from_script(&script).unwrap(), p);
    }

    #[test]
    fn commitment_binds_proof_and_batch_hash() {
        let p = sample();
        let proof: Vec<u8> = (0..128u8).collect();
        assert!(p.commits_to(&proof, &Fr::from(42u64)));
        assert!(!p.commits_to(&proof, &Fr::from(43u64)));
        let mut other = proof.clone();
        other[127] ^= 1;
        assert!(!p.commits_to(&other, &Fr::from(42u64)));
        assert!(!p.commits_to(&proof[..127], &Fr::from(42u64)));
        assert_eq!(
            proof_commitment(&proof[..127], &Fr::from(42u64)),
            Err(PayloadError::ProofLength { found: 127 })
        );
    }

    #[test]
    fn rejects_wrong_length_magic_version_and_root() {
        let bytes = sample().to_bytes();
        assert_eq!(
            AnchorPayload::from_bytes(&bytes[..76]),
            Err(PayloadError::Length { found: 76 })
        );
        let mut long = bytes.to_vec();
        long.push(0);
        assert_eq!(
            AnchorPayload::from_bytes(&long),
            Err(PayloadError::Length { found: 78 })
        );
        let mut bad = bytes;
        bad[0] = b'X';
        assert_eq!(
            AnchorPayload::from_bytes(&bad),
            Err(PayloadError::Magic { found: *b"XEIL" })
        );
        let mut bad = bytes;
        bad[4] = 2;
        assert_eq!(
            AnchorPayload::from_bytes(&bad),
            Err(PayloadError::Version { found: 2 })
        );
        // The modulus r itself is not canonical.
        let mut bad = bytes;
        bad[13..45].copy_from_slice(&Fr::MODULUS.to_bytes_be());
        assert_eq!(
            AnchorPayload::from_bytes(&bad),
            Err(PayloadError::NonCanonicalRoot)
        );
    }

    #[test]
    fn rejects_foreign_scripts() {
        let p = sample();
        // Same bytes pushed with a different opcode layout.
        let mut raw = p.script_pubkey().into_bytes();
        raw[1] = 0x4d; // OP_PUSHDATA2
        assert_eq!(
            AnchorPayload::from_script(Script::from_bytes(&raw)),
            Err(PayloadError::NotAnchorScript)
        );
        let short = ScriptBuf::new_op_return([1u8; 20]);
        assert_eq!(
            AnchorPayload::from_script(&short),
            Err(PayloadError::NotAnchorScript)
        );
        let truncated = Script::from_bytes(&p.script_pubkey().as_bytes()[..79]).to_owned();
        assert_eq!(
            AnchorPayload::from_script(&truncated),
            Err(PayloadError::NotAnchorScript)
        );
    }
}
