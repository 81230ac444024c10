//! The property each decoder keeps on arbitrary bytes. Every function takes the raw input,
//! runs the decoder the way its caller does (the API's two-step body parse, the CLI's loaders,
//! the anchor read-back), and panics only when the decoder panics or breaks its contract:
//! an accepted input must re-encode to itself (byte for byte where the format is canonical:
//! proofs, payloads, scripts, transactions, verifying-key files; to an equal value where it is
//! not: JSON, hex), and two entry points to the same decoder must agree.

use std::path::Path;
use std::sync::OnceLock;

use ark_bn254::Fr;
use ark_serialize::{CanonicalSerialize, Compress, Validate};
use bitcoin::consensus::encode::{deserialize, deserialize_hex, serialize, serialize_hex};
use bitcoin::hashes::Hash;
use bitcoin::script::Script;
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxOut, Txid};
use veil_bitcoin::envelope::{leaf_script, parse_leaf_script};
use veil_bitcoin::payload::compressed_proof_bytes;
use veil_bitcoin::payload::AnchorPayloadAny;
use veil_bitcoin::tx::check_standard;
use veil_bitcoin::{AnchorPayload, PrevOut};
use veil_circuits::batch::file::BatchFile;
use veil_circuits::batch::file::WitnessJson;
use veil_circuits::batch::BatchShape;
use veil_circuits::field;
use veil_circuits::transfer::Transfer;
use veil_prover::keys::{self, KeyHeader, HEADER_LEN};
use veil_prover::proof::{
    proof_from_bytes, proof_from_hex, proof_to_bytes, proof_to_hex, ProofFile,
};
use veil_verifier::da::AnchorData;
use veil_wire::{parse_field, TransferRequest};

use super::Target;

/// Whether `s` is a snake_case error code (`bad_hex`, `value_out_of_range`).
pub fn is_snake_case(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The shapes and this build's shape hashes the key-file decoders check against: the
/// committed verifying key is B2-D8, the seeded proving keys B1-D8.
pub struct KeyContext {
    /// Shape of the verifying-key seeds.
    pub vk_shape: BatchShape,
    /// [`keys::shape_hash`] of `vk_shape`.
    pub vk_hash: [u8; 32],
    /// Shape of the proving-key seeds.
    pub pk_shape: BatchShape,
    /// [`keys::shape_hash`] of `pk_shape`.
    pub pk_hash: [u8; 32],
}

/// The key context, computed once per process (synthesises two small circuits).
pub fn key_context() -> &'static KeyContext {
    static CONTEXT: OnceLock<KeyContext> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        let vk_shape = BatchShape::new(2, 8).expect("B2-D8 is a shape");
        let pk_shape = BatchShape::new(1, 8).expect("B1-D8 is a shape");
        KeyContext {
            vk_shape,
            vk_hash: keys::shape_hash(vk_shape),
            pk_shape,
            pk_hash: keys::shape_hash(pk_shape),
        }
    })
}

/// Whether `target`'s decoder accepts `data` as a whole (seeds must be accepted, or the
/// mutations start from junk). [`Target::ApiRequest`] is decided by the API harness.
pub fn accepts(target: Target, data: &[u8]) -> bool {
    let text = std::str::from_utf8(data).ok();
    let path = Path::new(INPUT);
    match target {
        Target::TransferJson | Target::DepositJson => {
            serde_json::from_slice::<TransferRequest>(data)
                .is_ok_and(|req| Transfer::try_from(&req).is_ok())
        }
        Target::ApiRequest => unreachable!("the API harness decides"),
        Target::FieldHex => {
            text.is_some_and(|t| parse_field(t, "nullifier").is_ok())
                || <[u8; 32]>::try_from(data).is_ok_and(|b| field::from_bytes_be(&b).is_ok())
        }
        Target::BatchFile => {
            text.and_then(|t| BatchFile::from_json(t).ok())
                .is_some_and(|f| match f.witness {
                    Some(_) => f.circuit().is_ok(),
                    None => f.public_batch().is_ok(),
                })
        }
        Target::ProofFile => text
            .and_then(|t| ProofFile::from_json(t).ok())
            .is_some_and(|f| f.proof().is_ok()),
        Target::ProofBytes => {
            proof_from_bytes(data).is_ok() || text.is_some_and(|t| proof_from_hex(t).is_ok())
        }
        Target::VkFile => {
            let ctx = key_context();
            keys::verifying_key_from_bytes(path, data, ctx.vk_shape, &ctx.vk_hash).is_ok()
        }
        Target::PkFile => {
            let ctx = key_context();
            keys::proving_key_from_bytes(path, data, ctx.pk_shape, &ctx.pk_hash).is_ok()
        }
        Target::AnchorPayload => {
            AnchorPayloadAny::from_bytes(data).is_ok()
                || AnchorPayloadAny::from_script(Script::from_bytes(data)).is_ok()
        }
        Target::AnchorData => AnchorData::decode(data).is_ok(),
        Target::EnvelopeLeaf => parse_leaf_script(Script::from_bytes(data)).is_ok(),
        Target::AnchorTx => deserialize::<Transaction>(data)
            .ok()
            .or_else(|| text.and_then(|t| deserialize_hex::<Transaction>(t).ok()))
            .is_some_and(|tx| AnchorPayload::from_tx(&tx).is_ok()),
    }
}

