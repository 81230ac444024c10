//! The JSON batch file (`docs/batch-file.md`): a batch's public part (shape, batch number, state
//! roots, `batch_hash` and every real transfer's public data), which is all a verifier needs, and
//! an optional `witness` object holding the full [`BatchWitness`] for proving.
//!
//! The serde types here mirror the circuit's types (field elements as canonical `0x` hex, amounts
//! of the public part as JSON integers) and reject unknown fields. Loading checks everything a
//! verifier or prover relies on: the format version, the shape, that the stated `batch_hash` is
//! the hash of the listed transfers, the witness's dimensions, its curve points and signatures,
//! and that its slots publish exactly the listed transfers.

use ark_bn254::Fr;
use ark_ed_on_bn254::EdwardsAffine;
use ark_ff::Zero;
use serde::{Deserialize, Serialize};

use super::{
    batch_hash, BatchCircuit, BatchError, BatchPublicInputs, BatchShape, BatchWitness, BuiltBatch,
    InputWitness, InsertionWitness, LowLeafLocation, OutputWitness, SlotSpec, SlotWitness,
};
use crate::constants::SLOT_PUBLIC_FIELDS;
use crate::eddsa::{Signature, SIGNATURE_BYTES};
use crate::field::{self, to_hex};
use crate::state::StateSummary;
use crate::transfer::{SlotFields, TransferPublic};
use crate::tree::{serde_hex_levels, MerklePath, NullifierLeaf, SubtreePath};

/// The batch-file format version this build reads and writes (2: 4-ary tree paths; 3: each
/// transfer's `ciphertext_hash`).
pub const BATCH_FILE_VERSION: u32 = 3;

/// Why a batch file was refused.
#[derive(Debug, thiserror::Error)]
pub enum BatchFileError {
    /// Not JSON, or not this format (missing, mistyped or unknown fields, bad hex).
    #[error("invalid batch file: {0}")]
    Json(#[from] serde_json::Error),
    /// Another format version.
    #[error("batch file version {found}, this build reads version {BATCH_FILE_VERSION}")]
    Version {
        /// Version found.
        found: u32,
    },
    /// An invalid shape, too many transfers, or a malformed witness.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// The stated `batch_hash` is not the hash of the listed transfers.
    #[error("stated batch_hash {stated} is not the hash of the listed transfers ({computed})")]
    BatchHashMismatch {
        /// Hash in the file.
        stated: String,
        /// Hash recomputed from `batch_number`, `batch_size` and `transfers`.
        computed: String,
    },
    /// Proving needs the `witness` object.
    #[error("the batch file has no witness (needed for proving; `veil dev-batches` writes one)")]
    NoWitness,
    /// A witness value is not decodable (a point off the curve, a malformed signature).
    #[error("witness: {0}")]
    Witness(String),
    /// The witness does not publish the listed transfers (or a real slot's amount is not a u64).
    #[error("witness does not match the listed transfers: {0}")]
    WitnessMismatch(String),
}

/// A batch file. Field order is the order written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchFile {
    /// Format version ([`BATCH_FILE_VERSION`]).
    pub version: u32,
    /// `B`.
    pub batch_size: usize,
    /// `D`.
    pub depth: usize,
    /// Batch number (bound into `batch_hash`).
    pub batch_number: u64,
    /// State root before the batch.
    #[serde(with = "field::serde_hex")]
    pub old_state_root: Fr,
    /// State root after the batch.
    #[serde(with = "field::serde_hex")]
    pub new_state_root: Fr,
    /// `batch_hash` as stated by the producer; loaders recompute it from `transfers`.
    #[serde(with = "field::serde_hex")]
    pub batch_hash: Fr,
    /// Public data of the real transfers in slot order (at most `B`; the remaining slots are
    /// padding).
    pub transfers: Vec<TransferJson>,
    /// The private witness, for proving only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<WitnessJson>,
}

/// What a verifier takes from a batch file: the shape, the batch number and the three public
/// inputs, with `batch_hash` recomputed from the listed transfers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicBatch {
    /// Shape.
    pub shape: BatchShape,
    /// Batch number.
    pub batch_number: u64,
    /// The proof's public inputs.
    pub public_inputs: BatchPublicInputs,
}

/// One transfer's public data: [`TransferPublic`] itself (it rejects unknown fields).
pub type TransferJson = TransferPublic;

