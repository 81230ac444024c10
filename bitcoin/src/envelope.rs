//! Taproot data envelopes (`docs/data-on-bitcoin.md`): a P2TR output whose only spending path is
//! one tapscript leaf that checks the operator's signature and carries data in a branch that
//! never executes:
//!
//! ```text
//! <operator x-only key, 32> OP_CHECKSIG OP_FALSE OP_IF "veil" <push> ... <push> OP_ENDIF
//! ```
//!
//! The data is split into pushes of at most [`MAX_PUSH`] bytes, each minimally encoded (direct
//! push up to 75 bytes, `OP_PUSHDATA1` up to 255, `OP_PUSHDATA2` above; a lone one-byte datum
//! `1..=16` or `0x81` is `OP_1..OP_16` or `OP_1NEGATE`). All pushes are full but the last, and a
//! last push of one byte after a full one is avoided by splitting the last 521 bytes as 519 + 2:
//! one push layout per data length, which [`parse_leaf_script`] enforces.
//!
//! The internal key is BIP 341's provably unspendable point `H` ([`NUMS_INTERNAL_KEY`]), so the
//! output can be spent only through the leaf, by the operator's signature, and spending it
//! reveals the data in the witness `[signature, leaf script, control block]`.

use bitcoin::hashes::Hash;
use bitcoin::key::{TweakedPublicKey, XOnlyPublicKey};
use bitcoin::opcodes::all::{
    OP_CHECKSIG, OP_ENDIF, OP_IF, OP_PUSHBYTES_0, OP_PUSHBYTES_32, OP_PUSHBYTES_4, OP_PUSHDATA1,
    OP_PUSHDATA2, OP_PUSHDATA4, OP_PUSHNUM_1, OP_PUSHNUM_16, OP_PUSHNUM_NEG1,
};
use bitcoin::secp256k1::{Message, Secp256k1};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::taproot::{self, ControlBlock, LeafVersion, TapLeafHash, TaprootBuilder};
use bitcoin::{Script, ScriptBuf, Transaction, TxOut, VarInt, Witness};

use super::operator::OperatorKey;

/// Tag pushed before the data, telling Veil envelopes apart from other inscriptions.
pub const ENVELOPE_TAG: [u8; 4] = *b"veil";
/// Largest push (consensus: `MAX_SCRIPT_ELEMENT_SIZE`, enforced even in unexecuted branches).
pub const MAX_PUSH: usize = 520;
/// BIP 341's `H`: the x coordinate of `lift_x(SHA-256(uncompressed G))`, a point with no known
/// discrete logarithm. As the internal key it rules out the key path.
pub const NUMS_INTERNAL_KEY: [u8; 32] = [
    0x50, 0x92, 0x9b, 0x74, 0xc1, 0xa0, 0x49, 0x54, 0xb7, 0x8b, 0x4b, 0x60, 0x35, 0xe9, 0x7a, 0x5e,
    0x07, 0x8a, 0x5a, 0x0f, 0x28, 0xec, 0x96, 0xd5, 0x47, 0xbf, 0xee, 0x9a, 0xce, 0x80, 0x3a, 0xc0,
];
/// Bytes of the leaf before the data: the key push (33), `OP_CHECKSIG`, `OP_FALSE`, `OP_IF` and
/// the tag push (5).
pub const LEAF_HEADER_LEN: usize = 33 + 3 + 1 + ENVELOPE_TAG.len();
/// Size of a control block for a one-leaf tree: leaf version and parity, then the internal key.
pub const CONTROL_BLOCK_LEN: usize = 33;
/// Largest envelope data one transaction can reveal while staying standard (400,000 weight
/// units). The tightest transaction is the anchor: its non-witness part is 185 bytes (version,
/// one input, `OP_RETURN` payload v2 output of 91 bytes, P2TR change of 43 bytes, lock time),
/// 740 WU; the segwit marker and flag 2 WU; the witness is the item count (1), the signature
/// (1 + 64), the leaf script (5-byte length + leaf) and the control block (1 + 33). That leaves
/// 399,153 bytes of leaf: a 42-byte frame and 399,111 bytes of pushes, which hold 763 full
/// pushes (523 bytes each) and one of 61 data bytes (62). A reveal transaction (66-byte
/// non-witness part) could hold 473 bytes more; one limit keeps the split simple.
pub const MAX_ENVELOPE_DATA: usize = 763 * MAX_PUSH + 61;

