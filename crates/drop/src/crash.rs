//! Crash points for the crash tests: `LPDROP_TEST_CRASH_AT=POINT[:N]` makes the process die on
//! the spot (abort: no destructor, no flush, no clean-up, like SIGKILL) the N-th time it passes
//! `POINT` (default the first). The points are the moments the drop contract must survive:
//!
//! | point      | where                                                    |
//! |------------|----------------------------------------------------------|
//! | `fetch`    | after a search page arrived, before it is converted      |
//! | `encode`   | after a record batch went into a parquet writer          |
//! | `upload`   | after a data file was published (local or S3)            |
//! | `manifest` | after `manifest.json` was written, before `upload.complete` |
//!
//! Unset (always, outside tests) it costs one environment lookup per process.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The variable that arms a crash point.
pub const CRASH_VAR: &str = "LPDROP_TEST_CRASH_AT";

struct Armed {
    point: String,
    nth: u64,
    seen: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var(CRASH_VAR).ok()?;
            let (point, nth) = match spec.split_once(':') {
                Some((p, n)) => (p.to_string(), n.parse().ok()?),
                None => (spec, 1),
            };
            Some(Armed {
                point,
                nth,
                seen: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Dies here if `LPDROP_TEST_CRASH_AT` names this point and its count is reached.
pub fn crash_point(point: &str) {
    if let Some(a) = armed()
        && a.point == point
        && a.seen.fetch_add(1, Ordering::SeqCst) + 1 == a.nth
    {
        eprintln!("{CRASH_VAR}: crashing at {point} (pass {})", a.nth);
        std::process::abort();
    }
}
