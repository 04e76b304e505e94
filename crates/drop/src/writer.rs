//! Writing a drop: parquet files per table, the quarantine file, then the commit.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use lpdrop_tables::{QuarantinedRecord, SCHEMA_VERSION, TableDef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{WriterProperties, WriterVersion};
use sha2::{Digest, Sha256};

use crate::layout::DropLayout;
use crate::manifest::JobRef;
use crate::manifest::{
    FileEntry, MANIFEST_FORMAT_VERSION, Manifest, Marker, Producer, QuarantineEntry, SourceInfo,
    TableEntry, Totals,
};
use crate::sink::{Sink, SinkError};

/// Why a drop could not be written or committed. Nothing is committed after any of these.
#[derive(Debug, thiserror::Error)]
pub enum DropError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("writing {key}: {source}")]
    Io { key: String, source: io::Error },
    #[error("encoding parquet for table {table}: {source}")]
    Parquet {
        table: String,
        source: parquet::errors::ParquetError,
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

/// Sizes that shape the files readers get (pitfalls P7).
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// A row group is closed once its encoded size reaches this (default 64 MiB).
    pub row_group_bytes: usize,
    /// A file is closed and the next part started past this size (default 256 MiB).
    pub max_file_bytes: u64,
    pub compression: Compression,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            row_group_bytes: 64 << 20,
            max_file_bytes: 256 << 20,
            compression: Compression::SNAPPY,
        }
    }
}

