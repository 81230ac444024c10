//! [`JobQueue`]: one PostgreSQL connection (re-opened on demand after a failure, migrations
//! applied on each open, `LISTEN` re-issued) and the statements of a job's life. Callers retry
//! failed calls with a [`Backoff`]; nothing here sleeps or loops on its own.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, Notify};
use tokio_postgres::{AsyncMessage, Client, NoTls, Row};

use crate::{redact_url, schema, QueueError};

/// A job's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// Claimed by a worker that heartbeats.
    Running,
    /// A proof was written back; the node has not checked it yet.
    Proven,
    /// The node verified and stored the proof.
    Done,
    /// Out of attempts; `error` says why.
    Failed,
}

impl JobState {
    /// The state's name in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Proven => "proven",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<JobState, QueueError> {
        Ok(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "proven" => JobState::Proven,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            other => return Err(QueueError::Corrupt(format!("state {other:?}"))),
        })
    }
}

/// A sealed batch to prove.
pub struct NewJob<'a> {
    /// Identity of the verifying key the proof must verify under (`vk_sha256`).
    pub vk_id: &'a str,
    /// Batch number.
    pub batch: u64,
    /// Transfers per batch.
    pub batch_size: u32,
    /// Tree depth.
    pub depth: u32,
    /// The batch file with its witness (JSON, `docs/batch-file.md`).
    pub witness: &'a [u8],
    /// Attempts before the job is marked failed.
    pub max_attempts: u32,
}

/// The right to write one attempt's outcome: the job id and its lease number, which every
/// claim increments, so a worker whose job was taken away cannot write to it any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Job row id.
    pub id: i64,
    /// Lease number of this claim.
    pub lease: i64,
}

/// A job a worker claimed.
pub struct ClaimedJob {
    /// Its lease.
    pub lease: Lease,
    /// Batch number.
    pub batch: u64,
    /// Attempt number (1 for the first claim).
    pub attempt: i32,
    /// The batch file with its witness.
    pub witness: Vec<u8>,
}

/// A proof written back, waiting for the node's check.
pub struct ProvenJob {
    /// Its lease.
    pub lease: Lease,
    /// Batch number.
    pub batch: u64,
    /// The worker that proved it.
    pub worker: String,
    /// The compressed proof.
    pub proof: Vec<u8>,
    /// The worker's proving time.
    pub prove_ms: i64,
    /// From enqueue to the proof written back.
    pub latency_ms: i64,
}

/// A running job returned to the queue (or failed) because its worker stopped heartbeating.
#[derive(Debug)]
pub struct Reaped {
    /// Batch number.
    pub batch: u64,
    /// The silent worker.
    pub worker: String,
    /// Where the job went.
    pub state: JobState,
}

/// Jobs per state for one shape.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ShapeCounts {
    /// Transfers per batch.
    pub batch_size: u32,
    /// Tree depth.
    pub depth: u32,
    /// Waiting for a worker.
    pub queued: u64,
    /// Being proven.
    pub running: u64,
    /// Proven, waiting for the node.
    pub proven: u64,
    /// Verified and stored by the node.
    pub done: u64,
    /// Out of attempts.
    pub failed: u64,
}

/// A job being proven.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunningJob {
    /// Batch number.
    pub batch: u64,
    /// Transfers per batch.
    pub batch_size: u32,
    /// Tree depth.
    pub depth: u32,
    /// Who proves it.
    pub worker: String,
    /// Attempt number.
    pub attempt: i32,
    /// Seconds since it was claimed.
    pub age_s: f64,
    /// Seconds since the worker's last heartbeat.
    pub heartbeat_age_s: f64,
}

/// A failed job.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FailedJob {
    /// Batch number.
    pub batch: u64,
    /// Transfers per batch.
    pub batch_size: u32,
    /// Tree depth.
    pub depth: u32,
    /// Attempts made.
    pub attempts: i32,
    /// The last error.
    pub error: String,
}

/// What one worker proved.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WorkerStats {
    /// Worker name.
    pub worker: String,
    /// Jobs proven (written back and not rejected).
    pub jobs: u64,
    /// Their proving time.
    pub prove_ms: u64,
}

/// The queue at a glance (`veil jobs status`, the node's `/metrics`).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct QueueStatus {
    /// Per shape.
    pub shapes: Vec<ShapeCounts>,
    /// Running jobs, by batch.
    pub running: Vec<RunningJob>,
    /// Failed jobs, by batch.
    pub failed: Vec<FailedJob>,
    /// Per worker.
    pub workers: Vec<WorkerStats>,
    /// Proven jobs counted in `latency_ms_sum`.
    pub latency_count: u64,
    /// Sum over proven jobs of enqueue-to-proof time.
    pub latency_ms_sum: f64,
    /// Age of the oldest queued job, seconds.
    pub oldest_queued_s: f64,
}

