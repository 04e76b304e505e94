//! From search pages to a committed drop: decode each record, keep it only inside its exact
//! window and once, split it into table rows, hand full batches to the drop writer.

use std::cell::OnceCell;
use std::sync::{Arc, mpsc};

use anyhow::{Context, Result};
use arrow::array::BooleanArray;
use arrow::compute::filter_record_batch;
use arrow::record_batch::RecordBatch;
use lpdrop_drop::writer::MemoryStats;
use lpdrop_drop::{CommittedDrop, DropError, DropInfo, DropWriter};
use lpdrop_liveperson::page::{
    Refused, decode_agent_group, decode_chat_record, decode_page_at_once, decode_record,
    decode_repaired, decode_skill, decode_user, parse_chat_page, parse_entity_list, parse_page,
    parse_repairing,
};
use lpdrop_liveperson::webhook::notification::Change;
use lpdrop_liveperson::{AccountEntity, Conversation, Window};
use lpdrop_tables::mapping::{AddedColumns, AddedValues, TableMapping};
use lpdrop_tables::webhooks::{Appended, Received, RowKey};
use lpdrop_tables::{
    ChatTables, ColumnMapping, DimensionTables, Lineage, MessagingTables, QuarantinedRecord,
    Source, TableBuffer, WebhookTables,
};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::dedup::Dedup;

/// Rows per record batch handed to the parquet writer.
const BATCH_ROWS: usize = 8192;
/// A table buffer is also cut when its values reach about this many bytes (long transcripts).
const BATCH_BYTES: usize = 16 << 20;
/// All table buffers of a drop together: past this, the largest are handed to the writer
/// early, so that 32 tables cannot hold 32 × [`BATCH_BYTES`] between them.
const BUFFERS_BYTES: usize = 32 << 20;

/// What a decoding thread needs to turn a Messaging Interactions search page into table
/// batches: the drop's lineage and its column mapping. Decoding a page and splitting its
/// records into rows are the costly part, and need nothing else of the [`DropBuilder`], so
/// `convert` does both on several threads ([`PageSplitter::split`]) and hands the pages over
/// in file order ([`DropBuilder::decoded_page`]), which keeps the drop independent of thread
/// timing. Made by [`DropBuilder::page_splitter`].
#[derive(Clone)]
pub struct PageSplitter {
    lineage: Lineage,
    mapping: Option<Arc<ColumnMapping>>,
}

/// A search page, decoded and split into one batch per table it has rows of. Which records
/// are kept (inside the window, seen for the first time) is the builder's to say, in page
/// order: until then every readable record's rows are in the batches.
pub struct DecodedPage {
    origin: String,
    input_bytes: u64,
    /// Each record in page order: what the builder decides on, or why it is unreadable.
    records: Vec<Result<RecordFacts, Unreadable>>,
    batches: Vec<PageBatch>,
}

#[cfg(test)]
impl DecodedPage {
    /// The page's name in errors and quarantine entries (its file, for `convert`).
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// What the builder needs to know of a decoded conversation to keep it or not.
struct RecordFacts {
    id: String,
    start_ms: i64,
    open: bool,
}

/// The rows of one table from one page.
struct PageBatch {
    table: &'static str,
    batch: RecordBatch,
    /// Record `i`'s rows are `starts[i]..starts[i + 1]` (an unreadable record has none).
    starts: Vec<u32>,
}

/// A record that could not be read: it goes to quarantine, with its bytes as received.
type Unreadable = Refused;

impl PageSplitter {
    pub fn new(lineage: Lineage, mapping: Option<Arc<ColumnMapping>>) -> Self {
        PageSplitter { lineage, mapping }
    }

