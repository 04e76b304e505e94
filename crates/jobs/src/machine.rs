//! The queue's state machine, written once for both backends: which state a job may move to,
//! the lease (fencing) checks, attempt counting, when a failure is `dead`, watermarks and the
//! bookkeeping of open conversations. Each operation runs inside the transaction its backend
//! opened for it (see [`crate::Queue`]) and reaches the database only through [`Db`].

use std::time::Duration;

use crate::db::{Db, Row, Turn, Value};
use crate::{
    Attempt, Counts, DropRecord, FailOutcome, Heartbeat, Job, JobSpec, JobState, Lease, ListFilter,
    QueueError, Result, Source, Summary, duration_ms,
};

/// The job columns every query selects, in the order [`job_from_row`] reads them.
const JOB_COLUMNS: &str = "id, account_id, source, window_from, window_to, filters, \
    dest, origin, state, attempts, max_attempts, not_before, lease_owner, lease_expires, \
    drop_id, drop_created_at, drop_root, last_error, created_at, updated_at, started_at, \
    finished_at, uploaded_at, conversations, open_conversations, rows_written, files, bytes, \
    catalog_pending";

/// Error texts longer than this are clipped before they are stored.
const MAX_ERROR_LEN: usize = 4000;

/// Rows changed per statement when a list of ids is spelled out as parameters: well under
/// both databases' limits on parameters.
const IDS_PER_STATEMENT: usize = 500;

fn job_from_row(r: &Row) -> Result<Job> {
    let drop = match (r.opt_text(14)?, r.opt_int(15)?, r.opt_text(16)?) {
        (Some(id), Some(created_at_ms), Some(root)) => Some(DropRecord {
            id,
            created_at_ms,
            root,
        }),
        _ => None,
    };
    let u = |v: Option<i64>| v.unwrap_or(0).max(0) as u64;
    let conversations = r.opt_int(23)?;
    let counts = match conversations {
        Some(_) => Some(Counts {
            conversations: u(conversations),
            open_conversations: u(r.opt_int(24)?),
            rows: u(r.opt_int(25)?),
            files: u(r.opt_int(26)?),
            bytes: u(r.opt_int(27)?),
        }),
        None => None,
    };
    Ok(Job {
        id: r.int(0)?,
        spec: JobSpec {
            account_id: r.text(1)?,
            source: r.text(2)?.parse().map_err(QueueError::Invalid)?,
            window_from_ms: r.int(3)?,
            window_to_ms: r.int(4)?,
            skill_ids: JobSpec::skill_ids_from_json(&r.text(5)?)?,
            dest: r.text(6)?,
            max_attempts: r.int(10)?.max(0) as u32,
            origin: r.text(7)?,
        },
        state: JobState::parse(&r.text(8)?)?,
        attempts: r.int(9)?.max(0) as u32,
        not_before_ms: r.int(11)?,
        lease_owner: r.opt_text(12)?,
        lease_expires_ms: r.opt_int(13)?,
        drop,
        last_error: r.opt_text(17)?,
        created_at_ms: r.int(18)?,
        updated_at_ms: r.int(19)?,
        started_at_ms: r.opt_int(20)?,
        finished_at_ms: r.opt_int(21)?,
        uploaded_at_ms: r.opt_int(22)?,
        counts,
        catalog_pending: r.opt_text(28)?,
    })
}

/// Whether a read is followed by a change of the row in the same transaction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lock {
    No,
    ForUpdate,
}

async fn load(db: &mut dyn Db, id: i64, lock: Lock) -> Result<Job> {
    let lock = match lock {
        Lock::No => "",
        Lock::ForUpdate => db.dialect().for_update(),
    };
    let sql = format!("SELECT {JOB_COLUMNS} FROM lpdrop_jobs WHERE id = $1{lock}");
    let row = db
        .query_opt(&sql, &[id.into()])
        .await?
        .ok_or(QueueError::NotFound(id))?;
    job_from_row(&row)
}

