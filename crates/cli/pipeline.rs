//! From search pages to a committed drop: decode each record, keep it only inside its exact
//! window and once, split it into table rows, hand full batches to the drop writer.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use anyhow::{Context, Result};
use lpdrop_drop::{CommittedDrop, DropInfo, DropWriter};
use lpdrop_liveperson::Window;
use lpdrop_liveperson::page::{decode_record, parse_page};
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

/// How repeated conversations are recognised.
enum Dedup {
    /// Sync: each conversation belongs to exactly one sub-window (by its start time), so
    /// duplicates can only occur within one; the set is emptied when the sub-window changes.
    PerWindow {
        current: Option<Window>,
        seen: HashSet<String>,
    },
    /// Convert: saved pages may overlap anywhere. 64-bit hashes of the ids keep memory at
    /// about 16 bytes per conversation (a false match is about 1 in 10^7 at a billion ids).
    Global {
        hasher: RandomState,
        seen: HashSet<u64>,
    },
}

pub struct Converter {
    writer: DropWriter,
    tables: MessagingTables,
    lineage: Lineage,
    dedup: Dedup,
    /// Earliest and latest start time kept, for a manifest window when none was given.
    pub start_range: Option<(i64, i64)>,
    /// Conversations still OPEN at extraction: a later job fetches them again once closed.
    /// Only the open ones are kept (a few percent), so this stays small.
    pub open_conversation_ids: Vec<String>,
    pub stats: ConvertStats,
}

impl Converter {
    /// For `sync`: de-duplicates within each sub-window.
    pub fn new(writer: DropWriter, lineage: Lineage) -> Self {
        Self::with_dedup(
            writer,
            lineage,
            Dedup::PerWindow {
                current: None,
                seen: HashSet::new(),
            },
        )
    }

    /// For `convert`: de-duplicates across every page.
    pub fn for_saved_pages(writer: DropWriter, lineage: Lineage) -> Self {
        Self::with_dedup(
            writer,
            lineage,
            Dedup::Global {
                hasher: RandomState::new(),
                seen: HashSet::new(),
            },
        )
    }

    fn with_dedup(writer: DropWriter, lineage: Lineage, dedup: Dedup) -> Self {
        Converter {
            writer,
            tables: MessagingTables::new(),
            lineage,
            dedup,
            start_range: None,
            open_conversation_ids: Vec::new(),
            stats: ConvertStats::default(),
        }
    }

    /// True the first time a conversation id is seen (in its window, for sync).
    fn first_sighting(&mut self, window: Option<Window>, id: &str) -> bool {
        match &mut self.dedup {
            Dedup::PerWindow { current, seen } => {
                if *current != window {
                    *current = window;
                    seen.clear();
                }
                seen.insert(id.to_string())
            }
            Dedup::Global { hasher, seen } => seen.insert(hasher.hash_one(id)),
        }
    }

    /// Decodes one search page. Records outside `window` (when given) are skipped: the API
    /// widens windows to 10 minutes, so they belong to a neighbour. `origin` names the page in
    /// quarantine entries.
    pub fn page(&mut self, body: &[u8], window: Option<Window>, origin: &str) -> Result<()> {
        let parsed = parse_page(body)
            .map_err(anyhow::Error::msg)
            .with_context(|| origin.to_string())?;
        self.stats.pages += 1;
        self.stats.input_bytes += body.len() as u64;
        for (i, raw) in parsed.records.iter().enumerate() {
            self.stats.records += 1;
            let conversation = match decode_record(raw) {
                Ok(c) => c,
                Err(reason) => {
                    self.stats.quarantined += 1;
                    self.writer.quarantine(&QuarantinedRecord {
                        reason,
                        origin: format!("{origin} record {i}"),
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
            if window.is_some_and(|w| !w.contains(start)) {
                self.stats.outside_window += 1;
                continue;
            }
            let id = conversation
                .info
                .conversation_id
                .0
                .as_deref()
                .expect("checked by decode_record");
            if !self.first_sighting(window, id) {
                self.stats.duplicates += 1;
                continue;
            }
            if conversation.info.status.0.as_deref() == Some("OPEN") {
                self.stats.open_conversations += 1;
                self.open_conversation_ids.push(id.to_string());
            }
            self.start_range = Some(match self.start_range {
                None => (start, start),
                Some((lo, hi)) => (lo.min(start), hi.max(start)),
            });
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

    /// Writes what is left and commits the drop; `may_commit` is asked right before the
    /// manifest and the marker (see [`DropWriter::commit_fenced`]).
    pub fn commit(
        mut self,
        mut info: DropInfo,
        may_commit: &dyn Fn() -> Result<(), String>,
    ) -> Result<Converted> {
        self.flush(true)?;
        info.source.conversations = self.stats.conversations;
        info.source.open_conversations = self.stats.open_conversations;
        let drop = self.writer.commit_fenced(info, may_commit)?;
        Ok(Converted {
            drop,
            stats: self.stats,
            open_conversation_ids: self.open_conversation_ids,
        })
    }
}

/// A committed drop and what went into it.
pub struct Converted {
    pub drop: CommittedDrop,
    pub stats: ConvertStats,
    pub open_conversation_ids: Vec<String>,
}
