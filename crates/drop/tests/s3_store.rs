//! The S3 store, verify and gc against a real moto server through the real aws-sdk-s3 client.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lpdrop_drop::gc::gc;
use lpdrop_drop::{
    DropInfo, DropLayout, DropWriter, Fetched, ObjectInfo, ObjectStore, Prefix, RetryBudget,
    S3Store, S3WriteOptions, SourceInfo, StoreError, WriterOptions, verify,
};
use lpdrop_tables::{Lineage, MESSAGING_TABLES, MessagingTables};
use lpdrop_testkit::Moto;
use sha2::{Digest, Sha256};

const BUCKET: &str = "vb-thrive-air-s3-bucket";

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
            conversations: 50,
            open_conversations: 0,
        },
    }
}

fn store_with(moto: &Moto, options: S3WriteOptions) -> S3Store {
    S3Store::new(&moto.s3(), BUCKET, options, RetryBudget::default())
}

fn store(moto: &Moto) -> S3Store {
    store_with(moto, S3WriteOptions::default())
}

/// Writes 50 small conversations to `store` and commits (on a blocking thread, as the binary
/// does, because the writer blocks on the store's async calls).
async fn write_drop(
    store: Arc<dyn ObjectStore>,
) -> (
    DropLayout,
    Result<lpdrop_drop::CommittedDrop, lpdrop_drop::DropError>,
) {
    let layout = DropLayout::new(
        Prefix::parse("thrive-air-folder").unwrap(),
        chrono::Utc::now(),
        uuid::Uuid::new_v4(),
    );
    let l = layout.clone();
    let result = tokio::task::spawn_blocking(move || {
        let lineage = Lineage { account_id: "12345678".into(), drop_id: l.id().to_string(), extracted_at_ms: 0 };
        let mut writer = DropWriter::new(store, l, &MESSAGING_TABLES, WriterOptions::default());
        let mut tables = MessagingTables::new();
        for i in 0..50 {
            let record = serde_json::json!({
                "info": {"conversationId": format!("c{i}"), "startTimeL": 1_763_600_000_000i64 + i},
                "messageRecords": [{"messageId": "m0", "timeL": 1_763_600_000_100i64, "messageData": {"msg": {"text": "Hallo ✈"}}}],
                "transfers": [{"timeL": 1_763_600_000_200i64, "reason": "Skill"}]
            });
            tables.append(&serde_json::from_value(record).unwrap());
        }
        for buffer in tables.buffers_mut() {
            let batch = buffer.finish_batch(&lineage);
            writer.write_batch(buffer.def().name, &batch).unwrap();
        }
        writer.commit(info())
    })
    .await
    .unwrap();
    (layout, result)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drop_committed_to_s3_verifies() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET).await;
    // Threshold 0: every file goes through the multipart path.
    let options = S3WriteOptions {
        multipart_threshold: 0,
        ..Default::default()
    };
    let (layout, committed) = write_drop(Arc::new(store_with(&moto, options))).await;
    let committed = committed.unwrap();
    assert_eq!(
        committed.location,
        format!("s3://{BUCKET}/{}", layout.root())
    );

    let s3 = store(&moto);
    let report = verify(&s3, &layout.root()).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.rows, committed.manifest.totals.rows);
    assert_eq!(report.files_checked, MESSAGING_TABLES.len() as u64);

    // An object the manifest does not list makes the drop fail verification.
    moto.s3()
        .put_object()
        .bucket(BUCKET)
        .key(format!("{}/parquet/messages/stray.parquet", layout.root()))
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();
    let report = verify(&s3, &layout.root()).await.unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].contains("not in the manifest"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_marker_is_created_only_once() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET).await;
    let s = store(&moto);
    assert!(
        s.put_if_absent("a/upload.complete", b"first")
            .await
            .unwrap()
    );
    assert!(
        s.put_if_absent("a/upload.complete", b"first")
            .await
            .unwrap(),
        "the same bytes again are our own earlier write (its answer may have been lost)"
    );
    assert!(
        !s.put_if_absent("a/upload.complete", b"second")
            .await
            .unwrap()
    );
    assert_eq!(
        s.get_bytes("a/upload.complete").await.unwrap().as_deref(),
        Some(&b"first"[..])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn large_files_go_up_in_parts_and_come_back_identical() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET).await;
    let s = store_with(
        &moto,
        S3WriteOptions {
            multipart_threshold: 1 << 20,
            part_size: 5 << 20,
            ..Default::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    // 11 MiB of varied bytes: three 5 MiB parts (S3's minimum part size).
    let data: Vec<u8> = (0..11u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();
    let sha: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    s.put_file("big/part-00000.parquet", &path, &sha)
        .await
        .unwrap();
    let head = moto
        .s3()
        .head_object()
        .bucket(BUCKET)
        .key("big/part-00000.parquet")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(data.len() as i64));
    assert!(
        head.e_tag().unwrap().ends_with("-3\""),
        "three parts: {:?}",
        head.e_tag()
    );
    let back = s.get_bytes("big/part-00000.parquet").await.unwrap();
    assert!(back == Some(data), "the object differs from the file");
    assert!(
        s.pending_uploads("big/").await.unwrap().is_empty(),
        "no upload left open"
    );
}

/// Fails the upload of one table's file, as a network fault would after retries.
#[derive(Debug)]
struct FailOneFile {
    inner: S3Store,
    table: &'static str,
}

#[async_trait::async_trait]
impl ObjectStore for FailOneFile {
    fn staging_path(&self, key: &str) -> Result<PathBuf, StoreError> {
        self.inner.staging_path(key)
    }
    async fn publish_file(&self, key: &str, staged: &Path, sha: &str) -> Result<(), StoreError> {
        if key.contains(&format!("/parquet/{}/", self.table)) {
            return Err(StoreError {
                action: "uploading",
                location: key.into(),
                cause: std::io::Error::other("injected: connection reset"),
            });
        }
        self.inner.publish_file(key, staged, sha).await
    }
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.inner.put(key, bytes).await
    }
    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        self.inner.put_if_absent(key, bytes).await
    }
    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.inner.exists(key).await
    }
    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get_bytes(key).await
    }
    async fn fetch(&self, key: &str) -> Result<Option<Fetched>, StoreError> {
        self.inner.fetch(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        self.inner.delete(keys).await
    }
    async fn check_access(&self, prefix: &str) -> Result<(), StoreError> {
        self.inner.check_access(prefix).await
    }
    fn location(&self, key: &str) -> String {
        self.inner.location(key)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_upload_leaves_no_marker_and_gc_removes_the_partial_drop() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET).await;
    // One good drop, then one whose `transfers` file fails to upload.
    let (good_layout, committed) = write_drop(Arc::new(store(&moto))).await;
    committed.unwrap();
    let failing = Arc::new(FailOneFile {
        inner: store(&moto),
        table: "transfers",
    });
    let (bad_layout, result) = write_drop(failing).await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("injected") && err.contains("transfers"),
        "{err}"
    );

    let s3 = store(&moto);
    let partial = s3.list(&bad_layout.root()).await.unwrap();
    assert!(
        !partial.is_empty(),
        "files written before the failure are there"
    );
    assert!(
        partial
            .iter()
            .all(|o| !o.key.ends_with("upload.complete") && !o.key.ends_with("manifest.json"))
    );
    assert!(!verify(&s3, &bad_layout.root()).await.unwrap().ok());

    // Within the grace period nothing is touched; a dry run removes nothing.
    let now = chrono::Utc::now();
    let report = gc(
        &s3,
        "thrive-air-folder",
        chrono::Duration::hours(1),
        now,
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            report.committed_drops,
            report.recent_uncommitted,
            report.removed_drops.len()
        ),
        (1, 1, 0)
    );
    let report = gc(
        &s3,
        "thrive-air-folder",
        chrono::Duration::zero(),
        now + chrono::Duration::seconds(5),
        true,
    )
    .await
    .unwrap();
    assert_eq!(report.removed_drops.len(), 1);
    assert_eq!(
        s3.list(&bad_layout.root()).await.unwrap().len(),
        partial.len(),
        "dry run"
    );

    let report = gc(
        &s3,
        "thrive-air-folder",
        chrono::Duration::zero(),
        now + chrono::Duration::seconds(5),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        report.removed_drops,
        vec![(bad_layout.root(), partial.len())]
    );
    assert!(s3.list(&bad_layout.root()).await.unwrap().is_empty());
    assert!(
        verify(&s3, &good_layout.root()).await.unwrap().ok(),
        "the committed drop is kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_aborts_stale_multipart_uploads() {
    let moto = Moto::start();
    let client = moto.create_bucket(BUCKET).await;
    let key = "thrive-air-folder/2026/11/21/09/2026-11-21-09-30-05-0b6f3c1e-aaaa-4bbb-8ccc-000000000001/parquet/messages/part-00000.parquet";
    client
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    let s3 = store(&moto);
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    let report = gc(
        &s3,
        "thrive-air-folder",
        chrono::Duration::hours(1),
        later,
        false,
    )
    .await
    .unwrap();
    assert_eq!(report.aborted_uploads.len(), 1);
    assert!(
        s3.pending_uploads("thrive-air-folder/")
            .await
            .unwrap()
            .is_empty()
    );
}