/// A leaf script, witness or control block that is not a Veil envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The leaf does not start with `<32-byte key> OP_CHECKSIG`.
    #[error("envelope leaf does not start with <32-byte key> OP_CHECKSIG")]
    NotKeyCheckSig,
    /// The 32 key bytes are not an x-only secp256k1 point.
    #[error("envelope key is not a valid x-only public key")]
    InvalidKey,
    /// The data is not inside `OP_FALSE OP_IF`, so it would be executed.
    #[error("envelope data is not inside OP_FALSE OP_IF (it would execute)")]
    Executed,
    /// The `"veil"` tag push is missing.
    #[error("envelope does not carry the \"veil\" tag")]
    Tag,
    /// An opcode other than a data push or the closing `OP_ENDIF` inside the envelope.
    #[error("unexpected opcode 0x{opcode:02x} at byte {at} of the envelope")]
    UnexpectedOpcode {
        /// Offset in the leaf script.
        at: usize,
        /// The opcode.
        opcode: u8,
    },
    /// A push that is not the minimal encoding of its data.
    #[error("non-minimal push at byte {at} of the envelope")]
    NonMinimalPush {
        /// Offset in the leaf script.
        at: usize,
    },
    /// A push of more than 520 bytes (invalid by consensus).
    #[error("push of {len} bytes at byte {at} exceeds {MAX_PUSH}")]
    PushTooLarge {
        /// Offset in the leaf script.
        at: usize,
        /// Length of the push.
        len: usize,
    },
    /// A push that runs past the end of the script.
    #[error("push at byte {at} runs past the end of the script")]
    TruncatedPush {
        /// Offset in the leaf script.
        at: usize,
    },
    /// No `OP_ENDIF` closes the envelope.
    #[error("envelope is not closed by OP_ENDIF")]
    Unterminated,
    /// Bytes after the closing `OP_ENDIF`.
    #[error("{count} bytes follow the envelope's OP_ENDIF")]
    Trailing {
        /// How many.
        count: usize,
    },
    /// The pushes are not the one split this encoder makes of the data.
    #[error("envelope pushes are not the canonical split of {len} data bytes")]
    NonCanonicalSplit {
        /// Data length.
        len: usize,
    },
    /// A script-path witness has exactly three items: signature, leaf, control block.
    #[error("witness has {items} items, an envelope spend has 3 (signature, leaf, control block)")]
    WitnessShape {
        /// Items found.
        items: usize,
    },
    /// The witness carries an annex.
    #[error("witness carries an annex")]
    Annex,
    /// The signature item is not 64 or 65 bytes.
    #[error("signature item is {len} bytes, expected 64 or 65")]
    SignatureLength {
        /// Its length.
        len: usize,
    },
    /// The control block does not decode.
    #[error("control block: {0}")]
    ControlBlock(String),
    /// The control block is for another leaf version than tapscript (0xc0).
    #[error("control block leaf version is not tapscript (0xc0)")]
    LeafVersion,
    /// The control block's internal key is not the NUMS point.
    #[error("control block internal key is not the NUMS point H")]
    InternalKey,
    /// The control block has a Merkle path (an envelope is a one-leaf tree).
    #[error("control block has a Merkle path of {depth} nodes, an envelope has none")]
    MerklePath {
        /// Path length.
        depth: usize,
    },
    /// The spent output is not P2TR.
    #[error("the spent output is not P2TR")]
    NotTaproot,
    /// The control block and leaf do not commit to the spent output's key.
    #[error("leaf and control block do not commit to the spent output's key")]
    Commitment,
}

/// An envelope over some data for the operator's key: its leaf, control block and output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    operator: XOnlyPublicKey,
    leaf: ScriptBuf,
    control_block: ControlBlock,
    output_key: TweakedPublicKey,
}

