//! `manifest.json` (what is in a drop and where it came from) and `upload.complete`.

use serde::{Deserialize, Serialize};

/// Bumped when a manifest field changes meaning; readers check it.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub drop_id: String,
    /// RFC 3339, UTC: the drop's creation time, which also forms its path.
    pub created_at: String,
    pub producer: Producer,
    /// The queued job this drop answers, when it came from the job queue.
    pub job: Option<JobRef>,
    pub source: SourceInfo,
    pub schema_version: u32,
    /// Key of the drop root (no trailing `/`), relative to the bucket or output folder.
    pub root: String,
    pub tables: Vec<TableEntry>,
    pub totals: Totals,
    pub quarantine: QuarantineEntry,
    /// The column mapping the tables were written with (`--column-mapping`): columns added,
    /// renamed and dropped against the built-in schema files. Absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_mapping: Option<lpdrop_tables::MappingSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Producer {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRef {
    pub id: String,
    pub attempt: u32,
}

/// What was extracted: account, API, window and filters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub account_id: String,
    /// `messaging_interactions` for the MI search.
    pub api: String,
    /// Half-open `[from, to)` window, RFC 3339 UTC.
    pub window_from: String,
    pub window_to: String,
    /// The time the window applies to: `conversation_start`.
    pub time_basis: String,
    pub filters: serde_json::Value,
    /// Conversations written (after de-duplication and exact-window filtering).
    pub conversations: u64,
    /// Conversations still OPEN at extraction; a later drop holds their final state.
    pub open_conversations: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    pub name: String,
    /// `sha256:` of the table's column names, types and nullability.
    pub schema_hash: String,
    pub rows: u64,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Full key, relative to the bucket or output folder.
    pub key: String,
    /// Path relative to the drop root.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub tables: u64,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// Records that could not be read, kept in a JSON-lines file outside the table folders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    pub records: u64,
    pub file: Option<FileEntry>,
}

/// The body of `upload.complete`: enough for an SQS consumer to load the drop without listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub format_version: u32,
    pub drop_id: String,
    pub created_at: String,
    pub manifest_key: String,
    pub manifest_sha256: String,
    pub files: Vec<String>,
}

impl Marker {
    /// The marker that commits `manifest`, whose serialized bytes under `manifest_key` are
    /// `manifest_bytes`: it names every table file, so a loader needs no listing.
    pub fn for_manifest(manifest: &Manifest, manifest_key: String, manifest_bytes: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        Marker {
            format_version: MANIFEST_FORMAT_VERSION,
            drop_id: manifest.drop_id.clone(),
            created_at: manifest.created_at.clone(),
            manifest_key,
            manifest_sha256: crate::writer::hex(&Sha256::digest(manifest_bytes)),
            files: manifest
                .tables
                .iter()
                .flat_map(|t| &t.files)
                .map(|f| f.key.clone())
                .collect(),
        }
    }
}