/// The private witness ([`BatchWitness`] without the shape and batch number, which the file
/// states once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessJson {
    /// State before the batch.
    pub old: StateJson,
    /// Aligned start of the note subtree.
    pub note_subtree_start: u64,
    /// The path above the note subtree: `{"pair": [X0, X1]}` (only if `log2(2B)` is odd) and
    /// `{"path": {"siblings": [[s0, s1, s2], ...]}}`.
    pub note_subtree_path: SubtreePath,
    /// Aligned start of the nullifier subtree.
    pub nullifier_subtree_start: u64,
    /// The path above the nullifier subtree, after all low-leaf updates.
    pub nullifier_subtree_path: SubtreePath,
    /// Exactly `B` slots.
    pub slots: Vec<SlotJson>,
}

/// [`StateSummary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateJson {
    /// Note tree root.
    #[serde(with = "field::serde_hex")]
    pub note_root: Fr,
    /// Next free note position.
    pub note_count: u64,
    /// Nullifier tree root.
    #[serde(with = "field::serde_hex")]
    pub nullifier_root: Fr,
    /// Next free nullifier-leaf index.
    pub nullifier_count: u64,
}

/// [`SlotWitness`]. Values are field elements (hex), as in the circuit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotJson {
    /// False for a padding slot.
    pub enabled: bool,
    /// Spend-authorisation key `A` (Baby Jubjub, ark-ed-on-bn254 coordinates).
    pub ak: PointJson,
    /// Nullifier key.
    #[serde(with = "field::serde_hex")]
    pub nk: Fr,
    /// The two inputs.
    pub inputs: [InputJson; 2],
    /// The two outputs.
    pub outputs: [OutputJson; 2],
    /// Deposit.
    #[serde(with = "field::serde_hex")]
    pub public_in: Fr,
    /// Withdrawal.
    #[serde(with = "field::serde_hex")]
    pub public_out: Fr,
    /// Fee.
    #[serde(with = "field::serde_hex")]
    pub fee: Fr,
    /// Withdrawal destination hash.
    #[serde(with = "field::serde_hex")]
    pub dest: Fr,
    /// Deposit reference.
    #[serde(with = "field::serde_hex")]
    pub deposit_ref: Fr,
    /// Hash of the note ciphertexts.
    #[serde(with = "field::serde_hex")]
    pub ciphertext_hash: Fr,
    /// [`Signature::to_bytes`] as 128 hex digits (compressed `R`, then `S` little-endian).
    pub signature: String,
    /// The two nullifier insertions.
    pub insertions: [InsertionJson; 2],
}

/// A Baby Jubjub point by its affine coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointJson {
    /// `x`.
    #[serde(with = "field::serde_hex")]
    pub x: Fr,
    /// `y`.
    #[serde(with = "field::serde_hex")]
    pub y: Fr,
}

/// [`InputWitness`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputJson {
    /// Value.
    #[serde(with = "field::serde_hex")]
    pub value: Fr,
    /// `rho`.
    #[serde(with = "field::serde_hex")]
    pub rho: Fr,
    /// `r`.
    #[serde(with = "field::serde_hex")]
    pub r: Fr,
    /// Leaf position.
    pub position: u64,
    /// `D / 2` levels of three siblings, leaf to root.
    #[serde(with = "serde_hex_levels")]
    pub path: Vec<[Fr; 3]>,
}

/// [`OutputWitness`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputJson {
    /// Recipient owner tag.
    #[serde(with = "field::serde_hex")]
    pub addr: Fr,
    /// Value.
    #[serde(with = "field::serde_hex")]
    pub value: Fr,
    /// `r`.
    #[serde(with = "field::serde_hex")]
    pub r: Fr,
}

/// [`InsertionWitness`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsertionJson {
    /// Where the low leaf is: `{"tree": index}` or `{"pending": j}`.
    pub location: LocationJson,
    /// The low leaf before the update.
    pub low_leaf: LeafJson,
    /// `D / 2` levels of three siblings at the current nullifier root (zeros for a pending low
    /// leaf).
    #[serde(with = "serde_hex_levels")]
    pub path: Vec<[Fr; 3]>,
}

/// [`LowLeafLocation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LocationJson {
    /// A leaf of the nullifier tree.
    Tree(u64),
    /// This batch's `j`-th new leaf.
    Pending(usize),
}

/// [`NullifierLeaf`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeafJson {
    /// Value.
    #[serde(with = "field::serde_hex")]
    pub value: Fr,
    /// Index of the next larger leaf.
    pub next_index: u64,
    /// Next larger value.
    #[serde(with = "field::serde_hex")]
    pub next_value: Fr,
}

