//! Packages checked input by input: P2WPKH inputs by Bitcoin Core's script interpreter
//! (libbitcoinconsensus), Taproot inputs (key path, and the envelopes' script path) by a BIP 341
//! / 342 checker below, since libbitcoinconsensus 0.105 (Core 25) has no Taproot support; Core
//! itself checks both in `tests/envelope_regtest.rs`. Also sizes, fees, bumps, replacement, the
//! standardness limit and the reader's refusals.

use super::*;
use crate::envelope::{leaf_script_len, CONTROL_BLOCK_LEN, MAX_PUSH};
use crate::payload::{proof_commitment, AnchorPayload};
use crate::tx::{MAX_STANDARD_TX_WEIGHT, MIN_STANDARD_TX_NONWITNESS_SIZE};
use ark_bn254::Fr;
use bitcoin::hashes::Hash;
use bitcoin::script::Instruction;
use bitcoin::secp256k1::{schnorr, Message, Secp256k1};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::taproot::{ControlBlock, LeafVersion, TapLeafHash};
use bitcoin::{Script, VarInt};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::collections::HashMap;

fn key(seed: u64) -> OperatorKey {
    OperatorKey::generate(&mut ChaCha20Rng::seed_from_u64(seed))
}

fn rate(sat_vb: u64) -> FeeRate {
    FeeRate::from_sat_per_vb(sat_vb).unwrap()
}

