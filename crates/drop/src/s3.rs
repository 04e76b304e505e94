//! Amazon S3 (and S3-compatible stores): the drop sink and the object operations that
//! `verify` and `gc` need.
//!
//! Files are staged in a local temporary folder while parquet is written, then uploaded: small
//! ones with one `PutObject`, large ones as multipart uploads read straight from the staged file
//! in parts, so memory stays bounded whatever the file size. Every upload carries a checksum
//! that S3 verifies; the marker is written with `If-None-Match: *`.

use std::io;
use std::path::{Path, PathBuf};

use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectCannedAcl,
    ServerSideEncryption, StorageClass,
};
use base64::Engine as _;
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::runtime::Handle;

use crate::layout::Prefix;
use crate::sink::{Sink, SinkError};

/// S3 allows at most 10,000 parts; stay well under it so a part size never has to change late.
const MAX_PARTS: u64 = 9_000;
/// S3's smallest non-final part.
const MIN_PART_BYTES: u64 = 5 << 20;

/// `s3://bucket/prefix`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub prefix: Prefix,
}

impl S3Location {
    /// Parses `s3://bucket[/prefix]`. The bucket follows S3's naming rules; the prefix follows
    /// the drop contract's (lower-case letters, digits, `-`, `_`, `/`).
    pub fn parse(uri: &str) -> Result<Self, String> {
        let rest = uri
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{uri:?} is not an s3:// URI"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.'])
            && !bucket.contains("..");
        if !bucket_ok {
            return Err(format!("invalid bucket name {bucket:?} in {uri:?}"));
        }
        let prefix = Prefix::parse(prefix).map_err(|e| e.to_string())?;
        Ok(S3Location {
            bucket: bucket.to_string(),
            prefix,
        })
    }
}

/// Server-side encryption requested on writes (never sent on reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    S3,
    Kms { key_id: Option<String> },
}

/// How objects are written.
#[derive(Debug, Clone)]
pub struct S3WriteOptions {
    pub encryption: Option<Encryption>,
    pub storage_class: Option<String>,
    /// Grant the bucket owner full control (for cross-account writes).
    pub bucket_owner_full_control: bool,
    /// Files at most this large go up in one `PutObject`.
    pub multipart_threshold: u64,
    /// Smallest part size; raised for big files so that parts stay under [`MAX_PARTS`].
    pub part_size: u64,
    /// Parts in flight at once, per file.
    pub upload_concurrency: usize,
}

impl Default for S3WriteOptions {
    fn default() -> Self {
        S3WriteOptions {
            encryption: None,
            storage_class: None,
            bucket_owner_full_control: false,
            multipart_threshold: 16 << 20,
            part_size: 16 << 20,
            upload_concurrency: 4,
        }
    }
}

/// How to reach S3: the standard AWS chain, optionally through an assumed role.
#[derive(Debug, Clone, Default)]
pub struct S3ConnectOptions {
    /// Role to assume (the customer-side role of the Analytics Studio setup pattern).
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    /// Region when the environment names none (default us-east-1).
    pub default_region: Option<String>,
}

/// Builds an S3 client from the standard AWS configuration chain (environment, profile, web
/// identity, container and instance metadata). A custom endpoint (`AWS_ENDPOINT_URL_S3` or
/// `AWS_ENDPOINT_URL`) switches to path-style addressing, and must use https unless loopback.
pub async fn connect(options: &S3ConnectOptions) -> Result<Client, String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
        .ok()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .filter(|e| !e.is_empty());
    if let Some(e) = &endpoint {
        lpdrop_settings::require_tls_unless_loopback(e, "the S3 endpoint")?;
    }
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        let region = options
            .default_region
            .clone()
            .unwrap_or_else(|| "us-east-1".into());
        loader = loader.region(aws_config::Region::new(region));
    }
    let mut shared = loader.load().await;
    if let Some(role) = &options.role_arn {
        let mut builder = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name("lpdrop")
            .configure(&shared);
        if let Some(id) = &options.external_id {
            builder = builder.external_id(id);
        }
        let provider = builder.build().await;
        shared = shared
            .into_builder()
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(provider))
            .build();
    }
    let mut config = aws_sdk_s3::config::Builder::from(&shared);
    if let Some(e) = endpoint {
        config = config.endpoint_url(e).force_path_style(true);
    }
    Ok(Client::from_conf(config.build()))
}

