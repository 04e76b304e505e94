//! One job's life on a worker: its lease renewed by a heartbeat, the commit fence closed the
//! moment the lease is lost, cancelled or handed back, and how the attempt ends in the queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lpdrop_jobs::{Counts, FailOutcome, Heartbeat, Lease, Queue, QueueError, backoff, fmt_ms};
use tokio::sync::watch;

use crate::protocol::execute;
use crate::{Settings, Tally, bump};

/// Why a job stopped before it was done.
enum Interrupted {
    Cancelled,
    Lost,
    Unrenewable(String),
    HandBack,
}

/// How a job ended.
pub(crate) enum JobError {
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

pub(crate) struct Done {
    pub counts: Option<Counts>,
    pub location: String,
    pub already_committed: bool,
}

pub(crate) async fn run_job(
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
