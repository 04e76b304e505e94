//! Where drops are published. The local-folder sink is here; an S3 sink implements the same
//! trait.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

/// A sink failure, naming the object and what happened.
///
/// The cause is part of the message and deliberately not an error `source`: reporters that
/// print the whole chain (`{:#}`) would otherwise say it twice.
#[derive(Debug, thiserror::Error)]
#[error("{action} {location}: {cause}")]
pub struct SinkError {
    pub action: &'static str,
    pub location: String,
    pub cause: io::Error,
}

/// An object store for drops.
///
/// Files are written to a local staging path first (parquet needs a seekable-free but
/// streaming writer, and checksums are computed while writing), then published.
pub trait Sink: Send + Sync {
    /// A local path to write the bytes of `key` to before [`Sink::publish_file`].
    fn staging_path(&self, key: &str) -> Result<PathBuf, SinkError>;
    /// Makes a staged file durable under `key`. `sha256_hex` is the digest computed while the
    /// file was written, so that a remote store can verify the bytes it received.
    fn publish_file(&self, key: &str, staged: &Path, sha256_hex: &str) -> Result<(), SinkError>;
    /// Writes a small object, replacing any previous one atomically.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), SinkError>;
    /// Creates a small object only if `key` does not exist yet; `Ok(false)` when it did.
    fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<bool, SinkError>;
    fn exists(&self, key: &str) -> Result<bool, SinkError>;
    /// A human-readable location (a path or a URI) for messages.
    fn location(&self, key: &str) -> String;
}

/// Drops in a folder of the local file system.
#[derive(Debug, Clone)]
pub struct LocalSink {
    root: PathBuf,
}

impl LocalSink {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalSink { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of a key; keys are built by the layout module, but refuse anything that could
    /// leave the root all the same.
    pub fn path(&self, key: &str) -> Result<PathBuf, SinkError> {
        let rel = Path::new(key);
        let safe = !key.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe {
            return Err(SinkError {
                action: "refusing key",
                location: key.to_string(),
                cause: io::Error::new(io::ErrorKind::InvalidInput, "key escapes the drop root"),
            });
        }
        Ok(self.root.join(rel))
    }

    fn err(&self, action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SinkError {
        let location = path.display().to_string();
        move |source| SinkError {
            action,
            location,
            cause: source,
        }
    }

    /// Writes `bytes` to a temporary file beside `path` and makes it durable.
    fn write_temp(&self, path: &Path, bytes: &[u8]) -> Result<PathBuf, SinkError> {
        let dir = path.parent().expect("keys have a parent");
        fs::create_dir_all(dir).map_err(self.err("creating folder", dir))?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("object"),
            uuid::Uuid::new_v4().simple()
        ));
        let mut f = File::create(&tmp).map_err(self.err("creating", &tmp))?;
        let written = f
            .write_all(bytes)
            .map_err(self.err("writing", &tmp))
            .and_then(|()| f.sync_all().map_err(self.err("syncing", &tmp)));
        if written.is_err() {
            // A full disk must not leave a half-written `.upload.complete.*.tmp` behind.
            let _ = fs::remove_file(&tmp);
        }
        written.map(|()| tmp)
    }
}

/// Makes a directory entry (a new or renamed file) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Sink for LocalSink {
    fn staging_path(&self, key: &str) -> Result<PathBuf, SinkError> {
        // Local drops are written in place: nothing is trusted before the marker exists.
        let path = self.path(key)?;
        let dir = path.parent().expect("keys have a parent");
        fs::create_dir_all(dir).map_err(self.err("creating folder", dir))?;
        Ok(path)
    }

    fn publish_file(&self, key: &str, staged: &Path, _sha256_hex: &str) -> Result<(), SinkError> {
        let path = self.path(key)?;
        if staged != path {
            fs::rename(staged, &path).map_err(self.err("moving into place", &path))?;
        }
        File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(self.err("syncing", &path))?;
        sync_dir(path.parent().expect("keys have a parent"))
            .map_err(self.err("syncing folder of", &path))
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), SinkError> {
        let path = self.path(key)?;
        let tmp = self.write_temp(&path, bytes)?;
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(self.err("moving into place", &path)(e));
        }
        sync_dir(path.parent().expect("keys have a parent"))
            .map_err(self.err("syncing folder of", &path))
    }

    fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<bool, SinkError> {
        let path = self.path(key)?;
        let tmp = self.write_temp(&path, bytes)?;
        // A hard link is created only if the name is free, and appears with its full content:
        // the local equivalent of S3's `If-None-Match: *`.
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                sync_dir(path.parent().expect("keys have a parent"))
                    .map_err(self.err("syncing folder of", &path))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => {
                // Some file systems have no hard links: fall back to an exclusive create.
                if e.kind() == io::ErrorKind::Unsupported {
                    let mut f = match OpenOptions::new().write(true).create_new(true).open(&path) {
                        Ok(f) => f,
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
                        Err(e) => return Err(self.err("creating", &path)(e)),
                    };
                    let written = f
                        .write_all(bytes)
                        .map_err(self.err("writing", &path))
                        .and_then(|()| f.sync_all().map_err(self.err("syncing", &path)));
                    if written.is_err() {
                        // Never leave a partial object under the final name: for the marker
                        // that would commit a drop whose marker cannot be read.
                        let _ = fs::remove_file(&path);
                    }
                    return written.map(|()| true);
                }
                Err(self.err("creating", &path)(e))
            }
        }
    }

    fn exists(&self, key: &str) -> Result<bool, SinkError> {
        let path = self.path(key)?;
        path.try_exists().map_err(self.err("checking", &path))
    }

    fn location(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_is_created_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalSink::new(dir.path());
        assert!(sink.put_if_absent("a/b/upload.complete", b"first").unwrap());
        assert!(
            !sink
                .put_if_absent("a/b/upload.complete", b"second")
                .unwrap()
        );
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
        let sink = LocalSink::new("/tmp/x");
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../b", ""] {
            assert!(sink.path(bad).is_err(), "{bad}");
        }
    }
}
