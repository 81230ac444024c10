//! Veil's HTTP wire types, shared by the node and its clients (the wallet), so a client does not
//! pull in the node: the JSON wire format of `POST /v1/transfers` and `POST /v1/deposits` bodies (DESIGN §9), and its
//! strict conversion into a [`Transfer`] with one typed error per problem.
//!
//! Field elements are `0x`-hex canonical integers below the BN254 scalar modulus; amounts and
//! positions are JSON integers below 2^64. Amounts are read as [`serde_json::Number`] rather than
//! `u64` so that an out-of-range number (`18446744073709551616`) is reported as
//! [`WireError::ValueOutOfRange`] naming the field instead of a generic parse error, and a
//! number written with a fraction or an exponent (`100.0`, `1e2`) as [`WireError::NotAnInteger`].
//!
//! A JSON object that repeats a key is refused before any of this ([`first_duplicate_key`]):
//! parsers disagree on which of the values counts (serde_json keeps the last).

use ark_bn254::Fr;
use ark_ed_on_bn254::EdwardsAffine;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Number;
use sha2::{Digest, Sha256};
use veil_circuits::eddsa::{PublicKey, Signature, SignatureError, SIGNATURE_BYTES};
use veil_circuits::field::{self, FieldError};
use veil_circuits::keys::ProofGenerationKey;
use veil_circuits::note::{
    ciphertext_hash, is_note_ciphertext_len, Note, NOTE_CIPHERTEXT_LEN_COMPACT,
    NOTE_CIPHERTEXT_LEN_MEMO,
};
use veil_circuits::transfer::{SpentNote, Transfer, TransferPublic};

/// Hex SHA-256 of a transfer's public data.
pub type TransferId = String;

/// The id of a transfer: hex SHA-256 over its nine public field elements, each 32 bytes
/// big-endian, in batch-hash order. Two submissions of the same transfer share it.
pub fn transfer_id(t: &Transfer) -> TransferId {
    public_transfer_id(&t.public)
}

/// [`transfer_id`] from the public data alone (what Bitcoin carries for a transfer).
pub fn public_transfer_id(public: &TransferPublic) -> TransferId {
    let mut h = Sha256::new();
    for f in public.fields() {
        h.update(field::to_bytes_be(&f));
    }
    hex::encode(h.finalize())
}

/// Body of `POST /v1/transfers` (and `POST /v1/deposits`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// Nullifiers of the two inputs (hex field elements).
    pub nullifiers: [String; 2],
    /// Commitments of the two outputs (hex field elements).
    pub commitments: [String; 2],
    /// Deposit amount (operator only).
    pub public_in: Number,
    /// Withdrawal amount.
    pub public_out: Number,
    /// Fee.
    pub fee: Number,
    /// Withdrawal destination hash, `0x0` if none.
    pub dest: String,
    /// Deposit outpoint hash, `0x0` if none.
    pub deposit_ref: String,
    /// Spend-authorisation key `A`.
    pub ak: PointJson,
    /// Nullifier key.
    pub nk: String,
    /// The two inputs.
    pub inputs: [InputJson; 2],
    /// The two output notes.
    pub outputs: [NoteJson; 2],
    /// EdDSA signature: 128 hex digits (compressed `R` then `S` little-endian).
    pub signature: String,
    /// `epk || ciphertext` per output, hex: both `NOTE_CIPHERTEXT_LEN_COMPACT` (89) bytes, or both
    /// `NOTE_CIPHERTEXT_LEN_MEMO` (121).
    pub ciphertexts: [String; 2],
    /// A withdrawal's scriptPubKey, hex: `dest` is its hash, and a node on Bitcoin needs it to
    /// pay the withdrawal in the anchor (docs/bridge.md). Absent for other transfers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawal_script: Option<String>,
}

/// An affine Baby Jubjub point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointJson {
    /// x coordinate (hex field element).
    pub x: String,
    /// y coordinate (hex field element).
    pub y: String,
}

/// A note opening.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteJson {
    /// Owner tag.
    pub addr: String,
    /// Value (integer below 2^64).
    pub value: Number,
    /// `rho`.
    pub rho: String,
    /// `r`.
    pub r: String,
}

/// An input note with its tree position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputJson {
    /// The note.
    pub note: NoteJson,
    /// Leaf position (integer below 2^64).
    pub position: Number,
}

