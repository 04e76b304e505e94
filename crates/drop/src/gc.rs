//! `lpdrop gc`: remove drops that were never committed and multipart uploads left behind.
//!
//! A drop without `upload.complete` is either still being written or was abandoned by a
//! crashed run. Only the first is safe to leave, so only drops older than a grace period
//! (from the creation time in their name) are removed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::layout::{MARKER_NAME, drop_root_of};
use crate::store::{ObjectStore, PendingUpload, StoreError};

/// What `gc` removed (or, with a dry run, would remove).
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    /// Uncommitted drops past the grace period: root key and object count.
    pub removed_drops: Vec<(String, usize)>,
    pub committed_drops: usize,
    /// Uncommitted drops younger than the grace period (maybe still being written).
    pub recent_uncommitted: usize,
    pub aborted_uploads: Vec<PendingUpload>,
}

/// Removes uncommitted drops and multipart uploads under `prefix` older than `now - grace`.
pub async fn gc(
    store: &dyn ObjectStore,
    prefix: &str,
    grace: chrono::Duration,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<GcReport, StoreError> {
    let cutoff = now - grace;
    let mut drops: BTreeMap<String, (DateTime<Utc>, bool, Vec<String>)> = BTreeMap::new();
    for object in store.list(prefix).await? {
        let Some((root, created)) = drop_root_of(&object.key) else {
            continue;
        };
        let entry = drops
            .entry(root.clone())
            .or_insert((created, false, Vec::new()));
        if object.key == format!("{root}/{MARKER_NAME}") {
            entry.1 = true;
        }
        entry.2.push(object.key);
    }
    let mut report = GcReport::default();
    for (root, (created, committed, keys)) in drops {
        if committed {
            report.committed_drops += 1;
        } else if created >= cutoff {
            report.recent_uncommitted += 1;
        } else {
            if !dry_run {
                store.delete(&keys).await?;
            }
            report.removed_drops.push((root, keys.len()));
        }
    }
    for upload in store.pending_uploads(prefix).await? {
        let stale = upload
            .initiated_ms
            .is_none_or(|ms| ms < cutoff.timestamp_millis());
        if stale {
            if !dry_run {
                store.abort_upload(&upload).await?;
            }
            report.aborted_uploads.push(upload);
        }
    }
    Ok(report)
}
