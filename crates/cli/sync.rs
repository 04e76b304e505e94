//! `lpdrop sync` (and the demo): one window from the API to one committed drop.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lpdrop_drop::{CommittedDrop, DropInfo, DropLayout, DropWriter, JobRef, SourceInfo};
use lpdrop_liveperson::{AccountEntity, Client, ClientConfig, FetchedPage, SearchFilters, Window};
use lpdrop_tables::{Lineage, Source, tables_of};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::dest::{Destination, S3Args, open_sink};
use crate::pipeline::{ConvertStats, Converter};
use crate::progress::{Counts as ProgressCounts, WindowProgress};

/// Sub-windows are at most one day: small enough that `count` stays far from deep offsets on
/// most accounts, large enough to keep the request count low (busy days are halved further).
pub const DEFAULT_SUB_WINDOW_MS: i64 = 24 * 3600 * 1000;

pub struct SyncRequest {
    pub client: ClientConfig,
    /// Which API: Messaging Interactions, Engagement History, or the account configuration
    /// (a snapshot of agents, skills and groups; the window only labels it).
    pub source: Source,
    pub window: Window,
    /// Late data: re-read exactly these conversations by id (messaging), instead of searching
    /// the window. `Some(empty)` is a refetch with nothing to do: an empty drop.
    pub refetch_ids: Option<Vec<String>>,
    pub filters: SearchFilters,
    pub dest: Destination,
    pub s3: S3Args,
    pub sub_window_ms: i64,
    /// Where the drop goes, when decided before the run (a queued job records its drop root
    /// before the first byte is written); a fresh id and the current time otherwise.
    pub drop: Option<PlannedDrop>,
    /// The queued job this run answers, for the manifest.
    pub job: Option<JobRef>,
    /// For queued jobs: refuses the commit once the worker no longer holds the job's lease.
    pub fence: Option<CommitFence>,
    /// The column mapping and the parquet settings.
    pub output: crate::Output,
}

/// A drop's identity decided ahead of writing: its root key follows from these and the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedDrop {
    pub id: uuid::Uuid,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl PlannedDrop {
    pub fn new() -> Self {
        PlannedDrop {
            id: uuid::Uuid::new_v4(),
            created_at: chrono::Utc::now(),
        }
    }

    pub fn layout(&self, dest: &Destination) -> DropLayout {
        DropLayout::new(dest.prefix(), self.created_at, self.id)
    }
}

impl Default for PlannedDrop {
    fn default() -> Self {
        Self::new()
    }
}

pub struct SyncReport {
    pub drop: CommittedDrop,
    pub stats: ConvertStats,
    /// Conversations still OPEN at extraction, to fetch again once closed.
    pub open_conversation_ids: Vec<String>,
    pub elapsed: Duration,
}

