//! The data-availability encoding (`docs/data-on-bitcoin.md`): the bytes an anchor's Taproot
//! envelope carries for the contiguous range of batches it covers. Enough to verify every proof,
//! rebuild both trees and let a wallet trial-decrypt its notes, and nothing the verifier can
//! recompute (state roots, batch hashes, ciphertext hashes, note positions).
//!
//! One encoding per value: varints are minimal, field elements canonical, a flag is set exactly
//! when its field is non-zero, and nothing may follow the last batch. So the SHA-256 of the
//! bytes, which the anchor's `OP_RETURN` commits to, names the data, and anyone holding the
//! data (a node, or a verifier reading the node's API) re-encodes it to the same bytes.
//!
//! ```text
//! anchor data   = "VDA" version:u8(=1) batch_size:varint first_batch:varint count:varint
//!                 batch{count}
//! batch         = proof:[u8; 128] transfers:varint transfer{transfers}
//! transfer      = flags:u8 nf1 nf2 cm1 cm2 (32-byte big-endian field elements)
//!                 [public_in:varint] [public_out:varint] [fee:varint]   if flags bit 0 / 1 / 2
//!                 [dest:32] [deposit_ref:32]                            if flags bit 3 / 4
//!                 len1:varint [len2:varint if flags bit 5] ct1 ct2      (len2 = len1 otherwise)
//! ```

use ark_bn254::Fr;
use ark_ff::Zero;
use sha2::{Digest, Sha256};
use veil_circuits::field;
use veil_circuits::note::ciphertext_hash;
use veil_circuits::transfer::TransferPublic;

/// First bytes of every encoding.
pub const DA_MAGIC: [u8; 3] = *b"VDA";
/// The encoding version this build writes and reads.
pub const DA_VERSION: u8 = 1;
/// Length of a compressed Groth16 proof over BN254.
pub const PROOF_LEN: usize = 128;
/// Longest note ciphertext the decoder accepts (bounds what a hostile envelope can allocate).
pub const MAX_CIPHERTEXT_LEN: usize = 4096;
/// Largest batch size the decoder accepts.
pub const MAX_BATCH_SIZE: u64 = 1 << 16;

const FLAG_PUBLIC_IN: u8 = 1 << 0;
const FLAG_PUBLIC_OUT: u8 = 1 << 1;
const FLAG_FEE: u8 = 1 << 2;
const FLAG_DEST: u8 = 1 << 3;
const FLAG_DEPOSIT_REF: u8 = 1 << 4;
const FLAG_CT_LENGTHS_DIFFER: u8 = 1 << 5;
const KNOWN_FLAGS: u8 = (1 << 6) - 1;
/// Smallest encoded transfer: flags, four field elements, one length byte.
const MIN_TRANSFER_LEN: usize = 1 + 4 * 32 + 1;
/// Smallest encoded batch: a proof and a zero transfer count.
const MIN_BATCH_LEN: usize = PROOF_LEN + 1;

/// Bytes that are not a valid encoding, or data that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DaError {
    /// The input ends inside an item.
    #[error("data ends at byte {at} inside {what}")]
    Truncated {
        /// Offset where more bytes were needed.
        at: usize,
        /// What was being read.
        what: &'static str,
    },
    /// Does not start with `VDA`.
    #[error("data does not start with \"VDA\"")]
    Magic,
    /// A version this build does not read.
    #[error("data encoding version {found} is not supported (this build reads {DA_VERSION})")]
    Version {
        /// Version byte found.
        found: u8,
    },
    /// A varint that is not minimal or does not fit a `u64`.
    #[error("bad varint at byte {at}")]
    Varint {
        /// Its offset.
        at: usize,
    },
    /// A field element `>= r`.
    #[error("non-canonical field element at byte {at}")]
    NonCanonicalField {
        /// Its offset.
        at: usize,
    },
    /// Unknown flag bits, or a flag whose field is zero (zero fields are left out).
    #[error("bad flags {flags:#04x} at byte {at}")]
    Flags {
        /// Offset of the flags byte.
        at: usize,
        /// The byte.
        flags: u8,
    },
    /// A count out of range for what the data can hold.
    #[error("{what} {found} at byte {at} is out of range")]
    Count {
        /// Offset of the count.
        at: usize,
        /// What it counts.
        what: &'static str,
        /// Value found.
        found: u64,
    },
    /// Bytes after the last batch.
    #[error("{extra} bytes after the last batch")]
    Trailing {
        /// How many.
        extra: usize,
    },
    /// A transfer to encode whose `ciphertext_hash` is not its ciphertexts' hash.
    #[error("batch {batch} transfer {slot}: ciphertext_hash does not match its ciphertexts")]
    CiphertextHash {
        /// Batch number.
        batch: u64,
        /// Slot.
        slot: usize,
    },
    /// Data that the encoding cannot carry (an empty range, an oversized count or ciphertext).
    #[error("cannot encode: {0}")]
    Unencodable(&'static str),
}