impl BatchFile {
    /// The file of a built batch, with or without its witness. Fails only if a real slot's
    /// amount does not fit a u64 (possible only for batches built with
    /// [`super::build_batch_unchecked`]).
    pub fn from_built(built: &BuiltBatch, with_witness: bool) -> Result<Self, BatchFileError> {
        let w = &built.witness;
        let transfers = built
            .public_fields
            .iter()
            .enumerate()
            .map(|(slot, f)| transfer_from_fields(slot, f))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BatchFile {
            version: BATCH_FILE_VERSION,
            batch_size: w.shape.batch_size,
            depth: w.shape.depth,
            batch_number: w.batch_number,
            old_state_root: built.public_inputs.old_state_root,
            new_state_root: built.public_inputs.new_state_root,
            batch_hash: built.public_inputs.batch_hash,
            transfers,
            witness: with_witness.then(|| WitnessJson::from(w)),
        })
    }

    /// Parses a batch file (syntax and field encodings only; see [`Self::public_batch`]).
    pub fn from_json(json: &str) -> Result<Self, BatchFileError> {
        Ok(serde_json::from_str(json)?)
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("batch files serialise");
        s.push('\n');
        s
    }

    /// The file's shape, validated.
    pub fn shape(&self) -> Result<BatchShape, BatchFileError> {
        Ok(BatchShape::new(self.batch_size, self.depth)?)
    }

    /// The listed transfers.
    pub fn transfers(&self) -> Vec<TransferPublic> {
        self.transfers.to_vec()
    }

    /// What a verifier needs: checks the version and shape, recomputes `batch_hash` from the
    /// listed transfers and refuses a file whose stated `batch_hash` differs.
    pub fn public_batch(&self) -> Result<PublicBatch, BatchFileError> {
        if self.version != BATCH_FILE_VERSION {
            return Err(BatchFileError::Version {
                found: self.version,
            });
        }
        let shape = self.shape()?;
        if self.transfers.len() > shape.batch_size {
            return Err(BatchError::TooManyTransfers {
                got: self.transfers.len(),
                max: shape.batch_size,
            }
            .into());
        }
        let computed = batch_hash(self.batch_number, shape.batch_size, &self.transfers());
        if computed != self.batch_hash {
            return Err(BatchFileError::BatchHashMismatch {
                stated: to_hex(&self.batch_hash),
                computed: to_hex(&computed),
            });
        }
        Ok(PublicBatch {
            shape,
            batch_number: self.batch_number,
            public_inputs: BatchPublicInputs {
                old_state_root: self.old_state_root,
                new_state_root: self.new_state_root,
                batch_hash: computed,
            },
        })
    }

    /// The witness, decoded and checked: dimensions, points, signatures, and that its first
    /// `transfers.len()` slots are real and publish exactly the listed transfers while the rest
    /// are padding.
    pub fn witness(&self) -> Result<BatchWitness, BatchFileError> {
        let shape = self.shape()?;
        let w = self
            .witness
            .as_ref()
            .ok_or(BatchFileError::NoWitness)?
            .to_witness(shape, self.batch_number)?;
        let mismatch = |m: String| Err(BatchFileError::WitnessMismatch(m));
        let transfers = self.transfers();
        if transfers.len() > w.slots.len() {
            return mismatch(format!(
                "{} transfers listed for {} slots",
                transfers.len(),
                w.slots.len()
            ));
        }
        for (s, slot) in w.slots.iter().enumerate() {
            match (slot.enabled, transfers.get(s)) {
                (true, Some(t)) => {
                    let fields = slot_public_fields(slot);
                    if fields != t.fields() {
                        return mismatch(format!(
                            "slot {s} publishes other data than transfer {s}"
                        ));
                    }
                }
                (false, None) => {}
                (true, None) => return mismatch(format!("slot {s} is real but not listed")),
                (false, Some(_)) => {
                    return mismatch(format!("transfer {s} sits in a padding slot"));
                }
            }
        }
        if w.old.state_root() != self.old_state_root {
            return mismatch("the witness's old state does not hash to old_state_root".into());
        }
        Ok(w)
    }

    /// The circuit proving this batch: [`Self::public_batch`] and [`Self::witness`].
    pub fn circuit(&self) -> Result<BatchCircuit, BatchFileError> {
        let public = self.public_batch()?;
        let witness = self.witness()?;
        Ok(BatchCircuit::new(witness, public.public_inputs))
    }
}

