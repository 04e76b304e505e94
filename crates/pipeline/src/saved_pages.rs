//! Saved Messaging Interactions search pages as a record source (`lpdrop convert`).
//!
//! Teams often already keep raw API responses; this turns a folder of them into the same drop
//! a sync would publish. It is also the entry point of the throughput benchmarks, since it runs
//! the whole decode → tables → parquet path without the network.
//!
//! The input is a folder of `.json` files, one page each, taken in name order; or a file of
//! pages one per line (JSON Lines), which may be a named pipe, or `-` for standard input, so
//! that pages can be streamed in without ever being stored.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use anyhow::{Context, Result, bail};
use lpdrop_drop::SourceInfo;
use lpdrop_liveperson::window::fmt_ms;
use lpdrop_liveperson::{Window, page};
use lpdrop_tables::Source;

use crate::builder::{DecodedPage, DropBuilder, PageSplitter};
use crate::progress::{Counts, Progress};
use crate::run::{api_name, time_basis};
use crate::sources::{Fed, RecordSource};

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

/// A page as read: where it came from (for errors and quarantine entries), and its bytes.
type RawPage = (String, Vec<u8>);

/// The pages of the input, in order, read as they are asked for.
type PageSource = Box<dyn Iterator<Item = Result<RawPage>> + Send>;

/// The pages of `input`, and how many there are when that is known in advance.
fn open_pages(input: &Path) -> Result<(PageSource, Option<usize>)> {
    if input == Path::new("-") {
        let lines = lines_of(Box::new(std::io::stdin()), "standard input".into());
        return Ok((lines, None));
    }
    if input.is_dir() {
        let files = page_files(input)?;
        let total = files.len();
        let pages = files.into_iter().map(|file| {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            Ok((file.display().to_string(), bytes))
        });
        return Ok((Box::new(pages), Some(total)));
    }
    let file =
        File::open(input).with_context(|| format!("cannot open the input {}", input.display()))?;
    Ok((lines_of(Box::new(file), input.display().to_string()), None))
}

/// One page per line of `input`; blank lines are skipped.
fn lines_of(input: Box<dyn Read + Send>, name: String) -> PageSource {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut line_no = 0u64;
    // Lines are read into one buffer that grows to the longest, then copied out at their
    // size: growing a fresh buffer for every page of megabytes would fragment the heap.
    let mut line = Vec::new();
    Box::new(std::iter::from_fn(move || {
        loop {
            line.clear();
            line_no += 1;
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => return None,
                Ok(_) if line.iter().all(u8::is_ascii_whitespace) => continue,
                Ok(_) => return Some(Ok((format!("{name} line {line_no}"), line.to_vec()))),
                Err(e) => {
                    return Some(Err(
                        anyhow::Error::new(e).context(format!("cannot read {name}"))
                    ));
                }
            }
        }
    }))
}

