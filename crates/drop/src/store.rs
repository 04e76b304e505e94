//! The object-store abstraction: where drops are written, read back, verified and removed.
//!
//! One async trait for every kind of store (a local folder, S3; more later), so that the
//! writer, `verify`, `gc` and the worker never ask which kind they hold. Keys are
//! `/`-separated and relative to the store's root (a folder, or a bucket).

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::writer::hex;

/// A store failure, naming the object and what happened.
///
/// The cause is part of the message and deliberately not an error `source`: reporters that
/// print the whole chain (`{:#}`) would otherwise say it twice.
#[derive(Debug, thiserror::Error)]
#[error("{action} {location}: {cause}")]
pub struct StoreError {
    pub action: &'static str,
    pub location: String,
    pub cause: io::Error,
}

impl StoreError {
    pub(crate) fn new(action: &'static str, location: impl Into<String>, cause: io::Error) -> Self {
        StoreError {
            action,
            location: location.into(),
            cause,
        }
    }
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// An unfinished multipart upload (S3), for `gc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    pub key: String,
    pub upload_id: String,
    pub initiated_ms: Option<i64>,
}

/// A local copy of an object (the original file for a local store), its size and digest.
#[derive(Debug)]
pub struct Fetched {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// Keeps a downloaded copy alive as long as this value; `None` for a local original.
    pub(crate) _temp: Option<tempfile::TempPath>,
}

/// An object store for drops.
///
/// Files are written to a local staging path first (parquet is written as a stream and its
/// checksum computed on the way), then published. Small objects (manifest, marker) are put
/// whole. The marker is created only if absent, which is what makes a commit happen once.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// A local path to write the bytes of `key` to before [`ObjectStore::publish_file`].
    fn staging_path(&self, key: &str) -> Result<PathBuf, StoreError>;

    /// Makes a staged file durable under `key`. `sha256_hex` is the digest computed while the
    /// file was written, so that a remote store can verify the bytes it received.
    async fn publish_file(
        &self,
        key: &str,
        staged: &Path,
        sha256_hex: &str,
    ) -> Result<(), StoreError>;

    /// Publishes a copy of `source`, a file the caller keeps (a drop being copied elsewhere).
    /// By default a byte copy is staged and published; remote stores upload straight from
    /// `source` instead.
    async fn publish_copy(
        &self,
        key: &str,
        source: &Path,
        sha256_hex: &str,
    ) -> Result<(), StoreError> {
        let staged = self.staging_path(key)?;
        let (from, into) = (source.to_path_buf(), staged.clone());
        tokio::task::spawn_blocking(move || {
            // A staged file left by an earlier, failed copy is replaced.
            std::fs::copy(&from, &into).map(drop)
        })
        .await
        .map_err(io::Error::other)
        .and_then(|r| r)
        .map_err(|e| StoreError::new("staging a copy as", staged.display().to_string(), e))?;
        self.publish_file(key, &staged, sha256_hex).await
    }

    /// Writes a small object, replacing any previous one atomically.
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;

    /// Creates a small object only if `key` does not exist yet; `Ok(false)` when it did. A
    /// remote store counts an object equal to `bytes` as its own write (`Ok(true)`): the
    /// answer to an attempt that landed may have been lost.
    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError>;

    async fn exists(&self, key: &str) -> Result<bool, StoreError>;

    /// A small object's bytes, or `None` when it does not exist.
    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// A local, readable copy of an object with its size and SHA-256; `None` when missing.
    async fn fetch(&self, key: &str) -> Result<Option<Fetched>, StoreError>;

    /// Every object under the folder `prefix` (all of the store when empty), sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError>;

    /// Removes objects (missing ones are no error).
    async fn delete(&self, keys: &[String]) -> Result<(), StoreError>;

    /// Uploads begun under the folder `prefix` and never finished.
    async fn pending_uploads(&self, _prefix: &str) -> Result<Vec<PendingUpload>, StoreError> {
        Ok(Vec::new())
    }

    async fn abort_upload(&self, _upload: &PendingUpload) -> Result<(), StoreError> {
        Ok(())
    }

    /// Fails early, with the reason, when the folder `prefix` cannot be reached.
    async fn check_access(&self, prefix: &str) -> Result<(), StoreError>;

    /// A human-readable location (a path or a URI) for messages.
    fn location(&self, key: &str) -> String;
}

/// Where a remote store writes files before uploading them: a temporary folder made on first
/// use (a store that only reads needs none), removed with the store.
#[derive(Debug, Default)]
pub(crate) struct Staging(std::sync::Mutex<Option<tempfile::TempDir>>);

impl Staging {
    /// A fresh local path for the bytes of `key`; `location` names the key in errors. Names
    /// are flat in the staging folder: keys never become local paths.
    pub(crate) fn path_for(&self, key: &str, location: String) -> Result<PathBuf, StoreError> {
        let mut staging = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if staging.is_none() {
            let dir = tempfile::Builder::new()
                .prefix("lpdrop-staging-")
                .tempdir()
                .map_err(|e| StoreError::new("creating a local staging folder for", location, e))?;
            *staging = Some(dir);
        }
        let name = format!(
            "{}-{}",
            uuid::Uuid::new_v4().simple(),
            key.rsplit('/').next().unwrap_or("object")
        );
        Ok(staging.as_ref().expect("made above").path().join(name))
    }
}

/// `prefix` as a folder: empty, or ending in `/`.
pub(crate) fn as_folder(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    }
}

/// The SHA-256 (hex) of a local file, read in 1 MiB pieces.
pub(crate) fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}