    /// Parses and decodes one search page, and splits its records into table batches (as the
    /// column mapping maps them); `origin` names the page in errors and quarantine.
    pub fn split(&self, body: &[u8], origin: &str) -> Result<DecodedPage> {
        let mapping = self.mapping.as_deref();
        let records = decode_conversations(body, origin, mapping)?;
        let mut tables = MessagingTables::new();
        let mut added: Vec<_> = added_by(mapping, CONVERSATIONS)
            .map(|m| (CONVERSATIONS, m.builder()))
            .into_iter()
            .collect();
        let mut starts: Vec<Vec<u32>> = tables
            .buffers()
            .iter()
            .map(|_| {
                let mut s = Vec::with_capacity(records.len() + 1);
                s.push(0);
                s
            })
            .collect();
        let mut facts = Vec::with_capacity(records.len());
        for decoded in records {
            facts.push(decoded.map(|(mut c, values)| {
                tables.append(&c);
                if let Some((_, columns)) = added.first_mut() {
                    columns.push(&values);
                }
                RecordFacts {
                    start_ms: c.info.start_time_l.0.expect("checked by decode_record"),
                    open: c.info.status.0.as_deref() == Some("OPEN"),
                    id: c
                        .info
                        .conversation_id
                        .0
                        .take()
                        .expect("checked by decode_record"),
                }
            }));
            for (s, buffer) in starts.iter_mut().zip(tables.buffers()) {
                s.push(u32::try_from(buffer.rows()).expect("a page holds fewer than 2^32 rows"));
            }
        }
        let batches = tables
            .buffers_mut()
            .iter_mut()
            .zip(starts)
            .filter(|(buffer, _)| buffer.rows() > 0)
            .map(|(buffer, starts)| {
                let table = buffer.def().name;
                let batch = buffer.finish_batch(&self.lineage);
                PageBatch {
                    table,
                    batch: mapped_batch(mapping, &mut added, table, batch),
                    starts,
                }
            })
            .collect();
        Ok(DecodedPage {
            origin: origin.to_string(),
            input_bytes: body.len() as u64,
            records: facts,
            batches,
        })
    }
}

/// Each record of a search page, decoded, with the values of the columns a column mapping
/// adds to `conversations`; or why it cannot be read.
fn decode_conversations(
    body: &[u8],
    origin: &str,
    mapping: Option<&ColumnMapping>,
) -> Result<Vec<Result<(Conversation, AddedValues), Unreadable>>> {
    let adds = added_by(mapping, CONVERSATIONS);
    // Added columns are read from each record's own bytes, which only the record-by-record
    // path keeps.
    if adds.is_none()
        && let Some(records) = decode_page_at_once(body)
    {
        return Ok(records
            .into_iter()
            .map(|c| Ok((c, AddedValues::default())))
            .collect());
    }
    let repaired = OnceCell::new();
    let parsed = parse_repairing(body, &repaired, parse_page)
        .map_err(anyhow::Error::msg)
        .with_context(|| origin.to_string())?;
    Ok(parsed
        .records
        .iter()
        .map(|raw| {
            decode_repaired(raw, &repaired, decode_record)
                .map(|c| (c, adds.map(|m| m.values(raw)).unwrap_or_default()))
        })
        .collect())
}

/// `batch` without the rows of the records in `left_out` (indices in page order).
fn without_records(batch: &RecordBatch, starts: &[u32], left_out: &[usize]) -> Result<RecordBatch> {
    let mut keep = vec![true; batch.num_rows()];
    for &i in left_out {
        keep[starts[i] as usize..starts[i + 1] as usize].fill(false);
    }
    Ok(filter_record_batch(batch, &BooleanArray::from(keep))?)
}

/// The root tables, whose rows are whole records: the tables a column mapping adds to.
const CONVERSATIONS: &str = "conversations";
const CHATS: &str = "chats";

fn entity_table(entity: AccountEntity) -> &'static str {
    match entity {
        AccountEntity::Users => "agents",
        AccountEntity::Skills => "skills",
        AccountEntity::AgentGroups => "agent_groups",
    }
}

/// The mapping of `table`, when the column mapping adds columns to it.
fn added_by<'a>(mapping: Option<&'a ColumnMapping>, table: &str) -> Option<&'a TableMapping> {
    mapping
        .and_then(|m| m.table(table))
        .filter(|t| t.adds_columns())
}