/// Threads that read, decode and split pages into table batches: `LPDROP_DECODE_THREADS`, by
/// default one per core. One more thread keeps or leaves out each record, and one encodes
/// parquet.
fn decode_threads() -> usize {
    std::env::var("LPDROP_DECODE_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(64)
}

/// Pages that may wait, per decoding thread, to be decoded, and then to be taken: enough to
/// ride out uneven pages, few enough to keep memory flat.
const READ_AHEAD: usize = 1;
const DECODED_AHEAD: usize = 2;

/// Decodes and splits `pages` on `threads` threads, and gives them to `take` in input order.
///
/// One thread reads the pages and deals them out in turn: page `i` goes to decoding thread
/// `i % threads`, each of which has its own bounded channels, and this thread takes the
/// decoded pages from those channels in the same turn. The order never depends on timing,
/// and at most `threads × (READ_AHEAD + DECODED_AHEAD + 1) + 2` pages are held at once. The
/// first error, reading, decoding or in `take`, ends the run at its place.
fn decode_in_order(
    pages: PageSource,
    threads: usize,
    splitter: &PageSplitter,
    mut take: impl FnMut(DecodedPage) -> Result<()>,
) -> Result<()> {
    let threads = threads.max(1);
    std::thread::scope(|scope| {
        let mut to_decode = Vec::with_capacity(threads);
        let mut decoded = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (raw_tx, raw_rx) = mpsc::sync_channel::<Result<RawPage>>(READ_AHEAD);
            let (page_tx, page_rx) = mpsc::sync_channel::<Result<DecodedPage>>(DECODED_AHEAD);
            scope.spawn(move || {
                for raw in raw_rx {
                    let page = raw.and_then(|(origin, bytes)| splitter.split(&bytes, &origin));
                    let failed = page.is_err();
                    // The receiver is gone when the caller stopped at an error.
                    if page_tx.send(page).is_err() || failed {
                        break;
                    }
                }
            });
            to_decode.push(raw_tx);
            decoded.push(page_rx);
        }
        scope.spawn(move || {
            for (i, raw) in pages.enumerate() {
                let failed = raw.is_err();
                if to_decode[i % threads].send(raw).is_err() || failed {
                    break;
                }
            }
        });
        // Page `i` comes from thread `i % threads`: when that thread has nothing more to give,
        // the reader dealt no page `i`, so the input has ended (a thread that panics makes the
        // scope panic on return).
        for i in 0.. {
            let Ok(page) = decoded[i % threads].recv() else {
                break;
            };
            take(page?)?;
        }
        Ok(())
    })
}

/// The account of the first readable record among the first ten pages, which are returned
/// to be converted like the rest.
fn account_of(pages: &mut PageSource) -> Result<(String, Vec<RawPage>)> {
    let mut read = Vec::new();
    while read.len() < 10 {
        let Some(next) = pages.next() else { break };
        let (origin, bytes) = next?;
        let repaired = std::cell::OnceCell::new();
        let account = page::parse_repairing(&bytes, &repaired, page::parse_page)
            .ok()
            .and_then(|parsed| {
                parsed.records.iter().find_map(|raw| {
                    page::decode_record(raw)
                        .ok()
                        .and_then(|c| c.info.brand_id.0)
                })
            });
        read.push((origin, bytes));
        if let Some(account) = account {
            return Ok((account, read));
        }
    }
    bail!("no record names its account (info.brandId): pass --account-id")
}

/// Saved Messaging Interactions search pages (`convert`): a folder of `.json` files, or a
/// file, pipe or stdin of one page per line. Pages are decoded on several threads and handed
/// to the builder in input order; repeats are recognised across the whole input.
pub struct SavedPages {
    pages: PageSource,
    total: Option<usize>,
    account_id: String,
    window: Option<Window>,
    threads: usize,
    label: String,
}

impl SavedPages {
    /// Opens `input`; the account is `account_id`, or else the first record's `brandId`.
    /// Only conversations that started in `window` are kept, when one is given.
    pub fn open(input: &Path, account_id: Option<String>, window: Option<Window>) -> Result<Self> {
        let (mut pages, total) = open_pages(input)?;
        let account_id = match account_id {
            Some(a) => a,
            None => {
                let (account, read) = account_of(&mut pages)?;
                pages = Box::new(read.into_iter().map(Ok).chain(pages));
                account
            }
        };
        Ok(SavedPages {
            pages,
            total,
            account_id,
            window,
            threads: decode_threads(),
            label: input.display().to_string(),
        })
    }

    /// Decodes on `threads` threads instead of one per core.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }
}

impl RecordSource for SavedPages {
    fn tables(&self) -> Source {
        Source::Messaging
    }

    fn account_id(&self) -> &str {
        &self.account_id
    }

    fn label(&self) -> String {
        self.label.clone()
    }

    fn dedup_across_input(&self) -> bool {
        true
    }