/// Names the input in key-file errors.
const INPUT: &str = "fuzz-input.bin";

/// A `POST /v1/transfers` or `/v1/deposits` body, decoded as `api::submit` does: JSON syntax
/// (`bad_json`), then the request's shape (`invalid_body`), then [`Transfer::try_from`].
pub fn transfer_body(data: &[u8]) {
    let one_step = serde_json::from_slice::<TransferRequest>(data);
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        assert!(
            one_step.is_err(),
            "a request parsed from text that is not JSON"
        );
        return;
    };
    let req = match serde_json::from_value::<TransferRequest>(value) {
        Ok(req) => req,
        Err(_) => {
            assert!(
                one_step.is_err(),
                "the one-step parse accepts a body the API's two-step parse refuses"
            );
            return;
        }
    };
    // The two-step parse keeps the last of duplicate keys where the one-step parse refuses
    // them; whenever both accept, they agree.
    if let Ok(direct) = &one_step {
        assert_eq!(direct, &req, "one-step and two-step parses disagree");
    }
    match Transfer::try_from(&req) {
        Ok(transfer) => {
            // The canonical encoding of the transfer decodes to the same transfer and is a
            // fixed point.
            let canonical = TransferRequest::from(&transfer);
            let text = serde_json::to_vec(&canonical).expect("requests serialise");
            let back: TransferRequest =
                serde_json::from_slice(&text).expect("a canonical request parses");
            assert_eq!(back, canonical);
            let again = Transfer::try_from(&back).expect("a canonical request converts");
            assert_eq!(again, transfer, "a transfer does not survive re-encoding");
        }
        Err(e) => {
            assert!(is_snake_case(e.code()), "error code {:?}", e.code());
            assert!(!e.to_string().is_empty());
        }
    }
}

/// A hex field element as the API reads it (`GET /v1/nullifiers/{nf}` and every field element
/// of a request), and the first 32 bytes as a big-endian field element (anchor payload roots).
pub fn field_hex(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        match parse_field(text, "nullifier") {
            Ok(x) => {
                let hex = field::to_hex(&x);
                assert_eq!(parse_field(&hex, "nullifier"), Ok(x));
                // Same integer: optional prefix, any case, leading zeros.
                let digits = text.strip_prefix("0x").unwrap_or(text);
                assert_eq!(
                    hex[2..].trim_start_matches('0'),
                    digits.to_ascii_lowercase().trim_start_matches('0'),
                    "{text:?} decoded to {hex}"
                );
            }
            Err(e) => assert!(is_snake_case(e.code()), "error code {:?}", e.code()),
        }
        // The serde adapter of batch and proof files reads the same strings.
        let quoted = serde_json::to_string(text).expect("strings serialise");
        let mut de = serde_json::Deserializer::from_str(&quoted);
        let via_serde = field::serde_hex::deserialize(&mut de).ok();
        assert_eq!(via_serde, field::from_hex(text).ok());
    }
    if let Some(bytes) = data.get(..32) {
        let bytes: [u8; 32] = bytes.try_into().expect("32 bytes");
        if let Ok(x) = field::from_bytes_be(&bytes) {
            assert_eq!(
                field::to_bytes_be(&x),
                bytes,
                "non-canonical bytes accepted"
            );
        }
    }
}

