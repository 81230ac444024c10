//! The anchor payloads (layouts in the crate root's module doc): version 1, 77 bytes for one
//! batch, and version 2, 79 bytes for a range of batches whose data an envelope carries. Encoding,
//! decoding with typed errors, the proof and range commitments, and the `OP_RETURN` script that
//! carries a payload; [`AnchorPayloadAny`] reads either version.

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
/// The version of the one-batch payload [`AnchorPayload`].
pub const PAYLOAD_VERSION: u8 = 1;
/// Length of an encoded version 1 payload.
pub const PAYLOAD_LEN: usize = 77;
/// The version of the batch-range payload [`AnchorPayloadV2`].
pub const PAYLOAD_VERSION_2: u8 = 2;
/// Length of an encoded version 2 payload.
pub const PAYLOAD_V2_LEN: usize = 79;
/// Length of the version 2 `OP_RETURN` script: `OP_RETURN OP_PUSHDATA1 79 <79 bytes>`.
pub const SCRIPT_V2_LEN: usize = PAYLOAD_V2_LEN + 3;
/// Domain tag of the version 2 range commitment, see [`range_commitment`].
pub const RANGE_COMMITMENT_TAG: &[u8; 14] = b"veil/anchor-v2";
/// Length of a compressed Groth16 proof over BN254 (the `proof` in the commitment).
pub const PROOF_BYTES: usize = 128;
/// Length of the `OP_RETURN` script: `OP_RETURN OP_PUSHDATA1 77 <77 bytes>`.
pub const SCRIPT_LEN: usize = PAYLOAD_LEN + 3;

/// A payload (or the script or transaction carrying it) could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not the length of the payload's version (77 for version 1, 79 for version 2), or too
    /// short to hold a magic and a version.
    #[error("anchor payload is {found} bytes, expected {expected}")]
    Length {
        /// Bytes found.
        found: usize,
        /// Bytes expected.
        expected: usize,
    },
    /// Does not start with `VEIL`.
    #[error("anchor payload magic is {found:02x?}, expected \"VEIL\"")]
    Magic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A version this decoder does not read ([`AnchorPayloadAny`] reads versions 1 and 2).
    #[error("anchor payload version {found} is not supported here")]
    Version {
        /// Version byte found.
        found: u8,
    },
    /// The state root is not a canonical field element.
    #[error("anchor payload state root is not a canonical BN254 field element")]
    NonCanonicalRoot,
    /// The script is not `OP_RETURN OP_PUSHDATA1 <len> <payload>`.
    #[error("script is not an anchor OP_RETURN (OP_RETURN OP_PUSHDATA1 <len> <payload>)")]
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
    /// A version 2 payload covering no batches.
    #[error("a range anchor covers at least one batch")]
    ZeroCount,
    /// More batches than a version 2 payload can count (65,535).
    #[error("{found} batches do not fit in one range anchor (at most 65535)")]
    TooManyBatches {
        /// Batches given.
        found: usize,
    },
    /// The last batch number of the range does not fit in a `u64`.
    #[error("batch range {first_batch} + {count} overflows")]
    RangeOverflow {
        /// First batch.
        first_batch: u64,
        /// Number of batches.
        count: u16,
    },
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
        check_header(bytes, PAYLOAD_VERSION, PAYLOAD_LEN)?;
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
        op_return_script(&self.to_bytes())
    }

    /// Decodes the payload from an anchor `OP_RETURN` script.
    pub fn from_script(script: &Script) -> Result<Self, PayloadError> {
        Self::from_bytes(op_return_push(script)?)
    }

    /// Decodes the payload from the first output of an anchor transaction.
    pub fn from_tx(tx: &Transaction) -> Result<Self, PayloadError> {
        let first = tx.output.first().ok_or(PayloadError::NoOutputs)?;
        Self::from_script(&first.script_pubkey)
    }
}

/// `OP_RETURN OP_PUSHDATA1 <len> <bytes>` for a payload (at most 80 bytes, one push).
fn op_return_script(bytes: &[u8]) -> ScriptBuf {
    let push: &PushBytes = bytes.try_into().expect("a payload fits in one push");
    ScriptBuf::new_op_return(push)
}

