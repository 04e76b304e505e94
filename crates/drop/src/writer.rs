//! Writing a drop: parquet files per table, the quarantine file, then the commit.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use lpdrop_tables::{MappingSummary, QuarantinedRecord, SCHEMA_VERSION, TableDef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowWriterOptions, PageKey, PageStore, PageStoreArgs, PageStoreFactory,
};
use parquet::basic::Compression;
use parquet::file::properties::{WriterProperties, WriterVersion};
use sha2::{Digest, Sha256};

use crate::layout::DropLayout;
use crate::manifest::JobRef;
use crate::manifest::{
    FileEntry, MANIFEST_FORMAT_VERSION, Manifest, Marker, Producer, QuarantineEntry, SourceInfo,
    TableEntry, Totals,
};
use crate::store::{ObjectStore, StoreError};

/// Why a drop could not be written or committed. Nothing is committed after any of these.
#[derive(Debug, thiserror::Error)]
pub enum DropError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `path` is the local file written (the staged file, for a remote store). As in
    /// [`StoreError`], the cause is in the message and not an error `source`: the chain printed
    /// with `{:#}` would say it twice.
    #[error("writing {path}: {cause}")]
    Io { path: String, cause: io::Error },
    /// See [`parquet_error`]: an I/O error inside is reported as [`DropError::Io`].
    #[error("encoding parquet for table {table} into {path}: {cause}")]
    Parquet {
        table: String,
        path: String,
        cause: parquet::errors::ParquetError,
    },
    #[error("unknown table {0}")]
    UnknownTable(String),
    #[error("the drop {0} already has an upload.complete marker")]
    AlreadyCommitted(String),
    #[error("not committing: {0}")]
    Fenced(String),
    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),
}

/// Sizes that shape the files readers get (pitfalls P7), and the writer's memory.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// A row group is closed once its encoded size reaches this (default 64 MiB).
    pub row_group_bytes: usize,
    /// A file is closed and the next part started past this size (default 256 MiB).
    pub max_file_bytes: u64,
    pub compression: Compression,
    /// Memory that the open row groups of all tables may hold together (default 128 MiB).
    /// Past it, the row group holding the most memory is written out early, then the next,
    /// until the total is back under, so it stays bounded however long the input is. Small
    /// tables are not cut into tiny row groups, because the largest goes first.
    pub memory_budget_bytes: usize,
    /// The budget prefers to write out a row group of at least this encoded size
    /// (default 16 MiB). It takes a smaller one only when no row group that big would bring
    /// the total back under the budget.
    pub min_row_group_bytes: usize,
    /// Keep the finished pages of open row groups in an unnamed temporary file next to the
    /// staged parquet file, instead of in memory (default on). Row groups then grow to
    /// `row_group_bytes` while only the column encoders stay in memory: dictionaries and
    /// the pages being built. Each page is written once more and read back once, in
    /// practice from the page cache.
    pub spill_pages: bool,
    /// Target size of a data page (default 64 KiB, the size of a snappy block, so nothing
    /// is lost to compression). Each column of each open row group builds one page in memory.
    pub data_page_bytes: usize,
    /// A column falls back from dictionary to plain encoding once its dictionary reaches
    /// this size (default 64 KiB). Each column of each open row group holds its dictionary
    /// in memory until then.
    pub dictionary_page_bytes: usize,
    /// A data page is also cut at this many rows (default 4096). A dictionary-encoded
    /// column keeps 8 bytes per row of its page in memory, so this, more than the page size,
    /// sets what a sparse text column holds.
    pub data_page_rows: usize,
    /// When the whole process's heap, as the allocator counts it ([`crate::heap`]), is
    /// above this, the open row groups are written out early, largest first, as for
    /// `memory_budget_bytes`, until it is under again (default 384 MiB; `None`: off). The
    /// budget above counts what the encoders report using; this counts what they really
    /// hold (buffer capacities, dictionaries' hash tables, codec state), and everything
    /// else the process holds too. A safety net: it trades row-group size for memory, and
    /// the emulator's data set never reaches the default, even at a million conversations.
    /// The heap is looked at no more often than every few milliseconds.
    pub heap_limit_bytes: Option<usize>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            row_group_bytes: 64 << 20,
            max_file_bytes: 256 << 20,
            compression: Compression::SNAPPY,
            memory_budget_bytes: 128 << 20,
            min_row_group_bytes: 16 << 20,
            spill_pages: true,
            // arrow-rs defaults to 1 MiB, 1 MiB and 20,000 rows. A messaging drop has about
            // 480 columns, and with those their encoders alone went past the budget at
            // 100,000 conversations. With these (profiled with heaptrack, benches/RESULTS.md)
            // peak RSS at 1,000,000 conversations went from 316 to about 240 MiB, and the
            // files come out within 2% of the size the arrow-rs defaults give.
            data_page_bytes: 64 << 10,
            dictionary_page_bytes: 64 << 10,
            data_page_rows: 4096,
            heap_limit_bytes: Some(384 << 20),
        }
    }
}