impl Envelope {
    /// The envelope carrying `data`, spendable by `operator`'s signature.
    pub fn new(operator: XOnlyPublicKey, data: &[u8]) -> Envelope {
        let leaf = leaf_script(operator, data);
        let secp = Secp256k1::verification_only();
        let spend_info = TaprootBuilder::new()
            .add_leaf(0, leaf.clone())
            .expect("a one-leaf tree at depth 0")
            .finalize(&secp, nums_key())
            .expect("a one-leaf tree is complete");
        let control_block = spend_info
            .control_block(&(leaf.clone(), LeafVersion::TapScript))
            .expect("the leaf is in the tree");
        Envelope {
            operator,
            leaf,
            control_block,
            output_key: spend_info.output_key(),
        }
    }

    /// The key whose signature spends the envelope.
    pub fn operator(&self) -> XOnlyPublicKey {
        self.operator
    }

    /// The tapscript leaf.
    pub fn leaf_script(&self) -> &Script {
        &self.leaf
    }

    /// The leaf's hash (what a script-path signature commits to).
    pub fn leaf_hash(&self) -> TapLeafHash {
        TapLeafHash::from_script(&self.leaf, LeafVersion::TapScript)
    }

    /// The control block proving the leaf is the output key's only script.
    pub fn control_block(&self) -> &ControlBlock {
        &self.control_block
    }

    /// The tweaked output key.
    pub fn output_key(&self) -> TweakedPublicKey {
        self.output_key
    }

    /// The P2TR output script (34 bytes).
    pub fn script_pubkey(&self) -> ScriptBuf {
        ScriptBuf::new_p2tr_tweaked(self.output_key)
    }

    /// The script-path witness `[signature, leaf script, control block]`.
    pub fn witness(&self, signature: &taproot::Signature) -> Witness {
        let mut w = Witness::new();
        w.push(signature.to_vec());
        w.push(self.leaf.as_bytes());
        w.push(self.control_block.serialize());
        w
    }

    /// Weight of that witness with a 64-byte (`SIGHASH_DEFAULT`) signature, including the item
    /// count: exact, since Schnorr signatures have a fixed size.
    pub fn witness_weight(&self) -> u64 {
        let leaf = self.leaf.len();
        (1 + 1 + 64 + VarInt(leaf as u64).size() + leaf + 1 + CONTROL_BLOCK_LEN) as u64
    }

    /// Signs input `index` of `tx`, which spends this envelope (`prevouts` are all the
    /// transaction's spent outputs, in input order), with `key` (the envelope's operator) by the
    /// script path, `SIGHASH_DEFAULT`, and sets its witness.
    pub(crate) fn sign(
        &self,
        key: &OperatorKey,
        tx: &mut Transaction,
        index: usize,
        prevouts: &[TxOut],
    ) -> Result<(), bitcoin::sighash::TaprootError> {
        let sighash = SighashCache::new(&*tx).taproot_script_spend_signature_hash(
            index,
            &Prevouts::All(prevouts),
            self.leaf_hash(),
            TapSighashType::Default,
        )?;
        let msg = Message::from_digest(sighash.to_byte_array());
        let signature = key.secp().sign_schnorr_no_aux_rand(&msg, key.keypair());
        tx.input[index].witness = self.witness(&taproot::Signature {
            signature,
            sighash_type: TapSighashType::Default,
        });
        Ok(())
    }
}

/// The NUMS internal key as a point.
pub fn nums_key() -> XOnlyPublicKey {
    XOnlyPublicKey::from_slice(&NUMS_INTERNAL_KEY).expect("H is on the curve")
}

/// Lengths of the pushes `data_len` bytes are split into (see the module doc).
fn push_lengths(data_len: usize) -> Vec<usize> {
    let full = data_len / MAX_PUSH;
    let rest = data_len % MAX_PUSH;
    let mut out = vec![MAX_PUSH; full];
    match rest {
        0 => {}
        1 if full > 0 => {
            out[full - 1] = MAX_PUSH - 1;
            out.push(2);
        }
        n => out.push(n),
    }
    out
}

/// Bytes a push of `len` bytes takes (a one-byte small number takes one byte less).
fn push_size(len: usize) -> usize {
    match len {
        0..=75 => 1 + len,
        76..=255 => 2 + len,
        _ => 3 + len,
    }
}

