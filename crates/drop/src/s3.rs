//! Amazon S3 (and S3-compatible stores) as an object store for drops.
//!
//! Files are staged in a local temporary folder while parquet is written, then uploaded: small
//! ones with one `PutObject`, large ones as multipart uploads read straight from the staged file
//! in parts, so memory stays bounded whatever the file size. Every upload carries a checksum
//! that S3 verifies; the marker is written with `If-None-Match: *`.
//!
//! Every request is retried when it failed for a passing reason ([`crate::retry`]), and a write
//! whose last attempt failed is checked (size, then SHA-256) before it is reported: when the
//! answer to an attempt that landed is lost, the object is there, whole, and that is success.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};

use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectCannedAcl,
    ServerSideEncryption, StorageClass,
};
use base64::Engine as _;
use futures_util::{StreamExt, TryStreamExt, stream};

use crate::layout::Prefix;
use crate::retry::{Attempt, RetryBudget, retrying};
use crate::store::{
    Fetched, ObjectInfo, ObjectStore, PendingUpload, Staging, StoreError, as_folder,
};
use crate::writer::hex;

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

/// The shared AWS configuration every lpdrop client (S3, Glue) is built from: the standard
/// chain (environment, profile, web identity, container and instance metadata), us-east-1 (or
/// `options.default_region`) when the environment names no region, and the assumed role (with
/// its external id) when one is set. One function, so every service uses the same credentials.
pub async fn aws_config(options: &S3ConnectOptions) -> aws_config::SdkConfig {
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
    shared
}

/// A custom endpoint for a service: `AWS_ENDPOINT_URL_<SERVICE>` (e.g. `AWS_ENDPOINT_URL_S3`,
/// `AWS_ENDPOINT_URL_GLUE`), else `AWS_ENDPOINT_URL`; it must use https unless loopback.
pub fn endpoint_override(service_env_suffix: &str, what: &str) -> Result<Option<String>, String> {
    let endpoint = std::env::var(format!("AWS_ENDPOINT_URL_{service_env_suffix}"))
        .ok()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .filter(|e| !e.is_empty());
    if let Some(e) = &endpoint {
        lpdrop_settings::require_tls_unless_loopback(e, what)?;
    }
    Ok(endpoint)
}

/// Builds an S3 client from [`aws_config`]. A custom endpoint (`AWS_ENDPOINT_URL_S3` or
/// `AWS_ENDPOINT_URL`) switches to path-style addressing, and must use https unless loopback.
pub async fn connect(options: &S3ConnectOptions) -> Result<Client, String> {
    let endpoint = endpoint_override("S3", "the S3 endpoint")?;
    let shared = aws_config(options).await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared);
    if let Some(e) = endpoint {
        config = config.endpoint_url(e).force_path_style(true);
    }
    Ok(Client::from_conf(config.build()))
}

/// A failed S3 request, boiled down to what the retry loop and the callers need.
#[derive(Debug)]
struct Failure {
    /// One readable line (see [`describe`]).
    message: String,
    status: Option<u16>,
    code: Option<String>,
    transient: bool,
}

/// S3's error codes for a request that may well succeed when sent again.
const TRANSIENT_CODES: [&str; 9] = [
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestTimeout",
    "RequestTimeoutException",
];

impl Failure {
    /// Transient: a 5xx or 429, throttling, a timeout, a reset or refused connection, an
    /// answer cut short. Lasting: any other 4xx, missing credentials, a request the SDK
    /// could not build.
    fn of<E>(e: SdkError<E, HttpResponse>) -> Failure
    where
        E: std::error::Error + ProvideErrorMetadata + 'static,
    {
        let status = e.raw_response().map(|r| r.status().as_u16());
        let code = e.code().map(str::to_string);
        let transient = match &e {
            SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
            SdkError::DispatchFailure(d) => {
                d.is_io()
                    || d.is_timeout()
                    || d.as_other() == Some(aws_smithy_types::retry::ErrorKind::TransientError)
            }
            SdkError::ServiceError(_) => {
                status.is_some_and(|s| s >= 500 || s == 429)
                    || code
                        .as_deref()
                        .is_some_and(|c| TRANSIENT_CODES.contains(&c))
            }
            _ => false,
        };
        Failure {
            message: describe(&e),
            status,
            code,
            transient,
        }
    }

