//! Tests of the data-availability encoding: round trips, one encoding per value, and a typed
//! error (never a panic) for every way bytes can be wrong.

use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn fr(rng: &mut ChaCha20Rng) -> Fr {
    use ark_ff::UniformRand;
    Fr::rand(rng)
}

fn transfer(rng: &mut ChaCha20Rng, kind: usize) -> TransferData {
    let ct = |rng: &mut ChaCha20Rng, n: usize| (0..n).map(|_| rng.gen()).collect::<Vec<u8>>();
    let ciphertexts = match kind % 3 {
        0 => [ct(rng, 89), ct(rng, 89)],
        1 => [ct(rng, 152), ct(rng, 152)],
        _ => [ct(rng, 89), ct(rng, 300)],
    };
    let mut public = TransferPublic {
        nullifiers: [fr(rng), fr(rng)],
        commitments: [fr(rng), fr(rng)],
        public_in: 0,
        public_out: 0,
        fee: 0,
        dest: Fr::zero(),
        deposit_ref: Fr::zero(),
        ciphertext_hash: ciphertext_hash(&ciphertexts),
    };
    match kind % 4 {
        1 => {
            public.public_in = rng.gen();
            public.deposit_ref = fr(rng);
        }
        2 => {
            public.public_out = rng.gen_range(1..1 << 40);
            public.dest = fr(rng);
            public.fee = 25;
        }
        3 => public.fee = u64::MAX,
        _ => {}
    }
    TransferData {
        public,
        ciphertexts,
    }
}

fn sample(seed: u64, batches: usize) -> AnchorData {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    AnchorData {
        batch_size: 4,
        first_batch: 300,
        batches: (0..batches)
            .map(|i| BatchData {
                proof: std::array::from_fn(|_| rng.gen()),
                transfers: (0..i % 5).map(|k| transfer(&mut rng, k + i)).collect(),
            })
            .collect(),
    }
}

#[test]
fn round_trip_and_one_encoding() {
    for seed in 0..20 {
        let data = sample(seed, 1 + seed as usize % 7);
        let bytes = data.encode().unwrap();
        let back = AnchorData::decode(&bytes).unwrap();
        assert_eq!(back, data);
        assert_eq!(back.encode().unwrap(), bytes);
        assert_eq!(
            back.data_hash().unwrap(),
            <[u8; 32]>::from(Sha256::digest(&bytes))
        );
        assert_eq!(data.last_batch(), 300 + data.batches.len() as u64 - 1);
    }
}

#[test]
fn zero_fields_cost_one_flags_byte() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let plain = transfer(&mut rng, 0);
    let one = |t: TransferData| {
        AnchorData {
            batch_size: 1,
            first_batch: 0,
            batches: vec![BatchData {
                proof: [0; PROOF_LEN],
                transfers: vec![t],
            }],
        }
        .encode()
        .unwrap()
        .len()
    };
    let header = 4 + 1 + 1 + 1 + PROOF_LEN + 1;
    // flags + 4 field elements + one length byte (89 < 128) + the two ciphertexts
    assert_eq!(one(plain.clone()), header + 1 + 128 + 1 + 2 * 89);
    let mut with_fee = plain;
    with_fee.public.fee = 100;
    assert_eq!(one(with_fee), header + 1 + 128 + 1 + 1 + 2 * 89);
}

#[test]
fn every_truncation_is_a_typed_error() {
    let bytes = sample(3, 4).encode().unwrap();
    for n in 0..bytes.len() {
        assert!(
            AnchorData::decode(&bytes[..n]).is_err(),
            "prefix of {n} bytes"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        AnchorData::decode(&long),
        Err(DaError::Trailing { extra: 1 })
    );
}

#[test]
fn header_errors() {
    let bytes = sample(4, 2).encode().unwrap();
    let mut b = bytes.clone();
    b[0] = b'X';
    assert_eq!(AnchorData::decode(&b), Err(DaError::Magic));
    let mut b = bytes.clone();
    b[3] = 2;
    assert_eq!(AnchorData::decode(&b), Err(DaError::Version { found: 2 }));
    // batch size 0
    let mut b = bytes.clone();
    b[4] = 0;
    assert!(matches!(
        AnchorData::decode(&b),
        Err(DaError::Count {
            what: "batch size",
            ..
        })
    ));
    // batch count 0, and a count the remaining bytes cannot hold
    let header = |count: &[u8]| {
        let mut b = b"VDA\x01\x04\x00".to_vec();
        b.extend_from_slice(count);
        b.extend_from_slice(&[0u8; PROOF_LEN + 1]);
        b
    };
    for count in [&[0u8][..], &[2], &[0xff, 0xff, 0x03]] {
        assert!(
            matches!(
                AnchorData::decode(&header(count)),
                Err(DaError::Count {
                    what: "batch count",
                    ..
                })
            ),
            "{count:?}"
        );
    }
    assert!(AnchorData::decode(&header(&[1])).is_ok());
}

#[test]
fn varints_must_be_minimal_and_fit() {
    let decode = |v: &[u8]| {
        let mut r = Reader { bytes: v, at: 0 };
        r.varint()
    };
    for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
        let mut b = Vec::new();
        put_varint(&mut b, v);
        assert_eq!(decode(&b), Ok(v));
    }
    assert_eq!(decode(&[0x80, 0x00]), Err(DaError::Varint { at: 0 }));
    assert_eq!(decode(&[0x81, 0x80, 0x00]), Err(DaError::Varint { at: 0 }));
    let mut too_big = vec![0xff; 9];
    too_big.push(0x02);
    assert_eq!(decode(&too_big), Err(DaError::Varint { at: 0 }));
    assert_eq!(decode(&[0xff; 11]), Err(DaError::Varint { at: 0 }));
}