/// Counts of what went through the pipeline.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildStats {
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

/// The table buffers of one source: a drop holds the tables of exactly one.
enum Tables {
    /// No buffers: a messaging page's rows are split on a decoding thread ([`PageSplitter`])
    /// and reach the writer as the page's batches.
    Messaging,
    Chat(ChatTables),
    Dimensions(DimensionTables),
    Webhooks(WebhookTables),
}

impl Tables {
    fn of(source: Source) -> Self {
        match source {
            Source::Messaging => Tables::Messaging,
            Source::Chat => Tables::Chat(ChatTables::new()),
            Source::Dimensions => Tables::Dimensions(DimensionTables::new()),
            Source::Webhooks => Tables::Webhooks(WebhookTables::new()),
        }
    }

    fn source(&self) -> Source {
        match self {
            Tables::Messaging => Source::Messaging,
            Tables::Chat(_) => Source::Chat,
            Tables::Dimensions(_) => Source::Dimensions,
            Tables::Webhooks(_) => Source::Webhooks,
        }
    }

    fn buffers_mut(&mut self) -> &mut [TableBuffer] {
        match self {
            Tables::Messaging => &mut [],
            Tables::Chat(t) => t.buffers_mut(),
            Tables::Dimensions(t) => t.buffers_mut(),
            Tables::Webhooks(t) => t.buffers_mut(),
        }
    }
}

/// Where finished batches go: straight into the drop writer, or to a thread that owns it, so
/// that parquet encoding overlaps with splitting records into tables.
// One per drop: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum WriterHandle {
    Inline(DropWriter),
    Background {
        /// `None` once closed.
        to_writer: Option<mpsc::SyncSender<ToWriter>>,
        writer: Option<std::thread::JoinHandle<Result<DropWriter, DropError>>>,
    },
}

/// One write for the drop writer: a batch of a table, or a quarantined record.
type ToWriter = Box<dyn FnOnce(&mut DropWriter) -> Result<(), DropError> + Send>;

/// Batches that may wait for the writer thread: a few, so that memory stays flat.
const BATCHES_AHEAD: usize = 2;

impl WriterHandle {
    fn background(mut writer: DropWriter) -> Self {
        let (tx, rx) = mpsc::sync_channel::<ToWriter>(BATCHES_AHEAD);
        let thread = std::thread::Builder::new()
            .name("lpdrop-parquet".into())
            .spawn(move || {
                for write in rx {
                    write(&mut writer)?;
                }
                Ok(writer)
            })
            .expect("spawning the parquet writer thread");
        WriterHandle::Background {
            to_writer: Some(tx),
            writer: Some(thread),
        }
    }

    fn send(&mut self, write: ToWriter) -> Result<()> {
        match self {
            WriterHandle::Inline(writer) => write(writer)?,
            WriterHandle::Background { to_writer, .. } => {
                let sent = to_writer.as_ref().map(|tx| tx.send(write));
                if !matches!(sent, Some(Ok(()))) {
                    // The writer thread stopped: its error says why.
                    self.close()?;
                    anyhow::bail!("the parquet writer thread stopped");
                }
            }
        }
        Ok(())
    }

    /// Waits for everything sent to be written; the writer, for the commit.
    fn close(&mut self) -> Result<&mut DropWriter> {
        if let WriterHandle::Background { to_writer, writer } = self {
            to_writer.take();
            let thread = writer
                .take()
                .ok_or_else(|| anyhow::anyhow!("the parquet writer thread already failed"))?;
            let written = thread
                .join()
                .map_err(|_| anyhow::anyhow!("the parquet writer thread panicked"))??;
            *self = WriterHandle::Inline(written);
        }
        match self {
            WriterHandle::Inline(writer) => Ok(writer),
            WriterHandle::Background { .. } => unreachable!("closed above"),
        }
    }
}

