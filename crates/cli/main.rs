//! `lpdrop`: LivePerson conversations to relational parquet drops.
//!
//! This binary is flags and wiring only; the work happens in the library crates.
//! Exit codes: 0 success, 1 the command failed (message on stderr), 2 bad usage.

mod catalog_cmd;
mod config;
mod config_cmd;
mod drop_cmds;
mod emulator_webhooks;
mod jobs_cmd;
mod listen;
mod logging;
mod out;
mod parquet_args;
mod progress;
mod s3_args;
mod schedule;
mod worker;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use lpdrop_drop::Destination;
use lpdrop_emulator::{Emulator, EmulatorConfig};
use lpdrop_liveperson::client::DEFAULT_DOMAIN;
use lpdrop_liveperson::oauth1::ApiKey;
use lpdrop_liveperson::{ClientConfig, SearchFilters, Window};
use lpdrop_pipeline::OutputSettings;
use lpdrop_settings::{Duration, Source};
use lpdrop_tables::ColumnMapping;

use crate::drop_cmds::print_summary;
use crate::out::{out, outln};
use crate::s3_args::S3Args;

#[derive(Parser)]
#[command(
    name = "lpdrop",
    version,
    about = "LivePerson conversations to relational parquet drops on S3 or a local folder",
    long_about = None,
    after_help = "Settings: flags > environment (LPDROP_*, LP_*) > --config FILE (TOML) > defaults.\n\
                  Exit codes: 0 success; 1 the command failed (message on stderr, nothing half \
                  published); 2 bad usage.\n\
                  Example: lpdrop demo --out ./lpdrop-demo"
)]
struct Cli {
    /// A TOML file of settings: top-level keys are LPDROP_* variables without the prefix
    /// (queue = "..."), [liveperson] keys are LP_* variables (app_key = "..."), [s3] keys are
    /// LPDROP_S3_*, [aws] keys AWS_*. Flags and the environment win over it; unknown keys are
    /// errors. Example: --config /etc/lpdrop/lpdrop.toml
    #[arg(long, global = true, env = "LPDROP_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Log format on stderr: text for people, json (one object per line) for log collectors.
    #[arg(long, global = true, env = "LPDROP_LOG_FORMAT", value_enum, default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,
    /// Only warnings and errors on stderr, and no progress bar.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More detail on stderr (-v debug, -vv trace).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// The job queue: a SQLite file (created when missing) or postgres://user@host/db (TLS
    /// required unless the host is loopback). Used by jobs, worker and schedule.
    #[arg(
        long,
        global = true,
        env = "LPDROP_QUEUE",
        hide_env_values = true,
        default_value = lpdrop_jobs::DEFAULT_QUEUE,
        value_name = "URL"
    )]
    queue: String,
    /// A TOML file of columns to add to root tables (by path, from SDE or contextData
    /// fields), rename or drop; used by demo, sync, convert, worker and schema. See the
    /// README, "Custom columns". Example: --column-mapping examples/column-mapping.toml
    #[arg(
        long,
        global = true,
        env = "LPDROP_COLUMN_MAPPING",
        value_name = "FILE"
    )]
    column_mapping: Option<std::path::PathBuf>,
    #[command(flatten)]
    parquet: parquet_args::ParquetArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the built-in LivePerson emulator, sync one day from it, and publish one drop.
    /// No credentials and no network needed.
    ///
    /// Example: lpdrop demo --out ./lpdrop-demo
    Demo {
        /// Where to publish the drop: a local folder or s3://bucket/prefix.
        #[arg(long, value_name = "DEST")]
        out: String,
        /// Synthetic conversations per day in the emulator (the demo syncs one day).
        #[arg(long, default_value_t = 2000, value_name = "N")]
        per_day: u32,
        #[command(flatten)]
        s3: S3Args,
        #[command(flatten)]
        glue: catalog_cmd::GlueArgs,
    },
    /// Sync one window of conversations now and publish it as one drop.
    ///
    /// Credentials come from LP_ACCOUNT_ID, LP_APP_KEY, LP_APP_SECRET, LP_ACCESS_TOKEN and
    /// LP_ACCESS_TOKEN_SECRET; LP_DOMAIN points at the Domain API (an emulator as
    /// http://127.0.0.1:PORT).
    ///
    /// Example: lpdrop sync --from 2026-11-20 --to 2026-11-21 --out ./drops
    Sync {
        /// Window start (inclusive): RFC 3339 or YYYY-MM-DD, UTC; conversation start time.
        #[arg(long, value_name = "T")]
        from: String,
        /// Window end (exclusive): RFC 3339 or YYYY-MM-DD, UTC.
        #[arg(long, value_name = "T")]
        to: String,
        /// Where to publish the drop: a local folder or s3://bucket/prefix.
        #[arg(long, env = "LPDROP_OUT", value_name = "DEST")]
        out: String,
        /// Which API to read: messaging (conversations), chat (Engagement History) or dimensions
        /// (agents, skills, agent groups: a snapshot; the window only labels the drop).
        #[arg(long, value_enum, default_value_t = Source::Messaging)]
        source: Source,
        /// Only conversations that held this skill (repeatable).
        #[arg(long = "skill", value_name = "ID")]
        skills: Vec<i64>,
        #[command(flatten)]
        lp: Box<LpArgs>,
        #[command(flatten)]
        s3: S3Args,
        #[command(flatten)]
        glue: catalog_cmd::GlueArgs,
    },
    /// Check a drop against its manifest: marker, manifest, every file's size, SHA-256 and
    /// parquet row count, and no unlisted file. Exits 1 and lists the problems otherwise.
    ///
    /// Example: lpdrop verify s3://bucket/folder/2026/11/21/09/2026-11-21-09-30-05-<uuid>
    Verify {
        /// The drop's folder, or its s3:// or az:// URI.
        #[arg(value_name = "DROP")]
        drop: String,
        #[command(flatten)]
        s3: S3Args,
    },
    /// Publish a committed drop again under another destination (a local drop to az:// or
    /// s3://, S3 to Azure, one prefix to another): the same drop id and files, each checked
    /// against the manifest before upload, then the manifest and, last, upload.complete.
    ///
    /// Example: lpdrop copy ./out/2026/11/21/09/2026-11-21-09-30-05-<uuid> --out az://drops/lp
    Copy {
        /// The committed drop: its folder, or its s3:// or az:// URI.
        #[arg(value_name = "DROP")]
        drop: String,
        /// Where to publish it: a local folder, s3://bucket/prefix or az://container/prefix.
        /// The drop keeps its dated folder (YYYY/MM/DD/HH/<timestamp>-<id>) under it.
        #[arg(long, value_name = "DEST")]
        out: String,
        #[command(flatten)]
        s3: S3Args,
    },
    /// Remove drops that were never committed (no upload.complete) and stale multipart
    /// uploads, older than a grace period.
    ///
    /// Example: lpdrop gc s3://bucket/folder --older-than 24h --dry-run
    Gc {
        /// A local folder, s3://bucket/prefix or az://container/prefix that drops are
        /// published under.
        #[arg(value_name = "PREFIX")]
        prefix: String,
        /// Grace period: only older leftovers are removed (e.g. 90s, 30m, 24h, 7d).
        #[arg(long, value_name = "DURATION")]
        older_than: Duration,
        /// List what would be removed without removing it.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        s3: S3Args,
    },
    /// Manage the job queue: add jobs (one per window), list, show, cancel, retry.
    ///
    /// Example: lpdrop jobs add --from 2026-11-01 --to 2026-11-21 --split 1d --out ./drops
    Jobs {
        #[command(subcommand)]
        command: jobs_cmd::JobsCommand,
    },
    /// Lease jobs from the queue and run them, each into exactly one committed drop. Any number
    /// of workers (processes, machines with a Postgres queue) can share one queue.
    ///
    /// Credentials come from LP_APP_KEY, LP_APP_SECRET, LP_ACCESS_TOKEN and
    /// LP_ACCESS_TOKEN_SECRET (never from the queue); the account comes from each job.
    ///
    /// Example: lpdrop worker --concurrency 4 --once
    Worker(Box<worker::WorkerArgs>),
    /// Receive LivePerson Connector API webhooks and publish them as drops within minutes:
    /// every accepted notification is durable in the spool before it is acknowledged, and
    /// each message, status and conversation change lands in exactly one drop.
    ///
    /// Example: lpdrop listen --addr 0.0.0.0:8443 --out s3://bucket/webhooks
    Listen(Box<listen::ListenArgs>),
    /// Enqueue the next windows after the watermark of an account and source, up to
    /// now - delay. Run it every few minutes from cron or a Kubernetes CronJob.
    ///
    /// Example: lpdrop schedule --every 1h --delay 10m --start 2026-01-01 --out s3://bucket/folder
    Schedule(Box<schedule::ScheduleArgs>),
    /// Configuration: `config check` prints the effective settings (secrets redacted) and tests
    /// the queue, the destination and the LivePerson key.
    ///
    /// Example: lpdrop --config /etc/lpdrop/lpdrop.toml config check
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print a shell completion script.
    ///
    /// Example: lpdrop completions bash > /etc/bash_completion.d/lpdrop
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Serve the emulated LivePerson APIs on 127.0.0.1 until interrupted.
    ///
    /// Example: lpdrop emulator --port 8080
    Emulator {
        #[command(subcommand)]
        action: Option<EmulatorAction>,
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        #[command(flatten)]
        data: EmulatorData,
        /// Faults to inject, e.g. "429=0.05,500=0.1,truncate=0.01,partial=0.01,seed=7"; also
        /// "rps=50,latency=20ms" for a request-rate limit (see the emulator crate's docs).
        #[arg(long, default_value = "none", value_name = "SPEC")]
        faults: lpdrop_emulator::Faults,
        /// Serve LivePerson's own example payloads as they are instead of synthetic data.
        #[arg(long)]
        vendor_fixtures: bool,
        /// The API key the emulator accepts, as APP_KEY:APP_SECRET:ACCESS_TOKEN:TOKEN_SECRET
        /// (default: all four "emulator"), e.g. to test that secrets stay out of logs.
        #[arg(
            long,
            env = "LPDROP_EMULATOR_API_KEY",
            hide_env_values = true,
            value_name = "KEY"
        )]
        api_key: Option<String>,
        // Boxed: the webhook flags would make every other command's value as large.
        #[command(flatten)]
        webhooks: Box<emulator_webhooks::WebhookArgs>,
    },
    /// Build a drop from saved Messaging Interactions search pages, as teams already keep
    /// them: a folder of one JSON response per file (read in name order), or a file, pipe or
    /// stdin of one response per line.
    ///
    /// Example: lpdrop convert --input ./saved-pages --out ./drops
    Convert {
        /// Folder of saved search responses (*.json), or a file of one response per line
        /// (JSON lines), or - for stdin.
        #[arg(long, value_name = "DIR|FILE|-")]
        input: std::path::PathBuf,
        /// Where to publish the drop: a local folder or s3://bucket/prefix.
        #[arg(long, env = "LPDROP_OUT", value_name = "DEST")]
        out: String,
        /// Account of the pages (default: the first record's brandId).
        #[arg(long, env = "LP_ACCOUNT_ID", value_name = "ID")]
        account_id: Option<String>,
        /// Keep only conversations that started at or after this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long, value_name = "T", requires = "to")]
        from: Option<String>,
        /// Keep only conversations that started before this time.
        #[arg(long, value_name = "T", requires = "from")]
        to: Option<String>,
        #[command(flatten)]
        s3: S3Args,
        #[command(flatten)]
        glue: catalog_cmd::GlueArgs,
    },
    /// The AWS Glue Data Catalog: `catalog sync` registers committed drops that are not
    /// registered yet, so that Athena queries them.
    ///
    /// Example: lpdrop catalog sync s3://bucket/folder --glue-database lpdrop
    Catalog {
        #[command(subcommand)]
        command: catalog_cmd::CatalogCommand,
    },
    /// Print the data dictionary or the machine-readable table definitions.
    ///
    /// Example: lpdrop schema --format markdown
    Schema {
        #[arg(long, value_enum, default_value_t = SchemaFormat::Markdown)]
        format: SchemaFormat,
    },
}

