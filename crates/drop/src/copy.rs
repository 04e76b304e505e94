//! `lpdrop copy`: a committed drop published again into another store or prefix (a local drop
//! to `az://`, S3 to Azure, one prefix to another), with the contract's guarantees.
//!
//! The copy is the same drop (same `drop_id`, `created_at` and files) under the destination's
//! prefix. Every file is checked against the source manifest's size and SHA-256 before it is
//! published, so a damaged source is refused instead of copied. Then, as for any drop, the
//! manifest (its `root` and keys rewritten for the new place) and last the create-only marker.
//! Running it again after a failure publishes the files again and commits once; a destination
//! that already holds the drop is reported, not overwritten.

use futures_util::{StreamExt, TryStreamExt};

use crate::layout::{MANIFEST_NAME, MARKER_NAME, Prefix, drop_root_of};
use crate::manifest::{FileEntry, Manifest, Marker};
use crate::store::{ObjectStore, StoreError};

/// Files uploaded at once. Each remote store also keeps a few parts of one file in flight, so
/// two files keep the link busy while small files are many, and memory stays bounded.
const FILES_IN_FLIGHT: usize = 2;

/// Why a drop could not be copied. Nothing is committed at the destination after any of these.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The source is not a committed, intact drop.
    #[error("the source drop cannot be copied: {0}")]
    Source(String),
    /// The destination holds another drop at the same root.
    #[error("{0} already holds another drop ({1})")]
    Occupied(String, String),
}

/// What was copied.
#[derive(Debug, Clone)]
pub struct CopyReport {
    pub drop_id: String,
    /// The drop's root key in the destination store.
    pub root: String,
    pub files: u64,
    pub bytes: u64,
    /// The destination already held this very drop: nothing was written.
    pub already_there: bool,
}

fn join(base: &str, path: &str) -> String {
    if base.is_empty() {
        path.to_string()
    } else {
        format!("{base}/{path}")
    }
}

/// A path inside a drop as a manifest from elsewhere gives it: relative, no `..`, no odd
/// characters (a key outside the drop's folder would be written where it does not belong).
fn check_path(path: &str) -> Result<(), CopyError> {
    let ok = !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && path != MANIFEST_NAME
        && path != MARKER_NAME;
    if ok {
        Ok(())
    } else {
        Err(CopyError::Source(format!(
            "the manifest lists an invalid path {path:?}"
        )))
    }
}

/// Reads the source's marker and manifest and checks that they belong together.
async fn read_source(src: &dyn ObjectStore, base: &str) -> Result<Manifest, CopyError> {
    let marker_key = join(base, MARKER_NAME);
    let Some(marker) = src.get_bytes(&marker_key).await? else {
        return Err(CopyError::Source(format!(
            "{} is missing: the drop is not committed",
            src.location(&marker_key)
        )));
    };
    let marker: Marker = serde_json::from_slice(&marker)
        .map_err(|e| CopyError::Source(format!("{MARKER_NAME} is not valid: {e}")))?;
    let manifest_key = join(base, MANIFEST_NAME);
    let Some(bytes) = src.get_bytes(&manifest_key).await? else {
        return Err(CopyError::Source(format!(
            "{} is missing",
            src.location(&manifest_key)
        )));
    };
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| CopyError::Source(format!("{MANIFEST_NAME} is not valid: {e}")))?;
    // A newer format may hold fields this release would drop when it rewrites the manifest.
    if manifest.format_version > crate::manifest::MANIFEST_FORMAT_VERSION {
        return Err(CopyError::Source(format!(
            "{MANIFEST_NAME} has format version {}, newer than this lpdrop's {}: copy it with a \
             newer lpdrop",
            manifest.format_version,
            crate::manifest::MANIFEST_FORMAT_VERSION
        )));
    }
    let check = Marker::for_manifest(&manifest, marker.manifest_key.clone(), &bytes);
    if check.manifest_sha256 != marker.manifest_sha256 || marker.drop_id != manifest.drop_id {
        return Err(CopyError::Source(format!(
            "{MANIFEST_NAME} does not match {MARKER_NAME} (SHA-256 or drop id)"
        )));
    }
    Ok(manifest)
}

