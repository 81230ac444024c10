//! Veil's proving-job queue in PostgreSQL, shared by the node and its prover workers.
//!
//! The node stays the single sequencer and keeps redb as its source of truth; PostgreSQL holds
//! only proving jobs and their results ([`schema`] creates and migrates the table). The life of
//! a job:
//!
//! - the node [`JobQueue::enqueue`]s each sealed batch (`queued`): its batch file with the
//!   witness, its shape and the identity of the verifying key it must be proven for;
//! - a worker [`JobQueue::claim`]s the lowest queued batch of its shape and key with
//!   `SELECT ... FOR UPDATE SKIP LOCKED` (`running`, one more attempt), [`JobQueue::heartbeat`]s
//!   while proving and [`JobQueue::complete`]s it with the proof (`proven`), or
//!   [`JobQueue::fail`]s it;
//! - the node takes [`JobQueue::proven`] jobs, verifies each proof itself, stores it and
//!   [`JobQueue::accept`]s the job (`done`), or [`JobQueue::reject`]s it (back to `queued`);
//! - a `running` job whose heartbeat stopped goes back to `queued` ([`JobQueue::reap_stale`]);
//!   a job that used up its attempts is `failed`, with its last error.
//!
//! Every write a worker makes carries its [`Lease`] (job id and attempt number), so a worker
//! whose job was taken away (heartbeat timeout) can no longer touch it. `NOTIFY` on
//! [`CHANNEL_JOBS`] and [`CHANNEL_PROOFS`] wakes idle workers and the node; they also poll, so a
//! lost notification only delays.

mod queue;
pub mod schema;

pub use queue::{
    Backoff, ClaimedJob, JobQueue, JobState, Lease, NewJob, ProvenJob, QueueStatus, Reaped,
    RunningJob, ShapeCounts, WorkerStats,
};

/// Notified when a job is queued (workers listen).
pub const CHANNEL_JOBS: &str = "veil_jobs";
/// Notified when a proof is written back (the node listens).
pub const CHANNEL_PROOFS: &str = "veil_proofs";

/// What went wrong talking to the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Not a PostgreSQL connection URL.
    #[error("invalid database URL: {0}")]
    Url(String),
    /// The database refused or the connection failed.
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// The database was migrated by a newer build.
    #[error("database schema version {found} is newer than this build's ({known}): upgrade veil")]
    SchemaTooNew {
        /// Version in the database.
        found: i32,
        /// Latest version this build knows.
        known: i32,
    },
    /// A stored value is out of range (a negative batch number, an unknown state).
    #[error("corrupt job row: {0}")]
    Corrupt(String),
}

impl QueueError {
    /// Whether the connection is gone (the next call reconnects).
    pub fn is_connection(&self) -> bool {
        match self {
            QueueError::Db(e) => e.is_closed() || e.as_db_error().is_none(),
            _ => false,
        }
    }
}

/// `url` with any password replaced by `***`, for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<database url>".into();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((auth, host)) => (Some(auth), host),
        None => (None, rest),
    };
    match auth {
        Some(auth) => {
            let user = auth.split(':').next().unwrap_or("");
            if auth.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                format!("{scheme}://{user}@{host}")
            }
        }
        None => {
            // key=value form parameters may carry `password=`.
            match host.find("password=") {
                Some(i) => {
                    let end = host[i..].find('&').map(|j| i + j).unwrap_or(host.len());
                    format!("{scheme}://{}password=***{}", &host[..i], &host[end..])
                }
                None => url.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact_url("postgres://veil:s3cret@db:5432/veil"),
            "postgres://veil:***@db:5432/veil"
        );
        assert_eq!(
            redact_url("postgres://veil@db/veil"),
            "postgres://veil@db/veil"
        );
        assert_eq!(
            redact_url("postgresql:///veil?host=/tmp&password=pw&user=a"),
            "postgresql:///veil?host=/tmp&password=***&user=a"
        );
        assert_eq!(redact_url("host=/tmp password=x"), "<database url>");
    }
}