/// What the writer's open row groups held, for tests, logs and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Memory held now by the open row groups of all tables: their column encoders, and
    /// their finished pages unless those are spilled.
    pub buffered_bytes: usize,
    /// The highest total seen. It is measured right after a batch is appended, before any
    /// row group is written out for the budget, so it is at most the budget plus what one
    /// batch adds.
    pub peak_buffered_bytes: usize,
    /// Row groups written out early because the total went past the budget.
    pub budget_flushes: u64,
    /// Row groups written out early because the process's heap went past
    /// [`WriterOptions::heap_limit_bytes`].
    pub heap_flushes: u64,
    /// The most heap the process held when the writer looked (0: never looked).
    pub peak_heap_bytes: usize,
}

impl WriterOptions {
    fn properties(&self) -> WriterProperties {
        WriterProperties::builder()
            // Set explicitly: arrow-rs defaults to uncompressed.
            .set_compression(self.compression)
            // Data page v1 is what every engine reads (pitfalls P6).
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_created_by(format!("lpdrop {}", env!("CARGO_PKG_VERSION")))
            .set_data_page_size_limit(self.data_page_bytes)
            .set_dictionary_page_size_limit(self.dictionary_page_bytes)
            .set_data_page_row_count_limit(self.data_page_rows)
            .build()
    }
}

/// Counts bytes and hashes them on their way to the file.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Finished pages of one file's open row group, kept in an unnamed temporary file: every
/// column chunk of the file shares it, each page is read back once when its row group is
/// written out, and the file is emptied whenever no page is left in it.
struct SpillFile {
    file: File,
    /// Bytes handed over so far (written, or waiting in `pending`).
    len: u64,
    /// Small pages are gathered here and written together.
    pending: Vec<u8>,
    /// Where `pending` starts in the file.
    pending_at: u64,
    /// Pages put and not yet taken back.
    live: usize,
}

/// Size of a spill file's write buffer: a few pages (every table has one while its row group
/// is open).
const SPILL_BUFFER: usize = 64 << 10;

impl SpillFile {
    fn new(dir: &Path) -> io::Result<Self> {
        Ok(SpillFile {
            // O_TMPFILE where the file system has it: never visible in the table folder.
            file: tempfile::tempfile_in(dir)?,
            len: 0,
            pending: Vec::new(),
            pending_at: 0,
            live: 0,
        })
    }

    fn write_pending(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.file.write_all_at(&self.pending, self.pending_at)?;
            self.pending_at += self.pending.len() as u64;
            self.pending.clear();
        }
        Ok(())
    }

    fn put(&mut self, value: &[u8]) -> io::Result<(u64, usize)> {
        let at = self.len;
        if self.pending.len() + value.len() > SPILL_BUFFER {
            self.write_pending()?;
        }
        if value.len() >= SPILL_BUFFER {
            // A big page goes straight to the file; `pending` is empty and starts after it.
            self.file.write_all_at(value, at)?;
            self.pending_at = at + value.len() as u64;
        } else {
            if self.pending.capacity() == 0 {
                self.pending.reserve_exact(SPILL_BUFFER);
            }
            self.pending.extend_from_slice(value);
        }
        self.len += value.len() as u64;
        self.live += 1;
        Ok((at, value.len()))
    }

    fn take(&mut self, (at, len): (u64, usize)) -> io::Result<Bytes> {
        let mut page = vec![0u8; len];
        if at >= self.pending_at {
            let start = (at - self.pending_at) as usize;
            page.copy_from_slice(&self.pending[start..start + len]);
        } else {
            self.file.read_exact_at(&mut page, at)?;
        }
        self.live -= 1;
        if self.live == 0 {
            // The row group has been written out: start the next one at offset 0.
            self.file.set_len(0)?;
            self.len = 0;
            self.pending = Vec::new();
            self.pending_at = 0;
        }
        Ok(Bytes::from(page))
    }
}