/// A batch file as `veil verify` and `veil prove` load it: parse, then the public part's
/// checks, the witness's checks and the circuit (not synthesised).
pub fn batch_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = BatchFile::from_json(text) else {
        return;
    };
    let back = BatchFile::from_json(&file.to_json()).expect("a written batch file parses");
    assert_eq!(back, file, "a batch file does not survive re-encoding");
    let public = file.public_batch();
    let witness = file.witness();
    let circuit = file.circuit();
    assert_eq!(
        circuit.is_ok(),
        public.is_ok() && witness.is_ok(),
        "circuit() disagrees with public_batch() and witness()"
    );
    if let Ok(w) = &witness {
        // The decoded witness is exactly the file's.
        assert_eq!(Some(WitnessJson::from(w)), file.witness);
        assert_eq!(w.shape, file.shape().expect("a loaded witness has a shape"));
    }
    if let (Ok(circuit), Ok(public)) = (circuit, public) {
        assert_eq!(circuit.public_inputs, public.public_inputs);
    }
}

/// A proof file as `veil verify` loads it, and the proof it carries.
pub fn proof_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = ProofFile::from_json(text) else {
        return;
    };
    let back = ProofFile::from_json(&file.to_json()).expect("a written proof file parses");
    assert_eq!(back, file, "a proof file does not survive re-encoding");
    if let Ok(proof) = file.proof() {
        let digits = file.proof.strip_prefix("0x").unwrap_or(&file.proof);
        assert_eq!(
            proof_to_hex(&proof),
            digits.to_ascii_lowercase(),
            "the proof's hex is not its canonical encoding"
        );
    }
    let _ = BatchShape::new(file.batch_size, file.depth);
}

/// A 128-byte compressed proof (as the node stores it and the anchor commits to it), and the
/// same bytes read as hex (a proof file's or `GET /v1/batches/{n}`'s `proof`).
pub fn proof_bytes(data: &[u8]) {
    if let Ok(proof) = proof_from_bytes(data) {
        assert_eq!(
            proof_to_bytes(&proof).as_slice(),
            data,
            "non-canonical proof bytes accepted"
        );
        assert_eq!(compressed_proof_bytes(&proof), proof_to_bytes(&proof));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(proof) = proof_from_hex(text) {
            let digits = text.strip_prefix("0x").unwrap_or(text);
            let bytes = hex::decode(digits).expect("accepted hex decodes");
            assert_eq!(
                proof_to_bytes(&proof).as_slice(),
                bytes,
                "non-canonical proof hex accepted"
            );
        }
    }
}

/// A verifying-key file as `veil verify` (`load_verifying_key`) and the prover
/// (`read_verifying_key`) load it, its header, and the bare key decoder on the bytes after the
/// header. An accepted file must be exactly `header || compressed key`: its SHA-256 is the
/// key's identity, so one key must have one file.
pub fn vk_file(ctx: &KeyContext, data: &[u8]) {
    let path = Path::new(INPUT);
    if let Ok(header) = KeyHeader::parse(path, data) {
        assert_eq!(header.to_bytes().as_slice(), &data[..HEADER_LEN]);
    }
    let loaded = keys::load_verifying_key_bytes(path, data, ctx.vk_shape);
    let read = keys::verifying_key_from_bytes(path, data, ctx.vk_shape, &ctx.vk_hash);
    if let Ok(l) = &loaded {
        assert_eq!(
            keys::key_file_bytes(l.header, &l.vk),
            data,
            "a verifying-key file that is not the canonical encoding of its key was accepted"
        );
        assert_eq!(l.sha256, keys::vk_sha256(data));
    }
    match (&loaded, &read) {
        (Ok(l), Ok(vk)) => assert_eq!(&l.vk, vk),
        (Err(_), Ok(_)) => panic!("read_verifying_key accepts what load_verifying_key refuses"),
        (Ok(l), Err(_)) => assert_ne!(
            l.header.shape_hash, ctx.vk_hash,
            "load accepts a file of this build's circuit that read refuses"
        ),
        (Err(_), Err(_)) => {}
    }
    if let Some(body) = data.get(HEADER_LEN..) {
        for validate in [Validate::Yes, Validate::No] {
            if let Ok(vk) = keys::decode_verifying_key(body, Compress::Yes, validate) {
                let mut again = Vec::new();
                vk.serialize_compressed(&mut again)
                    .expect("serialising into a Vec cannot fail");
                assert_eq!(again, body, "non-canonical verifying key accepted");
            }
        }
    }
}

