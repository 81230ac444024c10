//! `kill -9` of the real `veil node` binary under concurrent clients. Four deposits give four
//! keys a note each; then four client threads each submit a private payment and a stream of
//! operator deposits while the node is killed with SIGKILL mid-stream. After a restart on the
//! same data dir every transfer that got a 202 is there (pending, batched or proven) and none is
//! lost: resubmitting it is refused as a duplicate. Every batch gets proven, the batches' state
//! roots chain from the genesis root to the node's current root, and every proof verifies with
//! `veil verify`. Transfers that were in flight at the kill may or may not have been stored;
//! they were never acknowledged, and resubmitting them either stores them or names the
//! duplicate.

#[path = "support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{dev_keys, ok, start_node, NodeGuard, TOKEN};
use veil_circuits::batch::BatchShape;
use veil_circuits::Transfer;
use veil_fixtures::Scenario;
use veil_wire::TransferRequest;

const CLIENTS: usize = 4;
const DEPOSITS_PER_CLIENT: usize = 5;
/// Acknowledgements seen before the node is killed.
const KILL_AFTER_ACKS: usize = 9;
const TIMEOUT: Duration = Duration::from_secs(180);

/// One HTTP/1.1 request on a fresh connection; `Err` if the node is unreachable or the reply
/// is cut off (the node died mid-request).
fn http(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let addr = base.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = if path.starts_with("/v1/deposits") {
        format!("authorization: Bearer {TOKEN}\r\n")
    } else {
        String::new()
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}content-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let (head, body) = resp.split_once("\r\n\r\n").ok_or("truncated reply")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status line")?;
    let v = serde_json::from_str(body).map_err(|e| format!("{e}: {body:?}"))?;
    Ok((status, v))
}

fn get(base: &str, path: &str) -> Value {
    let (status, v) = http(base, "GET", path, None).unwrap();
    assert_eq!(status, 200, "GET {path}: {v}");
    v
}

fn body(t: &Transfer) -> Value {
    serde_json::to_value(TransferRequest::from(t)).unwrap()
}