fn genesis(key: &OperatorKey, kind: KeyKind, sats: u64) -> PrevOut {
    PrevOut {
        outpoint: OutPoint::new(Txid::from_byte_array([7u8; 32]), 0),
        txout: TxOut {
            value: Amount::from_sat(sats),
            script_pubkey: key.script_pubkey(kind),
        },
    }
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

fn payload_for(data: &[u8], first_batch: u64, count: u8) -> AnchorPayloadV2 {
    let pcs: Vec<[u8; 32]> = (0..count)
        .map(|i| proof_commitment(&[i; 128], &Fr::from(u64::from(i))).unwrap())
        .collect();
    let data_hash: [u8; 32] = Sha256::digest(data).into();
    AnchorPayloadV2::new(first_batch, Fr::from(77u64), &data_hash, &pcs).unwrap()
}

/// Checks input `index` of `tx` spending `prevouts[index]` (all of `prevouts` are the
/// transaction's spent outputs): P2WPKH through libbitcoinconsensus, P2TR by BIP 341/342.
fn verify_input(tx: &Transaction, index: usize, prevouts: &[TxOut]) -> Result<(), String> {
    let spk = &prevouts[index].script_pubkey;
    if spk.is_p2tr() {
        return verify_taproot(tx, index, prevouts);
    }
    let bytes = bitcoin::consensus::encode::serialize(tx);
    spk.verify(index, prevouts[index].value, &bytes)
        .map_err(|e| e.to_string())
}

fn schnorr_check(
    sig: &[u8],
    key: &XOnlyPublicKey,
    sighash: impl Fn(TapSighashType) -> Result<[u8; 32], String>,
) -> Result<(), String> {
    let (sig, ty) = match sig.len() {
        64 => (sig, TapSighashType::Default),
        65 if sig[64] != 0 => (
            &sig[..64],
            TapSighashType::from_consensus_u8(sig[64]).map_err(|e| e.to_string())?,
        ),
        n => return Err(format!("signature of {n} bytes")),
    };
    let sig = schnorr::Signature::from_slice(sig).map_err(|e| e.to_string())?;
    Secp256k1::verification_only()
        .verify_schnorr(&sig, &Message::from_digest(sighash(ty)?), key)
        .map_err(|e| e.to_string())
}

/// BIP 341 (key path, script path with the commitment check) and a BIP 342 interpreter for the
/// opcodes envelopes use: pushes, `OP_0`, `OP_1..OP_16`, `OP_1NEGATE`, `OP_CHECKSIG`,
/// `OP_IF`/`OP_NOTIF`/`OP_ELSE`/`OP_ENDIF` (with MINIMALIF), pushes of at most 520 bytes even
/// when unexecuted, and the clean-stack rule. Any other opcode fails.
fn verify_taproot(tx: &Transaction, index: usize, prevouts: &[TxOut]) -> Result<(), String> {
    let spk = &prevouts[index].script_pubkey;
    let output_key = XOnlyPublicKey::from_slice(&spk.as_bytes()[2..]).map_err(|e| e.to_string())?;
    let mut items: Vec<&[u8]> = tx.input[index].witness.iter().collect();
    if items.len() >= 2 && items.last().unwrap().first() == Some(&0x50) {
        return Err("annex not supported by this checker".into());
    }
    let prevouts = Prevouts::All(prevouts);
    if items.len() == 1 {
        return schnorr_check(items[0], &output_key, |ty| {
            SighashCache::new(tx)
                .taproot_key_spend_signature_hash(index, &prevouts, ty)
                .map(|h| h.to_byte_array())
                .map_err(|e| e.to_string())
        });
    }
    let cb =
        ControlBlock::decode(items.pop().ok_or("empty witness")?).map_err(|e| e.to_string())?;
    let script = Script::from_bytes(items.pop().ok_or("no script")?);
    let secp = Secp256k1::verification_only();
    if !cb.verify_taproot_commitment(&secp, output_key, script) {
        return Err("control block does not commit to the script".into());
    }
    if cb.leaf_version != LeafVersion::TapScript {
        return Err("not a tapscript leaf".into());
    }
    let leaf_hash = TapLeafHash::from_script(script, LeafVersion::TapScript);
    let mut stack: Vec<Vec<u8>> = items.iter().map(|i| i.to_vec()).collect();
    let mut exec: Vec<bool> = Vec::new();
    for ins in script.instructions() {
        let ins = ins.map_err(|e| e.to_string())?;
        let executing = exec.iter().all(|e| *e);
        let op = match ins {
            Instruction::PushBytes(p) => {
                if p.len() > MAX_PUSH {
                    return Err("push over 520 bytes".into());
                }
                if executing {
                    stack.push(p.as_bytes().to_vec());
                }
                continue;
            }
            Instruction::Op(op) => op,
        };
        use bitcoin::opcodes::all::*;
        match op {
            OP_IF | OP_NOTIF => {
                let cond = if executing {
                    let top = stack.pop().ok_or("OP_IF on an empty stack")?;
                    let truth = match top.as_slice() {
                        [] => false,
                        [1] => true,
                        _ => return Err("MINIMALIF".into()),
                    };
                    truth == (op == OP_IF)
                } else {
                    false
                };
                exec.push(cond);
            }
            OP_ELSE => {
                let top = exec.last_mut().ok_or("OP_ELSE without OP_IF")?;
                *top = !*top;
            }
            OP_ENDIF => {
                exec.pop().ok_or("OP_ENDIF without OP_IF")?;
            }
            _ if !executing => {
                if !(op.to_u8() == 0x4f || (0x51..=0x60).contains(&op.to_u8())) {
                    return Err(format!("opcode {op} not supported by this checker"));
                }
            }
            OP_PUSHNUM_NEG1 => stack.push(vec![0x81]),
            _ if (0x51..=0x60).contains(&op.to_u8()) => stack.push(vec![op.to_u8() - 0x50]),
            OP_CHECKSIG => {
                let pk = stack.pop().ok_or("OP_CHECKSIG without key")?;
                let sig = stack.pop().ok_or("OP_CHECKSIG without signature")?;
                let pk = XOnlyPublicKey::from_slice(&pk).map_err(|e| e.to_string())?;
                if sig.is_empty() {
                    stack.push(vec![]);
                } else {
                    schnorr_check(&sig, &pk, |ty| {
                        SighashCache::new(tx)
                            .taproot_script_spend_signature_hash(index, &prevouts, leaf_hash, ty)
                            .map(|h| h.to_byte_array())
                            .map_err(|e| e.to_string())
                    })?;
                    stack.push(vec![1]);
                }
            }
            other => return Err(format!("opcode {other} not supported by this checker")),
        }
    }
    if !exec.is_empty() {
        return Err("unbalanced OP_IF".into());
    }
    match stack.as_slice() {
        [top] if top.iter().any(|b| *b != 0) => Ok(()),
        _ => Err(format!(
            "stack is not one true element: {} items",
            stack.len()
        )),
    }
}

/// Every input of every transaction of `p`.
fn verify_package(p: &AnchorPackage) -> Result<(), String> {
    verify_input(&p.commit, 0, std::slice::from_ref(&p.prev.txout))
        .map_err(|e| format!("commit: {e}"))?;
    for (i, r) in p.reveals.iter().enumerate() {
        verify_input(r, 0, &[p.commit.output[i].clone()])
            .map_err(|e| format!("reveal {i}: {e}"))?;
    }
    verify_input(&p.anchor, 0, &[p.commit.output[p.reveals.len()].clone()])
        .map_err(|e| format!("anchor: {e}"))
}

#[test]
fn every_input_verifies_for_one_and_three_envelopes_and_both_key_kinds() {
    for (kind, seed) in [(KeyKind::P2tr, 1u64), (KeyKind::P2wpkh, 2)] {
        let k = key(seed);
        for (len, envelopes) in [(3_000usize, 1usize), (900_000, 3)] {
            let data = random(len, seed);
            let payload = payload_for(&data, 40, 5);
            let prev = genesis(&k, kind, 5_000_000);
            let p = build_anchor_package(&k, &prev, &payload, &data, kind, rate(2)).unwrap();
            assert_eq!(p.envelope_count(), envelopes);
            verify_package(&p).unwrap_or_else(|e| panic!("{kind} {len}: {e}"));
            assert_eq!(
                extract_data(&p.commit, &p.reveals, &p.anchor).unwrap(),
                data
            );
            let contents = read_package(&p.commit, &p.reveals, &p.anchor).unwrap();
            assert_eq!(contents.payload, payload);
            assert_eq!(contents.operator, k.internal_key());
            assert_eq!(contents.change, p.change());
            assert!(payload.commits_to(&contents.data_hash(), &payload_pcs(5)));

            // One chain of spends: prev -> commit -> env_{k-1} -> anchor -> change.
            assert_eq!(p.commit.input[0].previous_output, prev.outpoint);
            let commit_txid = p.commit.compute_txid();
            for (i, r) in p.reveals.iter().enumerate() {
                assert_eq!(
                    r.input[0].previous_output,
                    OutPoint::new(commit_txid, i as u32)
                );
                assert_eq!(
                    r.output,
                    vec![TxOut {
                        value: Amount::ZERO,
                        script_pubkey: reveal_script()
                    }]
                );
                assert_eq!(r.base_size(), 66);
                assert!(r.base_size() >= MIN_STANDARD_TX_NONWITNESS_SIZE);
                // env_i holds exactly the reveal's fee at the rate.
                assert_eq!(p.commit.output[i].value, p.reveal_fees[i]);
                assert_eq!(p.reveal_fees[i], fee_for_vsize(rate(2), r.vsize() as u64));
            }
            assert_eq!(
                p.anchor.input[0].previous_output,
                OutPoint::new(commit_txid, (envelopes - 1) as u32)
            );
            assert_eq!(p.change().txout.script_pubkey, k.script_pubkey(kind));
            assert_eq!(
                p.anchor_fee,
                fee_for_vsize(rate(2), p.anchor.vsize() as u64)
            );
            // P2TR inputs sign to an exact size; P2WPKH ECDSA may come out a byte short.
            assert!(p.commit_fee >= fee_for_vsize(rate(2), p.commit.vsize() as u64));
            assert!(p.commit_fee <= fee_for_vsize(rate(2), p.commit.vsize() as u64 + 1));
            assert_eq!(
                prev.txout.value,
                p.total_fee() + p.change().txout.value,
                "nothing but fees and change"
            );
            for tx in p.transactions() {
                assert!(tx.weight() <= MAX_STANDARD_TX_WEIGHT);
                assert!(tx.input.iter().all(|i| i.sequence.is_rbf()));
            }
            assert_eq!(p.fits_mempool_at_once(), envelopes == 1);

            // A tampered leaf byte (a data byte) breaks the script-path spend.
            let mut bad = p.clone();
            let mut items: Vec<Vec<u8>> = bad.anchor.input[0]
                .witness
                .iter()
                .map(<[u8]>::to_vec)
                .collect();
            let at = items[1].len() / 2;
            items[1][at] ^= 1;
            bad.anchor.input[0].witness = Witness::from_slice(&items);
            assert!(verify_package(&bad).unwrap_err().contains("control block"));
            // So does a tampered signature, or a tampered anchor output (the signature covers it).
            let mut bad = p.clone();
            let mut items: Vec<Vec<u8>> = bad.anchor.input[0]
                .witness
                .iter()
                .map(<[u8]>::to_vec)
                .collect();
            items[0][3] ^= 1;
            bad.anchor.input[0].witness = Witness::from_slice(&items);
            assert!(verify_package(&bad).is_err());
            let mut bad = p.clone();
            bad.anchor.output[1].value -= Amount::from_sat(1);
            assert!(verify_package(&bad).is_err());
            if envelopes > 1 {
                let mut bad = p.clone();
                let mut items: Vec<Vec<u8>> = bad.reveals[1].input[0]
                    .witness
                    .iter()
                    .map(<[u8]>::to_vec)
                    .collect();
                items[1][100] ^= 1;
                bad.reveals[1].input[0].witness = Witness::from_slice(&items);
                assert!(verify_package(&bad).unwrap_err().starts_with("reveal 1"));
            }
            // And the commit's own signature.
            let mut bad = p.clone();
            bad.commit.output[0].value += Amount::from_sat(1);
            assert!(verify_package(&bad).unwrap_err().starts_with("commit"));
        }
    }
}

fn payload_pcs(count: u8) -> Vec<[u8; 32]> {
    (0..count)
        .map(|i| proof_commitment(&[i; 128], &Fr::from(u64::from(i))).unwrap())
        .collect()
}

#[test]
fn chunks_split_at_the_standard_limit() {
    assert_eq!(chunk_lengths(0), vec![0]);
    assert_eq!(chunk_lengths(MAX_ENVELOPE_DATA), vec![MAX_ENVELOPE_DATA]);
    assert_eq!(
        chunk_lengths(MAX_ENVELOPE_DATA + 1),
        vec![MAX_ENVELOPE_DATA, 1]
    );
    assert_eq!(
        chunk_lengths(900_000),
        vec![
            MAX_ENVELOPE_DATA,
            MAX_ENVELOPE_DATA,
            900_000 - 2 * MAX_ENVELOPE_DATA
        ]
    );
    let k = key(3);
    let data = random(MAX_ENVELOPE_DATA + 1, 3);
    let prev = genesis(&k, KeyKind::P2tr, 10_000_000);
    // The full chunk in the anchor (P2TR change, the larger script) is exactly 400,000 WU.
    let p = build_anchor_package(
        &k,
        &prev,
        &payload_for(&data[..MAX_ENVELOPE_DATA], 1, 1),
        &data[..MAX_ENVELOPE_DATA],
        KeyKind::P2tr,
        rate(1),
    )
    .unwrap();
    assert_eq!(p.envelope_count(), 1);
    assert_eq!(p.anchor.weight(), MAX_STANDARD_TX_WEIGHT);
    assert!(p.fits_mempool_at_once());
    // One more byte would make the anchor non-standard...
    let env = Envelope::new(k.internal_key(), &data);
    let mut over = anchor_tx(
        &env,
        OutPoint::null(),
        &p.payload,
        k.script_pubkey(KeyKind::P2tr),
        &[],
    );
    over.output[1].value = Amount::from_sat(1_000);
    assert!(over.weight() > MAX_STANDARD_TX_WEIGHT);
    assert!(matches!(
        check_relay_policy(&over, &[TxOut { value: Amount::from_sat(1_000_000), script_pubkey: env.script_pubkey() }]),
        Err(AnchorTxError::NonStandard(m)) if m.starts_with("weight")
    ));
    // ...so it goes to a second envelope, and the full one to a reveal.
    let p = build_anchor_package(
        &k,
        &prev,
        &payload_for(&data, 1, 1),
        &data,
        KeyKind::P2tr,
        rate(1),
    )
    .unwrap();
    assert_eq!(p.envelope_count(), 2);
    assert_eq!(p.reveals[0].weight().to_wu(), 399_524);
    assert_eq!(
        extract_data(&p.commit, &p.reveals, &p.anchor).unwrap(),
        data
    );
    verify_package(&p).unwrap();
    // Empty data is one empty envelope.
    let p = build_anchor_package(
        &k,
        &prev,
        &payload_for(&[], 1, 1),
        &[],
        KeyKind::P2tr,
        rate(1),
    )
    .unwrap();
    assert_eq!(p.envelope_count(), 1);
    assert_eq!(
        extract_data(&p.commit, &p.reveals, &p.anchor).unwrap(),
        Vec::<u8>::new()
    );
    verify_package(&p).unwrap();
}

/// Weight of an envelope spend's witness with a leaf of `leaf` bytes (item count, signature,
/// leaf, control block), from the layout alone.
fn witness_weight(leaf: usize) -> u64 {
    (1 + 1 + 64 + VarInt(leaf as u64).size() + leaf + 1 + CONTROL_BLOCK_LEN) as u64
}

#[test]
fn sizes_match_the_layout_and_measured_vbytes() {
    let k = key(4);
    println!("| transfers | batches | data bytes | envelopes | commit vB | reveals vB | anchor vB | total vB | fee at 1 sat/vB | vB per transfer |");
    for transfers in [1usize, 16, 64, 256] {
        let batches = transfers.div_ceil(16);
        let len = 11 + 130 * batches + (1 + 128 + 1 + 89 + 89) * transfers;
        let data = random(len, transfers as u64);
        let prev = genesis(&k, KeyKind::P2tr, 1_000_000);
        let p = build_anchor_package(
            &k,
            &prev,
            &payload_for(&data, 1, batches as u8),
            &data,
            KeyKind::P2tr,
            rate(1),
        )
        .unwrap();
        // Non-witness: version, 1 input (41), outputs, lock time; the anchor's outputs are the
        // 91-byte payload v2 output and a 43-byte P2TR change.
        assert_eq!(p.anchor.base_size(), 4 + 1 + 41 + 1 + 91 + 43 + 4);
        let leaf = leaf_script_len(len);
        let anchor_weight = 4 * 185 + 2 + witness_weight(leaf);
        assert_eq!(p.anchor.weight().to_wu(), anchor_weight);
        // The commit: P2TR key path input (64-byte signature), one 43-byte P2TR output.
        assert_eq!(p.commit.base_size(), 4 + 1 + 41 + 1 + 43 + 4);
        assert_eq!(p.commit.weight().to_wu(), 4 * 94 + 2 + 1 + 65);
        assert_eq!(p.total_fee().to_sat(), p.total_vsize());
        println!(
            "| {transfers} | {batches} | {len} | {} | {} | {} | {} | {} | {} | {:.1} |",
            p.envelope_count(),
            p.commit.vsize(),
            p.reveals.iter().map(|r| r.vsize()).sum::<usize>(),
            p.anchor.vsize(),
            p.total_vsize(),
            p.total_fee().to_sat(),
            p.total_vsize() as f64 / transfers as f64
        );
    }
}

#[test]
fn bump_anchor_resigns_only_the_anchor() {
    for (kind, len) in [(KeyKind::P2tr, 2_000usize), (KeyKind::P2wpkh, 900_000)] {
        let k = key(5);
        let data = random(len, 5);
        let prev = genesis(&k, kind, 3_000_000);
        let p = build_anchor_package(&k, &prev, &payload_for(&data, 9, 2), &data, kind, rate(1))
            .unwrap();
        let b = p.bump_anchor(&k, rate(20), BumpScope::Anchor).unwrap();
        assert_eq!((&b.commit, &b.reveals), (&p.commit, &p.reveals));
        assert_ne!(b.anchor_txid(), p.anchor_txid());
        assert_eq!(
            b.anchor.input[0].previous_output,
            p.anchor.input[0].previous_output
        );
        assert_eq!(b.anchor.output[0], p.anchor.output[0]);
        let va = b.anchor.vsize() as u64;
        assert_eq!(va, p.anchor.vsize() as u64);
        assert_eq!(b.anchor_fee, fee_for_vsize(rate(20), va));
        assert_eq!(
            b.change().txout.value + b.anchor_fee,
            p.change().txout.value + p.anchor_fee
        );
        verify_package(&b).unwrap();
        assert_eq!(
            extract_data(&b.commit, &b.reveals, &b.anchor).unwrap(),
            data
        );

        // Paying for the commit too (child pays for parent).
        let c = p
            .bump_anchor(&k, rate(20), BumpScope::AnchorAndCommit)
            .unwrap();
        let vc = p.commit.vsize() as u64;
        assert_eq!(
            c.anchor_fee + p.commit_fee,
            fee_for_vsize(rate(20), va + vc)
        );
        verify_package(&c).unwrap();

        // A "bump" to a lower rate still pays the old fee plus the incremental relay fee.
        let d = b.bump_anchor(&k, rate(1), BumpScope::Anchor).unwrap();
        assert_eq!(
            d.anchor_fee,
            b.anchor_fee + fee_for_vsize(INCREMENTAL_RELAY_FEE, va)
        );
        verify_package(&d).unwrap();

        assert_eq!(
            p.bump_anchor(&key(6), rate(20), BumpScope::Anchor),
            Err(PackageError::ForeignKey)
        );
        assert!(matches!(
            p.bump_anchor(&k, rate(10_000), BumpScope::Anchor),
            Err(PackageError::Tx(AnchorTxError::DustChange { .. }))
        ));
        assert!(matches!(
            p.bump_anchor(&k, FeeRate::from_sat_per_kwu(100), BumpScope::Anchor),
            Err(PackageError::Tx(AnchorTxError::FeeRateTooLow { .. }))
        ));
    }
}

#[test]
fn rebuild_pays_for_everything_it_replaces() {
    let k = key(7);
    for len in [5_000usize, 900_000] {
        let data = random(len, 7);
        let prev = genesis(&k, KeyKind::P2tr, 3_000_000);
        let p = build_anchor_package(
            &k,
            &prev,
            &payload_for(&data, 1, 1),
            &data,
            KeyKind::P2tr,
            rate(2),
        )
        .unwrap();
        for evicted in [p.total_fee(), p.commit_fee] {
            let r = p.rebuild(&k, rate(3), evicted).unwrap();
            // Same input: the new commit conflicts with the old one.
            assert_eq!(
                r.commit.input[0].previous_output,
                p.commit.input[0].previous_output
            );
            assert_ne!(r.commit.compute_txid(), p.commit.compute_txid());
            let vc = r.commit.vsize() as u64;
            assert!(r.commit_fee >= evicted + fee_for_vsize(INCREMENTAL_RELAY_FEE, vc));
            assert!(r.commit_fee >= fee_for_vsize(rate(3), vc));
            assert!(
                r.total_fee() >= evicted + fee_for_vsize(INCREMENTAL_RELAY_FEE, r.total_vsize())
            );
            for (i, rev) in r.reveals.iter().enumerate() {
                assert_eq!(r.reveal_fees[i], fee_for_vsize(rate(3), rev.vsize() as u64));
            }
            verify_package(&r).unwrap();
            assert_eq!(
                extract_data(&r.commit, &r.reveals, &r.anchor).unwrap(),
                data
            );
        }
        // Replacing only the commit is much cheaper than replacing everything.
        let all = p.rebuild(&k, rate(3), p.total_fee()).unwrap();
        let commit_only = p.rebuild(&k, rate(3), p.commit_fee).unwrap();
        assert!(commit_only.total_fee() < all.total_fee());
    }
}

#[test]
fn refuses_dust_foreign_inputs_and_bad_rates() {
    let k = key(8);
    let data = random(1_000, 8);
    let payload = payload_for(&data, 1, 1);
    let small = genesis(&k, KeyKind::P2tr, 300);
    match build_anchor_package(&k, &small, &payload, &data, KeyKind::P2tr, rate(1)) {
        Err(PackageError::Tx(AnchorTxError::DustChange {
            available,
            fee,
            change,
            dust_limit,
        })) => {
            assert_eq!(available, Amount::from_sat(300));
            assert_eq!(change, Amount::ZERO);
            assert!(fee > available);
            assert_eq!(dust_limit, Amount::from_sat(330));
        }
        other => panic!("expected DustChange, got {other:?}"),
    }
    // Exactly fees plus the dust limit is enough.
    let p = build_anchor_package(
        &k,
        &genesis(&k, KeyKind::P2tr, 100_000),
        &payload,
        &data,
        KeyKind::P2tr,
        rate(1),
    )
    .unwrap();
    let exact = genesis(&k, KeyKind::P2tr, p.total_fee().to_sat() + 330);
    let q = build_anchor_package(&k, &exact, &payload, &data, KeyKind::P2tr, rate(1)).unwrap();
    assert_eq!(q.change().txout.value, Amount::from_sat(330));
    let short = genesis(&k, KeyKind::P2tr, p.total_fee().to_sat() + 329);
    assert!(matches!(
        build_anchor_package(&k, &short, &payload, &data, KeyKind::P2tr, rate(1)),
        Err(PackageError::Tx(AnchorTxError::DustChange { .. }))
    ));
    let foreign = genesis(&key(9), KeyKind::P2tr, 100_000);
    assert!(matches!(
        build_anchor_package(&k, &foreign, &payload, &data, KeyKind::P2tr, rate(1)),
        Err(PackageError::Tx(AnchorTxError::ForeignPrevOut { .. }))
    ));
    assert!(matches!(
        build_anchor_package(&k, &exact, &payload, &data, KeyKind::P2tr, rate(10_001)),
        Err(PackageError::Tx(AnchorTxError::FeeRateTooHigh { .. }))
    ));
}

#[test]
fn relay_policy_catches_each_rule() {
    let k = key(10);
    let data = random(600_000, 10);
    let p = build_anchor_package(
        &k,
        &genesis(&k, KeyKind::P2tr, 1_000_000),
        &payload_for(&data, 1, 1),
        &data,
        KeyKind::P2tr,
        rate(1),
    )
    .unwrap();
    let spent = [p.commit.output[0].clone()];
    let reveal = &p.reveals[0];
    assert_eq!(check_relay_policy(reveal, &spent), Ok(p.reveal_fees[0]));
    let policy = |tx: &Transaction| match check_relay_policy(tx, &spent) {
        Err(AnchorTxError::NonStandard(m)) => m,
        other => panic!("expected NonStandard, got {other:?}"),
    };
    let mut t = reveal.clone();
    t.output.push(t.output[0].clone());
    assert_eq!(policy(&t), "2 OP_RETURN outputs");
    let mut t = reveal.clone();
    t.output[0].value = Amount::from_sat(1);
    assert!(policy(&t).contains("not zero-value"));
    let mut t = reveal.clone();
    t.output.push(TxOut {
        value: Amount::from_sat(329),
        script_pubkey: k.script_pubkey(KeyKind::P2tr),
    });
    assert!(policy(&t).contains("dust"));
    let mut t = reveal.clone();
    t.input[0].sequence = Sequence::MAX;
    assert!(policy(&t).contains("RBF"));
    let mut t = reveal.clone();
    let mut items: Vec<Vec<u8>> = t.input[0].witness.iter().map(<[u8]>::to_vec).collect();
    items.push(vec![0x50]);
    t.input[0].witness = Witness::from_slice(&items);
    assert!(policy(&t).contains("annex"));
    let mut t = reveal.clone();
    let mut items: Vec<Vec<u8>> = t.input[0].witness.iter().map(<[u8]>::to_vec).collect();
    items.insert(0, vec![0; 81]);
    t.input[0].witness = Witness::from_slice(&items);
    assert!(policy(&t).contains("stack item of 81"));
    let mut t = reveal.clone();
    t.output[0].script_pubkey = ScriptBuf::new_op_return([0u8; 2]);
    assert!(policy(&t).contains("below 65"));
    let mut t = reveal.clone();
    t.output.push(TxOut {
        value: p.reveal_fees[0] + Amount::from_sat(1),
        script_pubkey: k.script_pubkey(KeyKind::P2tr),
    });
    assert!(policy(&t).contains("exceed"));
    let mut t = reveal.clone();
    t.output.push(TxOut {
        value: p.reveal_fees[0] - Amount::from_sat(100),
        script_pubkey: k.script_pubkey(KeyKind::P2tr),
    });
    t.output[1].value = p.reveal_fees[0] - Amount::from_sat(10);
    assert!(policy(&t).contains("minimum relay fee"));
    let mut t = reveal.clone();
    let huge = TxOut {
        value: Amount::from_sat(u64::MAX),
        script_pubkey: k.script_pubkey(KeyKind::P2tr),
    };
    t.output.extend([huge.clone(), huge]);
    assert!(policy(&t).contains("21 million"));
    assert!(
        matches!(check_relay_policy(reveal, &[]), Err(AnchorTxError::NonStandard(m)) if m.contains("spent outputs"))
    );
    // A v1 anchor's check still holds.
    let v1 = AnchorPayload::new(1, Fr::from(1u64), &[0; 128], &Fr::from(2u64)).unwrap();
    let prev = genesis(&k, KeyKind::P2tr, 100_000);
    let a = crate::build_anchor_tx(&k, &prev, &v1, KeyKind::P2tr, rate(1)).unwrap();
    crate::tx::check_standard(&a.tx, &prev, a.fee).unwrap();
}

mod reading;

#[test]
fn bridge_package_sweeps_deposits_and_pays_withdrawals() {
    use crate::bridge::deposit_script_pubkey;
    use crate::bridge::flows::{BridgeFlows, Sweep};
    use veil_circuits::keys::PaymentAddress;

    let k = key(21);
    let owner = PaymentAddress {
        addr: Fr::from(1234u64),
        pk_enc: [9; 32],
    };
    let deposit = |vout: u32, sat: u64| Sweep {
        prev: PrevOut {
            outpoint: OutPoint::new(Txid::from_byte_array([8u8; 32]), vout),
            txout: TxOut {
                value: Amount::from_sat(sat),
                script_pubkey: deposit_script_pubkey(k.secp(), &k.internal_key(), &owner).unwrap(),
            },
        },
        owner,
    };
    let flows = BridgeFlows {
        sweeps: vec![deposit(0, 70_000), deposit(3, 30_000)],
        payouts: vec![TxOut {
            value: Amount::from_sat(45_000),
            script_pubkey: ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([5; 20])),
        }],
    };
    let data = random(2_000, 21);
    let prev = genesis(&k, KeyKind::P2tr, 20_000);
    let p = build_bridge_package(
        &k,
        &prev,
        &payload_for(&data, 0, 1),
        &data,
        KeyKind::P2tr,
        rate(2),
        &flows,
    )
    .unwrap();
    // Every input signs: the previous change and each deposit under its tweaked key.
    let spent: Vec<TxOut> = std::iter::once(prev.txout.clone())
        .chain(flows.sweeps.iter().map(|s| s.prev.txout.clone()))
        .collect();
    for i in 0..spent.len() {
        verify_input(&p.commit, i, &spent).unwrap_or_else(|e| panic!("commit input {i}: {e}"));
    }
    verify_input(&p.anchor, 0, &[p.commit.output[0].clone()]).unwrap();
    // Value is conserved: in = change + payouts + fees.
    let change = p.anchor.output[CHANGE_VOUT as usize].value;
    assert_eq!(
        prev.txout.value + flows.swept(),
        change + flows.paid() + p.total_fee()
    );
    assert_eq!(
        change.to_sat(),
        20_000 + 100_000 - 45_000 - p.total_fee().to_sat()
    );
    // Read back from the transactions alone, and re-built for a bump.
    let read = read_package(&p.commit, &p.reveals, &p.anchor).unwrap();
    assert_eq!(read.swept, flows.swept_outpoints());
    assert_eq!(read.payouts, flows.payouts);
    let again = AnchorPackage::from_transactions(
        &k,
        prev.clone(),
        flows.sweeps.clone(),
        p.commit.clone(),
        p.reveals.clone(),
        p.anchor.clone(),
        rate(2),
    )
    .unwrap();
    assert_eq!(again, p);
    assert_eq!(
        AnchorPackage::from_transactions(
            &k,
            prev.clone(),
            flows.sweeps[..1].to_vec(),
            p.commit.clone(),
            p.reveals.clone(),
            p.anchor.clone(),
            rate(2),
        )
        .unwrap_err(),
        PackageError::SweepMismatch
    );
    let bumped = p.bump_anchor(&k, rate(4), BumpScope::Anchor).unwrap();
    assert_eq!(bumped.anchor.output[2..], p.anchor.output[2..]);
    verify_input(&bumped.anchor, 0, &[bumped.commit.output[0].clone()]).unwrap();
    // Payouts the reserve cannot cover are refused.
    let short = genesis(&k, KeyKind::P2tr, 1_000);
    let mut greedy = flows.clone();
    greedy.payouts[0].value = Amount::from_sat(200_000);
    assert!(matches!(
        build_bridge_package(
            &k,
            &short,
            &payload_for(&data, 0, 1),
            &data,
            KeyKind::P2tr,
            rate(2),
            &greedy
        ),
        Err(PackageError::Tx(AnchorTxError::DustChange { .. }))
    ));
}
