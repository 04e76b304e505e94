//! `lpdrop verify`: check a published drop against its manifest, the way a careful reader
//! would before trusting it.

use std::collections::BTreeSet;

use parquet::file::reader::{FileReader, SerializedFileReader};
use sha2::{Digest, Sha256};

use crate::layout::{MANIFEST_NAME, MARKER_NAME};
use crate::manifest::{FileEntry, Manifest, Marker};
use crate::store::{ObjectStore, StoreError};
use crate::writer::hex;

/// What `verify` found. The drop is good when `problems` is empty.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub drop_id: Option<String>,
    pub files_checked: u64,
    pub rows: u64,
    pub bytes: u64,
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn join(base: &str, path: &str) -> String {
    if base.is_empty() {
        path.to_string()
    } else {
        format!("{base}/{path}")
    }
}

/// Verifies the drop whose root is `base`, a key prefix, or empty when the store was opened at
/// the drop's own folder. A drop found under a prefix must be where it was published: its
/// manifest's `root` must equal `base` (the keys in its marker are then valid). A drop
/// opened at its own folder may have been copied or moved there, so its root is not compared.
pub async fn verify(store: &dyn ObjectStore, base: &str) -> Result<VerifyReport, StoreError> {
    let expect_root = !base.is_empty();
    let mut report = VerifyReport::default();
    let Some(marker_bytes) = store.get_bytes(&join(base, MARKER_NAME)).await? else {
        report.problems.push(format!(
            "{} is missing: the drop is not committed",
            MARKER_NAME
        ));
        return Ok(report);
    };
    let marker: Marker = match serde_json::from_slice(&marker_bytes) {
        Ok(m) => m,
        Err(e) => {
            report
                .problems
                .push(format!("{MARKER_NAME} is not valid: {e}"));
            return Ok(report);
        }
    };
    let Some(manifest_bytes) = store.get_bytes(&join(base, MANIFEST_NAME)).await? else {
        report.problems.push(format!("{MANIFEST_NAME} is missing"));
        return Ok(report);
    };
    let manifest: Manifest = match serde_json::from_slice(&manifest_bytes) {
        Ok(m) => m,
        Err(e) => {
            report
                .problems
                .push(format!("{MANIFEST_NAME} is not valid: {e}"));
            return Ok(report);
        }
    };
    report.drop_id = Some(manifest.drop_id.clone());
    let manifest_sha = hex(&Sha256::digest(&manifest_bytes));
    if marker.manifest_sha256 != manifest_sha {
        report.problems.push(format!(
            "{MANIFEST_NAME} has SHA-256 {manifest_sha}, the marker says {}",
            marker.manifest_sha256
        ));
    }
    if marker.drop_id != manifest.drop_id {
        report.problems.push(format!(
            "the marker names drop {}, the manifest {}",
            marker.drop_id, manifest.drop_id
        ));
    }
    if expect_root && manifest.root != base {
        report.problems.push(format!(
            "the manifest's root {:?} is not where the drop is ({base:?})",
            manifest.root
        ));
    }

    let mut expected: BTreeSet<String> = [MANIFEST_NAME, MARKER_NAME]
        .iter()
        .map(|n| join(base, n))
        .collect();
    let mut manifest_keys = Vec::new();
    for table in &manifest.tables {
        let mut rows = 0;
        for file in &table.files {
            manifest_keys.push(file.key.clone());
            expected.insert(join(base, &file.path));
            if let Some(parquet_rows) = check_file(store, base, file, true, &mut report).await?
                && parquet_rows != file.rows
            {
                report.problems.push(format!(
                    "{}: parquet holds {parquet_rows} rows, the manifest says {}",
                    file.path, file.rows
                ));
            }
            rows += file.rows;
        }
        if rows != table.rows {
            report.problems.push(format!(
                "table {}: files hold {rows} rows, the table entry says {}",
                table.name, table.rows
            ));
        }
        report.rows += rows;
    }
    if let Some(q) = &manifest.quarantine.file {
        expected.insert(join(base, &q.path));
        check_file(store, base, q, false, &mut report).await?;
    }
    if report.rows != manifest.totals.rows {
        report.problems.push(format!(
            "tables hold {} rows, the totals say {}",
            report.rows, manifest.totals.rows
        ));
    }
    if marker.files != manifest_keys {
        report
            .problems
            .push("the marker's file list differs from the manifest's".to_string());
    }
    let prefix = if base.is_empty() {
        String::new()
    } else {
        format!("{base}/")
    };
    for object in store.list(base).await? {
        if object.key.starts_with(&prefix) && !expected.contains(&object.key) {
            report.problems.push(format!(
                "{} is in the drop but not in the manifest",
                object.key
            ));
        }
    }
    Ok(report)
}

/// Checks one listed file's presence, size and digest; returns the parquet row count when
/// `parquet` is set and the file could be opened.
async fn check_file(
    store: &dyn ObjectStore,
    base: &str,
    file: &FileEntry,
    parquet: bool,
    report: &mut VerifyReport,
) -> Result<Option<u64>, StoreError> {
    let key = join(base, &file.path);
    let Some(fetched) = store.fetch(&key).await? else {
        report
            .problems
            .push(format!("{} is listed but missing", file.path));
        return Ok(None);
    };
    report.files_checked += 1;
    report.bytes += fetched.size;
    if fetched.size != file.bytes {
        report.problems.push(format!(
            "{}: {} bytes, the manifest says {}",
            file.path, fetched.size, file.bytes
        ));
    }
    if fetched.sha256 != file.sha256 {
        report.problems.push(format!(
            "{}: SHA-256 {}, the manifest says {}",
            file.path, fetched.sha256, file.sha256
        ));
    }
    if !parquet {
        return Ok(None);
    }
    let opened = std::fs::File::open(&fetched.path)
        .map_err(|e| e.to_string())
        .and_then(|f| SerializedFileReader::new(f).map_err(|e| e.to_string()));
    match opened {
        Ok(reader) => Ok(Some(
            reader.metadata().file_metadata().num_rows().max(0) as u64
        )),
        Err(e) => {
            report
                .problems
                .push(format!("{} does not open as parquet: {e}", file.path));
            Ok(None)
        }
    }
}