/// Why a request body does not describe a transfer. `field` names the offending JSON field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not hex, or the wrong number of hex digits.
    #[error("{field}: not valid hex of the expected length")]
    BadHex {
        /// JSON field.
        field: String,
    },
    /// A field element `>=` the BN254 scalar modulus.
    #[error("{field}: field element is not canonical (>= the BN254 scalar modulus)")]
    NonCanonicalField {
        /// JSON field.
        field: String,
    },
    /// An integer outside `0..2^64`.
    #[error("{field}: value must be an integer in 0..2^64")]
    ValueOutOfRange {
        /// JSON field.
        field: String,
    },
    /// A number with a fractional part or exponent that is not an integer.
    #[error("{field}: value must be an integer")]
    NotAnInteger {
        /// JSON field.
        field: String,
    },
    /// `ak` is not a point on the curve.
    #[error("ak is not a point on the Baby Jubjub curve")]
    BadPoint,
    /// The signature's bytes do not encode a signature.
    #[error("signature is malformed: {0}")]
    MalformedSignature(SignatureError),
    /// A ciphertext of neither note ciphertext length.
    #[error(
        "ciphertexts[{index}]: {len} bytes, expected {NOTE_CIPHERTEXT_LEN_COMPACT} (no memo) \
         or {NOTE_CIPHERTEXT_LEN_MEMO} (with a memo)"
    )]
    BadCiphertext {
        /// Output index.
        index: usize,
        /// Length given.
        len: usize,
    },
    /// The two ciphertexts have different lengths (one memo, one not).
    #[error(
        "ciphertexts are {0} and {1} bytes: both outputs must carry a memo ({NOTE_CIPHERTEXT_LEN_MEMO} \
         bytes each) or neither ({NOTE_CIPHERTEXT_LEN_COMPACT} bytes each)"
    )]
    MixedCiphertextLengths(usize, usize),
}

impl WireError {
    /// The API error code.
    pub fn code(&self) -> &'static str {
        match self {
            WireError::BadHex { .. } => "bad_hex",
            WireError::NonCanonicalField { .. } => "non_canonical_field",
            WireError::ValueOutOfRange { .. } => "value_out_of_range",
            WireError::NotAnInteger { .. } => "not_an_integer",
            WireError::BadPoint => "bad_point",
            WireError::MalformedSignature(_) => "malformed_signature",
            WireError::BadCiphertext { .. } | WireError::MixedCiphertextLengths(..) => {
                "bad_ciphertext"
            }
        }
    }
}

/// Parses a canonical hex field element.
pub fn parse_field(s: &str, name: &str) -> Result<Fr, WireError> {
    field::from_hex(s).map_err(|e| match e {
        FieldError::BadHex => WireError::BadHex {
            field: name.to_owned(),
        },
        FieldError::NonCanonical => WireError::NonCanonicalField {
            field: name.to_owned(),
        },
    })
}

/// Parses a JSON integer in `0..2^64`.
///
/// serde_json reads an integer literal as a `u64` when it fits, else as an `i64` when negative
/// and it fits, else as an `f64`; a literal with a fraction or an exponent is always an `f64`.
/// So an `f64` inside `i64::MIN..2^64` was written as `100.0` or `1e2`: not an integer, whatever
/// its value. Outside that range it may have been an integer literal too large for 64 bits, and
/// is reported as out of range when integral.
pub fn parse_u64(n: &Number, name: &str) -> Result<u64, WireError> {
    if let Some(v) = n.as_u64() {
        return Ok(v);
    }
    let out_of_range = || WireError::ValueOutOfRange {
        field: name.to_owned(),
    };
    let not_an_integer = || WireError::NotAnInteger {
        field: name.to_owned(),
    };
    if n.is_i64() {
        return Err(out_of_range()); // negative
    }
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    const MIN_I64: f64 = -9_223_372_036_854_775_808.0;
    match n.as_f64() {
        Some(f) if (MIN_I64..TWO_POW_64).contains(&f) => Err(not_an_integer()),
        Some(f) if f.is_finite() && f.fract() == 0.0 => Err(out_of_range()),
        _ => Err(not_an_integer()),
    }
}

/// A JSON object key given twice; `path` locates the object (`$` is the whole body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("duplicate key {key:?} in {path}")]
pub struct DuplicateKey {
    /// The repeated key (unescaped).
    pub key: String,
    /// Where the object is: `$`, `$.inputs[0].note`, ...
    pub path: String,
}

/// The first object key repeated in the JSON text `json`, at any depth; `None` if no key is
/// repeated or if `json` is not JSON (which the JSON parse itself reports).
pub fn first_duplicate_key(json: &[u8]) -> Option<DuplicateKey> {
    let found = std::cell::RefCell::new(None);
    let seed = UniqueKeys {
        path: "$".to_owned(),
        found: &found,
    };
    let mut de = serde_json::Deserializer::from_slice(json);
    let _ = seed.deserialize(&mut de);
    found.into_inner()
}

