//! `lpdrop jobs add|list|show|cancel|retry`: the queue from the command line.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use lpdrop_jobs::schedule::split;
use lpdrop_jobs::{Job, JobSpec, JobState, ListFilter, Queue, Source, fmt_ms};
use lpdrop_liveperson::Window;

use lpdrop_drop::Destination;

use crate::out::{out, outln};

#[derive(Subcommand)]
pub enum JobsCommand {
    /// Enqueue one job per window (all of [from, to), or one per --split piece). The job
    /// keeps the account id, source, window, filters and DEST; no secrets: the worker reads
    /// LP_* from its own environment when it runs the job.
    ///
    /// Example: lpdrop jobs add --from 2026-01-01 --to 2026-04-01 --split 1d --out s3://bucket/folder
    Add(Box<AddArgs>),
    /// List jobs, oldest first (a table, or --json).
    ///
    /// Example: lpdrop jobs list --state failed --state dead
    List {
        /// Only jobs in this state (repeatable): queued, running, finished, uploaded, failed, dead, cancelled.
        #[arg(long = "state", value_name = "STATE")]
        states: Vec<String>,
        /// Only the newest N jobs.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// One JSON array of jobs instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Everything about one job: window, state, attempts and their errors, timings, counts, drop.
    Show {
        #[arg(value_name = "ID")]
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a job that is not uploaded yet (a running job stops at its next heartbeat).
    Cancel {
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Enqueue a refetch job now: it re-reads by id the conversations earlier jobs saw still
    /// open (late data), so the newest drop holds their final state. `lpdrop schedule` does
    /// this by itself (--refetch-after).
    ///
    /// Example: lpdrop jobs refetch --out s3://bucket/folder
    Refetch {
        /// The LivePerson account (site) id.
        #[arg(long, env = "LP_ACCOUNT_ID", value_name = "ID")]
        account_id: String,
        /// Where the drop goes: a local folder or s3://bucket/prefix.
        #[arg(long, env = "LPDROP_OUT", value_name = "DEST")]
        out: String,
        /// Tries before the job is dead.
        #[arg(long, default_value_t = lpdrop_jobs::DEFAULT_MAX_ATTEMPTS, value_name = "N")]
        max_attempts: u32,
    },
    /// Queue a failed, dead or cancelled job again, with a fresh allowance of attempts. It
    /// writes the same drop it was going to write (or finds it committed).
    Retry {
        #[arg(value_name = "ID")]
        id: i64,
    },
}

#[derive(clap::Args)]
pub struct AddArgs {
    /// Window start (inclusive): RFC 3339 or YYYY-MM-DD, UTC; conversation start time.
    #[arg(long, value_name = "T")]
    from: String,
    /// Window end (exclusive): RFC 3339 or YYYY-MM-DD, UTC.
    #[arg(long, value_name = "T")]
    to: String,
    /// Cut the window into jobs of this size, on the UTC grid (1h windows start on the hour,
    /// 1d windows at midnight), e.g. 1h, 6h, 1d.
    #[arg(long, value_name = "DURATION")]
    split: Option<String>,
    /// Which API to read: messaging (conversations), chat (Engagement History) or dimensions
    /// (agents, skills, agent groups: a snapshot per job).
    #[arg(long, value_enum, default_value_t = Source::Messaging)]
    source: Source,
    /// Only conversations that held this skill (repeatable).
    #[arg(long = "skill", value_name = "ID")]
    skills: Vec<i64>,
    /// Where the drops go: a local folder or s3://bucket/prefix.
    #[arg(long, env = "LPDROP_OUT", value_name = "DEST")]
    out: String,
    /// The LivePerson account (site) id.
    #[arg(long, env = "LP_ACCOUNT_ID", value_name = "ID")]
    account_id: String,
    /// Tries per job (claims, including takeovers after a crash) before it is dead.
    #[arg(long, default_value_t = lpdrop_jobs::DEFAULT_MAX_ATTEMPTS, value_name = "N")]
    max_attempts: u32,
}

/// A duration flag that must be longer than zero, in milliseconds.
pub fn parse_duration_ms(s: &str, what: &str) -> Result<i64> {
    let d = lpdrop_settings::parse_duration(s).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if ms <= 0 {
        bail!("{what} must be longer than zero");
    }
    Ok(ms)
}

pub async fn run(queue_url: &str, command: JobsCommand) -> Result<()> {
    let queue = Queue::open(queue_url).await.with_context(|| {
        format!(
            "cannot open the job queue {}",
            lpdrop_jobs::redact_url(queue_url)
        )
    })?;
    match command {
        JobsCommand::Add(args) => add(&queue, *args).await,
        JobsCommand::List {
            states,
            limit,
            json,
        } => {
            let states = states
                .iter()
                .map(|s| JobState::parse(s))
                .collect::<Result<Vec<_>, _>>()?;
            let jobs = queue
                .list(&ListFilter {
                    states,
                    account_id: None,
                    limit,
                })
                .await?;
            if json {
                let all: Vec<_> = jobs.iter().map(job_json).collect();
                outln!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                out!("{}", table(&jobs));
            }
            Ok(())
        }
        JobsCommand::Show { id, json } => show(&queue, id, json).await,
        JobsCommand::Cancel { id } => {
            let job = queue.cancel(id).await?;
            outln!("job {id} is {}", job.state);
            if let Some(owner) = job.lease_owner.filter(|_| job.started_at_ms.is_some()) {
                outln!("(if {owner} is still running it, it stops at its next heartbeat)");
            }
            Ok(())
        }
        JobsCommand::Retry { id } => {
            let job = queue.retry(id).await?;
            outln!(
                "job {id} is {} again ({} attempts allowed from now)",
                job.state,
                job.spec.max_attempts - job.attempts
            );
            Ok(())
        }
        JobsCommand::Refetch {
            account_id,
            out,
            max_attempts,
        } => {
            let dest = Destination::for_job(&out)?;
            let target = lpdrop_jobs::schedule::RefetchTarget {
                account_id: &account_id,
                source: Source::Messaging,
                dest: &dest,
                max_attempts,
            };
            let now = chrono::Utc::now().timestamp_millis();
            match lpdrop_jobs::schedule::enqueue_refetch(&queue, &target, now, i64::MAX).await? {
                Some((id, waiting)) => outln!(
                    "Enqueued refetch job {id}: {waiting} conversations of account {account_id} \
                     that were open are read again by id"
                ),
                None => outln!(
                    "Nothing to refetch for account {account_id}: no open conversation waits, \
                     or a refetch job is pending already"
                ),
            }
            Ok(())
        }
    }
}

async fn add(queue: &Queue, args: AddArgs) -> Result<()> {
    let window = Window::parse(&args.from, &args.to)?;
    let step = args
        .split
        .as_deref()
        .map(|s| parse_duration_ms(s, "--split"))
        .transpose()?;
    let dest = Destination::for_job(&args.out)?;
    let source = args.source;
    let windows = split(window.from_ms(), window.to_ms(), step);
    let specs: Vec<JobSpec> = windows
        .iter()
        .map(|&(from, to)| JobSpec {
            account_id: args.account_id.clone(),
            source,
            window_from_ms: from,
            window_to_ms: to,
            skill_ids: args.skills.clone(),
            dest: dest.clone(),
            max_attempts: args.max_attempts,
            origin: "add".into(),
        })
        .collect();
    let ids = queue.add(&specs).await?;
    outln!(
        "Enqueued {} job{} for account {}, {source}, {window}, into {dest}",
        ids.len(),
        if ids.len() == 1 { "" } else { "s" },
        args.account_id
    );
    for (id, (from, to)) in ids.iter().zip(&windows).take(20) {
        outln!("  job {id:<6} [{}, {})", fmt_ms(*from), fmt_ms(*to));
    }
    if ids.len() > 20 {
        outln!(
            "  ... up to job {} (lpdrop jobs list)",
            ids.last().expect("non-empty")
        );
    }
    outln!("Run them with: lpdrop worker (or lpdrop worker --once)");
    Ok(())
}

fn opt_ms(ms: Option<i64>) -> serde_json::Value {
    ms.map_or(serde_json::Value::Null, |m| fmt_ms(m).into())
}

/// A job as JSON: every stored field, plus the times in RFC 3339.
pub fn job_json(job: &Job) -> serde_json::Value {
    let mut v = serde_json::to_value(job).expect("a job serialises");
    let o = v.as_object_mut().expect("an object");
    o.insert("window_from".into(), fmt_ms(job.spec.window_from_ms).into());
    o.insert("window_to".into(), fmt_ms(job.spec.window_to_ms).into());
    o.insert("created_at".into(), fmt_ms(job.created_at_ms).into());
    o.insert("updated_at".into(), fmt_ms(job.updated_at_ms).into());
    o.insert("started_at".into(), opt_ms(job.started_at_ms));
    o.insert("finished_at".into(), opt_ms(job.finished_at_ms));
    o.insert("uploaded_at".into(), opt_ms(job.uploaded_at_ms));
    v
}

/// `2026-03-01 00:00` style, or with seconds when they are not zero.
fn short_time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) if ms % 60_000 == 0 => t.format("%Y-%m-%d %H:%M").to_string(),
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => ms.to_string(),
    }
}

