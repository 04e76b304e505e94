//! `lpdrop listen`: flags and printing around `lpdrop_listener`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use lpdrop_drop::{Destination, open_to_write};
use lpdrop_listener::{ListenSettings, Listener, Output, Published, Refetch, Secret};
use lpdrop_settings::Duration;
use tokio::sync::mpsc;

use crate::catalog_cmd::GlueArgs;
use crate::out::outln;
use crate::s3_args::S3Args;

#[derive(clap::Args)]
pub struct ListenArgs {
    /// Address to serve the webhook endpoint on (POST on / and any path below it). Plain
    /// HTTP: put it behind a load balancer or ingress that terminates TLS (LivePerson calls
    /// https:// endpoints only).
    #[arg(
        long,
        env = "LPDROP_LISTEN_ADDR",
        default_value = "127.0.0.1:8443",
        value_name = "HOST:PORT"
    )]
    addr: SocketAddr,
    /// Where to publish drops: a local folder or s3://bucket/prefix.
    #[arg(long, env = "LPDROP_OUT", value_name = "DEST")]
    out: String,
    /// The account (brand) whose notifications are accepted.
    #[arg(long, env = "LP_ACCOUNT_ID", value_name = "ID")]
    account_id: String,
    /// The app installation's client id (X-LivePerson-Client-Id must match when sent).
    #[arg(long, env = "LP_WEBHOOK_CLIENT_ID", value_name = "ID")]
    webhook_client_id: String,
    /// The app installation's client secret: the key of X-LivePerson-Signature.
    #[arg(
        long,
        env = "LP_WEBHOOK_CLIENT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    webhook_client_secret: String,
    /// Folder where accepted notifications wait, durably, for the next drop.
    #[arg(
        long,
        env = "LPDROP_SPOOL",
        default_value = "./lpdrop-spool",
        value_name = "DIR"
    )]
    spool: PathBuf,
    /// Publish what the spool holds at least this often.
    #[arg(
        long,
        env = "LPDROP_ROLL_EVERY",
        default_value = "5m",
        value_name = "DURATION"
    )]
    roll_every: Duration,
    /// Publish as soon as the spool holds this many notifications.
    #[arg(
        long,
        env = "LPDROP_ROLL_EVENTS",
        default_value_t = 100_000,
        value_name = "N"
    )]
    roll_events: u64,
    /// Serve HTTPS directly with this PEM certificate chain (with --tls-key), when no load
    /// balancer or ingress terminates TLS in front of the listener.
    #[arg(
        long,
        env = "LPDROP_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        env = "LPDROP_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// Keep only conversations routed to this skill (repeat for several). A conversation's
    /// skill comes from its conversation-change notifications; its other notifications wait
    /// in the spool until it is known (at most --skill-hold).
    #[arg(long = "skill", value_name = "ID")]
    skills: Vec<String>,
    /// How long a notification waits for its conversation's skill before it is left out.
    #[arg(
        long,
        default_value = "1h",
        value_name = "DURATION",
        requires = "skills"
    )]
    skill_hold: Duration,
    /// Re-read each conversation the webhooks saw close from Messaging Interactions (the
    /// record of truth, should a webhook have been lost), by refetch jobs in the --queue that
    /// `lpdrop worker` runs into messaging drops at --out.
    #[arg(long)]
    refetch_closed: bool,
    /// Serve /metrics, /healthz and /readyz on this address.
    #[arg(long, env = "LPDROP_METRICS_ADDR", value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
    #[command(flatten)]
    s3: S3Args,
    #[command(flatten)]
    glue: GlueArgs,
}