/// `lpdrop schema --format`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SchemaFormat {
    /// A data dictionary for people.
    Markdown,
    /// The machine-readable definitions, as in `schemas/`.
    Json,
    /// Athena (Glue) external tables partitioned by drop, and `*_latest` views.
    Athena,
    /// Spark SQL tables over the drops (`CREATE TABLE ... USING parquet`), and `*_latest` views.
    Spark,
    /// DuckDB views over `read_parquet` globs, and `*_latest` views.
    Duckdb,
}

impl From<SchemaFormat> for lpdrop_tables::ddl::SchemaFormat {
    fn from(f: SchemaFormat) -> Self {
        use lpdrop_tables::ddl::SchemaFormat as F;
        match f {
            SchemaFormat::Markdown => F::Markdown,
            SchemaFormat::Json => F::Json,
            SchemaFormat::Athena => F::Athena,
            SchemaFormat::Spark => F::Spark,
            SchemaFormat::Duckdb => F::Duckdb,
        }
    }
}

/// The emulator's synthetic data set.
#[derive(clap::Args)]
struct EmulatorData {
    /// Seed of the synthetic data set.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Synthetic conversations per day.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    per_day: u32,
    /// Synthetic chats (Engagement History) per day.
    #[arg(long, default_value_t = 500, value_name = "N")]
    chats_per_day: u32,
}

