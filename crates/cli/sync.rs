//! `lpdrop sync` (and the demo): one window from the API to one committed drop.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lpdrop_drop::{
    CommittedDrop, DropInfo, DropLayout, DropWriter, JobRef, SourceInfo, WriterOptions,
};
use lpdrop_liveperson::{Client, ClientConfig, FetchedPage, SearchFilters, Window};
use lpdrop_tables::{Lineage, MESSAGING_TABLES};
use tokio::sync::mpsc;

use crate::dest::{Destination, S3Args, open_sink};
use crate::pipeline::{ConvertStats, Converter};

/// Sub-windows are at most one day: small enough that `count` stays far from deep offsets on
/// most accounts, large enough to keep the request count low (busy days are halved further).
pub const DEFAULT_SUB_WINDOW_MS: i64 = 24 * 3600 * 1000;

pub struct SyncRequest {
    pub client: ClientConfig,
    pub window: Window,
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

pub async fn run_sync(req: SyncRequest) -> Result<SyncReport> {
    let started = Instant::now();
    let account_id = req.client.account_id.clone();
    let client = Client::connect(req.client)
        .await
        .context("cannot reach the LivePerson Domain API")?;
    let sink = open_sink(&req.dest, &req.s3).await?;
    let layout = req.drop.unwrap_or_default().layout(&req.dest);
    let lineage = Lineage {
        account_id: account_id.clone(),
        drop_id: layout.id().to_string(),
        extracted_at_ms: layout.created_at().timestamp_millis(),
    };
    let writer = DropWriter::new(sink, layout, &MESSAGING_TABLES, WriterOptions::default());

    // Fetching (async, concurrent) and converting (CPU-bound, on a blocking thread) overlap;
    // the bounded channel keeps memory flat when one side is faster.
    let (tx, mut rx) = mpsc::channel::<FetchedPage>(16);
    let show_progress = std::io::stderr().is_terminal();
    let converter = tokio::task::spawn_blocking(move || -> Result<Converter> {
        let mut converter = Converter::new(writer, lineage);
        let mut last = Instant::now();
        while let Some(page) = rx.blocking_recv() {
            let origin = format!("MI search {} offset {}", page.window, page.offset);
            converter.page(&page.body, Some(page.window), &origin)?;
            if show_progress && last.elapsed() >= Duration::from_secs(1) {
                last = Instant::now();
                let s = &converter.stats;
                eprint!(
                    "\r  {} pages, {} conversations, window {}   ",
                    s.pages, s.conversations, page.window
                );
            }
        }
        Ok(converter)
    });
    let fetched = client
        .fetch_window(req.window, &req.filters, req.sub_window_ms, tx)
        .await;
    let converter = converter.await.context("the converter thread panicked")??;
    if show_progress {
        eprintln!();
    }
    // A fetch error drops the writer uncommitted: no marker, so readers never trust the files.
    let fetch_stats = fetched.with_context(|| format!("fetching {}", req.window))?;
    let filters = serde_json::json!({
        "skill_ids": req.filters.skill_ids,
        "status": req.filters.status,
    });
    let info = DropInfo {
        job: req.job,
        source: SourceInfo {
            account_id,
            api: "messaging_interactions".into(),
            window_from: lpdrop_liveperson::window::fmt_ms(req.window.from_ms()),
            window_to: lpdrop_liveperson::window::fmt_ms(req.window.to_ms()),
            time_basis: "conversation_start".into(),
            filters,
            conversations: 0,
            open_conversations: 0,
        },
    };
    // The commit uploads through the sink, which blocks: keep it off the async workers.
    let fence = req.fence;
    let converted = tokio::task::spawn_blocking(move || {
        let may_commit = || fence.as_ref().map_or(Ok(()), |f| f());
        converter.commit(info, &may_commit)
    })
    .await
    .context("the commit thread panicked")?
    .context("committing the drop")?;
    debug_assert!(fetch_stats.pages == converted.stats.pages);
    Ok(SyncReport {
        drop: converted.drop,
        stats: converted.stats,
        open_conversation_ids: converted.open_conversation_ids,
        elapsed: started.elapsed(),
    })
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
    println!(
        "  conversations {} ({} still open) in {:.1} s, {:.0} conversations/s",
        s.conversations,
        s.open_conversations,
        secs,
        s.conversations as f64 / secs
    );
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
