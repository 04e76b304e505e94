//! The job queue (ARCHITECTURE §6): what a job is, its states, leases, retries, watermarks
//! and the ids of conversations that were still open, on two backends that behave the same:
//!
//! - an embedded SQLite file (the default, `./lpdrop.db`: nothing to install; one machine,
//!   any number of worker processes, serialised by SQLite's write lock);
//! - Postgres (`postgres://...`: any number of workers on any number of machines; jobs are
//!   claimed with `SELECT ... FOR UPDATE SKIP LOCKED`; TLS is required for non-loopback hosts).
//!
//! One conformance suite (`tests/conformance.rs`) runs the same test functions on both.
//!
//! ```text
//!  add ──► queued ──claim──► running ──finish──► finished ──uploaded──► uploaded
//!            ▲  ▲              │   ▲                │
//!            │  │ release      │   └── lease expired: another worker claims it (takeover)
//!            │  └──────────────┤
//!            │  retry          ├──fail (attempts left)──► failed ──backoff over: claim──► running
//!            │                 └──fail (none left) ─────► dead
//!            └── retry ◄── failed | dead | cancelled       cancel: any state but uploaded
//! ```
//!
//! Every change a worker makes to a leased job is fenced by the lease: it names the job, the
//! attempt number and the worker, and fails with [`QueueError::LeaseLost`] when another worker
//! has taken the job over, or the job was cancelled, in the meantime.

mod pg;
pub mod schedule;
mod sqlite;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use pg::PgQueue;
pub use sqlite::SqliteQueue;

/// The SQLite file used when no `--queue` is given.
pub const DEFAULT_QUEUE: &str = "./lpdrop.db";

/// How many times a job is tried (claims, including takeovers) before it is `dead`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// The `origin` of a refetch job (late data): instead of searching its window, the job re-reads
/// by id the conversations that earlier jobs of its account and source saw still open (see
/// [`Queue::take_open_conversations`]); its window only records when it was enqueued.
pub const REFETCH_ORIGIN: &str = "refetch";

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("job {0} does not exist")]
    NotFound(i64),
    /// The worker's lease on the job is gone: another worker took it over after the lease
    /// expired, or the job was cancelled. The worker must stop working on it.
    #[error("lost the lease on job {job} (attempt {attempt}): {reason}")]
    LeaseLost {
        job: i64,
        attempt: u32,
        reason: String,
    },
    /// A command does not apply to the job's current state.
    #[error("job {job} is {state}: {message}")]
    WrongState {
        job: i64,
        state: JobState,
        message: String,
    },
    #[error("invalid queue URL {url:?}: {message}")]
    BadUrl { url: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("queue database ({backend}): {message}")]
    Db {
        backend: &'static str,
        message: String,
    },
}

pub type Result<T, E = QueueError> = std::result::Result<T, E>;

impl From<rusqlite::Error> for QueueError {
    fn from(e: rusqlite::Error) -> Self {
        QueueError::Db {
            backend: "sqlite",
            message: e.to_string(),
        }
    }
}

/// A Postgres error with its sources, which carry the server's message ("relation ... does
/// not exist", "password authentication failed", ...).
pub(crate) fn pg_message(e: &tokio_postgres::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    message
}

impl From<tokio_postgres::Error> for QueueError {
    fn from(e: tokio_postgres::Error) -> Self {
        QueueError::Db {
            backend: "postgres",
            message: pg_message(&e),
        }
    }
}

/// Where a job is in its life (ARCHITECTURE §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// Leased by a worker, which heartbeats.
    Running,
    /// The data is written; the worker is confirming the commit.
    Finished,
    /// The drop is committed (`upload.complete` exists). Final.
    Uploaded,
    /// The last attempt failed; claimed again after a backoff.
    Failed,
    /// Out of attempts, or a failure no retry can fix: needs a person (`jobs retry`).
    Dead,
    /// Cancelled on request.
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 7] = [
        JobState::Queued,
        JobState::Running,
        JobState::Finished,
        JobState::Uploaded,
        JobState::Failed,
        JobState::Dead,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Finished => "finished",
            JobState::Uploaded => "uploaded",
            JobState::Failed => "failed",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| QueueError::Invalid(format!("unknown job state {s:?}")))
    }

    /// No worker will touch the job again (unless a person retries it).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Uploaded | JobState::Dead | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which LivePerson API a job reads (one type for flags, queue and tables).
