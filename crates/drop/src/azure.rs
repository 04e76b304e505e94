//! Azure Blob Storage (`az://CONTAINER/PREFIX`, also `azure://`), through the kept
//! `object_store` crate: Put Blob for small files, Put Block and Put Block List for large ones,
//! `If-None-Match: *` for the marker, and every credential Azure users expect.
//!
//! Credentials, in this order:
//! - `AZURE_STORAGE_CONNECTION_STRING` (`AccountName`, `AccountKey` or `SharedAccessSignature`,
//!   `BlobEndpoint` or `EndpointSuffix`, or `UseDevelopmentStorage=true`);
//! - `AZURE_STORAGE_ACCOUNT_NAME` with `AZURE_STORAGE_ACCOUNT_KEY` or `AZURE_STORAGE_SAS_TOKEN`;
//! - Microsoft Entra ID: workload identity (`AZURE_FEDERATED_TOKEN_FILE`, `AZURE_CLIENT_ID`,
//!   `AZURE_TENANT_ID`), a service principal (`AZURE_CLIENT_SECRET`), else managed identity.
//!
//! `AZURE_STORAGE_ENDPOINT` (or a connection string's `BlobEndpoint`) points at another blob
//! endpoint, such as the Azurite emulator; plain http only on loopback.
//!
//! Retries: `object_store` retries each request itself (a 5xx, a reset, a timeout), with the
//! budget of `--store-attempts`/`--store-retry-delay`; it has to, because a block upload's
//! parts are requests of their own that only it sees.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use object_store::azure::{MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::path::Path as BlobPath;
use object_store::{
    BackoffConfig, ObjectStore as _, PutMode, PutOptions, PutPayload, RetryConfig, WriteMultipart,
};
use sha2::{Digest, Sha256};

use crate::layout::Prefix;
use crate::retry::RetryBudget;
use crate::store::{Fetched, ObjectInfo, ObjectStore, Staging, StoreError, as_folder};
use crate::writer::hex;

/// Files up to this size go up in one Put Blob; larger ones as blocks.
pub const SINGLE_PUT_MAX: u64 = 16 << 20;
/// The size of one block of a block upload.
const BLOCK_BYTES: usize = 8 << 20;
/// Blocks in flight at once: memory stays at about this many blocks.
const BLOCKS_IN_FLIGHT: usize = 4;

/// `az://container/prefix`: a container and the folder drops go under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureLocation {
    pub container: String,
    pub prefix: Prefix,
}

impl AzureLocation {
    /// Parses `az://CONTAINER[/PREFIX]` or `azure://...`. Container names follow Azure's rule:
    /// 3 to 63 lower-case letters, digits and single hyphens, starting with a letter or digit.
    pub fn parse(uri: &str) -> Result<Self, String> {
        let rest = uri
            .strip_prefix("az://")
            .or_else(|| uri.strip_prefix("azure://"))
            .ok_or_else(|| format!("{uri:?} is not an az://container/prefix URI"))?;
        let (container, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = (3..=63).contains(&container.len())
            && container
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !container.starts_with('-')
            && !container.ends_with('-')
            && !container.contains("--");
        if !valid {
            return Err(format!(
                "{container:?} is not an Azure container name: 3 to 63 lower-case letters, \
                 digits and single hyphens"
            ));
        }
        let prefix = Prefix::parse(prefix.trim_end_matches('/')).map_err(|e| e.to_string())?;
        Ok(AzureLocation {
            container: container.to_string(),
            prefix,
        })
    }
}

/// Which credential the environment gives, for `config check` (never the secret itself).
pub fn credential_source() -> &'static str {
    let set = |v: &str| std::env::var(v).is_ok_and(|v| !v.is_empty());
    if set("AZURE_STORAGE_CONNECTION_STRING") {
        "connection string (AZURE_STORAGE_CONNECTION_STRING)"
    } else if set("AZURE_STORAGE_ACCOUNT_KEY") || set("AZURE_STORAGE_ACCESS_KEY") {
        "account key (AZURE_STORAGE_ACCOUNT_KEY)"
    } else if set("AZURE_STORAGE_SAS_TOKEN") {
        "SAS token (AZURE_STORAGE_SAS_TOKEN)"
    } else if set("AZURE_FEDERATED_TOKEN_FILE") {
        "Microsoft Entra ID workload identity (AZURE_FEDERATED_TOKEN_FILE)"
    } else if set("AZURE_CLIENT_SECRET") {
        "Microsoft Entra ID service principal (AZURE_CLIENT_SECRET)"
    } else {
        "Microsoft Entra ID managed identity"
    }
}