/// The pages of one column chunk, in a [`SpillFile`] shared with the file's other columns.
struct SpilledPages {
    file: Arc<Mutex<SpillFile>>,
    pages: Vec<(u64, usize)>,
}

fn spill_err(e: io::Error) -> parquet::errors::ParquetError {
    parquet::errors::ParquetError::External(Box::new(e))
}

impl PageStore for SpilledPages {
    fn put(&mut self, value: Bytes) -> parquet::errors::Result<PageKey> {
        let loc = self
            .file
            .lock()
            .expect("spill file lock")
            .put(&value)
            .map_err(spill_err)?;
        self.pages.push(loc);
        Ok(PageKey::new(self.pages.len() as u64 - 1))
    }

    fn take(&mut self, key: PageKey) -> parquet::errors::Result<Bytes> {
        let loc = *self.pages.get(key.get() as usize).ok_or_else(|| {
            parquet::errors::ParquetError::General(format!("no spilled page {}", key.get()))
        })?;
        self.file
            .lock()
            .expect("spill file lock")
            .take(loc)
            .map_err(spill_err)
    }
}

#[derive(Debug)]
struct SpillFactory(Arc<Mutex<SpillFile>>);

impl std::fmt::Debug for SpillFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillFile")
            .field("len", &self.len)
            .field("live", &self.live)
            .finish()
    }
}

impl PageStoreFactory for SpillFactory {
    fn create(&self, _args: &PageStoreArgs<'_>) -> parquet::errors::Result<Box<dyn PageStore>> {
        Ok(Box::new(SpilledPages {
            file: Arc::clone(&self.0),
            pages: Vec::new(),
        }))
    }
}

struct OpenFile {
    key: String,
    path_in_drop: String,
    staged: PathBuf,
    writer: ArrowWriter<HashingWriter<BufWriter<File>>>,
    rows: u64,
    /// Whether finished pages go to a spill file, whose write buffer is then held too.
    spills: bool,
}

impl OpenFile {
    /// Memory held by the open row group: the column encoders and the pages kept in memory
    /// ([`ArrowWriter::memory_size`]), plus the spill file's write buffer while it is used.
    fn buffered(&self) -> usize {
        let spill_buffer = if self.spills && self.writer.in_progress_rows() > 0 {
            SPILL_BUFFER
        } else {
            0
        };
        self.writer.memory_size() + spill_buffer
    }
}

/// The files of one table: rolls over to a new part past the size limit.
struct TableWriter {
    def: &'static TableDef,
    next_part: u32,
    open: Option<OpenFile>,
    done: Vec<FileEntry>,
    /// Memory held by the open row group, as of the last change.
    buffered: usize,
    /// Anticipated encoded size of the open row group, as of the last change.
    encoded: usize,
}

impl TableWriter {
    fn write(
        &mut self,
        batch: &RecordBatch,
        layout: &DropLayout,
        store: &BlockingStore,
        options: &WriterOptions,
    ) -> Result<(), DropError> {
        if self.open.is_none() {
            self.open = Some(self.open_part(layout, store, options)?);
        }
        let file = self.open.as_mut().expect("opened above");
        let table = self.def.name;
        let perr = |cause| parquet_error(table, &file.staged, cause);
        file.writer.write(batch).map_err(perr)?;
        crate::crash::crash_point("encode");
        file.rows += batch.num_rows() as u64;
        // ArrowWriter buffers a whole row group: cut it by size, not just rows.
        if file.writer.in_progress_size() >= options.row_group_bytes {
            file.writer.flush().map_err(perr)?;
        }
        self.roll_over_if_full(store, options)
    }