/// Walks one JSON value, stopping at the first object that repeats a key.
struct UniqueKeys<'a> {
    path: String,
    found: &'a std::cell::RefCell<Option<DuplicateKey>>,
}

impl<'de> DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let element = UniqueKeys {
                path: format!("{}[{i}]", self.path),
                found: self.found,
            };
            if seq.next_element_seed(element)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = format!("{}.{key}", self.path);
            if !seen.insert(key.clone()) {
                *self.found.borrow_mut() = Some(DuplicateKey {
                    key,
                    path: self.path,
                });
                return Err(serde::de::Error::custom("duplicate key"));
            }
            map.next_value_seed(UniqueKeys {
                path,
                found: self.found,
            })?;
        }
        Ok(())
    }
}

fn parse_bytes(s: &str, name: &str) -> Result<Vec<u8>, WireError> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    hex::decode(digits).map_err(|_| WireError::BadHex {
        field: name.to_owned(),
    })
}

fn parse_note(n: &NoteJson, name: &str) -> Result<Note, WireError> {
    Ok(Note {
        addr: parse_field(&n.addr, &format!("{name}.addr"))?,
        value: parse_u64(&n.value, &format!("{name}.value"))?,
        rho: parse_field(&n.rho, &format!("{name}.rho"))?,
        r: parse_field(&n.r, &format!("{name}.r"))?,
    })
}

fn note_json(n: &Note) -> NoteJson {
    NoteJson {
        addr: field::to_hex(&n.addr),
        value: n.value.into(),
        rho: field::to_hex(&n.rho),
        r: field::to_hex(&n.r),
    }
}

fn pair<T>(f: impl Fn(usize) -> Result<T, WireError>) -> Result<[T; 2], WireError> {
    Ok([f(0)?, f(1)?])
}

impl TryFrom<TransferRequest> for Transfer {
    type Error = WireError;

    fn try_from(req: TransferRequest) -> Result<Self, Self::Error> {
        Transfer::try_from(&req)
    }
}

impl TryFrom<&TransferRequest> for Transfer {
    type Error = WireError;

    fn try_from(req: &TransferRequest) -> Result<Self, Self::Error> {
        let x = parse_field(&req.ak.x, "ak.x")?;
        let y = parse_field(&req.ak.y, "ak.y")?;
        let ak = EdwardsAffine::new_unchecked(x, y);
        if !ak.is_on_curve() {
            return Err(WireError::BadPoint);
        }
        let nk = parse_field(&req.nk, "nk")?;
        let inputs = pair(|i| {
            let input = &req.inputs[i];
            Ok(SpentNote {
                note: parse_note(&input.note, &format!("inputs[{i}].note"))?,
                position: parse_u64(&input.position, &format!("inputs[{i}].position"))?,
            })
        })?;
        let outputs = pair(|j| parse_note(&req.outputs[j], &format!("outputs[{j}]")))?;
        let sig_bytes = parse_bytes(&req.signature, "signature")?;
        let sig_bytes: [u8; SIGNATURE_BYTES] =
            sig_bytes.try_into().map_err(|_| WireError::BadHex {
                field: "signature".to_owned(),
            })?;
        let signature = Signature::from_bytes(&sig_bytes).map_err(WireError::MalformedSignature)?;
        let ciphertexts = pair(|j| {
            let ct = parse_bytes(&req.ciphertexts[j], &format!("ciphertexts[{j}]"))?;
            if !is_note_ciphertext_len(ct.len()) {
                return Err(WireError::BadCiphertext {
                    index: j,
                    len: ct.len(),
                });
            }
            Ok(ct)
        })?;
        if ciphertexts[0].len() != ciphertexts[1].len() {
            return Err(WireError::MixedCiphertextLengths(
                ciphertexts[0].len(),
                ciphertexts[1].len(),
            ));
        }
        let public = TransferPublic {
            nullifiers: pair(|i| parse_field(&req.nullifiers[i], &format!("nullifiers[{i}]")))?,
            commitments: pair(|i| parse_field(&req.commitments[i], &format!("commitments[{i}]")))?,
            public_in: parse_u64(&req.public_in, "public_in")?,
            public_out: parse_u64(&req.public_out, "public_out")?,
            fee: parse_u64(&req.fee, "fee")?,
            dest: parse_field(&req.dest, "dest")?,
            deposit_ref: parse_field(&req.deposit_ref, "deposit_ref")?,
            // Not sent: derived from the ciphertexts, so the signature covers exactly them.
            ciphertext_hash: ciphertext_hash(&ciphertexts),
        };
        Ok(Transfer {
            public,
            pgk: ProofGenerationKey {
                ak: PublicKey(ak),
                nk,
            },
            inputs,
            outputs,
            signature,
            ciphertexts,
        })
    }
}

