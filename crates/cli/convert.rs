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
use crate::pipeline::Converter;
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

    // Reading files overlaps with decoding and encoding; the bounded channel keeps memory flat.
    let work = tokio::task::spawn_blocking(move || -> Result<_> {
        let (tx, rx) = mpsc::sync_channel::<(PathBuf, std::io::Result<Vec<u8>>)>(4);
        let reader = std::thread::spawn(move || {
            for file in files {
                let bytes = std::fs::read(&file);
                if tx.send((file, bytes)).is_err() {
                    break;
                }
            }
        });
        let mut converter =
            Converter::for_saved_pages(writer, lineage, lpdrop_tables::Source::Messaging);
        let mut last = Instant::now();
        let mut done = 0usize;
        for (file, bytes) in rx {
            let bytes = bytes.with_context(|| format!("cannot read {}", file.display()))?;
            converter.page(&bytes, window, &file.display().to_string())?;
            done += 1;
            if progress && last.elapsed() >= Duration::from_secs(1) {
                last = Instant::now();
                eprint!(
                    "\r  {done}/{total} pages, {} conversations   ",
                    converter.stats.conversations
                );
            }
        }
        if progress {
            eprintln!();
        }
        reader
            .join()
            .map_err(|_| anyhow::anyhow!("the file reader panicked"))?;
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