/// Asked right before the manifest and the marker are written; an `Err` stops the commit.
pub type CommitFence = std::sync::Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Runs inside a `sync` span naming the source and window, so every log line of the run (in
/// a worker, also inside the job's span) says which window it belongs to.
pub async fn run_sync(req: SyncRequest) -> Result<SyncReport> {
    let span = tracing::info_span!("sync", source = api_name(req.source), window = %req.window);
    sync_in_span(req).instrument(span).await
}

async fn sync_in_span(req: SyncRequest) -> Result<SyncReport> {
    let started = Instant::now();
    let account_id = req.client.account_id.clone();
    let client = Client::connect(req.client.clone())
        .await
        .context("cannot reach the LivePerson Domain API")?;
    let sink = open_sink(&req.dest, &req.s3).await?;
    let layout = req.drop.unwrap_or_default().layout(&req.dest);
    let lineage = Lineage {
        account_id: account_id.clone(),
        drop_id: layout.id().to_string(),
        extracted_at_ms: layout.created_at().timestamp_millis(),
    };
    let writer = DropWriter::new(
        sink,
        layout,
        tables_of(req.source),
        req.output.writer.clone(),
    );
    let converter = Converter::new(writer, lineage, req.source)
        .with_column_mapping(req.output.column_mapping.clone())?;
    let converter = match (&req.refetch_ids, req.source) {
        (Some(ids), Source::Messaging) => convert_by_ids(&client, ids, converter)
            .await
            .with_context(|| format!("re-reading {} conversations by id", ids.len()))?,
        (Some(_), other) => anyhow::bail!(
            "only messaging conversations can be re-read by id, not {}",
            api_name(other)
        ),
        (None, Source::Dimensions) => convert_account_config(&client, converter).await?,
        (None, Source::Messaging | Source::Chat) => convert_search(&client, &req, converter)
            .await
            .with_context(|| format!("fetching {}", req.window))?,
    };
    let filters = match &req.refetch_ids {
        Some(ids) => serde_json::json!({ "refetch_conversation_ids": ids.len() }),
        None => serde_json::json!({
            "skill_ids": req.filters.skill_ids,
            "status": req.filters.status,
        }),
    };
    let info = DropInfo {
        job: req.job,
        source: SourceInfo {
            account_id,
            api: api_name(req.source).into(),
            window_from: lpdrop_liveperson::window::fmt_ms(req.window.from_ms()),
            window_to: lpdrop_liveperson::window::fmt_ms(req.window.to_ms()),
            time_basis: if req.refetch_ids.is_some() {
                // The window is when the refetch was enqueued; the conversations started
                // earlier, each in the window of the job that first saw it open.
                "refetch_enqueued".into()
            } else {
                time_basis(req.source).into()
            },
            filters,
            conversations: 0,
            open_conversations: 0,
        },
    };
    // The commit uploads through the sink, which blocks: keep it off the async workers.
    let fence = req.fence;
    let committing = Instant::now();
    let converted = tokio::task::spawn_blocking(move || {
        let may_commit = || fence.as_ref().map_or(Ok(()), |f| f());
        converter.commit(info, &may_commit)
    })
    .await
    .context("the commit thread panicked")?
    .context("committing the drop")?;
    lpdrop_metrics::UPLOAD_DURATION.observe(&[], committing.elapsed().as_secs_f64());
    for t in &converted.drop.manifest.tables {
        let _table = tracing::debug_span!("table", table = %t.name).entered();
        let bytes: u64 = t.files.iter().map(|f| f.bytes).sum();
        tracing::debug!(rows = t.rows, files = t.files.len(), bytes, "table written");
    }
    tracing::info!(
        drop = %converted.drop.location,
        records = converted.stats.conversations + converted.stats.entities,
        quarantined = converted.stats.quarantined,
        "drop committed"
    );
    Ok(SyncReport {
        drop: converted.drop,
        stats: converted.stats,
        open_conversation_ids: converted.open_conversation_ids,
        elapsed: started.elapsed(),
    })
}

/// The manifest's `source.api` for each source.
pub fn api_name(source: Source) -> &'static str {
    match source {
        Source::Messaging => "messaging_interactions",
        Source::Chat => "engagement_history",
        Source::Dimensions => "account_configuration",
    }
}

/// The manifest's `source.time_basis`: what the window applies to.
pub fn time_basis(source: Source) -> &'static str {
    match source {
        Source::Messaging => "conversation_start",
        Source::Chat => "chat_start",
        // A snapshot taken at extraction: the window names the job, not the records.
        Source::Dimensions => "extraction",
    }
}

/// Pages a search window (messaging or chat) into the converter. Fetching (async, concurrent)
/// and converting (CPU-bound, on a blocking thread) overlap; the bounded channel keeps memory
/// flat when one side is faster. A fetch error drops the writer uncommitted: no marker, so
/// readers never trust the files.
async fn convert_search(
    client: &Client,
    req: &SyncRequest,
    mut converter: Converter,
) -> Result<Converter> {
    let (tx, mut rx) = mpsc::channel::<FetchedPage>(16);
    let (api, what) = match req.source {
        Source::Chat => ("EH search", "chats"),
        _ => ("MI search", "conversations"),
    };
    let progress = WindowProgress::new(what, req.window.from_ms(), req.window.to_ms());
    let converting = tokio::task::spawn_blocking(move || -> Result<(Converter, WindowProgress)> {
        let mut windows = 0;
        let mut current = None;
        while let Some(page) = rx.blocking_recv() {
            let origin = format!("{api} {} offset {}", page.window, page.offset);
            if current != Some(page.window) {
                current = Some(page.window);
                windows += 1;
                tracing::debug!(window = %page.window, "paging a sub-window");
            }
            lpdrop_drop::crash::crash_point("fetch");
            converter.page(&page.body, Some(page.window), &origin)?;
            let s = &converter.stats;
            progress.update(
                page.window.from_ms(),
                ProgressCounts {
                    windows,
                    pages: s.pages,
                    records: s.conversations,
                    input_bytes: s.input_bytes,
                },
            );
        }
        Ok((converter, progress))
    });
    let fetched = match req.source {
        Source::Chat => {
            client
                .fetch_chat_window(req.window, &req.filters, req.sub_window_ms, tx)
                .await
        }
        _ => {
            client
                .fetch_window(req.window, &req.filters, req.sub_window_ms, tx)
                .await
        }
    };
    let (converter, progress) = converting
        .await
        .context("the converter thread panicked")??;
    progress.finish();
    fetched?;
    Ok(converter)
}