    /// Writes the open row group out now (for the memory budget).
    fn flush_row_group(
        &mut self,
        store: &BlockingStore,
        options: &WriterOptions,
    ) -> Result<(), DropError> {
        let Some(file) = self.open.as_mut() else {
            return Ok(());
        };
        file.writer
            .flush()
            .map_err(|cause| parquet_error(self.def.name, &file.staged, cause))?;
        self.roll_over_if_full(store, options)
    }

    /// Closes the open file past the size limit, and notes the memory its row group holds.
    fn roll_over_if_full(
        &mut self,
        store: &BlockingStore,
        options: &WriterOptions,
    ) -> Result<(), DropError> {
        if let Some(file) = self.open.as_ref() {
            let written =
                file.writer.bytes_written() as u64 + file.writer.in_progress_size() as u64;
            if written >= options.max_file_bytes {
                self.close_part(store)?;
            }
        }
        self.buffered = self.open.as_ref().map_or(0, OpenFile::buffered);
        self.encoded = self
            .open
            .as_ref()
            .map_or(0, |f| f.writer.in_progress_size());
        Ok(())
    }

    fn open_part(
        &mut self,
        layout: &DropLayout,
        store: &BlockingStore,
        options: &WriterOptions,
    ) -> Result<OpenFile, DropError> {
        let path_in_drop = DropLayout::table_file_path(self.def.name, self.next_part)?;
        self.next_part += 1;
        let key = layout.key(&path_in_drop);
        let staged = store.staging_path(&key)?;
        let file = File::create(&staged).map_err(|cause| DropError::Io {
            path: staged.display().to_string(),
            cause,
        })?;
        let out = HashingWriter {
            // Parquet hands over whole pages (or 8 KiB at least), and every table of a drop
            // has a file open: a small buffer is enough.
            inner: BufWriter::with_capacity(64 << 10, file),
            hasher: Sha256::new(),
            bytes: 0,
        };
        let mut writer_options = ArrowWriterOptions::new().with_properties(options.properties());
        if options.spill_pages {
            let dir = staged.parent().unwrap_or(Path::new("."));
            let spill = SpillFile::new(dir).map_err(|cause| DropError::Io {
                path: format!("a spill file in {}", dir.display()),
                cause,
            })?;
            writer_options = writer_options
                .with_page_store_factory(Arc::new(SpillFactory(Arc::new(Mutex::new(spill)))));
        }
        let writer =
            ArrowWriter::try_new_with_options(out, self.def.arrow_schema(), writer_options)
                .map_err(|cause| parquet_error(self.def.name, &staged, cause))?;
        Ok(OpenFile {
            key,
            path_in_drop,
            staged,
            writer,
            rows: 0,
            spills: options.spill_pages,
        })
    }

    /// Finishes the open file, makes it durable and publishes it.
    fn close_part(&mut self, store: &BlockingStore) -> Result<(), DropError> {
        let Some(file) = self.open.take() else {
            return Ok(());
        };
        self.buffered = 0;
        let staged = file.staged.clone();
        let io_err = |cause| DropError::Io {
            path: staged.display().to_string(),
            cause,
        };
        let hashing = file
            .writer
            .into_inner()
            .map_err(|cause| parquet_error(self.def.name, &staged, cause))?;
        let HashingWriter {
            inner,
            hasher,
            bytes,
        } = hashing;
        let f = inner.into_inner().map_err(|e| io_err(e.into_error()))?;
        f.sync_all().map_err(io_err)?;
        drop(f);
        let sha256 = hex(&hasher.finalize());
        store.publish_file(&file.key, &file.staged, &sha256)?;
        crate::crash::crash_point("upload");
        self.done.push(FileEntry {
            key: file.key,
            path: file.path_in_drop,
            rows: file.rows,
            bytes,
            sha256,
        });
        Ok(())
    }

