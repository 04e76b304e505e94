//! The pipeline: one path from any record source to one committed drop, shared by every front
//! end (`sync`, `demo`, `convert`, the worker, and later the webhook listener).
//!
//! ```text
//!  RecordSource ──pages/records──► DropBuilder ──batches──► DropWriter ──► commit
//!  (sources.rs,                    (builder.rs: decode,      (lpdrop-drop:   (files durable →
//!   saved_pages.rs)                 window, dedup, tables,    parquet, the    manifest → marker)
//!                                   batching, writer thread)  object store)
//! ```
//!
//! [`run_drop`] ties them together: it opens the writer on a store for a planned drop, lets the
//! source feed the builder, and commits behind the caller's fence. Nothing here knows about
//! flags or terminals: front ends pass typed settings and a [`Progress`] to draw.

pub mod builder;
mod dedup;
pub mod progress;
pub mod run;
pub mod saved_pages;
pub mod sources;

pub use builder::{BuildStats, DecodedPage, DropBuilder, PageSplitter};
pub use progress::{Counts, NoProgress, Progress};
pub use run::{
    CommitFence, DropPlan, DropReport, OutputSettings, PlannedDrop, api_name, run_drop,
    run_drop_unless_empty, time_basis,
};
pub use saved_pages::SavedPages;
pub use sources::{AccountConfig, ById, Fed, RecordSource, Search};
