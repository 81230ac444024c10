//! The reader: packages found by following spends, and everything that is not one package
//! refused with its own error.

use super::*;

/// Commit, reveals and anchor over hand-chosen envelopes `(key, chunk)` with unsigned (sized)
/// witnesses: what the reader sees (it does not check signatures).
fn forged(
    chunks: &[(XOnlyPublicKey, Vec<u8>)],
    payload: ScriptBuf,
) -> (Transaction, Vec<Transaction>, Transaction) {
    let envs: Vec<Envelope> = chunks.iter().map(|(k, c)| Envelope::new(*k, c)).collect();
    let commit = unsigned_tx(
        OutPoint::null(),
        Witness::new(),
        envs.iter()
            .map(|e| TxOut {
                value: Amount::from_sat(10_000),
                script_pubkey: e.script_pubkey(),
            })
            .collect(),
    );
    let txid = commit.compute_txid();
    let n = envs.len();
    let reveals = envs[..n - 1]
        .iter()
        .enumerate()
        .map(|(i, e)| reveal_tx(e, OutPoint::new(txid, i as u32)))
        .collect();
    let mut anchor = anchor_tx(
        &envs[n - 1],
        OutPoint::new(txid, (n - 1) as u32),
        &payload_for(&[], 1, 1),
        ScriptBuf::new(),
        &[],
    );
    anchor.output[0].script_pubkey = payload;
    (commit, reveals, anchor)
}

#[test]
fn reader_refuses_what_is_not_one_package() {
    let k = key(11);
    let data = random(900_000, 11);
    let p = build_anchor_package(
        &k,
        &genesis(&k, KeyKind::P2tr, 3_000_000),
        &payload_for(&data, 3, 2),
        &data,
        KeyKind::P2tr,
        rate(1),
    )
    .unwrap();
    // Found by following spends.
    let mut by_outpoint: HashMap<OutPoint, Transaction> = p
        .transactions()
        .into_iter()
        .skip(1)
        .map(|t| (t.input[0].previous_output, t.clone()))
        .collect();
    let (contents, reveals, anchor) =
        read_package_by_spends(&p.commit, |o| by_outpoint.get(&o).cloned()).unwrap();
    assert_eq!(
        (contents.data, reveals, anchor),
        (data.clone(), p.reveals.clone(), p.anchor.clone())
    );
    let commit_txid = p.commit.compute_txid();
    by_outpoint.remove(&OutPoint::new(commit_txid, 1));
    assert_eq!(
        read_package_by_spends(&p.commit, |o| by_outpoint.get(&o).cloned()).unwrap_err(),
        PackageError::MissingSpender { vout: 1 }
    );

    // Reveals out of order, missing, or the anchor of another package.
    let swapped = vec![p.reveals[1].clone(), p.reveals[0].clone()];
    assert_eq!(
        read_package(&p.commit, &swapped, &p.anchor).unwrap_err(),
        PackageError::WrongSpend {
            tx: "reveal 0".into(),
            vout: 0
        }
    );
    assert_eq!(
        read_package(&p.commit, &p.reveals[..1], &p.anchor).unwrap_err(),
        PackageError::CommitOutputs {
            found: 3,
            expected: 2
        }
    );
    let other = build_anchor_package(
        &k,
        &genesis(&k, KeyKind::P2tr, 3_000_001),
        &payload_for(&data, 3, 2),
        &data,
        KeyKind::P2tr,
        rate(1),
    )
    .unwrap();
    assert_eq!(
        read_package(&p.commit, &p.reveals, &other.anchor).unwrap_err(),
        PackageError::WrongSpend {
            tx: "anchor".into(),
            vout: 2
        }
    );
    // An extra input.
    let mut two_inputs = p.anchor.clone();
    two_inputs.input.push(two_inputs.input[0].clone());
    assert_eq!(
        read_package(&p.commit, &p.reveals, &two_inputs).unwrap_err(),
        PackageError::WrongSpend {
            tx: "anchor".into(),
            vout: 2
        }
    );
    // A reveal whose witness is not for its output.
    let mut wrong_witness = p.reveals.clone();
    wrong_witness[0].input[0].witness = p.reveals[1].input[0].witness.clone();
    assert_eq!(
        read_package(&p.commit, &wrong_witness, &p.anchor).unwrap_err(),
        PackageError::Envelope {
            index: 0,
            source: EnvelopeError::Commitment
        }
    );

    // Hand-made packages: two keys, a short first chunk, a v1 payload, an extra output.
    let v2 = p.payload.script_pubkey();
    let (c, r, a) = forged(
        &[
            (k.internal_key(), vec![1; MAX_ENVELOPE_DATA]),
            (key(12).internal_key(), vec![2; 10]),
        ],
        v2.clone(),
    );
    assert_eq!(
        read_package(&c, &r, &a).unwrap_err(),
        PackageError::KeyMismatch { index: 1 }
    );
    let (c, r, a) = forged(
        &[
            (k.internal_key(), vec![1; 1000]),
            (k.internal_key(), vec![2; 10]),
        ],
        v2.clone(),
    );
    assert_eq!(
        read_package(&c, &r, &a).unwrap_err(),
        PackageError::ChunkLength {
            index: 0,
            len: 1000
        }
    );
    let (c, r, a) = forged(
        &[
            (k.internal_key(), vec![1; MAX_ENVELOPE_DATA]),
            (k.internal_key(), vec![2; 10]),
        ],
        v2.clone(),
    );
    let read = read_package(&c, &r, &a).unwrap();
    assert_eq!(read.data.len(), MAX_ENVELOPE_DATA + 10);
    let v1 = AnchorPayload::new(1, Fr::from(1u64), &[0; 128], &Fr::from(2u64)).unwrap();
    let (c, r, a) = forged(&[(k.internal_key(), vec![3; 10])], v1.script_pubkey());
    assert_eq!(
        read_package(&c, &r, &a).unwrap_err(),
        PackageError::Payload(PayloadError::Version { found: 1 })
    );
    // Outputs after the change are the withdrawals paid; an anchor needs its change.
    let (c, r, mut a) = forged(&[(k.internal_key(), vec![3; 10])], v2);
    a.output.push(a.output[1].clone());
    assert_eq!(
        read_package(&c, &r, &a).unwrap().payouts,
        vec![a.output[1].clone()]
    );
    a.output.truncate(1);
    assert_eq!(
        read_package(&c, &r, &a).unwrap_err(),
        PackageError::AnchorOutputs { found: 1 }
    );
}
