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

pub mod crash;
pub mod dest;
pub mod gc;
pub mod heap;
pub mod layout;
pub mod manifest;
pub mod s3;
pub mod sink;
pub mod store;
pub mod verify;
pub mod writer;

pub use dest::{Destination, S3Settings, open_sink, open_store};
pub use layout::{DropLayout, LayoutError, MANIFEST_NAME, MARKER_NAME, Prefix};
pub use manifest::{FileEntry, JobRef, Manifest, Marker, SourceInfo, TableEntry};
pub use s3::{S3Location, S3Sink, S3Store, S3WriteOptions};
pub use sink::{LocalSink, Sink, SinkError};
pub use store::Store;
pub use verify::{VerifyReport, verify};
pub use writer::{CommittedDrop, DropError, DropInfo, DropWriter, WriterOptions};