/// Appends the minimal push of `chunk` (at most [`MAX_PUSH`] bytes).
fn push_minimal(out: &mut Vec<u8>, chunk: &[u8]) {
    match chunk {
        [] => out.push(OP_PUSHBYTES_0.to_u8()),
        [b @ 1..=16] => out.push(OP_PUSHNUM_1.to_u8() + b - 1),
        [0x81] => out.push(OP_PUSHNUM_NEG1.to_u8()),
        _ => {
            let n = chunk.len();
            if n <= 75 {
                out.push(n as u8);
            } else if n <= 255 {
                out.extend_from_slice(&[OP_PUSHDATA1.to_u8(), n as u8]);
            } else {
                out.push(OP_PUSHDATA2.to_u8());
                out.extend_from_slice(&(n as u16).to_le_bytes());
            }
            out.extend_from_slice(chunk);
        }
    }
}

/// Length of the leaf script carrying `data_len` bytes: exact, except that one byte of data that
/// is a small number (`1..=16`, `0x81`) encodes in one byte less.
pub fn leaf_script_len(data_len: usize) -> usize {
    LEAF_HEADER_LEN
        + push_lengths(data_len)
            .into_iter()
            .map(push_size)
            .sum::<usize>()
        + 1
}

/// The leaf script `<operator> OP_CHECKSIG OP_FALSE OP_IF "veil" <pushes> OP_ENDIF`.
pub fn leaf_script(operator: XOnlyPublicKey, data: &[u8]) -> ScriptBuf {
    let mut out = Vec::with_capacity(leaf_script_len(data.len()));
    out.push(OP_PUSHBYTES_32.to_u8());
    out.extend_from_slice(&operator.serialize());
    out.extend_from_slice(&[
        OP_CHECKSIG.to_u8(),
        OP_PUSHBYTES_0.to_u8(),
        OP_IF.to_u8(),
        OP_PUSHBYTES_4.to_u8(),
    ]);
    out.extend_from_slice(&ENVELOPE_TAG);
    let mut at = 0;
    for len in push_lengths(data.len()) {
        push_minimal(&mut out, &data[at..at + len]);
        at += len;
    }
    out.push(OP_ENDIF.to_u8());
    ScriptBuf::from_bytes(out)
}

