//! What a long run reports as it goes; the front end decides how to show it (a bar on a
//! terminal, nothing in a log).

/// What has gone through so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Sub-windows paged (searches) or 0.
    pub windows: u64,
    pub pages: u64,
    /// Records kept (conversations, chats or entities).
    pub records: u64,
    pub input_bytes: u64,
}

/// Progress of a run. Sources call `begin` once, then `update` after each page, then `finish`.
pub trait Progress: Send + Sync {
    /// A search over `[from_ms, to_ms)` of `what` (conversations, chats) begins.
    fn begin_window(&self, _what: &'static str, _from_ms: i64, _to_ms: i64) {}
    /// A run over a number of pages (saved pages) begins; `None` when the total is unknown.
    fn begin_pages(&self, _total: Option<u64>) {}
    /// Everything before `position` has been read: a time (ms) for a window, a page count
    /// for pages.
    fn update(&self, _position: i64, _counts: Counts) {}
    fn finish(&self) {}
}

/// Shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