/// `Ok` when `lease` still holds `job`: same attempt, same worker, and the job is running or
/// finished (an expired lease still holds until another worker takes the job over).
fn lease_holds(job: &Job, lease: &Lease) -> Result<()> {
    let holds = job.attempts == lease.attempt
        && job.lease_owner.as_deref() == Some(lease.owner.as_str())
        && matches!(job.state, JobState::Running | JobState::Finished);
    if holds {
        return Ok(());
    }
    let reason = if job.state == JobState::Cancelled {
        "the job was cancelled".to_string()
    } else if job.attempts != lease.attempt {
        format!(
            "the lease expired and {} took the job over (attempt {})",
            job.lease_owner.as_deref().unwrap_or("another worker"),
            job.attempts
        )
    } else {
        format!("the job is {} now", job.state)
    };
    Err(QueueError::LeaseLost {
        job: job.id,
        attempt: lease.attempt,
        reason,
    })
}

/// The job, locked, if `lease` still holds it; [`QueueError::LeaseLost`] otherwise.
async fn check_lease(db: &mut dyn Db, lease: &Lease) -> Result<Job> {
    let job = load(db, lease.job.id, Lock::ForUpdate).await?;
    lease_holds(&job, lease)?;
    Ok(job)
}

fn check_cancel(job: &Job) -> Result<()> {
    if job.state == JobState::Uploaded {
        return Err(QueueError::WrongState {
            job: job.id,
            state: job.state,
            message: "its drop is committed; nothing to cancel".into(),
        });
    }
    Ok(())
}

fn check_retry(job: &Job) -> Result<()> {
    match job.state {
        JobState::Failed | JobState::Dead | JobState::Cancelled => Ok(()),
        JobState::Uploaded => Err(QueueError::WrongState {
            job: job.id,
            state: job.state,
            message: "its drop is committed; nothing to retry".into(),
        }),
        JobState::Queued => Err(QueueError::WrongState {
            job: job.id,
            state: job.state,
            message: "it is waiting for a worker already".into(),
        }),
        JobState::Running | JobState::Finished => Err(QueueError::WrongState {
            job: job.id,
            state: job.state,
            message: format!(
                "{} holds it; cancel it first to run it again",
                job.lease_owner.as_deref().unwrap_or("a worker")
            ),
        }),
    }
}

fn expired_on_last_attempt(job: &Job) -> String {
    format!(
        "the lease of {} expired on attempt {} of {} (the worker stopped heartbeating: killed, \
         out of memory, or cut off from the queue)",
        job.lease_owner.as_deref().unwrap_or("a worker"),
        job.attempts,
        job.spec.max_attempts
    )
}

/// Truncates long error chains for storage and tables.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Closes the attempt's history row, unless something closed it already.
async fn end_attempt(
    db: &mut dyn Db,
    job: i64,
    attempt: u32,
    now: i64,
    outcome: &str,
    error: Option<&str>,
) -> Result<()> {
    db.execute(
        "UPDATE lpdrop_job_attempts SET ended_at = $3, outcome = $4, error = $5 \
         WHERE job_id = $1 AND attempt = $2 AND ended_at IS NULL",
        &[
            job.into(),
            attempt.into(),
            now.into(),
            outcome.into(),
            error.into(),
        ],
    )
    .await?;
    Ok(())
}

async fn insert_jobs(db: &mut dyn Db, specs: &[JobSpec], now: i64) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(specs.len());
    for s in specs {
        // `attempt_limit` keeps the allowance asked for: a retry grants it afresh.
        let row = db
            .query_one(
                "INSERT INTO lpdrop_jobs (account_id, source, window_from, window_to, filters, \
                 dest, origin, state, attempts, attempt_limit, max_attempts, not_before, \
                 created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', 0, $8, $8, $9, $9, $9) \
                 RETURNING id",
                &[
                    s.account_id.as_str().into(),
                    s.source.as_str().into(),
                    s.window_from_ms.into(),
                    s.window_to_ms.into(),
                    s.filters_json().as_str().into(),
                    s.dest.as_str().into(),
                    s.origin.as_str().into(),
                    s.max_attempts.into(),
                    now.into(),
                ],
            )
            .await?;
        ids.push(row.int(0)?);
    }
    Ok(ids)
}

