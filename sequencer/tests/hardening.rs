//! Security hardening at the node: a relay cannot swap a transfer's note ciphertexts (the
//! spender's signature covers them), and a Bitcoin outpoint is credited at most once across the
//! whole history (pending, batched, proven, and after a restart).

mod common;

use ark_bn254::Fr;
use common::{body, config, keys, shape, Api, TOKEN};
use serde_json::{json, Value};
use std::time::Duration;
use veil_fixtures::Scenario;

const LONG: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zeroed_ciphertext_replay_is_refused_and_the_genuine_transfer_lands() {
    let dir = tempfile::tempdir().unwrap();
    let running = veil_sequencer::start(&config(dir.path(), 600_000), None)
        .await
        .unwrap();
    let api = Api::new(running.addr);
    let mut sc = Scenario::new(shape(), 21);
    let alice = sc.new_key();
    let bob = sc.new_key();
    let d1 = sc.deposit(&alice, 1000);
    let d2 = sc.deposit(&alice, 500);
    let id = api.deposit(&d1).await;
    api.deposit(&d2).await;
    api.wait_status(&id, &["batched"], LONG).await;
    sc.apply(&[d1, d2]).unwrap();
    let note = sc.unspent(&alice)[0];
    let genuine = sc.spend(&alice, &[note], &bob, 100, 0, 0);
    let (_, before) = api.get("/v1/state").await;

    // The first submitter zeroes both ciphertexts: the recipient could never find the note.
    let mut replay = body(&genuine);
    for j in 0..2 {
        let len = replay["ciphertexts"][j].as_str().unwrap().len();
        replay["ciphertexts"][j] = json!("0".repeat(len));
    }
    let (s, v) = api.post("/v1/transfers", &replay, None).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "bad_signature", "{v}");
    // One ciphertext swapped for another valid-looking one is refused the same way.
    let mut swapped = body(&genuine);
    swapped["ciphertexts"][1] = swapped["ciphertexts"][0].clone();
    let (s, v) = api.post("/v1/transfers", &swapped, None).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (422, json!("bad_signature"))
    );
    let (_, after) = api.get("/v1/state").await;
    assert_eq!(after, before, "a refused replay changed the state");

    // The genuine transfer is still accepted, and its note is published as signed.
    let id = api.submit(&genuine).await;
    let (s, v) = api.post("/v1/transfers", &body(&genuine), None).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (409, json!("duplicate_transfer"))
    );
    let (s, status) = api.get(&format!("/v1/transfers/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(status["status"], "pending");
    running.stop().await.unwrap();
}

async fn post_deposit(api: &Api, v: &Value) -> (u16, Value) {
    api.post("/v1/deposits", v, Some(TOKEN)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outpoint_is_credited_once_across_the_whole_history() {
    let dir = tempfile::tempdir().unwrap();
    let (pk, _) = keys();
    let running = veil_sequencer::start(&config(dir.path(), 50), Some(pk.clone()))
        .await
        .unwrap();
    let api = Api::new(running.addr);
    let mut sc = Scenario::new(shape(), 22);
    let alice = sc.new_key();
    let outpoint = Fr::from(0xdead_beef_u64);
    let first = sc.deposit_with_ref(&alice, 1000, outpoint);
    // A second deposit of the same outpoint: other randomness, other nullifiers, same reference.
    let again = sc.deposit_with_ref(&alice, 1000, outpoint);
    assert_ne!(body(&first), body(&again));

    let id = api.deposit(&first).await;
    // While pending: the same transfer again is an idempotent retry, another one is refused.
    let (s, v) = post_deposit(&api, &body(&first)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["id"], json!(id));
    let (s, v) = post_deposit(&api, &body(&again)).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "duplicate_deposit", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains(&id), "{v}");

    // Sealed and proven: still refused, and the retry reports the proven status.
    api.wait_status(&id, &["proven"], LONG).await;
    let (s, v) = post_deposit(&api, &body(&again)).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (409, json!("duplicate_deposit"))
    );
    let (s, v) = post_deposit(&api, &body(&first)).await;
    assert_eq!((s, v["status"].clone()), (200, json!("proven")), "{v}");
    let (_, state) = api.get("/v1/state").await;
    running.stop().await.unwrap();

    // After a restart the index is rebuilt from the stored batches.
    let running = veil_sequencer::start(&config(dir.path(), 50), None)
        .await
        .unwrap();
    let api = Api::new(running.addr);
    let (s, v) = post_deposit(&api, &body(&again)).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (409, json!("duplicate_deposit"))
    );
    let (_, now) = api.get("/v1/state").await;
    assert_eq!(now, state, "a refused deposit changed the state");
    // A deposit of another outpoint is credited as usual.
    let other = sc.deposit_with_ref(&alice, 5, Fr::from(7u64));
    api.deposit(&other).await;
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_deposit_reference_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Long max_wait: the single deposit stays in the mempool across the restart.
    let mut sc = Scenario::new(shape(), 23);
    let alice = sc.new_key();
    let first = sc.deposit_with_ref(&alice, 10, Fr::from(99u64));
    let again = sc.deposit_with_ref(&alice, 10, Fr::from(99u64));
    {
        let running = veil_sequencer::start(&config(dir.path(), 600_000), None)
            .await
            .unwrap();
        Api::new(running.addr).deposit(&first).await;
        running.stop().await.unwrap();
    }
    let running = veil_sequencer::start(&config(dir.path(), 600_000), None)
        .await
        .unwrap();
    let api = Api::new(running.addr);
    let (s, v) = post_deposit(&api, &body(&again)).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (409, json!("duplicate_deposit"))
    );
    let (_, state) = api.get("/v1/state").await;
    assert_eq!(state["mempool_size"], 1);
    running.stop().await.unwrap();
}
