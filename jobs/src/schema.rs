//! The queue's schema and its versioned migrations. [`migrate`] applies, in one transaction
//! under an advisory lock (so a node and workers starting together migrate once), every
//! migration newer than the version recorded in `veil_schema_version`, and refuses a database
//! migrated by a newer build. Migrations are append-only: a released one is never edited.

use tokio_postgres::Client;

use crate::QueueError;

/// The jobs table.
pub const JOBS_TABLE: &str = "veil_proving_jobs";

/// Advisory-lock key serialising migrations ("veil" in ASCII).
const MIGRATION_LOCK: i64 = 0x7665_696c;

/// `(version, SQL)`, in order.
pub const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "CREATE TABLE veil_proving_jobs (
        id             BIGSERIAL PRIMARY KEY,
        vk_id          TEXT NOT NULL,
        batch          BIGINT NOT NULL CHECK (batch >= 0),
        batch_size     INTEGER NOT NULL CHECK (batch_size > 0),
        depth          INTEGER NOT NULL CHECK (depth > 0),
        witness        BYTEA NOT NULL,
        witness_sha256 BYTEA NOT NULL,
        state          TEXT NOT NULL DEFAULT 'queued'
                       CHECK (state IN ('queued', 'running', 'proven', 'done', 'failed')),
        attempts       INTEGER NOT NULL DEFAULT 0,
        lease          BIGINT NOT NULL DEFAULT 0,
        max_attempts   INTEGER NOT NULL CHECK (max_attempts > 0),
        worker         TEXT,
        created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
        claimed_at     TIMESTAMPTZ,
        heartbeat_at   TIMESTAMPTZ,
        finished_at    TIMESTAMPTZ,
        prove_ms       BIGINT,
        proof          BYTEA,
        error          TEXT,
        UNIQUE (vk_id, batch)
    );
    CREATE INDEX veil_proving_jobs_queued
        ON veil_proving_jobs (batch_size, depth, vk_id, batch) WHERE state = 'queued';
    CREATE INDEX veil_proving_jobs_active
        ON veil_proving_jobs (state) WHERE state IN ('running', 'proven');",
)];

/// The latest schema version this build knows.
pub fn latest() -> i32 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

/// Brings the database to [`latest`]; returns the version it was at.
pub async fn migrate(client: &mut Client) -> Result<i32, QueueError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS veil_schema_version (
            version    INTEGER PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let found: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM veil_schema_version",
            &[],
        )
        .await?
        .get(0);
    if found > latest() {
        return Err(QueueError::SchemaTooNew {
            found,
            known: latest(),
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO veil_schema_version (version) VALUES ($1)",
            &[version],
        )
        .await?;
        tracing::info!(version, "job queue schema migrated");
    }
    tx.commit().await?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order() {
        for (i, (v, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v, i as i32 + 1);
        }
        assert!(MIGRATIONS[0].1.contains(JOBS_TABLE));
    }
}
