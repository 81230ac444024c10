//! Concurrent submissions spending the same note: exactly one is accepted, and the node's
//! mempool holds exactly that one.

mod common;

use common::{body, config, shape, Api};
use std::time::Duration;
use veil_fixtures::Scenario;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_spends_of_one_note_accept_exactly_one() {
    let dir = tempfile::tempdir().unwrap();
    let running = veil_sequencer::start(&config(dir.path(), 600_000), None)
        .await
        .unwrap();
    let api = Api::new(running.addr);
    let mut sc = Scenario::new(shape(), 9);
    let alice = sc.new_key();
    let bob = sc.new_key();
    let d = sc.deposit(&alice, 1000);
    let id = api.deposit(&d).await;
    let node = running.node.clone();
    tokio::task::spawn_blocking(move || node.seal())
        .await
        .unwrap()
        .unwrap();
    api.wait_status(&id, &["batched"], Duration::from_secs(30))
        .await;
    sc.apply(std::slice::from_ref(&d)).unwrap();

    // Eight different transfers (different amounts) of the same note.
    let spends: Vec<_> = (1..=8u64).map(|i| sc.pay(&alice, &bob, i, 0, 0)).collect();
    let nf = spends[0].public.nullifiers[0];
    assert!(spends.iter().all(|t| t.public.nullifiers[0] == nf));
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(spends.len()));
    let mut handles = Vec::new();
    for t in &spends {
        let b = body(t);
        let url = format!("{}/v1/transfers", api.base);
        let client = reqwest::Client::new();
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let resp = client.post(url).json(&b).send().await.unwrap();
            let status = resp.status().as_u16();
            let v: serde_json::Value = resp.json().await.unwrap();
            (status, v)
        }));
    }
    let mut accepted = Vec::new();
    for h in handles {
        let (status, v) = h.await.unwrap();
        match status {
            202 => accepted.push(v["id"].as_str().unwrap().to_owned()),
            422 => assert_eq!(v["error"]["code"], "already_spent", "{v}"),
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert_eq!(accepted.len(), 1, "exactly one spend accepted");
    let (_, st) = api.get("/v1/state").await;
    assert_eq!(st["mempool_size"], 1);
    let (_, v) = api.get(&format!("/v1/transfers/{}", accepted[0])).await;
    assert_eq!(v["status"], "pending");
    let (_, n) = api
        .get(&format!(
            "/v1/nullifiers/{}",
            veil_circuits::field::to_hex(&nf)
        ))
        .await;
    assert_eq!(
        (n["spent"].as_bool(), n["pending"].as_bool()),
        (Some(false), Some(true))
    );
    running.stop().await.unwrap();
}
