//! The embedded backend: one SQLite file. Worker processes on one machine share it; every
//! change runs in a `BEGIN IMMEDIATE` transaction, so SQLite's write lock serialises claims
//! (the job a claim selects cannot be claimed by anyone else before it commits). The file is in
//! WAL mode, and a busy connection waits for the lock instead of failing.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::{
    Attempt, Counts, DropRecord, FailOutcome, Heartbeat, JOB_COLUMNS, Job, JobRow, JobSpec,
    JobState, Lease, ListFilter, QueueError, Result, SCHEMA, Source, Summary, clip, duration_ms,
};

/// How long a connection waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct SqliteQueue {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        source: r.get(2)?,
        window_from: r.get(3)?,
        window_to: r.get(4)?,
        filters: r.get(5)?,
        dest: r.get(6)?,
        origin: r.get(7)?,
        state: r.get(8)?,
        attempts: r.get(9)?,
        max_attempts: r.get(10)?,
        not_before: r.get(11)?,
        lease_owner: r.get(12)?,
        lease_expires: r.get(13)?,
        drop_id: r.get(14)?,
        drop_created_at: r.get(15)?,
        drop_root: r.get(16)?,
        last_error: r.get(17)?,
        created_at: r.get(18)?,
        updated_at: r.get(19)?,
        started_at: r.get(20)?,
        finished_at: r.get(21)?,
        uploaded_at: r.get(22)?,
        conversations: r.get(23)?,
        open_conversations: r.get(24)?,
        rows: r.get(25)?,
        files: r.get(26)?,
        bytes: r.get(27)?,
    })
}

fn load(tx: &Connection, id: i64) -> Result<Job> {
    let row = tx
        .query_row(
            &format!("SELECT {JOB_COLUMNS} FROM lpdrop_jobs WHERE id = ?1"),
            [id],
            job_row,
        )
        .optional()?
        .ok_or(QueueError::NotFound(id))?;
    row.into_job()
}

/// The job, if `lease` still holds it; [`QueueError::LeaseLost`] otherwise.
fn check_lease(tx: &Connection, lease: &Lease) -> Result<Job> {
    let job = load(tx, lease.job.id)?;
    crate::lease_holds(&job, lease)?;
    Ok(job)
}

fn end_attempt(
    tx: &Connection,
    job: i64,
    attempt: u32,
    now: i64,
    outcome: &str,
    error: Option<&str>,
) -> Result<()> {
    tx.execute(
        "UPDATE lpdrop_job_attempts SET ended_at = ?3, outcome = ?4, error = ?5 \
         WHERE job_id = ?1 AND attempt = ?2 AND ended_at IS NULL",
        params![job, attempt, now, outcome, error],
    )?;
    Ok(())
}

fn insert_jobs(tx: &Transaction<'_>, specs: &[JobSpec], now: i64) -> Result<Vec<i64>> {
    let mut stmt = tx.prepare(
        "INSERT INTO lpdrop_jobs (account_id, source, window_from, window_to, filters, dest, \
         origin, state, attempts, attempt_limit, max_attempts, not_before, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', 0, ?8, ?8, ?9, ?9, ?9) RETURNING id",
    )?;
    let mut ids = Vec::with_capacity(specs.len());
    for s in specs {
        let id: i64 = stmt.query_row(
            params![
                s.account_id,
                s.source.as_str(),
                s.window_from_ms,
                s.window_to_ms,
                s.filters_json(),
                s.dest,
                s.origin,
                s.max_attempts,
                now
            ],
            |r| r.get(0),
        )?;
        ids.push(id);
    }
    Ok(ids)
}