/// A slot's public fields, derived natively from its witness (zeros for padding).
fn slot_public_fields(slot: &SlotWitness) -> SlotFields {
    if !slot.enabled {
        return [Fr::zero(); SLOT_PUBLIC_FIELDS];
    }
    SlotSpec::from(slot).public_fields()
}

/// A slot's public data from its fields; the amounts must fit a u64.
fn transfer_from_fields(slot: usize, f: &SlotFields) -> Result<TransferPublic, BatchFileError> {
    TransferPublic::from_fields(f).map_err(|name| {
        BatchFileError::WitnessMismatch(format!("slot {slot}: {name} is not a u64"))
    })
}

impl From<&BatchWitness> for WitnessJson {
    fn from(w: &BatchWitness) -> Self {
        WitnessJson {
            old: StateJson {
                note_root: w.old.note_root,
                note_count: w.old.note_count,
                nullifier_root: w.old.nullifier_root,
                nullifier_count: w.old.nullifier_count,
            },
            note_subtree_start: w.note_subtree_start,
            note_subtree_path: w.note_subtree_path.clone(),
            nullifier_subtree_start: w.nullifier_subtree_start,
            nullifier_subtree_path: w.nullifier_subtree_path.clone(),
            slots: w.slots.iter().map(SlotJson::from).collect(),
        }
    }
}

impl From<&SlotWitness> for SlotJson {
    fn from(s: &SlotWitness) -> Self {
        SlotJson {
            enabled: s.enabled,
            ak: PointJson {
                x: s.ak.x,
                y: s.ak.y,
            },
            nk: s.nk,
            inputs: s.inputs.clone().map(|i| InputJson {
                value: i.value,
                rho: i.rho,
                r: i.r,
                position: i.position,
                path: i.path.siblings,
            }),
            outputs: s.outputs.map(|o| OutputJson {
                addr: o.addr,
                value: o.value,
                r: o.r,
            }),
            public_in: s.public_in,
            public_out: s.public_out,
            fee: s.fee,
            dest: s.dest,
            deposit_ref: s.deposit_ref,
            ciphertext_hash: s.ciphertext_hash,
            signature: hex::encode(s.signature.to_bytes()),
            insertions: s.insertions.clone().map(|ins| InsertionJson {
                location: match ins.location {
                    LowLeafLocation::Tree(i) => LocationJson::Tree(i),
                    LowLeafLocation::Pending(j) => LocationJson::Pending(j),
                },
                low_leaf: LeafJson {
                    value: ins.low_leaf.value,
                    next_index: ins.low_leaf.next_index,
                    next_value: ins.low_leaf.next_value,
                },
                path: ins.path.siblings,
            }),
        }
    }
}

impl WitnessJson {
    /// The [`BatchWitness`] of `shape` and `batch_number`, with its dimensions checked
    /// ([`BatchWitness::check_dimensions`]).
    pub fn to_witness(
        &self,
        shape: BatchShape,
        batch_number: u64,
    ) -> Result<BatchWitness, BatchFileError> {
        let slots = self
            .slots
            .iter()
            .enumerate()
            .map(|(s, slot)| slot.to_slot(s))
            .collect::<Result<Vec<_>, _>>()?;
        let w = BatchWitness {
            shape,
            batch_number,
            old: StateSummary {
                note_root: self.old.note_root,
                note_count: self.old.note_count,
                nullifier_root: self.old.nullifier_root,
                nullifier_count: self.old.nullifier_count,
            },
            slots,
            note_subtree_start: self.note_subtree_start,
            note_subtree_path: self.note_subtree_path.clone(),
            nullifier_subtree_start: self.nullifier_subtree_start,
            nullifier_subtree_path: self.nullifier_subtree_path.clone(),
        };
        w.check_dimensions()?;
        Ok(w)
    }
}