    async fn feed(self, mut builder: DropBuilder, progress: Arc<dyn Progress>) -> Result<Fed> {
        let SavedPages {
            pages,
            total,
            account_id,
            window,
            threads,
            ..
        } = self;
        progress.begin_pages(total.map(|t| t as u64));
        // Reading, decoding and splitting into tables run on `threads` threads; this one keeps
        // each record or leaves it out, in input order (and a thread of the builder's encodes
        // parquet). Bounded channels keep memory flat.
        let work = tokio::task::spawn_blocking(move || -> Result<Fed> {
            let splitter = builder.page_splitter();
            let mut done = 0i64;
            decode_in_order(pages, threads, &splitter, |page| {
                builder.decoded_page(page, window)?;
                done += 1;
                let s = &builder.stats;
                progress.update(
                    done,
                    Counts {
                        windows: 0,
                        pages: s.pages,
                        records: s.conversations,
                        input_bytes: s.input_bytes,
                    },
                );
                Ok(())
            })?;
            progress.finish();
            let (from, to) = match (window, builder.start_range) {
                (Some(w), _) => (w.from_ms(), w.to_ms()),
                (None, Some((lo, hi))) => (lo, hi + 1),
                (None, None) => bail!("the input holds no readable conversation"),
            };
            tracing::debug!(decode_threads = threads, "pages decoded");
            Ok(Fed {
                builder,
                source: SourceInfo {
                    account_id,
                    api: api_name(Source::Messaging).into(),
                    window_from: fmt_ms(from),
                    window_to: fmt_ms(to),
                    time_basis: time_basis(Source::Messaging).into(),
                    filters: serde_json::json!({"saved_pages": true}),
                    conversations: 0,
                    open_conversations: 0,
                },
            })
        });
        work.await.context("the builder thread panicked")?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(dir: &Path, conversations: u64) -> Vec<PathBuf> {
        let dataset = lpdrop_emulator::Dataset::new(&Default::default());
        lpdrop_emulator::dump::write_pages(&dataset, 0, conversations, 10, dir).unwrap();
        page_files(dir).unwrap()
    }

    fn splitter() -> PageSplitter {
        let lineage = lpdrop_tables::Lineage {
            account_id: "1".into(),
            drop_id: "d".into(),
            extracted_at_ms: 0,
        };
        PageSplitter::new(lineage, None)
    }

    fn source(input: &Path) -> PageSource {
        open_pages(input).unwrap().0
    }

    #[test]
    fn decoded_pages_come_in_file_order_whatever_the_threads() {
        let dir = tempfile::tempdir().unwrap();
        let files = pages(dir.path(), 95);
        assert_eq!(files.len(), 10);
        for threads in [1, 2, 3, 4, 16] {
            let mut seen = Vec::new();
            decode_in_order(source(dir.path()), threads, &splitter(), |page| {
                seen.push(page.origin().to_string());
                Ok(())
            })
            .unwrap();
            let expected: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            assert_eq!(seen, expected, "{threads} threads");
        }
    }

    #[test]
    fn an_unreadable_page_stops_the_run_at_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let files = pages(dir.path(), 60);
        std::fs::write(&files[3], b"{not json").unwrap();
        for threads in [1, 2, 3] {
            let mut seen = 0;
            let err = decode_in_order(source(dir.path()), threads, &splitter(), |_| {
                seen += 1;
                Ok(())
            })
            .unwrap_err();
            assert_eq!(seen, 3, "{threads} threads");
            assert!(format!("{err:#}").contains(&files[3].display().to_string()));
        }
    }

