//! The commit protocol on a real folder: files, manifest, marker, and no marker on failure.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::TimeZone;
use lpdrop_drop::{
    DropInfo, DropLayout, DropWriter, Fetched, LocalStore, Manifest, Marker, ObjectInfo,
    ObjectStore, Prefix, SourceInfo, StoreError, WriterOptions,
};
use lpdrop_tables::{Lineage, MessagingTables, QuarantinedRecord, all_tables};
use parquet::file::reader::{FileReader, SerializedFileReader};
use sha2::{Digest, Sha256};

fn info() -> DropInfo {
    DropInfo {
        job: None,
        source: SourceInfo {
            account_id: "12345678".into(),
            api: "messaging_interactions".into(),
            window_from: "2026-11-20T00:00:00.000Z".into(),
            window_to: "2026-11-21T00:00:00.000Z".into(),
            time_basis: "conversation_start".into(),
            filters: serde_json::json!({}),
            conversations: 2,
            open_conversations: 0,
        },
    }
}

fn layout() -> DropLayout {
    let t = chrono::Utc
        .with_ymd_and_hms(2026, 11, 21, 9, 30, 5)
        .unwrap();
    DropLayout::new(
        Prefix::parse("thrive-air").unwrap(),
        t,
        uuid::Uuid::new_v4(),
    )
}

fn conversations(n: usize) -> MessagingTables {
    let mut tables = MessagingTables::new();
    for i in 0..n {
        let record = serde_json::json!({
            "info": {"conversationId": format!("c{i}"), "startTimeL": 1_763_600_000_000i64 + i as i64, "status": "CLOSE"},
            "messageRecords": [{"messageId": "m0", "timeL": 1_763_600_000_100i64, "messageData": {"msg": {"text": "Grüße ✈"}}},
                               {"messageId": "m1", "timeL": 1_763_600_000_200i64, "messageData": {"msg": {"text": "ok"}}}]
        });
        tables.append(&serde_json::from_value(record).unwrap());
    }
    tables
}

fn write_all(writer: &mut DropWriter, tables: &mut MessagingTables, lineage: &Lineage) {
    for buffer in tables.buffers_mut() {
        let name = buffer.def().name;
        let batch = buffer.finish_batch(lineage);
        writer.write_batch(name, &batch).unwrap();
    }
}

fn sha256(path: &Path) -> String {
    Sha256::digest(fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn commit_writes_files_then_manifest_then_marker() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout();
    let lineage = Lineage {
        account_id: "12345678".into(),
        drop_id: layout.id().to_string(),
        extracted_at_ms: 0,
    };
    let mut writer = DropWriter::new(
        Arc::new(LocalStore::new(dir.path())),
        layout.clone(),
        all_tables(),
        WriterOptions::default(),
    );
    let mut tables = conversations(3);
    write_all(&mut writer, &mut tables, &lineage);
    writer
        .quarantine(&QuarantinedRecord::new(
            "field info.mcs: bad".into(),
            "test".into(),
            b"{\"x\":1}".to_vec(),
        ))
        .unwrap();
    let committed = writer.commit(info()).unwrap();

    let root = dir.path().join(layout.root());
    assert!(
        layout
            .root()
            .starts_with("thrive-air/2026/11/21/09/2026-11-21-09-30-05-")
    );
    let manifest: Manifest =
        serde_json::from_slice(&fs::read(root.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest, committed.manifest);
    let marker: Marker =
        serde_json::from_slice(&fs::read(root.join("upload.complete")).unwrap()).unwrap();
    assert_eq!(marker.manifest_key, layout.manifest_key());
    assert_eq!(marker.manifest_sha256, sha256(&root.join("manifest.json")));
    assert_eq!(
        manifest.tables.len(),
        all_tables().len(),
        "every table is listed, even empty ones"
    );
    let by_name = |n: &str| manifest.tables.iter().find(|t| t.name == n).unwrap();
    assert_eq!(by_name("conversations").rows, 3);
    assert_eq!(by_name("messages").rows, 6);
    assert_eq!(by_name("transfers").rows, 0);
    for table in &manifest.tables {
        assert_eq!(table.files.len(), 1);
        for file in &table.files {
            assert!(marker.files.contains(&file.key));
            let path = dir.path().join(&file.key);
            assert_eq!(fs::metadata(&path).unwrap().len(), file.bytes);
            assert_eq!(sha256(&path), file.sha256);
            let reader = SerializedFileReader::new(fs::File::open(&path).unwrap()).unwrap();
            assert_eq!(
                reader.metadata().file_metadata().num_rows() as u64,
                file.rows
            );
        }
    }
    assert_eq!(manifest.quarantine.records, 1);
    let q = manifest.quarantine.file.as_ref().unwrap();
    assert_eq!(sha256(&dir.path().join(&q.key)), q.sha256);
    assert!(
        !q.key.contains("/parquet/"),
        "quarantine stays outside table folders"
    );
}

#[test]
fn files_roll_over_past_the_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout();
    let lineage = Lineage {
        account_id: "1".into(),
        drop_id: "d".into(),
        extracted_at_ms: 0,
    };
    let options = WriterOptions {
        row_group_bytes: 1,
        max_file_bytes: 1,
        ..Default::default()
    };
    let mut writer = DropWriter::new(
        Arc::new(LocalStore::new(dir.path())),
        layout,
        all_tables(),
        options,
    );
    for _ in 0..3 {
        let mut tables = conversations(2);
        write_all(&mut writer, &mut tables, &lineage);
    }
    let manifest = writer.commit(info()).unwrap().manifest;
    let conv = manifest
        .tables
        .iter()
        .find(|t| t.name == "conversations")
        .unwrap();
    assert_eq!(conv.files.len(), 3);
    assert_eq!(conv.rows, 6);
    assert!(conv.files[2].key.ends_with("part-00002.parquet"));
}

/// A store that fails on the manifest: the commit must stop before the marker.
#[derive(Debug)]
struct FailingManifest(LocalStore);

#[async_trait::async_trait]
impl ObjectStore for FailingManifest {
    fn staging_path(&self, key: &str) -> Result<PathBuf, StoreError> {
        self.0.staging_path(key)
    }
    async fn publish_file(&self, key: &str, staged: &Path, sha: &str) -> Result<(), StoreError> {
        self.0.publish_file(key, staged, sha).await
    }
    async fn put(&self, key: &str, _bytes: &[u8]) -> Result<(), StoreError> {
        Err(StoreError {
            action: "writing",
            location: key.into(),
            cause: std::io::Error::other("disk full"),
        })
    }
    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        self.0.put_if_absent(key, bytes).await
    }
    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.0.exists(key).await
    }
    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get_bytes(key).await
    }
    async fn fetch(&self, key: &str) -> Result<Option<Fetched>, StoreError> {
        self.0.fetch(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        self.0.list(prefix).await
    }
    async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        self.0.delete(keys).await
    }
    async fn check_access(&self, prefix: &str) -> Result<(), StoreError> {
        self.0.check_access(prefix).await
    }
    fn location(&self, key: &str) -> String {
        self.0.location(key)
    }
}