    fn finish(
        mut self,
        layout: &DropLayout,
        store: &BlockingStore,
        options: &WriterOptions,
    ) -> Result<TableEntry, DropError> {
        // Every table gets a file, even an empty one, so that readers pointed at a table
        // folder always find its schema.
        if self.open.is_none() && self.done.is_empty() {
            self.open = Some(self.open_part(layout, store, options)?);
        }
        self.close_part(store)?;
        Ok(TableEntry {
            name: self.def.name.to_string(),
            schema_hash: format!(
                "sha256:{}",
                hex(&Sha256::digest(self.def.schema_fingerprint()))
            ),
            rows: self.done.iter().map(|f| f.rows).sum(),
            files: self.done,
        })
    }
}

/// A failure of the parquet writer of the file at `staged`. An I/O error inside it (a full
/// disk under the file or its spill file) is reported as that I/O error, once: parquet's
/// `External` error repeats the error it wraps, both in its message and as its source.
fn parquet_error(table: &str, staged: &Path, cause: parquet::errors::ParquetError) -> DropError {
    let path = staged.display().to_string();
    match cause {
        parquet::errors::ParquetError::External(e) => match e.downcast::<io::Error>() {
            Ok(io) => DropError::Io { path, cause: *io },
            Err(e) => DropError::Parquet {
                table: table.to_string(),
                path,
                cause: parquet::errors::ParquetError::External(e),
            },
        },
        cause => DropError::Parquet {
            table: table.to_string(),
            path,
            cause,
        },
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The store as the writer uses it: from a blocking thread (parquet encoding is synchronous),
/// waiting there for each of the store's async calls on a Tokio runtime.
struct BlockingStore {
    store: Arc<dyn ObjectStore>,
    runtime: StoreRuntime,
}

/// The runtime the writer waits on: the caller's, or, for a caller outside any runtime, one
/// of the writer's own.
enum StoreRuntime {
    Shared(tokio::runtime::Handle),
    Own(tokio::runtime::Runtime),
}

impl StoreRuntime {
    fn current_or_own() -> StoreRuntime {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => StoreRuntime::Shared(handle),
            Err(_) => StoreRuntime::Own(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a Tokio runtime for the drop writer"),
            ),
        }
    }

    /// Waits for `future`. Must not be called from inside an async task (the caller's
    /// runtime would stall): the writer runs on a blocking thread.
    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        match self {
            StoreRuntime::Shared(handle) => handle.block_on(future),
            StoreRuntime::Own(runtime) => runtime.block_on(future),
        }
    }
}

impl BlockingStore {
    fn staging_path(&self, key: &str) -> Result<PathBuf, StoreError> {
        self.store.staging_path(key)
    }

    fn publish_file(&self, key: &str, staged: &Path, sha256_hex: &str) -> Result<(), StoreError> {
        self.runtime
            .block_on(self.store.publish_file(key, staged, sha256_hex))
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.runtime.block_on(self.store.put(key, bytes))
    }

    fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        self.runtime.block_on(self.store.put_if_absent(key, bytes))
    }

    fn location(&self, key: &str) -> String {
        self.store.location(key)
    }
}

/// What the manifest says about the drop's origin, known only to the caller.
#[derive(Debug, Clone)]
pub struct DropInfo {
    pub source: SourceInfo,
    pub job: Option<JobRef>,
}

/// The result of a successful commit.
#[derive(Debug, Clone)]
pub struct CommittedDrop {
    pub manifest: Manifest,
    pub manifest_key: String,
    pub marker_key: String,
    /// Human-readable location of the drop root.
    pub location: String,
}

/// Writes one drop. Dropping it without [`DropWriter::commit`] leaves no marker.
///
/// Its methods block on the store's async calls, so it must run on a blocking thread (or
/// outside any runtime), never inside an async task. Made inside a Tokio runtime, it waits on
/// that runtime; made outside one, on a small runtime of its own.
pub struct DropWriter {
    store: BlockingStore,
    layout: DropLayout,
    options: WriterOptions,
    tables: Vec<TableWriter>,
    quarantine: Option<(String, PathBuf, HashingWriter<BufWriter<File>>)>,
    quarantined: u64,
    memory: MemoryStats,
    /// When the process's heap was last looked at.
    heap_checked: Option<Instant>,
    column_mapping: Option<MappingSummary>,
}