pub use lpdrop_settings::Source;

/// What a job does: one account, one source, one half-open UTC window `[from, to)` of
/// conversation start time, filters, and where the drop goes. No secrets: the worker reads
/// the API credentials from its own environment when it runs the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    pub account_id: String,
    pub source: Source,
    pub window_from_ms: i64,
    pub window_to_ms: i64,
    /// Only conversations that held one of these skills (empty: all).
    pub skill_ids: Vec<i64>,
    /// `DEST`: a local folder or `s3://bucket/prefix`.
    pub dest: String,
    /// Tries before the job is `dead`.
    pub max_attempts: u32,
    /// Who enqueued it: `add`, `schedule`, `lookback`, ...
    pub origin: String,
}

impl JobSpec {
    fn check(&self) -> Result<()> {
        if self.window_from_ms >= self.window_to_ms {
            return Err(QueueError::Invalid(format!(
                "the window [{}, {}) is empty or inverted",
                fmt_ms(self.window_from_ms),
                fmt_ms(self.window_to_ms)
            )));
        }
        if self.account_id.is_empty() || self.dest.is_empty() {
            return Err(QueueError::Invalid(
                "a job needs an account id and a destination".into(),
            ));
        }
        if self.max_attempts == 0 {
            return Err(QueueError::Invalid(
                "max attempts must be at least 1".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn filters_json(&self) -> String {
        serde_json::json!({ "skill_ids": self.skill_ids }).to_string()
    }

    pub(crate) fn skill_ids_from_json(filters: &str) -> Result<Vec<i64>> {
        #[derive(Deserialize)]
        struct Filters {
            #[serde(default)]
            skill_ids: Vec<i64>,
        }
        serde_json::from_str::<Filters>(filters)
            .map(|f| f.skill_ids)
            .map_err(|e| QueueError::Invalid(format!("stored filters {filters:?}: {e}")))
    }
}

/// The drop a job writes, decided (and recorded) before its first byte is written, so that a
/// retried or taken-over attempt finds and reuses it: exactly one committed drop per job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropRecord {
    pub id: String,
    pub created_at_ms: i64,
    /// The drop's root key (relative to the bucket or the output folder).
    pub root: String,
}

/// What a finished job wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub conversations: u64,
    pub open_conversations: u64,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: i64,
    #[serde(flatten)]
    pub spec: JobSpec,
    pub state: JobState,
    /// Claims so far (the current or last attempt's number).
    pub attempts: u32,
    /// Not claimed before this time (a failed job's backoff).
    pub not_before_ms: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_ms: Option<i64>,
    pub drop: Option<DropRecord>,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// First claim.
    pub started_at_ms: Option<i64>,
    /// Data written.
    pub finished_at_ms: Option<i64>,
    /// Drop committed.
    pub uploaded_at_ms: Option<i64>,
    pub counts: Option<Counts>,
}

/// One claim of a job by a worker, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub attempt: u32,
    pub worker: String,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    /// `uploaded`, `failed`, `dead`, `handed back`, `lease expired`, `cancelled`.
    pub outcome: Option<String>,
    pub error: Option<String>,
}

/// A worker's hold on a job. Every change made through it is fenced by
/// (`job.id`, `attempt`, `owner`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job: Job,
    pub attempt: u32,
    pub owner: String,
    /// The job was running under another worker whose lease expired.
    pub taken_over: bool,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// The lease now runs until this time.
    Renewed { expires_ms: i64 },
    /// The job was cancelled: stop working on it.
    Cancelled,
    /// Another worker took the job over: stop working on it.
    Lost,
}

/// Where a failed attempt left the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Will be claimed again from this time on.
    RetryAt(i64),
    /// Out of attempts, or not retryable.
    Dead,
}