#[test]
fn a_failed_manifest_leaves_no_marker() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout();
    let lineage = Lineage {
        account_id: "1".into(),
        drop_id: "d".into(),
        extracted_at_ms: 0,
    };
    let store = Arc::new(FailingManifest(LocalStore::new(dir.path())));
    let mut writer = DropWriter::new(
        store,
        layout.clone(),
        all_tables(),
        WriterOptions::default(),
    );
    let mut tables = conversations(1);
    write_all(&mut writer, &mut tables, &lineage);
    let err = writer.commit(info()).unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    assert!(!dir.path().join(layout.marker_key()).exists());
}

#[test]
fn an_uncommitted_writer_leaves_no_marker() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout();
    let lineage = Lineage {
        account_id: "1".into(),
        drop_id: "d".into(),
        extracted_at_ms: 0,
    };
    let mut writer = DropWriter::new(
        Arc::new(LocalStore::new(dir.path())),
        layout.clone(),
        all_tables(),
        WriterOptions::default(),
    );
    let mut tables = conversations(1);
    write_all(&mut writer, &mut tables, &lineage);
    drop(writer);
    assert!(!dir.path().join(layout.marker_key()).exists());
    assert!(!dir.path().join(layout.manifest_key()).exists());
}

#[test]
fn a_closed_fence_stops_the_commit_before_the_marker() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout();
    let lineage = Lineage {
        account_id: "1".into(),
        drop_id: "d".into(),
        extracted_at_ms: 0,
    };
    let mut writer = DropWriter::new(
        Arc::new(LocalStore::new(dir.path())),
        layout.clone(),
        all_tables(),
        WriterOptions::default(),
    );
    let mut tables = conversations(1);
    write_all(&mut writer, &mut tables, &lineage);
    // The lease is lost between the manifest and the marker: the second question says no.
    let asked = std::cell::Cell::new(0);
    let fence = || {
        asked.set(asked.get() + 1);
        if asked.get() == 1 {
            Ok(())
        } else {
            Err("lease lost".to_string())
        }
    };
    let err = writer.commit_fenced(info(), &fence).unwrap_err();
    assert!(
        err.to_string().contains("not committing: lease lost"),
        "{err}"
    );
    assert_eq!(asked.get(), 2);
    assert!(dir.path().join(layout.manifest_key()).exists());
    assert!(!dir.path().join(layout.marker_key()).exists());
}
