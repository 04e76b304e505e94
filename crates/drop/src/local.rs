//! Drops in a folder of the local file system.
//!
//! Nothing here is transient: a failed system call is reported as it is, never retried.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use crate::store::{Fetched, ObjectInfo, ObjectStore, StoreError, sha256_file};

/// A folder as an object store: keys are relative paths under `root`.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of a key; keys are built by the layout module, but refuse anything that could
    /// leave the root all the same.
    pub fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let rel = Path::new(key);
        let safe = !key.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe {
            return Err(StoreError::new(
                "refusing key",
                key,
                io::Error::new(io::ErrorKind::InvalidInput, "key escapes the drop root"),
            ));
        }
        Ok(self.root.join(rel))
    }

    fn err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
        let location = path.display().to_string();
        move |cause| StoreError::new(action, location, cause)
    }

    /// Writes `bytes` to a temporary file beside `path` and makes it durable.
    fn write_temp(&self, path: &Path, bytes: &[u8]) -> Result<PathBuf, StoreError> {
        let dir = parent_of(path);
        fs::create_dir_all(dir).map_err(Self::err("creating folder", dir))?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("object"),
            uuid::Uuid::new_v4().simple()
        ));
        let mut f = File::create(&tmp).map_err(Self::err("creating", &tmp))?;
        let written = f
            .write_all(bytes)
            .map_err(Self::err("writing", &tmp))
            .and_then(|()| f.sync_all().map_err(Self::err("syncing", &tmp)));
        if written.is_err() {
            // A full disk must not leave a half-written `.upload.complete.*.tmp` behind.
            let _ = fs::remove_file(&tmp);
        }
        written.map(|()| tmp)
    }

    /// Creates `path` with `bytes` only if it does not exist, on file systems without hard
    /// links; `Ok(false)` when it existed.
    fn create_new(path: &Path, bytes: &[u8]) -> Result<bool, StoreError> {
        let mut f = match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(Self::err("creating", path)(e)),
        };
        let written = f
            .write_all(bytes)
            .map_err(Self::err("writing", path))
            .and_then(|()| f.sync_all().map_err(Self::err("syncing", path)));
        if written.is_err() {
            // Never leave a partial object under the final name: for the marker that would
            // commit a drop whose marker cannot be read.
            let _ = fs::remove_file(path);
        }
        written.map(|()| true)
    }

    /// Every file under `start`, keys relative to the root.
    fn walk(&self, start: PathBuf) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut out = Vec::new();
        if !start.exists() {
            return Ok(out);
        }
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let entries = fs::read_dir(&dir).map_err(Self::err("listing", &dir))?;
            for entry in entries {
                let entry = entry.map_err(Self::err("listing", &dir))?;
                let path = entry.path();
                let meta = entry.metadata().map_err(Self::err("reading", &path))?;
                if meta.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(&self.root) {
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

    /// Removes the folders a deleted file leaves empty, up to the root.
    fn remove_empty_folders(&self, file: &Path) {
        let mut dir = file.parent();
        while let Some(d) = dir {
            if d == self.root.as_path() || fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }
}

fn parent_of(path: &Path) -> &Path {
    path.parent().expect("keys have a parent")
}

/// Makes a directory entry (a new or renamed file) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[async_trait::async_trait]
impl ObjectStore for LocalStore {
    fn staging_path(&self, key: &str) -> Result<PathBuf, StoreError> {
        // Local drops are written in place: nothing is trusted before the marker exists.
        let path = self.path(key)?;
        let dir = parent_of(&path);
        fs::create_dir_all(dir).map_err(Self::err("creating folder", dir))?;
        Ok(path)
    }

    async fn publish_file(
        &self,
        key: &str,
        staged: &Path,
        _sha256_hex: &str,
    ) -> Result<(), StoreError> {
        let path = self.path(key)?;
        if staged != path {
            fs::rename(staged, &path).map_err(Self::err("moving into place", &path))?;
        }
        File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(Self::err("syncing", &path))?;
        sync_dir(parent_of(&path)).map_err(Self::err("syncing folder of", &path))
    }

    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let tmp = self.write_temp(&path, bytes)?;
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(Self::err("moving into place", &path)(e));
        }
        sync_dir(parent_of(&path)).map_err(Self::err("syncing folder of", &path))
    }

    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        let path = self.path(key)?;
        let tmp = self.write_temp(&path, bytes)?;
        // A hard link is created only if the name is free, and appears with its full content:
        // the local equivalent of S3's `If-None-Match: *`.
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                sync_dir(parent_of(&path)).map_err(Self::err("syncing folder of", &path))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            // Some file systems have no hard links: fall back to an exclusive create.
            Err(e) if e.kind() == io::ErrorKind::Unsupported => Self::create_new(&path, bytes),
            Err(e) => Err(Self::err("creating", &path)(e)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let path = self.path(key)?;
        path.try_exists().map_err(Self::err("checking", &path))
    }

    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(key)?;
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::err("reading", &path)(e)),
        }
    }

    async fn fetch(&self, key: &str) -> Result<Option<Fetched>, StoreError> {
        let path = self.path(key)?;
        if !path.is_file() {
            return Ok(None);
        }
        let size = fs::metadata(&path)
            .map_err(Self::err("reading", &path))?
            .len();
        let sha256 = sha256_file(&path).map_err(Self::err("reading", &path))?;
        Ok(Some(Fetched {
            path,
            size,
            sha256,
            _temp: None,
        }))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let start = if prefix.is_empty() {
            self.root.clone()
        } else {
            self.path(prefix.trim_end_matches('/'))?
        };
        self.walk(start)
    }

    /// Also removes the folders the files leave empty.
    async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            let path = self.path(key)?;
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Self::err("deleting", &path)(e)),
            }
            self.remove_empty_folders(&path);
        }
        Ok(())
    }

    /// The root must be a folder; what is under it is created as drops are written.
    async fn check_access(&self, _prefix: &str) -> Result<(), StoreError> {
        if self.root.is_dir() {
            return Ok(());
        }
        Err(StoreError::new(
            "opening",
            self.root.display().to_string(),
            io::Error::new(io::ErrorKind::NotADirectory, "not a folder"),
        ))
    }

    fn location(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn marker_is_created_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        assert!(block_on(store.put_if_absent("a/b/upload.complete", b"first")).unwrap());
        assert!(!block_on(store.put_if_absent("a/b/upload.complete", b"second")).unwrap());
        assert_eq!(
            fs::read(dir.path().join("a/b/upload.complete")).unwrap(),
            b"first"
        );
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("a/b")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        let store = LocalStore::new("/tmp/x");
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../b", ""] {
            assert!(store.path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listing_and_deleting_clean_up_folders() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        block_on(store.put("p/a/one", b"1")).unwrap();
        block_on(store.put("p/b/two", b"22")).unwrap();
        let listed = block_on(store.list("p")).unwrap();
        assert_eq!(
            listed,
            vec![
                ObjectInfo {
                    key: "p/a/one".into(),
                    size: 1
                },
                ObjectInfo {
                    key: "p/b/two".into(),
                    size: 2
                }
            ]
        );
        block_on(store.delete(&["p/a/one".into(), "p/b/two".into()])).unwrap();
        assert!(!dir.path().join("p").exists(), "empty folders are removed");
        assert_eq!(block_on(store.get_bytes("p/a/one")).unwrap(), None);
    }
}
