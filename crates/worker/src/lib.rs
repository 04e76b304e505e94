//! The worker runtime: lease jobs from the queue and run them, each into exactly one drop.
//!
//! Per job: the drop's id and time are decided and recorded on the job before the first byte
//! is written. A later attempt (a retry, or a takeover after a crash) reuses that drop: when
//! its `upload.complete` exists the job is only marked uploaded; otherwise what an earlier
//! attempt left there is removed and the drop is written again. While a job runs, its lease is
//! renewed every third of the lease; a worker that dies stops renewing, and another worker takes
//! the job over once the lease expires.
//!
//! SIGTERM or SIGINT: no new jobs; running jobs get `--shutdown-grace` to finish, then are
//! handed back to the queue (a second signal hands them back at once); then the worker exits.
//!
//! With `--metrics-addr`, the worker serves Prometheus metrics on `/metrics` (see
//! `lpdrop_metrics` for the list), liveness on `/healthz` (its loops keep turning) and
//! readiness on `/readyz` (the queue answers and it takes jobs; not while draining).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tracing::Instrument;

use anyhow::{Context, Result};
use lpdrop_drop::{JobRef, Manifest};
use lpdrop_jobs::{
    Counts, DropRecord, FailOutcome, Heartbeat, JobState, Lease, Queue, QueueError, backoff, fmt_ms,
};
use lpdrop_liveperson::{Client, ClientConfig, RequestBudget, SearchFilters, Window};
use lpdrop_metrics::HealthState;
use lpdrop_tables::Source;
use tokio::sync::watch;

use lpdrop_drop::{Destination, StoreSettings, open_to_write};
use lpdrop_pipeline::{
    AccountConfig, ById, CommitFence, DropPlan, DropReport, NoProgress, OutputSettings,
    PlannedDrop, Search, run_drop,
};

/// How a worker runs: typed settings, validated by the front end.
pub struct WorkerSettings {
    /// This worker's name in the queue.
    pub worker_id: String,
    /// Jobs run at once.
    pub concurrency: usize,
    /// Drain the queue: return once no job is left to do.
    pub once: bool,
    /// Lease on a running job; renewed every third of it.
    pub lease: Duration,
    /// First wait before a failed job is tried again; doubles per attempt, up to 1h.
    pub retry_backoff: Duration,
    /// How often an idle worker looks for new jobs.
    pub poll: Duration,
    /// After SIGTERM/SIGINT, how long running jobs may take before they are handed back.
    pub shutdown_grace: Duration,
    /// Serve Prometheus metrics, liveness and readiness here.
    pub metrics_addr: Option<SocketAddr>,
    /// The LivePerson client settings of every job; each job sets its own account.
    pub client: ClientConfig,
    /// Settings of the job's store (S3's, and how hard to retry a request).
    pub s3: StoreSettings,
    pub output: OutputSettings,
}

/// The name a worker has in the queue unless given one: host name and process id.
/// The name a worker has in the queue unless given one: host name and process id.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}:{}", std::process::id())
}

struct Settings {
    worker_id: String,
    lease: Duration,
    retry_backoff: Duration,
    poll: Duration,
    once: bool,
    client: ClientConfig,
    s3: StoreSettings,
    output: OutputSettings,
    budgets: AccountBudgets,
}

impl Settings {
    /// The LivePerson client settings for a job of `account_id`, with the account's shared
    /// request budget.
    fn client_config(&self, account_id: &str) -> ClientConfig {
        let mut config = self.client.clone();
        config.account_id = account_id.to_string();
        self.budgets.share(config)
    }
}

/// Each account's request budget, shared by every job of this process: the API limits are
/// the account's, and a pace found from 429s by one job serves the next.
#[derive(Default)]
struct AccountBudgets(std::sync::Mutex<std::collections::HashMap<String, RequestBudget>>);

impl AccountBudgets {
    /// `config` with its account's budget, made from `config` the first time.
    fn share(&self, mut config: ClientConfig) -> ClientConfig {
        let budget = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(config.account_id.clone())
            .or_insert_with(|| RequestBudget::new(&config))
            .clone();
        config.budget = Some(budget);
        config
    }
}

/// What this worker did, for the summary.
#[derive(Default)]
struct Tally {
    uploaded: AtomicU64,
    already_committed: AtomicU64,
    taken_over: AtomicU64,
    failed: AtomicU64,
    dead: AtomicU64,
    handed_back: AtomicU64,
    lost: AtomicU64,
    cancelled: AtomicU64,
    conversations: AtomicU64,
}

fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// What a worker did, for the front end's summary.
#[derive(Debug, Default)]
pub struct WorkerReport {
    pub worker_id: String,
    pub elapsed: Duration,
    pub uploaded: u64,
    pub already_committed: u64,
    pub taken_over: u64,
    pub failed: u64,
    pub dead: u64,
    pub handed_back: u64,
    pub lost: u64,
    pub cancelled: u64,
    pub conversations: u64,
    /// With `once`: jobs in the queue by state at the end.
    pub queue_by_state: Option<Vec<(String, u64)>>,
    /// The error that stopped a slot (the queue kept failing), if any.
    pub error: Option<anyhow::Error>,
}

/// Runs a worker on the queue at `queue_url` until SIGTERM/SIGINT (or, with `once`, until the
/// queue is drained). Errors before any job is taken (the queue cannot be opened, the metrics
/// address is taken) are returned; what happens after is in the report.
pub async fn run(queue_url: &str, args: WorkerSettings) -> Result<WorkerReport> {
    // Signals first: from here on SIGTERM no longer kills the process outright.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (hand_back_tx, hand_back_rx) = watch::channel(false);
    let grace = args.shutdown_grace;
    // Metrics are refreshed from the queue, and the loop reports alive, once per poll (1 s to
    // 15 s); /healthz fails after missing a few of those.
    let refresh_every = args
        .poll
        .clamp(Duration::from_secs(1), Duration::from_secs(15));
    let health = HealthState::new((refresh_every * 4).max(Duration::from_secs(30)));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let draining = health.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        };
        tracing::info!(
            "{name}: taking no new jobs; running jobs have {} s to finish, then are handed back",
            grace.as_secs()
        );
        draining.draining();
        let _ = stop_tx.send(true);
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = tokio::time::sleep(grace) => {}
        }
        let _ = hand_back_tx.send(true);
    });

    if args.concurrency == 0 {
        anyhow::bail!("--concurrency must be at least 1");
    }
    let settings = Arc::new(Settings {
        worker_id: args.worker_id.clone(),
        lease: args.lease,
        retry_backoff: args.retry_backoff,
        poll: args.poll,
        once: args.once,
        client: args.client.clone(),
        s3: args.s3.clone(),
        output: args.output.clone(),
        budgets: Default::default(),
    });
    lpdrop_metrics::describe_all();
    lpdrop_metrics::BUILD_INFO.set(&[env!("CARGO_PKG_VERSION")], 1.0);
    if let Some(addr) = args.metrics_addr {
        let bound = lpdrop_metrics::serve(addr, health.clone())
            .await
            .with_context(|| format!("cannot serve metrics on {addr} (--metrics-addr)"))?;
        tracing::info!(
            "metrics on http://{bound}/metrics, liveness on /healthz, readiness on /readyz"
        );
    }
    let queue = Queue::open(queue_url).await.with_context(|| {
        format!(
            "cannot open the job queue {}",
            lpdrop_jobs::redact_url(queue_url)
        )
    })?;
    tracing::info!(
        "worker {} on the {} queue {}: {} at a time, lease {} s{}",
        settings.worker_id,
        queue.backend(),
        lpdrop_jobs::redact_url(queue_url),
        args.concurrency,
        settings.lease.as_secs_f64(),
        if args.once {
            ", until the queue is drained"
        } else {
            ""
        }
    );
    let started = Instant::now();
    let tally = Arc::new(Tally::default());
    let refresher = args.metrics_addr.map(|_| {
        tokio::spawn(refresh_metrics(
            queue.clone(),
            health.clone(),
            refresh_every,
        ))
    });
    let mut slots = Vec::new();
    for slot in 0..args.concurrency {
        let (queue, settings, tally) = (queue.clone(), settings.clone(), tally.clone());
        let (stop, hand_back, health) = (stop_rx.clone(), hand_back_rx.clone(), health.clone());
        slots.push(tokio::spawn(async move {
            run_slot(slot, queue, settings, tally, health, stop, hand_back).await
        }));
    }
    let mut first_error = None;
    for s in slots {
        match s.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(anyhow::anyhow!("a worker task panicked: {e}"));
            }
        }
    }
    if let Some(refresher) = refresher {
        refresher.abort();
    }
    let t = &tally;
    let mut report = WorkerReport {
        worker_id: settings.worker_id.clone(),
        elapsed: started.elapsed(),
        uploaded: get(&t.uploaded),
        already_committed: get(&t.already_committed),
        taken_over: get(&t.taken_over),
        failed: get(&t.failed),
        dead: get(&t.dead),
        handed_back: get(&t.handed_back),
        lost: get(&t.lost),
        cancelled: get(&t.cancelled),
        conversations: get(&t.conversations),
        queue_by_state: None,
        error: first_error,
    };
    if args.once && report.error.is_none() {
        match queue.summary().await {
            Ok(summary) => {
                report.queue_by_state = Some(
                    summary
                        .by_state
                        .iter()
                        .map(|(s, n)| (s.to_string(), *n))
                        .collect(),
                )
            }
            Err(e) => report.error = Some(e.into()),
        }
    }
    Ok(report)
}

