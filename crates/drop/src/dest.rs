//! Destinations (a local folder, `s3://bucket/prefix` or `az://container/prefix`), the settings
//! behind them, and
//! opening the object store for one: the one place that knows which kinds of store exist.

use std::path::PathBuf;
use std::sync::Arc;

use crate::azure::{AzureLocation, AzureStore};
use crate::retry::RetryBudget;
use crate::s3::{Encryption, S3ConnectOptions};
use crate::{LocalStore, ObjectStore, Prefix, S3Location, S3Store, S3WriteOptions};
use anyhow::{Context, Result, bail};

/// Where drops go or are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Local(PathBuf),
    S3(S3Location),
    /// Azure Blob Storage: `az://container/prefix` (or `azure://`).
    Azure(AzureLocation),
}

impl Destination {
    pub fn parse(dest: &str) -> Result<Self> {
        if dest.starts_with("s3://") {
            return S3Location::parse(dest)
                .map(Destination::S3)
                .map_err(anyhow::Error::msg);
        }
        if dest.starts_with("az://") || dest.starts_with("azure://") {
            return AzureLocation::parse(dest)
                .map(Destination::Azure)
                .map_err(anyhow::Error::msg);
        }
        if dest.contains("://") {
            bail!(
                "unsupported destination {dest:?}: use a local folder, s3://bucket/prefix or \
                 az://container/prefix"
            );
        }
        if dest.is_empty() {
            bail!("the destination folder is empty");
        }
        Ok(Destination::Local(PathBuf::from(dest)))
    }

    /// `dest` as a queued job stores it: validated, and a local folder made absolute, so that
    /// workers started elsewhere write to the same place.
    pub fn for_job(dest: &str) -> Result<String> {
        match Destination::parse(dest)? {
            Destination::Local(path) => Ok(std::path::absolute(&path)
                .with_context(|| format!("cannot resolve {}", path.display()))?
                .display()
                .to_string()),
            _ => Ok(dest.to_string()),
        }
    }

    /// The key prefix drops are published under (the folder inside the bucket).
    pub fn prefix(&self) -> Prefix {
        match self {
            Destination::Local(_) => Prefix::default(),
            Destination::S3(l) => l.prefix.clone(),
            Destination::Azure(l) => l.prefix.clone(),
        }
    }
}

/// Settings of every store: how hard to retry, and what S3 needs.
#[derive(Debug, Clone, Default)]
pub struct StoreSettings {
    pub s3: S3Settings,
    /// Attempts and backoff of each request to a remote store.
    pub retry: RetryBudget,
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
    /// Files larger than this go up as multipart uploads (default 16 MiB); on Azure, as
    /// blocks and a block list.
    pub multipart_threshold: Option<u64>,
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
        let defaults = S3WriteOptions::default();
        Ok(S3WriteOptions {
            encryption,
            storage_class: self.storage_class.clone().filter(|c| !c.is_empty()),
            bucket_owner_full_control: self.bucket_owner_full_control,
            multipart_threshold: self
                .multipart_threshold
                .unwrap_or(defaults.multipart_threshold),
            ..defaults
        })
    }

    /// How to reach AWS: the chain, and the role to assume. Every AWS client lpdrop builds (S3,
    /// Glue) uses these, through [`crate::s3::aws_config`].
    pub fn connect_options(&self) -> S3ConnectOptions {
        S3ConnectOptions {
            role_arn: self.role_arn.clone(),
            external_id: self.external_id.clone(),
            default_region: None,
        }
    }

    /// The store for `bucket`, through a client from the AWS chain.
    pub async fn store(&self, bucket: &str, retry: RetryBudget) -> Result<S3Store> {
        let options = self.write_options()?;
        let client = crate::s3::connect(&self.connect_options())
            .await
            .map_err(anyhow::Error::msg)?;
        Ok(S3Store::new(&client, bucket, options, retry))
    }
}

/// The object store of a destination, checked to be reachable, and the key prefix drops are
/// published under inside it. A local folder must exist: see [`open_to_write`].
pub async fn open(
    dest: &Destination,
    settings: &StoreSettings,
) -> Result<(Arc<dyn ObjectStore>, String)> {
    let (store, prefix): (Arc<dyn ObjectStore>, String) = match dest {
        Destination::Local(root) => {
            if !root.is_dir() {
                bail!("{} is not a folder", root.display());
            }
            (Arc::new(LocalStore::new(root.clone())), String::new())
        }
        Destination::S3(location) => {
            let store = settings.s3.store(&location.bucket, settings.retry).await?;
            (Arc::new(store), location.prefix.as_str().to_string())
        }
        Destination::Azure(location) => {
            let single_put_max = settings
                .s3
                .multipart_threshold
                .unwrap_or(crate::azure::SINGLE_PUT_MAX);
            let store = AzureStore::from_env(&location.container, settings.retry, single_put_max)
                .map_err(anyhow::Error::msg)?;
            (Arc::new(store), location.prefix.as_str().to_string())
        }
    };
    store.check_access(&prefix).await?;
    Ok((store, prefix))
}

/// [`open`] for publishing drops: a local folder is created first when missing.
pub async fn open_to_write(
    dest: &Destination,
    settings: &StoreSettings,
) -> Result<(Arc<dyn ObjectStore>, String)> {
    if let Destination::Local(root) = dest {
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create {}", root.display()))?;
    }
    open(dest, settings).await
}
