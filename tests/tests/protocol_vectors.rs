//! The protocol's test vectors (`docs/vectors/*.json`, spec `docs/protocol.md`): every file is
//! recomputed here from the code and compared with the committed one, so a second implementation
//! can trust them and a protocol change cannot slip by unnoticed. A disagreement names the file
//! and the JSON path of every differing field. `VEIL_BLESS_VECTORS=1` rewrites the files instead.
//!
//! Where the spec states a formula that the code keeps private (the EdDSA nonce, the note key,
//! the map to circomlib's Baby Jubjub form), the vector's intermediate values are computed from
//! the spec's formula here and checked against what the code produces from them.

use std::path::{Path, PathBuf};

use ark_bn254::Fr;
use ark_ec::CurveGroup;
use ark_ed_on_bn254::Fr as Scalar;
use ark_ff::{BigInteger, Field, One, PrimeField, Zero};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};
use sha2::Digest;
use veil_circuits::batch::{batch_hash_fields, build_batch, BatchShape, BuiltBatch};
use veil_circuits::constants as c;
use veil_circuits::eddsa::{self, challenge, Signature};
use veil_circuits::field;
use veil_circuits::note::{self, create_note, decrypt_note, Note, Rseed};
use veil_circuits::poseidon::{hash_many, poseidon};
use veil_circuits::transfer::{sighash, OutputSpec, PublicAmounts, SpentNote, Transfer};
use veil_circuits::tree::empty_roots;
use veil_circuits::{Network, RollupState, SpendingKey};

#[path = "protocol_vectors/support.rs"]
mod support;
use support::*;

/// Poseidon for every arity, `hash_many` beyond eight inputs, and the domain tags.
#[test]
fn poseidon_vectors() {
    let per_arity: Vec<Value> = (1..=8u64)
        .map(|n| {
            let xs: Vec<Fr> = (1..=n).map(Fr::from).collect();
            json!({"width": n + 1, "inputs": hexes(&xs), "output": hx(&poseidon(&xs))})
        })
        .collect();
    let eleven: Vec<Fr> = (1..=11u64).map(Fr::from).collect();
    let tail = poseidon(&eleven[7..]);
    let mut outer = eleven[..7].to_vec();
    outer.push(tail);
    assert_eq!(hash_many(&eleven), poseidon(&outer));
    // DESIGN §2's circomlibjs reference value: an anchor outside this code base.
    assert_eq!(
        hx(&poseidon(&[Fr::from(1u64), Fr::from(2u64)])),
        "0x115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a"
    );
    let minus_one = -Fr::one();
    check_vector(
        "poseidon.json",
        json!({
            "about": "circomlib Poseidon (x^5, 8 full rounds, partial 56/57/56/60/60/63/64/63 for widths 2..9): state [0, inputs..], output state[0]. hash_many: more than 8 inputs -> H(x1..x7, hash_many(x8..xn)).",
            "domain_tags": {
                "DOM_NK": c::DOM_NK, "DOM_ADDR": c::DOM_ADDR, "DOM_CM": c::DOM_CM,
                "DOM_NF": c::DOM_NF, "DOM_SIG": c::DOM_SIG, "DOM_LEAF": c::DOM_LEAF,
                "DOM_STATE": c::DOM_STATE, "DOM_BATCH": c::DOM_BATCH
            },
            "per_arity": per_arity,
            "r_minus_1_and_zero": {"inputs": hexes(&[minus_one, Fr::zero()]), "output": hx(&poseidon(&[minus_one, Fr::zero()]))},
            "hash_many_11": {
                "inputs": hexes(&eleven),
                "tail_H_x8_to_x11": hx(&tail),
                "output": hx(&hash_many(&eleven))
            }
        }),
    );
}