    #[test]
    fn a_failing_consumer_stops_the_decoding_threads() {
        let dir = tempfile::tempdir().unwrap();
        pages(dir.path(), 200);
        let err = decode_in_order(source(dir.path()), 2, &splitter(), |page| {
            anyhow::ensure!(!page.origin().ends_with("00004.json"), "enough");
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "enough");
    }

    #[test]
    fn pages_one_per_line_come_in_line_order() {
        let dir = tempfile::tempdir().unwrap();
        let files = pages(&dir.path().join("pages"), 50);
        let mut lines = Vec::new();
        for (i, f) in files.iter().enumerate() {
            lines.extend(std::fs::read(f).unwrap());
            // Blank lines are skipped, and the last line needs no newline.
            lines.extend_from_slice(if i == 1 { b"\n\n  \n" } else { b"\n" });
        }
        lines.pop();
        let jsonl = dir.path().join("pages.jsonl");
        std::fs::write(&jsonl, &lines).unwrap();
        let (source, total) = open_pages(&jsonl).unwrap();
        assert_eq!(total, None);
        let mut seen = Vec::new();
        decode_in_order(source, 3, &splitter(), |page| {
            seen.push(page.origin().to_string());
            Ok(())
        })
        .unwrap();
        let name = jsonl.display();
        let expected: Vec<String> = [1, 2, 5, 6, 7]
            .iter()
            .map(|n| format!("{name} line {n}"))
            .collect();
        assert_eq!(seen, expected);
    }

    async fn convert(input: &Path, out: &Path, threads: usize) -> crate::DropReport {
        let source = SavedPages::open(input, None, None)
            .unwrap()
            .with_threads(threads);
        std::fs::create_dir_all(out).unwrap();
        let plan = crate::DropPlan {
            drop: crate::PlannedDrop::new(),
            prefix: lpdrop_drop::Prefix::default(),
            job: None,
            output: crate::OutputSettings::default(),
        };
        let store = Arc::new(lpdrop_drop::LocalStore::new(out));
        crate::run_drop(source, plan, store, None, Arc::new(crate::NoProgress))
            .await
            .unwrap()
    }

    /// Each table of the drop and its row count.
    fn table_rows(report: &crate::DropReport) -> Vec<(String, u64)> {
        report
            .drop
            .manifest
            .tables
            .iter()
            .map(|t| (t.name.clone(), t.rows))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_conversation_seen_twice_keeps_its_first_sighting_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("pages");
        let files = pages(&input, 40);
        let plain = convert(&input, &dir.path().join("plain"), 2).await;
        // The last file repeats the first page with every conversation still open: being
        // later in file order, it is the duplicate, however the pages were decoded.
        let mut page: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
        for record in page["conversationHistoryRecords"].as_array_mut().unwrap() {
            record["info"]["status"] = "OPEN".into();
        }
        std::fs::write(input.join("zz-repeated.json"), page.to_string()).unwrap();
        for threads in [1, 3] {
            let report = convert(&input, &dir.path().join(format!("dup-{threads}")), threads).await;
            assert_eq!(report.stats.conversations, 40);
            assert_eq!(report.stats.duplicates, 10);
            assert_eq!(report.open_conversation_ids, plain.open_conversation_ids);
            // The repeats' rows are left out of every table, not only `conversations`.
            assert_eq!(table_rows(&report), table_rows(&plain));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_of_pages_converts_like_the_folder_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("pages");
        let files = pages(&input, 45);
        let mut lines = Vec::new();
        for f in &files {
            lines.extend(std::fs::read(f).unwrap());
            lines.push(b'\n');
        }
        let jsonl = dir.path().join("pages.jsonl");
        std::fs::write(&jsonl, &lines).unwrap();
        let folder = convert(&input, &dir.path().join("from-folder"), 2).await;
        let file = convert(&jsonl, &dir.path().join("from-file"), 2).await;
        assert_eq!(file.stats.conversations, 45);
        assert_eq!(file.stats.pages, folder.stats.pages);
        assert_eq!(file.stats.input_bytes, folder.stats.input_bytes + 5);
        assert_eq!(file.open_conversation_ids, folder.open_conversation_ids);
        assert_eq!(table_rows(&file), table_rows(&folder));
    }
}
