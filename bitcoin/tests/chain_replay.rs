//! Every rule of [`veil_bitcoin::chain::replay`], offline: a real two-batch history (B = 2,
//! D = 8, dev-seed keys cached under the target dir, real proofs), its anchor package signed by
//! an operator key, and the chain as `walk_anchor_chain` would return it. The honest chain
//! replays without a problem; each forgery below is reported with exactly its line, and each
//! test fails if the check it names is taken out of `replay`.

use std::path::Path;
use std::sync::OnceLock;

use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash, FeeRate, Network, OutPoint, TxOut, Txid};
use veil_bitcoin::chain::{replay, ChainPackage, ChainWalk, Replay, Unrevealed};
use veil_bitcoin::package::{build_anchor_package, AnchorPackage};
use veil_bitcoin::payload::{compressed_proof_bytes, AnchorPayloadV2};
use veil_bitcoin::{proof_commitment, KeyKind, OperatorKey, PrevOut};
use veil_circuits::batch::{BatchPublicInputs, BatchShape};
use veil_circuits::Fr;
use veil_fixtures::Scenario;
use veil_prover::Prover;
use veil_verifier::da::{AnchorData, BatchData, TransferData};

fn shape() -> BatchShape {
    BatchShape::new(2, 8).unwrap()
}

/// Two proven batches: two deposits, then Alice pays Bob.
struct History {
    data: AnchorData,
    inputs: Vec<BatchPublicInputs>,
    vk: ark_groth16::PreparedVerifyingKey<ark_bn254::Bn254>,
}

fn history() -> &'static History {
    static H: OnceLock<History> = OnceLock::new();
    H.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let (pk, vk) = veil_prover::load_or_setup_dev_keys(dir, shape(), 1).unwrap();
        let prover = Prover::new(shape(), pk).unwrap();
        let mut sc = Scenario::new(shape(), 77);
        let alice = sc.new_key();
        let bob = sc.new_key();
        let deposits = vec![sc.deposit(&alice, 1000), sc.deposit(&bob, 300)];
        let b0 = sc.apply(&deposits).unwrap();
        let pay = vec![sc.pay(&alice, &bob, 250, 0, 5)];
        let b1 = sc.apply(&pay).unwrap();
        let mut batches = Vec::new();
        let mut inputs = Vec::new();
        for (built, ts) in [(b0, deposits), (b1, pay)] {
            let proof = prover.prove_built(&built, &mut rand::rngs::OsRng).unwrap();
            batches.push(BatchData {
                proof: compressed_proof_bytes(&proof),
                transfers: ts
                    .iter()
                    .map(|t| TransferData {
                        public: t.public,
                        ciphertexts: t.ciphertexts.clone(),
                    })
                    .collect(),
            });
            inputs.push(built.public_inputs);
        }
        History {
            data: AnchorData {
                batch_size: 2,
                first_batch: 0,
                batches,
            },
            inputs,
            vk: veil_verifier::prepare(&vk),
        }
    })
}

fn key() -> OperatorKey {
    OperatorKey::from_secret_bytes(&[0x33; 32]).unwrap()
}

fn genesis() -> PrevOut {
    PrevOut {
        outpoint: OutPoint::new(Txid::from_byte_array([9; 32]), 0),
        txout: TxOut {
            value: Amount::from_sat(50_000),
            script_pubkey: key()
                .address(KeyKind::P2tr, Network::Regtest)
                .script_pubkey(),
        },
    }
}

/// The package for `bytes` (carried) under a payload over `first`, `root`, `hash` and the
/// history's proof commitments.
fn package(first: u64, root: Fr, bytes: &[u8], hash: &[u8; 32], pcs: &[[u8; 32]]) -> AnchorPackage {
    let payload = AnchorPayloadV2::new(first, root, hash, pcs).unwrap();
    let rate = FeeRate::from_sat_per_vb(2).unwrap();
    build_anchor_package(&key(), &genesis(), &payload, bytes, KeyKind::P2tr, rate).unwrap()
}

fn commitments(data: &AnchorData, inputs: &[BatchPublicInputs]) -> Vec<[u8; 32]> {
    data.batches
        .iter()
        .zip(inputs)
        .map(|(b, pi)| proof_commitment(&b.proof, &pi.batch_hash).unwrap())
        .collect()
}

/// The honest package of the history, or one built over `data` as the operator signs it.
fn honest_over(data: &AnchorData) -> AnchorPackage {
    let h = history();
    let bytes = data.encode().unwrap();
    let root = h.inputs.last().unwrap().new_state_root;
    package(
        data.first_batch,
        root,
        &bytes,
        &data.data_hash().unwrap(),
        &commitments(data, &h.inputs),
    )
}

fn walk(p: &AnchorPackage) -> ChainWalk {
    ChainWalk {
        genesis_output: genesis().txout,
        packages: vec![ChainPackage {
            commit: p.commit.clone(),
            reveals: p.reveals.clone(),
            anchor: p.anchor.clone(),
            swept: vec![],
            block_hash: BlockHash::from_byte_array([1; 32]),
            block_height: 101,
        }],
        unrevealed: None,
        tip_height: 101,
    }
}

fn run(walk: &ChainWalk) -> Replay {
    replay(walk, shape(), &history().vk, &mut rand::rngs::OsRng)
}

fn lines(r: &Replay) -> Vec<String> {
    r.problems
        .iter()
        .map(|p| format!("batch {}: {}", p.batch, p.message))
        .collect()
}