impl DropWriter {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        layout: DropLayout,
        tables: &[&'static TableDef],
        options: WriterOptions,
    ) -> Self {
        DropWriter {
            store: BlockingStore {
                store,
                runtime: StoreRuntime::current_or_own(),
            },
            layout,
            options,
            tables: tables
                .iter()
                .map(|def| TableWriter {
                    def,
                    next_part: 0,
                    open: None,
                    done: Vec::new(),
                    buffered: 0,
                    encoded: 0,
                })
                .collect(),
            quarantine: None,
            quarantined: 0,
            memory: MemoryStats::default(),
            heap_checked: None,
            column_mapping: None,
        }
    }

    /// Writes `tables` (the drop's tables as a column mapping maps them, same names, same
    /// order) instead of the built-in ones, and records the mapping in the manifest. Only
    /// before the first batch.
    pub fn map_tables(
        &mut self,
        tables: &[&'static TableDef],
        summary: MappingSummary,
    ) -> Result<(), DropError> {
        let same_names = tables.len() == self.tables.len()
            && tables
                .iter()
                .zip(&self.tables)
                .all(|(t, w)| t.name == w.def.name);
        assert!(
            same_names,
            "a column mapping keeps the drop's tables and their order"
        );
        assert!(
            self.tables
                .iter()
                .all(|t| t.open.is_none() && t.done.is_empty()),
            "a column mapping is applied before the first batch"
        );
        for (writer, def) in self.tables.iter_mut().zip(tables) {
            writer.def = def;
        }
        self.column_mapping = Some(summary);
        Ok(())
    }

    pub fn layout(&self) -> &DropLayout {
        &self.layout
    }

    /// Appends a batch to a table's current file. When the open row groups of all tables then
    /// hold more than [`WriterOptions::memory_budget_bytes`], the largest are written out
    /// until they hold less.
    pub fn write_batch(&mut self, table: &str, batch: &RecordBatch) -> Result<(), DropError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let writer = self
            .tables
            .iter_mut()
            .find(|t| t.def.name == table)
            .ok_or_else(|| DropError::UnknownTable(table.to_string()))?;
        writer.write(batch, &self.layout, &self.store, &self.options)?;
        self.keep_to_budget()
    }

    /// What the open row groups hold now, and the most they held.
    pub fn memory_stats(&self) -> MemoryStats {
        MemoryStats {
            buffered_bytes: self.buffered_bytes(),
            ..self.memory
        }
    }

    fn buffered_bytes(&self) -> usize {
        self.tables.iter().map(|t| t.buffered).sum()
    }

    /// While the open row groups hold more than the budget, writes one out (see
    /// [`Self::write_out_one`]); then the same while the process's heap is over
    /// [`WriterOptions::heap_limit_bytes`].
    fn keep_to_budget(&mut self) -> Result<(), DropError> {
        let mut total = self.buffered_bytes();
        self.memory.peak_buffered_bytes = self.memory.peak_buffered_bytes.max(total);
        let budget = self.options.memory_budget_bytes;
        while total > budget {
            if !self.write_out_one(Some(total - budget))? {
                break;
            }
            self.memory.budget_flushes += 1;
            total = self.buffered_bytes();
        }
        self.keep_to_heap_limit()
    }

    /// How often the heap is looked at: the allocator's count is a snapshot that gathers
    /// every arena's figures under their locks, so not on every batch.
    const HEAP_CHECK_INTERVAL: Duration = Duration::from_millis(5);

    fn keep_to_heap_limit(&mut self) -> Result<(), DropError> {
        let Some(limit) = self.options.heap_limit_bytes else {
            return Ok(());
        };
        let now = Instant::now();
        if self
            .heap_checked
            .is_some_and(|t| now.duration_since(t) < Self::HEAP_CHECK_INTERVAL)
        {
            return Ok(());
        }
        self.heap_checked = Some(now);
        let Some(mut heap) = crate::heap::heap_in_use() else {
            return Ok(());
        };
        self.memory.peak_heap_bytes = self.memory.peak_heap_bytes.max(heap);
        while heap > limit {
            if !self.write_out_one(None)? {
                break;
            }
            self.memory.heap_flushes += 1;
            heap = crate::heap::heap_in_use().unwrap_or(0);
        }
        Ok(())
    }