impl SlotJson {
    fn to_slot(&self, s: usize) -> Result<SlotWitness, BatchFileError> {
        let ak = EdwardsAffine::new_unchecked(self.ak.x, self.ak.y);
        if !ak.is_on_curve() {
            return Err(BatchFileError::Witness(format!(
                "slot {s}: ak is not a Baby Jubjub point"
            )));
        }
        let sig_bytes: [u8; SIGNATURE_BYTES] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                BatchFileError::Witness(format!(
                    "slot {s}: signature is not {} hex digits",
                    2 * SIGNATURE_BYTES
                ))
            })?;
        let signature = Signature::from_bytes(&sig_bytes)
            .map_err(|e| BatchFileError::Witness(format!("slot {s}: signature: {e}")))?;
        Ok(SlotWitness {
            enabled: self.enabled,
            ak,
            nk: self.nk,
            inputs: self.inputs.clone().map(|i| InputWitness {
                value: i.value,
                rho: i.rho,
                r: i.r,
                position: i.position,
                path: MerklePath { siblings: i.path },
            }),
            outputs: self.outputs.map(|o| OutputWitness {
                addr: o.addr,
                value: o.value,
                r: o.r,
            }),
            public_in: self.public_in,
            public_out: self.public_out,
            fee: self.fee,
            dest: self.dest,
            deposit_ref: self.deposit_ref,
            ciphertext_hash: self.ciphertext_hash,
            signature,
            insertions: self.insertions.clone().map(|ins| InsertionWitness {
                location: match ins.location {
                    LocationJson::Tree(i) => LowLeafLocation::Tree(i),
                    LocationJson::Pending(j) => LowLeafLocation::Pending(j),
                },
                low_leaf: NullifierLeaf {
                    value: ins.low_leaf.value,
                    next_index: ins.low_leaf.next_index,
                    next_value: ins.low_leaf.next_value,
                },
                path: MerklePath { siblings: ins.path },
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::RollupState;

    fn empty_batch(shape: BatchShape, n: u64) -> BuiltBatch {
        let mut state = RollupState::genesis(shape.depth);
        super::super::build_batch(&mut state, shape, n, &[]).unwrap()
    }

    #[test]
    fn round_trip_and_checks() {
        let shape = BatchShape::new(2, 8).unwrap();
        let built = empty_batch(shape, 3);
        let file = BatchFile::from_built(&built, true).unwrap();
        let json = file.to_json();
        let back = BatchFile::from_json(&json).unwrap();
        assert_eq!(back, file);
        let public = back.public_batch().unwrap();
        assert_eq!(public.public_inputs, built.public_inputs);
        assert_eq!(public.batch_number, 3);
        assert_eq!(back.witness().unwrap(), built.witness);

        // Unknown fields, at the top and inside the witness, are refused.
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["extra"] = 1.into();
        assert!(BatchFile::from_json(&v.to_string()).is_err());
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["witness"]["slots"][0]["extra"] = 1.into();
        assert!(BatchFile::from_json(&v.to_string()).is_err());

        // A stated batch_hash that is not the transfers' hash is refused.
        let mut bad = file.clone();
        bad.batch_hash += Fr::from(1u64);
        assert!(matches!(
            bad.public_batch(),
            Err(BatchFileError::BatchHashMismatch { .. })
        ));
        let mut bad = file.clone();
        bad.version = 1;
        assert!(matches!(
            bad.public_batch(),
            Err(BatchFileError::Version { found: 1 })
        ));

        // A short path is refused before synthesis could panic on it.
        let mut bad = file.clone();
        bad.witness.as_mut().unwrap().slots[1].inputs[0].path.pop();
        assert!(matches!(
            bad.witness(),
            Err(BatchFileError::Batch(BatchError::Witness(_)))
        ));
        // A subtree path of the wrong parity (2B = 4 leaves: no pair) is refused too.
        let mut bad = file.clone();
        bad.witness.as_mut().unwrap().note_subtree_path.pair = Some([Fr::from(1u64); 2]);
        assert!(matches!(
            bad.witness(),
            Err(BatchFileError::Batch(BatchError::Witness(_)))
        ));
        let mut bad = file.clone();
        bad.witness.as_mut().unwrap().slots.pop();
        assert!(bad.witness().is_err());
        let mut bad = file.clone();
        bad.witness.as_mut().unwrap().slots[0].signature.pop();
        assert!(matches!(bad.witness(), Err(BatchFileError::Witness(_))));
        let mut bad = file;
        bad.witness.as_mut().unwrap().slots[0].ak.x += Fr::from(1u64);
        assert!(matches!(bad.witness(), Err(BatchFileError::Witness(_))));
        let public_only = BatchFile::from_built(&built, false).unwrap();
        assert!(!public_only.to_json().contains("witness"));
        assert!(matches!(
            public_only.witness(),
            Err(BatchFileError::NoWitness)
        ));
    }
}