/// Builds one drop from records: decodes them, keeps each only inside its window and once,
/// splits it into table rows and hands full batches to the drop writer; then commits.
pub struct DropBuilder {
    writer: WriterHandle,
    tables: Tables,
    /// The column mapping, and the added columns of the root rows buffered in `tables`.
    mapping: Option<Arc<ColumnMapping>>,
    added: Vec<(&'static str, AddedColumns)>,
    lineage: Lineage,
    dedup: Dedup,
    /// Earliest and latest start time kept, for a manifest window when none was given.
    pub start_range: Option<(i64, i64)>,
    /// Conversations still OPEN at extraction: a later job fetches them again once closed.
    /// Only the open ones are kept (a few percent), so this stays small.
    pub open_conversation_ids: Vec<String>,
    pub stats: BuildStats,
    /// Rows appended to any table (webhook drops; the others count records in `stats`).
    rows_written: u64,
}

impl DropBuilder {
    /// For `sync`: de-duplicates within each sub-window.
    pub fn new(writer: DropWriter, lineage: Lineage, source: Source) -> Self {
        Self::with_dedup(writer, lineage, source, Dedup::per_window())
    }

    /// For `lpdrop listen`: a drop of webhook notifications (what is a repeat there is the
    /// listener's to say: see [`DropBuilder::webhook_notification`]).
    pub fn for_webhooks(writer: DropWriter, lineage: Lineage) -> Self {
        Self::with_dedup(writer, lineage, Source::Webhooks, Dedup::global())
    }

    /// For `convert`: de-duplicates across every page, and encodes parquet on a thread of its
    /// own (batches reach it through a bounded channel).
    pub fn for_saved_pages(writer: DropWriter, lineage: Lineage, source: Source) -> Self {
        let mut converter = Self::with_dedup(writer, lineage, source, Dedup::global());
        if let WriterHandle::Inline(writer) = converter.writer {
            converter.writer = WriterHandle::background(writer);
        }
        converter
    }

    fn with_dedup(writer: DropWriter, lineage: Lineage, source: Source, dedup: Dedup) -> Self {
        DropBuilder {
            writer: WriterHandle::Inline(writer),
            tables: Tables::of(source),
            mapping: None,
            added: Vec::new(),
            lineage,
            dedup,
            start_range: None,
            open_conversation_ids: Vec::new(),
            stats: BuildStats::default(),
            rows_written: 0,
        }
    }

    /// Applies a column mapping to the drop: its tables are written as mapped, and the
    /// manifest records the mapping. Call before the first page.
    pub fn with_column_mapping(mut self, mapping: Option<Arc<ColumnMapping>>) -> Result<Self> {
        let Some(mapping) = mapping else {
            return Ok(self);
        };
        let defs = lpdrop_tables::tables_of(self.tables.source());
        // Only the tables buffered here take added values here; a messaging page's are added
        // on its decoding thread.
        self.added = self
            .tables
            .buffers_mut()
            .iter()
            .filter_map(|b| {
                let name = b.def().name;
                added_by(Some(&mapping), name).map(|m| (name, m.builder()))
            })
            .collect();
        let (mapped, summary) = (mapping.apply_to(defs), mapping.summary().clone());
        self.writer
            .send(Box::new(move |w| w.map_tables(&mapped, summary)))?;
        self.mapping = Some(mapping);
        Ok(self)
    }

    /// Buffers the added values of a root row just appended to `table`.
    fn push_added(&mut self, table: &str, values: &AddedValues) {
        if let Some((_, columns)) = self.added.iter_mut().find(|(t, _)| *t == table) {
            columns.push(values);
        }
    }

    /// The added values of `raw`, a record of root table `table`.
    fn added_values(&self, table: &str, raw: &RawValue) -> AddedValues {
        added_by(self.mapping.as_deref(), table)
            .map_or_else(AddedValues::default, |m| m.values(raw))
    }

    /// True the first time a conversation id is seen (in its window, for sync).
    fn first_sighting(&mut self, window: Option<Window>, id: &str) -> bool {
        self.dedup.first_sighting(window, id)
    }

