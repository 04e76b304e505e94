//! From search pages to a committed drop: decode each record, keep it only inside its exact
//! window and once, split it into table rows, hand full batches to the drop writer.

use std::collections::HashSet;

use anyhow::{Context, Result};
use lpdrop_drop::{CommittedDrop, DropInfo, DropWriter};
use lpdrop_liveperson::page::{decode_record, parse_page};
use lpdrop_liveperson::{FetchedPage, Window};
use lpdrop_tables::{Lineage, MessagingTables, QuarantinedRecord};

/// Rows per record batch handed to the parquet writer.
const BATCH_ROWS: usize = 8192;
/// A table buffer is also cut when its values reach about this many bytes (long transcripts).
const BATCH_BYTES: usize = 16 << 20;

/// Counts of what went through the pipeline.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConvertStats {
    pub pages: u64,
    pub records: u64,
    pub conversations: u64,
    pub open_conversations: u64,
    /// Returned because the API widens windows to 10 minutes; they belong to a neighbour.
    pub outside_window: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    pub input_bytes: u64,
}

pub struct Converter {
    writer: DropWriter,
    tables: MessagingTables,
    lineage: Lineage,
    /// The sub-window whose ids `seen` holds: each conversation belongs to exactly one
    /// sub-window (by its start time), so duplicates can only occur within one.
    current_window: Option<Window>,
    seen: HashSet<String>,
    pub stats: ConvertStats,
}

impl Converter {
    pub fn new(writer: DropWriter, lineage: Lineage) -> Self {
        Converter {
            writer,
            tables: MessagingTables::new(),
            lineage,
            current_window: None,
            seen: HashSet::new(),
            stats: ConvertStats::default(),
        }
    }

    pub fn page(&mut self, page: &FetchedPage) -> Result<()> {
        let parsed = parse_page(&page.body)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("page {} offset {}", page.window, page.offset))?;
        self.stats.pages += 1;
        self.stats.input_bytes += page.body.len() as u64;
        if self.current_window != Some(page.window) {
            self.current_window = Some(page.window);
            self.seen.clear();
        }
        for (i, raw) in parsed.records.iter().enumerate() {
            self.stats.records += 1;
            let conversation = match decode_record(raw) {
                Ok(c) => c,
                Err(reason) => {
                    self.stats.quarantined += 1;
                    self.writer.quarantine(&QuarantinedRecord {
                        reason,
                        origin: format!(
                            "MI search {} offset {} record {i}",
                            page.window, page.offset
                        ),
                        record: raw.get().to_string(),
                    })?;
                    continue;
                }
            };
            let start = conversation
                .info
                .start_time_l
                .0
                .expect("checked by decode_record");
            if !page.window.contains(start) {
                self.stats.outside_window += 1;
                continue;
            }
            let id = conversation
                .info
                .conversation_id
                .0
                .clone()
                .expect("checked by decode_record");
            if !self.seen.insert(id) {
                self.stats.duplicates += 1;
                continue;
            }
            if conversation.info.status.0.as_deref() == Some("OPEN") {
                self.stats.open_conversations += 1;
            }
            self.tables.append(&conversation);
            self.stats.conversations += 1;
        }
        self.flush(false)
    }

    /// Hands buffered rows to the writer: full buffers only, or everything at the end.
    fn flush(&mut self, all: bool) -> Result<()> {
        for buffer in self.tables.buffers_mut() {
            let full = buffer.rows() >= BATCH_ROWS || buffer.approx_bytes() >= BATCH_BYTES;
            if buffer.rows() > 0 && (all || full) {
                let batch = buffer.finish_batch(&self.lineage);
                self.writer.write_batch(buffer.def().name, &batch)?;
            }
        }
        Ok(())
    }

    /// Writes what is left and commits the drop.
    pub fn commit(mut self, mut info: DropInfo) -> Result<(CommittedDrop, ConvertStats)> {
        self.flush(true)?;
        info.source.conversations = self.stats.conversations;
        info.source.open_conversations = self.stats.open_conversations;
        let committed = self.writer.commit(info)?;
        Ok((committed, self.stats))
    }
}