impl From<&Transfer> for TransferRequest {
    fn from(t: &Transfer) -> Self {
        let p = &t.public;
        TransferRequest {
            nullifiers: p.nullifiers.map(|x| field::to_hex(&x)),
            commitments: p.commitments.map(|x| field::to_hex(&x)),
            public_in: p.public_in.into(),
            public_out: p.public_out.into(),
            fee: p.fee.into(),
            dest: field::to_hex(&p.dest),
            deposit_ref: field::to_hex(&p.deposit_ref),
            ak: PointJson {
                x: field::to_hex(&t.pgk.ak.x()),
                y: field::to_hex(&t.pgk.ak.y()),
            },
            nk: field::to_hex(&t.pgk.nk),
            inputs: t.inputs.map(|i| InputJson {
                note: note_json(&i.note),
                position: i.position.into(),
            }),
            outputs: t.outputs.map(|o| note_json(&o)),
            signature: hex::encode(t.signature.to_bytes()),
            ciphertexts: [
                hex::encode(&t.ciphertexts[0]),
                hex::encode(&t.ciphertexts[1]),
            ],
            withdrawal_script: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_circuits::batch::BatchShape;
    use veil_fixtures::Scenario;

    fn sample() -> Transfer {
        let mut sc = Scenario::new(BatchShape::new(2, 8).unwrap(), 7);
        let alice = sc.new_key();
        sc.deposit(&alice, 1234)
    }

    fn json(t: &Transfer) -> serde_json::Value {
        serde_json::to_value(TransferRequest::from(t)).unwrap()
    }

    fn convert(v: serde_json::Value) -> Result<Transfer, WireError> {
        let req: TransferRequest = serde_json::from_value(v).expect("parses as a request");
        Transfer::try_from(req)
    }

    #[test]
    fn round_trip_through_json_text() {
        let t = sample();
        let text = serde_json::to_string(&TransferRequest::from(&t)).unwrap();
        let req: TransferRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(Transfer::try_from(req).unwrap(), t);
        // Amounts are JSON integers, field elements hex strings.
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["public_in"], serde_json::json!(1234));
        assert!(v["nullifiers"][0].as_str().unwrap().starts_with("0x"));
        assert_eq!(v["signature"].as_str().unwrap().len(), 128);
    }

    #[test]
    fn a_transfer_with_memos_round_trips() {
        let mut sc = Scenario::new(BatchShape::new(2, 8).unwrap(), 8);
        let alice = sc.new_key();
        sc.set_memos(Some([[7u8; 32], [0u8; 32]]));
        let t = sc.deposit(&alice, 55);
        assert_eq!(t.ciphertexts[0].len(), NOTE_CIPHERTEXT_LEN_MEMO);
        assert_eq!(t.ciphertexts[1].len(), NOTE_CIPHERTEXT_LEN_MEMO);
        assert_eq!(convert(json(&t)).unwrap(), t);
        // The compact sample's ciphertexts are 89 bytes each.
        let plain = sample();
        assert!(plain
            .ciphertexts
            .iter()
            .all(|c| c.len() == NOTE_CIPHERTEXT_LEN_COMPACT));
    }

    #[test]
    fn duplicate_keys_are_found_at_any_depth() {
        let text = serde_json::to_string(&json(&sample())).unwrap();
        assert_eq!(first_duplicate_key(text.as_bytes()), None);
        // `"fee": 12345, ..., "fee": 0`: serde_json alone keeps the last value.
        let doubled = text.replacen('{', "{\"fee\":12345,", 1);
        assert_eq!(
            first_duplicate_key(doubled.as_bytes()),
            Some(DuplicateKey {
                key: "fee".into(),
                path: "$".into()
            })
        );
        // Nested, and spelled with an escape.
        let nested = r#"{"inputs":[{"note":{"value":1}},{"note":{"value":1,"v\u0061lue":2}}]}"#;
        let d = first_duplicate_key(nested.as_bytes()).unwrap();
        assert_eq!(
            (d.key.as_str(), d.path.as_str()),
            ("value", "$.inputs[1].note")
        );
        assert_eq!(d.to_string(), "duplicate key \"value\" in $.inputs[1].note");
        // The same key in sibling objects is fine; so is text that is not JSON.
        assert_eq!(first_duplicate_key(br#"[{"a":1},{"a":2}]"#), None);
        assert_eq!(first_duplicate_key(b"{\"a\":"), None);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v = json(&sample());
        v["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<TransferRequest>(v).is_err());
        let mut v = json(&sample());
        v["inputs"][0]["note"]["memo"] = serde_json::json!("x");
        assert!(serde_json::from_value::<TransferRequest>(v).is_err());
    }

    #[test]
    fn each_problem_has_its_error() {
        let base = json(&sample());
        let with = |path: &[&str], value: serde_json::Value| {
            let mut v = base.clone();
            let mut cur = &mut v;
            for p in path {
                cur = match p.parse::<usize>() {
                    Ok(i) => &mut cur[i],
                    Err(_) => &mut cur[*p],
                };
            }
            *cur = value;
            convert(v)
        };
        let modulus = "0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001";
        assert_eq!(
            with(&["nullifiers", "1"], "0xzz".into()).unwrap_err(),
            WireError::BadHex {
                field: "nullifiers[1]".into()
            }
        );
        assert_eq!(
            with(&["dest"], modulus.into()).unwrap_err(),
            WireError::NonCanonicalField {
                field: "dest".into()
            }
        );
        let two_64: serde_json::Value = serde_json::from_str("18446744073709551616").unwrap();
        assert_eq!(
            with(&["fee"], two_64.clone()).unwrap_err(),
            WireError::ValueOutOfRange {
                field: "fee".into()
            }
        );
        assert_eq!(
            with(&["outputs", "1", "value"], two_64).unwrap_err(),
            WireError::ValueOutOfRange {
                field: "outputs[1].value".into()
            }
        );
        assert_eq!(
            with(&["inputs", "0", "position"], serde_json::json!(-1)).unwrap_err(),
            WireError::ValueOutOfRange {
                field: "inputs[0].position".into()
            }
        );
        assert_eq!(
            with(&["public_out"], serde_json::json!(1.5)).unwrap_err(),
            WireError::NotAnInteger {
                field: "public_out".into()
            }
        );
        // Integral values written with a fraction or an exponent are not integers.
        for text in ["100.0", "1e2", "0.0", "-1.0", "1.8e19"] {
            let n: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                with(&["fee"], n).unwrap_err(),
                WireError::NotAnInteger {
                    field: "fee".into()
                },
                "{text}"
            );
        }
        // Integer literals (and integral floats) beyond 64 bits are out of range.
        for text in ["99999999999999999999", "-99999999999999999999", "1e30"] {
            let n: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                with(&["fee"], n).unwrap_err(),
                WireError::ValueOutOfRange {
                    field: "fee".into()
                },
                "{text}"
            );
        }
        // u64::MAX itself is in range.
        let t = with(&["fee"], serde_json::json!(u64::MAX)).unwrap();
        assert_eq!(t.public.fee, u64::MAX);
        assert_eq!(
            with(&["ak", "x"], "0x5".into()).unwrap_err(),
            WireError::BadPoint
        );
        assert_eq!(
            with(&["signature"], "ab".into()).unwrap_err(),
            WireError::BadHex {
                field: "signature".into()
            }
        );
        assert!(matches!(
            with(&["signature"], "ff".repeat(64).into()).unwrap_err(),
            WireError::MalformedSignature(_)
        ));
        for len in [0, 88, 90, 120, 122, 152] {
            assert_eq!(
                with(&["ciphertexts", "0"], "00".repeat(len).into()).unwrap_err(),
                WireError::BadCiphertext { index: 0, len },
            );
        }
        assert_eq!(
            with(&["ciphertexts", "1"], "00".repeat(152).into()).unwrap_err(),
            WireError::BadCiphertext { index: 1, len: 152 },
        );
        // One memo-sized ciphertext next to a compact one: which output has a memo would show.
        let mixed = with(
            &["ciphertexts", "0"],
            "00".repeat(NOTE_CIPHERTEXT_LEN_MEMO).into(),
        )
        .unwrap_err();
        assert_eq!(
            mixed,
            WireError::MixedCiphertextLengths(
                NOTE_CIPHERTEXT_LEN_MEMO,
                NOTE_CIPHERTEXT_LEN_COMPACT
            )
        );
        assert_eq!(mixed.code(), "bad_ciphertext");
        assert!(mixed.to_string().contains("121 and 89 bytes"), "{mixed}");
        assert_eq!(
            with(&["ciphertexts", "1"], "0g".into()).unwrap_err(),
            WireError::BadHex {
                field: "ciphertexts[1]".into()
            }
        );
    }
}