/// WAL mode and the schema, idempotent.
fn set_up(conn: &mut Connection) -> rusqlite::Result<()> {
    let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(&SCHEMA.replace("{ID}", "INTEGER PRIMARY KEY AUTOINCREMENT"))?;
    tx.commit()
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl SqliteQueue {
    pub async fn open(path: &str) -> Result<Self> {
        let path = PathBuf::from(path);
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection> {
            let mut conn = Connection::open(&p).map_err(|e| QueueError::Db {
                backend: "sqlite",
                message: format!("cannot open {}: {e}", p.display()),
            })?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // Switching a new file to WAL needs an exclusive lock, and SQLite answers BUSY at
            // once (without its busy handler) when another process is opening the same new
            // file: retry the set-up for as long as the busy timeout would have waited.
            let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
            loop {
                match set_up(&mut conn) {
                    Ok(()) => return Ok(conn),
                    Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                        std::thread::sleep(std::time::Duration::from_millis(25));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        })
        .await
        .map_err(|e| QueueError::Invalid(format!("the SQLite thread failed: {e}")))??;
        Ok(SqliteQueue {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Runs `f` on the connection off the async workers, inside one IMMEDIATE transaction.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, i64) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            let tx = guard.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx, now_ms())?;
            tx.commit()?;
            Ok(out)
        })
        .await
        .map_err(|e| QueueError::Invalid(format!("the SQLite thread failed: {e}")))?
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, i64) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&guard, now_ms())
        })
        .await
        .map_err(|e| QueueError::Invalid(format!("the SQLite thread failed: {e}")))?
    }

    pub(crate) async fn add(&self, specs: &[JobSpec]) -> Result<Vec<i64>> {
        let specs = specs.to_vec();
        self.write(move |tx, now| insert_jobs(tx, &specs, now))
            .await
    }

    pub(crate) async fn get(&self, id: i64) -> Result<Job> {
        self.read(move |c, _| load(c, id)).await
    }

    pub(crate) async fn list(&self, filter: &ListFilter) -> Result<Vec<Job>> {
        let filter = filter.clone();
        self.read(move |c, _| {
            let mut sql = format!("SELECT {JOB_COLUMNS} FROM lpdrop_jobs WHERE 1 = 1");
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            if !filter.states.is_empty() {
                let marks: Vec<String> = filter
                    .states
                    .iter()
                    .map(|s| {
                        args.push(s.as_str().to_string().into());
                        format!("?{}", args.len())
                    })
                    .collect();
                sql.push_str(&format!(" AND state IN ({})", marks.join(", ")));
            }
            if let Some(a) = &filter.account_id {
                args.push(a.clone().into());
                sql.push_str(&format!(" AND account_id = ?{}", args.len()));
            }
            sql.push_str(" ORDER BY id DESC");
            if let Some(n) = filter.limit {
                sql.push_str(&format!(" LIMIT {n}"));
            }
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args), job_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut jobs = rows
                .into_iter()
                .map(JobRow::into_job)
                .collect::<Result<Vec<_>>>()?;
            jobs.reverse();
            Ok(jobs)
        })
        .await
    }

    pub(crate) async fn attempts(&self, id: i64) -> Result<Vec<Attempt>> {
        self.read(move |c, _| {
            load(c, id)?;
            let mut stmt = c.prepare(
                "SELECT attempt, worker, started_at, ended_at, outcome, error \
                 FROM lpdrop_job_attempts WHERE job_id = ?1 ORDER BY attempt",
            )?;
            let rows = stmt
                .query_map([id], |r| {
                    Ok(Attempt {
                        attempt: r.get::<_, i64>(0)?.max(0) as u32,
                        worker: r.get(1)?,
                        started_at_ms: r.get(2)?,
                        ended_at_ms: r.get(3)?,
                        outcome: r.get(4)?,
                        error: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    pub(crate) async fn summary(&self) -> Result<Summary> {
        self.read(|c, _| {
            let mut out = Summary::default();
            let mut stmt = c.prepare("SELECT state, COUNT(*) FROM lpdrop_jobs GROUP BY state")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for (state, n) in rows {
                out.by_state.insert(JobState::parse(&state)?, n.max(0) as u64);
            }
            out.next_due_ms = c.query_row(
                "SELECT MIN(t) FROM (\
                   SELECT MIN(not_before) AS t FROM lpdrop_jobs WHERE state IN ('queued', 'failed') \
                   UNION ALL \
                   SELECT MIN(lease_expires) AS t FROM lpdrop_jobs WHERE state IN ('running', 'finished'))",
                [],
                |r| r.get(0),
            )?;
            Ok(out)
        })
        .await
    }

    pub(crate) async fn cancel(&self, id: i64) -> Result<Job> {
        self.write(move |tx, now| {
            let job = load(tx, id)?;
            crate::check_cancel(&job)?;
            if job.state == JobState::Cancelled {
                return Ok(job);
            }
            tx.execute(
                "UPDATE lpdrop_jobs SET state = 'cancelled', lease_expires = NULL, updated_at = ?2 \
                 WHERE id = ?1",
                params![id, now],
            )?;
            end_attempt(tx, id, job.attempts, now, "cancelled", None)?;
            load(tx, id)
        })
        .await
    }

    pub(crate) async fn retry(&self, id: i64) -> Result<Job> {
        self.write(move |tx, now| {
            let job = load(tx, id)?;
            crate::check_retry(&job)?;
            tx.execute(
                "UPDATE lpdrop_jobs SET state = 'queued', not_before = ?2, updated_at = ?2, \
                 lease_owner = NULL, lease_expires = NULL, max_attempts = attempts + attempt_limit \
                 WHERE id = ?1",
                params![id, now],
            )?;
            load(tx, id)
        })
        .await
    }

    pub(crate) async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Lease>> {
        let worker = worker.to_string();
        let lease_ms = duration_ms(lease);
        self.write(move |tx, now| {
            loop {
                let row = tx
                    .query_row(
                        &format!(
                            "SELECT {JOB_COLUMNS} FROM lpdrop_jobs \
                             WHERE (state IN ('queued', 'failed') AND not_before <= ?1) \
                                OR (state IN ('running', 'finished') AND lease_expires <= ?1) \
                             ORDER BY not_before, id LIMIT 1"
                        ),
                        [now],
                        job_row,
                    )
                    .optional()?;
                let Some(row) = row else { return Ok(None) };
                let job = row.into_job()?;
                let taken_over = matches!(job.state, JobState::Running | JobState::Finished);
                if taken_over {
                    end_attempt(tx, job.id, job.attempts, now, "lease expired", None)?;
                    if job.attempts >= job.spec.max_attempts {
                        let error = crate::expired_on_last_attempt(&job);
                        tx.execute(
                            "UPDATE lpdrop_jobs SET state = 'dead', last_error = ?2, \
                             lease_expires = NULL, updated_at = ?3 WHERE id = ?1",
                            params![job.id, error, now],
                        )?;
                        continue;
                    }
                }
                tx.execute(
                    "UPDATE lpdrop_jobs SET state = 'running', attempts = attempts + 1, \
                     lease_owner = ?2, lease_expires = ?3, not_before = ?4, \
                     started_at = COALESCE(started_at, ?4), updated_at = ?4 WHERE id = ?1",
                    params![job.id, worker, now + lease_ms, now],
                )?;
                tx.execute(
                    "INSERT INTO lpdrop_job_attempts (job_id, attempt, worker, started_at) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![job.id, job.attempts + 1, worker, now],
                )?;
                let job = load(tx, job.id)?;
                return Ok(Some(Lease {
                    attempt: job.attempts,
                    owner: worker,
                    taken_over,
                    job,
                }));
            }
        })
        .await
    }

    pub(crate) async fn heartbeat(&self, lease: &Lease, duration: Duration) -> Result<Heartbeat> {
        let lease = lease.clone();
        let ms = duration_ms(duration);
        self.write(move |tx, now| match check_lease(tx, &lease) {
            Ok(_) => {
                tx.execute(
                    "UPDATE lpdrop_jobs SET lease_expires = ?2, updated_at = ?3 WHERE id = ?1",
                    params![lease.job.id, now + ms, now],
                )?;
                Ok(Heartbeat::Renewed {
                    expires_ms: now + ms,
                })
            }
            Err(QueueError::LeaseLost { .. }) => {
                let job = load(tx, lease.job.id)?;
                Ok(if job.state == JobState::Cancelled {
                    Heartbeat::Cancelled
                } else {
                    Heartbeat::Lost
                })
            }
            Err(e) => Err(e),
        })
        .await
    }

    pub(crate) async fn record_drop(&self, lease: &Lease, drop: &DropRecord) -> Result<DropRecord> {
        let lease = lease.clone();
        let drop = drop.clone();
        self.write(move |tx, now| {
            let job = check_lease(tx, &lease)?;
            if let Some(existing) = job.drop {
                return Ok(existing);
            }
            tx.execute(
                "UPDATE lpdrop_jobs SET drop_id = ?2, drop_created_at = ?3, drop_root = ?4, \
                 updated_at = ?5 WHERE id = ?1",
                params![lease.job.id, drop.id, drop.created_at_ms, drop.root, now],
            )?;
            Ok(drop)
        })
        .await
    }

    pub(crate) async fn finish(&self, lease: &Lease, counts: &Counts) -> Result<()> {
        let lease = lease.clone();
        let c = *counts;
        self.write(move |tx, now| {
            check_lease(tx, &lease)?;
            tx.execute(
                "UPDATE lpdrop_jobs SET state = 'finished', finished_at = ?2, updated_at = ?2, \
                 conversations = ?3, open_conversations = ?4, rows_written = ?5, files = ?6, \
                 bytes = ?7 WHERE id = ?1",
                params![
                    lease.job.id,
                    now,
                    c.conversations as i64,
                    c.open_conversations as i64,
                    c.rows as i64,
                    c.files as i64,
                    c.bytes as i64
                ],
            )?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn uploaded(&self, lease: &Lease, counts: Option<&Counts>) -> Result<()> {
        let lease = lease.clone();
        let counts = counts.copied();
        self.write(move |tx, now| {
            check_lease(tx, &lease)?;
            tx.execute(
                "UPDATE lpdrop_jobs SET state = 'uploaded', uploaded_at = ?2, \
                 finished_at = COALESCE(finished_at, ?2), updated_at = ?2, lease_expires = NULL \
                 WHERE id = ?1",
                params![lease.job.id, now],
            )?;
            if let Some(c) = counts {
                tx.execute(
                    "UPDATE lpdrop_jobs SET conversations = ?2, open_conversations = ?3, \
                     rows_written = ?4, files = ?5, bytes = ?6 WHERE id = ?1",
                    params![
                        lease.job.id,
                        c.conversations as i64,
                        c.open_conversations as i64,
                        c.rows as i64,
                        c.files as i64,
                        c.bytes as i64
                    ],
                )?;
            }
            end_attempt(tx, lease.job.id, lease.attempt, now, "uploaded", None)?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_after: Option<Duration>,
    ) -> Result<FailOutcome> {
        let lease = lease.clone();
        let error = clip(error, 4000);
        self.write(move |tx, now| {
            let job = check_lease(tx, &lease)?;
            let outcome = match retry_after {
                Some(d) if job.attempts < job.spec.max_attempts => {
                    FailOutcome::RetryAt(now + duration_ms(d))
                }
                _ => FailOutcome::Dead,
            };
            let (state, not_before) = match outcome {
                FailOutcome::RetryAt(t) => ("failed", t),
                FailOutcome::Dead => ("dead", now),
            };
            tx.execute(
                "UPDATE lpdrop_jobs SET state = ?2, not_before = ?3, last_error = ?4, \
                 lease_expires = NULL, updated_at = ?5 WHERE id = ?1",
                params![lease.job.id, state, not_before, error, now],
            )?;
            end_attempt(tx, lease.job.id, lease.attempt, now, state, Some(&error))?;
            Ok(outcome)
        })
        .await
    }

    pub(crate) async fn release(&self, lease: &Lease, delay: Duration) -> Result<()> {
        let lease = lease.clone();
        let delay = duration_ms(delay);
        self.write(move |tx, now| {
            check_lease(tx, &lease)?;
            tx.execute(
                "UPDATE lpdrop_jobs SET state = 'queued', not_before = ?2, updated_at = ?3, \
                 lease_owner = NULL, lease_expires = NULL, max_attempts = max_attempts + 1 \
                 WHERE id = ?1",
                params![lease.job.id, now + delay, now],
            )?;
            end_attempt(tx, lease.job.id, lease.attempt, now, "handed back", None)?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn watermark(&self, account_id: &str, source: Source) -> Result<Option<i64>> {
        let account_id = account_id.to_string();
        self.read(move |c, _| {
            Ok(c.query_row(
                "SELECT watermark FROM lpdrop_watermarks WHERE account_id = ?1 AND source = ?2",
                params![account_id, source.as_str()],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    pub(crate) async fn advance_watermark(
        &self,
        account_id: &str,
        source: Source,
        expected: Option<i64>,
        new: i64,
        specs: &[JobSpec],
    ) -> Result<Option<Vec<i64>>> {
        let account_id = account_id.to_string();
        let specs = specs.to_vec();
        self.write(move |tx, now| {
            let current: Option<i64> = tx
                .query_row(
                    "SELECT watermark FROM lpdrop_watermarks WHERE account_id = ?1 AND source = ?2",
                    params![account_id, source.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            if current != expected {
                return Ok(None);
            }
            let ids = insert_jobs(tx, &specs, now)?;
            tx.execute(
                "INSERT INTO lpdrop_watermarks (account_id, source, watermark, updated_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (account_id, source) \
                 DO UPDATE SET watermark = excluded.watermark, updated_at = excluded.updated_at",
                params![account_id, source.as_str(), new, now],
            )?;
            Ok(Some(ids))
        })
        .await
    }

    pub(crate) async fn add_open_conversations(
        &self,
        job_id: i64,
        ids: &[String],
    ) -> Result<usize> {
        let ids = ids.to_vec();
        self.write(move |tx, now| {
            let job = load(tx, job_id)?;
            let mut stmt = tx.prepare(
                "INSERT INTO lpdrop_open_conversations \
                 (account_id, source, conversation_id, job_id, recorded_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (account_id, source, conversation_id) \
                 DO UPDATE SET job_id = excluded.job_id, recorded_at = excluded.recorded_at, \
                 taken_by = NULL, taken_at = NULL",
            )?;
            for id in &ids {
                stmt.execute(params![
                    job.spec.account_id,
                    job.spec.source.as_str(),
                    id,
                    job_id,
                    now
                ])?;
            }
            Ok(ids.len())
        })
        .await
    }

    pub(crate) async fn take_open_conversations(
        &self,
        account_id: &str,
        source: Source,
        limit: u32,
        taker: &str,
    ) -> Result<Vec<String>> {
        let account_id = account_id.to_string();
        let taker = taker.to_string();
        self.write(move |tx, now| {
            let ids = {
                let mut stmt = tx.prepare(
                    "SELECT conversation_id FROM lpdrop_open_conversations \
                     WHERE account_id = ?1 AND source = ?2 \
                     AND (taken_by IS NULL OR taken_by = ?4) \
                     ORDER BY taken_by IS NULL, recorded_at, conversation_id LIMIT ?3",
                )?;
                stmt.query_map(params![account_id, source.as_str(), limit, taker], |r| {
                    r.get::<_, String>(0)
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?
            };
            let mut stmt = tx.prepare(
                "UPDATE lpdrop_open_conversations SET taken_by = ?4, taken_at = ?5 \
                 WHERE account_id = ?1 AND source = ?2 AND conversation_id = ?3",
            )?;
            for id in &ids {
                stmt.execute(params![account_id, source.as_str(), id, taker, now])?;
            }
            Ok(ids)
        })
        .await
    }

    pub(crate) async fn pending_open_conversations(
        &self,
        account_id: &str,
        source: Source,
        recorded_before_ms: i64,
    ) -> Result<u64> {
        let account_id = account_id.to_string();
        self.read(move |c, _| {
            let n: i64 = c.query_row(
                "SELECT count(*) FROM lpdrop_open_conversations \
                 WHERE account_id = ?1 AND source = ?2 AND taken_by IS NULL \
                 AND recorded_at < ?3",
                params![account_id, source.as_str(), recorded_before_ms],
                |r| r.get(0),
            )?;
            Ok(n as u64)
        })
        .await
    }

    pub(crate) async fn open_conversations_of(&self, job_id: i64) -> Result<Vec<String>> {
        self.read(move |c, _| {
            let mut stmt = c.prepare(
                "SELECT conversation_id FROM lpdrop_open_conversations \
                 WHERE job_id = ?1 AND taken_by IS NULL ORDER BY conversation_id",
            )?;
            Ok(stmt
                .query_map([job_id], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}