/// One transfer's published data: its public fields and its two note ciphertexts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferData {
    /// Public fields (`ciphertext_hash` is the hash of `ciphertexts`).
    pub public: TransferPublic,
    /// The two note ciphertexts.
    pub ciphertexts: [Vec<u8>; 2],
}

/// One batch: its proof and its real transfers in slot order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchData {
    /// Compressed Groth16 proof.
    pub proof: [u8; PROOF_LEN],
    /// The real transfers, at most `B`.
    pub transfers: Vec<TransferData>,
}

/// A contiguous range of batches `first_batch ..= first_batch + batches.len() - 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorData {
    /// Batch size `B` of the circuit the proofs are for.
    pub batch_size: u64,
    /// Number of the first batch.
    pub first_batch: u64,
    /// The batches, in order (at least one).
    pub batches: Vec<BatchData>,
}

impl AnchorData {
    /// Number of the last batch covered.
    pub fn last_batch(&self) -> u64 {
        self.first_batch + self.batches.len().saturating_sub(1) as u64
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Result<Vec<u8>, DaError> {
        if self.batches.is_empty() {
            return Err(DaError::Unencodable("a range of no batches"));
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_SIZE {
            return Err(DaError::Unencodable("batch size out of range"));
        }
        if self
            .first_batch
            .checked_add(self.batches.len() as u64 - 1)
            .is_none()
        {
            return Err(DaError::Unencodable("batch numbers overflow"));
        }
        let mut out = Vec::with_capacity(self.encoded_len_hint());
        out.extend_from_slice(&DA_MAGIC);
        out.push(DA_VERSION);
        put_varint(&mut out, self.batch_size);
        put_varint(&mut out, self.first_batch);
        put_varint(&mut out, self.batches.len() as u64);
        for (i, b) in self.batches.iter().enumerate() {
            let batch = self.first_batch + i as u64;
            if b.transfers.len() as u64 > self.batch_size {
                return Err(DaError::Unencodable("more transfers than the batch size"));
            }
            out.extend_from_slice(&b.proof);
            put_varint(&mut out, b.transfers.len() as u64);
            for (slot, t) in b.transfers.iter().enumerate() {
                if ciphertext_hash(&t.ciphertexts) != t.public.ciphertext_hash {
                    return Err(DaError::CiphertextHash { batch, slot });
                }
                encode_transfer(&mut out, t)?;
            }
        }
        Ok(out)
    }

    /// SHA-256 of the canonical encoding: what an anchor commits to.
    pub fn data_hash(&self) -> Result<[u8; 32], DaError> {
        Ok(Sha256::digest(self.encode()?).into())
    }

    /// Decodes `bytes` (exactly one encoding, nothing after it).
    pub fn decode(bytes: &[u8]) -> Result<AnchorData, DaError> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(3, "the magic")? != DA_MAGIC {
            return Err(DaError::Magic);
        }
        let version = r.take(1, "the version")?[0];
        if version != DA_VERSION {
            return Err(DaError::Version { found: version });
        }
        let at = r.at;
        let batch_size = r.varint()?;
        if batch_size == 0 || batch_size > MAX_BATCH_SIZE {
            return Err(DaError::Count {
                at,
                what: "batch size",
                found: batch_size,
            });
        }
        let first_batch = r.varint()?;
        let at = r.at;
        let count = r.varint()?;
        if count == 0
            || count > (r.remaining() / MIN_BATCH_LEN) as u64
            || first_batch.checked_add(count - 1).is_none()
        {
            return Err(DaError::Count {
                at,
                what: "batch count",
                found: count,
            });
        }
        let mut batches = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let proof: [u8; PROOF_LEN] = r
                .take(PROOF_LEN, "a proof")?
                .try_into()
                .expect("PROOF_LEN bytes");
            let at = r.at;
            let n = r.varint()?;
            if n > batch_size || n > (r.remaining() / MIN_TRANSFER_LEN) as u64 {
                return Err(DaError::Count {
                    at,
                    what: "transfer count",
                    found: n,
                });
            }
            let transfers = (0..n)
                .map(|_| decode_transfer(&mut r))
                .collect::<Result<_, _>>()?;
            batches.push(BatchData { proof, transfers });
        }
        if r.remaining() != 0 {
            return Err(DaError::Trailing {
                extra: r.remaining(),
            });
        }
        Ok(AnchorData {
            batch_size,
            first_batch,
            batches,
        })
    }

    fn encoded_len_hint(&self) -> usize {
        16 + self
            .batches
            .iter()
            .map(|b| {
                PROOF_LEN
                    + 3
                    + b.transfers
                        .iter()
                        .map(|t| 140 + t.ciphertexts[0].len() + t.ciphertexts[1].len())
                        .sum::<usize>()
            })
            .sum::<usize>()
    }
}

