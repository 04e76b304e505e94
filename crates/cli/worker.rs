//! `lpdrop worker`: flags into [`lpdrop_worker::WorkerSettings`], and the summary.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use lpdrop_settings::Duration;

use crate::LpKeys;
use crate::out::outln;
use crate::s3_args::S3Args;

#[derive(clap::Args)]
pub struct WorkerArgs {
    /// Jobs run at once by this worker. Three by default: while one job waits for its first
    /// page, writes its parquet or commits, the others keep the API busy (all share the
    /// account's request pace, so three do not ask more of the API than one; with 2, a day of
    /// hourly jobs used 0.8 of a rate limit, with 3 about 0.9). Each running job holds its own
    /// conversion in memory.
    #[arg(long, default_value_t = 3, value_name = "N")]
    concurrency: usize,
    /// Drain the queue: exit once no job is left to do (none queued, running or waiting for a
    /// retry), with a summary. Exit 1 if a job this worker ran ended dead.
    #[arg(long)]
    once: bool,
    /// Lease on a running job; renewed every third of it. Another worker takes a job over when
    /// its lease has expired.
    #[arg(
        long,
        env = "LPDROP_LEASE",
        default_value = "60s",
        value_name = "DURATION"
    )]
    lease: Duration,
    /// First wait before a failed job is tried again; doubles per attempt, up to 1h.
    #[arg(
        long,
        env = "LPDROP_RETRY_BACKOFF",
        default_value = "30s",
        value_name = "DURATION"
    )]
    retry_backoff: Duration,
    /// How often an idle worker looks for new jobs.
    #[arg(
        long,
        env = "LPDROP_POLL",
        default_value = "5s",
        value_name = "DURATION"
    )]
    poll: Duration,
    /// After SIGTERM/SIGINT, how long running jobs may take to finish before they are handed
    /// back (Kubernetes gives 30s by default).
    #[arg(long, default_value = "25s", value_name = "DURATION")]
    shutdown_grace: Duration,
    /// This worker's name in the queue (default: host name and process id).
    #[arg(long, env = "LPDROP_WORKER_ID", value_name = "NAME")]
    worker_id: Option<String>,
    /// Serve Prometheus metrics on http://ADDR/metrics, liveness on /healthz and readiness on
    /// /readyz (503 while draining after SIGTERM or when the queue does not answer). Off by
    /// default. The metrics carry no secrets, so any interface will do.
    /// Example: --metrics-addr 0.0.0.0:9464
    #[arg(long, env = "LPDROP_METRICS_ADDR", value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
    #[command(flatten)]
    lp: Box<LpKeys>,
    #[command(flatten)]
    s3: S3Args,
    #[command(flatten)]
    glue: crate::catalog_cmd::GlueArgs,
}

pub async fn run(
    queue_url: &str,
    args: WorkerArgs,
    output: lpdrop_pipeline::OutputSettings,
) -> Result<()> {
    let positive = |d: Duration, flag: &str| -> Result<std::time::Duration> {
        anyhow::ensure!(!d.get().is_zero(), "{flag} must be longer than zero");
        Ok(d.get())
    };
    let settings = lpdrop_worker::WorkerSettings {
        worker_id: args
            .worker_id
            .clone()
            .unwrap_or_else(lpdrop_worker::default_worker_id),
        concurrency: args.concurrency,
        once: args.once,
        lease: positive(args.lease, "--lease")?,
        retry_backoff: positive(args.retry_backoff, "--retry-backoff")?,
        poll: positive(args.poll, "--poll")?,
        shutdown_grace: args.shutdown_grace.get(),
        metrics_addr: args.metrics_addr,
        // Bad API settings would fail every job: refused before any is taken.
        client: args
            .lp
            .client_config("0")
            .context("LivePerson API settings")?,
        store: args.s3.settings(),
        output,
        glue_database: match args.glue.glue_database.as_deref().filter(|d| !d.is_empty()) {
            Some(db) => {
                lpdrop_catalog::check_database_name(db).map_err(anyhow::Error::msg)?;
                Some(db.to_string())
            }
            None => None,
        },
    };
    let once = settings.once;
    let r = lpdrop_worker::run(queue_url, settings).await?;
    outln!(
        "worker {} done in {:.1} s: {} jobs uploaded ({} found already committed, {} taken over \
         from a dead worker), {} failed attempts (retried later), {} dead, {} handed back, {} \
         lost to another worker, {} cancelled; {} conversations",
        r.worker_id,
        r.elapsed.as_secs_f64(),
        r.uploaded,
        r.already_committed,
        r.taken_over,
        r.failed,
        r.dead,
        r.handed_back,
        r.lost,
        r.cancelled,
        r.conversations,
    );
    if let Some(e) = r.error {
        return Err(e);
    }
    if let Some(by_state) = &r.queue_by_state {
        let by_state: Vec<String> = by_state.iter().map(|(s, n)| format!("{n} {s}")).collect();
        outln!("queue: {}", by_state.join(", "));
    }
    if once && r.dead > 0 {
        anyhow::bail!(
            "{} job{} ended dead (see `lpdrop jobs list --state dead` and `lpdrop jobs show ID`)",
            r.dead,
            if r.dead == 1 { "" } else { "s" }
        );
    }
    Ok(())
}