impl EmulatorData {
    fn config(&self) -> EmulatorConfig {
        EmulatorConfig {
            seed: self.seed,
            per_day: self.per_day,
            chats_per_day: self.chats_per_day,
            ..EmulatorConfig::default()
        }
    }
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration and test every connection it names; exits 1 when
    /// one fails.
    ///
    /// Example: LPDROP_OUT=s3://bucket/folder lpdrop config check
    Check(Box<config_cmd::CheckArgs>),
}

#[derive(Subcommand)]
enum EmulatorAction {
    /// Write saved search pages of the synthetic data set (the input of `lpdrop convert`).
    ///
    /// Example: lpdrop emulator dump --conversations 100000 --out ./saved-pages
    Dump {
        /// How many conversations, from the start of the data set.
        #[arg(long, value_name = "N")]
        conversations: u64,
        /// Folder to write the pages to.
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
        /// Conversations per page (LivePerson pages hold at most 100).
        #[arg(long, default_value_t = 100, value_name = "N")]
        page_size: u64,
        #[command(flatten)]
        data: EmulatorData,
    },
}

/// LivePerson account, endpoint and API key (OAuth 1.0a).
#[derive(clap::Args)]
struct LpArgs {
    #[arg(long, env = "LP_ACCOUNT_ID", value_name = "ID")]
    account_id: String,
    #[command(flatten)]
    keys: LpKeys,
}