/// Spending keys to both Baby Jubjub forms, `nk`, owner tag, encryption key and addresses; the
/// curve constants and the map between arkworks' and circomlib's forms.
#[test]
fn key_vectors() {
    let s = sqrt_a();
    let a = Fr::from(CIRCOM_A);
    let d = Fr::from(CIRCOM_D);
    // arkworks' d is circomlib's d / a, and the map lands on circomlib's curve.
    let ark_d = <ark_ed_on_bn254::EdwardsConfig as ark_ec::twisted_edwards::TECurveConfig>::COEFF_D;
    assert_eq!(ark_d, d * a.inverse().unwrap());
    assert_eq!(s * s, a);
    let g = eddsa::generator();
    let g_c = to_circom(&g);
    assert!(on_circom_curve(g_c));
    assert_eq!(from_circom(g_c), g);
    let base8 = circomlib_base8();
    assert!(on_circom_curve(base8));
    assert_eq!(
        circom_mul(base8, &Scalar::MODULUS.to_bits_le()),
        CIRCOM_IDENTITY
    );
    assert!(g_c != base8 && g_c != circom_neg(base8));
    // The map is a group homomorphism: (2G + 3G) maps to 2 G_c + 3 G_c.
    let (two, three) = (Scalar::from(2u64), Scalar::from(3u64));
    let sum = (g * two + g * three).into_affine();
    assert_eq!(
        to_circom(&sum),
        circom_add(circom_mul(g_c, &bits(&two)), circom_mul(g_c, &bits(&three)))
    );

    let keys: Vec<Value> = vector_keys()
        .iter()
        .map(|(label, bytes)| {
            let sk = SpendingKey::from_bytes(*bytes).unwrap();
            let sc = Scalar::from_le_bytes_mod_order(bytes);
            assert_eq!(sk.signing_key().scalar(), sc);
            let pk = sk.spend_auth_key().0;
            let pk_c = to_circom(&pk);
            assert!(on_circom_curve(pk_c));
            assert_eq!(
                circom_mul(g_c, &bits(&sc)),
                pk_c,
                "A = s G in circomlib form"
            );
            let nk = poseidon(&[Fr::from(c::DOM_NK), scalar_as_fr(&sc)]);
            assert_eq!(sk.nullifier_key(), nk);
            let addr = poseidon(&[Fr::from(c::DOM_ADDR), pk.x, pk.y, nk]);
            assert_eq!(sk.owner_tag(), addr);
            let enc = hkdf32(None, bytes, c::ENC_KEY_INFO);
            let pa = sk.payment_address();
            assert_eq!(x25519_public(&enc), pa.pk_enc);
            let mut payload = field::to_bytes_be(&addr).to_vec();
            payload.extend_from_slice(&pa.pk_enc);
            for (network, hrp) in [(Network::Regtest, "veilrt"), (Network::Mainnet, "veil")] {
                let hrp = bech32::Hrp::parse(hrp).unwrap();
                let expected = bech32::encode::<bech32::Bech32m>(hrp, &payload).unwrap();
                assert_eq!(pa.encode(network), expected, "bech32m(hrp, addr || pk_enc)");
            }
            json!({
                "label": label,
                "sk": hex::encode(bytes),
                "s": scalar_hex(&sc),
                "A": point(&pk),
                "A_circom": point_c(pk_c),
                "nk": hx(&nk),
                "addr": hx(&addr),
                "enc_secret": hex::encode(enc),
                "pk_enc": hex::encode(pa.pk_enc),
                "address_payload": hex::encode(&payload),
                "address_regtest": pa.encode(Network::Regtest),
                "address_mainnet": pa.encode(Network::Mainnet)
            })
        })
        .collect();
    check_vector(
        "keys.json",
        json!({
            "curve": {
                "base_field": "BN254 scalar field r = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001",
                "subgroup_order_l": scalar_hex_big(&Scalar::MODULUS),
                "cofactor": 8,
                "ark": {"a": "0x1", "d": hx(&ark_d), "generator_G": point(&g)},
                "circom": {
                    "a": CIRCOM_A, "d": CIRCOM_D,
                    "sqrt_a": hx(&s),
                    "generator_G": point_c(g_c),
                    "circomlib_Base8_not_used": point_c(base8)
                },
                "map": "x_circom = x_ark * sqrt_a^-1, y_circom = y_ark (sqrt_a: the root of 168700 below r/2)"
            },
            "keys": keys
        }),
    );
}