/// Polls until `id`'s status is one of `want`.
fn wait_status(node: &mut NodeGuard, base: &str, id: &str, want: &[&str]) -> Value {
    let start = Instant::now();
    loop {
        node.assert_running();
        let v = get(base, &format!("/v1/transfers/{id}"));
        if want.iter().any(|w| v["status"] == *w) {
            return v;
        }
        assert!(start.elapsed() < TIMEOUT, "{id} still {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What one client submitted: `(path, transfer body, Some(id) if acknowledged)`.
type Submitted = Vec<(&'static str, Value, Option<String>)>;

#[test]
fn acknowledged_transfers_survive_kill_9_under_concurrent_clients() {
    let keys = dev_keys("e2e-keys-seed1");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (mut node, url) = start_node(&keys, &data);

    // Four keys with one deposited note each, one batch per deposit so that the scenario's
    // positions are the node's.
    let shape = BatchShape::new(2, 8).unwrap();
    let mut sc = Scenario::new(shape, 0xc4a5);
    let owners: Vec<_> = (0..CLIENTS).map(|_| sc.new_key()).collect();
    for owner in &owners {
        let d = sc.deposit(owner, 1_000);
        let (status, v) = http(&url, "POST", "/v1/deposits", Some(&body(&d))).unwrap();
        assert_eq!(status, 202, "{v}");
        wait_status(
            &mut node,
            &url,
            v["id"].as_str().unwrap(),
            &["batched", "proven"],
        );
        sc.apply(&[d]).unwrap();
    }
    // Each client: a payment to the next key, then deposits, 20 ms apart.
    let work: Vec<Vec<(&'static str, Value)>> = (0..CLIENTS)
        .map(|i| {
            let to = owners[(i + 1) % CLIENTS].clone();
            let mut w = vec![("/v1/transfers", body(&sc.pay(&owners[i], &to, 300, 0, 2)))];
            for _ in 0..DEPOSITS_PER_CLIENT {
                w.push(("/v1/deposits", body(&sc.deposit(&to, 50))));
            }
            w
        })
        .collect();

    let acks = Arc::new(AtomicUsize::new(0));
    let submitted: Arc<Mutex<Vec<Submitted>>> = Arc::default();
    let clients: Vec<_> = work
        .into_iter()
        .map(|w| {
            let (url, acks, submitted) = (url.clone(), acks.clone(), submitted.clone());
            std::thread::spawn(move || {
                let mut mine = Submitted::new();
                for (path, b) in w {
                    match http(&url, "POST", path, Some(&b)) {
                        Ok((202, v)) => {
                            acks.fetch_add(1, Ordering::SeqCst);
                            mine.push((path, b, Some(v["id"].as_str().unwrap().to_owned())));
                        }
                        Ok((status, v)) => panic!("{path}: {status} {v}"),
                        // The node is gone: this one was never acknowledged.
                        Err(_) => mine.push((path, b, None)),
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                submitted.lock().unwrap().push(mine);
            })
        })
        .collect();
    let start = Instant::now();
    while acks.load(Ordering::SeqCst) < KILL_AFTER_ACKS {
        assert!(start.elapsed() < TIMEOUT, "clients stalled");
        std::thread::sleep(Duration::from_millis(1));
    }
    node.kill9();
    for c in clients {
        c.join().unwrap();
    }
    let submitted: Vec<_> = submitted.lock().unwrap().drain(..).flatten().collect();
    let acked: Vec<_> = submitted
        .iter()
        .filter_map(|(p, b, id)| id.as_ref().map(|id| (*p, b, id.clone())))
        .collect();
    let total = CLIENTS * (DEPOSITS_PER_CLIENT + 1);
    assert!(acked.len() >= KILL_AFTER_ACKS, "{} acks", acked.len());
    assert!(
        acked.len() < total,
        "the kill came after every transfer was acknowledged: not mid-stream"
    );

    // Restart on the same data dir: every acknowledged transfer is there.
    let (mut node, url) = start_node(&keys, &data);
    for (_, _, id) in &acked {
        let v = get(&url, &format!("/v1/transfers/{id}"));
        assert!(
            ["pending", "batched", "proven"].contains(&v["status"].as_str().unwrap()),
            "acknowledged {id} after the restart: {v}"
        );
    }
    // Resubmitting an acknowledged transfer names the duplicate (a deposit is idempotent: the
    // operator's retry gets the stored deposit's status); an unacknowledged one is stored now
    // or was stored before its reply was lost.
    for (path, b, id) in &submitted {
        let (status, v) = http(&url, "POST", path, Some(b)).unwrap();
        let deposit = path.starts_with("/v1/deposits");
        match id {
            Some(id) if deposit => {
                assert_eq!((status, v["id"].as_str()), (200, Some(id.as_str())), "{v}")
            }
            Some(_) => assert_eq!(
                (status, v["error"]["code"].as_str()),
                (409, Some("duplicate_transfer")),
                "{v}"
            ),
            None if deposit => assert!(status == 202 || status == 200, "{status} {v}"),
            None => assert!(
                status == 202 || v["error"]["code"] == "duplicate_transfer",
                "{status} {v}"
            ),
        }
    }
    // Everything gets proven.
    for (_, _, id) in &acked {
        wait_status(&mut node, &url, id, &["proven"]);
    }
    let start = Instant::now();
    let state = loop {
        let st = get(&url, "/v1/state");
        if st["mempool_size"] == 0 && st["proven_height"] == st["batch_height"] {
            break st;
        }
        assert!(start.elapsed() < TIMEOUT, "not all proven: {st}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let height = state["batch_height"].as_u64().unwrap();
    assert!(height > CLIENTS as u64, "{state}");

    // The roots chain from genesis to the current root and every proof verifies.
    let files = tmp.path().join("batches");
    let vk = keys.join("vk-B2-D8.bin");
    let genesis = veil_verifier::published::genesis_state_root(8).unwrap();
    let mut prev_root = Some(veil_circuits::field::to_hex(&genesis));
    for n in 0..height {
        let n_s = n.to_string();
        ok(&[
            "fetch-batch",
            "--node",
            &url,
            "--number",
            &n_s,
            "--vk",
            vk.to_str().unwrap(),
            "--out-dir",
            files.to_str().unwrap(),
        ]);
        let batch = files.join(format!("batch-{n}.json"));
        let out = ok(&[
            "verify",
            "--vk",
            vk.to_str().unwrap(),
            "--batch",
            batch.to_str().unwrap(),
            "--proof",
            files.join(format!("proof-{n}.json")).to_str().unwrap(),
        ]);
        assert!(out.starts_with(&format!("valid: batch {n},")), "{out}");
        let b = read_json(&batch);
        assert_eq!(
            b["old_state_root"].as_str(),
            prev_root.as_deref(),
            "batch {n}"
        );
        prev_root = Some(b["new_state_root"].as_str().unwrap().to_owned());
    }
    assert_eq!(prev_root.as_deref(), state["state_root"].as_str());
    eprintln!(
        "kill -9 after {} of {total} acknowledgements ({} in flight or unsent); {height} batches \
         proven and verified after the restart",
        acked.len(),
        submitted.len() - acked.len()
    );
    node.assert_running();
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}