/// The bytes of `OP_RETURN OP_PUSHDATA1 <len> <bytes>`, the only script form anchors use.
fn op_return_push(script: &Script) -> Result<&[u8], PayloadError> {
    let b = script.as_bytes();
    if b.len() < 3
        || b[0] != OP_RETURN.to_u8()
        || b[1] != OP_PUSHDATA1.to_u8()
        || usize::from(b[2]) != b.len() - 3
    {
        return Err(PayloadError::NotAnchorScript);
    }
    Ok(&b[3..])
}

/// Checks the magic, then that the version is `version` and the length `len`.
fn check_header(bytes: &[u8], version: u8, len: usize) -> Result<(), PayloadError> {
    let found = read_version(bytes, len)?;
    if found != version {
        return Err(PayloadError::Version { found });
    }
    if bytes.len() != len {
        return Err(PayloadError::Length {
            found: bytes.len(),
            expected: len,
        });
    }
    Ok(())
}

/// The version byte after a valid magic; too short for both is a length error against `len`.
fn read_version(bytes: &[u8], len: usize) -> Result<u8, PayloadError> {
    if bytes.len() < MAGIC.len() + 1 {
        return Err(PayloadError::Length {
            found: bytes.len(),
            expected: len,
        });
    }
    let magic: [u8; 4] = bytes[..4].try_into().expect("4 bytes");
    if magic != MAGIC {
        return Err(PayloadError::Magic { found: magic });
    }
    Ok(bytes[4])
}

/// `SHA-256("veil/anchor-v2" || data_hash || proof_commitment_1 || ... || proof_commitment_count)`:
/// what a version 2 payload commits to. `data_hash` is the SHA-256 of the anchor data the
/// envelope carries (`veil_verifier::da::AnchorData::data_hash`), `proof_commitments` each
/// covered batch's [`proof_commitment`] in batch order.
pub fn range_commitment(data_hash: &[u8; 32], proof_commitments: &[[u8; 32]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(RANGE_COMMITMENT_TAG);
    hasher.update(data_hash);
    for c in proof_commitments {
        hasher.update(c);
    }
    hasher.finalize().into()
}

/// What a range anchor commits to: batches `first_batch ..= first_batch + count - 1`, the state
/// root after the last of them, and (through [`range_commitment`]) the envelope data and every
/// covered batch's proof and batch hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchorPayloadV2 {
    /// Number of the first batch covered.
    pub first_batch: u64,
    /// Number of batches covered, at least 1.
    pub count: u16,
    /// The state root after the last batch covered.
    pub new_state_root: Fr,
    /// [`range_commitment`] of the data hash and the batches' proof commitments.
    pub commitment: [u8; 32],
}

impl AnchorPayloadV2 {
    /// The payload of a range of `proof_commitments.len()` batches starting at `first_batch`.
    pub fn new(
        first_batch: u64,
        new_state_root: Fr,
        data_hash: &[u8; 32],
        proof_commitments: &[[u8; 32]],
    ) -> Result<Self, PayloadError> {
        let count =
            u16::try_from(proof_commitments.len()).map_err(|_| PayloadError::TooManyBatches {
                found: proof_commitments.len(),
            })?;
        check_range(first_batch, count)?;
        Ok(Self {
            first_batch,
            count,
            new_state_root,
            commitment: range_commitment(data_hash, proof_commitments),
        })
    }

    /// Number of the last batch covered (decoded and constructed payloads have `count >= 1`
    /// and no overflow; a hand-made one saturates).
    pub fn last_batch(&self) -> u64 {
        self.first_batch
            .saturating_add(u64::from(self.count).saturating_sub(1))
    }

    /// Whether this payload commits to the data with hash `data_hash` and to these proof
    /// commitments (one per covered batch, in order).
    pub fn commits_to(&self, data_hash: &[u8; 32], proof_commitments: &[[u8; 32]]) -> bool {
        proof_commitments.len() == usize::from(self.count)
            && range_commitment(data_hash, proof_commitments) == self.commitment
    }