/// A proving-key file as the prover loads it (`read_proving_key`), and the bare
/// [`keys::decode_proving_key`] on the bytes after the header. Proving keys are decoded
/// without point validation, so their encoding is not canonical (an infinity flag hides the
/// coordinates); an accepted key must decode again from its re-encoding.
pub fn pk_file(ctx: &KeyContext, data: &[u8]) {
    let path = Path::new(INPUT);
    if let Ok(pk) = keys::proving_key_from_bytes(path, data, ctx.pk_shape, &ctx.pk_hash) {
        let header = KeyHeader::parse(path, data).expect("an accepted file has a header");
        let again = keys::key_file_bytes(header, &pk);
        let back = keys::proving_key_from_bytes(path, &again, ctx.pk_shape, &ctx.pk_hash)
            .expect("a re-encoded proving key decodes");
        assert!(back == pk, "a proving key does not survive re-encoding");
    }
    if let Some(body) = data.get(HEADER_LEN..) {
        for compress in [Compress::No, Compress::Yes] {
            let _ = keys::decode_proving_key(body, compress);
        }
    }
}

/// Anchor data as read from an envelope: accepted only in its one canonical encoding, which
/// re-encodes to the same bytes.
pub fn anchor_data(data: &[u8]) {
    if let Ok(d) = AnchorData::decode(data) {
        assert_eq!(
            d.encode().as_deref(),
            Ok(data),
            "non-canonical anchor data accepted"
        );
        assert!(d.batches.len() as u64 <= u64::MAX - d.first_batch);
    }
}

/// An envelope leaf script as revealed in a witness: accepted only in its one layout for the
/// data length, which the builder reproduces.
pub fn envelope_leaf(data: &[u8]) {
    if let Ok((key, carried)) = parse_leaf_script(Script::from_bytes(data)) {
        assert_eq!(
            leaf_script(key, &carried).as_bytes(),
            data,
            "non-canonical envelope leaf accepted"
        );
    }
}

/// An anchor payload as read from an `OP_RETURN` (bare 77 or 79 bytes, and the whole script),
/// either version.
pub fn anchor_payload(data: &[u8]) {
    if let Ok(p) = AnchorPayloadAny::from_bytes(data) {
        assert_eq!(p.to_bytes(), data, "non-canonical payload accepted");
    }
    if let Ok(AnchorPayloadAny::V2(p)) = AnchorPayloadAny::from_script(Script::from_bytes(data)) {
        assert_eq!(
            p.script_pubkey().as_bytes(),
            data,
            "non-canonical script accepted"
        );
    }
    if let Ok(p) = AnchorPayload::from_bytes(data) {
        assert_eq!(
            p.to_bytes().as_slice(),
            data,
            "non-canonical payload accepted"
        );
        assert_eq!(AnchorPayload::from_script(&p.script_pubkey()), Ok(p));
        assert!(!p.commits_to(data, &Fr::from(1u64)));
    }
    if let Ok(p) = AnchorPayload::from_script(Script::from_bytes(data)) {
        assert_eq!(
            p.script_pubkey().as_bytes(),
            data,
            "non-canonical script accepted"
        );
    }
}

/// A transaction read back from Bitcoin Core (`getrawtransaction`, raw and hex) and checked as
/// an anchor the way `veil verify-chain` does: txid, the payload of its first output, its
/// single input's outpoint; and Core's relay policy for anchors on it.
pub fn anchor_tx(data: &[u8]) {
    if let Ok(tx) = deserialize::<Transaction>(data) {
        assert_eq!(serialize(&tx), data, "non-canonical transaction accepted");
        read_back(&tx);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(tx) = deserialize_hex::<Transaction>(text) {
            assert_eq!(serialize_hex(&tx), text.to_ascii_lowercase());
            read_back(&tx);
        }
    }
}

fn read_back(tx: &Transaction) {
    let txid = tx.compute_txid();
    let _ = tx.compute_wtxid();
    if let Ok(p) = AnchorPayload::from_tx(tx) {
        assert_eq!(tx.output[0].script_pubkey, p.script_pubkey());
    }
    let spends = match tx.input.as_slice() {
        [only] => only.previous_output,
        _ => OutPoint::new(Txid::all_zeros(), 0),
    };
    let prev = PrevOut {
        outpoint: spends,
        txout: TxOut {
            value: Amount::from_sat(100_000),
            script_pubkey: ScriptBuf::new(),
        },
    };
    let _ = check_standard(tx, &prev, Amount::from_sat(1_000));
    assert_eq!(tx.compute_txid(), txid);
}