/// Job counts by state, and when the next waiting job becomes claimable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub by_state: BTreeMap<JobState, u64>,
    /// The earliest time a queued or failed job may be claimed, or a running job's lease
    /// expires.
    pub next_due_ms: Option<i64>,
}

impl Summary {
    pub fn count(&self, state: JobState) -> u64 {
        self.by_state.get(&state).copied().unwrap_or(0)
    }

    /// Jobs some worker still has to do something about.
    pub fn active(&self) -> u64 {
        self.by_state
            .iter()
            .filter(|(s, _)| !s.is_terminal())
            .map(|(_, n)| n)
            .sum()
    }
}

/// Which jobs `list` returns.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub states: Vec<JobState>,
    pub account_id: Option<String>,
    /// Newest first, at most this many (all when `None`).
    pub limit: Option<u64>,
}

/// The queue, on one of its two backends.
#[derive(Clone)]
pub enum Queue {
    Sqlite(SqliteQueue),
    Postgres(PgQueue),
}

macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            Queue::Sqlite(q) => q.$method($($arg),*).await,
            Queue::Postgres(q) => q.$method($($arg),*).await,
        }
    };
}

impl Queue {
    /// Opens (and creates or migrates) the queue: `postgres://...` or `postgresql://...` for
    /// Postgres, anything else is a SQLite file path (`sqlite://PATH` also works).
    pub async fn open(url: &str) -> Result<Queue> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Queue::Postgres(PgQueue::connect(url).await?));
        }
        if url.contains("://") && !url.starts_with("sqlite://") {
            return Err(QueueError::BadUrl {
                url: url.to_string(),
                message: "use a SQLite file path or postgres://...".into(),
            });
        }
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        if path.is_empty() {
            return Err(QueueError::BadUrl {
                url: url.to_string(),
                message: "the SQLite path is empty".into(),
            });
        }
        Ok(Queue::Sqlite(SqliteQueue::open(path).await?))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Queue::Sqlite(_) => "sqlite",
            Queue::Postgres(_) => "postgres",
        }
    }

    /// Enqueues jobs (all or none); returns their ids in order.
    pub async fn add(&self, specs: &[JobSpec]) -> Result<Vec<i64>> {
        for s in specs {
            s.check()?;
        }
        dispatch!(self.add(specs))
    }

    pub async fn get(&self, id: i64) -> Result<Job> {
        dispatch!(self.get(id))
    }

    /// Jobs, oldest first (or the newest `limit`, still oldest first).
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<Job>> {
        dispatch!(self.list(filter))
    }

    pub async fn attempts(&self, id: i64) -> Result<Vec<Attempt>> {
        dispatch!(self.attempts(id))
    }

    pub async fn summary(&self) -> Result<Summary> {
        dispatch!(self.summary())
    }

    /// Cancels a job that is not uploaded yet. A running job's worker learns it at its next
    /// heartbeat and stops.
    pub async fn cancel(&self, id: i64) -> Result<Job> {
        dispatch!(self.cancel(id))
    }

    /// Queues a failed, dead or cancelled job again, with a fresh allowance of attempts. It
    /// keeps its drop: a retry writes the drop it was going to write, or finds it committed.
    pub async fn retry(&self, id: i64) -> Result<Job> {
        dispatch!(self.retry(id))
    }

    /// Leases the next job due: queued, failed past its backoff, or running (or finished)
    /// under a lease that has expired (a takeover). A job whose lease expired on its last
    /// attempt becomes `dead` instead. `None` when nothing is due.
    pub async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Lease>> {
        dispatch!(self.claim(worker, lease))
    }

    /// Extends the lease from now.
    pub async fn heartbeat(&self, lease: &Lease, duration: Duration) -> Result<Heartbeat> {
        dispatch!(self.heartbeat(lease, duration))
    }

    /// Records the drop the job will write, unless one is recorded already; returns the one
    /// in force (the earlier one wins).
    pub async fn record_drop(&self, lease: &Lease, drop: &DropRecord) -> Result<DropRecord> {
        dispatch!(self.record_drop(lease, drop))
    }

    /// The data is written (`running → finished`).
    pub async fn finish(&self, lease: &Lease, counts: &Counts) -> Result<()> {
        dispatch!(self.finish(lease, counts))
    }

    /// The drop is committed (`running | finished → uploaded`); `counts` when known.
    pub async fn uploaded(&self, lease: &Lease, counts: Option<&Counts>) -> Result<()> {
        dispatch!(self.uploaded(lease, counts))
    }

    /// The attempt failed. With `retry_after` and attempts left the job becomes `failed` and
    /// is claimed again after that backoff; otherwise it is `dead`.
    pub async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_after: Option<Duration>,
    ) -> Result<FailOutcome> {
        dispatch!(self.fail(lease, error, retry_after))
    }

    /// Hands the job back (a worker shutting down): `queued` again, claimable after `delay`,
    /// same drop. The attempt does not count against the job's allowance.
    pub async fn release(&self, lease: &Lease, delay: Duration) -> Result<()> {
        dispatch!(self.release(lease, delay))
    }

    /// The watermark of an account and source: every window before it has been enqueued.
    pub async fn watermark(&self, account_id: &str, source: Source) -> Result<Option<i64>> {
        dispatch!(self.watermark(account_id, source))
    }

    /// Enqueues `specs` and moves the watermark from `expected` to `new`, atomically. Returns
    /// `None` (and enqueues nothing) when the watermark is no longer `expected`: another
    /// scheduler got there first.
    pub async fn advance_watermark(
        &self,
        account_id: &str,
        source: Source,
        expected: Option<i64>,
        new: i64,
        specs: &[JobSpec],
    ) -> Result<Option<Vec<i64>>> {
        for s in specs {
            s.check()?;
        }
        dispatch!(self.advance_watermark(account_id, source, expected, new, specs))
    }

    /// Remembers conversations a job exported while they were still OPEN, to fetch again
    /// once closed. A conversation remembered again becomes available to take again.
    /// Returns how many ids were given.
    pub async fn add_open_conversations(&self, job_id: i64, ids: &[String]) -> Result<usize> {
        dispatch!(self.add_open_conversations(job_id, ids))
    }

    /// Takes up to `limit` remembered open conversations of an account and source, oldest
    /// first, marking them taken by `taker` (for example a refetch job's id) so that no one
    /// else takes them. Those `taker` took before come first: a retried refetch job gets its
    /// own conversations back.
    pub async fn take_open_conversations(
        &self,
        account_id: &str,
        source: Source,
        limit: u32,
        taker: &str,
    ) -> Result<Vec<String>> {
        dispatch!(self.take_open_conversations(account_id, source, limit, taker))
    }

    /// How many remembered open conversations of an account and source no one has taken,
    /// among those recorded before `recorded_before_ms`.
    pub async fn pending_open_conversations(
        &self,
        account_id: &str,
        source: Source,
        recorded_before_ms: i64,
    ) -> Result<u64> {
        dispatch!(self.pending_open_conversations(account_id, source, recorded_before_ms))
    }

    /// Open conversations remembered for a job and not taken yet.
    pub async fn open_conversations_of(&self, job_id: i64) -> Result<Vec<String>> {
        dispatch!(self.open_conversations_of(job_id))
    }
}