#[test]
fn the_honest_chain_replays_without_a_problem() {
    let h = history();
    let p = honest_over(&h.data);
    let r = run(&walk(&p));
    assert!(r.problems.is_empty(), "{:?}", lines(&r));
    assert_eq!(r.anchors.len(), 1);
    assert_eq!(r.rebuilder.next_batch(), 2);
    assert_eq!(r.rebuilder.state().state_root(), h.inputs[1].new_state_root);
    let batches = &r.anchors[0].batches;
    assert_eq!(batches[0].public_inputs, h.inputs[0]);
    assert_eq!(batches[1].public_inputs, h.inputs[1]);
    assert_eq!(batches[1].old_state, batches[0].new_state);
}

#[test]
fn a_tampered_envelope_byte_makes_the_package_unreadable() {
    let mut p = honest_over(&history().data);
    // One byte of the revealed script, deep in the data, changed after signing: the script no
    // longer hashes to the leaf the commit output committed to.
    let mut witness = p.anchor.input[0].witness.to_vec();
    let at = witness[1].len() / 2;
    witness[1][at] ^= 1;
    p.anchor.input[0].witness = bitcoin::Witness::from_slice(&witness);
    let r = run(&walk(&p));
    let l = lines(&r);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].starts_with(&format!(
            "batch 0: anchor {}: its package does not read:",
            p.anchor.compute_txid()
        )),
        "{l:?}"
    );
    assert!(r.anchors.is_empty());
}

#[test]
fn signed_envelope_data_that_the_commitment_does_not_bind_is_reported() {
    let h = history();
    let honest = h.data.encode().unwrap();
    // The operator signs an envelope whose data differs in one ciphertext byte from what the
    // payload commits to (the honest data's hash and proof commitments).
    let mut data = h.data.clone();
    let t = &mut data.batches[1].transfers[0];
    t.ciphertexts[0][40] ^= 1;
    // The encoding carries no ciphertext hash: a reader recomputes it from the ciphertexts.
    t.public.ciphertext_hash = veil_circuits::note::ciphertext_hash(&t.ciphertexts);
    let carried = data.encode().unwrap();
    assert_eq!(carried.len(), honest.len());
    let root = h.inputs[1].new_state_root;
    let p = package(
        0,
        root,
        &carried,
        &h.data.data_hash().unwrap(),
        &commitments(&h.data, &h.inputs),
    );
    let r = run(&walk(&p));
    let l = lines(&r);
    let txid = p.anchor.compute_txid();
    assert_eq!(
        l[0],
        format!(
            "batch 0: anchor {txid}: its envelope data (sha256 {}) does not match the anchor's \
             range commitment",
            hex::encode(data.data_hash().unwrap())
        )
    );
    // The changed ciphertext changes batch 1's batch hash, so its proof fails too.
    assert_eq!(
        l[1..],
        ["batch 1: proof does not verify against the rebuilt public inputs".to_owned()]
    );
}

#[test]
fn a_root_other_than_the_rebuilt_one_is_reported() {
    let h = history();
    let bytes = h.data.encode().unwrap();
    let p = package(
        0,
        Fr::from(7u64),
        &bytes,
        &h.data.data_hash().unwrap(),
        &commitments(&h.data, &h.inputs),
    );
    let l = lines(&run(&walk(&p)));
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].starts_with(&format!(
            "batch 1: anchor {} commits to root 0x",
            p.anchor.compute_txid()
        )) && l[0].contains("the rebuilt state root is"),
        "{l:?}"
    );
}

#[test]
fn proofs_that_do_not_verify_are_named_one_by_one() {
    let h = history();
    // Batch 0 carries batch 1's proof; the commitments bind what is carried, so only the
    // proof check can tell.
    let mut data = h.data.clone();
    data.batches[0].proof = data.batches[1].proof;
    let p = honest_over(&data);
    let l = lines(&run(&walk(&p)));
    assert_eq!(
        l,
        ["batch 0: proof does not verify against the rebuilt public inputs".to_owned()]
    );
}

#[test]
fn data_that_does_not_decode_or_continue_the_history_stops_the_replay() {
    let h = history();
    let garbage = vec![0xAB; 300];
    let hash = {
        use sha2::Digest;
        let d: [u8; 32] = sha2::Sha256::digest(&garbage).into();
        d
    };
    let root = h.inputs[1].new_state_root;
    let p = package(0, root, &garbage, &hash, &commitments(&h.data, &h.inputs));
    let l = lines(&run(&walk(&p)));
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].starts_with(&format!(
            "batch 0: anchor {} (batches 0..=1): its envelope data does not decode:",
            p.anchor.compute_txid()
        )),
        "{l:?}"
    );

    // Honest data, but for batches 5..=6: not where the chain continues.
    let mut later = h.data.clone();
    later.first_batch = 5;
    let p = honest_over(&later);
    let l = lines(&run(&walk(&p)));
    assert_eq!(
        l,
        [format!(
            "batch 0: anchor {} commits to batches 5..=6 and its envelope carries 2 batches \
             from 5, where the chain continues with batch 0",
            p.anchor.compute_txid()
        )]
    );
}

#[test]
fn a_commit_without_its_reveal_is_reported() {
    let p = honest_over(&history().data);
    let mut w = walk(&p);
    w.packages.clear();
    w.unrevealed = Some(Unrevealed {
        commit: p.commit.clone(),
        missing: vec![0],
    });
    let l = lines(&run(&w));
    assert_eq!(
        l,
        [format!(
            "batch 0: commit {} spends the chain of anchors but its envelope output(s) [0] are \
             not revealed in the best chain",
            p.commit.compute_txid()
        )]
    );
}