/// The operator key and data of an envelope leaf, checking that it is exactly what
/// [`leaf_script`] makes of them.
pub fn parse_leaf_script(script: &Script) -> Result<(XOnlyPublicKey, Vec<u8>), EnvelopeError> {
    let b = script.as_bytes();
    if b.len() < 34 || b[0] != OP_PUSHBYTES_32.to_u8() || b[33] != OP_CHECKSIG.to_u8() {
        return Err(EnvelopeError::NotKeyCheckSig);
    }
    let operator = XOnlyPublicKey::from_slice(&b[1..33]).map_err(|_| EnvelopeError::InvalidKey)?;
    if b.get(34..36) != Some(&[OP_PUSHBYTES_0.to_u8(), OP_IF.to_u8()]) {
        return Err(EnvelopeError::Executed);
    }
    if b.get(36) != Some(&OP_PUSHBYTES_4.to_u8()) || b.get(37..41) != Some(&ENVELOPE_TAG[..]) {
        return Err(EnvelopeError::Tag);
    }
    let mut data = Vec::with_capacity(b.len());
    let mut lengths = Vec::new();
    let mut at = LEAF_HEADER_LEN;
    loop {
        let Some(&op) = b.get(at) else {
            return Err(EnvelopeError::Unterminated);
        };
        let (start, len) = match op {
            _ if op == OP_ENDIF.to_u8() => break,
            0x00..=0x4b => (at + 1, usize::from(op)),
            _ if op == OP_PUSHDATA1.to_u8() => {
                let n = *b.get(at + 1).ok_or(EnvelopeError::TruncatedPush { at })?;
                if n <= 75 {
                    return Err(EnvelopeError::NonMinimalPush { at });
                }
                (at + 2, usize::from(n))
            }
            _ if op == OP_PUSHDATA2.to_u8() => {
                let n = b
                    .get(at + 1..at + 3)
                    .ok_or(EnvelopeError::TruncatedPush { at })?;
                let n = usize::from(u16::from_le_bytes([n[0], n[1]]));
                if n > MAX_PUSH {
                    return Err(EnvelopeError::PushTooLarge { at, len: n });
                }
                if n <= 255 {
                    return Err(EnvelopeError::NonMinimalPush { at });
                }
                (at + 3, n)
            }
            _ if op == OP_PUSHDATA4.to_u8() => {
                let n = b
                    .get(at + 1..at + 5)
                    .ok_or(EnvelopeError::TruncatedPush { at })?;
                let n = u32::from_le_bytes([n[0], n[1], n[2], n[3]]) as usize;
                if n > MAX_PUSH {
                    return Err(EnvelopeError::PushTooLarge { at, len: n });
                }
                return Err(EnvelopeError::NonMinimalPush { at });
            }
            _ if op == OP_PUSHNUM_NEG1.to_u8() => {
                data.push(0x81);
                lengths.push(1);
                at += 1;
                continue;
            }
            _ if (OP_PUSHNUM_1.to_u8()..=OP_PUSHNUM_16.to_u8()).contains(&op) => {
                data.push(op - OP_PUSHNUM_1.to_u8() + 1);
                lengths.push(1);
                at += 1;
                continue;
            }
            _ => return Err(EnvelopeError::UnexpectedOpcode { at, opcode: op }),
        };
        let chunk = b
            .get(start..start + len)
            .ok_or(EnvelopeError::TruncatedPush { at })?;
        if matches!(chunk, [1..=16] | [0x81]) {
            return Err(EnvelopeError::NonMinimalPush { at });
        }
        data.extend_from_slice(chunk);
        lengths.push(len);
        at = start + len;
    }
    let trailing = b.len() - at - 1;
    if trailing != 0 {
        return Err(EnvelopeError::Trailing { count: trailing });
    }
    if lengths != push_lengths(data.len()) {
        return Err(EnvelopeError::NonCanonicalSplit { len: data.len() });
    }
    Ok((operator, data))
}

/// The operator key and data revealed by a script-path witness `[signature, leaf, control
/// block]` spending an envelope. The control block must be for a one-leaf tapscript tree with
/// the NUMS internal key; given the spent output's script, it must also commit to the leaf for
/// that output's key. The signature is not checked (that needs the spending transaction; a
/// confirmed spend was checked by consensus).
pub fn data_from_witness(
    witness: &Witness,
    spent_script: Option<&Script>,
) -> Result<(XOnlyPublicKey, Vec<u8>), EnvelopeError> {
    if witness.len() >= 2 && witness.last().and_then(|l| l.first()) == Some(&0x50) {
        return Err(EnvelopeError::Annex);
    }
    if witness.len() != 3 {
        return Err(EnvelopeError::WitnessShape {
            items: witness.len(),
        });
    }
    let sig_len = witness[0].len();
    if sig_len != 64 && sig_len != 65 {
        return Err(EnvelopeError::SignatureLength { len: sig_len });
    }
    let leaf = Script::from_bytes(&witness[1]);
    let cb = ControlBlock::decode(&witness[2])
        .map_err(|e| EnvelopeError::ControlBlock(e.to_string()))?;
    if cb.leaf_version != LeafVersion::TapScript {
        return Err(EnvelopeError::LeafVersion);
    }
    if cb.internal_key != nums_key() {
        return Err(EnvelopeError::InternalKey);
    }
    if !cb.merkle_branch.is_empty() {
        return Err(EnvelopeError::MerklePath {
            depth: cb.merkle_branch.len(),
        });
    }
    let parsed = parse_leaf_script(leaf)?;
    if let Some(spk) = spent_script {
        if !spk.is_p2tr() {
            return Err(EnvelopeError::NotTaproot);
        }
        let output_key = XOnlyPublicKey::from_slice(&spk.as_bytes()[2..])
            .map_err(|_| EnvelopeError::NotTaproot)?;
        if !cb.verify_taproot_commitment(&Secp256k1::verification_only(), output_key, leaf) {
            return Err(EnvelopeError::Commitment);
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests;
