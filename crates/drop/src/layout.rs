//! Drop layout (ARCHITECTURE §3): the only place that formats object keys.
//!
//! ```text
//! {prefix}/{YYYY}/{MM}/{DD}/{HH}/{YYYY}-{MM}-{DD}-{HH}-{mm}-{ss}-{uuid}/
//!     parquet/{table}/part-{00000}.parquet
//!     quarantine/records.jsonl          (only when records were quarantined)
//!     manifest.json
//!     upload.complete
//! ```

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use uuid::Uuid;

pub const MANIFEST_NAME: &str = "manifest.json";
pub const MARKER_NAME: &str = "upload.complete";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "invalid prefix {0:?}: use lower-case letters, digits, '-', '_' and '/', no '..', no leading '/'"
    )]
    BadPrefix(String),
    #[error("invalid table name {0:?}")]
    BadTable(String),
}

/// A validated key prefix (the user's folder inside a bucket); may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Prefix(String);

impl Prefix {
    /// Validates a prefix from outside input; a trailing `/` is dropped.
    pub fn parse(s: &str) -> Result<Self, LayoutError> {
        let trimmed = s.strip_suffix('/').unwrap_or(s);
        if trimmed.is_empty() {
            return Ok(Prefix::default());
        }
        let chars_ok = trimmed
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '/'));
        let segments_ok = trimmed
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        if !chars_ok || !segments_ok || trimmed.starts_with('/') || trimmed.contains("..") {
            return Err(LayoutError::BadPrefix(s.to_string()));
        }
        Ok(Prefix(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `{prefix}/{rest}`, or `rest` alone when the prefix is empty.
    pub fn join(&self, rest: &str) -> String {
        if self.0.is_empty() {
            rest.to_string()
        } else {
            format!("{}/{}", self.0, rest)
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where one drop's objects go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropLayout {
    prefix: Prefix,
    created_at: DateTime<Utc>,
    id: Uuid,
}

impl DropLayout {
    pub fn new(prefix: Prefix, created_at: DateTime<Utc>, id: Uuid) -> Self {
        // Keys carry whole seconds; keep the instant the manifest reports consistent with them.
        let created_at = created_at
            .with_nanosecond((created_at.nanosecond() / 1_000_000) * 1_000_000)
            .unwrap_or(created_at);
        DropLayout {
            prefix,
            created_at,
            id,
        }
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    /// The drop's root key, without a trailing `/`.
    pub fn root(&self) -> String {
        let t = self.created_at;
        self.prefix.join(&format!(
            "{:04}/{:02}/{:02}/{:02}/{:04}-{:02}-{:02}-{:02}-{:02}-{:02}-{}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            self.id.hyphenated()
        ))
    }

    /// Path of a table file relative to the drop root.
    pub fn table_file_path(table: &str, part: u32) -> Result<String, LayoutError> {
        if table.is_empty()
            || !table
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(LayoutError::BadTable(table.to_string()));
        }
        Ok(format!("parquet/{table}/part-{part:05}.parquet"))
    }

    /// Full key of a path inside the drop.
    pub fn key(&self, path_in_drop: &str) -> String {
        format!("{}/{}", self.root(), path_in_drop)
    }

    pub fn manifest_key(&self) -> String {
        self.key(MANIFEST_NAME)
    }

    pub fn marker_key(&self) -> String {
        self.key(MARKER_NAME)
    }

    pub const QUARANTINE_PATH: &'static str = "quarantine/records.jsonl";
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn layout_matches_the_contract() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let id = Uuid::parse_str("0b6f3c1e-aaaa-4bbb-8ccc-000000000001").unwrap();
        let l = DropLayout::new(Prefix::parse("thrive-air-folder/").unwrap(), t, id);
        assert_eq!(
            l.root(),
            "thrive-air-folder/2026/01/02/03/2026-01-02-03-04-05-0b6f3c1e-aaaa-4bbb-8ccc-000000000001"
        );
        assert_eq!(
            l.key(&DropLayout::table_file_path("messages", 0).unwrap()),
            format!("{}/parquet/messages/part-00000.parquet", l.root())
        );
        assert!(l.marker_key().ends_with("-000000000001/upload.complete"));
        let bare = DropLayout::new(Prefix::default(), t, id);
        assert!(bare.root().starts_with("2026/01/02/03/"));
    }

    #[test]
    fn prefixes_from_outside_are_validated() {
        for good in ["", "a", "thrive-air-folder", "a/b_c/d-1", "x/"] {
            assert!(Prefix::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "/abs", "a/../b", "..", "a//b", "Upper", "a b", "a\\b", "a/./b", "ünï",
        ] {
            assert!(Prefix::parse(bad).is_err(), "{bad}");
        }
        assert!(DropLayout::table_file_path("../x", 0).is_err());
        assert_eq!(
            DropLayout::table_file_path("t", 12).unwrap(),
            "parquet/t/part-00012.parquet"
        );
    }

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

    #[test]
    fn keys_the_layout_formats_parse_back() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-21T09:30:05.123Z")
            .unwrap()
            .with_timezone(&Utc);
        let id = Uuid::parse_str("0b6f3c1e-aaaa-4bbb-8ccc-000000000001").unwrap();
        for prefix in ["", "folder", "a/b-c_d"] {
            let layout = DropLayout::new(Prefix::parse(prefix).unwrap(), t, id);
            let (root, created) = drop_root_of(&layout.manifest_key()).unwrap();
            assert_eq!(root, layout.root(), "{prefix:?}");
            assert_eq!(created.timestamp(), t.timestamp());
            let file = DropLayout::table_file_path("messages", 3).unwrap();
            assert_eq!(drop_root_of(&layout.key(&file)).unwrap().0, layout.root());
        }
    }
}
