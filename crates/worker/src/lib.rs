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

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tracing::Instrument;

use anyhow::{Context, Result};
use lpdrop_jobs::{JobState, Queue};
use lpdrop_liveperson::{Client, ClientConfig, Error as ClientError, RequestBudget};
use lpdrop_metrics::HealthState;
use tokio::sync::watch;

use lpdrop_drop::StoreSettings;
use lpdrop_pipeline::OutputSettings;

mod job;
mod pace;
mod protocol;
pub mod registrations;

use job::run_job;

/// With `once`, how often an idle slot looks at the queue while jobs are still running (in
/// this process, a job's end wakes it at once; in another, only a look tells). A drained queue
/// is then left within this long: at the 1 s of a plain poll, 4 processes draining a day of
/// hourly jobs together spent a tenth of the drain waiting to exit.
const DRAIN_POLL: Duration = Duration::from_millis(100);

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
    pub store: StoreSettings,
    pub output: OutputSettings,
    /// Register each committed drop in this Glue database (S3 destinations only); a failed
    /// registration leaves the job uploaded, with its registration pending.
    pub glue_database: Option<String>,
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
    store: StoreSettings,
    output: OutputSettings,
    glue_database: Option<String>,
    clients: AccountClients,
    /// Wakes idle slots when a job of this process ends: with `once`, a slot that found
    /// nothing to claim while another slot ran the last job exits at once instead of
    /// sleeping out its poll, and a job that ends may have left work due.
    job_ended: tokio::sync::Notify,
}

/// Each account's connected client, shared by every job of this process: the API limits are
/// the account's, so one request budget (slots and the pace found from 429s) serves every job;
/// and the service hosts, the connection pool and the token are reused, so a job's first
/// request is its first data page, not a Domain API lookup on a new connection. With a queue,
/// the budget also shares the account's pace with the other worker processes ([`pace`]).
struct AccountClients {
    board: Option<(Queue, String)>,
    clients: tokio::sync::Mutex<HashMap<String, (Client, Instant)>>,
    sharing: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Service hosts are looked up again after this long, in case LivePerson moved the account.
const CLIENT_REUSE: Duration = Duration::from_secs(3600);

impl AccountClients {
    /// Clients whose budgets share each account's pace through `board`'s queue, as the
    /// worker it names (`None`: each budget is this process's alone).
    fn new(board: Option<(Queue, String)>) -> Self {
        AccountClients {
            board,
            clients: Default::default(),
            sharing: Default::default(),
        }
    }

    /// The connected client for `account_id`, made from `base` the first time (and again after
    /// [`CLIENT_REUSE`], keeping the same budget).
    async fn get(&self, base: &ClientConfig, account_id: &str) -> Result<Client, ClientError> {
        let mut clients = self.clients.lock().await;
        let budget = match clients.get(account_id) {
            Some((client, made)) if made.elapsed() < CLIENT_REUSE => return Ok(client.clone()),
            Some((client, _)) => client.config().budget.clone(),
            None => None,
        };
        let mut config = base.clone();
        config.account_id = account_id.to_string();
        let first = budget.is_none();
        let budget = budget.unwrap_or_else(|| RequestBudget::new(&config));
        config.budget = Some(budget.clone());
        let client = Client::connect(config).await?;
        if first && let Some((queue, worker)) = &self.board {
            // The first look at the board comes before the first request, so that processes
            // starting together do not each send a full set of requests at once.
            budget.set_shared_schedule(Arc::new(pace::BoardSchedule {
                queue: queue.clone(),
                account: account_id.to_string(),
            }));
            let mut sharing = pace::Sharing::new(queue.clone(), worker, account_id, budget);
            if let Err(e) = sharing.sync().await {
                tracing::debug!("cannot read the pace board of account {account_id}: {e}");
            }
            lock(&self.sharing).push(tokio::spawn(sharing.run()));
        }
        clients.insert(account_id.to_string(), (client.clone(), Instant::now()));
        Ok(client)
    }
}

impl Drop for AccountClients {
    fn drop(&mut self) {
        for task in lock(&self.sharing).drain(..) {
            task.abort();
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
    let settings = Arc::new(Settings {
        worker_id: args.worker_id.clone(),
        lease: args.lease,
        retry_backoff: args.retry_backoff,
        poll: args.poll,
        once: args.once,
        client: args.client.clone(),
        store: args.store.clone(),
        output: args.output.clone(),
        glue_database: args.glue_database.clone(),
        clients: AccountClients::new(Some((queue.clone(), args.worker_id.clone()))),
        job_ended: tokio::sync::Notify::new(),
    });
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
                if let Ok(n) = queue.catalog_pending_count().await {
                    lpdrop_metrics::CATALOG_PENDING.set(&[], n as f64);
                }
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
        // Registered before the claim, so that a job ending between the claim and the sleep
        // below still wakes this slot.
        let job_ended = settings.job_ended.notified();
        tokio::pin!(job_ended);
        job_ended.as_mut().enable();
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
                settings.job_ended.notify_waiters();
                continue;
            }
            Ok(None) => {
                consecutive_errors = 0;
                let poll = if settings.once {
                    settings.poll.min(DRAIN_POLL)
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
            _ = job_ended => {}
        }
    }
}

#[cfg(test)]
mod client_tests {
    use super::*;
    use lpdrop_liveperson::oauth1::ApiKey;

    async fn emulator(account: &str) -> lpdrop_emulator::Emulator {
        let config = lpdrop_emulator::EmulatorConfig {
            account_id: account.into(),
            ..Default::default()
        };
        let addr = "127.0.0.1:0".parse().expect("an address");
        lpdrop_emulator::Emulator::start(config, addr)
            .await
            .expect("the emulator starts")
    }

    #[tokio::test]
    async fn jobs_of_one_account_share_a_client_and_other_accounts_get_their_own() {
        // The Domain API is the same host for both accounts in real life; here each account
        // has an emulator of its own, and the base domain is that of the first.
        let (first, second) = (emulator("111").await, emulator("222").await);
        let base = ClientConfig::new(first.domain_url(), "", ApiKey::default());
        let clients = AccountClients::new(None);
        let a1 = clients.get(&base, "111").await.expect("connects");
        let a2 = clients.get(&base, "111").await.expect("connects");
        // An account the Domain API refuses is an error, and nothing is kept for it.
        assert!(clients.get(&base, "222").await.is_err());
        let base_b = ClientConfig::new(second.domain_url(), "", ApiKey::default());
        let b = clients.get(&base_b, "222").await.expect("connects");
        let budget = |c: &Client| c.config().budget.clone().expect("a shared budget");
        assert!(budget(&a1).same_as(&budget(&a2)));
        assert!(!budget(&a1).same_as(&budget(&b)));
        assert_eq!(
            (
                a1.config().account_id.as_str(),
                b.config().account_id.as_str()
            ),
            ("111", "222")
        );
        first.shutdown().await;

        // Once connected, a job of the account needs no Domain API lookup: its server is gone.
        let again = clients.get(&base, "111").await.expect("the kept client");
        assert!(budget(&again).same_as(&budget(&a1)));
        second.shutdown().await;
    }
}