    /// Writes out one open row group to free memory; false when none freed any. The one
    /// chosen holds the most memory among those already
    /// [`WriterOptions::min_row_group_bytes`] big (and, given an `excess` over the budget,
    /// whose memory alone covers it), or else simply the one holding the most memory.
    /// Largest first: a big table comes back to the limit soon and is cut again, while a
    /// small one keeps growing into one reasonable row group.
    fn write_out_one(&mut self, excess: Option<usize>) -> Result<bool, DropError> {
        let candidates = || {
            self.tables
                .iter()
                .enumerate()
                .filter(|(_, t)| t.open.is_some() && t.buffered > 0)
        };
        let big_enough = candidates()
            .filter(|(_, t)| {
                excess.is_none_or(|excess| t.buffered >= excess)
                    && t.encoded >= self.options.min_row_group_bytes
            })
            .max_by_key(|(_, t)| t.buffered);
        let Some((chosen, _)) = big_enough.or_else(|| candidates().max_by_key(|(_, t)| t.buffered))
        else {
            return Ok(false);
        };
        let table = &mut self.tables[chosen];
        let before = table.buffered;
        table.flush_row_group(&self.store, &self.options)?;
        // Nothing came free: do not spin.
        Ok(table.buffered < before)
    }

    /// Keeps a record that could not be read, with its reason.
    pub fn quarantine(&mut self, record: &QuarantinedRecord) -> Result<(), DropError> {
        if self.quarantine.is_none() {
            let key = self.layout.key(DropLayout::QUARANTINE_PATH);
            let staged = self.store.staging_path(&key)?;
            let file = File::create(&staged).map_err(|cause| DropError::Io {
                path: staged.display().to_string(),
                cause,
            })?;
            self.quarantine = Some((
                key,
                staged,
                HashingWriter {
                    inner: BufWriter::new(file),
                    hasher: Sha256::new(),
                    bytes: 0,
                },
            ));
        }
        let (_, staged, out) = self.quarantine.as_mut().expect("opened above");
        let mut line = record.to_json_line();
        line.push('\n');
        out.write_all(line.as_bytes())
            .map_err(|cause| DropError::Io {
                path: staged.display().to_string(),
                cause,
            })?;
        self.quarantined += 1;
        Ok(())
    }

    /// Commits the drop in the contract's order: every file durable, then `manifest.json`,
    /// then `upload.complete`, created only if absent. An error at any step leaves no marker.
    pub fn commit(self, info: DropInfo) -> Result<CommittedDrop, DropError> {
        self.commit_fenced(info, &|| Ok(()))
    }

    /// [`DropWriter::commit`], asking `may_commit` right before the manifest and again right
    /// before the marker: a queued job's worker that has lost its lease must not publish, since
    /// another worker now owns the job.
    ///
    /// The commit, in the contract's order; each step starts only once the one before it is
    /// durable, and a failure at any step leaves no marker.
    pub fn commit_fenced(
        self,
        info: DropInfo,
        may_commit: &dyn Fn() -> Result<(), String>,
    ) -> Result<CommittedDrop, DropError> {
        let (store, layout, files) = self.make_every_file_durable()?;
        let manifest = files.into_manifest(&layout, info);
        let (manifest_key, manifest_bytes) =
            publish_manifest(&store, &layout, &manifest, may_commit)?;
        let marker_key = publish_marker(&store, &layout, &manifest, &manifest_bytes, may_commit)?;
        Ok(CommittedDrop {
            location: store.location(&layout.root()),
            manifest,
            manifest_key,
            marker_key,
        })
    }