/// Offset of batch 0's first transfer in `sample`-like data with one batch.
fn one_transfer(t: TransferData) -> (Vec<u8>, usize) {
    let data = AnchorData {
        batch_size: 2,
        first_batch: 0,
        batches: vec![BatchData {
            proof: [7; PROOF_LEN],
            transfers: vec![t],
        }],
    };
    (data.encode().unwrap(), 4 + 1 + 1 + 1 + PROOF_LEN + 1)
}

#[test]
fn flags_must_match_their_fields() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let (bytes, at) = one_transfer(transfer(&mut rng, 0));
    // Unknown bits.
    for bit in [6, 7] {
        let mut b = bytes.clone();
        b[at] |= 1 << bit;
        assert!(
            matches!(AnchorData::decode(&b), Err(DaError::Flags { .. })),
            "bit {bit}"
        );
    }
    // A flag with a zero value: an amount, a hash, equal "different" lengths.
    let mut b = bytes.clone();
    b[at] |= FLAG_FEE;
    b.insert(at + 1 + 128, 0);
    assert!(matches!(AnchorData::decode(&b), Err(DaError::Flags { .. })));
    let mut b = bytes.clone();
    b[at] |= FLAG_DEST;
    for _ in 0..32 {
        b.insert(at + 1 + 128, 0);
    }
    assert!(matches!(AnchorData::decode(&b), Err(DaError::Flags { .. })));
    let mut b = bytes.clone();
    b[at] |= FLAG_CT_LENGTHS_DIFFER;
    b.insert(at + 1 + 128 + 1, 89);
    assert!(matches!(AnchorData::decode(&b), Err(DaError::Flags { .. })));
}

#[test]
fn fields_must_be_canonical_and_counts_bounded() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let (bytes, at) = one_transfer(transfer(&mut rng, 0));
    let mut b = bytes.clone();
    b[at + 1 + 32..at + 1 + 64].fill(0xff);
    assert_eq!(
        AnchorData::decode(&b),
        Err(DaError::NonCanonicalField { at: at + 1 + 32 })
    );
    // More transfers than the batch size (2).
    let mut b = bytes.clone();
    b[at - 1] = 3;
    assert!(matches!(
        AnchorData::decode(&b),
        Err(DaError::Count {
            what: "transfer count",
            ..
        })
    ));
    // A ciphertext length over the cap.
    let mut b = bytes[..at + 1 + 128].to_vec();
    put_varint(&mut b, MAX_CIPHERTEXT_LEN as u64 + 1);
    assert!(matches!(
        AnchorData::decode(&b),
        Err(DaError::Count {
            what: "ciphertext length",
            ..
        })
    ));
}

#[test]
fn a_changed_byte_changes_the_data_or_is_refused() {
    let data = sample(8, 3);
    let bytes = data.encode().unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    for _ in 0..2000 {
        let mut b = bytes.clone();
        let i = rng.gen_range(0..b.len());
        b[i] ^= 1 << rng.gen_range(0..8);
        if let Ok(other) = AnchorData::decode(&b) {
            assert_ne!(other, data, "byte {i}");
            assert_eq!(
                other.encode().unwrap(),
                b,
                "byte {i}: one encoding per value"
            );
        }
    }
}

#[test]
fn unencodable_data_is_refused() {
    let mut data = sample(10, 2);
    data.batches[1].transfers[0].ciphertexts[0][0] ^= 1;
    assert_eq!(
        data.encode(),
        Err(DaError::CiphertextHash {
            batch: 301,
            slot: 0
        })
    );
    let mut data = sample(10, 1);
    data.batches.clear();
    assert!(matches!(data.encode(), Err(DaError::Unencodable(_))));
    let mut data = sample(10, 6);
    data.batch_size = 1;
    assert!(matches!(data.encode(), Err(DaError::Unencodable(_))));
}
