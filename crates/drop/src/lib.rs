//! Drops: the layout and keys, parquet writing, the object stores they go to, the manifest and
//! the commit protocol.
//!
//! A drop is trusted only once `upload.complete` exists, and only for the files its
//! `manifest.json` lists. [`DropWriter::commit`] keeps that promise by writing in order:
//! every parquet file durable → manifest → marker (create-only).
//!
//! ```no_run
//! use std::sync::Arc;
//! use lpdrop_drop::{DropLayout, DropWriter, LocalStore, Prefix, WriterOptions};
//! let layout = DropLayout::new(Prefix::default(), chrono::Utc::now(), uuid::Uuid::new_v4());
//! let writer = DropWriter::new(Arc::new(LocalStore::new("out")), layout,
//!                              lpdrop_tables::all_tables(), WriterOptions::default());
//! ```

pub mod azure;
pub mod copy;
pub mod crash;
pub mod dest;
pub mod gc;
pub mod heap;
pub mod layout;
pub mod local;
pub mod manifest;
pub mod retry;
pub mod s3;
pub mod store;
pub mod verify;
pub mod writer;

pub use azure::{AzureLocation, AzureStore};
pub use copy::{CopyError, CopyReport, copy_drop};
pub use dest::{Destination, S3Settings, StoreSettings, open, open_to_write};
pub use layout::{DropLayout, LayoutError, MANIFEST_NAME, MARKER_NAME, Prefix, drop_root_of};
pub use local::LocalStore;
pub use manifest::{FileEntry, JobRef, Manifest, Marker, SourceInfo, TableEntry};
pub use retry::RetryBudget;
pub use s3::{S3Location, S3Store, S3WriteOptions};
pub use store::{Fetched, ObjectInfo, ObjectStore, PendingUpload, StoreError};
pub use verify::{VerifyReport, verify};
pub use writer::{CommittedDrop, DropError, DropInfo, DropWriter, WriterOptions};