    /// Closes and publishes every file still open (the last part of each table, the
    /// quarantine file). Earlier parts were published when they filled up.
    fn make_every_file_durable(
        self,
    ) -> Result<(BlockingStore, DropLayout, DurableFiles), DropError> {
        let DropWriter {
            store,
            layout,
            options,
            tables,
            quarantine,
            quarantined,
            memory: _,
            heap_checked: _,
            column_mapping,
        } = self;
        let mut entries = Vec::with_capacity(tables.len());
        for table in tables {
            entries.push(table.finish(&layout, &store, &options)?);
        }
        let quarantine_file = match quarantine {
            None => None,
            Some((key, staged, out)) => {
                Some(publish_quarantine(&store, key, &staged, out, quarantined)?)
            }
        };
        let files = DurableFiles {
            tables: entries,
            quarantined,
            quarantine_file,
            column_mapping,
        };
        Ok((store, layout, files))
    }
}

/// Every file of a drop, published and durable: what its manifest lists.
struct DurableFiles {
    tables: Vec<TableEntry>,
    quarantined: u64,
    quarantine_file: Option<FileEntry>,
    column_mapping: Option<MappingSummary>,
}

impl DurableFiles {
    fn into_manifest(self, layout: &DropLayout, info: DropInfo) -> Manifest {
        let files: Vec<&FileEntry> = self.tables.iter().flat_map(|t| &t.files).collect();
        let totals = Totals {
            tables: self.tables.len() as u64,
            files: files.len() as u64,
            rows: self.tables.iter().map(|t| t.rows).sum(),
            bytes: files.iter().map(|f| f.bytes).sum(),
        };
        Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            drop_id: layout.id().to_string(),
            created_at: created_at(layout),
            producer: Producer {
                name: "lpdrop".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            job: info.job,
            source: info.source,
            schema_version: SCHEMA_VERSION,
            root: layout.root(),
            tables: self.tables,
            totals,
            quarantine: QuarantineEntry {
                records: self.quarantined,
                file: self.quarantine_file,
            },
            column_mapping: self.column_mapping,
        }
    }
}

fn created_at(layout: &DropLayout) -> String {
    layout
        .created_at()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Closes the quarantine file, makes it durable and publishes it.
fn publish_quarantine(
    store: &BlockingStore,
    key: String,
    staged: &Path,
    out: HashingWriter<BufWriter<File>>,
    records: u64,
) -> Result<FileEntry, DropError> {
    let HashingWriter {
        inner,
        hasher,
        bytes,
    } = out;
    let io_err = |cause| DropError::Io {
        path: staged.display().to_string(),
        cause,
    };
    let f = inner.into_inner().map_err(|e| io_err(e.into_error()))?;
    f.sync_all().map_err(io_err)?;
    drop(f);
    let sha256 = hex(&hasher.finalize());
    store.publish_file(&key, staged, &sha256)?;
    Ok(FileEntry {
        key,
        path: DropLayout::QUARANTINE_PATH.to_string(),
        rows: records,
        bytes,
        sha256,
    })
}

/// Writes `manifest.json`, if the fence still allows; returns its key and bytes.
fn publish_manifest(
    store: &BlockingStore,
    layout: &DropLayout,
    manifest: &Manifest,
    may_commit: &dyn Fn() -> Result<(), String>,
) -> Result<(String, Vec<u8>), DropError> {
    let bytes = serde_json::to_vec_pretty(manifest).expect("manifest serializes");
    let key = layout.manifest_key();
    may_commit().map_err(DropError::Fenced)?;
    store.put(&key, &bytes)?;
    crate::crash::crash_point("manifest");
    Ok((key, bytes))
}

/// Creates `upload.complete`, only if absent and if the fence still allows: the moment the
/// drop is committed. Returns its key.
fn publish_marker(
    store: &BlockingStore,
    layout: &DropLayout,
    manifest: &Manifest,
    manifest_bytes: &[u8],
    may_commit: &dyn Fn() -> Result<(), String>,
) -> Result<String, DropError> {
    let marker = Marker::for_manifest(manifest, layout.manifest_key(), manifest_bytes);
    let key = layout.marker_key();
    let bytes = serde_json::to_vec_pretty(&marker).expect("marker serializes");
    may_commit().map_err(DropError::Fenced)?;
    if !store.put_if_absent(&key, &bytes)? {
        return Err(DropError::AlreadyCommitted(layout.root()));
    }
    Ok(key)
}