    /// An answer whose body broke off while it was read.
    fn reading(cause: impl std::fmt::Display) -> Failure {
        Failure {
            message: format!("reading the answer: {cause}"),
            status: None,
            code: None,
            transient: true,
        }
    }

    /// A local file that could not be read or written: sending again would not help.
    fn local(what: &str, cause: impl std::fmt::Display) -> Failure {
        Failure {
            message: format!("{what}: {cause}"),
            status: None,
            code: None,
            transient: false,
        }
    }

    fn is_missing(&self) -> bool {
        self.status == Some(404) || matches!(self.code.as_deref(), Some("NoSuchKey" | "NotFound"))
    }

    fn is_precondition_failed(&self) -> bool {
        self.status == Some(412) || self.code.as_deref() == Some("PreconditionFailed")
    }

    fn is_no_such_upload(&self) -> bool {
        self.code.as_deref() == Some("NoSuchUpload")
    }
}

impl Attempt for Failure {
    fn is_transient(&self) -> bool {
        self.transient
    }

    fn cause(&self) -> String {
        self.message.clone()
    }
}

/// One readable line for an SDK error: S3's code and message for a service error, else the
/// chain of causes (connection, credentials, timeout). The SDK's own `DisplayErrorContext`
/// also prints raw responses in Debug form, far too long for a person. Never credentials:
/// the SDK keeps them out.
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

/// Drops in an S3 bucket. Every request is retried within the store's [`RetryBudget`], and a
/// write whose last attempt failed is checked before it is reported as failed: the answer to
/// an attempt that landed may have been lost.
#[derive(Debug)]
pub struct S3Store {
    client: Client,
    bucket: String,
    options: S3WriteOptions,
    retry: RetryBudget,
    /// Where files are written before upload; made on first use, so that a store that only
    /// reads needs no temporary folder.
    staging: Staging,
}