    /// Decodes one search page. Records outside `window` (when given) are skipped: the API
    /// widens windows to 10 minutes, so they belong to a neighbour. `origin` names the page in
    /// quarantine entries.
    pub fn page(&mut self, body: &[u8], window: Option<Window>, origin: &str) -> Result<()> {
        match self.tables {
            Tables::Messaging => self.messaging_page(body, window, origin),
            Tables::Chat(_) => self.chat_page(body, window, origin),
            Tables::Dimensions(_) => {
                anyhow::bail!("{origin}: a dimension drop takes entity lists, not search pages")
            }
            Tables::Webhooks(_) => {
                anyhow::bail!("{origin}: a webhook drop takes notifications, not search pages")
            }
        }
    }

    fn quarantine(&mut self, unreadable: Unreadable, origin: String) -> Result<()> {
        self.stats.quarantined += 1;
        let record = QuarantinedRecord::new(unreadable.reason, origin, unreadable.record);
        self.writer.send(Box::new(move |w| w.quarantine(&record)))
    }

    /// Widens the kept start-time range by `start`.
    fn saw_start(&mut self, start: i64) {
        self.start_range = Some(match self.start_range {
            None => (start, start),
            Some((lo, hi)) => (lo.min(start), hi.max(start)),
        });
    }

    fn messaging_page(&mut self, body: &[u8], window: Option<Window>, origin: &str) -> Result<()> {
        let page = self.page_splitter().split(body, origin)?;
        self.decoded_page(page, window)
    }

    /// What splits search pages into this drop's table batches, on any thread.
    pub fn page_splitter(&self) -> PageSplitter {
        PageSplitter::new(self.lineage.clone(), self.mapping.clone())
    }

    /// Takes a page split by [`PageSplitter::split`], exactly as [`DropBuilder::page`] takes
    /// its bytes: records outside `window` are left out, and repeated conversations too (the
    /// first sighting wins, so pages must come in their order); unreadable ones go to
    /// quarantine.
    pub fn decoded_page(&mut self, page: DecodedPage, window: Option<Window>) -> Result<()> {
        let DecodedPage {
            origin,
            input_bytes,
            records,
            batches,
        } = page;
        self.stats.pages += 1;
        self.stats.input_bytes += input_bytes;
        let mut left_out = Vec::new();
        for (i, record) in records.into_iter().enumerate() {
            self.stats.records += 1;
            match record {
                Ok(facts) => {
                    if !self.keeps_conversation(facts, window) {
                        left_out.push(i);
                    }
                }
                Err(unreadable) => self.quarantine(unreadable, format!("{origin} record {i}"))?,
            }
        }
        let mut kept = Vec::with_capacity(batches.len());
        for PageBatch {
            table,
            batch,
            starts,
        } in batches
        {
            let batch = if left_out.is_empty() {
                batch
            } else {
                without_records(&batch, &starts, &left_out)?
            };
            if batch.num_rows() > 0 {
                kept.push((table, batch));
            }
        }
        // One hand-over per page: a page has rows in about twenty tables.
        if !kept.is_empty() {
            self.writer.send(Box::new(move |w| {
                kept.iter()
                    .try_for_each(|(table, batch)| w.write_batch(table, batch))
            }))?;
        }
        self.flush(false)
    }

    /// True when a decoded conversation is inside `window` and seen for the first time (its
    /// rows are kept), counted either way.
    fn keeps_conversation(&mut self, facts: RecordFacts, window: Option<Window>) -> bool {
        if window.is_some_and(|w| !w.contains(facts.start_ms)) {
            self.stats.outside_window += 1;
            return false;
        }
        if !self.first_sighting(window, &facts.id) {
            self.stats.duplicates += 1;
            return false;
        }
        if facts.open {
            self.stats.open_conversations += 1;
            self.open_conversation_ids.push(facts.id);
        }
        self.saw_start(facts.start_ms);
        self.stats.conversations += 1;
        true
    }