/// A queue URL fit for messages and logs: any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    pg::redact(url)
}

/// RFC 3339 with millisecond precision, UTC.
pub fn fmt_ms(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => ms.to_string(),
    }
}

pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// The table definitions, shared by both backends. `{ID}` is the auto-increment key.
pub(crate) const SCHEMA: &str = "
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

/// The job columns every backend selects, in this order.
pub(crate) const JOB_COLUMNS: &str = "id, account_id, source, window_from, window_to, filters, \
    dest, origin, state, attempts, max_attempts, not_before, lease_owner, lease_expires, \
    drop_id, drop_created_at, drop_root, last_error, created_at, updated_at, started_at, \
    finished_at, uploaded_at, conversations, open_conversations, rows_written, files, bytes";

/// A job row's values, read the same way from either backend.
pub(crate) struct JobRow {
    pub id: i64,
    pub account_id: String,
    pub source: String,
    pub window_from: i64,
    pub window_to: i64,
    pub filters: String,
    pub dest: String,
    pub origin: String,
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub not_before: i64,
    pub lease_owner: Option<String>,
    pub lease_expires: Option<i64>,
    pub drop_id: Option<String>,
    pub drop_created_at: Option<i64>,
    pub drop_root: Option<String>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub uploaded_at: Option<i64>,
    pub conversations: Option<i64>,
    pub open_conversations: Option<i64>,
    pub rows: Option<i64>,
    pub files: Option<i64>,
    pub bytes: Option<i64>,
}