/// Note commitment and encryption with fixed seeds, and a `ciphertext_hash`.
#[test]
fn note_vectors() {
    let sks = keys();
    let (alice, bob) = (&sks[0], &sks[1]);
    let rho = Fr::from(0x1234u64);
    let memo: [u8; 32] = *b"veil protocol vectors: one memo.";
    let cases = [
        ("compact, to key 1", bob, 123_456_789u64, 0x20u8, None),
        ("compact, to key 0", alice, 0, 0x40, None),
        ("with memo, to key 1", bob, 42, 0x60, Some(&memo)),
    ];
    let mut cts = Vec::new();
    let notes: Vec<Value> = cases
        .iter()
        .map(|(label, to, value, seed0, memo)| {
            let seed: [u8; 32] = std::array::from_fn(|i| seed0 + i as u8);
            let rseed = Rseed::from_bytes(seed);
            let pa = to.payment_address();
            let (n, ct) = create_note(&pa, *value, rho, &rseed, *memo);
            // r and esk from the seed, by the spec's formulas.
            let r = Fr::from_le_bytes_mod_order(&sha512(&[c::NOTE_RCM_TAG, &seed]));
            assert_eq!(n.r, r);
            let esk: [u8; 32] = sha512(&[c::NOTE_ESK_TAG, &seed])[..32].try_into().unwrap();
            let epk = x25519_public(&esk);
            let shared = x25519(&esk, &pa.pk_enc);
            let salt = [&epk[..], &pa.pk_enc[..]].concat();
            let key = hkdf32(Some(&salt), &shared, c::NOTE_KEY_INFO);
            let mut pt = vec![if memo.is_some() {
                c::NOTE_LEAD_BYTE_MEMO
            } else {
                c::NOTE_LEAD_BYTE
            }];
            pt.extend_from_slice(&value.to_be_bytes());
            pt.extend_from_slice(&seed);
            if let Some(m) = memo {
                pt.extend_from_slice(&m[..]);
            }
            let mut expected = epk.to_vec();
            expected.extend(chacha20poly1305_seal(&key, &pt));
            assert_eq!(
                ct, expected,
                "{label}: ciphertext = epk || AEAD(key, 0, pt)"
            );
            let cm = poseidon(&[Fr::from(c::DOM_CM), pa.addr, Fr::from(*value), rho, r]);
            assert_eq!(n.commitment(), cm);
            let (opened, got_memo) = decrypt_note(to, &ct, rho, cm).unwrap();
            assert_eq!((opened, got_memo), (n, memo.copied()));
            cts.push(ct.clone());
            json!({
                "label": label,
                "recipient_address": pa.encode(Network::Regtest),
                "addr": hx(&pa.addr), "pk_enc": hex::encode(pa.pk_enc),
                "value": value, "rho": hx(&rho), "rseed": hex::encode(seed),
                "memo": memo.map(hex::encode),
                "r": hx(&r),
                "cm": hx(&cm),
                "esk": hex::encode(esk), "epk": hex::encode(epk),
                "shared_secret": hex::encode(shared), "aead_key": hex::encode(key),
                "plaintext": hex::encode(&pt),
                "ciphertext": hex::encode(&ct),
                "ciphertext_len": ct.len()
            })
        })
        .collect();
    let pair = [cts[0].clone(), cts[1].clone()];
    let ch = note::ciphertext_hash(&pair);
    let mut preimage = c::CIPHERTEXT_HASH_TAG.to_vec();
    for ct in &pair {
        preimage.extend_from_slice(&(ct.len() as u32).to_be_bytes());
        preimage.extend_from_slice(ct);
    }
    let mut digest: [u8; 32] = sha2::Sha256::digest(&preimage).into();
    assert_eq!(
        field::tagged_sha256(c::CIPHERTEXT_HASH_TAG, &[&preimage[21..]]),
        ch
    );
    let full_digest = hex::encode(digest);
    digest[0] = 0;
    assert_eq!(field::to_bytes_be(&ch), digest);
    check_vector(
        "note.json",
        json!({
            "notes": notes,
            "ciphertext_hash": {
                "of": "notes[0].ciphertext, notes[1].ciphertext",
                "sha256_preimage": hex::encode(&preimage),
                "sha256": full_digest,
                "value": hx(&ch)
            }
        }),
    );
}