pub async fn run(
    queue_url: &str,
    args: ListenArgs,
    output: lpdrop_pipeline::OutputSettings,
) -> Result<()> {
    anyhow::ensure!(
        !args.roll_every.get().is_zero(),
        "--roll-every must be longer than zero"
    );
    anyhow::ensure!(args.roll_events > 0, "--roll-events must be at least 1");
    anyhow::ensure!(
        !args.webhook_client_secret.is_empty(),
        "LP_WEBHOOK_CLIENT_SECRET is empty: set the app installation's client secret"
    );
    let dest = Destination::parse(&args.out)?;
    let database = args.glue.check(&dest)?.map(str::to_string);
    let (store, _) = open_to_write(&dest, &args.s3.settings()).await?;
    let health = match args.metrics_addr {
        Some(addr) => Some(serve_metrics(addr, &args).await?),
        None => None,
    };
    let refetch = if args.refetch_closed {
        let queue = lpdrop_jobs::Queue::open(queue_url)
            .await
            .context("--refetch-closed: opening the job queue")?;
        Some(Refetch {
            queue: std::sync::Arc::new(queue),
            dest: Destination::for_job(&args.out)?,
            max_attempts: lpdrop_jobs::DEFAULT_MAX_ATTEMPTS,
        })
    } else {
        None
    };
    let settings = ListenSettings {
        addr: args.addr,
        account_id: args.account_id.clone(),
        client_id: args.webhook_client_id.clone(),
        client_secret: Secret::new(args.webhook_client_secret.clone()),
        spool: args.spool.clone(),
        roll_every: args.roll_every.get(),
        roll_events: args.roll_events,
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
        refetch,
        health,
        skills: (!args.skills.is_empty()).then(|| lpdrop_listener::skills::SkillFilter {
            skills: args.skills.iter().cloned().collect(),
            hold: args.skill_hold.get(),
        }),
    };
    let (tx, mut published) = mpsc::unbounded_channel();
    let listener = Listener::start(
        settings,
        Output {
            store,
            prefix: dest.prefix(),
            settings: output.clone(),
        },
        if args.skills.is_empty() {
            serde_json::json!({})
        } else {
            serde_json::json!({ "skill_ids": args.skills })
        },
        tx,
    )
    .await?;
    let scheme = if args.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    outln!(
        "Listening for LivePerson webhooks of account {} on {scheme}://{} (spool {}, a drop every {} or {} notifications) -> {}",
        args.account_id,
        listener.local_addr(),
        args.spool.display(),
        args.roll_every,
        args.roll_events,
        args.out
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    let signal = loop {
        tokio::select! {
            _ = term.recv() => break "SIGTERM",
            _ = tokio::signal::ctrl_c() => break "SIGINT",
            Some(event) = published.recv() => {
                report(event, database.as_deref(), &dest, &args.s3, &output).await;
            }
        }
    };
    outln!("{signal}: publishing what the spool holds, then stopping");
    listener.shutdown().await?;
    while let Ok(event) = published.try_recv() {
        report(event, database.as_deref(), &dest, &args.s3, &output).await;
    }
    Ok(())
}

/// One line per drop, and its catalog registration with `--glue-database`.
async fn report(
    event: Published,
    database: Option<&str>,
    dest: &Destination,
    s3: &S3Args,
    output: &lpdrop_pipeline::OutputSettings,
) {
    match event {
        Published::Drop(report) => {
            let m = &report.drop.manifest;
            let rows = |name: &str| {
                m.tables
                    .iter()
                    .find(|t| t.name == name)
                    .map_or(0, |t| t.rows)
            };
            outln!(
                "Committed drop {}: {} messages, {} statuses, {} conversation changes, {} events, {} quarantined, {} redelivered rows left out [{}, {})",
                report.drop.location,
                rows("webhook_messages"),
                rows("webhook_message_statuses"),
                rows("webhook_conversations"),
                rows("webhook_events"),
                m.quarantine.records,
                report.stats.duplicates,
                m.source.window_from,
                m.source.window_to,
            );
            if let Some(db) = database {
                let outcome = lpdrop_catalog::register_or_pending(
                    &s3.settings().s3,
                    db,
                    dest,
                    m,
                    output.column_mapping.as_deref(),
                )
                .await;
                crate::catalog_cmd::print_outcome(db, &outcome);
            }
        }
        Published::Failed(error) => {
            outln!("A drop could not be published (the spool keeps it; retrying): {error}");
        }
    }
}

/// Serves /metrics, /healthz and /readyz; the health the listener keeps current.
async fn serve_metrics(addr: SocketAddr, args: &ListenArgs) -> Result<lpdrop_metrics::HealthState> {
    lpdrop_metrics::describe_all();
    // Live while the publisher's loop turns: it wakes at least every --roll-every, and a roll
    // of a full spool may take minutes on a slow store.
    let stale_after = args.roll_every.get() * 3 + std::time::Duration::from_secs(600);
    let health = lpdrop_metrics::HealthState::new(stale_after);
    // Ready once listening (readiness reads "the queue answered": the listener has no queue
    // it depends on); not ready once draining.
    health.queue_ok(true);
    health.beat();
    let bound = lpdrop_metrics::serve(addr, health.clone())
        .await
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
    tracing::info!(%bound, "metrics served");
    Ok(health)
}