/// An SDK error as one line with its cause chain (never credentials: the SDK keeps them out).
/// One readable line for an SDK error: S3's code and message for a service error (with the
/// HTTP status), else the chain of causes (connection, credentials, timeout). The SDK's own
/// `DisplayErrorContext` also prints raw responses in Debug form, far too long for a person.
fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug + 'static,
{
    if let SdkError::ServiceError(service) = e {
        let err = service.err();
        if let Some(code) = err.code() {
            let message = err.message().unwrap_or("");
            return format!("{code}: {message}")
                .trim_end_matches([':', ' '])
                .to_string();
        }
    }
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        let text = c.to_string();
        // Wrappers often repeat their source's text; keep each piece once.
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    let mut line = parts.join(": ");
    if line.len() > 600 {
        let cut = (0..=600)
            .rev()
            .find(|&i| line.is_char_boundary(i))
            .unwrap_or(0);
        line.truncate(cut);
        line.push_str(" ...");
    }
    line
}

fn status_of<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// Object operations on one bucket (async), used by the sink, `verify` and `gc`.
#[derive(Debug, Clone)]
pub struct S3Store {
    pub client: Client,
    pub bucket: String,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// An unfinished multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    pub key: String,
    pub upload_id: String,
    pub initiated_ms: Option<i64>,
}

