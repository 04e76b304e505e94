//! `lpdrop schedule`: enqueue the windows that are due after the watermark. Run it every few
//! minutes from cron or a Kubernetes CronJob; each run enqueues only what has fallen due since
//! the last one, and racing runs enqueue each window once.

use anyhow::{Context, Result, bail};
use lpdrop_jobs::schedule::{
    RefetchTarget, ScheduleSpec, Scheduled, enqueue_refetch, schedule_due,
};
use lpdrop_jobs::{Queue, Source, fmt_ms};
use lpdrop_liveperson::window::parse_time;

use lpdrop_drop::Destination;

use crate::jobs_cmd::parse_duration_ms;
use crate::out::outln;

#[derive(clap::Args)]
pub struct ScheduleArgs {
    /// Window size: one job per window, windows on the UTC grid (1h: on the hour).
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    every: String,
    /// A window is enqueued once it ended at least this long ago (late-arriving data).
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    delay: String,
    /// Also read every window again this much later (a second job per window), for data that
    /// changes after the first read.
    #[arg(long, value_name = "DURATION")]
    lookback: Option<String>,
    /// Where the first run starts (RFC 3339 or YYYY-MM-DD, UTC), when the account and source
    /// have no watermark yet; a start months ago is a backfill of many jobs.
    #[arg(long, value_name = "T")]
    start: Option<String>,
    /// Where the drops go: a local folder or s3://bucket/prefix.
    #[arg(long, env = "LPDROP_OUT", value_name = "DEST")]
    out: String,
    /// Which API to read: messaging (conversations), chat (Engagement History) or dimensions
    /// (agents, skills, agent groups: a snapshot per window).
    #[arg(long, value_enum, default_value_t = Source::Messaging)]
    source: Source,
    /// Only conversations that held this skill (repeatable).
    #[arg(long = "skill", value_name = "ID")]
    skills: Vec<i64>,
    /// The LivePerson account (site) id.
    #[arg(long, env = "LP_ACCOUNT_ID", value_name = "ID")]
    account_id: String,
    /// Tries per job before it is dead.
    #[arg(long, default_value_t = lpdrop_jobs::DEFAULT_MAX_ATTEMPTS, value_name = "N")]
    max_attempts: u32,
    /// Late data: once conversations that were still open when read have waited this long, a
    /// refetch job re-reads them by id (at most one such job waits per account and source).
    /// "off" disables it.
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    refetch_after: String,
    #[command(flatten)]
    glue: crate::catalog_cmd::GlueArgs,
    #[command(flatten)]
    s3: crate::s3_args::S3Args,
    /// Pretend the current time is T (for testing a schedule).
    #[arg(long, value_name = "T", hide = true)]
    now: Option<String>,
}

pub async fn run(
    queue_url: &str,
    args: ScheduleArgs,
    mapping: Option<&lpdrop_tables::ColumnMapping>,
) -> Result<()> {
    let every = parse_duration_ms(&args.every, "--every")?;
    let delay = lpdrop_settings::parse_duration(&args.delay)
        .map_err(|e| anyhow::anyhow!("--delay: {e}"))?
        .as_millis()
        .try_into()
        .unwrap_or(i64::MAX);
    let lookback = args
        .lookback
        .as_deref()
        .map(|l| parse_duration_ms(l, "--lookback"))
        .transpose()?;
    let start = args.start.as_deref().map(parse_time).transpose()?;
    let now = match &args.now {
        Some(t) => parse_time(t)?,
        None => chrono::Utc::now().timestamp_millis(),
    };
    let database = args.glue.check(&Destination::parse(&args.out)?)?;
    let dest = Destination::for_job(&args.out)?;
    let source = args.source;
    let queue = Queue::open(queue_url).await.with_context(|| {
        format!(
            "cannot open the job queue {}",
            lpdrop_jobs::redact_url(queue_url)
        )
    })?;

    if source == Source::Messaging && args.refetch_after != "off" {
        let after = parse_duration_ms(&args.refetch_after, "--refetch-after")?;
        let target = RefetchTarget {
            account_id: &args.account_id,
            source,
            dest: &dest,
            max_attempts: args.max_attempts,
        };
        if let Some((id, waiting)) = enqueue_refetch(&queue, &target, now, now - after).await? {
            outln!(
                "Enqueued refetch job {id} for account {} {source}: {waiting} conversations \
                 that were open are read again by id",
                args.account_id
            );
        }
    }
    let spec = ScheduleSpec {
        account_id: args.account_id.clone(),
        source,
        every_ms: every,
        delay_ms: delay,
        lookback_ms: lookback,
        start_ms: start,
        skill_ids: args.skills.clone(),
        dest: dest.clone(),
        max_attempts: args.max_attempts,
    };
    match schedule_due(&queue, &spec, now).await? {
        Scheduled::NoStart => bail!(
            "account {} has no {source} watermark yet: give --start T for the first run \
             (e.g. --start {})",
            args.account_id,
            chrono::Utc::now().format("%Y-%m-%d")
        ),
        Scheduled::NothingDue {
            watermark_ms,
            next_end_ms,
            due_ms,
        } => outln!(
            "Nothing due for account {} {source}: watermark {}; the next window [{}, {}) is due at {}",
            args.account_id,
            fmt_ms(watermark_ms),
            fmt_ms(watermark_ms),
            fmt_ms(next_end_ms),
            fmt_ms(due_ms)
        ),
        Scheduled::Raced => outln!(
            "Another schedule run enqueued these windows first; nothing to do (watermark moved)"
        ),
        Scheduled::Enqueued {
            ids,
            windows,
            lookback,
            from_ms,
            watermark_ms,
        } => {
            outln!(
                "Enqueued {} job{} for account {} {source} into {dest}: {windows} new window{} [{}, {}){}",
                ids.len(),
                if ids.len() == 1 { "" } else { "s" },
                args.account_id,
                if windows == 1 { "" } else { "s" },
                fmt_ms(from_ms),
                fmt_ms(watermark_ms),
                if lookback == 0 {
                    String::new()
                } else {
                    format!(", and {lookback} read again (lookback)")
                }
            );
            if let (Some(first), Some(last)) = (ids.first(), ids.last()) {
                outln!(
                    "  jobs {first}..{last}; watermark now {}",
                    fmt_ms(watermark_ms)
                );
            }
        }
    }
    if let Some(database) = database {
        complete_registrations(&queue, &args.account_id, database, &args.s3, mapping).await?;
    }
    Ok(())
}

/// `--glue-database`: completes the account's pending registrations (the engine is
/// [`lpdrop_worker::registrations`]) and says how it went.
async fn complete_registrations(
    queue: &Queue,
    account_id: &str,
    database: &str,
    s3: &crate::s3_args::S3Args,
    mapping: Option<&lpdrop_tables::ColumnMapping>,
) -> Result<()> {
    let done = lpdrop_worker::registrations::complete_registrations(
        queue,
        account_id,
        database,
        &s3.settings(),
        mapping,
    )
    .await?;
    if done.registered == 0 && done.still_pending.is_empty() {
        return Ok(());
    }
    for (job, why) in &done.still_pending {
        outln!("job {job}: catalog registration still pending: {why}");
    }
    outln!(
        "Completed {} pending catalog registration{} in Glue database {database}{}",
        done.registered,
        if done.registered == 1 { "" } else { "s" },
        if done.still_pending.is_empty() {
            String::new()
        } else {
            format!("; {} still pending", done.still_pending.len())
        }
    );
    Ok(())
}
