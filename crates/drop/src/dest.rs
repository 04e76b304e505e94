//! Destinations (a local folder or `s3://bucket/prefix`), the S3 settings behind them, and
//! opening a store for one.

use std::path::PathBuf;
use std::sync::Arc;

use crate::s3::{Encryption, S3ConnectOptions};
use crate::{LocalSink, Prefix, S3Location, S3Sink, S3Store, S3WriteOptions, Sink, Store};
use anyhow::{Context, Result, bail};

/// Where drops go or are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Local(PathBuf),
    S3(S3Location),
}

impl Destination {
    pub fn parse(dest: &str) -> Result<Self> {
        if dest.starts_with("s3://") {
            return S3Location::parse(dest)
                .map(Destination::S3)
                .map_err(anyhow::Error::msg);
        }
        if dest.contains("://") {
            bail!("unsupported destination {dest:?}: use a local folder or s3://bucket/prefix");
        }
        if dest.is_empty() {
            bail!("the destination folder is empty");
        }
        Ok(Destination::Local(PathBuf::from(dest)))
    }

    /// The key prefix drops are published under (the folder inside the bucket).
    pub fn prefix(&self) -> Prefix {
        match self {
            Destination::Local(_) => Prefix::default(),
            Destination::S3(l) => l.prefix.clone(),
        }
    }
}

/// S3 settings; the standard AWS chain supplies credentials and `AWS_ENDPOINT_URL` the endpoint.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// Server-side encryption on writes: `s3` (SSE-S3) or `kms` (SSE-KMS).
    pub sse: Option<String>,
    /// KMS key id or ARN for SSE-KMS (the bucket's default key when absent).
    pub kms_key_id: Option<String>,
    /// Storage class of written objects, e.g. STANDARD_IA.
    pub storage_class: Option<String>,
    /// Give the bucket owner full control of written objects (cross-account writes).
    pub bucket_owner_full_control: bool,
    /// Role to assume for S3 (the customer's role that trusts lpdrop).
    pub role_arn: Option<String>,
    /// External id required by that role's trust policy.
    pub external_id: Option<String>,
}

impl S3Settings {
    pub fn write_options(&self) -> Result<S3WriteOptions> {
        let encryption = match self.sse.as_deref() {
            None | Some("") => {
                if self.kms_key_id.is_some() {
                    bail!("--s3-kms-key-id needs --s3-sse kms");
                }
                None
            }
            Some("s3") => Some(Encryption::S3),
            Some("kms") => Some(Encryption::Kms {
                key_id: self.kms_key_id.clone().filter(|k| !k.is_empty()),
            }),
            Some(other) => bail!("--s3-sse must be s3 or kms, not {other:?}"),
        };
        Ok(S3WriteOptions {
            encryption,
            storage_class: self.storage_class.clone().filter(|c| !c.is_empty()),
            bucket_owner_full_control: self.bucket_owner_full_control,
            ..S3WriteOptions::default()
        })
    }

    pub async fn store(&self, bucket: &str) -> Result<S3Store> {
        let client = crate::s3::connect(&S3ConnectOptions {
            role_arn: self.role_arn.clone(),
            external_id: self.external_id.clone(),
            default_region: None,
        })
        .await
        .map_err(anyhow::Error::msg)?;
        Ok(S3Store {
            client,
            bucket: bucket.to_string(),
        })
    }
}

/// The sink for a destination, checked to be reachable before any work starts.
pub async fn open_sink(dest: &Destination, s3: &S3Settings) -> Result<Arc<dyn Sink>> {
    match dest {
        Destination::Local(root) => {
            std::fs::create_dir_all(root)
                .with_context(|| format!("cannot create {}", root.display()))?;
            Ok(Arc::new(LocalSink::new(root.clone())))
        }
        Destination::S3(location) => {
            let options = s3.write_options()?;
            let store = s3.store(&location.bucket).await?;
            store.check_access(location.prefix.as_str()).await?;
            let sink = S3Sink::new(store, options, tokio::runtime::Handle::current())
                .context("cannot create a local staging folder")?;
            Ok(Arc::new(sink))
        }
    }
}

/// A store to read from, and the key prefix inside it, for `verify` and `gc`.
pub async fn open_store(target: &str, s3: &S3Settings) -> Result<(Store, String)> {
    match Destination::parse(target)? {
        Destination::Local(path) => {
            if !path.is_dir() {
                bail!("{} is not a folder", path.display());
            }
            Ok((Store::Local(path), String::new()))
        }
        Destination::S3(location) => {
            let store = s3.store(&location.bucket).await?;
            store.check_access(location.prefix.as_str()).await?;
            Ok((Store::S3(store), location.prefix.as_str().to_string()))
        }
    }
}
