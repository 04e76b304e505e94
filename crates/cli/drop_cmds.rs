//! The commands that publish or inspect drops (`sync`, `demo`, `convert`, `verify`, `gc`):
//! flags into a record source, a plan and a store; then the summary.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use lpdrop_drop::{Destination, open, open_to_write};
use lpdrop_emulator::{Emulator, EmulatorConfig};
use lpdrop_liveperson::{Client, ClientConfig, SearchFilters, Window};
use lpdrop_pipeline::{
    AccountConfig, DropPlan, DropReport, OutputSettings, PlannedDrop, RecordSource, SavedPages,
    Search, run_drop,
};
use lpdrop_tables::Source;

use crate::catalog_cmd::{GlueArgs, print_outcome};
use crate::out::outln;
use crate::progress::TerminalProgress;
use crate::s3_args::S3Args;

/// A committed drop, and how its catalog registration went (with `--glue-database`).
pub struct Published {
    pub report: DropReport,
    /// The Glue database and how the registration went.
    pub catalog: Option<(String, lpdrop_catalog::Outcome)>,
}

/// Where a drop goes: the destination, its store settings, and the catalog to register it in.
#[derive(Clone, Copy)]
pub struct PublishTo<'a> {
    pub dest: &'a Destination,
    pub s3: &'a S3Args,
    pub glue: &'a GlueArgs,
}

/// Publishes the records of `source` as one new drop at `dest`, then registers it in the Glue
/// catalog when asked: only once committed, and a failed registration leaves it committed.
async fn publish<S: RecordSource>(
    source: S,
    to: PublishTo<'_>,
    output: OutputSettings,
) -> Result<Published> {
    let PublishTo { dest, s3, glue } = to;
    let database = glue.check(dest)?;
    let (store, _) = open_to_write(dest, &s3.settings()).await?;
    let mapping = output.column_mapping.clone();
    let plan = DropPlan {
        drop: PlannedDrop::new(),
        prefix: dest.prefix(),
        job: None,
        output,
    };
    let report = run_drop(
        source,
        plan,
        store,
        None,
        Arc::new(TerminalProgress::default()),
    )
    .await?;
    let catalog = match database {
        Some(db) => {
            let manifest = &report.drop.manifest;
            let settings = s3.settings().s3;
            let outcome = lpdrop_catalog::register_or_pending(
                &settings,
                db,
                dest,
                manifest,
                mapping.as_deref(),
            )
            .await;
            Some((db.to_string(), outcome))
        }
        None => None,
    };
    Ok(Published { report, catalog })
}

/// `lpdrop sync`: one window of `tables` from the API, now.
pub async fn sync(
    client: ClientConfig,
    tables: Source,
    window: Window,
    filters: SearchFilters,
    to: PublishTo<'_>,
    output: OutputSettings,
) -> Result<Published> {
    let client = Client::connect(client)
        .await
        .context("cannot reach the LivePerson Domain API")?;
    match tables {
        Source::Dimensions => {
            let source = AccountConfig {
                client,
                window,
                filters,
            };
            publish(source, to, output).await
        }
        Source::Messaging | Source::Chat => {
            let source = Search::new(client, tables, window, filters);
            publish(source, to, output).await
        }
        Source::Webhooks => anyhow::bail!("webhooks are received by `lpdrop listen`, not synced"),
    }
}

/// `lpdrop convert`: saved search pages into one drop.
pub async fn convert(
    input: &Path,
    account_id: Option<String>,
    window: Option<Window>,
    to: PublishTo<'_>,
    output: OutputSettings,
) -> Result<Published> {
    let source = SavedPages::open(input, account_id, window)?;
    publish(source, to, output).await
}