    /// The 79-byte encoding.
    pub fn to_bytes(&self) -> [u8; PAYLOAD_V2_LEN] {
        let mut out = [0u8; PAYLOAD_V2_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4] = PAYLOAD_VERSION_2;
        out[5..13].copy_from_slice(&self.first_batch.to_be_bytes());
        out[13..15].copy_from_slice(&self.count.to_be_bytes());
        out[15..47].copy_from_slice(&field::to_bytes_be(&self.new_state_root));
        out[47..].copy_from_slice(&self.commitment);
        out
    }

    /// Decodes [`Self::to_bytes`], checking magic, version, length, a non-empty range whose last
    /// batch number fits and the root's canonicity.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PayloadError> {
        check_header(bytes, PAYLOAD_VERSION_2, PAYLOAD_V2_LEN)?;
        let first_batch = u64::from_be_bytes(bytes[5..13].try_into().expect("8 bytes"));
        let count = u16::from_be_bytes(bytes[13..15].try_into().expect("2 bytes"));
        check_range(first_batch, count)?;
        let root: [u8; 32] = bytes[15..47].try_into().expect("32 bytes");
        let new_state_root =
            field::from_bytes_be(&root).map_err(|_| PayloadError::NonCanonicalRoot)?;
        Ok(Self {
            first_batch,
            count,
            new_state_root,
            commitment: bytes[47..].try_into().expect("32 bytes"),
        })
    }

    /// The `OP_RETURN` output script (82 bytes).
    pub fn script_pubkey(&self) -> ScriptBuf {
        op_return_script(&self.to_bytes())
    }

    /// Decodes the payload from an anchor `OP_RETURN` script.
    pub fn from_script(script: &Script) -> Result<Self, PayloadError> {
        Self::from_bytes(op_return_push(script)?)
    }

    /// Decodes the payload from the first output of an anchor transaction.
    pub fn from_tx(tx: &Transaction) -> Result<Self, PayloadError> {
        let first = tx.output.first().ok_or(PayloadError::NoOutputs)?;
        Self::from_script(&first.script_pubkey)
    }
}

fn check_range(first_batch: u64, count: u16) -> Result<(), PayloadError> {
    if count == 0 {
        return Err(PayloadError::ZeroCount);
    }
    if first_batch.checked_add(u64::from(count) - 1).is_none() {
        return Err(PayloadError::RangeOverflow { first_batch, count });
    }
    Ok(())
}

/// A payload of either version, as read from the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorPayloadAny {
    /// One batch.
    V1(AnchorPayload),
    /// A range of batches with an envelope.
    V2(AnchorPayloadV2),
}

impl AnchorPayloadAny {
    /// Decodes a payload of either version (by its version byte).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PayloadError> {
        match read_version(bytes, PAYLOAD_LEN)? {
            PAYLOAD_VERSION => AnchorPayload::from_bytes(bytes).map(Self::V1),
            PAYLOAD_VERSION_2 => AnchorPayloadV2::from_bytes(bytes).map(Self::V2),
            found => Err(PayloadError::Version { found }),
        }
    }

    /// Decodes a payload of either version from an anchor `OP_RETURN` script.
    pub fn from_script(script: &Script) -> Result<Self, PayloadError> {
        Self::from_bytes(op_return_push(script)?)
    }

    /// Decodes a payload of either version from the first output of an anchor transaction.
    pub fn from_tx(tx: &Transaction) -> Result<Self, PayloadError> {
        let first = tx.output.first().ok_or(PayloadError::NoOutputs)?;
        Self::from_script(&first.script_pubkey)
    }

    /// The payload's version byte.
    pub fn version(&self) -> u8 {
        match self {
            Self::V1(_) => PAYLOAD_VERSION,
            Self::V2(_) => PAYLOAD_VERSION_2,
        }
    }

    /// The first and last batch numbers covered.
    pub fn batches(&self) -> (u64, u64) {
        match self {
            Self::V1(p) => (p.batch_number, p.batch_number),
            Self::V2(p) => (p.first_batch, p.last_batch()),
        }
    }

    /// The state root after the last batch covered.
    pub fn new_state_root(&self) -> Fr {
        match self {
            Self::V1(p) => p.new_state_root,
            Self::V2(p) => p.new_state_root,
        }
    }

    /// The encoding (77 or 79 bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::V1(p) => p.to_bytes().to_vec(),
            Self::V2(p) => p.to_bytes().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests;