pub(crate) async fn add(db: &mut dyn Db, specs: Vec<JobSpec>) -> Result<Vec<i64>> {
    let now = db.now_ms().await?;
    insert_jobs(db, &specs, now).await
}

pub(crate) async fn get(db: &mut dyn Db, id: i64) -> Result<Job> {
    load(db, id, Lock::No).await
}

pub(crate) async fn list(db: &mut dyn Db, filter: ListFilter) -> Result<Vec<Job>> {
    let mut sql = format!("SELECT {JOB_COLUMNS} FROM lpdrop_jobs WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    if !filter.states.is_empty() {
        let marks: Vec<String> = filter
            .states
            .iter()
            .map(|s| {
                args.push(s.as_str().into());
                format!("${}", args.len())
            })
            .collect();
        sql.push_str(&format!(" AND state IN ({})", marks.join(", ")));
    }
    if let Some(a) = &filter.account_id {
        args.push(a.into());
        sql.push_str(&format!(" AND account_id = ${}", args.len()));
    }
    sql.push_str(" ORDER BY id DESC");
    if let Some(n) = filter.limit {
        args.push(n.into());
        sql.push_str(&format!(" LIMIT ${}", args.len()));
    }
    let mut jobs = db
        .query(&sql, &args)
        .await?
        .iter()
        .map(job_from_row)
        .collect::<Result<Vec<_>>>()?;
    // The newest `limit`, shown oldest first.
    jobs.reverse();
    Ok(jobs)
}

pub(crate) async fn attempts(db: &mut dyn Db, id: i64) -> Result<Vec<Attempt>> {
    load(db, id, Lock::No).await?;
    db.query(
        "SELECT attempt, worker, started_at, ended_at, outcome, error \
         FROM lpdrop_job_attempts WHERE job_id = $1 ORDER BY attempt",
        &[id.into()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Attempt {
            attempt: r.int(0)?.max(0) as u32,
            worker: r.text(1)?,
            started_at_ms: r.int(2)?,
            ended_at_ms: r.opt_int(3)?,
            outcome: r.opt_text(4)?,
            error: r.opt_text(5)?,
        })
    })
    .collect()
}

pub(crate) async fn summary(db: &mut dyn Db) -> Result<Summary> {
    let mut out = Summary::default();
    for r in db
        .query(
            "SELECT state, COUNT(*) FROM lpdrop_jobs GROUP BY state",
            &[],
        )
        .await?
    {
        out.by_state
            .insert(JobState::parse(&r.text(0)?)?, r.int(1)?.max(0) as u64);
    }
    out.next_due_ms = db
        .query_one(
            "SELECT MIN(t) FROM (\
               SELECT MIN(not_before) AS t FROM lpdrop_jobs WHERE state IN ('queued', 'failed') \
               UNION ALL \
               SELECT MIN(lease_expires) AS t FROM lpdrop_jobs \
               WHERE state IN ('running', 'finished')) m",
            &[],
        )
        .await?
        .opt_int(0)?;
    Ok(out)
}

pub(crate) async fn cancel(db: &mut dyn Db, id: i64) -> Result<Job> {
    let now = db.now_ms().await?;
    let job = load(db, id, Lock::ForUpdate).await?;
    check_cancel(&job)?;
    if job.state == JobState::Cancelled {
        return Ok(job);
    }
    // The lease owner stays: a heartbeat from it then learns the job was cancelled.
    db.execute(
        "UPDATE lpdrop_jobs SET state = 'cancelled', lease_expires = NULL, updated_at = $2 \
         WHERE id = $1",
        &[id.into(), now.into()],
    )
    .await?;
    end_attempt(db, id, job.attempts, now, "cancelled", None).await?;
    load(db, id, Lock::No).await
}