/// `lpdrop demo`: the built-in emulator on a loopback port, and one day synced from it.
pub async fn demo(
    out: &str,
    per_day: u32,
    s3: S3Args,
    glue: GlueArgs,
    output: OutputSettings,
) -> Result<()> {
    let dest = Destination::parse(out)?;
    glue.check(&dest)?;
    let config = EmulatorConfig {
        per_day,
        ..EmulatorConfig::default()
    };
    let account = config.account_id.clone();
    let key = config.api_key.clone();
    let emulator = Emulator::start(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .context("cannot start the emulator on a loopback port")?;
    // The last full UTC day: every conversation in it is final in the emulator's data set.
    let today = chrono::Utc::now().date_naive();
    let from = (today - chrono::Days::new(1)).to_string();
    let window = Window::parse(&from, &today.to_string())?;
    outln!(
        "Demo: syncing {window} from the built-in emulator at {}",
        emulator.domain_url()
    );
    let result = sync(
        ClientConfig::new(emulator.domain_url(), account, key),
        Source::Messaging,
        window,
        SearchFilters::default(),
        PublishTo {
            dest: &dest,
            s3: &s3,
            glue: &glue,
        },
        output,
    )
    .await;
    emulator.shutdown().await;
    let published = result?;
    print_summary(&published);
    let root = &published.report.drop.location;
    outln!();
    if root.starts_with("s3://") {
        outln!("Check it with: lpdrop verify {root}");
        outln!(
            "Query it with DuckDB's httpfs extension, e.g. SELECT count(*) FROM '{root}/parquet/messages/*.parquet'"
        );
    } else if root.starts_with("az://") {
        outln!("Check it with: lpdrop verify {root}");
        outln!(
            "Query it with DuckDB's azure extension, e.g. SELECT count(*) FROM '{root}/parquet/messages/*.parquet'"
        );
    } else {
        outln!("Query it with DuckDB (pip install duckdb), for example:");
        outln!(
            "  python3 -c \"import duckdb; duckdb.sql(\\\"SELECT c.latest_skill_name, count(*) AS messages FROM '{root}/parquet/messages/*.parquet' m JOIN '{root}/parquet/conversations/*.parquet' c USING (conversation_id) GROUP BY 1 ORDER BY 2 DESC\\\").show()\""
        );
    }
    Ok(())
}

/// `lpdrop verify`: a drop against its manifest.
pub async fn verify(target: &str, s3: &S3Args) -> Result<()> {
    let (store, base) = open(&Destination::parse(target)?, &s3.settings()).await?;
    let report = lpdrop_drop::verify(store.as_ref(), &base)
        .await
        .context("cannot read the drop")?;
    let id = report.drop_id.as_deref().unwrap_or("?");
    if report.ok() {
        outln!(
            "OK: drop {id}: {} files, {} rows, {:.1} MB match the manifest",
            report.files_checked,
            report.rows,
            report.bytes as f64 / 1e6
        );
        return Ok(());
    }
    for problem in &report.problems {
        outln!("problem: {problem}");
    }
    anyhow::bail!(
        "drop {id} at {target} failed verification with {} problem(s)",
        report.problems.len()
    )
}

/// `lpdrop copy`: a committed drop published again under another destination.
pub async fn copy(source: &str, dest: &str, s3: &S3Args) -> Result<()> {
    let settings = s3.settings();
    let (src, base) = open(&Destination::parse(source)?, &settings).await?;
    let dest = Destination::parse(dest)?;
    let (dst, _) = open_to_write(&dest, &settings).await?;
    let started = std::time::Instant::now();
    let bar = std::sync::OnceLock::new();
    let progress = |copied: u64, total: u64| {
        let bar = bar.get_or_init(|| crate::progress::CountProgress::new("MB", total / 1_000_000));
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        bar.update(
            copied / 1_000_000,
            format!("{:.0} MB/s", copied as f64 / 1e6 / secs),
        );
    };
    let result =
        lpdrop_drop::copy_drop(src.as_ref(), &base, dst.as_ref(), &dest.prefix(), &progress).await;
    if let Some(bar) = bar.get() {
        bar.finish();
    }
    let report = result.with_context(|| format!("cannot copy the drop at {source}"))?;
    let location = dst.location(&report.root);
    if report.already_there {
        outln!(
            "Drop {} is already committed at {location}: nothing copied",
            report.drop_id
        );
        return Ok(());
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    outln!("Copied drop {}", report.drop_id);
    outln!("  location      {location}");
    outln!(
        "  written       {} files, {:.1} MB in {secs:.1} s ({:.1} MB/s)",
        report.files,
        report.bytes as f64 / 1e6,
        report.bytes as f64 / 1e6 / secs
    );
    Ok(())
}

/// `lpdrop gc`: uncommitted drops and stale uploads older than `grace`.
pub async fn gc(
    target: &str,
    grace: lpdrop_settings::Duration,
    dry_run: bool,
    s3: &S3Args,
) -> Result<()> {
    let (store, prefix) = open(&Destination::parse(target)?, &s3.settings()).await?;
    let grace_chrono =
        chrono::Duration::from_std(grace.get()).context("--older-than is too long")?;
    let report = lpdrop_drop::gc::gc(
        store.as_ref(),
        &prefix,
        grace_chrono,
        chrono::Utc::now(),
        dry_run,
    )
    .await?;
    let verb = if dry_run { "would remove" } else { "removed" };
    for (root, objects) in &report.removed_drops {
        outln!(
            "{verb} uncommitted drop {} ({objects} objects)",
            store.location(root)
        );
    }
    for upload in &report.aborted_uploads {
        outln!(
            "{verb} unfinished multipart upload of {}",
            store.location(&upload.key)
        );
    }
    outln!(
        "{} committed drops kept, {} recent uncommitted drops kept (younger than {grace}), {} uncommitted drops and {} multipart uploads {verb}",
        report.committed_drops,
        report.recent_uncommitted,
        report.removed_drops.len(),
        report.aborted_uploads.len()
    );
    Ok(())
}

/// The human summary printed at the end of `sync`, `convert` and `demo`.
pub fn print_summary(published: &Published) {
    let report = &published.report;
    let s = &report.stats;
    let m = &report.drop.manifest;
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    outln!("Committed drop {}", m.drop_id);
    outln!("  location      {}", report.drop.location);
    outln!(
        "  window        [{}, {})",
        m.source.window_from,
        m.source.window_to
    );
    if m.source.api == lpdrop_pipeline::api_name(Source::Dimensions) {
        outln!(
            "  entities      {} users, skills and agent groups in {:.1} s",
            s.entities,
            secs
        );
    } else {
        outln!(
            "  conversations {} ({} still open) in {:.1} s, {:.0} conversations/s",
            s.conversations,
            s.open_conversations,
            secs,
            s.conversations as f64 / secs
        );
    }
    outln!(
        "  pages         {} ({:.1} MB of API JSON); {} outside the exact window, {} duplicates skipped",
        s.pages,
        s.input_bytes as f64 / 1e6,
        s.outside_window,
        s.duplicates
    );
    outln!(
        "  written       {} tables, {} files, {} rows, {:.1} MB",
        m.totals.tables,
        m.totals.files,
        m.totals.rows,
        m.totals.bytes as f64 / 1e6
    );
    if m.quarantine.records > 0 {
        let key = m.quarantine.file.as_ref().map_or("", |f| f.path.as_str());
        outln!(
            "  quarantined   {} records that could not be read (see {key})",
            m.quarantine.records
        );
    }
    for t in &m.tables {
        outln!("    {:<28} {:>9} rows", t.name, t.rows);
    }
    if let Some((database, outcome)) = &published.catalog {
        print_outcome(database, outcome);
    }
}