/// Nullifiers of a real and a dummy input, and the output `rho_j = H(nf_1, j)` for `j = 1, 2`.
#[test]
fn nullifier_vectors() {
    let h = history();
    let t = &h.transfer;
    let nk = t.pgk.nk;
    let inputs: Vec<Value> = t
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let cm = input.note.commitment();
            let nf = poseidon(&[Fr::from(c::DOM_NF), nk, cm, Fr::from(input.position)]);
            assert_eq!(nf, t.public.nullifiers[i]);
            json!({
                "note": note_json(&input.note), "position": input.position, "dummy": input.is_dummy(),
                "cm": hx(&cm), "nk": hx(&nk), "nf": hx(&nf)
            })
        })
        .collect();
    let nf1 = t.public.nullifiers[0];
    let rhos: Vec<Value> = (0..2)
        .map(|j| {
            let rho = poseidon(&[nf1, Fr::from(j as u64 + 1)]);
            assert_eq!(t.outputs[j].rho, rho, "rho_j counts j from 1");
            assert_ne!(t.outputs[j].rho, poseidon(&[nf1, Fr::from(j as u64)]));
            json!({"j": j + 1, "rho": hx(&rho), "output_cm": hx(&t.public.commitments[j])})
        })
        .collect();
    check_vector(
        "nullifier.json",
        json!({"spender_sk": hex::encode(vector_keys()[0].1), "inputs": inputs, "nf_1": hx(&nf1), "output_rhos": rhos}),
    );
}

/// A deposit, a private transfer and a withdrawal: the ten public fields, the inner hash, the
/// sighash, the signature (nonce, challenge, both curve forms), the wire JSON and the id.
#[test]
fn sighash_vectors() {
    let h = history();
    let cases = [
        ("deposit", &h.deposit, h.deposit_signer),
        ("transfer", &h.transfer, vector_keys()[0].1),
        ("withdrawal", &h.withdrawal, vector_keys()[1].1),
    ];
    let g_c = to_circom(&eddsa::generator());
    let out: Vec<Value> = cases
        .iter()
        .map(|(kind, t, sk_bytes)| {
            let p = &t.public;
            let f = p.fields();
            let inner = poseidon(&f[6..]);
            let mut outer = vec![Fr::from(c::DOM_SIG)];
            outer.extend_from_slice(&f[..6]);
            outer.push(inner);
            let sh = poseidon(&outer);
            assert_eq!(sighash(&f), sh);
            assert_eq!(p.sighash(), sh);
            // The signature: deterministic nonce, challenge, S = r + 8 h s.
            let sk = SpendingKey::from_bytes(*sk_bytes).unwrap();
            let s = sk.signing_key().scalar();
            let sig = t.signature;
            assert_eq!(sk.sign(sh), sig);
            let nonce = Scalar::from_le_bytes_mod_order(&blake2b512(&[
                b"veil/eddsa-nonce",
                sk_bytes,
                &sh.into_bigint().to_bytes_le(),
            ]));
            assert_eq!(eddsa::mul_generator(nonce), sig.r);
            let a = t.pgk.ak.0;
            let hh = challenge(&sig.r, &a, sh);
            assert_eq!(hh, poseidon(&[sig.r.x, sig.r.y, a.x, a.y, sh]));
            let h_mod_l = Scalar::from_le_bytes_mod_order(&hh.into_bigint().to_bytes_le());
            assert_eq!(sig.s, nonce + h_mod_l * Scalar::from(8u64) * s);
            assert_eq!(t.pgk.ak.verify(sh, &sig), Ok(()));
            // circomlib form: S G_c == R_c + (8 h) A_c, with h the 254-bit integer.
            let eight_h = {
                let mut big = hh.into_bigint().to_bits_le();
                big.splice(0..0, [false, false, false]);
                big
            };
            assert_eq!(
                circom_mul(g_c, &bits(&sig.s)),
                circom_add(to_circom(&sig.r), circom_mul(to_circom(&a), &eight_h))
            );
            // Bytes: R's y little-endian, bit 7 of byte 31 set iff R.x (arkworks form) > -R.x;
            // then S little-endian.
            let mut sig_bytes = sig.r.y.into_bigint().to_bytes_le();
            if sig.r.x > -sig.r.x {
                sig_bytes[31] |= 0x80;
            }
            sig_bytes.extend(sig.s.into_bigint().to_bytes_le());
            assert_eq!(sig.to_bytes().to_vec(), sig_bytes);
            assert_eq!(Signature::from_bytes(&sig.to_bytes()), Ok(sig));
            let mut request = serde_json::to_value(veil_wire::TransferRequest::from(*t)).unwrap();
            let mut extra = json!({});
            if *kind == "withdrawal" {
                request["withdrawal_script"] = json!(hex::encode(h.withdrawal_script.as_bytes()));
                extra = json!({"bitcoin_address": WITHDRAWAL_ADDRESS, "script_pubkey": hex::encode(h.withdrawal_script.as_bytes())});
            }
            if *kind == "deposit" {
                let bytes = bitcoin::consensus::encode::serialize(&h.outpoint);
                extra = json!({"outpoint": DEPOSIT_OUTPOINT, "outpoint_consensus_bytes": hex::encode(bytes)});
            }
            // Every field of the wire body reads back into the same transfer.
            let back: veil_wire::TransferRequest = serde_json::from_value(request.clone()).unwrap();
            assert_eq!(&Transfer::try_from(&back).unwrap(), *t);
            json!({
                "kind": kind,
                "signer_sk": hex::encode(sk_bytes),
                "fields": {
                    "nf_1": hx(&f[0]), "nf_2": hx(&f[1]), "cm_1": hx(&f[2]), "cm_2": hx(&f[3]),
                    "public_in": p.public_in, "public_out": p.public_out, "fee": p.fee,
                    "dest": hx(&f[7]), "deposit_ref": hx(&f[8]), "ciphertext_hash": hx(&f[9])
                },
                "fields_in_order": hexes(&f),
                "inner_H_fee_dest_deposit_ref_ciphertext_hash": hx(&inner),
                "sighash": hx(&sh),
                "bitcoin": extra,
                "signature": {
                    "bytes": hex::encode(sig.to_bytes()),
                    "nonce_r": scalar_hex(&nonce),
                    "R": point(&sig.r), "R_circom": point_c(to_circom(&sig.r)),
                    "challenge_h": hx(&hh),
                    "S": scalar_hex(&sig.s),
                    "A": point(&a), "A_circom": point_c(to_circom(&a))
                },
                "transfer_id": veil_wire::transfer_id(t),
                "request": request
            })
        })
        .collect();
    check_vector("sighash.json", json!({"transfers": out}));
}

