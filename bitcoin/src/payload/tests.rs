//! Payload encodings: layouts, round trips, the commitments' bindings and every decoding error,
//! for versions 1 and 2.

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
        Err(PayloadError::Length {
            found: 76,
            expected: 77
        })
    );
    let mut long = bytes.to_vec();
    long.push(0);
    assert_eq!(
        AnchorPayload::from_bytes(&long),
        Err(PayloadError::Length {
            found: 78,
            expected: 77
        })
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

fn pcs(n: u8) -> Vec<[u8; 32]> {
    (0..n)
        .map(|i| proof_commitment(&[i; 128], &Fr::from(u64::from(i))).unwrap())
        .collect()
}

fn sample_v2() -> AnchorPayloadV2 {
    AnchorPayloadV2::new(0x0102_0304_0506_0708, Fr::from(99u64), &[0xab; 32], &pcs(3)).unwrap()
}

#[test]
fn v2_layout_and_round_trip() {
    let p = sample_v2();
    assert_eq!((p.count, p.last_batch()), (3, 0x0102_0304_0506_070a));
    let bytes = p.to_bytes();
    assert_eq!(&bytes[..4], b"VEIL");
    assert_eq!(bytes[4], 2);
    assert_eq!(&bytes[5..13], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(&bytes[13..15], &[0, 3]);
    let mut root = [0u8; 32];
    root[31] = 99;
    assert_eq!(&bytes[15..47], &root);
    // The commitment: SHA-256 over the tag, the data hash and the three proof commitments,
    // each of those SHA-256(proof || batch_hash) as in version 1.
    let mut msg = b"veil/anchor-v2".to_vec();
    msg.extend_from_slice(&[0xab; 32]);
    for i in 0..3u8 {
        let mut one = vec![i; 128];
        let mut bh = [0u8; 32];
        bh[31] = i;
        one.extend_from_slice(&bh);
        msg.extend_from_slice(&Sha256::digest(&one));
    }
    assert_eq!(msg.len(), 14 + 32 + 3 * 32);
    assert_eq!(&bytes[47..], Sha256::digest(&msg).as_slice());
    assert_eq!(AnchorPayloadV2::from_bytes(&bytes).unwrap(), p);

    let script = p.script_pubkey();
    assert_eq!(script.len(), SCRIPT_V2_LEN);
    assert_eq!(&script.as_bytes()[..3], &[0x6a, 0x4c, 79]);
    assert!(script.len() <= 83, "standard OP_RETURN");
    assert_eq!(AnchorPayloadV2::from_script(&script).unwrap(), p);
    assert_eq!(
        AnchorPayloadAny::from_script(&script).unwrap(),
        AnchorPayloadAny::V2(p)
    );
    // The last batch number may be u64::MAX itself.
    let top = AnchorPayloadV2::new(u64::MAX, Fr::from(1u64), &[0; 32], &pcs(1)).unwrap();
    assert_eq!(top.last_batch(), u64::MAX);
    assert_eq!(AnchorPayloadV2::from_bytes(&top.to_bytes()).unwrap(), top);
}

#[test]
fn v2_commitment_binds_data_and_every_batch() {
    let p = sample_v2();
    let good = pcs(3);
    assert!(p.commits_to(&[0xab; 32], &good));
    assert!(!p.commits_to(&[0xac; 32], &good));
    assert!(!p.commits_to(&[0xab; 32], &good[..2]));
    for i in 0..3 {
        let mut bad = good.clone();
        bad[i][0] ^= 1;
        assert!(!p.commits_to(&[0xab; 32], &bad), "proof commitment {i}");
    }
    let mut swapped = good.clone();
    swapped.swap(0, 2);
    assert!(!p.commits_to(&[0xab; 32], &swapped));
    let mut four = good.clone();
    four.push(good[0]);
    assert!(!p.commits_to(&[0xab; 32], &four));
}

#[test]
fn v2_construction_errors() {
    assert_eq!(
        AnchorPayloadV2::new(1, Fr::from(1u64), &[0; 32], &[]),
        Err(PayloadError::ZeroCount)
    );
    let many = vec![[0u8; 32]; 65_536];
    assert_eq!(
        AnchorPayloadV2::new(1, Fr::from(1u64), &[0; 32], &many),
        Err(PayloadError::TooManyBatches { found: 65_536 })
    );
    assert!(AnchorPayloadV2::new(1, Fr::from(1u64), &[0; 32], &many[1..]).is_ok());
    assert_eq!(
        AnchorPayloadV2::new(u64::MAX, Fr::from(1u64), &[0; 32], &pcs(2)),
        Err(PayloadError::RangeOverflow {
            first_batch: u64::MAX,
            count: 2
        })
    );
}

#[test]
fn v2_decoding_errors() {
    let bytes = sample_v2().to_bytes();
    for len in [78, 80] {
        let mut b = bytes.to_vec();
        b.resize(len, 0);
        assert_eq!(
            AnchorPayloadV2::from_bytes(&b),
            Err(PayloadError::Length {
                found: len,
                expected: 79
            })
        );
    }
    assert_eq!(
        AnchorPayloadV2::from_bytes(&bytes[..4]),
        Err(PayloadError::Length {
            found: 4,
            expected: 79
        })
    );
    let mut bad = bytes;
    bad[3] = b'X';
    assert_eq!(
        AnchorPayloadV2::from_bytes(&bad),
        Err(PayloadError::Magic { found: *b"VEIX" })
    );
    let mut bad = bytes;
    bad[4] = 3;
    assert_eq!(
        AnchorPayloadV2::from_bytes(&bad),
        Err(PayloadError::Version { found: 3 })
    );
    assert_eq!(
        AnchorPayloadAny::from_bytes(&bad),
        Err(PayloadError::Version { found: 3 })
    );
    // Each decoder refuses the other version.
    assert_eq!(
        AnchorPayload::from_bytes(&bytes),
        Err(PayloadError::Version { found: 2 })
    );
    assert_eq!(
        AnchorPayloadV2::from_bytes(&sample().to_bytes()),
        Err(PayloadError::Version { found: 1 })
    );
    let mut bad = bytes;
    bad[13..15].copy_from_slice(&[0, 0]);
    assert_eq!(
        AnchorPayloadV2::from_bytes(&bad),
        Err(PayloadError::ZeroCount)
    );
    let mut bad = bytes;
    bad[5..13].copy_from_slice(&u64::MAX.to_be_bytes());
    assert_eq!(
        AnchorPayloadV2::from_bytes(&bad),
        Err(PayloadError::RangeOverflow {
            first_batch: u64::MAX,
            count: 3
        })
    );
    let mut bad = bytes;
    bad[15..47].copy_from_slice(&Fr::MODULUS.to_bytes_be());
    assert_eq!(
        AnchorPayloadV2::from_bytes(&bad),
        Err(PayloadError::NonCanonicalRoot)
    );
    let mut raw = sample_v2().script_pubkey().into_bytes();
    raw[1] = 0x4d; // OP_PUSHDATA2
    assert_eq!(
        AnchorPayloadAny::from_script(Script::from_bytes(&raw)),
        Err(PayloadError::NotAnchorScript)
    );
    let empty = Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![],
        output: vec![],
    };
    assert_eq!(
        AnchorPayloadV2::from_tx(&empty),
        Err(PayloadError::NoOutputs)
    );
    assert_eq!(
        AnchorPayloadAny::from_tx(&empty),
        Err(PayloadError::NoOutputs)
    );
}

proptest::proptest! {
    /// Arbitrary bytes after the magic never panic the decoder, and what it accepts
    /// re-encodes to the same bytes.
    #[test]
    fn hostile_payloads_never_panic(
        tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..90),
        version in 0u8..4,
    ) {
        let mut bytes = b"VEIL".to_vec();
        bytes.push(version);
        bytes.extend_from_slice(&tail);
        for b in [&bytes[..], &tail[..]] {
            if let Ok(p) = AnchorPayloadAny::from_bytes(b) {
                proptest::prop_assert_eq!(p.to_bytes(), b.to_vec());
            }
        }
    }
}

#[test]
fn any_reads_version_1_too() {
    let v1 = sample();
    let any = AnchorPayloadAny::from_script(&v1.script_pubkey()).unwrap();
    assert_eq!(any, AnchorPayloadAny::V1(v1));
    assert_eq!(any.version(), 1);
    assert_eq!(any.batches(), (v1.batch_number, v1.batch_number));
    assert_eq!(any.new_state_root(), v1.new_state_root);
    assert_eq!(any.to_bytes(), v1.to_bytes().to_vec());
    let v2 = sample_v2();
    let any = AnchorPayloadAny::from_bytes(&v2.to_bytes()).unwrap();
    assert_eq!(any.version(), 2);
    assert_eq!(any.batches(), (v2.first_batch, v2.last_batch()));
    assert_eq!(any.new_state_root(), v2.new_state_root);
    assert_eq!(any.to_bytes(), v2.to_bytes().to_vec());
    // A v1 payload with its length cut is a v1 length error.
    assert_eq!(
        AnchorPayloadAny::from_bytes(&v1.to_bytes()[..70]),
        Err(PayloadError::Length {
            found: 70,
            expected: 77
        })
    );
}