pub(crate) async fn retry(db: &mut dyn Db, id: i64) -> Result<Job> {
    let now = db.now_ms().await?;
    let job = load(db, id, Lock::ForUpdate).await?;
    check_retry(&job)?;
    // A fresh allowance: as many attempts again as the job was given, counted from now.
    db.execute(
        "UPDATE lpdrop_jobs SET state = 'queued', not_before = $2, updated_at = $2, \
         lease_owner = NULL, lease_expires = NULL, max_attempts = attempts + attempt_limit \
         WHERE id = $1",
        &[id.into(), now.into()],
    )
    .await?;
    load(db, id, Lock::No).await
}

pub(crate) async fn claim(
    db: &mut dyn Db,
    worker: String,
    lease: Duration,
) -> Result<Option<Lease>> {
    let now = db.now_ms().await?;
    let lease_ms = duration_ms(lease);
    let due = format!(
        "SELECT {JOB_COLUMNS} FROM lpdrop_jobs \
         WHERE (state IN ('queued', 'failed') AND not_before <= $1) \
            OR (state IN ('running', 'finished') AND lease_expires <= $1) \
         ORDER BY not_before, id LIMIT 1{}",
        db.dialect().for_update_skip_locked()
    );
    loop {
        let Some(row) = db.query_opt(&due, &[now.into()]).await? else {
            return Ok(None);
        };
        let job = job_from_row(&row)?;
        let taken_over = matches!(job.state, JobState::Running | JobState::Finished);
        if taken_over {
            end_attempt(db, job.id, job.attempts, now, "lease expired", None).await?;
            if job.attempts >= job.spec.max_attempts {
                // Its worker died on the last attempt: no one may try again unasked.
                let error = expired_on_last_attempt(&job);
                db.execute(
                    "UPDATE lpdrop_jobs SET state = 'dead', last_error = $2, \
                     lease_expires = NULL, updated_at = $3 WHERE id = $1",
                    &[job.id.into(), error.as_str().into(), now.into()],
                )
                .await?;
                continue;
            }
        }
        db.execute(
            "UPDATE lpdrop_jobs SET state = 'running', attempts = attempts + 1, \
             lease_owner = $2, lease_expires = $3, not_before = $4, \
             started_at = COALESCE(started_at, $4), updated_at = $4 WHERE id = $1",
            &[
                job.id.into(),
                worker.as_str().into(),
                (now + lease_ms).into(),
                now.into(),
            ],
        )
        .await?;
        db.execute(
            "INSERT INTO lpdrop_job_attempts (job_id, attempt, worker, started_at) \
             VALUES ($1, $2, $3, $4)",
            &[
                job.id.into(),
                (job.attempts + 1).into(),
                worker.as_str().into(),
                now.into(),
            ],
        )
        .await?;
        let job = load(db, job.id, Lock::No).await?;
        return Ok(Some(Lease {
            attempt: job.attempts,
            owner: worker,
            taken_over,
            job,
        }));
    }
}

pub(crate) async fn heartbeat(
    db: &mut dyn Db,
    lease: Lease,
    duration: Duration,
) -> Result<Heartbeat> {
    let now = db.now_ms().await?;
    let expires_ms = now + duration_ms(duration);
    let job = load(db, lease.job.id, Lock::ForUpdate).await?;
    if lease_holds(&job, &lease).is_err() {
        return Ok(if job.state == JobState::Cancelled {
            Heartbeat::Cancelled
        } else {
            Heartbeat::Lost
        });
    }
    db.execute(
        "UPDATE lpdrop_jobs SET lease_expires = $2, updated_at = $3 WHERE id = $1",
        &[job.id.into(), expires_ms.into(), now.into()],
    )
    .await?;
    Ok(Heartbeat::Renewed { expires_ms })
}

pub(crate) async fn record_drop(
    db: &mut dyn Db,
    lease: Lease,
    drop: DropRecord,
) -> Result<DropRecord> {
    let now = db.now_ms().await?;
    let job = check_lease(db, &lease).await?;
    // The first drop recorded wins: a retried or taken-over attempt writes that one.
    if let Some(existing) = job.drop {
        return Ok(existing);
    }
    db.execute(
        "UPDATE lpdrop_jobs SET drop_id = $2, drop_created_at = $3, drop_root = $4, \
         updated_at = $5 WHERE id = $1",
        &[
            job.id.into(),
            drop.id.as_str().into(),
            drop.created_at_ms.into(),
            drop.root.as_str().into(),
            now.into(),
        ],
    )
    .await?;
    Ok(drop)
}

