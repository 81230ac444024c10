//! The queue's statements against a real PostgreSQL: migrations, claims in batch order with
//! SKIP LOCKED under concurrency, lease fencing after a heartbeat timeout, failing after the
//! last attempt, the node's accept/reject, and re-enqueue rules.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use support::postgres::Postgres;
use veil_jobs::{JobQueue, JobState, NewJob, CHANNEL_JOBS, CHANNEL_PROOFS};

const VK: &str = "vk-test";

fn job(batch: u64, witness: &[u8]) -> NewJob<'_> {
    NewJob {
        vk_id: VK,
        batch,
        batch_size: 2,
        depth: 8,
        witness,
        max_attempts: 2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_life_on_a_real_postgres() {
    let Some(pg) = Postgres::start_or_skip("a_jobs_life_on_a_real_postgres") else {
        return;
    };
    let url = pg.database("life");
    let node = JobQueue::connect(&url, &[CHANNEL_PROOFS]).await.unwrap();
    // A second connect migrates nothing and agrees.
    let worker = JobQueue::connect(&url, &[CHANNEL_JOBS]).await.unwrap();

    for n in [2u64, 0, 1] {
        assert_eq!(node.enqueue(&job(n, b"w")).await.unwrap(), JobState::Queued);
    }
    // Another shape or key is never claimed.
    assert!(worker.claim("w1", 4, 8, VK).await.unwrap().is_none());
    assert!(worker.claim("w1", 2, 8, "other").await.unwrap().is_none());
    // Lowest batch first.
    let a = worker.claim("w1", 2, 8, VK).await.unwrap().unwrap();
    let b = worker.claim("w2", 2, 8, VK).await.unwrap().unwrap();
    assert_eq!((a.batch, b.batch), (0, 1));
    assert_eq!(a.attempt, 1);
    assert!(worker.heartbeat(a.lease).await.unwrap());

    // b's worker goes silent: after the timeout its job is queued again, and its late writes
    // are refused (the lease moved on).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(worker.heartbeat(a.lease).await.unwrap());
    let reaped = node.reap_stale(Duration::from_secs(1)).await.unwrap();
    assert_eq!(reaped.len(), 1, "{reaped:?}");
    assert_eq!((reaped[0].batch, reaped[0].state), (1, JobState::Queued));
    assert!(!worker.heartbeat(b.lease).await.unwrap());
    assert!(!worker.complete(b.lease, b"late", 1).await.unwrap());
    let b2 = worker.claim("w1", 2, 8, VK).await.unwrap().unwrap();
    assert_eq!((b2.batch, b2.attempt), (1, 2));
    assert!(!worker.complete(b.lease, b"late", 1).await.unwrap());

    // Both proofs come back; the node accepts a's and refuses b2's, which was its last attempt.
    assert!(worker.complete(a.lease, b"proof-0", 7).await.unwrap());
    assert!(worker.complete(b2.lease, b"bad-1", 7).await.unwrap());
    let proven = node.proven(VK).await.unwrap();
    assert_eq!(
        proven.iter().map(|p| p.batch).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(proven[0].proof, b"proof-0");
    assert_eq!(proven[0].worker, "w1");
    assert!(node.accept(proven[0].lease).await.unwrap());
    assert_eq!(
        node.reject(proven[1].lease, "proof rejected")
            .await
            .unwrap(),
        Some(JobState::Failed)
    );

    // A worker shutting down gives its job back untried; the next claim is attempt 1 again.
    let c = worker.claim("w2", 2, 8, VK).await.unwrap().unwrap();
    assert_eq!((c.batch, c.attempt), (2, 1));
    assert!(worker.release(c.lease).await.unwrap());
    assert!(!worker.heartbeat(c.lease).await.unwrap());
    // The third job fails on its worker twice: failed, with its error.
    let c = worker.claim("w2", 2, 8, VK).await.unwrap().unwrap();
    assert_eq!((c.batch, c.attempt), (2, 1));
    assert_eq!(
        worker.fail(c.lease, "boom 1").await.unwrap(),
        Some(JobState::Queued)
    );
    let c = worker.claim("w2", 2, 8, VK).await.unwrap().unwrap();
    assert_eq!(
        worker.fail(c.lease, "boom 2").await.unwrap(),
        Some(JobState::Failed)
    );
    assert!(worker.claim("w2", 2, 8, VK).await.unwrap().is_none());

    let status = node.status().await.unwrap();
    assert_eq!(status.total(JobState::Done), 1);
    assert_eq!(status.total(JobState::Failed), 2);
    assert_eq!(status.failed[1].error, "boom 2");
    assert_eq!(status.workers.len(), 1);
    assert_eq!(status.workers[0].worker, "w1");
    // A done job keeps its proof, not its witness.
    let (raw, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let row = raw
        .query_one(
            "SELECT octet_length(witness), proof FROM veil_proving_jobs WHERE batch = 0",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 0);
    assert_eq!(row.get::<_, Vec<u8>>(1), b"proof-0");

    // Re-enqueued by a restarted node: failed jobs get fresh attempts; a done job whose proof
    // the node lost goes back to proven; a new witness starts over.
    assert_eq!(node.enqueue(&job(2, b"w")).await.unwrap(), JobState::Queued);
    assert_eq!(node.enqueue(&job(0, b"w")).await.unwrap(), JobState::Proven);
    assert_eq!(node.enqueue(&job(0, b"w")).await.unwrap(), JobState::Proven);
    assert_eq!(
        node.enqueue(&job(0, b"other chain")).await.unwrap(),
        JobState::Queued
    );
    assert!(node.proven(VK).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_never_share_a_job() {
    let Some(pg) = Postgres::start_or_skip("concurrent_claims_never_share_a_job") else {
        return;
    };
    let url = pg.database("race");
    let node = JobQueue::connect(&url, &[]).await.unwrap();
    for n in 0..60 {
        node.enqueue(&job(n, b"w")).await.unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..6 {
        let q = Arc::new(JobQueue::connect(&url, &[]).await.unwrap());
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(j) = q.claim(&format!("w{w}"), 2, 8, VK).await.unwrap() {
                assert!(q.complete(j.lease, b"p", 1).await.unwrap());
                got.push(j.batch);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    assert_eq!(all.len(), 60, "every job claimed exactly once");
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_and_the_connection_comes_back_after_a_restart() {
    let Some(pg) = Postgres::start_or_skip("a_newer_schema_is_refused") else {
        return;
    };
    let url = pg.database("schema");
    let q = JobQueue::connect(&url, &[CHANNEL_JOBS]).await.unwrap();
    q.enqueue(&job(0, b"w")).await.unwrap();

    pg.kill();
    let e = q.status().await.expect_err("database down");
    assert!(
        e.is_connection() || e.to_string().contains("database"),
        "{e}"
    );
    pg.restart();
    // The next call reconnects (one failure may still be reported while it notices).
    let mut ok = None;
    for _ in 0..20 {
        match q.status().await {
            Ok(s) => {
                ok = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert_eq!(ok.expect("reconnected").total(JobState::Queued), 1);

    q.status().await.unwrap();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .execute("INSERT INTO veil_schema_version (version) VALUES (99)", &[])
        .await
        .unwrap();
    let e = JobQueue::connect(&url, &[])
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("schema version 99 is newer"), "{e}");
}