/// Batch 0 (B = 2): the deposit in slot 0, a padding slot 1; then batches 1 and 2.
#[test]
fn batch_hash_vectors() {
    let h = history();
    let zero_fields = [Fr::zero(); c::SLOT_PUBLIC_FIELDS];
    let pad = sighash(&zero_fields);
    let mut pad_in = vec![Fr::from(c::DOM_SIG)];
    pad_in.extend_from_slice(&[Fr::zero(); 6]);
    pad_in.push(poseidon(&[Fr::zero(); 4]));
    assert_eq!(pad, poseidon(&pad_in));
    let batches: Vec<Value> = h
        .batches
        .iter()
        .enumerate()
        .map(|(n, b)| {
            let mut chain = vec![poseidon(&[Fr::from(c::DOM_BATCH), Fr::from(n as u64)])];
            let mut slots = Vec::new();
            for s in 0..h.shape.batch_size {
                let fields = b.public_fields.get(s).copied().unwrap_or(zero_fields);
                let sh = sighash(&fields);
                chain.push(poseidon(&[*chain.last().unwrap(), sh]));
                slots.push(json!({"padding": s >= b.public_fields.len(), "fields": hexes(&fields), "sighash": hx(&sh)}));
            }
            let last = *chain.last().unwrap();
            assert_eq!(last, b.public_inputs.batch_hash);
            assert_eq!(last, batch_hash_fields(n as u64, h.shape.batch_size, &b.public_fields));
            json!({"batch_number": n, "batch_size": h.shape.batch_size, "slots": slots, "chain": hexes(&chain), "batch_hash": hx(&last)})
        })
        .collect();
    check_vector(
        "batch_hash.json",
        json!({"padding_sighash": hx(&pad), "batches": batches}),
    );
}