/// LivePerson endpoint and API key. Secrets come from the environment (or flags) only: they are
/// never stored in the queue, and `--help` does not show their values.
#[derive(clap::Args, Clone)]
pub(crate) struct LpKeys {
    /// Domain API base URL; https, or http on loopback only.
    #[arg(long, env = "LP_DOMAIN", default_value = DEFAULT_DOMAIN, value_name = "URL")]
    domain: String,
    #[arg(long, env = "LP_APP_KEY", hide_env_values = true)]
    app_key: String,
    #[arg(long, env = "LP_APP_SECRET", hide_env_values = true)]
    app_secret: String,
    #[arg(long, env = "LP_ACCESS_TOKEN", hide_env_values = true)]
    access_token: String,
    #[arg(long, env = "LP_ACCESS_TOKEN_SECRET", hide_env_values = true)]
    access_token_secret: String,
    #[command(flatten)]
    api: ApiTuning,
}

/// How hard lpdrop may push the LivePerson APIs, and how it retries. The defaults follow
/// LivePerson's guidance; several workers sharing one account should split `--api-max-rps`.
#[derive(clap::Args, Clone)]
pub(crate) struct ApiTuning {
    /// Requests in flight at once per process.
    #[arg(
        long,
        env = "LPDROP_API_CONCURRENCY",
        default_value_t = 4,
        value_name = "N"
    )]
    api_concurrency: usize,
    /// Requests per second per process at most, e.g. 10. Without it the pace is found from the
    /// API's 429s.
    #[arg(long, env = "LPDROP_API_MAX_RPS", value_name = "RATE")]
    api_max_rps: Option<f64>,
    /// Attempts per request, the first included.
    #[arg(
        long,
        env = "LPDROP_API_ATTEMPTS",
        default_value_t = 6,
        value_name = "N"
    )]
    api_attempts: u32,
    /// First wait after a 429 (doubles per attempt; at least what Retry-After says).
    #[arg(
        long,
        env = "LPDROP_API_THROTTLE_DELAY",
        default_value = "1s",
        value_name = "DURATION"
    )]
    api_throttle_delay: Duration,
    /// Wait after a 5xx or a broken connection (times the attempt number, then doubling).
    #[arg(
        long,
        env = "LPDROP_API_RETRY_DELAY",
        default_value = "5s",
        value_name = "DURATION"
    )]
    api_retry_delay: Duration,
    /// Time limit of one request, answer included.
    #[arg(
        long,
        env = "LPDROP_API_TIMEOUT",
        default_value = "120s",
        value_name = "DURATION"
    )]
    api_timeout: Duration,
}

