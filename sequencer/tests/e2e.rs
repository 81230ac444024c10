//! End to end in-process: operator deposit, private transfer, sealing, background proving, proofs
//! that verify against the published public inputs, consistent state endpoints; and a restart
//! after an abrupt stop that keeps accepted transfers and resumes proving.

mod common;

use std::time::Duration;

use ark_bn254::{Bn254, Fr};
use ark_groth16::{Groth16, Proof, VerifyingKey};
use ark_serialize::CanonicalDeserialize;
use ark_snark::SNARK;
use common::{config, keys, shape, Api};
use serde_json::Value;
use veil_circuits::batch::batch_hash;
use veil_circuits::field;
use veil_circuits::note::decrypt_note;
use veil_circuits::transfer::TransferPublic;
use veil_circuits::RollupState;
use veil_fixtures::Scenario;

const LONG: Duration = Duration::from_secs(300);

fn fe(v: &Value) -> Fr {
    field::from_hex(v.as_str().expect("hex string")).expect("field element")
}

/// Checks batches `0..height` chain from genesis, their batch hash matches the published data,
/// and each proof verifies. Returns the last new state root.
async fn check_batches(api: &Api, vk: &VerifyingKey<Bn254>, height: u64) -> Fr {
    let mut root = RollupState::genesis(shape().depth).state_root();
    for n in 0..height {
        let (s, b) = api.get(&format!("/v1/batches/{n}")).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["number"], n);
        assert_eq!(b["status"], "proven");
        let pi = &b["public_inputs"];
        let (old, new, hash) = (
            fe(&pi["old_state_root"]),
            fe(&pi["new_state_root"]),
            fe(&pi["batch_hash"]),
        );
        assert_eq!(old, root, "batch {n} does not chain");
        let public: Vec<TransferPublic> = serde_json::from_value(b["public_data"].clone()).unwrap();
        assert_eq!(batch_hash(n, shape().batch_size, &public), hash);
        let bytes = hex::decode(b["proof"].as_str().expect("proof hex")).unwrap();
        assert_eq!(bytes.len(), 128);
        let proof = Proof::<Bn254>::deserialize_compressed(bytes.as_slice()).unwrap();
        assert!(Groth16::<Bn254>::verify(vk, &[old, new, hash], &proof).unwrap());
        // A proof does not verify for other public inputs.
        assert!(!Groth16::<Bn254>::verify(vk, &[old, new, hash + Fr::from(1u64)], &proof).unwrap());
        root = new;
    }
    root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposit_transfer_prove_and_verify() {
    let (pk, vk) = tokio::task::spawn_blocking(keys).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let running = veil_sequencer::start(&config(dir.path(), 100), Some(pk.clone()))
        .await
        .unwrap();
    let api = Api::new(running.addr);
    let (s, h) = api.get("/healthz").await;
    assert_eq!((s, h["status"].as_str()), (200, Some("ok")));

    let mut sc = Scenario::new(shape(), 42);
    let alice = sc.new_key();
    let bob = sc.new_key();
    let d = sc.deposit(&alice, 1000);
    let id_d = api.deposit(&d).await;
    let v = api.wait_status(&id_d, &["batched", "proven"], LONG).await;
    assert_eq!(v["batch"], 0);
    sc.apply(std::slice::from_ref(&d)).unwrap();

    let t = sc.pay(&alice, &bob, 300, 0, 0);
    let id_t = api.submit(&t).await;
    let (s, nf) = api
        .get(&format!(
            "/v1/nullifiers/{}",
            field::to_hex(&t.public.nullifiers[0])
        ))
        .await;
    assert_eq!(s, 200);
    assert_eq!(nf["spent"], false);
    let v = api.wait_status(&id_t, &["proven"], LONG).await;
    assert_eq!(v["batch"], 1);
    sc.apply(std::slice::from_ref(&t)).unwrap();
    let v = api.wait_status(&id_d, &["proven"], LONG).await;
    assert_eq!(v["batch"], 0);

    let (s, st) = api.get("/v1/state").await;
    assert_eq!(s, 200);
    let summary = sc.state.summary();
    assert_eq!(fe(&st["state_root"]), sc.state.state_root());
    assert_eq!(fe(&st["note_root"]), summary.note_root);
    assert_eq!(st["note_count"], summary.note_count);
    assert_eq!(fe(&st["nullifier_root"]), summary.nullifier_root);
    assert_eq!(st["nullifier_count"], summary.nullifier_count);
    assert_eq!(st["batch_height"], 2);
    assert_eq!(st["proven_height"], 2);
    assert_eq!(st["mempool_size"], 0);
    let last_root = check_batches(&api, vk, 2).await;
    assert_eq!(last_root, sc.state.state_root());

    let (_, nf) = api
        .get(&format!(
            "/v1/nullifiers/{}",
            field::to_hex(&t.public.nullifiers[0])
        ))
        .await;
    assert_eq!(
        (nf["spent"].as_bool(), nf["pending"].as_bool()),
        (Some(true), Some(false))
    );

    // Bob finds his note by scanning and checks its path against the note root.
    let (s, notes) = api.get("/v1/notes?from=0&limit=10").await;
    assert_eq!(s, 200);
    let notes = notes["notes"].as_array().unwrap().clone();
    assert_eq!(notes.len(), 4);
    let mut found = None;
    for n in &notes {
        let ct = hex::decode(n["ciphertext"].as_str().unwrap()).unwrap();
        if let Ok((note, _)) = decrypt_note(&bob, &ct, fe(&n["rho"]), fe(&n["commitment"])) {
            found = Some((n["position"].as_u64().unwrap(), note));
        }
    }
    let (pos, note) = found.expect("Bob's note is published");
    assert_eq!(note.value, 300);
    let (s, path) = api.get(&format!("/v1/notes/{pos}/path")).await;
    assert_eq!(s, 200);
    let siblings: Vec<[Fr; 3]> = path["siblings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|level| {
            let l: Vec<Fr> = level.as_array().unwrap().iter().map(fe).collect();
            l.try_into().expect("three siblings per level")
        })
        .collect();
    assert_eq!(siblings.len(), shape().depth / 2);
    let mp = veil_circuits::tree::MerklePath { siblings };
    assert_eq!(mp.root(note.commitment(), pos), summary.note_root);
    let (s, page) = api.get("/v1/notes?from=1&limit=2").await;
    assert_eq!(s, 200);
    assert_eq!(page["notes"].as_array().unwrap().len(), 2);
    assert_eq!(page["notes"][0]["position"], 1);
    assert_eq!(page["next"], 5);

    let (s, metrics) = api.get("/metrics").await;
    assert_eq!(s, 200);
    let text = metrics.as_str().unwrap();
    assert!(text.contains("veil_transfers_accepted_total 2"), "{text}");
    assert!(text.contains("veil_proven_height 2"), "{text}");
    assert!(
        !text.contains("veil_proving_seconds_total 0.000000"),
        "{text}"
    );

    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_abrupt_stop_keeps_transfers_and_resumes_proving() {
    let (pk, vk) = tokio::task::spawn_blocking(keys).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut sc = Scenario::new(shape(), 43);
    let alice = sc.new_key();
    let d1 = sc.deposit(&alice, 700);
    let d2 = sc.deposit(&alice, 200);

    // First life: no prover; batch 0 sealed by hand, d2 left pending; then killed.
    let running = veil_sequencer::start(&config(dir.path(), 600_000), None)
        .await
        .unwrap();
    let api = Api::new(running.addr);
    let id1 = api.deposit(&d1).await;
    let node = running.node.clone();
    let sealed = tokio::task::spawn_blocking(move || node.seal())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sealed, Some(0));
    let id2 = api.deposit(&d2).await;
    let (_, before) = api.get("/v1/state").await;
    assert_eq!(before["batch_height"], 1);
    assert_eq!(before["proven_height"], 0);
    assert_eq!(before["mempool_size"], 1);
    drop(api);
    running.kill().await;

    // Second life, same data dir: everything accepted is there, then proven.
    let running = veil_sequencer::start(&config(dir.path(), 50), Some(pk.clone()))
        .await
        .unwrap();
    let api = Api::new(running.addr);
    let (_, after) = api.get("/v1/state").await;
    assert_eq!(after["state_root"], before["state_root"]);
    assert_eq!(after["note_root"], before["note_root"]);
    assert_eq!(after["nullifier_root"], before["nullifier_root"]);
    assert_eq!(after["batch_height"], 1);
    let (s, v) = api.get(&format!("/v1/transfers/{id2}")).await;
    assert_eq!(s, 200);
    assert!(v["status"] == "pending" || v["status"] == "batched" || v["status"] == "proven");
    // Re-posting an accepted deposit is an idempotent retry: its status, same id.
    let (s, e) = api
        .post("/v1/deposits", &common::body(&d1), Some(common::TOKEN))
        .await;
    assert_eq!((s, e["id"].as_str()), (200, Some(id1.as_str())), "{e}");
    let v1 = api.wait_status(&id1, &["proven"], LONG).await;
    assert_eq!(v1["batch"], 0);
    let v2 = api.wait_status(&id2, &["proven"], LONG).await;
    assert_eq!(v2["batch"], 1);
    sc.apply(std::slice::from_ref(&d1)).unwrap();
    sc.apply(std::slice::from_ref(&d2)).unwrap();
    let root = check_batches(&api, vk, 2).await;
    assert_eq!(root, sc.state.state_root());
    running.stop().await.unwrap();

    // Third life after a graceful stop: same state, nothing left to do.
    let running = veil_sequencer::start(&config(dir.path(), 50), Some(pk.clone()))
        .await
        .unwrap();
    let api = Api::new(running.addr);
    let (_, st) = api.get("/v1/state").await;
    assert_eq!(fe(&st["state_root"]), sc.state.state_root());
    assert_eq!(st["proven_height"], 2);
    assert_eq!(st["mempool_size"], 0);
    running.stop().await.unwrap();
}