impl QueueStatus {
    /// Jobs in `state`, all shapes.
    pub fn total(&self, state: JobState) -> u64 {
        self.shapes
            .iter()
            .map(|s| match state {
                JobState::Queued => s.queued,
                JobState::Running => s.running,
                JobState::Proven => s.proven,
                JobState::Done => s.done,
                JobState::Failed => s.failed,
            })
            .sum()
    }
}

/// Exponential backoff between failed calls: 200 ms doubling to 5 s.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: Self::FIRST }
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(5);

    /// The delay before the next try (and doubles the one after).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        d
    }

    /// After a success.
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// The job queue: a lazily (re)opened connection, the channels it listens on, and a [`Notify`]
/// woken by their notifications.
pub struct JobQueue {
    config: tokio_postgres::Config,
    redacted: String,
    client: Mutex<Option<Arc<Client>>>,
    listen: Vec<&'static str>,
    notified: Arc<Notify>,
}

fn u64_of(v: i64, what: &str) -> Result<u64, QueueError> {
    u64::try_from(v).map_err(|_| QueueError::Corrupt(format!("{what} {v}")))
}

fn u32_of(v: i32, what: &str) -> Result<u32, QueueError> {
    u32::try_from(v).map_err(|_| QueueError::Corrupt(format!("{what} {v}")))
}

impl JobQueue {
    /// Parses `url` and opens the first connection (creating or migrating the schema), then
    /// `LISTEN`s on `listen` (re-issued after every reconnect).
    pub async fn connect(url: &str, listen: &[&'static str]) -> Result<JobQueue, QueueError> {
        let q = JobQueue::new(url, listen)?;
        q.client().await?;
        Ok(q)
    }

    /// Like [`JobQueue::connect`] without connecting: the first call connects.
    pub fn new(url: &str, listen: &[&'static str]) -> Result<JobQueue, QueueError> {
        let redacted = redact_url(url);
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| QueueError::Url(format!("{redacted}: {e}")))?;
        config.connect_timeout(Duration::from_secs(5));
        if config.get_application_name().is_none() {
            config.application_name("veil");
        }
        Ok(JobQueue {
            config,
            redacted,
            client: Mutex::new(None),
            listen: listen.to_vec(),
            notified: Arc::new(Notify::new()),
        })
    }

    /// The URL with its password hidden.
    pub fn url(&self) -> &str {
        &self.redacted
    }

    /// Whether the last connection is up (without trying to open one).
    pub async fn is_connected(&self) -> bool {
        self.client
            .lock()
            .await
            .as_ref()
            .is_some_and(|c| !c.is_closed())
    }

    /// Waits for a notification on a listened channel, at most `timeout`.
    pub async fn wait(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.notified.notified()).await;
    }