impl S3Store {
    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }

    fn err(&self, action: &'static str, key: &str, message: String) -> SinkError {
        SinkError {
            action,
            location: self.uri(key),
            cause: io::Error::other(message),
        }
    }

    pub async fn put_bytes(
        &self,
        key: &str,
        bytes: Vec<u8>,
        options: &S3WriteOptions,
        if_absent: bool,
    ) -> Result<bool, SinkError> {
        let sha = base64::engine::general_purpose::STANDARD
            .encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes.clone()))
            .checksum_sha256(sha);
        req = apply_put_options(req, options);
        if if_absent {
            req = req.if_none_match("*");
        }
        match req.send().await {
            Ok(_) => Ok(true),
            // Create-only writes can fail although they succeeded: when the answer to a write
            // that landed is lost, the SDK's retry meets our own object (412), or every retry
            // fails. An object byte-for-byte equal to ours is our write, not someone else's.
            Err(e)
                if if_absent
                    && (status_of(&e) == Some(412) || e.code() == Some("PreconditionFailed")) =>
            {
                Ok(self.holds_exactly(key, &bytes).await)
            }
            Err(_) if if_absent && self.holds_exactly(key, &bytes).await => Ok(true),
            Err(e) => Err(self.err("uploading", key, describe(&e))),
        }
    }

    /// The SHA-256 (hex) of the object at `key`, streamed; `None` when it cannot be read.
    async fn sha256_hex_of(&self, key: &str) -> Option<String> {
        use sha2::Digest;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        let mut body = out.body;
        let mut hasher = sha2::Sha256::new();
        while let Some(chunk) = body.try_next().await.ok()? {
            hasher.update(&chunk);
        }
        Some(
            hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }

    /// True when `key` exists and holds exactly `bytes` (false when it cannot be read).
    async fn holds_exactly(&self, key: &str, bytes: &[u8]) -> bool {
        matches!(self.get_bytes(key).await, Ok(found) if found == bytes)
    }

    /// Uploads a local file, in one request or as a multipart upload.
    pub async fn put_file(
        &self,
        key: &str,
        path: &Path,
        sha256_hex: &str,
        options: &S3WriteOptions,
    ) -> Result<(), SinkError> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| self.err("reading staged file for", key, e.to_string()))?
            .len();
        if size <= options.multipart_threshold {
            let body = ByteStream::from_path(path)
                .await
                .map_err(|e| self.err("reading staged file for", key, e.to_string()))?;
            let digest = hex_to_base64(sha256_hex)
                .ok_or_else(|| self.err("uploading", key, "bad digest".into()))?;
            let req = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .body(body)
                .content_length(size as i64)
                .checksum_sha256(digest);
            apply_put_options(req, options)
                .send()
                .await
                .map_err(|e| self.err("uploading", key, describe(&e)))?;
            return Ok(());
        }
        self.put_multipart(key, path, size, sha256_hex, options)
            .await
    }

    async fn put_multipart(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        sha256_hex: &str,
        options: &S3WriteOptions,
    ) -> Result<(), SinkError> {
        let part_size = part_size_for(size, options.part_size);
        let mut create = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            // Declared up front: stricter stores refuse part checksums otherwise.
            .checksum_algorithm(ChecksumAlgorithm::Sha256);
        if let Some(enc) = &options.encryption {
            create = match enc {
                Encryption::S3 => create.server_side_encryption(ServerSideEncryption::Aes256),
                Encryption::Kms { key_id } => create
                    .server_side_encryption(ServerSideEncryption::AwsKms)
                    .set_ssekms_key_id(key_id.clone()),
            };
        }
        if let Some(class) = &options.storage_class {
            create = create.storage_class(StorageClass::from(class.as_str()));
        }
        if options.bucket_owner_full_control {
            create = create.acl(ObjectCannedAcl::BucketOwnerFullControl);
        }
        let upload_id = create
            .send()
            .await
            .map_err(|e| self.err("starting multipart upload of", key, describe(&e)))?
            .upload_id
            .ok_or_else(|| self.err("starting multipart upload of", key, "no upload id".into()))?;
        let parts = size.div_ceil(part_size);
        let uploaded = stream::iter(0..parts)
            .map(|i| {
                let upload_id = upload_id.clone();
                async move {
                    let offset = i * part_size;
                    let length = part_size.min(size - offset);
                    let body = ByteStream::read_from()
                        .path(path)
                        .offset(offset)
                        .length(Length::Exact(length))
                        .build()
                        .await
                        .map_err(|e| format!("reading part {}: {e}", i + 1))?;
                    let out = self
                        .client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number((i + 1) as i32)
                        .content_length(length as i64)
                        .checksum_algorithm(ChecksumAlgorithm::Sha256)
                        .body(body)
                        .send()
                        .await
                        .map_err(|e| format!("part {} of {parts}: {}", i + 1, describe(&e)))?;
                    Ok::<_, String>(
                        CompletedPart::builder()
                            .part_number((i + 1) as i32)
                            .set_e_tag(out.e_tag)
                            .set_checksum_sha256(out.checksum_sha256)
                            .build(),
                    )
                }
            })
            .buffered(options.upload_concurrency.max(1))
            .try_collect::<Vec<_>>()
            .await;
        let result = match uploaded {
            Ok(parts) => self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (e.code() == Some("NoSuchUpload"), describe(&e))),
            Err(e) => Err((false, e)),
        };
        // A lost answer to a Complete that S3 carried out: the retry finds no such upload any
        // more. The object then holds exactly our file, which is what counts.
        let result = match result {
            Err((true, _)) if self.sha256_hex_of(key).await.as_deref() == Some(sha256_hex) => {
                Ok(())
            }
            other => other.map_err(|(_, message)| message),
        };
        if let Err(message) = result {
            // Best effort: a failed abort leaves the upload for `lpdrop gc` to remove.
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
            return Err(self.err("uploading", key, message));
        }
        Ok(())
    }

    /// Fails early, with the reason, when the bucket cannot be reached with these credentials.
    ///
    /// A one-key listing under `prefix` rather than `HeadBucket`: it needs only `s3:ListBucket`
    /// for that prefix, so the customer's role can keep a strict `s3:prefix` condition.
    pub async fn check_access(&self, prefix: &str) -> Result<(), SinkError> {
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        self.client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .max_keys(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| SinkError {
                action: "listing",
                location: format!("s3://{}/{prefix}", self.bucket),
                cause: io::Error::other(describe(&e)),
            })
    }

    pub async fn exists(&self, key: &str) -> Result<bool, SinkError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if status_of(&e) == Some(404) => Ok(false),
            Err(e) => Err(self.err("checking", key, describe(&e))),
        }
    }

    pub async fn get_bytes(&self, key: &str) -> Result<Vec<u8>, SinkError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.err("reading", key, describe(&e)))?;
        let data = out
            .body
            .collect()
            .await
            .map_err(|e| self.err("reading", key, e.to_string()))?;
        Ok(data.into_bytes().to_vec())
    }

    /// Streams an object into a local file; returns its size.
    pub async fn download(&self, key: &str, to: &Path) -> Result<u64, SinkError> {
        use tokio::io::AsyncWriteExt;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.err("reading", key, describe(&e)))?;
        let mut body = out.body;
        let mut file = tokio::fs::File::create(to)
            .await
            .map_err(|e| self.err("creating a local copy of", key, e.to_string()))?;
        let mut size = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| self.err("reading", key, e.to_string()))?
        {
            size += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| self.err("writing a local copy of", key, e.to_string()))?;
        }
        file.flush()
            .await
            .map_err(|e| self.err("writing a local copy of", key, e.to_string()))?;
        Ok(size)
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, SinkError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages
            .try_next()
            .await
            .map_err(|e| self.err("listing", prefix, describe(&e)))?
        {
            for o in page.contents() {
                if let Some(key) = o.key() {
                    out.push(ObjectInfo {
                        key: key.to_string(),
                        size: o.size().unwrap_or(0).max(0) as u64,
                    });
                }
            }
        }
        Ok(out)
    }

    pub async fn delete(&self, keys: &[String]) -> Result<(), SinkError> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        // DeleteObjects takes at most 1,000 keys.
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.err("deleting", &chunk[0], e.to_string()))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| self.err("deleting", &chunk[0], e.to_string()))?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.err("deleting", &chunk[0], describe(&e)))?;
            if let Some(failed) = out.errors().first() {
                return Err(self.err(
                    "deleting",
                    failed.key().unwrap_or_default(),
                    failed.message().unwrap_or("refused").to_string(),
                ));
            }
        }
        Ok(())
    }

    pub async fn pending_uploads(&self, prefix: &str) -> Result<Vec<PendingUpload>, SinkError> {
        let mut out = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut id_marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|e| self.err("listing multipart uploads under", prefix, describe(&e)))?;
            for u in page.uploads() {
                if let (Some(key), Some(id)) = (u.key(), u.upload_id()) {
                    out.push(PendingUpload {
                        key: key.to_string(),
                        upload_id: id.to_string(),
                        initiated_ms: u.initiated().and_then(|t| t.to_millis().ok()),
                    });
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() && id_marker.is_none() {
                break;
            }
        }
        Ok(out)
    }

    pub async fn abort_upload(&self, upload: &PendingUpload) -> Result<(), SinkError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                self.err(
                    "aborting the multipart upload of",
                    &upload.key,
                    describe(&e),
                )
            })
    }
}

