//! Reading and removing what was published, on a local folder or S3 (for `verify` and `gc`).

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::s3::{ObjectInfo, PendingUpload, S3Store};
use crate::sink::SinkError;
use crate::writer::hex;

/// Where published objects live. Keys are `/`-separated and relative to the store's root.
#[derive(Debug, Clone)]
pub enum Store {
    Local(PathBuf),
    S3(S3Store),
}

/// A local copy of an object (the original file for a local store), its size and digest.
#[derive(Debug)]
pub struct Fetched {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    _temp: Option<tempfile::TempPath>,
}

fn io_err(action: &'static str, location: String) -> impl FnOnce(io::Error) -> SinkError {
    move |source| SinkError {
        action,
        location,
        cause: source,
    }
}

fn sha256_file(path: &Path) -> io::Result<String> {
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

impl Store {
    pub fn location(&self, key: &str) -> String {
        match self {
            Store::Local(root) => root.join(key).display().to_string(),
            Store::S3(s) => s.uri(key),
        }
    }

    fn local_path(root: &Path, key: &str) -> Result<PathBuf, SinkError> {
        crate::sink::LocalSink::new(root).path(key)
    }

    /// Every object under `prefix` (all of the store when empty), keys relative to the root.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, SinkError> {
        match self {
            Store::S3(s) => {
                let p = if prefix.is_empty() || prefix.ends_with('/') {
                    prefix.to_string()
                } else {
                    format!("{prefix}/")
                };
                s.list(&p).await
            }
            Store::Local(root) => {
                let start = if prefix.is_empty() {
                    root.clone()
                } else {
                    Self::local_path(root, prefix)?
                };
                let mut out = Vec::new();
                if !start.exists() {
                    return Ok(out);
                }
                let mut stack = vec![start];
                while let Some(dir) = stack.pop() {
                    let entries =
                        fs::read_dir(&dir).map_err(io_err("listing", dir.display().to_string()))?;
                    for entry in entries {
                        let entry = entry.map_err(io_err("listing", dir.display().to_string()))?;
                        let path = entry.path();
                        let meta = entry
                            .metadata()
                            .map_err(io_err("reading", path.display().to_string()))?;
                        if meta.is_dir() {
                            stack.push(path);
                        } else if let Ok(rel) = path.strip_prefix(root) {
                            let key = rel
                                .components()
                                .map(|c| c.as_os_str().to_string_lossy())
                                .collect::<Vec<_>>()
                                .join("/");
                            out.push(ObjectInfo {
                                key,
                                size: meta.len(),
                            });
                        }
                    }
                }
                out.sort_by(|a, b| a.key.cmp(&b.key));
                Ok(out)
            }
        }
    }

    /// A small object's bytes, or `None` when it does not exist.
    pub async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        match self {
            Store::S3(s) => {
                if !s.exists(key).await? {
                    return Ok(None);
                }
                s.get_bytes(key).await.map(Some)
            }
            Store::Local(root) => {
                let path = Self::local_path(root, key)?;
                match fs::read(&path) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io_err("reading", path.display().to_string())(e)),
                }
            }
        }
    }

    /// A local, readable copy of an object with its size and SHA-256; `None` when missing.
    pub async fn fetch(&self, key: &str) -> Result<Option<Fetched>, SinkError> {
        match self {
            Store::Local(root) => {
                let path = Self::local_path(root, key)?;
                if !path.is_file() {
                    return Ok(None);
                }
                let size = fs::metadata(&path)
                    .map_err(io_err("reading", path.display().to_string()))?
                    .len();
                let sha256 =
                    sha256_file(&path).map_err(io_err("reading", path.display().to_string()))?;
                Ok(Some(Fetched {
                    path,
                    size,
                    sha256,
                    _temp: None,
                }))
            }
            Store::S3(s) => {
                if !s.exists(key).await? {
                    return Ok(None);
                }
                let temp = tempfile::NamedTempFile::new()
                    .map_err(io_err("creating a local copy of", s.uri(key)))?
                    .into_temp_path();
                let size = s.download(key, &temp).await?;
                let sha256 = sha256_file(&temp).map_err(io_err("reading", s.uri(key)))?;
                Ok(Some(Fetched {
                    path: temp.to_path_buf(),
                    size,
                    sha256,
                    _temp: Some(temp),
                }))
            }
        }
    }

    /// Removes objects; for a local store, also the folders they leave empty.
    pub async fn delete(&self, keys: &[String]) -> Result<(), SinkError> {
        match self {
            Store::S3(s) => s.delete(keys).await,
            Store::Local(root) => {
                for key in keys {
                    let path = Self::local_path(root, key)?;
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(io_err("deleting", path.display().to_string())(e)),
                    }
                    let mut dir = path.parent();
                    while let Some(d) = dir {
                        if d == root.as_path() || fs::remove_dir(d).is_err() {
                            break;
                        }
                        dir = d.parent();
                    }
                }
                Ok(())
            }
        }
    }

    pub async fn pending_uploads(&self, prefix: &str) -> Result<Vec<PendingUpload>, SinkError> {
        match self {
            Store::S3(s) => s.pending_uploads(prefix).await,
            Store::Local(_) => Ok(Vec::new()),
        }
    }

    pub async fn abort_upload(&self, upload: &PendingUpload) -> Result<(), SinkError> {
        match self {
            Store::S3(s) => s.abort_upload(upload).await,
            Store::Local(_) => Ok(()),
        }
    }
}