impl WriterOptions {
    fn properties(&self) -> WriterProperties {
        WriterProperties::builder()
            // Set explicitly: arrow-rs defaults to uncompressed.
            .set_compression(self.compression)
            // Data page v1 is what every engine reads (pitfalls P6).
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_created_by(format!("lpdrop {}", env!("CARGO_PKG_VERSION")))
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

struct OpenFile {
    key: String,
    path_in_drop: String,
    staged: PathBuf,
    writer: ArrowWriter<HashingWriter<BufWriter<File>>>,
    rows: u64,
}

/// The files of one table: rolls over to a new part past the size limit.
struct TableWriter {
    def: &'static TableDef,
    next_part: u32,
    open: Option<OpenFile>,
    done: Vec<FileEntry>,
}

impl TableWriter {
    fn write(
        &mut self,
        batch: &RecordBatch,
        layout: &DropLayout,
        sink: &dyn Sink,
        options: &WriterOptions,
    ) -> Result<(), DropError> {
        if self.open.is_none() {
            self.open = Some(self.open_part(layout, sink, options)?);
        }
        let file = self.open.as_mut().expect("opened above");
        let table = self.def.name;
        let perr = |source| DropError::Parquet {
            table: table.to_string(),
            source,
        };
        file.writer.write(batch).map_err(perr)?;
        file.rows += batch.num_rows() as u64;
        // ArrowWriter buffers a whole row group in memory: cut it by size, not just rows.
        if file.writer.in_progress_size() >= options.row_group_bytes {
            file.writer.flush().map_err(perr)?;
        }
        let written = file.writer.bytes_written() as u64 + file.writer.in_progress_size() as u64;
        if written >= options.max_file_bytes {
            self.close_part(sink)?;
        }
        Ok(())
    }

    fn open_part(
        &mut self,
        layout: &DropLayout,
        sink: &dyn Sink,
        options: &WriterOptions,
    ) -> Result<OpenFile, DropError> {
        let path_in_drop = DropLayout::table_file_path(self.def.name, self.next_part)?;
        self.next_part += 1;
        let key = layout.key(&path_in_drop);
        let staged = sink.staging_path(&key)?;
        let file = File::create(&staged).map_err(|source| DropError::Io {
            key: key.clone(),
            source,
        })?;
        let out = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            bytes: 0,
        };
        let writer = ArrowWriter::try_new(out, self.def.arrow_schema(), Some(options.properties()))
            .map_err(|source| DropError::Parquet {
                table: self.def.name.to_string(),
                source,
            })?;
        Ok(OpenFile {
            key,
            path_in_drop,
            staged,
            writer,
            rows: 0,
        })
    }

    /// Finishes the open file, makes it durable and publishes it.
    fn close_part(&mut self, sink: &dyn Sink) -> Result<(), DropError> {
        let Some(file) = self.open.take() else {
            return Ok(());
        };
        let key = file.key.clone();
        let io_err = |source| DropError::Io {
            key: key.clone(),
            source,
        };
        let hashing = file
            .writer
            .into_inner()
            .map_err(|source| DropError::Parquet {
                table: self.def.name.to_string(),
                source,
            })?;
        let HashingWriter {
            inner,
            hasher,
            bytes,
        } = hashing;
        let f = inner.into_inner().map_err(|e| io_err(e.into_error()))?;
        f.sync_all().map_err(io_err)?;
        drop(f);
        let sha256 = hex(&hasher.finalize());
        sink.publish_file(&file.key, &file.staged, &sha256)?;
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
        sink: &dyn Sink,
        options: &WriterOptions,
    ) -> Result<TableEntry, DropError> {
        // Every table gets a file, even an empty one, so that readers pointed at a table
        // folder always find its schema.
        if self.open.is_none() && self.done.is_empty() {
            self.open = Some(self.open_part(layout, sink, options)?);
        }
        self.close_part(sink)?;
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

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
pub struct DropWriter {
    sink: Arc<dyn Sink>,
    layout: DropLayout,
    options: WriterOptions,
    tables: Vec<TableWriter>,
    quarantine: Option<(String, PathBuf, HashingWriter<BufWriter<File>>)>,
    quarantined: u64,
}

impl DropWriter {
    pub fn new(
        sink: Arc<dyn Sink>,
        layout: DropLayout,
        tables: &[&'static TableDef],
        options: WriterOptions,
    ) -> Self {
        DropWriter {
            sink,
            layout,
            options,
            tables: tables
                .iter()
                .map(|def| TableWriter {
                    def,
                    next_part: 0,
                    open: None,
                    done: Vec::new(),
                })
                .collect(),
            quarantine: None,
            quarantined: 0,
        }
    }

    pub fn layout(&self) -> &DropLayout {
        &self.layout
    }

    /// Appends a batch to a table's current file.
    pub fn write_batch(&mut self, table: &str, batch: &RecordBatch) -> Result<(), DropError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let writer = self
            .tables
            .iter_mut()
            .find(|t| t.def.name == table)
            .ok_or_else(|| DropError::UnknownTable(table.to_string()))?;
        writer.write(batch, &self.layout, self.sink.as_ref(), &self.options)
    }

    /// Keeps a record that could not be read, with its reason.
    pub fn quarantine(&mut self, record: &QuarantinedRecord) -> Result<(), DropError> {
        if self.quarantine.is_none() {
            let key = self.layout.key(DropLayout::QUARANTINE_PATH);
            let staged = self.sink.staging_path(&key)?;
            let file = File::create(&staged).map_err(|source| DropError::Io {
                key: key.clone(),
                source,
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
        let (key, _, out) = self.quarantine.as_mut().expect("opened above");
        let mut line = record.to_json_line();
        line.push('\n');
        out.write_all(line.as_bytes())
            .map_err(|source| DropError::Io {
                key: key.clone(),
                source,
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
    pub fn commit_fenced(
        self,
        info: DropInfo,
        may_commit: &dyn Fn() -> Result<(), String>,
    ) -> Result<CommittedDrop, DropError> {
        let DropWriter {
            sink,
            layout,
            options,
            tables,
            quarantine,
            quarantined,
        } = self;
        let mut entries = Vec::with_capacity(tables.len());
        for table in tables {
            entries.push(table.finish(&layout, sink.as_ref(), &options)?);
        }
        let quarantine_file = match quarantine {
            None => None,
            Some((key, staged, out)) => {
                let HashingWriter {
                    inner,
                    hasher,
                    bytes,
                } = out;
                let io_err = |source| DropError::Io {
                    key: key.clone(),
                    source,
                };
                let f = inner.into_inner().map_err(|e| io_err(e.into_error()))?;
                f.sync_all().map_err(io_err)?;
                drop(f);
                let sha256 = hex(&hasher.finalize());
                sink.publish_file(&key, &staged, &sha256)?;
                Some(FileEntry {
                    key,
                    path: DropLayout::QUARANTINE_PATH.to_string(),
                    rows: quarantined,
                    bytes,
                    sha256,
                })
            }
        };
        let files: Vec<&FileEntry> = entries.iter().flat_map(|t| &t.files).collect();
        let totals = Totals {
            tables: entries.len() as u64,
            files: files.len() as u64,
            rows: entries.iter().map(|t| t.rows).sum(),
            bytes: files.iter().map(|f| f.bytes).sum(),
        };
        let file_keys: Vec<String> = files.iter().map(|f| f.key.clone()).collect();
        let created_at = layout
            .created_at()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let manifest = Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            drop_id: layout.id().to_string(),
            created_at: created_at.clone(),
            producer: Producer {
                name: "lpdrop".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            job: info.job,
            source: info.source,
            schema_version: SCHEMA_VERSION,
            root: layout.root(),
            tables: entries,
            totals,
            quarantine: QuarantineEntry {
                records: quarantined,
                file: quarantine_file,
            },
        };
        let manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
        let manifest_key = layout.manifest_key();
        may_commit().map_err(DropError::Fenced)?;
        sink.put(&manifest_key, &manifest_bytes)?;
        let marker = Marker {
            format_version: MANIFEST_FORMAT_VERSION,
            drop_id: manifest.drop_id.clone(),
            created_at,
            manifest_key: manifest_key.clone(),
            manifest_sha256: hex(&Sha256::digest(&manifest_bytes)),
            files: file_keys,
        };
        let marker_key = layout.marker_key();
        let marker_bytes = serde_json::to_vec_pretty(&marker).expect("marker serializes");
        may_commit().map_err(DropError::Fenced)?;
        if !sink.put_if_absent(&marker_key, &marker_bytes)? {
            return Err(DropError::AlreadyCommitted(layout.root()));
        }
        Ok(CommittedDrop {
            location: sink.location(&layout.root()),
            manifest,
            manifest_key,
            marker_key,
        })
    }
}