/// The pairs of a connection string (`Key=Value;...`), keys as written.
fn connection_string_pairs(s: &str) -> Vec<(String, String)> {
    s.split(';')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// A builder for `container` from the environment (see the module's list); a connection
/// string, when given, takes precedence over `AZURE_STORAGE_CONNECTION_STRING`.
fn builder(container: &str, connection: Option<String>) -> Result<MicrosoftAzureBuilder, String> {
    let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(container);
    let mut endpoint = std::env::var("AZURE_STORAGE_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty());
    let connection = connection.or_else(|| std::env::var("AZURE_STORAGE_CONNECTION_STRING").ok());
    if let Some(cs) = connection
        && !cs.is_empty()
    {
        let pairs = connection_string_pairs(&cs);
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        if get("UseDevelopmentStorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(builder.with_use_emulator(true));
        }
        let account =
            get("AccountName").ok_or("AZURE_STORAGE_CONNECTION_STRING has no AccountName")?;
        builder = builder.with_account(&account);
        if let Some(key) = get("AccountKey") {
            builder = builder.with_access_key(key);
        } else if let Some(sas) = get("SharedAccessSignature") {
            builder = builder.with_config(
                object_store::azure::AzureConfigKey::SasKey,
                sas.trim_start_matches('?'),
            );
        }
        endpoint = get("BlobEndpoint").or(endpoint).or_else(|| {
            let protocol = get("DefaultEndpointsProtocol").unwrap_or_else(|| "https".into());
            get("EndpointSuffix").map(|suffix| format!("{protocol}://{account}.blob.{suffix}"))
        });
    }
    if let Some(endpoint) = endpoint {
        let url =
            lpdrop_settings::require_tls_unless_loopback(&endpoint, "the Azure blob endpoint")?;
        builder = builder
            .with_endpoint(endpoint.trim_end_matches('/').to_string())
            .with_allow_http(url.scheme() == "http");
    }
    Ok(builder)
}

/// Blobs of one container.
pub struct AzureStore {
    store: MicrosoftAzure,
    container: String,
    /// Files up to this size go up in one Put Blob.
    single_put_max: u64,
    /// Where files are written before upload; made on first use.
    staging: Staging,
}

impl std::fmt::Debug for AzureStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureStore")
            .field("container", &self.container)
            .finish_non_exhaustive()
    }
}

impl AzureStore {
    /// The store of `container`, with credentials from the environment; each request is
    /// retried within `retry`; files larger than `single_put_max` go up as blocks.
    pub fn from_env(
        container: &str,
        retry: RetryBudget,
        single_put_max: u64,
    ) -> Result<AzureStore, String> {
        Self::with_connection(container, None, retry, single_put_max)
    }

    /// [`AzureStore::from_env`] with this connection string instead of the environment's.
    pub fn with_connection(
        container: &str,
        connection_string: Option<String>,
        retry: RetryBudget,
        single_put_max: u64,
    ) -> Result<AzureStore, String> {
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: retry.first_delay,
                max_backoff: retry.max_delay,
                base: 2.0,
            },
            max_retries: retry.attempts.saturating_sub(1) as usize,
            retry_timeout: std::time::Duration::from_secs(180),
        };
        let store = builder(container, connection_string)?
            .with_retry(retry)
            .build()
            .map_err(|e| format!("Azure Blob Storage: {e}"))?;
        Ok(AzureStore {
            store,
            container: container.to_string(),
            single_put_max,
            staging: Staging::default(),
        })
    }

    fn uri(&self, key: &str) -> String {
        format!("az://{}/{key}", self.container)
    }

    fn err(&self, action: &'static str, key: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::new(action, self.uri(key), io::Error::other(e.to_string()))
    }

    fn path(&self, key: &str) -> Result<BlobPath, StoreError> {
        BlobPath::parse(key).map_err(|e| self.err("naming", key, e))
    }

    /// True when the blob at `key` has exactly this size and SHA-256.
    async fn holds(&self, key: &str, size: u64, sha256_hex: &str) -> bool {
        match self.fetch(key).await {
            Ok(Some(got)) => got.size == size && got.sha256 == sha256_hex,
            _ => false,
        }
    }

    /// A large file as blocks: read part by part (bounded memory), a few blocks in flight,
    /// then the block list.
    async fn put_blocks(&self, key: &str, staged: &Path) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| self.err("starting the block upload of", key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, BLOCK_BYTES);
        let mut file = std::fs::File::open(staged)
            .map_err(|e| StoreError::new("reading", staged.display().to_string(), e))?;
        let mut buf = vec![0u8; BLOCK_BYTES];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| StoreError::new("reading", staged.display().to_string(), e))?;
            if n == 0 {
                break;
            }
            writer
                .wait_for_capacity(BLOCKS_IN_FLIGHT)
                .await
                .map_err(|e| self.err("uploading a block of", key, e))?;
            writer.write(&buf[..n]);
        }
        writer
            .finish()
            .await
            .map_err(|e| self.err("committing the blocks of", key, e))?;
        Ok(())
    }

    /// Uploads a local file: one Put Blob when small, staged blocks otherwise.
    async fn upload_file(
        &self,
        key: &str,
        file: &Path,
        sha256_hex: &str,
    ) -> Result<(), StoreError> {
        let size = std::fs::metadata(file)
            .map_err(|e| StoreError::new("reading", file.display().to_string(), e))?
            .len();
        let mut result = if size <= self.single_put_max {
            match std::fs::read(file) {
                Ok(bytes) => self.put(key, &bytes).await,
                Err(e) => Err(StoreError::new("reading", file.display().to_string(), e)),
            }
        } else {
            self.put_blocks(key, file).await
        };
        // A write whose answer was lost may have landed: a retried Put Block List then finds
        // its blocks committed already and is refused. The blob's own bytes settle it.
        if result.is_err() && self.holds(key, size, sha256_hex).await {
            tracing::debug!(key, "the write landed although its answer was lost");
            result = Ok(());
        }
        result
    }
}