    /// An Engagement History page: the same rules as a messaging page, keyed by engagement id
    /// (the API returns ended chats only, so none is open).
    fn chat_page(&mut self, body: &[u8], window: Option<Window>, origin: &str) -> Result<()> {
        let repaired = OnceCell::new();
        let parsed = parse_repairing(body, &repaired, parse_chat_page)
            .map_err(anyhow::Error::msg)
            .with_context(|| origin.to_string())?;
        self.stats.pages += 1;
        self.stats.input_bytes += body.len() as u64;
        for (i, raw) in parsed.records.iter().enumerate() {
            self.stats.records += 1;
            let chat = match decode_repaired(raw, &repaired, decode_chat_record) {
                Ok(c) => c,
                Err(unreadable) => {
                    self.quarantine(unreadable, format!("{origin} record {i}"))?;
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
            let added = self.added_values(CHATS, raw);
            self.push_added(CHATS, &added);
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
        let repaired = OnceCell::new();
        let list = parse_repairing(body, &repaired, parse_entity_list)
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
                AccountEntity::Users => {
                    decode_repaired(raw, &repaired, decode_user).map(|u| tables.append_user(&u))
                }
                AccountEntity::Skills => {
                    decode_repaired(raw, &repaired, decode_skill).map(|k| tables.append_skill(&k))
                }
                AccountEntity::AgentGroups => decode_repaired(raw, &repaired, decode_agent_group)
                    .map(|g| tables.append_agent_group(&g)),
            };
            match appended {
                Ok(()) => {
                    let table = entity_table(entity);
                    let added = self.added_values(table, raw);
                    self.push_added(table, &added);
                    self.stats.entities += 1;
                }
                Err(unreadable) => self.quarantine(unreadable, format!("{origin} entity {i}"))?,
            }
        }
        self.flush(false)
    }

    /// One notification received by webhook, `body` as received at `received_ms` (the
    /// listener's entry into the builder). Rows whose key `is_new` accepts are appended (it is
    /// asked once per row, and remembers what it accepted); a body that is not a notification
    /// LivePerson documents, and each change that cannot be read, go to quarantine under
    /// `origin`, whole.
    pub fn webhook_notification(
        &mut self,
        received_ms: i64,
        body: &[u8],
        origin: &str,
        is_new: &mut dyn FnMut(RowKey) -> bool,
    ) -> Result<Appended> {
        let Tables::Webhooks(_) = self.tables else {
            anyhow::bail!("{origin}: only a webhook drop takes notifications");
        };
        self.stats.records += 1;
        self.stats.input_bytes += body.len() as u64;
        let sha = hex::encode(Sha256::digest(body));
        let notification = match lpdrop_liveperson::webhook::notification::decode(body) {
            Ok(n) => n,
            Err(reason) => {
                // Kept once, however often it is redelivered.
                if is_new(RowKey::quarantined(&sha)) {
                    let unreadable = Refused {
                        reason,
                        record: body.to_vec(),
                    };
                    self.quarantine(unreadable, origin.to_string())?;
                } else {
                    self.stats.duplicates += 1;
                }
                return Ok(Appended::default());
            }
        };
        let received = Received {
            at_ms: received_ms,
            body_sha256: &sha,
        };
        let Tables::Webhooks(tables) = &mut self.tables else {
            unreachable!("checked above");
        };
        let appended = tables.append(&received, &notification, is_new);
        self.stats.duplicates += appended.repeated;
        self.rows_written += appended.rows();
        let mut unreadable = Vec::new();
        for (i, (change, raw)) in notification.changes.iter().enumerate() {
            // A conversation counts when the notification brought something new about it.
            let new = appended.rows() > 0;
            if let Some(Change::Messaging(m)) = change.as_ref().ok().filter(|_| new) {
                self.count_conversation(&m.conversation_id);
            } else if let Some(Change::Conversation(c)) = change.as_ref().ok().filter(|_| new) {
                self.count_conversation(&c.conversation_id);
            } else if let (Err(reason), true) = (change, appended.events > 0) {
                // Quarantined with its notification's first delivery only.
                let record = raw.get().as_bytes().to_vec();
                unreadable.push((
                    Refused {
                        reason: reason.clone(),
                        record,
                    },
                    i,
                ));
            }
        }
        for (refused, i) in unreadable {
            self.quarantine(refused, format!("{origin} change {i}"))?;
        }
        if appended.rows() > 0 {
            self.saw_start(received_ms);
        }
        self.flush(false)?;
        Ok(appended)
    }

    /// True while nothing has been kept: no row in any table, nothing quarantined.
    pub fn is_empty(&self) -> bool {
        self.stats.quarantined == 0
            && self.rows_written == 0
            && self.stats.conversations + self.stats.entities == 0
    }

    /// Counts a conversation once per drop (the manifest's `source.conversations`).
    fn count_conversation(&mut self, id: &str) {
        if self.dedup.first_sighting(None, id) {
            self.stats.conversations += 1;
        }
    }

    /// Hands buffered rows to the writer: full buffers, then the largest others while all
    /// together hold more than [`BUFFERS_BYTES`]; or everything at the end.
    fn flush(&mut self, all: bool) -> Result<()> {
        let buffers = self.tables.buffers_mut();
        let mut held = 0;
        for buffer in buffers.iter_mut() {
            let full = buffer.rows() >= BATCH_ROWS || buffer.approx_bytes() >= BATCH_BYTES;
            if buffer.rows() > 0 && (all || full) {
                let (table, batch) = (buffer.def().name, buffer.finish_batch(&self.lineage));
                let batch = mapped_batch(self.mapping.as_deref(), &mut self.added, table, batch);
                self.writer
                    .send(Box::new(move |w| w.write_batch(table, &batch)))?;
            } else {
                held += buffer.approx_bytes();
            }
        }
        while held > BUFFERS_BYTES {
            let Some(largest) = buffers
                .iter_mut()
                .filter(|b| b.rows() > 0)
                .max_by_key(|b| b.approx_bytes())
            else {
                break;
            };
            held -= largest.approx_bytes();
            let (table, batch) = (largest.def().name, largest.finish_batch(&self.lineage));
            let batch = mapped_batch(self.mapping.as_deref(), &mut self.added, table, batch);
            self.writer
                .send(Box::new(move |w| w.write_batch(table, &batch)))?;
        }
        Ok(())
    }

    /// Writes what is left and commits the drop; `may_commit` is asked right before the
    /// manifest and the marker (see [`DropWriter::commit_fenced`]).
    pub fn commit(
        mut self,
        mut info: DropInfo,
        may_commit: &dyn Fn() -> Result<(), String>,
    ) -> Result<Built> {
        self.flush(true)?;
        info.source.conversations = self.stats.conversations;
        info.source.open_conversations = self.stats.open_conversations;
        self.writer.close()?;
        let WriterHandle::Inline(writer) = self.writer else {
            unreachable!("closed above");
        };
        let writer_memory = writer.memory_stats();
        let drop = writer.commit_fenced(info, may_commit)?;
        Ok(Built {
            drop,
            stats: self.stats,
            open_conversation_ids: self.open_conversation_ids,
            writer_memory,
        })
    }
}

/// A batch of a built-in table as the column mapping maps it (unchanged without one), with
/// the added columns buffered for its rows.
fn mapped_batch(
    mapping: Option<&ColumnMapping>,
    added: &mut [(&'static str, AddedColumns)],
    table: &str,
    batch: RecordBatch,
) -> RecordBatch {
    let Some(table_mapping) = mapping.and_then(|m| m.table(table)) else {
        return batch;
    };
    let arrays = match added.iter_mut().find(|(t, _)| *t == table) {
        Some((_, columns)) => {
            assert_eq!(
                columns.rows(),
                batch.num_rows(),
                "{table}: one added row per row"
            );
            columns.finish()
        }
        None => Vec::new(),
    };
    table_mapping.apply(&batch, arrays)
}

/// A committed drop and what went into it.
pub struct Built {
    pub drop: CommittedDrop,
    pub stats: BuildStats,
    pub open_conversation_ids: Vec<String>,
    /// What the drop writer's open row groups held (see [`DropWriter::memory_stats`]).
    pub writer_memory: MemoryStats,
}