impl S3Store {
    /// A store for `bucket` through `client`. The client's own retries are turned off: the
    /// store retries every request itself, within `retry`, and logs each retry.
    pub fn new(
        client: &Client,
        bucket: impl Into<String>,
        options: S3WriteOptions,
        retry: RetryBudget,
    ) -> S3Store {
        let config = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build();
        S3Store {
            client: Client::from_conf(config),
            bucket: bucket.into(),
            options,
            retry,
            staging: Staging::default(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }

    fn err(&self, action: &'static str, key: &str, message: String) -> StoreError {
        StoreError::new(action, self.uri(key), io::Error::other(message))
    }

    async fn retrying<T, F, Fut>(
        &self,
        operation: &'static str,
        key: &str,
        attempt: F,
    ) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        retrying(&self.retry, operation, key, attempt).await
    }

    /// Uploads a local file, in one request or as a multipart upload. `sha256_hex` is the
    /// file's digest: S3 checks what it received against it, and it tells a write that landed
    /// from one that did not when the answer is lost.
    pub async fn put_file(
        &self,
        key: &str,
        path: &Path,
        sha256_hex: &str,
    ) -> Result<(), StoreError> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| self.err("reading staged file for", key, e.to_string()))?
            .len();
        let expected = Expected { size, sha256_hex };
        if size > self.options.multipart_threshold {
            return self.put_multipart(key, path, &expected).await;
        }
        let digest = hex_to_base64(sha256_hex)
            .ok_or_else(|| self.err("uploading", key, "bad digest".into()))?;
        let sent = self
            .retrying("PutObject", key, || async {
                let body = ByteStream::from_path(path)
                    .await
                    .map_err(|e| Failure::local("reading the staged file", e))?;
                let request = self
                    .client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .body(body)
                    .content_length(size as i64)
                    .checksum_sha256(&digest);
                apply_put_options(request, &self.options)
                    .send()
                    .await
                    .map(drop)
                    .map_err(Failure::of)
            })
            .await;
        self.unless_landed(key, &expected, sent).await
    }

    /// Writes a small object; with `if_absent`, only if `key` does not exist yet
    /// (`Ok(false)` when another object is there).
    pub async fn put_bytes(
        &self,
        key: &str,
        bytes: &[u8],
        if_absent: bool,
    ) -> Result<bool, StoreError> {
        let digest = <sha2::Sha256 as sha2::Digest>::digest(bytes);
        let sha256_hex = hex(&digest);
        let checksum = base64::engine::general_purpose::STANDARD.encode(digest);
        let sent = self
            .retrying("PutObject", key, || async {
                let mut request = self
                    .client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .body(ByteStream::from(bytes.to_vec()))
                    .checksum_sha256(&checksum);
                request = apply_put_options(request, &self.options);
                if if_absent {
                    request = request.if_none_match("*");
                }
                request.send().await.map(drop).map_err(Failure::of)
            })
            .await;
        let expected = Expected {
            size: bytes.len() as u64,
            sha256_hex: &sha256_hex,
        };
        match sent {
            // Someone's object is there: ours (an earlier attempt whose answer was lost), or
            // another writer's.
            Err(f) if if_absent && f.is_precondition_failed() => {
                Ok(self.holds(key, &expected).await)
            }
            other => self
                .unless_landed(key, &expected, other)
                .await
                .map(|()| true),
        }
    }

    /// `sent`, unless it failed while the object at `key` holds exactly what was sent: then
    /// an attempt landed and only its answer was lost, which is a success.
    async fn unless_landed(
        &self,
        key: &str,
        expected: &Expected<'_>,
        sent: Result<(), Failure>,
    ) -> Result<(), StoreError> {
        let Err(failure) = sent else {
            return Ok(());
        };
        if self.holds(key, expected).await {
            tracing::debug!(key, cause = %failure.message, "the write landed, although its last attempt failed");
            return Ok(());
        }
        Err(self.err("uploading", key, failure.message))
    }

    /// True when `key` holds exactly the expected object: its size first (one HEAD), then the
    /// SHA-256 of its bytes. False when it is missing, differs or cannot be read.
    async fn holds(&self, key: &str, expected: &Expected<'_>) -> bool {
        let size = self
            .retrying("HeadObject", key, || async {
                let head = self
                    .client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(Failure::of)?;
                Ok(head.content_length().unwrap_or(-1))
            })
            .await;
        if size.ok() != Some(expected.size as i64) {
            return false;
        }
        self.sha256_hex_of(key).await.ok().as_deref() == Some(expected.sha256_hex)
    }

    /// The SHA-256 (hex) of the object at `key`, streamed.
    async fn sha256_hex_of(&self, key: &str) -> Result<String, Failure> {
        use sha2::Digest;
        self.retrying("GetObject", key, || async {
            let out = self.get_object(key).await?;
            let mut body = out.body;
            let mut hasher = sha2::Sha256::new();
            while let Some(chunk) = body.try_next().await.map_err(Failure::reading)? {
                hasher.update(&chunk);
            }
            Ok(hex(&hasher.finalize()))
        })
        .await
    }

    async fn get_object(
        &self,
        key: &str,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, Failure> {
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(Failure::of)
    }

    async fn put_multipart(
        &self,
        key: &str,
        path: &Path,
        expected: &Expected<'_>,
    ) -> Result<(), StoreError> {
        let upload_id = self.start_multipart(key).await?;
        let completed = match self
            .upload_parts(key, &upload_id, path, expected.size)
            .await
        {
            Ok(parts) => self.complete_multipart(key, &upload_id, parts).await,
            Err(failure) => Err(failure),
        };
        let Err(failure) = completed else {
            return Ok(());
        };
        // A Complete that S3 carried out, whose answer was lost: the retries then get an
        // error (NoSuchUpload, or a 500 of their own). The object holds exactly our file.
        if self.holds(key, expected).await {
            tracing::debug!(key, cause = %failure.message, "the multipart upload completed, although its last attempt failed");
            return Ok(());
        }
        // Best effort: a failed abort leaves the upload for `lpdrop gc` to remove.
        let _ = self.abort(key, &upload_id).await;
        Err(self.err("uploading", key, failure.message))
    }

    async fn start_multipart(&self, key: &str) -> Result<String, StoreError> {
        let options = &self.options;
        let started = self
            .retrying("CreateMultipartUpload", key, || async {
                let mut create = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    // Declared up front: stricter stores refuse part checksums otherwise.
                    .checksum_algorithm(ChecksumAlgorithm::Sha256);
                if let Some(enc) = &options.encryption {
                    create = match enc {
                        Encryption::S3 => {
                            create.server_side_encryption(ServerSideEncryption::Aes256)
                        }
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
                create.send().await.map_err(Failure::of)
            })
            .await
            .map_err(|f| self.err("starting multipart upload of", key, f.message))?;
        started
            .upload_id
            .ok_or_else(|| self.err("starting multipart upload of", key, "no upload id".into()))
    }

    /// Uploads the parts of the file at `path`, a few at once, each read straight from the
    /// file (memory stays bounded whatever its size).
    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        path: &Path,
        size: u64,
    ) -> Result<Vec<CompletedPart>, Failure> {
        let part_size = part_size_for(size, self.options.part_size);
        let parts = size.div_ceil(part_size);
        stream::iter(0..parts)
            .map(|i| async move {
                let offset = i * part_size;
                let length = part_size.min(size - offset);
                let number = (i + 1) as i32;
                let label = format!("{key} (part {number} of {parts})");
                let out = self
                    .retrying("UploadPart", &label, || async {
                        let body = ByteStream::read_from()
                            .path(path)
                            .offset(offset)
                            .length(Length::Exact(length))
                            .build()
                            .await
                            .map_err(|e| Failure::local("reading the staged file", e))?;
                        self.client
                            .upload_part()
                            .bucket(&self.bucket)
                            .key(key)
                            .upload_id(upload_id)
                            .part_number(number)
                            .content_length(length as i64)
                            .checksum_algorithm(ChecksumAlgorithm::Sha256)
                            .body(body)
                            .send()
                            .await
                            .map_err(Failure::of)
                    })
                    .await
                    .map_err(|f| Failure {
                        message: format!("part {number} of {parts}: {}", f.message),
                        ..f
                    })?;
                Ok(CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag)
                    .set_checksum_sha256(out.checksum_sha256)
                    .build())
            })
            .buffered(self.options.upload_concurrency.max(1))
            .try_collect()
            .await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> Result<(), Failure> {
        let parts = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        self.retrying("CompleteMultipartUpload", key, || async {
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .multipart_upload(parts.clone())
                .send()
                .await
                .map(drop)
                .map_err(Failure::of)
        })
        .await
    }

    /// Aborts a multipart upload; one already gone (aborted or completed) counts as done.
    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), Failure> {
        let aborted = self
            .retrying("AbortMultipartUpload", key, || async {
                self.client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(Failure::of)
            })
            .await;
        match aborted {
            Err(f) if f.is_no_such_upload() => Ok(()),
            other => other,
        }
    }

    /// Streams an object into a local file; returns its size and SHA-256 (hex), or `None`
    /// when the object does not exist.
    async fn download(&self, key: &str, to: &Path) -> Result<Option<(u64, String)>, Failure> {
        use sha2::Digest;
        use tokio::io::AsyncWriteExt;
        let downloaded = self
            .retrying("GetObject", key, || async {
                let out = self.get_object(key).await?;
                let mut file = tokio::fs::File::create(to)
                    .await
                    .map_err(|e| Failure::local("creating a local copy", e))?;
                let mut body = out.body;
                let mut hasher = sha2::Sha256::new();
                let mut size = 0u64;
                while let Some(chunk) = body.try_next().await.map_err(Failure::reading)? {
                    size += chunk.len() as u64;
                    hasher.update(&chunk);
                    file.write_all(&chunk)
                        .await
                        .map_err(|e| Failure::local("writing a local copy", e))?;
                }
                file.flush()
                    .await
                    .map_err(|e| Failure::local("writing a local copy", e))?;
                Ok((size, hex(&hasher.finalize())))
            })
            .await;
        match downloaded {
            Err(f) if f.is_missing() => Ok(None),
            other => other.map(Some),
        }
    }

    /// One page of a listing under `prefix`, from `token`.
    async fn list_page(
        &self,
        prefix: &str,
        token: Option<String>,
    ) -> Result<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output, Failure> {
        self.retrying("ListObjectsV2", prefix, || async {
            self.client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(Failure::of)
        })
        .await
    }
}

