//! Drops: the layout and keys, parquet writing, sinks, the manifest and the commit protocol.
//!
//! A drop is trusted only once `upload.complete` exists, and only for the files its
//! `manifest.json` lists. [`DropWriter::commit`] keeps that promise by writing in order:
//! every parquet file durable → manifest → marker (create-only).
//!
//! ```no_run
//! use std::sync::Arc;
//! use lpdrop_drop::{DropLayout, DropWriter, LocalSink, Prefix, WriterOptions};
//! let layout = DropLayout::new(Prefix::default(), chrono::Utc::now(), uuid::Uuid::new_v4());
//! let writer = DropWriter::new(Arc::new(LocalSink::new("out")), layout,
//!                              lpdrop_tables::all_tables(), WriterOptions::default());
//! ```

pub mod layout;
pub mod manifest;
pub mod sink;
pub mod writer;

pub use layout::{DropLayout, LayoutError, MANIFEST_NAME, MARKER_NAME, Prefix};
pub use manifest::{FileEntry, JobRef, Manifest, Marker, SourceInfo, TableEntry};
pub use sink::{LocalSink, Sink, SinkError};
pub use writer::{CommittedDrop, DropError, DropInfo, DropWriter, WriterOptions};
