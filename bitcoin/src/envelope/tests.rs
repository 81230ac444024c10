//! Envelope leaf scripts and witnesses: round trips over the push-boundary sizes and random data,
//! every malformed leaf and witness rejected with its own error, and the NUMS key's derivation.

use super::*;
use bitcoin::secp256k1::{schnorr, PublicKey, SecretKey};
use proptest::prelude::*;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

fn operator(seed: u64) -> XOnlyPublicKey {
    OperatorKey::generate(&mut ChaCha20Rng::seed_from_u64(seed)).internal_key()
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// Lengths of the pushes in a leaf produced by `leaf_script` (walks the encoder's own layout).
fn pushes_of(script: &Script) -> Vec<usize> {
    script
        .instructions()
        .skip(5) // key, OP_CHECKSIG, OP_FALSE, OP_IF, tag
        .filter_map(|i| match i.unwrap() {
            bitcoin::script::Instruction::PushBytes(p) => Some(p.len()),
            bitcoin::script::Instruction::Op(op) if op == OP_ENDIF => None,
            bitcoin::script::Instruction::Op(_) => Some(1), // OP_N: one byte of data
        })
        .collect()
}

fn dummy_sig() -> taproot::Signature {
    taproot::Signature {
        signature: schnorr::Signature::from_slice(&[7u8; 64]).unwrap(),
        sighash_type: TapSighashType::Default,
    }
}

#[test]
fn round_trip_at_push_boundaries() {
    let key = operator(1);
    for (i, len) in [
        0usize, 1, 2, 75, 76, 255, 256, 519, 520, 521, 1040, 1041, 1042, 10_000,
    ]
    .into_iter()
    .enumerate()
    {
        let data = random(len, i as u64);
        let leaf = leaf_script(key, &data);
        assert_eq!(
            parse_leaf_script(&leaf).unwrap(),
            (key, data.clone()),
            "{len}"
        );
        let pushes = pushes_of(&leaf);
        assert_eq!(pushes.iter().sum::<usize>(), len);
        assert!(pushes.iter().all(|&p| p <= MAX_PUSH));
        if len >= 2 {
            assert!(pushes.iter().all(|&p| p >= 2), "{len}: {pushes:?}");
        }
        // Only the last push may be short.
        assert!(pushes.iter().rev().skip(1).all(|&p| p >= MAX_PUSH - 1));
        if !(len == 1 && matches!(data[0], 1..=16 | 0x81)) {
            assert_eq!(leaf.len(), leaf_script_len(len), "{len}");
        }
        // The envelope's witness carries the same leaf and its weight is predicted exactly.
        let env = Envelope::new(key, &data);
        assert_eq!(env.leaf_script(), leaf.as_script());
        let w = env.witness(&dummy_sig());
        assert_eq!(w.size() as u64, env.witness_weight());
        let spk = env.script_pubkey();
        assert_eq!(data_from_witness(&w, Some(&spk)).unwrap(), (key, data));
    }
    assert_eq!(pushes_of(&leaf_script(key, &[9u8; 521])), vec![519, 2]);
    assert_eq!(
        pushes_of(&leaf_script(key, &[9u8; 1041])),
        vec![520, 519, 2]
    );
    assert_eq!(
        pushes_of(&leaf_script(key, &[9u8; 1042])),
        vec![520, 520, 2]
    );
}

#[test]
fn one_byte_data_is_pushed_minimally() {
    let key = operator(2);
    for (byte, op) in [
        (0x00u8, vec![0x01, 0x00]),
        (0x01, vec![0x51]),
        (0x10, vec![0x60]),
        (0x11, vec![0x01, 0x11]),
        (0x81, vec![0x4f]),
        (0xff, vec![0x01, 0xff]),
    ] {
        let leaf = leaf_script(key, &[byte]);
        assert_eq!(&leaf.as_bytes()[LEAF_HEADER_LEN..leaf.len() - 1], &op[..]);
        assert_eq!(parse_leaf_script(&leaf).unwrap().1, vec![byte]);
    }
}

#[test]
fn max_envelope_data_fills_the_leaf_budget() {
    // 399,153 leaf bytes: the anchor transaction's share of 400,000 WU (see MAX_ENVELOPE_DATA).
    assert_eq!(leaf_script_len(MAX_ENVELOPE_DATA), 399_153);
    assert_eq!(leaf_script_len(MAX_ENVELOPE_DATA + 1), 399_154);
    assert_eq!(MAX_ENVELOPE_DATA, 396_821);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_data_round_trips(data in prop::collection::vec(any::<u8>(), 0..3_000), seed in 0u64..4) {
        let key = operator(seed);
        let env = Envelope::new(key, &data);
        prop_assert_eq!(parse_leaf_script(env.leaf_script()).unwrap(), (key, data.clone()));
        let w = env.witness(&dummy_sig());
        prop_assert_eq!(data_from_witness(&w, Some(&env.script_pubkey())).unwrap(), (key, data));
    }
}

/// `<key> OP_CHECKSIG OP_FALSE OP_IF "veil"` followed by `body`.
fn with_header(key: XOnlyPublicKey, body: &[u8]) -> ScriptBuf {
    let mut b = leaf_script(key, &[]).into_bytes();
    b.pop(); // OP_ENDIF
    b.extend_from_slice(body);
    ScriptBuf::from_bytes(b)
}

#[test]
fn malformed_leaves_are_rejected() {
    let key = operator(3);
    let good = leaf_script(key, &[5u8; 600]).into_bytes();
    let parse = |b: &[u8]| parse_leaf_script(Script::from_bytes(b));

    let mut b = good.clone();
    b[37..41].copy_from_slice(b"vell");
    assert_eq!(parse(&b), Err(EnvelopeError::Tag));
    let mut b = good.clone();
    b[36] = 0x05;
    assert_eq!(parse(&b), Err(EnvelopeError::Tag));
    // Executed data: OP_TRUE OP_IF, or no OP_IF at all.
    let mut b = good.clone();
    b[34] = 0x51;
    assert_eq!(parse(&b), Err(EnvelopeError::Executed));
    let mut b = good.clone();
    b[35] = 0x64; // OP_NOTIF
    assert_eq!(parse(&b), Err(EnvelopeError::Executed));
    let mut b = good.clone();
    b[33] = 0xad; // OP_CHECKSIGVERIFY
    assert_eq!(parse(&b), Err(EnvelopeError::NotKeyCheckSig));
    let mut b = good.clone();
    b[1..33].copy_from_slice(&[0xff; 32]); // x >= p
    assert_eq!(parse(&b), Err(EnvelopeError::InvalidKey));

    let at = LEAF_HEADER_LEN;
    // Non-minimal pushes: PUSHDATA1 for 10 bytes, PUSHDATA2 for 200, PUSHDATA4, a small number
    // pushed as a byte.
    let mut body = vec![0x4c, 10];
    body.extend_from_slice(&[1; 10]);
    body.push(0x68);
    assert_eq!(
        parse(with_header(key, &body).as_bytes()),
        Err(EnvelopeError::NonMinimalPush { at })
    );
    let mut body = vec![0x4d, 200, 0];
    body.extend_from_slice(&[1; 200]);
    body.push(0x68);
    assert_eq!(
        parse(with_header(key, &body).as_bytes()),
        Err(EnvelopeError::NonMinimalPush { at })
    );
    let mut body = vec![0x4e, 10, 0, 0, 0];
    body.extend_from_slice(&[1; 10]);
    body.push(0x68);
    assert_eq!(
        parse(with_header(key, &body).as_bytes()),
        Err(EnvelopeError::NonMinimalPush { at })
    );
    assert_eq!(
        parse(with_header(key, &[0x01, 0x07, 0x68]).as_bytes()),
        Err(EnvelopeError::NonMinimalPush { at })
    );
    // Over-long pushes.
    let mut body = vec![0x4d, 0x09, 0x02]; // 521
    body.extend_from_slice(&[1; 521]);
    body.push(0x68);
    assert_eq!(
        parse(with_header(key, &body).as_bytes()),
        Err(EnvelopeError::PushTooLarge { at, len: 521 })
    );
    assert_eq!(
        parse(with_header(key, &[0x4e, 0, 0, 1, 0, 0x68]).as_bytes()),
        Err(EnvelopeError::PushTooLarge { at, len: 65_536 })
    );
    // Trailing ops after OP_ENDIF, an opcode inside, no OP_ENDIF, a cut push.
    let mut b = good.clone();
    b.push(0x51);
    assert_eq!(parse(&b), Err(EnvelopeError::Trailing { count: 1 }));
    assert_eq!(
        parse(with_header(key, &[0x02, 1, 2, 0x75, 0x68]).as_bytes()),
        Err(EnvelopeError::UnexpectedOpcode {
            at: at + 3,
            opcode: 0x75
        })
    );
    assert_eq!(
        parse(&good[..good.len() - 1]),
        Err(EnvelopeError::Unterminated)
    );
    assert_eq!(
        parse(with_header(key, &[0x05, 1, 2]).as_bytes()),
        Err(EnvelopeError::TruncatedPush { at })
    );
    assert_eq!(
        parse(with_header(key, &[0x4d, 0x00]).as_bytes()),
        Err(EnvelopeError::TruncatedPush { at })
    );
    // Minimal pushes, but not the canonical split: 300 + 300 for 600 bytes, an empty push,
    // a 1-byte last push after a full one.
    let mut body = Vec::new();
    for _ in 0..2 {
        body.extend_from_slice(&[0x4d, 0x2c, 0x01]);
        body.extend_from_slice(&[5; 300]);
    }
    body.push(0x68);
    assert_eq!(
        parse(with_header(key, &body).as_bytes()),
        Err(EnvelopeError::NonCanonicalSplit { len: 600 })
    );
    assert_eq!(
        parse(with_header(key, &[0x00, 0x68]).as_bytes()),
        Err(EnvelopeError::NonCanonicalSplit { len: 0 })
    );
    let mut body = vec![0x4d, 0x08, 0x02];
    body.extend_from_slice(&[1; 520]);
    body.extend_from_slice(&[0x01, 0xee, 0x68]);
    assert_eq!(
        parse(with_header(key, &body).as_bytes()),
        Err(EnvelopeError::NonCanonicalSplit { len: 521 })
    );
    // And the good one parses.
    assert_eq!(parse(&good).unwrap(), (key, vec![5u8; 600]));
}

#[test]
fn witness_checks() {
    let key = operator(4);
    let data = random(2_000, 9);
    let env = Envelope::new(key, &data);
    let spk = env.script_pubkey();
    let w = env.witness(&dummy_sig());
    let items: Vec<Vec<u8>> = w.iter().map(<[u8]>::to_vec).collect();
    assert_eq!(items.len(), 3);
    assert_eq!(items[2].len(), CONTROL_BLOCK_LEN);
    // Without the spent script the commitment is not checked, but the rest is.
    assert_eq!(data_from_witness(&w, None).unwrap(), (key, data.clone()));

    // Another envelope's output (other data, or another operator) is not what this spends.
    let other = Envelope::new(key, &data[1..]).script_pubkey();
    assert_eq!(
        data_from_witness(&w, Some(&other)),
        Err(EnvelopeError::Commitment)
    );
    let other = Envelope::new(operator(5), &data).script_pubkey();
    assert_eq!(
        data_from_witness(&w, Some(&other)),
        Err(EnvelopeError::Commitment)
    );
    let p2wpkh = OperatorKey::generate(&mut ChaCha20Rng::seed_from_u64(4))
        .script_pubkey(crate::KeyKind::P2wpkh);
    assert_eq!(
        data_from_witness(&w, Some(&p2wpkh)),
        Err(EnvelopeError::NotTaproot)
    );

    // A tampered data byte still parses, but no longer matches the output.
    let mut t = items.clone();
    let last = t[1].len() - 2;
    t[1][last] ^= 1;
    let tampered = Witness::from_slice(&t);
    assert!(data_from_witness(&tampered, None).is_ok());
    assert_eq!(
        data_from_witness(&tampered, Some(&spk)),
        Err(EnvelopeError::Commitment)
    );

    // Shape: two items, four items, an annex, a short signature.
    assert_eq!(
        data_from_witness(&Witness::from_slice(&t[1..]), None),
        Err(EnvelopeError::WitnessShape { items: 2 })
    );
    let mut four = items.clone();
    four.insert(0, vec![1]);
    assert_eq!(
        data_from_witness(&Witness::from_slice(&four), None),
        Err(EnvelopeError::WitnessShape { items: 4 })
    );
    let mut annexed = items.clone();
    annexed.push(vec![0x50, 1]);
    assert_eq!(
        data_from_witness(&Witness::from_slice(&annexed), Some(&spk)),
        Err(EnvelopeError::Annex)
    );
    let mut short = items.clone();
    short[0].pop();
    assert_eq!(
        data_from_witness(&Witness::from_slice(&short), Some(&spk)),
        Err(EnvelopeError::SignatureLength { len: 63 })
    );
    let mut with_type = items.clone();
    with_type[0].push(0x01); // SIGHASH_ALL: still an envelope spend
    assert!(data_from_witness(&Witness::from_slice(&with_type), Some(&spk)).is_ok());

    // Control blocks: a future leaf version, another internal key, a Merkle path, garbage.
    let mut cb = items.clone();
    cb[2][0] = (cb[2][0] & 1) | 0xc2;
    assert_eq!(
        data_from_witness(&Witness::from_slice(&cb), Some(&spk)),
        Err(EnvelopeError::LeafVersion)
    );
    let mut cb = items.clone();
    cb[2][1..33].copy_from_slice(&key.serialize());
    assert_eq!(
        data_from_witness(&Witness::from_slice(&cb), Some(&spk)),
        Err(EnvelopeError::InternalKey)
    );
    let mut cb = items.clone();
    cb[2].extend_from_slice(&[3; 32]);
    assert_eq!(
        data_from_witness(&Witness::from_slice(&cb), Some(&spk)),
        Err(EnvelopeError::MerklePath { depth: 1 })
    );
    let mut cb = items.clone();
    cb[2].pop();
    assert!(matches!(
        data_from_witness(&Witness::from_slice(&cb), Some(&spk)),
        Err(EnvelopeError::ControlBlock(_))
    ));
    // A leaf that is not an envelope, with a valid control block for it, is refused by the
    // leaf parser.
    let mut bad_leaf = items.clone();
    bad_leaf[1][37] = b'V';
    assert_eq!(
        data_from_witness(&Witness::from_slice(&bad_leaf), None),
        Err(EnvelopeError::Tag)
    );
}

#[test]
fn nums_key_is_the_hash_of_the_generator() {
    // BIP 341: H = lift_x(SHA-256(G)) with G in uncompressed form.
    let secp = Secp256k1::new();
    let mut one = [0u8; 32];
    one[31] = 1;
    let g = PublicKey::from_secret_key(&secp, &SecretKey::from_slice(&one).unwrap());
    assert_eq!(
        Sha256::digest(g.serialize_uncompressed()).as_slice(),
        &NUMS_INTERNAL_KEY
    );
    assert_eq!(nums_key().serialize(), NUMS_INTERNAL_KEY);
    let env = Envelope::new(operator(6), b"data");
    assert_eq!(env.control_block().internal_key, nums_key());
    assert_eq!(env.operator(), operator(6));
    assert!(env.script_pubkey().is_p2tr());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Hostile leaves: a valid header followed by arbitrary bytes, or a valid leaf with one byte
    /// changed. The parser never panics, and whatever it accepts is exactly what the encoder
    /// makes of the result (one encoding per value).
    #[test]
    fn hostile_leaves_never_panic_and_accepted_ones_are_canonical(
        body in prop::collection::vec(any::<u8>(), 0..1_200),
        data in prop::collection::vec(any::<u8>(), 0..1_200),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let key = operator(7);
        let mut mutated = leaf_script(key, &data).into_bytes();
        let at = flip.index(mutated.len());
        mutated[at] = byte;
        for bytes in [with_header(key, &body).into_bytes(), mutated] {
            if let Ok((k, d)) = parse_leaf_script(Script::from_bytes(&bytes)) {
                prop_assert_eq!(leaf_script(k, &d).into_bytes(), bytes);
            }
        }
    }

    /// Hostile witnesses: three random items, the last shaped like a control block.
    #[test]
    fn hostile_witnesses_never_panic(
        sig in prop::collection::vec(any::<u8>(), 0..70),
        body in prop::collection::vec(any::<u8>(), 0..300),
        cb_first in any::<u8>(),
        cb_tail in prop::collection::vec(any::<u8>(), 0..70),
    ) {
        let key = operator(8);
        let mut cb = vec![cb_first];
        cb.extend_from_slice(&NUMS_INTERNAL_KEY);
        cb.extend_from_slice(&cb_tail);
        let leaf = with_header(key, &body);
        let w = Witness::from_slice(&[sig, leaf.into_bytes(), cb]);
        let spk = Envelope::new(key, &body).script_pubkey();
        let _ = data_from_witness(&w, Some(&spk));
        let _ = data_from_witness(&w, None);
    }
}
