//! Versioned schema migrations, one mechanism for both backends.
//!
//! The table `lpdrop_schema_migrations` holds one row per migration applied; the queue's
//! version is the highest. Opening a queue runs [`migrate`] in one writing transaction (on
//! Postgres also under an advisory lock, so that workers starting at once take turns): it
//! applies every migration newer than the queue's version, in order, and refuses a queue
//! whose version is newer than this code knows.
//!
//! Queues made before versioning (up to commit f2b004e) have no `lpdrop_schema_migrations`
//! and are version 0. Their tables are exactly those of migration 1, which therefore keeps
//! the `IF NOT EXISTS` of that release's DDL: on such a queue it changes nothing but the
//! recorded version. Later migrations need not be idempotent: they run exactly once.

use crate::db::Db;
use crate::{QueueError, Result};

/// The schema version this code creates and expects.
pub const SCHEMA_VERSION: i64 = 3;

pub(crate) struct Migration {
    pub version: i64,
    pub description: &'static str,
    /// Statements without parameters; `{ID}` is the dialect's auto-increment key.
    pub sql: &'static str,
}

/// Every migration, oldest first, numbered 1, 2, ... Never edit one that has shipped: add
/// the next.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "jobs, attempts, watermarks, open conversations (the schema of f2b004e)",
        sql: V1,
    },
    Migration {
        version: 2,
        description: "jobs: catalog registration pending (the drop is committed, its Glue registration is not)",
        sql: V2,
    },
    Migration {
        version: 3,
        description: "account pace board: the request rate an account's worker processes share",
        sql: V3,
    },
];

/// Migration 3: the pace board (see `crate::pace`): the account's rate after its last cut,
/// and the next send time of the schedule its processes share (µs since the epoch).
const V3: &str = "CREATE TABLE lpdrop_account_pace (
    account_id TEXT PRIMARY KEY,
    rate_milli BIGINT,
    cut_at BIGINT,
    cut_by TEXT,
    next_send_us BIGINT NOT NULL DEFAULT 0
);";

/// Migration 2: why an uploaded job's drop is not registered in the Glue catalog yet (NULL:
/// registered, or no catalog asked for).
const V2: &str = "ALTER TABLE lpdrop_jobs ADD COLUMN catalog_pending TEXT;";

/// Migration 1: the DDL of the releases before versioning, verbatim.
const V1: &str = "
CREATE TABLE IF NOT EXISTS lpdrop_jobs (
    id {ID},
    account_id TEXT NOT NULL,
    source TEXT NOT NULL,
    window_from BIGINT NOT NULL,
    window_to BIGINT NOT NULL,
    filters TEXT NOT NULL,
    dest TEXT NOT NULL,
    origin TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    attempt_limit BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    not_before BIGINT NOT NULL,
    lease_owner TEXT,
    lease_expires BIGINT,
    drop_id TEXT,
    drop_created_at BIGINT,
    drop_root TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    uploaded_at BIGINT,
    conversations BIGINT,
    open_conversations BIGINT,
    rows_written BIGINT,
    files BIGINT,
    bytes BIGINT
);
CREATE INDEX IF NOT EXISTS lpdrop_jobs_due ON lpdrop_jobs (state, not_before);
CREATE TABLE IF NOT EXISTS lpdrop_job_attempts (
    job_id BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    worker TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    outcome TEXT,
    error TEXT,
    PRIMARY KEY (job_id, attempt)
);
CREATE TABLE IF NOT EXISTS lpdrop_watermarks (
    account_id TEXT NOT NULL,
    source TEXT NOT NULL,
    watermark BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, source)
);
CREATE TABLE IF NOT EXISTS lpdrop_open_conversations (
    account_id TEXT NOT NULL,
    source TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    job_id BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    taken_by TEXT,
    taken_at BIGINT,
    PRIMARY KEY (account_id, source, conversation_id)
);
CREATE INDEX IF NOT EXISTS lpdrop_open_conversations_job ON lpdrop_open_conversations (job_id);
";

const VERSIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS lpdrop_schema_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// The queue's schema version: 0 for a queue made before versioning (or an empty database).
pub(crate) async fn version(db: &mut dyn Db) -> Result<i64> {
    Ok(db
        .query_one("SELECT MAX(version) FROM lpdrop_schema_migrations", &[])
        .await?
        .opt_int(0)?
        .unwrap_or(0))
}

/// Brings the queue to [`SCHEMA_VERSION`] inside the caller's transaction; returns it.
pub(crate) async fn migrate(db: &mut dyn Db) -> Result<i64> {
    migrate_with(db, MIGRATIONS).await
}

pub(crate) async fn migrate_with(db: &mut dyn Db, migrations: &[Migration]) -> Result<i64> {
    let known = migrations.last().map_or(0, |m| m.version);
    db.take_turn(crate::db::Turn::Schema).await?;
    db.batch(VERSIONS_TABLE).await?;
    let current = version(db).await?;
    if current > known {
        return Err(QueueError::SchemaTooNew {
            found: current,
            known,
        });
    }
    let now = db.now_ms().await?;
    for m in migrations.iter().filter(|m| m.version > current) {
        let sql = m.sql.replace("{ID}", db.dialect().auto_id());
        db.batch(&sql).await?;
        db.execute(
            "INSERT INTO lpdrop_schema_migrations (version, description, applied_at) \
             VALUES ($1, $2, $3)",
            &[m.version.into(), m.description.into(), now.into()],
        )
        .await?;
    }
    Ok(known)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.description);
        }
        assert_eq!(MIGRATIONS.last().unwrap().version, SCHEMA_VERSION);
    }
}