/// What a write should have left at its key.
struct Expected<'a> {
    size: u64,
    sha256_hex: &'a str,
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    fn staging_path(&self, key: &str) -> Result<PathBuf, StoreError> {
        self.staging.path_for(key, self.uri(key))
    }

    async fn publish_file(
        &self,
        key: &str,
        staged: &Path,
        sha256_hex: &str,
    ) -> Result<(), StoreError> {
        let result = self.put_file(key, staged, sha256_hex).await;
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
        self.put_file(key, source, sha256_hex).await
    }

    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.put_bytes(key, bytes, false).await.map(drop)
    }

    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        self.put_bytes(key, bytes, true).await
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let found = self
            .retrying("HeadObject", key, || async {
                self.client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(Failure::of)
            })
            .await;
        match found {
            Ok(_) => Ok(true),
            Err(f) if f.is_missing() => Ok(false),
            Err(f) => Err(self.err("checking", key, f.message)),
        }
    }

    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let got = self
            .retrying("GetObject", key, || async {
                let out = self.get_object(key).await?;
                let data = out.body.collect().await.map_err(Failure::reading)?;
                Ok(data.into_bytes().to_vec())
            })
            .await;
        match got {
            Ok(bytes) => Ok(Some(bytes)),
            Err(f) if f.is_missing() => Ok(None),
            Err(f) => Err(self.err("reading", key, f.message)),
        }
    }

    async fn fetch(&self, key: &str) -> Result<Option<Fetched>, StoreError> {
        let temp = tempfile::NamedTempFile::new()
            .map_err(|e| StoreError::new("creating a local copy of", self.uri(key), e))?
            .into_temp_path();
        let Some((size, sha256)) = self
            .download(key, &temp)
            .await
            .map_err(|f| self.err("reading", key, f.message))?
        else {
            return Ok(None);
        };
        Ok(Some(Fetched {
            path: temp.to_path_buf(),
            size,
            sha256,
            _temp: Some(temp),
        }))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let prefix = as_folder(prefix);
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .list_page(&prefix, token)
                .await
                .map_err(|f| self.err("listing", &prefix, f.message))?;
            for o in page.contents() {
                if let Some(key) = o.key() {
                    out.push(ObjectInfo {
                        key: key.to_string(),
                        size: o.size().unwrap_or(0).max(0) as u64,
                    });
                }
            }
            token = page.next_continuation_token().map(str::to_string);
            if page.is_truncated() != Some(true) || token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
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
                .retrying("DeleteObjects", &chunk[0], || async {
                    self.client
                        .delete_objects()
                        .bucket(&self.bucket)
                        .delete(delete.clone())
                        .send()
                        .await
                        .map_err(Failure::of)
                })
                .await
                .map_err(|f| self.err("deleting", &chunk[0], f.message))?;
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

    async fn pending_uploads(&self, prefix: &str) -> Result<Vec<PendingUpload>, StoreError> {
        let prefix = as_folder(prefix);
        let mut out = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut id_marker: Option<String> = None;
        loop {
            let page = self
                .retrying("ListMultipartUploads", &prefix, || async {
                    self.client
                        .list_multipart_uploads()
                        .bucket(&self.bucket)
                        .prefix(&prefix)
                        .set_key_marker(key_marker.clone())
                        .set_upload_id_marker(id_marker.clone())
                        .send()
                        .await
                        .map_err(Failure::of)
                })
                .await
                .map_err(|f| self.err("listing multipart uploads under", &prefix, f.message))?;
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

    async fn abort_upload(&self, upload: &PendingUpload) -> Result<(), StoreError> {
        self.abort(&upload.key, &upload.upload_id)
            .await
            .map_err(|f| self.err("aborting the multipart upload of", &upload.key, f.message))
    }

    /// A one-key listing under `prefix` rather than `HeadBucket`: it needs only
    /// `s3:ListBucket` for that prefix, so the customer's role can keep a strict `s3:prefix`
    /// condition.
    async fn check_access(&self, prefix: &str) -> Result<(), StoreError> {
        let prefix = as_folder(prefix);
        self.retrying("ListObjectsV2", &prefix, || async {
            self.client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .max_keys(1)
                .send()
                .await
                .map(drop)
                .map_err(Failure::of)
        })
        .await
        .map_err(|f| self.err("listing", &prefix, f.message))
    }

    fn location(&self, key: &str) -> String {
        self.uri(key)
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
