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
//!
//! How the code is laid out: the rules above are written once, in `machine.rs`, as
//! operations over a small database interface (`db.rs`: run SQL in a transaction, read the
//! clock, take turns). `sqlite.rs` and `pg.rs` supply only that interface (connections,
//! transactions, placeholders, row locks). `schema.rs` holds the numbered schema migrations,
//! applied when a queue is opened.

mod db;
mod machine;
mod pace;
mod pg;
pub mod schedule;
mod schema;
mod sqlite;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use db::{Access, BoxFuture, Db};
pub use pace::PaceBoard;
pub use pg::PgQueue;
pub use schema::SCHEMA_VERSION;
pub use sqlite::SqliteQueue;

/// The SQLite file used when no `--queue` is given.
pub const DEFAULT_QUEUE: &str = "./lpdrop.db";

/// How many times a job is tried (claims, including takeovers) before it is `dead`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// The `origin` of a refetch job (late data): instead of searching its window, the job re-reads
/// by id the conversations that earlier jobs of its account and source saw still open (see
/// [`Queue::take_open_conversations`]); its window only records when it was enqueued.
pub const REFETCH_ORIGIN: &str = "refetch";
/// The `job_id` of conversations to re-read that no job recorded (`lpdrop listen` records the
/// conversations its webhooks saw close); job ids start at 1.
pub const NO_JOB: i64 = 0;

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
    /// The queue was created or migrated by a newer lpdrop, whose schema this one does not
    /// know: it must not read or change it.
    #[error(
        "the queue's schema is version {found}, created by a newer lpdrop (this one knows \
         versions up to {known}): use that lpdrop or a newer one"
    )]
    SchemaTooNew { found: i64, known: i64 },
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
    /// Why the committed drop is not registered in the Glue catalog yet (`--glue-database`);
    /// `lpdrop catalog sync` completes it. None: registered, or no catalog asked for.
    #[serde(default)]
    pub catalog_pending: Option<String>,
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