    async fn client(&self) -> Result<Arc<Client>, QueueError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            if !c.is_closed() {
                return Ok(c.clone());
            }
            tracing::warn!(url = %self.redacted, "job queue connection lost; reconnecting");
        }
        *slot = None;
        let (mut client, mut connection) = self.config.connect(NoTls).await?;
        let notified = self.notified.clone();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(m) = messages.next().await {
                match m {
                    Ok(AsyncMessage::Notification(_)) => notified.notify_one(),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "job queue connection closed");
                        break;
                    }
                }
            }
            // Whoever waits re-checks (and finds the connection gone).
            notified.notify_one();
        });
        schema::migrate(&mut client).await?;
        for channel in &self.listen {
            client.batch_execute(&format!("LISTEN {channel}")).await?;
        }
        tracing::info!(url = %self.redacted, "job queue connected");
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Adds batch `job.batch`, or refreshes its row: a row with another witness (another chain
    /// sharing the database, or a rebuilt store) starts over; a `done` one with the same
    /// witness goes back to `proven` (the node lost what it stored); a `failed` one is queued
    /// again with fresh attempts (the node restarted); any other is left as it is.
    pub async fn enqueue(&self, job: &NewJob<'_>) -> Result<JobState, QueueError> {
        let c = self.client().await?;
        let sha = Sha256::digest(job.witness).to_vec();
        let row = c
            .query_one(
                "INSERT INTO veil_proving_jobs AS j
                     (vk_id, batch, batch_size, depth, witness, witness_sha256, max_attempts)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (vk_id, batch) DO UPDATE SET
                     state = CASE
                         WHEN j.witness_sha256 <> EXCLUDED.witness_sha256 THEN 'queued'
                         WHEN j.state = 'done' THEN 'proven'
                         WHEN j.state = 'failed' THEN 'queued'
                         ELSE j.state END,
                     attempts = CASE
                         WHEN j.witness_sha256 <> EXCLUDED.witness_sha256 OR j.state = 'failed'
                         THEN 0 ELSE j.attempts END,
                     proof = CASE
                         WHEN j.witness_sha256 <> EXCLUDED.witness_sha256 THEN NULL
                         ELSE j.proof END,
                     witness = EXCLUDED.witness,
                     witness_sha256 = EXCLUDED.witness_sha256,
                     batch_size = EXCLUDED.batch_size,
                     depth = EXCLUDED.depth,
                     max_attempts = EXCLUDED.max_attempts
                 RETURNING state",
                &[
                    &job.vk_id,
                    &(job.batch as i64),
                    &(job.batch_size as i32),
                    &(job.depth as i32),
                    &job.witness,
                    &sha,
                    &(job.max_attempts as i32),
                ],
            )
            .await?;
        let state = JobState::parse(row.get(0))?;
        match state {
            JobState::Queued => self.notify(crate::CHANNEL_JOBS).await?,
            JobState::Proven => self.notify(crate::CHANNEL_PROOFS).await?,
            _ => {}
        }
        Ok(state)
    }

    async fn notify(&self, channel: &str) -> Result<(), QueueError> {
        let c = self.client().await?;
        c.execute("SELECT pg_notify($1, '')", &[&channel]).await?;
        Ok(())
    }

    /// Claims the lowest queued batch of shape `(batch_size, depth)` for key `vk_id`, skipping
    /// rows other workers hold locked: two workers never claim the same job.
    pub async fn claim(
        &self,
        worker: &str,
        batch_size: u32,
        depth: u32,
        vk_id: &str,
    ) -> Result<Option<ClaimedJob>, QueueError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "UPDATE veil_proving_jobs SET
                     state = 'running', worker = $1, attempts = attempts + 1,
                     lease = lease + 1, claimed_at = now(), heartbeat_at = now(),
                     finished_at = NULL
                 WHERE id = (
                     SELECT id FROM veil_proving_jobs
                     WHERE state = 'queued' AND batch_size = $2 AND depth = $3 AND vk_id = $4
                     ORDER BY batch LIMIT 1
                     FOR UPDATE SKIP LOCKED)
                 RETURNING id, lease, batch, attempts, witness",
                &[&worker, &(batch_size as i32), &(depth as i32), &vk_id],
            )
            .await?;
        row.map(|r| {
            Ok(ClaimedJob {
                lease: Lease {
                    id: r.get(0),
                    lease: r.get(1),
                },
                batch: u64_of(r.get(2), "batch")?,
                attempt: r.get(3),
                witness: r.get(4),
            })
        })
        .transpose()
    }

    /// Records that the lease's worker is alive. `false`: the job is no longer this lease's
    /// (it timed out and went back to the queue): the worker should drop it.
    pub async fn heartbeat(&self, lease: Lease) -> Result<bool, QueueError> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE veil_proving_jobs SET heartbeat_at = now()
                 WHERE id = $1 AND lease = $2 AND state = 'running'",
                &[&lease.id, &lease.lease],
            )
            .await?;
        Ok(n == 1)
    }

    /// Writes the lease's proof back and notifies the node. `false`: the lease was lost first.
    pub async fn complete(
        &self,
        lease: Lease,
        proof: &[u8],
        prove_ms: i64,
    ) -> Result<bool, QueueError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "WITH done AS (
                     UPDATE veil_proving_jobs SET
                         state = 'proven', proof = $3, prove_ms = $4, finished_at = now()
                     WHERE id = $1 AND lease = $2 AND state = 'running'
                     RETURNING batch)
                 SELECT pg_notify('veil_proofs', batch::text) FROM done",
                &[&lease.id, &lease.lease, &proof, &prove_ms],
            )
            .await?;
        Ok(rows.len() == 1)
    }

    /// The lease's attempt failed with `error`: back to the queue, or `failed` when it was the
    /// last attempt. `None`: the lease was lost first.
    pub async fn fail(&self, lease: Lease, error: &str) -> Result<Option<JobState>, QueueError> {
        self.settle(
            "UPDATE veil_proving_jobs SET
                 state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
                 error = $3, finished_at = now()
             WHERE id = $1 AND lease = $2 AND state = 'running'
             RETURNING state",
            lease,
            error,
        )
        .await
    }

    /// Gives the lease's job back untried (a worker shutting down): queued, the attempt not
    /// counted.
    pub async fn release(&self, lease: Lease) -> Result<bool, QueueError> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE veil_proving_jobs SET state = 'queued', attempts = attempts - 1
                 WHERE id = $1 AND lease = $2 AND state = 'running'",
                &[&lease.id, &lease.lease],
            )
            .await?;
        if n == 1 {
            self.notify(crate::CHANNEL_JOBS).await?;
        }
        Ok(n == 1)
    }

    async fn settle(
        &self,
        sql: &str,
        lease: Lease,
        error: &str,
    ) -> Result<Option<JobState>, QueueError> {
        let c = self.client().await?;
        let row = c.query_opt(sql, &[&lease.id, &lease.lease, &error]).await?;
        let state = row.map(|r| JobState::parse(r.get(0))).transpose()?;
        if state == Some(JobState::Queued) {
            self.notify(crate::CHANNEL_JOBS).await?;
        }
        Ok(state)
    }

    /// Returns running jobs whose last heartbeat is older than `timeout` to the queue (or marks
    /// them failed when that was their last attempt).
    pub async fn reap_stale(&self, timeout: Duration) -> Result<Vec<Reaped>, QueueError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "UPDATE veil_proving_jobs SET
                     state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
                     error = 'worker ' || COALESCE(worker, '?')
                         || ' stopped heartbeating (attempt ' || attempts || ')',
                     finished_at = now()
                 WHERE state = 'running'
                   AND heartbeat_at < now() - make_interval(secs => $1::float8)
                 RETURNING batch, COALESCE(worker, ''), state",
                &[&timeout.as_secs_f64()],
            )
            .await?;
        let reaped = rows
            .iter()
            .map(|r| {
                Ok(Reaped {
                    batch: u64_of(r.get(0), "batch")?,
                    worker: r.get(1),
                    state: JobState::parse(r.get(2))?,
                })
            })
            .collect::<Result<Vec<_>, QueueError>>()?;
        if reaped.iter().any(|r| r.state == JobState::Queued) {
            self.notify(crate::CHANNEL_JOBS).await?;
        }
        Ok(reaped)
    }

    /// Proofs written back for key `vk_id`, lowest batch first.
    pub async fn proven(&self, vk_id: &str) -> Result<Vec<ProvenJob>, QueueError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, lease, batch, COALESCE(worker, ''), proof, COALESCE(prove_ms, 0),
                        (EXTRACT(EPOCH FROM finished_at - created_at) * 1000)::int8
                 FROM veil_proving_jobs
                 WHERE state = 'proven' AND vk_id = $1 AND proof IS NOT NULL
                 ORDER BY batch",
                &[&vk_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ProvenJob {
                    lease: Lease {
                        id: r.get(0),
                        lease: r.get(1),
                    },
                    batch: u64_of(r.get(2), "batch")?,
                    worker: r.get(3),
                    proof: r.get(4),
                    prove_ms: r.get(5),
                    latency_ms: r.get(6),
                })
            })
            .collect()
    }

    /// The node verified and stored the lease's proof. The witness is dropped (only its hash
    /// stays, for [`JobQueue::enqueue`]'s comparison): at B = 16 it is hundreds of KB per job.
    pub async fn accept(&self, lease: Lease) -> Result<bool, QueueError> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE veil_proving_jobs SET state = 'done', witness = ''::bytea
                 WHERE id = $1 AND lease = $2 AND state = 'proven'",
                &[&lease.id, &lease.lease],
            )
            .await?;
        Ok(n == 1)
    }

    /// The node refused the lease's proof: back to the queue (or failed on the last attempt),
    /// the proof dropped, `error` kept.
    pub async fn reject(&self, lease: Lease, error: &str) -> Result<Option<JobState>, QueueError> {
        self.settle(
            "UPDATE veil_proving_jobs SET
                 state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
                 error = $3, proof = NULL
             WHERE id = $1 AND lease = $2 AND state = 'proven'
             RETURNING state",
            lease,
            error,
        )
        .await
    }

    /// Counts per shape and state, running and failed jobs, per-worker totals and latency.
    pub async fn status(&self) -> Result<QueueStatus, QueueError> {
        let c = self.client().await?;
        let mut status = QueueStatus::default();
        for r in c
            .query(
                "SELECT batch_size, depth, state, count(*) FROM veil_proving_jobs
                 GROUP BY 1, 2, 3 ORDER BY 1, 2",
                &[],
            )
            .await?
        {
            let (b, d) = (u32_of(r.get(0), "batch_size")?, u32_of(r.get(1), "depth")?);
            let i = match status
                .shapes
                .iter()
                .position(|s| s.batch_size == b && s.depth == d)
            {
                Some(i) => i,
                None => {
                    status.shapes.push(ShapeCounts {
                        batch_size: b,
                        depth: d,
                        ..Default::default()
                    });
                    status.shapes.len() - 1
                }
            };
            let s = &mut status.shapes[i];
            let n = u64_of(r.get(3), "count")?;
            match JobState::parse(r.get(2))? {
                JobState::Queued => s.queued = n,
                JobState::Running => s.running = n,
                JobState::Proven => s.proven = n,
                JobState::Done => s.done = n,
                JobState::Failed => s.failed = n,
            }
        }
        status.running = c
            .query(
                "SELECT batch, batch_size, depth, COALESCE(worker, ''), attempts,
                        EXTRACT(EPOCH FROM now() - claimed_at)::float8,
                        EXTRACT(EPOCH FROM now() - heartbeat_at)::float8
                 FROM veil_proving_jobs WHERE state = 'running' ORDER BY batch",
                &[],
            )
            .await?
            .iter()
            .map(running_job)
            .collect::<Result<_, _>>()?;
        status.failed = c
            .query(
                "SELECT batch, batch_size, depth, attempts, COALESCE(error, '')
                 FROM veil_proving_jobs WHERE state = 'failed' ORDER BY batch",
                &[],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(FailedJob {
                    batch: u64_of(r.get(0), "batch")?,
                    batch_size: u32_of(r.get(1), "batch_size")?,
                    depth: u32_of(r.get(2), "depth")?,
                    attempts: r.get(3),
                    error: r.get(4),
                })
            })
            .collect::<Result<_, QueueError>>()?;
        status.workers = c
            .query(
                "SELECT worker, count(*), COALESCE(sum(prove_ms), 0)::int8
                 FROM veil_proving_jobs
                 WHERE state IN ('proven', 'done') AND worker IS NOT NULL
                 GROUP BY worker ORDER BY worker",
                &[],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(WorkerStats {
                    worker: r.get(0),
                    jobs: u64_of(r.get(1), "count")?,
                    prove_ms: u64_of(r.get(2), "prove_ms")?,
                })
            })
            .collect::<Result<_, QueueError>>()?;
        let r = c
            .query_one(
                "SELECT
                     count(*) FILTER (WHERE state IN ('proven', 'done')),
                     COALESCE(sum(EXTRACT(EPOCH FROM finished_at - created_at) * 1000)
                         FILTER (WHERE state IN ('proven', 'done')), 0)::float8,
                     COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)
                         FILTER (WHERE state = 'queued')), 0)::float8
                 FROM veil_proving_jobs",
                &[],
            )
            .await?;
        status.latency_count = u64_of(r.get(0), "count")?;
        status.latency_ms_sum = r.get(1);
        status.oldest_queued_s = r.get(2);
        Ok(status)
    }
}

fn running_job(r: &Row) -> Result<RunningJob, QueueError> {
    Ok(RunningJob {
        batch: u64_of(r.get(0), "batch")?,
        batch_size: u32_of(r.get(1), "batch_size")?,
        depth: u32_of(r.get(2), "depth")?,
        worker: r.get(3),
        attempt: r.get(4),
        age_s: r.get::<_, Option<f64>>(5).unwrap_or(0.0),
        heartbeat_age_s: r.get::<_, Option<f64>>(6).unwrap_or(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let mut b = Backoff::default();
        assert_eq!(b.next_delay(), Duration::from_millis(200));
        assert_eq!(b.next_delay(), Duration::from_millis(400));
        for _ in 0..10 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), Duration::from_secs(5));
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(200));
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_passwords() {
        let e = JobQueue::new("postgres://u:hunter2@h:notaport/db", &[])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("invalid database URL"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn states_round_trip() {
        for s in [
            JobState::Queued,
            JobState::Running,
            JobState::Proven,
            JobState::Done,
            JobState::Failed,
        ] {
            assert_eq!(JobState::parse(s.as_str()).unwrap(), s);
        }
        assert!(JobState::parse("lost").is_err());
    }
}