/// Copies the committed drop at `src_base` in `src` into `dst` under `dst_prefix`, keeping its
/// dated folder (`YYYY/MM/DD/HH/<timestamp>-<id>`). `progress` is called after each file with
/// the bytes copied so far and the drop's total.
pub async fn copy_drop(
    src: &dyn ObjectStore,
    src_base: &str,
    dst: &dyn ObjectStore,
    dst_prefix: &Prefix,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<CopyReport, CopyError> {
    let mut manifest = read_source(src, src_base).await?;
    // The dated folder is the last five segments of the root the drop was published under.
    let Some((old_root, _)) = drop_root_of(&format!("{}/{MANIFEST_NAME}", manifest.root)) else {
        return Err(CopyError::Source(format!(
            "the manifest's root {:?} is not a drop folder",
            manifest.root
        )));
    };
    let dated: Vec<&str> = old_root.rsplitn(6, '/').take(5).collect();
    let root = dst_prefix.join(&dated.into_iter().rev().collect::<Vec<_>>().join("/"));
    let mut report = CopyReport {
        drop_id: manifest.drop_id.clone(),
        root: root.clone(),
        files: 0,
        bytes: 0,
        already_there: false,
    };

    let marker_key = join(&root, MARKER_NAME);
    if let Some(existing) = dst.get_bytes(&marker_key).await? {
        return match serde_json::from_slice::<Marker>(&existing) {
            Ok(m) if m.drop_id == manifest.drop_id => {
                report.already_there = true;
                Ok(report)
            }
            Ok(m) => Err(CopyError::Occupied(dst.location(&root), m.drop_id)),
            Err(_) => Err(CopyError::Occupied(
                dst.location(&root),
                "an unreadable marker".to_string(),
            )),
        };
    }

    let mut files: Vec<&mut FileEntry> = manifest
        .tables
        .iter_mut()
        .flat_map(|t| t.files.iter_mut())
        .chain(manifest.quarantine.file.as_mut())
        .collect();
    for file in &files {
        check_path(&file.path)?;
    }
    let total_bytes: u64 = files.iter().map(|f| f.bytes).sum();
    let copied = std::sync::atomic::AtomicU64::new(0);
    let copied = &copied;
    let root_ref = &root;
    futures_util::stream::iter(files.iter().map(|file| async move {
        let from = join(src_base, &file.path);
        let Some(fetched) = src.fetch(&from).await? else {
            return Err(CopyError::Source(format!(
                "{} is listed but missing",
                src.location(&from)
            )));
        };
        if fetched.size != file.bytes || fetched.sha256 != file.sha256 {
            return Err(CopyError::Source(format!(
                "{} has {} bytes and SHA-256 {}, the manifest says {} and {}",
                src.location(&from),
                fetched.size,
                fetched.sha256,
                file.bytes,
                file.sha256
            )));
        }
        dst.publish_copy(&join(root_ref, &file.path), &fetched.path, &file.sha256)
            .await?;
        let total = copied.fetch_add(file.bytes, std::sync::atomic::Ordering::Relaxed) + file.bytes;
        progress(total, total_bytes);
        Ok(())
    }))
    .buffer_unordered(FILES_IN_FLIGHT)
    .try_collect::<Vec<()>>()
    .await?;
    report.files = files.len() as u64;
    report.bytes = total_bytes;

    for file in &mut files {
        file.key = join(&root, &file.path);
    }
    manifest.root = root.clone();
    let manifest_key = join(&root, MANIFEST_NAME);
    let bytes = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    dst.put(&manifest_key, &bytes).await?;
    let marker = Marker::for_manifest(&manifest, manifest_key, &bytes);
    let marker_bytes = serde_json::to_vec_pretty(&marker).expect("marker serializes");
    if !dst.put_if_absent(&marker_key, &marker_bytes).await? {
        // Another copy committed between our check and now; it is the same drop only if its
        // marker says so.
        let holder = dst
            .get_bytes(&marker_key)
            .await?
            .and_then(|b| serde_json::from_slice::<Marker>(&b).ok())
            .map(|m| m.drop_id);
        return match holder {
            Some(id) if id == manifest.drop_id => {
                report.already_there = true;
                Ok(report)
            }
            other => Err(CopyError::Occupied(
                dst.location(&root),
                other.unwrap_or_else(|| "an unreadable marker".to_string()),
            )),
        };
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_a_manifest_stay_inside_the_drop() {
        assert!(check_path("parquet/messages/part-00000.parquet").is_ok());
        assert!(check_path("quarantine/records.jsonl").is_ok());
        for bad in [
            "",
            "../x",
            "parquet/../../x",
            "/abs",
            "a//b",
            "upload.complete",
            "manifest.json",
            "a b",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?} accepted");
        }
    }
}