/// Keeps the queue's gauges (jobs by state, lag) current and reports the worker alive, every
/// `every`, until aborted.
async fn refresh_metrics(queue: Queue, health: HealthState, every: Duration) {
    loop {
        health.beat();
        let summary = tokio::time::timeout(every.max(Duration::from_secs(5)), queue.summary());
        match summary.await {
            Ok(Ok(summary)) => {
                health.queue_ok(true);
                for state in JobState::ALL {
                    lpdrop_metrics::JOBS.set(&[state.as_str()], summary.count(state) as f64);
                }
                // How long the job that became due first (a queued job, a failed one past its
                // backoff, or a running one whose lease expired) has waited for a worker.
                let now = chrono::Utc::now().timestamp_millis();
                let lag_ms = summary.next_due_ms.map_or(0, |due| (now - due).max(0));
                lpdrop_metrics::QUEUE_LAG.set(&[], lag_ms as f64 / 1000.0);
            }
            Ok(Err(_)) | Err(_) => health.queue_ok(false),
        }
        tokio::time::sleep(every).await;
    }
}

async fn run_slot(
    slot: usize,
    queue: Queue,
    settings: Arc<Settings>,
    tally: Arc<Tally>,
    health: HealthState,
    mut stop: watch::Receiver<bool>,
    hand_back: watch::Receiver<bool>,
) -> Result<()> {
    let mut consecutive_errors = 0u32;
    loop {
        health.beat();
        if *stop.borrow() {
            return Ok(());
        }
        let claimed = queue.claim(&settings.worker_id, settings.lease).await;
        health.queue_ok(claimed.is_ok());
        let wait = match claimed {
            Ok(Some(lease)) => {
                consecutive_errors = 0;
                // Every line the job logs carries its id and attempt (`--log-format json`:
                // the `span` object).
                let span = tracing::info_span!("job", job = lease.job.id, attempt = lease.attempt);
                run_job(&queue, &settings, &tally, lease, hand_back.clone())
                    .instrument(span)
                    .await;
                continue;
            }
            Ok(None) => {
                consecutive_errors = 0;
                let poll = if settings.once {
                    settings.poll.min(Duration::from_secs(1))
                } else {
                    settings.poll
                };
                if settings.once || slot == 0 {
                    let summary = queue.summary().await?;
                    if settings.once && summary.active() == 0 {
                        return Ok(());
                    }
                    // Wake up when the next job falls due (a backoff ends, a lease expires).
                    let until_due = summary.next_due_ms.map(|due| {
                        let ms = due - chrono::Utc::now().timestamp_millis();
                        Duration::from_millis(ms.clamp(100, i64::MAX) as u64)
                    });
                    until_due.map_or(poll, |d| d.min(poll))
                } else {
                    poll
                }
            }
            Err(e) => {
                consecutive_errors += 1;
                tracing::warn!("worker {}: cannot claim a job: {e}", settings.worker_id);
                if settings.once && consecutive_errors >= 10 {
                    return Err(e).context("the queue keeps failing");
                }
                settings.poll.min(Duration::from_secs(5))
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Why a job stopped before it was done.
enum Interrupted {
    Cancelled,
    Lost,
    Unrenewable(String),
    HandBack,
}

/// How a job ended.
enum JobError {
    /// No retry can fix it (unsupported source, bad destination).
    Permanent(String),
    /// Worth trying again after a backoff.
    Retryable(anyhow::Error),
    /// The queue refused a fenced change (another worker holds the job) or failed.
    Queue(QueueError),
}

impl From<QueueError> for JobError {
    fn from(e: QueueError) -> Self {
        JobError::Queue(e)
    }
}

struct Done {
    counts: Option<Counts>,
    location: String,
    already_committed: bool,
}

async fn run_job(
    queue: &Queue,
    settings: &Settings,
    tally: &Tally,
    lease: Lease,
    mut hand_back: watch::Receiver<bool>,
) {
    let job = &lease.job;
    let started = Instant::now();
    tracing::info!(
        "job {} attempt {}/{}: {} [{}, {}) account {} -> {}{}",
        job.id,
        lease.attempt,
        job.spec.max_attempts,
        job.spec.source,
        fmt_ms(job.spec.window_from_ms),
        fmt_ms(job.spec.window_to_ms),
        job.spec.account_id,
        job.spec.dest,
        if lease.taken_over {
            " (taken over: the previous worker's lease expired)"
        } else {
            ""
        }
    );
    if lease.taken_over {
        bump(&tally.taken_over, 1);
    }
    lpdrop_metrics::RUNNING_JOBS.add(&[], 1.0);

    // True while this worker may publish the job's drop. The commit runs on a blocking thread
    // that outlives an interrupted job, so it asks this flag before the manifest and the marker.
    let may_commit = Arc::new(AtomicBool::new(true));

    // The heartbeat renews the lease; it tells the job to stop when the lease is gone.
    let (interrupt_tx, mut interrupt_rx) = tokio::sync::mpsc::channel::<Interrupted>(1);
    let heartbeat = {
        let (queue, lease, period) = (queue.clone(), lease.clone(), settings.lease);
        let may_commit = may_commit.clone();
        let interrupt_tx = FencingSender {
            tx: interrupt_tx,
            may_commit,
        };
        tokio::spawn(async move {
            let mut last_ok = Instant::now();
            loop {
                tokio::time::sleep(period / 3).await;
                match queue.heartbeat(&lease, period).await {
                    Ok(Heartbeat::Renewed { .. }) => last_ok = Instant::now(),
                    Ok(Heartbeat::Cancelled) => {
                        let _ = interrupt_tx.send(Interrupted::Cancelled).await;
                        return;
                    }
                    Ok(Heartbeat::Lost) => {
                        let _ = interrupt_tx.send(Interrupted::Lost).await;
                        return;
                    }
                    // Give up well before the lease can expire, so that no two workers write
                    // the same drop at once.
                    Err(e) if last_ok.elapsed() > period * 2 / 3 => {
                        let _ = interrupt_tx
                            .send(Interrupted::Unrenewable(e.to_string()))
                            .await;
                        return;
                    }
                    Err(e) => {
                        tracing::warn!("job {}: heartbeat failed (will retry): {e}", lease.job.id)
                    }
                }
            }
        })
    };

    let outcome = tokio::select! {
        r = execute(queue, settings, &lease, may_commit.clone()) => Ok(r),
        Some(i) = interrupt_rx.recv() => Err(i),
        _ = async {
            while !*hand_back.borrow() {
                if hand_back.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        } => Err(Interrupted::HandBack),
    };
    heartbeat.abort();
    if outcome.is_err() {
        may_commit.store(false, Ordering::SeqCst);
    }
    let secs = started.elapsed().as_secs_f64();
    let ended = match outcome {
        Ok(Ok(done)) => {
            bump(&tally.uploaded, 1);
            if done.already_committed {
                bump(&tally.already_committed, 1);
            }
            let counts = done.counts.unwrap_or_default();
            bump(&tally.conversations, counts.conversations);
            tracing::info!(
                "job {} uploaded in {secs:.1} s: {}{} ({} conversations, {} still open)",
                job.id,
                if done.already_committed {
                    "already committed by an earlier attempt at "
                } else {
                    "committed drop "
                },
                done.location,
                counts.conversations,
                counts.open_conversations
            );
            if done.already_committed {
                "already_committed"
            } else {
                "uploaded"
            }
        }
        Ok(Err(JobError::Permanent(msg))) => {
            report_failure(queue, settings, tally, &lease, &msg, None).await
        }
        Ok(Err(JobError::Retryable(e))) => {
            let msg = format!("{e:#}");
            let wait = backoff(
                settings.retry_backoff,
                Duration::from_secs(3600),
                lease.attempt,
            );
            report_failure(queue, settings, tally, &lease, &msg, Some(wait)).await
        }
        Ok(Err(JobError::Queue(QueueError::LeaseLost { reason, .. }))) => {
            bump(&tally.lost, 1);
            tracing::warn!("job {}: stopped, {reason}", job.id);
            "lost"
        }
        Ok(Err(JobError::Queue(e))) => {
            // The queue itself failed: the lease expires and another attempt takes over.
            tracing::error!(
                "job {}: the queue failed ({e}); the job is retried once its lease expires",
                job.id
            );
            "queue_error"
        }
        Err(Interrupted::Cancelled) => {
            bump(&tally.cancelled, 1);
            tracing::info!("job {}: cancelled while running; stopped", job.id);
            "cancelled"
        }
        Err(Interrupted::Lost) => {
            bump(&tally.lost, 1);
            tracing::warn!("job {}: lost the lease to another worker; stopped", job.id);
            "lost"
        }
        Err(Interrupted::Unrenewable(e)) => {
            bump(&tally.lost, 1);
            tracing::warn!(
                "job {}: cannot renew the lease ({e}); stopped so that another worker can take it over",
                job.id
            );
            "lost"
        }
        Err(Interrupted::HandBack) => {
            // A commit that was under way finishes on its blocking thread before this process
            // exits; the short delay keeps the next worker from starting on the drop meanwhile.
            match queue
                .release(&lease, settings.lease.min(Duration::from_secs(10)))
                .await
            {
                Ok(()) => {
                    bump(&tally.handed_back, 1);
                    tracing::info!("job {}: handed back to the queue", job.id);
                    "handed_back"
                }
                Err(e) => {
                    tracing::error!(
                        "job {}: could not hand it back ({e}); it is retried once its lease expires",
                        job.id
                    );
                    "queue_error"
                }
            }
        }
    };
    lpdrop_metrics::RUNNING_JOBS.add(&[], -1.0);
    lpdrop_metrics::JOBS_TOTAL.inc(&[ended]);
    lpdrop_metrics::JOB_DURATION.observe(&[ended], secs);
}

async fn report_failure(
    queue: &Queue,
    settings: &Settings,
    tally: &Tally,
    lease: &Lease,
    msg: &str,
    retry_after: Option<Duration>,
) -> &'static str {
    let id = lease.job.id;
    match queue.fail(lease, msg, retry_after).await {
        Ok(FailOutcome::RetryAt(t)) => {
            bump(&tally.failed, 1);
            tracing::warn!(
                "job {id} attempt {} failed (retried from {}): {msg}",
                lease.attempt,
                fmt_ms(t)
            );
            "failed"
        }
        Ok(FailOutcome::Dead) => {
            bump(&tally.dead, 1);
            tracing::error!(
                "job {id} attempt {} failed and the job is dead: {msg}",
                lease.attempt
            );
            "dead"
        }
        Err(e) => {
            tracing::error!(
                "job {id}: failed ({msg}), and the failure could not be recorded ({e}); worker {}",
                settings.worker_id
            );
            "queue_error"
        }
    }
}

/// Counts of a committed drop, from its manifest.
fn counts_of(manifest: &Manifest) -> Counts {
    Counts {
        conversations: manifest.source.conversations,
        open_conversations: manifest.source.open_conversations,
        rows: manifest.totals.rows,
        files: manifest.totals.files,
        bytes: manifest.totals.bytes,
    }
}

/// The heartbeat's way to interrupt a job: the commit fence is closed before the job hears.
struct FencingSender {
    tx: tokio::sync::mpsc::Sender<Interrupted>,
    may_commit: Arc<AtomicBool>,
}

impl FencingSender {
    async fn send(&self, why: Interrupted) -> Result<(), ()> {
        self.may_commit.store(false, Ordering::SeqCst);
        self.tx.send(why).await.map_err(|_| ())
    }
}

/// Conversations one refetch job re-reads at most (10 by-id calls); more wait for the next.
const REFETCH_BATCH: u32 = 1000;

async fn execute(
    queue: &Queue,
    settings: &Settings,
    lease: &Lease,
    may_commit: Arc<AtomicBool>,
) -> Result<Done, JobError> {
    let job = &lease.job;
    let dest = Destination::parse(&job.spec.dest)
        .map_err(|e| JobError::Permanent(format!("destination {}: {e:#}", job.spec.dest)))?;
    let window = Window::try_new(job.spec.window_from_ms, job.spec.window_to_ms)
        .map_err(|e| JobError::Permanent(e.to_string()))?;

    // The drop: decided once, recorded before anything is written, reused by later attempts.
    let planned = match &job.drop {
        Some(d) => planned_from(d)?,
        None => PlannedDrop::new(),
    };
    let record = DropRecord {
        id: planned.id.to_string(),
        created_at_ms: planned.created_at.timestamp_millis(),
        root: planned.layout(dest.prefix()).root(),
    };
    let record = queue.record_drop(lease, &record).await?;
    let planned = planned_from(&record)?;

    let (store, _) = open_to_write(&dest, &settings.s3)
        .await
        .map_err(JobError::Retryable)?;
    let marker_key = format!("{}/{}", record.root, lpdrop_drop::MARKER_NAME);
    let manifest_key = format!("{}/{}", record.root, lpdrop_drop::MANIFEST_NAME);
    let marker = store
        .get_bytes(&marker_key)
        .await
        .context("checking for an earlier commit")
        .map_err(JobError::Retryable)?;
    if marker.is_some() {
        // An earlier attempt committed the drop (and died before saying so): done.
        let counts = match store.get_bytes(&manifest_key).await {
            Ok(Some(bytes)) => serde_json::from_slice::<Manifest>(&bytes)
                .ok()
                .map(|m| counts_of(&m)),
            _ => None,
        };
        queue.uploaded(lease, counts.as_ref()).await?;
        return Ok(Done {
            counts,
            location: store.location(&record.root),
            already_committed: true,
        });
    }
    // What an earlier attempt left there is not trusted (no marker): start the drop afresh.
    let leftovers = store
        .list(&record.root)
        .await
        .context("listing an earlier attempt's leftovers")
        .map_err(JobError::Retryable)?;
    if !leftovers.is_empty() {
        let keys: Vec<String> = leftovers.into_iter().map(|o| o.key).collect();
        store
            .delete(&keys)
            .await
            .context("removing an earlier attempt's leftovers")
            .map_err(JobError::Retryable)?;
        tracing::info!(
            "job {}: removed {} objects an earlier attempt left in {}",
            job.id,
            keys.len(),
            store.location(&record.root)
        );
    }

    // Late data: a refetch job re-reads the conversations earlier jobs saw open. It takes them
    // under its own name, so a retried attempt gets the same ones back.
    let refetch_ids = if job.spec.origin == lpdrop_jobs::REFETCH_ORIGIN {
        let ids = queue
            .take_open_conversations(
                &job.spec.account_id,
                job.spec.source,
                REFETCH_BATCH,
                &format!("job:{}", job.id),
            )
            .await?;
        tracing::info!(
            "job {}: re-reading {} conversations that were open when first read",
            job.id,
            ids.len()
        );
        Some(ids)
    } else {
        None
    };

    let fence: CommitFence = Arc::new(move || {
        if may_commit.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("this worker no longer holds the job's lease".to_string())
        }
    });
    let report = run_job_drop(settings, lease, window, refetch_ids, &dest, planned, fence)
        .await
        .map_err(by_retryability)?;
    // The drop is committed: count what it holds.
    for table in &report.drop.manifest.tables {
        let bytes: u64 = table.files.iter().map(|f| f.bytes).sum();
        lpdrop_metrics::ROWS_WRITTEN.add(&[&table.name], table.rows as f64);
        lpdrop_metrics::BYTES_WRITTEN.add(&[&table.name], bytes as f64);
    }
    let counts = Counts {
        conversations: report.stats.conversations,
        open_conversations: report.stats.open_conversations,
        ..counts_of(&report.drop.manifest)
    };
    // Conversations still OPEN are remembered, so that a later job fetches them again once closed.
    if !report.open_conversation_ids.is_empty() {
        queue
            .add_open_conversations(job.id, &report.open_conversation_ids)
            .await
            .context("recording the job's open conversations")
            .map_err(JobError::Retryable)?;
    }
    queue.finish(lease, &counts).await?;

    // Confirm the commit where readers look for it before calling the job done.
    let committed = store
        .get_bytes(&marker_key)
        .await
        .context("confirming upload.complete")
        .map_err(JobError::Retryable)?
        .is_some();
    if !committed {
        return Err(JobError::Retryable(anyhow::anyhow!(
            "the sync reported a commit, but {} is missing",
            store.location(&marker_key)
        )));
    }
    queue.uploaded(lease, None).await?;
    Ok(Done {
        counts: Some(counts),
        location: report.drop.location,
        already_committed: false,
    })
}

/// A job's error by its cause's own retryability: a request the LivePerson API refused (a
/// rejected key, a missing permission) fails the same way on every attempt, so the job ends
/// dead at once, with what to check; anything else may pass on a later attempt.
fn by_retryability(e: anyhow::Error) -> JobError {
    let refused = e
        .chain()
        .filter_map(|c| c.downcast_ref::<lpdrop_liveperson::client::Error>())
        .find(|api| api.is_permanent());
    match refused {
        Some(api) => {
            let status = api
                .status()
                .map_or_else(String::new, |s| format!(" (HTTP {s})"));
            let hint = api.hint().map_or_else(String::new, |h| format!(": {h}"));
            JobError::Permanent(format!(
                "{e:#}; not retried: the API refused the request{status}{hint}"
            ))
        }
        None => JobError::Retryable(e),
    }
}

/// The job's drop: its source read into the planned drop on the job's destination.
async fn run_job_drop(
    settings: &Settings,
    lease: &Lease,
    window: Window,
    refetch_ids: Option<Vec<String>>,
    dest: &Destination,
    planned: PlannedDrop,
    fence: CommitFence,
) -> Result<DropReport> {
    let job = &lease.job;
    let tables = table_source(job.spec.source);
    let client = Client::connect(settings.client_config(&job.spec.account_id))
        .await
        .context("cannot reach the LivePerson Domain API")?;
    let (store, _) = open_to_write(dest, &settings.s3).await?;
    let plan = DropPlan {
        drop: planned,
        prefix: dest.prefix(),
        job: Some(JobRef {
            id: job.id.to_string(),
            attempt: lease.attempt,
        }),
        output: settings.output.clone(),
    };
    let filters = SearchFilters {
        skill_ids: job.spec.skill_ids.clone(),
        status: Vec::new(),
    };
    let progress = Arc::new(NoProgress);
    let fence = Some(fence);
    match (refetch_ids, tables) {
        (Some(ids), Source::Messaging) => {
            let source = ById {
                client,
                ids,
                window,
            };
            run_drop(source, plan, store, fence, progress).await
        }
        (Some(_), other) => anyhow::bail!(
            "only messaging conversations can be re-read by id, not {}",
            lpdrop_pipeline::api_name(other)
        ),
        (None, Source::Dimensions) => {
            let source = AccountConfig {
                client,
                window,
                filters,
            };
            run_drop(source, plan, store, fence, progress).await
        }
        (None, Source::Messaging | Source::Chat) => {
            let source = Search::new(client, tables, window, filters);
            run_drop(source, plan, store, fence, progress).await
        }
    }
}

/// The tables a job's source fills (the queue and the table crate each name the sources).
pub fn table_source(s: lpdrop_jobs::Source) -> Source {
    match s {
        lpdrop_jobs::Source::Messaging => Source::Messaging,
        lpdrop_jobs::Source::Chat => Source::Chat,
        lpdrop_jobs::Source::Dimensions => Source::Dimensions,
    }
}

fn planned_from(d: &DropRecord) -> Result<PlannedDrop, JobError> {
    let id = uuid::Uuid::parse_str(&d.id)
        .map_err(|e| JobError::Permanent(format!("recorded drop id {:?}: {e}", d.id)))?;
    let created_at = chrono::DateTime::from_timestamp_millis(d.created_at_ms).ok_or_else(|| {
        JobError::Permanent(format!("recorded drop time {} is invalid", d.created_at_ms))
    })?;
    Ok(PlannedDrop { id, created_at })
}

#[cfg(test)]
mod budget_tests {
    use super::*;
    use lpdrop_liveperson::oauth1::ApiKey;

    #[test]
    fn jobs_of_one_account_share_a_budget_and_other_accounts_get_their_own() {
        let budgets = AccountBudgets::default();
        let config = |account: &str| {
            budgets.share(ClientConfig::new(
                "http://127.0.0.1:1",
                account,
                ApiKey::default(),
            ))
        };
        let (a1, a2, b) = (config("111"), config("111"), config("222"));
        let budget = |c: &ClientConfig| c.budget.clone().expect("a shared budget");
        assert!(budget(&a1).same_as(&budget(&a2)));
        assert!(!budget(&a1).same_as(&budget(&b)));
    }
}