/// The genesis state and the state after each batch of the history (D = 8): leaves, roots,
/// counts, state roots, and one note's Merkle path.
#[test]
fn state_root_vectors() {
    let h = history();
    let levels = h.shape.depth / 2;
    let e = empty_roots(levels);
    for i in 0..levels {
        assert_eq!(e[i + 1], poseidon(&[e[i]; 4]));
    }
    let states: Vec<Value> = h.states.iter().map(state_json).collect();
    for (i, b) in h.batches.iter().enumerate() {
        assert_eq!(h.states[i].state_root(), b.public_inputs.old_state_root);
        assert_eq!(h.states[i + 1].state_root(), b.public_inputs.new_state_root);
    }
    let last = h.states.last().unwrap();
    // Position 9 = base-4 "21": child 1 at level 0, child 2 at level 1.
    let pos = 9u64;
    let path = last.notes.path(pos).unwrap();
    let leaf = last.notes.leaf(pos);
    assert_eq!(
        leaf, h.withdrawal.public.commitments[1],
        "batch 2 starts at note 8"
    );
    assert_eq!(path.root(leaf, pos), last.notes.root());
    // The same root by the spec's rule: at level i, base-4 digit i of the position is the
    // node's child index among its three siblings (in child order).
    let folded = path
        .siblings
        .iter()
        .enumerate()
        .fold(leaf, |cur, (i, sibs)| {
            let digit = ((pos >> (2 * i)) & 3) as usize;
            let mut children = sibs.to_vec();
            children.insert(digit, cur);
            poseidon(&children)
        });
    assert_eq!(folded, last.notes.root());
    check_vector(
        "state_root.json",
        json!({
            "depth": h.shape.depth, "batch_size": h.shape.batch_size,
            "empty_roots": hexes(e),
            "states": states,
            "note_path": {
                "after_state": h.states.len() - 1, "position": pos, "leaf": hx(&leaf),
                "siblings": path.siblings.iter().map(|l| hexes(l)).collect::<Vec<_>>(),
                "root": hx(&path.root(leaf, pos))
            }
        }),
    );
}

/// Anchor data and payloads for batch 0 of the committed fixture history (B = 2, D = 8), with
/// its committed proof.
#[test]
fn anchor_payload_vectors() {
    check_vector("anchor_payload.json", anchor_vector());
}

fn state_json(st: &RollupState) -> Value {
    let sum = st.summary();
    let root = poseidon(&[
        Fr::from(c::DOM_STATE),
        sum.note_root,
        Fr::from(sum.note_count),
        sum.nullifier_root,
        Fr::from(sum.nullifier_count),
    ]);
    assert_eq!(root, st.state_root());
    let notes: Vec<Value> = (0..st.notes.count())
        .filter(|&p| !st.notes.leaf(p).is_zero())
        .map(|p| json!({"position": p, "cm": hx(&st.notes.leaf(p))}))
        .collect();
    let nullifiers: Vec<Value> = (0..st.nullifiers.count())
        .filter_map(|i| st.nullifiers.leaf(i).map(|l| (i, *l)))
        .map(|(i, l)| {
            let hash = poseidon(&[
                Fr::from(c::DOM_LEAF),
                l.value,
                Fr::from(l.next_index),
                l.next_value,
            ]);
            assert_eq!(hash, l.hash());
            json!({"index": i, "value": hx(&l.value), "next_index": l.next_index, "next_value": hx(&l.next_value), "hash": hx(&hash)})
        })
        .collect();
    json!({
        "note_leaves": notes, "nullifier_leaves": nullifiers,
        "note_root": hx(&sum.note_root), "note_count": sum.note_count,
        "nullifier_root": hx(&sum.nullifier_root), "nullifier_count": sum.nullifier_count,
        "state_root": hx(&root)
    })
}

fn note_json(n: &Note) -> Value {
    json!({"addr": hx(&n.addr), "value": n.value, "rho": hx(&n.rho), "r": hx(&n.r)})
}

/// The spending keys of the vectors: `(label, bytes)`.
fn vector_keys() -> Vec<(&'static str, [u8; 32])> {
    vec![
        ("key 0: bytes 0x00..0x1f", std::array::from_fn(|i| i as u8)),
        ("key 1: 0x42 x 32", [0x42; 32]),
        ("key 2: 0xff x 32 (reduced mod l)", [0xff; 32]),
    ]
}

fn keys() -> Vec<SpendingKey> {
    vector_keys()
        .iter()
        .map(|(_, b)| SpendingKey::from_bytes(*b).unwrap())
        .collect()
}

const DEPOSIT_OUTPOINT: &str = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b:1";
const WITHDRAWAL_ADDRESS: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