impl JobRow {
    pub(crate) fn into_job(self) -> Result<Job> {
        let drop = match (self.drop_id, self.drop_created_at, self.drop_root) {
            (Some(id), Some(created_at_ms), Some(root)) => Some(DropRecord {
                id,
                created_at_ms,
                root,
            }),
            _ => None,
        };
        let u = |v: Option<i64>| v.unwrap_or(0).max(0) as u64;
        let counts = self.conversations.map(|_| Counts {
            conversations: u(self.conversations),
            open_conversations: u(self.open_conversations),
            rows: u(self.rows),
            files: u(self.files),
            bytes: u(self.bytes),
        });
        Ok(Job {
            id: self.id,
            spec: JobSpec {
                account_id: self.account_id,
                source: self.source.parse().map_err(QueueError::Invalid)?,
                window_from_ms: self.window_from,
                window_to_ms: self.window_to,
                skill_ids: JobSpec::skill_ids_from_json(&self.filters)?,
                dest: self.dest,
                max_attempts: self.max_attempts.max(0) as u32,
                origin: self.origin,
            },
            state: JobState::parse(&self.state)?,
            attempts: self.attempts.max(0) as u32,
            not_before_ms: self.not_before,
            lease_owner: self.lease_owner,
            lease_expires_ms: self.lease_expires,
            drop,
            last_error: self.last_error,
            created_at_ms: self.created_at,
            updated_at_ms: self.updated_at,
            started_at_ms: self.started_at,
            finished_at_ms: self.finished_at,
            uploaded_at_ms: self.uploaded_at,
            counts,
        })
    }
}

/// `Ok` when `lease` still holds `job`: same attempt, same worker, and the job is running or
/// finished (an expired lease still holds until another worker takes the job over).
pub(crate) fn lease_holds(job: &Job, lease: &Lease) -> Result<()> {
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

pub(crate) fn check_cancel(job: &Job) -> Result<()> {
    if job.state == JobState::Uploaded {
        return Err(QueueError::WrongState {
            job: job.id,
            state: job.state,
            message: "its drop is committed; nothing to cancel".into(),
        });
    }
    Ok(())
}

pub(crate) fn check_retry(job: &Job) -> Result<()> {
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

pub(crate) fn expired_on_last_attempt(job: &Job) -> String {
    format!(
        "the lease of {} expired on attempt {} of {} (the worker stopped heartbeating: killed, \
         out of memory, or cut off from the queue)",
        job.lease_owner.as_deref().unwrap_or("a worker"),
        job.attempts,
        job.spec.max_attempts
    )
}

/// Backoff before retry `attempt + 1`: `base`, doubling per attempt, at most `max`.
pub fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(max)
}

/// Truncates long error chains for storage and tables.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(30), s(600), 1), s(30));
        assert_eq!(backoff(s(30), s(600), 2), s(60));
        assert_eq!(backoff(s(30), s(600), 3), s(120));
        assert_eq!(backoff(s(30), s(600), 10), s(600));
        assert_eq!(backoff(s(30), s(600), 100), s(600));
    }

    #[test]
    fn states_round_trip() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()).unwrap(), s);
        }
        assert!(JobState::parse("nope").is_err());
        assert!(JobState::Uploaded.is_terminal() && !JobState::Failed.is_terminal());
    }

    #[test]
    fn long_errors_are_clipped_on_a_char_boundary() {
        assert_eq!(clip("abc", 10), "abc");
        assert_eq!(clip("ééé", 3), "é…");
    }
}
