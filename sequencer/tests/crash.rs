//! A real crash: a child process (this test binary, running the ignored `crash_child`) accepts
//! transfers and seals a batch, then aborts mid-flight with no shutdown at all. The parent
//! reopens the same data directory: every acknowledged transfer is there, the state root is the
//! one the child reported, and proving resumes.

mod common;

use std::time::Duration;

use common::{config, keys, shape, Api};
use veil_fixtures::Scenario;

const DIR_VAR: &str = "VEIL_CRASH_TEST_DIR";

fn transfers() -> Vec<veil_circuits::Transfer> {
    let mut sc = Scenario::new(shape(), 77);
    let alice = sc.new_key();
    vec![sc.deposit(&alice, 10), sc.deposit(&alice, 20)]
}

/// Run only by [`acknowledged_transfers_survive_an_abort`] as a child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of acknowledged_transfers_survive_an_abort"]
async fn crash_child() {
    let dir = std::env::var(DIR_VAR).expect("run by the parent test with VEIL_CRASH_TEST_DIR");
    let dir = std::path::PathBuf::from(dir);
    let running = veil_sequencer::start(&config(&dir, 600_000), None)
        .await
        .unwrap();
    let api = Api::new(running.addr);
    let ts = transfers();
    let id0 = api.deposit(&ts[0]).await;
    let node = running.node.clone();
    let sealed = tokio::task::spawn_blocking(move || node.seal())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sealed, Some(0));
    let id1 = api.deposit(&ts[1]).await;
    let (_, state) = api.get("/v1/state").await;
    let report = serde_json::json!({"ids": [id0, id1], "state": state});
    std::fs::write(dir.join("report.json"), report.to_string()).unwrap();
    // No stop, no drop, no flush.
    std::process::abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_transfers_survive_an_abort() {
    let (pk, _vk) = tokio::task::spawn_blocking(keys).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "crash_child", "--nocapture"])
        .env(DIR_VAR, dir.path())
        .status()
        .unwrap();
    assert!(!status.success(), "the child must die by abort");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    let before = &report["state"];
    assert_eq!(before["batch_height"], 1);
    assert_eq!(before["mempool_size"], 1);

    let running = veil_sequencer::start(&config(dir.path(), 50), Some(pk.clone()))
        .await
        .unwrap();
    let api = Api::new(running.addr);
    let (_, after) = api.get("/v1/state").await;
    for k in [
        "state_root",
        "note_root",
        "nullifier_root",
        "note_count",
        "batch_height",
    ] {
        assert_eq!(after[k], before[k], "{k}");
    }
    let ids = report["ids"].as_array().unwrap();
    for (n, id) in ids.iter().enumerate() {
        let v = api
            .wait_status(id.as_str().unwrap(), &["proven"], Duration::from_secs(300))
            .await;
        assert_eq!(v["batch"], n as u64);
    }
    let mut sc = Scenario::new(shape(), 77);
    let ts = transfers();
    sc.apply(&ts[..1]).unwrap();
    sc.apply(&ts[1..]).unwrap();
    let (_, st) = api.get("/v1/state").await;
    assert_eq!(
        st["state_root"],
        veil_circuits::field::to_hex(&sc.state.state_root())
    );
    running.stop().await.unwrap();
}