fn apply_put_options(
    mut req: aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder,
    options: &S3WriteOptions,
) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
    if let Some(enc) = &options.encryption {
        req = match enc {
            Encryption::S3 => req.server_side_encryption(ServerSideEncryption::Aes256),
            // The key id header only when configured: an empty one breaks every write (P15).
            Encryption::Kms { key_id } => req
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .set_ssekms_key_id(key_id.clone()),
        };
    }
    if let Some(class) = &options.storage_class {
        req = req.storage_class(StorageClass::from(class.as_str()));
    }
    if options.bucket_owner_full_control {
        req = req.acl(ObjectCannedAcl::BucketOwnerFullControl);
    }
    req
}

/// A part size that keeps a file of `size` bytes under [`MAX_PARTS`] parts, in whole MiB.
pub fn part_size_for(size: u64, minimum: u64) -> u64 {
    let needed = size.div_ceil(MAX_PARTS);
    let mib = 1 << 20;
    needed.max(minimum).max(MIN_PART_BYTES).div_ceil(mib) * mib
}

fn hex_to_base64(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The drop sink on S3. Its methods block on the async client, so it must be used from a
/// blocking thread (the drop writer runs on one), never from inside an async task.
pub struct S3Sink {
    store: S3Store,
    options: S3WriteOptions,
    staging: tempfile::TempDir,
    runtime: Handle,
}

impl S3Sink {
    pub fn new(store: S3Store, options: S3WriteOptions, runtime: Handle) -> io::Result<Self> {
        Ok(S3Sink {
            store,
            options,
            staging: tempfile::Builder::new()
                .prefix("lpdrop-staging-")
                .tempdir()?,
            runtime,
        })
    }

    pub fn store(&self) -> &S3Store {
        &self.store
    }
}

impl Sink for S3Sink {
    fn staging_path(&self, key: &str) -> Result<PathBuf, SinkError> {
        // Flat names in the staging folder: keys never become local paths.
        let name = format!(
            "{}-{}",
            uuid::Uuid::new_v4().simple(),
            key.rsplit('/').next().unwrap_or("object")
        );
        Ok(self.staging.path().join(name))
    }

    fn publish_file(&self, key: &str, staged: &Path, sha256_hex: &str) -> Result<(), SinkError> {
        let result =
            self.runtime
                .block_on(self.store.put_file(key, staged, sha256_hex, &self.options));
        // The staged copy is no longer needed either way: keep the disk footprint to one file.
        let _ = std::fs::remove_file(staged);
        result
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), SinkError> {
        self.runtime
            .block_on(
                self.store
                    .put_bytes(key, bytes.to_vec(), &self.options, false),
            )
            .map(|_| ())
    }

    fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<bool, SinkError> {
        self.runtime.block_on(
            self.store
                .put_bytes(key, bytes.to_vec(), &self.options, true),
        )
    }

    fn exists(&self, key: &str) -> Result<bool, SinkError> {
        self.runtime.block_on(self.store.exists(key))
    }

    fn location(&self, key: &str) -> String {
        self.store.uri(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris_are_validated() {
        let l = S3Location::parse("s3://vb-thrive-air-s3-bucket/thrive-air-folder/").unwrap();
        assert_eq!(l.bucket, "vb-thrive-air-s3-bucket");
        assert_eq!(l.prefix.as_str(), "thrive-air-folder");
        assert_eq!(
            S3Location::parse("s3://bucket").unwrap().prefix.as_str(),
            ""
        );
        for bad in [
            "s3://B",
            "s3://ab",
            "s3://bucket/../x",
            "s3://bucket//x",
            "http://b/x",
            "s3://-bucket/x",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn part_sizes_keep_under_the_part_limit() {
        assert_eq!(part_size_for(100 << 20, 16 << 20), 16 << 20);
        let huge = 5u64 << 40; // 5 TiB, S3's largest object
        let part = part_size_for(huge, 16 << 20);
        assert!(huge.div_ceil(part) <= MAX_PARTS);
        assert_eq!(part % (1 << 20), 0);
        assert_eq!(part_size_for(1, 0), MIN_PART_BYTES);
    }

    #[test]
    fn digests_convert_to_base64() {
        assert_eq!(hex_to_base64("00ff").unwrap(), "AP8=");
    }
}