impl Queue {
    /// Opens (and creates or migrates) the queue: `postgres://...` or `postgresql://...` for
    /// Postgres, anything else is a SQLite file path (`sqlite://PATH` also works). A queue
    /// made by a newer lpdrop is refused ([`QueueError::SchemaTooNew`]).
    pub async fn open(url: &str) -> Result<Queue> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Queue::Postgres(PgQueue::connect(url).await?));
        }
        if url.contains("://") && !url.starts_with("sqlite://") {
            return Err(QueueError::BadUrl {
                url: lpdrop_settings::redact_url(url),
                message: "use a SQLite file path or postgres://...".into(),
            });
        }
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        if path.is_empty() {
            return Err(QueueError::BadUrl {
                url: lpdrop_settings::redact_url(url),
                message: "the SQLite path is empty".into(),
            });
        }
        Ok(Queue::Sqlite(SqliteQueue::open(path).await?))
    }

    /// The queue at `url` when one exists already: Postgres, or a SQLite file that is there
    /// (`Queue::open` would create a missing one). For commands that only update jobs a queue
    /// may hold, and must not leave an empty queue file behind.
    pub async fn open_existing(url: &str) -> Result<Option<Queue>> {
        let is_pg = url.starts_with("postgres://") || url.starts_with("postgresql://");
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        if !is_pg && !std::path::Path::new(path).is_file() {
            return Ok(None);
        }
        Queue::open(url).await.map(Some)
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Queue::Sqlite(_) => "sqlite",
            Queue::Postgres(_) => "postgres",
        }
    }

    /// Runs an operation of [`machine`] in one transaction of the backend.
    async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut dyn Db) -> BoxFuture<'a, Result<T>> + Send + 'static,
    {
        match self {
            Queue::Sqlite(q) => q.run(Access::Write, op).await,
            Queue::Postgres(q) => q.run(Access::Write, op).await,
        }
    }

    /// Runs an operation that only reads, outside any transaction.
    async fn read<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut dyn Db) -> BoxFuture<'a, Result<T>> + Send + 'static,
    {
        match self {
            Queue::Sqlite(q) => q.run(Access::Read, op).await,
            Queue::Postgres(q) => q.run(Access::Read, op).await,
        }
    }

    /// The version of the queue's schema ([`SCHEMA_VERSION`] once opened).
    pub async fn schema_version(&self) -> Result<i64> {
        self.read(|db| Box::pin(schema::version(db))).await
    }

    /// Enqueues jobs (all or none); returns their ids in order.
    pub async fn add(&self, specs: &[JobSpec]) -> Result<Vec<i64>> {
        for s in specs {
            s.check()?;
        }
        let specs = specs.to_vec();
        self.write(move |db| Box::pin(machine::add(db, specs)))
            .await
    }

    pub async fn get(&self, id: i64) -> Result<Job> {
        self.read(move |db| Box::pin(machine::get(db, id))).await
    }

    /// Jobs, oldest first (or the newest `limit`, still oldest first).
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<Job>> {
        let filter = filter.clone();
        self.read(move |db| Box::pin(machine::list(db, filter)))
            .await
    }

    pub async fn attempts(&self, id: i64) -> Result<Vec<Attempt>> {
        self.read(move |db| Box::pin(machine::attempts(db, id)))
            .await
    }

    pub async fn summary(&self) -> Result<Summary> {
        self.read(|db| Box::pin(machine::summary(db))).await
    }

    /// Cancels a job that is not uploaded yet. A running job's worker learns it at its next
    /// heartbeat and stops.
    pub async fn cancel(&self, id: i64) -> Result<Job> {
        self.write(move |db| Box::pin(machine::cancel(db, id)))
            .await
    }

    /// Queues a failed, dead or cancelled job again, with a fresh allowance of attempts. It
    /// keeps its drop: a retry writes the drop it was going to write, or finds it committed.
    pub async fn retry(&self, id: i64) -> Result<Job> {
        self.write(move |db| Box::pin(machine::retry(db, id))).await
    }

    /// Leases the next job due: queued, failed past its backoff, or running (or finished)
    /// under a lease that has expired (a takeover). A job whose lease expired on its last
    /// attempt becomes `dead` instead. `None` when nothing is due.
    pub async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Lease>> {
        let worker = worker.to_string();
        self.write(move |db| Box::pin(machine::claim(db, worker, lease)))
            .await
    }

    /// Extends the lease from now.
    pub async fn heartbeat(&self, lease: &Lease, duration: Duration) -> Result<Heartbeat> {
        let lease = lease.clone();
        self.write(move |db| Box::pin(machine::heartbeat(db, lease, duration)))
            .await
    }

    /// Records the drop the job will write, unless one is recorded already; returns the one
    /// in force (the earlier one wins).
    pub async fn record_drop(&self, lease: &Lease, drop: &DropRecord) -> Result<DropRecord> {
        let (lease, drop) = (lease.clone(), drop.clone());
        self.write(move |db| Box::pin(machine::record_drop(db, lease, drop)))
            .await
    }

    /// The data is written (`running → finished`).
    pub async fn finish(&self, lease: &Lease, counts: &Counts) -> Result<()> {
        let (lease, counts) = (lease.clone(), *counts);
        self.write(move |db| Box::pin(machine::finish(db, lease, counts)))
            .await
    }

    /// The drop is committed (`running | finished → uploaded`); `counts` when known.
    pub async fn uploaded(&self, lease: &Lease, counts: Option<&Counts>) -> Result<()> {
        let (lease, counts) = (lease.clone(), counts.copied());
        self.write(move |db| Box::pin(machine::uploaded(db, lease, counts)))
            .await
    }

    /// Records (or clears, with `None`) a pending catalog registration of an uploaded job.
    pub async fn set_catalog_pending(&self, id: i64, pending: Option<&str>) -> Result<()> {
        let pending = pending.map(str::to_string);
        self.write(move |db| Box::pin(machine::set_catalog_pending(db, id, pending)))
            .await
    }

    /// The drops at `roots` are registered: their jobs' pending registrations are cleared.
    pub async fn catalog_registered(&self, roots: &[String]) -> Result<u64> {
        let roots = roots.to_vec();
        self.write(move |db| Box::pin(machine::catalog_registered(db, roots)))
            .await
    }

    /// Up to `limit` uploaded jobs of an account whose catalog registration is pending, oldest
    /// first (`schedule --glue-database` completes them).
    pub async fn catalog_pending_jobs(&self, account_id: &str, limit: u64) -> Result<Vec<Job>> {
        let account_id = account_id.to_string();
        self.read(move |db| Box::pin(machine::catalog_pending_jobs(db, account_id, limit)))
            .await
    }

    /// Uploaded jobs whose catalog registration is pending.
    pub async fn catalog_pending_count(&self) -> Result<u64> {
        self.read(|db| Box::pin(machine::catalog_pending_count(db)))
            .await
    }

    /// The pace board of an account: the rate its worker processes share and how many there
    /// are (see [`PaceBoard`]).
    pub async fn pace_board(&self, account_id: &str) -> Result<PaceBoard> {
        let account_id = account_id.to_string();
        self.read(move |db| Box::pin(pace::read(db, account_id)))
            .await
    }

    /// Records `worker`'s cut of the account's shared rate to `rate_milli` (thousandths of a
    /// request per second), unless another worker cut it less than `gap` ago; returns whether
    /// the board took it.
    pub async fn cut_pace(
        &self,
        account_id: &str,
        worker: &str,
        rate_milli: i64,
        gap: Duration,
    ) -> Result<bool> {
        let (account_id, worker) = (account_id.to_string(), worker.to_string());
        self.write(move |db| Box::pin(pace::cut(db, account_id, worker, rate_milli, gap)))
            .await
    }

    /// Reserves the account's next send time on the schedule its worker processes share,
    /// `interval` after the last one handed out (or now); returns how long to wait for it.
    pub async fn reserve_send(&self, account_id: &str, interval: Duration) -> Result<Duration> {
        let account_id = account_id.to_string();
        let interval_us = i64::try_from(interval.as_micros()).unwrap_or(i64::MAX);
        let wait_us = self
            .write(move |db| Box::pin(pace::reserve_send(db, account_id, interval_us)))
            .await?;
        Ok(Duration::from_micros(wait_us.max(0) as u64))
    }

    /// The attempt failed. With `retry_after` and attempts left the job becomes `failed` and
    /// is claimed again after that backoff; otherwise it is `dead`.
    pub async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_after: Option<Duration>,
    ) -> Result<FailOutcome> {
        let (lease, error) = (lease.clone(), error.to_string());
        self.write(move |db| Box::pin(machine::fail(db, lease, error, retry_after)))
            .await
    }

    /// Hands the job back (a worker shutting down): `queued` again, claimable after `delay`,
    /// same drop. The attempt does not count against the job's allowance.
    pub async fn release(&self, lease: &Lease, delay: Duration) -> Result<()> {
        let lease = lease.clone();
        self.write(move |db| Box::pin(machine::release(db, lease, delay)))
            .await
    }

    /// The watermark of an account and source: every window before it has been enqueued.
    pub async fn watermark(&self, account_id: &str, source: Source) -> Result<Option<i64>> {
        let account_id = account_id.to_string();
        self.read(move |db| Box::pin(machine::watermark(db, account_id, source)))
            .await
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
        let (account_id, specs) = (account_id.to_string(), specs.to_vec());
        self.write(move |db| {
            Box::pin(machine::advance_watermark(
                db, account_id, source, expected, new, specs,
            ))
        })
        .await
    }

    /// Remembers conversations a job exported while they were still OPEN, to fetch again
    /// once closed. A conversation remembered again becomes available to take again.
    /// Returns how many ids were given.
    pub async fn add_open_conversations(&self, job_id: i64, ids: &[String]) -> Result<usize> {
        let ids = ids.to_vec();
        self.write(move |db| Box::pin(machine::add_open_conversations(db, job_id, ids)))
            .await
    }

    /// Remembers conversations to re-read by id that no job exported (the webhook listener's
    /// closed conversations): the next refetch job of the account and source takes them, as it
    /// takes a job's open conversations. Returns how many ids were given.
    pub async fn remember_conversations(
        &self,
        account_id: &str,
        source: Source,
        ids: &[String],
    ) -> Result<usize> {
        let (account_id, ids) = (account_id.to_string(), ids.to_vec());
        self.write(move |db| Box::pin(machine::remember_without_job(db, account_id, source, ids)))
            .await
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
        let (account_id, taker) = (account_id.to_string(), taker.to_string());
        self.write(move |db| {
            Box::pin(machine::take_open_conversations(
                db, account_id, source, limit, taker,
            ))
        })
        .await
    }

    /// How many remembered open conversations of an account and source no one has taken,
    /// among those recorded before `recorded_before_ms`.
    pub async fn pending_open_conversations(
        &self,
        account_id: &str,
        source: Source,
        recorded_before_ms: i64,
    ) -> Result<u64> {
        let account_id = account_id.to_string();
        self.read(move |db| {
            Box::pin(machine::pending_open_conversations(
                db,
                account_id,
                source,
                recorded_before_ms,
            ))
        })
        .await
    }

    /// Open conversations remembered for a job and not taken yet.
    pub async fn open_conversations_of(&self, job_id: i64) -> Result<Vec<String>> {
        self.read(move |db| Box::pin(machine::open_conversations_of(db, job_id)))
            .await
    }
}

/// A queue URL fit for messages and logs: its password (in the user info or as a query
/// parameter) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    lpdrop_settings::redact_url(url)
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

/// Backoff before retry `attempt + 1`: `base`, doubling per attempt, at most `max`.
pub fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unusable_queue_url_is_named_without_its_password() {
        let Err(e) = Queue::open("mysql://u:hunter2@db.example.com/q?password=hunter3").await
        else {
            panic!("mysql:// is not a queue");
        };
        let shown = e.to_string();
        assert!(shown.contains("db.example.com"), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("hunter3"),
            "{shown}"
        );
    }

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
}