impl ApiTuning {
    fn apply(&self, config: &mut ClientConfig) -> Result<()> {
        if self.api_concurrency == 0 || self.api_attempts == 0 {
            anyhow::bail!("--api-concurrency and --api-attempts must be at least 1");
        }
        if let Some(rps) = self.api_max_rps
            && !(rps > 0.0 && rps.is_finite())
        {
            anyhow::bail!("--api-max-rps must be a positive number, not {rps}");
        }
        config.concurrency = self.api_concurrency;
        config.max_requests_per_second = self.api_max_rps;
        config.retry.max_attempts = self.api_attempts;
        config.retry.throttle_delay = self.api_throttle_delay.get();
        config.retry.server_error_delay = self.api_retry_delay.get();
        config.request_timeout = self.api_timeout.get();
        Ok(())
    }
}

impl LpKeys {
    pub(crate) fn client_config(&self, account_id: &str) -> Result<ClientConfig> {
        let mut config = ClientConfig::new(
            self.domain.clone(),
            account_id,
            ApiKey {
                app_key: self.app_key.clone(),
                app_secret: self.app_secret.clone(),
                access_token: self.access_token.clone(),
                access_token_secret: self.access_token_secret.clone(),
            },
        );
        self.api.apply(&mut config)?;
        Ok(config)
    }
}

impl LpArgs {
    fn client_config(self) -> Result<ClientConfig> {
        self.keys.client_config(&self.account_id)
    }
}

fn main() -> ExitCode {
    // The configuration file goes into the environment before clap reads it (flags > env >
    // file), and before any thread exists.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let known = config::known_vars(&Cli::command());
    let applied = match config::path_from_args(&args) {
        Some(path) => match config::apply(&path, &known) {
            Ok(applied) => applied,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        },
        None => config::Applied::default(),
    };
    let cli = Cli::parse_from(args);
    logging::init(cli.log_format, cli.quiet, cli.verbose);
    // A bad mapping is bad usage: refused before anything runs.
    let mapping = match cli.column_mapping.as_deref().map(ColumnMapping::load) {
        None => None,
        Some(Ok(mapping)) => Some(mapping),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let writer_options = match cli.parquet.writer_options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    crate::progress::set_quiet(cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let output = OutputSettings {
        column_mapping: mapping,
        writer: writer_options,
    };
    match runtime.block_on(run(cli, &applied, &known, output)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(
    cli: Cli,
    applied: &config::Applied,
    known: &[String],
    output: OutputSettings,
) -> Result<()> {
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check(args),
        } => config_cmd::check(&cli.queue, *args, applied, known).await,
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "lpdrop", &mut script);
            out!("{}", String::from_utf8_lossy(&script));
            Ok(())
        }
        Command::Jobs { command } => jobs_cmd::run(&cli.queue, command).await,
        Command::Worker(args) => worker::run(&cli.queue, *args, output).await,
        Command::Listen(args) => listen::run(&cli.queue, *args, output).await,
        Command::Schedule(args) => {
            schedule::run(&cli.queue, *args, output.column_mapping.as_deref()).await
        }
        Command::Demo {
            out,
            per_day,
            s3,
            glue,
        } => drop_cmds::demo(&out, per_day, s3, glue, output).await,
        Command::Catalog { command } => {
            catalog_cmd::run(&cli.queue, command, output.column_mapping.as_deref()).await
        }
        Command::Verify { drop, s3 } => drop_cmds::verify(&drop, &s3).await,
        Command::Copy { drop, out, s3 } => drop_cmds::copy(&drop, &out, &s3).await,
        Command::Gc {
            prefix,
            older_than,
            dry_run,
            s3,
        } => drop_cmds::gc(&prefix, older_than, dry_run, &s3).await,
        Command::Sync {
            from,
            to,
            out,
            source,
            skills,
            lp,
            s3,
            glue,
        } => {
            let report = drop_cmds::sync(
                (*lp).client_config()?,
                source,
                Window::parse(&from, &to)?,
                SearchFilters {
                    skill_ids: skills,
                    status: Vec::new(),
                },
                drop_cmds::PublishTo {
                    dest: &Destination::parse(&out)?,
                    s3: &s3,
                    glue: &glue,
                },
                output,
            )
            .await?;
            print_summary(&report);
            Ok(())
        }
        Command::Emulator {
            action:
                Some(EmulatorAction::Dump {
                    conversations,
                    out,
                    page_size,
                    data,
                }),
            ..
        } => dump_pages(conversations, &out, page_size, &data),
        Command::Emulator {
            action: None,
            port,
            data,
            faults,
            vendor_fixtures,
            api_key,
            webhooks,
        } => {
            let mut config = EmulatorConfig {
                faults,
                vendor_fixtures,
                ..data.config()
            };
            if let Some(key) = api_key {
                // Parsed here, not by clap: clap's error would repeat the secrets.
                config.api_key = key.parse().map_err(|e| anyhow::anyhow!("--api-key: {e}"))?;
            }
            serve_emulator(port, config, &webhooks).await
        }
        Command::Convert {
            input,
            out,
            account_id,
            from,
            to,
            s3,
            glue,
        } => {
            let window = match (from, to) {
                (Some(f), Some(t)) => Some(Window::parse(&f, &t)?),
                _ => None,
            };
            let report = drop_cmds::convert(
                &input,
                account_id,
                window,
                drop_cmds::PublishTo {
                    dest: &Destination::parse(&out)?,
                    s3: &s3,
                    glue: &glue,
                },
                output,
            )
            .await?;
            print_summary(&report);
            Ok(())
        }
        Command::Schema { format } => {
            out!(
                "{}",
                lpdrop_tables::ddl::render(format.into(), output.column_mapping.as_deref())
            );
            Ok(())
        }
    }
}