/// Late data: the full records of conversations by id (100 per call), so that the newest drop
/// holds their final state. Those still open are reported again by the converter.
async fn convert_by_ids(
    client: &Client,
    ids: &[String],
    mut converter: Converter,
) -> Result<Converter> {
    let pages = client.conversations_by_ids(ids).await?;
    let converter = tokio::task::spawn_blocking(move || -> Result<Converter> {
        for (n, body) in pages.iter().enumerate() {
            converter.page(
                body,
                None,
                &format!("MI conversations by id, call {}", n + 1),
            )?;
        }
        Ok(converter)
    })
    .await
    .context("the converter thread panicked")??;
    let found = converter.stats.conversations as usize;
    if found < ids.len() {
        tracing::warn!(
            asked = ids.len(),
            found,
            "some conversations asked for by id were not returned (deleted, or past retention)"
        );
    }
    Ok(converter)
}

/// Reads the account configuration (users, skills, agent groups, deleted ones included) into
/// a dimension drop.
async fn convert_account_config(client: &Client, mut converter: Converter) -> Result<Converter> {
    for entity in [
        AccountEntity::Users,
        AccountEntity::Skills,
        AccountEntity::AgentGroups,
    ] {
        let answer = client
            .account_config(entity, None)
            .await
            .with_context(|| format!("fetching the account configuration ({entity:?})"))?;
        converter = tokio::task::spawn_blocking(move || -> Result<Converter> {
            let origin = format!("account configuration {entity:?}");
            converter.entities(entity, &answer.body, &origin)?;
            Ok(converter)
        })
        .await
        .context("the converter thread panicked")??;
    }
    Ok(converter)
}

/// The human summary printed at the end of `sync` and `demo`.
pub fn print_summary(report: &SyncReport) {
    let s = &report.stats;
    let m = &report.drop.manifest;
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    println!("Committed drop {}", m.drop_id);
    println!("  location      {}", report.drop.location);
    println!(
        "  window        [{}, {})",
        m.source.window_from, m.source.window_to
    );
    if m.source.api == api_name(Source::Dimensions) {
        println!(
            "  entities      {} users, skills and agent groups in {:.1} s",
            s.entities, secs
        );
    } else {
        println!(
            "  conversations {} ({} still open) in {:.1} s, {:.0} conversations/s",
            s.conversations,
            s.open_conversations,
            secs,
            s.conversations as f64 / secs
        );
    }
    println!(
        "  pages         {} ({:.1} MB of API JSON); {} outside the exact window, {} duplicates skipped",
        s.pages,
        s.input_bytes as f64 / 1e6,
        s.outside_window,
        s.duplicates
    );
    println!(
        "  written       {} tables, {} files, {} rows, {:.1} MB",
        m.totals.tables,
        m.totals.files,
        m.totals.rows,
        m.totals.bytes as f64 / 1e6
    );
    if m.quarantine.records > 0 {
        let key = m.quarantine.file.as_ref().map_or("", |f| f.path.as_str());
        println!(
            "  quarantined   {} records that could not be read (see {key})",
            m.quarantine.records
        );
    }
    for t in &m.tables {
        println!("    {:<28} {:>9} rows", t.name, t.rows);
    }
}