#[async_trait::async_trait]
impl ObjectStore for AzureStore {
    fn staging_path(&self, key: &str) -> Result<PathBuf, StoreError> {
        self.staging.path_for(key, self.uri(key))
    }

    async fn publish_file(
        &self,
        key: &str,
        staged: &Path,
        sha256_hex: &str,
    ) -> Result<(), StoreError> {
        let result = self.upload_file(key, staged, sha256_hex).await;
        // The staged copy is no longer needed either way: keep the disk footprint to one file.
        let _ = std::fs::remove_file(staged);
        result
    }

    async fn publish_copy(
        &self,
        key: &str,
        source: &Path,
        sha256_hex: &str,
    ) -> Result<(), StoreError> {
        self.upload_file(key, source, sha256_hex).await
    }

    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(key)?;
        self.store
            .put(&path, PutPayload::from(bytes.to_vec()))
            .await
            .map_err(|e| self.err("writing", key, e))?;
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        let path = self.path(key)?;
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&path, PutPayload::from(bytes.to_vec()), options)
            .await
        {
            Ok(_) => Ok(true),
            // Azure answers 412 and Azurite 409 when the blob exists. Ours, if its bytes are
            // ours: an earlier attempt landed and its answer was lost.
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => {
                Ok(self.get_bytes(key).await?.as_deref() == Some(bytes))
            }
            Err(e) => Err(self.err("creating", key, e)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self.store.head(&self.path(key)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err("checking", key, e)),
        }
    }

    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let got = match self.store.get(&self.path(key)?).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.err("reading", key, e)),
        };
        let bytes = got.bytes().await.map_err(|e| self.err("reading", key, e))?;
        Ok(Some(bytes.to_vec()))
    }

    async fn fetch(&self, key: &str) -> Result<Option<Fetched>, StoreError> {
        let got = match self.store.get(&self.path(key)?).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.err("reading", key, e)),
        };
        let temp = tempfile::NamedTempFile::new()
            .map_err(|e| StoreError::new("creating a local copy of", self.uri(key), e))?;
        let (file, temp) = temp.into_parts();
        let mut out = io::BufWriter::new(file);
        let (mut size, mut hash) = (0u64, Sha256::new());
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.err("reading", key, e))?;
            hash.update(&chunk);
            size += chunk.len() as u64;
            out.write_all(&chunk)
                .map_err(|e| StoreError::new("writing a local copy of", self.uri(key), e))?;
        }
        out.flush()
            .map_err(|e| StoreError::new("writing a local copy of", self.uri(key), e))?;
        Ok(Some(Fetched {
            path: temp.to_path_buf(),
            size,
            sha256: hex(&hash.finalize()),
            _temp: Some(temp),
        }))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let folder = as_folder(prefix);
        let path = if folder.is_empty() {
            None
        } else {
            Some(self.path(folder.trim_end_matches('/'))?)
        };
        let mut listed = self.store.list(path.as_ref());
        let mut out = Vec::new();
        while let Some(meta) = listed.next().await {
            let meta = meta.map_err(|e| self.err("listing", &folder, e))?;
            out.push(ObjectInfo {
                key: meta.location.to_string(),
                size: meta.size,
            });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            match self.store.delete(&self.path(key)?).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err("deleting", key, e)),
            }
        }
        Ok(())
    }

    async fn check_access(&self, prefix: &str) -> Result<(), StoreError> {
        let folder = as_folder(prefix);
        let path = if folder.is_empty() {
            None
        } else {
            Some(self.path(folder.trim_end_matches('/'))?)
        };
        self.store
            .list_with_delimiter(path.as_ref())
            .await
            .map_err(|e| self.err("listing", &folder, e))?;
        Ok(())
    }

    fn location(&self, key: &str) -> String {
        self.uri(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        let l = AzureLocation::parse("az://drops/thrive-air").unwrap();
        assert_eq!(
            (l.container.as_str(), l.prefix.as_str()),
            ("drops", "thrive-air")
        );
        let l = AzureLocation::parse("azure://drops").unwrap();
        assert_eq!(l.prefix.as_str(), "");
        for bad in [
            "az://Drops/x",
            "az://ab",
            "az://a--b",
            "az://-ab",
            "s3://b/x",
            "az://ok/../x",
        ] {
            assert!(AzureLocation::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn connection_strings_split_into_pairs() {
        let pairs = connection_string_pairs(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a==;\
             BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
        );
        assert_eq!(pairs[2], ("AccountKey".to_string(), "a==".to_string()));
        assert_eq!(pairs.len(), 4);
    }
}