async fn store_counts(db: &mut dyn Db, id: i64, c: &Counts) -> Result<()> {
    db.execute(
        "UPDATE lpdrop_jobs SET conversations = $2, open_conversations = $3, \
         rows_written = $4, files = $5, bytes = $6 WHERE id = $1",
        &[
            id.into(),
            c.conversations.into(),
            c.open_conversations.into(),
            c.rows.into(),
            c.files.into(),
            c.bytes.into(),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn finish(db: &mut dyn Db, lease: Lease, counts: Counts) -> Result<()> {
    let now = db.now_ms().await?;
    let job = check_lease(db, &lease).await?;
    // Still leased: the worker goes on heartbeating until the drop is committed.
    db.execute(
        "UPDATE lpdrop_jobs SET state = 'finished', finished_at = $2, updated_at = $2 \
         WHERE id = $1",
        &[job.id.into(), now.into()],
    )
    .await?;
    store_counts(db, job.id, &counts).await
}

pub(crate) async fn uploaded(db: &mut dyn Db, lease: Lease, counts: Option<Counts>) -> Result<()> {
    let now = db.now_ms().await?;
    let job = check_lease(db, &lease).await?;
    db.execute(
        "UPDATE lpdrop_jobs SET state = 'uploaded', uploaded_at = $2, \
         finished_at = COALESCE(finished_at, $2), updated_at = $2, lease_expires = NULL \
         WHERE id = $1",
        &[job.id.into(), now.into()],
    )
    .await?;
    if let Some(c) = counts {
        store_counts(db, job.id, &c).await?;
    }
    end_attempt(db, job.id, lease.attempt, now, "uploaded", None).await
}

/// Records (or with `None` clears) why the job's committed drop is not registered in the
/// Glue catalog. The job stays as it is: uploaded.
pub(crate) async fn set_catalog_pending(
    db: &mut dyn Db,
    id: i64,
    pending: Option<String>,
) -> Result<()> {
    let now = db.now_ms().await?;
    let pending = pending.map(|p| clip(&p, MAX_ERROR_LEN));
    let changed = db
        .execute(
            "UPDATE lpdrop_jobs SET catalog_pending = $2, updated_at = $3 WHERE id = $1",
            &[id.into(), pending.as_deref().into(), now.into()],
        )
        .await?;
    if changed == 0 {
        return Err(QueueError::NotFound(id));
    }
    Ok(())
}

/// Uploaded jobs whose catalog registration is pending.
pub(crate) async fn catalog_pending_count(db: &mut dyn Db) -> Result<u64> {
    let n = db
        .query_one(
            "SELECT COUNT(*) FROM lpdrop_jobs WHERE catalog_pending IS NOT NULL",
            &[],
        )
        .await?
        .int(0)?;
    Ok(n.max(0) as u64)
}

/// Uploaded jobs of `account_id` whose catalog registration is pending, oldest first.
pub(crate) async fn catalog_pending_jobs(
    db: &mut dyn Db,
    account_id: String,
    limit: u64,
) -> Result<Vec<Job>> {
    db.query(
        &format!(
            "SELECT {JOB_COLUMNS} FROM lpdrop_jobs WHERE catalog_pending IS NOT NULL \
             AND account_id = $1 ORDER BY id LIMIT $2"
        ),
        &[account_id.as_str().into(), limit.into()],
    )
    .await?
    .iter()
    .map(job_from_row)
    .collect()
}

/// Clears the pending catalog registration of the jobs whose drop root is one of `roots`;
/// returns how many were pending.
pub(crate) async fn catalog_registered(db: &mut dyn Db, roots: Vec<String>) -> Result<u64> {
    let now = db.now_ms().await?;
    let mut cleared = 0;
    for root in roots {
        cleared += db
            .execute(
                "UPDATE lpdrop_jobs SET catalog_pending = NULL, updated_at = $2 \
                 WHERE drop_root = $1 AND catalog_pending IS NOT NULL",
                &[root.as_str().into(), now.into()],
            )
            .await?;
    }
    Ok(cleared)
}

pub(crate) async fn fail(
    db: &mut dyn Db,
    lease: Lease,
    error: String,
    retry_after: Option<Duration>,
) -> Result<FailOutcome> {
    let now = db.now_ms().await?;
    let error = clip(&error, MAX_ERROR_LEN);
    let job = check_lease(db, &lease).await?;
    let outcome = match retry_after {
        Some(d) if job.attempts < job.spec.max_attempts => {
            FailOutcome::RetryAt(now + duration_ms(d))
        }
        _ => FailOutcome::Dead,
    };
    let (state, not_before) = match outcome {
        FailOutcome::RetryAt(t) => (JobState::Failed, t),
        FailOutcome::Dead => (JobState::Dead, now),
    };
    db.execute(
        "UPDATE lpdrop_jobs SET state = $2, not_before = $3, last_error = $4, \
         lease_expires = NULL, updated_at = $5 WHERE id = $1",
        &[
            job.id.into(),
            state.as_str().into(),
            not_before.into(),
            error.as_str().into(),
            now.into(),
        ],
    )
    .await?;
    end_attempt(db, job.id, lease.attempt, now, state.as_str(), Some(&error)).await?;
    Ok(outcome)
}

pub(crate) async fn release(db: &mut dyn Db, lease: Lease, delay: Duration) -> Result<()> {
    let now = db.now_ms().await?;
    let job = check_lease(db, &lease).await?;
    // The attempt was counted when claimed; one more allowed makes it not count.
    db.execute(
        "UPDATE lpdrop_jobs SET state = 'queued', not_before = $2, updated_at = $3, \
         lease_owner = NULL, lease_expires = NULL, max_attempts = max_attempts + 1 \
         WHERE id = $1",
        &[job.id.into(), (now + duration_ms(delay)).into(), now.into()],
    )
    .await?;
    end_attempt(db, job.id, lease.attempt, now, "handed back", None).await
}

pub(crate) async fn watermark(
    db: &mut dyn Db,
    account_id: String,
    source: Source,
) -> Result<Option<i64>> {
    match db
        .query_opt(
            "SELECT watermark FROM lpdrop_watermarks WHERE account_id = $1 AND source = $2",
            &[account_id.as_str().into(), source.as_str().into()],
        )
        .await?
    {
        Some(r) => Ok(Some(r.int(0)?)),
        None => Ok(None),
    }
}

pub(crate) async fn advance_watermark(
    db: &mut dyn Db,
    account_id: String,
    source: Source,
    expected: Option<i64>,
    new: i64,
    specs: Vec<JobSpec>,
) -> Result<Option<Vec<i64>>> {
    let now = db.now_ms().await?;
    db.take_turn(Turn::Watermark {
        account_id: &account_id,
        source,
    })
    .await?;
    let current = watermark(db, account_id.clone(), source).await?;
    if current != expected {
        // Another scheduler moved it since this one read it: it enqueued these windows.
        return Ok(None);
    }
    let ids = insert_jobs(db, &specs, now).await?;
    db.execute(
        "INSERT INTO lpdrop_watermarks (account_id, source, watermark, updated_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, source) \
         DO UPDATE SET watermark = excluded.watermark, updated_at = excluded.updated_at",
        &[
            account_id.as_str().into(),
            source.as_str().into(),
            new.into(),
            now.into(),
        ],
    )
    .await?;
    Ok(Some(ids))
}

pub(crate) async fn add_open_conversations(
    db: &mut dyn Db,
    job_id: i64,
    ids: Vec<String>,
) -> Result<usize> {
    let now = db.now_ms().await?;
    let job = load(db, job_id, Lock::ForUpdate).await?;
    for id in &ids {
        // Seen open again: the latest job remembers it, and it is available to take again.
        db.execute(
            "INSERT INTO lpdrop_open_conversations \
             (account_id, source, conversation_id, job_id, recorded_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, source, conversation_id) \
             DO UPDATE SET job_id = excluded.job_id, recorded_at = excluded.recorded_at, \
             taken_by = NULL, taken_at = NULL",
            &[
                job.spec.account_id.as_str().into(),
                job.spec.source.as_str().into(),
                id.into(),
                job_id.into(),
                now.into(),
            ],
        )
        .await?;
    }
    Ok(ids.len())
}

pub(crate) async fn remember_without_job(
    db: &mut dyn Db,
    account_id: String,
    source: Source,
    ids: Vec<String>,
) -> Result<usize> {
    let now = db.now_ms().await?;
    for id in &ids {
        db.execute(
            "INSERT INTO lpdrop_open_conversations \
             (account_id, source, conversation_id, job_id, recorded_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, source, conversation_id) \
             DO UPDATE SET job_id = excluded.job_id, recorded_at = excluded.recorded_at, \
             taken_by = NULL, taken_at = NULL",
            &[
                account_id.as_str().into(),
                source.as_str().into(),
                id.into(),
                crate::NO_JOB.into(),
                now.into(),
            ],
        )
        .await?;
    }
    Ok(ids.len())
}

pub(crate) async fn take_open_conversations(
    db: &mut dyn Db,
    account_id: String,
    source: Source,
    limit: u32,
    taker: String,
) -> Result<Vec<String>> {
    let now = db.now_ms().await?;
    // The taker's own come first (`taken_by IS NULL` sorts false before true).
    let sql = format!(
        "SELECT conversation_id FROM lpdrop_open_conversations \
         WHERE account_id = $1 AND source = $2 AND (taken_by IS NULL OR taken_by = $4) \
         ORDER BY taken_by IS NULL, recorded_at, conversation_id LIMIT $3{}",
        db.dialect().for_update_skip_locked()
    );
    let ids = db
        .query(
            &sql,
            &[
                account_id.as_str().into(),
                source.as_str().into(),
                limit.into(),
                taker.as_str().into(),
            ],
        )
        .await?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<Vec<_>>>()?;
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let mut args: Vec<Value> = vec![
            account_id.as_str().into(),
            source.as_str().into(),
            taker.as_str().into(),
            now.into(),
        ];
        let marks: Vec<String> = chunk
            .iter()
            .map(|id| {
                args.push(id.into());
                format!("${}", args.len())
            })
            .collect();
        let sql = format!(
            "UPDATE lpdrop_open_conversations SET taken_by = $3, taken_at = $4 \
             WHERE account_id = $1 AND source = $2 AND conversation_id IN ({})",
            marks.join(", ")
        );
        db.execute(&sql, &args).await?;
    }
    Ok(ids)
}

pub(crate) async fn pending_open_conversations(
    db: &mut dyn Db,
    account_id: String,
    source: Source,
    recorded_before_ms: i64,
) -> Result<u64> {
    let n = db
        .query_one(
            "SELECT count(*) FROM lpdrop_open_conversations \
             WHERE account_id = $1 AND source = $2 AND taken_by IS NULL AND recorded_at < $3",
            &[
                account_id.as_str().into(),
                source.as_str().into(),
                recorded_before_ms.into(),
            ],
        )
        .await?
        .int(0)?;
    Ok(n.max(0) as u64)
}

pub(crate) async fn open_conversations_of(db: &mut dyn Db, job_id: i64) -> Result<Vec<String>> {
    db.query(
        "SELECT conversation_id FROM lpdrop_open_conversations \
         WHERE job_id = $1 AND taken_by IS NULL ORDER BY conversation_id",
        &[job_id.into()],
    )
    .await?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_clipped_on_a_char_boundary() {
        assert_eq!(clip("abc", 10), "abc");
        assert_eq!(clip("ééé", 3), "é…");
    }
}
