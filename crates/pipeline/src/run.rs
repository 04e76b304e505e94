//! [`run_drop`]: a record source, a planned drop and a store in; one committed drop out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lpdrop_drop::{CommittedDrop, DropInfo, DropLayout, DropWriter, JobRef, ObjectStore, Prefix};
use lpdrop_tables::{ColumnMapping, Lineage, Source, tables_of};
use tracing::Instrument;

use crate::builder::{BuildStats, DropBuilder};
use crate::progress::Progress;
use crate::sources::{Fed, RecordSource};

/// How drops are written, the same for every front end: the column mapping and the parquet
/// settings.
#[derive(Clone, Default)]
pub struct OutputSettings {
    pub column_mapping: Option<Arc<ColumnMapping>>,
    pub writer: lpdrop_drop::WriterOptions,
}

/// A drop's identity decided ahead of writing: its root key follows from these and the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedDrop {
    pub id: uuid::Uuid,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl PlannedDrop {
    /// A fresh id, created now.
    pub fn new() -> Self {
        PlannedDrop {
            id: uuid::Uuid::new_v4(),
            created_at: chrono::Utc::now(),
        }
    }

    pub fn layout(&self, prefix: Prefix) -> DropLayout {
        DropLayout::new(prefix, self.created_at, self.id)
    }
}

impl Default for PlannedDrop {
    fn default() -> Self {
        Self::new()
    }
}

/// Everything about the drop that is not its records.
pub struct DropPlan {
    /// Where the drop goes: decided before the run when a queued job records its drop root
    /// before the first byte is written; a fresh id and the current time otherwise.
    pub drop: PlannedDrop,
    /// The key prefix drops are published under (the folder inside the bucket).
    pub prefix: Prefix,
    /// The queued job this run answers, for the manifest.
    pub job: Option<JobRef>,
    pub output: OutputSettings,
}

/// Asked right before the manifest and the marker are written; an `Err` stops the commit.
pub type CommitFence = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// A committed drop and what went into it.
pub struct DropReport {
    pub drop: CommittedDrop,
    pub stats: BuildStats,
    /// Conversations still OPEN at extraction, to fetch again once closed.
    pub open_conversation_ids: Vec<String>,
    pub elapsed: Duration,
}

/// Feeds every record of `source` into a new drop on `store` and commits it: every file
/// durable, then `manifest.json`, then `upload.complete` (create-only), the last two only
/// while `fence` allows. A source error leaves the drop uncommitted: no marker, so readers
/// never trust its files. Runs inside a span naming the source and window, so every log line
/// of the run says which window it belongs to.
pub async fn run_drop<S: RecordSource>(
    source: S,
    plan: DropPlan,
    store: Arc<dyn ObjectStore>,
    fence: Option<CommitFence>,
    progress: Arc<dyn Progress>,
) -> Result<DropReport> {
    let span =
        tracing::info_span!("sync", source = api_name(source.tables()), window = %source.label());
    let report = run_in_span(source, plan, store, fence, progress, false)
        .instrument(span)
        .await?;
    Ok(report.expect("published even when empty"))
}

/// [`run_drop`] for a source that may bring nothing new (the webhook listener, whose spool
/// may hold only redeliveries): with no row and nothing quarantined, nothing is committed
/// and the answer is `None`.
pub async fn run_drop_unless_empty<S: RecordSource>(
    source: S,
    plan: DropPlan,
    store: Arc<dyn ObjectStore>,
    fence: Option<CommitFence>,
    progress: Arc<dyn Progress>,
) -> Result<Option<DropReport>> {
    let span =
        tracing::info_span!("drop", source = api_name(source.tables()), window = %source.label());
    run_in_span(source, plan, store, fence, progress, true)
        .instrument(span)
        .await
}

async fn run_in_span<S: RecordSource>(
    source: S,
    plan: DropPlan,
    store: Arc<dyn ObjectStore>,
    fence: Option<CommitFence>,
    progress: Arc<dyn Progress>,
    skip_empty: bool,
) -> Result<Option<DropReport>> {
    let started = Instant::now();
    let tables = source.tables();
    let layout = plan.drop.layout(plan.prefix);
    let lineage = Lineage {
        account_id: source.account_id().to_string(),
        drop_id: layout.id().to_string(),
        extracted_at_ms: layout.created_at().timestamp_millis(),
    };
    let writer = DropWriter::new(store, layout, tables_of(tables), plan.output.writer.clone());
    let builder = if source.dedup_across_input() {
        DropBuilder::for_saved_pages(writer, lineage, tables)
    } else {
        DropBuilder::new(writer, lineage, tables)
    }
    .with_column_mapping(plan.output.column_mapping.clone())?;
    let Fed { builder, source } = source.feed(builder, progress).await?;
    if skip_empty && builder.is_empty() {
        return Ok(None);
    }
    let info = DropInfo {
        job: plan.job,
        source,
    };
    // The commit waits for the store on its thread: keep it off the async workers.
    let committing = Instant::now();
    let built = tokio::task::spawn_blocking(move || {
        let may_commit = || fence.as_ref().map_or(Ok(()), |f| f());
        builder.commit(info, &may_commit)
    })
    .await
    .context("the commit thread panicked")?
    .context("committing the drop")?;
    lpdrop_metrics::UPLOAD_DURATION.observe(&[], committing.elapsed().as_secs_f64());
    for t in &built.drop.manifest.tables {
        let _table = tracing::debug_span!("table", table = %t.name).entered();
        let bytes: u64 = t.files.iter().map(|f| f.bytes).sum();
        tracing::debug!(rows = t.rows, files = t.files.len(), bytes, "table written");
    }
    let memory = built.writer_memory;
    tracing::debug!(
        peak_buffered_bytes = memory.peak_buffered_bytes,
        budget_flushes = memory.budget_flushes,
        heap_flushes = memory.heap_flushes,
        peak_heap_bytes = memory.peak_heap_bytes,
        "drop written"
    );
    tracing::info!(
        drop = %built.drop.location,
        records = built.stats.conversations + built.stats.entities,
        quarantined = built.stats.quarantined,
        "drop committed"
    );
    Ok(Some(DropReport {
        drop: built.drop,
        stats: built.stats,
        open_conversation_ids: built.open_conversation_ids,
        elapsed: started.elapsed(),
    }))
}

/// The manifest's `source.api` for each source.
pub fn api_name(source: Source) -> &'static str {
    match source {
        Source::Messaging => "messaging_interactions",
        Source::Chat => "engagement_history",
        Source::Dimensions => "account_configuration",
        Source::Webhooks => "webhooks",
    }
}

/// The manifest's `source.time_basis`: what the window applies to.
pub fn time_basis(source: Source) -> &'static str {
    match source {
        Source::Messaging => "conversation_start",
        Source::Chat => "chat_start",
        // A snapshot taken at extraction: the window names the job, not the records.
        Source::Dimensions => "extraction",
        // When lpdrop received (and acknowledged) each notification.
        Source::Webhooks => "received",
    }
}