fn encode_transfer(out: &mut Vec<u8>, t: &TransferData) -> Result<(), DaError> {
    let p = &t.public;
    let [len1, len2] = [t.ciphertexts[0].len(), t.ciphertexts[1].len()];
    if len1 > MAX_CIPHERTEXT_LEN || len2 > MAX_CIPHERTEXT_LEN {
        return Err(DaError::Unencodable(
            "a ciphertext longer than MAX_CIPHERTEXT_LEN",
        ));
    }
    let mut flags = 0u8;
    for (set, bit) in [
        (p.public_in != 0, FLAG_PUBLIC_IN),
        (p.public_out != 0, FLAG_PUBLIC_OUT),
        (p.fee != 0, FLAG_FEE),
        (!p.dest.is_zero(), FLAG_DEST),
        (!p.deposit_ref.is_zero(), FLAG_DEPOSIT_REF),
        (len1 != len2, FLAG_CT_LENGTHS_DIFFER),
    ] {
        if set {
            flags |= bit;
        }
    }
    out.push(flags);
    for x in p.nullifiers.iter().chain(&p.commitments) {
        out.extend_from_slice(&field::to_bytes_be(x));
    }
    for (amount, bit) in [
        (p.public_in, FLAG_PUBLIC_IN),
        (p.public_out, FLAG_PUBLIC_OUT),
        (p.fee, FLAG_FEE),
    ] {
        if flags & bit != 0 {
            put_varint(out, amount);
        }
    }
    for (x, bit) in [(p.dest, FLAG_DEST), (p.deposit_ref, FLAG_DEPOSIT_REF)] {
        if flags & bit != 0 {
            out.extend_from_slice(&field::to_bytes_be(&x));
        }
    }
    put_varint(out, len1 as u64);
    if flags & FLAG_CT_LENGTHS_DIFFER != 0 {
        put_varint(out, len2 as u64);
    }
    out.extend_from_slice(&t.ciphertexts[0]);
    out.extend_from_slice(&t.ciphertexts[1]);
    Ok(())
}

fn decode_transfer(r: &mut Reader<'_>) -> Result<TransferData, DaError> {
    let flags_at = r.at;
    let flags = r.take(1, "transfer flags")?[0];
    let bad_flags = DaError::Flags {
        at: flags_at,
        flags,
    };
    if flags & !KNOWN_FLAGS != 0 {
        return Err(bad_flags);
    }
    let nf1 = r.field()?;
    let nf2 = r.field()?;
    let cm1 = r.field()?;
    let cm2 = r.field()?;
    let mut amounts = [0u64; 3];
    for (amount, bit) in amounts
        .iter_mut()
        .zip([FLAG_PUBLIC_IN, FLAG_PUBLIC_OUT, FLAG_FEE])
    {
        if flags & bit != 0 {
            *amount = r.varint()?;
            if *amount == 0 {
                return Err(bad_flags);
            }
        }
    }
    let mut hashes = [Fr::zero(); 2];
    for (x, bit) in hashes.iter_mut().zip([FLAG_DEST, FLAG_DEPOSIT_REF]) {
        if flags & bit != 0 {
            *x = r.field()?;
            if x.is_zero() {
                return Err(bad_flags);
            }
        }
    }
    let len1 = r.length()?;
    let len2 = if flags & FLAG_CT_LENGTHS_DIFFER != 0 {
        let len2 = r.length()?;
        if len2 == len1 {
            return Err(bad_flags);
        }
        len2
    } else {
        len1
    };
    let ct1 = r.take(len1, "a note ciphertext")?.to_vec();
    let ct2 = r.take(len2, "a note ciphertext")?.to_vec();
    let ciphertexts = [ct1, ct2];
    Ok(TransferData {
        public: TransferPublic {
            nullifiers: [nf1, nf2],
            commitments: [cm1, cm2],
            public_in: amounts[0],
            public_out: amounts[1],
            fee: amounts[2],
            dest: hashes[0],
            deposit_ref: hashes[1],
            ciphertext_hash: ciphertext_hash(&ciphertexts),
        },
        ciphertexts,
    })
}

/// LEB128, little-endian groups of 7 bits.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DaError> {
        if self.remaining() < n {
            return Err(DaError::Truncated { at: self.at, what });
        }
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn varint(&mut self) -> Result<u64, DaError> {
        let start = self.at;
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.take(1, "a varint")?[0];
            let group = u64::from(b & 0x7f);
            // The tenth group holds bit 63 only; a last group of 0 is not minimal.
            if (i == 9 && group > 1) || (i > 0 && b == 0) {
                return Err(DaError::Varint { at: start });
            }
            v |= group << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DaError::Varint { at: start })
    }

    fn length(&mut self) -> Result<usize, DaError> {
        let at = self.at;
        let n = self.varint()?;
        if n > MAX_CIPHERTEXT_LEN as u64 {
            return Err(DaError::Count {
                at,
                what: "ciphertext length",
                found: n,
            });
        }
        Ok(n as usize)
    }

    fn field(&mut self) -> Result<Fr, DaError> {
        let at = self.at;
        let bytes: [u8; 32] = self
            .take(32, "a field element")?
            .try_into()
            .expect("32 bytes");
        field::from_bytes_be(&bytes).map_err(|_| DaError::NonCanonicalField { at })
    }
}

#[cfg(test)]
mod tests;
