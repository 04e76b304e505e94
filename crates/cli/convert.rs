//! `lpdrop convert`: a drop from saved Messaging Interactions search pages.
//!
//! Teams often already keep raw API responses; this turns a folder of them into the same drop
//! a sync would publish. It is also the entry point of the throughput benchmarks, since it runs
//! the whole decode → tables → parquet path without the network.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lpdrop_drop::{DropInfo, DropWriter, SourceInfo, WriterOptions};
use lpdrop_liveperson::Window;
use lpdrop_liveperson::window::fmt_ms;
use lpdrop_tables::{Lineage, MESSAGING_TABLES};

use crate::dest::{Destination, S3Args, open_sink};
use crate::pipeline::{Converter, DecodedPage, decode_messaging_page};
use crate::sync::{PlannedDrop, SyncReport};

pub struct ConvertRequest {
    pub input: PathBuf,
    pub dest: Destination,
    pub s3: S3Args,
    /// Account of the pages; read from the first record's `brandId` when absent.
    pub account_id: Option<String>,
    /// Keep only conversations that started in this window.
    pub window: Option<Window>,
}

/// The `.json` files of the input folder, in name order (saved pages sort in paging order).
fn page_files(input: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(input)
        .with_context(|| format!("cannot read the input folder {}", input.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{} holds no .json page files", input.display());
    }
    Ok(files)
}

/// Threads that read and decode pages: `LPDROP_DECODE_THREADS`, by default one per core. One
/// more thread splits the decoded records into tables and encodes parquet.
fn decode_threads() -> usize {
    std::env::var("LPDROP_DECODE_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(64)
}

/// Decoded pages that may wait for the table thread, per decoding thread: enough to ride
/// out uneven pages, few enough to keep memory flat.
const DECODED_AHEAD: usize = 2;

/// Reads and decodes `files` on `threads` threads, and gives the pages to `take` in file
/// order. Thread `t` takes files `t`, `t + threads`, ... and has its own bounded channel, which
/// the caller reads in turn: the order never depends on timing, and at most
/// `threads × (DECODED_AHEAD + 1)` decoded pages are in memory.
fn decode_in_order(
    files: &[PathBuf],
    threads: usize,
    mut take: impl FnMut(DecodedPage) -> Result<()>,
) -> Result<()> {
    let threads = threads.clamp(1, files.len().max(1));
    std::thread::scope(|scope| {
        let mut decoded = Vec::with_capacity(threads);
        for first in 0..threads {
            let (tx, rx) = mpsc::sync_channel::<Result<DecodedPage>>(DECODED_AHEAD);
            scope.spawn(move || {
                for file in files.iter().skip(first).step_by(threads) {
                    let page = std::fs::read(file)
                        .with_context(|| format!("cannot read {}", file.display()))
                        .and_then(|bytes| {
                            decode_messaging_page(&bytes, &file.display().to_string())
                        });
                    let failed = page.is_err();
                    // The receiver is gone when the caller stopped at an error.
                    if tx.send(page).is_err() || failed {
                        break;
                    }
                }
            });
            decoded.push(rx);
        }
        for i in 0..files.len() {
            let page = decoded[i % threads]
                .recv()
                .map_err(|_| anyhow::anyhow!("a decoding thread stopped early"))??;
            take(page)?;
        }
        Ok(())
    })
}

/// The account of the first readable record of the first pages.
fn account_of(files: &[PathBuf]) -> Result<String> {
    for file in files.iter().take(10) {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let Ok(page) = lpdrop_liveperson::page::parse_page(&bytes) else {
            continue;
        };
        let account = page.records.iter().find_map(|raw| {
            lpdrop_liveperson::page::decode_record(raw)
                .ok()
                .and_then(|c| c.info.brand_id.0)
        });
        if let Some(account) = account {
            return Ok(account);
        }
    }
    bail!("no record names its account (info.brandId): pass --account-id")
}

pub async fn run_convert(req: ConvertRequest) -> Result<SyncReport> {
    let started = Instant::now();
    let files = page_files(&req.input)?;
    let account_id = match req.account_id {
        Some(a) => a,
        None => account_of(&files)?,
    };
    let sink = open_sink(&req.dest, &req.s3).await?;
    let layout = PlannedDrop::new().layout(&req.dest);
    let lineage = Lineage {
        account_id: account_id.clone(),
        drop_id: layout.id().to_string(),
        extracted_at_ms: layout.created_at().timestamp_millis(),
    };
    let writer = DropWriter::new(sink, layout, &MESSAGING_TABLES, WriterOptions::default());
    let window = req.window;
    let total = files.len();
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());

    // Reading and decoding run on `threads` threads; this one splits the records into tables
    // and encodes parquet. Bounded channels keep memory flat.
    let threads = decode_threads();
    let work = tokio::task::spawn_blocking(move || -> Result<_> {
        let mut converter =
            Converter::for_saved_pages(writer, lineage, lpdrop_tables::Source::Messaging);
        let mut last = Instant::now();
        let mut done = 0usize;
        decode_in_order(&files, threads, |page| {
            converter.decoded_page(page, window)?;
            done += 1;
            if progress && last.elapsed() >= Duration::from_secs(1) {
                last = Instant::now();
                eprint!(
                    "\r  {done}/{total} pages, {} conversations   ",
                    converter.stats.conversations
                );
            }
            Ok(())
        })?;
        if progress {
            eprintln!();
        }
        if std::env::var_os("LPDROP_DEBUG_MEMORY").is_some() {
            eprintln!("DEBUG writer memory: {:?}", converter.writer_memory());
        }
        let (from, to) = match (window, converter.start_range) {
            (Some(w), _) => (w.from_ms(), w.to_ms()),
            (None, Some((lo, hi))) => (lo, hi + 1),
            (None, None) => bail!("the input holds no readable conversation"),
        };
        let info = DropInfo {
            job: None,
            source: SourceInfo {
                account_id,
                api: "messaging_interactions".into(),
                window_from: fmt_ms(from),
                window_to: fmt_ms(to),
                time_basis: "conversation_start".into(),
                filters: serde_json::json!({"saved_pages": true}),
                conversations: 0,
                open_conversations: 0,
            },
        };
        converter
            .commit(info, &|| Ok(()))
            .context("committing the drop")
    });
    let converted = work.await.context("the converter thread panicked")??;
    Ok(SyncReport {
        drop: converted.drop,
        stats: converted.stats,
        open_conversation_ids: converted.open_conversation_ids,
        elapsed: started.elapsed(),
    })
}