fn dump_pages(
    conversations: u64,
    out: &std::path::Path,
    page_size: u64,
    data: &EmulatorData,
) -> Result<()> {
    let started = std::time::Instant::now();
    let dataset = lpdrop_emulator::Dataset::new(&data.config());
    let (files, bytes) =
        lpdrop_emulator::dump::write_pages(&dataset, 0, conversations, page_size, out)
            .with_context(|| format!("cannot write pages to {}", out.display()))?;
    outln!(
        "Wrote {conversations} conversations in {files} pages ({:.1} MB) to {} in {:.1} s",
        bytes as f64 / 1e6,
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn serve_emulator(
    port: u16,
    config: EmulatorConfig,
    webhooks: &emulator_webhooks::WebhookArgs,
) -> Result<()> {
    let sender = webhooks.sender_config(&config)?;
    let dataset = lpdrop_emulator::Dataset::new(&config);
    // A bounded webhook run keeps stdout for its one summary line.
    let to_stderr = webhooks.summary_only_on_stdout();
    let say = |line: String| {
        if to_stderr {
            eprintln!("{line}");
        } else {
            outln!("{line}");
        }
    };
    let account = config.account_id.clone();
    let emulator = Emulator::start(config, SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    say(format!(
        "LivePerson emulator on {} (account {account}, every key \"emulator\")",
        emulator.domain_url()
    ));
    say("Sync from it with:".into());
    say(format!(
        "  export LP_DOMAIN={} LP_ACCOUNT_ID={account}",
        emulator.domain_url()
    ));
    say(
        "  export LP_APP_KEY=emulator LP_APP_SECRET=emulator LP_ACCESS_TOKEN=emulator LP_ACCESS_TOKEN_SECRET=emulator"
            .into(),
    );
    say("  lpdrop sync --from 2026-11-20 --to 2026-11-21 --out ./drops".into());
    say("Press Ctrl-C to stop.".into());
    let served = emulator_webhooks::run(dataset, sender).await;
    // What it served, for whoever measures a client against it (benches/run.py reads it).
    let stats = emulator.stats();
    say(format!(
        "Served {} data requests: {} refused over the rps limit, {} injected 429s, {} injected 5xx",
        stats.requests, stats.rate_limited, stats.throttled, stats.server_errors
    ));
    emulator.shutdown().await;
    served
}
