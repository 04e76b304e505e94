//! From search pages to a committed drop: decode each record, keep it only inside its exact
//! window and once, split it into table rows, hand full batches to the drop writer.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use anyhow::{Context, Result};
use lpdrop_drop::{CommittedDrop, DropInfo, DropWriter};
use lpdrop_liveperson::page::{
    decode_agent_group, decode_chat_record, decode_record, decode_skill, decode_user,
    parse_chat_page, parse_entity_list, parse_page,
};
use lpdrop_liveperson::{AccountEntity, Window};
use lpdrop_tables::{
    ChatTables, DimensionTables, Lineage, MessagingTables, QuarantinedRecord, Source, TableBuffer,
};

/// Rows per record batch handed to the parquet writer.
const BATCH_ROWS: usize = 8192;
/// A table buffer is also cut when its values reach about this many bytes (long transcripts).
const BATCH_BYTES: usize = 16 << 20;

/// Counts of what went through the pipeline.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConvertStats {
    pub pages: u64,
    pub records: u64,
    /// Conversations (messaging) or chats (chat) written; 0 for dimension drops.
    pub conversations: u64,
    /// Users, skills and agent groups written (dimension drops).
    pub entities: u64,
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

/// The table buffers of one source: a drop holds the tables of exactly one.
enum Tables {
    Messaging(MessagingTables),
    Chat(ChatTables),
    Dimensions(DimensionTables),
}

impl Tables {
    fn of(source: Source) -> Self {
        match source {
            Source::Messaging => Tables::Messaging(MessagingTables::new()),
            Source::Chat => Tables::Chat(ChatTables::new()),
            Source::Dimensions => Tables::Dimensions(DimensionTables::new()),
        }
    }

    fn buffers_mut(&mut self) -> &mut [TableBuffer] {
        match self {
            Tables::Messaging(t) => t.buffers_mut(),
            Tables::Chat(t) => t.buffers_mut(),
            Tables::Dimensions(t) => t.buffers_mut(),
        }
    }
}

pub struct Converter {
    writer: DropWriter,
    tables: Tables,
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
    pub fn new(writer: DropWriter, lineage: Lineage, source: Source) -> Self {
        Self::with_dedup(
            writer,
            lineage,
            source,
            Dedup::PerWindow {
                current: None,
                seen: HashSet::new(),
            },
        )
    }

    /// For `convert`: de-duplicates across every page.
    pub fn for_saved_pages(writer: DropWriter, lineage: Lineage, source: Source) -> Self {
        Self::with_dedup(
            writer,
            lineage,
            source,
            Dedup::Global {
                hasher: RandomState::new(),
                seen: HashSet::new(),
            },
        )
    }

    fn with_dedup(writer: DropWriter, lineage: Lineage, source: Source, dedup: Dedup) -> Self {
        Converter {
            writer,
            tables: Tables::of(source),
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
        match self.tables {
            Tables::Messaging(_) => self.messaging_page(body, window, origin),
            Tables::Chat(_) => self.chat_page(body, window, origin),
            Tables::Dimensions(_) => {
                anyhow::bail!("{origin}: a dimension drop takes entity lists, not search pages")
            }
        }
    }

    fn quarantine(
        &mut self,
        reason: String,
        origin: String,
        raw: &serde_json::value::RawValue,
    ) -> Result<()> {
        self.stats.quarantined += 1;
        self.writer.quarantine(&QuarantinedRecord {
            reason,
            origin,
            record: raw.get().to_string(),
        })?;
        Ok(())
    }

    /// Widens the kept start-time range by `start`.
    fn saw_start(&mut self, start: i64) {
        self.start_range = Some(match self.start_range {
            None => (start, start),
            Some((lo, hi)) => (lo.min(start), hi.max(start)),
        });
    }

    fn messaging_page(&mut self, body: &[u8], window: Option<Window>, origin: &str) -> Result<()> {
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
                    self.quarantine(reason, format!("{origin} record {i}"), raw)?;
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
            self.saw_start(start);
            if let Tables::Messaging(tables) = &mut self.tables {
                tables.append(&conversation);
            }
            self.stats.conversations += 1;
        }
        self.flush(false)
    }

    /// An Engagement History page: the same rules as a messaging page, keyed by engagement id
    /// (the API returns ended chats only, so none is open).
    fn chat_page(&mut self, body: &[u8], window: Option<Window>, origin: &str) -> Result<()> {
        let parsed = parse_chat_page(body)
            .map_err(anyhow::Error::msg)
            .with_context(|| origin.to_string())?;
        self.stats.pages += 1;
        self.stats.input_bytes += body.len() as u64;
        for (i, raw) in parsed.records.iter().enumerate() {
            self.stats.records += 1;
            let chat = match decode_chat_record(raw) {
                Ok(c) => c,
                Err(reason) => {
                    self.quarantine(reason, format!("{origin} record {i}"), raw)?;
                    continue;
                }
            };
            let start = chat
                .info
                .start_time_l
                .0
                .expect("checked by decode_chat_record");
            if window.is_some_and(|w| !w.contains(start)) {
                self.stats.outside_window += 1;
                continue;
            }
            let id = chat
                .info
                .engagement_id
                .0
                .as_deref()
                .expect("checked by decode_chat_record");
            if !self.first_sighting(window, id) {
                self.stats.duplicates += 1;
                continue;
            }
            self.saw_start(start);
            if let Tables::Chat(tables) = &mut self.tables {
                tables.append(&chat);
            }
            self.stats.conversations += 1;
        }
        self.flush(false)
    }

    /// One account configuration list (users, skills or agent groups) for a dimension drop.
    /// Every entity is kept: deleted ones too, flagged in their `deleted` column.
    pub fn entities(&mut self, entity: AccountEntity, body: &[u8], origin: &str) -> Result<()> {
        let Tables::Dimensions(_) = self.tables else {
            anyhow::bail!("{origin}: only a dimension drop takes entity lists");
        };
        let list = parse_entity_list(body)
            .map_err(anyhow::Error::msg)
            .with_context(|| origin.to_string())?;
        self.stats.pages += 1;
        self.stats.input_bytes += body.len() as u64;
        for (i, raw) in list.iter().enumerate() {
            self.stats.records += 1;
            let Tables::Dimensions(tables) = &mut self.tables else {
                unreachable!("checked above");
            };
            let appended = match entity {
                AccountEntity::Users => decode_user(raw).map(|u| tables.append_user(&u)),
                AccountEntity::Skills => decode_skill(raw).map(|k| tables.append_skill(&k)),
                AccountEntity::AgentGroups => {
                    decode_agent_group(raw).map(|g| tables.append_agent_group(&g))
                }
            };
            match appended {
                Ok(()) => self.stats.entities += 1,
                Err(reason) => self.quarantine(reason, format!("{origin} entity {i}"), raw)?,
            }
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