/// The history behind the sighash, nullifier, batch-hash and state vectors (B = 2, D = 8):
/// batch 0 a deposit of 1,000 to key 0; batch 1 key 0 pays key 1 300 (change 700); batch 2 key 1
/// withdraws 200 with fee 10, paying key 0 50 (change 40).
struct History {
    shape: BatchShape,
    deposit_signer: [u8; 32],
    outpoint: bitcoin::OutPoint,
    withdrawal_script: bitcoin::ScriptBuf,
    deposit: Transfer,
    transfer: Transfer,
    withdrawal: Transfer,
    batches: Vec<BuiltBatch>,
    /// Genesis, then the state after each batch.
    states: Vec<RollupState>,
}

fn history() -> History {
    let shape = BatchShape::new(2, 8).unwrap();
    let sks = keys();
    let (alice, bob) = (&sks[0], &sks[1]);
    let mut rng = ChaCha20Rng::seed_from_u64(18);
    let mut state = RollupState::genesis(shape.depth);
    let mut states = vec![state.clone()];
    let mut batches = Vec::new();
    let mut apply = |t: &Transfer, state: &mut RollupState, states: &mut Vec<RollupState>| {
        let n = batches.len() as u64;
        batches.push(build_batch(state, shape, n, std::slice::from_ref(t)).unwrap());
        states.push(state.clone());
    };
    let out = |to: &SpendingKey, value| OutputSpec {
        to: to.payment_address(),
        value,
    };

    let deposit_signer = [0x5d; 32];
    let signer = SpendingKey::from_bytes(deposit_signer).unwrap();
    let outpoint = veil_bitcoin::refs::parse_outpoint(DEPOSIT_OUTPOINT).unwrap();
    let dummies = [
        Transfer::dummy_input(&signer, &mut rng),
        Transfer::dummy_input(&signer, &mut rng),
    ];
    let amounts = PublicAmounts {
        public_in: 1_000,
        deposit_ref: veil_bitcoin::refs::deposit_ref(&outpoint),
        ..Default::default()
    };
    let outs = [out(alice, 1_000), out(alice, 0)];
    let deposit = Transfer::create(&signer, dummies, outs, amounts, &mut rng);
    apply(&deposit, &mut state, &mut states);

    let note0 = SpentNote {
        note: deposit.outputs[0],
        position: 0,
    };
    let inputs = [note0, Transfer::dummy_input(alice, &mut rng)];
    let outs = [out(bob, 300), out(alice, 700)];
    let transfer = Transfer::create(alice, inputs, outs, PublicAmounts::default(), &mut rng);
    apply(&transfer, &mut state, &mut states);

    // Batch 1's notes start at 4 (the note count 2 rounded up to 2B = 4).
    let bob_note = SpentNote {
        note: transfer.outputs[0],
        position: 4,
    };
    let withdrawal_script =
        veil_bitcoin::refs::parse_address(WITHDRAWAL_ADDRESS, Network::Regtest).unwrap();
    let amounts = PublicAmounts {
        public_out: 200,
        fee: 10,
        dest: veil_bitcoin::refs::withdrawal_dest(&withdrawal_script),
        ..Default::default()
    };
    let inputs = [bob_note, Transfer::dummy_input(bob, &mut rng)];
    let outs = [out(alice, 50), out(bob, 40)];
    let withdrawal = Transfer::create(bob, inputs, outs, amounts, &mut rng);
    apply(&withdrawal, &mut state, &mut states);

    History {
        shape,
        deposit_signer,
        outpoint,
        withdrawal_script,
        deposit,
        transfer,
        withdrawal,
        batches,
        states,
    }
}

fn dir_of_vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors")
}

/// Compares `computed` with `docs/vectors/{name}`, or writes it with `VEIL_BLESS_VECTORS=1`.
fn check_vector(name: &str, computed: Value) {
    let path = dir_of_vectors().join(name);
    if std::env::var("VEIL_BLESS_VECTORS").as_deref() == Ok("1") {
        std::fs::create_dir_all(dir_of_vectors()).unwrap();
        let text = serde_json::to_string_pretty(&computed).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
        eprintln!("wrote docs/vectors/{name}");
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("docs/vectors/{name}: {e} (VEIL_BLESS_VECTORS=1 writes it)"));
    let committed: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("docs/vectors/{name} is not JSON: {e}"));
    let mut diffs = Vec::new();
    json_diff("$", &committed, &computed, &mut diffs);
    assert!(
        diffs.is_empty(),
        "docs/vectors/{name} disagrees with the code in {} field(s) (if the protocol changed on \
         purpose, rerun with VEIL_BLESS_VECTORS=1 and update docs/protocol.md):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
