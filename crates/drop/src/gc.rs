//! `lpdrop gc`: remove drops that were never committed and multipart uploads left behind.
//!
//! A drop without `upload.complete` is either still being written or was abandoned by a
//! crashed run. Only the first is safe to leave, so only drops older than a grace period
//! (from the creation time in their name) are removed.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::layout::MARKER_NAME;
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

/// The drop root a key belongs to and its creation time, if the key lies inside a drop
/// (`…/YYYY/MM/DD/HH/YYYY-MM-DD-HH-mm-ss-<uuid>/…`).
pub fn drop_root_of(key: &str) -> Option<(String, DateTime<Utc>)> {
    let segments: Vec<&str> = key.split('/').collect();
    for i in 4..segments.len().saturating_sub(1) {
        let name = segments[i];
        let (date, hour) = (&segments[i - 4..i], segments[i]);
        let widths_ok = [(date[0], 4), (date[1], 2), (date[2], 2), (date[3], 2)]
            .iter()
            .all(|(s, w)| s.len() == *w && s.bytes().all(|b| b.is_ascii_digit()));
        if !widths_ok || name.len() != 19 + 1 + 36 {
            continue;
        }
        let (stamp, rest) = hour.split_at(19);
        let Some(uuid) = rest.strip_prefix('-') else {
            continue;
        };
        if uuid::Uuid::parse_str(uuid).is_err() {
            continue;
        }
        let Ok(t) = NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d-%H-%M-%S") else {
            continue;
        };
        if stamp[..13] != format!("{}-{}-{}-{}", date[0], date[1], date[2], date[3]) {
            continue;
        }
        return Some((segments[..=i].join("/"), t.and_utc()));
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_drop_roots_in_keys() {
        let key = "folder/2026/11/21/09/2026-11-21-09-30-05-0b6f3c1e-aaaa-4bbb-8ccc-000000000001/parquet/t/part-00000.parquet";
        let (root, t) = drop_root_of(key).unwrap();
        assert_eq!(
            root,
            "folder/2026/11/21/09/2026-11-21-09-30-05-0b6f3c1e-aaaa-4bbb-8ccc-000000000001"
        );
        assert_eq!(t.to_rfc3339(), "2026-11-21T09:30:05+00:00");
        assert!(drop_root_of("2026/11/21/09/not-a-drop/manifest.json").is_none());
        assert!(
            drop_root_of("2026/11/21/09/2026-11-21-09-30-05-0b6f3c1e-aaaa-4bbb-8ccc-000000000001")
                .is_none()
        );
        // The hour folder and the stamp must agree.
        assert!(
            drop_root_of(
                "2026/11/21/08/2026-11-21-09-30-05-0b6f3c1e-aaaa-4bbb-8ccc-000000000001/x"
            )
            .is_none()
        );
    }
}