fn window_text(job: &Job) -> String {
    let (from, to) = (
        short_time(job.spec.window_from_ms),
        short_time(job.spec.window_to_ms),
    );
    // Same day: print the day once.
    match (from.split_once(' '), to.split_once(' ')) {
        (Some((d1, _)), Some((d2, t2))) if d1 == d2 => format!("{from} → {t2}"),
        _ => format!("{from} → {to}"),
    }
}

fn note(job: &Job) -> String {
    match job.state {
        JobState::Failed | JobState::Dead => job
            .last_error
            .as_deref()
            .map(|e| e.lines().next().unwrap_or(e).chars().take(70).collect())
            .unwrap_or_default(),
        JobState::Running | JobState::Finished => {
            format!("on {}", job.lease_owner.as_deref().unwrap_or("?"))
        }
        JobState::Uploaded => {
            let drop = job
                .drop
                .as_ref()
                .map(|d| format!("drop {}", d.id))
                .unwrap_or_default();
            if job.catalog_pending.is_some() {
                format!("{drop}; catalog registration pending")
            } else {
                drop
            }
        }
        _ => String::new(),
    }
}

/// The readable table of `jobs list`.
pub fn table(jobs: &[Job]) -> String {
    let header = [
        "ID",
        "STATE",
        "SOURCE",
        "ACCOUNT",
        "WINDOW (UTC)",
        "TRIES",
        "CONVERSATIONS",
        "NOTE",
    ];
    let rows: Vec<[String; 8]> = jobs
        .iter()
        .map(|j| {
            [
                j.id.to_string(),
                j.state.to_string(),
                j.spec.source.to_string(),
                j.spec.account_id.clone(),
                window_text(j),
                format!("{}/{}", j.attempts, j.spec.max_attempts),
                j.counts
                    .map(|c| c.conversations.to_string())
                    .unwrap_or_else(|| "-".into()),
                note(j),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    if jobs.is_empty() {
        out.push_str("(no jobs)\n");
    }
    out
}

async fn show(queue: &Queue, id: i64, json: bool) -> Result<()> {
    let job = queue.get(id).await?;
    let attempts = queue.attempts(id).await?;
    let open = queue.open_conversations_of(id).await?;
    if json {
        let mut v = job_json(&job);
        v["attempt_history"] = serde_json::to_value(&attempts)?;
        v["open_conversation_ids"] = serde_json::to_value(&open)?;
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    outln!("job {}", job.id);
    outln!("  state          {}", job.state);
    outln!("  account        {}", job.spec.account_id);
    outln!("  source         {}", job.spec.source);
    outln!(
        "  window         [{}, {})",
        fmt_ms(job.spec.window_from_ms),
        fmt_ms(job.spec.window_to_ms)
    );
    if !job.spec.skill_ids.is_empty() {
        let skills: Vec<String> = job.spec.skill_ids.iter().map(i64::to_string).collect();
        outln!("  skills         {}", skills.join(", "));
    }
    outln!("  destination    {}", job.spec.dest);
    outln!("  origin         {}", job.spec.origin);
    outln!(
        "  attempts       {} of {}",
        job.attempts,
        job.spec.max_attempts
    );
    if let Some(owner) = &job.lease_owner {
        let until = job
            .lease_expires_ms
            .map(|t| format!(", lease until {}", fmt_ms(t)))
            .unwrap_or_default();
        outln!("  worker         {owner}{until}");
    }
    if job.state == JobState::Failed {
        outln!("  next try       {}", fmt_ms(job.not_before_ms));
    }
    if let Some(d) = &job.drop {
        outln!(
            "  drop           {} (created {})",
            d.id,
            fmt_ms(d.created_at_ms)
        );
        outln!("  drop root      {}", d.root);
    }
    if let Some(why) = &job.catalog_pending {
        outln!("  catalog        registration pending (the drop is committed): {why}");
        outln!(
            "                 complete it with: lpdrop catalog sync PREFIX --glue-database NAME"
        );
    }
    outln!("  created        {}", fmt_ms(job.created_at_ms));
    for (label, t) in [
        ("started", job.started_at_ms),
        ("finished", job.finished_at_ms),
        ("uploaded", job.uploaded_at_ms),
    ] {
        if let Some(t) = t {
            outln!("  {label:<14} {}", fmt_ms(t));
        }
    }
    if let Some(c) = job.counts {
        outln!(
            "  written        {} conversations ({} still open), {} rows, {} files, {:.1} MB",
            c.conversations,
            c.open_conversations,
            c.rows,
            c.files,
            c.bytes as f64 / 1e6
        );
    }
    if !open.is_empty() {
        outln!("  open conversations to fetch again: {}", open.len());
    }
    if let Some(e) = &job.last_error {
        outln!("  last error     {e}");
    }
    if !attempts.is_empty() {
        outln!("  history");
        for a in &attempts {
            let took = a
                .ended_at_ms
                .map(|e| format!(" in {:.1} s", (e - a.started_at_ms) as f64 / 1000.0))
                .unwrap_or_default();
            outln!(
                "    #{} {} on {} at {}{took}{}",
                a.attempt,
                a.outcome.as_deref().unwrap_or("running"),
                a.worker,
                fmt_ms(a.started_at_ms),
                a.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}
